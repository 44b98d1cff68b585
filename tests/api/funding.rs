//! Purchases that fund themselves: the seed guide end to end, resumable invoice creation,
//! cancellation, listing, and the customer's credit views.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::process::CreditdProcess;
use crate::harness::{
    API_TOKEN, TestApp, WEBHOOK_SECRET, fresh_database, json_response, wait_for_purchase_status,
};
use creditd::sandbox::{FakeStripe, Fault, FaultKind};

fn funded(customer: &str, amount: i64, currency: &str) -> Value {
    json!({"customer": customer, "amount": amount, "currency": currency, "description": "credit purchase",
           "credit": {"name": "Prepaid credits", "priority": 20}})
}

#[tokio::test]
async fn the_whole_seed_guide_runs_through_creditds_api_alone() {
    let app = TestApp::spawn().await;
    let customer = app.stripe.create_customer();
    let (status, purchase) = app
        .post_purchase(&funded(&customer, 1000, "usd"), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{purchase}");
    assert_eq!(purchase["status"], "awaiting_payment");
    let invoice_id = purchase["invoice_id"]
        .as_str()
        .expect("the answer carries the invoice")
        .to_owned();
    assert!(
        purchase["hosted_invoice_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://")),
        "{purchase}"
    );
    let purchase_id = purchase["id"].as_str().unwrap();

    // The guide's three calls, with the guide's parameters.
    let invoices = app.stripe.requests_to("POST", "/v1/invoices");
    let create = invoices.iter().find(|r| r.path == "/v1/invoices").unwrap();
    assert_eq!(create.params["customer"], customer.as_str());
    assert_eq!(create.params["collection_method"], "charge_automatically");
    assert_eq!(create.params["description"], "credit purchase");
    assert_eq!(create.params["pending_invoice_items_behavior"], "exclude");
    assert_eq!(
        create.params["metadata"]["creditd_purchase_id"],
        purchase_id
    );
    let items = app.stripe.requests_to("POST", "/v1/invoiceitems");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].params["invoice"], invoice_id.as_str());
    assert_eq!(items[0].params["amount"], "1000");
    assert_eq!(items[0].params["currency"], "usd");
    let finalize = invoices
        .iter()
        .find(|r| r.path.ends_with("/finalize"))
        .unwrap();
    assert_eq!(finalize.params["auto_advance"], "true");
    for request in invoices.iter().chain(&items) {
        let key = request.idempotency_key.as_deref().unwrap();
        assert!(
            key.contains(purchase_id),
            "every step's key derives from the purchase: {key}"
        );
    }

    app.stripe.pay_invoice(&invoice_id);
    let granted = app.wait_for_status(purchase_id, "granted").await;
    let grants = app.stripe.grants();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0]["amount"]["monetary"]["value"], 1000);
    assert_eq!(grants[0]["priority"], 20);
    assert_eq!(grants[0]["name"], "Prepaid credits");
    assert_eq!(granted["credit_grant_id"], grants[0]["id"]);

    let path = format!("/v1/customers/{customer}/credit_balance");
    let (status, balance) = app.api(Method::GET, &path, None, Some(API_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{balance}");
    assert_eq!(balance["balances"][0]["available"]["value"], 1000);
    assert_eq!(balance["balances"][0]["available"]["display"], "10.00 USD");
    let path = format!(
        "/v1/customers/{customer}/credit_transactions?credit_grant={}",
        grants[0]["id"].as_str().unwrap()
    );
    let (status, transactions) = app.api(Method::GET, &path, None, Some(API_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{transactions}");
    assert_eq!(transactions["data"][0]["credit"]["type"], "credits_granted");
}

#[tokio::test]
async fn zero_decimal_currencies_are_charged_and_granted_in_their_own_unit() {
    let app = TestApp::spawn().await;
    let customer = app.stripe.create_customer();
    let (_, purchase) = app
        .post_purchase(&funded(&customer, 5000, "jpy"), None)
        .await;
    assert_eq!(purchase["amount_display"], "5000 JPY");
    assert_eq!(app.stripe.invoice_items()[0]["amount"], 5000);
    app.stripe
        .pay_invoice(purchase["invoice_id"].as_str().unwrap());
    app.wait_for_status(purchase["id"].as_str().unwrap(), "granted")
        .await;
    assert_eq!(
        app.stripe.grants()[0]["amount"]["monetary"]["currency"],
        "jpy"
    );
}

#[tokio::test]
async fn a_failure_between_steps_resumes_without_a_second_invoice_or_item() {
    for (step, path) in [
        ("item", "/v1/invoiceitems"),
        ("finalize", "/v1/invoices/in_"),
    ] {
        let app = TestApp::spawn().await;
        // More failures than the client's own retries, so the worker has to resume the purchase.
        app.stripe
            .inject(Fault::new("POST", path, FaultKind::api_error()).times(4));
        let customer = app.stripe.create_customer();
        let (status, purchase) = app
            .post_purchase(&funded(&customer, 900, "usd"), None)
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{step}: {purchase}");
        assert_eq!(purchase["status"], "creating_invoice");
        let id = purchase["id"].as_str().unwrap();
        let resumed = app.wait_for_status(id, "awaiting_payment").await;
        app.stripe
            .pay_invoice(resumed["invoice_id"].as_str().unwrap());
        app.wait_for_status(id, "granted").await;
        assert_eq!(app.stripe.invoices().len(), 1, "{step}");
        assert_eq!(app.stripe.invoice_items().len(), 1, "{step}");
        assert_eq!(app.stripe.grants().len(), 1, "{step}");
    }
}

/// A real SIGKILL right after Stripe performed each step, with Stripe's keys forgotten too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_each_funding_step_resumes_to_one_invoice_one_item_one_grant() {
    for path in ["/v1/invoices", "/v1/invoiceitems", "/v1/invoices/in_"] {
        let stripe = FakeStripe::start().await;
        let (database_url, db) = fresh_database().await;
        let first = CreditdProcess::start(&database_url, &stripe, &[]).await;
        let customer = stripe.create_customer();
        let pause = stripe.pause_after_effect("POST", path);
        let url = first.url("/v1/purchases");
        let body = funded(&customer, 1100, "usd");
        let request = tokio::spawn(async move {
            reqwest::Client::new()
                .post(url)
                .bearer_auth(API_TOKEN)
                .json(&body)
                .send()
                .await
        });
        pause.reached().await;
        first.kill().await;
        stripe.forget_idempotency_keys();
        pause.release();
        assert!(request.await.unwrap().is_err(), "the client saw the crash");

        let second = CreditdProcess::start(&database_url, &stripe, &[]).await;
        stripe.set_webhook_endpoint(&second.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
        let (purchase_id,): (String,) = sqlx::query_as("SELECT id FROM purchases")
            .fetch_one(&db)
            .await
            .unwrap();
        wait_for_purchase_status(&db, &purchase_id, "awaiting_payment").await;
        let (invoice_id,): (String,) = sqlx::query_as("SELECT invoice_id FROM purchases")
            .fetch_one(&db)
            .await
            .unwrap();
        stripe.pay_invoice(&invoice_id);
        wait_for_purchase_status(&db, &purchase_id, "granted").await;
        assert_eq!(stripe.invoices().len(), 1, "after a kill at {path}");
        assert_eq!(stripe.invoice_items().len(), 1, "after a kill at {path}");
        assert_eq!(stripe.grants().len(), 1, "after a kill at {path}");
        second.kill().await;
    }
}

#[tokio::test]
async fn a_repeated_idempotency_key_makes_one_purchase_and_one_invoice() {
    let app = TestApp::spawn().await;
    let customer = app.stripe.create_customer();
    let body = funded(&customer, 500, "usd");
    let answers =
        futures::future::join_all((0..10).map(|_| app.post_purchase(&body, Some("order-77"))))
            .await;
    let (_, again) = app.post_purchase(&body, Some("order-77")).await;
    let ids: std::collections::HashSet<_> = answers
        .iter()
        .chain([&(StatusCode::OK, again)])
        .map(|(_, b)| b["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    crate::harness::eventually("the purchase's invoice is open", || async {
        let purchase = app.get_purchase(ids.iter().next().unwrap()).await;
        purchase["status"] == "awaiting_payment"
    })
    .await;
    assert_eq!(app.stripe.invoices().len(), 1);
    assert_eq!(app.stripe.invoice_items().len(), 1);
}

#[tokio::test]
async fn stripe_refusing_the_invoice_fails_the_purchase_with_stripes_message() {
    let app = TestApp::spawn().await;
    let (status, answer) = app
        .post_purchase(&funded("cus_unknown", 500, "usd"), None)
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("No such customer"), "{message}");
    let (status,): (String,) = sqlx::query_as("SELECT status FROM purchases")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(status, "failed");
}

#[tokio::test]
async fn cancel_voids_an_unpaid_invoice_and_refuses_a_paid_one() {
    let app = TestApp::spawn().await;
    let customer = app.stripe.create_customer();
    let (_, unpaid) = app
        .post_purchase(&funded(&customer, 500, "usd"), None)
        .await;
    let path = format!("/v1/purchases/{}/cancel", unpaid["id"].as_str().unwrap());
    let (status, canceled) = app.api(Method::POST, &path, None, Some(API_TOKEN)).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(
        app.stripe
            .invoice(unpaid["invoice_id"].as_str().unwrap())
            .unwrap()["status"],
        "void"
    );

    let (_, paid) = app
        .post_purchase(&funded(&customer, 600, "usd"), None)
        .await;
    app.stripe.pay_invoice(paid["invoice_id"].as_str().unwrap());
    app.wait_for_status(paid["id"].as_str().unwrap(), "granted")
        .await;
    let path = format!("/v1/purchases/{}/cancel", paid["id"].as_str().unwrap());
    let (status, refused) = app.api(Method::POST, &path, None, Some(API_TOKEN)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("paid")
    );
}

#[tokio::test]
async fn a_voided_invoice_webhook_cancels_the_waiting_purchase() {
    let app = TestApp::spawn().await;
    let (purchase, invoice) = app.purchase_for_new_invoice(400).await;
    app.stripe.void_invoice(invoice["id"].as_str().unwrap());
    app.wait_for_status(purchase["id"].as_str().unwrap(), "canceled")
        .await;
}

#[tokio::test]
async fn purchases_are_listed_newest_first_with_cursor_pagination() {
    let app = TestApp::spawn().await;
    let mut created = Vec::new();
    for i in 0..5 {
        let body = json!({"customer": if i % 2 == 0 { "cus_even" } else { "cus_odd" }, "amount": 100 + i,
                          "currency": "usd", "invoice_id": format!("in_list{i}")});
        created.push(
            app.post_purchase(&body, None).await.1["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (_, page) = app
        .api(Method::GET, "/v1/purchases?limit=2", None, Some(API_TOKEN))
        .await;
    assert_eq!(page["has_more"], true);
    let first: Vec<_> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(first, vec![created[4].clone(), created[3].clone()]);
    let path = format!("/v1/purchases?limit=10&starting_after={}", created[3]);
    let (_, rest) = app.api(Method::GET, &path, None, Some(API_TOKEN)).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 3);
    assert_eq!(rest["has_more"], false);
    let (_, even) = app
        .api(
            Method::GET,
            "/v1/purchases?customer=cus_even&status=awaiting_payment",
            None,
            Some(API_TOKEN),
        )
        .await;
    assert_eq!(even["data"].as_array().unwrap().len(), 3);
    let (status, bad) = app
        .api(
            Method::GET,
            "/v1/purchases?status=paid_maybe",
            None,
            Some(API_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad["error"]["field"], "status");
}

#[tokio::test]
async fn an_unreachable_stripe_is_a_503_never_an_empty_balance() {
    let app = TestApp::spawn().await;
    app.stripe.inject(
        Fault::new(
            "GET",
            "/v1/billing/credit_balance_summary",
            FaultKind::DropConnection,
        )
        .forever(),
    );
    let (status, answer) = app
        .api(
            Method::GET,
            "/v1/customers/cus_1/credit_balance",
            None,
            Some(API_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"]["code"], "stripe_unavailable");
    assert!(answer.get("balances").is_none());
}

#[tokio::test]
async fn funding_validation_names_the_field_and_touches_neither_database_nor_stripe() {
    let app = TestApp::spawn().await;
    let before = app.snapshot().await;
    let cases = [
        (
            json!({"customer": "cus_1", "amount": 5, "currency": "usd", "collection_method": "cash"}),
            "collection_method",
        ),
        (
            json!({"customer": "cus_1", "amount": 5, "currency": "usd", "collection_method": "send_invoice"}),
            "days_until_due",
        ),
        (
            json!({"customer": "cus_1", "amount": 5, "currency": "usd", "days_until_due": 5}),
            "days_until_due",
        ),
        (
            json!({"customer": "cus_1", "amount": 5, "currency": "usd", "description": ""}),
            "description",
        ),
        (
            json!({"customer": "cus_1", "amount": 5, "currency": "usd", "credit": {"value": 0}}),
            "credit.value",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = app.post_purchase(&body, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], field);
    }
    let response = app
        .http
        .get(app.url("/v1/customers/not-a-customer/credit_balance"))
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, _) = json_response(response).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.snapshot().await, before);
    assert!(app.stripe.requests().is_empty());
}
