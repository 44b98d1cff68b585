//! Outbound webhooks (issue 14), end to end: real PostgreSQL, real HTTP to a receiver in the test.

mod admin;
mod crash;
mod delivery;
mod events;
mod replays;
mod reversals;
mod safety;
mod topups;
mod verifier;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp};

/// Registers an endpoint; returns its id and secret.
pub async fn register(app: &TestApp, url: &str, events: Value) -> (String, String) {
    let body = json!({"url": url, "events": events, "description": "test receiver"});
    let (status, endpoint) = app
        .api(
            Method::POST,
            "/admin/webhook_endpoints",
            Some(&body),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    (
        endpoint["id"].as_str().unwrap().to_owned(),
        endpoint["secret"].as_str().unwrap().to_owned(),
    )
}

/// `POST` to an admin route with an optional body.
pub async fn admin_post(app: &TestApp, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    app.api(Method::POST, path, body.as_ref(), Some(ADMIN_TOKEN))
        .await
}

/// The operator's view of a purchase's messages.
pub async fn messages_of(app: &TestApp, purchase_id: &str) -> Vec<Value> {
    let (status, list) = app
        .api(
            Method::GET,
            &format!("/admin/webhook_messages?purchase={purchase_id}&limit=100"),
            None,
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["data"].as_array().unwrap().clone()
}

/// A purchase whose invoice creditd created (so it has a hosted invoice URL); returns its id
/// and its invoice's.
pub async fn funded_purchase(app: &TestApp) -> (String, String) {
    let customer = app.stripe.create_customer();
    let body = json!({"customer": customer, "amount": 2500, "currency": "usd"});
    let (status, purchase) = app.post_purchase(&body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{purchase}");
    assert!(purchase["hosted_invoice_url"].is_string(), "{purchase}");
    let id = purchase["id"].as_str().unwrap().to_owned();
    (id, purchase["invoice_id"].as_str().unwrap().to_owned())
}

/// A funded purchase whose invoice was paid and which is now granted: two transitions with
/// messages, `purchase.invoice_ready` and `purchase.granted`.
pub async fn granted_purchase(app: &TestApp) -> String {
    let (id, invoice_id) = funded_purchase(app).await;
    app.stripe.pay_invoice(&invoice_id);
    app.wait_for_status(&id, "granted").await;
    id
}

/// Rows in a table, for "nothing changed" and "no second message" checks.
pub async fn count(app: &TestApp, table: &str) -> i64 {
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&app.db)
        .await
        .unwrap();
    n
}
