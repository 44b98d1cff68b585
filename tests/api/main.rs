//! creditd's integration tests, linked as one binary so the crate is linked once.
mod fake_stripe;
mod fake_stripe_selftest;
mod harness;

mod admin_auth;
mod admin_cli;
mod admin_replay;
mod admin_restart;
mod admin_resync;
mod admin_sweeper;
mod crash;
mod database_faults;
mod exactly_once;
mod funding;
mod hostile_stripe;
mod inputs_and_retention;
mod lifecycle;
mod model;
mod openapi;
mod operations;
mod purchases;
mod recovery;
mod settings;
mod settlement;
mod slow_clients;
mod webhooks;
mod worker_panics;
