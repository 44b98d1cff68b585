//! Re-syncs: page through Stripe's events (or paid invoices) and send each one through the same
//! pipeline as a webhook, with progress committed per page so an interrupted re-sync resumes.
//!
//! A page is processed in three steps: (1) its ids are written as `pending`; (2) each event goes
//! through [`ingest`] with source `resync` (events) or makes its purchase due (invoices); (3) the
//! outcomes, the cursor and the recomputed counts are committed in one transaction. A crash
//! between (2) and (3) redoes the page from the old cursor: the events are then duplicates in
//! `stripe_events`, and the `pending` time tells which of them this re-sync recorded, so the
//! counts come out as if there had been no crash.

use std::time::Duration;

use serde_json::value::RawValue;
use tokio_util::sync::CancellationToken;

pub use super::resync_params::{EVENT_RETENTION_SECS, MAX_TYPES, PAGE_SIZE, ResyncParams, Source};
use crate::db;
use crate::db::resync_events::ObjectOutcome;
use crate::db::resyncs::Resync;
use crate::ids::{InvoiceId, ResyncId};
use crate::ingest;
use crate::purchase::lifecycle::{Happening, Outcome};
use crate::services::Services;
use crate::stripe::StripeError;
use crate::stripe::api::resync as stripe_resync;
use crate::stripe::types::{Event, Invoice, List};

/// How many times a page whose listing failed transiently is tried again before the re-sync fails.
const PAGE_RETRIES: u32 = 5;

/// A fresh re-sync id: `rsy_` and 24 random alphanumerics.
pub fn new_resync_id() -> ResyncId {
    let id = crate::purchase::new_purchase_id().replacen("pur_", "rsy_", 1);
    ResyncId::parse(&id).expect("a purchase id's suffix makes a re-sync id")
}

/// Stores a new re-sync, leased to `owner`, ready for [`run`].
pub async fn create(
    services: &Services,
    params: &ResyncParams,
    actor: &str,
    owner: &str,
) -> sqlx::Result<Resync> {
    let params = serde_json::to_value(params).expect("params serialize");
    db::resyncs::insert(
        &services.db,
        &new_resync_id(),
        &params,
        actor,
        owner,
        services.policy.lease,
    )
    .await
}

/// Runs a re-sync that `owner` holds until it completes, fails, or the lease is lost (another
/// process took it over). `on_page` sees the re-sync after every committed page.
pub async fn run(
    services: &Services,
    resync: Resync,
    owner: &str,
    on_page: &mut (dyn FnMut(&Resync) + Send),
) -> anyhow::Result<Resync> {
    let params: ResyncParams = serde_json::from_value(resync.params.0.clone())?;
    let id = resync.id.clone();
    let mut cursor = resync.cursor.clone();
    tracing::info!(resync_id = %id, cursor = cursor.as_deref(), ?params, "re-sync running");
    loop {
        if !db::resyncs::renew_lease(&services.db, &id, owner, services.policy.lease).await? {
            tracing::warn!(resync_id = %id, "re-sync lease lost; another process continues it");
            break;
        }
        let page = match fetch_page(services, &params, cursor.as_deref(), &id, owner).await? {
            Ok(page) => page,
            Err(error) => {
                tracing::error!(resync_id = %id, %error, "re-sync failed: Stripe listing failed");
                db::resyncs::fail(&services.db, &id, owner, &error.to_string()).await?;
                break;
            }
        };
        let ids: Vec<String> = page.data.iter().map(|raw| object_id(raw)).collect();
        if !ids.is_empty() {
            db::resync_events::mark_pending(&services.db, &id, &ids).await?;
        }
        let mut outcomes = Vec::with_capacity(page.data.len());
        for (raw, object_id) in page.data.iter().zip(&ids) {
            let outcome = match params.source {
                Source::Events => process_event(services, &params, &id, object_id, raw).await,
                Source::Invoices => process_invoice(services, &params, object_id, raw).await,
            };
            if !params.dry_run {
                services.metrics.catch_up("resync", &outcome.outcome);
            }
            outcomes.push(outcome);
        }
        let finished = !page.has_more || ids.is_empty();
        let next_cursor = ids.last().cloned().or(cursor.clone());
        if !db::resync_events::commit_page(
            &services.db,
            &id,
            owner,
            &outcomes,
            next_cursor.as_deref(),
            finished,
        )
        .await?
        {
            tracing::warn!(resync_id = %id, "re-sync lease lost before its page was committed");
            break;
        }
        cursor = next_cursor;
        if let Some(current) = db::resyncs::find(&services.db, &id).await? {
            tracing::info!(resync_id = %id, cursor = cursor.as_deref(), counts = ?current.counts, "re-sync page committed");
            on_page(&current);
        }
        if finished {
            break;
        }
    }
    let done = db::resyncs::find(&services.db, &id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("re-sync {id} vanished"))?;
    tracing::info!(resync_id = %id, status = %done.status, counts = ?done.counts, "re-sync stopped");
    Ok(done)
}

