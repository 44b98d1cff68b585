//! The database at its worst for creditd: a connection that stops answering under the webhook
//! recorder, and a schema migrated by a newer release (a rollback).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::fake_stripe::{FakeStripe, invoice_paid_event};
use crate::harness::process::CreditdProcess;
use crate::harness::tcp_proxy::TcpProxy;
use crate::harness::{
    API_TOKEN, TestApp, WEBHOOK_SECRET, fresh_database, json_response, test_config,
    wait_for_purchase_status,
};

/// Every connection to PostgreSQL goes through a proxy that is then frozen: the recorder's
/// statement gets no answer. The webhook answers 503 within the configured timeouts (so Stripe
/// retries), `/readyz` fails, and both recover once the database answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_connection_under_the_recorder_means_503_and_not_ready() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    let mut url = url::Url::parse(&database_url).unwrap();
    let target = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    let target = tokio::net::lookup_host(target)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = TcpProxy::start(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let mut config = test_config(url.as_str(), &stripe);
    config.database.database_acquire_timeout_ms = 1_000;
    config.database.database_statement_timeout_ms = 1_000;
    let app = creditd::app::Application::build(config).await.unwrap();
    let addr = app.local_addr();
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(app.run_until_stopped(stop.clone()));
    let http = reqwest::Client::new();
    let ready = format!("http://{addr}/readyz");
    assert_eq!(
        http.get(&ready).send().await.unwrap().status(),
        StatusCode::OK
    );

    let customer = stripe.create_customer();
    let invoice = stripe.create_open_invoice(&customer, 700, "usd", &[]);
    let post = |event: serde_json::Value| {
        let http = http.clone();
        async move {
            let body = serde_json::to_vec(&event).unwrap();
            let signature = crate::fake_stripe::sign_payload(
                WEBHOOK_SECRET,
                chrono::Utc::now().timestamp(),
                &body,
            );
            let response = http
                .post(format!("http://{addr}/webhooks/stripe"))
                .header("Stripe-Signature", signature)
                .body(body)
                .send()
                .await
                .unwrap();
            json_response(response).await
        }
    };
    // One webhook first, so the recorder holds an open connection that will go silent.
    let (status, _) = post(invoice_paid_event(&invoice)).await;
    assert_eq!(status, StatusCode::OK);

    proxy.freeze();
    let started = Instant::now();
    let (status, body) = post(invoice_paid_event(&invoice)).await;
    let took = started.elapsed();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["error"]["code"], "database_unavailable");
    // Acquire (1 s) or statement (1 s + 0.5 s grace) timeout, never the client's patience.
    assert!(took < Duration::from_secs(8), "answered after {took:?}");
    let response = http.get(&ready).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    proxy.thaw();
    crate::harness::eventually("creditd is ready again", || {
        let (http, ready) = (http.clone(), ready.clone());
        async move {
            http.get(&ready)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    let (status, body) = post(invoice_paid_event(&invoice)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    stop.cancel();
    running.await.unwrap().unwrap();
    drop(db);
}

/// The database was migrated by a newer release (an additive migration this binary does not
/// know), then the image was rolled back: the older binary starts, serves and grants.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_binary_serves_against_a_database_with_a_newer_migration() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    sqlx::raw_sql(
        r#"
        ALTER TABLE purchases ADD COLUMN future_release_note text;
        INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
        VALUES (99990101000000, 'a future release', true, '\x00', 1);
        "#,
    )
    .execute(&db)
    .await
    .unwrap();

    let process = CreditdProcess::start(&database_url, &stripe, &[]).await;
    stripe.set_webhook_endpoint(&process.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
    let customer = stripe.create_customer();
    let invoice = stripe.create_open_invoice(&customer, 900, "usd", &[]);
    let body = json!({"customer": customer, "amount": 900, "currency": "usd", "invoice_id": invoice["id"]});
    let response = reqwest::Client::new()
        .post(process.url("/v1/purchases"))
        .bearer_auth(API_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, purchase) = json_response(response).await;
    assert_eq!(status, StatusCode::CREATED, "{purchase}");
    stripe.pay_invoice(invoice["id"].as_str().unwrap());
    wait_for_purchase_status(&db, purchase["id"].as_str().unwrap(), "granted").await;
    let logs = process.kill().await;
    assert!(
        logs.contains("does not know") && logs.contains("99990101000000"),
        "the unknown migration is logged: {logs}"
    );
}

/// In-process too: `TestApp` builds (and so migrates) against the same kind of database.
#[tokio::test]
async fn readiness_accepts_newer_migrations() {
    let app = TestApp::spawn().await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99990101000000, 'a future release', true, '\\x00', 1)",
    )
    .execute(&app.db)
    .await
    .unwrap();
    creditd::db::migrate(&app.db)
        .await
        .expect("migrating again ignores it");
    let status = app
        .http
        .get(app.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, StatusCode::OK);
}
