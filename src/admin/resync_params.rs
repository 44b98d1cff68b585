//! What a re-sync covers: its parameters, parsed from the request and validated. The Stripe list
//! request for each page is built in `stripe::api::resync`.

use serde_json::Value;

use super::resync_request::ResyncRequest;

/// How long Stripe keeps events.
pub const EVENT_RETENTION_SECS: i64 = 30 * 86_400;
/// Objects per page, Stripe's maximum.
pub const PAGE_SIZE: i64 = 100;
/// Most `types[]` Stripe accepts.
pub const MAX_TYPES: usize = 20;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Events,
    Invoices,
}

/// What a re-sync covers; stored with it and read again when it resumes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ResyncParams {
    /// Unix seconds, inclusive.
    pub since: i64,
    /// Unix seconds, inclusive; None for "up to now".
    pub until: Option<i64>,
    pub types: Vec<String>,
    pub only_undelivered: bool,
    pub dry_run: bool,
    pub source: Source,
}

/// A request field that is wrong, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl ResyncParams {
    /// Validates a JSON request body at time `now` (unix seconds).
    pub fn parse(body: &Value, now: i64) -> Result<ResyncParams, FieldError> {
        ResyncRequest::from_json(body)?.validate(now)
    }
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
