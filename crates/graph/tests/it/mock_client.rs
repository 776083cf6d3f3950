//! Client behaviour against the scripted mock: token handling, retries, throttling, paging,
//! batching, folder search. Virtual time throughout, so storms of Retry-After run instantly.

use std::sync::Arc;
use std::time::Duration;

use graph::{
    ClientConfig, Clock, Credential, Endpoints, ErrorKind, FolderRef, GraphClient, Secret,
    VirtualClock, WriteRequest,
};
use serde_json::json;

use crate::contact::{Contact, SELECT};

use crate::mock::{Answer, Mock, Seen, pass};

pub const SECRET: &str = "canary-secret-7f3a9c2e1b";

pub fn config(url: &str, clock: Arc<VirtualClock>, cred: Credential) -> ClientConfig {
    let ep = Endpoints::new(url, url).unwrap();
    let mut cfg = ClientConfig::new("contoso.com", "app-1", cred, ep);
    cfg.clock = clock;
    cfg.seed = 1;
    cfg
}

fn client(mock: &Mock, clock: &Arc<VirtualClock>) -> GraphClient {
    GraphClient::new(config(
        &mock.url,
        clock.clone(),
        Credential::Secret(Secret::new(SECRET)),
    ))
    .unwrap()
}

fn contacts_page(ids: &[&str], next: Option<String>) -> Answer {
    let value: Vec<_> = ids
        .iter()
        .map(|id| json!({"id": id, "@odata.etag": format!("W/\"ck-{id}\""), "displayName": format!("N {id}")}))
        .collect();
    let mut body = json!({ "value": value });
    if let Some(n) = next {
        body["@odata.nextLink"] = json!(n);
    }
    Answer::json(200, body)
}

#[tokio::test]
async fn secret_token_request_is_well_formed_and_cached() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            pass()
        } else {
            contacts_page(&["a"], None)
        }
    })
    .await;
    let c = client(&m, &clock);
    for _ in 0..3 {
        c.list_contacts::<Contact>("adele@contoso.com", &FolderRef::Default, SELECT)
            .await
            .unwrap();
    }
    let t = m.token_requests();
    assert_eq!(t.len(), 1, "token must be cached");
    assert_eq!(t[0].path(), "/contoso.com/oauth2/v2.0/token");
    let f = t[0].form();
    assert_eq!(f["grant_type"], "client_credentials");
    assert_eq!(f["client_id"], "app-1");
    assert_eq!(f["client_secret"], SECRET);
    assert_eq!(f["scope"], format!("{}/.default", m.url));
    for g in m.graph_requests() {
        assert_eq!(g.header("authorization"), Some("Bearer tok-1"));
    }
    assert_eq!(c.stats().token_requests, 1);
    assert_eq!(c.stats().requests, 3);
}

#[tokio::test]
async fn token_is_refreshed_before_expiry() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3600, |s, _| {
        if s.is_token() {
            pass()
        } else {
            contacts_page(&[], None)
        }
    })
    .await;
    let c = client(&m, &clock);
    c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(3200)); // 6m40s left: still valid
    c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap();
    assert_eq!(m.token_requests().len(), 1);
    clock.advance(Duration::from_secs(150)); // 4m10s left: inside the 5-minute margin
    c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap();
    assert_eq!(m.token_requests().len(), 2);
    assert_eq!(
        m.graph_requests()[2].header("authorization"),
        Some("Bearer tok-2")
    );
    let info = c.token().await.unwrap();
    assert!(info.expires_at > clock.now());
}

#[tokio::test]
async fn a_401_triggers_exactly_one_refresh_and_retry() {
    let clock = Arc::new(VirtualClock::default());
    // The first token is "revoked": any request carrying tok-1 gets 401.
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            pass()
        } else if s.header("authorization") == Some("Bearer tok-1") {
            Answer::error(401, "InvalidAuthenticationToken")
        } else {
            contacts_page(&["x"], None)
        }
    })
    .await;
    let c = client(&m, &clock);
    let got = c
        .list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(m.token_requests().len(), 2);
    assert_eq!(m.graph_requests().len(), 2);

    // A token that is always refused: one refresh, then a classified Auth error.
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            pass()
        } else {
            Answer::error(401, "InvalidAuthenticationToken")
        }
    })
    .await;
    let c = client(&m, &clock);
    let e = c
        .list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(
        m.graph_requests().len(),
        2,
        "one retry after one refresh, no more"
    );
    assert_eq!(m.token_requests().len(), 2);
}

