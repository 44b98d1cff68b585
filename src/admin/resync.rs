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

use chrono::DateTime;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::db;
use crate::db::admin::{ObjectOutcome, Resync};
use crate::db::events::EventAction;
use crate::ingest;
use crate::services::Services;
use crate::stripe::form::Form;
use crate::stripe::types::{Invoice, List};
use crate::stripe::{StripeError, StripeRequest};

/// How long Stripe keeps events.
pub const EVENT_RETENTION_SECS: i64 = 30 * 86_400;
/// Objects per page, Stripe's maximum.
pub const PAGE_SIZE: i64 = 100;
/// Most `types[]` Stripe accepts.
pub const MAX_TYPES: usize = 20;
/// How many times a page whose listing failed transiently is tried again before the re-sync fails.
const PAGE_RETRIES: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

fn field_error(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Unix seconds, or an RFC 3339 timestamp.
pub fn parse_time(field: &'static str, value: &Value) -> Result<i64, FieldError> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .filter(|t| *t >= 0)
            .ok_or_else(|| field_error(field, "must be a non-negative unix timestamp")),
        Value::String(s) => {
            if let Ok(t) = s.trim().parse::<i64>() {
                return parse_time(field, &json!(t));
            }
            DateTime::parse_from_rfc3339(s.trim())
                .map(|t| t.timestamp())
                .map_err(|_| {
                    field_error(
                        field,
                        "must be unix seconds or an RFC 3339 time such as 2026-01-31T00:00:00Z",
                    )
                })
        }
        _ => Err(field_error(
            field,
            "must be unix seconds or an RFC 3339 time",
        )),
    }
}

impl ResyncParams {
    /// Validates a request body at time `now` (unix seconds).
    pub fn parse(body: &Value, now: i64) -> Result<ResyncParams, FieldError> {
        const KNOWN: &[&str] = &[
            "since",
            "until",
            "types",
            "only_undelivered",
            "dry_run",
            "source",
        ];
        let object = body
            .as_object()
            .ok_or_else(|| field_error("body", "must be a JSON object"))?;
        if let Some(unknown) = object.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(FieldError {
                field: "body",
                message: format!("has an unknown field '{unknown}'"),
            });
        }
        let since = match object.get("since") {
            None | Some(Value::Null) => return Err(field_error("since", "is required")),
            Some(v) => parse_time("since", v)?,
        };
        let until = match object.get("until") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_time("until", v)?),
        };
        if let Some(until) = until
            && until < since
        {
            return Err(field_error("until", "must not be before since"));
        }
        if since > now {
            return Err(field_error("since", "must not be in the future"));
        }
        let flag = |field: &'static str| -> Result<bool, FieldError> {
            match object.get(field) {
                None | Some(Value::Null) => Ok(false),
                Some(Value::Bool(b)) => Ok(*b),
                Some(_) => Err(field_error(field, "must be true or false")),
            }
        };
        let only_undelivered = flag("only_undelivered")?;
        let dry_run = flag("dry_run")?;
        let source = match object.get("source") {
            None | Some(Value::Null) => Source::Events,
            Some(Value::String(s)) if s == "events" => Source::Events,
            Some(Value::String(s)) if s == "invoices" => Source::Invoices,
            Some(_) => return Err(field_error("source", "must be \"events\" or \"invoices\"")),
        };
        let types = match object.get("types") {
            None | Some(Value::Null) => vec!["invoice.paid".to_string()],
            Some(Value::Array(items)) => {
                let mut types = Vec::with_capacity(items.len());
                for item in items {
                    match item.as_str().map(str::trim) {
                        Some(t) if !t.is_empty() && !t.contains('*') => types.push(t.to_string()),
                        _ => {
                            return Err(field_error(
                                "types",
                                "must be a list of exact event type names such as \"invoice.paid\"",
                            ));
                        }
                    }
                }
                if types.is_empty() || types.len() > MAX_TYPES {
                    return Err(field_error(
                        "types",
                        format!("must hold between 1 and {MAX_TYPES} event types"),
                    ));
                }
                types
            }
            Some(_) => return Err(field_error("types", "must be a list of event types")),
        };
        if source == Source::Invoices {
            if only_undelivered {
                return Err(field_error(
                    "only_undelivered",
                    "applies to events only, not to source \"invoices\"",
                ));
            }
        } else if since < now - EVENT_RETENTION_SECS {
            return Err(field_error(
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
            dry_run,
            source,
        })
    }

    /// The listing request for the page after `cursor`.
    pub fn page_request(&self, cursor: Option<&str>) -> StripeRequest {
        let mut form = Form::new();
        let path = match self.source {
            Source::Events => {
                for (i, t) in self.types.iter().enumerate() {
                    form.push(format!("types[{i}]"), t);
                }
                if self.only_undelivered {
                    form.push("delivery_success", "false");
                }
                "/v1/events"
            }
            Source::Invoices => {
                form.push("status", "paid");
                "/v1/invoices"
            }
        };
        form.push("created[gte]", self.since);
        form.push_opt("created[lte]", self.until);
        form.push("limit", PAGE_SIZE);
        form.push_opt("starting_after", cursor);
        StripeRequest::get(path, form)
    }
}

