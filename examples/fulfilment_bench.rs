//! Fulfilment and catch-up at their limits (issue 11): creditd, in this process, against the
//! in-process fake Stripe over real HTTP and a real PostgreSQL database.
//!
//! Each run registers `--purchases` purchases for open invoices, pays them all at once (the fake
//! delivers the `invoice.paid` webhooks) and waits until every one is granted. It reports:
//! - grants per second while the queue drains (first to last `granted_at`), against the ceiling
//!   `STRIPE_RATE_LIMIT_PER_SEC / Stripe calls per grant` (calls counted by the fake);
//! - purchases, grants and duplicate grants (the fake's grants carrying the same purchase id).
//!
//! In the second run the fake Stripe enforces a limit below creditd's (`--stripe-limit-per-sec`,
//! default 90 % of it) and answers the requests beyond it with 429 `rate_limit`, as Stripe does. Then a re-sync over everything the runs produced (all of it already
//! recorded by webhooks) measures catch-up in events per second.
//!
//! All creditd settings are its own flags and environment variables (`creditd serve --help`),
//! at their production defaults unless given; the Stripe URL and key are the fake's.
//! `scripts/bench-fulfilment` runs it on the private PostgreSQL of scripts/pg-up.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use clap::Parser;
use creditd::app::Application;
use creditd::config::ServeConfig;
use creditd::sandbox::FakeStripe;
use creditd::secret::Secret;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(about = "Fulfilment and re-sync benchmark against the in-process fake Stripe")]
struct Cli {
    #[command(flatten)]
    serve: ServeConfig,
    /// Purchases per run.
    #[arg(long, default_value_t = 1000)]
    purchases: usize,
    /// In the second run, the fake Stripe answers 429 to requests beyond this many per second
    /// (default: 90 % of STRIPE_RATE_LIMIT_PER_SEC, so about one request in ten).
    #[arg(long)]
    stripe_limit_per_sec: Option<u32>,
    /// Longest a run may take before the benchmark gives up.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
}

/// Recreates the database named in `url` (connecting to `postgres` on the same server).
async fn fresh_database(url: &str) -> anyhow::Result<PgPool> {
    let mut admin = url::Url::parse(url).context("DATABASE_URL is a URL")?;
    let name = admin.path().trim_start_matches('/').to_string();
    ensure!(
        name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {name:?}"
    );
    admin.set_path("/postgres");
    let server = PgPool::connect(admin.as_str()).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&server)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&server)
        .await?;
    server.close().await;
    let pool = PgPool::connect(url).await?;
    creditd::db::migrate(&pool).await?;
    Ok(pool)
}

struct Bench {
    fake: FakeStripe,
    db: PgPool,
    http: reqwest::Client,
    base: String,
    api_token: String,
    admin_token: String,
    rate_limit: u32,
    timeout: Duration,
}

/// Stripe calls the fake received from index `from` on, by "METHOD /path" (ids folded) and status.
fn calls_since(fake: &FakeStripe, from: usize) -> (usize, usize, BTreeMap<String, usize>) {
    let requests = fake.requests();
    let mut by_endpoint = BTreeMap::new();
    let mut rate_limited = 0;
    for request in &requests[from.min(requests.len())..] {
        // Ids follow their collection: /v1/invoices/in_123/pay -> /v1/invoices/{id}/pay.
        let parts: Vec<&str> = request.path.split('/').collect();
        let path: Vec<&str> = parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let after = i.checked_sub(1).map(|j| parts[j]);
                if matches!(
                    after,
                    Some("invoices" | "events" | "customers" | "credit_grants")
                ) {
                    "{id}"
                } else {
                    part
                }
            })
            .collect();
        *by_endpoint
            .entry(format!(
                "{} {} {}",
                request.method,
                path.join("/"),
                request.status
            ))
            .or_insert(0) += 1;
        if request.status == 429 {
            rate_limited += 1;
        }
    }
    (
        requests.len() - from.min(requests.len()),
        rate_limited,
        by_endpoint,
    )
}

impl Bench {
    async fn post(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        ensure!(status.is_success(), "POST {path}: {status} {body}");
        Ok(body)
    }

