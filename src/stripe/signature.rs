//! Verifies `Stripe-Signature` over the raw webhook body exactly as Stripe's SDKs do.
//!
//! Every `v1` signature is checked against every configured secret (rotation sends several),
//! `v0` and unknown keys are ignored, the MAC is compared in constant time, and the timestamp
//! must lie within the tolerance on either side of now (like stripe-dotnet; the other SDKs only
//! bound the past, but a far-future timestamp is as suspect as a stale one).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    #[error("malformed Stripe-Signature header")]
    MalformedHeader,
    #[error("no signatures found with expected scheme v1")]
    NoV1Signature,
    #[error("no signature matches the payload")]
    Mismatch,
    #[error("timestamp outside the tolerance window")]
    TimestampOutsideTolerance,
}

impl SignatureError {
    /// A short label for metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            SignatureError::TimestampOutsideTolerance => "timestamp",
            _ => "signature",
        }
    }
}

/// The parts of a `Stripe-Signature` header that matter.
#[derive(Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    /// Decoded `v1` MACs; values that are not 32 bytes of hex are skipped, as stripe-go does.
    pub v1: Vec<[u8; 32]>,
}

/// Parses `t=..,v1=..[,v1=..][,v0=..]`. Never panics, whatever the input.
pub fn parse_header(header: &str) -> Result<SignatureHeader, SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for item in header.split(',') {
        let (key, value) = item
            .trim()
            .split_once('=')
            .ok_or(SignatureError::MalformedHeader)?;
        match key {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::MalformedHeader)?,
                )
            }
            "v1" => {
                let mut mac = [0u8; 32];
                if hex::decode_to_slice(value, &mut mac).is_ok() {
                    v1.push(mac);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader)?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(SignatureHeader { timestamp, v1 })
}

/// Checks the header against the raw body, the configured secrets and the clock.
pub fn verify(
    header: Option<&str>,
    payload: &[u8],
    secrets: &[Secret],
    now: i64,
    tolerance_secs: u64,
) -> Result<i64, SignatureError> {
    let parsed = parse_header(header.ok_or(SignatureError::MissingHeader)?)?;
    let matched = secrets.iter().any(|secret| {
        let expected = compute(secret.expose(), parsed.timestamp, payload);
        // Run every comparison, so timing does not reveal which secret or signature matched.
        parsed.v1.iter().fold(false, |found, candidate| {
            found | ct_eq(&expected, candidate)
        })
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if now.abs_diff(parsed.timestamp) > tolerance_secs {
        return Err(SignatureError::TimestampOutsideTolerance);
    }
    Ok(parsed.timestamp)
}

/// HMAC-SHA256 keyed with the whole secret string (including `whsec_`) over `"{t}.{body}"`.
pub fn compute(secret: &str, timestamp: i64, payload: &[u8]) -> [u8; 32] {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize().into_bytes().into()
}

/// A header as Stripe would send it; used by tests, the benchmark and the fake Stripe.
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(compute(secret, timestamp, payload))
    )
}

