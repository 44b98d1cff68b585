//! The range of every numeric setting, checked at start-up with a message that names the
//! setting and its range. A value of 0 or an absurd one never gets as far as misbehaving.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::config::{DatabaseConfig, PolicyConfig, ServeConfig, StripeConfig};

/// One setting's value against its inclusive range.
fn within(
    name: &str,
    value: impl TryInto<i128>,
    range: RangeInclusive<i128>,
) -> Result<(), String> {
    let value = value.try_into().unwrap_or(i128::MAX);
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{name} must be between {} and {}, got {value}",
            range.start(),
            range.end()
        ))
    }
}

pub fn database(config: &DatabaseConfig) -> Result<(), String> {
    within(
        "DATABASE_MAX_CONNECTIONS",
        config.database_max_connections,
        2..=500,
    )?;
    within(
        "DATABASE_ACQUIRE_TIMEOUT_MS",
        config.database_acquire_timeout_ms,
        100..=60_000,
    )?;
    within(
        "DATABASE_EVENT_CONNECTIONS",
        config.database_event_connections,
        1..=100,
    )?;
    within(
        "DATABASE_STATEMENT_TIMEOUT_MS",
        config.database_statement_timeout_ms,
        100..=60_000,
    )
}

pub fn stripe(config: &StripeConfig) -> Result<(), String> {
    within(
        "STRIPE_RATE_LIMIT_PER_SEC",
        config.stripe_rate_limit_per_sec,
        1..=1000,
    )?;
    within(
        "STRIPE_MAX_NETWORK_RETRIES",
        config.stripe_max_network_retries,
        0..=5,
    )?;
    within("STRIPE_TIMEOUT_MS", config.stripe_timeout_ms, 100..=120_000)?;
    within(
        "STRIPE_RETRY_BASE_MS",
        config.stripe_retry_base_ms,
        1..=10_000,
    )?;
    within(
        "STRIPE_RETRY_MAX_MS",
        config.stripe_retry_max_ms,
        1..=60_000,
    )?;
    if config.stripe_retry_base_ms > config.stripe_retry_max_ms {
        return Err(format!(
            "STRIPE_RETRY_BASE_MS ({}) must not exceed STRIPE_RETRY_MAX_MS ({})",
            config.stripe_retry_base_ms, config.stripe_retry_max_ms
        ));
    }
    within(
        "STRIPE_READ_SHARE_PERCENT",
        config.stripe_read_share_percent,
        1..=90,
    )?;
    within(
        "STRIPE_READ_MAX_WAIT_MS",
        config.stripe_read_max_wait_ms,
        0..=10_000,
    )
}

/// The settings the server and the admin commands share (see [`PolicyConfig`]).
pub fn policy(policy: &PolicyConfig, stripe: &StripeConfig) -> Result<(), String> {
    lease(policy.worker_lease_secs, stripe)?;
    within(
        "FULFILMENT_MAX_ATTEMPTS",
        policy.fulfilment_max_attempts,
        1..=100,
    )?;
    within(
        "FULFILMENT_RETRY_BASE_MS",
        policy.fulfilment_retry_base_ms,
        10..=3_600_000,
    )?;
    within(
        "FULFILMENT_RETRY_MAX_SECS",
        policy.fulfilment_retry_max_secs,
        1..=86_400,
    )?;
    if policy.fulfilment_retry_base_ms > policy.fulfilment_retry_max_secs.saturating_mul(1000) {
        return Err(format!(
            "FULFILMENT_RETRY_BASE_MS ({} ms) must not exceed FULFILMENT_RETRY_MAX_SECS ({} s)",
            policy.fulfilment_retry_base_ms, policy.fulfilment_retry_max_secs
        ));
    }
    within(
        "UNKNOWN_OUTCOME_SETTLE_SECS",
        policy.unknown_outcome_settle_secs,
        1..=3600,
    )?;
    within(
        "AUTO_TOPUP_SWEEP_SECS",
        policy.auto_topup_sweep_secs,
        10..=86_400,
    )?;
    within(
        "AUTO_TOPUP_COOLDOWN_SECS",
        policy.auto_topup_cooldown_secs,
        0..=2_678_400,
    )
}

/// A lease must outlast one Stripe request with all its retries and their delays: should the
/// heartbeat stall (a database blip), the request in flight still finishes before anyone else
/// may take the purchase over.
pub fn lease(lease_secs: u64, stripe: &StripeConfig) -> Result<(), String> {
    within("WORKER_LEASE_SECS", lease_secs, 2..=600)?;
    let worst = stripe.settings().worst_case_request();
    if Duration::from_secs(lease_secs) <= worst {
        return Err(format!(
            "WORKER_LEASE_SECS ({lease_secs} s) must exceed one Stripe request with its retries and \
             backoff: STRIPE_TIMEOUT_MS × (STRIPE_MAX_NETWORK_RETRIES + 1) + STRIPE_RETRY_MAX_MS × \
             STRIPE_MAX_NETWORK_RETRIES = {:.1} s",
            worst.as_secs_f64()
        ));
    }
    Ok(())
}

pub fn serve(config: &ServeConfig) -> Result<(), String> {
    within(
        "WEBHOOK_TOLERANCE_SECS",
        config.webhook_tolerance_secs,
        30..=3600,
    )?;
    within(
        "WEBHOOK_MAX_BODY_BYTES",
        config.webhook_max_body_bytes,
        262_144..=8_388_608,
    )?;
    within("WORKER_COUNT", config.worker_count, 0..=64)?;
    within(
        "WORKER_POLL_INTERVAL_MS",
        config.worker_poll_interval_ms,
        10..=60_000,
    )?;
    policy(&config.policy, &config.stripe)?;
    within("SHUTDOWN_DRAIN_SECS", config.shutdown_drain_secs, 1..=600)?;
    within(
        "SWEEPER_INTERVAL_SECS",
        config.sweeper_interval_secs,
        1..=86_400,
    )?;
    within("SWEEPER_BATCH", config.sweeper_batch, 1..=1000)?;
    within(
        "HTTP_HEADER_READ_TIMEOUT_MS",
        config.http_header_read_timeout_ms,
        100..=60_000,
    )?;
    within(
        "HTTP_REQUEST_TIMEOUT_MS",
        config.http_request_timeout_ms,
        100..=300_000,
    )?;
    within(
        "EVENT_PAYLOAD_RETENTION_DAYS",
        config.event_payload_retention_days,
        1..=3650,
    )
}
