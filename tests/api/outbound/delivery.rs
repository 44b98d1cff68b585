//! Delivery: signed, with the purchase as the API shows it, retried under the same `webhook-id`
//! after a 500, a timeout or a refused connection, and delivered once the receiver recovers.

use std::time::Duration;

use serde_json::{Value, json};

use super::{granted_purchase, messages_of, register};
use crate::harness::process::free_port;
use crate::harness::receiver::{Behaviour, Receiver};
use crate::harness::{TestApp, eventually};

/// Retries that outlast the few hundred milliseconds these tests need.
const PATIENT: &str = "100ms,200ms,300ms,500ms,1s,2s";

/// The delivery of a purchase's `event_type` message to its only endpoint, as the operator sees it.
async fn delivery(app: &TestApp, purchase_id: &str, event_type: &str) -> Value {
    let messages = messages_of(app, purchase_id).await;
    let message = messages
        .iter()
        .find(|m| m["type"] == event_type)
        .unwrap_or_else(|| panic!("no {event_type} message in {messages:?}"));
    message["deliveries"][0].clone()
}

async fn wait_delivered(app: &TestApp, purchase_id: &str, event_type: &str) -> Value {
    eventually("the delivery to be delivered", || async {
        delivery(app, purchase_id, event_type).await["status"] == "delivered"
    })
    .await;
    delivery(app, purchase_id, event_type).await
}

#[tokio::test]
async fn a_granted_purchase_is_posted_signed_with_the_purchase_as_the_api_shows_it() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (_, secret) = register(&app, &receiver.url, json!(["*"])).await;
    let purchase_id = granted_purchase(&app).await;

    let granted = receiver.wait_for_type("purchase.granted").await;
    assert!(granted.signed_with(&secret), "{granted:?}");
    let event = granted.json();
    assert_eq!(event["id"], granted.id.as_str());
    assert!(granted.id.starts_with("msg_"));
    assert!(event["created"].as_i64().unwrap() > 0);
    let shown = app.get_purchase(&purchase_id).await;
    assert_eq!(event["data"]["purchase"]["id"], shown["id"]);
    assert_eq!(event["data"]["purchase"]["status"], "granted");
    assert_eq!(
        event["data"]["purchase"]["credit_grant_id"],
        shown["credit_grant_id"]
    );
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(&event["data"]["purchase"]),
        keys(&shown),
        "the same object as GET"
    );

    let ready = receiver.wait_for_type("purchase.invoice_ready").await;
    assert!(ready.signed_with(&secret));
    assert!(ready.json()["data"]["purchase"]["hosted_invoice_url"].is_string());
    let view = wait_delivered(&app, &purchase_id, "purchase.granted").await;
    assert_eq!(view["attempts"][0]["http_status"], 200);
    assert_eq!(view["attempts"][0]["response"], "ok");
}

