//! A real SIGKILL after a purchase's transition committed and before its message was sent: the
//! restarted process sends it, under the id the transition gave it.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::process::CreditdProcess;
use std::time::Duration;

use crate::harness::receiver::{Behaviour, Receiver};
use crate::harness::{
    ADMIN_TOKEN, API_TOKEN, WEBHOOK_SECRET, eventually, fresh_database, json_response,
    wait_for_purchase_status,
};
use creditd::sandbox::FakeStripe;

async fn post(
    process: &CreditdProcess,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(process.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, answer) = json_response(response).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_committed_before_a_kill_is_delivered_after_the_restart_under_its_id() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    let receiver = Receiver::start().await;
    // No delivery workers: the kill is certain to come before any delivery.
    let first =
        CreditdProcess::start(&database_url, &stripe, &[("OUTBOUND_WORKER_COUNT", "0")]).await;
    stripe.set_webhook_endpoint(&first.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
    let endpoint = json!({"url": receiver.url, "events": ["purchase.granted"]});
    let secret = post(&first, "/admin/webhook_endpoints", ADMIN_TOKEN, endpoint).await["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let customer = stripe.create_customer();
    let invoice = stripe.create_open_invoice(&customer, 3000, "usd", &[]);
    let body = json!({"customer": customer, "amount": 3000, "currency": "usd", "invoice_id": invoice["id"]});
    let purchase = post(&first, "/v1/purchases", API_TOKEN, body).await;
    let purchase_id = purchase["id"].as_str().unwrap();
    stripe.pay_invoice(invoice["id"].as_str().unwrap());
    wait_for_purchase_status(&db, purchase_id, "granted").await;
    let (message_id,): (String,) = sqlx::query_as(
        "SELECT id FROM webhook_messages WHERE purchase_id = $1 AND event_type = 'purchase.granted'",
    )
    .bind(purchase_id)
    .fetch_one(&db)
    .await
    .expect("the message committed with the transition");
    first.kill().await;
    assert!(receiver.deliveries().is_empty());

    let second = CreditdProcess::start(&database_url, &stripe, &[]).await;
    let delivered = receiver.wait_for(1).await;
    assert_eq!(delivered[0].id, message_id);
    assert!(delivered[0].signed_with(&secret));
    assert_eq!(delivered[0].json()["data"]["purchase"]["status"], "granted");
    second.kill().await;
    assert!(receiver.deliveries().iter().all(|d| d.id == message_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_an_attempt_is_sent_again_after_the_lease_under_the_same_id() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    let receiver = Receiver::start().await;
    receiver.behave(Behaviour::Hang(Duration::from_secs(30)));
    // A 300 ms attempt timeout makes the delivery lease 2.6 s.
    let settings = [("OUTBOUND_TIMEOUT_MS", "300")];
    let first = CreditdProcess::start(&database_url, &stripe, &settings).await;
    stripe.set_webhook_endpoint(&first.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
    let endpoint = json!({"url": receiver.url, "events": ["purchase.granted"]});
    post(&first, "/admin/webhook_endpoints", ADMIN_TOKEN, endpoint).await;
    let customer = stripe.create_customer();
    let invoice = stripe.create_open_invoice(&customer, 3000, "usd", &[]);
    let body = json!({"customer": customer, "amount": 3000, "currency": "usd", "invoice_id": invoice["id"]});
    post(&first, "/v1/purchases", API_TOKEN, body).await;
    stripe.pay_invoice(invoice["id"].as_str().unwrap());
    let in_flight = receiver.wait_for(1).await;
    first.kill().await;
    receiver.behave(Behaviour::Ok);

    let second = CreditdProcess::start(&database_url, &stripe, &settings).await;
    let delivered = || async {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT message_id FROM webhook_deliveries WHERE status = 'delivered'")
                .fetch_optional(&db)
                .await
                .unwrap();
        row.is_some_and(|(id,)| id == in_flight[0].id)
    };
    eventually(
        "the in-flight message delivered after the restart",
        delivered,
    )
    .await;
    second.kill().await;
    assert!(receiver.deliveries().len() >= 2);
    assert!(
        receiver
            .deliveries()
            .iter()
            .all(|d| d.id == in_flight[0].id)
    );
}
