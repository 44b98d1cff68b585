//! creditd's integration tests, linked as one binary so the crate is linked once.
mod fake_stripe_selftest;
mod harness;

mod admin_auth;
mod admin_cli;
mod admin_replay;
mod admin_restart;
mod admin_resync;
mod admin_sweeper;
mod crash;
mod exactly_once;
mod funding;
mod lifecycle;
mod model;
mod openapi;
mod operations;
mod purchases;
mod sandbox_demo;
mod sdk_fidelity;
mod settlement;
mod webhooks;
