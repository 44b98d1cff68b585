//! Exactly one grant per paid purchase: concurrent duplicates, stored 500s, and a failed commit.

use std::collections::HashSet;

use reqwest::StatusCode;

use crate::harness::TestApp;
use creditd::sandbox::{Fault, FaultKind, invoice_paid_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_deliveries_and_a_second_event_id_make_one_grant() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    app.stripe.set_webhook_delivery(false);
    let (purchase, invoice) = app.purchase_for_new_invoice(5000).await;
    let paid = app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    let mut second = invoice_paid_event(&paid["data"]["object"]);
    second["type"] = "invoice.paid".into();
    assert_ne!(second["id"], paid["id"]);

    let deliveries = (0..50).map(|i| {
        let target = if i % 2 == 0 { &app } else { &replica };
        target.post_webhook(&paid)
    });
    let (answers, second_answer) = tokio::join!(
        futures::future::join_all(deliveries),
        replica.post_webhook(&second)
    );
    for (status, body) in answers.iter().chain([&second_answer]) {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    let fresh = answers
        .iter()
        .filter(|(_, body)| body["duplicate"] == false)
        .count();
    assert_eq!(fresh, 1, "exactly one delivery of the first event is new");

    app.wait_for_status(purchase["id"].as_str().unwrap(), "granted")
        .await;
    let (events,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM stripe_events WHERE type = 'invoice.paid'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(events, 2);
    assert_eq!(app.stripe.grants().len(), 1);
    replica.shutdown().await;
}

#[tokio::test]
async fn a_grant_made_before_stripe_answered_500_is_adopted_not_repeated() {
    let app = TestApp::spawn().await;
    app.stripe.inject(Fault::new(
        "POST",
        "/v1/billing/credit_grants",
        FaultKind::EffectThenStored500,
    ));
    let (purchase, invoice) = app.purchase_for_new_invoice(2500).await;
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    let granted = app
        .wait_for_status(purchase["id"].as_str().unwrap(), "granted")
        .await;
    let grants = app.stripe.grants();
    assert_eq!(grants.len(), 1);
    assert_eq!(granted["credit_grant_id"], grants[0]["id"]);
    assert!(
        !app.stripe
            .requests_to("GET", "/v1/billing/credit_grants")
            .is_empty(),
        "creditd looked before creating again"
    );
}

#[tokio::test]
async fn a_stored_500_without_a_grant_is_resolved_with_a_fresh_key_and_one_grant() {
    let app = TestApp::spawn().await;
    app.stripe.inject(Fault::new(
        "POST",
        "/v1/billing/credit_grants",
        FaultKind::Stored500,
    ));
    let (purchase, invoice) = app.purchase_for_new_invoice(2500).await;
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.wait_for_status(purchase["id"].as_str().unwrap(), "granted")
        .await;
    assert_eq!(app.stripe.grants().len(), 1);
    let keys: HashSet<_> = app
        .stripe
        .requests_to("POST", "/v1/billing/credit_grants")
        .into_iter()
        .map(|r| r.idempotency_key.unwrap())
        .collect();
    assert_eq!(
        keys.len(),
        2,
        "the replayed 500 forced exactly one new key: {keys:?}"
    );
}

/// The grant is made, then our commit fails (a trigger raises), and Stripe forgets the key as it
/// does after 24 hours. The next attempt must find the grant instead of making a second one.
#[tokio::test]
async fn a_failed_commit_after_the_grant_adopts_it_even_when_the_key_is_forgotten() {
    let app = TestApp::spawn().await;
    sqlx::raw_sql(
        r#"
        CREATE SEQUENCE injected_failures;
        CREATE FUNCTION fail_first_grant_commit() RETURNS trigger AS $$
        BEGIN
            -- Sequences ignore rollbacks, so this fails exactly the first commit.
            IF NEW.status = 'granted' AND nextval('injected_failures') = 1 THEN
                RAISE EXCEPTION 'injected commit failure';
            END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql;
        CREATE TRIGGER fail_first_grant_commit BEFORE UPDATE ON purchases
            FOR EACH ROW EXECUTE FUNCTION fail_first_grant_commit();
        "#,
    )
    .execute(&app.db)
    .await
    .unwrap();
    let pause = app
        .stripe
        .pause_after_effect("POST", "/v1/billing/credit_grants");
    let (purchase, invoice) = app.purchase_for_new_invoice(900).await;
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    pause.reached().await;
    app.stripe.forget_idempotency_keys();
    pause.release();

    let granted = app
        .wait_for_status(purchase["id"].as_str().unwrap(), "granted")
        .await;
    let grants = app.stripe.grants();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(granted["credit_grant_id"], grants[0]["id"]);
    let (failures,): (i64,) = sqlx::query_as("SELECT last_value FROM injected_failures")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(
        failures >= 2,
        "the first commit really failed and a later one succeeded"
    );
}
