//! How a purchase shows the refunds and disputes of its payment, and what they did to its credits.

use serde::Serialize;
use utoipa::ToSchema;

use crate::db::grant_moves::ReversalView;
use crate::reversal::{MovePolicy, MoveStep};

/// One refund, dispute or credit note of the purchase's payment.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reversal {
    /// Stripe's id for the money movement: `re_…`, `du_…` or `cn_…`.
    pub id: String,
    /// refund, dispute or credit_note.
    pub kind: String,
    /// Money reversed, in the currency's minor unit.
    pub amount: i64,
    pub currency: String,
    /// Stripe's status of the refund or dispute, as last read.
    pub stripe_status: String,
    /// Whether the money is gone now (false once a refund failed or a dispute was won).
    pub money_reversed: bool,
    /// pending, taken, recorded (REVERSAL_POLICY=record_only), taken_at_grant, restored.
    pub state: String,
    /// Credits taken back for it (0 until its move is done).
    pub credits_taken: i64,
    /// Credits it should have taken but the customer had used already.
    pub credits_shortfall: i64,
    /// Credits given back after the money returned.
    pub credits_restored: i64,
    /// The grant voided or expired for it, and the grant that replaced it.
    pub ended_grant_id: Option<String>,
    pub replacement_grant_id: Option<String>,
    /// The grant that gave its credits back.
    pub restore_grant_id: Option<String>,
}

impl From<&ReversalView> for Reversal {
    fn from(v: &ReversalView) -> Self {
        let take_done = v.take_step == Some(MoveStep::Done);
        let restored = v.restore_step == Some(MoveStep::Done);
        let state = match (v.take_step, v.take_policy, restored) {
            (_, _, true) => "restored",
            (Some(MoveStep::Done), Some(MovePolicy::RecordOnly), _) => "recorded",
            (Some(MoveStep::Done), Some(MovePolicy::AtGrant), _) => "taken_at_grant",
            (Some(MoveStep::Done), _, _) => "taken",
            _ => "pending",
        };
        let recorded_only = v.take_policy == Some(MovePolicy::RecordOnly);
        let shortfall = v.take_shortfall.unwrap_or(0);
        Reversal {
            id: v.id.clone(),
            kind: v.kind.as_str().into(),
            amount: v.amount,
            currency: v.currency.clone(),
            stripe_status: v.stripe_status.clone(),
            money_reversed: v.money_reversed,
            state: state.into(),
            credits_taken: if take_done && !recorded_only {
                v.take_credits.unwrap_or(0) - shortfall
            } else {
                0
            },
            credits_shortfall: if take_done { shortfall } else { 0 },
            credits_restored: if restored {
                v.restore_credits.unwrap_or(0)
            } else {
                0
            },
            ended_grant_id: v
                .take_end_action
                .filter(|a| *a != crate::reversal::EndAction::None)
                .and(v.take_old_grant_id.clone()),
            replacement_grant_id: v.take_new_grant_id.clone(),
            restore_grant_id: v.restore_new_grant_id.clone(),
        }
    }
}
