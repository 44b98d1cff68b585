//! The OpenAPI document: generated from the handlers, checked in, served, and true to the answers.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestApp;

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

fn generated() -> String {
    serde_json::to_string_pretty(&creditd::http::openapi()).unwrap() + "\n"
}

#[test]
fn the_checked_in_openapi_document_is_current() {
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(CHECKED_IN, generated()).unwrap();
    }
    let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        checked_in == generated(),
        "docs/openapi.json is stale; regenerate it with: UPDATE_OPENAPI=1 scripts/test openapi"
    );
}

fn properties(document: &Value, schema: &str) -> BTreeSet<String> {
    document["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_served_document_is_the_generated_one_and_matches_real_answers() {
    let app = TestApp::spawn().await;
    let served: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        served,
        serde_json::to_value(creditd::http::openapi()).unwrap()
    );
    for path in [
        "/v1/purchases",
        "/v1/purchases/{id}",
        "/v1/purchases/{id}/cancel",
        "/webhooks/stripe",
        "/readyz",
    ] {
        assert!(served["paths"][path].is_object(), "{path} is documented");
    }

    let (status, purchase) = app
        .post_purchase(
            &json!({"customer": "cus_1", "amount": 1, "currency": "usd", "invoice_id": "in_1"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let answered: BTreeSet<String> = purchase.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        answered,
        properties(&served, "Purchase"),
        "the Purchase schema lists exactly the fields answered"
    );

    let (_, error) = app.post_purchase(&json!({"amount": 1}), None).await;
    let answered: BTreeSet<String> = error["error"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(answered, properties(&served, "ErrorBody"));
}
