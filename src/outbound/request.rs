//! The bodies of the endpoint admin routes: parsed by serde (unknown fields refused), then
//! validated by the rules serde cannot express, each error naming its field.

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::address::{self, Allow};
use super::event::EventType;

/// A request field that is wrong, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn invalid(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.to_owned(),
        message: message.into(),
    }
}

const MAX_URL: usize = 2048;
const MAX_DESCRIPTION: usize = 500;

/// `POST /admin/webhook_endpoints`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    url: String,
    events: Vec<String>,
    description: Option<String>,
}

/// An endpoint to create, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEndpoint {
    pub url: Url,
    /// Known event types, deduplicated, or exactly `["*"]`.
    pub events: Vec<String>,
    pub description: Option<String>,
}

/// Parses serde's way; names the field serde stopped at, or `body`.
fn from_json<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(body).map_err(|error| {
        let inner = error.inner().to_string();
        let field = match error.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => key.clone(),
            _ => match inner.split('`').nth(1) {
                Some(missing) if inner.starts_with("missing field") => missing.to_owned(),
                _ => "body".to_owned(),
            },
        };
        invalid(&field, format!("is invalid: {inner}"))
    })
}

/// Validates the body, resolving the URL's host: a private address is refused now, not at the
/// first delivery (and again at every delivery, since names can change).
pub async fn new_endpoint(body: &Value, allow: Allow) -> Result<NewEndpoint, FieldError> {
    let body: CreateBody = from_json(body)?;
    if body.url.len() > MAX_URL {
        return Err(invalid(
            "url",
            format!("must be at most {MAX_URL} characters"),
        ));
    }
    let url = Url::parse(&body.url).map_err(|e| invalid("url", format!("is not a URL: {e}")))?;
    address::resolve(&url, allow)
        .await
        .map_err(|refused| invalid("url", refused.to_string()))?;
    let description = body.description.filter(|d| !d.trim().is_empty());
    if description
        .as_ref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        return Err(invalid(
            "description",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(NewEndpoint {
        url,
        events: event_types(body.events)?,
        description,
    })
}

fn event_types(events: Vec<String>) -> Result<Vec<String>, FieldError> {
    if events.is_empty() {
        return Err(invalid(
            "events",
            "must name at least one event type, or be [\"*\"]",
        ));
    }
    if events.iter().any(|e| e == "*") {
        return if events.len() == 1 {
            Ok(events)
        } else {
            Err(invalid(
                "events",
                "\"*\" already means every event; list it alone",
            ))
        };
    }
    let mut known = Vec::with_capacity(events.len());
    for event in events {
        let Some(parsed) = EventType::parse(&event) else {
            let names: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            return Err(invalid(
                "events",
                format!(
                    "{event:?} is not an event type; known: {}",
                    names.join(", ")
                ),
            ));
        };
        if !known.contains(&parsed.as_str().to_owned()) {
            known.push(parsed.as_str().to_owned());
        }
    }
    Ok(known)
}

/// `POST /admin/webhook_endpoints/{id}/recover`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecoverBody {
    since: Value,
}

/// The time from which failed deliveries are sent again: unix seconds or RFC 3339.
pub fn recover_since(body: &Value, now: i64) -> Result<chrono::DateTime<chrono::Utc>, FieldError> {
    let body: RecoverBody = from_json(body)?;
    let seconds = match &body.since {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|t| t.timestamp()),
        _ => None,
    };
    let seconds =
        seconds.ok_or_else(|| invalid("since", "must be unix seconds or an RFC 3339 time"))?;
    if seconds < 0 || seconds > now {
        return Err(invalid("since", "must be a time in the past"));
    }
    chrono::DateTime::from_timestamp(seconds, 0).ok_or_else(|| invalid("since", "is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const OPEN: Allow = Allow {
        http: true,
        private_networks: true,
    };

    #[tokio::test]
    async fn a_valid_endpoint_is_accepted_and_its_events_deduplicated() {
        let body = json!({"url": "http://127.0.0.1:9/hook", "events": ["purchase.granted", "purchase.granted"]});
        let endpoint = new_endpoint(&body, OPEN).await.unwrap();
        assert_eq!(endpoint.events, ["purchase.granted"]);
    }

    #[tokio::test]
    async fn each_mistake_names_its_field() {
        for (body, field) in [
            (json!({"events": ["*"]}), "url"),
            (json!({"url": "http://127.0.0.1/"}), "events"),
            (json!({"url": "not a url", "events": ["*"]}), "url"),
            (json!({"url": "http://127.0.0.1/", "events": []}), "events"),
            (
                json!({"url": "http://127.0.0.1/", "events": ["purchase.nope"]}),
                "events",
            ),
            (
                json!({"url": "http://127.0.0.1/", "events": ["*", "purchase.granted"]}),
                "events",
            ),
            (json!({"url": "http://127.0.0.1/", "events": "*"}), "events"),
            (
                json!({"url": "http://127.0.0.1/", "events": ["*"], "secret": "x"}),
                "secret",
            ),
            (
                json!({"url": "http://127.0.0.1/", "events": ["*"], "description": "x".repeat(501)}),
                "description",
            ),
        ] {
            let error = new_endpoint(&body, OPEN).await.unwrap_err();
            assert_eq!(error.field, field, "{body}: {error:?}");
        }
    }

    #[test]
    fn recover_needs_a_past_since() {
        assert!(recover_since(&json!({"since": 100}), 200).is_ok());
        assert!(recover_since(&json!({"since": "1970-01-01T00:01:00Z"}), 200).is_ok());
        assert_eq!(
            recover_since(&json!({"since": 300}), 200)
                .unwrap_err()
                .field,
            "since"
        );
        assert_eq!(recover_since(&json!({}), 200).unwrap_err().field, "since");
        assert_eq!(
            recover_since(&json!({"since": true}), 200)
                .unwrap_err()
                .field,
            "since"
        );
    }
}
