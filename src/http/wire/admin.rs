//! The operator API's answers (`/admin/*`).

use serde::Serialize;
use utoipa::ToSchema;

use super::Purchase;
use crate::admin::replay;
use crate::db;
use crate::db::resyncs::ResyncStatus;
use crate::ids::{EventId, InvoiceId, PurchaseId, ResyncId};
use crate::purchase::PurchaseStatus;
use crate::purchase::lifecycle::Outcome;
use crate::reversal::{Direction, EndAction, MovePolicy, MoveStep};

/// A re-sync that was accepted and runs in the background.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResyncStarted {
    #[schema(value_type = String)]
    pub id: ResyncId,
    pub object: String,
    /// running, completed or failed.
    #[schema(value_type = String)]
    pub status: ResyncStatus,
}

impl From<&db::resyncs::Resync> for ResyncStarted {
    fn from(resync: &db::resyncs::Resync) -> Self {
        ResyncStarted {
            id: resync.id.clone(),
            object: "resync".into(),
            status: resync.status,
        }
    }
}

/// A re-sync: its parameters, progress, and what it did with each object it saw.
#[derive(Debug, Serialize, ToSchema)]
pub struct Resync {
    #[schema(value_type = String)]
    pub id: ResyncId,
    pub object: String,
    /// running, completed or failed.
    #[schema(value_type = String)]
    pub status: ResyncStatus,
    /// The parameters it was started with: since, until, types, only_undelivered, dry_run, source.
    #[schema(value_type = Object)]
    pub params: serde_json::Value,
    pub counts: ResyncCounts,
    /// The last object of the last committed page; the next page starts after it.
    pub cursor: Option<String>,
    pub pages: i32,
    pub error: Option<String>,
    pub actor: String,
    pub created: i64,
    pub updated: i64,
    pub completed: Option<i64>,
    /// Per-object outcomes, in the order the re-sync saw the objects.
    pub outcomes: Vec<ResyncOutcome>,
}

impl Resync {
    pub fn new(
        resync: &db::resyncs::Resync,
        outcomes: Vec<db::resync_events::ResyncOutcome>,
    ) -> Self {
        let counts = &resync.counts;
        Resync {
            id: resync.id.clone(),
            object: "resync".into(),
            status: resync.status,
            params: resync.params.0.clone(),
            counts: ResyncCounts {
                seen: counts.seen,
                new: counts.new,
                duplicate: counts.duplicate,
                granted: counts.granted,
                unmatched: counts.unmatched,
                failed: counts.failed,
            },
            cursor: resync.cursor.clone(),
            pages: resync.pages,
            error: resync.error.clone(),
            actor: resync.actor.clone(),
            created: resync.created_at.timestamp(),
            updated: resync.updated_at.timestamp(),
            completed: resync.completed_at.map(|t| t.timestamp()),
            outcomes: outcomes.into_iter().map(ResyncOutcome::from).collect(),
        }
    }
}

/// How many objects a re-sync saw, and what became of them.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResyncCounts {
    pub seen: i32,
    /// Recorded by this re-sync (not before by a webhook or another re-sync).
    pub new: i32,
    pub duplicate: i32,
    /// Purchases made due (or, in a dry run, that would be).
    pub granted: i32,
    pub unmatched: i32,
    pub failed: i32,
}

/// What a re-sync did with one object.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResyncOutcome {
    /// An event id, or an invoice id when the re-sync lists invoices.
    pub event_id: String,
    /// pending, a recording outcome (scheduled, duplicate, unmatched, ...), a dry run's
    /// prediction (would_schedule, ...) or failed.
    pub outcome: String,
    pub new: bool,
    #[schema(value_type = Option<String>)]
    pub purchase_id: Option<PurchaseId>,
    pub error: Option<String>,
}

impl From<db::resync_events::ResyncOutcome> for ResyncOutcome {
    fn from(row: db::resync_events::ResyncOutcome) -> Self {
        ResyncOutcome {
            event_id: row.event_id,
            outcome: row.outcome,
            new: row.new,
            purchase_id: row.purchase_id,
            error: row.error,
        }
    }
}

/// What replaying one event did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Replayed {
    pub event_id: String,
    #[schema(value_type = String)]
    pub outcome: Outcome,
    #[schema(value_type = Option<String>)]
    pub purchase_id: Option<PurchaseId>,
    /// `stored` when the event was already recorded, `stripe` when it was fetched now.
    pub from: String,
}

impl From<&replay::Replayed> for Replayed {
    fn from(replayed: &replay::Replayed) -> Self {
        Replayed {
            event_id: replayed.event_id.clone(),
            outcome: replayed.outcome,
            purchase_id: replayed.purchase_id.clone(),
            from: replayed.from.to_owned(),
        }
    }
}

/// A page of recorded events, newest first, each with its stored outcome.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub object: String,
    pub data: Vec<RecordedEvent>,
    pub has_more: bool,
}

/// A recorded Stripe event, without its payload.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedEvent {
    #[schema(value_type = String)]
    pub id: EventId,
    pub object: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub livemode: bool,
    /// Stripe's `created`, unix seconds.
    pub created: i64,
    #[schema(value_type = Option<String>)]
    pub invoice_id: Option<InvoiceId>,
    #[schema(value_type = Option<String>)]
    pub purchase_id: Option<PurchaseId>,
    #[schema(value_type = String)]
    pub outcome: Outcome,
    /// webhook, resync or replay.
    pub source: String,
    /// When creditd recorded it, unix seconds.
    pub received: i64,
}

