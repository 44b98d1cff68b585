//! Self-tests of objects the sandbox shows as Stripe does beyond the OpenAPI subset: customers
//! (with the balance and discount its controls set) and invoice items, validated against the
//! stripe-python parameter schemas in `src/sandbox/spec/sdk-operations.json`.

use creditd::sandbox::FakeStripe;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_creates_customers_and_shows_their_balance_and_discount() {
    let fake = FakeStripe::start().await;
    let c = fake.client();
    let form = [
        ("name", "Ada"),
        ("email", "ada@example.com"),
        ("balance", "-1000"),
        ("metadata[team]", "core"),
    ];
    let created = c.post("/v1/customers", &form, Some("cus-1")).await;
    assert_eq!(created.status, 200, "{}", created.json);
    let id = created.json["id"].as_str().unwrap();
    assert_eq!(created.json["object"], "customer");
    assert_eq!(
        c.post("/v1/customers", &form, Some("cus-1")).await.json["id"],
        id,
        "idempotent replay"
    );
    let shown = c.get(&format!("/v1/customers/{id}"), &[]).await.json;
    assert_eq!(
        (shown["balance"].clone(), shown["discount"].clone()),
        (json!(-1000), json!(null))
    );
    assert_eq!(shown["metadata"], json!({"team": "core"}));
    let discount = fake.set_customer_discount(id, 10.0);
    let inv = fake.create_open_invoice(id, 5000, "usd", &[]);
    assert_eq!(
        inv["amount_due"], 3500,
        "10% off 5000, then the 1000 balance"
    );
    let shown = c.get(&format!("/v1/customers/{id}"), &[]).await.json;
    assert_eq!(shown["balance"], 0, "consumed by the invoice");
    assert_eq!(
        (
            shown["discount"]["id"].clone(),
            shown["discount"]["coupon"]["percent_off"].clone()
        ),
        (json!(discount), json!(10.0))
    );
    let event_types: Vec<_> = fake.events().iter().map(|e| e["type"].clone()).collect();
    assert!(event_types.contains(&json!("customer.created")));

    let bad = c.post("/v1/customers", &[("colour", "blue")], None).await;
    assert_eq!(
        (bad.status, bad.json["error"]["param"].clone()),
        (400, json!("colour"))
    );
    let missing = c.get("/v1/customers/cus_nope", &[]).await;
    assert_eq!(
        (missing.status, missing.json["error"]["code"].clone()),
        (404, json!("resource_missing"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_shows_an_invoice_item_by_id() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let item = c
        .post(
            "/v1/invoiceitems",
            &[
                ("customer", cus.as_str()),
                ("amount", "700"),
                ("currency", "usd"),
            ],
            None,
        )
        .await
        .json;
    let id = item["id"].as_str().unwrap();
    let shown = c.get(&format!("/v1/invoiceitems/{id}"), &[]).await;
    assert_eq!((shown.status, shown.json.clone()), (200, item.clone()));
    assert_eq!(c.get("/v1/invoiceitems/ii_nope", &[]).await.status, 404);
}
