//! The retry rules at their edges, against the scripted mock on virtual time: what a token
//! refresh costs in the counters.

use std::sync::Arc;

use graph::{FolderRef, GraphClient, Secret, VirtualClock};
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
