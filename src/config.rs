//! Every setting creditd reads: environment variable, flag, documented default, validated at start-up.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use url::Url;

pub use crate::outbound::config::OutboundConfig;

use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::stripe::{ClientSettings, StripeClient};

/// The database settings, shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// PostgreSQL connection URL.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Secret,
    /// Most connections one process opens.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10)]
    pub database_max_connections: u32,
    /// How long a request waits for a free connection before failing; webhooks then answer 503
    /// quickly so Stripe retries, instead of hanging past Stripe's timeout.
    #[arg(long, env = "DATABASE_ACQUIRE_TIMEOUT_MS", default_value_t = 2000)]
    pub database_acquire_timeout_ms: u64,
    /// Connections reserved for recording webhook events, beside the pool. Events that find them
    /// all busy share the next statement (group commit), so a few connections carry a flood:
    /// `scripts/bench-webhooks` recorded more events per second with 2–4 than with 8 or 16.
    #[arg(long, env = "DATABASE_EVENT_CONNECTIONS", default_value_t = 4)]
    pub database_event_connections: usize,
    /// Longest one webhook's recording statement may run, in milliseconds. PostgreSQL cancels it
    /// (`statement_timeout`) and creditd drops the connection a moment later, so a stalled or
    /// half-open connection cannot hold a recorder slot while Stripe waits.
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT_MS", default_value_t = 3000)]
    pub database_statement_timeout_ms: u64,
}

impl DatabaseConfig {
    pub fn validate(&self) -> Result<(), String> {
        crate::bounds::database(self)
    }

    /// Connections one process may open: the pool plus the webhook recorder's own.
    pub fn connections_per_process(&self) -> u64 {
        u64::from(self.database_max_connections) + self.database_event_connections as u64
    }
}

/// How creditd reaches Stripe; shared by the server and the admin commands.
#[derive(Debug, Clone, Args)]
pub struct StripeConfig {
    /// Stripe secret (or restricted) API key.
    #[arg(long, env = "STRIPE_SECRET_KEY", hide_env_values = true)]
    pub stripe_secret_key: Secret,
    /// Base URL of the Stripe API.
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    pub stripe_api_base: Url,
    /// Stripe requests per second from this process (Stripe's test-mode limit is 25 per account).
    #[arg(long, env = "STRIPE_RATE_LIMIT_PER_SEC", default_value_t = 20)]
    pub stripe_rate_limit_per_sec: u32,
    /// Retries of one Stripe request on connection errors, 409, 429 and 5xx.
    #[arg(long, env = "STRIPE_MAX_NETWORK_RETRIES", default_value_t = 2)]
    pub stripe_max_network_retries: u32,
    /// Timeout of one Stripe HTTP request, in milliseconds.
    #[arg(long, env = "STRIPE_TIMEOUT_MS", default_value_t = 5_000)]
    pub stripe_timeout_ms: u64,
    /// First delay between network retries, in milliseconds (doubles, with jitter).
    #[arg(long, env = "STRIPE_RETRY_BASE_MS", default_value_t = 500)]
    pub stripe_retry_base_ms: u64,
    /// Longest delay before a network retry, in milliseconds; also caps Stripe's `Retry-After`.
    #[arg(long, env = "STRIPE_RETRY_MAX_MS", default_value_t = 3_000)]
    pub stripe_retry_max_ms: u64,
    /// Percent of STRIPE_RATE_LIMIT_PER_SEC that proxied reads (credit balances) may use; grants
    /// and funding always come first.
    #[arg(long, env = "STRIPE_READ_SHARE_PERCENT", default_value_t = 25)]
    pub stripe_read_share_percent: u32,
    /// Longest a proxied read waits for its share before answering 503 `stripe_busy`, in ms.
    #[arg(long, env = "STRIPE_READ_MAX_WAIT_MS", default_value_t = 1_000)]
    pub stripe_read_max_wait_ms: u64,
}

impl StripeConfig {
    pub fn validate(&self) -> Result<(), String> {
        let key = self.stripe_secret_key.expose();
        if !(key.starts_with("sk_") || key.starts_with("rk_")) {
            return Err(
                "STRIPE_SECRET_KEY must be a Stripe secret key (sk_...) or restricted key (rk_...)"
                    .into(),
            );
        }
        if !matches!(self.stripe_api_base.scheme(), "http" | "https") {
            return Err("STRIPE_API_BASE must be an http(s) URL".into());
        }
        crate::bounds::stripe(self)
    }