/// A fresh re-sync id: `rsy_` and 24 random alphanumerics.
pub fn new_resync_id() -> String {
    crate::purchase::new_purchase_id().replacen("pur_", "rsy_", 1)
}

/// Stores a new re-sync, leased to `owner`, ready for [`run`].
pub async fn create(
    services: &Services,
    params: &ResyncParams,
    actor: &str,
    owner: &str,
) -> sqlx::Result<Resync> {
    let params = serde_json::to_value(params).expect("params serialize");
    db::admin::insert_resync(
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
        if !db::admin::renew_resync_lease(&services.db, &id, owner, services.policy.lease).await? {
            tracing::warn!(resync_id = %id, "re-sync lease lost; another process continues it");
            break;
        }
        let page = match fetch_page(services, &params, cursor.as_deref(), &id, owner).await? {
            Ok(page) => page,
            Err(error) => {
                tracing::error!(resync_id = %id, %error, "re-sync failed: Stripe listing failed");
                db::admin::fail_resync(&services.db, &id, owner, &error.to_string()).await?;
                break;
            }
        };
        let ids: Vec<String> = page.data.iter().map(|raw| object_id(raw)).collect();
        if !ids.is_empty() {
            db::admin::mark_pending(&services.db, &id, &ids).await?;
        }
        let mut outcomes = Vec::with_capacity(page.data.len());
        for (raw, object_id) in page.data.iter().zip(&ids) {
            let outcome = match params.source {
                Source::Events => process_event(services, &params, &id, object_id, raw).await,
                Source::Invoices => process_invoice(services, &params, object_id, raw).await,
            };
            outcomes.push(outcome);
        }
        let finished = !page.has_more || ids.is_empty();
        let next_cursor = ids.last().cloned().or(cursor.clone());
        if !db::admin::commit_page(
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
        if let Some(current) = db::admin::find_resync(&services.db, &id).await? {
            tracing::info!(resync_id = %id, cursor = cursor.as_deref(), counts = %current.counts_json(), "re-sync page committed");
            on_page(&current);
        }
        if finished {
            break;
        }
    }
    let done = db::admin::find_resync(&services.db, &id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("re-sync {id} vanished"))?;
    tracing::info!(resync_id = %id, status = %done.status, counts = %done.counts_json(), "re-sync stopped");
    Ok(done)
}

/// One page from Stripe. The client already retried; a transient failure is tried a few more
/// times (renewing the lease) before the re-sync is failed. The outer error is the database's.
async fn fetch_page(
    services: &Services,
    params: &ResyncParams,
    cursor: Option<&str>,
    id: &str,
    owner: &str,
) -> anyhow::Result<Result<List<Box<RawValue>>, StripeError>> {
    let request = params.page_request(cursor);
    let mut attempt = 0;
    loop {
        match services.stripe.send::<List<Box<RawValue>>>(&request).await {
            Ok(page) => return Ok(Ok(page)),
            Err(error) if error.is_transient() && attempt < PAGE_RETRIES => {
                attempt += 1;
                tracing::warn!(resync_id = %id, %error, attempt, "re-sync page failed; trying again");
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                db::admin::renew_resync_lease(&services.db, id, owner, services.policy.lease)
                    .await?;
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
    resync_id: &str,
    id: &str,
    raw: &RawValue,
) -> ObjectOutcome {
    let (event, raw) = match ingest::parse_event(raw.get().as_bytes()) {
        Ok(parsed) => parsed,
        Err(error) => return failed(id, format!("not a Stripe event: {error}")),
    };
    if params.dry_run {
        let (invoice_id, metadata_purchase_id) = event.invoice_refs();
        let action = EventAction::for_type(&event.event_type);
        return match db::admin::predict(&services.db, id, action, invoice_id, metadata_purchase_id)
            .await
        {
            Ok((outcome, new, purchase_id)) => ObjectOutcome {
                id: id.to_string(),
                outcome,
                new,
                purchase_id,
                error: None,
            },
            Err(error) => failed(id, error),
        };
    }
    let recorded = match ingest::ingest(services, &event, &raw, "resync").await {
        Ok(recorded) => recorded,
        Err(error) => {
            tracing::error!(resync_id, event_id = id, %error, "re-sync could not record an event");
            return failed(id, "database error while recording the event");
        }
    };
    if recorded.new {
        return ObjectOutcome {
            id: id.to_string(),
            outcome: recorded.outcome.unwrap_or_else(|| "ignored".into()),
            new: true,
            purchase_id: recorded.purchase_id,
            error: None,
        };
    }
    // A duplicate: either recorded before (webhook, other re-sync), or by this re-sync on a page
    // that a crash interrupted before it was committed.
    let ours = db::admin::recorded_by_this_resync(&services.db, resync_id, id)
        .await
        .unwrap_or(false);
    let stored = db::events::find(&services.db, id).await.ok().flatten();
    match (ours, stored) {
        (true, Some(stored)) => ObjectOutcome {
            id: id.to_string(),
            outcome: stored.outcome,
            new: true,
            purchase_id: stored.purchase_id,
            error: None,
        },
        (_, stored) => ObjectOutcome {
            id: id.to_string(),
            outcome: "duplicate".into(),
            new: false,
            purchase_id: stored.and_then(|s| s.purchase_id),
            error: None,
        },
    }
}

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
    if invoice.status.as_deref() != Some("paid") {
        return ObjectOutcome {
            id: id.to_string(),
            outcome: "ignored".into(),
            new: false,
            purchase_id: None,
            error: None,
        };
    }
    let metadata_purchase_id = invoice.purchase_id_in_metadata();
    if params.dry_run {
        return match db::admin::predict(
            &services.db,
            id,
            EventAction::Grant,
            Some(id),
            metadata_purchase_id,
        )
        .await
        {
            Ok((outcome, _, purchase_id)) => ObjectOutcome {
                id: id.to_string(),
                outcome,
                new: false,
                purchase_id,
                error: None,
            },
            Err(error) => failed(id, error),
        };
    }
    match db::purchases::mark_paid(&services.db, id, metadata_purchase_id, None).await {
        Ok(paid) => {
            if paid.scheduled {
                services.wake.notify_one();
            }
            ObjectOutcome {
                id: id.to_string(),
                outcome: paid.outcome(),
                new: false,
                purchase_id: paid.purchase_id,
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
        match db::admin::claim_abandoned_resync(&services.db, &owner, services.policy.lease).await {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn page_requests_use_stripes_parameters() {
        let p = ResyncParams::parse(
            &json!({"since": 100, "until": 200, "only_undelivered": true, "types": ["invoice.paid", "invoice.voided"]}),
            300,
        )
        .unwrap();
        let request = p.page_request(Some("evt_1"));
        assert_eq!(request.path, "/v1/events");
        assert_eq!(
            request.params.encode(),
            "types%5B0%5D=invoice.paid&types%5B1%5D=invoice.voided&delivery_success=false\
             &created%5Bgte%5D=100&created%5Blte%5D=200&limit=100&starting_after=evt_1"
        );
    }
}
