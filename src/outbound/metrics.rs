//! The outbound webhooks' metrics, registered with creditd's others.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

#[derive(Clone, Default)]
pub struct OutboundMetrics {
    messages: Family<Labels, Counter>,
    attempts: Family<Labels, Counter>,
    oldest_undelivered: Gauge,
    endpoints_disabled: Counter,
}

impl OutboundMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = OutboundMetrics::default();
        registry.register(
            "outbound_messages",
            "Outbound webhook deliveries finished, by outcome (delivered, failed)",
            metrics.messages.clone(),
        );
        registry.register(
            "outbound_attempts",
            "Outbound webhook HTTP attempts, by outcome",
            metrics.attempts.clone(),
        );
        registry.register(
            "outbound_oldest_undelivered_seconds",
            "Age of the oldest outbound message still pending for an enabled endpoint, 0 when none",
            metrics.oldest_undelivered.clone(),
        );
        registry.register(
            "outbound_endpoints_disabled",
            "Webhook endpoints disabled by creditd after failing for OUTBOUND_DISABLE_AFTER_SECS",
            metrics.endpoints_disabled.clone(),
        );
        metrics
    }

    /// `outcome` is one of `send::Answer::outcome`'s bounded labels.
    pub fn attempt(&self, outcome: &'static str) {
        self.attempts
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    pub fn finished(&self, outcome: &'static str) {
        self.messages
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    pub fn endpoint_disabled(&self) {
        self.endpoints_disabled.inc();
    }

    /// Set from the database just before a scrape.
    pub fn set_oldest_undelivered(&self, seconds: i64) {
        self.oldest_undelivered.set(seconds);
    }
}
