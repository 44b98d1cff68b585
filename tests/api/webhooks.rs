//! `POST /webhooks/stripe`: signatures, recording once, ignoring, and every rejection storing nothing.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestApp, WEBHOOK_SECRET};
use creditd::sandbox::{invoice_paid_event, sign_payload};

fn event_of_type(event_type: &str) -> Value {
    json!({
        "id": format!("evt_{}", &creditd::purchase::new_purchase_id()[4..]),
        "object": "event", "api_version": "2026-07-29.dahlia", "created": 1_800_000_000,
        "data": {"object": {"id": "cus_123", "object": "customer"}},
        "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "type": event_type,
    })
}

#[tokio::test]
async fn a_paid_invoice_webhook_grants_the_purchase_exactly_once() {
    let app = TestApp::spawn().await;
    let (purchase, invoice) = app.purchase_for_new_invoice(5000).await;
    assert_eq!(purchase["status"], "awaiting_payment");
    assert_eq!(purchase["credit_grant_id"], Value::Null);

    let event = app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.stripe.wait_for_deliveries().await;
    let granted = app
        .wait_for_status(purchase["id"].as_str().unwrap(), "granted")
        .await;

    let grants = app.stripe.grants();
    assert_eq!(grants.len(), 1);
    let grant = &grants[0];
    assert_eq!(granted["credit_grant_id"], grant["id"]);
    assert_eq!(grant["customer"], purchase["customer"]);
    assert_eq!(grant["amount"]["monetary"]["value"], 5000);
    assert_eq!(grant["amount"]["monetary"]["currency"], "usd");
    assert_eq!(grant["category"], "paid");
    assert_eq!(
        grant["applicability_config"]["scope"]["price_type"],
        "metered"
    );
    assert_eq!(grant["metadata"]["creditd_purchase_id"], purchase["id"]);
    assert_eq!(grant["metadata"]["invoice_id"], invoice["id"]);
    let create = app.stripe.requests_to("POST", "/v1/billing/credit_grants");
    assert_eq!(create.len(), 1);
    let key = create[0].idempotency_key.clone().unwrap();
    assert!(
        key.contains(purchase["id"].as_str().unwrap()),
        "the key {key} derives from the purchase"
    );

    // The same event again, and Stripe's other events about the invoice, change nothing.
    let before = app.snapshot().await;
    let (status, body) = app.post_webhook(&event).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["duplicate"], true);
    assert_eq!(app.snapshot().await, before);
    assert_eq!(app.stripe.grants().len(), 1);
}

#[tokio::test]
async fn unknown_event_types_are_recorded_as_ignored() {
    let app = TestApp::spawn().await;
    let event = event_of_type("customer.updated");
    let (status, body) = app.post_webhook(&event).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "ignored");
    let (outcome,): (String,) = sqlx::query_as("SELECT outcome FROM stripe_events WHERE id = $1")
        .bind(event["id"].as_str())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(outcome, "ignored");
}

#[tokio::test]
async fn a_paid_invoice_without_a_purchase_is_recorded_as_unmatched_and_grants_nothing() {
    let app = TestApp::spawn().await;
    let customer = app.stripe.create_customer();
    let invoice = app.stripe.create_open_invoice(&customer, 700, "usd", &[]);
    let event = invoice_paid_event(&app.stripe.invoice(invoice["id"].as_str().unwrap()).unwrap());
    let (status, body) = app.post_webhook(&event).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["outcome"], "unmatched");
    assert!(app.stripe.grants().is_empty());
}

#[tokio::test]
async fn a_purchase_registered_after_its_invoice_was_paid_is_fulfilled_on_registration() {
    let app = TestApp::spawn().await;
    let customer = app.stripe.create_customer();
    let invoice = app.stripe.create_open_invoice(&customer, 1200, "usd", &[]);
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.stripe.wait_for_deliveries().await;

    let body = json!({"customer": customer, "amount": 1200, "currency": "usd", "invoice_id": invoice["id"]});
    let (status, purchase) = app.post_purchase(&body, None).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(purchase["status"], "granting");
    app.wait_for_status(purchase["id"].as_str().unwrap(), "granted")
        .await;
    assert_eq!(app.stripe.grants().len(), 1);
}

