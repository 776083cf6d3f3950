//! The realism wrapper around every Graph request (and every `$batch` item): fault plan, Outlook
//! limits, and service latency, applied in the order a real request meets them: gateway faults
//! first, then throttling, then the service time while holding a concurrency slot, then the
//! handler, then the "answer lost after the write" faults.
//!
//! It knows nothing about users, tokens or the store: it asks the [`RealismHost`] (the core) for
//! the mailbox behind a path and the app behind a token. It must never apply a request that a
//! fault or a limit refused, and never answer a request whose connection a fault dropped.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::faults::{DropWhen, FaultAction, FaultEngine, FaultPlan, FaultRequest, status_error};
use crate::limits::{Limits, LimitsState, Throttle};
use crate::tls::ConnInfo;

/// A mailbox as the core knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxName {
    /// Stable key shared by all addressing forms (the user id), for limits.
    pub key: String,
    /// userPrincipalName, for fault matching and stats.
    pub upn: String,
}

/// What the realism layer needs from the emulator core.
pub trait RealismHost: Send + Sync + 'static {
    /// The mailbox a `/users/{who}/...` mailbox path addresses, if `who` is a known user.
    fn mailbox(&self, who: &str) -> Option<MailboxName>;
    /// The client id of the app whose bearer token this is (`None` if absent or not a token of
    /// ours; the core answers 401 later).
    fn app_id(&self, authorization: Option<&str>) -> Option<String>;
    /// Makes this bearer token expired from now on (fault `expireToken`).
    fn expire_token(&self, authorization: Option<&str>);
    /// A request to `mailbox` (UPN) or to no mailbox was answered 429 by this layer.
    fn on_throttled(&self, mailbox: Option<&str>);
}

/// Marks a request that is an item of a `$batch` (set by the batch handler as an extension).
#[derive(Debug, Clone, Copy)]
pub struct BatchItem;

/// Faults, limits and latency for one emulator.
pub struct Realism {
    pub faults: FaultEngine,
    pub limits: LimitsState,
    latency_ms: AtomicU64,
    host: Arc<dyn RealismHost>,
}

impl std::fmt::Debug for Realism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Realism")
            .field("faults", &self.faults)
            .field("limits", &self.limits)
            .field("latency_ms", &self.latency_ms)
            .finish_non_exhaustive()
    }
}

/// The parts of a request this layer looks at.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    pub method: String,
    /// Path without query.
    pub path: String,
    pub authorization: Option<String>,
    pub client_request_id: Option<String>,
}

