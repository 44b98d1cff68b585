//! Refunds and disputes take the credits back exactly once, against the fake Stripe and a real
//! PostgreSQL: void, expire-and-replace, shortfall, duplicates, reordering, failed refunds, won
//! disputes, `record_only`, and payments that are no purchase's.

use serde_json::{Value, json};

use crate::harness::TestApp;
use creditd::reversal::ReversalPolicy;

/// A granted purchase of `amount` (credits worth the same); returns (purchase id, invoice id, customer).
async fn granted(app: &TestApp, amount: i64) -> (String, String, String) {
    let (purchase, invoice) = app.purchase_for_new_invoice(amount).await;
    let invoice_id = invoice["id"].as_str().unwrap().to_owned();
    app.stripe.pay_invoice(&invoice_id);
    app.stripe.wait_for_deliveries().await;
    app.drain().await;
    let id = purchase["id"].as_str().unwrap().to_owned();
    let shown = app.get_purchase(&id).await;
    assert_eq!(shown["status"], "granted", "{shown}");
    let customer = purchase["customer"].as_str().unwrap().to_owned();
    (id, invoice_id, customer)
}

/// Lets the fake deliver what it sent, then runs every due step (reversing passes, the resolver).
async fn settle(app: &TestApp) {
    app.stripe.wait_for_deliveries().await;
    app.drain().await;
}

fn grant<'a>(grants: &'a [Value], id: &str) -> &'a Value {
    grants.iter().find(|g| g["id"] == id).expect("grant exists")
}

fn value(grant: &Value) -> i64 {
    grant["amount"]["monetary"]["value"].as_i64().unwrap()
}

async fn count(app: &TestApp, sql: &str, purchase_id: &str) -> i64 {
    sqlx::query_scalar(sql)
        .bind(purchase_id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_full_refund_of_an_unused_grant_voids_it() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice, _) = granted(&app, 5000).await;
    let grant_id = app.get_purchase(&id).await["credit_grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.stripe.refund_invoice(&invoice, None).unwrap();
    settle(&app).await;

    let shown = app.get_purchase(&id).await;
    assert_eq!(shown["status"], "reversed", "{shown}");
    assert!(shown["current_credit_grant_id"].is_null(), "{shown}");
    let reversal = &shown["reversals"][0];
    assert_eq!(reversal["kind"], "refund", "{shown}");
    assert_eq!(reversal["state"], "taken", "{shown}");
    assert_eq!(reversal["credits_taken"], 5000, "{shown}");
    assert_eq!(reversal["ended_grant_id"], grant_id.as_str(), "{shown}");
    let grants = app.stripe.grants();
    assert_eq!(grants.len(), 1, "voided, not replaced: {grants:?}");
    assert!(
        grant(&grants, &grant_id)["voided_at"].is_i64(),
        "{grants:?}"
    );
    assert_eq!(
        app.stripe
            .requests_to("POST", "/v1/billing/credit_grants/")
            .len(),
        1
    );

    // The explain view shows the refund's events and every step of the move.
    let path = format!("/admin/purchases/{id}");
    let (_, explained) = app
        .api(
            reqwest::Method::GET,
            &path,
            None,
            Some(crate::harness::ADMIN_TOKEN),
        )
        .await;
    let types: Vec<&str> = explained["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(types.contains(&"charge.refunded"), "{explained}");
    assert_eq!(
        explained["grant_moves"][0]["end_action"], "void",
        "{explained}"
    );
    assert_eq!(
        explained["grant_moves"][0]["available_before"], 5000,
        "{explained}"
    );
}

#[tokio::test]
async fn a_partial_refund_after_use_expires_the_grant_and_replaces_the_remainder() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice, customer) = granted(&app, 10_000).await;
    let grant_id = app.get_purchase(&id).await["credit_grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.stripe.use_credits(&customer, 3000, "usd").unwrap();
    app.stripe.refund_invoice(&invoice, Some(2500)).unwrap();
    settle(&app).await;

    let shown = app.get_purchase(&id).await;
    assert_eq!(shown["status"], "partially_reversed", "{shown}");
    let reversal = &shown["reversals"][0];
    assert_eq!(
        reversal["credits_taken"], 2500,
        "a quarter of the money: {shown}"
    );
    assert_eq!(reversal["credits_shortfall"], 0, "{shown}");
    let grants = app.stripe.grants_for(&customer);
    assert_eq!(grants.len(), 2, "{grants:?}");
    let old = grant(&grants, &grant_id);
    assert!(
        old["voided_at"].is_null(),
        "credits were applied: expired, not voided"
    );
    assert!(old["expires_at"].is_i64(), "{old}");
    let replacement_id = shown["current_credit_grant_id"].as_str().unwrap();
    let replacement = grant(&grants, replacement_id);
    assert_eq!(value(replacement), 10_000 - 3000 - 2500, "{replacement}");
    assert_eq!(
        replacement["metadata"]["creditd_replaces"],
        grant_id.as_str()
    );
    assert_eq!(replacement["metadata"]["creditd_purchase_id"], id.as_str());
    assert_eq!(replacement["priority"], old["priority"]);
    assert_eq!(
        replacement["applicability_config"],
        old["applicability_config"]
    );
}

#[tokio::test]
async fn a_refund_larger_than_what_is_left_records_the_shortfall_and_never_a_negative_grant() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice, customer) = granted(&app, 10_000).await;
    app.stripe.use_credits(&customer, 8000, "usd").unwrap();
    app.stripe.refund_invoice(&invoice, Some(5000)).unwrap();
    settle(&app).await;

    let shown = app.get_purchase(&id).await;
    assert_eq!(shown["status"], "partially_reversed", "{shown}");
    let reversal = &shown["reversals"][0];
    assert_eq!(
        reversal["credits_taken"], 2000,
        "all that was left: {shown}"
    );
    assert_eq!(reversal["credits_shortfall"], 3000, "{shown}");
    assert_eq!(shown["credits_shortfall"], 3000, "{shown}");
    assert!(shown["current_credit_grant_id"].is_null(), "{shown}");
    let grants = app.stripe.grants_for(&customer);
    assert_eq!(
        grants.len(),
        1,
        "no replacement, no negative grant: {grants:?}"
    );
    assert!(
        app.metrics()
            .await
            .contains("creditd_reversal_shortfall_credits_total 3000")
    );
}