/// One page from Stripe. The client already retried; a transient failure is tried a few more
/// times (renewing the lease) before the re-sync is failed. The outer error is the database's.
async fn fetch_page(
    services: &Services,
    params: &ResyncParams,
    cursor: Option<&str>,
    id: &ResyncId,
    owner: &str,
) -> anyhow::Result<Result<List<Box<RawValue>>, StripeError>> {
    let request = stripe_resync::list_page(params, cursor);
    let mut attempt = 0;
    loop {
        match services.stripe.send::<List<Box<RawValue>>>(&request).await {
            Ok(page) => return Ok(Ok(page)),
            Err(error) if error.is_transient() && attempt < PAGE_RETRIES => {
                attempt += 1;
                tracing::warn!(resync_id = %id, %error, attempt, "re-sync page failed; trying again");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                db::resyncs::renew_lease(&services.db, id, owner, services.policy.lease).await?;
            }
            Err(error) => return Ok(Err(error)),
        }
    }
}

fn object_id(raw: &RawValue) -> String {
    #[derive(serde::Deserialize)]
    struct WithId {
        id: String,
    }
    serde_json::from_str::<WithId>(raw.get())
        .map(|o| o.id)
        .unwrap_or_else(|_| "unknown".into())
}

fn failed(id: &str, error: impl ToString) -> ObjectOutcome {
    ObjectOutcome {
        id: id.to_string(),
        outcome: "failed".into(),
        new: false,
        purchase_id: None,
        error: Some(error.to_string()),
    }
}

async fn process_event(
    services: &Services,
    params: &ResyncParams,
    resync_id: &ResyncId,
    id: &str,
    raw: &RawValue,
) -> ObjectOutcome {
    let (event, raw) = match ingest::parse_event(raw.get().as_bytes()) {
        Ok(parsed) => parsed,
        Err(error) => return failed(id, format!("not a Stripe event: {error}")),
    };
    if params.dry_run {
        return predict_event(services, id, &event).await;
    }
    let recorded = match ingest::ingest(services, &event, &raw, "resync").await {
        Ok(recorded) => recorded,
        Err(error) => {
            tracing::error!(%resync_id, event_id = id, %error, "re-sync could not record an event");
            return failed(id, "database error while recording the event");
        }
    };
    if recorded.new {
        return ObjectOutcome {
            id: id.to_string(),
            outcome: recorded.outcome.unwrap_or(Outcome::Ignored).as_string(),
            new: true,
            purchase_id: recorded.purchase_id,
            error: None,
        };
    }
    // A duplicate: either recorded before (webhook, other re-sync), or by this re-sync on a page
    // that a crash interrupted before it was committed.
    let stored = db::resync_events::recorded_event(&services.db, resync_id, id)
        .await
        .ok()
        .flatten();
    match stored {
        Some(stored) if stored.by_this_resync => ObjectOutcome {
            id: id.to_string(),
            outcome: stored.outcome.as_string(),
            new: true,
            purchase_id: stored.purchase_id,
            error: None,
        },
        stored => ObjectOutcome {
            id: id.to_string(),
            outcome: Outcome::Duplicate.as_string(),
            new: false,
            purchase_id: stored.and_then(|s| s.purchase_id),
            error: None,
        },
    }
}

