//! How event payloads are stored (migration 0012): the JSON Stripe sent, byte for byte, compressed
//! with lz4; and the migration that got there keeps what was recorded and the release before it.

use std::path::PathBuf;

use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::migrate::Migrator;

use crate::harness::{TestApp, unmigrated_database};
use creditd::sandbox::invoice_paid_event;

/// The first migration that stores payloads as json.
const JSON_PAYLOADS: i64 = 12;

/// Above PostgreSQL's TOAST threshold (about 2 KB), so the row's payload is compressed.
const COMPRESSED_SIZE: usize = 2_100;

async fn payload_storage(db: &PgPool) -> (String, String) {
    sqlx::query_as(
        "SELECT format_type(atttypid, atttypmod), attcompression::text FROM pg_attribute
         WHERE attrelid = 'stripe_events'::regclass AND attname = 'payload'",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

/// Posts `body` (the event `id`), signed, and answers the payload as stored: its text and its
/// compression (None when PostgreSQL did not compress it).
async fn record(app: &TestApp, id: &str, body: &str) -> (String, Option<String>) {
    let (status, answer) = app.post_signed_body(body.as_bytes().to_vec()).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{answer}");
    sqlx::query_as(
        "SELECT payload::text, pg_column_compression(payload) FROM stripe_events WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_recorded_payload_is_the_json_stripe_sent_byte_for_byte_compressed_with_lz4() {
    let app = TestApp::spawn().await;
    let (_, invoice) = app.purchase_for_new_invoice(5000).await;
    let mut event = invoice_paid_event(&invoice);
    // Key order and spacing jsonb would normalise away.
    event["zz_first_in_text"] = json!("kept where it was");
    let body = format!(
        "{{ \"zz_first_in_text\" :\"kept where it was\",\n{}",
        &serde_json::to_string_pretty(&event).unwrap()[1..]
    );
    assert!(body.len() > COMPRESSED_SIZE, "{} bytes", body.len());
    let (stored, compression) = record(&app, event["id"].as_str().unwrap(), &body).await;
    assert_eq!(stored, body);
    assert_eq!(compression.as_deref(), Some("lz4"));
    assert_eq!(
        payload_storage(&app.db).await,
        ("json".to_owned(), "l".to_owned())
    );
}

/// Valid JSON that `jsonb` refuses (a lone surrogate escape in a string creditd never reads, a
/// number past `numeric`'s range) is recorded as received: as `jsonb`, such an event failed its
/// insert on every delivery and was answered 503 until Stripe gave up.
#[tokio::test]
async fn valid_json_that_jsonb_refused_is_recorded_as_received() {
    let app = TestApp::spawn().await;
    let id = format!("evt_{}", &creditd::purchase::new_purchase_id()[4..]);
    let body = format!(
        r#"{{"id":"{id}","object":"event","api_version":"2026-07-29.dahlia","created":1800000000,"livemode":false,"pending_webhooks":1,"request":{{"id":null,"idempotency_key":null}},"type":"customer.updated","data":{{"object":{{"id":"cus_1","object":"customer","name":"half a pair \ud83d","score":1e999999}}}}}}"#
    );
    assert_eq!(record(&app, &id, &body).await.0, body);
}

/// The migrations before [`JSON_PAYLOADS`], as files in a directory of their own.
fn migrations_before_json_payloads() -> PathBuf {
    let source = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"));
    let target = std::env::temp_dir().join(format!(
        "creditd-migrations-{}",
        &creditd::purchase::new_purchase_id()[4..]
    ));
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let version: i64 = name.split('_').next().unwrap().parse().unwrap();
        if version < JSON_PAYLOADS {
            std::fs::copy(&path, target.join(name)).unwrap();
        }
    }
    target
}

fn big_payload(id: &str) -> Value {
    let lines: Vec<Value> = (0..40)
        .map(|i| json!({"id": format!("il_{i}"), "amount": 100 * i, "description": "Prepaid credits"}))
        .collect();
    json!({"id": id, "object": "event", "type": "customer.updated",
           "data": {"object": {"id": "cus_1", "lines": lines}}})
}

/// Events the release before 0012 recorded survive its rewrite, now stored the new way; and the
/// statements that release runs (it casts payloads to jsonb, prunes with `'null'::jsonb` and
/// decodes what it reads as JSON) still work against the new column, so rolling back is safe.
#[tokio::test]
async fn migrating_to_json_payloads_keeps_recorded_events_and_the_release_before_working() {
    let (_url, db) = unmigrated_database().await;
    let directory = migrations_before_json_payloads();
    Migrator::new(directory.as_path())
        .await
        .unwrap()
        .run(&db)
        .await
        .unwrap();
    std::fs::remove_dir_all(&directory).unwrap();
    assert_eq!(payload_storage(&db).await.0, "jsonb");

    // The release before's recording insert and pruning update, as it runs them.
    let record_as_before = |id: &'static str| {
        sqlx::query(
            "INSERT INTO stripe_events (id, type, livemode, stripe_created, outcome, source, payload)
             VALUES ($1, 'customer.updated', false, 0, 'ignored', 'webhook', CAST($2 AS jsonb))",
        )
        .bind(id)
        .bind(big_payload(id).to_string())
        .execute(&db)
    };
    let prune_as_before = |id: &'static str| {
        sqlx::query(
            "UPDATE stripe_events SET payload = 'null'::jsonb, payload_pruned_at = now()
             WHERE id = $1",
        )
        .bind(id)
        .execute(&db)
    };
    // What this release reads back (the release before decodes it the same way: sqlx's `Json`).
    let stored = |id: &'static str| {
        let db = &db;
        async move {
            creditd::db::events::find(db, id)
                .await
                .unwrap()
                .expect("recorded")
                .payload
                .0
        }
    };
    record_as_before("evt_before_kept").await.unwrap();
    record_as_before("evt_before_pruned").await.unwrap();
    prune_as_before("evt_before_pruned").await.unwrap();

    creditd::db::migrate(&db).await.unwrap();
    assert_eq!(
        payload_storage(&db).await,
        ("json".to_owned(), "l".to_owned())
    );
    assert_eq!(
        stored("evt_before_kept").await,
        big_payload("evt_before_kept")
    );
    let compression: Option<String> = sqlx::query_scalar(
        "SELECT pg_column_compression(payload) FROM stripe_events WHERE id = 'evt_before_kept'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(compression.as_deref(), Some("lz4"), "rewritten with lz4");
    assert_eq!(stored("evt_before_pruned").await, Value::Null);

    // After the upgrade, the release before still records and prunes.
    record_as_before("evt_after").await.unwrap();
    assert_eq!(stored("evt_after").await, big_payload("evt_after"));
    prune_as_before("evt_after").await.unwrap();
    assert_eq!(stored("evt_after").await, Value::Null);
}
