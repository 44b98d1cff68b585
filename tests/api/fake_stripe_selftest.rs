//! Tests of the fake Stripe itself, over real HTTP: each checks that a behaviour creditd relies on
//! can be observed failing (validation, idempotency, faults, pauses, events, balances, webhooks).

mod checkout;
mod invoice_life;
mod lists;
mod objects;
mod payments;
mod sandbox_controls;

use creditd::sandbox::{
    FakeStripe, Fault, FaultKind, OPENAPI_SUBSET, TestClient, TestResponse, sign_payload,
};
use serde_json::{Value, json};
use std::time::Duration;

const GRANTS: &str = "/v1/billing/credit_grants";

async fn grant(c: &TestClient, customer: &str, value: &str, key: Option<&str>) -> TestResponse {
    let form = [
        ("customer", customer),
        ("name", "Prepaid credits"),
        ("category", "paid"),
        ("amount[type]", "monetary"),
        ("amount[monetary][value]", value),
        ("amount[monetary][currency]", "usd"),
        ("applicability_config[scope][price_type]", "metered"),
        ("metadata[invoice_id]", "in_123"),
    ];
    c.post(GRANTS, &form, key).await
}

/// A valid grant form for `cus` with `extra` added (an empty value removes that key), sent with
/// one fixed idempotency key.
async fn bad_grant(c: &TestClient, cus: &str, extra: Vec<(&str, &str)>) -> TestResponse {
    let mut form = vec![
        ("customer", cus),
        ("amount[type]", "monetary"),
        ("amount[monetary][value]", "100"),
        ("amount[monetary][currency]", "usd"),
        ("applicability_config[scope][price_type]", "metered"),
    ];
    form.retain(|(k, _)| !extra.iter().any(|(x, v)| x == k && v.is_empty()));
    form.extend(extra.iter().filter(|(_, v)| !v.is_empty()));
    c.post(GRANTS, &form, Some("k-validation")).await
}

