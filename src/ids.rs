//! Ids that arrive from outside (paths, command-line arguments), checked before anything else
//! happens: an id goes into SQL parameters and Stripe URLs, so a percent-decoded `../` or a
//! space must never get that far.

/// The id kinds creditd accepts from operators and clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Event,
    Purchase,
    Resync,
}

impl IdKind {
    pub fn prefix(self) -> &'static str {
        match self {
            IdKind::Event => "evt_",
            IdKind::Purchase => "pur_",
            IdKind::Resync => "rsy_",
        }
    }
}

/// `prefix` followed by 1 to 200 ASCII letters, digits or underscores.
pub fn check(kind: IdKind, value: &str) -> Result<(), String> {
    let prefix = kind.prefix();
    let valid = value.strip_prefix(prefix).is_some_and(|rest| {
        (1..=200).contains(&rest.len())
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "must be an id starting with '{prefix}' followed by letters, digits or '_'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_ids_pass() {
        assert!(check(IdKind::Event, "evt_1QabcDEF_2").is_ok());
        assert!(check(IdKind::Purchase, "pur_8Yv1").is_ok());
        assert!(check(IdKind::Resync, "rsy_Q1").is_ok());
        for bad in [
            "",
            "evt_",
            "pur_1",
            "evt_../../v1/charges",
            "evt_a b",
            "evt_a%2F",
            "evt_é",
        ] {
            assert!(check(IdKind::Event, bad).is_err(), "{bad:?}");
        }
        assert!(check(IdKind::Event, &format!("evt_{}", "a".repeat(201))).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn accepted_ids_are_url_safe(value in "\\PC{0,64}") {
            if check(IdKind::Event, &value).is_ok() {
                proptest::prop_assert!(value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            }
        }
    }
}
