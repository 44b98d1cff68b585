//! The reads behind automatic top-ups: the customer's saved card, and the balance of a scope.

use crate::purchase::Applicability;
use crate::stripe::StripeRequest;
use crate::stripe::form::Form;

pub fn get_customer(customer: &str) -> StripeRequest {
    StripeRequest::get(format!("/v1/customers/{customer}"), Form::new()).proxied_read()
}

/// The customer's available credits for one scope. A background read: it waits for Stripe
/// capacity behind grants and reversals (the read lane).
pub fn scope_balance(customer: &str, scope: &Applicability) -> StripeRequest {
    let mut form = Form::new()
        .with("customer", customer)
        .with("filter[type]", "applicability_scope");
    match scope {
        Applicability::PriceType { price_type } => {
            form.push("filter[applicability_scope][price_type]", price_type)
        }
        Applicability::Prices { prices } => {
            for (i, price) in prices.iter().enumerate() {
                form.push(
                    format!("filter[applicability_scope][prices][{i}][id]"),
                    price,
                );
            }
        }
    }
    StripeRequest::get("/v1/billing/credit_balance_summary", form).proxied_read()
}
