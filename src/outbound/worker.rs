//! Delivery workers: claim a due delivery with a lease, send it, record the attempt, and decide
//! what comes next; an endpoint failing for too long is disabled, and the audit trail says so.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use url::Url;

use super::send::{self, Answer};
use super::{Outbound, payload, signing};
use crate::db;
use crate::db::webhook_deliveries::{Claimed, Next};
use crate::services::Services;

/// Who disabled an endpoint that kept failing, in the audit trail.
pub const ACTOR_CREDITD: &str = "creditd";

/// Delivers until `shutdown` fires; the attempt in hand is finished first.
pub async fn run(
    services: Services,
    outbound: Arc<Outbound>,
    owner: String,
    shutdown: CancellationToken,
) {
    tracing::info!(worker = %owner, "webhook delivery worker started");
    while !shutdown.is_cancelled() {
        // In a task of its own so that a panic (a bug) costs one attempt, not the worker; the
        // delivery's lease runs out and it is tried again. Aborted if the worker is dropped.
        let (s, o, w) = (services.clone(), outbound.clone(), owner.clone());
        let task = tokio::spawn(async move { deliver_due(&s, &o, &w).await });
        match AbortOnDropHandle::new(task).await {
            Ok(Ok(true)) => continue,
            Ok(Ok(false)) => {}
            Ok(Err(error)) => {
                tracing::error!(worker = %owner, error = format!("{error:#}"), "webhook delivery aborted; its lease expires and it is tried again")
            }
            Err(error) => {
                services.metrics.outbound().attempt("panic");
                tracing::error!(worker = %owner, %error, "webhook delivery panicked; its lease expires and it is tried again")
            }
        }
        tokio::select! {
            _ = outbound.wake.notified() => {}
            _ = tokio::time::sleep(outbound.settings.poll_interval) => {}
            _ = shutdown.cancelled() => {}
        }
    }
    tracing::info!(worker = %owner, "webhook delivery worker stopped");
}

/// Delivers every due delivery once on the caller's task, until none is due: for tests and tools.
pub async fn drain(services: &Services, outbound: &Outbound, owner: &str) -> anyhow::Result<()> {
    while deliver_due(services, outbound, owner).await? {}
    Ok(())
}

/// Claims one due delivery and attempts it. False when nothing was due.
async fn deliver_due(
    services: &Services,
    outbound: &Outbound,
    owner: &str,
) -> anyhow::Result<bool> {
    let lease = outbound.settings.lease();
    let claimed = db::webhook_deliveries::claim_due(&services.db, owner, lease, 1).await?;
    let Some(claim) = claimed.into_iter().next() else {
        return Ok(false);
    };
    attempt(services, outbound, &claim, owner).await?;
    Ok(true)
}

async fn attempt(
    services: &Services,
    outbound: &Outbound,
    claim: &Claimed,
    owner: &str,
) -> anyhow::Result<()> {
    let settings = &outbound.settings;
    let body = payload::body(&services.db, claim).await?;
    let Some((current, previous)) =
        db::webhook_endpoints::signing_keys(&services.db, &claim.endpoint_id).await?
    else {
        anyhow::bail!("endpoint {} has no signing secret", claim.endpoint_id);
    };
    let secrets: Vec<_> = std::iter::once(&current).chain(previous.as_ref()).collect();
    let signed = signing::sign(
        &claim.message_id,
        chrono::Utc::now().timestamp(),
        &body,
        &secrets,
    )
    .map_err(|e| anyhow::anyhow!("signing failed: {e}"))?;
    let answer = match Url::parse(&claim.url) {
        Ok(url) => send::post(&url, &signed, &body, settings.allow, settings.timeout).await,
        Err(error) => unsendable(format!("address refused: the URL does not parse: {error}")),
    };
    let next = if answer.delivered() {
        Next::Delivered
    } else {
        match settings
            .schedule
            .delay_honouring(claim.attempts, answer.retry_after)
        {
            Some(delay) => Next::RetryIn(delay),
            None => Next::Failed,
        }
    };
    record(services, outbound, claim, owner, &answer, next).await
}

fn unsendable(error: String) -> Answer {
    Answer {
        http_status: None,
        error: Some(error),
        latency: Duration::ZERO,
        response: None,
        retry_after: None,
    }
}

/// One transaction: the attempt, the delivery's next state, the endpoint's failure run, and
/// the audit entry when that run disables it.
async fn record(
    services: &Services,
    outbound: &Outbound,
    claim: &Claimed,
    owner: &str,
    answer: &Answer,
    next: Next,
) -> anyhow::Result<()> {
    let metrics = services.metrics.outbound();
    metrics.attempt(answer.outcome());
    let mut tx = services.db.begin().await?;
    db::webhook_endpoints::lock(&mut tx, &claim.endpoint_id).await?;
    let held = db::webhook_deliveries::record_attempt(&mut tx, claim, owner, answer, next).await?;
    let mut disabled_since = None;
    if answer.delivered() {
        db::webhook_endpoints::note_success(&mut *tx, &claim.endpoint_id).await?;
    } else {
        let window = outbound.settings.disable_after;
        disabled_since =
            db::webhook_endpoints::note_failure(&mut tx, &claim.endpoint_id, window).await?;
        if let Some(since) = disabled_since {
            let arguments = json!({"id": claim.endpoint_id, "failing_since": since.timestamp()});
            let result = json!({"status": "disabled", "reason": "failing"});
            db::audit::record(
                &mut *tx,
                "webhook_endpoint.disable",
                ACTOR_CREDITD,
                &arguments,
                &result,
            )
            .await?;
        }
    }
    tx.commit().await?;
    tracing::info!(
        message_id = %claim.message_id, endpoint_id = %claim.endpoint_id, attempt = claim.attempts,
        http_status = answer.http_status, error = answer.error.as_deref(), ?next, held,
        "webhook attempt finished"
    );
    if held {
        match next {
            Next::Delivered => metrics.finished("delivered"),
            Next::Failed => metrics.finished("failed"),
            Next::RetryIn(_) => {}
        }
    }
    if let Some(since) = disabled_since {
        metrics.endpoint_disabled();
        tracing::warn!(endpoint_id = %claim.endpoint_id, failing_since = %since, "webhook endpoint disabled: every attempt failed for OUTBOUND_DISABLE_AFTER_SECS");
    }
    Ok(())
}
