//! Invoice items: create (pending, or on a draft invoice as a line), attach, retrieve.

use super::amounts::recompute_draft;
use super::error::ApiError;
use super::state::{Ctx, State, find, find_mut, new_id};
use serde_json::{Value, json};

pub fn attach_item(st: &mut State, item_id: &str, invoice_id: &str) {
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
pub fn create(st: &mut State, ctx: &Ctx, p: &Value) -> Result<Value, ApiError> {
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

pub fn retrieve(st: &State, id: &str) -> Result<Value, ApiError> {
    find(&st.items, id)
        .map(|s| s.json.clone())
        .ok_or_else(|| ApiError::not_found("invoiceitem", id))
}
