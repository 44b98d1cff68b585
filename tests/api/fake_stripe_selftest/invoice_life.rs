//! Self-tests of the rest of an invoice's life (stripe-api.md §6): the customer's balance and
//! discounts at finalization, uncollectible invoices paid or voided later, and uncollectible events.

use creditd::sandbox::{FakeStripe, TestClient};
use serde_json::{Value, json};

/// A draft with one item of `amount` for `cus`, created over HTTP as creditd does; returns its id.
async fn draft_with_item(c: &TestClient, cus: &str, amount: &str) -> String {
    let inv = c
        .post("/v1/invoices", &[("customer", cus)], None)
        .await
        .json;
    let id = inv["id"].as_str().unwrap().to_string();
    let item = [
        ("customer", cus),
        ("invoice", id.as_str()),
        ("amount", amount),
        ("currency", "usd"),
    ];
    let r = c.post("/v1/invoiceitems", &item, None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    id
}

async fn post_ok(c: &TestClient, path: &str, form: &[(&str, &str)]) -> Value {
    let r = c.post(path, form, None).await;
    assert_eq!(r.status, 200, "{path}: {}", r.json);
    r.json
}

fn amounts(inv: &Value) -> Value {
    let keys = [
        "status",
        "subtotal",
        "total",
        "starting_balance",
        "ending_balance",
        "amount_due",
        "amount_paid",
        "amount_remaining",
    ];
    keys.iter()
        .map(|k| (k.to_string(), inv[*k].clone()))
        .collect()
}

fn event_types(fake: &FakeStripe, invoice_id: &str) -> Vec<String> {
    let mut types: Vec<String> = fake
        .events()
        .iter()
        .filter(|e| e["data"]["object"]["id"] == invoice_id)
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    types.reverse();
    types
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_applies_the_customer_balance_when_an_invoice_is_finalized() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    fake.set_customer_balance(&cus, -1000);
    let id = draft_with_item(&c, &cus, "5000").await;
    let draft = fake.invoice(&id).unwrap();
    assert_eq!(
        (
            draft["starting_balance"].clone(),
            draft["ending_balance"].clone()
        ),
        (json!(0), Value::Null),
        "a draft has not used the balance yet"
    );
    let open = post_ok(&c, &format!("/v1/invoices/{id}/finalize"), &[]).await;
    let want = json!({"status": "open", "subtotal": 5000, "total": 5000, "starting_balance": -1000,
        "ending_balance": 0, "amount_due": 4000, "amount_paid": 0, "amount_remaining": 4000});
    assert_eq!(amounts(&open), want);
    assert_eq!(fake.customer_balance(&cus), 0, "the balance was consumed");
    let paid = post_ok(&c, &format!("/v1/invoices/{id}/pay"), &[]).await;
    let want = json!({"status": "paid", "subtotal": 5000, "total": 5000, "starting_balance": -1000,
        "ending_balance": 0, "amount_due": 4000, "amount_paid": 4000, "amount_remaining": 0});
    assert_eq!(amounts(&paid), want, "stripe-api.md §6's example");

    fake.set_customer_balance(&cus, -7000);
    let covered = fake.create_open_invoice(&cus, 5000, "usd", &[]);
    let id = covered["id"].as_str().unwrap();
    let want = json!({"status": "paid", "subtotal": 5000, "total": 5000, "starting_balance": -7000,
        "ending_balance": -2000, "amount_due": 0, "amount_paid": 0, "amount_remaining": 0});
    assert_eq!(
        amounts(&covered),
        want,
        "fully covered: paid at finalization"
    );
    assert_eq!(fake.customer_balance(&cus), -2000);
    assert!(covered["status_transitions"]["paid_at"].is_i64());
    assert!(event_types(&fake, id).contains(&"invoice.paid".to_string()));

    let other = fake.create_customer();
    let plain = fake.create_open_invoice(&other, 5000, "usd", &[]);
    assert_eq!(
        (
            plain["starting_balance"].clone(),
            plain["amount_due"].clone()
        ),
        (json!(0), json!(5000)),
        "another customer's balance is not used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_applies_a_customer_discount_to_its_invoices() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let discount = fake.set_customer_discount(&cus, 20.0);
    let id = draft_with_item(&c, &cus, "5000").await;
    let draft = c.get(&format!("/v1/invoices/{id}"), &[]).await.json;
    assert_eq!(
        (draft["subtotal"].clone(), draft["total"].clone()),
        (json!(5000), json!(4000)),
        "the discount applies as items are added"
    );
    assert_eq!(
        draft["total_discount_amounts"],
        json!([{"amount": 1000, "discount": discount}])
    );
    assert_eq!(draft["discounts"], json!([discount]));
    assert_eq!(
        draft["lines"]["data"][0]["discount_amounts"],
        json!([{"amount": 1000, "discount": discount}])
    );
    fake.set_customer_balance(&cus, -500);
    post_ok(&c, &format!("/v1/invoices/{id}/finalize"), &[]).await;
    let paid = post_ok(&c, &format!("/v1/invoices/{id}/pay"), &[]).await;
    let want = json!({"status": "paid", "subtotal": 5000, "total": 4000, "starting_balance": -500,
        "ending_balance": 0, "amount_due": 3500, "amount_paid": 3500, "amount_remaining": 0});
    assert_eq!(amounts(&paid), want);

    fake.remove_customer_discount(&cus);
    let full = fake.create_open_invoice(&cus, 5000, "usd", &[]);
    assert_eq!(
        (
            full["total"].clone(),
            full["total_discount_amounts"].clone()
        ),
        (json!(5000), json!([]))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_lets_an_uncollectible_invoice_be_paid_by_card_or_out_of_band() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let by_card = fake.create_open_invoice(&cus, 5000, "usd", &[]);
    let id = by_card["id"].as_str().unwrap();
    let event = fake.mark_uncollectible(id);
    assert_eq!(event["type"], "invoice.marked_uncollectible");
    assert_eq!(event["data"]["object"]["status"], "uncollectible");
    assert!(event["data"]["object"]["status_transitions"]["marked_uncollectible_at"].is_i64());
    let paid = post_ok(&c, &format!("/v1/invoices/{id}/pay"), &[]).await;
    assert_eq!(
        (paid["status"].clone(), paid["amount_paid"].clone()),
        (json!("paid"), json!(5000))
    );
    assert_eq!(paid["amount_paid_off_stripe"], 0);
    assert!(paid["status_transitions"]["paid_at"].is_i64());
    let types = event_types(&fake, id);
    assert_eq!(
        &types[1..],
        [
            "invoice.finalized",
            "invoice.marked_uncollectible",
            "invoice.paid",
            "invoice.payment_succeeded"
        ]
    );

    let oob = fake.create_open_invoice(&cus, 3000, "usd", &[]);
    let id = oob["id"].as_str().unwrap();
    post_ok(&c, &format!("/v1/invoices/{id}/mark_uncollectible"), &[]).await;
    let event = fake.pay_invoice_out_of_band(id);
    let inv = &event["data"]["object"];
    assert_eq!(
        (inv["status"].clone(), inv["amount_paid_off_stripe"].clone()),
        (json!("paid"), json!(3000))
    );
    assert_eq!(
        event_types(&fake, id).last().unwrap(),
        "invoice.paid",
        "out of band: no payment_succeeded"
    );
    let again = c
        .post(&format!("/v1/invoices/{id}/mark_uncollectible"), &[], None)
        .await;
    assert_eq!(
        again.status, 400,
        "a paid invoice cannot become uncollectible"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_lets_an_uncollectible_invoice_be_voided_and_then_never_paid() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let inv = fake.create_open_invoice(&cus, 5000, "usd", &[]);
    let id = inv["id"].as_str().unwrap();
    fake.mark_uncollectible(id);
    let voided = post_ok(&c, &format!("/v1/invoices/{id}/void"), &[]).await;
    assert_eq!(voided["status"], "void");
    assert!(voided["status_transitions"]["voided_at"].is_i64());
    assert_eq!(
        event_types(&fake, id).last().unwrap(),
        "invoice.voided",
        "voiding emits invoice.voided"
    );
    for path in ["pay", "mark_uncollectible", "void"] {
        let r = c
            .post(&format!("/v1/invoices/{id}/{path}"), &[], None)
            .await;
        assert_eq!(r.status, 400, "{path} on a void invoice: {}", r.json);
    }
    let event = fake.void_invoice(
        fake.create_open_invoice(&cus, 10, "usd", &[])["id"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(event["data"]["object"]["status"], "void", "open -> void");
}
