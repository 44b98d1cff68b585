//! Group commit (issue 11): events that wait for a recorder connection are recorded together in
//! one statement, with exactly the effect they would have had one by one, and one event
//! PostgreSQL refuses cannot keep the others of its batch out.

use std::sync::Arc;
use std::time::Duration;

use creditd::config::DatabaseConfig;
use creditd::db::events::{self, EventToRecord, Recorded};
use creditd::db::recorder::EventRecorder;
use creditd::secret::Secret;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::harness::{eventually, fresh_database};

/// Built directly rather than by `ingest::parse_event`, which would refuse the NUL test's event
/// before it reached the recorder.
fn to_record(body: Value) -> EventToRecord {
    let event = serde_json::from_value(body.clone()).unwrap();
    let raw = serde_json::value::to_raw_value(&body).unwrap();
    EventToRecord::new(&event, &raw, "webhook")
}

fn invoice_event(id: &str, event_type: &str, invoice: &str, metadata: Value) -> EventToRecord {
    to_record(json!({
        "id": id, "object": "event", "created": 1_700_000_000, "livemode": false,
        "type": event_type,
        "data": {"object": {"id": invoice, "object": "invoice", "metadata": metadata}},
    }))
}

/// One event of each kind the recording statement tells apart, each for its own purchase.
fn mixed_batch() -> Vec<EventToRecord> {
    vec![
        invoice_event("evt_paid", "invoice.paid", "in_a", json!({})),
        invoice_event(
            "evt_by_metadata",
            "invoice.paid",
            "in_b",
            json!({"creditd_purchase_id": "pur_b"}),
        ),
        invoice_event("evt_voided", "invoice.voided", "in_c", json!({})),
        invoice_event(
            "evt_uncollectible",
            "invoice.marked_uncollectible",
            "in_d",
            json!({}),
        ),
        invoice_event("evt_unmatched", "invoice.paid", "in_nobody", json!({})),
        invoice_event("evt_recorded_before", "invoice.paid", "in_e", json!({})),
        invoice_event("evt_paid_again", "invoice.paid", "in_f", json!({})),
        to_record(json!({
            "id": "evt_ignored", "object": "event", "created": 1_700_000_000, "livemode": false,
            "type": "customer.created", "data": {"object": {"id": "cus_1", "object": "customer"}},
        })),
    ]
}

/// Purchases for the batch, and one event recorded before it (so the batch holds a duplicate).
async fn arrange(db: &PgPool) {
    sqlx::query(
        "INSERT INTO purchases (id, status, customer, amount, currency, livemode, credit, invoice_id,
                                paid_at, credit_grant_id)
         VALUES ('pur_a', 'awaiting_payment', 'cus_1', 100, 'usd', false, '{}', 'in_a', NULL, NULL),
                ('pur_b', 'awaiting_payment', 'cus_1', 100, 'usd', false, '{}', NULL, NULL, NULL),
                ('pur_c', 'awaiting_payment', 'cus_1', 100, 'usd', false, '{}', 'in_c', NULL, NULL),
                ('pur_d', 'awaiting_payment', 'cus_1', 100, 'usd', false, '{}', 'in_d', NULL, NULL),
                ('pur_e', 'awaiting_payment', 'cus_1', 100, 'usd', false, '{}', 'in_e', NULL, NULL),
                ('pur_f', 'granted', 'cus_1', 100, 'usd', false, '{}', 'in_f', now(), 'credgr_f')",
    )
    .execute(db)
    .await
    .unwrap();
    let before = invoice_event("evt_recorded_before", "invoice.paid", "in_e", json!({}));
    events::record_batch(db, &[before]).await.unwrap();
}

/// Everything recording can change, without the clocks.
async fn state(db: &PgPool) -> Value {
    let events: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_array(id, type, invoice_id, metadata_purchase_id, purchase_id, outcome,
                                  source, payload)
         FROM stripe_events ORDER BY id",
    )
    .fetch_all(db)
    .await
    .unwrap();
    let purchases: Vec<Value> = sqlx::query_scalar(
        "SELECT jsonb_build_array(id, status, invoice_id, paid_event_id, paid_at IS NOT NULL,
                                  uncollectible_at IS NOT NULL, next_attempt_at IS NOT NULL, attempts)
         FROM purchases ORDER BY id",
    )
    .fetch_all(db)
    .await
    .unwrap();
    json!({"events": events, "purchases": purchases})
}