#[tokio::test]
async fn throttling_honours_retry_after_in_virtual_time() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, seen| {
        if s.is_token() {
            return pass();
        }
        let n = seen.iter().filter(|x| !x.is_token()).count();
        match n {
            1 => Answer::error(429, "ApplicationThrottled").with_header("Retry-After", "2.5"),
            2 => Answer::error(429, "TooManyRequests").with_header("Retry-After", "7"),
            _ => contacts_page(&["a", "b"], None),
        }
    })
    .await;
    let c = client(&m, &clock);
    let got = c
        .list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    let g = m.graph_requests();
    assert_eq!(g.len(), 3);
    // Each retry arrived no earlier than its Retry-After allowed.
    assert!(g[1].at - g[0].at >= 2.5 - 1e-9, "{} {}", g[0].at, g[1].at);
    assert!(g[2].at - g[1].at >= 7.0 - 1e-9);
    let st = c.stats();
    assert_eq!((st.throttled, st.retries, st.requests), (2, 2, 3));
}

#[tokio::test]
async fn throttling_without_retry_after_backs_off_and_the_budget_ends_it() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            pass()
        } else {
            Answer::error(429, "ApplicationThrottled")
        }
    })
    .await;
    let c = client(&m, &clock);
    let e = c
        .list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Throttled);
    assert!(e.is_retryable());
    let g = m.graph_requests();
    assert_eq!(g.len(), 8, "default attempt budget");
    // Backoff grows: the last gap is longer than the first.
    let gaps: Vec<f64> = g.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps.iter().all(|d| *d > 0.0), "{gaps:?}");
    assert!(gaps.last().unwrap() > gaps.first().unwrap(), "{gaps:?}");
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for (status, code, kind) in [
        (400, "ErrorInvalidRequest", ErrorKind::BadRequest),
        (403, "ErrorAccessDenied", ErrorKind::Permission),
        (404, "ErrorItemNotFound", ErrorKind::NotFound),
        (
            404,
            "MailboxNotEnabledForRESTAPI",
            ErrorKind::MailboxNotEnabled,
        ),
        (409, "ErrorFolderExists", ErrorKind::Conflict),
        (412, "ErrorIrresolvableConflict", ErrorKind::Conflict),
    ] {
        let clock = Arc::new(VirtualClock::default());
        let m = Mock::start(clock.clone(), 3599, move |s, _| {
            if s.is_token() {
                pass()
            } else {
                Answer::error(status, code)
            }
        })
        .await;
        let c = client(&m, &clock);
        let e = c
            .list_contacts::<Contact>("a@x", &FolderRef::Id("f1".into()), SELECT)
            .await
            .unwrap_err();
        assert_eq!(e.kind, kind, "{status} {code}");
        assert_eq!(e.code.as_deref(), Some(code));
        assert_eq!(
            e.request_id.as_deref(),
            Some(format!("rid-{status}").as_str())
        );
        assert_eq!(m.graph_requests().len(), 1, "{status} must not be retried");
        assert!(clock.sleeps().is_empty());
    }
}

#[tokio::test]
async fn server_errors_back_off_then_succeed() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, seen| {
        if s.is_token() {
            return pass();
        }
        match seen.iter().filter(|x| !x.is_token()).count() {
            1 => Answer::error(503, "serviceNotAvailable"),
            2 => Answer::error(504, "GatewayTimeout"),
            _ => contacts_page(&["a"], None),
        }
    })
    .await;
    let c = client(&m, &clock);
    assert_eq!(
        c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(m.graph_requests().len(), 3);
    assert_eq!(clock.sleeps().len(), 2);
}

