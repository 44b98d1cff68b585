//! The purchase state machine across Stripe's invoice lifecycle: uncollectible invoices, expiries
//! judged at grant time, and funding that an admin retry resumes without a second invoice.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp};
use creditd::sandbox::{Fault, FaultKind};

fn funded(customer: &str, amount: i64, credit: Value) -> Value {
    json!({"customer": customer, "amount": amount, "currency": "usd", "credit": credit})
}

/// A creditd-funded purchase whose invoice is open, and that invoice's id.
async fn awaiting_payment(app: &TestApp, amount: i64, credit: Value) -> (String, String) {
    let customer = app.stripe.create_customer();
    let (status, purchase) = app
        .post_purchase(&funded(&customer, amount, credit), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{purchase}");
    assert_eq!(purchase["status"], "awaiting_payment");
    let id = purchase["id"].as_str().unwrap().to_owned();
    let invoice = purchase["invoice_id"].as_str().unwrap().to_owned();
    (id, invoice)
}

/// Acts at Stripe the way the merchant's dashboard would, over the fake's HTTP API.
async fn stripe_post(app: &TestApp, path: &str, form: &[(&str, &str)]) -> Value {
    let response = app.stripe.client().post(path, form, None).await;
    assert_eq!(response.status, 200, "{path}: {}", response.json);
    app.stripe.wait_for_deliveries().await;
    response.json
}

async fn outcome_of(app: &TestApp, event_type: &str, invoice: &str) -> String {
    let (outcome,): (String,) =
        sqlx::query_as("SELECT outcome FROM stripe_events WHERE type = $1 AND invoice_id = $2")
            .bind(event_type)
            .bind(invoice)
            .fetch_one(&app.db)
            .await
            .unwrap();
    outcome
}

#[tokio::test]
async fn an_uncollectible_invoice_paid_later_grants_exactly_once() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice) = awaiting_payment(&app, 3000, json!({})).await;

    stripe_post(
        &app,
        &format!("/v1/invoices/{invoice}/mark_uncollectible"),
        &[],
    )
    .await;
    assert_eq!(
        outcome_of(&app, "invoice.marked_uncollectible", &invoice).await,
        "noted"
    );
    let noted = app.get_purchase(&id).await;
    assert_eq!(
        noted["status"], "awaiting_payment",
        "still payable: {noted}"
    );
    assert!(noted["uncollectible_at"].is_i64(), "{noted}");

    stripe_post(
        &app,
        &format!("/v1/invoices/{invoice}/pay"),
        &[("paid_out_of_band", "true")],
    )
    .await;
    assert_eq!(
        outcome_of(&app, "invoice.paid", &invoice).await,
        "scheduled"
    );
    app.drain().await;
    let granted = app.get_purchase(&id).await;
    assert_eq!(granted["status"], "granted", "{granted}");
    assert_eq!(app.stripe.grants().len(), 1);
    assert_eq!(granted["settlement"]["paid_out_of_band"], 3000, "{granted}");
}

#[tokio::test]
async fn an_uncollectible_invoice_voided_later_is_canceled_without_a_grant() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice) = awaiting_payment(&app, 3000, json!({})).await;
    stripe_post(
        &app,
        &format!("/v1/invoices/{invoice}/mark_uncollectible"),
        &[],
    )
    .await;
    stripe_post(&app, &format!("/v1/invoices/{invoice}/void"), &[]).await;
    assert_eq!(
        outcome_of(&app, "invoice.voided", &invoice).await,
        "canceled"
    );
    app.drain().await;
    assert_eq!(app.get_purchase(&id).await["status"], "canceled");
    assert!(app.stripe.grants().is_empty());
}

