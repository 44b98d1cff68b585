//! Billing credits: credit grants (create, list, retrieve, update, void, expire).

use super::error::ApiError;
use super::state::{Ctx, State, Stored, find, find_mut, list_page, new_id};
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn check_customer(st: &State, p: &Value) -> Result<String, ApiError> {
    if p["customer_account"].is_string() {
        let acct = p["customer_account"].as_str().unwrap_or_default();
        return Err(ApiError::no_such("account", acct, "customer_account"));
    }
    let customer = p["customer"]
        .as_str()
        .ok_or_else(|| ApiError::missing("customer"))?;
    if !st.has_customer(customer) {
        return Err(ApiError::no_such("customer", customer, "customer"));
    }
    Ok(customer.to_string())
}

pub fn create_grant(st: &mut State, ctx: &Ctx, p: &Value) -> Result<Value, ApiError> {
    let customer = check_customer(st, p)?;
    let amount = &p["amount"];
    let monetary = amount
        .get("monetary")
        .ok_or_else(|| ApiError::missing("amount[monetary]"))?;
    let value = monetary["value"].as_i64().unwrap_or(0);
    if value <= 0 {
        return Err(
            ApiError::invalid("The credit grant amount must be greater than 0.")
                .param("amount[monetary][value]"),
        );
    }
    let scope = &p["applicability_config"]["scope"];
    let out_scope = match (scope.get("price_type"), scope.get("prices")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: price_type, prices.",
            )
            .param("applicability_config[scope]"));
        }
        (Some(pt), None) => json!({ "price_type": pt }),
        (None, Some(prices)) if prices.as_array().is_some_and(|a| !a.is_empty()) => {
            json!({ "prices": prices })
        }
        _ => return Err(ApiError::missing("applicability_config[scope][price_type]")),
    };
    let priority = p["priority"].as_i64().unwrap_or(50);
    if !(0..=100).contains(&priority) {
        return Err(ApiError::invalid("Priority must be between 0 and 100.").param("priority"));
    }
    let now = st.now();
    let effective_at = p["effective_at"].as_i64().unwrap_or(now);
    if let Some(exp) = p["expires_at"].as_i64() {
        if exp <= effective_at {
            return Err(
                ApiError::invalid("expires_at must be after effective_at.").param("expires_at")
            );
        }
    }
    let grant = json!({
        "id": new_id("credgr_test_"),
        "object": "billing.credit_grant",
        "amount": { "type": "monetary", "monetary": { "currency": monetary["currency"], "value": value } },
        "applicability_config": { "scope": out_scope },
        "category": p["category"].as_str().unwrap_or("paid"),
        "created": now,
        "customer": customer,
        "customer_account": null,
        "effective_at": effective_at,
        "expires_at": p["expires_at"],
        "livemode": false,
        "metadata": if p["metadata"].is_object() { p["metadata"].clone() } else { json!({}) },
        "name": p["name"],
        "priority": priority,
        "test_clock": null,
        "updated": now,
        "voided_at": null,
    });
    let txn = json!({
        "id": new_id("cbtxn_test_"),
        "object": "billing.credit_balance_transaction",
        "created": now,
        "credit": { "amount": grant["amount"], "credits_application_invoice_voided": null, "type": "credits_granted" },
        "credit_grant": grant["id"],
        "debit": null,
        "effective_at": effective_at,
        "livemode": false,
        "test_clock": null,
        "type": "credit",
    });
    let stored = st.stored(grant.clone());
    st.grants.push(stored);
    if st.grant_list_lag > 0 {
        let id = grant["id"].as_str().unwrap_or_default().to_string();
        st.hidden_grants.insert(id, st.grant_list_lag);
    }
    let stored = st.stored(txn);
    st.txns.push(stored);
    st.emit("billing.credit_grant.created", &grant, ctx);
    Ok(grant)
}

pub fn retrieve_grant(st: &State, id: &str) -> Result<Value, ApiError> {
    find(&st.grants, id)
        .map(|s| s.json.clone())
        .ok_or_else(|| ApiError::not_found("credit grant", id))
}

pub fn list_grants(st: &mut State, p: &Value) -> Result<Value, ApiError> {
    let State {
        grants,
        hidden_grants,
        ..
    } = st;
    let items: Vec<&Stored> = grants
        .iter()
        .filter(|s| p["customer"].is_null() || s.json["customer"] == p["customer"])
        .filter(|s| !still_hidden(hidden_grants, s.id()))
        .collect();
    list_page(
        items,
        grants,
        p,
        "/v1/billing/credit_grants",
        "credit grant",
    )
}

/// A lagging grant uses up one of its hidden looks each time a list would have shown it.
fn still_hidden(hidden: &mut HashMap<String, u32>, id: &str) -> bool {
    match hidden.get_mut(id) {
        Some(looks) if *looks > 0 => {
            *looks -= 1;
            true
        }
        _ => false,
    }
}

/// Shared body of update / void / expire: applies `change` to the grant and emits `*.updated`.
fn change_grant(
    st: &mut State,
    ctx: &Ctx,
    id: &str,
    change: impl FnOnce(&mut Value, i64) -> Result<(), ApiError>,
) -> Result<Value, ApiError> {
    let now = st.now();
    let grant = &mut find_mut(&mut st.grants, id)
        .ok_or_else(|| ApiError::not_found("credit grant", id))?
        .json;
    change(grant, now)?;
    grant["updated"] = json!(now);
    let snapshot = grant.clone();
    st.emit("billing.credit_grant.updated", &snapshot, ctx);
    Ok(snapshot)
}

pub fn update_grant(st: &mut State, ctx: &Ctx, id: &str, p: &Value) -> Result<Value, ApiError> {
    change_grant(st, ctx, id, |g, _| {
        match &p["expires_at"] {
            Value::Null => {}
            Value::String(_) => g["expires_at"] = Value::Null,
            v => g["expires_at"] = v.clone(),
        }
        if let Some(md) = p["metadata"].as_object() {
            let target = g["metadata"].as_object_mut().expect("metadata map");
            for (k, v) in md {
                if v == "" {
                    target.remove(k);
                } else {
                    target.insert(k.clone(), v.clone());
                }
            }
        }
        Ok(())
    })
}

pub fn void_grant(st: &mut State, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
    let applied = st
        .txns
        .iter()
        .any(|t| t.json["type"] == "debit" && t.json["credit_grant"] == id);
    if applied {
        return Err(ApiError::invalid(
            "This credit grant cannot be voided because some of its credits have been applied.",
        ));
    }
    change_grant(st, ctx, id, |g, now| {
        if !g["voided_at"].is_null() {
            return Err(ApiError::invalid(
                "This credit grant has already been voided.",
            ));
        }
        g["voided_at"] = json!(now);
        Ok(())
    })
}

pub fn expire_grant(st: &mut State, ctx: &Ctx, id: &str) -> Result<Value, ApiError> {
    change_grant(st, ctx, id, |g, now| {
        if !g["voided_at"].is_null() {
            return Err(ApiError::invalid(
                "A voided credit grant cannot be expired.",
            ));
        }
        if g["expires_at"].as_i64().is_some_and(|e| e <= now) {
            return Err(ApiError::invalid("This credit grant has already expired."));
        }
        g["expires_at"] = json!(now);
        Ok(())
    })
}
