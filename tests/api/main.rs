//! creditd's integration tests, linked as one binary so the crate is linked once.
mod fake_stripe;
mod fake_stripe_selftest;
mod harness;

mod crash;
mod exactly_once;
mod funding;
mod openapi;
mod operations;
mod purchases;
mod webhooks;
