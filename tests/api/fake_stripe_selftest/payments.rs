//! Self-tests of the payments behind paid invoices (stripe-api.md §6): the InvoicePayment that
//! links an invoice to its PaymentIntent and Charge, refunds, and disputes with their events.

use creditd::sandbox::FakeStripe;
use serde_json::{Value, json};

fn events_of(fake: &FakeStripe, prefix: &str) -> Vec<Value> {
    let mut found: Vec<Value> = fake
        .events()
        .into_iter()
        .filter(|e| e["type"].as_str().unwrap().starts_with(prefix))
        .collect();
    found.reverse();
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_links_a_card_paid_invoice_to_its_charge_and_refunds_it() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let inv = fake.create_open_invoice(&cus, 5000, "usd", &[]);
    let id = inv["id"].as_str().unwrap();
    fake.pay_invoice(id);
    let listed = c.get("/v1/invoice_payments", &[("invoice", id)]).await.json;
    let payment = &listed["data"][0];
    assert_eq!(
        (payment["amount_paid"].clone(), payment["status"].clone()),
        (json!(5000), json!("paid"))
    );
    assert_eq!(
        fake.invoice(id).unwrap()["payments"]["data"][0]["id"],
        payment["id"]
    );
    let pi = payment["payment"]["payment_intent"].as_str().unwrap();
    let intent = c.get(&format!("/v1/payment_intents/{pi}"), &[]).await.json;
    let ch = intent["latest_charge"].as_str().unwrap();

    let refund = c
        .post(
            "/v1/refunds",
            &[("payment_intent", pi), ("amount", "2000")],
            Some("re-1"),
        )
        .await;
    assert_eq!(refund.status, 200, "{}", refund.json);
    assert_eq!(
        (refund.json["charge"].clone(), refund.json["status"].clone()),
        (json!(ch), json!("succeeded"))
    );
    let refunded = &events_of(&fake, "charge.refunded")[0]["data"];
    assert_eq!(
        (
            refunded["object"]["amount_refunded"].clone(),
            refunded["previous_attributes"].clone()
        ),
        (json!(2000), json!({"amount_refunded": 0}))
    );
    assert_eq!(events_of(&fake, "refund.created").len(), 1);
    let too_much = fake.refund_invoice(id, Some(3001)).unwrap_err();
    assert_eq!(too_much.status, 400, "only 3000 left");
    let rest = fake.refund_invoice(id, None).unwrap();
    assert_eq!(rest["amount"], 3000);
    let charge = c.get(&format!("/v1/charges/{ch}"), &[]).await.json;
    assert_eq!(
        (
            charge["amount_refunded"].clone(),
            charge["refunded"].clone()
        ),
        (json!(5000), json!(true))
    );
    let shown = c
        .get(
            &format!("/v1/refunds/{}", rest["id"].as_str().unwrap()),
            &[],
        )
        .await
        .json;
    assert_eq!(shown, rest);
    assert_eq!(
        fake.invoice(id).unwrap()["status"],
        "paid",
        "a refund leaves the invoice paid"
    );

    let oob = fake.create_open_invoice(&cus, 100, "usd", &[]);
    let oob_id = oob["id"].as_str().unwrap();
    fake.pay_invoice_out_of_band(oob_id);
    assert_eq!(
        fake.refund_invoice(oob_id, None).unwrap_err().status,
        400,
        "no card payment"
    );
    let bad = c.post("/v1/refunds", &[("amount", "1")], None).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_disputes_a_card_payment_and_closes_the_dispute() {
    let fake = FakeStripe::start().await;
    let cus = fake.create_customer();
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let inv = fake.create_open_invoice(&cus, 4000, "usd", &[]);
            let id = inv["id"].as_str().unwrap().to_string();
            fake.pay_invoice(&id);
            id
        })
        .collect();
    let lost = fake.dispute_invoice(&ids[0], false).unwrap();
    assert_eq!(
        (lost["status"].clone(), lost["amount"].clone()),
        (json!("needs_response"), json!(4000))
    );
    let types = |fake: &FakeStripe| -> Vec<String> {
        events_of(fake, "charge.dispute")
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        types(&fake),
        ["charge.dispute.created", "charge.dispute.funds_withdrawn"]
    );
    fake.close_dispute(lost["id"].as_str().unwrap(), false)
        .unwrap();
    let inquiry = fake.dispute_invoice(&ids[1], true).unwrap();
    assert_eq!(inquiry["status"], "warning_needs_response");
    let won = fake
        .close_dispute(inquiry["id"].as_str().unwrap(), true)
        .unwrap();
    assert_eq!(won["status"], "won");
    assert_eq!(
        types(&fake)[2..],
        [
            "charge.dispute.closed",
            "charge.dispute.created",
            "charge.dispute.closed"
        ],
        "an inquiry moved no money, so winning it reinstates none"
    );
    assert_eq!(
        fake.close_dispute(won["id"].as_str().unwrap(), true)
            .unwrap_err()
            .status,
        400
    );
    let shown = fake
        .client()
        .get(
            &format!("/v1/disputes/{}", won["id"].as_str().unwrap()),
            &[],
        )
        .await;
    assert_eq!(shown.json["status"], "won");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_refund_and_dispute_controls_answer_over_http() {
    let fake = FakeStripe::start().await;
    let cus = fake.create_customer();
    let id = fake.create_open_invoice(&cus, 900, "usd", &[])["id"]
        .as_str()
        .unwrap()
        .to_string();
    fake.pay_invoice(&id);
    let http = reqwest::Client::new();
    let control = |path: String, body: Value| {
        http.post(format!("{}/_sandbox/{path}", fake.base_url()))
            .json(&body)
            .send()
    };
    let refund = control(format!("invoices/{id}/refund"), json!({"amount": 100}))
        .await
        .unwrap();
    assert_eq!(refund.status(), 200);
    assert_eq!(refund.json::<Value>().await.unwrap()["amount"], 100);
    let dispute = control(format!("invoices/{id}/dispute"), json!({}))
        .await
        .unwrap();
    let dispute: Value = dispute.json().await.unwrap();
    let du = dispute["id"].as_str().unwrap();
    let draw = control(format!("disputes/{du}/close"), json!({"outcome": "draw"}))
        .await
        .unwrap();
    assert_eq!(draw.status(), 400);
    let won = control(format!("disputes/{du}/close"), json!({"outcome": "won"}))
        .await
        .unwrap();
    assert_eq!(won.json::<Value>().await.unwrap()["status"], "won");
    let missing = control("disputes/du_nope/close".into(), json!({"outcome": "won"}))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
