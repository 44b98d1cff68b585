//! `admin_audit`: the trail of every operator action, with its arguments and result.

use serde::Serialize;
use sqlx::PgExecutor;
use sqlx::types::Json;

/// Appends one entry to the audit trail.
pub async fn record(
    db: impl PgExecutor<'_>,
    action: &str,
    actor: &str,
    arguments: &(impl Serialize + Sync),
    result: &(impl Serialize + Sync),
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO admin_audit (action, actor, arguments, result) VALUES ($1, $2, $3, $4)",
    )
    .bind(action)
    .bind(actor)
    .bind(Json(arguments))
    .bind(Json(result))
    .execute(db)
    .await?;
    Ok(())
}
