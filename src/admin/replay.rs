//! Replaying one event: a stored event is re-evaluated, an unknown one is fetched from Stripe and
//! recorded through [`ingest`] with source `replay`. Neither path can grant twice.

use serde_json::Value;
use serde_json::value::RawValue;

use crate::db;
use crate::db::events::StoredEvent;
use crate::ids::{EventId, InvoiceId, PurchaseId};
use crate::ingest;
use crate::purchase::lifecycle::{Happening, Outcome};
use crate::services::Services;
use crate::stripe::StripeError;
use crate::stripe::api;

/// What a replay did; the CLI prints it and the audit trail records it as serialized.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Replayed {
    pub event_id: String,
    pub outcome: Outcome,
    pub purchase_id: Option<PurchaseId>,
    /// `stored` when the event was already recorded, `stripe` when it was fetched now.
    pub from: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("Stripe does not know event '{0}' (or it is older than 30 days)")]
    NotFound(String),
    #[error("could not fetch the event from Stripe: {0}")]
    Stripe(StripeError),
    #[error("Stripe's answer is not an event: {0}")]
    Malformed(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Runs one event through the pipeline again.
///
/// A stored invoice event is applied again through the state machine (re-matching by invoice id or
/// metadata, since the purchase may have been registered after the event), so it does exactly what
/// it would do arriving now; other stored events are reported with their recorded outcome. An event creditd never received is fetched with
/// `GET /v1/events/{id}` and recorded like a webhook.
pub async fn replay(services: &Services, event_id: &str) -> Result<Replayed, ReplayError> {
    let replayed = replay_event(services, event_id).await?;
    services
        .metrics
        .catch_up("replay", &replayed.outcome.as_string());
    Ok(replayed)
}

async fn replay_event(services: &Services, event_id: &str) -> Result<Replayed, ReplayError> {
    if let Some(stored) = db::events::find(&services.db, event_id).await? {
        return replay_stored(services, stored).await;
    }
    let raw: Box<RawValue> = match services.stripe.send(&api::get_event(event_id)).await {
        Ok(raw) => raw,
        Err(error) if error.status() == Some(404) => {
            return Err(ReplayError::NotFound(event_id.to_string()));
        }
        Err(error) => return Err(ReplayError::Stripe(error)),
    };
    let (event, raw) = ingest::parse_event(raw.get().as_bytes())
        .map_err(|e| ReplayError::Malformed(e.to_string()))?;
    if event.id != event_id {
        return Err(ReplayError::Malformed(format!(
            "asked for {event_id}, got {}",
            event.id
        )));
    }
    let recorded = ingest::ingest(services, &event, &raw, "replay").await?;
    Ok(Replayed {
        event_id: event.id,
        outcome: recorded.outcome.unwrap_or(Outcome::Duplicate),
        purchase_id: recorded.purchase_id,
        from: "stripe",
    })
}

/// Applies a recorded event again through the state machine, as if it had just arrived.
async fn replay_stored(services: &Services, stored: StoredEvent) -> Result<Replayed, ReplayError> {
    let happening = Happening::for_event_type(&stored.event_type);
    let invoice_id = stored
        .invoice_id
        .as_deref()
        .and_then(|id| InvoiceId::parse(id).ok());
    let event_id = EventId::parse(&stored.id).ok();
    let (Some(happening), Some(invoice_id)) = (happening, invoice_id) else {
        let outcome = match happening {
            None => stored.outcome,
            Some(_) => Outcome::Unmatched,
        };
        return Ok(Replayed {
            event_id: stored.id,
            outcome,
            purchase_id: stored.purchase_id,
            from: "stored",
        });
    };
    let metadata_purchase_id = stored
        .payload
        .0
        .pointer("/data/object/metadata/creditd_purchase_id")
        .and_then(Value::as_str);
    let applied = db::lifecycle::apply_happening(
        &services.db,
        &invoice_id,
        metadata_purchase_id,
        event_id.as_ref(),
        happening,
    )
    .await?;
    if applied.outcome == Outcome::Scheduled {
        if let Some(purchase_id) = &applied.purchase_id {
            db::events::attach_to_purchase(&services.db, &stored.id, purchase_id).await?;
        }
        services.wake.notify_one();
    }
    Ok(Replayed {
        event_id: stored.id,
        outcome: applied.outcome,
        purchase_id: applied.purchase_id,
        from: "stored",
    })
}
