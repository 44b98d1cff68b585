//! Managing endpoints: validation that names the field and changes nothing, secrets shown once,
//! rotation with both signatures during the grace period, disable, enable, delete, all audited;
//! an endpoint failing for the whole window is disabled, and recover sends its messages again.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{admin_post, count, granted_purchase, register};
use crate::harness::receiver::{Behaviour, Receiver};
use crate::harness::{ADMIN_TOKEN, TestApp, eventually};

async fn audit_actions(app: &TestApp) -> Vec<(String, String, Value)> {
    sqlx::query_as("SELECT action, actor, result FROM admin_audit ORDER BY id")
        .fetch_all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_endpoints_are_refused_naming_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let before = app.snapshot().await;
    for (body, field) in [
        (
            json!({"url": "http://127.0.0.1/h", "events": ["purchase.granted", "purchase.nope"]}),
            "events",
        ),
        (json!({"url": "http://127.0.0.1/h", "events": []}), "events"),
        (json!({"url": "ftp://127.0.0.1/h", "events": ["*"]}), "url"),
        (json!({"events": ["*"]}), "url"),
        (
            json!({"url": "http://127.0.0.1/h", "events": ["*"], "secret": "mine"}),
            "secret",
        ),
    ] {
        let (status, error) = app
            .api(
                Method::POST,
                "/admin/webhook_endpoints",
                Some(&body),
                Some(ADMIN_TOKEN),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {error}");
        assert_eq!(error["error"]["field"], field, "{error}");
    }
    assert_eq!(app.snapshot().await, before);
    assert_eq!(count(&app, "webhook_endpoints").await, 0);
}

#[tokio::test]
async fn secrets_are_shown_once_and_every_change_is_audited() {
    let app = TestApp::spawn().await;
    let (id, secret) = register(&app, "http://127.0.0.1:9/hook", json!(["purchase.granted"])).await;
    assert!(secret.starts_with("whsec_"));

    let (status, list) = app
        .api(
            Method::GET,
            "/admin/webhook_endpoints",
            None,
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(!list.to_string().contains("whsec_"), "{list}");

    for action in ["disable", "enable"] {
        let (status, body) = admin_post(
            &app,
            &format!("/admin/webhook_endpoints/{id}/{action}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], format!("{action}d"));
    }
    let (status, rotated) = admin_post(
        &app,
        &format!("/admin/webhook_endpoints/{id}/rotate_secret"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    let (status, _) = app
        .api(
            Method::DELETE,
            &format!("/admin/webhook_endpoints/{id}"),
            None,
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        admin_post(&app, &format!("/admin/webhook_endpoints/{id}/enable"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "deleted is gone");

    let audit = audit_actions(&app).await;
    let actions: Vec<_> = audit.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "webhook_endpoint.create",
            "webhook_endpoint.disable",
            "webhook_endpoint.enable",
            "webhook_endpoint.rotate_secret",
            "webhook_endpoint.delete"
        ]
    );
    let everything = format!("{:?}", app.snapshot().await["admin_audit"]);
    assert!(!everything.contains(&secret) && !everything.contains(new_secret));
    let (stored,): (Option<String>,) =
        sqlx::query_as("SELECT secret FROM webhook_endpoints WHERE id = $1")
            .bind(&id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, None, "a deleted endpoint's secret is wiped");
}

#[tokio::test]
async fn during_a_rotation_both_the_old_and_the_new_secret_sign() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let (id, old) = register(&app, &receiver.url, json!(["purchase.granted"])).await;
    let (_, rotated) = admin_post(
        &app,
        &format!("/admin/webhook_endpoints/{id}/rotate_secret"),
        None,
    )
    .await;
    let new = rotated["secret"].as_str().unwrap();
    assert!(rotated["previous_secret_expires_at"].as_i64().is_some());

    granted_purchase(&app).await;
    let delivery = receiver.wait_for_type("purchase.granted").await;
    assert_eq!(
        delivery.signature.split(' ').count(),
        2,
        "{}",
        delivery.signature
    );
    assert!(delivery.signed_with(new));
    assert!(delivery.signed_with(&old));
    assert!(delivery.signature.starts_with("v1,"));
}

#[tokio::test]
async fn after_the_grace_period_only_the_new_secret_signs() {
    let app = TestApp::spawn_with(|c| c.outbound.outbound_secret_grace_secs = 0).await;
    let receiver = Receiver::start().await;
    let (id, old) = register(&app, &receiver.url, json!(["purchase.granted"])).await;
    let (_, rotated) = admin_post(
        &app,
        &format!("/admin/webhook_endpoints/{id}/rotate_secret"),
        None,
    )
    .await;
    granted_purchase(&app).await;
    let delivery = receiver.wait_for_type("purchase.granted").await;
    assert_eq!(delivery.signature.split(' ').count(), 1);
    assert!(delivery.signed_with(rotated["secret"].as_str().unwrap()));
    assert!(!delivery.signed_with(&old));
}

#[tokio::test]
async fn an_endpoint_failing_for_the_whole_window_is_disabled_and_recover_resends_its_messages() {
    let app = TestApp::spawn_with(|c| {
        c.outbound.outbound_retry_schedule = "100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms,100ms".into();
        c.outbound.outbound_disable_after_secs = 1;
    })
    .await;
    let receiver = Receiver::start().await;
    receiver.behave(Behaviour::Status(500));
    let (id, secret) = register(&app, &receiver.url, json!(["*"])).await;
    granted_purchase(&app).await;

    let show = || async {
        app.api(
            Method::GET,
            &format!("/admin/webhook_endpoints/{id}"),
            None,
            Some(ADMIN_TOKEN),
        )
        .await
        .1
    };
    eventually("the endpoint to be disabled", || async {
        show().await["status"] == "disabled"
    })
    .await;
    let endpoint = show().await;
    assert_eq!(endpoint["disabled_reason"], "failing");
    let audit = audit_actions(&app).await;
    let disabled = audit
        .iter()
        .find(|a| a.0 == "webhook_endpoint.disable")
        .unwrap();
    assert_eq!(disabled.1, "creditd");
    let (status, failed) = app
        .api(
            Method::GET,
            &format!("/admin/webhook_messages?status=failed&endpoint={id}"),
            None,
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let failed_ids: Vec<String> = failed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(failed_ids.len(), 2, "invoice_ready and granted: {failed}");
    let attempts_before = receiver.deliveries().len();
    assert!(
        app.metrics()
            .await
            .contains("creditd_outbound_endpoints_disabled_total 1")
    );

    receiver.behave(Behaviour::Ok);
    admin_post(&app, &format!("/admin/webhook_endpoints/{id}/enable"), None).await;
    let since = chrono::Utc::now().timestamp() - 3600;
    let (status, body) = admin_post(
        &app,
        &format!("/admin/webhook_endpoints/{id}/recover"),
        Some(json!({"since": since})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["requeued"], 2);
    // An attempt that was in flight when the endpoint was disabled may still land: look for
    // both messages among what arrives after the recovery rather than counting.
    let resent = || async {
        let deliveries = receiver.deliveries();
        let late = &deliveries[attempts_before..];
        failed_ids
            .iter()
            .all(|id| late.iter().any(|d| &d.id == id && d.signed_with(&secret)))
    };
    eventually("both failed messages sent again", resent).await;
    let delivered = format!("/admin/webhook_messages?status=delivered&endpoint={id}");
    eventually("both recovered messages delivered", || async {
        let (_, delivered) = app
            .api(Method::GET, &delivered, None, Some(ADMIN_TOKEN))
            .await;
        delivered["data"].as_array().unwrap().len() == 2
    })
    .await;
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"creditd_outbound_messages_total{outcome="delivered"} 2"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"creditd_outbound_attempts_total{outcome="server_error"}"#));
    assert!(metrics.contains("creditd_outbound_oldest_undelivered_seconds 0"));
}