#[tokio::test]
async fn a_refund_event_delivered_many_times_at_once_takes_the_credits_once() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice, customer) = granted(&app, 8000).await;
    app.stripe.use_credits(&customer, 1000, "usd").unwrap();
    app.stripe.refund_invoice(&invoice, Some(4000)).unwrap();
    app.stripe.wait_for_deliveries().await;
    let events: Vec<Value> = app
        .stripe
        .events()
        .into_iter()
        .filter(|e| e["type"] == "charge.refunded" || e["type"] == "refund.created")
        .collect();
    assert_eq!(events.len(), 2);
    let copies = (0..8).map(|i| app.post_webhook(&events[i % 2]));
    for (status, body) in futures::future::join_all(copies).await {
        assert!(status.is_success(), "{body}");
    }
    // Two workers' passes at once, on top of the duplicates.
    let (a, b) = tokio::join!(
        creditd::worker::drain(&app.services, "drain-a"),
        creditd::worker::drain(&app.services, "drain-b")
    );
    a.unwrap();
    b.unwrap();
    app.drain().await;

    let shown = app.get_purchase(&id).await;
    assert_eq!(shown["status"], "partially_reversed", "{shown}");
    assert_eq!(shown["reversals"].as_array().unwrap().len(), 1, "{shown}");
    let takes = count(
        &app,
        "SELECT count(*) FROM grant_moves WHERE purchase_id = $1 AND direction = 'take'",
        &id,
    )
    .await;
    assert_eq!(takes, 1);
    let grants = app.stripe.grants_for(&customer);
    assert_eq!(grants.len(), 2, "one expired, one replacement: {grants:?}");
    let replacement = grant(&grants, shown["current_credit_grant_id"].as_str().unwrap());
    assert_eq!(value(replacement), 8000 - 1000 - 4000);
}

#[tokio::test]
async fn refund_events_that_arrive_before_the_payment_shrink_the_grant_about_to_be_made() {
    let app = TestApp::spawn_without_workers().await;
    let (purchase, invoice) = app.purchase_for_new_invoice(6000).await;
    let (id, invoice_id) = (
        purchase["id"].as_str().unwrap(),
        invoice["id"].as_str().unwrap(),
    );
    // Stripe delivers nothing for now; the events are sent below in the worst order.
    app.stripe.set_webhook_delivery(false);
    app.stripe.pay_invoice(invoice_id);
    app.stripe.refund_invoice(invoice_id, Some(1500)).unwrap();
    let events = app.stripe.events();
    let of_type = |t: &str| events.iter().find(|e| e["type"] == t).unwrap().clone();
    for event in [of_type("refund.created"), of_type("charge.refunded")] {
        let (status, body) = app.post_webhook(&event).await;
        assert!(status.is_success(), "{body}");
        assert_eq!(body["outcome"], "linking", "{body}");
    }
    app.drain().await;
    let waiting = app.get_purchase(id).await;
    assert_eq!(waiting["status"], "awaiting_payment", "{waiting}");
    app.post_webhook(&of_type("invoice.paid")).await;
    app.drain().await;

    let shown = app.get_purchase(id).await;
    assert_eq!(shown["status"], "partially_reversed", "{shown}");
    assert_eq!(shown["reversals"][0]["state"], "taken_at_grant", "{shown}");
    assert_eq!(shown["reversals"][0]["credits_taken"], 1500, "{shown}");
    let grants = app.stripe.grants();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(value(&grants[0]), 4500, "the grant was made smaller");
}

