//! Grant moves: what each reversal does to the purchase's one current grant, planned from its
//! balance and carried out with a write-ahead step before every Stripe write (see the module
//! above for why a crash at any line is safe).

use super::{Direction, EndAction, MovePolicy, MoveStep, ReversalPolicy, credits_for};
use crate::attempt::Attempt;
use crate::db;
use crate::db::grant_moves::GrantMove;
use crate::db::reversals::ReversalRow;
use crate::purchase::Purchase;
use crate::stripe::StripeError;
use crate::stripe::api;
use crate::stripe::api::reversal as stripe_reversal;
use crate::stripe::types::{CreditBalanceSummary, CreditGrant};

/// What one step of a pass did.
pub enum Stepped {
    /// A move was planned, resumed or finished; look again.
    Moved,
    /// Every reversal is accounted for.
    Nothing,
    LeaseLost,
    Stripe(StripeError),
}

/// The next move a purchase needs: one to finish, else one to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Resume(GrantMove),
    Plan {
        reversal_id: String,
        direction: Direction,
        credits: i64,
    },
}

/// Chooses the next move from the reversals (in order) and the moves made so far. Pure, so the
/// rule is tested on its own: a take once money is gone, a restore once it came back after a take.
pub fn next_move(
    reversals: &[ReversalRow],
    moves: &[GrantMove],
    grant_value: i64,
    paid: i64,
) -> Option<Next> {
    if let Some(unfinished) = moves.iter().find(|m| m.step != MoveStep::Done) {
        return Some(Next::Resume(unfinished.clone()));
    }
    let find = |id: &str, direction| {
        moves
            .iter()
            .find(|m| m.reversal_id == id && m.direction == direction)
    };
    reversals.iter().find_map(|r| {
        let take = find(&r.id, Direction::Take);
        let restore = find(&r.id, Direction::Restore);
        match (r.money_reversed, take, restore) {
            (true, None, _) => Some(Next::Plan {
                reversal_id: r.id.clone(),
                direction: Direction::Take,
                credits: credits_for(grant_value, r.amount, paid),
            }),
            // Only what was taken comes back: not the shortfall, nothing for a take only recorded.
            (false, Some(take), None) => Some(Next::Plan {
                reversal_id: r.id.clone(),
                direction: Direction::Restore,
                credits: match take.policy {
                    MovePolicy::RecordOnly => 0,
                    _ => take.credits - take.shortfall,
                },
            }),
            _ => None,
        }
    })
}

/// Plans a move against a current grant holding `available` of the `current_value` it was created
/// with. `new_amount` is the replacement grant to create (0: none).
pub fn plan(
    reversal_id: String,
    direction: Direction,
    credits: i64,
    current: Option<(&str, i64)>,
    available: i64,
    policy: MovePolicy,
) -> GrantMove {
    let (old_grant_id, current_value) = current.unzip();
    let has_grant = old_grant_id.is_some() && available > 0;
    let (end_action, new_amount, shortfall) = match (policy, direction) {
        (MovePolicy::RecordOnly, Direction::Take) => {
            (EndAction::None, 0, (credits - available).max(0))
        }
        (MovePolicy::RecordOnly | MovePolicy::AtGrant, _) => (EndAction::None, 0, 0),
        (MovePolicy::Reverse, Direction::Take) => {
            let left = (available - credits).max(0);
            let shortfall = (credits - available).max(0);
            if !has_grant || credits == 0 {
                (EndAction::None, 0, shortfall)
            } else if left == 0 && current_value == Some(available) {
                (EndAction::Void, 0, shortfall)
            } else {
                (EndAction::Expire, left, shortfall)
            }
        }
        (MovePolicy::Reverse, Direction::Restore) if credits == 0 => (EndAction::None, 0, 0),
        (MovePolicy::Reverse, Direction::Restore) if has_grant => {
            (EndAction::Expire, available + credits, 0)
        }
        (MovePolicy::Reverse, Direction::Restore) => (EndAction::None, credits, 0),
    };
    let done = end_action == EndAction::None && new_amount == 0;
    GrantMove {
        reversal_id,
        direction,
        step: if done {
            MoveStep::Done
        } else {
            MoveStep::Planned
        },
        policy,
        credits,
        available_before: available,
        shortfall,
        old_grant_id: old_grant_id.map(str::to_owned),
        end_action,
        new_amount,
        new_grant_id: None,
        planned_at: chrono::Utc::now(),
        done_at: None,
    }
}

