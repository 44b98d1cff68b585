//! Dedicated connections for recording Stripe events: exactly one round trip per event.
//!
//! sqlx's pool pings every connection it takes back, which would make each webhook cost the
//! database two wake-ups instead of one. Events are recorded with a single self-contained
//! statement, so a connection that fails is simply dropped and the next event opens a new one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::value::RawValue;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::events::{self, Recorded};
use crate::stripe::types::Event;

/// How much longer than the server's `statement_timeout` creditd waits for an answer.
const STATEMENT_GRACE: Duration = Duration::from_millis(500);

pub struct EventRecorder {
    options: PgConnectOptions,
    idle: Mutex<Vec<PgConnection>>,
    slots: Semaphore,
    connections: usize,
    acquire_timeout: Duration,
    statement_timeout: Duration,
}

/// How busy the recorder is, for the saturation gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderUsage {
    pub max: usize,
    pub in_use: usize,
    pub idle: usize,
}

impl EventRecorder {
    /// Every connection runs with PostgreSQL's `statement_timeout` set to `statement_timeout`.
    pub fn new(
        options: PgConnectOptions,
        connections: usize,
        acquire_timeout: Duration,
        statement_timeout: Duration,
    ) -> Self {
        let options = super::plans::index_scans_only(options).options([(
            "statement_timeout",
            format!("{}ms", statement_timeout.as_millis()),
        )]);
        EventRecorder {
            options,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(connections),
            connections,
            acquire_timeout,
            statement_timeout,
        }
    }

    pub fn usage(&self) -> RecorderUsage {
        let in_use = self.connections - self.slots.available_permits();
        let idle = self.idle.lock().map(|idle| idle.len()).unwrap_or(0);
        RecorderUsage {
            max: self.connections,
            in_use,
            idle,
        }
    }

    /// Whether an event could be recorded now: a slot and a connection within the acquire
    /// timeout, and a trivial statement within the statement timeout. Readiness uses it, so a
    /// replica whose webhook path cannot record stops getting traffic.
    pub async fn check(&self) -> bool {
        let Ok((_slot, mut connection)) = self.take().await else {
            return false;
        };
        let ok = self
            .bounded(sqlx::query_scalar!("SELECT 1 AS alive").fetch_one(&mut connection))
            .await
            .is_ok();
        if ok {
            self.give_back(connection);
        }
        ok
    }

    /// Records the event (see [`events::record`]). Waiting for a connection is bounded, so an
    /// unreachable database turns into an error quickly and the webhook answers 503.
    ///
    /// The write runs as its own task, detached from the caller's future. A client that hangs up
    /// mid-request drops the handler's future; had the statement been polled by that future, the
    /// connection would be dropped with a statement in flight (an abandoned session, a reconnect
    /// for the next event). Detached, the statement finishes within the deadlines it already has
    /// (acquire timeout, `statement_timeout` plus grace), its connection goes back, and the event
    /// is recorded once or not at all: Stripe's retry then finds it a duplicate.
    pub async fn record(
        self: &Arc<Self>,
        event: &Event,
        raw: &RawValue,
        source: &str,
    ) -> sqlx::Result<Recorded> {
        let recorder = Arc::clone(self);
        let (event, raw, source) = (event.clone(), raw.to_owned(), source.to_owned());
        tokio::spawn(async move { recorder.record_here(&event, &raw, &source).await })
            .await
            .map_err(|_| sqlx::Error::WorkerCrashed)?
    }

    /// Records the event on the calling task.
    async fn record_here(
        &self,
        event: &Event,
        raw: &RawValue,
        source: &str,
    ) -> sqlx::Result<Recorded> {
        let (_slot, mut connection) = self.take().await?;
        let recorded = self
            .bounded(events::record(&mut connection, event, raw, source))
            .await?;
        // Only a connection whose statement succeeded goes back; a failed one is dropped.
        self.give_back(connection);
        Ok(recorded)
    }

    /// A new connection with exactly the recorder's session settings, for tests and diagnostics
    /// that must see the plans the recorder gets.
    pub async fn connect(&self) -> sqlx::Result<PgConnection> {
        self.options.connect().await
    }

    /// A slot and a connection, within the acquire timeout.
    async fn take(&self) -> sqlx::Result<(SemaphorePermit<'_>, PgConnection)> {
        let deadline = tokio::time::Instant::now() + self.acquire_timeout;
        let slot = tokio::time::timeout_at(deadline, self.slots.acquire())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .expect("the semaphore is never closed");
        let idle = self
            .idle
            .lock()
            .expect("no panics while holding the lock")
            .pop();
        let connection = match idle {
            Some(connection) => connection,
            None => tokio::time::timeout_at(deadline, self.options.connect())
                .await
                .map_err(|_| sqlx::Error::PoolTimedOut)??,
        };
        Ok((slot, connection))
    }

    /// One statement, bounded here too: PostgreSQL's `statement_timeout` cannot reach a
    /// connection that no longer answers at all (half-open), so a moment after it the statement
    /// is abandoned and its connection dropped by the caller.
    async fn bounded<T>(
        &self,
        statement: impl std::future::Future<Output = sqlx::Result<T>>,
    ) -> sqlx::Result<T> {
        tokio::time::timeout(self.statement_timeout + STATEMENT_GRACE, statement)
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    fn give_back(&self, connection: PgConnection) {
        self.idle
            .lock()
            .expect("no panics while holding the lock")
            .push(connection);
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
