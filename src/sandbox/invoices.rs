//! Invoices: create, finalize, pay, void, mark uncollectible, retrieve, list.

use super::amounts::{apply_balance, recompute_draft};
use super::card_payments;
use super::error::ApiError;
use super::invoice_items::attach_item;
use super::invoice_object::blank_invoice;
use super::state::{Ctx, State, Stored, created_matches, find, find_mut, list_page, new_id};
use serde_json::{Value, json};

/// Creates a draft invoice directly in state (used by HTTP create and by test helpers).
pub fn insert_draft(
    st: &mut State,
    customer: &str,
    currency: &str,
    metadata: Value,
    ctx: &Ctx,
) -> Value {
    let now = st.now();
    let mut inv = blank_invoice(&new_id("in_"), customer, currency, now);
    inv["metadata"] = metadata;
    recompute_draft(st, &mut inv);
    let stored = st.stored(inv.clone());
    st.invoices.push(stored);
    st.emit("invoice.created", &inv, ctx);
    inv
}

pub fn create(st: &mut State, ctx: &Ctx, p: &Value) -> Result<Value, ApiError> {
    let customer = p["customer"]
        .as_str()
        .ok_or_else(|| ApiError::missing("customer"))?;
    if !st.has_customer(customer) {
        return Err(ApiError::no_such("customer", customer, "customer"));
    }
    let currency = p["currency"].as_str().unwrap_or("usd");
    let now = st.now();
    let mut inv = blank_invoice(&new_id("in_"), customer, currency, now);
    for key in [
        "auto_advance",
        "collection_method",
        "description",
        "footer",
        "days_until_due",
        "due_date",
    ] {
        if !p[key].is_null() {
            inv[key] = p[key].clone();
        }
    }
    if p["metadata"].is_object() {
        inv["metadata"] = p["metadata"].clone();
    }
    recompute_draft(st, &mut inv);
    let id = inv["id"].as_str().unwrap_or_default().to_string();
    let stored = st.stored(inv);
    st.invoices.push(stored);
    if p["pending_invoice_items_behavior"] == "include" {
        let pending: Vec<String> = st
            .items
            .iter()
            .filter(|i| i.json["customer"] == customer && i.json["invoice"].is_null())
            .map(|i| i.id().to_string())
            .collect();
        for item_id in pending {
            attach_item(st, &item_id, &id);
        }
    }
    let inv = find(&st.invoices, &id).expect("just created").json.clone();
    st.emit("invoice.created", &inv, ctx);
    Ok(inv)
}

fn invoice_mut<'a>(st: &'a mut State, id: &str) -> Result<&'a mut Value, ApiError> {
    find_mut(&mut st.invoices, id)
        .map(|s| &mut s.json)
        .ok_or_else(|| ApiError::not_found("invoice", id))
}

pub fn finalize(st: &mut State, ctx: &Ctx, id: &str, p: &Value) -> Result<Value, ApiError> {
    let now = st.now();
    let mut inv = invoice_mut(st, id)?.clone();
    if inv["status"] != "draft" {
        return Err(ApiError::invalid(
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
        ));
    }
    st.invoice_numbers += 1;
    inv["number"] = json!(format!("FAKE-{:04}", st.invoice_numbers));
    recompute_draft(st, &mut inv);
    let customer = inv["customer"].as_str().unwrap_or_default().to_string();
    let balance = st.balances.get(&customer).copied().unwrap_or(0);
    let left = apply_balance(&mut inv, balance);
    if balance != 0 {
        st.balances.insert(customer, left);
    }
    inv["status"] = json!("open");
    inv["hosted_invoice_url"] = json!(format!("https://invoice.stripe.test/i/{id}"));
    inv["invoice_pdf"] = json!(format!("https://pay.stripe.test/invoice/{id}/pdf"));
    inv["effective_at"] = json!(now);
    inv["status_transitions"]["finalized_at"] = json!(now);
    if let Some(a) = p["auto_advance"].as_bool() {
        inv["auto_advance"] = json!(a);
    }
    let zero = inv["amount_due"].as_i64() == Some(0);
    *invoice_mut(st, id)? = inv.clone();
    st.emit("invoice.finalized", &inv, ctx);
    if zero {
        // Stripe marks a finalized invoice with nothing due (e.g. all covered by the customer's
        // balance) as paid straight away.
        return pay(st, ctx, id, &json!({}));
    }
    Ok(inv)
}

