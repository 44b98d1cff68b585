//! The Stripe operations creditd performs, each built as one `StripeRequest` with its exact parameters.

pub mod checkout;
pub mod credits;
pub mod funding;
pub mod resync;
pub mod reversal;
pub mod topup;

use super::client::{StripeClient, StripeError, StripeRequest};
use super::form::Form;
use super::types::{CreditGrant, Event, Invoice, List};
use crate::purchase::{Applicability, Purchase};

pub fn get_invoice(invoice_id: &str) -> StripeRequest {
    StripeRequest::get(format!("/v1/invoices/{invoice_id}"), Form::new())
}

pub fn list_grants(customer: &str, starting_after: Option<&str>) -> StripeRequest {
    let mut form = Form::new().with("customer", customer).with("limit", 100);
    form.push_opt("starting_after", starting_after);
    StripeRequest::get("/v1/billing/credit_grants", form)
}

/// The grant for a purchase: its credit spec, plus metadata that lets us find it again after a crash.
/// Its value is the one fixed when the request was first marked (less any refund before it).
pub fn create_grant(purchase: &Purchase) -> StripeRequest {
    let value = purchase.grant_value.unwrap_or(purchase.credit.0.value);
    let mut metadata = purchase.metadata.0.clone();
    metadata.insert("creditd_purchase_id".into(), purchase.id.to_string());
    if let Some(invoice_id) = &purchase.invoice_id {
        metadata.insert("invoice_id".into(), invoice_id.to_string());
    }
    StripeRequest::post(
        "/v1/billing/credit_grants",
        grant_form(purchase, value, &metadata),
        purchase.grant_idempotency_key(),
    )
}

/// The expiry every grant of this purchase carries: the fixed one, or the one fixed at first request.
pub fn grant_expiry(purchase: &Purchase) -> Option<i64> {
    purchase.credit.0.expires_at.or(purchase.grant_expires_at)
}

/// A grant of `value` with the purchase's scope, priority, dates and name.
pub(crate) fn grant_form(
    purchase: &Purchase,
    value: i64,
    metadata: &std::collections::BTreeMap<String, String>,
) -> Form {
    let credit = &purchase.credit.0;
    let mut form = Form::new()
        .with("customer", &purchase.customer)
        .with("name", &credit.name)
        .with("category", &credit.category)
        .with("amount[type]", "monetary")
        .with("amount[monetary][value]", value)
        .with("amount[monetary][currency]", credit.currency.as_str());
    match &credit.applicability {
        Applicability::PriceType { price_type } => {
            form.push("applicability_config[scope][price_type]", price_type)
        }
        Applicability::Prices { prices } => {
            for (i, price) in prices.iter().enumerate() {
                form.push(
                    format!("applicability_config[scope][prices][{i}][id]"),
                    price,
                );
            }
        }
    }
    form.push_opt("priority", credit.priority);
    form.push_opt("effective_at", credit.effective_at);
    form.push_opt("expires_at", grant_expiry(purchase));
    form.push_map("metadata", metadata);
    form
}

pub fn get_event(event_id: &str) -> StripeRequest {
    StripeRequest::get(format!("/v1/events/{event_id}"), Form::new())
}

impl StripeClient {
    pub async fn invoice(&self, invoice_id: &str) -> Result<Invoice, StripeError> {
        self.send(&get_invoice(invoice_id)).await
    }

    /// Looks through all of the customer's grants for the one carrying this purchase id.
    pub async fn find_grant_for_purchase(
        &self,
        customer: &str,
        purchase_id: &str,
    ) -> Result<Option<CreditGrant>, StripeError> {
        let mut cursor: Option<String> = None;
        loop {
            let page: List<CreditGrant> =
                self.send(&list_grants(customer, cursor.as_deref())).await?;
            let found = page.data.iter().find(|grant| {
                grant
                    .metadata
                    .get("creditd_purchase_id")
                    .map(String::as_str)
                    == Some(purchase_id)
            });
            if let Some(grant) = found {
                return Ok(Some(grant.clone()));
            }
            match (page.has_more, page.data.last()) {
                (true, Some(last)) => cursor = Some(last.id.clone()),
                _ => return Ok(None),
            }
        }
    }

    pub async fn event(&self, event_id: &str) -> Result<Event, StripeError> {
        self.send(&get_event(event_id)).await
    }
}
