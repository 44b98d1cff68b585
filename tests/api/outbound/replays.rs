//! One message per transition: a transition seen again (a duplicate webhook, an admin replay, a
//! re-sync, an operator's retry) makes no second message and no second delivery.

use serde_json::json;

use super::{admin_post, count, messages_of, register};
use crate::admin_resync::{an_hour_ago, start_resync, wait_for_resync};
use crate::harness::receiver::{Behaviour, Receiver};
use crate::harness::{TestApp, eventually};

#[tokio::test]
async fn a_duplicate_webhook_a_replay_a_resync_and_a_retry_make_no_second_message() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    register(&app, &receiver.url, json!(["*"])).await;
    let (purchase_id, invoice_id) = super::funded_purchase(&app).await;
    let purchase_id = purchase_id.as_str();
    let event = app.stripe.pay_invoice(&invoice_id);
    app.stripe.wait_for_deliveries().await;
    app.wait_for_status(purchase_id, "granted").await;
    receiver.wait_for_type("purchase.granted").await;
    receiver.wait_for_type("purchase.invoice_ready").await;
    let all_delivered = || async {
        let messages = messages_of(&app, purchase_id).await;
        messages.len() == 2
            && messages
                .iter()
                .all(|m| m["deliveries"][0]["status"] == "delivered")
    };
    eventually("both deliveries recorded", all_delivered).await;
    let before = messages_of(&app, purchase_id).await;
    assert_eq!(before.len(), 2, "invoice_ready and granted: {before:?}");

    let (status, _) = app.post_webhook(&event).await;
    assert!(status.is_success());
    let event_id = event["id"].as_str().unwrap();
    let (status, body) = admin_post(&app, &format!("/admin/events/{event_id}/replay"), None).await;
    assert!(status.is_success(), "{body}");
    let resync = start_resync(&app, json!({"since": an_hour_ago()})).await;
    wait_for_resync(&app, &resync).await;
    for message in &before {
        let path = format!(
            "/admin/webhook_messages/{}/retry",
            message["id"].as_str().unwrap()
        );
        let (status, body) = admin_post(&app, &path, None).await;
        assert!(status.is_success(), "{body}");
        assert_eq!(body["requeued"], 0, "delivered messages are not sent again");
    }
    app.drain().await;

    let after = messages_of(&app, purchase_id).await;
    assert_eq!(after, before);
    assert_eq!(count(&app, "webhook_messages").await, 2);
    assert_eq!(count(&app, "webhook_deliveries").await, 2);
    assert_eq!(receiver.deliveries().len(), 2);
}

#[tokio::test]
async fn an_operator_retry_sends_a_failed_message_again_under_its_id() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.behave(Behaviour::Status(503));
    register(&app, &receiver.url, json!(["purchase.granted"])).await;
    let purchase_id = super::granted_purchase(&app).await;
    let failed = || async {
        messages_of(&app, &purchase_id)
            .await
            .iter()
            .any(|m| m["type"] == "purchase.granted" && m["deliveries"][0]["status"] == "failed")
    };
    eventually("the schedule to run out", failed).await;
    let attempts = receiver.deliveries().len();
    assert_eq!(
        attempts, 4,
        "the first attempt and one per step of 50ms,50ms,50ms"
    );

    receiver.behave(Behaviour::Ok);
    let messages = messages_of(&app, &purchase_id).await;
    let granted = messages
        .iter()
        .find(|m| m["type"] == "purchase.granted")
        .unwrap();
    let path = format!(
        "/admin/webhook_messages/{}/retry",
        granted["id"].as_str().unwrap()
    );
    let (status, body) = admin_post(&app, &path, None).await;
    assert!(status.is_success(), "{body}");
    assert_eq!(body["requeued"], 1);
    let deliveries = receiver.wait_for(attempts + 1).await;
    assert!(
        deliveries
            .iter()
            .all(|d| d.id == granted["id"].as_str().unwrap())
    );
    // Only purchase.granted is subscribed, so invoice_ready left no message.
    assert_eq!(count(&app, "webhook_messages").await, 1);
    let audited: (i64,) =
        sqlx::query_as("SELECT count(*) FROM admin_audit WHERE action = 'webhook_message.retry'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(audited.0, 1);
}

#[tokio::test]
async fn without_a_subscribed_endpoint_no_message_is_stored() {
    let app = TestApp::spawn().await;
    register(
        &app,
        "http://127.0.0.1:9/hook",
        json!(["purchase.canceled"]),
    )
    .await;
    super::granted_purchase(&app).await;
    assert_eq!(count(&app, "webhook_messages").await, 0);
    assert_eq!(count(&app, "webhook_deliveries").await, 0);
}
