//! Outbound webhooks: tells the merchant's backend what happened to its purchases, signed per
//! Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
//!
//! Follow one event: a purchase changes status -> the `purchase_transitions` trigger
//! (migrations/0007_outbound.sql) inserts the message and one delivery per subscribed endpoint,
//! in the transaction of the change -> [`worker`] claims a due delivery with a lease -> [`payload`]
//! renders and freezes the body -> [`signing`] -> [`send`] (after [`address`] checks where it
//! goes) -> the attempt is recorded and the delivery is delivered, retried per [`schedule`], or
//! failed.
//!
//! Decisions, and why:
//! - **The outbox is written by triggers.** A message exists exactly when its transition does,
//!   whichever code path (webhook, re-sync, replay, sweeper, worker, admin retry, a migration)
//!   changed the status: every status change already writes a `purchase_transitions` row, and
//!   the message is inserted by a trigger on that row, in the same transaction. Its id is derived
//!   from the purchase and the transition row's id (`msg_<purchase>_t<transition>_<event>`), so it
//!   is deterministic and a replayed transition, which changes no status, writes nothing. Only a
//!   change of *settled* status counts: a purchase that passes through a work status
//!   (`granting`, `reversing`) back to the status it had, say after a replayed refund event or an
//!   operator's retry that fails again, makes no event, unless its credits changed meanwhile (a
//!   grant move finished: a second partial refund).
//! - **Fan-out happens at insert.** The trigger adds one `webhook_deliveries` row for every
//!   endpoint enabled and subscribed at that moment, and stores no message when there is none
//!   (nothing would ever read it). An endpoint added later does not receive older events; one
//!   disabled later keeps its pending deliveries, which resume when it is enabled again.
//! - **The body is rendered in Rust, once.** The purchase object is `wire::Purchase`, the code
//!   path of `GET /v1/purchases/{id}`; building it in SQL would duplicate it and drift. So the
//!   trigger stores no body: the first worker to claim a message renders the purchase as it is
//!   then and freezes the bytes in `webhook_messages.payload` (first writer wins). Every attempt,
//!   to every endpoint, sends those bytes under the same `webhook-id`, which is what receivers'
//!   deduplication and signatures need. The cost: the purchase shown is its state at first
//!   delivery, which may be later than the transition (`type` and `created` say which transition
//!   it was). Ordering is not guaranteed anyway.
//! - **At least once.** A delivery is leased while its attempt runs; a crash before the attempt
//!   is recorded means another attempt with the same id and body.

pub mod address;
pub mod config;
pub mod event;
pub mod metrics;
pub mod payload;
pub mod request;
pub mod schedule;
pub mod send;
pub mod settings;
pub mod signing;
pub mod worker;

pub use settings::{Outbound, OutboundSettings};
