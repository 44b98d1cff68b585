//! The requests that fund a purchase: its one-off invoice, creditd's line on it, finalization.

use crate::purchase::{Funding, Purchase};
use crate::stripe::StripeRequest;
use crate::stripe::form::Form;

pub use super::get_invoice;

/// `creditd-<step>-<purchase>`, with `-<generation>` once a stored 500 moved the step to a new key
/// (generation 0 keeps the form earlier versions used, so their in-flight keys stay valid).
fn key(purchase: &Purchase, step: &str, generation: i32) -> String {
    match generation {
        0 => format!("creditd-{step}-{}", purchase.id),
        n => format!("creditd-{step}-{}-{n}", purchase.id),
    }
}

pub fn create_invoice(purchase: &Purchase, generation: i32) -> StripeRequest {
    let funding = purchase
        .funding
        .as_ref()
        .map(|f| f.0.clone())
        .unwrap_or_else(|| Funding {
            collection_method: "charge_automatically".into(),
            days_until_due: None,
            checkout: None,
            pay_off_session: false,
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
    metadata.insert("creditd_purchase_id".into(), purchase.id.to_string());
    form.push_map("metadata", &metadata);
    StripeRequest::post("/v1/invoices", form, key(purchase, "invoice", generation))
}

/// creditd's one line on the invoice, tagged with the purchase so a resumed attempt recognises it.
pub fn add_item(purchase: &Purchase, invoice_id: &str, generation: i32) -> StripeRequest {
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
    StripeRequest::post(
        "/v1/invoiceitems",
        form,
        key(purchase, "invoiceitem", generation),
    )
}

pub fn finalize(purchase: &Purchase, invoice_id: &str, generation: i32) -> StripeRequest {
    // A top-up is charged by creditd at once; Stripe must not charge it again on its own schedule.
    let auto_advance = !pays_off_session(purchase);
    let form = Form::new().with("auto_advance", auto_advance);
    StripeRequest::post(
        format!("/v1/invoices/{invoice_id}/finalize"),
        form,
        key(purchase, "finalize", generation),
    )
}

/// Voids a purchase's open invoice when the purchase is canceled.
pub fn void_invoice(purchase: &Purchase, invoice_id: &str) -> StripeRequest {
    StripeRequest::post(
        format!("/v1/invoices/{invoice_id}/void"),
        Form::new(),
        key(purchase, "void", 0),
    )
}

/// One page of the customer's invoices, newest first, drafts included.
pub fn list_invoices(customer: &str, starting_after: Option<&str>) -> StripeRequest {
    let mut form = Form::new().with("customer", customer).with("limit", 100);
    form.push_opt("starting_after", starting_after);
    StripeRequest::get("/v1/invoices", form)
}

fn pays_off_session(purchase: &Purchase) -> bool {
    purchase
        .funding
        .as_ref()
        .is_some_and(|f| f.0.pay_off_session)
}

/// Charges a top-up's open invoice to the customer's saved card now, without the customer.
pub fn pay_off_session(purchase: &Purchase, invoice_id: &str, generation: i32) -> StripeRequest {
    StripeRequest::post(
        format!("/v1/invoices/{invoice_id}/pay"),
        Form::new().with("off_session", true),
        key(purchase, "pay", generation),
    )
}
