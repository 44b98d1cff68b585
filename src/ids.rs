//! Ids that cross modules, as newtypes that check their prefix when parsed at the edge.
//!
//! Written by hand because no maintained crate validates Stripe-style `prefix_` ids: `typeid`
//! crates impose UUIDv7 suffixes, which neither Stripe's ids nor ours have. Values read back
//! from the database are trusted (they were parsed before they were stored).

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Deserializer, Serialize};

/// An id that did not have the form its field needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be {what} id starting with {prefix:?}")]
pub struct InvalidId {
    pub what: &'static str,
    pub prefix: &'static str,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// Accepts `prefix` followed by 1 to 250 ASCII letters, digits or underscores.
            pub fn parse(value: &str) -> Result<Self, InvalidId> {
                let rest = value.strip_prefix($prefix).unwrap_or("");
                let valid = !rest.is_empty()
                    && value.len() <= 255
                    && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if valid {
                    Ok($name(value.to_string()))
                } else {
                    Err(InvalidId { what: $what, prefix: $prefix })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// An id read back from the database, which stores only ids that were parsed on
            /// the way in (and decodes them unchecked through `sqlx(transparent)` already).
            #[allow(dead_code, reason = "only ids read back in whole rows need it")]
            pub(crate) fn from_stored(value: String) -> Self {
                $name(value)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(value: &str) -> Result<Self, InvalidId> {
                $name::parse(value)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = String::deserialize(deserializer)?;
                $name::parse(&value).map_err(serde::de::Error::custom)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

prefixed_id!(
    /// creditd's purchase id: `pur_` and 24 random alphanumerics.
    PurchaseId,
    "pur_",
    "a purchase"
);
prefixed_id!(
    /// A Stripe invoice id.
    InvoiceId,
    "in_",
    "an invoice"
);
prefixed_id!(
    /// A Stripe event id.
    EventId,
    "evt_",
    "an event"
);
prefixed_id!(
    /// creditd's re-sync id.
    ResyncId,
    "rsy_",
    "a re-sync"
);
prefixed_id!(
    /// A Stripe customer id.
    CustomerId,
    "cus_",
    "a customer"
);

prefixed_id!(
    /// A merchant's outbound webhook endpoint: `we_` and 24 random alphanumerics.
    EndpointId,
    "we_",
    "a webhook endpoint"
);
prefixed_id!(
    /// An outbound webhook message; derived from the purchase transition that caused it.
    MessageId,
    "msg_",
    "a webhook message"
);

impl EndpointId {
    /// A fresh endpoint id.
    pub fn generate() -> EndpointId {
        EndpointId(format!("we_{}", random_suffix()))
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    use rand::distr::Alphanumeric;
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(24)
        .map(char::from)
        .collect()
}

impl PurchaseId {
    /// A fresh purchase id.
    pub fn generate() -> PurchaseId {
        use rand::Rng;
        use rand::distr::Alphanumeric;
        let suffix: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        PurchaseId(format!("pur_{suffix}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_check_their_prefix() {
        assert!(PurchaseId::parse("pur_abc123").is_ok());
        assert!(InvoiceId::parse("in_1Nabc").is_ok());
        assert!(EventId::parse("evt_1_x").is_ok());
        assert!(CustomerId::parse("cus_Q").is_ok());
        for bad in ["", "pur_", "in_abc", "pur_a/b", "pur_a b", "PUR_abc"] {
            assert!(PurchaseId::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            InvoiceId::parse("cus_1").unwrap_err().to_string(),
            "must be an invoice id starting with \"in_\""
        );
        assert!(CustomerId::parse(&format!("cus_{}", "a".repeat(300))).is_err());
    }

    #[test]
    fn generated_purchase_ids_parse() {
        let id = PurchaseId::generate();
        assert_eq!(PurchaseId::parse(&id).unwrap(), id);
        assert_eq!(id.len(), 28);
    }

    #[test]
    fn deserializing_validates() {
        assert!(serde_json::from_str::<InvoiceId>("\"in_1\"").is_ok());
        assert!(serde_json::from_str::<InvoiceId>("\"evt_1\"").is_err());
    }
}
