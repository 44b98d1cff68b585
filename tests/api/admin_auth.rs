//! Every admin route needs ADMIN_TOKEN: no token, a wrong one or the API token get 401 and
//! change nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{ADMIN_TOKEN, API_TOKEN, TestApp};

#[tokio::test]
async fn admin_routes_require_the_admin_token_and_nothing_else() {
    let app = TestApp::spawn().await;
    app.stripe.set_webhook_delivery(false);
    let (purchase, invoice) = app.purchase_for_new_invoice(1200).await;
    let event = app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    let purchase_id = purchase["id"].as_str().unwrap();
    let event_id = event["id"].as_str().unwrap();
    let since = json!({"since": chrono::Utc::now().timestamp() - 60});
    let routes = [
        (
            Method::POST,
            "/admin/resync".to_string(),
            Some(since.clone()),
        ),
        (Method::GET, "/admin/resync/rsy_anything".to_string(), None),
        (Method::GET, "/admin/events?limit=5".to_string(), None),
        (
            Method::POST,
            format!("/admin/events/{event_id}/replay"),
            None,
        ),
        (
            Method::GET,
            "/admin/purchases?status=failed".to_string(),
            None,
        ),
        (Method::GET, format!("/admin/purchases/{purchase_id}"), None),
        (
            Method::POST,
            format!("/admin/purchases/{purchase_id}/retry"),
            Some(json!({"force": true})),
        ),
    ];
    let before = app.snapshot().await;
    for (method, path, body) in &routes {
        for token in [None, Some("wrong-token-wrong-token"), Some(API_TOKEN)] {
            let (status, answer) = app.api(method.clone(), path, body.as_ref(), token).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {token:?}: {answer}"
            );
            assert_eq!(answer["error"]["code"], "unauthorized");
        }
    }
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused request changed something"
    );
    assert!(app.stripe.requests_to("GET", "/v1/events").is_empty());
    assert!(app.stripe.grants().is_empty());

    // The admin token opens them all.
    for (method, path, body) in &routes {
        let (status, answer) = app
            .api(method.clone(), path, body.as_ref(), Some(ADMIN_TOKEN))
            .await;
        assert_ne!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {answer}"
        );
    }
}

#[tokio::test]
async fn operators_can_list_events_explain_a_purchase_and_retry_failed_ones() {
    let app = TestApp::spawn().await;
    let (purchase, invoice) = app.purchase_for_new_invoice(5000).await;
    let purchase_id = purchase["id"].as_str().unwrap();
    // Every grant request fails for good, so the purchase ends up failed.
    app.stripe.inject(
        creditd::sandbox::Fault::new(
            "POST",
            "/v1/billing/credit_grants",
            creditd::sandbox::FaultKind::bad_request_no_retry(),
        )
        .forever(),
    );
    app.stripe.pay_invoice(invoice["id"].as_str().unwrap());
    app.stripe.wait_for_deliveries().await;
    app.wait_for_status(purchase_id, "failed").await;

    let (status, list) = app
        .api(
            Method::GET,
            "/admin/events?status=scheduled&type=invoice.paid",
            None,
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["data"][0]["purchase_id"], purchase_id);

    let (status, failed) = app
        .api(
            Method::GET,
            "/admin/purchases?status=failed",
            None,
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(failed["data"][0]["id"], purchase_id);

    let (status, explained) = app
        .api(
            Method::GET,
            &format!("/admin/purchases/{purchase_id}"),
            None,
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{explained}");
    let history: Vec<&str> = explained["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["to"].as_str().unwrap())
        .collect();
    assert_eq!(history, vec!["awaiting_payment", "granting", "failed"]);
    let paid: Vec<&serde_json::Value> = explained["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "invoice.paid")
        .collect();
    assert_eq!(paid.len(), 1, "{explained}");
    assert_eq!(paid[0]["outcome"], "scheduled");
    let calls = explained["stripe_calls"].as_array().unwrap();
    assert!(
        calls
            .iter()
            .any(|c| c["path"] == "/v1/billing/credit_grants" && c["http_status"] == 400),
        "{explained}"
    );

    app.stripe.clear_faults();
    let (status, retried) = app
        .api(
            Method::POST,
            &format!("/admin/purchases/{purchase_id}/retry"),
            None,
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{retried}");
    assert_eq!(retried["attempts"], 0);
    app.wait_for_status(purchase_id, "granted").await;
    assert_eq!(app.stripe.grants().len(), 1);

    // A granted purchase is not retried.
    let (status, body) = app
        .api(
            Method::POST,
            &format!("/admin/purchases/{purchase_id}/retry"),
            Some(&json!({"force": true})),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let actions: Vec<(String, String)> =
        sqlx::query_as("SELECT action, actor FROM admin_audit ORDER BY id")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(
        actions,
        vec![
            ("purchase.retry".into(), "admin-token".into()),
            ("purchase.force_retry".into(), "admin-token".into())
        ]
    );
}

#[tokio::test]
async fn a_rejected_purchase_is_retried_only_with_force() {
    let app = TestApp::spawn().await;
    let (purchase, _invoice) = app.purchase_for_new_invoice(800).await;
    let purchase_id = purchase["id"].as_str().unwrap();
    sqlx::query(
        "UPDATE purchases SET status = 'rejected', last_error = 'amount mismatch' WHERE id = $1",
    )
    .bind(purchase_id)
    .execute(&app.db)
    .await
    .unwrap();
    let path = format!("/admin/purchases/{purchase_id}/retry");
    let (status, body) = app.api(Method::POST, &path, None, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "purchase_rejected");
    assert_eq!(app.get_purchase(purchase_id).await["status"], "rejected");

    let (status, body) = app
        .api(
            Method::POST,
            &path,
            Some(&json!({"force": true})),
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Not paid yet: back to waiting for the payment.
    assert_eq!(body["status"], "awaiting_payment");
    let (result,): (serde_json::Value,) =
        sqlx::query_as("SELECT result FROM admin_audit WHERE action = 'purchase.force_retry'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(result["status"], "awaiting_payment");
}