fn assert_error(r: &TestResponse, status: u16, error_type: &str, param: Option<&str>) {
    assert_eq!(r.status, status, "{}", r.json);
    assert_eq!(r.json["error"]["type"], error_type, "{}", r.json);
    if let Some(p) = param {
        assert_eq!(r.json["error"]["param"], p, "{}", r.json);
    }
    assert!(r.header("request-id").unwrap().starts_with("req_"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_requires_test_keys_and_rejects_unknown_routes() {
    let fake = FakeStripe::start().await;
    let r = fake.client().with_key(None).get("/v1/events", &[]).await;
    assert_error(&r, 401, "invalid_request_error", None);
    let r = fake
        .client()
        .with_key(Some("sk_live_123"))
        .get("/v1/events", &[])
        .await;
    assert_error(&r, 401, "invalid_request_error", None);
    let r = fake
        .client()
        .with_key(Some("rk_test_abc"))
        .get("/v1/events", &[])
        .await;
    assert_eq!(r.status, 200);
    let r = fake.client().get("/v1/customers_nope", &[]).await;
    assert_error(&r, 404, "invalid_request_error", None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_checks_parameters_against_the_openapi_subset() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let ok = grant(&c, &cus, "5000", None).await;
    assert_eq!(ok.status, 200, "{}", ok.json);
    let g = &ok.json;
    assert!(g["id"].as_str().unwrap().starts_with("credgr_test_"));
    assert_eq!(
        g["amount"],
        json!({"type": "monetary", "monetary": {"currency": "usd", "value": 5000}})
    );
    assert_eq!(
        (g["priority"].clone(), g["category"].clone()),
        (json!(50), json!("paid"))
    );
    assert_eq!(g["metadata"], json!({"invoice_id": "in_123"}));
    let spec: Value = serde_json::from_str(OPENAPI_SUBSET).unwrap();
    for key in spec["components"]["schemas"]["billing.credit_grant"]["properties"]
        .as_object()
        .unwrap()
        .keys()
    {
        assert!(g.get(key).is_some(), "grant lacks {key}");
    }
    assert_error(
        &bad_grant(&c, &cus, vec![("foo", "1")]).await,
        400,
        "invalid_request_error",
        Some("foo"),
    );
    let nested = bad_grant(&c, &cus, vec![("amount[monetary][cents]", "1")]).await;
    assert_error(
        &nested,
        400,
        "invalid_request_error",
        Some("amount[monetary][cents]"),
    );
    assert_eq!(nested.json["error"]["code"], "parameter_unknown");
    let missing = bad_grant(
        &c,
        &cus,
        vec![("applicability_config[scope][price_type]", "")],
    )
    .await;
    assert_error(
        &missing,
        400,
        "invalid_request_error",
        Some("applicability_config"),
    );
    assert_eq!(missing.json["error"]["code"], "parameter_missing");
    assert_error(
        &bad_grant(&c, &cus, vec![("category", "free")]).await,
        400,
        "invalid_request_error",
        Some("category"),
    );
    assert_error(
        &bad_grant(&c, &cus, vec![("priority", "high")]).await,
        400,
        "invalid_request_error",
        Some("priority"),
    );
    let long = "n".repeat(101);
    assert_error(
        &bad_grant(&c, &cus, vec![("name", &long)]).await,
        400,
        "invalid_request_error",
        Some("name"),
    );
    assert_eq!(
        bad_grant(&c, &cus, vec![("name", &long[..100])])
            .await
            .status,
        200,
        "100 chars fit; failed attempts stored no key"
    );
    let r = grant(&c, "cus_missing", "10", None).await;
    assert_error(&r, 400, "invalid_request_error", Some("customer"));
    assert_eq!(
        r.json["error"]["message"],
        "No such customer: 'cus_missing'"
    );
    let prices = [
        ("customer", cus.as_str()),
        ("amount[type]", "monetary"),
        ("amount[monetary][value]", "7"),
        ("amount[monetary][currency]", "usd"),
        ("applicability_config[scope][prices][0][id]", "price_1"),
    ];
    assert_eq!(
        c.post(GRANTS, &prices, None).await.json["applicability_config"]["scope"]["prices"][0]["id"],
        "price_1"
    );
    let path = format!("{GRANTS}/{}", g["id"].as_str().unwrap());
    assert_eq!(
        c.post(&path, &[("expires_at", "")], None).await.json["expires_at"],
        Value::Null
    );
    assert_error(
        &c.post(&path, &[("expires_at", "soon")], None).await,
        400,
        "invalid_request_error",
        Some("expires_at"),
    );
    assert_eq!(
        c.get_raw("/v1/events", "types[]=invoice.paid&types[]=invoice.voided")
            .await
            .unwrap()
            .status,
        200
    );
    assert_eq!(
        c.get("/v1/events", &[("types[0]", "invoice.paid")])
            .await
            .status,
        200
    );
    assert_error(
        &c.get("/v1/events", &[("types", "invoice.paid")]).await,
        400,
        "invalid_request_error",
        Some("types"),
    );
    assert_error(
        &c.get("/v1/events", &[("limit", "ten")]).await,
        400,
        "invalid_request_error",
        Some("limit"),
    );
    assert_error(
        &c.get("/v1/events", &[("limit", "101")]).await,
        400,
        "invalid_request_error",
        Some("limit"),
    );
    let r = c.get("/v1/events", &[("delivery_success", "maybe")]).await;
    assert_error(&r, 400, "invalid_request_error", Some("delivery_success"));
    let r = c.get("/v1/invoices", &[("status", "lost")]).await;
    assert_error(&r, 400, "invalid_request_error", Some("status"));
    let r = c
        .post("/v1/invoices/in_x/pay", &[("forgive", "true")], None)
        .await;
    assert_error(&r, 400, "invalid_request_error", Some("forgive"));
    let recorded = fake.requests_to("POST", GRANTS);
    assert_eq!(recorded[0].params["amount"]["monetary"]["value"], "5000");
    assert!(recorded[0].raw.contains("amount[monetary][value]=5000"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_replays_idempotent_requests_and_rejects_changed_parameters() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let first = grant(&c, &cus, "5000", Some("grant-in_1")).await;
    let again = grant(&c, &cus, "5000", Some("grant-in_1")).await;
    assert_eq!((first.status, again.status), (200, 200));
    assert_eq!(first.json, again.json);
    assert_eq!(fake.grants_for(&cus).len(), 1);
    assert!(fake.requests_to("POST", GRANTS)[1].replayed);
    let changed = grant(&c, &cus, "6000", Some("grant-in_1")).await;
    assert_error(&changed, 400, "idempotency_error", None);
    assert_eq!(fake.grants_for(&cus).len(), 1);
    fake.forget_idempotency_keys();
    assert_eq!(
        grant(&c, &cus, "5000", Some("grant-in_1")).await.status,
        200
    );
    assert_eq!(
        fake.grants_for(&cus).len(),
        2,
        "a forgotten key executes again"
    );
    grant(&c, &cus, "5000", Some("grant-in_2")).await;
    fake.advance_clock(Duration::from_secs(23 * 3600));
    assert_eq!(
        grant(&c, &cus, "5000", Some("grant-in_2")).await.json["id"],
        fake.grants_for(&cus)[2]["id"]
    );
    fake.advance_clock(Duration::from_secs(2 * 3600));
    grant(&c, &cus, "5000", Some("grant-in_2")).await;
    assert_eq!(
        fake.grants_for(&cus).len(),
        4,
        "keys older than 24 h are forgotten"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_stores_a_500_after_the_effect_and_can_skip_storing_it() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    fake.inject(Fault::new("POST", GRANTS, FaultKind::EffectThenStored500));
    let r = grant(&c, &cus, "5000", Some("k1")).await;
    assert_error(&r, 500, "api_error", None);
    assert_eq!(
        fake.grants_for(&cus).len(),
        1,
        "the grant exists despite the 500"
    );
    let replay = grant(&c, &cus, "5000", Some("k1")).await;
    assert_eq!((replay.status, replay.json.clone()), (500, r.json));
    assert_eq!(fake.grants_for(&cus).len(), 1);
    fake.inject(Fault::new("POST", GRANTS, FaultKind::EffectThen500));
    assert_eq!(grant(&c, &cus, "5000", Some("k2")).await.status, 500);
    assert_eq!(grant(&c, &cus, "5000", Some("k2")).await.status, 200);
    assert_eq!(
        fake.grants_for(&cus).len(),
        3,
        "an unstored 500 lets the retry create a duplicate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_answers_409_to_a_concurrent_request_with_the_same_key() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let hold = fake.pause_before_effect("POST", GRANTS);
    let first = tokio::spawn({
        let (c, cus) = (c.clone(), cus.clone());
        async move { grant(&c, &cus, "5000", Some("same")).await }
    });
    hold.reached().await;
    assert!(fake.grants().is_empty());
    let second = grant(&c, &cus, "5000", Some("same")).await;
    assert_error(&second, 409, "invalid_request_error", None);
    assert_eq!(second.json["error"]["code"], "idempotency_key_in_use");
    hold.release();
    assert_eq!(first.await.unwrap().status, 200);
    assert_eq!(grant(&c, &cus, "5000", Some("same")).await.status, 200);
    assert_eq!(fake.grants().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_injects_errors_rate_limits_and_dropped_connections() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    fake.inject(Fault::new("POST", "/v1/billing", FaultKind::rate_limited()).times(2));
    for _ in 0..2 {
        let r = grant(&c, &cus, "5000", Some("k")).await;
        assert_eq!(
            (r.status, r.header("stripe-should-retry")),
            (429, Some("true"))
        );
    }
    assert_eq!(
        grant(&c, &cus, "5000", Some("k")).await.status,
        200,
        "fault consumed, nothing stored"
    );
    fake.inject(Fault::new("*", GRANTS, FaultKind::bad_request_no_retry()));
    let r = c.get(GRANTS, &[]).await;
    assert_eq!(
        (r.status, r.header("stripe-should-retry")),
        (400, Some("false"))
    );
    fake.inject(Fault::new(
        "GET",
        GRANTS,
        FaultKind::Delay(Duration::from_millis(20)),
    ));
    assert_eq!(
        c.get(GRANTS, &[]).await.status,
        200,
        "a delay still answers"
    );
    fake.inject(Fault::new("POST", GRANTS, FaultKind::DropConnection));
    assert!(
        c.post_raw(GRANTS, "customer=x", None).await.is_err(),
        "connection dropped"
    );
    assert_eq!(fake.grants().len(), 1);
    fake.inject(Fault::new("GET", "/v1/events", FaultKind::api_error()).forever());
    assert_eq!(c.get("/v1/events", &[]).await.status, 500);
    assert_eq!(c.get("/v1/events", &[]).await.status, 500);
    fake.clear_faults();
    fake.set_rate_limit(Some(2));
    let codes: Vec<u16> = futures::future::join_all((0..3).map(|_| c.get("/v1/events", &[])))
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(codes.iter().filter(|s| **s == 429).count(), 1, "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_pauses_after_the_effect_until_released() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let hold = fake.pause_after_effect("POST", GRANTS);
    let pending = tokio::spawn({
        let (c, cus) = (c.clone(), cus.clone());
        async move { grant(&c, &cus, "5000", Some("paused")).await }
    });
    hold.reached().await;
    assert_eq!(
        fake.grants_for(&cus).len(),
        1,
        "effect done before the response"
    );
    assert!(!pending.is_finished());
    let replay = grant(&c, &cus, "5000", Some("paused")).await;
    assert_eq!(
        replay.json["id"],
        fake.grants()[0]["id"],
        "idempotent result stored before the pause"
    );
    hold.release();
    assert_eq!(pending.await.unwrap().json["id"], replay.json["id"]);
}

async fn all_pages(c: &TestClient, query: &[(&str, &str)]) -> Vec<Value> {
    let (mut out, mut cursor) = (Vec::new(), None::<String>);
    loop {
        let mut q = query.to_vec();
        if let Some(cur) = &cursor {
            q.push(("starting_after", cur));
        }
        let page = c.get("/v1/events", &q).await.json;
        let data = page["data"].as_array().unwrap().clone();
        out.extend(data.clone());
        if page["has_more"] != true {
            return out;
        }
        cursor = Some(data.last().unwrap()["id"].as_str().unwrap().to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_lists_events_newest_first_with_cursors_filters_and_30_day_window() {
    let fake = FakeStripe::start().await;
    let c = fake.client();
    let now = fake.now();
    for i in 0..260 {
        let t = if i % 2 == 0 {
            "invoice.paid"
        } else {
            "billing.credit_grant.created"
        };
        let mut e = creditd::sandbox::invoice_paid_event(&json!({"id": format!("in_{i}")}));
        e["type"] = json!(t);
        e["created"] = json!(now - 260 + i); // inserted oldest first
        fake.insert_event(e);
    }
    let mut old = creditd::sandbox::invoice_paid_event(&json!({"id": "in_old"}));
    old["created"] = json!(now - 31 * 86_400);
    fake.insert_event(old.clone());
    let all = all_pages(&c, &[("limit", "100")]).await;
    assert_eq!(all.len(), 260, "the 31-day-old event is invisible");
    assert!(
        all.windows(2)
            .all(|w| w[0]["created"].as_i64() > w[1]["created"].as_i64())
    );
    assert_eq!(all[0]["data"]["object"]["id"], "in_259");
    let ids: Vec<&Value> = all.iter().map(|e| &e["id"]).collect();
    let first = c.get("/v1/events", &[]).await.json;
    assert_eq!(
        (
            first["data"].as_array().unwrap().len(),
            first["has_more"].clone()
        ),
        (10, json!(true))
    );
    let back = c
        .get(
            "/v1/events",
            &[
                ("limit", "5"),
                ("ending_before", all[20]["id"].as_str().unwrap()),
            ],
        )
        .await
        .json;
    let back_ids: Vec<&Value> = back["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(
        (back_ids, back["has_more"].clone()),
        (ids[15..20].to_vec(), json!(true))
    );
    assert_eq!(
        all_pages(&c, &[("limit", "100"), ("types[0]", "invoice.paid")])
            .await
            .len(),
        130
    );
    let wildcard = all_pages(&c, &[("limit", "100"), ("type", "billing.*")]).await;
    assert!(
        wildcard.len() == 130
            && wildcard
                .iter()
                .all(|e| e["type"] == "billing.credit_grant.created")
    );
    let since = (now - 10).to_string();
    assert_eq!(
        all_pages(&c, &[("limit", "100"), ("created[gte]", &since)])
            .await
            .len(),
        10
    );
    assert_eq!(all_pages(&c, &[("created", &since)]).await.len(), 1);
    let both = c
        .get(
            "/v1/events",
            &[("type", "invoice.paid"), ("types[0]", "invoice.paid")],
        )
        .await;
    assert_eq!(both.status, 400);
    let many: Vec<(&str, &str)> = (0..21).map(|_| ("types[]", "invoice.paid")).collect();
    assert_eq!(
        c.get("/v1/events", &many).await.status,
        400,
        "at most 20 types"
    );
    let old_id = old["id"].as_str().unwrap();
    assert_error(
        &c.get(&format!("/v1/events/{old_id}"), &[]).await,
        404,
        "invalid_request_error",
        None,
    );
    assert_eq!(
        c.get(&format!("/v1/events/{}", ids[0].as_str().unwrap()), &[])
            .await
            .json["id"],
        *ids[0]
    );
    fake.advance_clock(Duration::from_secs(30 * 86_400 - 200));
    // The cutoff moves with the real clock too, so count against the fake's own now.
    let visible_at = |t: i64| {
        (0..260)
            .filter(|i| now - 260 + i >= t - 30 * 86_400)
            .count()
    };
    let most = visible_at(fake.now());
    let listed = all_pages(&c, &[("limit", "100")]).await.len();
    let least = visible_at(fake.now());
    assert!(
        (least..=most).contains(&listed) && most <= 200 && least >= 190,
        "events older than 30 days age out: {least} <= {listed} <= {most}"
    );
    assert_eq!(fake.events().len(), 261, "events() shows everything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_runs_the_invoice_lifecycle_over_http() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let r = c
        .post("/v1/invoices", &[("customer", "cus_nope")], None)
        .await;
    assert_eq!(r.json["error"]["message"], "No such customer: 'cus_nope'");
    let form = [
        ("customer", cus.as_str()),
        ("collection_method", "send_invoice"),
        ("days_until_due", "7"),
        ("metadata[purpose]", "credits"),
        ("pending_invoice_items_behavior", "exclude"),
    ];
    let inv = c.post("/v1/invoices", &form, Some("inv-1")).await.json;
    assert_eq!(
        (inv["status"].clone(), inv["hosted_invoice_url"].clone()),
        (json!("draft"), Value::Null)
    );
    let id = inv["id"].as_str().unwrap();
    let item = [
        ("customer", cus.as_str()),
        ("invoice", id),
        ("unit_amount_decimal", "2500"),
        ("quantity", "2"),
        ("currency", "usd"),
        ("description", "credits"),
    ];
    assert_eq!(
        c.post("/v1/invoiceitems", &item, None).await.json["amount"],
        5000
    );
    let fin = c
        .post(
            &format!("/v1/invoices/{id}/finalize"),
            &[("auto_advance", "false")],
            None,
        )
        .await
        .json;
    assert_eq!(
        (fin["status"].clone(), fin["amount_due"].clone()),
        (json!("open"), json!(5000))
    );
    assert!(fin["hosted_invoice_url"].as_str().unwrap().contains(id));
    assert_eq!(
        c.post("/v1/invoiceitems", &item, None).await.status,
        400,
        "not a draft any more"
    );
    assert_eq!(
        c.post(&format!("/v1/invoices/{id}/finalize"), &[], None)
            .await
            .status,
        400
    );
    let paid = c
        .post(
            &format!("/v1/invoices/{id}/pay"),
            &[("paid_out_of_band", "true")],
            None,
        )
        .await
        .json;
    assert_eq!(
        (paid["status"].clone(), paid["amount_paid"].clone()),
        (json!("paid"), json!(5000))
    );
    assert_eq!(paid["amount_remaining"], 0);
    assert!(paid["status_transitions"]["paid_at"].is_i64());
    assert_eq!(
        c.post(&format!("/v1/invoices/{id}/void"), &[], None)
            .await
            .status,
        400
    );
    let types: Vec<Value> = fake.events().iter().map(|e| e["type"].clone()).collect();
    assert_eq!(
        types,
        json!([
            "invoice.paid",
            "invoice.finalized",
            "invoiceitem.created",
            "invoice.created"
        ])
        .as_array()
        .unwrap()
        .clone()
    );
    assert_eq!(fake.events()[0]["data"]["object"]["status"], "paid");
    assert_eq!(
        fake.events()[1]["data"]["object"]["status"],
        "open",
        "events keep their snapshot"
    );
    let other = fake.create_open_invoice(&cus, 700, "usd", &[("purpose", "credits")]);
    let voided = fake.void_invoice(other["id"].as_str().unwrap());
    assert_eq!(voided["data"]["object"]["status"], "void");
    let listed = c
        .get("/v1/invoices", &[("customer", &cus), ("status", "paid")])
        .await
        .json;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        c.get(&format!("/v1/invoices/{id}"), &[]).await.json["status"],
        "paid"
    );
    assert_eq!(c.get("/v1/invoices/in_nope", &[]).await.status, 404);
    let pending = [
        ("customer", cus.as_str()),
        ("amount", "300"),
        ("currency", "usd"),
    ];
    assert_eq!(
        c.post("/v1/invoiceitems", &pending, None).await.json["invoice"],
        Value::Null
    );
    let excluded = c
        .post("/v1/invoices", &[("customer", cus.as_str())], None)
        .await
        .json;
    assert_eq!(excluded["total"], 0, "pending items stay out by default");
    let include = [
        ("customer", cus.as_str()),
        ("pending_invoice_items_behavior", "include"),
    ];
    assert_eq!(
        c.post("/v1/invoices", &include, None).await.json["total"],
        300
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_sums_balances_and_lists_transactions() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let summary = [
        ("customer", cus.as_str()),
        ("filter[type]", "applicability_scope"),
        ("filter[applicability_scope][price_type]", "metered"),
    ];
    assert_eq!(
        c.get("/v1/billing/credit_balance_summary", &summary)
            .await
            .json["balances"],
        json!([])
    );
    let a = grant(&c, &cus, "5000", None).await.json;
    grant(&c, &cus, "2500", None).await;
    let voided = grant(&c, &cus, "999", None).await.json;
    c.post(
        &format!("{GRANTS}/{}/void", voided["id"].as_str().unwrap()),
        &[],
        None,
    )
    .await;
    let s = c
        .get("/v1/billing/credit_balance_summary", &summary)
        .await
        .json;
    assert_eq!(s["object"], "billing.credit_balance_summary");
    assert_eq!(
        s["balances"][0]["available_balance"]["monetary"],
        json!({"currency": "usd", "value": 7500})
    );
    assert_eq!(
        s["balances"][0]["ledger_balance"]["monetary"]["value"],
        7500
    );
    let one = [
        ("customer", cus.as_str()),
        ("filter[type]", "credit_grant"),
        ("filter[credit_grant]", a["id"].as_str().unwrap()),
    ];
    assert_eq!(
        c.get("/v1/billing/credit_balance_summary", &one).await.json["balances"][0]["available_balance"]
            ["monetary"]["value"],
        5000
    );
    assert_eq!(
        c.get(
            "/v1/billing/credit_balance_summary",
            &[("customer", cus.as_str())]
        )
        .await
        .status,
        400
    );
    let txns = c
        .get(
            "/v1/billing/credit_balance_transactions",
            &[("customer", cus.as_str())],
        )
        .await
        .json;
    assert_eq!(txns["data"].as_array().unwrap().len(), 3);
    assert_eq!(txns["data"][2]["credit"]["type"], "credits_granted");
    assert_eq!(txns["data"][2]["credit_grant"], a["id"]);
    assert_eq!(
        c.get("/v1/billing/credit_balance_transactions", &[])
            .await
            .status,
        400
    );
    let listed = c
        .get(GRANTS, &[("customer", cus.as_str()), ("limit", "2")])
        .await
        .json;
    assert_eq!(
        (listed["data"][0]["id"].clone(), listed["has_more"].clone()),
        (voided["id"].clone(), json!(true))
    );
}

#[test]
fn fake_stripe_signature_helper_matches_the_stripe_test_vector() {
    let payload = br#"{"id":"evt_test_1","object":"event","type":"invoice.paid"}"#;
    assert_eq!(
        sign_payload("whsec_test_secret", 1_700_000_000, payload),
        "t=1700000000,v1=3e3e661992c26c45d9105cbea450acc1a34f8c6dbafbd891f858c6fd9054fe3e"
    );
    assert!(!sign_payload("test_secret", 1_700_000_000, payload).contains("3e3e6619"));
}

/// A webhook endpoint that records `(Stripe-Signature, raw body)` and answers with `status`.
#[derive(Clone, Default)]
struct Receiver {
    got: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
}

async fn receive(
    axum::extract::State(r): axum::extract::State<Receiver>,
    headers: axum::http::HeaderMap,
    body: String,
) -> axum::http::StatusCode {
    let sig = headers["stripe-signature"].to_str().unwrap().to_string();
    r.got.lock().unwrap().push((sig, body));
    axum::http::StatusCode::from_u16(r.status.load(std::sync::atomic::Ordering::SeqCst)).unwrap()
}

async fn start_receiver() -> (Receiver, String) {
    let r = Receiver::default();
    r.status.store(200, std::sync::atomic::Ordering::SeqCst);
    let app = axum::Router::new()
        .route("/webhook", axum::routing::post(receive))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_signs_delivers_and_tracks_webhooks() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let (rx, url) = start_receiver().await;
    fake.set_webhook_endpoint(&url, &["whsec_old", "whsec_new"]);
    let inv = fake.create_open_invoice(&cus, 5000, "usd", &[("purpose", "credits")]);
    let paid = fake.pay_invoice(inv["id"].as_str().unwrap());
    assert_eq!(
        (
            paid["type"].clone(),
            paid["data"]["object"]["status"].clone()
        ),
        (json!("invoice.paid"), json!("paid"))
    );
    assert_eq!(paid["api_version"], creditd::sandbox::API_VERSION);
    fake.wait_for_deliveries().await;
    let got = rx.got.lock().unwrap().clone();
    assert_eq!(
        got.len(),
        5,
        "created, item, finalized, paid, payment_succeeded"
    );
    let (sig, body) = got
        .iter()
        .find(|(_, b)| b.contains(paid["id"].as_str().unwrap()))
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap()["id"],
        paid["id"]
    );
    let t: i64 = sig
        .split(',')
        .next()
        .unwrap()
        .trim_start_matches("t=")
        .parse()
        .unwrap();
    for secret in ["whsec_old", "whsec_new"] {
        let v1 = sign_payload(secret, t, body.as_bytes())
            .split(',')
            .nth(1)
            .unwrap()
            .to_string();
        assert!(
            sig.split(',').any(|p| p == v1),
            "{sig} lacks the v1 for {secret}"
        );
    }
    assert_eq!(
        c.get("/v1/events", &[("delivery_success", "false")])
            .await
            .json["data"],
        json!([])
    );
    fake.set_webhook_delivery(false);
    let dropped = fake.pay_invoice(
        fake.create_open_invoice(&cus, 100, "usd", &[])["id"]
            .as_str()
            .unwrap(),
    );
    fake.set_webhook_delivery(true);
    rx.status.store(500, std::sync::atomic::Ordering::SeqCst);
    let failed = fake.pay_invoice(
        fake.create_open_invoice(&cus, 200, "usd", &[])["id"]
            .as_str()
            .unwrap(),
    );
    fake.wait_for_deliveries().await;
    let q = [("delivery_success", "false"), ("type", "invoice.paid")];
    let pending = c.get("/v1/events", &q).await.json;
    assert_eq!(
        pending["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].clone())
            .collect::<Vec<_>>(),
        vec![failed["id"].clone(), dropped["id"].clone()]
    );
    rx.status.store(200, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(fake.deliver_event(&dropped).await.0, 200);
    assert_eq!(
        c.get("/v1/events", &q).await.json["data"][0]["id"],
        failed["id"]
    );
    assert_eq!(
        c.get("/v1/events", &q).await.json["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
