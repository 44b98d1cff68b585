//! The model-based test of the purchase lifecycle: proptest generates short histories for a few
//! invoices (uncollectible, payments by card, out of band or part by the customer's balance, voids, lost, duplicated and reordered
//! deliveries, re-syncs, Stripe 500s and 429s, real SIGKILLs of the creditd binary) and runs each
//! against the real binary and the fake Stripe over HTTP. After each history Stripe's retries
//! deliver every event once more, and the invariant must hold: every invoice Stripe considers paid
//! has exactly one grant for its purchase, every other purchase has none, and nothing is stuck.
//!
//! CI runs `CREDITD_MODEL_CASES` histories (default 6); `scripts/model-test` runs many more.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::harness::process::CreditdProcess;
use crate::harness::receiver::Receiver;
use crate::harness::{ADMIN_TOKEN, API_TOKEN, PATIENCE, WEBHOOK_SECRET, fresh_database};
use creditd::sandbox::{FakeStripe, Fault, FaultKind};

const INVOICES: usize = 3;

#[derive(Debug, Clone, Copy)]
enum PayBy {
    Card,
    OutOfBand,
}

#[derive(Debug, Clone)]
enum Step {
    MarkUncollectible(usize),
    Pay(usize, PayBy),
    Void(usize),
    /// Events from now on are not delivered (Stripe's endpoint is failing, or they are delayed).
    LoseDeliveries,
    RestoreDeliveries,
    /// Every event so far delivered again, concurrently, optionally newest first.
    Redeliver {
        reversed: bool,
    },
    /// An operator's re-sync over Stripe's events.
    Resync,
    /// SIGKILL after `after_ms` milliseconds, then a restart.
    Kill {
        after_ms: u64,
    },
    /// The next grant request fails inside Stripe (stored 500, with or without the grant made).
    GrantFault {
        grant_made: bool,
    },
    /// The next few Stripe requests are rate limited.
    RateLimited,
}

fn step() -> impl Strategy<Value = Step> {
    let invoice = 0..INVOICES;
    prop_oneof![
        1 => invoice.clone().prop_map(Step::MarkUncollectible),
        3 => (invoice.clone(), prop_oneof![Just(PayBy::Card), Just(PayBy::OutOfBand)])
            .prop_map(|(i, by)| Step::Pay(i, by)),
        1 => invoice.prop_map(Step::Void),
        1 => Just(Step::LoseDeliveries),
        1 => Just(Step::RestoreDeliveries),
        1 => any::<bool>().prop_map(|reversed| Step::Redeliver { reversed }),
        1 => Just(Step::Resync),
        1 => (0u64..80).prop_map(|after_ms| Step::Kill { after_ms }),
        1 => any::<bool>().prop_map(|grant_made| Step::GrantFault { grant_made }),
        1 => Just(Step::RateLimited),
    ]
}

fn history() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(step(), 3..12)
}