#[tokio::test]
async fn a_receiver_answering_500_gets_the_same_message_until_it_recovers() {
    let app = TestApp::spawn_with(|c| c.outbound.outbound_retry_schedule = PATIENT.into()).await;
    let receiver = Receiver::start().await;
    receiver.behave(Behaviour::Status(500));
    register(&app, &receiver.url, json!(["purchase.granted"])).await;
    let purchase_id = granted_purchase(&app).await;

    receiver.wait_for(2).await;
    receiver.behave(Behaviour::Ok);
    let view = wait_delivered(&app, &purchase_id, "purchase.granted").await;
    let deliveries = receiver.deliveries();
    assert!(deliveries.len() >= 3);
    assert!(
        deliveries.iter().all(|d| d.id == deliveries[0].id),
        "one webhook-id"
    );
    assert!(
        deliveries.iter().all(|d| d.body == deliveries[0].body),
        "the same bytes"
    );
    let attempts = view["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), deliveries.len());
    assert_eq!(attempts[0]["http_status"], 500);
    assert_eq!(attempts[0]["response"], "receiver says no");
    assert_eq!(attempts.last().unwrap()["http_status"], 200);
}

#[tokio::test]
async fn an_attempt_that_times_out_is_retried_under_the_same_id() {
    let app = TestApp::spawn_with(|c| {
        c.outbound.outbound_retry_schedule = PATIENT.into();
        c.outbound.outbound_timeout_ms = 300;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.behave(Behaviour::Hang(Duration::from_secs(3)));
    register(&app, &receiver.url, json!(["purchase.granted"])).await;
    let purchase_id = granted_purchase(&app).await;

    receiver.wait_for(1).await;
    receiver.behave(Behaviour::Ok);
    let view = wait_delivered(&app, &purchase_id, "purchase.granted").await;
    assert_eq!(view["attempts"][0]["http_status"], Value::Null);
    assert_eq!(view["attempts"][0]["error"], "timeout after 300 ms");
    let deliveries = receiver.deliveries();
    assert!(deliveries.len() >= 2);
    assert!(deliveries.iter().all(|d| d.id == deliveries[0].id));
}

#[tokio::test]
async fn a_refused_connection_is_retried_and_delivered_once_the_receiver_listens() {
    let app = TestApp::spawn_with(|c| c.outbound.outbound_retry_schedule = PATIENT.into()).await;
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    register(&app, &url, json!(["purchase.granted"])).await;
    let purchase_id = granted_purchase(&app).await;

    eventually("a refused attempt", || async {
        let view = delivery(&app, &purchase_id, "purchase.granted").await;
        !view["attempts"].as_array().unwrap().is_empty()
    })
    .await;
    let view = delivery(&app, &purchase_id, "purchase.granted").await;
    let error = view["attempts"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("connection failed"), "{error}");

    // The age of the oldest undelivered message is what the alert watches.
    sqlx::query("UPDATE webhook_messages SET created_at = now() - interval '2 hours'")
        .execute(&app.db)
        .await
        .unwrap();
    let metrics = app.metrics().await;
    let age = metrics
        .lines()
        .find_map(|l| l.strip_prefix("creditd_outbound_oldest_undelivered_seconds "))
        .unwrap();
    assert!(age.parse::<i64>().unwrap() >= 7200, "{age}");

    let receiver = Receiver::start_on(port).await;
    wait_delivered(&app, &purchase_id, "purchase.granted").await;
    let messages = messages_of(&app, &purchase_id).await;
    let granted = messages.iter().find(|m| m["type"] == "purchase.granted");
    let message_id = granted.unwrap()["id"].clone();
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(message_id, deliveries[0].id.as_str());
}

#[tokio::test]
async fn retry_after_is_honoured_up_to_the_longest_step() {
    let app = TestApp::spawn_with(|c| c.outbound.outbound_retry_schedule = "50ms,1h".into()).await;
    let receiver = Receiver::start().await;
    receiver.behave(Behaviour::TooManyRequests(600));
    register(&app, &receiver.url, json!(["purchase.granted"])).await;
    let purchase_id = granted_purchase(&app).await;

    eventually("the 429 recorded", || async {
        let view = delivery(&app, &purchase_id, "purchase.granted").await;
        view["attempts"][0]["http_status"] == 429
    })
    .await;
    let view = delivery(&app, &purchase_id, "purchase.granted").await;
    let wait = view["next_attempt_at"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!(
        (500..=700).contains(&wait),
        "asked for 600 s, scheduled in {wait} s"
    );
    assert_eq!(receiver.deliveries().len(), 1);
}

#[tokio::test]
async fn only_the_first_kib_of_an_answer_is_kept() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.behave(Behaviour::Huge(1 << 20));
    register(&app, &receiver.url, json!(["purchase.granted"])).await;
    let purchase_id = granted_purchase(&app).await;

    eventually("the answer recorded", || async {
        let view = delivery(&app, &purchase_id, "purchase.granted").await;
        view["attempts"][0]["http_status"] == 500
    })
    .await;
    let view = delivery(&app, &purchase_id, "purchase.granted").await;
    assert_eq!(
        view["attempts"][0]["response"].as_str().unwrap().len(),
        1024
    );
}
