//! Retention: prunes the payloads of ignored events once they are older than
//! EVENT_PAYLOAD_RETENTION_DAYS, in small batches so no statement holds many rows at once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db;
use crate::services::Services;

const BATCH: i64 = 500;
/// Payloads age by days, so checking hourly is plenty; every replica checks, SKIP LOCKED keeps
/// them from waiting on each other.
const INTERVAL: Duration = Duration::from_secs(3600);

/// Prunes everything due now; returns how many payloads were pruned.
pub async fn prune_once(services: &Services, days: u32) -> sqlx::Result<u64> {
    let mut total = 0;
    loop {
        let pruned = db::retention::prune_ignored_payloads(&services.db, days, BATCH).await?;
        total += pruned;
        if pruned < BATCH as u64 {
            return Ok(total);
        }
    }
}

pub async fn run(services: Services, days: u32, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match prune_once(&services, days).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(pruned, days, "pruned payloads of ignored events"),
            Err(error) => tracing::warn!(%error, "could not prune event payloads"),
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}
