//! The outbound settings as workers and handlers use them, parsed from `ServeConfig`.

use std::time::Duration;

use tokio::sync::Notify;

use super::address::Allow;
use super::schedule::RetrySchedule;

#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub workers: usize,
    pub poll_interval: Duration,
    pub schedule: RetrySchedule,
    /// Longest one attempt may take, connecting and reading the answer included.
    pub timeout: Duration,
    pub allow: Allow,
    /// An endpoint whose every attempt failed for this long is disabled.
    pub disable_after: Duration,
    /// How long the old secret is still signed with after a rotation.
    pub secret_grace: Duration,
}

impl OutboundSettings {
    /// A claimed delivery stays with its worker this long: twice the attempt's timeout plus time
    /// to record it, so a live worker does not lose it mid-request, and short enough that a dead
    /// one's work resumes soon (32 s with the defaults). Should a slow database make it run out
    /// anyway, the delivery is sent again under the same id: at least once, never lost.
    pub fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(2)
    }
}

/// The settings and a bell that wakes idle delivery workers (an operator's retry or recover).
#[derive(Debug)]
pub struct Outbound {
    pub settings: OutboundSettings,
    pub wake: Notify,
}
