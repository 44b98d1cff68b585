//! What operators rely on: start-up errors that name the setting, metrics that match what
//! happened, logs without secrets, and rolling restarts that lose nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::process::CreditdProcess;
use crate::harness::{
    API_TOKEN, TestApp, WEBHOOK_SECRET, eventually, fresh_database, json_response,
    wait_for_purchase_status,
};
use creditd::sandbox::{FakeStripe, Fault, FaultKind, invoice_paid_event, sign_payload};

async fn start_failure(overrides: &[(&str, &str)], removed: &[&str]) -> String {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_creditd"));
    command
        .arg("serve")
        .env_clear()
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/none")
        .env("STRIPE_SECRET_KEY", "sk_test_x")
        .env("STRIPE_WEBHOOK_SECRET", "whsec_x")
        .env("API_TOKEN", "api-token-0123456789")
        .env("ADMIN_TOKEN", "admin-token-0123456789")
        .env("LISTEN_ADDR", "127.0.0.1:0");
    for key in removed {
        command.env_remove(key);
    }
    for (key, value) in overrides {
        command.env(key, value);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn a_missing_or_malformed_setting_stops_startup_naming_it() {
    let missing = start_failure(&[], &["STRIPE_WEBHOOK_SECRET"]).await;
    assert!(missing.contains("STRIPE_WEBHOOK_SECRET"), "{missing}");
    let malformed = start_failure(&[("LISTEN_ADDR", "not-an-address")], &[]).await;
    assert!(malformed.contains("LISTEN_ADDR"), "{malformed}");
    let short = start_failure(&[("ADMIN_TOKEN", "short")], &[]).await;
    assert!(short.contains("ADMIN_TOKEN"), "{short}");
    let key = start_failure(&[("STRIPE_SECRET_KEY", "pk_test_publishable")], &[]).await;
    assert!(
        key.contains("STRIPE_SECRET_KEY") && !key.contains("pk_test_publishable"),
        "{key}"
    );
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find(|line| {
            line.starts_with(name_and_labels) && line[name_and_labels.len()..].starts_with(' ')
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_what_happened() {
    let app = TestApp::spawn().await;
    app.stripe.set_webhook_delivery(false);
    let (purchase, invoice) = app.purchase_for_new_invoice(1000).await;
    let paid = app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    assert_eq!(app.post_webhook(&paid).await.0, StatusCode::OK);
    assert_eq!(app.post_webhook(&paid).await.0, StatusCode::OK);
    assert_eq!(app.post_webhook(&paid).await.0, StatusCode::OK);
    let mut other = invoice_paid_event(&json!({"id": "in_x", "object": "customer"}));
    other["type"] = "customer.updated".into();
    assert_eq!(app.post_webhook(&other).await.0, StatusCode::OK);
    let bad = app
        .post_webhook_raw(b"{}".to_vec(), Some("t=1,v1=00"))
        .await;
    assert_eq!(bad.0, StatusCode::BAD_REQUEST);
    app.wait_for_status(purchase["id"].as_str().unwrap(), "granted")
        .await;

    let text = app.metrics().await;
    assert_eq!(
        metric(
            &text,
            r#"creditd_webhooks_total{outcome="accepted",reason=""}"#
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"creditd_webhooks_total{outcome="duplicate",reason=""}"#
        ),
        2.0
    );
    assert_eq!(
        metric(
            &text,
            r#"creditd_webhooks_total{outcome="ignored",reason=""}"#
        ),
        1.0
    );
    assert_eq!(
        metric(
            &text,
            r#"creditd_webhooks_total{outcome="rejected",reason="signature"}"#
        ),
        1.0
    );
    assert_eq!(metric(&text, "creditd_grants_created_total"), 1.0);
    assert_eq!(metric(&text, "creditd_paid_to_granted_seconds_count"), 1.0);
    assert_eq!(metric(&text, r#"creditd_purchases{status="granted"}"#), 1.0);
    assert_eq!(
        metric(&text, r#"creditd_purchases{status="awaiting_payment"}"#),
        0.0
    );
    assert_eq!(metric(&text, "creditd_oldest_paid_ungranted_seconds"), 0.0);
    assert_eq!(
        metric(
            &text,
            r#"creditd_stripe_requests_total{endpoint="/v1/billing/credit_grants",status="200"}"#
        ),
        1.0
    );
    assert!(metric(&text, "creditd_worker_claims_total") >= 1.0);
}

/// Every secret creditd is given, and a scenario that exercises errors and Stripe calls: none of
/// the secrets may appear in the logs, the answers or the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_secrets_never_reach_logs_answers_or_metrics() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    // Trust authentication ignores the password, so the URL can carry one we can look for.
    let with_password = database_url.replacen("postgres@", "postgres:pg-password-SECRET-42@", 1);
    let process = CreditdProcess::start(&with_password, &stripe, &[("RUST_LOG", "trace")]).await;
    stripe.set_webhook_endpoint(&process.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
    stripe.inject(Fault::new("POST", "/v1/billing/credit_grants", FaultKind::api_error()).times(2));
    let http = reqwest::Client::new();
    let mut answers = String::new();

    let customer = stripe.create_customer();
    let invoice = stripe.create_open_invoice(&customer, 900, "usd", &[]);
    let body = json!({"customer": customer, "amount": 900, "currency": "usd", "invoice_id": invoice["id"]});
    let (_, purchase) = json_response(
        http.post(process.url("/v1/purchases"))
            .bearer_auth(API_TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    answers.push_str(&purchase.to_string());
    for token in ["wrong-token", crate::harness::ADMIN_TOKEN] {
        let response = http
            .post(process.url("/v1/purchases"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        answers.push_str(&response.text().await.unwrap());
    }
    let forged = sign_payload("whsec_forged", chrono::Utc::now().timestamp(), b"{}");
    let response = http
        .post(process.url("/webhooks/stripe"))
        .header("Stripe-Signature", forged)
        .body("{}")
        .send()
        .await
        .unwrap();
    answers.push_str(&response.text().await.unwrap());
    stripe.pay_invoice(invoice["id"].as_str().unwrap());
    wait_for_purchase_status(&db, purchase["id"].as_str().unwrap(), "granted").await;
    answers.push_str(
        &http
            .get(process.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );

    let logs = process.kill().await;
    assert!(
        logs.contains("stripe call") && logs.contains("webhook recorded"),
        "the scenario was logged"
    );
    for secret in [
        FakeStripe::SECRET_KEY,
        WEBHOOK_SECRET,
        API_TOKEN,
        crate::harness::ADMIN_TOKEN,
        "pg-password-SECRET-42",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into the logs");
        assert!(
            !answers.contains(secret),
            "{secret} leaked into an answer or the metrics"
        );
    }
}

/// Sends each invoice's `invoice.paid` like Stripe: to whichever replica is up, retrying on any
/// failure until a 2xx. Returns how many requests it took.
async fn deliver_payments(
    stripe: &FakeStripe,
    ports: &std::sync::Mutex<Vec<u16>>,
    invoices: &[String],
) -> usize {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut requests = 0;
    for (n, invoice_id) in invoices.iter().enumerate() {
        let body = serde_json::to_vec(&stripe.pay_invoice(invoice_id)).unwrap();
        for attempt in 0usize.. {
            requests += 1;
            assert!(
                attempt < 500,
                "the webhook for {invoice_id} was never accepted"
            );
            let port = {
                let ports = ports.lock().unwrap();
                ports[(n + attempt) % ports.len()]
            };
            let signature = sign_payload(WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
            let sent = http
                .post(format!("http://127.0.0.1:{port}/webhooks/stripe"))
                .header("Stripe-Signature", signature)
                .body(body.clone())
                .send()
                .await;
            if sent.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    requests
}

/// Two replicas; each is stopped with SIGTERM and replaced in turn while payments are being
/// delivered to both, as during a Kubernetes rollout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_under_load_loses_no_webhook_and_strands_no_purchase() {
    let stripe = FakeStripe::start().await;
    stripe.set_webhook_delivery(false);
    let (database_url, db) = fresh_database().await;
    let drain = [("SHUTDOWN_DRAIN_SECS", "10")];
    let mut replicas = vec![
        CreditdProcess::start(&database_url, &stripe, &drain).await,
        CreditdProcess::start(&database_url, &stripe, &drain).await,
    ];
    let ports = std::sync::Mutex::new(replicas.iter().map(|r| r.port).collect::<Vec<_>>());
    let http = reqwest::Client::new();
    let mut purchases = Vec::new();
    for _ in 0..45 {
        let customer = stripe.create_customer();
        let invoice = stripe.create_open_invoice(&customer, 100, "usd", &[]);
        let body = json!({"customer": customer, "amount": 100, "currency": "usd", "invoice_id": invoice["id"]});
        let url = replicas[0].url("/v1/purchases");
        let (status, purchase) = json_response(
            http.post(url)
                .bearer_auth(API_TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        purchases.push((
            purchase["id"].as_str().unwrap().to_owned(),
            invoice["id"].as_str().unwrap().to_owned(),
        ));
    }
    let invoices: Vec<String> = purchases
        .iter()
        .map(|(_, invoice)| invoice.clone())
        .collect();
    let batches: Vec<&[String]> = invoices.chunks(15).collect();

    let mut requests = deliver_payments(&stripe, &ports, batches[0]).await;
    for batch in &batches[1..] {
        let old = replicas.remove(0);
        let old_port = old.port;
        // The stop and the deliveries overlap: webhooks reach the replica while it drains.
        let ((exit, logs), sent) =
            tokio::join!(old.terminate(), deliver_payments(&stripe, &ports, batch));
        requests += sent;
        assert!(exit.success(), "the replica exited {exit:?}: {logs}");
        let fresh = CreditdProcess::start(&database_url, &stripe, &drain).await;
        let mut ports = ports.lock().unwrap();
        let slot = ports.iter().position(|port| *port == old_port).unwrap();
        ports[slot] = fresh.port;
        drop(ports);
        replicas.push(fresh);
    }
    assert!(requests >= purchases.len());
    for (purchase_id, _) in &purchases {
        wait_for_purchase_status(&db, purchase_id, "granted").await;
    }
    assert_eq!(stripe.grants().len(), purchases.len());
    eventually("no purchase is left holding a lease", || async {
        let (leased,): (i64,) =
            sqlx::query_as("SELECT count(*) FROM purchases WHERE lease_owner IS NOT NULL")
                .fetch_one(&db)
                .await
                .unwrap();
        leased == 0
    })
    .await;
    for replica in replicas {
        let (exit, logs) = replica.terminate().await;
        assert!(exit.success(), "{logs}");
    }
}
