//! A string that never prints itself: secrets stay out of logs, errors and metrics.

use std::fmt;
use std::str::FromStr;

use subtle::ConstantTimeEq;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The only way to read the value; grep for it when auditing where secrets go.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in constant time, so a caller cannot learn a token byte by byte from timings.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(candidate).into()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.trim().is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Secret(value.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::from("whsec_very_secret");
        assert!(!format!("{secret:?} {secret}").contains("very_secret"));
    }

    #[test]
    fn matches_only_the_exact_value() {
        let secret = Secret::from("token-123");
        assert!(secret.matches(b"token-123"));
        assert!(!secret.matches(b"token-124"));
        assert!(!secret.matches(b"token-12"));
    }
}
