//! Short leases with a heartbeat: a SIGKILLed process's purchase is resumed within 30 s with
//! the default settings, a running attempt keeps its lease however long it takes, and a stopping
//! process gives back what it holds.

use std::time::Duration;

use crate::harness::process::{CreditdProcess, Registered};
use crate::harness::{
    TestApp, WEBHOOK_SECRET, eventually, fresh_database, wait_for_purchase_status,
};
use creditd::sandbox::FakeStripe;

/// The harness shortens leases and Stripe timeouts for speed; these restore creditd's defaults.
const DEFAULT_TIMINGS: &[(&str, &str)] = &[
    ("WORKER_LEASE_SECS", ""),
    ("WORKER_POLL_INTERVAL_MS", ""),
    ("STRIPE_TIMEOUT_MS", ""),
    ("STRIPE_RETRY_MAX_MS", ""),
];

/// Killed between Stripe's success and our commit, with default settings: the restarted process
/// adopts the grant within 30 s of the kill (the lease, 25 s, plus one poll), and only one exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_grant_is_resumed_within_30_seconds_with_one_grant() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    let first = CreditdProcess::start(&database_url, &stripe, DEFAULT_TIMINGS).await;
    stripe.set_webhook_endpoint(&first.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
    let Registered {
        purchase_id,
        invoice_id,
        ..
    } = first.register_purchase(&stripe, 4200).await;

    let pause = stripe.pause_after_effect("POST", "/v1/billing/credit_grants");
    stripe.pay_invoice(&invoice_id);
    pause.reached().await;
    let killed_at = tokio::time::Instant::now();
    first.kill().await;
    stripe.forget_idempotency_keys();
    pause.release();

    let second = CreditdProcess::start(&database_url, &stripe, DEFAULT_TIMINGS).await;
    let deadline = killed_at + Duration::from_secs(30);
    loop {
        let (status,): (String,) = sqlx::query_as("SELECT status FROM purchases WHERE id = $1")
            .bind(&purchase_id)
            .fetch_one(&db)
            .await
            .unwrap();
        if status == "granted" {
            break;
        }
        assert_eq!(status, "granting");
        assert!(
            tokio::time::Instant::now() < deadline,
            "not granted within 30 s of the kill: {}",
            second.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stripe.grants().len(), 1, "{:?}", stripe.grants());
    second.kill().await;
}

/// SIGTERM while an attempt is stuck in a Stripe request past the drain time: the purchase is
/// released on the way out (no lease left, the attempt not counted) and resumed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_releases_the_purchases_it_holds() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    // A long Stripe timeout (and so a long lease) keeps the attempt in hand at shutdown.
    let slow = [
        ("SHUTDOWN_DRAIN_SECS", "1"),
        ("STRIPE_TIMEOUT_MS", "20000"),
        ("WORKER_LEASE_SECS", "90"),
    ];
    let first = CreditdProcess::start(&database_url, &stripe, &slow).await;
    stripe.set_webhook_endpoint(&first.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
    let Registered {
        purchase_id,
        invoice_id,
        ..
    } = first.register_purchase(&stripe, 1300).await;
    let pause = stripe.pause_before_effect("POST", "/v1/billing/credit_grants");
    stripe.pay_invoice(&invoice_id);
    pause.reached().await;
    let (lease_owner,): (Option<String>,) =
        sqlx::query_as("SELECT lease_owner FROM purchases WHERE id = $1")
            .bind(&purchase_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(lease_owner.is_some(), "the attempt holds the purchase");

    let (exit, logs) = first.terminate().await;
    assert!(exit.success(), "{logs}");
    let (lease_owner, attempts): (Option<String>, i32) =
        sqlx::query_as("SELECT lease_owner, attempts FROM purchases WHERE id = $1")
            .bind(&purchase_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(lease_owner, None, "released on shutdown: {logs}");
    assert_eq!(attempts, 0, "the attempt cut short is not counted");
    assert!(logs.contains("released purchases still in hand"), "{logs}");

    // Stripe finishes the request creditd abandoned; the next process adopts that grant.
    pause.release();
    let second = CreditdProcess::start(&database_url, &stripe, &[]).await;
    wait_for_purchase_status(&db, &purchase_id, "granted").await;
    assert_eq!(stripe.grants().len(), 1);
    second.kill().await;
}

/// A stopping process gives back the purchases it holds in every status a worker acts on.
/// `reversing` was once left out, so a refunded purchase held at shutdown waited for its lease.
#[tokio::test]
async fn a_stopping_process_releases_purchases_in_every_working_status() {
    let app = TestApp::spawn().await;
    let (purchase, _) = app.purchase_for_new_invoice(700).await;
    let id = purchase["id"].as_str().unwrap().to_owned();
    let stopping = vec!["stopping-worker".to_owned()];
    let working = creditd::purchase::PurchaseStatus::ALL
        .into_iter()
        .filter(|status| status.is_work());
    for status in working {
        sqlx::query(
            "UPDATE purchases SET status = $2, lease_owner = 'stopping-worker', attempts = 1,
                    lease_expires_at = now() + interval '1 hour',
                    next_attempt_at = now() + interval '1 hour'
             WHERE id = $1",
        )
        .bind(&id)
        .bind(status.as_str())
        .execute(&app.db)
        .await
        .unwrap();
        let released = creditd::db::leases::release_all(&app.db, &stopping)
            .await
            .unwrap();
        assert_eq!(released, 1, "a purchase held in {status} is released");
    }
}

/// An attempt that outlasts its lease keeps the purchase: the heartbeat renews the lease, so no
/// other worker can take it over while the attempt is still running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_heartbeat_keeps_a_long_attempt_s_lease() {
    let app = TestApp::spawn().await;
    let (purchase, _) = app.purchase_for_new_invoice(700).await;
    let id = purchase["id"].as_str().unwrap().to_owned();
    // Due only in an hour, so the app's own workers leave it to this test.
    sqlx::query(
        "UPDATE purchases SET status = 'granting', paid_at = now(),
                next_attempt_at = now() + interval '1 hour' WHERE id = $1",
    )
    .bind(&id)
    .execute(&app.db)
    .await
    .unwrap();
    let lease = app.services.policy.lease;
    let claimed = creditd::db::work::claim_one(&app.db, &id, "long-attempt", lease)
        .await
        .unwrap()
        .expect("claimed");
    let (first_expiry,): (chrono::DateTime<chrono::Utc>,) =
        sqlx::query_as("SELECT lease_expires_at FROM purchases WHERE id = $1")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();

    // The attempt: runs until the test has seen its first lease run out, and longer.
    let (finish, finished) = tokio::sync::oneshot::channel::<()>();
    let services = app.services.clone();
    let attempt = tokio::spawn(async move {
        creditd::lease::with_heartbeat(&services, &claimed.id, "long-attempt", finished).await
    });
    eventually(
        "the first lease has run out by the database's clock",
        || async {
            let (passed,): (bool,) = sqlx::query_as("SELECT now() > $1 + interval '1 second'")
                .bind(first_expiry)
                .fetch_one(&app.db)
                .await
                .unwrap();
            passed
        },
    )
    .await;
    let intruder = creditd::db::work::claim_one(&app.db, &id, "intruder", lease)
        .await
        .unwrap();
    assert!(
        intruder.is_none(),
        "another worker took over a running attempt"
    );
    let (owner,): (Option<String>,) = sqlx::query_as(
        "SELECT lease_owner FROM purchases WHERE id = $1 AND lease_expires_at > now()",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(owner.as_deref(), Some("long-attempt"));
    finish.send(()).unwrap();
    attempt.await.unwrap().unwrap();
}
