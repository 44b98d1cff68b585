//! Using credits as Stripe does: credits apply only when a metered subscription invoice finalizes.
//! `use_credits` makes such an invoice for the usage, debits the customer's live grants in Stripe's
//! order (`credits_applied` transactions), and finalizes it; whatever credits did not cover is due.

use super::error::ApiError;
use super::state::{State, find, new_id};
use super::{AUTOMATIC, FakeStripe, invoice_items, invoices};
use serde_json::{Value, json};
use std::cmp::Reverse;

/// What is left of one grant: its amount less the credits already applied from it.
pub fn available(st: &State, grant: &Value) -> i64 {
    let applied: i64 = st
        .txns
        .iter()
        .filter(|t| t.json["type"] == "debit" && t.json["credit_grant"] == grant["id"])
        .map(|t| {
            t.json["debit"]["amount"]["monetary"]["value"]
                .as_i64()
                .unwrap_or(0)
        })
        .sum();
    grant["amount"]["monetary"]["value"].as_i64().unwrap_or(0) - applied
}

/// A grant that can apply now: not voided, effective, not expired.
pub fn is_live(grant: &Value, now: i64) -> bool {
    grant["voided_at"].is_null()
        && grant["expires_at"].as_i64().is_none_or(|e| e > now)
        && grant["effective_at"].as_i64().is_none_or(|e| e <= now)
}

/// The customer's live grants in `currency` in the order Stripe applies them: priority, then
/// earliest expiry, then promotional before paid, then `effective_at`, then `created`.
fn in_application_order(st: &State, customer: &str, currency: &str) -> Vec<Value> {
    let now = st.now();
    let mut grants: Vec<Value> = st
        .grants
        .iter()
        .map(|g| g.json.clone())
        .filter(|g| g["customer"] == customer && is_live(g, now))
        .filter(|g| g["amount"]["monetary"]["currency"] == currency)
        .filter(|g| g["applicability_config"]["scope"]["price_type"] == "metered")
        .collect();
    grants.sort_by_key(|g| {
        (
            g["priority"].as_i64().unwrap_or(50),
            g["expires_at"].as_i64().unwrap_or(i64::MAX),
            Reverse(g["category"] == "promotional"),
            g["effective_at"].as_i64().unwrap_or(0),
            g["created"].as_i64().unwrap_or(0),
        )
    });
    grants
}

fn debit(st: &mut State, grant: &Value, value: i64, invoice: &str, line: &Value) -> Value {
    let now = st.now();
    let currency = &grant["amount"]["monetary"]["currency"];
    let txn = json!({
        "id": new_id("cbtxn_test_"),
        "object": "billing.credit_balance_transaction",
        "created": now,
        "credit": null,
        "credit_grant": grant["id"],
        "debit": {
            "amount": { "type": "monetary", "monetary": { "currency": currency, "value": value } },
            "credits_applied": { "invoice": invoice, "invoice_line_item": line },
            "type": "credits_applied",
        },
        "effective_at": now,
        "livemode": false,
        "test_clock": null,
        "type": "debit",
    });
    let stored = st.stored(txn.clone());
    st.txns.push(stored);
    // Sent since API 2025-03-31; creditd can watch a customer's balance fall through it.
    st.emit(
        "billing.credit_balance_transaction.created",
        &txn,
        &AUTOMATIC,
    );
    txn
}

fn use_credits(
    st: &mut State,
    customer: &str,
    amount: i64,
    currency: &str,
) -> Result<Value, ApiError> {
    if !st.has_customer(customer) {
        return Err(ApiError::not_found("customer", customer));
    }
    if amount <= 0 {
        return Err(ApiError::invalid("amount must be greater than 0").param("amount"));
    }
    let draft = invoices::insert_draft(st, customer, currency, json!({}), &AUTOMATIC);
    let id = draft["id"].as_str().unwrap_or_default().to_string();
    let item = json!({ "invoice": id, "amount": amount, "currency": currency,
        "description": "Metered usage (sandbox)" });
    invoice_items::create(st, &AUTOMATIC, &item)?;
    let line = find(&st.invoices, &id).expect("draft").json["lines"]["data"][0]["id"].clone();
    let mut credited = Vec::new();
    let mut left = amount;
    for grant in in_application_order(st, customer, currency) {
        let take = available(st, &grant).min(left);
        if take > 0 {
            let txn = debit(st, &grant, take, &id, &line);
            credited.push(
                json!({ "amount": take, "credit_balance_transaction": txn["id"],
                "discount": null, "margin": null, "type": "credit_balance_transaction" }),
            );
            left -= take;
        }
    }
    let inv = &mut super::state::find_mut(&mut st.invoices, &id)
        .expect("draft")
        .json;
    inv["billing_reason"] = json!("subscription_cycle");
    inv["total_pretax_credit_amounts"] = json!(credited);
    inv["auto_advance"] = json!(true);
    invoices::finalize(st, &AUTOMATIC, &id, &json!({}))
}

impl FakeStripe {
    /// Bills `amount` of metered usage to the customer: a subscription-cycle invoice whose credits
    /// come from the customer's grants (debit transactions), finalized; returns the invoice (paid
    /// when credits covered it all, open for the rest otherwise).
    pub fn use_credits(
        &self,
        customer: &str,
        amount: i64,
        currency: &str,
    ) -> Result<Value, ApiError> {
        let inv = use_credits(&mut self.lock(), customer, amount, currency);
        self.flush_outbox();
        inv
    }
}
