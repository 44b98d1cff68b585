//! Plans that cannot go bad (issue 11): with the tables analyzed while empty and then grown, the
//! hot statements, prepared on creditd's own sessions, still reach rows through their indexes.

use creditd::config::DatabaseConfig;
use creditd::db::events::EventToRecord;
use creditd::db::recording_session::REPLAN_EVERY;
use creditd::db::{recorder::EventRecorder, work};
use creditd::secret::Secret;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;

use crate::harness::fresh_database;

/// Rows added after the analyze: enough that a Seq Scan is plainly the wrong plan.
const GROWN: i64 = 20_000;

fn config(database_url: &str) -> DatabaseConfig {
    DatabaseConfig {
        database_url: Secret::from(database_url),
        // One pooled connection, so the EXPLAIN runs where the claim was prepared.
        database_max_connections: 1,
        database_acquire_timeout_ms: 2_000,
        database_event_connections: 1,
        database_statement_timeout_ms: 5_000,
    }
}

/// The cliff's starting point: statistics that say "empty", frozen (no autovacuum analyze).
async fn analyze_while_empty(db: &PgPool) {
    for table in ["stripe_events", "purchases"] {
        sqlx::query(&format!(
            "ALTER TABLE {table} SET (autovacuum_enabled = false)"
        ))
        .execute(db)
        .await
        .unwrap();
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(db)
            .await
            .unwrap();
    }
}

/// History the statistics do not know about.
async fn grow(db: &PgPool) {
    sqlx::query(
        "INSERT INTO stripe_events (id, type, livemode, stripe_created, invoice_id, outcome, source, payload)
         SELECT 'evt_grown' || i, 'invoice.paid', false, 0, 'in_grown' || i, 'unmatched', 'webhook', '{}'
         FROM generate_series(1, $1) i",
    )
    .bind(GROWN)
    .execute(db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO purchases (id, status, customer, amount, currency, livemode, credit, invoice_id,
                                next_attempt_at)
         SELECT 'pur_grown' || i, CASE WHEN i % 100 = 0 THEN 'granting' ELSE 'awaiting_payment' END,
                'cus_grown', 100, 'usd', false, '{}', 'in_grown' || i,
                CASE WHEN i % 100 = 0 THEN now() + interval '1 hour' END
         FROM generate_series(1, $1) i",
    )
    .bind(GROWN)
    .execute(db)
    .await
    .unwrap();
}

/// The plan the session would use now for its prepared statement whose text matches `like`.
async fn explain_prepared(session: &mut PgConnection, like: &str, arguments: &str) -> String {
    let name: String =
        sqlx::query_scalar("SELECT name FROM pg_prepared_statements WHERE statement LIKE $1")
            .bind(like)
            .fetch_one(&mut *session)
            .await
            .expect("the statement is prepared on this session");
    let lines: Vec<String> = sqlx::query_scalar(&format!("EXPLAIN EXECUTE {name}({arguments})"))
        .fetch_all(&mut *session)
        .await
        .unwrap();
    lines.join("\n")
}

fn event(
    i: usize,
) -> (
    creditd::stripe::types::Event,
    Box<serde_json::value::RawValue>,
) {
    let body = serde_json::json!({
        "id": format!("evt_probe{i}"), "object": "event", "created": 1_700_000_000,
        "data": {"object": {"id": format!("in_probe{i}"), "object": "invoice", "metadata": {}}},
        "livemode": false, "type": "invoice.paid",
    });
    creditd::ingest::parse_event(body.to_string().as_bytes()).unwrap()
}

/// Fails unless every index the plan reads is read by a condition on its leading column, for
/// one row at a time: the primary key of `stripe_events`, the primary and invoice keys of
/// `purchases`. A scan of another index (one whose leading column is not the id, searched
/// whole) or of an index without an `Index Cond` (read whole, then joined) costs O(table).
fn assert_index_lookups_only(plan: &str) {
    const LOOKUPS: [&str; 3] = [
        "stripe_events_pkey",
        "purchases_pkey",
        "purchases_invoice_id_key",
    ];
    assert!(!plan.contains("Seq Scan"), "a sequential scan:\n{plan}");
    let lines: Vec<&str> = plan.lines().collect();
    let mut scans = 0;
    for (at, line) in lines.iter().enumerate() {
        let Some(index) = line
            .split_once(" using ")
            .or_else(|| line.split_once("Bitmap Index Scan on "))
            .filter(|_| line.contains("Index"))
            .and_then(|(_, rest)| rest.split_whitespace().next())
        else {
            continue;
        };
        scans += 1;
        assert!(LOOKUPS.contains(&index), "a scan of {index}:\n{plan}");
        let depth = line.len() - line.trim_start().len();
        let has_condition = lines[at + 1..]
            .iter()
            .take_while(|l| l.len() - l.trim_start().len() > depth)
            .any(|l| l.trim_start().starts_with("Index Cond:"));
        assert!(has_condition, "{index} read whole:\n{plan}");
    }
    assert!(scans >= 2, "no index lookups at all:\n{plan}");
}

#[tokio::test]
async fn recording_looks_up_by_index_after_an_analyze_of_the_empty_table() {
    let (database_url, db) = fresh_database().await;
    analyze_while_empty(&db).await;
    let config = config(&database_url);
    let recorder: EventRecorder = creditd::db::event_recorder(&config).unwrap();
    let mut session = recorder.connect().await.unwrap();
    // Past the five executions after which PostgreSQL may switch to a cached generic plan.
    for i in 0..10 {
        let (event, raw) = event(i);
        session
            .record_batch(&[EventToRecord::new(&event, &raw, "webhook")])
            .await
            .unwrap();
    }
    grow(&db).await;
    // The statements a session runs on one plan: it has planned again since the tables grew.
    for i in 10..10 + REPLAN_EVERY as usize {
        let (event, raw) = event(i);
        session
            .record_batch(&[EventToRecord::new(&event, &raw, "webhook")])
            .await
            .unwrap();
    }

    let plan = explain_prepared(
        session.connection(),
        "%INSERT INTO stripe_events%",
        "'{evt_probe}', '{invoice.paid}', '{false}', '{0}', '{in_grown77}', '{pur_grown77}', \
         '{webhook}', '{\"{}\"}', '{paid}'",
    )
    .await;
    assert_index_lookups_only(&plan);
    session.close().await.unwrap();
}

#[tokio::test]
async fn claiming_uses_the_due_index_after_an_analyze_of_the_empty_table() {
    let (database_url, db) = fresh_database().await;
    analyze_while_empty(&db).await;
    let pool = creditd::db::connect(&config(&database_url)).await.unwrap();
    for _ in 0..10 {
        let claimed = work::claim_due(&pool, "plans-test", Duration::from_secs(5), 10)
            .await
            .unwrap();
        assert!(claimed.is_empty());
    }
    grow(&db).await;

    let mut session = pool.acquire().await.unwrap();
    let plan = explain_prepared(
        &mut session,
        "%FOR UPDATE SKIP LOCKED%",
        "'plans-test', 5.0, 10",
    )
    .await;
    assert!(!plan.contains("Seq Scan"), "a sequential scan:\n{plan}");
    assert!(plan.contains("purchases_due"), "no due-index scan:\n{plan}");
}
