//! Stripe-style API errors: the `{"error": {...}}` body together with its HTTP status.

use serde_json::{Value, json};

/// One error response as Stripe would send it.
#[derive(Clone, Debug)]
pub struct ApiError {
    pub status: u16,
    pub error_type: &'static str,
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    /// The issuer's reason on a `card_error`, e.g. `generic_decline`.
    pub decline_code: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, error_type: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error_type,
            code: None,
            message: message.into(),
            param: None,
            decline_code: None,
        }
    }

    /// 400 `invalid_request_error`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "invalid_request_error", message)
    }

    pub fn param(mut self, param: &str) -> ApiError {
        self.param = Some(param.to_string());
        self
    }

    pub fn code(mut self, code: &str) -> ApiError {
        self.code = Some(code.to_string());
        self
    }

    pub fn decline_code(mut self, code: &str) -> ApiError {
        self.decline_code = Some(code.to_string());
        self
    }

    pub fn missing(param: &str) -> ApiError {
        ApiError::invalid(format!("Missing required param: {param}."))
            .param(param)
            .code("parameter_missing")
    }

    pub fn unknown(param: &str) -> ApiError {
        ApiError::invalid(format!("Received unknown parameter: {param}"))
            .param(param)
            .code("parameter_unknown")
    }

    /// 400 `resource_missing` for a referenced object, e.g. `No such customer: 'cus_x'`.
    pub fn no_such(kind: &str, id: &str, param: &str) -> ApiError {
        ApiError::invalid(format!("No such {kind}: '{id}'"))
            .param(param)
            .code("resource_missing")
    }

    /// 404 `resource_missing` for the object named in the URL.
    pub fn not_found(kind: &str, id: &str) -> ApiError {
        ApiError::new(
            404,
            "invalid_request_error",
            format!("No such {kind}: '{id}'"),
        )
        .param("id")
        .code("resource_missing")
    }

    pub fn body(&self) -> Value {
        let mut e = json!({ "type": self.error_type, "message": self.message });
        if let Some(c) = &self.code {
            e["code"] = json!(c);
        }
        if let Some(p) = &self.param {
            e["param"] = json!(p);
        }
        if let Some(d) = &self.decline_code {
            e["decline_code"] = json!(d);
        }
        json!({ "error": e })
    }
}
