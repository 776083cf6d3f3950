//! Runs that end (issue 16): a dead Graph or login endpoint opens the client's circuit breaker
//! within its span instead of retrying for minutes, and the caller's stop signal ends every wait
//! (concurrency slot, backoff, a mailbox's Retry-After pause, the app budget) at once while a
//! request already on the wire finishes. Virtual time, except where a real in-flight request is
//! the point.

use std::sync::Arc;
use std::time::Duration;

use graph::clock::{SleepFuture, until};
use graph::{
    ClientConfig, Clock, Credential, Endpoints, ErrorKind, FolderRef, GraphClient, RequestBudget,
    Secret, StopSignal, VirtualClock, WriteRequest,
};
use jiff::Timestamp;
use serde_json::json;

use crate::contact::{Contact, SELECT};
use crate::mock::{Answer, Mock, pass};
use crate::mock_client::SECRET;

/// A loopback address where nothing listens: connections are refused at once.
async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    url
}

fn config(login: &str, graph: &str, clock: Arc<dyn Clock>) -> ClientConfig {
    let mut cfg = ClientConfig::new(
        "contoso.com",
        "app-1",
        Credential::Secret(Secret::new(SECRET)),
        Endpoints::new(login, graph).unwrap(),
    );
    cfg.clock = clock;
    cfg.seed = 3;
    cfg
}

async fn token_only_mock(clock: &Arc<VirtualClock>) -> Mock {
    Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            pass()
        } else {
            Answer::json(200, json!({"value": []}))
        }
    })
    .await
}

#[tokio::test]
async fn a_dead_graph_ends_every_call_within_the_breaker_span() {
    let clock = Arc::new(VirtualClock::default());
    let login = token_only_mock(&clock).await;
    let dead = dead_url().await;
    let c = GraphClient::new(config(&login.url, &dead, clock.clone())).unwrap();
    let t0 = clock.now();
    // Many mailboxes read at once, and writes to one.
    let reads = futures::future::join_all((0..12).map(|i| {
        let c = c.clone();
        async move {
            c.list_contacts::<Contact>(&format!("u{i}@x"), &FolderRef::Default, SELECT)
                .await
        }
    }));
    let writes = c.execute_writes::<Contact>(
        "u0@x",
        (0..3)
            .map(|i| WriteRequest::create(FolderRef::Default, json!({"displayName": i})))
            .collect(),
    );
    let (reads, writes) = tokio::join!(reads, writes);
    let spent = until(t0, clock.now());
    for e in reads
        .into_iter()
        .map(|r| r.unwrap_err())
        .chain(writes.into_iter().map(|r| r.unwrap_err()))
    {
        assert_eq!(e.kind, ErrorKind::Unreachable, "{e}");
        assert!(
            e.message
                .contains(&format!("Graph at {dead}/ unreachable: connection refused")),
            "{e}"
        );
        assert!(!e.is_retryable());
    }
    // The default breaker: 3 failures, 20 s after the first. Before it, a dead Graph cost each
    // call 8 attempts over 30–60 s, and every call after it the same again.
    assert!(
        spent >= Duration::from_secs(20) && spent < Duration::from_secs(21),
        "{spent:?}"
    );
    // Open for good: a later call fails at once, without a request or a wait.
    let sent = c.stats().requests;
    let sleeps = clock.sleeps().len();
    let e = c
        .list_contacts::<Contact>("late@x", &FolderRef::Default, SELECT)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unreachable);
    assert!(e.message.starts_with("listing contacts of late@x"), "{e}");
    assert_eq!(c.stats().requests, sent);
    assert_eq!(clock.sleeps().len(), sleeps);
}

