//! Automatic top-ups: when a customer's available credits for a rule's scope fall below its
//! threshold, creditd buys more with the saved card.
//!
//! A top-up is an ordinary purchase, so everything after its creation is the usual pipeline: a
//! `charge_automatically` invoice created and finalized by [`crate::funding`], then charged at
//! once (`POST /v1/invoices/{id}/pay`, `off_session`), then `invoice.paid` and one grant.
//!
//! When a rule is checked: after a `billing.credit_balance_transaction.created` debit on one of
//! creditd's grants for that customer (at once), and otherwise every `AUTO_TOPUP_SWEEP_SECS`. Each
//! check is one balance read on the read lane of the Stripe rate limiter, so checks wait behind
//! grants and never take their capacity.
//!
//! Why one crossing never makes two top-ups, whatever crashes or races:
//! - *One in flight per rule*: a unique partial index over top-ups in `creating_invoice`,
//!   `awaiting_payment` or `granting` makes every concurrent insert but one do nothing.
//! - *Cooldown and monthly caps are checked by the inserting statement itself*
//!   ([`db::topups::create`]), and a skipped check records why (`last_skip_reason`).
//! - *A crash after the insert* leaves a purchase that a worker funds (funding's own write-ahead
//!   discipline); a crash before it leaves nothing, and the next check sees the same low balance.
//! - *Failures count in the same transaction as the status change* (a trigger): after
//!   `pause_after_failures` consecutive failed top-ups the rule pauses itself, with the reason.

pub mod rule_request;

use std::time::Duration;

use serde_json::json;

use crate::db;
use crate::ids::PurchaseId;
use crate::services::Services;
use crate::stripe::StripeError;
use crate::stripe::api::topup as requests;
use crate::stripe::types::CreditBalanceSummary;

/// A claimed rule is left to its checker this long (its lease).
const HOLD: Duration = Duration::from_secs(30);
/// Rules checked per call, so checks never starve purchase work.
const BATCH: i64 = 20;

/// What one check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// The balance was at or above the threshold.
    Enough { customer: String, balance: i64 },
    /// A top-up purchase was created.
    ToppedUp {
        customer: String,
        purchase_id: PurchaseId,
    },
    /// Low, but a limit held it back (in flight, cooldown, monthly cap).
    Skipped { customer: String, reason: String },
    /// Stripe failed; checked again after the hold.
    Later { customer: String, error: String },
}

/// Checks every rule that is due, up to a batch.
pub async fn check_due(services: &Services) -> anyhow::Result<Vec<Checked>> {
    let rules = db::topups::claim_due(&services.db, HOLD, BATCH).await?;
    let mut checked = Vec::with_capacity(rules.len());
    for rule in rules {
        let customer = rule.customer.clone();
        let balance = match read_balance(services, &rule).await {
            Ok(balance) => balance,
            Err(error) => {
                tracing::warn!(%customer, %error, "could not read the balance for an auto top-up check");
                checked.push(Checked::Later {
                    customer,
                    error: error.to_string(),
                });
                continue;
            }
        };
        let outcome = if balance < rule.threshold {
            create(services, &rule, balance).await?
        } else {
            Checked::Enough {
                customer: customer.clone(),
                balance,
            }
        };
        let skip = match &outcome {
            Checked::Skipped { reason, .. } => Some(reason.as_str()),
            _ => None,
        };
        let next = services.policy.topup_sweep;
        db::topups::checked(&services.db, &customer, balance, skip, next).await?;
        tracing::info!(%customer, balance, ?outcome, "auto top-up rule checked");
        checked.push(outcome);
    }
    Ok(checked)
}

async fn read_balance(services: &Services, rule: &db::topups::Rule) -> Result<i64, StripeError> {
    let request = requests::scope_balance(&rule.customer, &rule.credit.0.applicability);
    let summary: CreditBalanceSummary = services.stripe.send(&request).await?;
    Ok(summary.available_in(&rule.currency))
}

async fn create(
    services: &Services,
    rule: &db::topups::Rule,
    balance: i64,
) -> anyhow::Result<Checked> {
    let customer = rule.customer.clone();
    let amount = rule.topup_amount(balance);
    let mut credit = rule.credit.0.clone();
    credit.value = amount;
    let purchase_id = PurchaseId::generate();
    let trigger = json!({
        "balance": balance,
        "threshold": rule.threshold,
        "rule": if rule.amount.is_some() { "amount" } else { "top_up_to" },
        "triggered_by": rule.check_reason.as_deref().unwrap_or("sweep"),
        "checked_at": chrono::Utc::now().timestamp(),
    });
    let created = db::topups::create(
        &services.db,
        rule,
        balance,
        &purchase_id,
        services.livemode,
        &credit,
        &trigger,
        services.policy.topup_cooldown,
    )
    .await?;
    Ok(match created {
        db::topups::Created::TopUp(purchase_id) => {
            services.metrics.topup_created();
            services.wake.notify_one();
            Checked::ToppedUp {
                customer,
                purchase_id,
            }
        }
        db::topups::Created::Skipped(reason) => Checked::Skipped { customer, reason },
    })
}