fn ct_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// stripe-dotnet's `event_test_signature.json`: 484 bytes including its trailing newline.
    const OFFICIAL_PAYLOAD: &str = include_str!("../../tests/fixtures/event_test_signature.json");

    fn secrets(values: &[&str]) -> Vec<Secret> {
        values.iter().map(|v| Secret::from(*v)).collect()
    }

    #[test]
    fn official_stripe_dotnet_vector_verifies() {
        let header = "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef";
        let payload = OFFICIAL_PAYLOAD.as_bytes();
        assert_eq!(payload.len(), 484);
        let ok = verify(
            Some(header),
            payload,
            &secrets(&["webhook_secret"]),
            1533204620 + 100,
            300,
        );
        assert_eq!(ok, Ok(1533204620));
        let stale = verify(
            Some(header),
            payload,
            &secrets(&["webhook_secret"]),
            1533204620 + 400,
            300,
        );
        assert_eq!(stale, Err(SignatureError::TimestampOutsideTolerance));
    }

    #[test]
    fn official_vector_fails_without_its_trailing_newline() {
        let header =
            "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7";
        let trimmed = OFFICIAL_PAYLOAD.trim_end().as_bytes();
        let result = verify(
            Some(header),
            trimmed,
            &secrets(&["webhook_secret"]),
            1533204620,
            300,
        );
        assert_eq!(result, Err(SignatureError::Mismatch));
    }

    const VECTOR_B_PAYLOAD: &[u8] =
        br#"{"id":"evt_test_1","object":"event","type":"invoice.paid"}"#;
    const VECTOR_B_V1: &str = "3e3e661992c26c45d9105cbea450acc1a34f8c6dbafbd891f858c6fd9054fe3e";

    #[test]
    fn computed_vector_b_matches_the_sdks() {
        assert_eq!(
            sign("whsec_test_secret", 1700000000, VECTOR_B_PAYLOAD),
            format!("t=1700000000,v1={VECTOR_B_V1}")
        );
    }

    #[test]
    fn the_key_is_the_whole_secret_including_its_prefix() {
        let header = format!("t=1700000000,v1={VECTOR_B_V1}");
        let result = verify(
            Some(&header),
            VECTOR_B_PAYLOAD,
            &secrets(&["test_secret"]),
            1700000000,
            300,
        );
        assert_eq!(result, Err(SignatureError::Mismatch));
    }

    #[test]
    fn rotation_header_with_two_v1_verifies_against_either_secret() {
        let header = format!("t=1700000000,v1={},v1={VECTOR_B_V1}", "0".repeat(64));
        let configured = secrets(&["whsec_old", "whsec_test_secret"]);
        assert!(
            verify(
                Some(&header),
                VECTOR_B_PAYLOAD,
                &configured,
                1700000000,
                300
            )
            .is_ok()
        );
    }

    #[test]
    fn tampered_body_is_rejected() {
        let header = format!("t=1700000000,v1={VECTOR_B_V1}");
        let tampered = br#"{"id":"evt_test_2","object":"event","type":"invoice.paid"}"#;
        let result = verify(
            Some(&header),
            tampered,
            &secrets(&["whsec_test_secret"]),
            1700000000,
            300,
        );
        assert_eq!(result, Err(SignatureError::Mismatch));
    }

    #[test]
    fn future_timestamp_beyond_tolerance_is_rejected() {
        let header = format!("t=1700000000,v1={VECTOR_B_V1}");
        let result = verify(
            Some(&header),
            VECTOR_B_PAYLOAD,
            &secrets(&["whsec_test_secret"]),
            1700000000 - 301,
            300,
        );
        assert_eq!(result, Err(SignatureError::TimestampOutsideTolerance));
    }

    #[test]
    fn missing_header_and_v0_only_header_are_rejected() {
        let configured = secrets(&["whsec_test_secret"]);
        assert_eq!(
            verify(None, VECTOR_B_PAYLOAD, &configured, 1700000000, 300),
            Err(SignatureError::MissingHeader)
        );
        let v0_only = format!("t=1700000000,v0={VECTOR_B_V1}");
        assert_eq!(
            verify(
                Some(&v0_only),
                VECTOR_B_PAYLOAD,
                &configured,
                1700000000,
                300
            ),
            Err(SignatureError::NoV1Signature)
        );
    }

    #[test]
    fn unknown_keys_are_ignored_and_pairs_without_equals_are_malformed() {
        let header = format!("t=1700000000,v9=zzz,v1={VECTOR_B_V1}");
        assert!(parse_header(&header).is_ok());
        assert_eq!(parse_header("t=1,v1"), Err(SignatureError::MalformedHeader));
        assert_eq!(parse_header("v1=00"), Err(SignatureError::MalformedHeader));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn header_parser_never_panics(header in "\\PC*") {
            let _ = parse_header(&header);
        }

        #[test]
        fn structured_headers_never_panic(parts in proptest::collection::vec("(t|v0|v1|x)?=?[0-9a-fA-F,=]{0,70}", 0..6)) {
            let _ = parse_header(&parts.join(","));
        }
    }
}
