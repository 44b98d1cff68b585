//! An HTTP proxy in front of the fake Stripe that answers chosen requests itself, with any
//! status and headers, the way a misbehaving load balancer or proxy would (the fake's own faults
//! cannot set arbitrary headers such as `Retry-After: 1e20`). Everything else is forwarded.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One canned answer for the next `times` requests whose method and path match.
#[derive(Clone, Debug)]
pub struct Answer {
    pub method: Method,
    pub path_prefix: String,
    pub times: u32,
    pub status: StatusCode,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

#[derive(Default)]
struct Shared {
    target: Option<String>,
    answers: Vec<Answer>,
    /// (method, path, status) of every canned answer given.
    answered: Vec<(String, String, u16)>,
}

#[derive(Clone)]
pub struct StripeProxy {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
}

impl StripeProxy {
    pub async fn start() -> StripeProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let router = axum::Router::new()
            .fallback(forward)
            .with_state((shared.clone(), reqwest::Client::new()));
        tokio::spawn(async move { axum::serve(listener, router).await });
        StripeProxy { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where requests without a canned answer go (the fake Stripe's base URL).
    pub fn set_target(&self, base_url: &str) {
        self.shared.lock().unwrap().target = Some(base_url.trim_end_matches('/').to_owned());
    }

    pub fn answer(&self, answer: Answer) {
        self.shared.lock().unwrap().answers.push(answer);
    }

    pub fn answered(&self) -> Vec<(String, String, u16)> {
        self.shared.lock().unwrap().answered.clone()
    }
}

type ProxyState = (Arc<Mutex<Shared>>, reqwest::Client);

async fn forward(
    State((shared, http)): State<ProxyState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (canned, target) = {
        let mut shared = shared.lock().unwrap();
        let path = uri.path().to_owned();
        let index = shared
            .answers
            .iter()
            .position(|a| a.method == method && path.starts_with(&a.path_prefix));
        let canned = index.map(|i| {
            let answer = shared.answers[i].clone();
            shared.answers[i].times -= 1;
            if shared.answers[i].times == 0 {
                shared.answers.remove(i);
            }
            answer
        });
        if let Some(answer) = &canned {
            shared
                .answered
                .push((method.to_string(), path, answer.status.as_u16()));
        }
        (canned, shared.target.clone().expect("proxy target set"))
    };
    if let Some(answer) = canned {
        let mut response = (answer.status, answer.body).into_response();
        for (name, value) in answer.headers {
            response
                .headers_mut()
                .insert(name, value.parse().expect("a valid header value"));
        }
        return response;
    }
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut request = http.request(method, format!("{target}{path_and_query}"));
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.body(body).send().await {
        Ok(upstream) => {
            let status = upstream.status();
            let upstream_headers = upstream.headers().clone();
            let bytes = upstream.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            for (name, value) in &upstream_headers {
                if name != "content-length" && name != "transfer-encoding" {
                    response.headers_mut().insert(name, value.clone());
                }
            }
            response
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
