//! The reads behind `/v1/customers/{customer}/credit_*`: proxied for the API's callers, so they
//! take the read lane and never delay grants.

use crate::stripe::StripeRequest;
use crate::stripe::form::Form;

/// Which of the customer's credits a balance summary covers.
#[derive(Debug, Clone, Copy)]
pub enum BalanceFilter<'a> {
    /// One grant.
    Grant(&'a str),
    /// Credits that apply to one price.
    Price(&'a str),
    /// Credits that apply to every metered price.
    Metered,
}

pub fn balance_summary(customer: &str, filter: BalanceFilter<'_>) -> StripeRequest {
    let mut form = Form::new().with("customer", customer);
    match filter {
        BalanceFilter::Grant(grant) => {
            form.push("filter[type]", "credit_grant");
            form.push("filter[credit_grant]", grant);
        }
        BalanceFilter::Price(price) => {
            form.push("filter[type]", "applicability_scope");
            form.push("filter[applicability_scope][prices][0][id]", price);
        }
        BalanceFilter::Metered => {
            form.push("filter[type]", "applicability_scope");
            form.push("filter[applicability_scope][price_type]", "metered");
        }
    }
    StripeRequest::get("/v1/billing/credit_balance_summary", form).proxied_read()
}

/// One page of the customer's balance transactions, optionally of one grant.
pub fn balance_transactions(
    customer: &str,
    limit: i64,
    credit_grant: Option<&str>,
    starting_after: Option<&str>,
) -> StripeRequest {
    let mut form = Form::new().with("customer", customer).with("limit", limit);
    form.push_opt("credit_grant", credit_grant);
    form.push_opt("starting_after", starting_after);
    StripeRequest::get("/v1/billing/credit_balance_transactions", form).proxied_read()
}
