//! Workers: claim due purchases with a lease, run them, and stop cleanly on shutdown.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::attempt::AttemptOutcome;
use crate::db;
use crate::fulfilment;
use crate::funding;
use crate::purchase::{Purchase, PurchaseStatus};
use crate::services::Services;

/// A name unique to this worker in this process, recorded as the lease owner.
pub fn owner_name(index: usize) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "creditd".into());
    format!(
        "{host}-{}-{index}-{}",
        std::process::id(),
        &crate::purchase::new_purchase_id()[4..12]
    )
}

/// Claims and runs purchases until `shutdown` fires. Work in hand is finished first; the caller
/// bounds how long that may take.
pub async fn run(
    services: Services,
    owner: String,
    poll_interval: Duration,
    shutdown: CancellationToken,
) {
    let attempt = |s: Services, p: Purchase, o: String| async move { run_one(&s, &p, &o).await };
    run_with(services, owner, poll_interval, shutdown, attempt).await
}

/// [`run`] with the attempt given, so tests can make a real worker meet a panicking attempt.
pub async fn run_with<F, Fut>(
    services: Services,
    owner: String,
    poll_interval: Duration,
    shutdown: CancellationToken,
    attempt: F,
) where
    F: Fn(Services, Purchase, String) -> Fut,
    Fut: std::future::Future<Output = Option<AttemptOutcome>> + Send + 'static,
{
    tracing::info!(worker = %owner, "worker started");
    while !shutdown.is_cancelled() {
        match db::work::claim_due(&services.db, &owner, services.policy.lease, 1).await {
            Ok(claimed) if !claimed.is_empty() => {
                let taken_over = claimed.iter().filter(|c| c.taken_over).count() as u64;
                services
                    .metrics
                    .worker_claims(claimed.len() as u64, taken_over);
                for claim in claimed {
                    // Heartbeat, panic and attempt accounting: see `lease`.
                    crate::lease::run_held(&services, &claim.purchase, &owner, &attempt).await;
                }
                continue;
            }
            Ok(_) => match idle_work(&services).await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(worker = %owner, error = format!("{error:#}"), "could not resolve refund events or check auto top-ups")
                }
            },
            Err(error) => tracing::error!(worker = %owner, %error, "could not claim work"),
        }
        tokio::select! {
            _ = services.wake.notified() => {}
            _ = tokio::time::sleep(poll_interval) => {}
            _ = shutdown.cancelled() => {}
        }
    }
    tracing::info!(worker = %owner, "worker stopped");
}

/// What a worker does when no purchase is due: resolve refund and dispute events about payments no
/// purchase had linked, and check auto top-up rules that are due. True if it did anything.
async fn idle_work(services: &Services) -> anyhow::Result<bool> {
    let resolved = crate::reversal::resolve::resolve_due(services).await?;
    let checked = crate::topup::check_due(services).await?;
    let progressed = checked
        .iter()
        .any(|c| !matches!(c, crate::topup::Checked::Later { .. }));
    Ok(!resolved.is_empty() || progressed)
}

/// Runs one claimed purchase through the step its status calls for.
pub async fn run_one(
    services: &Services,
    purchase: &crate::purchase::Purchase,
    owner: &str,
) -> Option<AttemptOutcome> {
    let result = match purchase.status() {
        PurchaseStatus::Granting => fulfilment::fulfil(services, purchase, owner).await,
        PurchaseStatus::CreatingInvoice => funding::advance(services, purchase, owner).await,
        PurchaseStatus::Reversing => crate::reversal::reverse(services, purchase, owner).await,
        other => {
            tracing::warn!(purchase_id = %purchase.id, status = other.as_str(), "claimed a purchase with nothing to do");
            return None;
        }
    };
    match result {
        Ok(outcome) => {
            tracing::info!(purchase_id = %purchase.id, invoice_id = purchase.invoice_id.as_deref(), attempt = purchase.attempts, ?outcome, "purchase attempt finished");
            Some(outcome)
        }
        Err(error) => {
            // The database failed mid-attempt; the lease runs out and another attempt starts over.
            tracing::error!(purchase_id = %purchase.id, error = format!("{error:#}"), "purchase attempt aborted");
            None
        }
    }
}

/// Runs every due purchase to the end of its current attempt on the caller's task, until none is
/// due: a deterministic worker step for tests and tools. Returns the outcomes in order.
pub async fn drain(services: &Services, owner: &str) -> anyhow::Result<Vec<AttemptOutcome>> {
    let mut outcomes = Vec::new();
    loop {
        let claimed = db::work::claim_due(&services.db, owner, services.policy.lease, 1).await?;
        if claimed.is_empty() {
            if !idle_work(services).await? {
                return Ok(outcomes);
            }
            continue;
        }
        for claim in claimed {
            outcomes.extend(run_one(services, &claim.purchase, owner).await);
        }
    }
}

/// Periodically matches recorded payments that no purchase had claimed yet.
pub async fn run_matcher(services: Services, interval: Duration, shutdown: CancellationToken) {
    while !shutdown.is_cancelled() {
        match db::lifecycle::match_recorded_payments(&services.db).await {
            Ok(0) => {}
            Ok(matched) => {
                tracing::info!(matched, "matched recorded payments to purchases");
                services.wake.notify_one();
            }
            Err(error) => tracing::error!(%error, "could not match recorded payments"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}
