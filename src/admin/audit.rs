//! The audit trail: every admin action is stored with its arguments and result, and logged.

use serde::Serialize;

use crate::db;
use crate::services::Services;

/// Records and logs one admin action. Arguments never contain tokens: they are request bodies
/// and path parameters, and the bearer token travels in a header that is never read here. The
/// result is usually the answer the action gave, as its wire type.
pub async fn record(
    services: &Services,
    action: &str,
    actor: &str,
    arguments: &(impl Serialize + Sync),
    result: &(impl Serialize + Sync),
) -> sqlx::Result<()> {
    tracing::info!(
        action,
        actor,
        arguments = logged(arguments),
        result = logged(result),
        "admin action"
    );
    db::audit::record(&services.db, action, actor, arguments, result).await
}

fn logged(value: &impl Serialize) -> String {
    serde_json::to_string(value).expect("audit entries are plain data")
}