/// Each rejection answers with a JSON error naming the problem, and stores nothing.
#[tokio::test]
async fn rejected_webhooks_answer_400_and_store_nothing() {
    let app = TestApp::spawn().await;
    let body = serde_json::to_vec(&event_of_type("invoice.paid")).unwrap();
    let now = chrono::Utc::now().timestamp();
    let v1_of = |header: String| header.split_once("v1=").unwrap().1.to_owned();
    let mut with_nul = event_of_type("invoice.paid");
    with_nul["data"]["object"]["name"] = Value::String("a\u{0}b".into());
    let nul_body = serde_json::to_vec(&with_nul).unwrap();
    let mut overlong = event_of_type("invoice.paid");
    // Random, so it does not compress under PostgreSQL's index entry limit (about 2.7 KB).
    let random_id: String = (0..150)
        .map(|_| creditd::purchase::new_purchase_id()[4..].to_owned())
        .collect();
    overlong["id"] = Value::String(format!("evt_{random_id}"));
    let overlong_body = serde_json::to_vec(&overlong).unwrap();
    let cases: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("missing header", body.clone(), None),
        (
            "wrong secret",
            body.clone(),
            Some(sign_payload("whsec_wrong", now, &body)),
        ),
        (
            "tampered body",
            [&body[..], b" "].concat(),
            Some(sign_payload(WEBHOOK_SECRET, now, &body)),
        ),
        (
            "stale timestamp",
            body.clone(),
            Some(sign_payload(WEBHOOK_SECRET, now - 301, &body)),
        ),
        (
            // A margin over the 300 s tolerance: the cases run one after another on a busy machine,
            // and every second they take brings a fixed future timestamp closer to the server's now.
            "future timestamp",
            body.clone(),
            Some(sign_payload(WEBHOOK_SECRET, now + 330, &body)),
        ),
        (
            "only v0",
            body.clone(),
            Some(format!(
                "t={now},v0={}",
                v1_of(sign_payload(WEBHOOK_SECRET, now, &body))
            )),
        ),
        ("garbage header", body.clone(), Some("nonsense".into())),
        (
            "malformed JSON",
            b"{not json".to_vec(),
            Some(sign_payload(WEBHOOK_SECRET, now, b"{not json")),
        ),
        (
            "not an event",
            b"{}".to_vec(),
            Some(sign_payload(WEBHOOK_SECRET, now, b"{}")),
        ),
        (
            "a NUL that PostgreSQL cannot store",
            nul_body.clone(),
            Some(sign_payload(WEBHOOK_SECRET, now, &nul_body)),
        ),
        (
            // Past PostgreSQL's index entry limit too: without the check, a 503 on every retry.
            "an id longer than any of Stripe's",
            overlong_body.clone(),
            Some(sign_payload(WEBHOOK_SECRET, now, &overlong_body)),
        ),
    ];
    let before = app.snapshot().await;
    for (case, body, header) in cases {
        let (status, answer) = app.post_webhook_raw(body, header.as_deref()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{case}: {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{case}: {answer}"
        );
    }
    assert_eq!(app.snapshot().await, before);
}

