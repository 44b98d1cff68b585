//! Idempotency keys: claiming a key (replay, mismatch, in-use) and storing or releasing the claim.

use super::FakeStripe;
use super::error::ApiError;
use super::server::Reply;
use super::state::IdemEntry;
use serde_json::Value;

/// Removes an in-progress idempotency claim unless the result was stored.
pub struct KeyGuard<'a> {
    pub fake: &'a FakeStripe,
    pub key: String,
    pub done: bool,
}

impl KeyGuard<'_> {
    pub fn store(mut self, status: u16, body: &Value) {
        if let Some(e) = self.fake.lock().idem.get_mut(&self.key) {
            e.result = Some((status, body.clone()));
        }
        self.done = true;
    }
}

impl Drop for KeyGuard<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut st = self.fake.lock();
            if st.idem.get(&self.key).is_some_and(|e| e.result.is_none()) {
                st.idem.remove(&self.key);
            }
        }
    }
}

/// Takes `key` for this request, or answers with the stored result / an error.
pub fn claim_key(fake: &FakeStripe, key: &str, fingerprint: Value) -> Result<(), Reply> {
    if key.len() > 255 {
        return Err(
            ApiError::invalid("Idempotency-Key must be at most 255 characters long.").into(),
        );
    }
    let mut st = fake.lock();
    st.prune_idempotency();
    let now = st.now();
    match st.idem.get(key) {
        None => {
            st.idem.insert(key.to_string(), IdemEntry { fingerprint, created: now, result: None });
            Ok(())
        }
        Some(e) if e.result.is_none() => Err(ApiError::new(
            409,
            "invalid_request_error",
            format!(
                "There is currently another in-progress request using this Idempotent Key (that probably \
                 means you submitted twice, and the other request is still going through): {key}. \
                 Please try again later."
            ),
        )
        .code("idempotency_key_in_use")
        .into()),
        Some(e) if e.fingerprint != fingerprint => Err(ApiError::new(
            400,
            "idempotency_error",
            format!(
                "Keys for idempotent requests can only be used with the same parameters they were first \
                 used with. Try using a key other than '{key}' if you meant to execute a different request."
            ),
        )
        .into()),
        Some(e) => {
            let (status, body) = e.result.clone().expect("checked above");
            Err(Reply::Http { status, body, should_retry: None, replayed: true })
        }
    }
}
