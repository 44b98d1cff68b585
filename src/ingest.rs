//! The pipeline every Stripe event enters by, whether from a webhook, a re-sync or a replay.

use serde_json::value::RawValue;

use crate::db::events::Recorded;
use crate::purchase::lifecycle::Outcome;
use crate::services::Services;
use crate::stripe::types::Event;

/// Records a verified event once and schedules the work it implies, in one statement.
pub async fn ingest(
    services: &Services,
    event: &Event,
    raw: &RawValue,
    source: &str,
) -> sqlx::Result<Recorded> {
    let recorded = services.recorder.record(event, raw, source).await?;
    if recorded.outcome == Some(Outcome::Scheduled) {
        services.wake.notify_one();
    }
    Ok(recorded)
}

/// Parses an event body, keeping the raw JSON to store exactly as Stripe sent it.
pub fn parse_event(body: &[u8]) -> Result<(Event, Box<RawValue>), serde_json::Error> {
    let raw: Box<RawValue> = serde_json::from_slice(body)?;
    let event: Event = serde_json::from_str(raw.get())?;
    Ok((event, raw))
}
