//! How database failures reach the API: a constraint violation is the request's fault and answers
//! 409/422 naming the constraint; only a database that cannot serve now answers 503.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::TestApp;
use creditd::error::ApiError;

async fn purchases_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM purchases")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_unique_violation_on_registration_answers_409_not_503() {
    let app = TestApp::spawn().await;
    // A unique rule the handler knows nothing about: the generic mapping must still say 409.
    sqlx::query("CREATE UNIQUE INDEX one_purchase_per_customer ON purchases (customer)")
        .execute(&app.db)
        .await
        .unwrap();
    let first =
        json!({"customer": "cus_1", "amount": 500, "currency": "usd", "invoice_id": "in_1"});
    let (status, answer) = app.post_purchase(&first, None).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let before = app.snapshot().await;

    let second =
        json!({"customer": "cus_1", "amount": 700, "currency": "usd", "invoice_id": "in_2"});
    let (status, answer) = app.post_purchase(&second, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "conflict");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("one_purchase_per_customer"), "{message}");

    // The invoice's own unique key answers in the API's words, naming the field.
    let again =
        json!({"customer": "cus_2", "amount": 500, "currency": "usd", "invoice_id": "in_1"});
    let (status, answer) = app.post_purchase(&again, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(answer["error"]["code"], "invoice_already_registered");
    assert_eq!(answer["error"]["field"], "invoice_id");
    assert_eq!(
        app.snapshot().await,
        before,
        "a refused registration changes nothing"
    );
    assert_eq!(purchases_count(&app).await, 1);
}

/// Each kind of failure from a real PostgreSQL, through the one mapping.
#[tokio::test]
async fn database_failures_map_by_kind() {
    let app = TestApp::spawn().await;
    let failure = |sql: &'static str| {
        let db = app.db.clone();
        async move {
            let mut conn = db.acquire().await.unwrap();
            sqlx::query("SET statement_timeout = 50")
                .execute(&mut *conn)
                .await
                .unwrap();
            let error = sqlx::raw_sql(sql).execute(&mut *conn).await.unwrap_err();
            ApiError::from(error)
        }
    };
    let check = failure(
        "INSERT INTO purchases (id, status, customer, amount, currency, livemode, credit)
         VALUES ('pur_x', 'awaiting_payment', 'cus_1', 0, 'usd', false, '{}')",
    )
    .await;
    assert_eq!(check.status, StatusCode::UNPROCESSABLE_ENTITY, "{check:?}");
    assert_eq!(check.code, "constraint_violated");
    assert!(
        check.message.contains("purchases_amount_check"),
        "{check:?}"
    );

    let timeout = failure("SELECT pg_sleep(5)").await;
    assert_eq!(
        timeout.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{timeout:?}"
    );
    assert_eq!(timeout.code, "database_unavailable");

    let bug = failure("SELECT no_such_column FROM purchases").await;
    assert_eq!(bug.status, StatusCode::INTERNAL_SERVER_ERROR, "{bug:?}");
    assert!(
        !bug.message.contains("no_such_column"),
        "driver text stays in the logs"
    );

    app.db.close().await;
    let closed = ApiError::from(app.db.acquire().await.unwrap_err());
    assert_eq!(closed.status, StatusCode::SERVICE_UNAVAILABLE);
}
