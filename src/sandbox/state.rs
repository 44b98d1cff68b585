//! The fake's mutable state (objects, events, idempotency keys, faults, hooks), plus id generation,
//! event emission and cursor pagination shared by all endpoints.

use super::control::{Fault, PauseSlot, RecordedRequest};
use super::error::ApiError;
use rand::Rng;
use rand::distr::Alphanumeric;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

pub const API_VERSION: &str = "2026-07-29.dahlia";
pub const DAY: i64 = 86_400;

/// A stored object with its insertion sequence (tie-break for equal `created`).
#[derive(Clone, Debug)]
pub struct Stored {
    pub seq: u64,
    pub json: Value,
}

impl Stored {
    pub fn id(&self) -> &str {
        self.json["id"].as_str().unwrap_or_default()
    }
    fn key(&self) -> (i64, u64) {
        (self.json["created"].as_i64().unwrap_or(0), self.seq)
    }
}

/// An idempotency key's record; `result` is `None` while the first request is executing.
pub struct IdemEntry {
    pub fingerprint: Value,
    pub created: i64,
    pub result: Option<(u16, Value)>,
}

/// The request that caused an effect, for `event.request`.
pub struct Ctx {
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
}

#[derive(Default)]
pub struct State {
    pub customers: Vec<String>,
    /// Each customer's stored fields; `customers::retrieve` adds balance and discount.
    pub customer_objects: HashMap<String, Value>,
    pub invoices: Vec<Stored>,
    pub items: Vec<Stored>,
    pub grants: Vec<Stored>,
    pub txns: Vec<Stored>,
    pub payment_intents: Vec<Stored>,
    pub charges: Vec<Stored>,
    pub invoice_payments: Vec<Stored>,
    pub refunds: Vec<Stored>,
    pub disputes: Vec<Stored>,
    pub credit_notes: Vec<Stored>,
    pub events: Vec<Stored>,
    pub delivered: HashSet<String>,
    pub idem: HashMap<String, IdemEntry>,
    pub requests: Vec<RecordedRequest>,
    pub faults: Vec<Fault>,
    pub pauses: Vec<PauseSlot>,
    pub clock_offset: i64,
    pub rate_limit: Option<u32>,
    pub rate_window: VecDeque<Instant>,
    pub webhook_url: Option<String>,
    pub webhook_secrets: Vec<String>,
    pub webhook_enabled: bool,
    /// Waits before each retry of a failed background delivery (none by default).
    pub delivery_retries: Vec<std::time::Duration>,
    /// Events emitted but not yet handed to the delivery task.
    pub outbox: Vec<Value>,
    pub seq: u64,
    pub invoice_numbers: u64,
    /// Each customer's `balance` (negative = credit the next invoice consumes).
    pub balances: HashMap<String, i64>,
    /// Each customer's discount (a percent-off coupon), as `{id, coupon}`.
    pub discounts: HashMap<String, Value>,
    /// How many list requests a grant created from now on stays hidden from (0 = none).
    pub grant_list_lag: u32,
    /// Grants the list does not show yet, with the looks left before they appear.
    pub hidden_grants: HashMap<String, u32>,
    /// Saved cards (`pm_…`) and how their bank answers.
    pub cards: HashMap<String, super::cards::CardBehaviour>,
    pub checkout_sessions: Vec<Stored>,
    /// What a session's create request asked for that the Session object does not show
    /// (`line_items`, `payment_intent_data`), keyed by session id.
    pub checkout_requests: HashMap<String, Value>,
    /// `http://127.0.0.1:<port>`, for the URLs of hosted pages.
    pub base_url: String,
}

