//! Funds a purchase by creating, filling and finalizing its one-off Stripe invoice, resumably.
//!
//! Each attempt reads where Stripe is before acting, and every request carries a key derived from
//! the purchase and the step, so a crash or failure between steps resumes without a second invoice
//! or a second item: the invoice id is stored as soon as Stripe returns it, and when it was lost
//! (crash before the commit, key forgotten) the invoice is found again by its metadata.

use crate::db;
use crate::fulfilment::{Outcome, call, retry, stripe_failed};
use crate::purchase::{Purchase, PurchaseStatus};
use crate::services::Services;
use crate::stripe::form::Form;
use crate::stripe::types::{Invoice, InvoiceItem, List};
use crate::stripe::{StripeError, StripeRequest};

/// Moves a `creating_invoice` purchase as far as it can go: to `awaiting_payment` once the invoice
/// is open, or further when Stripe already shows it paid or voided.
pub async fn advance(
    services: &Services,
    purchase: &Purchase,
    owner: &str,
) -> anyhow::Result<Outcome> {
    let invoice_id = match &purchase.invoice_id {
        Some(id) => id.clone(),
        None => match find_or_create_invoice(services, purchase).await? {
            Ok(invoice) => {
                if !db::purchases::set_invoice(&services.db, &purchase.id, owner, &invoice.id)
                    .await?
                {
                    return Ok(Outcome::LeaseLost);
                }
                invoice.id
            }
            Err(error) => return stripe_failed(services, purchase, owner, error).await,
        },
    };
    let invoice: Invoice = match call(services, purchase, get_invoice(&invoice_id)).await? {
        Ok(invoice) => invoice,
        Err(error) => return stripe_failed(services, purchase, owner, error).await,
    };
    let invoice = match invoice.status.as_deref() {
        Some("draft") => match fill_and_finalize(services, purchase, &invoice).await? {
            Ok(invoice) => invoice,
            Err(error) => return stripe_failed(services, purchase, owner, error).await,
        },
        _ => invoice,
    };
    let next = match invoice.status.as_deref() {
        Some("open") => PurchaseStatus::AwaitingPayment,
        Some("paid") => PurchaseStatus::Granting,
        Some("void" | "uncollectible") => PurchaseStatus::Canceled,
        other => {
            let reason = format!(
                "invoice {invoice_id} is {}",
                other.unwrap_or("in an unknown state")
            );
            return retry(services, purchase, owner, reason, false).await;
        }
    };
    let url = invoice.hosted_invoice_url.as_deref();
    if !db::purchases::invoice_ready(&services.db, &purchase.id, owner, next, url).await? {
        return Ok(Outcome::LeaseLost);
    }
    tracing::info!(purchase_id = %purchase.id, %invoice_id, status = next.as_str(), "purchase invoice ready");
    if next == PurchaseStatus::Granting {
        services.wake.notify_one();
    }
    Ok(Outcome::InvoiceReady {
        invoice_id,
        status: next,
    })
}

async fn find_or_create_invoice(
    services: &Services,
    purchase: &Purchase,
) -> anyhow::Result<Result<Invoice, StripeError>> {
    // Only a purchase that was tried before can have an invoice we did not record.
    if purchase.attempts > 1 {
        let found =
            call::<List<Invoice>>(services, purchase, list_invoices(&purchase.customer)).await?;
        match found {
            Ok(page) => {
                if let Some(invoice) = page
                    .data
                    .into_iter()
                    .find(|i| i.purchase_id_in_metadata() == Some(&purchase.id))
                {
                    return Ok(Ok(invoice));
                }
            }
            Err(error) => return Ok(Err(error)),
        }
    }
    call(services, purchase, create_invoice(purchase)).await
}

async fn fill_and_finalize(
    services: &Services,
    purchase: &Purchase,
    invoice: &Invoice,
) -> anyhow::Result<Result<Invoice, StripeError>> {
    if !invoice.currency.eq_ignore_ascii_case(&purchase.currency) {
        return Ok(Err(mismatch(format!(
            "invoice currency {} is not the purchase currency {}",
            invoice.currency, purchase.currency
        ))));
    }
    if invoice.total == 0 {
        if let Err(error) =
            call::<InvoiceItem>(services, purchase, add_item(purchase, &invoice.id)).await?
        {
            return Ok(Err(error));
        }
    } else if invoice.total != purchase.amount {
        return Ok(Err(mismatch(format!(
            "draft invoice total {} is not the purchase amount {}",
            invoice.total, purchase.amount
        ))));
    }
    call(services, purchase, finalize(purchase, &invoice.id)).await
}

fn mismatch(message: String) -> StripeError {
    StripeError::Api {
        status: 400,
        error_type: "creditd_mismatch".into(),
        code: None,
        message,
        param: None,
    }
}

/// Stripe's own words, which the API passes on to the client.
pub fn stripe_message(error: &StripeError) -> String {
    match error {
        StripeError::Api { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

fn key(purchase: &Purchase, step: &str) -> String {
    format!("creditd-{step}-{}", purchase.id)
}

fn create_invoice(purchase: &Purchase) -> StripeRequest {
    let funding = purchase
        .funding
        .as_ref()
        .map(|f| f.0.clone())
        .unwrap_or_else(|| crate::purchase::Funding {
            collection_method: "charge_automatically".into(),
            days_until_due: None,
        });
    let mut form = Form::new()
        .with("customer", &purchase.customer)
        .with("currency", &purchase.currency)
        .with("collection_method", &funding.collection_method)
        .with("pending_invoice_items_behavior", "exclude")
        .with(
            "description",
            purchase
                .description
                .as_deref()
                .unwrap_or("Prepaid usage credits"),
        );
    form.push_opt("days_until_due", funding.days_until_due);
    let mut metadata = purchase.metadata.0.clone();
    metadata.insert("creditd_purchase_id".into(), purchase.id.clone());
    form.push_map("metadata", &metadata);
    StripeRequest::post("/v1/invoices", form, key(purchase, "invoice"))
}

fn add_item(purchase: &Purchase, invoice_id: &str) -> StripeRequest {
    let credit = &purchase.credit.0;
    let form = Form::new()
        .with("customer", &purchase.customer)
        .with("invoice", invoice_id)
        .with("amount", purchase.amount)
        .with("currency", &purchase.currency)
        .with(
            "description",
            format!("{} ({})", credit.name, credit.money().display()),
        )
        .with("metadata[creditd_purchase_id]", &purchase.id);
    StripeRequest::post("/v1/invoiceitems", form, key(purchase, "invoiceitem"))
}

fn finalize(purchase: &Purchase, invoice_id: &str) -> StripeRequest {
    let form = Form::new().with("auto_advance", true);
    StripeRequest::post(
        format!("/v1/invoices/{invoice_id}/finalize"),
        form,
        key(purchase, "finalize"),
    )
}

fn get_invoice(invoice_id: &str) -> StripeRequest {
    StripeRequest::get(format!("/v1/invoices/{invoice_id}"), Form::new())
}

fn list_invoices(customer: &str) -> StripeRequest {
    StripeRequest::get(
        "/v1/invoices",
        Form::new().with("customer", customer).with("limit", 100),
    )
}
