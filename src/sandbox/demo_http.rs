//! The demo's HTTP calls: each is printed as the curl line that does the same, then its answer.

use anyhow::{Context, bail};
use serde_json::Value;

/// How a request authenticates, shown in the curl line by the variable's name, never its value.
pub enum Auth {
    /// `Authorization: Bearer $VAR` (creditd's API_TOKEN and ADMIN_TOKEN).
    Bearer(&'static str, String),
    /// `-u "$VAR:"` (a Stripe secret key).
    Basic(&'static str, String),
    None,
}

pub enum Body {
    Empty,
    Json(Value),
    Form(Vec<(String, String)>),
}

pub struct Call {
    pub method: reqwest::Method,
    pub url: String,
    pub auth: Auth,
    pub body: Body,
    pub idempotency_key: Option<String>,
}

impl Call {
    pub fn new(method: reqwest::Method, url: String, auth: Auth) -> Call {
        Call {
            method,
            url,
            auth,
            body: Body::Empty,
            idempotency_key: None,
        }
    }

    pub fn json(mut self, body: Value) -> Call {
        self.body = Body::Json(body);
        self
    }

    pub fn form(mut self, pairs: &[(&str, &str)]) -> Call {
        let pairs = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        self.body = Body::Form(pairs.collect());
        self
    }

    pub fn idempotency_key(mut self, key: String) -> Call {
        self.idempotency_key = Some(key);
        self
    }

    /// The curl command that sends the same request.
    pub fn curl(&self) -> String {
        let mut line = String::from("curl -s");
        if self.method != reqwest::Method::GET {
            line += &format!(" -X {}", self.method);
        }
        line += &format!(" '{}'", self.url);
        match &self.auth {
            Auth::Bearer(var, _) => line += &format!(" -H \"Authorization: Bearer ${var}\""),
            Auth::Basic(var, _) => line += &format!(" -u \"${var}:\""),
            Auth::None => {}
        }
        if let Some(key) = &self.idempotency_key {
            line += &format!(" -H 'Idempotency-Key: {key}'");
        }
        match &self.body {
            Body::Empty => {}
            Body::Json(v) => line += &format!(" -H 'content-type: application/json' -d '{v}'"),
            Body::Form(pairs) => {
                for (k, v) in pairs {
                    line += &format!(" -d '{k}={v}'");
                }
            }
        }
        line
    }

    /// Sends the request; returns the status and the JSON answer.
    pub async fn send(&self, http: &reqwest::Client) -> anyhow::Result<(u16, Value)> {
        let mut req = http.request(self.method.clone(), &self.url);
        req = match &self.auth {
            Auth::Bearer(_, token) => req.bearer_auth(token),
            Auth::Basic(_, key) => req.basic_auth(key, Some("")),
            Auth::None => req,
        };
        if let Some(key) = &self.idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        req = match &self.body {
            Body::Empty => req,
            Body::Json(v) => req.json(v),
            Body::Form(pairs) => req.form(pairs),
        };
        let response = req
            .send()
            .await
            .with_context(|| format!("{} {}", self.method, self.url))?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        match serde_json::from_str(&text) {
            Ok(json) => Ok((status, json)),
            Err(_) => bail!(
                "{} {} answered {status} with non-JSON: {text}",
                self.method,
                self.url
            ),
        }
    }
}

/// Pretty JSON of `answer`, with only `keys` when given (a Stripe invoice has 78 fields).
pub fn show(answer: &Value, keys: Option<&[&str]>) -> String {
    let shown = match (keys, answer.as_object()) {
        (Some(keys), Some(map)) => {
            let mut picked = serde_json::Map::new();
            for k in keys {
                if let Some(v) = map.get(*k) {
                    picked.insert(k.to_string(), v.clone());
                }
            }
            let hidden = map.len() - picked.len();
            if hidden > 0 {
                picked.insert("…".into(), Value::String(format!("{hidden} more fields")));
            }
            Value::Object(picked)
        }
        _ => answer.clone(),
    };
    serde_json::to_string_pretty(&shown).unwrap_or_default()
}