/// A dry run's answer for one event, decided by the state machine's own function.
async fn predict_event(services: &Services, id: &str, event: &Event) -> ObjectOutcome {
    match db::events::find(&services.db, id).await {
        Ok(Some(stored)) => {
            return ObjectOutcome {
                id: id.to_string(),
                outcome: Outcome::Duplicate.as_string(),
                new: false,
                purchase_id: stored.purchase_id,
                error: None,
            };
        }
        Ok(None) => {}
        Err(error) => return failed(id, error),
    }
    let (invoice_id, metadata_purchase_id) = event.invoice_refs();
    let happening = Happening::for_event_type(&event.event_type);
    let predicted =
        db::lifecycle::predict(&services.db, invoice_id, metadata_purchase_id, happening).await;
    match predicted {
        Ok((purchase_id, outcome)) => ObjectOutcome {
            id: id.to_string(),
            outcome: outcome.as_prediction(),
            new: true,
            purchase_id,
            error: None,
        },
        Err(error) => failed(id, error),
    }
}

/// A paid invoice from the listing: applied like its `invoice.paid` if it was paid inside the
/// window (it may have been created long before).
async fn process_invoice(
    services: &Services,
    params: &ResyncParams,
    id: &str,
    raw: &RawValue,
) -> ObjectOutcome {
    let invoice: Invoice = match serde_json::from_str(raw.get()) {
        Ok(invoice) => invoice,
        Err(error) => return failed(id, format!("not a Stripe invoice: {error}")),
    };
    let Ok(invoice_id) = InvoiceId::parse(&invoice.id) else {
        return failed(id, "not a Stripe invoice id");
    };
    let paid_at = invoice.status_transitions.paid_at;
    let in_window =
        paid_at.is_some_and(|t| t >= params.since && params.until.is_none_or(|u| t <= u));
    if invoice.status.as_deref() != Some("paid") || !in_window {
        return ObjectOutcome {
            id: id.to_string(),
            outcome: Outcome::Ignored.as_string(),
            new: false,
            purchase_id: None,
            error: None,
        };
    }
    let metadata_purchase_id = invoice.purchase_id_in_metadata();
    if params.dry_run {
        let predicted = db::lifecycle::predict(
            &services.db,
            Some(id),
            metadata_purchase_id,
            Some(Happening::Paid),
        )
        .await;
        return match predicted {
            Ok((purchase_id, outcome)) => ObjectOutcome {
                id: id.to_string(),
                outcome: outcome.as_prediction(),
                new: false,
                purchase_id,
                error: None,
            },
            Err(error) => failed(id, error),
        };
    }
    let applied = db::lifecycle::apply_happening(
        &services.db,
        &invoice_id,
        metadata_purchase_id,
        None,
        Happening::Paid,
    )
    .await;
    match applied {
        Ok(applied) => {
            if applied.outcome == Outcome::Scheduled {
                services.wake.notify_one();
            }
            ObjectOutcome {
                id: id.to_string(),
                outcome: applied.outcome.as_string(),
                new: false,
                purchase_id: applied.purchase_id,
                error: None,
            }
        }
        Err(error) => {
            tracing::error!(invoice_id = id, %error, "re-sync could not match a paid invoice");
            failed(id, "database error while matching the invoice")
        }
    }
}

/// Resumes re-syncs whose process died: claims any running re-sync with an expired lease and
/// runs it here, from its cursor. Runs until `shutdown`.
pub async fn run_resumer(services: Services, interval: Duration, shutdown: CancellationToken) {
    let owner = format!("resync-{}", crate::worker::owner_name(0));
    while !shutdown.is_cancelled() {
        match db::resyncs::claim_abandoned(&services.db, &owner, services.policy.lease).await {
            Ok(Some(resync)) => {
                tracing::info!(resync_id = %resync.id, cursor = resync.cursor.as_deref(), "resuming an interrupted re-sync");
                let mut ignore = |_: &Resync| {};
                tokio::select! {
                    result = run(&services, resync, &owner, &mut ignore) => {
                        if let Err(error) = result {
                            tracing::error!(error = format!("{error:#}"), "re-sync aborted; it resumes when its lease expires");
                        }
                    }
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
            Ok(None) => {}
            Err(error) => tracing::error!(%error, "could not look for interrupted re-syncs"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}
