//! The one HTTP client for Stripe: form encoding, rate limit, and retries the way Stripe's SDKs retry.

use std::time::Duration;

use rand::Rng;
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde::de::DeserializeOwned;
use url::Url;

use super::form::Form;
use super::rate_limit::{Lane, RateLimiter};
use super::reach;
use super::retry::{retry_after, should_retry};
use crate::metrics::Metrics;
use crate::secret::Secret;

/// Pinned so that payloads look the same whatever the account's default version is.
pub const STRIPE_VERSION: &str = "2026-07-29.dahlia";

#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub api_base: Url,
    pub secret_key: Secret,
    pub timeout: Duration,
    pub max_network_retries: u32,
    pub retry_base: Duration,
    /// Longest wait before a retry, whatever the backoff or a `Retry-After` header says.
    pub retry_max: Duration,
    pub rate_limit_per_sec: u32,
    /// Share of the rate that proxied reads may use, in percent.
    pub read_share_percent: u32,
    /// Longest a proxied read waits for its share before answering busy.
    pub read_max_wait: Duration,
}

impl ClientSettings {
    /// The longest one request can take with all its retries and their delays: a lease must
    /// outlast it, so that a worker whose heartbeat stalls still finishes the request it sent
    /// before another worker may take the purchase over.
    pub fn worst_case_request(&self) -> Duration {
        let retries = self.max_network_retries;
        self.timeout
            .saturating_mul(retries.saturating_add(1))
            .saturating_add(self.retry_max.saturating_mul(retries))
    }
}

#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    settings: ClientSettings,
    limiter: RateLimiter,
    metrics: Metrics,
}

/// One request; `params` are already flattened into Stripe's bracket keys.
#[derive(Debug, Clone)]
pub struct StripeRequest {
    pub method: Method,
    pub path: String,
    pub params: Form,
    pub idempotency_key: Option<String>,
    /// Which share of the rate limit it draws on; money unless marked as a proxied read.
    pub lane: Lane,
}

impl StripeRequest {
    pub fn get(path: impl Into<String>, params: Form) -> Self {
        StripeRequest {
            method: Method::GET,
            path: path.into(),
            params,
            idempotency_key: None,
            lane: Lane::Money,
        }
    }

    /// Marks a read that creditd only passes on to its client (a balance), so that it never
    /// takes Stripe capacity from grants.
    pub fn proxied_read(mut self) -> Self {
        self.lane = Lane::Read;
        self
    }

    pub fn post(path: impl Into<String>, params: Form, idempotency_key: impl Into<String>) -> Self {
        StripeRequest {
            method: Method::POST,
            path: path.into(),
            params,
            idempotency_key: Some(idempotency_key.into()),
            lane: Lane::Money,
        }
    }

