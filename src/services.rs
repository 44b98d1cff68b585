//! What the workers and handlers share: the pool, the Stripe client, metrics and the retry policy.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use sqlx::PgPool;
use tokio::sync::Notify;

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

/// How purchases are retried.
#[derive(Debug, Clone)]
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
    use super::*;

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
