//! Which transitions make which events, at the database level: every settled status by name
//! (`reversed` and `partially_reversed` included), never a return to the settled status a
//! purchase already had (through `reversing` or an operator's retry), "paid without credits"
//! beside `failed` or `rejected` after a payment, and `invoice_ready` once.

use serde_json::json;

use super::register;
use crate::harness::TestApp;

async fn insert(app: &TestApp, id: &str) {
    sqlx::query(
        "INSERT INTO purchases (id, status, customer, amount, currency, livemode, credit)
         VALUES ($1, 'awaiting_payment', 'cus_1', 100, 'usd', false,
                 '{\"value\": 100, \"currency\": \"usd\", \"name\": \"c\", \"category\": \"paid\",
                   \"applicability\": {\"price_type\": \"metered\"}}')",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
}

async fn set(app: &TestApp, id: &str, assignments: &str) {
    sqlx::query(&format!("UPDATE purchases SET {assignments} WHERE id = $1"))
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
}

async fn events_of(app: &TestApp, id: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT id, event_type FROM webhook_messages WHERE purchase_id = $1 ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

fn types(events: &[(String, String)]) -> Vec<&str> {
    events.iter().map(|(_, t)| t.as_str()).collect()
}

#[tokio::test]
async fn each_transition_makes_its_event_once() {
    // No delivery workers: this is about what the triggers write.
    let app = TestApp::spawn_with(|c| c.outbound.outbound_worker_count = 0).await;
    register(&app, "http://127.0.0.1:9/hook", json!(["*"])).await;
    // The statuses of refunds and disputes (another migration adds them to the CHECK).
    sqlx::query("ALTER TABLE purchases DROP CONSTRAINT IF EXISTS purchases_status_check")
        .execute(&app.db)
        .await
        .unwrap();

    insert(&app, "pur_ready").await;
    set(
        &app,
        "pur_ready",
        "hosted_invoice_url = 'https://pay.example/1'",
    )
    .await;
    set(
        &app,
        "pur_ready",
        "hosted_invoice_url = 'https://pay.example/2'",
    )
    .await;
    set(&app, "pur_ready", "status = 'awaiting_payment'").await;
    set(&app, "pur_ready", "status = 'granting'").await;
    set(
        &app,
        "pur_ready",
        "status = 'granted', credit_grant_id = 'credgr_1'",
    )
    .await;
    set(&app, "pur_ready", "status = 'granted'").await;
    // A refund event that changes nothing passes through `reversing` and back: no event.
    set(&app, "pur_ready", "status = 'reversing'").await;
    set(&app, "pur_ready", "status = 'granted'").await;
    set(&app, "pur_ready", "status = 'reversing'").await;
    set(&app, "pur_ready", "status = 'partially_reversed'").await;
    set(&app, "pur_ready", "status = 'reversing'").await;
    set(&app, "pur_ready", "status = 'reversed'").await;
    set(&app, "pur_ready", "status = 'reversing'").await;
    set(&app, "pur_ready", "status = 'reversed'").await;
    let ready = events_of(&app, "pur_ready").await;
    assert_eq!(
        types(&ready),
        [
            "purchase.invoice_ready",
            "purchase.granted",
            "purchase.partially_reversed",
            "purchase.reversed"
        ]
    );
    assert_eq!(ready[0].0, "msg_ready_invoice_ready");
    assert!(ready[1].0.starts_with("msg_ready_t") && ready[1].0.ends_with("_granted"));

    insert(&app, "pur_paid").await;
    set(&app, "pur_paid", "status = 'granting', paid_at = now()").await;
    set(&app, "pur_paid", "status = 'failed'").await;
    // An operator's retry that fails again is not news.
    set(&app, "pur_paid", "status = 'granting'").await;
    set(&app, "pur_paid", "status = 'failed'").await;
    let paid = events_of(&app, "pur_paid").await;
    assert_eq!(
        types(&paid),
        ["purchase.failed", "purchase.paid_without_credits"]
    );

    insert(&app, "pur_unpaid").await;
    set(&app, "pur_unpaid", "status = 'rejected'").await;
    set(&app, "pur_unpaid", "status = 'canceled'").await;
    let unpaid = events_of(&app, "pur_unpaid").await;
    assert_eq!(types(&unpaid), ["purchase.rejected", "purchase.canceled"]);

    let (deliveries,): (i64,) = sqlx::query_as("SELECT count(*) FROM webhook_deliveries")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        deliveries, 8,
        "one delivery per message to the one endpoint"
    );
}
