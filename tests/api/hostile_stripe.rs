//! Stripe (or a proxy in front of it) at its worst: absurd headers, refused connections, and a
//! flood of balance reads competing with grants for the rate limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use reqwest::StatusCode;

use crate::harness::stripe_proxy::{Answer, StripeProxy};
use crate::harness::tcp_proxy::TcpProxy;
use crate::harness::{API_TOKEN, TestApp, wait_for_purchase_status};

/// `Retry-After: 1e20` overflowed `Duration::from_secs_f64` and killed the worker for good.
#[tokio::test]
async fn a_429_with_an_absurd_retry_after_is_waited_out_briefly_and_the_purchase_granted() {
    let proxy = StripeProxy::start().await;
    let app = TestApp::spawn_with(|config| {
        proxy.set_target(config.stripe.stripe_api_base.as_str());
        config.stripe.stripe_api_base = proxy.url().parse().unwrap();
    })
    .await;
    proxy.answer(Answer {
        method: reqwest::Method::POST,
        path_prefix: "/v1/billing/credit_grants".into(),
        times: 2,
        status: StatusCode::TOO_MANY_REQUESTS,
        headers: vec![
            ("retry-after", "1e20".into()),
            ("content-type", "application/json".into()),
        ],
        body: r#"{"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "slow down"}}"#.into(),
    });
    let (purchase, invoice) = app.purchase_for_new_invoice(1200).await;
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.wait_for_status(purchase["id"].as_str().unwrap(), "granted")
        .await;
    assert_eq!(proxy.answered().len(), 2, "both 429s were served");
    assert_eq!(app.stripe.grants().len(), 1);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("creditd_worker_panics_total 0"),
        "{metrics}"
    );
}

/// Balance reads flood in while purchases are paid: every grant lands, reads past their share
/// get 503 `stripe_busy` with Retry-After, and Stripe never sees more than the rate limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_balance_reads_never_starves_grants() {
    const PURCHASES: usize = 6;
    let app = TestApp::spawn_with(|config| {
        config.stripe.stripe_rate_limit_per_sec = 10;
        config.stripe.stripe_read_share_percent = 20;
        config.stripe.stripe_read_max_wait_ms = 200;
        config.worker_count = 3;
    })
    .await;
    app.stripe.set_rate_limit(Some(15));
    let mut purchases = Vec::new();
    for i in 0..PURCHASES {
        purchases.push(app.purchase_for_new_invoice(1000 + i as i64).await);
    }
    let customer = purchases[0].0["customer"].as_str().unwrap().to_owned();

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, busy) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut readers = Vec::new();
    for _ in 0..16 {
        let (http, url) = (
            app.http.clone(),
            app.url(&format!("/v1/customers/{customer}/credit_balance")),
        );
        let (stop, ok, busy) = (stop.clone(), ok.clone(), busy.clone());
        readers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let response = http.get(&url).bearer_auth(API_TOKEN).send().await.unwrap();
                match response.status() {
                    StatusCode::OK => ok.fetch_add(1, Ordering::Relaxed),
                    StatusCode::SERVICE_UNAVAILABLE => {
                        let retry_after = response.headers().get("retry-after").cloned();
                        let body: serde_json::Value = response.json().await.unwrap();
                        assert_eq!(body["error"]["code"], "stripe_busy", "{body}");
                        let seconds: u64 = retry_after
                            .expect("Retry-After")
                            .to_str()
                            .unwrap()
                            .parse()
                            .unwrap();
                        assert!(seconds >= 1);
                        busy.fetch_add(1, Ordering::Relaxed)
                    }
                    other => panic!("unexpected {other}"),
                };
            }
        }));
    }
    for (_, invoice) in &purchases {
        app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    }
    for (purchase, _) in &purchases {
        wait_for_purchase_status(&app.db, purchase["id"].as_str().unwrap(), "granted").await;
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }

    assert_eq!(app.stripe.grants().len(), PURCHASES);
    let (failed,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM purchases WHERE status = 'failed'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(failed, 0);
    assert!(
        busy.load(Ordering::Relaxed) > 0,
        "reads beyond their share were turned away"
    );
    assert!(
        ok.load(Ordering::Relaxed) > 0,
        "reads within their share were answered"
    );
    let limited = app
        .stripe
        .requests()
        .iter()
        .filter(|r| r.status == 429)
        .count();
    assert_eq!(limited, 0, "creditd stayed under Stripe's rate limit");
}

/// Stripe refuses connections for far more attempts than FULFILMENT_MAX_ATTEMPTS allows: none of
/// them reached Stripe, so none counts, and the purchase is granted once Stripe is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_that_never_reach_stripe_do_not_use_up_the_purchase() {
    let port = crate::harness::process::free_port();
    let app = TestApp::spawn_with(|config| {
        config.stripe.stripe_api_base = format!("http://127.0.0.1:{port}").parse().unwrap();
    })
    .await;
    let max_attempts = app.services.policy.max_attempts as i64;
    let (purchase, invoice) = app.purchase_for_new_invoice(600).await;
    let id = purchase["id"].as_str().unwrap().to_owned();
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());

    let refused_attempts = || async {
        // One recorded call per attempt: each tried GET /v1/invoices/{id} and was refused.
        let (calls,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM stripe_calls WHERE purchase_id = $1 AND http_status IS NULL",
        )
        .bind(&id)
        .fetch_one(&app.db)
        .await
        .unwrap();
        calls
    };
    crate::harness::eventually("twice as many refused attempts as are allowed", || async {
        refused_attempts().await > 2 * max_attempts
    })
    .await;
    let (status, attempts): (String, i32) =
        sqlx::query_as("SELECT status, attempts FROM purchases WHERE id = $1")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(status, "granting");
    assert!(
        attempts <= 1,
        "only an attempt in flight is counted: {attempts}"
    );

    let fake: std::net::SocketAddr = app
        .stripe
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let _stripe_is_back = TcpProxy::start_on(port, fake).await;
    wait_for_purchase_status(&app.db, &id, "granted").await;
    assert_eq!(app.stripe.grants().len(), 1);
}
