//! `/v1/purchases`: auth, validation that changes nothing, client idempotency, rejection and failure.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, API_TOKEN, TestApp, eventually};
use creditd::sandbox::{Fault, FaultKind};

fn body_for(customer: &str, invoice_id: &str) -> Value {
    json!({"customer": customer, "amount": 5000, "currency": "usd", "invoice_id": invoice_id,
           "credit": {"name": "Starter pack", "priority": 10, "applicability": {"prices": ["price_123"]}},
           "metadata": {"order": "42"}})
}

#[tokio::test]
async fn v1_requires_the_api_token_and_nothing_else() {
    let app = TestApp::spawn().await;
    let before = app.snapshot().await;
    let body = body_for("cus_1", "in_1");
    for token in [None, Some("wrong-token-wrong-token"), Some(ADMIN_TOKEN)] {
        let (status, answer) = app
            .api(Method::POST, "/v1/purchases", Some(&body), token)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {answer}");
        assert_eq!(answer["error"]["code"], "unauthorized");
        let (status, _) = app
            .api(Method::GET, "/v1/purchases/pur_x", None, token)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    // Even an invalid body is not looked at without the token.
    let (status, _) = app
        .api(
            Method::POST,
            "/v1/purchases",
            Some(&json!({"amount": -1})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_purchase_is_created_and_read_back_in_the_same_shape() {
    let app = TestApp::spawn().await;
    let (status, created) = app.post_purchase(&body_for("cus_1", "in_1"), None).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(created["id"].as_str().unwrap().starts_with("pur_"));
    assert_eq!(created["status"], "awaiting_payment");
    assert_eq!(created["credit"]["value"], 5000);
    assert_eq!(created["credit"]["currency"], "usd");
    assert_eq!(created["credit"]["category"], "paid");
    assert_eq!(created["credit"]["priority"], 10);
    assert_eq!(created["credit"]["applicability"]["prices"][0], "price_123");
    assert_eq!(created["credit_grant_id"], Value::Null);
    assert!(created["created"].as_i64().is_some());
    let read = app.get_purchase(created["id"].as_str().unwrap()).await;
    assert_eq!(read, created);
    let (status, missing) = app
        .api(Method::GET, "/v1/purchases/pur_nope", None, Some(API_TOKEN))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"]["code"], "not_found");
}

#[tokio::test]
async fn invalid_bodies_get_a_4xx_naming_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let before = app.snapshot().await;
    let cases = [
        (
            json!({"amount": 5000, "currency": "usd", "invoice_id": "in_1"}),
            "customer",
        ),
        (
            json!({"customer": "cus_1", "amount": -5, "currency": "usd", "invoice_id": "in_1"}),
            "amount",
        ),
        (
            json!({"customer": "cus_1", "amount": 5, "currency": "usdollar", "invoice_id": "in_1"}),
            "currency",
        ),
        (
            json!({"customer": "cus_1", "amount": 5, "currency": "usd", "invoice_id": "in_1", "credit": {"currency": "eur"}}),
            "credit.currency",
        ),
        (
            json!({"customer": "cus_1", "amount": 5, "currency": "usd", "invoice_id": "in_1", "credit": {"priority": 500}}),
            "credit.priority",
        ),
        (
            json!({"customer": "cus_1", "amount": 5, "currency": "usd", "invoice_id": "in_1", "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = app.post_purchase(&body, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{answer}");
        assert!(answer["error"]["message"].as_str().unwrap().contains(field));
    }
    let raw = app
        .http
        .post(app.url("/v1/purchases"))
        .bearer_auth(API_TOKEN)
        .header("content-type", "application/json")
        .body("{broken")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.snapshot().await, before);
    assert!(app.stripe.requests().is_empty(), "nothing reached Stripe");
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_purchase_serially_and_concurrently() {
    let app = TestApp::spawn().await;
    let body = body_for("cus_1", "in_1");
    let (first_status, first) = app.post_purchase(&body, Some("client-key-1")).await;
    assert_eq!(first_status, StatusCode::CREATED);
    let (_, again) = app.post_purchase(&body, Some("client-key-1")).await;
    assert_eq!(again["id"], first["id"]);

    let other = body_for("cus_2", "in_2");
    let answers =
        futures::future::join_all((0..20).map(|_| app.post_purchase(&other, Some("client-key-2"))))
            .await;
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, StatusCode::CREATED, "{b}");
            b["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM purchases")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(count, 2);

    let (status, answer) = app
        .post_purchase(&body_for("cus_9", "in_9"), Some("client-key-1"))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(answer["error"]["code"], "idempotency_key_reused");
}

#[tokio::test]
async fn one_invoice_cannot_back_two_purchases() {
    let app = TestApp::spawn().await;
    let (status, _) = app.post_purchase(&body_for("cus_1", "in_1"), None).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, answer) = app.post_purchase(&body_for("cus_1", "in_1"), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(answer["error"]["field"], "invoice_id");
}

#[tokio::test]
async fn a_paid_invoice_that_does_not_match_is_rejected_without_a_grant() {
    let app = TestApp::spawn().await;
    let customer = app.stripe.create_customer();
    let invoice = app.stripe.create_open_invoice(&customer, 4000, "usd", &[]);
    // The purchase claims more than the invoice collects.
    let body = json!({"customer": customer, "amount": 5000, "currency": "usd", "invoice_id": invoice["id"]});
    let (_, purchase) = app.post_purchase(&body, None).await;
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    let rejected = app
        .wait_for_status(purchase["id"].as_str().unwrap(), "rejected")
        .await;
    assert!(
        rejected["last_error"]
            .as_str()
            .unwrap()
            .contains("less than the purchase amount"),
        "{rejected}"
    );
    assert!(app.stripe.grants().is_empty());

    let other = app.stripe.create_customer();
    let invoice = app.stripe.create_open_invoice(&other, 5000, "usd", &[]);
    let body = json!({"customer": customer, "amount": 5000, "currency": "usd", "invoice_id": invoice["id"]});
    let (_, purchase) = app.post_purchase(&body, None).await;
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    let rejected = app
        .wait_for_status(purchase["id"].as_str().unwrap(), "rejected")
        .await;
    assert!(
        rejected["last_error"]
            .as_str()
            .unwrap()
            .contains("customer"),
        "{rejected}"
    );
    assert!(app.stripe.grants().is_empty());
}

#[tokio::test]
async fn a_purchase_fails_with_its_last_error_once_retries_are_spent() {
    let app = TestApp::spawn().await;
    app.stripe.inject(
        Fault::new(
            "POST",
            "/v1/billing/credit_grants",
            FaultKind::rate_limited(),
        )
        .forever(),
    );
    let (purchase, invoice) = app.purchase_for_new_invoice(300).await;
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    let failed = app
        .wait_for_status(purchase["id"].as_str().unwrap(), "failed")
        .await;
    assert!(
        failed["last_error"].as_str().unwrap().contains("429"),
        "{failed}"
    );
    // Five attempts, each with the client's own two retries.
    assert_eq!(
        app.stripe
            .requests_to("POST", "/v1/billing/credit_grants")
            .len(),
        5 * 3
    );
    assert!(app.stripe.grants().is_empty());
}

#[tokio::test]
async fn transient_stripe_errors_are_retried_until_the_grant_is_made() {
    let app = TestApp::spawn().await;
    app.stripe
        .inject(Fault::new("GET", "/v1/invoices/", FaultKind::api_error()).times(4));
    app.stripe.inject(
        Fault::new(
            "POST",
            "/v1/billing/credit_grants",
            FaultKind::DropConnection,
        )
        .times(2),
    );
    let (purchase, invoice) = app.purchase_for_new_invoice(800).await;
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.wait_for_status(purchase["id"].as_str().unwrap(), "granted")
        .await;
    assert_eq!(app.stripe.grants().len(), 1);
    eventually(
        "every Stripe call is logged against the purchase",
        || async {
            let (calls,): (i64,) =
                sqlx::query_as("SELECT count(*) FROM stripe_calls WHERE purchase_id = $1")
                    .bind(purchase["id"].as_str())
                    .fetch_one(&app.db)
                    .await
                    .unwrap();
            calls >= 3
        },
    )
    .await;
}
