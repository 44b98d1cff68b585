//! A stateful Stripe sandbox (invoices, credit grants, events, webhooks, idempotency, faults),
//! served over real HTTP: in-process for creditd's tests, and by `creditd sandbox` for people.
//!
//! Start it with [`FakeStripe::start`], point creditd at [`FakeStripe::base_url`] with
//! [`FakeStripe::SECRET_KEY`], seed customers with [`FakeStripe::create_customer`] and inspect or
//! steer it through the methods below. Parameters are checked against the OpenAPI subset in
//! `spec/stripe-openapi-subset.json`, compiled in.

mod amounts;
mod balances;
mod card_payments;
mod cards;
mod checkout;
pub mod cli;
mod client;
mod conn;
mod control;
mod controls;
mod credits;
mod customers;
mod delivery;
pub mod demo;
mod demo_credits;
mod demo_http;
mod error;
mod events;
mod form;
mod hooks;
mod idempotency;
mod invoice_items;
mod invoice_object;
mod invoice_ops;
mod invoices;
mod manual_ops;
mod payments;
mod persist;
mod routes;
mod schema;
mod server;
mod state;
mod usage;
mod webhook;

pub use cards::CardBehaviour;
pub use client::{TestClient, TestResponse, encode_form};
pub use control::{Fault, FaultKind, PauseHandle, RecordedRequest};
pub use error::ApiError;
pub use schema::OPENAPI_SUBSET;
pub use state::API_VERSION;

use serde_json::{Value, json};
use state::{Ctx, State, new_id};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::watch;

pub(crate) struct Inner {
    state: Mutex<State>,
    spec: schema::Spec,
    addr: SocketAddr,
    runtime: tokio::runtime::Handle,
    http: reqwest::Client,
    inflight: watch::Sender<usize>,
}

/// Handle to a running fake Stripe; cheap to clone, all clones share one server and state.
#[derive(Clone)]
pub struct FakeStripe {
    inner: Arc<Inner>,
}

/// The full `Stripe-Signature` header value `t=<timestamp>,v1=<hex>` for `payload`.
pub fn sign_payload(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    webhook::signature_header(&[secret.to_string()], timestamp, payload)
}

/// An `invoice.paid` event around `invoice` (as a webhook would carry it), with a fresh `evt_` id.
pub fn invoice_paid_event(invoice: &Value) -> Value {
    json!({
        "id": new_id("evt_"),
        "object": "event",
        "api_version": API_VERSION,
        "created": chrono::Utc::now().timestamp(),
        "data": { "object": invoice },
        "livemode": false,
        "pending_webhooks": 1,
        "request": { "id": null, "idempotency_key": null },
        "type": "invoice.paid",
    })
}

pub(crate) const AUTOMATIC: Ctx = Ctx {
    request_id: None,
    idempotency_key: None,
};

impl FakeStripe {
    pub const SECRET_KEY: &'static str = "sk_test_fake_creditd";

    /// Binds `127.0.0.1:0` and serves on the current tokio runtime.
    pub async fn start() -> FakeStripe {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake stripe");
        FakeStripe::serve(listener)
    }

    /// Serves on `listener` on the current tokio runtime, with an empty state.
    pub fn serve(listener: tokio::net::TcpListener) -> FakeStripe {
        let addr = listener.local_addr().expect("local addr");
        let state = State {
            webhook_enabled: true,
            base_url: format!("http://{addr}"),
            ..State::default()
        };
        let fake = FakeStripe {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                spec: schema::Spec::load(),
                addr,
                runtime: tokio::runtime::Handle::current(),
                http: reqwest::Client::new(),
                inflight: watch::Sender::new(0),
            }),
        };
        tokio::spawn(server::serve(listener, fake.clone()));
        fake
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn has_customer(&self, id: &str) -> bool {
        self.lock().has_customer(id)
    }

    /// Seeds a customer (`cus_...`) without HTTP (and without a `customer.created` event), with a
    /// saved card that succeeds as its default payment method, as a customer who has paid before
    /// has ([`FakeStripe::remove_default_card`] takes it away). Customers created over HTTP have
    /// no card.
    pub fn create_customer(&self) -> String {
        let mut st = self.lock();
        let id = customers::insert(&mut st, &json!({}));
        cards::attach(&mut st, &id, CardBehaviour::Succeeds);
        id
    }

    pub fn invoice(&self, id: &str) -> Option<Value> {
        state::find(&self.lock().invoices, id).map(|s| s.json.clone())
    }

    /// All invoices, oldest first.
    pub fn invoices(&self) -> Vec<Value> {
        self.lock()
            .invoices
            .iter()
            .map(|s| s.json.clone())
            .collect()
    }

    pub fn invoice_items(&self) -> Vec<Value> {
        self.lock().items.iter().map(|s| s.json.clone()).collect()
    }

    /// All credit grants, oldest first.
    pub fn grants(&self) -> Vec<Value> {
        self.lock().grants.iter().map(|s| s.json.clone()).collect()
    }

    pub fn grants_for(&self, customer: &str) -> Vec<Value> {
        self.grants()
            .into_iter()
            .filter(|g| g["customer"] == customer)
            .collect()
    }

    /// All events (also older than 30 days), newest first.
    pub fn events(&self) -> Vec<Value> {
        let st = self.lock();
        let mut all: Vec<&state::Stored> = st.events.iter().collect();
        all.sort_by_key(|s| std::cmp::Reverse((s.json["created"].as_i64().unwrap_or(0), s.seq)));
        all.into_iter().map(|s| s.json.clone()).collect()
    }

    pub fn event(&self, id: &str) -> Option<Value> {
        state::find(&self.lock().events, id).map(|s| s.json.clone())
    }

    /// Deletes every event of `event_type`, as if Stripe had never created them.
    pub fn remove_events(&self, event_type: &str) {
        self.lock().events.retain(|e| e.json["type"] != event_type);
    }

    /// Adds an event as-is to the event list (not delivered by webhook).
    pub fn insert_event(&self, event: Value) {
        let mut st = self.lock();
        let stored = st.stored(event);
        st.events.push(stored);
    }

    /// Every HTTP request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn requests_to(&self, method: &str, path_prefix: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.starts_with(path_prefix))
            .collect()
    }

    pub(crate) fn record(&self, req: RecordedRequest) -> usize {
        let mut st = self.lock();
        st.requests.push(req);
        st.requests.len() - 1
    }

    pub(crate) fn set_status(&self, index: usize, status: u16, replayed: bool) {
        if let Some(r) = self.lock().requests.get_mut(index) {
            r.status = status;
            r.replayed = replayed;
        }
    }

    /// Forgets every idempotency key (as Stripe does after 24 hours).
    pub fn forget_idempotency_keys(&self) {
        self.lock().idem.clear();
    }

    /// Moves the fake's clock forward; keys older than 24 h by the new clock are forgotten.
    pub fn advance_clock(&self, by: Duration) {
        let mut st = self.lock();
        st.clock_offset += by.as_secs() as i64;
        st.prune_idempotency();
        // Stripe's clock expires open Checkout Sessions past their `expires_at`.
        checkout::expire_overdue(&mut st);
        drop(st);
        self.flush_outbox();
    }

    /// The fake's clock (unix seconds): real time plus the advanced offset.
    pub fn now(&self) -> i64 {
        self.lock().now()
    }
}