#[tokio::test]
async fn a_batch_has_exactly_the_effect_of_its_events_recorded_one_by_one() {
    let ((_, batched), (_, single)) = tokio::join!(fresh_database(), fresh_database());
    arrange(&batched).await;
    arrange(&single).await;
    let batch = mixed_batch();

    let batch_answers = events::record_batch(&batched, &batch).await.unwrap();
    let mut single_answers = Vec::new();
    for item in &batch {
        let mut answer = events::record_batch(&single, std::slice::from_ref(item))
            .await
            .unwrap();
        single_answers.push(answer.remove(0));
    }

    assert_eq!(batch_answers, single_answers);
    assert_eq!(state(&batched).await, state(&single).await);
    // And the statement did what each event asks, so the comparison above compares something.
    let outcomes: Vec<(bool, Option<String>)> = batch_answers
        .iter()
        .map(|r| (r.new, r.outcome.map(|o| o.to_string())))
        .collect();
    assert_eq!(
        outcomes,
        [
            (true, Some("scheduled".into())),
            (true, Some("scheduled".into())),
            (true, Some("canceled".into())),
            (true, Some("noted".into())),
            (true, Some("unmatched".into())),
            (false, None),
            (true, Some("already_granted".into())),
            (true, Some("ignored".into())),
        ]
    );
    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT id, status FROM purchases ORDER BY id")
            .fetch_all(&batched)
            .await
            .unwrap();
    let statuses: Vec<(&str, &str)> = statuses
        .iter()
        .map(|(id, s)| (id.as_str(), s.as_str()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("pur_a", "granting"),
            ("pur_b", "granting"),
            ("pur_c", "canceled"),
            ("pur_d", "awaiting_payment"),
            ("pur_e", "granting"),
            ("pur_f", "granted"),
        ]
    );
}

fn config(database_url: &str) -> DatabaseConfig {
    DatabaseConfig {
        database_url: Secret::from(database_url),
        database_max_connections: 2,
        // Far beyond the test: a timeout here would be a different failure than the one tested.
        database_acquire_timeout_ms: 60_000,
        // One recorder connection: while it is busy, everything else waits in the queue.
        database_event_connections: 1,
        database_statement_timeout_ms: 60_000,
    }
}

/// Recorder backends blocked in the recording statement.
async fn blocked_recordings(db: &PgPool) -> usize {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'
           AND query LIKE '%WITH input AS%'",
    )
    .fetch_one(db)
    .await
    .unwrap();
    n as usize
}

type Answer = tokio::task::JoinHandle<sqlx::Result<Recorded>>;

fn record_in_background(recorder: &Arc<EventRecorder>, item: EventToRecord) -> Answer {
    let recorder = Arc::clone(recorder);
    tokio::spawn(async move { recorder.record(&item.event, &item.raw, &item.source).await })
}

