//! creditd: turns each paid Stripe invoice into exactly one Stripe billing credit grant.