pub fn pay(st: &mut State, ctx: &Ctx, id: &str, p: &Value) -> Result<Value, ApiError> {
    let status = invoice_mut(st, id)?["status"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match status.as_str() {
        "draft" => {
            finalize(st, ctx, id, &json!({}))?;
            if invoice_mut(st, id)?["status"] == "paid" {
                return Ok(invoice_mut(st, id)?.clone());
            }
        }
        "open" | "uncollectible" => {}
        "paid" => {
            return Err(
                ApiError::invalid("Invoice is already paid").code("invoice_unexpected_status")
            );
        }
        _ => {
            return Err(
                ApiError::invalid(format!("This invoice can't be paid: it is {status}."))
                    .code("invoice_not_editable"),
            );
        }
    }
    let oob = p["paid_out_of_band"].as_bool().unwrap_or(false);
    let now = st.now();
    let mut paying = invoice_mut(st, id)?.clone();
    let due = paying["amount_due"].as_i64().unwrap_or(0);
    if !oob && due > 0 {
        card_payments::record_card_payment(st, &mut paying, due);
    }
    let inv = invoice_mut(st, id)?;
    *inv = paying;
    inv["status"] = json!("paid");
    inv["amount_paid"] = json!(due);
    inv["amount_remaining"] = json!(0);
    inv["status_transitions"]["paid_at"] = json!(now);
    if oob {
        inv["amount_paid_off_stripe"] = json!(due);
    } else {
        inv["attempted"] = json!(true);
        inv["attempt_count"] = json!(1);
    }
    let snapshot = inv.clone();
    st.emit("invoice.paid", &snapshot, ctx);
    if !oob {
        st.emit("invoice.payment_succeeded", &snapshot, ctx);
    }
    Ok(snapshot)
}

pub fn void(st: &mut State, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
    let now = st.now();
    let inv = invoice_mut(st, id)?;
    if inv["status"] != "open" && inv["status"] != "uncollectible" {
        return Err(ApiError::invalid(format!(
            "You can only void open or uncollectible invoices; this invoice is {}.",
            inv["status"].as_str().unwrap_or("?")
        ))
        .code("invoice_not_editable"));
    }
    inv["status"] = json!("void");
    inv["amount_remaining"] = json!(0);
    inv["status_transitions"]["voided_at"] = json!(now);
    let snapshot = inv.clone();
    st.emit("invoice.voided", &snapshot, ctx);
    Ok(snapshot)
}

pub fn mark_uncollectible(st: &mut State, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
    let now = st.now();
    let inv = invoice_mut(st, id)?;
    if inv["status"] != "open" {
        return Err(
            ApiError::invalid("You can only mark open invoices as uncollectible.")
                .code("invoice_not_editable"),
        );
    }
    inv["status"] = json!("uncollectible");
    inv["status_transitions"]["marked_uncollectible_at"] = json!(now);
    let snapshot = inv.clone();
    st.emit("invoice.marked_uncollectible", &snapshot, ctx);
    Ok(snapshot)
}

pub fn retrieve(st: &State, id: &str) -> Result<Value, ApiError> {
    find(&st.invoices, id)
        .map(|s| s.json.clone())
        .ok_or_else(|| ApiError::not_found("invoice", id))
}

pub fn list(st: &State, p: &Value) -> Result<Value, ApiError> {
    let items: Vec<&Stored> = st
        .invoices
        .iter()
        .filter(|s| p["customer"].is_null() || s.json["customer"] == p["customer"])
        .filter(|s| p["status"].is_null() || s.json["status"] == p["status"])
        .filter(|s| {
            p["collection_method"].is_null()
                || s.json["collection_method"] == p["collection_method"]
        })
        .filter(|s| created_matches(&p["created"], s.json["created"].as_i64().unwrap_or(0)))
        .collect();
    list_page(items, &st.invoices, p, "/v1/invoices", "invoice")
}
