//! Self-tests of Checkout funding and saved cards (stripe-api.md §6): sessions validated against
//! stripe-python's `SessionCreateParams`, idempotent, completed into a paid invoice with our
//! metadata or expired; `POST /v1/invoices/{id}/pay` charging the default card, which may decline
//! or ask for authentication.

use creditd::sandbox::{CardBehaviour, FakeStripe, TestClient};
use serde_json::{Value, json};

const SESSIONS: &str = "/v1/checkout/sessions";

fn session_form<'a>(cus: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("mode", "payment"),
        ("customer", cus),
        ("line_items[0][price_data][currency]", "eur"),
        ("line_items[0][price_data][unit_amount]", "5000"),
        (
            "line_items[0][price_data][product_data][name]",
            "50 € of credits",
        ),
        ("line_items[0][quantity]", "1"),
        ("success_url", "https://shop.example/ok"),
        ("cancel_url", "https://shop.example/cancel"),
        ("invoice_creation[enabled]", "true"),
        (
            "invoice_creation[invoice_data][metadata][creditd_purchase_id]",
            "pur_1",
        ),
        ("invoice_creation[invoice_data][description]", "Credits"),
        ("metadata[creditd_purchase_id]", "pur_1"),
        ("client_reference_id", "pur_1"),
    ];
    form.extend_from_slice(extra);
    form
}

async fn new_session(c: &TestClient, cus: &str, extra: &[(&str, &str)]) -> Value {
    let r = c.post(SESSIONS, &session_form(cus, extra), None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    r.json
}

fn types_since(fake: &FakeStripe, before: usize) -> Vec<String> {
    let mut all = fake.events();
    all.reverse(); // oldest first
    all[before..]
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_validated_idempotent_listed_and_retrieved() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let extra = [("payment_intent_data[setup_future_usage]", "off_session")];
    let form = session_form(&cus, &extra);
    let first = c.post(SESSIONS, &form, Some("checkout-pur_1")).await;
    assert_eq!(first.status, 200, "{}", first.json);
    let s = &first.json;
    let id = s["id"].as_str().unwrap();
    assert!(id.starts_with("cs_test_"), "{s}");
    let want = json!({"object": "checkout.session", "status": "open", "payment_status": "unpaid",
        "mode": "payment", "customer": cus, "amount_total": 5000, "currency": "eur",
        "metadata": {"creditd_purchase_id": "pur_1"}, "client_reference_id": "pur_1",
        "invoice": null, "payment_intent": null, "livemode": false,
        "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/cancel"});
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&s[k], v, "{k}: {s}");
    }
    let created = s["created"].as_i64().unwrap();
    assert_eq!(s["expires_at"].as_i64().unwrap() - created, 86_400);
    assert!(
        s["url"].as_str().unwrap().starts_with(&fake.base_url()),
        "{s}"
    );

    let again = c.post(SESSIONS, &form, Some("checkout-pur_1")).await;
    assert_eq!((again.status, &again.json["id"]), (200, &s["id"]), "replay");
    assert_eq!(fake.checkout_sessions().len(), 1, "one session for one key");

    let unknown = session_form(&cus, &[("colour", "blue")]);
    let bad = c.post(SESSIONS, &unknown, None).await;
    assert_eq!(
        (bad.status, &bad.json["error"]["param"]),
        (400, &json!("colour"))
    );
    let nested = session_form(&cus, &[("invoice_creation[invoice_data][footer]", "x")]);
    let bad = c.post(SESSIONS, &nested, None).await;
    assert_eq!(
        bad.status, 400,
        "only the parameters creditd uses: {}",
        bad.json
    );
    let sfu = session_form(
        &cus,
        &[("payment_intent_data[setup_future_usage]", "always")],
    );
    assert_eq!(c.post(SESSIONS, &sfu, None).await.status, 400);
    let no_lines = [("mode", "payment"), ("customer", cus.as_str())];
    assert_eq!(c.post(SESSIONS, &no_lines, None).await.status, 400);
    let who = session_form("cus_nope", &[]);
    let r = c.post(SESSIONS, &who, None).await;
    assert_eq!(
        (r.status, &r.json["error"]["code"]),
        (400, &json!("resource_missing"))
    );

    let got = c.get(&format!("{SESSIONS}/{id}"), &[]).await;
    assert_eq!((got.status, &got.json["id"]), (200, &s["id"]));
    assert_eq!(c.get(&format!("{SESSIONS}/cs_nope"), &[]).await.status, 404);
    let second = new_session(&c, &cus, &[]).await;
    let page = c
        .get(SESSIONS, &[("customer", cus.as_str()), ("limit", "1")])
        .await
        .json;
    assert_eq!(
        (&page["data"][0]["id"], &page["has_more"]),
        (&second["id"], &json!(true))
    );
    let sa = second["id"].as_str().unwrap();
    let next = c
        .get(
            SESSIONS,
            &[("customer", cus.as_str()), ("starting_after", sa)],
        )
        .await
        .json;
    assert_eq!(next["data"][0]["id"], s["id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completed_session_leaves_a_paid_invoice_with_our_metadata() {
    let fake = FakeStripe::start().await;
    let c = fake.client();
    let cus = c.post("/v1/customers", &[("name", "Ada")], None).await.json["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        fake.default_card(&cus),
        None,
        "a customer made over HTTP has no card"
    );
    let extra = [("payment_intent_data[setup_future_usage]", "off_session")];
    let s = new_session(&c, &cus, &extra).await;
    let id = s["id"].as_str().unwrap();
    let before = fake.events().len();
    let done = fake.complete_checkout(id).unwrap();
    assert_eq!(
        (&done["status"], &done["payment_status"]),
        (&json!("complete"), &json!("paid"))
    );
    let inv_id = done["invoice"].as_str().unwrap();
    let pi = done["payment_intent"].as_str().unwrap();
    assert!(pi.starts_with("pi_"), "{done}");
    let inv = c.get(&format!("/v1/invoices/{inv_id}"), &[]).await.json;
    let want = json!({"status": "paid", "customer": cus, "currency": "eur", "amount_paid": 5000,
        "collection_method": "charge_automatically",
        "metadata": {"creditd_purchase_id": "pur_1"}, "description": "Credits"});
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&inv[k], v, "{k}: {inv}");
    }
    assert_eq!(inv["lines"]["data"][0]["description"], "50 € of credits");
    let payments = c
        .get("/v1/invoice_payments", &[("invoice", inv_id)])
        .await
        .json;
    assert_eq!(payments["data"][0]["payment"]["payment_intent"], pi);
    let refund = fake.refund_invoice(inv_id, Some(1000)).unwrap();
    assert_eq!(refund["payment_intent"], pi);
    assert_eq!(
        types_since(&fake, before),
        [
            "invoice.created",
            "invoiceitem.created",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
            "checkout.session.completed",
            "refund.created",
            "charge.refunded"
        ]
    );
    let pm = fake
        .default_card(&cus)
        .expect("setup_future_usage saves the card");
    let shown = c.get(&format!("/v1/customers/{cus}"), &[]).await.json;
    assert_eq!(shown["invoice_settings"]["default_payment_method"], pm);

    let again = fake.complete_checkout(id).unwrap_err();
    assert_eq!(again.status, 400, "a session is paid once");
    assert_eq!(
        fake.expire_checkout(id).unwrap_err().status,
        400,
        "complete cannot expire"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_by_control_and_by_the_clock() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let s = new_session(&c, &cus, &[]).await;
    let id = s["id"].as_str().unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/checkout/{id}/expire", fake.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(fake.checkout_session(id).unwrap()["status"], "expired");
    assert_eq!(fake.events()[0]["type"], "checkout.session.expired");
    assert_eq!(fake.complete_checkout(id).unwrap_err().status, 400);
    assert_eq!(fake.expire_checkout(id).unwrap_err().status, 400);

    let later = new_session(&c, &cus, &[]).await;
    fake.advance_clock(std::time::Duration::from_secs(86_400));
    let gone = fake
        .checkout_session(later["id"].as_str().unwrap())
        .unwrap();
    assert_eq!(gone["status"], "expired", "24 h later");
    let expired = c.get(SESSIONS, &[("status", "expired")]).await.json;
    assert_eq!(expired["data"].as_array().unwrap().len(), 2);
}

