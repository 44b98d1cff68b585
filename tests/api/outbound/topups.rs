//! Automatic top-ups tell the merchant: `topup.succeeded`, `topup.failed` and `topup.paused`,
//! each with the purchase and the customer's rule.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::register;
use crate::harness::receiver::Receiver;
use crate::harness::{API_TOKEN, TestApp};
use creditd::sandbox::CardBehaviour;

async fn settle(app: &TestApp) {
    for _ in 0..4 {
        app.stripe.wait_for_deliveries().await;
        app.drain().await;
    }
}

#[tokio::test]
async fn top_ups_are_told_when_they_succeed_fail_and_pause_the_rule() {
    let app = TestApp::spawn_without_workers().await;
    let receiver = Receiver::start().await;
    let topup_events = json!(["topup.succeeded", "topup.failed", "topup.paused"]);
    let (_, secret) = register(&app, &receiver.url, topup_events).await;
    let customer = app.stripe.create_customer();
    app.stripe.attach_card(&customer, CardBehaviour::Succeeds);
    let invoice = app.stripe.create_open_invoice(&customer, 3000, "usd", &[]);
    let body = json!({"customer": customer, "amount": 3000, "currency": "usd", "invoice_id": invoice["id"]});
    let (status, _) = app.post_purchase(&body, None).await;
    assert_eq!(status, StatusCode::CREATED);
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    settle(&app).await;
    let rule = json!({"threshold": 2000, "amount": 4000, "currency": "usd", "pause_after_failures": 1,
                      "max_topups_per_month": 10, "max_amount_per_month": 100_000});
    let path = format!("/v1/customers/{customer}/auto_topup");
    let (status, shown) = app
        .api(Method::PUT, &path, Some(&rule), Some(API_TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK, "{shown}");

    app.stripe.use_credits(&customer, 2000, "usd").unwrap();
    settle(&app).await;
    let succeeded = receiver.wait_for_type("topup.succeeded").await;
    assert!(succeeded.signed_with(&secret));
    let sent = succeeded.json();
    assert_eq!(sent["data"]["purchase"]["status"], "granted", "{sent}");
    assert_eq!(
        sent["data"]["auto_topup"]["customer"],
        customer.as_str(),
        "{sent}"
    );

    app.stripe.attach_card(&customer, CardBehaviour::Declines);
    app.stripe.use_credits(&customer, 4500, "usd").unwrap();
    settle(&app).await;
    let failed = receiver.wait_for_type("topup.failed").await;
    assert_eq!(failed.json()["data"]["purchase"]["status"], "failed");
    let paused = receiver.wait_for_type("topup.paused").await;
    let sent = paused.json();
    assert_eq!(sent["data"]["auto_topup"]["state"], "paused", "{sent}");
    assert!(
        sent["data"]["auto_topup"]["paused_reason"].is_string(),
        "{sent}"
    );
    let kinds: Vec<String> = receiver
        .deliveries()
        .iter()
        .map(|d| d.event_type().to_string())
        .collect();
    assert_eq!(
        kinds.len(),
        3,
        "one of each, nothing else subscribed: {kinds:?}"
    );
}
