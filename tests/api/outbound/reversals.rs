//! Refunds take credits back, and the merchant hears of it once: `purchase.partially_reversed`
//! and `purchase.reversed` carry the purchase with its reversals, as `GET /v1/purchases/{id}`
//! shows it; a second partial refund is told again, refund events delivered again are not.

use serde_json::{Value, json};

use super::{count, register};
use crate::harness::receiver::Receiver;
use crate::harness::{TestApp, eventually};

#[tokio::test]
async fn refunds_are_told_once_each_with_the_reversals_as_the_api_shows_them() {
    let app = TestApp::spawn_without_workers().await;
    let receiver = Receiver::start().await;
    let (_, secret) = register(&app, &receiver.url, json!(["*"])).await;
    let (purchase, invoice) = app.purchase_for_new_invoice(8000).await;
    let id = purchase["id"].as_str().unwrap().to_owned();
    let invoice_id = invoice["id"].as_str().unwrap().to_owned();
    app.stripe.pay_invoice(&invoice_id);
    app.stripe.wait_for_deliveries().await;
    app.drain().await;
    receiver.wait_for_type("purchase.granted").await;

    app.stripe.refund_invoice(&invoice_id, Some(4000)).unwrap();
    app.stripe.wait_for_deliveries().await;
    app.drain().await;
    let partial = receiver.wait_for_type("purchase.partially_reversed").await;
    assert!(partial.signed_with(&secret));
    let shown = app.get_purchase(&id).await;
    assert_eq!(shown["status"], "partially_reversed");
    let sent = &partial.json()["data"]["purchase"];
    assert_eq!(sent["reversals"], shown["reversals"], "{sent}");
    assert_eq!(sent["reversals"].as_array().unwrap().len(), 1);

    // The refund's events again: the purchase looks again and stays as it was.
    let refund_events: Vec<Value> = app
        .stripe
        .events()
        .into_iter()
        .filter(|e| e["type"] == "charge.refunded" || e["type"] == "refund.created")
        .collect();
    for event in &refund_events {
        let (status, body) = app.post_webhook(event).await;
        assert!(status.is_success(), "{body}");
    }
    app.drain().await;
    assert_eq!(app.get_purchase(&id).await["status"], "partially_reversed");

    // A second partial refund changes the credits: that is news, under a new id.
    app.stripe.refund_invoice(&invoice_id, Some(2000)).unwrap();
    app.stripe.wait_for_deliveries().await;
    app.drain().await;
    eventually("a second partially_reversed", || async {
        let partials = receiver.deliveries();
        partials
            .iter()
            .filter(|d| d.event_type() == "purchase.partially_reversed")
            .count()
            == 2
    })
    .await;

    app.stripe.refund_invoice(&invoice_id, Some(2000)).unwrap();
    app.stripe.wait_for_deliveries().await;
    app.drain().await;
    let reversed = receiver.wait_for_type("purchase.reversed").await;
    assert_eq!(reversed.json()["data"]["purchase"]["status"], "reversed");
    assert_eq!(count(&app, "webhook_messages").await, 4);
    let types: Vec<String> = receiver
        .deliveries()
        .iter()
        .map(|d| d.event_type())
        .collect();
    assert_eq!(
        types,
        [
            "purchase.granted",
            "purchase.partially_reversed",
            "purchase.partially_reversed",
            "purchase.reversed"
        ]
    );
}
