//! Dedicated connections for recording Stripe events, and the queue that feeds them.
//!
//! sqlx's pool pings every connection it takes back, which would make each webhook cost the
//! database two wake-ups instead of one. Events are recorded with a single self-contained
//! statement, so a connection that fails is simply dropped and the next batch opens a new one.
//!
//! Group commit: an event that finds no statement in flight is recorded at once, alone. Events
//! that arrive while one is in flight wait in a queue, and the writer records all of them (up to
//! [`MAX_BATCH`]) in its next statement: one round trip, one commit and one WAL flush for the lot.
//! More connections are put to work as the queue grows ([`BACKLOG_PER_WRITER`]), up to the
//! recorder's connections. Under load most of PostgreSQL's cost per event is per transaction, not
//! per row (`scripts/bench-webhooks` measures it), so this is where the throughput comes from;
//! at low load nothing waits and nothing changes. No timer ever holds an event back to fill a
//! batch. Every event is still answered only after the statement that recorded it committed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::value::RawValue;
use sqlx::ConnectOptions;
use sqlx::postgres::PgConnectOptions;
use tokio::sync::{Semaphore, SemaphorePermit, oneshot};
use tokio::time::Instant;

use super::events::{BatchKeys, EventToRecord, Recorded};
use super::recording_session::RecordingSession;
use crate::stripe::types::Event;

/// The most events one statement records: about 120 KB of payload at Stripe's usual event size,
/// so a batch never makes one statement slow, while 32 events already share a commit.
pub const MAX_BATCH: usize = 32;

/// Another connection is put to work only when this many events per running writer are waiting.
/// One writer already takes everything waiting into its next statement; a second one at once
/// would split the backlog into statements of one or two events, paying PostgreSQL's cost per
/// statement (about twice the cost per event) for most of them. Measured with
/// `scripts/bench-webhooks` (16 clients, 2026-12-02): starting writers whenever a connection was
/// free gave statements of 2.5 events on average, 58 % of them alone (4,106 events/s); one
/// writer per 2, 4 or 8 waiting events gave 3.3, 4.3 and 5.3 events per statement and 5,249,
/// 5,265 and 4,977 events/s: more statements in parallel, or fuller ones, trade off evenly.
const BACKLOG_PER_WRITER: usize = 4;

/// How much longer than the server's `statement_timeout` creditd waits for an answer.
const STATEMENT_GRACE: Duration = Duration::from_millis(500);

pub struct EventRecorder {
    options: PgConnectOptions,
    idle: Mutex<Vec<RecordingSession>>,
    slots: Semaphore,
    connections: usize,
    acquire_timeout: Duration,
    statement_timeout: Duration,
    queue: Mutex<Queue>,
}

/// The events waiting for a connection, and the writers (one per busy connection) that drain them.
#[derive(Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// Writer tasks running; never more than the recorder's connections.
    writers: usize,
    /// What the statements in flight touch: an event that would meet one of them waits.
    in_flight: BatchKeys,
}

struct Waiting {
    item: EventToRecord,
    /// Past this the event is answered "unavailable" instead of being recorded: the acquire
    /// timeout, counted from when it was queued, as for any wait for a connection.
    deadline: Instant,
    answer: oneshot::Sender<sqlx::Result<Recorded>>,
}

impl Queue {
    /// The next batch, in arrival order: every waiting event that meets neither another event of
    /// the batch nor a statement in flight, up to [`MAX_BATCH`]. Events whose wait is over are
    /// taken out into `expired`. The batch's keys are counted in flight.
    fn take_batch(&mut self, now: Instant, expired: &mut Vec<Waiting>) -> Vec<Waiting> {
        let mut batch = Vec::new();
        let mut batch_keys = BatchKeys::default();
        let mut kept = VecDeque::with_capacity(self.waiting.len());
        while let Some(waiting) = self.waiting.pop_front() {
            if waiting.deadline <= now {
                expired.push(waiting);
            } else if batch.len() < MAX_BATCH
                && !self.in_flight.clashes_with(&waiting.item)
                && !batch_keys.clashes_with(&waiting.item)
            {
                batch_keys.add(&waiting.item);
                batch.push(waiting);
            } else {
                kept.push_back(waiting);
            }
        }
        self.waiting = kept;
        for waiting in &batch {
            self.in_flight.add(&waiting.item);
        }
        batch
    }

    /// The statement that recorded `batch` is over: the events it held back may go.
    fn release(&mut self, batch: &mut Vec<EventToRecord>) {
        for item in batch.drain(..) {
            self.in_flight.remove(&item);
        }
    }
}

