//! Refunds and disputes take the credits back, exactly once, and a failed refund or a won dispute
//! gives them back.
//!
//! Every refund, dispute or credit-note event only makes the purchase look again
//! ([`crate::purchase::lifecycle::Happening::PaymentReversal`]): a granted purchase becomes
//! `reversing`, and whatever its status its `reversal_sync_due` is set. A worker holding the
//! purchase's lease then runs [`reverse`]:
//!
//! 1. It clears `reversal_sync_due` and reads Stripe's refunds and disputes of the purchase's
//!    payments (the truth now, so duplicate, reordered or missing events cannot mislead it) into
//!    `reversals`, one row per money movement keyed by Stripe's id (`re_…`, `du_…`).
//! 2. For each reversal in order, a grant move: *take* when its money is gone and nothing was
//!    taken for it yet, *restore* when its money came back after a take. A move replaces the
//!    purchase's one current grant by a grant holding `available ± credits` ([`moves`]).
//! 3. It ends the pass `partially_reversed`, `reversed` or `granted`, unless an event set
//!    `reversal_sync_due` meanwhile: then the purchase stays `reversing` and is due again.
//!
//! Credits taken for a reversal: `grant value × money reversed ÷ amount paid`, rounded down, where
//! the amount paid is the sum of the invoice's payments. The customer may have used some already:
//! what is left is taken, the rest is the move's `shortfall`, counted and shown, never a negative
//! grant.
//!
//! Why a crash at any line neither reverses twice nor loses a reversal:
//! - *Before a move is planned*: nothing was written at Stripe; the next pass reads again.
//! - *The plan (`step = planned`) is committed before the current grant is voided or expired*,
//!   with the amounts it was computed from. So a later attempt never re-reads a balance that its
//!   own earlier call changed: it resumes the plan.
//! - *Ending the grant*: the request carries `creditd-move-<reversal>-<direction>-<void|expire>`;
//!   before sending it again, the attempt retrieves the grant, and a grant already voided or
//!   expired (its `expires_at` moved from the purchase's expiry) is not ended twice. Retrieving
//!   one object by id is read-your-writes, so no settle time is needed.
//! - *`step = replacing` is committed before the replacement is created*. An attempt that finds
//!   it already set first pages through the customer's grants for the one whose metadata carries
//!   `creditd_move = <reversal>-<direction>` and adopts it. The create carries
//!   `creditd-move-<reversal>-<direction>-grant`, so within Stripe's 24 hours a retry replays the
//!   first answer even before the grant is listed, and after 24 hours the grant is long listed.
//! - *Between Stripe's success and our commit*: the next attempt adopts the grant (as above).
//! - *After `complete_move` commits* (the move `done` and the new grant current, in one
//!   statement), the move is never run again: `(reversal, direction)` is the primary key.
//! - *A lost lease*: planning and `replacing` need the lease; completing does not, because it
//!   only records what exists at Stripe. Two holders can only send the same keys.
//! - *Money's effect is never lost*: the pass ends only when every reversal whose money is gone
//!   has its take done (and every returned one its restore), and only when no event arrived
//!   since it read Stripe.
//!
//! A refund before the grant exists is accounted for in the grant itself: fulfilment runs the
//! same read, writes `at_grant` moves, and creates a smaller grant (or none: `reversed`).

pub mod kinds;
mod moves;
pub mod resolve;
mod sync;

pub use kinds::{Direction, EndAction, MovePolicy, MoveStep, ReversalKind, ReversalPolicy};
pub use moves::{account_before_grant, remaining_before_grant};
pub use sync::{link_invoice_payments, read_reversals};

use std::time::Duration;

use crate::attempt::{Attempt, AttemptOutcome, AttemptResult};
use crate::db;
use crate::db::reversals::ReversalRow;
use crate::purchase::{Purchase, PurchaseStatus};
use crate::services::Services;
use crate::stripe::StripeError;

/// The credits a reversal of `money` takes back: the refunded share of what was paid, rounded down.
pub fn credits_for(grant_value: i64, money: i64, paid: i64) -> i64 {
    if paid <= 0 {
        return 0;
    }
    let share = i128::from(grant_value) * i128::from(money) / i128::from(paid);
    share.clamp(0, i128::from(grant_value)) as i64
}

