//! Customers: `POST /v1/customers` and `GET /v1/customers/{id}`. The object is composed when read,
//! so that `balance` and `discount` show what the sandbox's controls set and invoices consumed.

use super::error::ApiError;
use super::state::{Ctx, State, new_id};
use serde_json::{Value, json};

/// Registers a customer with the fields a create accepts; returns its id.
pub fn insert(st: &mut State, p: &Value) -> String {
    let id = new_id("cus_");
    let now = st.now();
    let customer = json!({
        "id": id, "object": "customer", "address": null, "created": now, "currency": null,
        "default_source": null, "delinquent": false, "description": p["description"],
        "email": p["email"], "invoice_prefix": id[4..12].to_uppercase(),
        "invoice_settings": { "custom_fields": null, "default_payment_method": null,
            "footer": null, "rendering_options": null },
        "livemode": false,
        "metadata": if p["metadata"].is_object() { p["metadata"].clone() } else { json!({}) },
        "name": p["name"], "next_invoice_sequence": 1, "phone": p["phone"],
        "preferred_locales": [], "shipping": null, "tax_exempt": "none", "test_clock": null,
    });
    st.customers.push(id.clone());
    st.customer_objects.insert(id.clone(), customer);
    if let Some(balance) = p["balance"].as_i64() {
        st.balances.insert(id.clone(), balance);
    }
    id
}

pub fn create(st: &mut State, ctx: &Ctx, p: &Value) -> Result<Value, ApiError> {
    let id = insert(st, p);
    let customer = retrieve(st, &id)?;
    st.emit("customer.created", &customer, ctx);
    Ok(customer)
}

pub fn retrieve(st: &State, id: &str) -> Result<Value, ApiError> {
    let mut customer = st
        .customer_objects
        .get(id)
        .cloned()
        .ok_or_else(|| ApiError::not_found("customer", id))?;
    customer["balance"] = json!(st.balances.get(id).copied().unwrap_or(0));
    customer["discount"] = st.discounts.get(id).cloned().unwrap_or(Value::Null);
    Ok(customer)
}
