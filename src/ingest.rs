//! The pipeline every Stripe event enters by, whether from a webhook, a re-sync or a replay.

use serde_json::value::RawValue;

use crate::db::events::Recorded;
use crate::purchase::lifecycle::{Happening, Outcome};
use crate::services::Services;
use crate::stripe::types::Event;

/// Records a verified event once and schedules the work it implies, in one statement.
pub async fn ingest(
    services: &Services,
    event: &Event,
    raw: &RawValue,
    source: &str,
) -> sqlx::Result<Recorded> {
    let recorded =
        if Happening::for_event_type(&event.event_type) == Some(Happening::PaymentReversal) {
            record_payment_event(services, event, raw, source).await?
        } else {
            services.recorder.record(event, raw, source).await?
        };
    if recorded.new
        && event.event_type == "billing.credit_balance_transaction.created"
        && let Some(grant) = &event.data.object.credit_grant
        && crate::db::topups::check_now_for_grant(&services.db, grant, &event.id).await? > 0
    {
        services.wake.notify_one();
    }
    if matches!(
        recorded.outcome,
        Some(Outcome::Scheduled | Outcome::Linking | Outcome::Noted)
    ) {
        services.wake.notify_one();
    }
    Ok(recorded)
}

/// Refund and dispute events are rare, so they take a pooled connection rather than the
/// recorder's; the write is detached from the caller's future for the same reason as the
/// recorder's (a client that hangs up must not abandon the statement).
async fn record_payment_event(
    services: &Services,
    event: &Event,
    raw: &RawValue,
    source: &str,
) -> sqlx::Result<Recorded> {
    let (db, event, raw, source) = (
        services.db.clone(),
        event.clone(),
        raw.to_owned(),
        source.to_owned(),
    );
    tokio::spawn(async move {
        crate::db::reversals::record_payment_event(&db, &event, &raw, &source).await
    })
    .await
    .map_err(|_| sqlx::Error::WorkerCrashed)?
}

/// Parses an event body, keeping the raw JSON to store exactly as Stripe sent it.
pub fn parse_event(body: &[u8]) -> Result<(Event, Box<RawValue>), serde_json::Error> {
    let raw: Box<RawValue> = serde_json::from_slice(body)?;
    if has_nul_escape(raw.get()) {
        // Valid JSON, but PostgreSQL can store a NUL neither in text nor in jsonb: without this
        // the event would fail its insert on every delivery and be answered 503 forever.
        return Err(serde::de::Error::custom(
            "the event contains a NUL character (\\u0000), which cannot be stored",
        ));
    }
    let event: Event = serde_json::from_str(raw.get())?;
    Ok((event, raw))
}

/// Whether valid JSON text holds the escape `\u0000`. Outside strings JSON has no backslashes,
/// and inside them every backslash starts an escape, so skipping each escape whole tells an
/// escaped backslash followed by `u0000` (the six characters, harmless) from a NUL.
fn has_nul_escape(json: &str) -> bool {
    let bytes = json.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'\\' {
            if bytes[at + 1..].starts_with(b"u0000") {
                return true;
            }
            at += 2;
        } else {
            at += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_escape_is_refused_and_an_escaped_backslash_before_u0000_is_not() {
        let event = |value: &str| {
            format!(
                r#"{{"id":"evt_1","object":"event","created":1,"livemode":false,"type":"customer.created","data":{{"object":{{"id":"cus_1","object":"customer","name":"{value}"}}}}}}"#
            )
        };
        let refused = parse_event(event(r"a\u0000b").as_bytes()).unwrap_err();
        assert!(refused.to_string().contains("NUL"), "{refused}");
        assert!(parse_event(event(r"a\\u0000b").as_bytes()).is_ok());
        assert!(parse_event(event(r"a\\\u0000b").as_bytes()).is_err());
        assert!(parse_event(event(r"a\u0001b").as_bytes()).is_ok());
    }
}
