//! Operator tools: catch up with Stripe after lost webhooks (re-sync, replay, sweeper), send failed
//! purchases back to the workers, and an audit trail of it all.
//!
//! None of this grants credits. Every tool here only records events through [`crate::ingest`] or
//! makes an unpaid purchase due (`status = 'granting'`) with a conditional update; the workers then
//! run [`crate::fulfilment::fulfil`], the one path to a grant. Overlapping re-syncs, replays,
//! sweeps and live webhooks therefore cannot grant twice: at most one of them moves the purchase
//! out of `awaiting_payment`, and fulfilment's own guarantees do the rest.

pub mod audit;
pub mod cli;
pub mod replay;
pub mod resync;
pub mod resync_params;
pub mod resync_request;
pub mod retry;
pub mod sweeper;

/// Who performed an admin action, as recorded in the audit trail.
pub const ACTOR_HTTP: &str = "admin-token";
pub const ACTOR_CLI: &str = "cli";