#[tokio::test]
async fn a_single_caller_meets_the_same_bound_and_a_dead_login_endpoint_too() {
    // One request alone: its 3rd failure comes after 1–2 s of backoff, and the backoff after
    // that is cut at the breaker's instant.
    let clock = Arc::new(VirtualClock::default());
    let login = token_only_mock(&clock).await;
    let dead = dead_url().await;
    let c = GraphClient::new(config(&login.url, &dead, clock.clone())).unwrap();
    let t0 = clock.now();
    let e = c.user("adele@x").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unreachable, "{e}");
    assert_eq!(until(t0, clock.now()), Duration::from_secs(20));
    assert!(e.message.contains("times over 20 s"), "{e}");

    // The login endpoint: same rule, its own name in the message.
    let clock = Arc::new(VirtualClock::default());
    let graph = token_only_mock(&clock).await;
    let dead = dead_url().await;
    let c = GraphClient::new(config(&dead, &graph.url, clock.clone())).unwrap();
    let t0 = clock.now();
    let e = c.token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unreachable, "{e}");
    assert!(
        e.message.contains(&format!(
            "the login endpoint {dead}/ unreachable: connection refused"
        )),
        "{e}"
    );
    assert_eq!(until(t0, clock.now()), Duration::from_secs(20));
    // Graph calls of that client fail at once too: it cannot work without tokens.
    let e = c
        .list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unreachable);
    assert!(graph.seen().is_empty());
}

#[tokio::test]
async fn an_endpoint_that_never_answers_opens_the_breaker_through_timeouts() {
    // Accepts connections and says nothing: each attempt ends at the request timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            held.push(conn);
        }
    });
    let clock = Arc::new(VirtualClock::default());
    let login = token_only_mock(&clock).await;
    let mut cfg = config(&login.url, &url, clock.clone());
    cfg.request_timeout = Duration::from_millis(100);
    let c = GraphClient::new(cfg).unwrap();
    let e = c.user("a@x").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unreachable, "{e}");
    assert!(e.message.contains("unreachable: timed out"), "{e}");
    assert!(c.stats().requests >= 3);
    hold.abort();
}

#[tokio::test]
async fn answers_in_between_keep_the_breaker_closed() {
    // Graph answers 503 (an answer, not a transport failure) for a long while: retried per the
    // policy, never "unreachable".
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            pass()
        } else {
            Answer::error(503, "serviceNotAvailable")
        }
    })
    .await;
    let c = GraphClient::new(config(&m.url, &m.url, clock.clone())).unwrap();
    let e = c.user("a@x").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Server);
    assert_eq!(m.graph_requests().len(), 8);
}

/// A clock whose sleeps never end: any wait can only end through the stop signal.
struct StuckClock(Timestamp);

