//! Automatic top-ups against the fake Stripe and a real PostgreSQL: one top-up per crossing (also
//! under ten concurrent triggers), caps, declined and authentication-requiring cards, `top_up_to`.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{API_TOKEN, TestApp};
use creditd::sandbox::CardBehaviour;

/// A customer with a saved card and a granted purchase of `credits`.
async fn customer_with_credits(app: &TestApp, credits: i64, card: CardBehaviour) -> String {
    let customer = app.stripe.create_customer();
    app.stripe.attach_card(&customer, card);
    let invoice = app
        .stripe
        .create_open_invoice(&customer, credits, "usd", &[]);
    let body = json!({"customer": customer, "amount": credits, "currency": "usd", "invoice_id": invoice["id"]});
    let (status, purchase) = app.post_purchase(&body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{purchase}");
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    settle(app).await;
    customer
}

/// Lets every delivery land and every due step run, a few rounds (a top-up's invoice events come
/// back as webhooks).
async fn settle(app: &TestApp) {
    for _ in 0..4 {
        app.stripe.wait_for_deliveries().await;
        app.drain().await;
    }
}

async fn put_rule(app: &TestApp, customer: &str, rule: Value) -> (StatusCode, Value) {
    let path = format!("/v1/customers/{customer}/auto_topup");
    app.api(Method::PUT, &path, Some(&rule), Some(API_TOKEN))
        .await
}

async fn get_rule(app: &TestApp, customer: &str) -> Value {
    let path = format!("/v1/customers/{customer}/auto_topup");
    let (status, body) = app.api(Method::GET, &path, None, Some(API_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn rule(extra: Value) -> Value {
    let mut base = json!({"threshold": 2000, "amount": 4000, "currency": "usd",
                          "max_topups_per_month": 10, "max_amount_per_month": 100_000});
    let object = base.as_object_mut().unwrap();
    object.extend(extra.as_object().unwrap().clone());
    base
}

async fn topups(app: &TestApp, customer: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT id, status FROM purchases WHERE topup_customer = $1 ORDER BY created_at")
        .bind(customer)
        .fetch_all(&app.db)
        .await
        .unwrap()
}

async fn available(app: &TestApp, customer: &str) -> i64 {
    let path = format!("/v1/customers/{customer}/credit_balance");
    let (status, body) = app.api(Method::GET, &path, None, Some(API_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["balances"][0]["available"]["value"]
        .as_i64()
        .unwrap_or(0)
}

#[tokio::test]
async fn a_balance_below_the_threshold_buys_exactly_one_top_up_and_no_more_once_above() {
    let app = TestApp::spawn_without_workers().await;
    let customer = customer_with_credits(&app, 5000, CardBehaviour::Succeeds).await;
    let (status, shown) = put_rule(&app, &customer, rule(json!({}))).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    settle(&app).await;
    assert!(
        topups(&app, &customer).await.is_empty(),
        "5000 is above 2000"
    );
    assert_eq!(get_rule(&app, &customer).await["last_balance"], 5000);

    app.stripe.use_credits(&customer, 3500, "usd").unwrap();
    settle(&app).await;
    let made = topups(&app, &customer).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].1, "granted");
    assert_eq!(available(&app, &customer).await, 1500 + 4000);
    let pay = app.stripe.requests_to("POST", "/v1/invoices/");
    let pays: Vec<_> = pay.iter().filter(|r| r.path.ends_with("/pay")).collect();
    assert_eq!(pays.len(), 1);
    assert_eq!(pays[0].params["off_session"], "true");

    let shown = app.get_purchase(&made[0].0).await;
    assert_eq!(shown["auto_topup"]["balance"], 1500, "{shown}");
    assert!(
        shown["auto_topup"]["triggered_by"]
            .as_str()
            .unwrap()
            .starts_with("debit evt_"),
        "{shown}"
    );
    app.stripe.use_credits(&customer, 100, "usd").unwrap();
    settle(&app).await;
    assert_eq!(
        topups(&app, &customer).await.len(),
        1,
        "above the threshold again"
    );
    let shown = get_rule(&app, &customer).await;
    assert_eq!(
        shown["recent_topups"].as_array().unwrap().len(),
        1,
        "{shown}"
    );
}

#[tokio::test]
async fn ten_concurrent_triggers_for_one_crossing_make_one_top_up() {
    let app = TestApp::spawn_without_workers().await;
    let customer = customer_with_credits(&app, 3000, CardBehaviour::Succeeds).await;
    put_rule(&app, &customer, rule(json!({}))).await;
    app.stripe.set_webhook_delivery(false);
    app.stripe.use_credits(&customer, 2000, "usd").unwrap();
    let triggers = (0..10).map(|_| async {
        sqlx::query("UPDATE auto_topup_rules SET check_due_at = now() WHERE customer = $1")
            .bind(&customer)
            .execute(&app.db)
            .await
            .unwrap();
        creditd::topup::check_due(&app.services).await.unwrap()
    });
    futures::future::join_all(triggers).await;
    // And the creating statement itself, ten times at once, as ten replicas' checks would run it.
    let rule_row = creditd::db::topups::find(&app.db, &customer)
        .await
        .unwrap()
        .unwrap();
    let credit = rule_row.credit.0.clone();
    let creates = (0..10).map(|_| {
        let id = creditd::ids::PurchaseId::generate();
        let (rule_row, credit) = (rule_row.clone(), credit.clone());
        let db = app.db.clone();
        async move {
            creditd::db::topups::create(
                &db,
                &rule_row,
                1000,
                &id,
                false,
                &credit,
                &json!({}),
                std::time::Duration::ZERO,
            )
            .await
            .unwrap()
        }
    });
    futures::future::join_all(creates).await;
    assert_eq!(topups(&app, &customer).await.len(), 1);
}

#[tokio::test]
async fn the_monthly_cap_stops_top_ups_and_says_why() {
    let app = TestApp::spawn_without_workers().await;
    let customer = customer_with_credits(&app, 3000, CardBehaviour::Succeeds).await;
    put_rule(&app, &customer, rule(json!({"max_topups_per_month": 1}))).await;
    app.stripe.use_credits(&customer, 2000, "usd").unwrap();
    settle(&app).await;
    assert_eq!(topups(&app, &customer).await.len(), 1);
    app.stripe.use_credits(&customer, 4500, "usd").unwrap();
    settle(&app).await;
    assert_eq!(topups(&app, &customer).await.len(), 1, "capped");
    let shown = get_rule(&app, &customer).await;
    assert_eq!(shown["last_balance"], 500, "{shown}");
    assert_eq!(
        shown["last_skip_reason"], "the monthly cap of 1 top-ups is reached",
        "{shown}"
    );
}

#[tokio::test]
async fn a_card_declined_three_times_pauses_the_rule() {
    let app = TestApp::spawn_without_workers().await;
    let customer = customer_with_credits(&app, 3000, CardBehaviour::Succeeds).await;
    app.stripe.attach_card(&customer, CardBehaviour::Declines);
    put_rule(&app, &customer, rule(json!({}))).await;
    app.stripe.use_credits(&customer, 2000, "usd").unwrap();
    for round in 1..=3 {
        settle(&app).await;
        let made = topups(&app, &customer).await;
        assert_eq!(made.len(), round, "{made:?}");
        assert!(
            made.iter().all(|(_, status)| status == "failed"),
            "{made:?}"
        );
        // The next check comes from the sweep; here, at once.
        sqlx::query("UPDATE auto_topup_rules SET check_due_at = now() WHERE customer = $1")
            .bind(&customer)
            .execute(&app.db)
            .await
            .unwrap();
    }
    settle(&app).await;
    assert_eq!(topups(&app, &customer).await.len(), 3, "paused: no fourth");
    let shown = get_rule(&app, &customer).await;
    assert_eq!(shown["state"], "paused", "{shown}");
    assert_eq!(shown["consecutive_failures"], 3, "{shown}");
    assert!(
        shown["paused_reason"]
            .as_str()
            .unwrap()
            .contains("declined"),
        "{shown}"
    );
    let failed = app.get_purchase(&topups(&app, &customer).await[0].0).await;
    assert!(
        failed["last_error"].as_str().unwrap().contains("declined"),
        "{failed}"
    );
    assert!(
        app.metrics()
            .await
            .contains("creditd_auto_topup_rules{state=\"paused\"} 1")
    );
}

#[tokio::test]
async fn a_card_that_needs_authentication_fails_the_top_up_with_the_page_to_pay_on() {
    let app = TestApp::spawn_without_workers().await;
    let customer = customer_with_credits(&app, 3000, CardBehaviour::Succeeds).await;
    app.stripe
        .attach_card(&customer, CardBehaviour::RequiresAuthentication);
    put_rule(&app, &customer, rule(json!({}))).await;
    app.stripe.use_credits(&customer, 2000, "usd").unwrap();
    settle(&app).await;
    let made = topups(&app, &customer).await;
    assert_eq!(made.len(), 1);
    let shown = app.get_purchase(&made[0].0).await;
    assert_eq!(shown["status"], "failed", "{shown}");
    let url = shown["hosted_invoice_url"].as_str().unwrap();
    assert!(
        shown["last_error"].as_str().unwrap().contains(url),
        "{shown}"
    );
}

#[tokio::test]
async fn top_up_to_buys_what_brings_the_balance_to_the_target() {
    let app = TestApp::spawn_without_workers().await;
    let customer = customer_with_credits(&app, 3000, CardBehaviour::Succeeds).await;
    let target = json!({"amount": null, "top_up_to": 10_000});
    let (status, shown) = put_rule(&app, &customer, rule(target)).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    app.stripe.use_credits(&customer, 1800, "usd").unwrap();
    settle(&app).await;
    let made = topups(&app, &customer).await;
    assert_eq!(made.len(), 1);
    assert_eq!(app.get_purchase(&made[0].0).await["amount"], 10_000 - 1200);
    assert_eq!(available(&app, &customer).await, 10_000);
}

#[tokio::test]
async fn a_rule_needs_a_saved_card_and_a_card_removed_later_fails_the_top_up() {
    let app = TestApp::spawn_without_workers().await;
    let bare = app.stripe.create_customer();
    app.stripe.remove_default_card(&bare);
    let (status, error) = put_rule(&app, &bare, rule(json!({}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error["error"]["field"], "customer", "{error}");

    let customer = customer_with_credits(&app, 3000, CardBehaviour::Succeeds).await;
    put_rule(&app, &customer, rule(json!({}))).await;
    app.stripe.remove_default_card(&customer);
    app.stripe.use_credits(&customer, 2000, "usd").unwrap();
    settle(&app).await;
    let made = topups(&app, &customer).await;
    assert_eq!(made.len(), 1);
    let shown = app.get_purchase(&made[0].0).await;
    assert_eq!(shown["status"], "failed", "{shown}");
}

#[tokio::test]
async fn a_bad_rule_is_refused_with_its_field_and_changes_nothing() {
    let app = TestApp::spawn_without_workers().await;
    let customer = app.stripe.create_customer();
    app.stripe.attach_card(&customer, CardBehaviour::Succeeds);
    let before = app.snapshot().await;
    for (body, field) in [
        (rule(json!({"top_up_to": 9000})), "amount"),
        (
            rule(json!({"credit": {"priority": 500}})),
            "credit.priority",
        ),
        (
            rule(json!({"max_amount_per_month": 1})),
            "max_amount_per_month",
        ),
    ] {
        let (status, error) = put_rule(&app, &customer, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    assert_eq!(app.snapshot().await, before);
    let path = format!("/v1/customers/{customer}/auto_topup");
    let (status, _) = app.api(Method::GET, &path, None, Some(API_TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