/// One step of a reversing pass over `purchase` (freshly read).
pub async fn step(
    attempt: &Attempt<'_>,
    purchase: &Purchase,
    paid: i64,
) -> anyhow::Result<Stepped> {
    let services = attempt.services;
    let reversals = db::reversals::reversals_of(&services.db, &purchase.id).await?;
    let moves = db::grant_moves::moves_of(&services.db, &purchase.id).await?;
    let Some(next) = next_move(&reversals, &moves, purchase.credit.0.value, paid) else {
        return Ok(Stepped::Nothing);
    };
    let planned = match next {
        Next::Resume(unfinished) => unfinished,
        Next::Plan {
            reversal_id,
            direction,
            credits,
        } => {
            let current = purchase.current_grant_id.as_deref();
            let available = match current {
                Some(grant_id) => {
                    let request = stripe_reversal::grant_balance(&purchase.customer, grant_id);
                    match attempt.call::<CreditBalanceSummary>(request).await? {
                        Ok(summary) => summary.available(),
                        Err(error) => return Ok(Stepped::Stripe(error)),
                    }
                }
                None => 0,
            };
            // A restore follows its take: credits taken at Stripe come back at Stripe even if
            // the policy changed since.
            let policy = match (direction, services.policy.reversal) {
                (Direction::Restore, _) | (_, ReversalPolicy::Reverse) => MovePolicy::Reverse,
                (Direction::Take, ReversalPolicy::RecordOnly) => MovePolicy::RecordOnly,
            };
            let current = current.map(|id| (id, purchase.current_grant_value.unwrap_or(0)));
            let planned = plan(reversal_id, direction, credits, current, available, policy);
            if !db::grant_moves::plan_move(&services.db, &purchase.id, attempt.owner, &planned)
                .await?
            {
                return Ok(Stepped::LeaseLost);
            }
            services.metrics.grant_move(
                planned.direction.as_str(),
                planned.policy.as_str(),
                planned.shortfall,
            );
            if planned.step == MoveStep::Done {
                return Ok(Stepped::Moved);
            }
            planned
        }
    };
    carry_out(attempt, purchase, planned).await
}

/// Ends the old grant (unless already ended), then creates the replacement (unless one exists).
async fn carry_out(
    attempt: &Attempt<'_>,
    purchase: &Purchase,
    mut planned: GrantMove,
) -> anyhow::Result<Stepped> {
    let services = attempt.services;
    let key = planned.key();
    if planned.step == MoveStep::Planned {
        if let (Some(old), EndAction::Void | EndAction::Expire) =
            (planned.old_grant_id.as_deref(), planned.end_action)
            && let Err(error) = end_grant(attempt, purchase, old, planned.end_action, &key).await?
        {
            return Ok(Stepped::Stripe(error));
        }
        if planned.new_amount == 0 {
            return complete(attempt, &planned, None).await;
        }
        if !db::grant_moves::mark_replacing(&services.db, &purchase.id, attempt.owner, &planned)
            .await?
        {
            return Ok(Stepped::LeaseLost);
        }
        planned.step = MoveStep::Replacing;
    } else {
        // `replacing` was committed by an earlier attempt: the grant may exist already.
        let page = |cursor: Option<&str>| api::list_grants(&purchase.customer, cursor);
        let ours = |grant: &CreditGrant| grant.metadata.get("creditd_move") == Some(&key);
        match attempt.search_pages(page, ours).await? {
            Ok(Some(grant)) => return complete(attempt, &planned, Some(&grant.id)).await,
            Ok(None) => {}
            Err(error) => return Ok(Stepped::Stripe(error)),
        }
    }
    let request = stripe_reversal::create_replacement(
        purchase,
        planned.new_amount,
        planned.old_grant_id.as_deref(),
        &key,
    );
    match attempt.call::<CreditGrant>(request).await? {
        Ok(grant) => complete(attempt, &planned, Some(&grant.id)).await,
        Err(error) => Ok(Stepped::Stripe(error)),
    }
}

