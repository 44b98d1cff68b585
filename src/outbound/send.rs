//! One HTTP attempt: resolve and check the address, connect to that address, post the signed
//! body, follow no redirect, and keep the first KiB of the answer.

use std::time::{Duration, Instant};

use reqwest::redirect::Policy;
use url::Url;

use super::address::{self, Allow};
use super::signing::Signed;

/// How much of an answer is read and stored: enough to show the receiver's error message.
pub const RESPONSE_LIMIT: usize = 1024;

/// What one attempt got.
#[derive(Debug, Clone)]
pub struct Answer {
    /// None when no answer came: refused address, connection refused, timeout.
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub latency: Duration,
    /// The first [`RESPONSE_LIMIT`] bytes of the body, lossily decoded.
    pub response: Option<String>,
    pub retry_after: Option<Duration>,
}

impl Answer {
    pub fn delivered(&self) -> bool {
        matches!(self.http_status, Some(200..=299))
    }

    /// A short label for metrics: bounded, never an id.
    pub fn outcome(&self) -> &'static str {
        match (self.http_status, self.error.as_deref()) {
            (Some(200..=299), _) => "delivered",
            (Some(300..=399), _) => "redirect",
            (Some(400..=499), _) => "client_error",
            (Some(_), _) => "server_error",
            (None, Some(e)) if e.starts_with("timeout") => "timeout",
            (None, Some(e)) if e.starts_with("address refused") => "refused_address",
            (None, _) => "connection_error",
        }
    }

    fn failed(error: String, started: Instant) -> Answer {
        Answer {
            http_status: None,
            error: Some(error),
            latency: started.elapsed(),
            response: None,
            retry_after: None,
        }
    }
}

/// Posts `body` to `url` with the Standard Webhooks headers.
pub async fn post(
    url: &Url,
    signed: &Signed,
    body: &str,
    allow: Allow,
    timeout: Duration,
) -> Answer {
    let started = Instant::now();
    let addresses = match address::resolve(url, allow).await {
        Ok(addresses) => addresses,
        Err(refused) => return Answer::failed(format!("address refused: {refused}"), started),
    };
    let mut client = reqwest::Client::builder()
        .redirect(Policy::none())
        // A proxy would connect to the name itself, after our check: never use one.
        .no_proxy()
        .timeout(timeout)
        .user_agent(concat!("creditd-webhooks/", env!("CARGO_PKG_VERSION")));
    if let Some(url::Host::Domain(name)) = url.host() {
        client = client.resolve_to_addrs(name, &addresses);
    }
    let client = match client.build() {
        Ok(client) => client,
        Err(error) => return Answer::failed(format!("client: {error}"), started),
    };
    let request = client
        .post(url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", &signed.id)
        .header("webhook-timestamp", signed.timestamp.to_string())
        .header("webhook-signature", &signed.signature)
        .body(body.to_owned());
    let sent = tokio::time::timeout(timeout, async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| super::schedule::parse_retry_after(v, chrono::Utc::now()));
        let text = read_prefix(response).await;
        Ok::<_, reqwest::Error>((status, retry_after, text))
    })
    .await;
    match sent {
        Ok(Ok((status, retry_after, response))) => Answer {
            http_status: Some(status),
            error: None,
            latency: started.elapsed(),
            response: Some(response),
            retry_after,
        },
        Ok(Err(error)) if error.is_timeout() => {
            Answer::failed(format!("timeout after {} ms", timeout.as_millis()), started)
        }
        Ok(Err(error)) => {
            Answer::failed(format!("connection failed: {}", describe(&error)), started)
        }
        Err(_) => Answer::failed(format!("timeout after {} ms", timeout.as_millis()), started),
    }
}

/// Reads at most [`RESPONSE_LIMIT`] bytes and drops the rest unread, so a receiver answering
/// with a huge (or endless) body costs us a KiB.
async fn read_prefix(mut response: reqwest::Response) -> String {
    let mut kept = Vec::with_capacity(RESPONSE_LIMIT);
    while kept.len() < RESPONSE_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
            _ => break,
        }
    }
    kept.truncate(RESPONSE_LIMIT);
    String::from_utf8_lossy(&kept).into_owned()
}

/// The error and its causes on one line: reqwest's own message alone says only "error sending
/// request".
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
