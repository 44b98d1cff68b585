//! The requests that take credits back after a refund or dispute (and give them back after a
//! failed refund or a won dispute). Every write is keyed by the grant move it belongs to.

use std::collections::BTreeMap;

use crate::purchase::Purchase;
use crate::stripe::StripeRequest;
use crate::stripe::form::Form;

/// How a purchase's invoice was paid: its InvoicePayments.
pub fn list_invoice_payments(invoice_id: &str, starting_after: Option<&str>) -> StripeRequest {
    let mut form = Form::new().with("invoice", invoice_id).with("limit", 100);
    form.push_opt("starting_after", starting_after);
    StripeRequest::get("/v1/invoice_payments", form)
}

/// The InvoicePayment (if any) made by a PaymentIntent: which invoice a refunded payment paid.
pub fn invoice_payments_of_intent(payment_intent: &str) -> StripeRequest {
    let form = Form::new()
        .with("payment[type]", "payment_intent")
        .with("payment[payment_intent]", payment_intent)
        .with("limit", 10);
    StripeRequest::get("/v1/invoice_payments", form)
}

/// A Charge, to learn its PaymentIntent when an event names only the charge.
pub fn get_charge(charge_id: &str) -> StripeRequest {
    StripeRequest::get(format!("/v1/charges/{charge_id}"), Form::new())
}

/// Refunds (`disputes == false`) or disputes of one payment, by PaymentIntent or else by Charge.
pub fn list_for_payment(
    disputes: bool,
    payment_intent: Option<&str>,
    charge: Option<&str>,
    starting_after: Option<&str>,
) -> StripeRequest {
    let mut form = Form::new().with("limit", 100);
    match payment_intent {
        Some(pi) => form.push("payment_intent", pi),
        None => form.push_opt("charge", charge),
    }
    form.push_opt("starting_after", starting_after);
    let path = if disputes {
        "/v1/disputes"
    } else {
        "/v1/refunds"
    };
    StripeRequest::get(path, form)
}

/// The credit notes issued on the purchase's invoice.
pub fn list_credit_notes(invoice_id: &str, starting_after: Option<&str>) -> StripeRequest {
    let mut form = Form::new().with("invoice", invoice_id).with("limit", 100);
    form.push_opt("starting_after", starting_after);
    StripeRequest::get("/v1/credit_notes", form)
}

/// How much of one grant is left to apply.
pub fn grant_balance(customer: &str, grant_id: &str) -> StripeRequest {
    let form = Form::new()
        .with("customer", customer)
        .with("filter[type]", "credit_grant")
        .with("filter[credit_grant]", grant_id);
    StripeRequest::get("/v1/billing/credit_balance_summary", form)
}

pub fn get_grant(grant_id: &str) -> StripeRequest {
    StripeRequest::get(format!("/v1/billing/credit_grants/{grant_id}"), Form::new())
}

/// `creditd-move-<reversal>-<direction>-<step>`: one key per Stripe write of one grant move.
fn key(move_key: &str, step: &str) -> String {
    format!("creditd-move-{move_key}-{step}")
}

/// Ends the grant: `void` when none of its credits were applied, else `expire`.
pub fn end_grant(grant_id: &str, void: bool, move_key: &str) -> StripeRequest {
    let action = if void { "void" } else { "expire" };
    StripeRequest::post(
        format!("/v1/billing/credit_grants/{grant_id}/{action}"),
        Form::new(),
        key(move_key, action),
    )
}

/// The grant that replaces the purchase's current one: the same scope, priority and expiry, for
/// `value`, carrying the move (found again by it after a crash) and the grant it replaces.
pub fn create_replacement(
    purchase: &Purchase,
    value: i64,
    replaces: Option<&str>,
    move_key: &str,
) -> StripeRequest {
    let mut metadata: BTreeMap<String, String> = purchase.metadata.0.clone();
    metadata.insert("creditd_purchase_id".into(), purchase.id.to_string());
    metadata.insert("creditd_move".into(), move_key.to_string());
    if let Some(old) = replaces {
        metadata.insert("creditd_replaces".into(), old.to_string());
    }
    StripeRequest::post(
        "/v1/billing/credit_grants",
        super::grant_form(purchase, value, &metadata),
        key(move_key, "grant"),
    )
}
