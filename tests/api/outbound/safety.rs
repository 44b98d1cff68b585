//! SSRF: private addresses are refused at registration and again at delivery unless allowed,
//! http needs its setting, and redirects are never followed.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{granted_purchase, messages_of, register};
use crate::harness::receiver::{Behaviour, Receiver};
use crate::harness::{ADMIN_TOKEN, TestApp, eventually};

async fn strict_app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.outbound.outbound_allow_http = false;
        c.outbound.outbound_allow_private_networks = false;
    })
    .await
}

#[tokio::test]
async fn private_and_plain_http_endpoints_are_refused_unless_allowed() {
    let app = strict_app().await;
    for (url, says) in [
        ("https://127.0.0.1/hook", "loopback, private"),
        ("https://10.0.0.8/hook", "loopback, private"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback, private"),
        ("https://localhost/hook", "loopback, private"),
        ("http://example.com/hook", "https"),
    ] {
        let body = json!({"url": url, "events": ["*"]});
        let (status, error) = app
            .api(
                Method::POST,
                "/admin/webhook_endpoints",
                Some(&body),
                Some(ADMIN_TOKEN),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {error}");
        assert_eq!(error["error"]["field"], "url");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(says),
            "{url}: {error}"
        );
    }
    assert_eq!(super::count(&app, "webhook_endpoints").await, 0);

    // The test harness allows both, as the sandbox does.
    let open = TestApp::spawn().await;
    register(&open, "http://127.0.0.1:9/hook", json!(["*"])).await;
}

#[tokio::test]
async fn an_endpoint_that_now_resolves_inside_is_refused_at_delivery() {
    let app = TestApp::spawn_with(|c| c.outbound.outbound_allow_private_networks = false).await;
    let receiver = Receiver::start().await;
    // As if its name had pointed outside at registration and points here now.
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, events, status, secret)
         VALUES ('we_rebound', $1, '{*}', 'enabled', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')",
    )
    .bind(&receiver.url)
    .execute(&app.db)
    .await
    .unwrap();
    let purchase_id = granted_purchase(&app).await;

    eventually("a refused attempt", || async {
        let messages = messages_of(&app, &purchase_id).await;
        messages.iter().any(|m| {
            !m["deliveries"][0]["attempts"]
                .as_array()
                .unwrap()
                .is_empty()
        })
    })
    .await;
    let messages = messages_of(&app, &purchase_id).await;
    let attempt = messages
        .iter()
        .find_map(|m| m["deliveries"][0]["attempts"].get(0).cloned())
        .unwrap();
    assert_eq!(attempt["http_status"], serde_json::Value::Null);
    let error = attempt["error"].as_str().unwrap();
    assert!(
        error.starts_with("address refused") && error.contains("127.0.0.1"),
        "{error}"
    );
    assert!(
        receiver.deliveries().is_empty(),
        "nothing reached the address"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_counts_as_a_failure() {
    let app = TestApp::spawn().await;
    let elsewhere = Receiver::start().await;
    let receiver = Receiver::start().await;
    receiver.behave(Behaviour::Redirect(elsewhere.url.clone()));
    register(&app, &receiver.url, json!(["purchase.granted"])).await;
    let purchase_id = granted_purchase(&app).await;

    let failed = || async {
        messages_of(&app, &purchase_id)
            .await
            .iter()
            .any(|m| m["type"] == "purchase.granted" && m["deliveries"][0]["status"] == "failed")
    };
    eventually("the schedule to run out", failed).await;
    assert_eq!(receiver.deliveries().len(), 4);
    assert!(
        elsewhere.deliveries().is_empty(),
        "the redirect was not followed"
    );
    let messages = messages_of(&app, &purchase_id).await;
    let granted = messages
        .iter()
        .find(|m| m["type"] == "purchase.granted")
        .unwrap();
    assert_eq!(granted["deliveries"][0]["attempts"][0]["http_status"], 307);
}
