//! `POST /admin/resync`: catching up after lost webhooks, exactly one grant per paid invoice however
//! many re-syncs, webhooks and replicas race, dry runs, paid invoices, and validation.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{ADMIN_TOKEN, TestApp, eventually};

/// Starts a re-sync and returns its id.
pub async fn start_resync(app: &TestApp, body: Value) -> String {
    let (status, answer) = app
        .api(
            Method::POST,
            "/admin/resync",
            Some(&body),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["status"], "running");
    let id = answer["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("rsy_"), "{id}");
    id
}

pub async fn get_resync(app: &TestApp, id: &str) -> Value {
    let (status, body) = app
        .api(
            Method::GET,
            &format!("/admin/resync/{id}"),
            None,
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Waits until the re-sync is no longer running and returns it.
pub async fn wait_for_resync(app: &TestApp, id: &str) -> Value {
    eventually(&format!("re-sync {id} finishes"), || async {
        get_resync(app, id).await["status"] != "running"
    })
    .await;
    get_resync(app, id).await
}

pub fn an_hour_ago() -> i64 {
    chrono::Utc::now().timestamp() - 3600
}

/// Registers `n` purchases and pays their invoices while webhooks are lost.
async fn paid_without_webhooks(app: &TestApp, n: usize) -> Vec<String> {
    app.stripe.set_webhook_delivery(false);
    let mut ids = Vec::new();
    for i in 0..n {
        let (purchase, invoice) = app.purchase_for_new_invoice(1000 + i as i64).await;
        app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
        ids.push(purchase["id"].as_str().unwrap().to_owned());
    }
    ids
}

async fn granting_or_due(app: &TestApp) -> i64 {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM purchases WHERE status IN ('granting', 'creating_invoice')",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    n
}

#[tokio::test]
async fn a_resync_after_lost_webhooks_grants_each_paid_invoice_once_and_a_second_changes_nothing() {
    let app = TestApp::spawn().await;
    let purchases = paid_without_webhooks(&app, 5).await;
    assert!(app.stripe.grants().is_empty());
    let (recorded,): (i64,) = sqlx::query_as("SELECT count(*) FROM stripe_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(recorded, 0, "no webhook arrived");

    let id = start_resync(&app, json!({"since": an_hour_ago()})).await;
    let done = wait_for_resync(&app, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["counts"],
        json!({"seen": 5, "new": 5, "duplicate": 0, "granted": 5, "unmatched": 0, "failed": 0})
    );
    assert_eq!(done["outcomes"].as_array().unwrap().len(), 5);
    assert!(
        done["outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["outcome"] == "scheduled")
    );
    for purchase in &purchases {
        app.wait_for_status(purchase, "granted").await;
    }
    assert_eq!(app.stripe.grants().len(), 5);
    let sources: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT source FROM stripe_events")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert_eq!(sources, vec![("resync".to_string(),)]);
    let requests = app.stripe.requests_to("GET", "/v1/events");
    assert_eq!(requests[0].params["types"], json!(["invoice.paid"]));
    assert_eq!(requests[0].params["limit"], "100");

    let again = start_resync(&app, json!({"since": an_hour_ago()})).await;
    let done = wait_for_resync(&app, &again).await;
    assert_eq!(
        done["counts"],
        json!({"seen": 5, "new": 0, "duplicate": 5, "granted": 0, "unmatched": 0, "failed": 0})
    );
    assert_eq!(
        granting_or_due(&app).await,
        0,
        "nothing was scheduled again"
    );
    assert_eq!(app.stripe.grants().len(), 5);

    let (audited,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM admin_audit WHERE action = 'resync.start' AND actor = 'admin-token'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audited, 2);
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"creditd_catch_up_total{source="resync",outcome="scheduled"} 5"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn overlapping_resyncs_replicas_and_live_webhooks_grant_each_invoice_once() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let purchases = paid_without_webhooks(&app, 6).await;
    let paid_events: Vec<Value> = app
        .stripe
        .events()
        .into_iter()
        .filter(|e| e["type"] == "invoice.paid")
        .collect();
    assert_eq!(paid_events.len(), 6);

    let body = json!({"since": an_hour_ago()});
    let deliveries = paid_events.iter().map(|e| app.stripe.deliver_event(e));
    let (first, second, third, _) = tokio::join!(
        start_resync(&app, body.clone()),
        start_resync(&replica, body.clone()),
        start_resync(&app, json!({"since": an_hour_ago(), "source": "invoices"})),
        futures::future::join_all(deliveries),
    );
    for id in [&first, &second, &third] {
        let done = wait_for_resync(&app, id).await;
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["counts"]["seen"], 6, "{done}");
    }
    for purchase in &purchases {
        app.wait_for_status(purchase, "granted").await;
    }
    let grants = app.stripe.grants();
    assert_eq!(grants.len(), 6, "{grants:#?}");
    let mut granted_for: Vec<&str> = grants
        .iter()
        .map(|g| g["metadata"]["creditd_purchase_id"].as_str().unwrap())
        .collect();
    granted_for.sort();
    granted_for.dedup();
    assert_eq!(granted_for.len(), 6, "one grant per purchase");
    let (events,): (i64,) = sqlx::query_as("SELECT count(*) FROM stripe_events")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        events, 6,
        "each event recorded once, by whichever route came first"
    );
}

#[tokio::test]
async fn a_dry_run_reports_what_would_happen_and_changes_nothing_else() {
    let app = TestApp::spawn().await;
    let purchases = paid_without_webhooks(&app, 2).await;
    let customer = app.stripe.create_customer();
    let stray = app.stripe.create_open_invoice(&customer, 300, "usd", &[]);
    app.stripe.pay_invoice(stray["id"].as_str().unwrap());
    let before = app.snapshot().await;

    let id = start_resync(&app, json!({"since": an_hour_ago(), "dry_run": true})).await;
    let done = wait_for_resync(&app, &id).await;
    assert_eq!(
        done["counts"],
        json!({"seen": 3, "new": 3, "duplicate": 0, "granted": 2, "unmatched": 1, "failed": 0})
    );
    let mut outcomes: Vec<&str> = done["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["outcome"].as_str().unwrap())
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        vec!["unmatched", "would_schedule", "would_schedule"]
    );

    let after = app.snapshot().await;
    for table in [
        "purchases",
        "purchase_transitions",
        "stripe_events",
        "stripe_calls",
    ] {
        assert_eq!(before[table], after[table], "{table} changed");
    }
    for purchase in &purchases {
        assert_eq!(
            app.get_purchase(purchase).await["status"],
            "awaiting_payment"
        );
    }
    assert!(app.stripe.grants().is_empty());
}

#[tokio::test]
async fn a_resync_over_paid_invoices_reaches_back_beyond_the_event_window() {
    let app = TestApp::spawn().await;
    let purchases = paid_without_webhooks(&app, 2).await;
    // Stripe no longer has the events: they are older than 30 days by its clock.
    app.stripe
        .advance_clock(std::time::Duration::from_secs(31 * 86_400));
    let id = start_resync(&app, json!({"since": an_hour_ago()})).await;
    let done = wait_for_resync(&app, &id).await;
    assert_eq!(done["counts"]["seen"], 0, "{done}");

    let since = chrono::Utc::now().timestamp() - 60 * 86_400;
    let (status, body) = app
        .api(
            Method::POST,
            "/admin/resync",
            Some(&json!({"since": since})),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "since");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("30 days"),
        "{body}"
    );

    let id = start_resync(&app, json!({"since": since, "source": "invoices"})).await;
    let done = wait_for_resync(&app, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["counts"]["granted"], 2, "{done}");
    for purchase in &purchases {
        app.wait_for_status(purchase, "granted").await;
    }
    assert_eq!(app.stripe.grants().len(), 2);
    let listing = app.stripe.requests_to("GET", "/v1/invoices");
    assert!(
        listing
            .iter()
            .any(|r| r.path == "/v1/invoices" && r.params["status"] == "paid"),
        "{listing:?}"
    );
}

#[tokio::test]
async fn invalid_resync_requests_name_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let before = app.snapshot().await;
    let now = chrono::Utc::now().timestamp();
    for (body, field) in [
        (json!({}), "since"),
        (json!({"since": "last tuesday"}), "since"),
        (json!({"since": now - 40 * 86_400}), "since"),
        (json!({"since": now - 60, "until": now - 120}), "until"),
        (json!({"since": now - 60, "types": "invoice.paid"}), "types"),
        (json!({"since": now - 60, "dry_run": 1}), "dry_run"),
        (json!({"since": now - 60, "source": "charges"}), "source"),
    ] {
        let (status, answer) = app
            .api(
                Method::POST,
                "/admin/resync",
                Some(&body),
                Some(ADMIN_TOKEN),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{body}: {answer}");
    }
    assert_eq!(app.snapshot().await, before);
    assert!(app.stripe.requests_to("GET", "/v1/events").is_empty());
}