#[tokio::test]
async fn a_payment_recorded_after_a_cancellation_by_an_older_creditd_still_grants() {
    // Earlier versions canceled on `invoice.marked_uncollectible`. A paid invoice wins over that.
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice) = awaiting_payment(&app, 1200, json!({})).await;
    sqlx::query("UPDATE purchases SET status = 'canceled' WHERE id = $1")
        .bind(&id)
        .execute(&app.db)
        .await
        .unwrap();
    stripe_post(&app, &format!("/v1/invoices/{invoice}/pay"), &[]).await;
    assert_eq!(
        outcome_of(&app, "invoice.paid", &invoice).await,
        "scheduled"
    );
    app.drain().await;
    assert_eq!(app.get_purchase(&id).await["status"], "granted");
    assert_eq!(app.stripe.grants().len(), 1);
}

#[tokio::test]
async fn a_fixed_expiry_that_passed_before_payment_is_rejected_and_alerted() {
    let app = TestApp::spawn_without_workers().await;
    // Valid when registered; by grant time it leaves less than the minute a grant must live.
    let expires_at = chrono::Utc::now().timestamp() + 30;
    let (id, invoice) = awaiting_payment(&app, 2000, json!({"expires_at": expires_at})).await;
    stripe_post(&app, &format!("/v1/invoices/{invoice}/pay"), &[]).await;
    app.drain().await;
    let rejected = app.get_purchase(&id).await;
    assert_eq!(rejected["status"], "rejected", "{rejected}");
    assert!(
        rejected["last_error"]
            .as_str()
            .unwrap()
            .contains("credit.expires_at"),
        "{rejected}"
    );
    assert!(app.stripe.grants().is_empty());
    assert!(
        app.metrics()
            .await
            .contains("creditd_purchases_paid_without_credits 1\n"),
        "the money-taken-no-credits gauge counts it"
    );
}

#[tokio::test]
async fn expires_after_days_counts_from_the_grants_creation() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice) = awaiting_payment(&app, 2000, json!({"expires_after_days": 30})).await;
    stripe_post(&app, &format!("/v1/invoices/{invoice}/pay"), &[]).await;
    app.drain().await;
    assert_eq!(app.get_purchase(&id).await["status"], "granted");
    let grant = &app.stripe.grants()[0];
    let created = grant["created"].as_i64().unwrap();
    let expires = grant["expires_at"].as_i64().unwrap();
    let offset = expires - created - 30 * 86_400;
    assert!(offset.abs() <= 5, "expires {expires}, created {created}");
    assert_eq!(
        app.metrics()
            .await
            .matches("paid_without_credits 0\n")
            .count(),
        1
    );
}

#[tokio::test]
async fn expires_after_days_and_expires_at_together_are_refused_by_name() {
    let app = TestApp::spawn_without_workers().await;
    let customer = app.stripe.create_customer();
    let expires_at = chrono::Utc::now().timestamp() + 86_400;
    for (credit, field) in [
        (
            json!({"expires_after_days": 0}),
            "credit.expires_after_days",
        ),
        (
            json!({"expires_after_days": 4000}),
            "credit.expires_after_days",
        ),
        (
            json!({"expires_after_days": 3, "expires_at": expires_at}),
            "credit.expires_after_days",
        ),
    ] {
        let (status, body) = app
            .post_purchase(&funded(&customer, 100, credit), None)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
    assert!(app.stripe.invoices().is_empty());
}

/// Funding fails after Stripe created the invoice (its answer lost), the purchase ends `failed`
/// with the invoice unknown to the database, and an operator retries it.
async fn failed_after_the_invoice_was_made(app: &TestApp) -> (String, String) {
    app.stripe.inject(Fault::new(
        "POST",
        "/v1/invoices",
        FaultKind::EffectThenStored500,
    ));
    let customer = app.stripe.create_customer();
    let (status, purchase) = app
        .post_purchase(&funded(&customer, 4200, json!({})), None)
        .await;
    // The request funds the purchase itself and reports Stripe's refusal.
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{purchase}");
    let (id,): (String,) = sqlx::query_as("SELECT id FROM purchases")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let failed = app.get_purchase(&id).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["invoice_id"].is_null(), "{failed}");
    let drafts = app.stripe.invoices();
    assert_eq!(drafts.len(), 1, "Stripe made the invoice before failing");
    assert_eq!(drafts[0]["status"], "draft");
    app.stripe.clear_faults();
    (id, drafts[0]["id"].as_str().unwrap().to_owned())
}

