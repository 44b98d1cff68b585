//! When and how long to wait before retrying a Stripe request: Stripe's `Stripe-Should-Retry`
//! rule and a `Retry-After` that no header value can turn into a panic or an endless wait.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// Stripe's rule: `Stripe-Should-Retry` decides when present; otherwise retry 409, 429 and 5xx.
pub(super) fn should_retry(status: StatusCode, headers: &HeaderMap) -> bool {
    if status.is_success() {
        return false;
    }
    match headers
        .get("stripe-should-retry")
        .and_then(|v| v.to_str().ok())
    {
        Some("true") => true,
        Some("false") => false,
        _ => {
            status == StatusCode::CONFLICT
                || status == StatusCode::TOO_MANY_REQUESTS
                || status.is_server_error()
        }
    }
}

/// `Retry-After` in seconds, capped at `cap`. The cap is applied before the conversion because
/// `Duration::from_secs_f64` panics past u64::MAX seconds, and any proxy may send `1e20`.
pub(super) fn retry_after(headers: &HeaderMap, cap: Duration) -> Option<Duration> {
    let seconds: f64 = headers
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds.min(cap.as_secs_f64())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, v.parse().unwrap());
        }
        map
    }

    #[test]
    fn retries_follow_stripe_should_retry_first() {
        assert!(should_retry(
            StatusCode::INTERNAL_SERVER_ERROR,
            &headers(&[])
        ));
        assert!(!should_retry(
            StatusCode::INTERNAL_SERVER_ERROR,
            &headers(&[("stripe-should-retry", "false")])
        ));
        assert!(should_retry(
            StatusCode::BAD_REQUEST,
            &headers(&[("stripe-should-retry", "true")])
        ));
        assert!(should_retry(StatusCode::CONFLICT, &headers(&[])));
        assert!(should_retry(StatusCode::TOO_MANY_REQUESTS, &headers(&[])));
        assert!(!should_retry(StatusCode::BAD_REQUEST, &headers(&[])));
        assert!(!should_retry(
            StatusCode::OK,
            &headers(&[("stripe-should-retry", "true")])
        ));
    }

    #[test]
    fn retry_after_reads_seconds() {
        let cap = Duration::from_secs(5);
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")]), cap),
            Some(Duration::from_secs(2))
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), cap), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Whatever Stripe or a proxy puts in Retry-After, the wait is bounded and nothing panics.
        #[test]
        fn retry_after_is_always_capped(value in "\\PC{0,40}", number in proptest::num::f64::ANY) {
            let cap = Duration::from_millis(3000);
            for text in [value, number.to_string(), format!("{number:e}")] {
                if let Ok(header) = reqwest::header::HeaderValue::from_str(&text) {
                    let mut map = HeaderMap::new();
                    map.insert("retry-after", header);
                    if let Some(delay) = retry_after(&map, cap) {
                        proptest::prop_assert!(delay <= cap);
                    }
                }
            }
        }
    }

    #[test]
    fn an_absurd_retry_after_is_capped_not_a_panic() {
        let cap = Duration::from_secs(3);
        for value in ["1e20", "1e308", "18446744073709551616", "inf"] {
            let delay = retry_after(&headers(&[("retry-after", value)]), cap);
            assert!(delay.is_none_or(|d| d == cap), "{value}: {delay:?}");
        }
    }
}