/// How busy the recorder is, for the saturation gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderUsage {
    pub max: usize,
    pub in_use: usize,
    pub idle: usize,
    /// Events queued for the next statement.
    pub waiting: usize,
    /// Writer tasks running: each records batches, one statement at a time, until none waits.
    pub writers: usize,
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
            queue: Mutex::new(Queue::default()),
        }
    }

    pub fn usage(&self) -> RecorderUsage {
        let in_use = self.connections - self.slots.available_permits();
        let idle = self.idle.lock().map(|idle| idle.len()).unwrap_or(0);
        let (waiting, writers) = self
            .queue
            .lock()
            .map(|q| (q.waiting.len(), q.writers))
            .unwrap_or((0, 0));
        RecorderUsage {
            max: self.connections,
            in_use,
            idle,
            waiting,
            writers,
        }
    }

    /// Whether an event could be recorded now: a slot and a connection within the acquire
    /// timeout, and a trivial statement within the statement timeout. Readiness uses it, so a
    /// replica whose webhook path cannot record stops getting traffic.
    pub async fn check(&self) -> bool {
        let Ok((_slot, mut session)) = self.take().await else {
            return false;
        };
        let ok = self
            .bounded(sqlx::query_scalar!("SELECT 1 AS alive").fetch_one(session.connection()))
            .await
            .is_ok();
        if ok {
            self.give_back(session);
        }
        ok
    }

    /// Records the event (see [`events::record_batch`]), alone or with the others waiting at the
    /// same moment. Waiting for a connection is bounded by the acquire timeout, so an unreachable
    /// database turns into an error quickly and the webhook answers 503.
    ///
    /// The write runs on a writer task, detached from the caller's future. A client that hangs up
    /// mid-request drops the handler's future; had the statement been polled by that future, the
    /// connection would be dropped with a statement in flight (an abandoned session, a reconnect
    /// for the next event), and an event batched with it would be lost with it. Detached, the
    /// statement finishes within the deadlines it already has (acquire timeout,
    /// `statement_timeout` plus grace), its connection goes back, and the event is recorded once
    /// or not at all: Stripe's retry then finds it a duplicate.
    pub async fn record(
        self: &Arc<Self>,
        event: &Event,
        raw: &RawValue,
        source: &str,
    ) -> sqlx::Result<Recorded> {
        let (answer, answered) = oneshot::channel();
        let start_writer = {
            let mut queue = self.queue.lock().expect("no panics while holding the lock");
            queue.waiting.push_back(Waiting {
                item: EventToRecord::new(event, raw, source),
                deadline: Instant::now() + self.acquire_timeout,
                answer,
            });
            let start = queue.writers == 0
                || (queue.writers < self.connections
                    && queue.waiting.len() >= queue.writers * BACKLOG_PER_WRITER);
            if start {
                queue.writers += 1;
            }
            start
        };
        if start_writer {
            let recorder = Arc::clone(self);
            tokio::spawn(async move { recorder.write_while_waiting().await });
        }
        // The writers answer within the deadlines above; this bound only matters if one of them
        // died, so that a caller can never wait forever.
        let bound = self.acquire_timeout + self.statement_timeout + STATEMENT_GRACE;
        match tokio::time::timeout(bound, answered).await {
            Ok(Ok(recorded)) => recorded,
            Ok(Err(_)) => Err(sqlx::Error::WorkerCrashed),
            Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    }

    /// A writer: records batches while events are waiting that it may take, then stops. Taking a
    /// batch and stopping both happen under the queue's lock, as does `record`'s decision to
    /// start a writer, so an event can never be left waiting with no writer to take it. An event
    /// held back because it meets a statement in flight is taken by that statement's writer,
    /// which looks at the queue again when it is done.
    async fn write_while_waiting(self: Arc<Self>) {
        let mut writer = WriterSlot {
            queue: &self.queue,
            batch: Vec::new(),
            running: true,
        };
        loop {
            let mut expired = Vec::new();
            let batch = {
                let mut queue = self.queue.lock().expect("no panics while holding the lock");
                let batch = queue.take_batch(Instant::now(), &mut expired);
                if batch.is_empty() {
                    queue.writers -= 1;
                    writer.running = false;
                }
                batch
            };
            for waiting in expired {
                let _ = waiting.answer.send(Err(sqlx::Error::PoolTimedOut));
            }
            if batch.is_empty() {
                return;
            }
            let answers: Vec<_>;
            (writer.batch, answers) = batch.into_iter().map(|w| (w.item, w.answer)).unzip();
            let results = self.write(&writer.batch).await;
            writer.finish_batch();
            for (answer, result) in answers.into_iter().zip(results) {
                // A caller that hung up no longer listens; its event is recorded all the same.
                let _ = answer.send(result);
            }
        }
    }

    /// Records a batch, one answer per event. When PostgreSQL refuses the statement (one event's
    /// data it cannot store, a deadlock that `events::record_batch`'s lock order cannot rule
    /// out), each event is tried on its own, so one bad event cannot keep the others out.
    /// Anything else (a timeout, a connection lost or refused) is not retried here: the database
    /// is slow or gone, one by one would only take longer, and the events' callers answer 503 so
    /// Stripe retries later.
    async fn write(&self, batch: &[EventToRecord]) -> Vec<sqlx::Result<Recorded>> {
        let error = match self.write_once(batch).await {
            Ok(recorded) => return recorded.into_iter().map(Ok).collect(),
            Err(error) => error,
        };
        let refused = matches!(error, sqlx::Error::Database(_)) && !is_timeout(&error);
        if batch.len() == 1 || !refused {
            // sqlx's errors cannot be cloned; the others get one of the same kind (unavailable).
            let shared = format!("recorded in a batch that failed: {error}");
            let mut results = vec![Err(error)];
            results.extend((1..batch.len()).map(|_| Err(sqlx::Error::Protocol(shared.clone()))));
            return results;
        }
        tracing::warn!(%error, events = batch.len(), "recording a batch failed; recording its events one by one");
        let mut results = Vec::with_capacity(batch.len());
        for item in batch {
            let single = self.write_once(std::slice::from_ref(item)).await;
            results.push(single.map(|mut recorded| recorded.remove(0)));
        }
        results
    }

    /// One statement on one of the recorder's connections.
    async fn write_once(&self, batch: &[EventToRecord]) -> sqlx::Result<Vec<Recorded>> {
        let (_slot, mut session) = self.take().await?;
        let recorded = self.bounded(session.record_batch(batch)).await?;
        // Only a connection whose statement succeeded goes back; a failed one is dropped.
        self.give_back(session);
        Ok(recorded)
    }

    /// A new connection with exactly the recorder's session settings, for tests and diagnostics
    /// that must see the plans the recorder gets.
    pub async fn connect(&self) -> sqlx::Result<RecordingSession> {
        Ok(RecordingSession::new(self.options.connect().await?))
    }

    /// A slot and a connection, within the acquire timeout.
    async fn take(&self) -> sqlx::Result<(SemaphorePermit<'_>, RecordingSession)> {
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
        let session = match idle {
            Some(session) => session,
            None => RecordingSession::new(
                tokio::time::timeout_at(deadline, self.options.connect())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)??,
            ),
        };
        Ok((slot, session))
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

    fn give_back(&self, session: RecordingSession) {
        self.idle
            .lock()
            .expect("no panics while holding the lock")
            .push(session);
    }

    /// Closes the idle connections, for a clean shutdown.
    pub async fn close(&self) {
        let idle: Vec<RecordingSession> =
            std::mem::take(&mut *self.idle.lock().expect("no panics while holding the lock"));
        for session in idle {
            let _ = session.close().await;
        }
    }
}