#[tokio::test]
async fn contact_paging_follows_next_links_verbatim_with_top_and_select() {
    let clock = Arc::new(VirtualClock::default());
    let base = Arc::new(std::sync::Mutex::new(String::new()));
    let b2 = base.clone();
    let m = Mock::start(clock.clone(), 3599, move |s, _| {
        if s.is_token() {
            return pass();
        }
        let base = b2.lock().unwrap().clone();
        if s.uri.contains("$skip=2000") {
            contacts_page(&["e"], None)
        } else if s.uri.contains("$skip=1000") {
            // A short page with a nextLink is legal (contact groups take slots).
            contacts_page(
                &["c", "d"],
                Some(format!(
                    "{base}/v1.0/users/a@x/contacts?%24top=1000&$skip=2000&opaque=a%2Bb"
                )),
            )
        } else {
            contacts_page(
                &["a", "b"],
                Some(format!(
                    "{base}/v1.0/users/a@x/contacts?%24top=1000&$skip=1000"
                )),
            )
        }
    })
    .await;
    *base.lock().unwrap() = m.url.clone();
    let c = client(&m, &clock);
    let got = c
        .list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap();
    let ids: Vec<_> = got.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c", "d", "e"]);
    assert_eq!(got[0].etag.as_deref(), Some("W/\"ck-a\""));
    let g = m.graph_requests();
    assert_eq!(g.len(), 3);
    // The caller's $select, as given.
    assert_eq!(
        g[0].uri,
        format!("/v1.0/users/a@x/contacts?$top=1000&$select={SELECT}")
    );
    assert_eq!(g[1].uri, "/v1.0/users/a@x/contacts?%24top=1000&$skip=1000");
    assert_eq!(
        g[2].uri,
        "/v1.0/users/a@x/contacts?%24top=1000&$skip=2000&opaque=a%2Bb"
    );
}

#[tokio::test]
async fn users_filter_and_consistency_level_on_every_page() {
    let clock = Arc::new(VirtualClock::default());
    let base = Arc::new(std::sync::Mutex::new(String::new()));
    let b2 = base.clone();
    let m = Mock::start(clock.clone(), 3599, move |s, _| {
        if s.is_token() {
            return pass();
        }
        let base = b2.lock().unwrap().clone();
        let n = if s.uri.contains("skiptoken=P2") { 2 } else if s.uri.contains("skiptoken=P1") { 1 } else { 0 };
        let mut body = json!({"value": [{"id": format!("u{n}"), "userPrincipalName": format!("u{n}@contoso.com"), "mail": null}]});
        if n == 0 {
            body["@odata.count"] = json!(3);
        }
        if n < 2 {
            body["@odata.nextLink"] = json!(format!("{base}/v1.0/users?$skiptoken=P{}", n + 1));
        }
        Answer::json(200, body)
    })
    .await;
    *base.lock().unwrap() = m.url.clone();
    let c = client(&m, &clock);
    let users = c.licensed_users().await.unwrap();
    assert_eq!(
        users.iter().map(|u| u.key()).collect::<Vec<_>>(),
        ["u0@contoso.com", "u1@contoso.com", "u2@contoso.com"]
    );
    let g = m.graph_requests();
    assert_eq!(g.len(), 3);
    assert_eq!(
        g[0].uri,
        "/v1.0/users?$select=id,userPrincipalName,mail&$filter=assignedLicenses/$count%20ne%200&$count=true&$top=999"
    );
    for r in &g {
        assert_eq!(r.header("consistencylevel"), Some("eventual"), "{}", r.uri);
    }
}

#[tokio::test]
async fn next_link_to_another_host_is_refused() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            pass()
        } else {
            contacts_page(&["a"], Some("https://evil.example/v1.0/steal".into()))
        }
    })
    .await;
    let c = client(&m, &clock);
    let e = c
        .list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap_err();
    assert!(
        e.message.contains("refusing to send the access token"),
        "{e}"
    );
    assert_eq!(m.graph_requests().len(), 1);
}

#[tokio::test]
async fn upn_is_percent_encoded_in_the_path() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            pass()
        } else {
            contacts_page(&[], None)
        }
    })
    .await;
    let c = client(&m, &clock);
    c.list_contacts::<Contact>(
        "ext_bob#EXT#@contoso.onmicrosoft.com",
        &FolderRef::Default,
        SELECT,
    )
    .await
    .unwrap();
    assert!(
        m.graph_requests()[0]
            .uri
            .starts_with("/v1.0/users/ext_bob%23EXT%23@contoso.onmicrosoft.com/contacts?")
    );
}