async fn admin_retry(app: &TestApp, id: &str) {
    let path = format!("/admin/purchases/{id}/retry");
    let (status, body) = app
        .api(
            reqwest::Method::POST,
            &path,
            Some(&json!({})),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn an_admin_retry_resumes_the_draft_stripe_kept_instead_of_making_a_second_invoice() {
    let app = TestApp::spawn_with(|c| {
        c.worker_count = 0;
        c.policy.fulfilment_max_attempts = 1;
    })
    .await;
    let (id, draft) = failed_after_the_invoice_was_made(&app).await;
    admin_retry(&app, &id).await;
    app.drain().await;
    let resumed = app.get_purchase(&id).await;
    assert_eq!(resumed["status"], "awaiting_payment", "{resumed}");
    assert_eq!(resumed["invoice_id"], draft.as_str());
    stripe_post(&app, &format!("/v1/invoices/{draft}/pay"), &[]).await;
    app.drain().await;
    assert_eq!(app.get_purchase(&id).await["status"], "granted");
    assert_eq!(app.stripe.invoices().len(), 1, "one invoice");
    assert_eq!(app.stripe.invoice_items().len(), 1, "one line");
    assert_eq!(app.stripe.grants().len(), 1, "one grant");
}

#[tokio::test]
async fn an_admin_retry_adopts_an_invoice_that_stripe_already_finalized() {
    let app = TestApp::spawn_with(|c| {
        c.worker_count = 0;
        c.policy.fulfilment_max_attempts = 1;
    })
    .await;
    let (id, draft) = failed_after_the_invoice_was_made(&app).await;
    // Meanwhile the draft moved on at Stripe: creditd's line was added and it was finalized.
    let customer = app.stripe.invoices()[0]["customer"]
        .as_str()
        .unwrap()
        .to_owned();
    stripe_post(
        &app,
        "/v1/invoiceitems",
        &[
            ("customer", &customer),
            ("invoice", &draft),
            ("amount", "4200"),
            ("currency", "usd"),
            ("metadata[creditd_purchase_id]", &id),
        ],
    )
    .await;
    stripe_post(&app, &format!("/v1/invoices/{draft}/finalize"), &[]).await;
    admin_retry(&app, &id).await;
    app.drain().await;
    assert_eq!(app.get_purchase(&id).await["status"], "awaiting_payment");
    stripe_post(&app, &format!("/v1/invoices/{draft}/pay"), &[]).await;
    app.drain().await;
    assert_eq!(app.get_purchase(&id).await["status"], "granted");
    assert_eq!(app.stripe.invoices().len(), 1, "no second invoice");
    assert_eq!(app.stripe.invoice_items().len(), 1, "no second line");
    assert_eq!(app.stripe.grants().len(), 1);
}

#[tokio::test]
async fn a_resync_by_invoices_finds_an_old_invoice_paid_inside_the_window() {
    let app = TestApp::spawn_without_workers().await;
    app.stripe.set_webhook_delivery(false);
    // The invoice was created long before the window; only its payment falls inside it.
    let customer = app.stripe.create_customer();
    let ten_days = std::time::Duration::from_secs(10 * 86_400);
    let invoice = app
        .stripe
        .create_open_invoice_created_ago(&customer, 1800, "usd", &[], ten_days);
    let invoice_id = invoice["id"].as_str().unwrap();
    let body =
        json!({"customer": customer, "amount": 1800, "currency": "usd", "invoice_id": invoice_id});
    let (status, purchase) = app.post_purchase(&body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{purchase}");
    app.stripe.pay_invoice(invoice_id);
    let since = chrono::Utc::now().timestamp() - 86_400;
    let id = crate::admin_resync::start_resync(&app, json!({"since": since, "source": "invoices"}))
        .await;
    let done = crate::admin_resync::wait_for_resync(&app, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    app.drain().await;
    let purchase_id = purchase["id"].as_str().unwrap();
    assert_eq!(app.get_purchase(purchase_id).await["status"], "granted");
    assert_eq!(app.stripe.grants().len(), 1);
}