#[tokio::test]
async fn a_full_refund_before_the_grant_ends_the_purchase_reversed_without_a_grant() {
    let app = TestApp::spawn_without_workers().await;
    let (purchase, invoice) = app.purchase_for_new_invoice(3000).await;
    let (id, invoice_id) = (
        purchase["id"].as_str().unwrap(),
        invoice["id"].as_str().unwrap(),
    );
    app.stripe.set_webhook_delivery(false);
    app.stripe.pay_invoice(invoice_id);
    app.stripe.refund_invoice(invoice_id, None).unwrap();
    let events = app.stripe.events();
    for event in events.iter().filter(|e| e["type"] != "invoice.created") {
        app.post_webhook(event).await;
    }
    app.drain().await;
    let shown = app.get_purchase(id).await;
    assert_eq!(shown["status"], "reversed", "{shown}");
    assert!(shown["credit_grant_id"].is_null(), "{shown}");
    assert!(app.stripe.grants().is_empty());
}

#[tokio::test]
async fn a_dispute_lost_takes_the_credits_and_won_gives_them_back_once() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice, customer) = granted(&app, 4000).await;
    let dispute = app.stripe.dispute_invoice(&invoice, false).unwrap();
    settle(&app).await;
    let taken = app.get_purchase(&id).await;
    assert_eq!(taken["status"], "reversed", "{taken}");
    assert_eq!(taken["reversals"][0]["kind"], "dispute", "{taken}");
    assert_eq!(taken["reversals"][0]["credits_taken"], 4000, "{taken}");

    let dispute_id = dispute["id"].as_str().unwrap();
    app.stripe.close_dispute(dispute_id, true).unwrap();
    settle(&app).await;
    // The won dispute's events again, as a late duplicate delivery would bring them.
    for event in app.stripe.events() {
        if event["type"] == "charge.dispute.funds_reinstated" {
            app.post_webhook(&event).await;
        }
    }
    app.drain().await;

    let restored = app.get_purchase(&id).await;
    assert_eq!(restored["status"], "granted", "{restored}");
    assert_eq!(restored["reversals"][0]["state"], "restored", "{restored}");
    assert_eq!(
        restored["reversals"][0]["credits_restored"], 4000,
        "{restored}"
    );
    let live: Vec<Value> = app
        .stripe
        .grants_for(&customer)
        .into_iter()
        .filter(|g| g["voided_at"].is_null() && g["expires_at"].is_null())
        .collect();
    assert_eq!(live.len(), 1, "one grant gives the credits back: {live:?}");
    assert_eq!(value(&live[0]), 4000);
}

#[tokio::test]
async fn an_inquiry_moves_no_money_and_changes_nothing() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice, _) = granted(&app, 4000).await;
    app.stripe.dispute_invoice(&invoice, true).unwrap();
    settle(&app).await;
    let shown = app.get_purchase(&id).await;
    assert_eq!(shown["status"], "granted", "{shown}");
    assert_eq!(shown["reversals"], json!([]), "{shown}");
    assert_eq!(
        app.stripe
            .requests_to("POST", "/v1/billing/credit_grants/")
            .len(),
        0
    );
}

#[tokio::test]
async fn a_refund_that_fails_later_is_restored_once() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice, customer) = granted(&app, 6000).await;
    let refund = app.stripe.refund_invoice(&invoice, Some(3000)).unwrap();
    settle(&app).await;
    assert_eq!(app.get_purchase(&id).await["status"], "partially_reversed");

    app.stripe
        .fail_refund(refund["id"].as_str().unwrap())
        .unwrap();
    settle(&app).await;
    for event in app.stripe.events() {
        if event["type"] == "refund.failed" {
            app.post_webhook(&event).await;
        }
    }
    app.drain().await;

    let shown = app.get_purchase(&id).await;
    assert_eq!(shown["status"], "granted", "{shown}");
    assert_eq!(shown["reversals"][0]["stripe_status"], "failed", "{shown}");
    assert_eq!(shown["reversals"][0]["credits_restored"], 3000, "{shown}");
    let restores = count(
        &app,
        "SELECT count(*) FROM grant_moves WHERE purchase_id = $1 AND direction = 'restore'",
        &id,
    )
    .await;
    assert_eq!(restores, 1);
    let current = shown["current_credit_grant_id"].as_str().unwrap();
    let grants = app.stripe.grants_for(&customer);
    assert_eq!(value(grant(&grants, current)), 6000, "{grants:?}");
}

