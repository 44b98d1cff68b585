//! Replaying one event: a stored event is re-evaluated, an unknown one is fetched from Stripe and
//! recorded through [`ingest`] with source `replay`. Neither path can grant twice.

use serde_json::value::RawValue;
use serde_json::{Value, json};

use crate::db;
use crate::db::events::EventAction;
use crate::ingest;
use crate::services::Services;
use crate::stripe::StripeError;
use crate::stripe::api;

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replayed {
    pub event_id: String,
    /// scheduled | already_<status> | unmatched | ignored | canceled | duplicate
    pub outcome: String,
    pub purchase_id: Option<String>,
    /// `stored` when the event was already recorded, `stripe` when it was fetched now.
    pub from: &'static str,
}

impl Replayed {
    pub fn to_json(&self) -> Value {
        json!({"event_id": self.event_id, "outcome": self.outcome,
               "purchase_id": self.purchase_id, "from": self.from})
    }
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
/// A stored `invoice.paid` makes its purchase due if that purchase is still unpaid (re-matching by
/// invoice id or metadata, since the purchase may have been registered after the event); granted
/// and failed purchases are never touched. A stored `invoice.voided` or
/// `invoice.marked_uncollectible` cancels its purchase if that is still unpaid; other stored
/// events are reported with their recorded outcome. An event creditd never received is fetched with
/// `GET /v1/events/{id}` and recorded like a webhook.
pub async fn replay(services: &Services, event_id: &str) -> Result<Replayed, ReplayError> {
    let replayed = replay_event(services, event_id).await?;
    services.metrics.catch_up("replay", &replayed.outcome);
    Ok(replayed)
}

async fn replay_event(services: &Services, event_id: &str) -> Result<Replayed, ReplayError> {
    if let Some(stored) = db::events::find(&services.db, event_id).await? {
        let action = EventAction::for_type(&stored.event_type);
        if action == EventAction::Ignore {
            return Ok(Replayed {
                event_id: stored.id,
                outcome: stored.outcome,
                purchase_id: stored.purchase_id,
                from: "stored",
            });
        }
        let metadata_purchase_id = stored
            .payload
            .0
            .pointer("/data/object/metadata/creditd_purchase_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(invoice_id) = stored.invoice_id.as_deref() else {
            return Ok(Replayed {
                event_id: stored.id,
                outcome: "unmatched".into(),
                purchase_id: None,
                from: "stored",
            });
        };
        if action == EventAction::Cancel {
            let canceled = db::purchases::mark_canceled(
                &services.db,
                invoice_id,
                metadata_purchase_id.as_deref(),
            )
            .await?;
            let outcome = if canceled.scheduled {
                "canceled".to_owned()
            } else {
                canceled.outcome()
            };
            return Ok(Replayed {
                event_id: stored.id,
                outcome,
                purchase_id: canceled.purchase_id,
                from: "stored",
            });
        }
        let paid = db::purchases::mark_paid(
            &services.db,
            invoice_id,
            metadata_purchase_id.as_deref(),
            Some(&stored.id),
        )
        .await?;
        if paid.scheduled {
            if let Some(purchase_id) = &paid.purchase_id {
                db::admin::attach_event(&services.db, &stored.id, purchase_id).await?;
            }
            services.wake.notify_one();
        }
        return Ok(Replayed {
            event_id: stored.id,
            outcome: paid.outcome(),
            purchase_id: paid.purchase_id,
            from: "stored",
        });
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
        outcome: recorded.outcome.unwrap_or_else(|| "duplicate".into()),
        purchase_id: recorded.purchase_id,
        from: "stripe",
    })
}