fn cases() -> u32 {
    std::env::var("CREDITD_MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(6)
}

#[test]
fn every_paid_invoice_ends_with_exactly_one_grant_whatever_the_history() {
    let config = Config {
        cases: cases(),
        // Each shrink step reruns a whole history against a real process; keep failures quick.
        max_shrink_iters: 16,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let histories = std::sync::atomic::AtomicU32::new(0);
    let result = runner.run(&history(), |steps| {
        histories.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run_history(steps))
    });
    let histories = histories.into_inner();
    println!(
        "model: {histories} histories run, violations: {}",
        u32::from(result.is_err())
    );
    if let Err(error) = result {
        panic!("{error}");
    }
}

struct World {
    stripe: FakeStripe,
    database_url: String,
    db: sqlx::PgPool,
    creditd: Option<CreditdProcess>,
    invoices: Vec<String>,
    purchases: Vec<String>,
    /// Subscribed to every outbound event, so each transition must leave exactly one message.
    receiver: Receiver,
}

const SETTINGS: &[(&str, &str)] = &[("UNKNOWN_OUTCOME_SETTLE_SECS", "1"), ("WORKER_COUNT", "2")];

impl World {
    async fn start() -> World {
        let stripe = FakeStripe::start().await;
        let (database_url, db) = fresh_database().await;
        let mut world = World {
            stripe,
            database_url,
            db,
            creditd: None,
            invoices: Vec::new(),
            purchases: Vec::new(),
            receiver: Receiver::start().await,
        };
        world.boot().await;
        let endpoint = json!({"url": world.receiver.url, "events": ["*"]});
        world
            .post("/admin/webhook_endpoints", &endpoint, ADMIN_TOKEN)
            .await;
        for i in 0..INVOICES {
            let customer = world.stripe.create_customer();
            if i == 1 {
                // This customer's credit balance pays part of the invoice at finalization.
                world.stripe.set_customer_balance(&customer, -500);
            }
            let invoice = world
                .stripe
                .create_open_invoice(&customer, 1500, "usd", &[]);
            let id = invoice["id"].as_str().unwrap().to_owned();
            let body =
                json!({"customer": customer, "amount": 1500, "currency": "usd", "invoice_id": id});
            let purchase = world.post("/v1/purchases", &body, API_TOKEN).await;
            world
                .purchases
                .push(purchase["id"].as_str().unwrap().to_owned());
            world.invoices.push(id);
        }
        world
    }

    async fn boot(&mut self) {
        let process = CreditdProcess::start(&self.database_url, &self.stripe, SETTINGS).await;
        self.stripe
            .set_webhook_endpoint(&process.url("/webhooks/stripe"), &[WEBHOOK_SECRET]);
        self.creditd = Some(process);
    }

    async fn post(&self, path: &str, body: &Value, token: &str) -> Value {
        let url = self.creditd.as_ref().unwrap().url(path);
        let response = reqwest::Client::new()
            .post(url)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("creditd answers");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Acts at Stripe as a customer or the merchant would; Stripe may refuse (paying a void
    /// invoice), which is part of the history.
    async fn at_stripe(&self, path: String, form: &[(&str, &str)]) {
        self.stripe.client().post(&path, form, None).await;
    }

    async fn apply(&mut self, step: &Step) {
        match step {
            Step::MarkUncollectible(i) => {
                let path = format!("/v1/invoices/{}/mark_uncollectible", self.invoices[*i]);
                self.at_stripe(path, &[]).await;
            }
            Step::Pay(i, by) => {
                let path = format!("/v1/invoices/{}/pay", self.invoices[*i]);
                let form: &[(&str, &str)] = match by {
                    PayBy::Card => &[],
                    PayBy::OutOfBand => &[("paid_out_of_band", "true")],
                };
                self.at_stripe(path, form).await;
            }
            Step::Void(i) => {
                let path = format!("/v1/invoices/{}/void", self.invoices[*i]);
                self.at_stripe(path, &[]).await;
            }
            Step::LoseDeliveries => self.stripe.set_webhook_delivery(false),
            Step::RestoreDeliveries => self.stripe.set_webhook_delivery(true),
            Step::Redeliver { reversed } => self.redeliver(*reversed).await,
            Step::Resync => {
                let since = chrono::Utc::now().timestamp() - 3600;
                self.post("/admin/resync", &json!({"since": since}), ADMIN_TOKEN)
                    .await;
            }
            Step::Kill { after_ms } => {
                // An arbitrary moment in whatever creditd is doing, not a condition to await.
                tokio::time::sleep(Duration::from_millis(*after_ms)).await;
                self.creditd.take().unwrap().kill().await;
                self.boot().await;
            }
            Step::GrantFault { grant_made } => {
                let kind = if *grant_made {
                    FaultKind::EffectThenStored500
                } else {
                    FaultKind::Stored500
                };
                self.stripe
                    .inject(Fault::new("POST", "/v1/billing/credit_grants", kind));
            }
            Step::RateLimited => self
                .stripe
                .inject(Fault::new("*", "/v1/", FaultKind::rate_limited()).times(3)),
        }
    }

    async fn redeliver(&self, reversed: bool) {
        let mut events = self.stripe.events();
        if reversed {
            events.reverse();
        }
        let deliveries = events.iter().map(|event| self.stripe.deliver_event(event));
        futures::future::join_all(deliveries).await;
    }

    /// Stripe's retries eventually deliver every event; then creditd must come to rest.
    async fn settle(&self) -> Result<(), TestCaseError> {
        self.stripe.clear_faults();
        self.stripe.set_webhook_delivery(true);
        self.stripe.wait_for_deliveries().await;
        self.redeliver(false).await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let (busy,): (i64,) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM purchases WHERE status IN ('granting', 'creating_invoice'))
                      + (SELECT count(*) FROM resyncs WHERE status = 'running')",
            )
            .fetch_one(&self.db)
            .await
            .unwrap();
            if busy == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                let logs = self.creditd.as_ref().map(|c| c.logs()).unwrap_or_default();
                let tail: String = logs.lines().rev().take(40).collect::<Vec<_>>().join("\n");
                return Err(TestCaseError::fail(format!(
                    "{busy} purchases or re-syncs never came to rest; creditd's last log lines:\n{tail}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn check(&self) -> Result<(), TestCaseError> {
        let grants = self.stripe.grants();
        for (invoice_id, purchase_id) in self.invoices.iter().zip(&self.purchases) {
            let invoice = self.stripe.invoice(invoice_id).unwrap();
            let stripe_status = invoice["status"].as_str().unwrap();
            let ours: Vec<&Value> = grants
                .iter()
                .filter(|g| g["metadata"]["creditd_purchase_id"] == purchase_id.as_str())
                .collect();
            let (status, grant_id, uncollectible): (String, Option<String>, bool) = sqlx::query_as(
                "SELECT status, credit_grant_id, uncollectible_at IS NOT NULL FROM purchases WHERE id = $1",
            )
            .bind(purchase_id)
            .fetch_one(&self.db)
            .await
            .unwrap();
            let context = format!("invoice {invoice_id} is {stripe_status}, purchase {status}");
            match stripe_status {
                "paid" => {
                    prop_assert_eq!(ours.len(), 1, "{}", context);
                    prop_assert_eq!(&status, "granted", "{}", context);
                    prop_assert_eq!(grant_id.as_deref(), ours[0]["id"].as_str(), "{}", context);
                }
                "void" => {
                    prop_assert!(ours.is_empty(), "{}", context);
                    prop_assert_eq!(&status, "canceled", "{}", context);
                }
                "open" | "uncollectible" => {
                    prop_assert!(ours.is_empty(), "{}", context);
                    prop_assert_eq!(&status, "awaiting_payment", "{}", context);
                    if stripe_status == "uncollectible" {
                        prop_assert!(uncollectible, "{}", context);
                    }
                }
                other => prop_assert!(false, "unexpected invoice status {}", other),
            }
        }
        self.check_outbox().await
    }

    /// Every change of settled status that is an outbound event left exactly one message, made
    /// by that transition, whatever the crashes and redeliveries; no message lacks its transition.
    async fn check_outbox(&self) -> Result<(), TestCaseError> {
        let (without, orphans): (i64, i64) = sqlx::query_as(
            "SELECT
               (SELECT count(*) FROM purchase_transitions t
                WHERE webhook_transition_is_event(t.purchase_id, t.id, t.to_status)
                  AND (SELECT count(*) FROM webhook_messages m
                       WHERE m.transition_id = t.id AND m.event_type = 'purchase.' || t.to_status) <> 1),
               (SELECT count(*) FROM webhook_messages m
                WHERE m.transition_id IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM purchase_transitions t
                    WHERE t.id = m.transition_id AND t.purchase_id = m.purchase_id))",
        )
        .fetch_one(&self.db)
        .await
        .unwrap();
        prop_assert_eq!(without, 0, "transitions without exactly one message");
        prop_assert_eq!(orphans, 0, "messages without their transition");
        Ok(())
    }
}

async fn run_history(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut world = World::start().await;
    for step in &steps {
        world.apply(step).await;
    }
    world.settle().await?;
    let checked = world.check().await;
    if let Some(creditd) = world.creditd.take() {
        creditd.kill().await;
    }
    world.db.close().await;
    checked
}