    /// Registers `n` purchases for new open invoices, 16 at a time; returns (purchase, invoice) ids.
    async fn register(&self, n: usize) -> anyhow::Result<Vec<(String, String)>> {
        let mut registered = Vec::with_capacity(n);
        let mut pending = tokio::task::JoinSet::new();
        for i in 0..n {
            let customer = self.fake.create_customer();
            let invoice = self.fake.create_open_invoice(&customer, 2500, "usd", &[]);
            let invoice_id = invoice["id"].as_str().context("invoice id")?.to_string();
            let body = json!({"customer": customer, "amount": 2500, "currency": "usd",
                              "invoice_id": invoice_id});
            let (http, url, token) = (
                self.http.clone(),
                format!("{}/v1/purchases", self.base),
                self.api_token.clone(),
            );
            pending.spawn(async move {
                // A 503 (database busy) is retried, as a client following the API's advice would.
                for _ in 0..20 {
                    let response = http
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await?;
                    let status = response.status();
                    let purchase: Value = response.json().await?;
                    if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
                        tokio::time::sleep(Duration::from_millis(250)).await;
                        continue;
                    }
                    ensure!(
                        status.is_success(),
                        "POST /v1/purchases: {status} {purchase}"
                    );
                    let id = purchase["id"].as_str().context("purchase id")?.to_string();
                    return Ok::<_, anyhow::Error>((id, invoice_id));
                }
                anyhow::bail!("POST /v1/purchases: 503 twenty times")
            });
            if pending.len() >= 16 || i + 1 == n {
                while let Some(done) = pending.join_next().await {
                    registered.push(done??);
                }
            }
        }
        Ok(registered)
    }

    /// One fulfilment run; prints its RESULT line.
    async fn fulfil(&self, label: &str, n: usize, stripe_limit: Option<u32>) -> anyhow::Result<()> {
        let purchases = self.register(n).await?;
        let ids: Vec<String> = purchases.iter().map(|(p, _)| p.clone()).collect();
        let calls_before = self.fake.requests().len();
        // Stripe's own limit, when below creditd's: every request beyond it within a second is
        // answered 429, in proportion to the traffic, as Stripe does.
        self.fake.set_rate_limit(stripe_limit);
        let started = Instant::now();
        // Paid 100 at a time, each batch's webhooks delivered before the next: a queue builds
        // up ahead of the workers as it would after a burst of payments, without sending
        // thousands of webhooks at the same moment (more than the recorder's connections answer
        // within their acquire timeout; this measures granting, not that).
        let payer = {
            let (fake, invoices) = (self.fake.clone(), purchases.clone());
            tokio::spawn(async move {
                for batch in invoices.chunks(100) {
                    for (_, invoice) in batch {
                        fake.pay_invoice(invoice);
                    }
                    fake.wait_for_deliveries().await;
                }
                started.elapsed().as_secs_f64()
            })
        };
        let (granted, unfinished) = loop {
            let (granted, unfinished): (i64, i64) = sqlx::query_as(
                "SELECT count(*) FILTER (WHERE status = 'granted'),
                        count(*) FILTER (WHERE status NOT IN ('granted', 'failed', 'rejected', 'canceled'))
                 FROM purchases WHERE id = ANY($1)",
            )
            .bind(&ids)
            .fetch_one(&self.db)
            .await?;
            if unfinished == 0 || started.elapsed() > self.timeout {
                break (granted, unfinished);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let wall = started.elapsed().as_secs_f64();
        let paid = payer.await?;
        self.fake.set_rate_limit(None);
        self.fake.wait_for_deliveries().await;
        let (first, last): (Option<f64>, Option<f64>) = sqlx::query_as(
            "SELECT extract(epoch FROM min(granted_at))::float8, extract(epoch FROM max(granted_at))::float8
             FROM purchases WHERE id = ANY($1)",
        )
        .bind(&ids)
        .fetch_one(&self.db)
        .await?;
        let drain = last.unwrap_or(0.0) - first.unwrap_or(0.0);
        let grants_per_sec = if drain > 0.0 {
            (granted - 1) as f64 / drain
        } else {
            0.0
        };

        let (calls, rate_limited, by_endpoint) = calls_since(&self.fake, calls_before);
        let wanted: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut grants_per_purchase: BTreeMap<String, usize> = BTreeMap::new();
        for grant in self.fake.grants() {
            if let Some(purchase) = grant["metadata"]["creditd_purchase_id"].as_str()
                && wanted.contains(purchase)
            {
                *grants_per_purchase.entry(purchase.to_string()).or_insert(0) += 1;
            }
        }
        let grants: usize = grants_per_purchase.values().sum();
        let duplicates = grants - grants_per_purchase.len();
        let calls_per_grant = calls as f64 / granted.max(1) as f64;
        let ceiling = f64::from(self.rate_limit) / calls_per_grant;
        for (endpoint, count) in &by_endpoint {
            eprintln!("  {label}: {count:>6}  {endpoint}");
        }
        println!(
            "RESULT run={label} purchases={n} granted={granted} unfinished={unfinished} grants={grants} \
             duplicates={duplicates} lost={lost} wall_s={wall:.2} paid_s={paid:.2} drain_s={drain:.2} \
             grants_per_s={grants_per_sec:.2} stripe_calls={calls} calls_per_grant={calls_per_grant:.3} \
             rate_limited_429={rate_limited} rate_limit={limit} ceiling_grants_per_s={ceiling:.2} \
             of_ceiling={share:.3}",
            lost = n as i64 - granted,
            limit = self.rate_limit,
            share = grants_per_sec / ceiling,
        );
        Ok(())
    }

    /// A re-sync over every event the fake holds since `since`, all recorded already.
    async fn resync(&self, since: i64) -> anyhow::Result<()> {
        self.fake.wait_for_deliveries().await;
        let listed = self.fake.events().len();
        let calls_before = self.fake.requests().len();
        let started = Instant::now();
        let answer = self
            .post("/admin/resync", &self.admin_token, &json!({"since": since}))
            .await?;
        let id = answer["id"].as_str().context("re-sync id")?.to_string();
        let done = loop {
            let body: Value = self
                .http
                .get(format!("{}/admin/resync/{id}?outcomes_limit=0", self.base))
                .bearer_auth(&self.admin_token)
                .send()
                .await?
                .json()
                .await?;
            if body["status"] != "running" || started.elapsed() > self.timeout {
                break body;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let wall = started.elapsed().as_secs_f64();
        ensure!(done["status"] == "completed", "re-sync ended {done}");
        let counts = &done["counts"];
        let seen = counts["seen"].as_i64().unwrap_or(0);
        let (calls, _, _) = calls_since(&self.fake, calls_before);
        println!(
            "RESULT run=resync events_in_fake={listed} seen={seen} new={new} duplicate={duplicate} \
             failed={failed} pages={pages} stripe_calls={calls} wall_s={wall:.2} events_per_s={rate:.0}",
            new = counts["new"],
            duplicate = counts["duplicate"],
            failed = counts["failed"],
            pages = done["pages"],
            rate = seen as f64 / wall,
        );
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let mut config = cli.serve;
    let db = fresh_database(config.database.database_url.expose()).await?;
    let fake = FakeStripe::start().await;
    config.stripe.stripe_api_base = fake.base_url().parse()?;
    config.stripe.stripe_secret_key = Secret::from(FakeStripe::SECRET_KEY);
    config.listen_addr = "127.0.0.1:0".parse()?;
    let rate_limit = config.stripe.stripe_rate_limit_per_sec;
    let webhook_secret = config.stripe_webhook_secret.expose().to_string();
    let bench = Bench {
        fake: fake.clone(),
        db,
        http: reqwest::Client::new(),
        base: String::new(),
        api_token: config.api_token.expose().to_string(),
        admin_token: config.admin_token.expose().to_string(),
        rate_limit,
        timeout: Duration::from_secs(cli.timeout_secs),
    };
    let app = Application::build(config).await?;
    let addr = app.local_addr();
    let stop = CancellationToken::new();
    let server = tokio::spawn(app.run_until_stopped(stop.clone()));
    fake.set_webhook_endpoint(
        &format!("http://{addr}/webhooks/stripe"),
        &[&webhook_secret],
    );
    // Stripe retries a failed delivery for days; a compressed schedule keeps that promise here.
    fake.retry_failed_deliveries(&[
        Duration::from_secs(1),
        Duration::from_secs(2),
        Duration::from_secs(5),
    ]);
    let bench = Bench {
        base: format!("http://{addr}"),
        ..bench
    };

    let since = fake.now() - 60;
    bench.fulfil("clean", cli.purchases, None).await?;
    bench
        .fulfil(
            "stripe_429",
            cli.purchases,
            Some(
                cli.stripe_limit_per_sec
                    .unwrap_or(rate_limit * 9 / 10)
                    .max(1),
            ),
        )
        .await?;
    bench.resync(since).await?;

    stop.cancel();
    server.await??;
    Ok(())
}
