//! Every numeric setting has a range; start-up rejects a value outside it with the setting's
//! name, both in-process and through the real binary's environment.

use std::process::Command;

use creditd::config::ServeConfig;

use crate::harness::{ADMIN_TOKEN, API_TOKEN, WEBHOOK_SECRET, test_config};
use creditd::sandbox::FakeStripe;

type Adjust = fn(&mut ServeConfig);

/// (the setting's name, a change that puts it out of range)
const OUT_OF_RANGE: &[(&str, Adjust)] = &[
    ("DATABASE_MAX_CONNECTIONS", |c| {
        c.database.database_max_connections = 0
    }),
    ("DATABASE_ACQUIRE_TIMEOUT_MS", |c| {
        c.database.database_acquire_timeout_ms = 0
    }),
    ("DATABASE_EVENT_CONNECTIONS", |c| {
        c.database.database_event_connections = 0
    }),
    ("DATABASE_STATEMENT_TIMEOUT_MS", |c| {
        c.database.database_statement_timeout_ms = 10
    }),
    ("STRIPE_RATE_LIMIT_PER_SEC", |c| {
        c.stripe.stripe_rate_limit_per_sec = 0
    }),
    ("STRIPE_MAX_NETWORK_RETRIES", |c| {
        c.stripe.stripe_max_network_retries = 50
    }),
    ("STRIPE_TIMEOUT_MS", |c| c.stripe.stripe_timeout_ms = 0),
    ("STRIPE_RETRY_BASE_MS", |c| {
        c.stripe.stripe_retry_base_ms = 0
    }),
    ("STRIPE_RETRY_MAX_MS", |c| {
        c.stripe.stripe_retry_max_ms = u64::MAX
    }),
    ("STRIPE_READ_SHARE_PERCENT", |c| {
        c.stripe.stripe_read_share_percent = 0
    }),
    ("STRIPE_READ_MAX_WAIT_MS", |c| {
        c.stripe.stripe_read_max_wait_ms = 60_000
    }),
    ("WEBHOOK_TOLERANCE_SECS", |c| {
        c.webhook_tolerance_secs = u64::MAX
    }),
    ("WEBHOOK_MAX_BODY_BYTES", |c| c.webhook_max_body_bytes = 10),
    ("WORKER_COUNT", |c| c.worker_count = 65),
    ("WORKER_POLL_INTERVAL_MS", |c| c.worker_poll_interval_ms = 0),
    ("WORKER_LEASE_SECS", |c| c.policy.worker_lease_secs = 0),
    ("FULFILMENT_MAX_ATTEMPTS", |c| {
        c.policy.fulfilment_max_attempts = 0
    }),
    ("FULFILMENT_RETRY_BASE_MS", |c| {
        c.policy.fulfilment_retry_base_ms = 0
    }),
    ("FULFILMENT_RETRY_MAX_SECS", |c| {
        c.policy.fulfilment_retry_max_secs = 0
    }),
    ("UNKNOWN_OUTCOME_SETTLE_SECS", |c| {
        c.policy.unknown_outcome_settle_secs = 0
    }),
    ("SHUTDOWN_DRAIN_SECS", |c| c.shutdown_drain_secs = 0),
    ("SWEEPER_INTERVAL_SECS", |c| c.sweeper_interval_secs = 0),
    ("SWEEPER_BATCH", |c| c.sweeper_batch = -1),
    ("HTTP_HEADER_READ_TIMEOUT_MS", |c| {
        c.http_header_read_timeout_ms = 0
    }),
    ("HTTP_REQUEST_TIMEOUT_MS", |c| c.http_request_timeout_ms = 0),
    ("EVENT_PAYLOAD_RETENTION_DAYS", |c| {
        c.event_payload_retention_days = 0
    }),
    ("OUTBOUND_TIMEOUT_MS", |c| {
        c.outbound.outbound_timeout_ms = 0
    }),
    ("OUTBOUND_WORKER_COUNT", |c| {
        c.outbound.outbound_worker_count = 65
    }),
    ("OUTBOUND_DISABLE_AFTER_SECS", |c| {
        c.outbound.outbound_disable_after_secs = 0
    }),
    ("OUTBOUND_SECRET_GRACE_SECS", |c| {
        c.outbound.outbound_secret_grace_secs = u64::MAX
    }),
];

#[tokio::test]
async fn a_malformed_retry_schedule_is_rejected_by_name() {
    let stripe = FakeStripe::start().await;
    let mut config = test_config("postgres://unused@127.0.0.1/unused", &stripe);
    for bad in ["", "5", "5s,,1m", "10 minutes", "8d"] {
        config.outbound.outbound_retry_schedule = bad.into();
        let error = config.validate().unwrap_err();
        assert!(
            error.starts_with("OUTBOUND_RETRY_SCHEDULE: "),
            "{bad:?}: {error}"
        );
    }
}

#[tokio::test]
async fn every_out_of_range_setting_is_rejected_by_name() {
    let stripe = FakeStripe::start().await;
    let valid = test_config("postgres://unused@127.0.0.1/unused", &stripe);
    valid.validate().expect("the test settings are valid");
    for (name, adjust) in OUT_OF_RANGE {
        let mut config = valid.clone();
        adjust(&mut config);
        let error = config.validate().expect_err(name);
        assert!(
            error.starts_with(name) && error.contains("between"),
            "{name}: {error}"
        );
    }
}

#[tokio::test]
async fn a_lease_shorter_than_one_stripe_request_with_its_retries_is_rejected() {
    let stripe = FakeStripe::start().await;
    let mut config = test_config("postgres://unused@127.0.0.1/unused", &stripe);
    // 3 tries of 2 s plus 2 waits of 0.1 s: 6.2 s, longer than the 5 s lease.
    config.stripe.stripe_timeout_ms = 2_000;
    let error = config.validate().unwrap_err();
    assert!(
        error.starts_with("WORKER_LEASE_SECS (5 s) must exceed one Stripe request"),
        "{error}"
    );
    assert!(error.contains("6.2 s"), "{error}");
}

/// The binary itself, configured from the environment as in production.
#[test]
fn the_binary_refuses_to_start_with_an_out_of_range_setting() {
    for (name, value) in [
        ("WORKER_LEASE_SECS", "0"),
        ("WORKER_POLL_INTERVAL_MS", "0"),
        ("DATABASE_EVENT_CONNECTIONS", "0"),
        ("WEBHOOK_TOLERANCE_SECS", "99999999999"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_creditd"))
            .arg("serve")
            .env_clear()
            .env(
                "DATABASE_URL",
                "postgres://creditd@127.0.0.1:1/never_reached",
            )
            .env("STRIPE_SECRET_KEY", FakeStripe::SECRET_KEY)
            .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("API_TOKEN", API_TOKEN)
            .env("ADMIN_TOKEN", ADMIN_TOKEN)
            .env("LOG_FORMAT", "pretty")
            .env(name, value)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{name}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("creditd: {name} must be between")),
            "{name}={value}: {stderr}"
        );
    }
}