/// Voids or expires the grant unless it has ended already. A void Stripe refuses (credits were
/// applied since the plan) becomes an expiry: what was applied stays applied either way.
async fn end_grant(
    attempt: &Attempt<'_>,
    purchase: &Purchase,
    grant_id: &str,
    action: EndAction,
    key: &str,
) -> anyhow::Result<Result<(), StripeError>> {
    let grant: CreditGrant = match attempt.call(stripe_reversal::get_grant(grant_id)).await? {
        Ok(grant) => grant,
        Err(error) => return Ok(Err(error)),
    };
    if grant.has_ended(api::grant_expiry(purchase), chrono::Utc::now().timestamp()) {
        return Ok(Ok(()));
    }
    let void = action == EndAction::Void;
    let request = stripe_reversal::end_grant(grant_id, void, key);
    match attempt.call::<CreditGrant>(request).await? {
        Ok(_) => Ok(Ok(())),
        Err(error) if void && error.status() == Some(400) => {
            let expire = stripe_reversal::end_grant(grant_id, false, key);
            Ok(attempt.call::<CreditGrant>(expire).await?.map(|_| ()))
        }
        Err(error) => Ok(Err(error)),
    }
}

async fn complete(
    attempt: &Attempt<'_>,
    planned: &GrantMove,
    new_grant_id: Option<&str>,
) -> anyhow::Result<Stepped> {
    let purchase_id = &attempt.purchase.id;
    db::grant_moves::complete_move(&attempt.services.db, purchase_id, planned, new_grant_id)
        .await?;
    tracing::info!(purchase_id = %purchase_id, reversal_id = %planned.reversal_id, direction = planned.direction.as_str(), credits = planned.credits, shortfall = planned.shortfall, new_grant_id, "grant move done");
    Ok(Stepped::Moved)
}

/// Before the grant exists: reads the refunds and disputes and accounts for them in the grant about
/// to be created, with `at_grant` moves (no Stripe write). Returns the value to grant (0: none),
/// or None if the lease was lost. `reversal_sync_due` stays set, so that a crash here reads again
/// and the purchase passes through `reversing` (which settles its status) once granted.
pub async fn account_before_grant(
    attempt: &Attempt<'_>,
    paid: i64,
) -> anyhow::Result<Result<Option<i64>, StripeError>> {
    let services = attempt.services;
    let purchase = attempt.purchase;
    if let Err(error) = super::read_reversals(attempt).await? {
        return Ok(Err(error));
    }
    let value = purchase.credit.0.value;
    let policy = match services.policy.reversal {
        ReversalPolicy::Reverse => MovePolicy::AtGrant,
        ReversalPolicy::RecordOnly => MovePolicy::RecordOnly,
    };
    loop {
        let reversals = db::reversals::reversals_of(&services.db, &purchase.id).await?;
        let moves = db::grant_moves::moves_of(&services.db, &purchase.id).await?;
        let remaining = remaining_before_grant(value, &moves);
        let Some(Next::Plan {
            reversal_id,
            direction,
            credits,
        }) = next_move(&reversals, &moves, value, paid)
        else {
            return Ok(Ok(Some(remaining)));
        };
        let credits = match direction {
            Direction::Take => credits.min(remaining),
            Direction::Restore => credits,
        };
        let mut planned = plan(reversal_id, direction, credits, None, remaining, policy);
        planned.step = MoveStep::Done;
        if !db::grant_moves::plan_move(&services.db, &purchase.id, attempt.owner, &planned).await? {
            return Ok(Ok(None));
        }
        services
            .metrics
            .grant_move(direction.as_str(), policy.as_str(), planned.shortfall);
    }
}

/// The grant's value after the moves made before it existed.
pub fn remaining_before_grant(value: i64, moves: &[GrantMove]) -> i64 {
    moves
        .iter()
        .filter(|m| m.policy == MovePolicy::AtGrant)
        .fold(value, |left, m| match m.direction {
            Direction::Take => left - m.credits,
            Direction::Restore => left + m.credits,
        })
        .clamp(0, value)
}

#[cfg(test)]
#[path = "moves_tests.rs"]
mod tests;
