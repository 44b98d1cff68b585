//! A hang-up finishes the write (issue 11): clients that disconnect while their event's statement
//! is in flight cost no database connection, and each event is recorded once or not at all.

use serde_json::json;
use sqlx::PgPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::{TestApp, WEBHOOK_SECRET, eventually};
use creditd::sandbox::sign_payload;

const CLIENTS: usize = 100;

fn signed_request(i: usize) -> Vec<u8> {
    let body = json!({
        "id": format!("evt_hangup{i:03}"), "object": "event", "created": chrono::Utc::now().timestamp(),
        "data": {"object": {"id": format!("in_hangup{i:03}"), "object": "invoice", "metadata": {}}},
        "livemode": false, "type": "invoice.paid",
    })
    .to_string();
    let signature = sign_payload(
        WEBHOOK_SECRET,
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    format!(
        "POST /webhooks/stripe HTTP/1.1\r\nHost: creditd\r\nContent-Type: application/json\r\n\
         Stripe-Signature: {signature}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn abandoned(db: &PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT sessions_abandoned FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(db)
    .await
    .unwrap()
}

/// Backends of this database blocked in the recording statement (not, say, a background task of
/// the pool that also waits for the lock).
async fn blocked_backends(db: &PgPool) -> Vec<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'
           AND query LIKE '%WITH input AS%' ORDER BY pid",
    )
    .fetch_all(db)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_hanging_up_mid_request_cost_no_connection_and_no_double_record() {
    // Deadlines far beyond the test's length: here a timeout would fail a statement (and drop its
    // connection) for a reason other than the hang-up.
    let app = TestApp::spawn_with(|config| {
        config.worker_count = 0;
        config.database.database_acquire_timeout_ms = 60_000;
        config.database.database_statement_timeout_ms = 60_000;
    })
    .await;
    let connections = app.services.recorder.usage().max;
    let before = abandoned(&app.db).await;

    // Every recording statement blocks on its insert until the lock goes: in flight, not done.
    let mut lock = app.db.begin().await.unwrap();
    sqlx::query("LOCK TABLE stripe_events IN EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();

    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(&signed_request(i)).await.unwrap();
        clients.push(stream);
    }
    eventually(
        "every recorder connection is blocked in its statement",
        || async { blocked_backends(&app.db).await.len() == connections },
    )
    .await;
    let in_flight = blocked_backends(&app.db).await;

    // Hang up, and wait until the server has closed each connection: it has given up on the
    // request, dropping the handler's future (hyper closes on EOF mid-request by default).
    let hangups = clients.into_iter().map(|mut stream| async move {
        stream.shutdown().await.unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    });
    futures::future::join_all(hangups).await;

    lock.rollback().await.unwrap();
    eventually("the recorder has finished every detached write", || async {
        let usage = app.services.recorder.usage();
        usage.in_use == 0 && usage.waiting == 0 && usage.writers == 0
    })
    .await;

    // The sessions whose statements were in flight are still there, idle, ready for the next event.
    let alive: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1) AND state = 'idle' ORDER BY pid",
    )
    .bind(&in_flight)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(alive, in_flight, "a recorder connection was dropped");
    assert_eq!(abandoned(&app.db).await, before, "sessions were abandoned");

    let counts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT id, count(*) FROM stripe_events WHERE id LIKE 'evt_hangup%' GROUP BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(counts.iter().all(|(_, n)| *n == 1), "{counts:?}");
    assert!(
        counts.len() >= connections,
        "the {connections} writes in flight were not all finished: {counts:?}"
    );
    app.shutdown().await;
}
