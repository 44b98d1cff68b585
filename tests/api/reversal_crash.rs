//! Real crashes in the middle of a reversal: creditd is SIGKILLed after it expired the old grant,
//! and again after Stripe created the replacement, with the idempotency keys forgotten; after the
//! restarts there is exactly one replacement, for the right remainder.

use crate::harness::process::{CreditdProcess, Registered};
use crate::harness::{WEBHOOK_SECRET, fresh_database, wait_for_purchase_status};
use creditd::sandbox::FakeStripe;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_between_expiring_the_grant_and_recording_its_replacement_make_one_replacement() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    let first = CreditdProcess::start(&database_url, &stripe, &[]).await;
    stripe.set_webhook_endpoint(&first.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
    let Registered {
        purchase_id,
        invoice_id,
        customer,
    } = first.register_purchase(&stripe, 10_000).await;
    let (purchase_id, invoice_id) = (purchase_id.as_str(), invoice_id.as_str());
    stripe.pay_invoice(invoice_id);
    wait_for_purchase_status(&db, purchase_id, "granted").await;
    let grant_id = stripe.grants_for(&customer)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    stripe.use_credits(&customer, 2000, "usd").unwrap();

    // First kill: the old grant has expired at Stripe, creditd never heard back.
    let expired = stripe.pause_after_effect(
        "POST",
        &format!("/v1/billing/credit_grants/{grant_id}/expire"),
    );
    stripe.refund_invoice(invoice_id, Some(3000)).unwrap();
    expired.reached().await;
    first.kill().await;
    stripe.forget_idempotency_keys();
    expired.release();

    // Second kill: Stripe created the replacement, creditd never heard back.
    let created = stripe.pause_after_effect("POST", "/v1/billing/credit_grants");
    let second = CreditdProcess::start(&database_url, &stripe, &[]).await;
    created.reached().await;
    second.kill().await;
    stripe.forget_idempotency_keys();
    created.release();
    assert_eq!(
        stripe.grants_for(&customer).len(),
        2,
        "the replacement exists"
    );

    let third = CreditdProcess::start(&database_url, &stripe, &[]).await;
    wait_for_purchase_status(&db, purchase_id, "partially_reversed").await;
    let grants = stripe.grants_for(&customer);
    assert_eq!(
        grants.len(),
        2,
        "one expired grant and one replacement: {grants:?}"
    );
    let replacement = grants
        .iter()
        .find(|g| g["id"] != grant_id.as_str())
        .unwrap();
    assert_eq!(
        replacement["amount"]["monetary"]["value"],
        10_000 - 2000 - 3000
    );
    let (current,): (Option<String>,) =
        sqlx::query_as("SELECT current_grant_id FROM purchases WHERE id = $1")
            .bind(purchase_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(current.as_deref(), replacement["id"].as_str());
    let expires = stripe.requests_to(
        "POST",
        &format!("/v1/billing/credit_grants/{grant_id}/expire"),
    );
    assert_eq!(
        expires.len(),
        1,
        "the ended grant was seen ended, not expired again"
    );
    third.kill().await;
}
