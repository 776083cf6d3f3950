//! The retry rules at their edges, against the scripted mock on virtual time: what a token
//! refresh costs in the counters, and a `Retry-After` beyond the policy's cap.

use std::sync::Arc;
use std::time::Duration;

use graph::{ErrorKind, FolderRef, GraphClient, Secret, VirtualClock, WriteRequest};
use serde_json::json;

use crate::contact::{Contact, SELECT};
use crate::mock::{Answer, Mock, pass};
use crate::mock_client::{SECRET, config};

fn client(mock: &Mock, clock: &Arc<VirtualClock>) -> GraphClient {
    GraphClient::new(config(
        &mock.url,
        clock.clone(),
        graph::Credential::Secret(Secret::new(SECRET)),
    ))
    .unwrap()
}

/// The regression: a 401 answered to a retry (here after a 429) was counted as two retries, one
/// for the refresh and one for the attempt number it restored.
#[tokio::test]
async fn a_token_refresh_counts_as_one_retry() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, seen| {
        if s.is_token() {
            return pass();
        }
        match seen.iter().filter(|x| !x.is_token()).count() {
            1 => Answer::error(429, "ApplicationThrottled").with_header("Retry-After", "1"),
            2 => Answer::error(401, "InvalidAuthenticationToken"),
            _ => Answer::json(200, json!({"value": []})),
        }
    })
    .await;
    let c = client(&m, &clock);
    c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap();
    let st = c.stats();
    assert_eq!(m.graph_requests().len(), 3);
    assert_eq!(
        (st.requests, st.retries, st.throttled, st.token_requests),
        (3, 2, 1, 2),
        "{st:?}"
    );

    // A 401 on the first attempt: one retry as well.
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            pass()
        } else if s.header("authorization") == Some("Bearer tok-1") {
            Answer::error(401, "InvalidAuthenticationToken")
        } else {
            Answer::json(200, json!({"value": []}))
        }
    })
    .await;
    let c = client(&m, &clock);
    c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap();
    let st = c.stats();
    assert_eq!(
        (st.requests, st.retries, st.token_requests),
        (2, 1, 2),
        "{st:?}"
    );
}

/// The regression: a 503 whose `Retry-After` exceeded the cap fell back to backoff (waiting less
/// than Graph asked) while a 429 gave up. One rule: give up at once and say how long Graph asked
/// for and what the cap is.
#[tokio::test]
async fn a_retry_after_beyond_the_cap_gives_up_for_429_and_503_alike() {
    for (status, code, kind) in [
        (429, "ApplicationThrottled", ErrorKind::Throttled),
        (503, "serviceNotAvailable", ErrorKind::Server),
    ] {
        let clock = Arc::new(VirtualClock::default());
        let m = Mock::start(clock.clone(), 3599, move |s, _| {
            if s.is_token() {
                pass()
            } else {
                Answer::error(status, code).with_header("Retry-After", "3600")
            }
        })
        .await;
        let c = client(&m, &clock);
        let e = c
            .list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
            .await
            .unwrap_err();
        assert_eq!((e.kind, e.status), (kind, Some(status)), "{e}");
        assert!(e.message.contains("3600 s"), "{e}");
        assert!(e.message.contains("600 s"), "{e}");
        assert!(e.is_retryable(), "a later run may succeed");
        assert_eq!(m.graph_requests().len(), 1, "{status}: not sent again");
        assert!(clock.sleeps().is_empty(), "{status}: {:?}", clock.sleeps());

        // The same rule for a `$batch` item.
        let clock = Arc::new(VirtualClock::default());
        let m = Mock::start(clock.clone(), 3599, move |s, _| {
            if s.is_token() {
                return pass();
            }
            let req: serde_json::Value = serde_json::from_str(&s.body).unwrap();
            let responses: Vec<_> = req["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| match r["id"].as_str().unwrap() {
                    "0" => json!({"id": "0", "status": status, "headers": {"Retry-After": "3600"},
                                  "body": {"error": {"code": code, "message": "later"}}}),
                    id => json!({"id": id, "status": 204}),
                })
                .collect();
            Answer::json(200, json!({ "responses": responses }))
        })
        .await;
        let c = client(&m, &clock);
        let writes = (0..2)
            .map(|i| WriteRequest::delete(FolderRef::Default, format!("c{i}"), None))
            .collect();
        let r = c.execute_writes::<Contact>("a@x", writes).await;
        let e = r[0].as_ref().unwrap_err();
        assert_eq!((e.kind, e.status), (kind, Some(status)), "{e}");
        assert!(
            e.message.contains("3600 s") && e.message.contains("600 s"),
            "{e}"
        );
        assert_eq!(r[1].as_ref().unwrap().status, 204);
        assert_eq!(
            m.graph_requests().len(),
            1,
            "{status}: the item was not sent again"
        );
        assert!(clock.sleeps().is_empty(), "{:?}", clock.sleeps());
    }
}

/// Within the cap, both honour Graph's wait exactly.
#[tokio::test]
async fn a_retry_after_within_the_cap_is_waited_for_exactly() {
    for status in [429, 503] {
        let clock = Arc::new(VirtualClock::default());
        let m = Mock::start(clock.clone(), 3599, move |s, seen| {
            if s.is_token() {
                return pass();
            }
            if seen.iter().filter(|x| !x.is_token()).count() == 1 {
                Answer::error(status, "busy").with_header("Retry-After", "600")
            } else {
                Answer::json(200, json!({"value": []}))
            }
        })
        .await;
        let c = client(&m, &clock);
        c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
            .await
            .unwrap();
        let g = m.graph_requests();
        assert_eq!(g.len(), 2);
        assert!(g[1].at - g[0].at >= 600.0 - 1e-9, "{status}: {}", g[1].at);
        assert!(
            clock
                .sleeps()
                .iter()
                .all(|d| *d <= Duration::from_secs(600)),
            "{:?}",
            clock.sleeps()
        );
    }
}
