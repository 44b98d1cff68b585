//! Webhook signing (`Stripe-Signature: t=..,v1=..`) and the HTTP POST that delivers one event.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// Lowercase hex HMAC-SHA256 of `"{timestamp}.{payload}"`, keyed with the whole secret string.
pub fn v1_signature(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// The full `Stripe-Signature` header, one `v1=` per secret (several while a secret is rolled).
pub fn signature_header(secrets: &[String], timestamp: i64, payload: &[u8]) -> String {
    let mut header = format!("t={timestamp}");
    for s in secrets {
        header.push_str(",v1=");
        header.push_str(&v1_signature(s, timestamp, payload));
    }
    header
}

/// POSTs `payload` to `url`; returns the status and body, or status 0 and the error text.
pub async fn post(
    client: &reqwest::Client,
    url: &str,
    secrets: &[String],
    timestamp: i64,
    payload: Vec<u8>,
) -> (u16, String) {
    let header = signature_header(secrets, timestamp, &payload);
    let sent = client
        .post(url)
        .timeout(Duration::from_secs(10))
        .header("Content-Type", "application/json; charset=utf-8")
        .header(
            "User-Agent",
            "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        )
        .header("Stripe-Signature", header)
        .body(payload)
        .send()
        .await;
    match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}
