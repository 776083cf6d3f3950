//! The realism wrapper around every Graph request (and every `$batch` item): fault plan, Outlook
//! limits, and service latency, applied in the order a real request meets them: gateway faults
//! first, then throttling, then the service time while holding a concurrency slot, then the
//! handler, then the "answer lost after the write" faults.
//!
//! It knows nothing about users, tokens or the store: the core resolves the app and the mailbox
//! and passes them in a [`Ctx`]; the core must never apply a request that a
//! fault or a limit refused, and never answer a request whose connection a fault dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::faults::{DropWhen, FaultAction, FaultEngine, FaultPlan, FaultRequest, status_error};
use crate::limits::{Limits, LimitsState, Permit, Throttle};

/// A mailbox as the core knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxName {
    /// Stable key shared by all addressing forms (limits are per app + this key).
    pub key: String,
    /// userPrincipalName, for fault matching and stats.
    pub upn: String,
}

/// What this layer needs to know about one request (direct or `$batch` item).
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub method: &'a str,
    /// Path without query, e.g. `/v1.0/users/adele@contoso.com/contacts`.
    pub path: &'a str,
    /// Client id of the authenticated app; `None` skips the limits (the core refuses the
    /// request anyway).
    pub app: Option<&'a str>,
    /// The mailbox addressed, for mailbox-data paths.
    pub mailbox: Option<&'a MailboxName>,
}

/// An answer this layer gives instead of the handler's.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub status: u16,
    pub code: &'static str,
    pub message: &'static str,
    /// E.g. `Retry-After`.
    pub headers: Vec<(String, String)>,
}

impl Refusal {
    pub fn is_throttle(&self) -> bool {
        self.status == 429
    }
}

/// Why a request does not get the handler's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// Answer with this error (Graph's envelope).
    Respond(Refusal),
    /// Close the connection without any answer.
    Drop,
    /// Expire the presented token now and answer 401 as for an expired token.
    ExpireToken,
}

/// Faults, limits and latency for one emulator.
#[derive(Debug)]
pub struct Realism {
    pub faults: FaultEngine,
    pub limits: LimitsState,
    latency_ms: AtomicU64,
}

/// A request that may run: holds its concurrency slot until [`Admitted::finish`].
#[derive(Debug)]
pub struct Admitted {
    _permit: Option<Permit>,
    delay: Duration,
    latency: Duration,
    after: Option<FaultAction>,
}

impl Admitted {
    /// Fault delay plus the configured service time, spent holding the concurrency slot.
    pub async fn service_time(&self) {
        let total = self.delay + self.latency;
        if !total.is_zero() {
            tokio::time::sleep(total).await;
        }
    }

    /// Only the fault plan's delay, without `--latency-ms` (for a `$batch` envelope, whose
    /// items each take their own service time).
    pub async fn fault_delay(&self) {
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
    }

