//! A re-sync request as the API and the CLI state it: parsed by serde (unknown fields refused),
//! then validated into [`ResyncParams`] by the rules serde cannot express.

use chrono::DateTime;
use serde::Deserialize;

use super::resync_params::{EVENT_RETENTION_SECS, MAX_TYPES, ResyncParams, Source};

/// A request field that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Unix seconds (a number or a numeric string), or an RFC 3339 timestamp.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Time {
    Unix(i64),
    Text(String),
}

impl Time {
    fn seconds(&self, field: &'static str) -> Result<i64, FieldError> {
        let seconds = match self {
            Time::Unix(t) => Some(*t),
            Time::Text(s) => match s.trim().parse::<i64>() {
                Ok(t) => Some(t),
                Err(_) => {
                    return DateTime::parse_from_rfc3339(s.trim())
                        .map(|t| t.timestamp())
                        .map_err(|_| {
                            invalid(
                                field,
                                "must be unix seconds or an RFC 3339 time such as 2026-01-31T00:00:00Z",
                            )
                        });
                }
            },
        };
        seconds
            .filter(|t| *t >= 0)
            .ok_or_else(|| invalid(field, "must be a non-negative unix timestamp"))
    }
}

/// The body of `POST /admin/resync`, and what `creditd resync`'s flags build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResyncRequest {
    pub since: Option<Time>,
    pub until: Option<Time>,
    pub types: Option<Vec<String>>,
    pub only_undelivered: Option<bool>,
    pub dry_run: Option<bool>,
    pub source: Option<Source>,
}

fn invalid(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

impl ResyncParams {
    /// Parses and validates a `POST /admin/resync` body at time `now` (unix seconds).
    pub fn parse(body: &serde_json::Value, now: i64) -> Result<ResyncParams, FieldError> {
        ResyncRequest::from_json(body)?.validate(now)
    }
}

impl ResyncRequest {
    /// Parses a JSON body; a field error names the field serde stopped at, `body` for the rest.
    pub fn from_json(body: &serde_json::Value) -> Result<ResyncRequest, FieldError> {
        serde_path_to_error::deserialize(body).map_err(|error| {
            let inner = error.inner().to_string();
            let field = match error.path().iter().next() {
                Some(serde_path_to_error::Segment::Map { key }) => match key.as_str() {
                    "since" => "since",
                    "until" => "until",
                    "types" => "types",
                    "only_undelivered" => "only_undelivered",
                    "dry_run" => "dry_run",
                    "source" => "source",
                    _ => "body",
                },
                _ => "body",
            };
            let message = match field {
                "since" | "until" => "must be unix seconds or an RFC 3339 time".to_owned(),
                "types" => "must be a list of event types".to_owned(),
                "only_undelivered" | "dry_run" => "must be true or false".to_owned(),
                "source" => "must be \"events\" or \"invoices\"".to_owned(),
                _ if inner.starts_with("unknown field") => format!("has an {inner}"),
                _ => format!("must be a JSON object: {inner}"),
            };
            invalid(field, message)
        })
    }

    /// The rules serde cannot express, judged at `now` (unix seconds).
    pub fn validate(self, now: i64) -> Result<ResyncParams, FieldError> {
        let since = self
            .since
            .ok_or_else(|| invalid("since", "is required"))?
            .seconds("since")?;
        let until = self.until.map(|t| t.seconds("until")).transpose()?;
        if until.is_some_and(|until| until < since) {
            return Err(invalid("until", "must not be before since"));
        }
        if since > now {
            return Err(invalid("since", "must not be in the future"));
        }
        let only_undelivered = self.only_undelivered.unwrap_or(false);
        let source = self.source.unwrap_or(Source::Events);
        let types = match self.types {
            None => vec!["invoice.paid".to_string()],
            Some(types) => event_types(types)?,
        };
        if source == Source::Invoices {
            if only_undelivered {
                return Err(invalid(
                    "only_undelivered",
                    "applies to events only, not to source \"invoices\"",
                ));
            }
        } else if since < now - EVENT_RETENTION_SECS {
            return Err(invalid(
                "since",
                "is more than 30 days ago, and Stripe keeps events for 30 days only; \
                 use \"source\": \"invoices\" to re-sync older payments from paid invoices",
            ));
        }
        Ok(ResyncParams {
            since,
            until,
            types,
            only_undelivered,
            dry_run: self.dry_run.unwrap_or(false),
            source,
        })
    }
}

fn event_types(types: Vec<String>) -> Result<Vec<String>, FieldError> {
    let exact = types
        .iter()
        .all(|t| !t.trim().is_empty() && !t.contains('*'));
    if !exact {
        return Err(invalid(
            "types",
            "must be a list of exact event type names such as \"invoice.paid\"",
        ));
    }
    if types.is_empty() || types.len() > MAX_TYPES {
        return Err(invalid(
            "types",
            format!("must hold between 1 and {MAX_TYPES} event types"),
        ));
    }
    Ok(types.into_iter().map(|t| t.trim().to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    #[test]
    fn defaults_and_times() {
        let p = ResyncParams::parse(&json!({"since": NOW - 3600}), NOW).unwrap();
        assert_eq!(p.types, vec!["invoice.paid"]);
        assert_eq!(p.source, Source::Events);
        assert!(!p.dry_run && !p.only_undelivered && p.until.is_none());
        let p = ResyncParams::parse(
            &json!({"since": "2027-01-15T08:00:00Z", "until": "2027-01-15T09:00:00+00:00"}),
            NOW,
        )
        .unwrap();
        assert_eq!(p.until.unwrap() - p.since, 3600);
    }

    #[test]
    fn rejections_name_the_field() {
        let cases = [
            (json!({}), "since"),
            (json!({"since": "yesterday"}), "since"),
            (json!({"since": NOW - 31 * 86_400}), "since"),
            (json!({"since": NOW - 10, "until": NOW - 20}), "until"),
            (json!({"since": NOW - 10, "types": []}), "types"),
            (json!({"since": NOW - 10, "types": ["invoice.*"]}), "types"),
            (json!({"since": NOW - 10, "dry_run": "yes"}), "dry_run"),
            (json!({"since": NOW - 10, "source": "charges"}), "source"),
            (json!({"since": NOW - 10, "sinse": 1}), "body"),
        ];
        for (body, field) in cases {
            let error = ResyncParams::parse(&body, NOW).unwrap_err();
            assert_eq!(error.field, field, "{body}");
        }
    }

    #[test]
    fn invoices_may_go_back_further_than_30_days() {
        let p = ResyncParams::parse(
            &json!({"since": NOW - 90 * 86_400, "source": "invoices"}),
            NOW,
        )
        .unwrap();
        assert_eq!(p.source, Source::Invoices);
    }
}