#[tokio::test]
async fn a_rotation_header_with_two_v1_signatures_is_accepted() {
    let app = TestApp::spawn_with(|config| {
        config.stripe_webhook_secret = format!("whsec_new_secret_x,{WEBHOOK_SECRET}")
            .as_str()
            .into();
    })
    .await;
    let body = serde_json::to_vec(&event_of_type("invoice.created")).unwrap();
    let now = chrono::Utc::now().timestamp();
    let old = sign_payload(WEBHOOK_SECRET, now, &body);
    let new = sign_payload("whsec_other_unknown", now, &body);
    let header = format!("{new},v1={}", old.split_once("v1=").unwrap().1);
    let (status, answer) = app.post_webhook_raw(body, Some(&header)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_store_nothing() {
    let app = TestApp::spawn().await;
    let mut event = event_of_type("invoice.paid");
    event["padding"] = Value::String("x".repeat(1024 * 1024 + 1));
    let body = serde_json::to_vec(&event).unwrap();
    let header = sign_payload(WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
    let before = app.snapshot().await;
    let (status, answer) = app.post_webhook_raw(body, Some(&header)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert_eq!(answer["error"]["code"], "payload_too_large");
    assert_eq!(app.snapshot().await, before);
}

/// With the database unreachable the answer must be a prompt 503, so Stripe retries.
#[tokio::test]
async fn webhooks_answer_503_quickly_when_the_database_is_down() {
    let app = TestApp::spawn().await;
    let name = app.database_url.rsplit('/').next().unwrap().to_owned();
    let admin = sqlx::PgPool::connect(&std::env::var("DATABASE_URL").unwrap())
        .await
        .unwrap();
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&admin)
        .await
        .unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
        .bind(&name)
        .execute(&admin)
        .await
        .unwrap();

    let started = Instant::now();
    let (status, answer) = app.post_webhook(&event_of_type("invoice.paid")).await;
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "database_unavailable");
    assert!(
        waited < Duration::from_secs(10),
        "503 took {waited:?}; Stripe would have timed out"
    );

    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&admin)
        .await
        .unwrap();
}

/// creditd's own invoice is paid before creditd stored its id: the metadata still matches it.
#[tokio::test]
async fn a_paid_invoice_matches_by_metadata_before_the_purchase_knows_its_invoice() {
    let app = TestApp::spawn().await;
    let customer = app.stripe.create_customer();
    let pause = app.stripe.pause_after_effect("POST", "/v1/invoices");
    let body = json!({"customer": customer, "amount": 600, "currency": "usd"});
    let creating = tokio::spawn({
        let http = app.http.clone();
        let url = app.url("/v1/purchases");
        async move {
            http.post(url)
                .bearer_auth(crate::harness::API_TOKEN)
                .json(&body)
                .send()
                .await
        }
    });
    pause.reached().await;
    let invoice = app.stripe.invoices().pop().unwrap();
    let invoice_id = invoice["id"].as_str().unwrap();
    let (purchase_id, stored_invoice): (String, Option<String>) =
        sqlx::query_as("SELECT id, invoice_id FROM purchases")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        stored_invoice, None,
        "the webhook must win the race for this test to mean anything"
    );

    // Someone completes and pays the invoice in Stripe while creditd is still between its steps.
    let item = app
        .stripe
        .client()
        .post(
            "/v1/invoiceitems",
            &[
                ("customer", &customer),
                ("invoice", invoice_id),
                ("amount", "600"),
                ("currency", "usd"),
            ],
            None,
        )
        .await;
    assert_eq!(item.status, 200, "{:?}", item.json);
    let paid = app.stripe.pay_invoice(invoice_id);
    app.stripe.wait_for_deliveries().await;
    let (outcome,): (String,) = sqlx::query_as("SELECT outcome FROM stripe_events WHERE id = $1")
        .bind(paid["id"].as_str())
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(outcome, "scheduled");
    pause.release();
    let (status, _) = crate::harness::json_response(creating.await.unwrap().unwrap()).await;
    assert!(status.is_success());

    let granted = app.wait_for_status(&purchase_id, "granted").await;
    assert_eq!(granted["invoice_id"], invoice_id);
    assert_eq!(app.stripe.grants().len(), 1);
    assert_eq!(app.stripe.invoices().len(), 1);
}