#[tokio::test]
async fn a_throttled_mailbox_pauses_alone() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, seen| {
        if s.is_token() {
            return pass();
        }
        let to_a = seen
            .iter()
            .filter(|x| x.uri.contains("/users/a@x/"))
            .count();
        if s.uri.contains("/users/a@x/") && to_a == 1 {
            // Answered late (real time) so b's requests are certainly sent meanwhile.
            Answer::error(429, "ApplicationThrottled")
                .with_header("Retry-After", "30")
                .delayed(300)
        } else {
            contacts_page(&["x"], None)
        }
    })
    .await;
    let c = client(&m, &clock);
    let (a, ()) = tokio::join!(
        c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT),
        async {
            for _ in 0..3 {
                c.list_contacts::<Contact>("b@x", &FolderRef::Default, SELECT)
                    .await
                    .unwrap();
            }
        }
    );
    a.unwrap();
    let g = m.graph_requests();
    let a_times: Vec<f64> = g
        .iter()
        .filter(|r| r.uri.contains("/users/a@x/"))
        .map(|r| r.at)
        .collect();
    let b_times: Vec<f64> = g
        .iter()
        .filter(|r| r.uri.contains("/users/b@x/"))
        .map(|r| r.at)
        .collect();
    assert_eq!(a_times.len(), 2);
    assert!(
        a_times[1] >= 30.0,
        "a waited for its Retry-After: {a_times:?}"
    );
    assert_eq!(b_times, [0.0, 0.0, 0.0], "b@x was never paused");
}

#[tokio::test]
async fn pause_is_honoured_by_concurrent_requests_to_the_same_mailbox() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, seen| {
        if s.is_token() {
            return pass();
        }
        let n = seen.iter().filter(|x| !x.is_token()).count();
        if n == 1 {
            Answer::error(429, "ApplicationThrottled").with_header("Retry-After", "10")
        } else {
            contacts_page(&["x"], None)
        }
    })
    .await;
    let c = client(&m, &clock);
    c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap();
    // After the 429 at t=0, no later request to a@x arrived before t=10.
    let g = m.graph_requests();
    assert!(
        g[1..].iter().all(|r| r.at >= 10.0),
        "{:?}",
        g.iter().map(|r| r.at).collect::<Vec<_>>()
    );
    // And a request to the same mailbox issued now (time has passed) is not delayed further.
    let now = clock.now();
    c.list_contacts::<Contact>("A@X", &FolderRef::Default, SELECT)
        .await
        .unwrap();
    assert_eq!(clock.now(), now);
}

fn batch_answer(s: &Seen, f: impl Fn(&str, &serde_json::Value) -> serde_json::Value) -> Answer {
    let req: serde_json::Value = serde_json::from_str(&s.body).unwrap();
    let responses: Vec<_> = req["requests"]
        .as_array()
        .unwrap()
        .iter()
        .rev() // responses in another order than requests
        .map(|r| f(r["id"].as_str().unwrap(), r))
        .collect();
    Answer::json(200, json!({ "responses": responses }))
}

