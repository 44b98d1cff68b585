//! `purchase_transitions`: every status change of a purchase, written by a trigger (migration
//! 0001) and read here for the operator's view.

use sqlx::PgExecutor;

use crate::ids::PurchaseId;
use crate::purchase::PurchaseStatus;

/// One status change.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StatusChange {
    /// None for the purchase's first status.
    pub from_status: Option<PurchaseStatus>,
    pub to_status: PurchaseStatus,
    pub last_error: Option<String>,
    /// Unix seconds.
    pub at: i64,
}

/// A purchase's status changes, oldest first.
pub async fn of_purchase(
    db: impl PgExecutor<'_>,
    purchase_id: &PurchaseId,
) -> sqlx::Result<Vec<StatusChange>> {
    sqlx::query_as(
        r#"
        SELECT from_status, to_status, last_error, extract(epoch FROM at)::bigint AS at
        FROM purchase_transitions WHERE purchase_id = $1 ORDER BY id
        "#,
    )
    .bind(purchase_id)
    .fetch_all(db)
    .await
}
