//! What a paid invoice must show to back its purchase (balance and discounts never reject it), and
//! how the grant is found again after Stripe stored a 500 while its list lagged behind.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestApp, eventually};
use creditd::sandbox::{Fault, FaultKind};

/// A creditd-funded purchase for a customer prepared by `arrange`; returns (purchase, invoice).
async fn funded_purchase(
    app: &TestApp,
    amount: i64,
    arrange: impl FnOnce(&str),
) -> (String, Value) {
    let customer = app.stripe.create_customer();
    arrange(&customer);
    let body = json!({"customer": customer, "amount": amount, "currency": "usd"});
    let (status, purchase) = app.post_purchase(&body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{purchase}");
    let invoice = app
        .stripe
        .invoice(purchase["invoice_id"].as_str().unwrap())
        .unwrap();
    (purchase["id"].as_str().unwrap().to_owned(), invoice)
}

#[tokio::test]
async fn an_invoice_partly_paid_by_the_customers_balance_is_granted_in_full() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice) = funded_purchase(&app, 5000, |customer| {
        app.stripe.set_customer_balance(customer, -1000)
    })
    .await;
    assert_eq!(invoice["amount_due"], 4000, "{invoice}");
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.stripe.wait_for_deliveries().await;
    app.drain().await;
    let granted = app.get_purchase(&id).await;
    assert_eq!(granted["status"], "granted", "{granted}");
    let settlement = &granted["settlement"];
    assert_eq!(settlement["total"], 5000, "{granted}");
    assert_eq!(settlement["amount_paid"], 4000, "{granted}");
    assert_eq!(settlement["balance_applied"], 1000, "{granted}");
    let grants = app.stripe.grants();
    assert_eq!(grants.len(), 1);
    assert_eq!(
        grants[0]["amount"]["monetary"]["value"], 5000,
        "the full purchase"
    );
}

#[tokio::test]
async fn a_discounted_invoice_that_creditd_created_is_granted() {
    let app = TestApp::spawn_without_workers().await;
    let (id, invoice) = funded_purchase(&app, 5000, |customer| {
        app.stripe.set_customer_discount(customer, 20.0);
    })
    .await;
    assert_eq!(invoice["total"], 4000, "{invoice}");
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.stripe.wait_for_deliveries().await;
    app.drain().await;
    let granted = app.get_purchase(&id).await;
    assert_eq!(granted["status"], "granted", "{granted}");
    assert_eq!(granted["settlement"]["discounts"], 1000, "{granted}");
    assert_eq!(granted["settlement"]["gross"], 5000, "{granted}");
    assert_eq!(app.stripe.grants().len(), 1);
}

/// Runs due attempts until the purchase reaches `status`; retries are scheduled a little later, so
/// this waits for each to fall due.
async fn drain_until(app: &TestApp, id: &str, status: &str) -> Value {
    eventually(&format!("purchase {id} is {status}"), || async {
        app.drain().await;
        app.get_purchase(id).await["status"] == status
    })
    .await;
    app.get_purchase(id).await
}

#[tokio::test]
async fn a_stored_500_whose_grant_the_list_shows_only_later_makes_no_second_grant() {
    let app = TestApp::spawn_without_workers().await;
    app.stripe.inject(Fault::new(
        "POST",
        "/v1/billing/credit_grants",
        FaultKind::EffectThenStored500,
    ));
    app.stripe.hide_new_grants_from_list(1);
    let (purchase, invoice) = app.purchase_for_new_invoice(2500).await;
    let id = purchase["id"].as_str().unwrap();
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.stripe.wait_for_deliveries().await;
    let granted = drain_until(&app, id, "granted").await;
    let grants = app.stripe.grants();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(granted["credit_grant_id"], grants[0]["id"]);
    let keys: HashSet<_> = app
        .stripe
        .requests_to("POST", "/v1/billing/credit_grants")
        .into_iter()
        .map(|r| r.idempotency_key.unwrap())
        .collect();
    assert_eq!(keys.len(), 1, "never a new key: {keys:?}");
    let looks = app.stripe.requests_to("GET", "/v1/billing/credit_grants");
    assert!(looks.len() >= 2, "looked twice: {}", looks.len());
}

#[tokio::test]
async fn a_grant_found_voided_is_still_the_purchases_grant() {
    let app = TestApp::spawn_without_workers().await;
    app.stripe.inject(Fault::new(
        "POST",
        "/v1/billing/credit_grants",
        FaultKind::EffectThenStored500,
    ));
    let (purchase, invoice) = app.purchase_for_new_invoice(2500).await;
    let id = purchase["id"].as_str().unwrap();
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.stripe.wait_for_deliveries().await;
    app.drain().await;
    let grant = app.stripe.grants()[0]["id"].as_str().unwrap().to_owned();
    let voided = app
        .stripe
        .client()
        .post(
            &format!("/v1/billing/credit_grants/{grant}/void"),
            &[],
            None,
        )
        .await;
    assert_eq!(voided.status, 200, "{}", voided.json);
    let granted = drain_until(&app, id, "granted").await;
    assert_eq!(granted["credit_grant_id"], grant.as_str());
    assert!(granted["credit_grant_voided_at"].is_i64(), "{granted}");
    assert_eq!(app.stripe.grants().len(), 1, "never granted again");
}
