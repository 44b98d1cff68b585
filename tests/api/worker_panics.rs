//! An attempt that panics is caught: the worker goes on granting, the purchase is retried with
//! the panic as its error, and `creditd_worker_panics_total` counts it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use creditd::attempt::AttemptOutcome;
use creditd::purchase::Purchase;
use creditd::services::Services;
use tokio_util::sync::CancellationToken;

use crate::harness::{TestApp, wait_for_purchase_status};

/// An attempt that panics is caught: the purchase is retried with the panic as its error, and
/// the workers go on granting it and others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_attempt_is_retried_and_the_workers_keep_granting() {
    let app = TestApp::spawn().await;
    let (doomed, doomed_invoice) = app.purchase_for_new_invoice(800).await;
    let doomed_id = doomed["id"].as_str().unwrap();
    // Paid, but due only in an hour, so the app's workers leave it to this test for now.
    sqlx::query(
        "UPDATE purchases SET status = 'granting', paid_at = now(),
                next_attempt_at = now() + interval '1 hour' WHERE id = $1",
    )
    .bind(doomed_id)
    .execute(&app.db)
    .await
    .unwrap();
    // Paid in Stripe too, so that its retry can succeed (the webhook finds it granting already).
    app.stripe
        .pay_invoice(doomed_invoice["id"].as_str().unwrap());
    let owner = "test-worker-that-panics";
    let lease = app.services.policy.lease;
    let claimed = creditd::db::work::claim_one(&app.db, doomed_id, owner, lease)
        .await
        .unwrap()
        .expect("the test claims the purchase");

    let outcome = creditd::lease::run_held(&app.services, &claimed, owner, |_, _, _| async {
        panic!("injected panic in an attempt")
    })
    .await;

    assert!(
        matches!(&outcome, Some(AttemptOutcome::RetryScheduled(reason)) if reason.contains("injected panic")),
        "{outcome:?}"
    );
    let (status, error, owner_now, attempts): (String, Option<String>, Option<String>, i32) =
        sqlx::query_as(
            "SELECT status, last_error, lease_owner, attempts FROM purchases WHERE id = $1",
        )
        .bind(doomed_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "granting");
    assert_eq!(
        error.as_deref(),
        Some("attempt panicked: injected panic in an attempt")
    );
    assert_eq!(owner_now, None, "the lease was given back");
    assert_eq!(attempts, 1, "a panic counts as an attempt");
    assert!(
        app.metrics()
            .await
            .contains("creditd_worker_panics_total 1")
    );

    // The workers now grant it on its next attempt, and another purchase as well.
    let (other, other_invoice) = app.purchase_for_new_invoice(900).await;
    app.stripe
        .pay_invoice(other_invoice["id"].as_str().unwrap());
    wait_for_purchase_status(&app.db, other["id"].as_str().unwrap(), "granted").await;
    wait_for_purchase_status(&app.db, doomed_id, "granted").await;
    assert_eq!(app.stripe.grants().len(), 2);
}

/// A real worker loop meets an attempt that panics (the first attempt at one purchase): it
/// survives, grants the other purchase, and grants the first on its next attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_worker_survives_a_panicking_attempt_and_keeps_granting() {
    let app = TestApp::spawn_without_workers().await;
    let (doomed, doomed_invoice) = app.purchase_for_new_invoice(810).await;
    let (other, other_invoice) = app.purchase_for_new_invoice(820).await;
    let doomed_id = doomed["id"].as_str().unwrap().to_owned();

    let panicked = Arc::new(AtomicBool::new(false));
    let attempt = {
        let (doomed_id, panicked) = (doomed_id.clone(), panicked.clone());
        move |services: Services, purchase: Purchase, owner: String| {
            let panic_now =
                purchase.id.as_str() == doomed_id && !panicked.swap(true, Ordering::SeqCst);
            async move {
                if panic_now {
                    panic!("injected panic in the first attempt");
                }
                creditd::worker::run_one(&services, &purchase, &owner).await
            }
        }
    };
    let stop = CancellationToken::new();
    let worker = tokio::spawn(creditd::worker::run_with(
        app.services.clone(),
        "the-only-worker".into(),
        Duration::from_millis(50),
        stop.clone(),
        attempt,
    ));

    app.stripe
        .pay_invoice(doomed_invoice["id"].as_str().unwrap());
    app.stripe
        .pay_invoice(other_invoice["id"].as_str().unwrap());
    wait_for_purchase_status(&app.db, other["id"].as_str().unwrap(), "granted").await;
    wait_for_purchase_status(&app.db, &doomed_id, "granted").await;
    assert!(
        panicked.load(Ordering::SeqCst),
        "the doomed attempt really ran and panicked"
    );
    assert!(
        app.metrics()
            .await
            .contains("creditd_worker_panics_total 1")
    );
    let (attempts,): (i32,) = sqlx::query_as("SELECT attempts FROM purchases WHERE id = $1")
        .bind(&doomed_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(
        attempts >= 2,
        "the panicked attempt counted, then another granted: {attempts}"
    );
    assert_eq!(app.stripe.grants().len(), 2);
    stop.cancel();
    worker.await.unwrap();
}
