//! The only place with SQL. Functions take an executor so they run on the pool or in a transaction.

pub mod admin;
pub mod calls;
pub mod events;
pub mod lifecycle;
pub mod purchases;
pub mod recorder;
pub mod unknown_writes;
pub mod work;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::DatabaseConfig;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

fn options(config: &DatabaseConfig) -> anyhow::Result<PgConnectOptions> {
    let options: PgConnectOptions = config
        .database_url
        .expose()
        .parse()
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL"))?;
    Ok(options.application_name("creditd"))
}

/// Opens the pool. A short acquire timeout makes an overloaded or unreachable database fail fast,
/// so requests answer 503 instead of hanging.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_millis(config.database_acquire_timeout_ms))
        .connect_lazy_with(options(config)?))
}

/// The webhook path's own connections (see [`recorder`]), with the same fail-fast timeout, so
/// webhooks answer 503 while Stripe is still waiting, and Stripe retries.
pub fn event_recorder(config: &DatabaseConfig) -> anyhow::Result<recorder::EventRecorder> {
    Ok(recorder::EventRecorder::new(
        options(config)?,
        config.database_event_connections,
        Duration::from_millis(config.database_acquire_timeout_ms),
    ))
}

/// Applies pending migrations. Several replicas may start at once: sqlx takes an advisory lock.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}

/// Ready when the database answers and every migration this binary knows is applied.
pub async fn is_ready(pool: &PgPool) -> bool {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Result<(Option<i64>,), _> =
        sqlx::query_as("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await;
    matches!(applied, Ok((Some(version),)) if version >= latest)
}
