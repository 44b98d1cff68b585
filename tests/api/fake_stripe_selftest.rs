//! Tests of the fake Stripe itself, over real HTTP.
