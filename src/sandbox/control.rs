//! Test-facing control types: injected faults, pause hooks and the record of received requests.

use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// One HTTP request the fake received, as seen on the wire.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The `Request-Id` the fake answered with.
    pub request_id: String,
    pub method: String,
    /// Path without the query string, e.g. `/v1/billing/credit_grants`.
    pub path: String,
    /// Parameters nested by brackets; leaves are the wire strings, index-keyed groups are arrays.
    pub params: Value,
    /// The raw form body (POST) or query string (GET).
    pub raw: String,
    pub idempotency_key: Option<String>,
    /// HTTP status sent; 0 while still in flight or when the connection was dropped.
    pub status: u16,
    /// True when the answer was an idempotent replay of a stored response.
    pub replayed: bool,
}

/// A fault to inject into requests whose method and path match.
#[derive(Clone, Debug)]
pub struct Fault {
    /// HTTP method (case-insensitive), or `*` for any.
    pub method: String,
    /// Matches every path starting with this, e.g. `/v1/billing/credit_grants`.
    pub path_prefix: String,
    /// How many matching requests it applies to; `None` = forever.
    pub times: Option<u32>,
    pub kind: FaultKind,
}

impl Fault {
    /// A fault applied to the next matching request only.
    pub fn new(method: &str, path_prefix: &str, kind: FaultKind) -> Fault {
        Fault {
            method: method.to_string(),
            path_prefix: path_prefix.to_string(),
            times: Some(1),
            kind,
        }
    }

    pub fn times(mut self, n: u32) -> Fault {
        self.times = Some(n);
        self
    }

    pub fn forever(mut self) -> Fault {
        self.times = None;
        self
    }

    pub(crate) fn matches(&self, method: &str, path: &str) -> bool {
        (self.method == "*" || self.method.eq_ignore_ascii_case(method))
            && path.starts_with(&self.path_prefix)
    }
}

/// What an injected fault does.
#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Answer at once with this status and a Stripe error body; nothing is executed or stored.
    /// `should_retry` sets the `Stripe-Should-Retry` header when `Some`.
    Error {
        status: u16,
        error_type: String,
        code: Option<String>,
        message: String,
        should_retry: Option<bool>,
    },
    /// Wait this long after the idempotency key is taken and before executing (the key is "in use").
    Delay(Duration),
    /// Close the connection without any response; nothing is executed or stored.
    DropConnection,
    /// Execute the operation, then answer 500 and store that 500 as the idempotent result.
    EffectThenStored500,
    /// Execute the operation, then answer 500 and store nothing (a retry executes again).
    EffectThen500,
    /// Fail inside Stripe before any effect, and store that 500 as the idempotent result, so
    /// every retry with the key replays it.
    Stored500,
}

impl FaultKind {
    /// 500 `api_error`, no `Stripe-Should-Retry` header.
    pub fn api_error() -> FaultKind {
        FaultKind::error(500, "api_error", None, "An unknown error occurred", None)
    }

    /// 429 `rate_limit` with `Stripe-Should-Retry: true`.
    pub fn rate_limited() -> FaultKind {
        FaultKind::error(
            429,
            "invalid_request_error",
            Some("rate_limit"),
            "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
            Some(true),
        )
    }

    /// 400 `invalid_request_error` with `Stripe-Should-Retry: false`.
    pub fn bad_request_no_retry() -> FaultKind {
        FaultKind::error(
            400,
            "invalid_request_error",
            None,
            "Injected invalid request",
            Some(false),
        )
    }

    /// A fault by the name `creditd sandbox fault` and `POST /_sandbox/faults` take: `500`, `429`,
    /// `400`, `drop`, `stored_500`, `effect_then_500`, `effect_then_stored_500` or `delay`.
    pub fn by_name(name: &str, delay: Duration) -> Option<FaultKind> {
        Some(match name {
            "500" => FaultKind::api_error(),
            "429" => FaultKind::rate_limited(),
            "400" => FaultKind::bad_request_no_retry(),
            "drop" => FaultKind::DropConnection,
            "stored_500" => FaultKind::Stored500,
            "effect_then_500" => FaultKind::EffectThen500,
            "effect_then_stored_500" => FaultKind::EffectThenStored500,
            "delay" => FaultKind::Delay(delay),
            _ => return None,
        })
    }

    pub fn error(
        status: u16,
        error_type: &str,
        code: Option<&str>,
        message: &str,
        should_retry: Option<bool>,
    ) -> FaultKind {
        FaultKind::Error {
            status,
            error_type: error_type.to_string(),
            code: code.map(str::to_string),
            message: message.to_string(),
            should_retry,
        }
    }
}

/// Where a pause hook stops a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PauseStage {
    /// Idempotency key taken, nothing executed yet.
    BeforeEffect,
    /// Executed and idempotent result stored, response not yet sent.
    AfterEffect,
}

pub(crate) struct PauseShared {
    pub reached: watch::Sender<bool>,
    pub released: watch::Sender<bool>,
}

pub(crate) struct PauseSlot {
    pub method: String,
    pub path_prefix: String,
    pub stage: PauseStage,
    pub shared: Arc<PauseShared>,
}

/// Holds the next matching request at a pause point. Dropping the handle releases it.
pub struct PauseHandle {
    pub(crate) shared: Arc<PauseShared>,
}

impl PauseHandle {
    /// Resolves once a request is held at the pause point.
    pub async fn reached(&self) {
        let mut rx = self.shared.reached.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }

    /// True if a request is (or was) held at the pause point.
    pub fn is_reached(&self) -> bool {
        *self.shared.reached.borrow()
    }

    /// Lets the held request continue (and any later one: the hook is one-shot).
    pub fn release(&self) {
        self.shared.released.send_replace(true);
    }
}

impl Drop for PauseHandle {
    fn drop(&mut self) {
        // A released slot left in the fake no longer holds anything.
        self.release();
    }
}

pub(crate) async fn wait_released(shared: &PauseShared) {
    shared.reached.send_replace(true);
    let mut rx = shared.released.subscribe();
    let _ = rx.wait_for(|r| *r).await;
}