#[tokio::test]
async fn batch_writes_retry_items_on_their_own_status() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, seen| {
        if s.is_token() {
            return pass();
        }
        assert_eq!(s.path(), "/v1.0/$batch");
        let round = seen.iter().filter(|x| !x.is_token()).count();
        batch_answer(s, |id, r| {
            let name = r["body"]["displayName"].as_str().unwrap_or("").to_owned();
            let created = json!({"id": format!("new-{name}"), "displayName": name, "@odata.etag": "W/\"1\""});
            match (round, name.as_str()) {
                (_, "bad") => json!({"id": id, "status": 400, "body": {"error": {"code": "ErrorInvalidProperty", "message": "too many emails"}}}),
                (1, "t1") => json!({"id": id, "status": 429, "headers": {"Retry-After": "3"}, "body": {"error": {"code": "ApplicationThrottled", "message": "over"}}}),
                (2 | 3, "s1") => json!({"id": id, "status": 503, "body": {"error": {"code": "serviceNotAvailable", "message": "busy"}}}),
                _ if r["method"] == "PATCH" => json!({"id": id, "status": 200, "body": {"id": "c-upd", "displayName": "U"}}),
                _ => json!({"id": id, "status": 201, "body": created}),
            }
        })
    })
    .await;
    let c = client(&m, &clock);
    let mut writes = Vec::new();
    for i in 0..22 {
        writes.push(WriteRequest::create(
            FolderRef::Id("hub".into()),
            json!({"displayName": format!("n{i}")}),
        ));
    }
    writes[3] = WriteRequest::create(FolderRef::Id("hub".into()), json!({"displayName": "t1"}));
    writes[5] = WriteRequest::create(FolderRef::Id("hub".into()), json!({"displayName": "bad"}));
    writes[21] = WriteRequest::create(FolderRef::Id("hub".into()), json!({"displayName": "s1"}));
    writes.push(WriteRequest::update(
        FolderRef::Default,
        "c-upd",
        Some("W/\"ck\"".into()),
        json!({"displayName": "U"}),
    ));
    let res = c.execute_writes::<Contact>("hub@contoso.com", writes).await;
    assert_eq!(res.len(), 23);
    for (i, r) in res.iter().enumerate() {
        match i {
            5 => {
                let e = r.as_ref().unwrap_err();
                assert_eq!(e.kind, ErrorKind::BadRequest);
                assert_eq!(e.code.as_deref(), Some("ErrorInvalidProperty"));
            }
            22 => assert_eq!(r.as_ref().unwrap().status, 200),
            _ => {
                let ok = r.as_ref().unwrap_or_else(|e| panic!("{i}: {e}"));
                assert_eq!(ok.status, 201);
                let name = match i {
                    3 => "t1".to_owned(),
                    21 => "s1".to_owned(),
                    _ => format!("n{i}"),
                };
                assert_eq!(
                    ok.body.as_ref().unwrap().id,
                    format!("new-{name}"),
                    "results stay in input order"
                );
            }
        }
    }
    let g = m.graph_requests();
    let bodies: Vec<serde_json::Value> = g
        .iter()
        .map(|s| serde_json::from_str(&s.body).unwrap())
        .collect();
    let sizes: Vec<usize> = bodies
        .iter()
        .map(|b| b["requests"].as_array().unwrap().len())
        .collect();
    // Requests: 20 + 3 (s1 gets 503 in the second); then t1 (429) and s1 (503 again); then s1.
    assert_eq!(sizes, [20, 3, 2, 1], "{sizes:?}");
    for b in &bodies {
        for r in b["requests"].as_array().unwrap() {
            assert!(
                r["url"]
                    .as_str()
                    .unwrap()
                    .starts_with("/users/hub@contoso.com/"),
                "relative item URLs"
            );
        }
    }
    let patch = bodies[1]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == "PATCH")
        .unwrap();
    assert_eq!(patch["headers"]["If-Match"], "W/\"ck\"");
    assert_eq!(patch["url"], "/users/hub@contoso.com/contacts/c-upd");
    // The 429 item's Retry-After was honoured for the mailbox.
    assert!(g[2].at >= 3.0, "{}", g[2].at);
    let st = c.stats();
    assert_eq!(st.batches, 4);
    assert_eq!(st.batch_items, 26);
    assert_eq!(st.throttled, 1);
}

#[tokio::test]
async fn ambiguous_creates_are_not_repeated_but_updates_are() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, seen| {
        if s.is_token() {
            return pass();
        }
        let n = seen.iter().filter(|x| !x.is_token()).count();
        if s.method == "POST" || n == 2 {
            Answer::error(504, "GatewayTimeout")
        } else {
            Answer::json(200, json!({"id": "c1", "displayName": "U"}))
        }
    })
    .await;
    let c = client(&m, &clock);
    let r = c
        .execute_writes::<Contact>(
            "a@x",
            vec![WriteRequest::create(
                FolderRef::Default,
                json!({"displayName": "N"}),
            )],
        )
        .await;
    let e = r[0].as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::AmbiguousWrite);
    assert!(!e.is_retryable());
    assert_eq!(
        m.graph_requests().len(),
        1,
        "a create with unknown outcome must not be resent"
    );
    let r = c
        .execute_writes::<Contact>(
            "a@x",
            vec![WriteRequest::update(
                FolderRef::Default,
                "c1",
                None,
                json!({"displayName": "U"}),
            )],
        )
        .await;
    assert_eq!(r[0].as_ref().unwrap().status, 200);
    assert_eq!(m.graph_requests().len(), 3);
}

#[tokio::test]
async fn find_contact_folder_walks_the_tree_breadth_first() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            return pass();
        }
        let f =
            |id: &str, name: &str| json!({"id": id, "displayName": name, "parentFolderId": "p"});
        let v = match s.path() {
            "/v1.0/users/hub@x/contactFolders" => vec![f("A", "Family"), f("B", "Work")],
            "/v1.0/users/hub@x/contactFolders/A/childFolders" => vec![f("A1", "Kids")],
            "/v1.0/users/hub@x/contactFolders/B/childFolders" => vec![f("B1", "Shared")],
            "/v1.0/users/hub@x/contactFolders/B1/childFolders" => vec![f("B2", "All Contacts")],
            "/v1.0/users/hub@x/contactFolders/A1/childFolders" => vec![f("A2", "all contacts")],
            _ => vec![],
        };
        Answer::json(200, json!({ "value": v }))
    })
    .await;
    let c = client(&m, &clock);
    let f = c
        .find_contact_folder("hub@x", "All Contacts")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        f.id, "B2",
        "exact displayName match, case-sensitive, nested two levels down"
    );
    assert_eq!(
        c.find_contact_folder("hub@x", "Work")
            .await
            .unwrap()
            .unwrap()
            .id,
        "B"
    );
    assert!(
        c.find_contact_folder("hub@x", "Nope")
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn create_folder_that_already_exists_returns_the_existing_one() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            return pass();
        }
        if s.method == "POST" {
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&s.body).unwrap(),
                json!({"displayName": "All Contacts"})
            );
            return Answer::error(409, "ErrorFolderExists");
        }
        Answer::json(
            200,
            json!({"value": [{"id": "F", "displayName": "All Contacts"}]}),
        )
    })
    .await;
    let c = client(&m, &clock);
    assert_eq!(
        c.create_contact_folder("hub@x", "All Contacts")
            .await
            .unwrap()
            .id,
        "F"
    );
}

