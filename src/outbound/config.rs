//! The outbound webhook settings (`OUTBOUND_*`), flattened into `ServeConfig`, and their checks.

use std::time::Duration;

use clap::Args;

use super::OutboundSettings;
use super::address::Allow;
use super::schedule::RetrySchedule;

/// Outbound webhooks to the merchant's endpoints (see `outbound`).
#[derive(Debug, Clone, Args)]
pub struct OutboundConfig {
    /// Delivery workers in this process; 0 leaves delivery to other replicas.
    #[arg(long, env = "OUTBOUND_WORKER_COUNT", default_value_t = 2)]
    pub outbound_worker_count: usize,
    /// Delays before each retry of a failed delivery, comma-separated (`ms`, `s`, `m`, `h`, `d`),
    /// each with up to 10% jitter; after the last one the message is `failed`.
    #[arg(long, env = "OUTBOUND_RETRY_SCHEDULE", default_value = RetrySchedule::DEFAULT)]
    pub outbound_retry_schedule: String,
    /// Longest one delivery attempt may take, in milliseconds.
    #[arg(long, env = "OUTBOUND_TIMEOUT_MS", default_value_t = 15_000)]
    pub outbound_timeout_ms: u64,
    /// Allow `http://` endpoint URLs (the sandbox and tests); production wants https only.
    #[arg(long, env = "OUTBOUND_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set)]
    pub outbound_allow_http: bool,
    /// Allow endpoints on loopback, private, link-local, CGNAT and metadata addresses (the
    /// sandbox and tests); refused by default, at registration and at every delivery.
    #[arg(long, env = "OUTBOUND_ALLOW_PRIVATE_NETWORKS", default_value_t = false, action = clap::ArgAction::Set)]
    pub outbound_allow_private_networks: bool,
    /// An endpoint whose every attempt failed for this long is disabled (and audited), in seconds.
    #[arg(long, env = "OUTBOUND_DISABLE_AFTER_SECS", default_value_t = 5 * 86_400)]
    pub outbound_disable_after_secs: u64,
    /// After a secret rotation, how long the old secret is still signed with, in seconds.
    #[arg(long, env = "OUTBOUND_SECRET_GRACE_SECS", default_value_t = 86_400)]
    pub outbound_secret_grace_secs: u64,
}

impl OutboundConfig {
    /// The settings, or an error naming the one that is wrong.
    pub fn settings(&self, poll_interval: Duration) -> Result<OutboundSettings, String> {
        let schedule = RetrySchedule::parse(&self.outbound_retry_schedule)
            .map_err(|e| format!("OUTBOUND_RETRY_SCHEDULE: {e}"))?;
        let ranges: [(&str, u64, u64, u64); 4] = [
            ("OUTBOUND_TIMEOUT_MS", self.outbound_timeout_ms, 100, 60_000),
            (
                "OUTBOUND_WORKER_COUNT",
                self.outbound_worker_count as u64,
                0,
                64,
            ),
            (
                "OUTBOUND_DISABLE_AFTER_SECS",
                self.outbound_disable_after_secs,
                1,
                90 * 86_400,
            ),
            (
                "OUTBOUND_SECRET_GRACE_SECS",
                self.outbound_secret_grace_secs,
                0,
                30 * 86_400,
            ),
        ];
        for (name, value, low, high) in ranges {
            if !(low..=high).contains(&value) {
                return Err(format!(
                    "{name} must be between {low} and {high}, got {value}"
                ));
            }
        }
        Ok(OutboundSettings {
            workers: self.outbound_worker_count,
            poll_interval,
            schedule,
            timeout: Duration::from_millis(self.outbound_timeout_ms),
            allow: Allow {
                http: self.outbound_allow_http,
                private_networks: self.outbound_allow_private_networks,
            },
            disable_after: Duration::from_secs(self.outbound_disable_after_secs),
            secret_grace: Duration::from_secs(self.outbound_secret_grace_secs),
        })
    }
}
