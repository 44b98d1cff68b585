//! The move rules on their own: which move comes next, and what each one plans.

use super::*;
use crate::db::grant_moves::GrantMove;
use crate::db::reversals::ReversalRow;
use crate::reversal::ReversalKind;

fn reversal(id: &str, amount: i64, money_reversed: bool) -> ReversalRow {
    ReversalRow {
        id: id.into(),
        kind: ReversalKind::Refund,
        amount,
        currency: "usd".into(),
        stripe_status: if money_reversed {
            "succeeded"
        } else {
            "failed"
        }
        .into(),
        money_reversed,
        first_seen_at: chrono::Utc::now(),
    }
}

fn done(planned: GrantMove) -> GrantMove {
    GrantMove {
        step: MoveStep::Done,
        ..planned
    }
}

#[test]
fn an_unused_grant_refunded_in_full_is_voided() {
    let planned = plan(
        "re_1".into(),
        Direction::Take,
        10_000,
        Some(("credgr_1", 10_000)),
        10_000,
        MovePolicy::Reverse,
    );
    assert_eq!(planned.end_action, EndAction::Void);
    assert_eq!((planned.new_amount, planned.shortfall), (0, 0));
    assert_eq!(planned.step, MoveStep::Planned);
}

#[test]
fn a_partly_used_grant_is_expired_and_replaced_with_the_remainder() {
    let planned = plan(
        "re_1".into(),
        Direction::Take,
        2_500,
        Some(("credgr_1", 10_000)),
        7_000,
        MovePolicy::Reverse,
    );
    assert_eq!(planned.end_action, EndAction::Expire);
    assert_eq!((planned.new_amount, planned.shortfall), (4_500, 0));
}

#[test]
fn taking_more_than_is_left_records_a_shortfall_and_never_a_negative_grant() {
    let planned = plan(
        "re_1".into(),
        Direction::Take,
        8_000,
        Some(("credgr_1", 10_000)),
        3_000,
        MovePolicy::Reverse,
    );
    assert_eq!(planned.end_action, EndAction::Expire);
    assert_eq!((planned.new_amount, planned.shortfall), (0, 5_000));
}

#[test]
fn a_restore_replaces_the_current_grant_or_creates_one() {
    let with_grant = plan(
        "re_1".into(),
        Direction::Restore,
        2_500,
        Some(("credgr_2", 4_500)),
        4_000,
        MovePolicy::Reverse,
    );
    assert_eq!(with_grant.end_action, EndAction::Expire);
    assert_eq!(with_grant.new_amount, 6_500);
    let without = plan(
        "re_1".into(),
        Direction::Restore,
        2_500,
        None,
        0,
        MovePolicy::Reverse,
    );
    assert_eq!(
        (without.end_action, without.new_amount),
        (EndAction::None, 2_500)
    );
}

#[test]
fn record_only_changes_nothing_but_reports_the_shortfall() {
    let planned = plan(
        "re_1".into(),
        Direction::Take,
        8_000,
        Some(("credgr_1", 10_000)),
        3_000,
        MovePolicy::RecordOnly,
    );
    assert_eq!(planned.step, MoveStep::Done);
    assert_eq!(
        (planned.end_action, planned.new_amount),
        (EndAction::None, 0)
    );
    assert_eq!(planned.shortfall, 5_000);
}

#[test]
fn next_move_takes_once_restores_once_and_resumes_unfinished_moves_first() {
    let refunded = [reversal("re_1", 2_500, true)];
    let Some(Next::Plan {
        direction, credits, ..
    }) = next_move(&refunded, &[], 10_000, 5_000)
    else {
        panic!("expected a take")
    };
    assert_eq!((direction, credits), (Direction::Take, 5_000));

    let take = plan(
        "re_1".into(),
        Direction::Take,
        5_000,
        Some(("credgr_1", 10_000)),
        4_000,
        MovePolicy::Reverse,
    );
    assert_eq!(take.shortfall, 1_000);
    assert_eq!(
        next_move(&refunded, std::slice::from_ref(&take), 10_000, 5_000),
        Some(Next::Resume(take.clone()))
    );
    let take = done(take);
    assert_eq!(
        next_move(&refunded, std::slice::from_ref(&take), 10_000, 5_000),
        None
    );

    let failed = [reversal("re_1", 2_500, false)];
    assert_eq!(
        next_move(&failed, std::slice::from_ref(&take), 10_000, 5_000),
        Some(Next::Plan {
            reversal_id: "re_1".into(),
            direction: Direction::Restore,
            credits: 4_000,
        })
    );
    let restore = done(plan(
        "re_1".into(),
        Direction::Restore,
        4_000,
        None,
        0,
        MovePolicy::Reverse,
    ));
    assert_eq!(next_move(&failed, &[take, restore], 10_000, 5_000), None);
    // Money that came back before anything was taken needs no move at all.
    assert_eq!(next_move(&failed, &[], 10_000, 5_000), None);
}

#[test]
fn moves_before_the_grant_shrink_it() {
    let take = done(plan(
        "re_1".into(),
        Direction::Take,
        3_000,
        None,
        10_000,
        MovePolicy::AtGrant,
    ));
    assert_eq!(
        remaining_before_grant(10_000, std::slice::from_ref(&take)),
        7_000
    );
    let restore = done(plan(
        "re_1".into(),
        Direction::Restore,
        3_000,
        None,
        7_000,
        MovePolicy::AtGrant,
    ));
    assert_eq!(remaining_before_grant(10_000, &[take, restore]), 10_000);
}
