//! `GET /v1/events` (filters, 30-day window, newest first, cursors) and `GET /v1/events/{id}`.

use super::error::ApiError;
use super::state::{DAY, State, Stored, created_matches, list_page};
use serde_json::Value;

const RETENTION: i64 = 30 * DAY;

/// `*` matches any run of characters, e.g. `invoice.*`.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            s.starts_with(head)
                && (0..=s.len() - head.len()).any(|i| glob(tail, &s[head.len() + i..]))
        }
    }
}

pub fn list(st: &State, p: &Value) -> Result<Value, ApiError> {
    if !p["type"].is_null() && !p["types"].is_null() {
        return Err(ApiError::invalid(
            "You may only specify one of these parameters: type, types.",
        )
        .param("types"));
    }
    let types: Vec<&str> = p["types"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if types.len() > 20 {
        return Err(ApiError::invalid("You may pass at most 20 types.").param("types"));
    }
    let cutoff = st.now() - RETENTION;
    let items: Vec<&Stored> = st
        .events
        .iter()
        .filter(|e| e.json["created"].as_i64().unwrap_or(0) >= cutoff)
        .filter(|e| {
            let t = e.json["type"].as_str().unwrap_or_default();
            match p["type"].as_str() {
                Some(pattern) => glob(pattern, t),
                None => types.is_empty() || types.contains(&t),
            }
        })
        .filter(|e| created_matches(&p["created"], e.json["created"].as_i64().unwrap_or(0)))
        .filter(|e| match p["delivery_success"].as_bool() {
            None => true,
            Some(ok) => st.delivered.contains(e.id()) == ok,
        })
        .collect();
    list_page(items, &st.events, p, "/v1/events", "event")
}

pub fn retrieve(st: &State, id: &str) -> Result<Value, ApiError> {
    let cutoff = st.now() - RETENTION;
    st.events
        .iter()
        .find(|e| e.id() == id && e.json["created"].as_i64().unwrap_or(0) >= cutoff)
        .map(|e| e.json.clone())
        .ok_or_else(|| ApiError::not_found("event", id))
}

#[cfg(test)]
mod tests {
    #[test]
    fn glob_matches_wildcards() {
        assert!(super::glob("invoice.*", "invoice.paid"));
        assert!(super::glob("*", "billing.credit_grant.created"));
        assert!(!super::glob("invoice.*", "invoiceitem.created"));
        assert!(super::glob("*.paid", "invoice.paid"));
    }
}
