//! Self-tests of what the sandbox adds for people: `/_sandbox/` control routes, credits used by a
//! metered invoice in Stripe's order, redelivery, and `curl -u` (Basic) authentication.

use creditd::sandbox::{FakeStripe, TestClient};
use serde_json::{Value, json};

const GRANTS: &str = "/v1/billing/credit_grants";

async fn control(fake: &FakeStripe, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/{path}", fake.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn grant(c: &TestClient, cus: &str, value: &str, priority: &str) -> String {
    let form = [
        ("customer", cus),
        ("category", "paid"),
        ("priority", priority),
        ("amount[type]", "monetary"),
        ("amount[monetary][value]", value),
        ("amount[monetary][currency]", "usd"),
        ("applicability_config[scope][price_type]", "metered"),
    ];
    let r = c.post(GRANTS, &form, None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    r.json["id"].as_str().unwrap().to_string()
}

async fn available(c: &TestClient, cus: &str) -> Value {
    let q = [
        ("customer", cus),
        ("filter[type]", "applicability_scope"),
        ("filter[applicability_scope][price_type]", "metered"),
    ];
    let s = c.get("/v1/billing/credit_balance_summary", &q).await.json;
    s["balances"][0]["available_balance"]["monetary"]["value"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_applies_credits_to_metered_usage_in_stripes_order() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let later = grant(&c, &cus, "1000", "50").await;
    let first = grant(&c, &cus, "300", "10").await;
    let (status, inv) = control(
        &fake,
        &format!("customers/{cus}/use_credits"),
        json!({"amount": 500}),
    )
    .await;
    assert_eq!(status, 200, "{inv}");
    assert_eq!(
        (inv["status"].clone(), inv["amount_due"].clone()),
        (json!("paid"), json!(0))
    );
    assert_eq!(inv["billing_reason"], "subscription_cycle");
    let credits: Vec<i64> = inv["total_pretax_credit_amounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(credits, [300, 200], "priority 10 first, then 50");
    assert_eq!(available(&c, &cus).await, 800);
    let txns = c
        .get(
            "/v1/billing/credit_balance_transactions",
            &[("customer", &cus), ("credit_grant", &first)],
        )
        .await
        .json;
    let debit = &txns["data"][0];
    assert_eq!(debit["type"], "debit");
    assert_eq!(debit["debit"]["type"], "credits_applied");
    assert_eq!(debit["debit"]["credits_applied"]["invoice"], inv["id"]);
    let void = c.post(&format!("{GRANTS}/{later}/void"), &[], None).await;
    assert_eq!(
        void.status, 400,
        "applied credits cannot be voided: {}",
        void.json
    );

    let (_, more) = control(
        &fake,
        &format!("customers/{cus}/use_credits"),
        json!({"amount": 2000}),
    )
    .await;
    assert_eq!(
        (more["status"].clone(), more["amount_due"].clone()),
        (json!("open"), json!(1200)),
        "800 left in credits, the rest is due"
    );
    assert_eq!(available(&c, &cus).await, 0, "nothing left");
    let (status, _) = control(
        &fake,
        "customers/cus_nope/use_credits",
        json!({"amount": 1}),
    )
    .await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_control_routes_act_on_invoices_and_inject_faults() {
    let fake = FakeStripe::start().await;
    let (status, body) = control(&fake, "customers", json!({})).await;
    let cus = body["id"].as_str().unwrap().to_string();
    assert!(status == 200 && fake.has_customer(&cus));
    let inv = fake.create_open_invoice(&cus, 2500, "usd", &[]);
    let id = inv["id"].as_str().unwrap();
    let (_, event) = control(
        &fake,
        &format!("invoices/{id}/mark_uncollectible"),
        json!({}),
    )
    .await;
    assert_eq!(event["type"], "invoice.marked_uncollectible");
    let (_, event) = control(
        &fake,
        &format!("invoices/{id}/pay"),
        json!({"out_of_band": true}),
    )
    .await;
    assert_eq!(event["type"], "invoice.paid");
    assert_eq!(fake.invoice(id).unwrap()["amount_paid_off_stripe"], 2500);
    let (status, err) = control(&fake, &format!("invoices/{id}/void"), json!({})).await;
    assert_eq!(
        (status, err["error"]["type"].clone()),
        (400, json!("invalid_request_error"))
    );
    let (status, _) = control(&fake, "invoices/in_nope/pay", json!({})).await;
    assert_eq!(status, 404);

    let fault = json!({"kind": "429", "method": "GET", "path": "/v1/events"});
    assert_eq!(control(&fake, "faults", fault).await.0, 200);
    let c = fake.client();
    assert_eq!(c.get("/v1/events", &[]).await.status, 429);
    assert_eq!(c.get("/v1/events", &[]).await.status, 200, "one time only");
    let (status, err) = control(&fake, "faults", json!({"kind": "meteor"})).await;
    assert_eq!(
        (status, err["error"]["param"].clone()),
        (400, json!("kind"))
    );
    let (status, _) = control(&fake, "customers/cus_nope/balance", json!({"amount": -5})).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_delivers_an_event_again_on_request() {
    let fake = FakeStripe::start().await;
    let cus = fake.create_customer();
    let event = fake.pay_invoice(
        fake.create_open_invoice(&cus, 100, "usd", &[])["id"]
            .as_str()
            .unwrap(),
    );
    let id = event["id"].as_str().unwrap();
    let (status, _) = control(&fake, &format!("events/{id}/deliver"), json!({})).await;
    assert_eq!(status, 400, "no endpoint yet");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    fake.set_webhook_endpoint(&url, &["whsec_x"]);
    assert!(!fake.delivered_event_ids().contains(&id.to_string()));
    let (status, answer) = control(&fake, &format!("events/{id}/deliver"), json!({})).await;
    assert_eq!(
        (status, answer["status"].clone(), answer["body"].clone()),
        (200, json!(200), json!("ok"))
    );
    assert!(fake.delivered_event_ids().contains(&id.to_string()));
    assert_eq!(
        control(&fake, "events/evt_nope/deliver", json!({})).await.0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_accepts_test_keys_as_basic_auth_like_curl_u() {
    let fake = FakeStripe::start().await;
    let http = reqwest::Client::new();
    let get = |key: &str| {
        http.get(format!("{}/v1/events", fake.base_url()))
            .basic_auth(key, Some(""))
            .send()
    };
    assert_eq!(get("sk_test_123").await.unwrap().status(), 200);
    assert_eq!(get("sk_live_123").await.unwrap().status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_retries_a_failed_delivery_when_asked_and_only_then() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
    use std::time::Duration;
    // Fails while `failures` lasts, as an endpoint that is restarting would; counts attempts.
    let (failures, attempts) = (
        Arc::new(AtomicU32::new(u32::MAX)),
        Arc::new(AtomicU32::new(0)),
    );
    let (f, a) = (failures.clone(), attempts.clone());
    let hook = axum::routing::post(move || async move {
        a.fetch_add(1, SeqCst);
        match f.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)) {
            Ok(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
            Err(_) => axum::http::StatusCode::OK,
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(
        async move { axum::serve(listener, axum::Router::new().route("/hook", hook)).await },
    );

    let fake = FakeStripe::start().await;
    fake.set_webhook_endpoint(&url, &["whsec_x"]);
    let cus = fake.create_customer();
    let later = fake.create_open_invoice(&cus, 100, "usd", &[]);
    let paid = fake.pay_invoice(
        fake.create_open_invoice(&cus, 100, "usd", &[])["id"]
            .as_str()
            .unwrap(),
    );
    fake.wait_for_deliveries().await;
    assert_eq!(
        attempts.load(SeqCst),
        8,
        "one try for each of the 8 events by default"
    );
    assert!(
        !fake
            .delivered_event_ids()
            .contains(&paid["id"].as_str().unwrap().to_string())
    );

    fake.retry_failed_deliveries(&[Duration::from_millis(10); 3]);
    failures.store(2, SeqCst);
    attempts.store(0, SeqCst);
    let voided = fake.void_invoice(later["id"].as_str().unwrap());
    fake.wait_for_deliveries().await;
    assert_eq!(attempts.load(SeqCst), 3, "two failures, then delivered");
    assert!(
        fake.delivered_event_ids()
            .contains(&voided["id"].as_str().unwrap().to_string())
    );
}
