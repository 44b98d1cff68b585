//! Self-tests of the fake's list endpoints where creditd's catch-up paths depend on them: invoice
//! paging and filters, and a credit grant list that lags behind a create.

use creditd::sandbox::{FakeStripe, TestClient};
use serde_json::{Value, json};
use std::time::Duration;

const GRANTS: &str = "/v1/billing/credit_grants";
const DAY: u64 = 86_400;

/// Follows `starting_after` to the end; returns the ids and each page's `(len, has_more)`.
async fn pages(
    c: &TestClient,
    path: &str,
    query: &[(&str, &str)],
) -> (Vec<String>, Vec<(usize, bool)>) {
    let (mut ids, mut shape, mut cursor) = (Vec::new(), Vec::new(), None::<String>);
    loop {
        let mut q = query.to_vec();
        if let Some(cur) = &cursor {
            q.push(("starting_after", cur));
        }
        let page = c.get(path, &q).await;
        assert_eq!(page.status, 200, "{}", page.json);
        let data = page.json["data"].as_array().unwrap().clone();
        let more = page.json["has_more"] == true;
        shape.push((data.len(), more));
        ids.extend(data.iter().map(|o| o["id"].as_str().unwrap().to_string()));
        if !more {
            return (ids, shape);
        }
        cursor = Some(ids.last().unwrap().clone());
    }
}

async fn grant(c: &TestClient, cus: &str) -> String {
    let form = [
        ("customer", cus),
        ("category", "paid"),
        ("amount[type]", "monetary"),
        ("amount[monetary][value]", "100"),
        ("amount[monetary][currency]", "usd"),
        ("applicability_config[scope][price_type]", "metered"),
    ];
    let r = c.post(GRANTS, &form, None).await;
    assert_eq!(r.status, 200, "{}", r.json);
    r.json["id"].as_str().unwrap().to_string()
}

async fn listed_grants(c: &TestClient, cus: &str) -> Vec<String> {
    pages(c, GRANTS, &[("customer", cus)]).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_pages_invoices_with_cursors_and_filters_by_status_and_created() {
    let fake = FakeStripe::start().await;
    let (c, cus) = (fake.client(), fake.create_customer());
    let old =
        fake.create_open_invoice_created_ago(&cus, 100, "usd", &[], Duration::from_secs(3 * DAY));
    let old_id = old["id"].as_str().unwrap().to_string();
    let mut made: Vec<String> = (0..24)
        .map(|_| {
            fake.create_open_invoice(&cus, 100, "usd", &[])["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    made.insert(0, old_id.clone());
    made.reverse(); // Stripe lists newest first
    let (ids, shape) = pages(&c, "/v1/invoices", &[("customer", &cus), ("limit", "10")]).await;
    assert_eq!(ids, made, "every invoice once, newest first");
    assert_eq!(shape, [(10, true), (10, true), (5, false)]);

    for id in &made[..3] {
        fake.pay_invoice(id);
    }
    let paid_at =
        fake.pay_invoice(&old_id)["data"]["object"]["status_transitions"]["paid_at"].clone();
    assert!(paid_at.as_i64().unwrap() > old["created"].as_i64().unwrap() + 2 * DAY as i64);
    let (paid, _) = pages(
        &c,
        "/v1/invoices",
        &[("customer", &cus), ("status", "paid"), ("limit", "2")],
    )
    .await;
    assert_eq!(paid, [&made[..3], std::slice::from_ref(&old_id)].concat());
    let (open, _) = pages(&c, "/v1/invoices", &[("status", "open")]).await;
    assert_eq!(open.len(), 21);

    let day_ago = (fake.now() - DAY as i64).to_string();
    let (before, _) = pages(&c, "/v1/invoices", &[("created[lt]", &day_ago)]).await;
    assert_eq!(
        before,
        std::slice::from_ref(&old_id),
        "created before the window"
    );
    let (since, _) = pages(
        &c,
        "/v1/invoices",
        &[("created[gte]", &day_ago), ("limit", "7")],
    )
    .await;
    assert_eq!(since, made[..24].to_vec());
    let exact = old["created"].to_string();
    let (at, _) = pages(&c, "/v1/invoices", &[("created", &exact)]).await;
    assert_eq!(at, std::slice::from_ref(&old_id));
    let (none, _) = pages(
        &c,
        "/v1/invoices",
        &[("created[lte]", &day_ago), ("status", "open")],
    )
    .await;
    assert!(none.is_empty(), "the old invoice is paid now");
    let (sent, _) = pages(&c, "/v1/invoices", &[("collection_method", "send_invoice")]).await;
    assert!(sent.is_empty());
    for bad in ["0", "101"] {
        assert_eq!(c.get("/v1/invoices", &[("limit", bad)]).await.status, 400);
    }
    let r = c.get("/v1/invoices", &[("status", "bogus")]).await;
    assert_eq!(
        (r.status, r.json["error"]["param"].clone()),
        (400, json!("status"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_stripe_hides_new_grants_from_the_list_for_n_looks_that_would_include_them() {
    let fake = FakeStripe::start().await;
    let (c, cus, other) = (
        fake.client(),
        fake.create_customer(),
        fake.create_customer(),
    );
    let before = grant(&c, &cus).await;
    fake.hide_new_grants_from_list(2);
    let late = grant(&c, &cus).await;
    let theirs = grant(&c, &other).await;
    assert_eq!(
        listed_grants(&c, &cus).await,
        std::slice::from_ref(&before),
        "first look"
    );
    let got = c.get(&format!("{GRANTS}/{late}"), &[]).await;
    assert_eq!(
        (got.status, got.json["id"].clone()),
        (200, json!(late)),
        "retrieve is consistent"
    );
    assert_eq!(
        listed_grants(&c, &other).await,
        Vec::<String>::new(),
        "lags for every customer"
    );
    assert_eq!(
        listed_grants(&c, &cus).await,
        std::slice::from_ref(&before),
        "second look"
    );
    assert_eq!(
        listed_grants(&c, &cus).await,
        [late.clone(), before.clone()],
        "then it appears"
    );
    assert_eq!(
        listed_grants(&c, &other).await,
        Vec::<String>::new(),
        "other's second look"
    );
    assert_eq!(
        listed_grants(&c, &other).await,
        std::slice::from_ref(&theirs)
    );

    fake.hide_new_grants_from_list(0);
    let prompt = grant(&c, &cus).await;
    let all: Value = c.get(GRANTS, &[("customer", &cus)]).await.json;
    assert_eq!(
        all["data"][0]["id"],
        json!(prompt),
        "no lag once turned off"
    );
}
