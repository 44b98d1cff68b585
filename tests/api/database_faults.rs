//! The database at its worst for creditd: a connection that stops answering under the webhook
//! recorder, and a schema migrated by a newer release (a rollback).

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::process::CreditdProcess;
use crate::harness::tcp_proxy::TcpProxy;
use crate::harness::{
    API_TOKEN, TestApp, WEBHOOK_SECRET, fresh_database, json_response, test_config,
    wait_for_purchase_status,
};
use creditd::sandbox::{FakeStripe, invoice_paid_event};

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
            let signature = creditd::sandbox::sign_payload(
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
    let registered = process.register_purchase(&stripe, 900).await;
    stripe.pay_invoice(&registered.invoice_id);
    wait_for_purchase_status(&db, &registered.purchase_id, "granted").await;
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

/// The pool is healthy but the webhook path cannot record (its only connection waits on a row
/// lock): readiness fails, so the load balancer stops sending webhooks to this replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_recorder_is_pinned_even_with_a_healthy_pool() {
    let app = TestApp::spawn_with(|config| {
        config.database.database_event_connections = 1;
        config.database.database_acquire_timeout_ms = 500;
        config.database.database_statement_timeout_ms = 30_000;
    })
    .await;
    let (purchase, invoice) = app.purchase_for_new_invoice(500).await;
    let id = purchase["id"].as_str().unwrap();
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM purchases WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *lock)
        .await
        .unwrap();
    // The webhook's statement waits for that row lock on the recorder's only connection.
    let webhook = tokio::spawn({
        let (http, url) = (app.http.clone(), app.url("/webhooks/stripe"));
        let body = serde_json::to_vec(&invoice_paid_event(&invoice)).unwrap();
        async move {
            let now = chrono::Utc::now().timestamp();
            let signature = creditd::sandbox::sign_payload(WEBHOOK_SECRET, now, &body);
            let response = http
                .post(url)
                .header("Stripe-Signature", signature)
                .body(body);
            response.send().await.unwrap().status()
        }
    });
    let readyz = || async {
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status()
    };
    crate::harness::eventually("readiness fails while the recorder is pinned", || async {
        readyz().await == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let (status, _) = app
        .api(
            reqwest::Method::GET,
            &format!("/v1/purchases/{id}"),
            None,
            Some(API_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "the pool still serves the API");

    lock.rollback().await.unwrap();
    assert_eq!(webhook.await.unwrap(), StatusCode::OK);
    crate::harness::eventually("ready again", || async { readyz().await == StatusCode::OK }).await;
}
