//! What the workers and handlers share: the pool, the Stripe client, metrics and the retry policy.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sqlx::PgPool;
use tokio::sync::Notify;

use crate::config::{DatabaseConfig, PolicyConfig, StripeConfig};
use crate::db;
use crate::db::recorder::EventRecorder;
use crate::metrics::Metrics;
use crate::stripe::StripeClient;

#[derive(Clone)]
pub struct Services {
    pub db: PgPool,
    /// The webhook path's own connections: one round trip per event.
    pub recorder: Arc<EventRecorder>,
    pub stripe: StripeClient,
    pub metrics: Metrics,
    pub policy: RetryPolicy,
    /// Whether the Stripe key is live; paid invoices must be in the same mode.
    pub livemode: bool,
    /// Wakes an idle worker in this process as soon as work is scheduled.
    pub wake: Arc<Notify>,
}

impl Services {
    /// The one way `Services` is built, by the server and by the admin commands alike. The pool
    /// connects lazily: migrating it or checking it is migrated is the caller's business.
    pub async fn connect(
        database: &DatabaseConfig,
        stripe: &StripeConfig,
        policy: &PolicyConfig,
    ) -> anyhow::Result<Services> {
        let metrics = Metrics::new();
        Ok(Services {
            db: db::connect(database).await?,
            recorder: Arc::new(db::event_recorder(database)?),
            stripe: stripe.client(metrics.clone())?,
            metrics,
            policy: RetryPolicy::from(policy),
            livemode: stripe.livemode(),
            wake: Arc::new(Notify::new()),
        })
    }
}

/// How purchases are retried.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub lease: Duration,
    pub max_attempts: i32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// How long after a stored 500 a lookup must still find nothing before a new key is used.
    pub unknown_outcome_settle: Duration,
    /// What a refund or dispute does to the credits.
    pub reversal: crate::reversal::ReversalPolicy,
    /// How often every auto top-up rule's balance is checked without a debit event.
    pub topup_sweep: Duration,
    /// The least time between two top-ups of one rule.
    pub topup_cooldown: Duration,
}

impl From<&PolicyConfig> for RetryPolicy {
    fn from(config: &PolicyConfig) -> Self {
        RetryPolicy {
            lease: config.worker_lease(),
            max_attempts: config.fulfilment_max_attempts,
            base_delay: Duration::from_millis(config.fulfilment_retry_base_ms),
            max_delay: Duration::from_secs(config.fulfilment_retry_max_secs),
            unknown_outcome_settle: Duration::from_secs(config.unknown_outcome_settle_secs),
            reversal: config.reversal_policy,
            topup_sweep: Duration::from_secs(config.auto_topup_sweep_secs),
            topup_cooldown: Duration::from_secs(config.auto_topup_cooldown_secs),
        }
    }
}

impl RetryPolicy {
    /// base · 2^(attempt-1), capped, with up to a quarter taken off so retries of many purchases
    /// after one outage do not arrive at Stripe in lockstep.
    pub fn delay_after(&self, attempt: i32) -> Duration {
        let exponent = attempt.clamp(1, 20) as u32 - 1;
        let delay = self
            .base_delay
            .saturating_mul(1 << exponent)
            .min(self.max_delay);
        delay.mul_f64(rand::rng().random_range(0.75..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::config::{AdminCliConfig, ServeConfig};

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        config: ServeConfig,
    }

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: AdminCliConfig,
    }

    /// The settings both commands read, none of them at its default.
    const SHARED: &[&str] = &[
        "--database-url=postgres://creditd@127.0.0.1:1/unused",
        "--stripe-secret-key=sk_test_shared",
        "--worker-lease-secs=40",
        "--fulfilment-max-attempts=3",
        "--fulfilment-retry-base-ms=250",
        "--fulfilment-retry-max-secs=90",
        "--unknown-outcome-settle-secs=7",
        "--reversal-policy=record-only",
        "--auto-topup-sweep-secs=120",
        "--auto-topup-cooldown-secs=9",
    ];

    /// The admin commands once hard-coded their own retry policy; now the server and the CLI read
    /// the same settings and build `Services` through the same constructor.
    #[tokio::test]
    async fn the_cli_and_the_server_build_the_same_policy_from_the_same_settings() {
        let serve = Serve::parse_from(["serve"].iter().chain(SHARED).chain(&[
            "--stripe-webhook-secret=whsec_shared",
            "--api-token=api-token-0123456789",
            "--admin-token=admin-token-0123456789",
        ]))
        .config;
        let cli = Cli::parse_from(["resync"].iter().chain(SHARED)).config;
        serve.validate().expect("valid server settings");
        cli.validate().expect("valid admin command settings");

        let server = Services::connect(&serve.database, &serve.stripe, &serve.policy)
            .await
            .unwrap();
        let admin = Services::connect(&cli.database, &cli.stripe, &cli.policy)
            .await
            .unwrap();
        assert_eq!(server.policy, admin.policy);
        assert_eq!(
            admin.policy,
            RetryPolicy {
                lease: Duration::from_secs(40),
                max_attempts: 3,
                base_delay: Duration::from_millis(250),
                max_delay: Duration::from_secs(90),
                unknown_outcome_settle: Duration::from_secs(7),
                reversal: crate::reversal::ReversalPolicy::RecordOnly,
                topup_sweep: Duration::from_secs(120),
                topup_cooldown: Duration::from_secs(9),
            }
        );
    }

    #[test]
    fn the_admin_commands_reject_an_out_of_range_policy_by_name() {
        let others = SHARED
            .iter()
            .filter(|arg| !arg.starts_with("--fulfilment-max-attempts"));
        let cli = Cli::parse_from(
            ["resync"]
                .iter()
                .chain(others)
                .chain(&["--fulfilment-max-attempts=0"]),
        )
        .config;
        let error = cli.validate().unwrap_err();
        assert!(error.starts_with("FULFILMENT_MAX_ATTEMPTS"), "{error}");
    }

    #[test]
    fn delays_double_and_are_capped() {
        let policy = RetryPolicy {
            lease: Duration::from_secs(60),
            max_attempts: 5,
            base_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(10),
            unknown_outcome_settle: Duration::from_secs(60),
            reversal: crate::reversal::ReversalPolicy::Reverse,
            topup_sweep: Duration::from_secs(300),
            topup_cooldown: Duration::from_secs(300),
        };
        let first = policy.delay_after(1);
        assert!(first >= Duration::from_millis(1500) && first <= Duration::from_secs(2));
        let third = policy.delay_after(3);
        assert!(third >= Duration::from_secs(6) && third <= Duration::from_secs(8));
        assert!(policy.delay_after(30) <= Duration::from_secs(10));
    }
}
