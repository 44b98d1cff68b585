//! Times what must not grow with history: the worker's claim, the `/metrics` scrape, the admin
//! lists' first page and the admin purchase detail. `scripts/bench-growth` runs it against a
//! near-empty and a grown database in the same run.
//!
//!   cargo run --release --example growth_probe -- --url http://127.0.0.1:18090 \
//!       --admin-token ... --database-url postgres://.../db --purchase pur_hist000000042
//!
//! Each probe runs `--samples` times one after another (after 3 untimed warm-ups) and prints
//! `PROBE name=.. p50_ms=.. p95_ms=..`. The claim is timed through `creditd::db::work::claim_due`,
//! the worker's own statement on a pool with production's session settings: once with nothing
//! due (a worker's idle poll) and once with 10 purchases made due inside a transaction that is
//! rolled back, so the database is left as it was.

use std::time::{Duration, Instant};

use clap::Parser;
use creditd::config::DatabaseConfig;
use creditd::db::work;
use creditd::secret::Secret;

#[derive(Debug, Parser)]
struct Args {
    /// Base URL of creditd.
    #[arg(long)]
    url: String,
    /// creditd's ADMIN_TOKEN.
    #[arg(long)]
    admin_token: String,
    /// The database creditd uses, for the claim.
    #[arg(long)]
    database_url: String,
    /// A purchase to explain (GET /admin/purchases/{id}).
    #[arg(long)]
    purchase: String,
    #[arg(long, default_value_t = 50)]
    samples: usize,
}

/// Nearest-rank percentile of sorted milliseconds.
fn pct(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn report(name: &str, mut millis: Vec<f64>) {
    millis.sort_by(f64::total_cmp);
    println!(
        "PROBE name={name} p50_ms={:.3} p95_ms={:.3} samples={}",
        pct(&millis, 50.0),
        pct(&millis, 95.0),
        millis.len()
    );
}

async fn time_get(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    samples: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut millis = Vec::with_capacity(samples);
    for i in 0..samples + 3 {
        let started = Instant::now();
        let response = client.get(url).bearer_auth(token).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        anyhow::ensure!(status.is_success(), "GET {url}: {status} {body:?}");
        if i >= 3 {
            millis.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(millis)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let base = args.url.trim_end_matches('/');
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let n = args.samples.max(1);
    for (name, path) in [
        ("metrics", "/metrics".to_string()),
        ("admin_events", "/admin/events?limit=10".to_string()),
        ("admin_purchases", "/admin/purchases?limit=10".to_string()),
        (
            "admin_purchases_failed",
            "/admin/purchases?limit=10&status=failed".to_string(),
        ),
        (
            "admin_purchase_detail",
            format!("/admin/purchases/{}", args.purchase),
        ),
    ] {
        let millis = time_get(&client, &format!("{base}{path}"), &args.admin_token, n).await?;
        report(name, millis);
    }

    // The worker's pool: the same session settings (plans::custom_plans_only) as `creditd serve`.
    let pool = creditd::db::connect(&DatabaseConfig {
        database_url: Secret::from(args.database_url.as_str()),
        database_max_connections: 1,
        database_acquire_timeout_ms: 5_000,
        database_event_connections: 1,
        database_statement_timeout_ms: 10_000,
    })
    .await?;
    let lease = Duration::from_secs(30);
    let mut idle = Vec::with_capacity(n);
    let mut due = Vec::with_capacity(n);
    for i in 0..n + 3 {
        let started = Instant::now();
        let claimed = work::claim_due(&pool, "growth-probe", lease, 10).await?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(
            claimed.is_empty(),
            "the probe claimed real work; nothing may be due"
        );
        if i >= 3 {
            idle.push(elapsed);
        }

        let mut tx = pool.begin().await?;
        let made_due = sqlx::query(
            "UPDATE purchases SET next_attempt_at = now() - interval '1 second'
             WHERE id IN (SELECT id FROM purchases WHERE status = 'granting' ORDER BY id LIMIT 10)",
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let started = Instant::now();
        let claimed = work::claim_due(&mut *tx, "growth-probe", lease, 10).await?;
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        anyhow::ensure!(
            claimed.len() as u64 == made_due,
            "claimed {} of {made_due}",
            claimed.len()
        );
        tx.rollback().await?;
        if i >= 3 && made_due > 0 {
            due.push(elapsed);
        }
    }
    report("claim_idle", idle);
    if !due.is_empty() {
        report("claim_10_due", due);
    }
    Ok(())
}
