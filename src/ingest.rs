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

/// Stripe's ids are opaque strings of at most 255 characters (docs.stripe.com/upgrades,
/// "Backwards-compatible changes").
const MAX_STRIPE_ID_CHARS: usize = 255;

/// Parses an event body, keeping the raw JSON to store exactly as Stripe sent it.
///
/// Refuses, besides what is not a Stripe event, what is valid JSON but could never be recorded:
/// without these checks such an event would fail its insert on every delivery and be answered 503
/// until Stripe gives up, instead of a 400 that says why.
pub fn parse_event(body: &[u8]) -> Result<(Event, Box<RawValue>), serde_json::Error> {
    let raw: Box<RawValue> = serde_json::from_slice(body)?;
    if has_nul_escape(raw.get()) {
        // PostgreSQL's text cannot hold a NUL, and the ids and type stored beside the payload are
        // text. Finding which string holds it would buy nothing: Stripe never sends one.
        return Err(serde::de::Error::custom(
            "the event contains a NUL character (\\u0000), which cannot be stored",
        ));
    }
    let event: Event = serde_json::from_str(raw.get())?;
    if let Some((field, chars)) = overlong_id(&event) {
        // A longer id is not Stripe's; one past PostgreSQL's index entry limit (about 2.7 KB)
        // could not be stored in the indexes the ids live in.
        return Err(serde::de::Error::custom(format!(
            "{field} is {chars} characters long; Stripe ids are at most {MAX_STRIPE_ID_CHARS}"
        )));
    }
    Ok((event, raw))
}

/// The first id the event names that is longer than any Stripe id, with its length. The purchase
/// id in metadata is creditd's own (far shorter), but it is stored and indexed like the others.
fn overlong_id(event: &Event) -> Option<(&'static str, usize)> {
    let object = &event.data.object;
    [
        ("id", Some(&event.id)),
        ("data.object.id", object.id.as_ref()),
        ("data.object.invoice", object.invoice.as_ref()),
        ("data.object.payment_intent", object.payment_intent.as_ref()),
        ("data.object.charge", object.charge.as_ref()),
        ("data.object.credit_grant", object.credit_grant.as_ref()),
        (
            "data.object.metadata.creditd_purchase_id",
            object
                .metadata
                .as_ref()
                .and_then(|metadata| metadata.creditd_purchase_id.as_ref()),
        ),
    ]
    .into_iter()
    .find_map(|(field, id)| {
        let chars = id?.chars().count();
        (chars > MAX_STRIPE_ID_CHARS).then_some((field, chars))
    })
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

    #[test]
    fn an_id_longer_than_any_stripe_id_is_refused_naming_the_field() {
        let event = |id: &str, charge: &str| {
            format!(
                r#"{{"id":"{id}","object":"event","created":1,"livemode":false,"type":"charge.refunded","data":{{"object":{{"id":"ch_1","object":"charge","charge":"{charge}"}}}}}}"#
            )
        };
        let longest = "x".repeat(MAX_STRIPE_ID_CHARS);
        let longer = "x".repeat(MAX_STRIPE_ID_CHARS + 1);
        assert!(parse_event(event(&longest, &longest).as_bytes()).is_ok());
        let refused = parse_event(event(&longer, "ch_1").as_bytes()).unwrap_err();
        assert!(
            refused.to_string().starts_with("id is 256 characters"),
            "{refused}"
        );
        let refused = parse_event(event("evt_1", &longer).as_bytes()).unwrap_err();
        assert!(
            refused.to_string().starts_with("data.object.charge is 256"),
            "{refused}"
        );
        let metadata = format!(
            r#"{{"id":"evt_1","object":"event","created":1,"livemode":false,"type":"invoice.paid","data":{{"object":{{"id":"in_1","object":"invoice","metadata":{{"creditd_purchase_id":"{longer}"}}}}}}}}"#
        );
        let refused = parse_event(metadata.as_bytes()).unwrap_err();
        assert!(
            refused
                .to_string()
                .starts_with("data.object.metadata.creditd_purchase_id is 256"),
            "{refused}"
        );
        // Characters, not bytes: 255 two-byte characters are a Stripe-sized id.
        assert!(parse_event(event(&"é".repeat(MAX_STRIPE_ID_CHARS), "ch_1").as_bytes()).is_ok());
    }
}