pub fn new_id(prefix: &str) -> String {
    let tail: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

impl State {
    pub fn now(&self) -> i64 {
        let real = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock before 1970")
            .as_secs() as i64;
        real + self.clock_offset
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn stored(&mut self, json: Value) -> Stored {
        Stored {
            seq: self.next_seq(),
            json,
        }
    }

    pub fn has_customer(&self, id: &str) -> bool {
        self.customers.iter().any(|c| c == id)
    }

    /// Drops idempotency keys older than 24 hours by the fake's clock.
    pub fn prune_idempotency(&mut self) {
        let cutoff = self.now() - DAY;
        self.idem
            .retain(|_, e| e.created > cutoff || e.result.is_none());
    }

    /// Records an event with a snapshot of `object` and queues its webhook delivery.
    pub fn emit(&mut self, event_type: &str, object: &Value, ctx: &Ctx) -> Value {
        self.emit_with_previous(event_type, object, Value::Null, ctx)
    }

    /// [`State::emit`] with `data.previous_attributes` (the changed fields' earlier values).
    pub fn emit_with_previous(
        &mut self,
        event_type: &str,
        object: &Value,
        previous: Value,
        ctx: &Ctx,
    ) -> Value {
        let endpoint = self.webhook_url.is_some();
        let event = json!({
            "id": new_id("evt_"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self.now(),
            "data": { "object": object },
            "livemode": false,
            "pending_webhooks": if endpoint { 1 } else { 0 },
            "request": { "id": ctx.request_id, "idempotency_key": ctx.idempotency_key },
            "type": event_type,
        });
        let mut event = event;
        if !previous.is_null() {
            event["data"]["previous_attributes"] = previous;
        }
        self.push_event(event.clone());
        event
    }

    pub fn push_event(&mut self, event: Value) {
        let stored = self.stored(event.clone());
        self.events.push(stored);
        if self.webhook_url.is_some() && self.webhook_enabled {
            self.outbox.push(event);
        }
    }

    pub fn mark_delivered(&mut self, event_id: &str) {
        self.delivered.insert(event_id.to_string());
        if let Some(e) = self.events.iter_mut().find(|e| e.id() == event_id) {
            e.json["pending_webhooks"] = json!(0);
        }
    }
}

pub fn find<'a>(list: &'a [Stored], id: &str) -> Option<&'a Stored> {
    list.iter().find(|s| s.id() == id)
}

pub fn find_mut<'a>(list: &'a mut [Stored], id: &str) -> Option<&'a mut Stored> {
    list.iter_mut().find(|s| s.id() == id)
}

/// Checks a `created` filter (integer or `{gt,gte,lt,lte}`) against a timestamp.
pub fn created_matches(filter: &Value, created: i64) -> bool {
    match filter {
        Value::Null => true,
        Value::Number(n) => n.as_i64() == Some(created),
        Value::Object(m) => m.iter().all(|(op, v)| {
            let v = v.as_i64().unwrap_or(0);
            match op.as_str() {
                "gt" => created > v,
                "gte" => created >= v,
                "lt" => created < v,
                "lte" => created <= v,
                _ => true,
            }
        }),
        _ => true,
    }
}

/// Builds a Stripe list page (newest first) from the filtered `items`, with cursors looked up in
/// `all` (so a cursor need not pass the filters).
pub fn list_page(
    mut items: Vec<&Stored>,
    all: &[Stored],
    params: &Value,
    url: &str,
    kind: &str,
) -> Result<Value, ApiError> {
    let limit = params["limit"].as_i64().unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "Invalid limit: must be between 1 and 100 (you passed {limit})"
        ))
        .param("limit"));
    }
    let limit = limit as usize;
    items.sort_by_key(|s| std::cmp::Reverse(s.key()));
    let cursor = |name: &str| -> Result<Option<(i64, u64)>, ApiError> {
        match params[name].as_str() {
            None => Ok(None),
            Some(id) => find(all, id)
                .map(|s| Some(s.key()))
                .ok_or_else(|| ApiError::no_such(kind, id, name)),
        }
    };
    let after = cursor("starting_after")?;
    let before = cursor("ending_before")?;
    let (page, has_more) = match (after, before) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "You may only specify one of these parameters: ending_before, starting_after.",
            ));
        }
        (Some(k), None) => {
            let older: Vec<&Stored> = items.into_iter().filter(|s| s.key() < k).collect();
            let more = older.len() > limit;
            (older.into_iter().take(limit).collect::<Vec<_>>(), more)
        }
        (None, Some(k)) => {
            let newer: Vec<&Stored> = items.into_iter().filter(|s| s.key() > k).collect();
            let more = newer.len() > limit;
            let skip = newer.len().saturating_sub(limit);
            (newer.into_iter().skip(skip).collect(), more)
        }
        (None, None) => {
            let more = items.len() > limit;
            (items.into_iter().take(limit).collect(), more)
        }
    };
    Ok(json!({
        "object": "list",
        "data": page.iter().map(|s| s.json.clone()).collect::<Vec<_>>(),
        "has_more": has_more,
        "url": url,
    }))
}
