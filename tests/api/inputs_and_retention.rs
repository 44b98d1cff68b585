//! Admin path ids are checked before anything happens; ignored events' payloads are pruned
//! after the retention period while their rows stay; the per-status gauge is kept by triggers.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{ADMIN_TOKEN, TestApp};

#[tokio::test]
async fn malformed_admin_ids_are_rejected_before_anything_happens() {
    let app = TestApp::spawn().await;
    let before = app.snapshot().await;
    let requests_before = app.stripe.requests().len();
    for (method, path, field) in [
        (
            Method::POST,
            "/admin/events/evt_..%2F..%2Fv1%2Fcharges/replay",
            "event_id",
        ),
        (Method::POST, "/admin/events/in_123/replay", "event_id"),
        (Method::POST, "/admin/events/evt_a%20b/replay", "event_id"),
        (Method::GET, "/admin/purchases/pur_%3Bdrop", "id"),
        (Method::POST, "/admin/purchases/evt_123/retry", "id"),
        (Method::GET, "/admin/resync/pur_123", "id"),
    ] {
        let (status, body) = app.api(method, path, None, Some(ADMIN_TOKEN)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(body["error"]["code"], "invalid_field", "{path}");
        assert_eq!(body["error"]["field"], field, "{path}");
    }
    assert_eq!(
        app.stripe.requests().len(),
        requests_before,
        "Stripe was never asked"
    );
    assert_eq!(
        app.snapshot().await,
        before,
        "no audit row, nothing written"
    );
}

#[tokio::test]
async fn ignored_event_payloads_are_pruned_after_the_retention_period_and_the_rows_stay() {
    // The app's own pruner keeps a year, so only this test's 30-day prune can touch the events
    // it ages (the pruner runs once at start-up, which a loaded machine may delay past that).
    let app = TestApp::spawn_with(|config| config.event_payload_retention_days = 365).await;
    let customer = app.stripe.create_customer();
    let invoice = app.stripe.create_open_invoice(&customer, 300, "usd", &[]);
    let mut ids = Vec::new();
    for event_type in ["customer.updated", "invoice.paid", "charge.succeeded"] {
        let id = format!("evt_retention_{}", event_type.replace('.', "_"));
        let event = json!({"id": id, "object": "event", "type": event_type, "created": 1_700_000_000,
                           "livemode": false, "data": {"object": invoice}});
        let (status, body) = app.post_webhook(&event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        ids.push(id);
    }
    // The first two are old; the third (ignored too) is recent.
    sqlx::query(
        "UPDATE stripe_events SET received_at = now() - interval '31 days' WHERE id = ANY($1)",
    )
    .bind(&ids[..2])
    .execute(&app.db)
    .await
    .unwrap();

    let count = || async {
        let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM stripe_events")
            .fetch_one(&app.db)
            .await
            .unwrap();
        rows
    };
    let rows_before = count().await;
    let pruned = creditd::retention::prune_once(&app.services, 30)
        .await
        .unwrap();
    assert_eq!(pruned, 1, "only the old ignored event");
    assert_eq!(count().await, rows_before, "every row stays");
    let rows: Vec<(String, String, serde_json::Value, bool)> = sqlx::query_as(
        "SELECT id, outcome, payload, payload_pruned_at IS NOT NULL FROM stripe_events
         WHERE id = ANY($1) ORDER BY id",
    )
    .bind(&ids)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    for (id, outcome, payload, pruned) in rows {
        let old_and_ignored = id == ids[0];
        assert_eq!(pruned, old_and_ignored, "{id} ({outcome})");
        assert_eq!(payload.is_null(), old_and_ignored, "{id} ({outcome})");
    }
    assert_eq!(
        creditd::retention::prune_once(&app.services, 30)
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn the_status_gauge_matches_the_table_without_grouping_it() {
    let app = TestApp::spawn().await;
    let (granted, invoice) = app.purchase_for_new_invoice(100).await;
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.wait_for_status(granted["id"].as_str().unwrap(), "granted")
        .await;
    let (_waiting, _) = app.purchase_for_new_invoice(200).await;
    let (_also_waiting, _) = app.purchase_for_new_invoice(300).await;

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("creditd_purchases{status=\"granted\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("creditd_purchases{status=\"awaiting_payment\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("creditd_purchases{status=\"granting\"} 0"),
        "{metrics}"
    );
    // The scrape folded the trigger's rows: one per status with purchases, not one per change.
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM purchase_status_deltas")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 2);
    assert!(
        metrics.contains("creditd_db_connections{pool=\"recorder\",state=\"max\"} 4"),
        "{metrics}"
    );
}

/// Scrapes from two replicas at once each see the whole count, whichever of them folds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_scrapes_on_two_replicas_all_see_the_whole_count() {
    const PURCHASES: usize = 12;
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    for i in 0..PURCHASES {
        app.purchase_for_new_invoice(100 + i as i64).await;
    }
    let mut scrapes = Vec::new();
    for round in 0..16 {
        let (http, url) = if round % 2 == 0 {
            (app.http.clone(), app.url("/metrics"))
        } else {
            (replica.http.clone(), replica.url("/metrics"))
        };
        scrapes.push(tokio::spawn(async move {
            http.get(url).send().await.unwrap().text().await.unwrap()
        }));
    }
    let expected = format!("creditd_purchases{{status=\"awaiting_payment\"}} {PURCHASES}");
    for scrape in scrapes {
        let metrics = scrape.await.unwrap();
        assert!(metrics.contains(&expected), "{metrics}");
    }
}