#[tokio::test]
async fn record_only_records_and_shows_the_reversal_but_changes_nothing_at_stripe() {
    let app = TestApp::spawn_with(|config| {
        config.worker_count = 0;
        config.policy.reversal_policy = ReversalPolicy::RecordOnly;
    })
    .await;
    let (id, invoice, customer) = granted(&app, 5000).await;
    app.stripe.use_credits(&customer, 4000, "usd").unwrap();
    app.stripe.refund_invoice(&invoice, None).unwrap();
    settle(&app).await;

    let shown = app.get_purchase(&id).await;
    assert_eq!(shown["status"], "reversed", "{shown}");
    let reversal = &shown["reversals"][0];
    assert_eq!(reversal["state"], "recorded", "{shown}");
    assert_eq!(reversal["credits_taken"], 0, "{shown}");
    assert_eq!(
        reversal["credits_shortfall"], 4000,
        "used before the refund: {shown}"
    );
    assert_eq!(
        app.stripe
            .requests_to("POST", "/v1/billing/credit_grants")
            .len(),
        1,
        "only the purchase's own grant"
    );
    let grants = app.stripe.grants_for(&customer);
    assert!(grants[0]["voided_at"].is_null() && grants[0]["expires_at"].is_null());
}

#[tokio::test]
async fn a_refund_of_a_payment_that_is_no_purchases_is_recorded_unmatched() {
    let app = TestApp::spawn_without_workers().await;
    let customer = app.stripe.create_customer();
    let invoice = app.stripe.create_open_invoice(&customer, 2000, "usd", &[]);
    let invoice_id = invoice["id"].as_str().unwrap();
    app.stripe.pay_invoice(invoice_id);
    app.stripe.refund_invoice(invoice_id, None).unwrap();
    settle(&app).await;

    let outcomes: Vec<(String, String)> = sqlx::query_as(
        "SELECT type, outcome FROM stripe_events
         WHERE type IN ('charge.refunded', 'refund.created') ORDER BY type",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        outcomes,
        [
            ("charge.refunded".to_string(), "unmatched".to_string()),
            ("refund.created".to_string(), "unmatched".to_string()),
        ]
    );
    assert!(app.stripe.grants().is_empty());
}

#[tokio::test]
async fn a_credit_note_takes_back_what_it_refunded_and_what_it_credited_to_the_balance() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice, customer) = granted(&app, 10_000).await;
    app.stripe
        .credit_note(&json!({"invoice": invoice, "refund_amount": 2000, "credit_amount": 1000}))
        .unwrap();
    settle(&app).await;

    let shown = app.get_purchase(&id).await;
    assert_eq!(shown["status"], "partially_reversed", "{shown}");
    let kinds: Vec<&str> = shown["reversals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 2, "{shown}");
    assert!(
        kinds.contains(&"refund") && kinds.contains(&"credit_note"),
        "{shown}"
    );
    let current = shown["current_credit_grant_id"].as_str().unwrap();
    let grants = app.stripe.grants_for(&customer);
    assert_eq!(
        value(grant(&grants, current)),
        10_000 - 2000 - 1000,
        "{grants:?}"
    );
    assert_eq!(app.stripe.customer_balance(&customer), -1000);
}

#[tokio::test]
async fn a_refund_whose_webhooks_never_arrived_is_found_by_a_resync() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice, _) = granted(&app, 5000).await;
    app.stripe.set_webhook_delivery(false);
    app.stripe.refund_invoice(&invoice, Some(1000)).unwrap();
    let body = json!({
        "since": crate::admin_resync::an_hour_ago(),
        "types": ["charge.refunded", "refund.created"],
    });
    let resync = crate::admin_resync::start_resync(&app, body).await;
    let done = crate::admin_resync::wait_for_resync(&app, &resync).await;
    assert_eq!(done["status"], "completed", "{done}");
    app.drain().await;
    let shown = app.get_purchase(&id).await;
    assert_eq!(shown["status"], "partially_reversed", "{shown}");
    assert_eq!(shown["reversals"][0]["credits_taken"], 1000, "{shown}");
}