    /// The path without ids, for metric labels: `/v1/invoices/in_123/finalize` -> `/v1/invoices/{id}/finalize`.
    pub fn endpoint(&self) -> String {
        const RESOURCE_SEGMENTS: &[&str] = &[
            "",
            "v1",
            "billing",
            "credit_grants",
            "credit_balance_summary",
            "credit_balance_transactions",
            "invoices",
            "invoiceitems",
            "events",
            "finalize",
            "void",
            "pay",
            "mark_uncollectible",
            "expire",
        ];
        self.path
            .split('/')
            .map(|segment| {
                if RESOURCE_SEGMENTS.contains(&segment) {
                    segment
                } else {
                    "{id}"
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Why a Stripe request did not succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StripeError {
    /// Stripe answered with an error body.
    #[error("Stripe answered {status}: {message}")]
    Api {
        status: u16,
        error_type: String,
        code: Option<String>,
        message: String,
        param: Option<String>,
    },
    /// No answer: connection refused or reset, or a timeout. The request may or may not have run.
    #[error("no answer from Stripe: {0}")]
    Transport(String),
    /// An answer we could not read.
    #[error("unreadable answer from Stripe: {0}")]
    Decode(String),
    /// Not sent: a proxied read found no Stripe capacity within its wait.
    #[error("Stripe capacity is reserved for grants; retry in {} s", .retry_after.as_secs().max(1))]
    Busy { retry_after: Duration },
}

impl StripeError {
    /// The HTTP status, when Stripe answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            StripeError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A 500 rendered by Stripe itself. Stripe stores it under the idempotency key and replays it
    /// for every retry with that key, so only a fresh key can make progress.
    pub fn is_stored_server_error(&self) -> bool {
        matches!(self, StripeError::Api { status: 500, error_type, .. } if error_type == "api_error")
    }

    /// Worth trying again later: Stripe or the network failed, not our request.
    pub fn is_transient(&self) -> bool {
        match self {
            StripeError::Api { status, .. } => *status == 409 || *status == 429 || *status >= 500,
            StripeError::Transport(_) | StripeError::Decode(_) | StripeError::Busy { .. } => true,
        }
    }
}

impl StripeClient {
    pub fn new(settings: ClientSettings, metrics: Metrics) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("creditd/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let limiter = RateLimiter::new(
            settings.rate_limit_per_sec,
            settings.read_share_percent,
            settings.read_max_wait,
        );
        Ok(StripeClient {
            http,
            settings,
            limiter,
            metrics,
        })
    }

    /// Sends the request, retrying transient failures with the same idempotency key.
    pub async fn send<T: DeserializeOwned>(
        &self,
        request: &StripeRequest,
    ) -> Result<T, StripeError> {
        let endpoint = request.endpoint();
        let mut retries = 0;
        loop {
            match self.limiter.acquire(request.lane).await {
                Ok(true) => self.metrics.stripe_rate_limit_wait(),
                Ok(false) => {}
                Err(busy) => {
                    self.metrics.stripe_request(&endpoint, "busy");
                    return Err(StripeError::Busy {
                        retry_after: busy.retry_after,
                    });
                }
            }
            let outcome = self.send_once(request).await;
            let status_label = match &outcome {
                Ok((status, _, _)) => status.as_u16().to_string(),
                Err(_) => "network_error".to_owned(),
            };
            self.metrics.stripe_request(&endpoint, &status_label);
            let (retry, delay_hint) = match &outcome {
                Ok((status, headers, _)) => (
                    should_retry(*status, headers),
                    retry_after(headers, self.settings.retry_max),
                ),
                Err(_) => (true, None),
            };
            if retry && retries < self.settings.max_network_retries {
                retries += 1;
                self.metrics.stripe_retry(&endpoint);
                let delay = delay_hint.unwrap_or_else(|| self.backoff(retries));
                tracing::info!(method = %request.method, endpoint, retries, delay_ms = delay.as_millis() as u64, "retrying Stripe request");
                tokio::time::sleep(delay).await;
                continue;
            }
            return match outcome {
                Ok((status, _, body)) if status.is_success() => {
                    serde_json::from_slice(&body).map_err(|e| StripeError::Decode(e.to_string()))
                }
                Ok((status, _, body)) => Err(api_error(status, &body)),
                Err(message) => Err(StripeError::Transport(message)),
            };
        }
    }

    async fn send_once(
        &self,
        request: &StripeRequest,
    ) -> Result<(StatusCode, HeaderMap, bytes::Bytes), String> {
        let mut url = self
            .settings
            .api_base
            .join(&request.path)
            .map_err(|e| e.to_string())?;
        let mut builder = if request.method == Method::GET {
            url.set_query(
                Some(&request.params.encode())
                    .filter(|q| !q.is_empty())
                    .map(String::as_str),
            );
            self.http.get(url)
        } else {
            self.http
                .request(request.method.clone(), url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(request.params.encode())
        };
        builder = builder
            .bearer_auth(self.settings.secret_key.expose())
            .header("Stripe-Version", STRIPE_VERSION);
        if let Some(key) = &request.idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        let started = std::time::Instant::now();
        let response = builder.send().await.map_err(|error| {
            // Only a refused connection proves the request never arrived; a timeout or a reset
            // may come after Stripe acted.
            if !error.is_connect() {
                reach::mark_reached();
            }
            describe_transport_error(error)
        })?;
        reach::mark_reached();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(describe_transport_error)?;
        tracing::info!(
            method = %request.method,
            endpoint = request.endpoint(),
            status = status.as_u16(),
            idempotency_key = request.idempotency_key.as_deref(),
            request_id = headers.get("request-id").and_then(|v| v.to_str().ok()),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "stripe call"
        );
        Ok((status, headers, body))
    }

    /// base · 2^(n-1), capped at `retry_max`, with up to 50 % jitter taken off, as stripe-python
    /// does.
    fn backoff(&self, retry: u32) -> Duration {
        let base = self
            .settings
            .retry_base
            .saturating_mul(1 << (retry.max(1) - 1).min(16))
            .min(self.settings.retry_max);
        let jitter = rand::rng().random_range(0.5..=1.0);
        base.mul_f64(jitter)
    }
}

fn api_error(status: StatusCode, body: &[u8]) -> StripeError {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: Body,
    }
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(rename = "type")]
        error_type: String,
        code: Option<String>,
        message: Option<String>,
        param: Option<String>,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope { error }) => StripeError::Api {
            status: status.as_u16(),
            error_type: error.error_type,
            code: error.code,
            message: error.message.unwrap_or_else(|| "no message".into()),
            param: error.param,
        },
        Err(_) => StripeError::Api {
            status: status.as_u16(),
            // Not Stripe's own answer (a proxy or load balancer): nothing is known to be stored.
            error_type: "http_error".into(),
            code: None,
            message: format!("HTTP {status} without a Stripe error body"),
            param: None,
        },
    }
}

/// reqwest's Display includes the URL, which holds no secret (the key travels in a header).
fn describe_transport_error(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".into()
    } else if error.is_connect() {
        "could not connect".into()
    } else {
        error.without_url().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_labels_hide_ids() {
        let request = StripeRequest::get("/v1/invoices/in_123/finalize", Form::new());
        assert_eq!(request.endpoint(), "/v1/invoices/{id}/finalize");
        let request = StripeRequest::get("/v1/billing/credit_grants", Form::new());
        assert_eq!(request.endpoint(), "/v1/billing/credit_grants");
    }
}
