//! The credit balance summary and credit balance transactions (list, retrieve).

use super::credits::check_customer;
use super::error::ApiError;
use super::state::{State, Stored, find, list_page};
use super::usage::{available, is_live};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

fn grant_matches_filter(g: &Value, filter: &Value) -> bool {
    let scope = &g["applicability_config"]["scope"];
    match filter["type"].as_str() {
        Some("credit_grant") => g["id"] == filter["credit_grant"],
        _ => {
            let wanted = &filter["applicability_scope"];
            if scope["price_type"] == "metered" {
                return true; // applies to every metered price
            }
            let ids = |v: &Value| -> Vec<String> {
                v.as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|p| p["id"].as_str().map(str::to_string))
                    .collect()
            };
            let (have, want) = (ids(&scope["prices"]), ids(&wanted["prices"]));
            have.iter().any(|h| want.contains(h))
        }
    }
}

pub fn balance_summary(st: &State, p: &Value) -> Result<Value, ApiError> {
    let customer = check_customer(st, p)?;
    let filter = &p["filter"];
    match filter["type"].as_str() {
        Some("credit_grant") if !filter["credit_grant"].is_string() => {
            return Err(ApiError::missing("filter[credit_grant]"));
        }
        Some("applicability_scope") if !filter["applicability_scope"].is_object() => {
            return Err(ApiError::missing("filter[applicability_scope]"));
        }
        _ => {}
    }
    let now = st.now();
    let mut sums: BTreeMap<String, i64> = BTreeMap::new();
    for g in st.grants.iter().map(|s| &s.json) {
        if g["customer"] == customer.as_str() && is_live(g, now) && grant_matches_filter(g, filter)
        {
            let m = &g["amount"]["monetary"];
            *sums
                .entry(m["currency"].as_str().unwrap_or_default().to_string())
                .or_default() += available(st, g);
        }
    }
    let balances: Vec<Value> = sums
        .into_iter()
        .map(|(currency, value)| {
            let amount =
                json!({ "type": "monetary", "monetary": { "currency": currency, "value": value } });
            json!({ "available_balance": amount, "ledger_balance": amount })
        })
        .collect();
    Ok(json!({
        "object": "billing.credit_balance_summary",
        "balances": balances,
        "customer": customer,
        "customer_account": null,
        "livemode": false,
    }))
}

pub fn list_transactions(st: &State, p: &Value) -> Result<Value, ApiError> {
    if p["customer"].is_null() && p["credit_grant"].is_null() {
        return Err(ApiError::missing("customer"));
    }
    if p["customer"].is_string() {
        check_customer(st, p)?;
    }
    let grant_customer: Map<String, Value> = st
        .grants
        .iter()
        .map(|g| (g.id().to_string(), g.json["customer"].clone()))
        .collect();
    let items: Vec<&Stored> = st
        .txns
        .iter()
        .filter(|t| p["credit_grant"].is_null() || t.json["credit_grant"] == p["credit_grant"])
        .filter(|t| {
            p["customer"].is_null()
                || t.json["credit_grant"]
                    .as_str()
                    .and_then(|g| grant_customer.get(g))
                    == Some(&p["customer"])
        })
        .collect();
    list_page(
        items,
        &st.txns,
        p,
        "/v1/billing/credit_balance_transactions",
        "credit balance transaction",
    )
}

pub fn retrieve_transaction(st: &State, id: &str) -> Result<Value, ApiError> {
    find(&st.txns, id)
        .map(|s| s.json.clone())
        .ok_or_else(|| ApiError::not_found("credit balance transaction", id))
}
