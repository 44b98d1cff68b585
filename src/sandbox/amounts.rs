//! Invoice amounts as Stripe computes them: the line subtotal, a customer-level percent-off coupon,
//! and the customer's balance applied at finalization (`starting_balance`, `ending_balance`).

use super::FakeStripe;
use super::state::{State, new_id};
use serde_json::{Value, json};

/// Recomputes a draft's subtotal, discounts, total and amount due from its lines, applying the
/// customer's current discount (Stripe applies a customer's coupon to its one-off invoices too).
pub fn recompute_draft(st: &State, inv: &mut Value) {
    let customer = inv["customer"].as_str().unwrap_or_default();
    let discount = st.discounts.get(customer);
    let percent = discount.map_or(0.0, |d| d["coupon"]["percent_off"].as_f64().unwrap_or(0.0));
    let (mut subtotal, mut off) = (0, 0);
    for line in inv["lines"]["data"].as_array_mut().into_iter().flatten() {
        let amount = line["amount"].as_i64().unwrap_or(0);
        // Stripe rounds each line's discount to the minor unit, then sums the lines.
        let line_off = (amount as f64 * percent / 100.0).round() as i64;
        line["discount_amounts"] = match discount {
            Some(d) => json!([{ "amount": line_off, "discount": d["id"] }]),
            None => json!([]),
        };
        line["discounts"] = json!(discount.map(|d| vec![d["id"].clone()]).unwrap_or_default());
        subtotal += amount;
        off += line_off;
    }
    // Credits from grants (see usage.rs) come off before tax, like discounts.
    let credits: i64 = inv["total_pretax_credit_amounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["amount"].as_i64())
        .sum();
    let total = (subtotal - off - credits).max(0);
    inv["discounts"] = json!(discount.map(|d| vec![d["id"].clone()]).unwrap_or_default());
    inv["total_discount_amounts"] = match discount {
        Some(d) => json!([{ "amount": off, "discount": d["id"] }]),
        None => json!([]),
    };
    for (key, value) in [
        ("subtotal", subtotal),
        ("subtotal_excluding_tax", subtotal),
        ("total", total),
        ("total_excluding_tax", total),
        ("amount_due", total),
        ("amount_remaining", total),
    ] {
        inv[key] = json!(value);
    }
}

/// Applies the customer's balance to an invoice being finalized and returns the balance left:
/// `amount_due = max(total + starting_balance, 0)`, and `ending_balance` is what was not consumed.
pub fn apply_balance(inv: &mut Value, balance: i64) -> i64 {
    let total = inv["total"].as_i64().unwrap_or(0);
    let due = (total + balance).max(0);
    let ending = balance + total - due;
    inv["starting_balance"] = json!(balance);
    inv["ending_balance"] = json!(ending);
    inv["amount_due"] = json!(due);
    inv["amount_remaining"] = json!(due);
    ending
}

impl FakeStripe {
    /// Sets the customer's `balance` in minor units (negative = credit, as Stripe's `customer.balance`);
    /// the next invoice finalized for the customer consumes it.
    pub fn set_customer_balance(&self, customer: &str, amount: i64) {
        let mut st = self.lock();
        assert!(
            st.has_customer(customer),
            "fake stripe: unknown customer {customer}"
        );
        st.balances.insert(customer.to_string(), amount);
    }

    /// The customer's current balance (0 when never set).
    pub fn customer_balance(&self, customer: &str) -> i64 {
        self.lock().balances.get(customer).copied().unwrap_or(0)
    }

    /// Gives the customer a percent-off coupon that applies to its draft invoices as their items
    /// are added and when they are finalized (a customer-level coupon applies to one-off invoices
    /// too). Replaces any earlier one; returns the discount id (`di_...`).
    pub fn set_customer_discount(&self, customer: &str, percent_off: f64) -> String {
        assert!(
            (0.0..=100.0).contains(&percent_off),
            "percent_off must be 0..=100"
        );
        let mut st = self.lock();
        assert!(
            st.has_customer(customer),
            "fake stripe: unknown customer {customer}"
        );
        let id = new_id("di_");
        let discount = json!({
            "id": id, "object": "discount", "customer": customer, "start": st.now(), "end": null,
            "coupon": { "id": new_id("co_"), "object": "coupon", "percent_off": percent_off,
                "amount_off": null, "currency": null, "duration": "forever", "valid": true },
        });
        st.discounts.insert(customer.to_string(), discount);
        id
    }

    /// Removes the customer's discount; drafts lose it when next recomputed.
    pub fn remove_customer_discount(&self, customer: &str) {
        self.lock().discounts.remove(customer);
    }
}
