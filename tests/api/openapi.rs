//! The OpenAPI document: generated from the handlers, checked in, served, and true to the answers.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::TestApp;

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

fn generated() -> String {
    serde_json::to_string_pretty(&creditd::http::openapi()).unwrap() + "\n"
}

#[test]
fn the_checked_in_openapi_document_is_current() {
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(CHECKED_IN, generated()).unwrap();
    }
    let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        checked_in == generated(),
        "docs/openapi.json is stale; regenerate it with: UPDATE_OPENAPI=1 scripts/test openapi"
    );
}

fn properties(document: &Value, schema: &str) -> BTreeSet<String> {
    document["components"]["schemas"][schema]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_served_document_is_the_generated_one_and_matches_real_answers() {
    let app = TestApp::spawn().await;
    let served: Value = app
        .http
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        served,
        serde_json::to_value(creditd::http::openapi()).unwrap()
    );
    for path in [
        "/v1/purchases",
        "/v1/purchases/{id}",
        "/v1/purchases/{id}/cancel",
        "/webhooks/stripe",
        "/readyz",
    ] {
        assert!(served["paths"][path].is_object(), "{path} is documented");
    }

    let (status, purchase) = app
        .post_purchase(
            &json!({"customer": "cus_1", "amount": 1, "currency": "usd", "invoice_id": "in_1"}),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let answered: BTreeSet<String> = purchase.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        answered,
        properties(&served, "Purchase"),
        "the Purchase schema lists exactly the fields answered"
    );

    let (_, error) = app.post_purchase(&json!({"amount": 1}), None).await;
    let answered: BTreeSet<String> = error["error"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(answered, properties(&served, "ErrorBody"));
}

/// Resolves a `$ref` to the named component schema.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.rsplit('/').next().unwrap();
            &document["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// The documented properties of an object schema, through `allOf` (a flattened struct).
fn documented_properties(
    document: &Value,
    schema: &Value,
) -> Option<serde_json::Map<String, Value>> {
    let schema = resolve(document, schema);
    if let Some(parts) = schema["allOf"].as_array() {
        let mut all = serde_json::Map::new();
        for part in parts {
            all.extend(documented_properties(document, part)?);
        }
        return Some(all);
    }
    schema["properties"].as_object().cloned()
}

/// Every object in `answer` has exactly the documented properties, recursively; scalars have the
/// documented type. Free-form objects (`type: object` without properties) are not looked into.
fn check(document: &Value, schema: &Value, answer: &Value, at: &str, faults: &mut Vec<String>) {
    let schema = resolve(document, schema);
    if answer.is_null() {
        return;
    }
    if let Some(alternatives) = schema["oneOf"].as_array() {
        for alternative in alternatives.iter().filter(|a| a["type"] != "null") {
            check(document, alternative, answer, at, faults);
        }
        return;
    }
    if let Some(properties) = documented_properties(document, schema) {
        let Some(object) = answer.as_object() else {
            return faults.push(format!("{at}: documented as an object, answered {answer}"));
        };
        let documented: BTreeSet<&String> = properties.keys().collect();
        let answered: BTreeSet<&String> = object.keys().collect();
        if documented != answered {
            faults.push(format!(
                "{at}: documented {documented:?}, answered {answered:?}"
            ));
        }
        for (key, value) in object {
            if let Some(property) = properties.get(key) {
                check(document, property, value, &format!("{at}.{key}"), faults);
            }
        }
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    let fits = types.iter().any(|t| match *t {
        "string" => answer.is_string(),
        "integer" => answer.is_i64() || answer.is_u64(),
        "number" => answer.is_number(),
        "boolean" => answer.is_boolean(),
        "object" => answer.is_object(),
        "array" => answer.as_array().is_some_and(|items| {
            for (i, item) in items.iter().enumerate() {
                check(
                    document,
                    &schema["items"],
                    item,
                    &format!("{at}[{i}]"),
                    faults,
                );
            }
            true
        }),
        _ => true,
    });
    if !fits {
        faults.push(format!("{at}: documented as {types:?}, answered {answer}"));
    }
}

/// Every JSON response the document promises, as `(METHOD path, status)` with its schema.
fn documented_responses(document: &Value) -> Vec<(String, String, Value)> {
    let mut found = Vec::new();
    for (path, operations) in document["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let schema = &response["content"]["application/json"]["schema"];
                if !schema.is_null() {
                    let route = format!("{} {path}", method.to_uppercase());
                    found.push((route, status.clone(), schema.clone()));
                }
            }
        }
    }
    found
}

/// Drives every route to a real answer and checks each against what the document promises for
/// that route and status; every route's success answer and every documented schema is covered.
#[tokio::test]
async fn every_documented_response_matches_a_real_answer() {
    use reqwest::Method;

    use crate::harness::{ADMIN_TOKEN, API_TOKEN};

    let app = TestApp::spawn().await;
    let document = serde_json::to_value(creditd::http::openapi()).unwrap();
    let answers = std::cell::RefCell::new(Vec::<(String, u16, Value)>::new());
    let call = async |method: Method, route: &str, path: &str, body: Option<Value>, token| {
        let (status, answer) = app.api(method.clone(), path, body.as_ref(), token).await;
        let route = format!("{method} {route}");
        answers
            .borrow_mut()
            .push((route, status.as_u16(), answer.clone()));
        answer
    };
    let api = Some(API_TOKEN);
    let admin = Some(ADMIN_TOKEN);

    let customer = app.stripe.create_customer();
    let invoice = app.stripe.create_open_invoice(&customer, 900, "usd", &[]);
    let body = json!({"customer": customer, "amount": 900, "currency": "usd", "invoice_id": invoice["id"]});
    let purchase = call(
        Method::POST,
        "/v1/purchases",
        "/v1/purchases",
        Some(body),
        api,
    )
    .await;
    let id = purchase["id"].as_str().unwrap().to_owned();
    call(
        Method::POST,
        "/v1/purchases",
        "/v1/purchases",
        Some(json!({"amount": 1})),
        api,
    )
    .await;
    call(
        Method::GET,
        "/v1/purchases/{id}",
        &format!("/v1/purchases/{id}"),
        None,
        api,
    )
    .await;
    call(
        Method::GET,
        "/v1/purchases/{id}",
        "/v1/purchases/pur_missing",
        None,
        api,
    )
    .await;
    call(Method::GET, "/v1/purchases", "/v1/purchases", None, api).await;
    call(Method::GET, "/v1/purchases", "/v1/purchases", None, None).await;

    let balance = format!("/v1/customers/{customer}/credit_balance");
    call(
        Method::GET,
        "/v1/customers/{customer}/credit_balance",
        &balance,
        None,
        api,
    )
    .await;
    let transactions = format!("/v1/customers/{customer}/credit_transactions");
    let route = "/v1/customers/{customer}/credit_transactions";
    call(Method::GET, route, &transactions, None, api).await;

    let topup = format!("/v1/customers/{customer}/auto_topup");
    let route = "/v1/customers/{customer}/auto_topup";
    let rule = json!({"threshold": 100, "amount": 500, "currency": "usd",
                      "max_topups_per_month": 2, "max_amount_per_month": 1000});
    call(Method::PUT, route, &topup, Some(rule), api).await;
    call(
        Method::PUT,
        route,
        &topup,
        Some(json!({"threshold": 1})),
        api,
    )
    .await;
    call(Method::GET, route, &topup, None, api).await;
    call(Method::DELETE, route, &topup, None, api).await;
    call(Method::GET, route, &topup, None, api).await;

    let paid = app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.stripe.wait_for_deliveries().await;
    // Delivered again by hand, so the test sees the webhook's own answer.
    let (status, ack) = app.post_webhook(&paid).await;
    let route = "POST /webhooks/stripe".to_owned();
    answers
        .borrow_mut()
        .push((route, status.as_u16(), ack.clone()));
    app.wait_for_status(&id, "granted").await;
    let event_id = ack["event_id"].as_str().unwrap();

    let (cancelable, _) = app.purchase_for_new_invoice(500).await;
    let cancel = format!(
        "/v1/purchases/{}/cancel",
        cancelable["id"].as_str().unwrap()
    );
    call(
        Method::POST,
        "/v1/purchases/{id}/cancel",
        &cancel,
        None,
        api,
    )
    .await;
    call(
        Method::POST,
        "/v1/purchases/{id}/cancel",
        &format!("/v1/purchases/{id}/cancel"),
        None,
        api,
    )
    .await;

    let since = chrono::Utc::now().timestamp() - 3600;
    let started = call(
        Method::POST,
        "/admin/resync",
        "/admin/resync",
        Some(json!({"since": since})),
        admin,
    )
    .await;
    let resync = format!("/admin/resync/{}", started["id"].as_str().unwrap());
    call(Method::GET, "/admin/resync/{id}", &resync, None, admin).await;
    call(Method::GET, "/admin/events", "/admin/events", None, admin).await;
    let replay = format!("/admin/events/{event_id}/replay");
    call(
        Method::POST,
        "/admin/events/{event_id}/replay",
        &replay,
        None,
        admin,
    )
    .await;
    call(
        Method::GET,
        "/admin/purchases",
        "/admin/purchases",
        None,
        admin,
    )
    .await;
    call(
        Method::GET,
        "/admin/purchases/{id}",
        &format!("/admin/purchases/{id}"),
        None,
        admin,
    )
    .await;
    let receiver = crate::harness::receiver::Receiver::start().await;
    let endpoints = "/admin/webhook_endpoints";
    let endpoint = json!({"url": receiver.url, "events": ["*"]});
    let endpoint = call(Method::POST, endpoints, endpoints, Some(endpoint), admin).await;
    let (failed, _) = app.purchase_for_new_invoice(700).await;
    let failed = failed["id"].as_str().unwrap();
    sqlx::query("UPDATE purchases SET status = 'failed', next_attempt_at = NULL WHERE id = $1")
        .bind(failed)
        .execute(&app.db)
        .await
        .unwrap();
    let retry = format!("/admin/purchases/{failed}/retry");
    call(
        Method::POST,
        "/admin/purchases/{id}/retry",
        &retry,
        None,
        admin,
    )
    .await;
    // Every `/admin/webhook_*` route, now that the failed purchase made a message.
    let one = format!(
        "/admin/webhook_endpoints/{}",
        endpoint["id"].as_str().unwrap()
    );
    call(Method::GET, endpoints, endpoints, None, admin).await;
    call(
        Method::GET,
        "/admin/webhook_endpoints/{id}",
        &one,
        None,
        admin,
    )
    .await;
    for action in ["rotate_secret", "disable", "enable"] {
        let route = format!("/admin/webhook_endpoints/{{id}}/{action}");
        call(
            Method::POST,
            &route,
            &format!("{one}/{action}"),
            None,
            admin,
        )
        .await;
    }
    let since = json!({"since": chrono::Utc::now().timestamp() - 60});
    let route = "/admin/webhook_endpoints/{id}/recover";
    call(
        Method::POST,
        route,
        &format!("{one}/recover"),
        Some(since),
        admin,
    )
    .await;
    let route = "/admin/webhook_messages";
    let messages = call(Method::GET, route, route, None, admin).await;
    let message = messages["data"][0]["id"].as_str().unwrap().to_owned();
    let retry = format!("/admin/webhook_messages/{message}/retry");
    let route = "/admin/webhook_messages/{id}/retry";
    call(Method::POST, route, &retry, None, admin).await;
    let delivered = receiver.wait_for_type("purchase.failed").await;
    let event_schema = json!({"$ref": "#/components/schemas/WebhookEvent"});
    let mut event_faults = Vec::new();
    check(
        &document,
        &event_schema,
        &delivered.json(),
        "webhook event",
        &mut event_faults,
    );
    assert!(event_faults.is_empty(), "{}", event_faults.join("\n"));
    let route = "/admin/webhook_endpoints/{id}";
    call(Method::DELETE, route, &one, None, admin).await;
    for route in ["/healthz", "/readyz"] {
        call(Method::GET, route, route, None, None).await;
    }

    let answers = answers.take();
    let documented = documented_responses(&document);
    let mut faults = Vec::new();
    let mut schemas_seen = BTreeSet::new();
    for (route, status, answer) in &answers {
        let promised = documented
            .iter()
            .find(|(r, s, _)| r == route && s == &status.to_string());
        let Some((_, _, schema)) = promised else {
            faults.push(format!(
                "{route} answered {status}, which is not documented: {answer}"
            ));
            continue;
        };
        schemas_seen.insert(schema.to_string());
        check(
            &document,
            schema,
            answer,
            &format!("{route} {status}"),
            &mut faults,
        );
    }
    for (route, status, schema) in &documented {
        if !schemas_seen.contains(&schema.to_string()) {
            faults.push(format!(
                "{route} {status}: schema {schema} never checked against an answer"
            ));
        }
        let succeeded = answers
            .iter()
            .any(|(r, s, _)| r == route && (200..300).contains(s));
        if !succeeded {
            faults.push(format!("{route}: no success answer was checked"));
        }
    }
    assert!(faults.is_empty(), "{}", faults.join("\n"));
}
