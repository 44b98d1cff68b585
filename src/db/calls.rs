//! `stripe_calls`: the log of Stripe calls made for each purchase, so an operator can explain
//! what happened.

use sqlx::PgExecutor;

use crate::ids::PurchaseId;
use crate::stripe::{StripeError, StripeRequest};

/// Records one logical call (after the client's own retries) and how it ended. Callers go
/// through `attempt::send_and_record`, so no call is sent without its row.
pub async fn record<T>(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
    request: &StripeRequest,
    outcome: &Result<T, StripeError>,
) -> sqlx::Result<()> {
    let (status, error) = match outcome {
        Ok(_) => (Some(200), None),
        Err(e) => (e.status().map(i32::from), Some(e.to_string())),
    };
    sqlx::query(
        "INSERT INTO stripe_calls (purchase_id, method, path, idempotency_key, http_status, error)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(purchase_id)
    .bind(request.method.as_str())
    .bind(&request.path)
    .bind(request.idempotency_key.as_deref())
    .bind(status)
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}

/// One logged call, as an operator sees it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StripeCall {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    /// None when no answer came (connection error, timeout).
    pub http_status: Option<i32>,
    pub error: Option<String>,
    /// Unix seconds.
    pub at: i64,
}

/// Every call made for a purchase, in the order they were made.
pub async fn of_purchase(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
) -> sqlx::Result<Vec<StripeCall>> {
    sqlx::query_as(
        r#"
        SELECT method, path, idempotency_key, http_status, error,
               extract(epoch FROM at)::bigint AS at
        FROM stripe_calls WHERE purchase_id = $1 ORDER BY id
        "#,
    )
    .bind(purchase_id)
    .fetch_all(db)
    .await
}
