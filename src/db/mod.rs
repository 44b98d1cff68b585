//! The only place with SQL. Functions take an executor so they run on the pool or in a transaction.

pub mod admin;
pub mod calls;
pub mod events;
pub mod purchases;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::DatabaseConfig;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Opens the pool. A short acquire timeout makes an overloaded or unreachable database fail fast,
/// so webhooks answer 503 while Stripe is still waiting, and Stripe retries.
pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = config
        .database_url
        .expose()
        .parse()
        .map_err(|_| anyhow::anyhow!("DATABASE_URL is not a valid PostgreSQL URL"))?;
    let pool = PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_millis(config.database_acquire_timeout_ms))
        // A ping before every checkout would double the round trips of the webhook's single
        // statement; a dead connection shows up as that statement's error instead (503, Stripe
        // retries) and sqlx discards it.
        .test_before_acquire(false)
        .connect_lazy_with(options.application_name("creditd"));
    Ok(pool)
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
