//! Money as Stripe counts it: an integer in the currency's minor unit, and a currency that knows its decimals.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A lowercase ISO 4217 code, as Stripe writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Currency(String);

/// Stripe's zero-decimal currencies: an amount of 5000 JPY is ¥5000, not ¥50.00.
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];
/// Stripe's three-decimal currencies.
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

impl Currency {
    pub fn parse(code: &str) -> Result<Self, String> {
        let lower = code.trim().to_ascii_lowercase();
        if lower.len() == 3 && lower.bytes().all(|b| b.is_ascii_lowercase()) {
            Ok(Currency(lower))
        } else {
            Err(format!("'{code}' is not a three-letter ISO currency code"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Digits after the decimal point in the currency's major unit.
    pub fn decimals(&self) -> u32 {
        if ZERO_DECIMAL.contains(&self.0.as_str()) {
            0
        } else if THREE_DECIMAL.contains(&self.0.as_str()) {
            3
        } else {
            2
        }
    }
}

impl TryFrom<String> for Currency {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Currency::parse(&value)
    }
}

impl From<Currency> for String {
    fn from(value: Currency) -> Self {
        value.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount in a currency's minor unit; never negative, never a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub value: i64,
    pub currency: Currency,
}

impl Money {
    /// The amount in the major unit, for people: 5000 usd -> "50.00 USD", 5000 jpy -> "5000 JPY".
    pub fn display(&self) -> String {
        let decimals = self.currency.decimals();
        let code = self.currency.as_str().to_ascii_uppercase();
        if decimals == 0 {
            return format!("{} {code}", self.value);
        }
        let scale = 10_i64.pow(decimals);
        let sign = if self.value < 0 { "-" } else { "" };
        let abs = self.value.unsigned_abs();
        let (major, minor) = (abs / scale as u64, abs % scale as u64);
        format!(
            "{sign}{major}.{minor:0width$} {code}",
            width = decimals as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(value: i64, currency: &str) -> Money {
        Money {
            value,
            currency: Currency::parse(currency).unwrap(),
        }
    }

    #[test]
    fn displays_in_the_major_unit_per_currency() {
        assert_eq!(money(5000, "usd").display(), "50.00 USD");
        assert_eq!(money(5000, "jpy").display(), "5000 JPY");
        assert_eq!(money(5, "kwd").display(), "0.005 KWD");
        assert_eq!(money(-105, "eur").display(), "-1.05 EUR");
    }

    #[test]
    fn currency_codes_are_normalised_and_checked() {
        assert_eq!(Currency::parse("USD").unwrap().as_str(), "usd");
        assert!(Currency::parse("us").is_err());
        assert!(Currency::parse("u$d").is_err());
    }
}