async fn charge_automatically_invoice(fake: &FakeStripe, cus: &str) -> String {
    let inv = fake.create_open_invoice(cus, 2000, "usd", &[("creditd_purchase_id", "pur_t")]);
    assert_eq!(inv["collection_method"], "charge_automatically");
    inv["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paying_with_the_saved_card_can_decline_or_need_authentication() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let pay = |id: String| {
        let c = c.clone();
        async move {
            c.post(
                &format!("/v1/invoices/{id}/pay"),
                &[("off_session", "true")],
                None,
            )
            .await
        }
    };

    fake.attach_card(&cus, CardBehaviour::Declines);
    let id = charge_automatically_invoice(&fake, &cus).await;
    let before = fake.events().len();
    let r = pay(id.clone()).await;
    let want = json!({"error": {"type": "card_error", "code": "card_declined",
        "decline_code": "generic_decline", "message": "Your card was declined."}});
    assert_eq!((r.status, &r.json), (402, &want));
    let inv = fake.invoice(&id).unwrap();
    assert_eq!(
        (&inv["status"], &inv["attempt_count"]),
        (&json!("open"), &json!(1))
    );
    assert_eq!(types_since(&fake, before), ["invoice.payment_failed"]);
    assert_eq!(pay(id.clone()).await.status, 402);
    assert_eq!(fake.invoice(&id).unwrap()["attempt_count"], 2);
    let tried = c
        .get("/v1/invoice_payments", &[("invoice", id.as_str())])
        .await
        .json;
    assert_eq!(
        tried["data"].as_array().unwrap().len(),
        1,
        "one attempt's intent: {tried}"
    );
    assert_eq!(tried["data"][0]["status"], "open");
    let pi = tried["data"][0]["payment"]["payment_intent"]
        .as_str()
        .unwrap()
        .to_string();
    let intent = c.get(&format!("/v1/payment_intents/{pi}"), &[]).await.json;
    assert_eq!(intent["status"], "requires_payment_method");
    assert_eq!(
        intent["last_payment_error"]["decline_code"],
        "generic_decline"
    );

    fake.attach_card(&cus, CardBehaviour::RequiresAuthentication);
    let before = fake.events().len();
    let r = pay(id.clone()).await;
    assert_eq!(r.status, 402, "{}", r.json);
    assert_eq!(
        (&r.json["error"]["type"], &r.json["error"]["code"]),
        (&json!("card_error"), &json!("authentication_required"))
    );
    let inv = fake.invoice(&id).unwrap();
    assert_eq!(inv["status"], "open");
    assert!(inv["hosted_invoice_url"].is_string(), "{inv}");
    let intent = c.get(&format!("/v1/payment_intents/{pi}"), &[]).await.json;
    assert_eq!(intent["status"], "requires_action");
    assert_eq!(
        types_since(&fake, before),
        ["invoice.payment_action_required"]
    );

    fake.remove_default_card(&cus);
    let before = fake.events().len();
    let r = pay(id.clone()).await;
    assert_eq!(
        (r.status, &r.json["error"]["type"]),
        (400, &json!("invalid_request_error"))
    );
    assert_eq!(
        r.json["error"]["message"],
        "This customer has no attached payment source or default payment method."
    );
    assert_eq!(fake.events().len(), before, "nothing happened");
    assert_eq!(fake.invoice(&id).unwrap()["status"], "open");

    let r = reqwest::Client::new()
        .post(format!("{}/_sandbox/customers/{cus}/card", fake.base_url()))
        .json(&json!({"behaviour": "succeeds"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let before = fake.events().len();
    let r = pay(id.clone()).await;
    assert_eq!(
        (r.status, &r.json["status"]),
        (200, &json!("paid")),
        "{}",
        r.json
    );
    assert_eq!(
        types_since(&fake, before),
        ["invoice.paid", "invoice.payment_succeeded"]
    );
    let payments = c
        .get("/v1/invoice_payments", &[("invoice", id.as_str())])
        .await
        .json;
    assert_eq!(payments["data"].as_array().unwrap().len(), 1);
    assert_eq!(payments["data"][0]["status"], "paid");
    assert_eq!(
        payments["data"][0]["payment"]["payment_intent"], pi,
        "the same intent"
    );
    let intent = c.get(&format!("/v1/payment_intents/{pi}"), &[]).await.json;
    assert_eq!(
        (&intent["status"], &intent["last_payment_error"]),
        (&json!("succeeded"), &Value::Null)
    );
    let refund = fake.refund_invoice(&id, None).unwrap();
    assert_eq!(
        (&refund["payment_intent"], &refund["amount"]),
        (&json!(pi), &json!(2000))
    );

    let oob = charge_automatically_invoice(&fake, &cus).await;
    fake.remove_default_card(&cus);
    let r = c
        .post(
            &format!("/v1/invoices/{oob}/pay"),
            &[("paid_out_of_band", "true")],
            None,
        )
        .await;
    assert_eq!(r.status, 200, "out of band needs no card: {}", r.json);
    let r = c
        .post(
            &format!("/v1/invoices/{oob}/pay"),
            &[("forgive", "true")],
            None,
        )
        .await;
    assert_eq!(r.status, 400, "only the parameters the fake implements");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_credits_send_a_balance_transaction_event() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let form = [
        ("customer", cus.as_str()),
        ("category", "paid"),
        ("amount[type]", "monetary"),
        ("amount[monetary][value]", "1000"),
        ("amount[monetary][currency]", "usd"),
        ("applicability_config[scope][price_type]", "metered"),
    ];
    assert_eq!(
        c.post("/v1/billing/credit_grants", &form, None)
            .await
            .status,
        200
    );
    fake.use_credits(&cus, 300, "usd").unwrap();
    let event = fake
        .events()
        .into_iter()
        .find(|e| e["type"] == "billing.credit_balance_transaction.created")
        .expect("the debit's event");
    let txn = &event["data"]["object"];
    assert_eq!(
        (&txn["type"], &txn["debit"]["type"]),
        (&json!("debit"), &json!("credits_applied"))
    );
    assert_eq!(txn["debit"]["amount"]["monetary"]["value"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_cards_survive_a_sandbox_restart() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let pm = fake.attach_card(&cus, CardBehaviour::Declines);
    let s = new_session(&c, &cus, &[]).await;
    let path = std::env::temp_dir().join(format!("{}.json", s["id"].as_str().unwrap()));
    fake.save_state(&path).unwrap();
    let again = FakeStripe::start().await;
    again.load_state(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(again.default_card(&cus), Some(pm));
    let id = s["id"].as_str().unwrap();
    assert_eq!(again.complete_checkout(id).unwrap()["status"], "complete");
    let inv = charge_automatically_invoice(&again, &cus).await;
    assert_eq!(again.charge_saved_card(&inv).unwrap_err().status, 402);
}
