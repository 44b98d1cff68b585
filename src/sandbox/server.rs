//! The HTTP front: one axum fallback handler running every request through auth, rate limit,
//! faults, routing, parameter validation, idempotency, pause hooks and execution.

use super::FakeStripe;
use super::conn::{ConnHandle, KillableListener};
use super::control::{FaultKind, PauseStage, RecordedRequest};
use super::error::ApiError;
use super::form;
use super::idempotency::{KeyGuard, claim_key};
use super::routes;
use super::state::{Ctx, new_id};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub async fn serve(listener: tokio::net::TcpListener, fake: FakeStripe) {
    let app = Router::new()
        .nest("/_sandbox", super::controls::router())
        .fallback(handle)
        .with_state(fake);
    let make = app.into_make_service_with_connect_info::<ConnHandle>();
    let _ = axum::serve(KillableListener(listener), make).await;
}

pub enum Reply {
    Drop,
    Http {
        status: u16,
        body: Value,
        should_retry: Option<bool>,
        replayed: bool,
    },
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Reply {
        Reply::Http {
            status: e.status,
            body: e.body(),
            should_retry: None,
            replayed: false,
        }
    }
}

async fn handle(
    State(fake): State<FakeStripe>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = new_id("req_");
    let path = uri.path().to_string();
    let raw = if method == Method::POST {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        uri.query().unwrap_or_default().to_string()
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parsed = form::parse(&raw);
    let index = fake.record(RecordedRequest {
        request_id: request_id.clone(),
        method: method.as_str().to_string(),
        path: path.clone(),
        params: parsed
            .as_ref()
            .map(form::arrays_as_lists)
            .unwrap_or(Value::Null),
        raw,
        idempotency_key: key.clone(),
        status: 0,
        replayed: false,
    });
    match process(&fake, &method, &path, &headers, parsed, key, &request_id).await {
        Reply::Drop => {
            conn.kill();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Reply::Http {
            status,
            body,
            should_retry,
            replayed,
        } => {
            fake.set_status(index, status, replayed);
            // What `creditd sandbox` shows a person watching its terminal; silent in tests.
            tracing::info!(%method, %path, status, replayed, %request_id, "sandbox request");
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = (code, axum::Json(body)).into_response();
            let h = resp.headers_mut();
            h.insert(
                "Request-Id",
                HeaderValue::from_str(&request_id).expect("ascii id"),
            );
            if let Some(retry) = should_retry {
                h.insert(
                    "Stripe-Should-Retry",
                    HeaderValue::from_static(if retry { "true" } else { "false" }),
                );
            }
            resp
        }
    }
}

fn check_auth(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::new(
            401,
            "invalid_request_error",
            "You did not provide an API key. You need to provide your API key in the Authorization header, \
             using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        ));
    };
    let key = api_key(value).unwrap_or_default();
    let key = key.as_str();
    if key.starts_with("sk_test_") || key.starts_with("rk_test_") {
        return Ok(());
    }
    let shown: String = key.chars().take(8).collect();
    Err(ApiError::new(
        401,
        "invalid_request_error",
        format!("Invalid API Key provided: {shown}***"),
    ))
}

/// The key from `Bearer <key>`, or from `Basic base64(<key>:)` as `curl -u sk_test_...:` sends it.
fn api_key(header: &str) -> Option<String> {
    use base64::Engine;
    if let Some(key) = header.strip_prefix("Bearer ") {
        return Some(key.trim().to_string());
    }
    let encoded = header.strip_prefix("Basic ")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let user_pass = String::from_utf8(decoded).ok()?;
    Some(user_pass.split(':').next().unwrap_or_default().to_string())
}

async fn process(
    fake: &FakeStripe,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    parsed: Result<Value, String>,
    key: Option<String>,
    request_id: &str,
) -> Reply {
    if let Err(e) = check_auth(headers) {
        return e.into();
    }
    if fake.over_rate_limit() {
        let e = ApiError::new(429, "invalid_request_error", "Request rate limit exceeded.")
            .code("rate_limit");
        return Reply::Http {
            status: 429,
            body: e.body(),
            should_retry: Some(true),
            replayed: false,
        };
    }
    let fault = fake.take_fault(method.as_str(), path);
    match &fault {
        Some(FaultKind::Error {
            status,
            error_type,
            code,
            message,
            should_retry,
        }) => {
            let mut body = json!({ "error": { "type": error_type, "message": message } });
            if let Some(c) = code {
                body["error"]["code"] = json!(c);
            }
            return Reply::Http {
                status: *status,
                body,
                should_retry: *should_retry,
                replayed: false,
            };
        }
        Some(FaultKind::DropConnection) => return Reply::Drop,
        _ => {}
    }
    let raw = match parsed {
        Ok(v) => v,
        Err(msg) => return ApiError::invalid(msg).into(),
    };
    let spec = &fake.inner.spec;
    let Some((op, args)) = spec.find(method.as_str(), path) else {
        return ApiError::new(
            404,
            "invalid_request_error",
            format!(
                "Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs \
                 or we can help at https://support.stripe.com/."
            ),
        )
        .into();
    };
    let params = match spec.validate(op, &raw) {
        Ok(p) => p,
        Err(e) => return e.into(),
    };
    let key = if *method == Method::POST { key } else { None };
    let mut guard = None;
    if let Some(k) = &key {
        let fingerprint = json!({ "method": method.as_str(), "path": path, "params": params });
        match claim_key(fake, k, fingerprint) {
            Ok(()) => {
                guard = Some(KeyGuard {
                    fake,
                    key: k.clone(),
                    done: false,
                })
            }
            Err(reply) => return reply,
        }
    }
    fake.pause_at(PauseStage::BeforeEffect, method.as_str(), path)
        .await;
    if let Some(FaultKind::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let ctx = Ctx {
        request_id: Some(request_id.to_string()),
        idempotency_key: key.clone(),
    };
    let internal = ApiError::new(500, "api_error", "An unknown error occurred");
    let result = if matches!(fault, Some(FaultKind::Stored500)) {
        Err(internal.clone())
    } else {
        let mut st = fake.lock();
        routes::execute(&mut st, &ctx, &op.id, &args, &params)
    };
    let (mut status, mut body) = match result {
        Ok(v) => (200, v),
        Err(e) => (e.status, e.body()),
    };
    match &fault {
        Some(FaultKind::EffectThenStored500) => (status, body) = (500, internal.body()),
        Some(FaultKind::EffectThen500) => {
            (status, body) = (500, internal.body());
            drop(guard.take()); // store nothing: a retry executes again
        }
        _ => {}
    }
    if let Some(g) = guard {
        g.store(status, &body);
    }
    fake.flush_outbox();
    fake.pause_at(PauseStage::AfterEffect, method.as_str(), path)
        .await;
    Reply::Http {
        status,
        body,
        should_retry: None,
        replayed: false,
    }
}
