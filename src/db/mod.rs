//! The only place with SQL. Functions take an executor so they run on the pool or in a transaction.

pub mod audit;
pub mod calls;
pub mod checkout;
pub mod event_listing;
pub mod events;
pub mod grant_moves;
pub mod leases;
pub mod lifecycle;
pub mod plans;
pub mod purchase_row;
pub mod purchases;
pub mod recorder;
pub mod recording_session;
pub mod resync_events;
pub mod resyncs;
pub mod retention;
pub mod reversals;
pub mod status_counts;
pub mod topups;
pub mod transitions;
pub mod unknown_writes;
pub mod webhook_deliveries;
pub mod webhook_endpoints;
pub mod webhook_messages;
pub mod work;

use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::config::DatabaseConfig;

pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The migrator `serve` and `migrate` run. Migrations are additive for one release, so the
/// binary before a release runs against its schema: after a rollback, migrations this binary does
/// not know are ignored (and logged) instead of refusing to start.
fn migrator() -> Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

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
        .connect_lazy_with(plans::custom_plans_only(options(config)?)))
}

/// The webhook path's own connections (see [`recorder`]), with the same fail-fast timeout, so
/// webhooks answer 503 while Stripe is still waiting, and Stripe retries.
pub fn event_recorder(config: &DatabaseConfig) -> anyhow::Result<recorder::EventRecorder> {
    Ok(recorder::EventRecorder::new(
        options(config)?,
        config.database_event_connections,
        Duration::from_millis(config.database_acquire_timeout_ms),
        Duration::from_millis(config.database_statement_timeout_ms),
    ))
}

/// Applies pending migrations. Several replicas may start at once: sqlx takes an advisory lock.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    let migrator = migrator();
    migrator.run(pool).await?;
    let known: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    // Not `query!`: `_sqlx_migrations` is the migrator's own table, not in our migrations, so
    // the schema the queries are checked against (scripts/sqlx-prepare) does not have it.
    let unknown: Vec<(i64, String)> = sqlx::query_as(
        "SELECT version, description FROM _sqlx_migrations WHERE NOT (version = ANY($1)) ORDER BY version",
    )
    .bind(&known)
    .fetch_all(pool)
    .await?;
    for (version, description) in unknown {
        tracing::warn!(
            version,
            description,
            "the database has a migration this binary does not know (a newer release's); ignoring it"
        );
    }
    Ok(())
}

/// Ready when the database answers and every migration this binary knows is applied (newer
/// ones it does not know may be applied too).
pub async fn is_ready(pool: &PgPool) -> bool {
    let known: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
    // Not `query!`, for the same reason as in `migrate`.
    let applied: Result<(i64,), _> =
        sqlx::query_as("SELECT count(*) FROM _sqlx_migrations WHERE success AND version = ANY($1)")
            .bind(&known)
            .fetch_one(pool)
            .await;
    matches!(applied, Ok((count,)) if count == known.len() as i64)
}
