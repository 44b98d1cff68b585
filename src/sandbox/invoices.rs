//! Invoices and invoice items: create, add items, finalize, pay, void, mark uncollectible, retrieve, list.

use super::amounts::{apply_balance, recompute_draft};
use super::error::ApiError;
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

fn attach_item(st: &mut State, item_id: &str, invoice_id: &str) {
    let item = find_mut(&mut st.items, item_id).expect("item");
    item.json["invoice"] = json!(invoice_id);
    let item = item.json.clone();
    let amount = item["amount"].as_i64().unwrap_or(0);
    let line = json!({
        "id": new_id("il_"), "object": "line_item", "amount": amount, "currency": item["currency"],
        "description": item["description"], "discount_amounts": [], "discountable": true, "discounts": [],
        "invoice": invoice_id, "livemode": false, "metadata": item["metadata"],
        "parent": { "type": "invoice_item_details", "subscription_item_details": null,
            "invoice_item_details": { "invoice_item": item["id"], "proration": false,
                "proration_details": { "credited_items": null }, "subscription": null } },
        "period": item["period"], "pretax_credit_amounts": [],
        "pricing": { "type": "price_details", "price_details": null, "unit_amount_decimal": item["pricing"]["unit_amount_decimal"] },
        "quantity": item["quantity"], "subtotal": amount, "taxes": [],
    });
    let mut inv = find(&st.invoices, invoice_id)
        .expect("invoice")
        .json
        .clone();
    inv["lines"]["data"]
        .as_array_mut()
        .expect("lines")
        .push(line);
    let n = inv["lines"]["data"].as_array().map_or(0, Vec::len);
    inv["lines"]["total_count"] = json!(n);
    recompute_draft(st, &mut inv);
    find_mut(&mut st.invoices, invoice_id)
        .expect("invoice")
        .json = inv;
}

/// Adds an invoice item (attached to `invoice` when given, otherwise pending for the customer).
pub fn create_item(st: &mut State, ctx: &Ctx, p: &Value) -> Result<Value, ApiError> {
    let invoice = match p["invoice"].as_str() {
        Some(id) => {
            let inv = find(&st.invoices, id)
                .ok_or_else(|| ApiError::no_such("invoice", id, "invoice"))?;
            if inv.json["status"] != "draft" {
                return Err(ApiError::invalid(format!(
                    "You can only add invoice items to draft invoices; invoice {id} is {}.",
                    inv.json["status"].as_str().unwrap_or("?")
                ))
                .param("invoice"));
            }
            Some(inv.json.clone())
        }
        None => None,
    };
    let customer = match (p["customer"].as_str(), &invoice) {
        (Some(c), _) => c.to_string(),
        (None, Some(inv)) => inv["customer"].as_str().unwrap_or_default().to_string(),
        (None, None) => return Err(ApiError::missing("customer")),
    };
    if !st.has_customer(&customer) {
        return Err(ApiError::no_such("customer", &customer, "customer"));
    }
    if let Some(inv) = &invoice {
        if inv["customer"] != customer.as_str() {
            return Err(
                ApiError::invalid("The invoice belongs to a different customer.").param("customer"),
            );
        }
    }
    let quantity = p["quantity"].as_i64().unwrap_or(1);
    let (amount, unit) = match (p["amount"].as_i64(), p["unit_amount_decimal"].as_str()) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: amount, unit_amount_decimal.",
            ));
        }
        (Some(a), None) => (a, a.to_string()),
        (None, Some(u)) => {
            let unit: f64 = u.parse().unwrap_or(0.0);
            ((unit * quantity as f64).round() as i64, u.to_string())
        }
        (None, None) => return Err(ApiError::missing("amount")),
    };
    let inv_currency = invoice
        .as_ref()
        .and_then(|i| i["currency"].as_str())
        .map(str::to_string);
    let currency = p["currency"]
        .as_str()
        .map(str::to_string)
        .or(inv_currency.clone())
        .unwrap_or("usd".into());
    if inv_currency.is_some_and(|c| c != currency) {
        return Err(ApiError::invalid(
            "The currency of the invoice item must match the invoice's currency.",
        )
        .param("currency"));
    }
    let now = st.now();
    let item = json!({
        "id": new_id("ii_"), "object": "invoiceitem", "amount": amount, "currency": currency,
        "customer": customer, "customer_account": null, "date": now, "description": p["description"],
        "discountable": true, "discounts": [], "invoice": null, "livemode": false,
        "metadata": if p["metadata"].is_object() { p["metadata"].clone() } else { json!({}) },
        "net_amount": amount, "parent": null, "period": { "end": now, "start": now },
        "pricing": { "type": null, "price_details": null, "unit_amount_decimal": unit },
        "proration": false, "quantity": quantity, "tax_rates": [], "test_clock": null,
    });
    let id = item["id"].as_str().unwrap_or_default().to_string();
    let stored = st.stored(item);
    st.items.push(stored);
    if let Some(inv) = &invoice {
        attach_item(st, &id, inv["id"].as_str().unwrap_or_default());
    }
    let item = find(&st.items, &id).expect("item").json.clone();
    st.emit("invoiceitem.created", &item, ctx);
    Ok(item)
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
    let inv = invoice_mut(st, id)?;
    let due = inv["amount_due"].as_i64().unwrap_or(0);
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

pub fn retrieve_item(st: &State, id: &str) -> Result<Value, ApiError> {
    find(&st.items, id)
        .map(|s| s.json.clone())
        .ok_or_else(|| ApiError::not_found("invoiceitem", id))
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
