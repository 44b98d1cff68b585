//! Dedicated connections for recording Stripe events: exactly one round trip per event.
//!
//! sqlx's pool pings every connection it takes back, which would make each webhook cost the
//! database two wake-ups instead of one. Events are recorded with a single self-contained
//! statement, so a connection that fails is simply dropped and the next event opens a new one.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::value::RawValue;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::Semaphore;

use super::events::{self, Recorded};
use crate::stripe::types::Event;

pub struct EventRecorder {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
    slots: Semaphore,
    acquire_timeout: Duration,
}

impl EventRecorder {
    pub fn new(options: PgConnectOptions, connections: usize, acquire_timeout: Duration) -> Self {
        EventRecorder {
            options,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(connections),
            acquire_timeout,
        }
    }

    /// Records the event (see [`events::record`]). Waiting for a connection is bounded, so an
    /// unreachable database turns into an error quickly and the webhook answers 503.
    pub async fn record(
        &self,
        event: &Event,
        raw: &RawValue,
        source: &str,
    ) -> sqlx::Result<Recorded> {
        let deadline = tokio::time::Instant::now() + self.acquire_timeout;
        let _slot = tokio::time::timeout_at(deadline, self.slots.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .expect("the semaphore is never closed");
        let idle = self
            .idle
            .lock()
            .expect("no panics while holding the lock")
            .pop();
        let mut connection = match idle {
            Some(connection) => connection,
            None => tokio::time::timeout_at(deadline, self.options.connect())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??,
        };
        let recorded = events::record(&mut connection, event, raw, source).await?;
        // Only a connection whose statement succeeded goes back; a failed one is dropped.
        self.idle
            .lock()
            .expect("no panics while holding the lock")
            .push(connection);
        Ok(recorded)
    }

    /// Closes the idle connections, for a clean shutdown.
    pub async fn close(&self) {
        let idle: Vec<PgConnection> =
            std::mem::take(&mut *self.idle.lock().expect("no panics while holding the lock"));
        for connection in idle {
            let _ = connection.close().await;
        }
    }
}
