//! The purchase state machine: what each thing Stripe tells us about an invoice does to its purchase.
//!
//! [`decide`] is the only place the rule lives. SQL never restates it: [`decision_table_sql`]
//! renders this function's whole table as a `VALUES` list that the recording statement, the
//! catch-up statements and the matcher join against, and the dry run calls [`decide`] directly.
//!
//! | status               | paid before | invoice paid            | invoice voided         | marked uncollectible | payment reversal      |
//! |----------------------|-------------|-------------------------|------------------------|----------------------|-----------------------|
//! | `creating_invoice`   | –           | → `granting`, scheduled | → `canceled`, canceled | stays, noted         | stays, noted          |
//! | `awaiting_payment`   | –           | → `granting`, scheduled | → `canceled`, canceled | stays, noted         | stays, noted          |
//! | `failed`             | no          | → `granting`, scheduled | → `canceled`, canceled | stays, noted         | stays, noted          |
//! | `failed`             | yes         | already_failed          | already_failed         | already_failed       | stays, noted          |
//! | `canceled`           | –           | → `granting`, scheduled | already_canceled       | already_canceled     | stays, noted          |
//! | `granting`           | –           | already_granting        | already_granting       | already_granting     | stays, noted          |
//! | `granted`            | –           | already_granted         | already_granted        | already_granted      | → `reversing`, scheduled |
//! | `rejected`           | –           | already_rejected        | already_rejected       | already_rejected     | stays, noted          |
//! | `reversing`          | –           | already_reversing       | already_reversing      | already_reversing    | already_reversing     |
//! | `partially_reversed` | –           | already_…               | already_…              | already_…            | → `reversing`, scheduled |
//! | `reversed`           | –           | already_reversed        | already_reversed       | already_reversed     | → `reversing`, scheduled |
//!
//! A payment reversal (refund, dispute, credit note, either way) always also sets the purchase's
//! `reversal_sync_due`, so a `granting` purchase's grant and a `reversing` purchase's current
//! pass account for it ([`crate::reversal`]).
//!
//! Why the table looks like this:
//! - *A paid invoice wins over every earlier signal.* Stripe lets an `uncollectible` invoice be paid
//!   later, and a purchase canceled by an older creditd (or failed while funding) may still see its
//!   invoice paid. Scheduling is always safe: the worker re-reads the invoice from Stripe and grants
//!   only if Stripe says it is paid and covers the purchase.
//! - *`uncollectible` is not final.* It is noted on the purchase (`uncollectible_at`), which stays
//!   payable; only a void (Stripe's, or creditd's own cancel, which voids first) ends it unpaid.
//! - *Nothing moves a purchase that was paid.* Once `granting`, only the worker decides (granted,
//!   rejected or failed), and a rejected or failed purchase that was paid is counted by the
//!   "paid without credits" gauge and alerted on, never silently dropped.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::PurchaseStatus;

/// What Stripe told us happened to a purchase's invoice. Every event type creditd does not act on
/// has no `Happening` and is recorded as `ignored`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Happening {
    /// `invoice.paid` (card, bank, customer balance or out of band): asks for a grant.
    Paid,
    /// `invoice.voided`, `checkout.session.expired` (the payment page closed unpaid), or
    /// creditd's own cancel after it voided the invoice: asks to cancel.
    Voided,
    /// `invoice.marked_uncollectible`: only noted; the invoice can still be paid.
    MarkedUncollectible,
    /// A refund, dispute or credit note moved money on the purchase's payment, either way (a refund
    /// that failed and a dispute that was won move it back). Stripe's current refunds and disputes
    /// are read by the worker, so the event only says "look again".
    PaymentReversal,
}

impl Happening {
    pub const ALL: [Happening; 4] = [
        Happening::Paid,
        Happening::Voided,
        Happening::MarkedUncollectible,
        Happening::PaymentReversal,
    ];

    /// The event types that tell creditd money moved back on a payment. `charge.dispute.created`
    /// is not one: an inquiry moves no money, and a real dispute's withdrawal has its own event.
    pub const PAYMENT_REVERSAL_EVENTS: [&'static str; 8] = [
        "charge.refunded",
        "refund.created",
        "refund.updated",
        "refund.failed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
        "charge.dispute.closed",
        "credit_note.created",
    ];

    pub fn for_event_type(event_type: &str) -> Option<Happening> {
        match event_type {
            "invoice.paid" => Some(Happening::Paid),
            "invoice.voided" | "checkout.session.expired" => Some(Happening::Voided),
            "invoice.marked_uncollectible" => Some(Happening::MarkedUncollectible),
            other if Self::PAYMENT_REVERSAL_EVENTS.contains(&other) => {
                Some(Happening::PaymentReversal)
            }
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Happening::Paid => "paid",
            Happening::Voided => "voided",
            Happening::MarkedUncollectible => "marked_uncollectible",
            Happening::PaymentReversal => "payment_reversal",
        }
    }
}

/// What recording an event (or a catch-up) did, as stored on the event and reported to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The purchase became due for granting.
    Scheduled,
    /// The purchase ended unpaid.
    Canceled,
    /// The happening was written on the purchase; its status did not change.
    Noted,
    /// The purchase was already past what this happening could change.
    Already(PurchaseStatus),
    /// No purchase belongs to this invoice (or refunded payment).
    Unmatched,
    /// A refund or dispute for a payment no purchase has linked yet: the resolver asks Stripe.
    Linking,
    /// An event type creditd does not act on.
    Ignored,
    /// The event id was recorded before; nothing changed.
    Duplicate,
}

