//! The typed values of reversals and grant moves, stored as text under CHECK constraints
//! (migrations/0006_reversals.sql).

/// A text-backed enum with its stored spelling, mapped to and from Postgres `text` by
/// `crate::text_column`.
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        crate::text_column::text_column!($name, stringify!($name));
    };
}

text_enum!(
    /// What moved the money: Stripe's object whose id keys the reversal.
    ReversalKind {
        Refund => "refund",
        Dispute => "dispute",
        CreditNote => "credit_note",
    }
);

text_enum!(
    /// Which way a grant move changes the credits.
    Direction {
        /// Money left: take the refunded share of the credits back.
        Take => "take",
        /// Money came back (a refund failed, a dispute was won): give back what was taken.
        Restore => "restore",
    }
);

text_enum!(
    /// How far a grant move got; each step is committed before the Stripe call it guards.
    MoveStep {
        /// Planned and written ahead of ending the current grant.
        Planned => "planned",
        /// The current grant has ended; written ahead of creating the replacement.
        Replacing => "replacing",
        Done => "done",
    }
);

text_enum!(
    /// How a move was carried out.
    MovePolicy {
        /// At Stripe: the current grant was ended and replaced.
        Reverse => "reverse",
        /// Recorded and reported only (`REVERSAL_POLICY=record_only`).
        RecordOnly => "record_only",
        /// Before any grant existed: the grant about to be created was made smaller (or larger).
        AtGrant => "at_grant",
    }
);

text_enum!(
    /// What a move does to the purchase's current grant.
    EndAction {
        /// None of its credits were applied and none remain: void it.
        Void => "void",
        /// End it now; credits already applied stay applied.
        Expire => "expire",
        /// Nothing to end (no grant holds credits, or the move changes nothing).
        None => "none",
    }
);

/// What creditd does when money behind a purchase is reversed (`REVERSAL_POLICY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReversalPolicy {
    /// Take the refunded or disputed share of the credits back, and give it back when the money
    /// returns.
    Reverse,
    /// Record and report every reversal, but leave the grants alone.
    RecordOnly,
}
