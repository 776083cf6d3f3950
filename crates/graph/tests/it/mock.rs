//! A scripted HTTP server for client tests that need exact control over every response
//! (429 with a given Retry-After, a 401 at request n, a batch item failing). It records every
//! request with the virtual time at which it arrived. The Graph emulator covers realism; this
//! covers precision. It never holds a real secret.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use graph::{Clock, VirtualClock};

/// A request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query exactly as sent.
    pub uri: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    /// Virtual time of arrival (seconds since the clock's start).
    pub at: f64,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
    pub fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }
    pub fn is_token(&self) -> bool {
        self.uri.contains("/oauth2/v2.0/token")
    }
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .into_owned()
            .collect()
    }
}

/// A canned answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Real-time delay before answering (to order concurrent requests deterministically).
    pub delay_ms: u64,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(status: u16, v: serde_json::Value) -> Self {
        Self {
            delay_ms: 0,
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: v.to_string(),
        }
    }
    pub fn error(status: u16, code: &str) -> Self {
        Self::json(
            status,
            serde_json::json!({"error": {"code": code, "message": format!("mock {code}"),
                "innerError": {"request-id": format!("rid-{status}")}}}),
        )
    }
    pub fn delayed(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }
    pub fn with_header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

type Script = dyn Fn(&Seen, &[Seen]) -> Answer + Send + Sync;

struct Shared {
    seen: Mutex<Vec<Seen>>,
    script: Box<Script>,
    clock: Arc<VirtualClock>,
    token_counter: Mutex<u32>,
    token_lifetime: u64,
}

pub struct Mock {
    pub url: String,
    shared: Arc<Shared>,
    _task: tokio::task::JoinHandle<()>,
}

impl Mock {
    /// Starts a server on 127.0.0.1:0. Token requests are answered with `tok-N` (lifetime
    /// `token_lifetime` s) unless the script answers them itself (status != 0).
    pub async fn start(
        clock: Arc<VirtualClock>,
        token_lifetime: u64,
        script: impl Fn(&Seen, &[Seen]) -> Answer + Send + Sync + 'static,
    ) -> Self {
        let shared = Arc::new(Shared {
            seen: Mutex::new(Vec::new()),
            script: Box::new(script),
            clock,
            token_counter: Mutex::new(0),
            token_lifetime,
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            shared,
            _task: task,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Requests other than token requests.
    pub fn graph_requests(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(|s| !s.is_token()).collect()
    }

    pub fn token_requests(&self) -> Vec<Seen> {
        self.seen().into_iter().filter(Seen::is_token).collect()
    }
}

async fn handle(State(sh): State<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().to_string();
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let headers = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = axum::body::to_bytes(req.into_body(), 10 << 20)
        .await
        .unwrap();
    let start = graph::VirtualClock::default().now();
    let at = sh.clock.now().duration_since(start).as_secs_f64();
    let seen = Seen {
        method,
        uri,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        at,
    };
    let history = {
        let mut s = sh.seen.lock().unwrap();
        s.push(seen.clone());
        s.clone()
    };
    let mut answer = (sh.script)(&seen, &history);
    if answer.status == 0 && seen.is_token() {
        let n = {
            let mut c = sh.token_counter.lock().unwrap();
            *c += 1;
            *c
        };
        answer = Answer::json(
            200,
            serde_json::json!({"token_type": "Bearer", "expires_in": sh.token_lifetime,
                               "access_token": format!("tok-{n}")}),
        );
    }
    if answer.delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(answer.delay_ms)).await;
    }
    let mut b = Response::builder().status(StatusCode::from_u16(answer.status).unwrap());
    for (k, v) in &answer.headers {
        b = b.header(k, v);
    }
    b.body(Body::from(answer.body)).unwrap()
}

/// "Not scripted": lets the mock answer token requests itself.
pub fn pass() -> Answer {
    Answer {
        delay_ms: 0,
        status: 0,
        headers: vec![],
        body: String::new(),
    }
}
