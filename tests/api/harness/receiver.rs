//! A merchant's webhook receiver for the outbound tests: records every delivery with its
//! Standard Webhooks headers, answers as the test says, and verifies signatures with its own
//! HMAC-SHA256 written from the specification, never with creditd's signing code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::eventually;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

impl Delivery {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("deliveries are JSON")
    }

    pub fn event_type(&self) -> String {
        self.json()["type"].as_str().unwrap().to_owned()
    }

    /// Whether one of the `v1,` signatures is HMAC-SHA256(key, "id.timestamp.body") under
    /// `secret` (`whsec_` + base64 key), as the specification defines it.
    pub fn signed_with(&self, secret: &str) -> bool {
        let key = base64::engine::general_purpose::STANDARD
            .decode(secret.strip_prefix("whsec_").unwrap())
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.{}", self.id, self.timestamp, self.body).as_bytes());
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        self.signature
            .split(' ')
            .filter_map(|s| s.strip_prefix("v1,"))
            .any(|s| s == expected)
    }
}

/// How the receiver answers the next requests.
#[derive(Debug, Clone)]
pub enum Behaviour {
    Ok,
    Status(u16),
    /// Answers only after this long (longer than creditd's timeout: a timeout).
    Hang(Duration),
    Redirect(String),
    /// 500 with this many bytes of body.
    Huge(usize),
    /// 429 with `Retry-After: <seconds>`.
    TooManyRequests(u64),
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    state: Arc<Mutex<(Vec<Delivery>, Behaviour)>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener)
    }

    /// On a given port, e.g. one an endpoint was registered at while nothing listened.
    pub async fn start_on(port: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        Self::serve(listener)
    }

    fn serve(listener: tokio::net::TcpListener) -> Receiver {
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new((Vec::new(), Behaviour::Ok)));
        let shared = state.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: String| {
            let shared = shared.clone();
            async move { answer(&shared, &headers, body).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { url, state }
    }

    pub fn behave(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().1 = behaviour;
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().unwrap().0.clone()
    }

    /// Waits until `count` requests arrived, and returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Delivery> {
        eventually(&format!("{count} webhook deliveries"), || async {
            self.deliveries().len() >= count
        })
        .await;
        self.deliveries()
    }

    /// Waits for a delivery of `event_type`.
    pub async fn wait_for_type(&self, event_type: &str) -> Delivery {
        eventually(&format!("a {event_type} delivery"), || async {
            self.deliveries()
                .iter()
                .any(|d| d.event_type() == event_type)
        })
        .await;
        self.deliveries()
            .into_iter()
            .find(|d| d.event_type() == event_type)
            .unwrap()
    }
}

async fn answer(
    state: &Mutex<(Vec<Delivery>, Behaviour)>,
    headers: &HeaderMap,
    body: String,
) -> axum::response::Response {
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let delivery = Delivery {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
    };
    let behaviour = {
        let mut state = state.lock().unwrap();
        state.0.push(delivery);
        state.1.clone()
    };
    match behaviour {
        Behaviour::Ok => (StatusCode::OK, "ok").into_response(),
        Behaviour::Status(code) => {
            (StatusCode::from_u16(code).unwrap(), "receiver says no").into_response()
        }
        Behaviour::Hang(delay) => {
            tokio::time::sleep(delay).await;
            (StatusCode::OK, "too late").into_response()
        }
        Behaviour::Huge(size) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "x".repeat(size)).into_response()
        }
        Behaviour::TooManyRequests(seconds) => {
            let after = seconds.to_string();
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", after)],
                "slow down",
            )
                .into_response()
        }
        Behaviour::Redirect(to) => {
            (StatusCode::TEMPORARY_REDIRECT, [("location", to)], "").into_response()
        }
    }
}
