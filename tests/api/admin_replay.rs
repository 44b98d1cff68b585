//! `POST /admin/events/{id}/replay`: never a second grant, and an event creditd never received is
//! fetched from Stripe and granted once.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp};

async fn replay(app: &TestApp, event_id: &str) -> (StatusCode, Value) {
    app.api(
        Method::POST,
        &format!("/admin/events/{event_id}/replay"),
        None,
        Some(ADMIN_TOKEN),
    )
    .await
}

/// A purchase row written straight into the database, as if its registration had raced the
/// webhook and missed the match.
async fn insert_awaiting_purchase(
    app: &TestApp,
    id: &str,
    customer: &str,
    invoice_id: &str,
    amount: i64,
) {
    sqlx::query(
        "INSERT INTO purchases (id, status, customer, amount, currency, invoice_id, livemode, credit)
         SELECT $1, 'awaiting_payment', $2, $4, 'usd', $3, false,
                jsonb_build_object('value', $4, 'currency', 'usd', 'name', 'Credits', 'category', 'paid',
                                   'applicability', jsonb_build_object('price_type', 'metered'))",
    )
    .bind(id)
    .bind(customer)
    .bind(invoice_id)
    .bind(amount)
    .execute(&app.db)
    .await
    .unwrap();
}

#[tokio::test]
async fn replaying_a_processed_event_makes_no_second_grant() {
    let app = TestApp::spawn().await;
    let (purchase, invoice) = app.purchase_for_new_invoice(2500).await;
    let purchase_id = purchase["id"].as_str().unwrap();
    let event = app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.stripe.wait_for_deliveries().await;
    app.wait_for_status(purchase_id, "granted").await;

    for _ in 0..3 {
        let (status, body) = replay(&app, event["id"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["outcome"], "already_granted", "{body}");
        assert_eq!(body["purchase_id"], purchase_id);
    }
    assert_eq!(app.get_purchase(purchase_id).await["status"], "granted");
    assert_eq!(app.stripe.grants().len(), 1);
    assert_eq!(
        app.stripe
            .requests_to("POST", "/v1/billing/credit_grants")
            .len(),
        1
    );
    let (audited,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM admin_audit WHERE action = 'event.replay'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(audited, 3);
}

#[tokio::test]
async fn replaying_a_never_received_event_fetches_it_and_grants_once() {
    let app = TestApp::spawn().await;
    app.stripe.set_webhook_delivery(false);
    let (purchase, invoice) = app.purchase_for_new_invoice(4200).await;
    let purchase_id = purchase["id"].as_str().unwrap();
    let event = app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    let event_id = event["id"].as_str().unwrap();

    let (status, body) = replay(&app, event_id).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"event_id": event_id, "outcome": "scheduled", "purchase_id": purchase_id, "from": "stripe"})
    );
    app.wait_for_status(purchase_id, "granted").await;
    let (source,): (String,) = sqlx::query_as("SELECT source FROM stripe_events WHERE id = $1")
        .bind(event_id)
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(source, "replay");

    let (status, body) = replay(&app, event_id).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["outcome"], "already_granted");
    assert_eq!(app.stripe.grants().len(), 1);
}

#[tokio::test]
async fn replaying_a_stored_event_schedules_a_purchase_registered_after_it() {
    let app = TestApp::spawn().await;
    let customer = app.stripe.create_customer();
    let invoice = app.stripe.create_open_invoice(&customer, 900, "usd", &[]);
    let event = app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.stripe.wait_for_deliveries().await;
    // Stored as unmatched; then the purchase appears, but its registration misses the match
    // (simulated: a purchase row inserted directly as awaiting payment).
    let invoice_id = invoice["id"].as_str().unwrap();
    insert_awaiting_purchase(
        &app,
        "pur_replaytest0000000000000",
        &customer,
        invoice_id,
        900,
    )
    .await;
    let (status, body) = replay(&app, event["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        matches!(
            body["outcome"].as_str(),
            Some("scheduled" | "already_granting" | "already_granted")
        ),
        "{body}"
    );
    app.wait_for_status("pur_replaytest0000000000000", "granted")
        .await;
    assert_eq!(app.stripe.grants().len(), 1);
}

#[tokio::test]
async fn replaying_an_event_stripe_does_not_know_is_a_404() {
    let app = TestApp::spawn().await;
    let before = app.snapshot().await;
    let (status, body) = replay(&app, "evt_doesnotexist").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let after = app.snapshot().await;
    assert_eq!(before["stripe_events"], after["stripe_events"]);
    assert_eq!(before["purchases"], after["purchases"]);
}

#[tokio::test]
async fn replaying_a_stored_void_cancels_a_purchase_still_awaiting_payment() {
    let app = TestApp::spawn().await;
    let customer = app.stripe.create_customer();
    let invoice = app.stripe.create_open_invoice(&customer, 300, "usd", &[]);
    let invoice_id = invoice["id"].as_str().unwrap();
    let voided = app.stripe.void_invoice(invoice_id);
    app.stripe.wait_for_deliveries().await;
    // The void was recorded before creditd knew the purchase (inserted directly, as if its
    // registration raced the webhook).
    insert_awaiting_purchase(
        &app,
        "pur_replayvoid000000000000",
        &customer,
        invoice_id,
        300,
    )
    .await;
    let (status, body) = replay(&app, voided["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "canceled", "{body}");
    assert_eq!(
        app.get_purchase("pur_replayvoid000000000000").await["status"],
        "canceled"
    );
    let (status, again) = replay(&app, voided["id"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["outcome"], "already_canceled", "{again}");
}
