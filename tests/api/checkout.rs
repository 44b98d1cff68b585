//! Buying credits on a hosted page: creditd creates one Checkout Session per purchase (also across
//! a crash), the invoice Stripe creates when the customer pays fulfils it, and an expired session
//! cancels it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::process::CreditdProcess;
use crate::harness::{
    API_TOKEN, TestApp, WEBHOOK_SECRET, fresh_database, wait_for_purchase_status,
};
use creditd::sandbox::FakeStripe;

fn checkout_body(customer: &str, amount: i64, save: bool) -> Value {
    json!({"customer": customer, "amount": amount, "currency": "usd",
           "funding": {"method": "checkout", "success_url": "https://shop.example/thanks",
                       "cancel_url": "https://shop.example/cart", "save_payment_method": save}})
}

#[tokio::test]
async fn a_checkout_purchase_gets_one_session_with_the_right_parameters_and_one_grant_when_paid() {
    let app = TestApp::spawn_without_workers().await;
    let customer = app.stripe.create_customer();
    let (status, purchase) = app
        .post_purchase(&checkout_body(&customer, 5000, true), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{purchase}");
    assert_eq!(purchase["status"], "awaiting_payment", "{purchase}");
    let session_id = purchase["checkout_session_id"].as_str().unwrap();
    assert!(purchase["checkout_url"].is_string(), "{purchase}");

    let created = app.stripe.requests_to("POST", "/v1/checkout/sessions");
    assert_eq!(created.len(), 1);
    let params = &created[0].params;
    assert_eq!(params["mode"], "payment");
    assert_eq!(params["customer"], customer.as_str());
    assert_eq!(params["line_items"][0]["price_data"]["unit_amount"], "5000");
    assert_eq!(params["line_items"][0]["quantity"], "1");
    assert_eq!(params["invoice_creation"]["enabled"], "true");
    let id = purchase["id"].as_str().unwrap();
    assert_eq!(
        params["invoice_creation"]["invoice_data"]["metadata"]["creditd_purchase_id"],
        id
    );
    assert_eq!(
        params["payment_intent_data"]["setup_future_usage"],
        "off_session"
    );
    assert_eq!(
        created[0].idempotency_key.as_deref(),
        Some(format!("creditd-checkout-{id}").as_str())
    );

    app.stripe.complete_checkout(session_id).unwrap();
    app.stripe.wait_for_deliveries().await;
    app.drain().await;
    let shown = app.get_purchase(id).await;
    assert_eq!(shown["status"], "granted", "{shown}");
    assert!(
        shown["invoice_id"].is_string(),
        "the invoice Stripe created: {shown}"
    );
    let grants = app.stripe.grants_for(&customer);
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["amount"]["monetary"]["value"], 5000);
    assert!(
        app.stripe.default_card(&customer).is_some(),
        "the card was saved for top-ups"
    );
}

#[tokio::test]
async fn an_expired_session_cancels_its_purchase() {
    let app = TestApp::spawn_without_workers().await;
    let customer = app.stripe.create_customer();
    let (_, purchase) = app
        .post_purchase(&checkout_body(&customer, 2000, false), None)
        .await;
    let id = purchase["id"].as_str().unwrap();
    app.stripe
        .expire_checkout(purchase["checkout_session_id"].as_str().unwrap())
        .unwrap();
    app.stripe.wait_for_deliveries().await;
    let shown = app.get_purchase(id).await;
    assert_eq!(shown["status"], "canceled", "{shown}");
    assert!(app.stripe.grants().is_empty());
    let created = app.stripe.requests_to("POST", "/v1/checkout/sessions");
    assert!(created[0].params.get("payment_intent_data").is_none());
}

#[tokio::test]
async fn checkout_funding_is_refused_with_an_invoice_and_needs_web_urls() {
    let app = TestApp::spawn_without_workers().await;
    let customer = app.stripe.create_customer();
    let mut body = checkout_body(&customer, 2000, false);
    body["funding"]["success_url"] = json!("javascript:alert(1)");
    let (status, error) = app.post_purchase(&body, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["field"], "funding.success_url", "{error}");
    let mut body = checkout_body(&customer, 2000, false);
    body["invoice_id"] = json!("in_123");
    let (status, error) = app.post_purchase(&body, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["field"], "funding", "{error}");
    assert!(
        app.stripe
            .requests_to("POST", "/v1/checkout/sessions")
            .is_empty()
    );
}

/// Killed after Stripe created the session but before creditd stored it, with the key forgotten:
/// the restarted creditd finds the session by its metadata instead of creating a second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_before_the_session_is_stored_resumes_without_a_second_session() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    let first = CreditdProcess::start(&database_url, &stripe, &[]).await;
    stripe.set_webhook_endpoint(&first.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
    let customer = stripe.create_customer();
    let pause = stripe.pause_after_effect("POST", "/v1/checkout/sessions");
    let request = reqwest::Client::new()
        .post(first.url("/v1/purchases"))
        .bearer_auth(API_TOKEN)
        .json(&checkout_body(&customer, 3000, false))
        .send();
    let in_flight = tokio::spawn(request);
    pause.reached().await;
    first.kill().await;
    assert!(
        in_flight.await.unwrap().is_err(),
        "the client saw the crash"
    );
    stripe.forget_idempotency_keys();
    pause.release();

    let (purchase_id,): (String,) = sqlx::query_as("SELECT id FROM purchases")
        .fetch_one(&db)
        .await
        .unwrap();
    let second = CreditdProcess::start(&database_url, &stripe, &[]).await;
    wait_for_purchase_status(&db, &purchase_id, "awaiting_payment").await;
    let sessions = stripe.checkout_sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    let (stored,): (Option<String>,) =
        sqlx::query_as("SELECT checkout_session_id FROM purchases WHERE id = $1")
            .bind(&purchase_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(stored.as_deref(), sessions[0]["id"].as_str());
    second.kill().await;
}
