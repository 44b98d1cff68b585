//! One test per row of the decision table, plus the properties the table must keep.

use super::*;
use Happening::*;
use PurchaseStatus::*;

fn row(status: PurchaseStatus, paid_before: bool) -> [Decision; 3] {
    [Paid, Voided, MarkedUncollectible].map(|h| decide(status, paid_before, h))
}

fn to(next: PurchaseStatus, outcome: Outcome) -> Decision {
    Decision {
        next: Some(next),
        outcome,
    }
}

fn stays(outcome: Outcome) -> Decision {
    Decision {
        next: None,
        outcome,
    }
}

const UNPAID_ROW: [Decision; 3] = [
    Decision {
        next: Some(Granting),
        outcome: Outcome::Scheduled,
    },
    Decision {
        next: Some(Canceled),
        outcome: Outcome::Canceled,
    },
    Decision {
        next: None,
        outcome: Outcome::Noted,
    },
];

#[test]
fn creating_invoice_is_payable_cancelable_and_notes_uncollectible() {
    for paid_before in [false, true] {
        assert_eq!(row(CreatingInvoice, paid_before), UNPAID_ROW);
    }
}

#[test]
fn awaiting_payment_is_payable_cancelable_and_notes_uncollectible() {
    for paid_before in [false, true] {
        assert_eq!(row(AwaitingPayment, paid_before), UNPAID_ROW);
    }
}

#[test]
fn failed_before_payment_still_accepts_its_payment() {
    assert_eq!(row(Failed, false), UNPAID_ROW);
}

#[test]
fn failed_after_payment_is_left_to_the_operator_and_the_alert() {
    let already = stays(Outcome::Already(Failed));
    assert_eq!(row(Failed, true), [already; 3]);
}

#[test]
fn canceled_is_revived_only_by_a_payment() {
    for paid_before in [false, true] {
        assert_eq!(
            row(Canceled, paid_before),
            [
                to(Granting, Outcome::Scheduled),
                stays(Outcome::Already(Canceled)),
                stays(Outcome::Already(Canceled)),
            ]
        );
    }
}

#[test]
fn paid_purchases_are_never_moved_by_invoice_events() {
    for status in [
        Granting,
        Granted,
        Rejected,
        Reversing,
        PartiallyReversed,
        Reversed,
    ] {
        for paid_before in [false, true] {
            assert_eq!(
                row(status, paid_before),
                [stays(Outcome::Already(status)); 3]
            );
        }
    }
}

#[test]
fn a_payment_is_never_a_silent_no_op_for_a_purchase_that_holds_no_grant() {
    // Either the purchase is scheduled, or it is in a state the "paid without credits" gauge
    // counts (rejected, failed after payment), or it is already being granted or granted.
    for status in PurchaseStatus::ALL {
        for paid_before in [false, true] {
            let decision = decide(status, paid_before, Paid);
            let accounted = decision.next == Some(Granting)
                || matches!(
                    status,
                    Granting | Granted | Rejected | Reversing | PartiallyReversed | Reversed
                )
                || (status == Failed && paid_before);
            assert!(accounted, "{status:?} paid_before={paid_before}");
        }
    }
}

#[test]
fn only_a_void_ends_a_purchase_unpaid() {
    for status in PurchaseStatus::ALL {
        for paid_before in [false, true] {
            for happening in Happening::ALL {
                if decide(status, paid_before, happening).next == Some(Canceled) {
                    assert_eq!(happening, Voided);
                }
            }
        }
    }
}

#[test]
fn the_sql_table_has_every_row_of_decide() {
    let sql = decision_table_sql();
    let rows = sql.matches("('").count();
    assert_eq!(rows, PurchaseStatus::ALL.len() * 2 * Happening::ALL.len());
    assert!(sql.contains("('canceled', false, 'paid', 'granting', 'scheduled')"));
    assert!(sql.contains("('awaiting_payment', false, 'marked_uncollectible', NULL, 'noted')"));
    assert!(sql.contains("('failed', true, 'paid', NULL, 'already_failed')"));
}

#[test]
fn outcomes_round_trip_through_their_stored_text() {
    for outcome in Outcome::all_stored()
        .into_iter()
        .chain([Outcome::Duplicate])
    {
        assert_eq!(outcome.as_string().parse::<Outcome>().unwrap(), outcome);
    }
    assert!("already_lost".parse::<Outcome>().is_err());
    assert_eq!(Outcome::Scheduled.as_prediction(), "would_schedule");
    assert_eq!(Outcome::Canceled.as_prediction(), "would_cancel");
    assert_eq!(Outcome::Noted.as_prediction(), "would_note");
}

#[test]
fn event_types_map_to_happenings() {
    assert_eq!(Happening::for_event_type("invoice.paid"), Some(Paid));
    assert_eq!(Happening::for_event_type("invoice.voided"), Some(Voided));
    assert_eq!(
        Happening::for_event_type("invoice.marked_uncollectible"),
        Some(MarkedUncollectible)
    );
    assert_eq!(Happening::for_event_type("invoice.payment_succeeded"), None);
}

#[test]
fn a_payment_reversal_schedules_every_purchase_that_holds_credits() {
    for status in [Granted, PartiallyReversed, Reversed] {
        for paid_before in [false, true] {
            assert_eq!(
                decide(status, paid_before, PaymentReversal),
                to(Reversing, Outcome::Scheduled)
            );
        }
    }
    assert_eq!(
        decide(Reversing, true, PaymentReversal),
        stays(Outcome::Already(Reversing))
    );
}

#[test]
fn a_payment_reversal_only_notes_a_purchase_without_credits_yet() {
    for status in [
        CreatingInvoice,
        AwaitingPayment,
        Granting,
        Failed,
        Rejected,
        Canceled,
    ] {
        for paid_before in [false, true] {
            assert_eq!(
                decide(status, paid_before, PaymentReversal),
                stays(Outcome::Noted),
                "{status:?}"
            );
        }
    }
}

#[test]
fn refund_and_dispute_events_are_payment_reversals_but_an_inquiry_is_not() {
    for event_type in Happening::PAYMENT_REVERSAL_EVENTS {
        assert_eq!(Happening::for_event_type(event_type), Some(PaymentReversal));
    }
    assert_eq!(Happening::for_event_type("charge.dispute.created"), None);
}
