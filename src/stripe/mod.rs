//! Everything that speaks Stripe: webhook signatures, the HTTP client, and the objects we read.

pub mod api;
pub mod client;
pub mod form;
pub mod rate_limit;
pub mod reach;
pub mod retry;
pub mod signature;
pub mod types;

pub use client::{ClientSettings, StripeClient, StripeError, StripeRequest};
