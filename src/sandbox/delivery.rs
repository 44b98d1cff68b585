//! Webhook endpoint configuration and delivery of events (background and on demand).

use super::FakeStripe;
use super::webhook;
use serde_json::Value;
use std::time::Duration;

impl FakeStripe {
    /// Sends every future event to `url`, signed with each of `secrets` (one `v1=` per secret).
    pub fn set_webhook_endpoint(&self, url: &str, secrets: &[&str]) {
        let mut st = self.lock();
        st.webhook_url = Some(url.to_string());
        st.webhook_secrets = secrets.iter().map(|s| s.to_string()).collect();
    }

    pub fn has_webhook_endpoint(&self) -> bool {
        self.lock().webhook_url.is_some()
    }

    /// Retries a failed background delivery after each of `waits` in turn, as Stripe retries for
    /// days (`creditd sandbox` uses a compressed schedule). Empty, the default in tests: one try.
    pub fn retry_failed_deliveries(&self, waits: &[Duration]) {
        self.lock().delivery_retries = waits.to_vec();
    }

    /// `false`: events are still created but not delivered (they stay undelivered).
    pub fn set_webhook_delivery(&self, enabled: bool) {
        self.lock().webhook_enabled = enabled;
    }

    /// Delivers `event` now and returns the endpoint's status and body (status 0 and the error text
    /// when the request failed). A 2xx marks the event delivered. Panics without an endpoint.
    pub async fn deliver_event(&self, event: &Value) -> (u16, String) {
        let payload = serde_json::to_vec(event).expect("serialize event");
        self.deliver_raw(event["id"].as_str().unwrap_or_default(), payload)
            .await
    }

    /// Like [`FakeStripe::deliver_event`] with a raw body, e.g. to test byte-exact signing.
    pub async fn deliver_raw(&self, event_id: &str, payload: Vec<u8>) -> (u16, String) {
        let (url, secrets) = {
            let st = self.lock();
            let url = st
                .webhook_url
                .clone()
                .expect("fake stripe: set_webhook_endpoint first");
            (url, st.webhook_secrets.clone())
        };
        let t = chrono::Utc::now().timestamp();
        let (status, body) = webhook::post(&self.inner.http, &url, &secrets, t, payload).await;
        if (200..300).contains(&status) {
            self.lock().mark_delivered(event_id);
        }
        (status, body)
    }

    /// Resolves when no background webhook delivery is in flight.
    pub async fn wait_for_deliveries(&self) {
        let mut rx = self.inner.inflight.subscribe();
        let _ = rx.wait_for(|n| *n == 0).await;
    }

    /// Ids of events whose webhook delivery got a 2xx answer.
    pub fn delivered_event_ids(&self) -> Vec<String> {
        self.lock().delivered.iter().cloned().collect()
    }

    /// Hands queued events to background delivery tasks (one task per event).
    pub(crate) fn flush_outbox(&self) {
        let events = std::mem::take(&mut self.lock().outbox);
        let retries = self.lock().delivery_retries.clone();
        for event in events {
            self.inner.inflight.send_modify(|n| *n += 1);
            let fake = self.clone();
            let retries = retries.clone();
            self.inner.runtime.spawn(async move {
                let mut waits = retries.into_iter();
                loop {
                    let (status, _) = fake.deliver_event(&event).await;
                    let Some(wait) = waits.next().filter(|_| !(200..300).contains(&status)) else {
                        break;
                    };
                    tokio::time::sleep(wait).await;
                }
                fake.inner.inflight.send_modify(|n| *n -= 1);
            });
        }
    }
}