    /// Whether the API key is a live-mode key; paid invoices must match it.
    pub fn livemode(&self) -> bool {
        let key = self.stripe_secret_key.expose();
        key.starts_with("sk_live_") || key.starts_with("rk_live_")
    }

    pub fn settings(&self) -> ClientSettings {
        ClientSettings {
            api_base: self.stripe_api_base.clone(),
            secret_key: self.stripe_secret_key.clone(),
            timeout: Duration::from_millis(self.stripe_timeout_ms),
            max_network_retries: self.stripe_max_network_retries,
            retry_base: Duration::from_millis(self.stripe_retry_base_ms),
            retry_max: Duration::from_millis(self.stripe_retry_max_ms),
            rate_limit_per_sec: self.stripe_rate_limit_per_sec,
            read_share_percent: self.stripe_read_share_percent,
            read_max_wait: Duration::from_millis(self.stripe_read_max_wait_ms),
        }
    }

    pub fn client(&self, metrics: Metrics) -> anyhow::Result<StripeClient> {
        StripeClient::new(self.settings(), metrics)
    }
}

/// Everything `creditd serve` needs.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub stripe: StripeConfig,
    /// Webhook signing secrets, comma-separated; more than one while rotating.
    #[arg(long, env = "STRIPE_WEBHOOK_SECRET", hide_env_values = true)]
    pub stripe_webhook_secret: Secret,
    /// Bearer token for /v1/*.
    #[arg(long, env = "API_TOKEN", hide_env_values = true)]
    pub api_token: Secret,
    /// Bearer token for /admin/*.
    #[arg(long, env = "ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Secret,
    /// Address the HTTP server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "0.0.0.0:8080")]
    pub listen_addr: SocketAddr,
    /// Oldest (and furthest in the future) webhook timestamp accepted, in seconds.
    #[arg(long, env = "WEBHOOK_TOLERANCE_SECS", default_value_t = 300)]
    pub webhook_tolerance_secs: u64,
    /// Largest webhook body accepted, in bytes.
    #[arg(long, env = "WEBHOOK_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub webhook_max_body_bytes: usize,
    /// Fulfilment workers in this process. 0 makes a replica that only records webhooks and
    /// serves the API, leaving grants to replicas that have workers.
    #[arg(long, env = "WORKER_COUNT", default_value_t = 4)]
    pub worker_count: usize,
    /// How often idle workers look for due work that another replica scheduled, in milliseconds.
    #[arg(long, env = "WORKER_POLL_INTERVAL_MS", default_value_t = 1000)]
    pub worker_poll_interval_ms: u64,
    #[command(flatten)]
    pub policy: PolicyConfig,
    /// How long shutdown waits for in-flight requests and workers, in seconds.
    #[arg(long, env = "SHUTDOWN_DRAIN_SECS", default_value_t = 20)]
    pub shutdown_drain_secs: u64,
    /// How often the sweeper asks Stripe whether unpaid purchases' invoices were paid after all
    /// (covers `invoice.paid` events that were never delivered), in seconds.
    #[arg(long, env = "SWEEPER_INTERVAL_SECS", default_value_t = 300)]
    pub sweeper_interval_secs: u64,
    /// Most purchases one sweep checks (one Stripe request each, within the rate limit).
    #[arg(long, env = "SWEEPER_BATCH", default_value_t = 50)]
    pub sweeper_batch: i64,
    /// Longest a client may take to send a request's line and headers, in milliseconds; slower
    /// connections are closed.
    #[arg(long, env = "HTTP_HEADER_READ_TIMEOUT_MS", default_value_t = 5_000)]
    pub http_header_read_timeout_ms: u64,
    /// Longest one request may take, body included, in milliseconds; then 408 `request_timeout`
    /// and the connection is closed.
    #[arg(long, env = "HTTP_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub http_request_timeout_ms: u64,
    /// Days after which the payload of an ignored event is deleted (the row and its outcome stay).
    #[arg(long, env = "EVENT_PAYLOAD_RETENTION_DAYS", default_value_t = 30)]
    pub event_payload_retention_days: u32,
    #[command(flatten)]
    pub outbound: OutboundConfig,
}