impl From<db::event_listing::EventSummary> for RecordedEvent {
    fn from(row: db::event_listing::EventSummary) -> Self {
        RecordedEvent {
            id: row.id,
            object: "event".into(),
            event_type: row.event_type,
            livemode: row.livemode,
            created: row.created,
            invoice_id: row.invoice_id,
            purchase_id: row.purchase_id,
            outcome: row.outcome,
            source: row.source,
            received: row.received,
        }
    }
}

/// A purchase with everything that explains it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseExplained {
    #[serde(flatten)]
    pub purchase: Purchase,
    pub grant: GrantState,
    /// Every change a refund or dispute made to the credits, step by step: the balance it read,
    /// the grant it voided or expired, the replacement, the shortfall.
    pub grant_moves: Vec<GrantMove>,
    pub paid_event_id: Option<String>,
    /// Status transitions, oldest first.
    pub history: Vec<StatusChange>,
    /// The recorded events that touched the purchase, oldest first.
    pub events: Vec<PurchaseEvent>,
    /// Every Stripe call made for the purchase, in order.
    pub stripe_calls: Vec<StripeCall>,
}

/// One status change of a purchase.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusChange {
    /// None for the purchase's first status.
    #[schema(value_type = Option<String>)]
    pub from: Option<PurchaseStatus>,
    #[schema(value_type = String)]
    pub to: PurchaseStatus,
    pub last_error: Option<String>,
    /// Unix seconds.
    pub at: i64,
}

impl From<db::transitions::StatusChange> for StatusChange {
    fn from(row: db::transitions::StatusChange) -> Self {
        StatusChange {
            from: row.from_status,
            to: row.to_status,
            last_error: row.last_error,
            at: row.at,
        }
    }
}

/// A recorded event that touched a purchase.
#[derive(Debug, Serialize, ToSchema)]
pub struct PurchaseEvent {
    #[schema(value_type = String)]
    pub id: EventId,
    #[serde(rename = "type")]
    pub event_type: String,
    /// Stripe's `created`, unix seconds.
    pub created: i64,
    #[schema(value_type = String)]
    pub outcome: Outcome,
    /// webhook, resync or replay.
    pub source: String,
    /// When creditd recorded it, unix seconds.
    pub received: i64,
}

impl From<db::event_listing::PurchaseEvent> for PurchaseEvent {
    fn from(row: db::event_listing::PurchaseEvent) -> Self {
        PurchaseEvent {
            id: row.id,
            event_type: row.event_type,
            created: row.created,
            outcome: row.outcome,
            source: row.source,
            received: row.received,
        }
    }
}

/// One Stripe call made for a purchase (after the client's own retries).
#[derive(Debug, Serialize, ToSchema)]
pub struct StripeCall {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    /// None when no answer came (connection error, timeout).
    pub http_status: Option<i32>,
    pub error: Option<String>,
    /// Unix seconds.
    pub at: i64,
}

impl From<db::calls::StripeCall> for StripeCall {
    fn from(row: db::calls::StripeCall) -> Self {
        StripeCall {
            method: row.method,
            path: row.path,
            idempotency_key: row.idempotency_key,
            http_status: row.http_status,
            error: row.error,
            at: row.at,
        }
    }
}

/// One change a refund or dispute made to a purchase's credits, as planned and carried out.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantMove {
    pub reversal_id: String,
    /// take or restore.
    #[schema(value_type = String)]
    pub direction: Direction,
    /// planned, replacing or done.
    #[schema(value_type = String)]
    pub step: MoveStep,
    /// reverse, record_only or at_grant.
    #[schema(value_type = String)]
    pub policy: MovePolicy,
    /// Credits the move takes (or gives back).
    pub credits: i64,
    pub available_before: i64,
    /// Credits a take could not take back: the customer had used them already.
    pub shortfall: i64,
    pub old_grant_id: Option<String>,
    /// void, expire or none: what the move does to the current grant.
    #[schema(value_type = String)]
    pub end_action: EndAction,
    pub new_amount: i64,
    pub new_grant_id: Option<String>,
    /// RFC 3339.
    #[schema(value_type = String)]
    pub planned_at: chrono::DateTime<chrono::Utc>,
    /// RFC 3339; None until the move is carried out.
    #[schema(value_type = Option<String>)]
    pub done_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<db::grant_moves::GrantMove> for GrantMove {
    fn from(row: db::grant_moves::GrantMove) -> Self {
        GrantMove {
            reversal_id: row.reversal_id,
            direction: row.direction,
            step: row.step,
            policy: row.policy,
            credits: row.credits,
            available_before: row.available_before,
            shortfall: row.shortfall,
            old_grant_id: row.old_grant_id,
            end_action: row.end_action,
            new_amount: row.new_amount,
            new_grant_id: row.new_grant_id,
            planned_at: row.planned_at,
            done_at: row.done_at,
        }
    }
}

/// The purchase's grant as creditd tracks it.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantState {
    pub id: Option<String>,
    pub requested: bool,
    pub idempotency_key: String,
}
