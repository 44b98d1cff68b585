//! The requests that fund a purchase through a Stripe Checkout Session.

use crate::purchase::{CheckoutFunding, Purchase};
use crate::stripe::StripeRequest;
use crate::stripe::form::Form;

/// `creditd-checkout-<purchase>[-<generation>]`, like the invoice's key.
fn key(purchase: &Purchase, generation: i32) -> String {
    match generation {
        0 => format!("creditd-checkout-{}", purchase.id),
        n => format!("creditd-checkout-{}-{n}", purchase.id),
    }
}

/// A payment-mode session for the purchase amount whose paid invoice carries the purchase id, so
/// `invoice.paid` fulfils it through the usual path.
pub fn create_session(
    purchase: &Purchase,
    checkout: &CheckoutFunding,
    generation: i32,
) -> StripeRequest {
    let credit = &purchase.credit.0;
    let mut form = Form::new()
        .with("mode", "payment")
        .with("customer", &purchase.customer)
        .with("line_items[0][price_data][currency]", &purchase.currency)
        .with("line_items[0][price_data][unit_amount]", purchase.amount)
        .with(
            "line_items[0][price_data][product_data][name]",
            &credit.name,
        )
        .with("line_items[0][quantity]", 1)
        .with("success_url", &checkout.success_url)
        .with("cancel_url", &checkout.cancel_url)
        .with("client_reference_id", &purchase.id)
        .with("metadata[creditd_purchase_id]", &purchase.id)
        .with("invoice_creation[enabled]", true);
    let mut metadata = purchase.metadata.0.clone();
    metadata.insert("creditd_purchase_id".into(), purchase.id.to_string());
    form.push_map("invoice_creation[invoice_data][metadata]", &metadata);
    if let Some(description) = &purchase.description {
        form.push("invoice_creation[invoice_data][description]", description);
    }
    if checkout.save_payment_method {
        form.push("payment_intent_data[setup_future_usage]", "off_session");
    }
    StripeRequest::post("/v1/checkout/sessions", form, key(purchase, generation))
}

pub fn list_sessions(customer: &str, starting_after: Option<&str>) -> StripeRequest {
    let mut form = Form::new().with("customer", customer).with("limit", 100);
    form.push_opt("starting_after", starting_after);
    StripeRequest::get("/v1/checkout/sessions", form)
}

pub fn get_session(session_id: &str) -> StripeRequest {
    StripeRequest::get(format!("/v1/checkout/sessions/{session_id}"), Form::new())
}