impl Outcome {
    pub fn as_string(self) -> String {
        match self {
            Outcome::Scheduled => "scheduled".into(),
            Outcome::Canceled => "canceled".into(),
            Outcome::Noted => "noted".into(),
            Outcome::Already(status) => format!("already_{}", status.as_str()),
            Outcome::Unmatched => "unmatched".into(),
            Outcome::Linking => "linking".into(),
            Outcome::Ignored => "ignored".into(),
            Outcome::Duplicate => "duplicate".into(),
        }
    }

    /// How a dry run reports an outcome that would change something.
    pub fn as_prediction(self) -> String {
        match self {
            Outcome::Scheduled => "would_schedule".into(),
            Outcome::Canceled => "would_cancel".into(),
            Outcome::Noted => "would_note".into(),
            other => other.as_string(),
        }
    }

    /// Every outcome a stored event can carry (for the table's CHECK constraint and its test).
    pub fn all_stored() -> Vec<Outcome> {
        let mut all = vec![
            Outcome::Scheduled,
            Outcome::Canceled,
            Outcome::Noted,
            Outcome::Unmatched,
            Outcome::Linking,
            Outcome::Ignored,
        ];
        all.extend(PurchaseStatus::ALL.map(Outcome::Already));
        all
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.as_string())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown outcome {0:?}")]
pub struct UnknownOutcome(String);

impl FromStr for Outcome {
    type Err = UnknownOutcome;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if let Some(status) = value.strip_prefix("already_") {
            return PurchaseStatus::parse(status)
                .map(Outcome::Already)
                .ok_or_else(|| UnknownOutcome(value.into()));
        }
        [
            Outcome::Scheduled,
            Outcome::Canceled,
            Outcome::Noted,
            Outcome::Unmatched,
            Outcome::Linking,
            Outcome::Ignored,
            Outcome::Duplicate,
        ]
        .into_iter()
        .find(|o| o.as_string() == value)
        .ok_or_else(|| UnknownOutcome(value.into()))
    }
}

impl sqlx::Type<sqlx::Postgres> for Outcome {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <String as sqlx::Type<sqlx::Postgres>>::type_info()
    }
}

impl sqlx::Decode<'_, sqlx::Postgres> for Outcome {
    fn decode(value: sqlx::postgres::PgValueRef<'_>) -> Result<Self, sqlx::error::BoxDynError> {
        let text = <&str as sqlx::Decode<sqlx::Postgres>>::decode(value)?;
        Ok(text.parse()?)
    }
}

/// The state machine's answer: where the purchase goes (None: it stays) and what to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub next: Option<PurchaseStatus>,
    pub outcome: Outcome,
}

/// The whole purchase state machine for things Stripe tells us; see the module's table.
/// `paid_before` is whether creditd already learned of a payment for this purchase (`paid_at`),
/// which tells a grant that failed apart from funding that failed.
pub fn decide(status: PurchaseStatus, paid_before: bool, happening: Happening) -> Decision {
    use Happening::*;
    use PurchaseStatus::*;
    let move_to = |next, outcome| Decision {
        next: Some(next),
        outcome,
    };
    let stay = |outcome| Decision {
        next: None,
        outcome,
    };
    let unpaid = match status {
        CreatingInvoice | AwaitingPayment => true,
        Failed => !paid_before,
        Granting | Granted | Rejected | Canceled | Reversing | PartiallyReversed | Reversed => {
            false
        }
    };
    let holds_credits = matches!(status, Granted | PartiallyReversed | Reversed);
    match (status, happening) {
        (_, PaymentReversal) if holds_credits => move_to(Reversing, Outcome::Scheduled),
        // The grant about to be created accounts for it; an unpaid purchase meets it when paid;
        // a purchase that never granted has no credits to take back.
        (Reversing, PaymentReversal) => stay(Outcome::Already(Reversing)),
        (_, PaymentReversal) => stay(Outcome::Noted),
        (_, Paid) if unpaid || status == Canceled => move_to(Granting, Outcome::Scheduled),
        (_, Voided) if unpaid => move_to(Canceled, Outcome::Canceled),
        (_, MarkedUncollectible) if unpaid => stay(Outcome::Noted),
        _ => stay(Outcome::Already(status)),
    }
}

/// Every row of [`decide`]'s table as SQL: `(VALUES …) AS decisions(status, paid_before,
/// happening, next_status, outcome)`. Statements join it on the purchase's status and
/// `paid_at IS NOT NULL`, so they apply exactly the decision this module makes.
pub fn decision_table_sql() -> String {
    let mut rows = Vec::new();
    for status in PurchaseStatus::ALL {
        for paid_before in [false, true] {
            for happening in Happening::ALL {
                let decision = decide(status, paid_before, happening);
                let next = decision
                    .next
                    .map_or("NULL".to_string(), |s| format!("'{}'", s.as_str()));
                rows.push(format!(
                    "('{}', {paid_before}, '{}', {next}, '{}')",
                    status.as_str(),
                    happening.as_str(),
                    decision.outcome
                ));
            }
        }
    }
    format!(
        "(VALUES {}) AS decisions(status, paid_before, happening, next_status, outcome)",
        rows.join(", ")
    )
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
