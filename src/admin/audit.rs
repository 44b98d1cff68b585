//! The audit trail: every admin action is stored with its arguments and result, and logged.

use serde_json::Value;

use crate::db;
use crate::services::Services;

/// Records and logs one admin action. Arguments never contain tokens: they are request bodies
/// and path parameters, and the bearer token travels in a header that is never read here.
pub async fn record(
    services: &Services,
    action: &str,
    actor: &str,
    arguments: &Value,
    result: &Value,
) -> sqlx::Result<()> {
    tracing::info!(action, actor, arguments = %arguments, result = %result, "admin action");
    db::admin::audit(&services.db, action, actor, arguments, result).await
}
