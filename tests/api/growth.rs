//! Cost independent of history (issue 11): with a history in the benchmark's shape
//! (scripts/bench/growth-seed.sql, scaled down), every statement a request or a scrape runs
//! reaches its rows through an index, planned on the pool's own session as production plans it.
//! No Seq Scan means no per-request work that grows with the tables; the rates themselves are
//! measured by `scripts/bench-growth`, never asserted here.

use creditd::config::DatabaseConfig;
use creditd::db::{event_listing, purchases, status_counts, work};
use creditd::ids::PurchaseId;
use creditd::purchase::PurchaseStatus;
use creditd::secret::Secret;
use sqlx::{PgConnection, PgPool};
use std::time::Duration;

use crate::harness::fresh_database;

/// Small enough for a test, large enough that a scan is never the cheapest plan.
const EVENTS: i64 = 50_000;
const PURCHASES: i64 = 10_000;

/// The benchmark's seed, with psql's variables filled in and its `VACUUM`s (which cannot run in
/// the multi-statement string) replaced by the `ANALYZE` after it.
async fn seed(db: &PgPool) {
    let script = include_str!("../../scripts/bench/growth-seed.sql")
        .lines()
        .filter(|line| !line.starts_with("\\set") && !line.starts_with("VACUUM"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(":events", &EVENTS.to_string())
        .replace(":purchases", &PURCHASES.to_string())
        .replace(":'payload'", "'{\"object\": \"event\"}'");
    sqlx::raw_sql(&script).execute(db).await.unwrap();
    for table in ["purchases", "stripe_events", "purchase_transitions"] {
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(db)
            .await
            .unwrap();
    }
}

async fn pool(database_url: &str) -> PgPool {
    creditd::db::connect(&DatabaseConfig {
        database_url: Secret::from(database_url),
        // One connection, so the EXPLAIN runs on the session that prepared the statement.
        database_max_connections: 1,
        database_acquire_timeout_ms: 5_000,
        database_event_connections: 1,
        database_statement_timeout_ms: 10_000,
    })
    .await
    .unwrap()
}

/// The plan this session would use now for the prepared statement whose text matches `like`.
async fn explain_prepared(session: &mut PgConnection, like: &str, arguments: &str) -> String {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pg_prepared_statements WHERE statement LIKE $1")
            .bind(like)
            .fetch_all(&mut *session)
            .await
            .unwrap();
    assert_eq!(names.len(), 1, "one prepared statement matches {like:?}");
    let arguments = if arguments.is_empty() {
        String::new()
    } else {
        format!("({arguments})")
    };
    let lines: Vec<String> =
        sqlx::query_scalar(&format!("EXPLAIN EXECUTE {}{arguments}", names[0]))
            .fetch_all(&mut *session)
            .await
            .unwrap();
    lines.join("\n")
}

fn assert_no_scan(what: &str, plan: &str) {
    assert!(!plan.contains("Seq Scan"), "{what} scans a table:\n{plan}");
}

#[tokio::test]
async fn requests_and_scrapes_use_indexes_whatever_the_history() {
    let (database_url, db) = fresh_database().await;
    seed(&db).await;
    let pool = pool(&database_url).await;
    let some_purchase = "pur_hist000000042";
    let some_purchase_id = PurchaseId::parse(some_purchase).unwrap();

    // Run each through its production function first, so it is prepared on the pool's session.
    let events = event_listing::of_purchase(&pool, &some_purchase_id)
        .await
        .unwrap();
    assert!(
        !events.is_empty(),
        "the seeded purchase has its payment event"
    );
    let page = purchases::list(&pool, None, None, None, 11).await.unwrap();
    let page = page.unwrap();
    assert_eq!(page.len(), 11);
    let newest = &page[0];
    let cursor = page[10].id.to_string();
    purchases::list(&pool, None, None, Some(&cursor), 11)
        .await
        .unwrap()
        .unwrap();
    purchases::list(&pool, None, Some(PurchaseStatus::Failed), None, 11)
        .await
        .unwrap()
        .unwrap();
    purchases::list(&pool, Some("cus_hist42"), None, None, 11)
        .await
        .unwrap()
        .unwrap();
    event_listing::page(&pool, None, None, None, 11)
        .await
        .unwrap()
        .unwrap();
    status_counts::by_status(&pool).await.unwrap();
    status_counts::oldest_paid_ungranted_secs(&pool)
        .await
        .unwrap();
    purchases::paid_without_credits(&pool).await.unwrap();
    work::claim_due(&pool, "growth-test", Duration::from_secs(5), 10)
        .await
        .unwrap();

    let mut session = pool.acquire().await.unwrap();
    let plans = [
        (
            "the purchase detail's events",
            explain_prepared(
                &mut session,
                "%metadata_purchase_id = $1%",
                &format!("'{some_purchase}'"),
            )
            .await,
        ),
        (
            "the purchase list's first page",
            explain_prepared(&mut session, "%UNION ALL%", "NULL, NULL, 11").await,
        ),
        (
            "the purchase list's next page",
            explain_prepared(
                &mut session,
                "%UNION ALL%",
                &format!("'{}', '{}', 11", newest.created_at, newest.id),
            )
            .await,
        ),
        (
            "the purchase list of one status",
            explain_prepared(
                &mut session,
                "%WHERE status = $1%",
                "'failed', NULL, NULL, 11",
            )
            .await,
        ),
        (
            "one customer's purchases",
            explain_prepared(
                &mut session,
                "%WHERE customer = $1%",
                "'cus_hist42', NULL, NULL, NULL, 11",
            )
            .await,
        ),
        (
            "the event list's first page",
            explain_prepared(
                &mut session,
                "%(received_at, id) < ($3, $4::text)%",
                "NULL, NULL, NULL, NULL, 11",
            )
            .await,
        ),
        (
            "the paid-without-credits gauge",
            explain_prepared(&mut session, "%paid_at IS NOT NULL AND status IN%", "").await,
        ),
        (
            "the oldest-paid-ungranted gauge",
            explain_prepared(&mut session, "%min(paid_at)%", "").await,
        ),
        (
            "the status counts",
            explain_prepared(&mut session, "%sum(delta)::bigint%", "").await,
        ),
        (
            "the worker's claim",
            explain_prepared(
                &mut session,
                "%FOR UPDATE SKIP LOCKED%",
                "'growth-test', 5.0, 10",
            )
            .await,
        ),
    ];
    for (what, plan) in &plans {
        // purchase_status_deltas is a handful of folded rows; scanning it is the design.
        if *what == "the status counts" {
            assert!(plan.contains("purchase_status_deltas"), "{plan}");
            continue;
        }
        assert_no_scan(what, plan);
    }
    let (_, detail) = &plans[0];
    for index in [
        "stripe_events_paid_invoice",
        "stripe_events_other_invoice",
        "stripe_events_paid_metadata",
    ] {
        assert!(
            detail.contains(index),
            "the detail does not use {index}:\n{detail}"
        );
    }
    let (_, first_page) = &plans[1];
    assert!(
        first_page.contains("purchases_status_created"),
        "the list does not read the status index:\n{first_page}"
    );
    drop(session);

    // The detail lists every event that belongs to the purchase, as the single OR did.
    let canceled = "pur_hist000000900";
    let events = event_listing::of_purchase(&pool, &PurchaseId::parse(canceled).unwrap())
        .await
        .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["invoice.voided"]);
    assert!(matches!(
        purchases::find(&pool, canceled)
            .await
            .unwrap()
            .unwrap()
            .status(),
        PurchaseStatus::Canceled
    ));
}

/// The rewritten list pages exactly like the old single statement: newest first, every purchase
/// once, across statuses, and with each filter.
#[tokio::test]
async fn the_purchase_list_pages_through_every_purchase_once() {
    let (database_url, db) = fresh_database().await;
    seed(&db).await;
    let pool = pool(&database_url).await;
    for (customer, status) in [
        (None, None),
        (None, Some(PurchaseStatus::Failed)),
        (Some("cus_hist7"), None),
        (Some("cus_hist7"), Some(PurchaseStatus::Granted)),
    ] {
        let expected: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM purchases
             WHERE ($1::text IS NULL OR customer = $1) AND ($2::text IS NULL OR status = $2)
             ORDER BY created_at DESC, id DESC LIMIT 1200",
        )
        .bind(customer)
        .bind(status.map(PurchaseStatus::as_str))
        .fetch_all(&db)
        .await
        .unwrap();
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        while seen.len() < expected.len() {
            let page = purchases::list(&pool, customer, status, after.as_deref(), 100)
                .await
                .unwrap()
                .unwrap();
            if page.is_empty() {
                break;
            }
            seen.extend(page.iter().map(|p| p.id.to_string()));
            after = seen.last().cloned();
        }
        seen.truncate(expected.len());
        assert_eq!(seen, expected, "customer {customer:?}, status {status:?}");
    }
}