impl RequestInfo {
    pub fn from_parts(method: &str, path: &str, headers: &HeaderMap) -> Self {
        let h = |n: &str| {
            headers
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        RequestInfo {
            method: method.to_owned(),
            path: path.to_owned(),
            authorization: h("authorization"),
            client_request_id: h("client-request-id"),
        }
    }
}

/// `{who}` of a mailbox-data path `/v1.0/users/{who}/<more>` (contacts, folders, delta...).
/// The user object itself (`/users/{who}`) is directory data, not subject to Outlook limits.
pub fn mailbox_segment(path: &str) -> Option<&str> {
    let mut segs = path.trim_start_matches('/').split('/');
    let _version = segs.next()?;
    let users = segs.next()?;
    let who = segs.next()?;
    segs.next()?;
    (users.eq_ignore_ascii_case("users") && !who.is_empty()).then_some(who)
}

impl Realism {
    pub fn new(
        host: Arc<dyn RealismHost>,
        limits: Limits,
        faults: Option<FaultPlan>,
        latency: Duration,
    ) -> Self {
        Realism {
            faults: FaultEngine::new(faults.unwrap_or_default()),
            limits: LimitsState::new(limits),
            latency_ms: AtomicU64::new(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
            host,
        }
    }

    pub fn set_latency(&self, latency: Duration) {
        self.latency_ms.store(
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn latency(&self) -> Duration {
        Duration::from_millis(self.latency_ms.load(Ordering::Relaxed))
    }

    /// Runs `inner` (the real handler) under faults, limits and latency.
    pub async fn handle<Fut>(
        &self,
        req: &RequestInfo,
        conn: Option<&ConnInfo>,
        inner: Fut,
    ) -> Response
    where
        Fut: Future<Output = Response>,
    {
        let raw_who = mailbox_segment(&req.path).map(percent_decode);
        let mailbox = raw_who.as_deref().and_then(|w| self.host.mailbox(w));
        let aliases: Vec<&str> = [raw_who.as_deref(), mailbox.as_ref().map(|m| m.key.as_str())]
            .into_iter()
            .flatten()
            .collect();
        let fault = self.faults.decide(&FaultRequest {
            method: &req.method,
            path: &req.path,
            mailbox: mailbox.as_ref().map(|m| m.upn.as_str()),
            mailbox_aliases: &aliases,
        });
        let mut after: Option<FaultAction> = None;
        match fault {
            Some(FaultAction::Status {
                status,
                retry_after,
                after_apply: false,
            }) => {
                if status == 429 {
                    self.host
                        .on_throttled(mailbox.as_ref().map(|m| m.upn.as_str()));
                }
                return fault_response(status, retry_after, req);
            }
            Some(FaultAction::Drop(DropWhen::Before)) => return dropped(conn),
            Some(FaultAction::Delay { delay_ms }) => {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await
            }
            Some(FaultAction::ExpireToken) => self.host.expire_token(req.authorization.as_deref()),
            Some(
                a @ (FaultAction::Status {
                    after_apply: true, ..
                }
                | FaultAction::Drop(DropWhen::After)),
            ) => after = Some(a),
            None => {}
        }

        let app = self.host.app_id(req.authorization.as_deref());
        let _permit = match &app {
            // Unauthenticated requests are refused by the core; they never reach Outlook.
            None => None,
            Some(app) => {
                match self.limits.admit(
                    app,
                    mailbox.as_ref().map(|m| m.key.as_str()),
                    tokio::time::Instant::now(),
                ) {
                    Ok(p) => Some(p),
                    Err(t) => {
                        self.host
                            .on_throttled(mailbox.as_ref().map(|m| m.upn.as_str()));
                        return throttle_response(&t, req);
                    }
                }
            }
        };
        let latency = self.latency();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let resp = inner.await;
        match after {
            Some(FaultAction::Status {
                status,
                retry_after,
                ..
            }) => fault_response(status, retry_after, req),
            Some(FaultAction::Drop(_)) => dropped(conn),
            _ => resp,
        }
    }
}

/// axum middleware: `middleware::from_fn_with_state(realism, realism::middleware)` on the
/// Graph (`/v1.0`) routes.
pub async fn middleware(State(r): State<Arc<Realism>>, req: Request, next: Next) -> Response {
    let info = RequestInfo::from_parts(req.method().as_str(), req.uri().path(), req.headers());
    let conn = req
        .extensions()
        .get::<ConnectInfo<ConnInfo>>()
        .map(|c| c.0.clone());
    r.handle(&info, conn.as_ref(), next.run(req)).await
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

fn dropped(conn: Option<&ConnInfo>) -> Response {
    match conn {
        Some(c) => c.kill.kill(),
        // Without a connection handle (served without ConnInfo) a drop cannot be simulated;
        // say so loudly rather than answering as if nothing happened.
        None => tracing::error!("drop fault without a connection handle; answering 500 instead"),
    }
    graph_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "generalException",
        "Connection dropped by fault plan.",
        None,
    )
}

fn fault_response(status: u16, retry_after: Option<f64>, req: &RequestInfo) -> Response {
    let (code, message) = status_error(status);
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = graph_error(status, code, message, req.client_request_id.as_deref());
    if let Some(s) = retry_after {
        // Graph sends integers and decimals (e.g. `2.128`, graph-facts §6); keep what the plan says.
        let v = if s.fract() == 0.0 {
            format!("{}", s as u64)
        } else {
            format!("{s}")
        };
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert("retry-after", v);
        }
    }
    r
}

fn throttle_response(t: &Throttle, req: &RequestInfo) -> Response {
    let mut r = graph_error(
        StatusCode::TOO_MANY_REQUESTS,
        t.code(),
        t.message(),
        req.client_request_id.as_deref(),
    );
    if let Some(s) = t.retry_after_secs() {
        r.headers_mut().insert("retry-after", HeaderValue::from(s));
    }
    r
}

/// Graph's error envelope (graph-facts §7) with `request-id` / `client-request-id` headers.
pub fn graph_error(
    status: StatusCode,
    code: &str,
    message: &str,
    client_request_id: Option<&str>,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    #[allow(clippy::disallowed_methods)] // the emulator serves real wall-clock dates, like Graph
    let date = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string();
    let mut inner = json!({"date": date, "request-id": request_id});
    if let Some(c) = client_request_id {
        inner["client-request-id"] = c.into();
    }
    let body = json!({"error": {"code": code, "message": message, "innerError": inner}});
    let mut r = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        r.headers_mut().insert("request-id", v);
    }
    if let Some(c) = client_request_id.and_then(|c| HeaderValue::from_str(c).ok()) {
        r.headers_mut().insert("client-request-id", c);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::EmuListener;
    use axum::Router;
    use axum::routing::get;
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    /// A stand-in core: users "adele" (id u1) and "bob" (id u2); tokens are "Bearer <app>".
    #[derive(Default)]
    struct FakeHost {
        expired: Mutex<Vec<String>>,
        throttled: Mutex<HashMap<String, usize>>,
    }

    impl RealismHost for FakeHost {
        fn mailbox(&self, who: &str) -> Option<MailboxName> {
            let (key, upn) = match who.to_lowercase().as_str() {
                "u1" | "adele@contoso.com" => ("u1", "adele@contoso.com"),
                "u2" | "bob@contoso.com" => ("u2", "bob@contoso.com"),
                _ => return None,
            };
            Some(MailboxName {
                key: key.into(),
                upn: upn.into(),
            })
        }
        fn app_id(&self, a: Option<&str>) -> Option<String> {
            a?.strip_prefix("Bearer ").map(str::to_owned)
        }
        fn expire_token(&self, a: Option<&str>) {
            self.expired.lock().unwrap().extend(a.map(str::to_owned));
        }
        fn on_throttled(&self, m: Option<&str>) {
            *self
                .throttled
                .lock()
                .unwrap()
                .entry(m.unwrap_or("-").to_owned())
                .or_default() += 1;
        }
    }

    async fn start(
        realism: Arc<Realism>,
        applied: Arc<AtomicUsize>,
    ) -> (String, tokio::task::JoinHandle<()>) {
        let app = Router::new()
            .route(
                "/v1.0/users/{who}/contacts",
                get(move || {
                    let applied = applied.clone();
                    async move {
                        applied.fetch_add(1, Ordering::SeqCst);
                        "ok"
                    }
                }),
            )
            .layer(axum::middleware::from_fn_with_state(realism, middleware));
        let listener = EmuListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)), None)
            .await
            .unwrap();
        let url = format!("http://{}", listener.local_socket_addr());
        let task = tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<ConnInfo>(),
            )
            .await
            .unwrap();
        });
        (url, task)
    }

    #[tokio::test]
    async fn five_parallel_requests_to_one_mailbox_get_one_429_and_max_in_flight_4() {
        let host = Arc::new(FakeHost::default());
        let realism = Arc::new(Realism::new(
            host.clone(),
            Limits::default(),
            None,
            Duration::from_millis(300),
        ));
        let applied = Arc::new(AtomicUsize::new(0));
        let (url, task) = start(realism.clone(), applied.clone()).await;
        let client = reqwest::Client::new();
        // Mix id and UPN addressing: both are the same mailbox for Outlook's limit.
        let sends: Vec<_> = (0..6)
            .map(|i| {
                let who = if i % 2 == 0 {
                    "adele@contoso.com"
                } else {
                    "u1"
                };
                let req = client
                    .get(format!("{url}/v1.0/users/{who}/contacts"))
                    .header("authorization", "Bearer app1");
                tokio::spawn(req.send())
            })
            .collect();
        let mut statuses: Vec<u16> = vec![];
        for s in sends {
            let r = s.await.unwrap().unwrap();
            statuses.push(r.status().as_u16());
            if r.status() == 429 {
                assert!(r.headers().get("retry-after").is_none());
                let body: serde_json::Value = r.json().await.unwrap();
                assert_eq!(body["error"]["code"], "ApplicationThrottled");
                assert_eq!(
                    body["error"]["message"],
                    "Application is over its MailboxConcurrency limit."
                );
                assert!(body["error"]["innerError"]["request-id"].is_string());
            }
        }
        statuses.sort();
        assert_eq!(
            statuses,
            vec![200, 200, 200, 200, 429, 429],
            "4 slots, the rest throttled"
        );
        assert_eq!(realism.limits.max_in_flight("u1"), 4);
        assert_eq!(
            applied.load(Ordering::SeqCst),
            4,
            "throttled requests are not applied"
        );
        assert_eq!(host.throttled.lock().unwrap()["adele@contoso.com"], 2);
        // Another app is not affected by app1's load.
        let r = client
            .get(format!("{url}/v1.0/users/u2/contacts"))
            .header("authorization", "Bearer app2")
            .send();
        assert_eq!(r.await.unwrap().status(), 200);
        task.abort();
    }

    #[tokio::test]
    async fn fault_plan_actions_over_http() {
        let host = Arc::new(FakeHost::default());
        let plan: FaultPlan = serde_json::from_str(
            r#"{"seed": 1, "rules": [
                {"match": {"mailbox": "adele@contoso.com"}, "nth": 1, "action": {"status": 429, "retryAfter": 2.5}},
                {"match": {"mailbox": "adele@contoso.com"}, "nth": 2, "action": {"status": 504, "afterApply": true}},
                {"match": {"mailbox": "adele@contoso.com"}, "nth": 3, "action": {"drop": "before"}},
                {"match": {"mailbox": "adele@contoso.com"}, "nth": 4, "action": {"drop": "after"}},
                {"match": {"mailbox": "adele@contoso.com"}, "nth": 5, "action": {"expireToken": true}}
            ]}"#,
        )
        .unwrap();
        let realism = Arc::new(Realism::new(
            host.clone(),
            Limits::default(),
            Some(plan),
            Duration::ZERO,
        ));
        let applied = Arc::new(AtomicUsize::new(0));
        let (url, task) = start(realism, applied.clone()).await;
        let client = reqwest::Client::new();
        let get = || {
            client
                .get(format!("{url}/v1.0/users/u1/contacts"))
                .header("authorization", "Bearer a")
                .send()
        };

        let r = get().await.unwrap();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "2.5");
        assert_eq!(applied.load(Ordering::SeqCst), 0);

        let r = get().await.unwrap();
        assert_eq!(r.status(), 504);
        assert_eq!(
            r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
            "GatewayTimeout"
        );
        assert_eq!(
            applied.load(Ordering::SeqCst),
            1,
            "afterApply: applied, then 504"
        );

        assert!(get().await.is_err(), "drop before: no response");
        assert_eq!(
            applied.load(Ordering::SeqCst),
            1,
            "drop before: not applied"
        );

        assert!(get().await.is_err(), "drop after: no response");
        assert_eq!(applied.load(Ordering::SeqCst), 2, "drop after: applied");

        assert_eq!(get().await.unwrap().status(), 200);
        assert_eq!(*host.expired.lock().unwrap(), vec!["Bearer a".to_owned()]);

        // Other mailboxes never matched.
        let r = client
            .get(format!("{url}/v1.0/users/u2/contacts"))
            .header("authorization", "Bearer a")
            .send();
        assert_eq!(r.await.unwrap().status(), 200);
        task.abort();
    }

    #[test]
    fn mailbox_segments() {
        assert_eq!(
            mailbox_segment("/v1.0/users/a%40b.c/contacts"),
            Some("a%40b.c")
        );
        assert_eq!(percent_decode("a%40b.c"), "a@b.c");
        assert_eq!(mailbox_segment("/v1.0/users/a"), None);
        assert_eq!(mailbox_segment("/v1.0/organization"), None);
    }
}