/// A running writer and the batch it is writing. Should the writer die mid-batch (a panic), it
/// still counts itself out and releases its batch's keys, so the events still waiting are taken
/// by the next writer `record` starts instead of waiting forever behind a dead statement.
struct WriterSlot<'a> {
    queue: &'a Mutex<Queue>,
    batch: Vec<EventToRecord>,
    running: bool,
}

impl WriterSlot<'_> {
    /// The batch's statement is over: the events it held back may go.
    fn finish_batch(&mut self) {
        self.queue
            .lock()
            .expect("no panics while holding the lock")
            .release(&mut self.batch);
    }
}

impl Drop for WriterSlot<'_> {
    fn drop(&mut self) {
        if !self.running {
            return;
        }
        if let Ok(mut queue) = self.queue.lock() {
            queue.release(&mut self.batch);
            queue.writers -= 1;
        }
    }
}

/// Whether PostgreSQL cancelled the statement for running too long (`statement_timeout`,
/// SQLSTATE 57014 query_canceled): retrying its events one by one would only take longer.
fn is_timeout(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => db.code().as_deref() == Some("57014"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, event_type: &str, invoice: &str, purchase: Option<&str>) -> EventToRecord {
        let metadata = purchase.map_or(
            serde_json::json!({}),
            |p| serde_json::json!({"creditd_purchase_id": p}),
        );
        let body = serde_json::json!({
            "id": id, "object": "event", "created": 1, "livemode": false, "type": event_type,
            "data": {"object": {"id": invoice, "object": "invoice", "metadata": metadata}},
        });
        let (event, raw) = crate::ingest::parse_event(body.to_string().as_bytes()).unwrap();
        EventToRecord::new(&event, &raw, "webhook")
    }

    fn queue_of(items: Vec<(EventToRecord, Instant)>) -> Queue {
        let mut queue = Queue::default();
        for (item, deadline) in items {
            let (answer, _) = oneshot::channel();
            queue.waiting.push_back(Waiting {
                item,
                deadline,
                answer,
            });
        }
        queue
    }

    fn ids(batch: &[Waiting]) -> Vec<&str> {
        batch.iter().map(|w| w.item.event.id.as_str()).collect()
    }

    fn waiting_ids(queue: &Queue) -> Vec<&str> {
        queue
            .waiting
            .iter()
            .map(|w| w.item.event.id.as_str())
            .collect()
    }

    #[test]
    fn a_batch_takes_everything_that_meets_nothing_in_arrival_order() {
        let later = Instant::now() + Duration::from_secs(60);
        let mut queue = queue_of(vec![
            (item("evt_1", "invoice.paid", "in_1", None), later),
            (item("evt_2", "invoice.paid", "in_2", Some("pur_2")), later),
            (item("evt_3", "customer.created", "in_1", None), later),
        ]);
        let mut expired = Vec::new();
        let batch = queue.take_batch(Instant::now(), &mut expired);
        // An event creditd does not act on locks no purchase, so it may share the invoice.
        assert_eq!(ids(&batch), ["evt_1", "evt_2", "evt_3"]);
        assert!(queue.waiting.is_empty() && expired.is_empty());
    }

    #[test]
    fn events_that_would_meet_in_one_statement_wait_for_the_next() {
        let later = Instant::now() + Duration::from_secs(60);
        let mut queue = queue_of(vec![
            (item("evt_1", "invoice.paid", "in_1", Some("pur_1")), later),
            (item("evt_1", "invoice.paid", "in_1", Some("pur_1")), later),
            (item("evt_2", "invoice.voided", "in_1", None), later),
            (item("evt_3", "invoice.paid", "in_3", Some("pur_1")), later),
            (item("evt_4", "invoice.paid", "in_4", None), later),
        ]);
        let mut expired = Vec::new();
        let first = queue.take_batch(Instant::now(), &mut expired);
        assert_eq!(ids(&first), ["evt_1", "evt_4"]);
        assert_eq!(waiting_ids(&queue), ["evt_1", "evt_2", "evt_3"]);

        // While the first statement is in flight, nothing that meets it may start.
        let meanwhile = queue.take_batch(Instant::now(), &mut expired);
        assert!(meanwhile.is_empty());

        for waiting in &first {
            queue.in_flight.remove(&waiting.item);
        }
        let second = queue.take_batch(Instant::now(), &mut expired);
        assert_eq!(ids(&second), ["evt_1"]);
        for waiting in &second {
            queue.in_flight.remove(&waiting.item);
        }
        let third = queue.take_batch(Instant::now(), &mut expired);
        assert_eq!(ids(&third), ["evt_2", "evt_3"]);
        assert!(queue.waiting.is_empty());
    }

    #[test]
    fn a_batch_holds_at_most_max_batch_and_drops_events_whose_wait_is_over() {
        let later = Instant::now() + Duration::from_secs(60);
        let past = Instant::now();
        let mut items = vec![(item("evt_old", "invoice.paid", "in_old", None), past)];
        items.extend((0..MAX_BATCH + 3).map(|i| {
            (
                item(
                    &format!("evt_{i}"),
                    "invoice.paid",
                    &format!("in_{i}"),
                    None,
                ),
                later,
            )
        }));
        let mut queue = queue_of(items);
        let mut expired = Vec::new();
        let batch = queue.take_batch(Instant::now(), &mut expired);
        assert_eq!(batch.len(), MAX_BATCH);
        assert_eq!(ids(&expired), ["evt_old"]);
        assert_eq!(queue.waiting.len(), 3);
        assert_eq!(batch[0].item.event.id, "evt_0");
    }
}
