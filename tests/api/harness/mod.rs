//! The test harness: a fresh database per test, a fake Stripe, and creditd in-process or as a real process.

pub mod process;
pub mod receiver;
pub mod stripe_proxy;
pub mod tcp_proxy;

use std::net::SocketAddr;
use std::time::Duration;

use creditd::app::Application;
use creditd::config::{DatabaseConfig, OutboundConfig, PolicyConfig, ServeConfig, StripeConfig};
use creditd::secret::Secret;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use creditd::sandbox::{FakeStripe, sign_payload};

pub const WEBHOOK_SECRET: &str = "whsec_creditd_test_secret_1";
pub const API_TOKEN: &str = "api-token-for-creditd-tests";
pub const ADMIN_TOKEN: &str = "admin-token-for-creditd-tests";

/// How long a test waits for a condition before failing; generous, since CI machines are slow.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A new, empty, migrated database for one test. Needs `DATABASE_URL` pointing at a server where
/// we may create databases (`scripts/test` provides one).
pub async fn fresh_database() -> (String, PgPool) {
    let (url, pool) = unmigrated_database().await;
    creditd::db::migrate(&pool)
        .await
        .expect("migrate the test database");
    (url, pool)
}

/// A new database with no schema at all, for tests of the migrations themselves.
pub async fn unmigrated_database() -> (String, PgPool) {
    let admin_url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a PostgreSQL server; run the tests with scripts/test");
    let admin = PgPool::connect(&admin_url)
        .await
        .expect("connect to the admin database");
    let name = format!(
        "creditd_test_{}",
        &creditd::purchase::new_purchase_id()[4..20].to_lowercase()
    );
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let mut url = url::Url::parse(&admin_url).expect("DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    let pool = PgPool::connect(url.as_str())
        .await
        .expect("connect to the test database");
    (url.to_string(), pool)
}

/// Settings tuned so tests run fast: short retries, short polls.
pub fn test_config(database_url: &str, stripe: &FakeStripe) -> ServeConfig {
    ServeConfig {
        database: DatabaseConfig {
            database_url: Secret::from(database_url),
            database_max_connections: 10,
            database_acquire_timeout_ms: 2000,
            database_event_connections: 4,
            database_statement_timeout_ms: 3000,
        },
        stripe: StripeConfig {
            stripe_secret_key: Secret::from(FakeStripe::SECRET_KEY),
            stripe_api_base: stripe.base_url().parse().unwrap(),
            stripe_rate_limit_per_sec: 200,
            stripe_max_network_retries: 2,
            // Short, so that a 5 s lease outlasts a request with its retries (see `bounds`).
            stripe_timeout_ms: 1_000,
            stripe_retry_base_ms: 10,
            stripe_retry_max_ms: 100,
            stripe_read_share_percent: 25,
            stripe_read_max_wait_ms: 1_000,
        },
        stripe_webhook_secret: Secret::from(WEBHOOK_SECRET),
        api_token: Secret::from(API_TOKEN),
        admin_token: Secret::from(ADMIN_TOKEN),
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        webhook_tolerance_secs: 300,
        webhook_max_body_bytes: 1024 * 1024,
        worker_count: 2,
        worker_poll_interval_ms: 50,
        policy: PolicyConfig {
            worker_lease_secs: 5,
            fulfilment_max_attempts: 5,
            fulfilment_retry_base_ms: 50,
            fulfilment_retry_max_secs: 1,
            unknown_outcome_settle_secs: 1,
            reversal_policy: creditd::reversal::ReversalPolicy::Reverse,
            auto_topup_sweep_secs: 300,
            auto_topup_cooldown_secs: 0,
        },
        shutdown_drain_secs: 5,
        // Tests that need the sweeper shorten this; elsewhere it stays out of the way.
        sweeper_interval_secs: 300,
        sweeper_batch: 50,
        http_header_read_timeout_ms: 5_000,
        http_request_timeout_ms: 10_000,
        event_payload_retention_days: 30,
        // Receivers in tests are http on 127.0.0.1; retries come quickly.
        outbound: OutboundConfig {
            outbound_worker_count: 2,
            outbound_retry_schedule: "50ms,50ms,50ms".into(),
            outbound_timeout_ms: 1_000,
            outbound_allow_http: true,
            outbound_allow_private_networks: true,
            outbound_disable_after_secs: 5 * 86_400,
            outbound_secret_grace_secs: 86_400,
        },
    }
}

/// creditd running in this process against its own database and fake Stripe.
pub struct TestApp {
    pub addr: SocketAddr,
    pub db: PgPool,
    pub database_url: String,
    pub stripe: FakeStripe,
    pub http: reqwest::Client,
    /// The app's own handles, for driving a worker step deterministically with [`TestApp::drain`].
    pub services: creditd::services::Services,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut ServeConfig)) -> TestApp {
        let stripe = FakeStripe::start().await;
        let (database_url, db) = fresh_database().await;
        let mut config = test_config(&database_url, &stripe);
        adjust(&mut config);
        Self::start(config, stripe, database_url, db).await
    }

    /// creditd with no background workers: tests run every worker step with [`TestApp::drain`].
    pub async fn spawn_without_workers() -> TestApp {
        Self::spawn_with(|config| config.worker_count = 0).await
    }

    /// Runs every due purchase through one attempt after another on this task until none is due.
    pub async fn drain(&self) -> Vec<creditd::attempt::AttemptOutcome> {
        creditd::worker::drain(&self.services, "test-drain")
            .await
            .expect("the database answers")
    }

    /// A second creditd on the same database and fake Stripe, like another replica.
    pub async fn replica(&self) -> TestApp {
        let config = test_config(&self.database_url, &self.stripe);
        Self::start(
            config,
            self.stripe.clone(),
            self.database_url.clone(),
            self.db.clone(),
        )
        .await
    }

    async fn start(
        config: ServeConfig,
        stripe: FakeStripe,
        database_url: String,
        db: PgPool,
    ) -> TestApp {
        let app = Application::build(config).await.expect("creditd builds");
        let addr = app.local_addr();
        let services = app.state().services.clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn(app.run_until_stopped(stop.clone()));
        stripe.set_webhook_endpoint(&format!("http://{addr}/webhooks/stripe"), &[WEBHOOK_SECRET]);
        TestApp {
            addr,
            db,
            database_url,
            stripe,
            http: reqwest::Client::new(),
            services,
            stop,
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops creditd and waits until it has drained.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.await
                .expect("creditd task")
                .expect("creditd stopped cleanly");
        }
    }

    /// Signs and posts an event as Stripe would, now.
    pub async fn post_webhook(&self, event: &Value) -> (StatusCode, Value) {
        self.post_signed_body(serde_json::to_vec(event).unwrap())
            .await
    }

    /// Signs and posts a body exactly as given (for bodies `serde_json` would not write), now.
    pub async fn post_signed_body(&self, body: Vec<u8>) -> (StatusCode, Value) {
        let header = sign_payload(WEBHOOK_SECRET, chrono::Utc::now().timestamp(), &body);
        self.post_webhook_raw(body, Some(&header)).await
    }

    pub async fn post_webhook_raw(
        &self,
        body: Vec<u8>,
        signature: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.post(self.url("/webhooks/stripe")).body(body);
        if let Some(signature) = signature {
            request = request.header("Stripe-Signature", signature);
        }
        json_response(request.send().await.expect("webhook request")).await
    }

    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        json_response(request.send().await.expect("api request")).await
    }

    pub async fn post_purchase(
        &self,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .post(self.url("/v1/purchases"))
            .bearer_auth(API_TOKEN)
            .json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        json_response(request.send().await.expect("purchase request")).await
    }

    pub async fn get_purchase(&self, id: &str) -> Value {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("/v1/purchases/{id}"),
                None,
                Some(API_TOKEN),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Registers a purchase for an existing open invoice of a new customer.
    pub async fn purchase_for_new_invoice(&self, amount: i64) -> (Value, Value) {
        let customer = self.stripe.create_customer();
        let invoice = self
            .stripe
            .create_open_invoice(&customer, amount, "usd", &[]);
        let body = json!({"customer": customer, "amount": amount, "currency": "usd", "invoice_id": invoice["id"]});
        let (status, purchase) = self.post_purchase(&body, None).await;
        assert_eq!(status, StatusCode::CREATED, "{purchase}");
        (purchase, invoice)
    }

    /// Waits until the purchase reaches `status`, failing on a different final status.
    pub async fn wait_for_status(&self, purchase_id: &str, status: &str) -> Value {
        wait_for_purchase_status(&self.db, purchase_id, status).await;
        self.get_purchase(purchase_id).await
    }

    /// The Prometheus text creditd serves now.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Every row of every table creditd writes, to compare before and after a rejected request.
    pub async fn snapshot(&self) -> Value {
        database_snapshot(&self.db).await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn json_response(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Polls the database until the purchase has `status`. Final statuses other than the one awaited
/// end the wait at once, with the purchase's last error.
pub async fn wait_for_purchase_status(db: &PgPool, purchase_id: &str, status: &str) {
    const FINAL: &[&str] = &["granted", "failed", "rejected", "canceled"];
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, last_error FROM purchases WHERE id = $1")
                .bind(purchase_id)
                .fetch_optional(db)
                .await
                .unwrap();
        if let Some((current, error)) = &row {
            if current == status {
                return;
            }
            assert!(
                !FINAL.contains(&current.as_str()),
                "purchase {purchase_id} is {current} ({error:?}), wanted {status}"
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "purchase {purchase_id} never became {status}: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits for an arbitrary condition, polling; fails with `what` after [`PATIENCE`].
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn database_snapshot(db: &PgPool) -> Value {
    let mut snapshot = serde_json::Map::new();
    for table in [
        "purchases",
        "purchase_transitions",
        "stripe_events",
        "stripe_calls",
        "resyncs",
        "resync_events",
        "admin_audit",
    ] {
        let rows: (Option<Value>,) = sqlx::query_as(&format!(
            "SELECT json_agg(t ORDER BY t::text) FROM {table} t"
        ))
        .fetch_one(db)
        .await
        .unwrap();
        snapshot.insert(table.into(), rows.0.unwrap_or(Value::Null));
    }
    Value::Object(snapshot)
}