    /// Call after the request was applied: `Err` for the "answer lost after the write" faults.
    /// Releases the concurrency slot.
    pub fn finish(self) -> Result<(), Refused> {
        match self.after {
            Some(FaultAction::Status {
                status,
                retry_after,
                ..
            }) => Err(Refused::Respond(fault_refusal(status, retry_after))),
            Some(FaultAction::Drop(_)) => Err(Refused::Drop),
            _ => Ok(()),
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
    pub fn new(limits: Limits, faults: Option<FaultPlan>, latency: Duration) -> Self {
        Realism {
            faults: FaultEngine::new(faults.unwrap_or_default()),
            limits: LimitsState::new(limits),
            latency_ms: AtomicU64::new(u64::try_from(latency.as_millis()).unwrap_or(u64::MAX)),
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

    /// Decides whether a request may run: the fault plan first (gateway faults come before the
    /// service), then the Outlook limits. On `Ok`, run [`Admitted::service_time`], apply the
    /// request, then [`Admitted::finish`].
    pub fn admit(&self, ctx: &Ctx<'_>) -> Result<Admitted, Refused> {
        let raw_who = mailbox_segment(ctx.path).map(percent_decode);
        let aliases: Vec<&str> = [raw_who.as_deref(), ctx.mailbox.map(|m| m.key.as_str())]
            .into_iter()
            .flatten()
            .collect();
        let fault = self.faults.decide(&FaultRequest {
            method: ctx.method,
            path: ctx.path,
            mailbox: ctx.mailbox.map(|m| m.upn.as_str()),
            mailbox_aliases: &aliases,
        });
        let mut delay = Duration::ZERO;
        let mut after = None;
        match fault {
            Some(FaultAction::Status {
                status,
                retry_after,
                after_apply: false,
            }) => {
                return Err(Refused::Respond(fault_refusal(status, retry_after)));
            }
            Some(FaultAction::Drop(DropWhen::Before)) => return Err(Refused::Drop),
            Some(FaultAction::ExpireToken) => return Err(Refused::ExpireToken),
            Some(FaultAction::Delay { delay_ms }) => delay = Duration::from_millis(delay_ms),
            Some(
                a @ (FaultAction::Status {
                    after_apply: true, ..
                }
                | FaultAction::Drop(DropWhen::After)),
            ) => after = Some(a),
            None => {}
        }
        let permit = match ctx.app {
            None => None,
            Some(app) => Some(
                self.limits
                    .admit(
                        app,
                        ctx.mailbox.map(|m| m.key.as_str()),
                        tokio::time::Instant::now(),
                    )
                    .map_err(|t| Refused::Respond(throttle_refusal(&t)))?,
            ),
        };
        Ok(Admitted {
            _permit: permit,
            delay,
            latency: self.latency(),
            after,
        })
    }
}

pub(crate) fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

fn fault_refusal(status: u16, retry_after: Option<f64>) -> Refusal {
    let (code, message) = status_error(status);
    let mut headers = vec![];
    if let Some(s) = retry_after {
        // Graph sends integers and decimals (e.g. `2.128`, docs/graph-facts.md §6); keep what the
        // plan says.
        let v = if s.fract() == 0.0 {
            format!("{}", s as u64)
        } else {
            format!("{s}")
        };
        headers.push(("Retry-After".to_owned(), v));
    }
    Refusal {
        status,
        code,
        message,
        headers,
    }
}

fn throttle_refusal(t: &Throttle) -> Refusal {
    let headers = t
        .retry_after_secs()
        .map(|s| ("Retry-After".to_owned(), s.to_string()))
        .into_iter()
        .collect();
    Refusal {
        status: 429,
        code: t.code(),
        message: t.message(),
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{ConnInfo, EmuListener};
    use axum::Router;
    use axum::extract::{ConnectInfo, Request, State};
    use axum::http::{HeaderValue, StatusCode};
    use axum::middleware::Next;
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use serde_json::json;
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    /// Graph's error envelope (docs/graph-facts.md §7) with `request-id` / `client-request-id`
    /// headers, for callers that have no envelope of their own.
    fn graph_error(
        status: StatusCode,
        code: &str,
        message: &str,
        client_request_id: Option<&str>,
    ) -> Response {
        let request_id = uuid::Uuid::new_v4().to_string();
        #[allow(clippy::disallowed_methods)]
        // the emulator serves real wall-clock dates, like Graph
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

    /// A stand-in core: users "adele" (id u1) and "bob" (id u2); tokens are "Bearer <app>".
    #[derive(Default)]
    struct FakeHost {
        realism: Option<Arc<Realism>>,
        expired: Mutex<Vec<String>>,
        throttled: Mutex<HashMap<String, usize>>,
    }

    fn lookup(who: &str) -> Option<MailboxName> {
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

    /// The wiring the core does in its dispatcher, as axum middleware.
    async fn fake_core(State(host): State<Arc<FakeHost>>, req: Request, next: Next) -> Response {
        let realism = host.realism.clone().unwrap();
        let path = req.uri().path().to_owned();
        let method = req.method().to_string();
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let app = auth
            .as_deref()
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::to_owned);
        let mailbox = mailbox_segment(&path).and_then(lookup);
        let conn = req
            .extensions()
            .get::<ConnectInfo<ConnInfo>>()
            .map(|c| c.0.clone());
        let ctx = Ctx {
            method: &method,
            path: &path,
            app: app.as_deref(),
            mailbox: mailbox.as_ref(),
        };
        let refused = |r: Refused| match r {
            Refused::Respond(x) => {
                if x.is_throttle() {
                    let key = mailbox.as_ref().map_or("-".to_owned(), |m| m.upn.clone());
                    *host.throttled.lock().unwrap().entry(key).or_default() += 1;
                }
                let mut resp = graph_error(
                    StatusCode::from_u16(x.status).unwrap(),
                    x.code,
                    x.message,
                    None,
                );
                for (k, v) in x.headers {
                    resp.headers_mut().insert(
                        axum::http::HeaderName::try_from(k).unwrap(),
                        HeaderValue::from_str(&v).unwrap(),
                    );
                }
                resp
            }
            Refused::Drop => {
                conn.as_ref().unwrap().kill.kill();
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
            Refused::ExpireToken => {
                host.expired.lock().unwrap().extend(auth.clone());
                StatusCode::UNAUTHORIZED.into_response()
            }
        };
        let admitted = match realism.admit(&ctx) {
            Ok(a) => a,
            Err(r) => return refused(r),
        };
        admitted.service_time().await;
        let resp = next.run(req).await;
        match admitted.finish() {
            Ok(()) => resp,
            Err(r) => refused(r),
        }
    }

    async fn start(
        host: Arc<FakeHost>,
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
            .layer(axum::middleware::from_fn_with_state(host, fake_core));
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
        let realism = Arc::new(Realism::new(
            Limits::default(),
            None,
            Duration::from_millis(300),
        ));
        let host = Arc::new(FakeHost {
            realism: Some(realism.clone()),
            ..FakeHost::default()
        });
        let applied = Arc::new(AtomicUsize::new(0));
        let (url, task) = start(host.clone(), applied.clone()).await;
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
        let realism = Arc::new(Realism::new(Limits::default(), Some(plan), Duration::ZERO));
        let host = Arc::new(FakeHost {
            realism: Some(realism),
            ..FakeHost::default()
        });
        let applied = Arc::new(AtomicUsize::new(0));
        let (url, task) = start(host.clone(), applied.clone()).await;
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

        assert_eq!(get().await.unwrap().status(), 401, "expireToken");
        assert_eq!(
            applied.load(Ordering::SeqCst),
            2,
            "expireToken: not applied"
        );
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