/// The status a purchase ends a pass in, from the money reversed now.
pub fn status_after(reversals: &[ReversalRow], paid: i64) -> PurchaseStatus {
    let reversed: i64 = reversals
        .iter()
        .filter(|r| r.money_reversed)
        .map(|r| r.amount)
        .sum();
    if reversed == 0 {
        PurchaseStatus::Granted
    } else if reversed >= paid {
        PurchaseStatus::Reversed
    } else {
        PurchaseStatus::PartiallyReversed
    }
}

/// What was paid for the purchase: its linked payments, else what its invoice showed.
pub async fn amount_paid(services: &Services, purchase: &Purchase) -> sqlx::Result<i64> {
    let linked: i64 = db::reversals::payments_of(&services.db, &purchase.id)
        .await?
        .iter()
        .map(|p| p.amount_paid)
        .sum();
    if linked > 0 {
        return Ok(linked);
    }
    let settled = purchase.settlement.as_ref().map_or(0, |s| s.0.amount_paid);
    Ok(if settled > 0 {
        settled
    } else {
        purchase.amount
    })
}

/// Runs one reversing pass over a claimed `reversing` purchase.
pub async fn reverse(services: &Services, purchase: &Purchase, owner: &str) -> AttemptResult {
    let attempt = Attempt {
        services,
        purchase,
        owner,
    };
    if !db::reversals::begin_sync(&services.db, &purchase.id, owner).await? {
        return Ok(AttemptOutcome::LeaseLost);
    }
    if let Err(error) = read_reversals(&attempt).await? {
        return retry(&attempt, error).await;
    }
    let paid = amount_paid(services, purchase).await?;
    loop {
        let current = db::purchases::find(&services.db, &purchase.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("purchase {} vanished", purchase.id))?;
        match moves::step(&attempt, &current, paid).await? {
            moves::Stepped::Moved => continue,
            moves::Stepped::Nothing => break,
            moves::Stepped::LeaseLost => return Ok(AttemptOutcome::LeaseLost),
            moves::Stepped::Stripe(error) => return retry(&attempt, error).await,
        }
    }
    let reversals = db::reversals::reversals_of(&services.db, &purchase.id).await?;
    let status = status_after(&reversals, paid);
    match db::reversals::finish_pass(&services.db, &purchase.id, owner, status).await? {
        None => Ok(AttemptOutcome::LeaseLost),
        Some(PurchaseStatus::Reversing) => {
            services.wake.notify_one();
            Ok(AttemptOutcome::RetryScheduled(
                "a refund or dispute arrived during the pass; reading again".into(),
            ))
        }
        Some(status) => {
            tracing::info!(purchase_id = %purchase.id, status = status.as_str(), "reversals applied");
            Ok(AttemptOutcome::Reversed(status))
        }
    }
}

/// A reversal never fails the purchase: it holds credits that must follow the money, so Stripe
/// errors are retried with backoff (the attempt count only sets the delay) and shown on it.
async fn retry(attempt: &Attempt<'_>, error: StripeError) -> AttemptResult {
    let services = attempt.services;
    let purchase = attempt.purchase;
    let delay = if error.is_transient() {
        services.policy.delay_after(purchase.attempts)
    } else {
        services.policy.max_delay
    };
    let reason = format!("reversal: {error}");
    tracing::warn!(purchase_id = %purchase.id, %reason, "reversal will be retried");
    let scheduled = db::work::retry_later(
        &services.db,
        purchase,
        attempt.owner,
        delay.max(Duration::from_millis(100)),
        &reason,
        true,
    )
    .await?;
    Ok(if scheduled {
        AttemptOutcome::RetryScheduled(reason)
    } else {
        AttemptOutcome::LeaseLost
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credits_are_the_refunded_share_rounded_down() {
        assert_eq!(credits_for(10_000, 2_500, 5_000), 5_000);
        assert_eq!(credits_for(1_000, 1, 3), 333);
        assert_eq!(credits_for(1_000, 3, 3), 1_000);
        assert_eq!(credits_for(1_000, 5, 3), 1_000);
        assert_eq!(credits_for(1_000, 1, 0), 0);
        assert_eq!(credits_for(i64::MAX, i64::MAX, i64::MAX), i64::MAX);
    }
}
