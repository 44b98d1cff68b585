//! Prometheus metrics, all prefixed `creditd_`; label values never carry ids or secrets.

use std::sync::Arc;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    webhooks: Family<Labels, Counter>,
    grants_created: Counter,
    paid_to_granted: Histogram,
    purchases: Family<Labels, Gauge>,
    oldest_paid_ungranted: Gauge,
    paid_without_credits: Gauge,
    stripe_requests: Family<Labels, Counter>,
    stripe_retries: Family<Labels, Counter>,
    stripe_rate_limit_waits: Counter,
    worker_claims: Counter,
    worker_lease_expiries: Counter,
    worker_panics: Counter,
    db_connections: Family<Labels, Gauge>,
    events_waiting: Gauge,
    catch_up: Family<Labels, Counter>,
    grant_moves: Family<Labels, Counter>,
    reversal_shortfall: Counter,
    topups_created: Counter,
    auto_topup_rules: Family<Labels, Gauge>,
    topups_failed_recently: Gauge,
    outbound: crate::outbound::metrics::OutboundMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("creditd");
        let webhooks = Family::<Labels, Counter>::default();
        registry.register(
            "webhooks",
            "Webhook requests by outcome and rejection reason",
            webhooks.clone(),
        );
        let grants_created = Counter::default();
        registry.register(
            "grants_created",
            "Credit grants created or adopted",
            grants_created.clone(),
        );
        // From seconds to hours: a grant normally follows payment within seconds, retries take longer.
        let buckets = [
            0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0,
        ];
        let paid_to_granted = Histogram::new(buckets);
        registry.register(
            "paid_to_granted_seconds",
            "Time from creditd learning an invoice was paid to its grant being recorded",
            paid_to_granted.clone(),
        );
        let purchases = Family::<Labels, Gauge>::default();
        registry.register(
            "purchases",
            "Purchases by status (read from the database at scrape time)",
            purchases.clone(),
        );
        let oldest_paid_ungranted = Gauge::default();
        registry.register(
            "oldest_paid_ungranted_seconds",
            "Age of the oldest purchase that is paid but not yet granted, 0 when none",
            oldest_paid_ungranted.clone(),
        );
        let paid_without_credits = Gauge::default();
        registry.register(
            "purchases_paid_without_credits",
            "Purchases whose invoice was paid but that ended rejected or failed, holding no grant",
            paid_without_credits.clone(),
        );
        let stripe_requests = Family::<Labels, Counter>::default();
        registry.register(
            "stripe_requests",
            "Stripe HTTP requests by endpoint and status",
            stripe_requests.clone(),
        );
        let stripe_retries = Family::<Labels, Counter>::default();
        registry.register(
            "stripe_retries",
            "Stripe requests retried, by endpoint",
            stripe_retries.clone(),
        );
        let stripe_rate_limit_waits = Counter::default();
        registry.register(
            "stripe_rate_limit_waits",
            "Stripe requests delayed by the local rate limit",
            stripe_rate_limit_waits.clone(),
        );
        let worker_claims = Counter::default();
        registry.register(
            "worker_claims",
            "Purchases claimed by workers",
            worker_claims.clone(),
        );
        let worker_lease_expiries = Counter::default();
        registry.register(
            "worker_lease_expiries",
            "Purchases taken over after another worker's lease expired",
            worker_lease_expiries.clone(),
        );
        let worker_panics = Counter::default();
        registry.register(
            "worker_panics",
            "Purchase attempts that panicked (caught; the purchase is retried)",
            worker_panics.clone(),
        );
        let db_connections = Family::<Labels, Gauge>::default();
        registry.register(
            "db_connections",
            "Database connections of this process by pool (pool, recorder) and state (in_use, idle, max)",
            db_connections.clone(),
        );
        let events_waiting = Gauge::default();
        registry.register(
            "webhook_events_waiting",
            "Verified events queued for the recorder's next statement while one is in flight",
            events_waiting.clone(),
        );
        let catch_up = Family::<Labels, Counter>::default();
        registry.register(
            "catch_up",
            "Events and invoices handled by re-syncs, replays and the sweeper, by outcome",
            catch_up.clone(),
        );
        let grant_moves = Family::<Labels, Counter>::default();
        registry.register(
            "grant_moves",
            "Credit changes planned for refunds and disputes, by direction (take, restore) and policy",
            grant_moves.clone(),
        );
        let reversal_shortfall = Counter::default();
        registry.register(
            "reversal_shortfall_credits",
            "Credits that were refunded or disputed but already used, so could not be taken back",
            reversal_shortfall.clone(),
        );
        let topups_created = Counter::default();
        registry.register(
            "topups_created",
            "Automatic top-up purchases created",
            topups_created.clone(),
        );
        let auto_topup_rules = Family::<Labels, Gauge>::default();
        registry.register(
            "auto_topup_rules",
            "Auto top-up rules by state: active, paused (after failed top-ups), disabled",
            auto_topup_rules.clone(),
        );
        let topups_failed_recently = Gauge::default();
        registry.register(
            "topups_failed_last_day",
            "Automatic top-ups that ended failed (declined, authentication required, no card) in the last 24 hours",
            topups_failed_recently.clone(),
        );
        let outbound = crate::outbound::metrics::OutboundMetrics::register(&mut registry);
        Metrics {
            inner: Arc::new(Inner {
                registry,
                webhooks,
                grants_created,
                paid_to_granted,
                purchases,
                oldest_paid_ungranted,
                paid_without_credits,
                stripe_requests,
                stripe_retries,
                stripe_rate_limit_waits,
                worker_claims,
                worker_lease_expiries,
                worker_panics,
                db_connections,
                events_waiting,
                catch_up,
                grant_moves,
                reversal_shortfall,
                topups_created,
                auto_topup_rules,
                topups_failed_recently,
                outbound,
            }),
        }
    }

    pub fn webhook(&self, outcome: &'static str, reason: &'static str) {
        let labels = vec![
            ("outcome", outcome.to_owned()),
            ("reason", reason.to_owned()),
        ];
        self.inner.webhooks.get_or_create(&labels).inc();
    }

    pub fn topup_created(&self) {
        self.inner.topups_created.inc();
    }

    /// Rules by state and failed top-ups of the last day, read from the database at scrape time.
    pub fn set_topups(&self, active: i64, paused: i64, disabled: i64, failed_last_day: i64) {
        for (state, count) in [
            ("active", active),
            ("paused", paused),
            ("disabled", disabled),
        ] {
            let labels = vec![("state", state.to_owned())];
            self.inner
                .auto_topup_rules
                .get_or_create(&labels)
                .set(count);
        }
        self.inner.topups_failed_recently.set(failed_last_day);
    }

    /// A grant move planned: `direction` take or restore, `policy` reverse, record_only or at_grant.
    pub fn grant_move(&self, direction: &'static str, policy: &'static str, shortfall: i64) {
        let labels = vec![
            ("direction", direction.to_owned()),
            ("policy", policy.to_owned()),
        ];
        self.inner.grant_moves.get_or_create(&labels).inc();
        self.inner
            .reversal_shortfall
            .inc_by(shortfall.max(0) as u64);
    }

    /// `source` is resync, replay or sweeper; `outcome` one of the bounded event outcomes.
    pub fn catch_up(&self, source: &'static str, outcome: &str) {
        let labels = vec![
            ("source", source.to_owned()),
            ("outcome", outcome.to_owned()),
        ];
        self.inner.catch_up.get_or_create(&labels).inc();
    }

    pub fn grant_created(&self, paid_to_granted_secs: Option<f64>) {
        self.inner.grants_created.inc();
        if let Some(seconds) = paid_to_granted_secs {
            self.inner.paid_to_granted.observe(seconds.max(0.0));
        }
    }

    pub fn stripe_request(&self, endpoint: &str, status: &str) {
        let labels = vec![
            ("endpoint", endpoint.to_owned()),
            ("status", status.to_owned()),
        ];
        self.inner.stripe_requests.get_or_create(&labels).inc();
    }

    pub fn stripe_retry(&self, endpoint: &str) {
        self.inner
            .stripe_retries
            .get_or_create(&vec![("endpoint", endpoint.to_owned())])
            .inc();
    }

    pub fn stripe_rate_limit_wait(&self) {
        self.inner.stripe_rate_limit_waits.inc();
    }

    pub fn worker_claims(&self, claimed: u64, taken_over: u64) {
        self.inner.worker_claims.inc_by(claimed);
        self.inner.worker_lease_expiries.inc_by(taken_over);
    }

    /// The outbound webhooks' metrics.
    pub fn outbound(&self) -> &crate::outbound::metrics::OutboundMetrics {
        &self.inner.outbound
    }

    pub fn worker_panic(&self) {
        self.inner.worker_panics.inc();
    }

    /// Connection usage of one of the process's two connection sets (`pool`, `recorder`).
    pub fn set_db_connections(&self, pool: &'static str, in_use: usize, idle: usize, max: usize) {
        for (state, value) in [("in_use", in_use), ("idle", idle), ("max", max)] {
            self.inner
                .db_connections
                .get_or_create(&vec![
                    ("pool", pool.to_owned()),
                    ("state", state.to_owned()),
                ])
                .set(value as i64);
        }
    }

    /// Events waiting for the recorder's next statement.
    pub fn set_events_waiting(&self, waiting: usize) {
        self.inner.events_waiting.set(waiting as i64);
    }

    /// Sets the database-derived gauges just before a scrape.
    pub fn set_purchase_gauges(
        &self,
        by_status: &[(String, i64)],
        oldest_paid_ungranted_secs: i64,
    ) {
        for status in crate::purchase::PurchaseStatus::ALL {
            let count = by_status
                .iter()
                .find(|(s, _)| s == status.as_str())
                .map_or(0, |(_, n)| *n);
            self.inner
                .purchases
                .get_or_create(&vec![("status", status.as_str().to_owned())])
                .set(count);
        }
        self.inner
            .oldest_paid_ungranted
            .set(oldest_paid_ungranted_secs);
    }

    /// "Money taken, no credits": set just before a scrape.
    pub fn set_paid_without_credits(&self, count: i64) {
        self.inner.paid_without_credits.set(count);
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        encode(&mut out, &self.inner.registry).expect("writing to a String cannot fail");
        out
    }
}
