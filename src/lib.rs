//! creditd: turns each paid Stripe invoice into exactly one Stripe billing credit grant.
//!
//! Follow one event through the tree: `http::webhooks` -> `stripe::signature` -> `ingest` ->
//! `db::events` (record and schedule, one statement) -> `worker` -> `fulfilment` -> `stripe` ->
//! `db::purchases`.

/// Operator tools: re-sync, replay, sweeper, retry, audit.
pub mod admin;
/// The application: state, build, run and drain.
pub mod app;
/// One worker attempt: logged Stripe calls and the ways it ends.
pub mod attempt;
/// The range of every numeric setting.
pub mod bounds;
/// Funding a purchase through a Stripe Checkout Session.
pub mod checkout;
/// Every setting, from environment or flags.
pub mod config;
/// All SQL.
pub mod db;
/// The API's JSON error type.
pub mod error;
/// The one path from a paid purchase to its grant.
pub mod fulfilment;
/// Creating, filling and finalizing a purchase's invoice.
pub mod funding;
/// HTTP routers.
pub mod http;
/// Typed ids that check their prefix.
pub mod ids;
/// The pipeline every Stripe event enters by.
pub mod ingest;
/// Holding a claimed purchase: heartbeat, panics, attempts that never reached Stripe.
pub mod lease;
/// Prometheus metrics.
pub mod metrics;
/// Minor-unit amounts and currencies.
pub mod money;
/// Signed outbound webhooks to the merchant (Standard Webhooks).
pub mod outbound;
#[cfg(test)]
mod parser_props;
/// Purchases and their validation.
pub mod purchase;
/// Pruning what creditd no longer needs.
pub mod retention;
/// Refunds and disputes take credits back, exactly once.
pub mod reversal;
/// A stateful Stripe sandbox for laptops and tests.
#[cfg(feature = "sandbox")]
pub mod sandbox;
/// Secrets that never print.
pub mod secret;
/// Shared handles for workers and handlers.
pub mod services;
/// What every handler can reach.
pub mod state;
/// Stripe: signatures, client, objects.
pub mod stripe;
/// Logging setup.
pub mod telemetry;

/// Enums stored as checked text columns.
mod text_column;
/// Automatic top-ups: a rule per customer, checked on debits and by a sweep.
pub mod topup;
/// Claiming and running due work.
pub mod worker;
