//! Real crashes: creditd is SIGKILLed at the worst moments and restarted; money comes out right.

use crate::harness::process::{CreditdProcess, Registered};
use crate::harness::{WEBHOOK_SECRET, fresh_database, wait_for_purchase_status};
use creditd::sandbox::FakeStripe;

/// Killed after Stripe made the grant but before creditd heard back; the key is then forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_stripes_success_and_our_commit_grants_once() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    let first = CreditdProcess::start(&database_url, &stripe, &[]).await;
    stripe.set_webhook_endpoint(&first.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
    let Registered {
        purchase_id,
        invoice_id,
        ..
    } = first.register_purchase(&stripe, 5000).await;

    let pause = stripe.pause_after_effect("POST", "/v1/billing/credit_grants");
    stripe.pay_invoice(&invoice_id);
    pause.reached().await;
    first.kill().await;
    stripe.forget_idempotency_keys();
    pause.release();
    assert_eq!(
        stripe.grants().len(),
        1,
        "Stripe made the grant before the crash"
    );

    let second = CreditdProcess::start(&database_url, &stripe, &[]).await;
    wait_for_purchase_status(&db, &purchase_id, "granted").await;
    let grants = stripe.grants();
    assert_eq!(grants.len(), 1, "{grants:?}");
    let (grant_id,): (String,) =
        sqlx::query_as("SELECT credit_grant_id FROM purchases WHERE id = $1")
            .bind(&purchase_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(grants[0]["id"], grant_id.as_str());
    second.kill().await;
}

/// Killed while the grant request was still in flight: Stripe finishes it after creditd died.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_with_the_grant_request_in_flight_grants_once() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    let first = CreditdProcess::start(&database_url, &stripe, &[]).await;
    stripe.set_webhook_endpoint(&first.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
    let Registered {
        purchase_id,
        invoice_id,
        ..
    } = first.register_purchase(&stripe, 1500).await;

    let pause = stripe.pause_before_effect("POST", "/v1/billing/credit_grants");
    stripe.pay_invoice(&invoice_id);
    pause.reached().await;
    first.kill().await;
    pause.release();

    let second = CreditdProcess::start(&database_url, &stripe, &[]).await;
    wait_for_purchase_status(&db, &purchase_id, "granted").await;
    assert_eq!(stripe.grants().len(), 1);
    second.kill().await;
}

/// Killed after the event was recorded but before any worker ran: the restart fulfils it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_recording_the_event_is_resumed_after_restart() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    let first = CreditdProcess::start(&database_url, &stripe, &[]).await;
    stripe.set_webhook_endpoint(&first.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
    let Registered {
        purchase_id,
        invoice_id,
        ..
    } = first.register_purchase(&stripe, 700).await;

    let pause = stripe.pause_before_effect("GET", "/v1/invoices/");
    stripe.pay_invoice(&invoice_id);
    pause.reached().await;
    first.kill().await;
    pause.release();
    drop(pause);

    let second = CreditdProcess::start(&database_url, &stripe, &[]).await;
    wait_for_purchase_status(&db, &purchase_id, "granted").await;
    assert_eq!(stripe.grants().len(), 1);
    second.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_creditd_gracefully_with_exit_status_zero() {
    let stripe = FakeStripe::start().await;
    let (database_url, _db) = fresh_database().await;
    let process = CreditdProcess::start(&database_url, &stripe, &[]).await;
    let (status, logs) = process.terminate().await;
    assert!(status.success(), "exit {status:?}: {logs}");
    assert!(
        logs.contains("SIGTERM received") && logs.contains("creditd stopped"),
        "{logs}"
    );
}
