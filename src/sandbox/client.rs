//! A minimal Stripe HTTP client for tests: form-encoded POSTs and GETs against the fake, returning
//! status, headers and JSON body without any retry logic.

use super::FakeStripe;
use serde_json::Value;

/// One HTTP answer.
#[derive(Debug)]
pub struct TestResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
pub struct TestClient {
    base: String,
    key: Option<String>,
    http: reqwest::Client,
}

impl FakeStripe {
    /// A client for this fake authenticated with [`FakeStripe::SECRET_KEY`].
    pub fn client(&self) -> TestClient {
        TestClient {
            base: self.base_url(),
            key: Some(Self::SECRET_KEY.to_string()),
            http: reqwest::Client::new(),
        }
    }
}

/// `a=1&b[c]=2` with brackets left unescaped, as the official SDKs send them.
pub fn encode_form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
            let k: String = url::form_urlencoded::byte_serialize(k.as_bytes()).collect();
            format!("{}={v}", k.replace("%5B", "[").replace("%5D", "]"))
        })
        .collect::<Vec<_>>()
        .join("&")
}

impl TestClient {
    /// Uses `key` as the bearer token (`None`: no Authorization header).
    pub fn with_key(mut self, key: Option<&str>) -> TestClient {
        self.key = key.map(str::to_string);
        self
    }

    pub async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: Option<&str>,
    ) -> TestResponse {
        self.post_raw(path, &encode_form(form), idempotency_key)
            .await
            .expect("POST to fake stripe")
    }

    /// POSTs a raw form body; `Err` when the connection failed (e.g. an injected drop).
    pub async fn post_raw(
        &self,
        path: &str,
        body: &str,
        idempotency_key: Option<&str>,
    ) -> Result<TestResponse, reqwest::Error> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string());
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> TestResponse {
        self.get_raw(path, &encode_form(query))
            .await
            .expect("GET from fake stripe")
    }

    pub async fn get_raw(&self, path: &str, query: &str) -> Result<TestResponse, reqwest::Error> {
        let sep = if query.is_empty() { "" } else { "?" };
        let req = self.http.get(format!("{}{path}{sep}{query}", self.base));
        self.send(req).await
    }

    async fn send(&self, mut req: reqwest::RequestBuilder) -> Result<TestResponse, reqwest::Error> {
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(TestResponse {
            status,
            headers,
            json,
        })
    }
}