impl ServeConfig {
    /// Checks what clap's types cannot, naming the setting that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        self.database.validate()?;
        self.stripe.validate()?;
        crate::bounds::serve(self)?;
        if self.webhook_secrets().is_empty() {
            return Err("STRIPE_WEBHOOK_SECRET must hold at least one signing secret".into());
        }
        for (name, token) in [
            ("API_TOKEN", &self.api_token),
            ("ADMIN_TOKEN", &self.admin_token),
        ] {
            if token.expose().len() < 16 {
                return Err(format!("{name} must be at least 16 characters"));
            }
        }
        if self.api_token.expose() == self.admin_token.expose() {
            return Err("API_TOKEN and ADMIN_TOKEN must differ".into());
        }
        self.outbound_settings()?;
        Ok(())
    }

    /// The signing secrets, in the order given, without blanks.
    pub fn webhook_secrets(&self) -> Vec<Secret> {
        self.stripe_webhook_secret
            .expose()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Secret::from)
            .collect()
    }

    pub fn outbound_settings(&self) -> Result<crate::outbound::OutboundSettings, String> {
        let poll = Duration::from_millis(self.worker_poll_interval_ms);
        self.outbound.settings(poll)
    }
}

/// How purchases are leased and retried, and what refunds and top-ups do: one set of settings,
/// read the same way by the server and by the admin commands, so both build the same policy.
#[derive(Debug, Clone, Args)]
pub struct PolicyConfig {
    /// How long a claimed purchase stays with its worker without a heartbeat, in seconds. The
    /// worker renews it while the attempt runs, so this bounds how long a crashed process's work
    /// waits, not how long an attempt may take.
    #[arg(long, env = "WORKER_LEASE_SECS", default_value_t = 25)]
    pub worker_lease_secs: u64,
    /// Claims of one purchase before it is marked `failed`.
    #[arg(long, env = "FULFILMENT_MAX_ATTEMPTS", default_value_t = 10)]
    pub fulfilment_max_attempts: i32,
    /// First delay before a purchase is retried, in milliseconds (doubles per attempt, with jitter).
    #[arg(long, env = "FULFILMENT_RETRY_BASE_MS", default_value_t = 5_000)]
    pub fulfilment_retry_base_ms: u64,
    /// Longest delay between purchase retries, in seconds.
    #[arg(long, env = "FULFILMENT_RETRY_MAX_SECS", default_value_t = 1_800)]
    pub fulfilment_retry_max_secs: u64,
    /// After Stripe stored a 500 for a grant or invoice request, how long after it creditd must
    /// still find nothing (on its second look) before it writes again under a new key, in
    /// seconds. Covers the lag of Stripe's lists behind a create.
    #[arg(long, env = "UNKNOWN_OUTCOME_SETTLE_SECS", default_value_t = 60)]
    pub unknown_outcome_settle_secs: u64,
    /// What a refund or dispute of a purchase's payment does: `reverse` takes the refunded share
    /// of the credits back (and gives it back when the money returns); `record_only` records and
    /// reports it but leaves the grants alone.
    #[arg(long, env = "REVERSAL_POLICY", value_enum, default_value = "reverse")]
    pub reversal_policy: crate::reversal::ReversalPolicy,
    /// How often every auto top-up rule's balance is checked when no debit event asked for it, in
    /// seconds (one balance read per rule, behind grants in the Stripe rate budget).
    #[arg(long, env = "AUTO_TOPUP_SWEEP_SECS", default_value_t = 300)]
    pub auto_topup_sweep_secs: u64,
    /// The least time between two top-ups of one rule, in seconds.
    #[arg(long, env = "AUTO_TOPUP_COOLDOWN_SECS", default_value_t = 300)]
    pub auto_topup_cooldown_secs: u64,
}

impl PolicyConfig {
    pub fn validate(&self, stripe: &StripeConfig) -> Result<(), String> {
        crate::bounds::policy(self, stripe)
    }

    pub fn worker_lease(&self) -> Duration {
        Duration::from_secs(self.worker_lease_secs)
    }
}

/// What `creditd resync` and `creditd replay` need: the database and Stripe, but no HTTP server.
#[derive(Debug, Clone, Args)]
pub struct AdminCliConfig {
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub stripe: StripeConfig,
    // WORKER_LEASE_SECS is also how long this command owns a re-sync before a server may take
    // it over.
    #[command(flatten)]
    pub policy: PolicyConfig,
}

impl AdminCliConfig {
    pub fn validate(&self) -> Result<(), String> {
        self.database.validate()?;
        self.stripe.validate()?;
        self.policy.validate(&self.stripe)
    }
}
