//! Signing secrets and Standard Webhooks signatures, with the `standardwebhooks` crate so the
//! bytes are exactly what every Standard Webhooks verifier recomputes.

use base64::Engine;
use rand::RngCore;

use crate::secret::Secret;

/// A fresh signing secret: `whsec_` and 32 random bytes in base64, as the specification shows.
pub fn new_secret() -> Secret {
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    let encoded = base64::engine::general_purpose::STANDARD.encode(key);
    Secret::from(format!("whsec_{encoded}").as_str())
}

/// The three headers of one attempt. `signature` holds one `v1,<base64>` per secret, separated by
/// spaces, so a receiver that has either the new or the old secret accepts it during a rotation.
#[derive(Debug, Clone)]
pub struct Signed {
    pub id: String,
    pub timestamp: i64,
    pub signature: String,
}

/// Signs `body` under `id` at `timestamp` with every secret given (the current one first).
pub fn sign(
    id: &str,
    timestamp: i64,
    body: &str,
    secrets: &[&Secret],
) -> Result<Signed, standardwebhooks::WebhookError> {
    let signatures = secrets
        .iter()
        .map(|secret| {
            standardwebhooks::Webhook::new(secret.expose())?.sign(id, timestamp, body.as_bytes())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Signed {
        id: id.to_owned(),
        timestamp,
        signature: signatures.join(" "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_secrets_are_distinct_whsec_keys_of_32_bytes() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a.expose(), b.expose());
        let key = a.expose().strip_prefix("whsec_").unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(key)
            .unwrap();
        assert_eq!(bytes.len(), 32);
    }

    #[test]
    fn matches_the_specifications_example() {
        // The example of the Standard Webhooks specification and its libraries.
        let secret = Secret::from("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = r#"{"test": 2432232314}"#;
        let signed = sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, &[&secret]).unwrap();
        assert_eq!(
            signed.signature,
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn two_secrets_give_two_signatures() {
        let (new, old) = (new_secret(), new_secret());
        let signed = sign("msg_x", 1, "{}", &[&new, &old]).unwrap();
        assert_eq!(signed.signature.split(' ').count(), 2);
        assert!(signed.signature.split(' ').all(|s| s.starts_with("v1,")));
    }
}