#[tokio::test]
async fn batch_item_401_refreshes_the_token_once_and_retries_the_item() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            return pass();
        }
        let stale = s.header("authorization") == Some("Bearer tok-1");
        batch_answer(s, |id, _| {
            if stale && id == "1" {
                json!({"id": id, "status": 401, "body": {"error": {"code": "InvalidAuthenticationToken", "message": "expired"}}})
            } else {
                json!({"id": id, "status": 204})
            }
        })
    })
    .await;
    let c = client(&m, &clock);
    let writes = (0..3)
        .map(|i| WriteRequest::delete(FolderRef::Default, format!("c{i}"), None))
        .collect();
    let res = c.execute_writes::<Contact>("a@x", writes).await;
    assert!(
        res.iter().all(|r| r
            .as_ref()
            .is_ok_and(|w| w.status == 204 && w.body.is_none())),
        "{res:?}"
    );
    let g = m.graph_requests();
    assert_eq!(g.len(), 2);
    assert_eq!(g[1].header("authorization"), Some("Bearer tok-2"));
    let second: serde_json::Value = serde_json::from_str(&g[1].body).unwrap();
    assert_eq!(
        second["requests"].as_array().unwrap().len(),
        1,
        "only the refused item is resent"
    );
    assert_eq!(second["requests"][0]["method"], "DELETE");
    assert_eq!(m.token_requests().len(), 2);
}

#[tokio::test]
async fn every_request_carries_the_configured_user_agent() {
    const AGENT: &str = "ISV|example|example/1.2.3 (commit abc)";
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            return pass();
        }
        if s.path() == "/v1.0/$batch" {
            return batch_answer(s, |id, r| {
                json!({"id": id, "status": 201, "body": {"id": format!("new-{id}"),
                    "displayName": r["body"]["displayName"], "@odata.etag": "W/\"1\""}})
            });
        }
        contacts_page(&["a"], None)
    })
    .await;
    let mut cfg = config(
        &m.url,
        clock.clone(),
        Credential::Secret(Secret::new(SECRET)),
    );
    assert!(
        cfg.user_agent.starts_with("graph-client/"),
        "the library names itself unless told otherwise: {}",
        cfg.user_agent
    );
    cfg.user_agent = AGENT.into();
    let c = GraphClient::new(cfg).unwrap();
    c.list_contacts::<Contact>("adele@contoso.com", &FolderRef::Default, SELECT)
        .await
        .unwrap();
    let writes = (0..3)
        .map(|i| WriteRequest::create(FolderRef::Default, json!({"displayName": format!("n{i}")})))
        .collect();
    for r in c
        .execute_writes::<Contact>("adele@contoso.com", writes)
        .await
    {
        r.unwrap();
    }
    let seen = m.seen();
    let kinds: Vec<&str> = seen
        .iter()
        .map(|s| {
            if s.is_token() {
                "token"
            } else if s.path() == "/v1.0/$batch" {
                "batch"
            } else {
                "plain"
            }
        })
        .collect();
    assert_eq!(kinds, ["token", "plain", "batch"], "{seen:?}");
    for s in &seen {
        assert_eq!(
            s.header("user-agent"),
            Some(AGENT),
            "{} {}",
            s.method,
            s.uri
        );
    }
    // The batch's items carry no User-Agent of their own: the outer request's identifies them.
    let body: serde_json::Value = serde_json::from_str(&seen[2].body).unwrap();
    for item in body["requests"].as_array().unwrap() {
        assert!(item["headers"].get("User-Agent").is_none(), "{item}");
    }
}
