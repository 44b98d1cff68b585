//! A re-sync over hundreds of events, SIGKILLed mid-way, resumes from its cursor after a restart
//! and counts every event exactly once.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::process::CreditdProcess;
use crate::harness::{ADMIN_TOKEN, PATIENCE, eventually, fresh_database, json_response};
use creditd::sandbox::FakeStripe;

const EVENTS: usize = 320;

fn stray_paid_event(i: usize, created: i64) -> Value {
    json!({
        "id": format!("evt_stray{i:05}"),
        "object": "event", "api_version": "2026-07-29.dahlia", "created": created,
        "data": {"object": {"id": format!("in_stray{i:05}"), "object": "invoice",
                            "customer": "cus_stray", "currency": "usd", "amount_paid": 100,
                            "status": "paid", "livemode": false, "metadata": {}}},
        "livemode": false, "pending_webhooks": 1, "request": {"id": null, "idempotency_key": null},
        "type": "invoice.paid",
    })
}

async fn resync_row(db: &sqlx::PgPool, id: &str) -> (String, i32, i32, i32, Option<String>) {
    sqlx::query_as("SELECT status, seen, new, unmatched, cursor FROM resyncs WHERE id = $1")
        .bind(id)
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_over_hundreds_of_events_resumes_after_a_kill_and_counts_each_once() {
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    let now = chrono::Utc::now().timestamp();
    for i in 0..EVENTS {
        stripe.insert_event(stray_paid_event(i, now - 10 - i as i64));
    }
    let first = CreditdProcess::start(&database_url, &stripe, &[]).await;

    // Hold the second page's request, so the kill lands after exactly one committed page.
    let first_page = stripe.pause_before_effect("GET", "/v1/events");
    let response = reqwest::Client::new()
        .post(first.url("/admin/resync"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"since": now - 3600}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_response(response).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    first_page.reached().await;
    let second_page = stripe.pause_before_effect("GET", "/v1/events");
    first_page.release();
    tokio::time::timeout(PATIENCE, second_page.reached())
        .await
        .expect("the second page is requested");
    let (status, seen, _, _, cursor) = resync_row(&db, &id).await;
    assert_eq!((status.as_str(), seen), ("running", 100));
    assert_eq!(cursor.as_deref(), Some("evt_stray00099"));
    first.kill().await;
    second_page.release();

    let second = CreditdProcess::start(&database_url, &stripe, &[]).await;
    eventually("the re-sync completes after the restart", || async {
        resync_row(&db, &id).await.0 == "completed"
    })
    .await;
    let (_, seen, new, unmatched, cursor) = resync_row(&db, &id).await;
    assert_eq!(
        (seen, new, unmatched),
        (EVENTS as i32, EVENTS as i32, EVENTS as i32)
    );
    assert_eq!(cursor.as_deref(), Some("evt_stray00319"));
    let (rows, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT event_id) FROM resync_events WHERE resync_id = $1",
    )
    .bind(&id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((rows, distinct), (EVENTS as i64, EVENTS as i64));
    let (recorded,): (i64,) = sqlx::query_as("SELECT count(*) FROM stripe_events")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(recorded, EVENTS as i64);

    // The restarted process resumed after the cursor rather than starting over.
    let pages = stripe.requests_to("GET", "/v1/events");
    assert!(
        pages
            .iter()
            .any(|r| r.params["starting_after"] == "evt_stray00099"),
        "{pages:?}"
    );
    assert_eq!(
        pages
            .iter()
            .filter(|r| r.params["starting_after"].is_null())
            .count(),
        1,
        "only the first page started from the top"
    );
    second.kill().await;
}

/// Killed after the events of a page were recorded but before the page was committed: the redo
/// finds them already recorded, recognises them as its own, and still counts them as new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_between_recording_a_page_and_committing_it_does_not_skew_the_counts() {
    const N: usize = 150;
    let stripe = FakeStripe::start().await;
    let (database_url, db) = fresh_database().await;
    let now = chrono::Utc::now().timestamp();
    for i in 0..N {
        stripe.insert_event(stray_paid_event(i, now - 10 - i as i64));
    }
    let first = CreditdProcess::start(&database_url, &stripe, &[]).await;
    let page = stripe.pause_before_effect("GET", "/v1/events");
    let response = reqwest::Client::new()
        .post(first.url("/admin/resync"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"since": now - 3600}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_response(response).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    page.reached().await;
    // Holding the re-sync's row makes the page commit wait after every event was recorded (NO KEY
    // UPDATE still lets the pending rows' foreign key check through).
    let mut blocker = db.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM resyncs WHERE id = $1 FOR NO KEY UPDATE")
        .bind(&id)
        .execute(&mut *blocker)
        .await
        .unwrap();
    page.release();
    eventually("the first page's events are recorded", || async {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM stripe_events")
            .fetch_one(&db)
            .await
            .unwrap();
        n == 100
    })
    .await;
    first.kill().await;
    blocker.rollback().await.unwrap();
    assert_eq!(resync_row(&db, &id).await.1, 0, "no page was committed");

    let second = CreditdProcess::start(&database_url, &stripe, &[]).await;
    eventually("the re-sync completes after the restart", || async {
        resync_row(&db, &id).await.0 == "completed"
    })
    .await;
    let (_, seen, new, unmatched, _) = resync_row(&db, &id).await;
    assert_eq!((seen, new, unmatched), (N as i32, N as i32, N as i32));
    let (duplicates,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM resync_events WHERE resync_id = $1 AND outcome = 'duplicate'",
    )
    .bind(&id)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(duplicates, 0);
    second.kill().await;
}