/// Holds the one recorder connection in a statement that blocks, queues `queued` behind it,
/// then lets everything go. Returns the first event's answer and the queued ones'.
async fn record_behind_a_busy_connection(
    database_url: &str,
    db: &PgPool,
    queued: Vec<EventToRecord>,
) -> (sqlx::Result<Recorded>, Vec<sqlx::Result<Recorded>>) {
    let recorder = Arc::new(creditd::db::event_recorder(&config(database_url)).unwrap());
    let mut lock = db.begin().await.unwrap();
    sqlx::query("LOCK TABLE stripe_events IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();

    let first = record_in_background(
        &recorder,
        invoice_event("evt_first", "invoice.paid", "in_first", json!({})),
    );
    eventually("the first event's statement is blocked", || async {
        blocked_recordings(db).await == 1
    })
    .await;
    // One at a time, so that they arrive in the order given (spawned tasks race otherwise).
    let mut answers: Vec<Answer> = Vec::new();
    for item in queued {
        answers.push(record_in_background(&recorder, item));
        let arrived = answers.len();
        eventually("the event waits in the queue", || async {
            recorder.usage().waiting == arrived
        })
        .await;
    }
    lock.rollback().await.unwrap();

    let first = first.await.unwrap();
    let mut rest = Vec::new();
    for answer in answers {
        rest.push(
            tokio::time::timeout(Duration::from_secs(30), answer)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    recorder.close().await;
    (first, rest)
}

/// When each event was recorded: `now()`, the start of the transaction that recorded it.
async fn received_at(db: &PgPool, like: &str) -> Vec<chrono::DateTime<chrono::Utc>> {
    sqlx::query_scalar("SELECT received_at FROM stripe_events WHERE id LIKE $1 ORDER BY id")
        .bind(like)
        .fetch_all(db)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_waiting_for_a_connection_are_recorded_in_one_transaction() {
    let queued: Vec<EventToRecord> = (0..10)
        .map(|i| {
            invoice_event(
                &format!("evt_q{i}"),
                "invoice.paid",
                &format!("in_q{i}"),
                json!({}),
            )
        })
        .collect();
    let (database_url, db) = fresh_database().await;
    let (first, rest) = record_behind_a_busy_connection(&database_url, &db, queued).await;

    assert!(first.unwrap().new);
    assert!(
        rest.iter().all(|r| r.as_ref().is_ok_and(|r| r.new)),
        "{rest:?}"
    );
    let queued_at = received_at(&db, "evt_q%").await;
    assert_eq!(queued_at.len(), 10);
    assert!(
        queued_at.iter().all(|t| *t == queued_at[0]),
        "the queued events were not recorded by one statement: {queued_at:?}"
    );
    assert_ne!(received_at(&db, "evt_first").await, [queued_at[0]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_postgresql_refuses_keeps_no_other_event_of_its_batch_out() {
    // A valid event for serde, but PostgreSQL's text cannot hold NUL. (Webhooks refuse such an
    // event before it is queued, see `ingest::parse_event`; the recorder must not depend on it.)
    let mut queued = vec![invoice_event(
        "evt_nul\u{0}",
        "invoice.paid",
        "in_nul",
        json!({}),
    )];
    queued.extend((0..5).map(|i| {
        invoice_event(
            &format!("evt_ok{i}"),
            "invoice.paid",
            &format!("in_ok{i}"),
            json!({}),
        )
    }));
    let (database_url, db) = fresh_database().await;
    let (first, rest) = record_behind_a_busy_connection(&database_url, &db, queued).await;

    assert!(first.unwrap().new);
    assert!(
        rest[0].is_err(),
        "the NUL event was recorded: {:?}",
        rest[0]
    );
    assert!(
        rest[1..].iter().all(|r| r.as_ref().is_ok_and(|r| r.new)),
        "{rest:?}"
    );
    let recorded: Vec<String> =
        sqlx::query_scalar("SELECT id FROM stripe_events WHERE id LIKE 'evt_ok%' ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        recorded,
        ["evt_ok0", "evt_ok1", "evt_ok2", "evt_ok3", "evt_ok4"]
    );
    // Recorded one by one after the batch failed: each in its own transaction.
    let at = received_at(&db, "evt_ok%").await;
    assert!(at.windows(2).all(|w| w[0] != w[1]), "{at:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_for_the_same_purchase_or_id_never_share_a_statement() {
    let (database_url, db) = fresh_database().await;
    sqlx::query(
        "INSERT INTO purchases (id, status, customer, amount, currency, livemode, credit, invoice_id)
         VALUES ('pur_same', 'awaiting_payment', 'cus_1', 100, 'usd', false, '{}', 'in_same')",
    )
    .execute(&db)
    .await
    .unwrap();
    // Paid and voided for one purchase, and the paid one delivered twice.
    let queued = vec![
        invoice_event("evt_same_paid", "invoice.paid", "in_same", json!({})),
        invoice_event("evt_same_paid", "invoice.paid", "in_same", json!({})),
        invoice_event("evt_same_voided", "invoice.voided", "in_same", json!({})),
    ];
    let (first, rest) = record_behind_a_busy_connection(&database_url, &db, queued).await;
    first.unwrap();
    let results: Vec<Recorded> = rest.into_iter().map(Result::unwrap).collect();

    // In arrival order, each seeing the one before: paid, then a duplicate, then a void that
    // comes too late to cancel a paid purchase.
    assert!(results[0].new);
    assert!(!results[1].new);
    assert!(results[2].new);
    let (status, outcome): (String, String) = sqlx::query_as(
        "SELECT p.status, e.outcome FROM purchases p, stripe_events e
         WHERE p.id = 'pur_same' AND e.id = 'evt_same_voided'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(status, "granting");
    assert_ne!(outcome, "canceled");
    let at = received_at(&db, "evt_same%").await;
    assert_ne!(at[0], at[1], "paid and voided shared a statement");
}

/// Whether the session `pid` is waiting for a lock of the kind `lock` (`advisory`,
/// `transactionid`: another transaction's uncommitted row).
async fn waits_for(db: &PgPool, pid: i32, lock: &str) -> bool {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_stat_activity
                        WHERE pid = $1 AND wait_event_type = 'Lock' AND wait_event = $2)",
    )
    .bind(pid)
    .bind(lock)
    .fetch_one(db)
    .await
    .unwrap()
}

/// Two statements holding copies of the same events in opposite orders (another replica's
/// batch, a re-sync's page) take their locks in one order, so the later waits for the earlier
/// and finds its copies recorded. Taken as given, the second statement would hold the id the
/// first is about to insert while waiting for the first: a deadlock, which PostgreSQL ends after
/// `deadlock_timeout` by aborting one of them (this test then fails with that error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_holding_the_same_events_in_opposite_orders_do_not_deadlock() {
    let (_, db) = fresh_database().await;
    // A session that sets `creditd_test.pause_before` stops just before inserting that event
    // (having inserted those before it) until the test lets it go.
    sqlx::raw_sql(
        r#"
        CREATE FUNCTION pause_before_insert() RETURNS trigger AS $$
        BEGIN
            IF NEW.id = current_setting('creditd_test.pause_before', true) THEN
                PERFORM pg_advisory_xact_lock(4242);
            END IF;
            RETURN NEW;
        END
        $$ LANGUAGE plpgsql;
        CREATE TRIGGER pause_before_insert BEFORE INSERT ON stripe_events
            FOR EACH ROW EXECUTE FUNCTION pause_before_insert();
        "#,
    )
    .execute(&db)
    .await
    .unwrap();
    let mut gate = db.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(4242)")
        .execute(&mut *gate)
        .await
        .unwrap();
    let one = invoice_event("evt_order_1", "invoice.paid", "in_order_1", json!({}));
    let two = invoice_event("evt_order_2", "invoice.paid", "in_order_2", json!({}));

    let mut first = db.acquire().await.unwrap();
    sqlx::query("SET creditd_test.pause_before = 'evt_order_2'")
        .execute(&mut *first)
        .await
        .unwrap();
    let first_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *first)
        .await
        .unwrap();
    let first_batch = vec![one.clone(), two.clone()];
    let first_task =
        tokio::spawn(async move { events::record_batch(&mut *first, &first_batch).await });
    eventually("the first statement inserted one event and paused", || {
        waits_for(&db, first_pid, "advisory")
    })
    .await;

    let mut second = db.acquire().await.unwrap();
    let second_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *second)
        .await
        .unwrap();
    let second_batch = vec![two, one];
    let second_task =
        tokio::spawn(async move { events::record_batch(&mut *second, &second_batch).await });
    eventually("the second statement waits for the first", || {
        waits_for(&db, second_pid, "transactionid")
    })
    .await;

    sqlx::query("SELECT pg_advisory_unlock(4242)")
        .execute(&mut *gate)
        .await
        .unwrap();
    let first = first_task
        .await
        .unwrap()
        .expect("the first statement commits");
    let second = second_task
        .await
        .unwrap()
        .expect("the second statement waits, then commits");
    assert!(first.iter().all(|recorded| recorded.new), "{first:?}");
    assert!(second.iter().all(|recorded| !recorded.new), "{second:?}");
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM stripe_events WHERE id LIKE 'evt_order_%'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(recorded, 2);
}