impl Clock for StuckClock {
    fn now(&self) -> Timestamp {
        self.0
    }
    fn sleep(&self, _: Duration) -> SleepFuture<'_> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test]
async fn stop_ends_backoff_retry_after_and_app_budget_waits_at_once() {
    let vclock = Arc::new(VirtualClock::default());
    let m = Mock::start(vclock.clone(), 3599, |s, _| {
        if s.is_token() {
            return pass();
        }
        match s.path() {
            // Every item of a batch answered 500: each may have been applied; the next round
            // waits for its backoff.
            "/v1.0/$batch" => {
                let req: serde_json::Value = serde_json::from_str(&s.body).unwrap();
                let responses: Vec<_> = req["requests"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|r| json!({"id": r["id"], "status": 500, "headers": {},
                                    "body": {"error": {"code": "InternalServerError", "message": "x"}}}))
                    .collect();
                Answer::json(200, json!({ "responses": responses }))
            }
            // A write answered 500: it may have been applied; backoff before the retry.
            p if p.ends_with("/contacts/c1") => Answer::error(500, "InternalServerError"),
            p if p.starts_with("/v1.0/users/busy@x") => {
                Answer::error(429, "ApplicationThrottled").with_header("Retry-After", "60")
            }
            "/v1.0/users/flaky@x" => Answer::error(503, "serviceNotAvailable"),
            _ => Answer::json(200, json!({"id": "u", "value": []})),
        }
    })
    .await;
    let stop = StopSignal::new();
    let stuck: Arc<dyn Clock> = Arc::new(StuckClock(vclock.now()));
    let mut cfg = config(&m.url, &m.url, stuck.clone());
    cfg.stop = stop.clone();
    let c = GraphClient::new(cfg).unwrap();
    // Another client of the stopped run, allowed one request per 10 s for its whole app: its
    // second request waits for budget.
    let mut cfg = config(&m.url, &m.url, stuck);
    cfg.stop = stop.clone();
    cfg.app_budget = RequestBudget {
        requests: 1,
        per: Duration::from_secs(10),
    };
    let paced = GraphClient::new(cfg).unwrap();
    paced.user("first@x").await.unwrap();
    let calls = vec![
        tokio::spawn({
            let c = paced.clone();
            async move { c.user("budget@x").await.unwrap_err() }
        }),
        tokio::spawn({
            let c = c.clone();
            async move {
                c.execute_writes::<Contact>(
                    "a@x",
                    vec![WriteRequest::update(
                        FolderRef::Default,
                        "c1",
                        None,
                        json!({"displayName": "x"}),
                    )],
                )
                .await
                .remove(0)
                .unwrap_err()
            }
        }),
        tokio::spawn({
            let c = c.clone();
            async move {
                let both = ["b1", "b2"]
                    .map(|id| WriteRequest::delete(FolderRef::Default, id, None))
                    .to_vec();
                let mut r = c.execute_writes::<Contact>("b@x", both).await;
                assert!(r[1].as_ref().is_err_and(|e| e.kind == ErrorKind::Cancelled));
                r.remove(0).unwrap_err()
            }
        }),
        tokio::spawn({
            let c = c.clone();
            async move {
                c.list_contacts::<Contact>("busy@x", &FolderRef::Default, SELECT)
                    .await
                    .unwrap_err()
            }
        }),
        tokio::spawn({
            let c = c.clone();
            async move { c.user("flaky@x").await.unwrap_err() }
        }),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(calls.iter().all(|t| !t.is_finished()), "all are waiting");
    let stopped_at = std::time::Instant::now();
    stop.stop();
    for t in calls {
        let e = tokio::time::timeout(Duration::from_secs(2), t)
            .await
            .expect("a stop ends the wait at once")
            .unwrap();
        assert_eq!(e.kind, ErrorKind::Cancelled, "{e}");
        assert!(!e.is_retryable());
        if e.message.contains("contact c1") || e.message.contains("contact b1") {
            assert!(
                e.message
                    .contains("an earlier attempt may have been applied"),
                "{e}"
            );
        }
    }
    assert!(stopped_at.elapsed() < Duration::from_secs(1));
    // Nothing new is sent after the stop.
    let sent = m.graph_requests().len();
    let e = c.user("later@x").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert_eq!(
        e.message,
        "reading user later@x: stopped before it was sent"
    );
    assert_eq!(m.graph_requests().len(), sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_lets_a_request_on_the_wire_finish_and_ends_a_wait_for_its_slot() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            pass()
        } else {
            Answer::json(200, json!({"value": [{"id": "a"}]})).delayed(600)
        }
    })
    .await;
    let stop = StopSignal::new();
    let mut cfg = config(&m.url, &m.url, clock.clone());
    cfg.stop = stop.clone();
    cfg.per_mailbox_concurrency = 1;
    let c = GraphClient::new(cfg).unwrap();
    c.token().await.unwrap();
    let on_the_wire = tokio::spawn({
        let c = c.clone();
        async move {
            c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let waiting = tokio::spawn({
        let c = c.clone();
        async move {
            c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.stop();
    let e = tokio::time::timeout(Duration::from_millis(300), waiting)
        .await
        .expect("the slot wait ends at once")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Cancelled);
    assert!(
        !on_the_wire.is_finished(),
        "the first request is still on the wire"
    );
    let got = on_the_wire.await.unwrap().unwrap();
    assert_eq!(got.len(), 1, "a request already sent finishes");
    assert_eq!(m.graph_requests().len(), 1);
}
