//! Unit tests of `$batch` parsing, scheduling and the responses document.

use super::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn ok_json(status: u16, v: Value) -> InnerResponse {
    InnerResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&v).unwrap(),
    }
}

#[test]
fn validates_the_batch() {
    let many: Vec<Value> = (0..21)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    assert!(parse(&serde_json::to_vec(&json!({"requests": many})).unwrap()).is_err());
    let twenty: Vec<Value> = (0..20)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
        .collect();
    assert_eq!(
        parse(&serde_json::to_vec(&json!({"requests": twenty})).unwrap())
            .unwrap()
            .items
            .len(),
        20
    );

    let dup = json!({"requests": [{"id": "a", "method": "GET", "url": "/users"},
                                  {"id": "A", "method": "GET", "url": "/users"}]});
    assert!(
        parse(&serde_json::to_vec(&dup).unwrap())
            .unwrap_err()
            .message
            .contains("duplicated")
    );
    let unknown_dep =
        json!({"requests": [{"id": "a", "method": "GET", "url": "/users", "dependsOn": ["z"]}]});
    assert!(parse(&serde_json::to_vec(&unknown_dep).unwrap()).is_err());
    let cycle = json!({"requests": [{"id": "a", "method": "GET", "url": "/users", "dependsOn": ["b"]},
                                    {"id": "b", "method": "GET", "url": "/users", "dependsOn": ["a"]}]});
    assert!(
        parse(&serde_json::to_vec(&cycle).unwrap())
            .unwrap_err()
            .message
            .contains("cycle")
    );
    assert!(parse(b"not json").is_err());
    assert!(parse(br#"{"requests": []}"#).is_err());
}

#[test]
fn urls_relative_and_absolute() {
    assert_eq!(
        normalize_url("/users/a/contacts?$top=5").unwrap(),
        "/v1.0/users/a/contacts?$top=5"
    );
    assert_eq!(normalize_url("users/a").unwrap(), "/v1.0/users/a");
    assert_eq!(
        normalize_url("https://graph.microsoft.com/v1.0/users/a/contacts?$skip=10").unwrap(),
        "/v1.0/users/a/contacts?$skip=10"
    );
    assert_eq!(
        normalize_url("http://127.0.0.1:5/v1.0/users").unwrap(),
        "/v1.0/users"
    );
    assert!(normalize_url("https://graph.microsoft.com/beta/users").is_none());
    assert_eq!(
        mailbox_segment("/v1.0/users/Adele@X.com/contacts?$top=1").as_deref(),
        Some("adele@x.com")
    );
    assert_eq!(
        mailbox_segment("/v1.0/users/adele@x.com"),
        None,
        "the user object is not mailbox data"
    );
    assert_eq!(mailbox_segment("/v1.0/users?$top=1"), None);
}

#[test]
fn item_bodies_need_content_type() {
    let b = json!({"requests": [
        {"id": "1", "method": "POST", "url": "/users/a/contacts", "body": {"givenName": "X"}},
        {"id": "2", "method": "POST", "url": "/users/a/contacts", "body": {"givenName": "Y"},
         "headers": {"Content-Type": "application/json"}}]});
    let p = parse(&serde_json::to_vec(&b).unwrap()).unwrap();
    assert_eq!(p.items[0].as_ref().unwrap_err().1.status, 400);
    let ok = p.items[1].as_ref().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(ok.body.as_ref().unwrap()).unwrap(),
        json!({"givenName": "Y"})
    );
}

#[test]
fn item_bodies_keep_their_json_text_null_is_none_and_non_json_is_base64() {
    let b = br#"{"requests": [
        {"id": "1", "method": "POST", "url": "/users/a/contacts",
         "headers": {"Content-Type": "application/json"}, "body": {"givenName": "\u00e9 \"q\"", "n": [1, 2]}},
        {"id": "2", "method": "POST", "url": "/users/a/contacts",
         "headers": {"Content-Type": "application/json"}, "body": null},
        {"id": "3", "method": "PUT", "url": "/users/a/photo/$value",
         "headers": {"Content-Type": "image/png"}, "body": "aGVsbG8="},
        {"id": "4", "method": "PUT", "url": "/users/a/photo/$value",
         "headers": {"Content-Type": "image/png"}, "body": {"not": "base64"}},
        {"id": "5", "method": "PUT", "url": "/users/a/photo/$value",
         "headers": {"Content-Type": "image/png"}, "body": "%%%"}]}"#;
    let p = parse(b).unwrap();
    let one = p.items[0].as_ref().unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(one.body.as_ref().unwrap()).unwrap(),
        json!({"givenName": "é \"q\"", "n": [1, 2]})
    );
    assert_eq!(p.items[1].as_ref().unwrap().body, None);
    assert_eq!(
        p.items[2].as_ref().unwrap().body.as_deref(),
        Some(&b"hello"[..])
    );
    assert_eq!(p.items[3].as_ref().unwrap_err().1.status, 400);
    assert_eq!(p.items[4].as_ref().unwrap_err().1.status, 400);
}

#[test]
fn responses_body_escapes_ids_dedupes_headers_and_base64s_what_is_not_json() {
    let labelled_but_broken = InnerResponse {
        status: 200,
        headers: vec![
            ("Content-Type".into(), "text/plain".into()),
            ("content-type".into(), "application/json".into()),
        ],
        body: b"{not json".to_vec(),
    };
    let binary = InnerResponse {
        status: 200,
        headers: vec![("ETag".into(), "W/\"x\"".into())],
        body: vec![0, 159, 146, 150],
    };
    let bytes = responses_body(&[("a\"b".into(), labelled_but_broken), ("c".into(), binary)]);
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        body,
        json!({"responses": [
            {"id": "a\"b", "status": 200, "headers": {"Content-Type": "application/json"},
             "body": STANDARD.encode(b"{not json")},
            {"id": "c", "status": 200, "headers": {"ETag": "W/\"x\""},
             "body": STANDARD.encode([0u8, 159, 146, 150])}]})
    );
}

#[tokio::test]
async fn parallel_items_to_one_mailbox_run_at_most_four_at_a_time() {
    let reqs: Vec<Value> = (0..20)
        .map(|i| {
            let who = if i < 12 { "a@x" } else { "b@x" };
            json!({"id": i.to_string(), "method": "GET", "url": format!("/users/{who}/contacts")})
        })
        .collect();
    let batch = parse(&serde_json::to_vec(&json!({"requests": reqs})).unwrap()).unwrap();
    let now: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let peak: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let (n2, p2) = (now.clone(), peak.clone());
    let dispatch: Dispatch = Arc::new(move |r: InnerRequest| {
        let (now, peak) = (n2.clone(), p2.clone());
        Box::pin(async move {
            let m = mailbox_segment(&r.path_and_query).unwrap();
            {
                let mut g = now.lock().unwrap();
                let c = g.entry(m.clone()).or_default();
                *c += 1;
                let mut p = peak.lock().unwrap();
                let e = p.entry(m.clone()).or_default();
                *e = (*e).max(*c);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            *now.lock().unwrap().get_mut(&m).unwrap() -= 1;
            ok_json(200, json!({"value": []}))
        })
    });
    let out = execute(batch, mailbox_segment, dispatch).await;
    assert_eq!(out.len(), 20);
    let peak = peak.lock().unwrap();
    assert_eq!(peak["a@x"], 4, "{peak:?}");
    assert_eq!(peak["b@x"], 4, "{peak:?}");
}

#[tokio::test]
async fn depends_on_runs_in_order_and_failures_cascade_424() {
    let b = json!({"requests": [
        {"id": "3", "method": "GET", "url": "/users/a/contacts/3", "dependsOn": ["2"]},
        {"id": "1", "method": "GET", "url": "/users/a/contacts/1"},
        {"id": "2", "method": "GET", "url": "/users/a/contacts/missing", "dependsOn": ["1"]},
        {"id": "4", "method": "GET", "url": "/users/a/contacts/4", "dependsOn": ["1"]}]});
    let batch = parse(&serde_json::to_vec(&b).unwrap()).unwrap();
    assert!(batch.sequential);
    let calls = Arc::new(AtomicUsize::new(0));
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let (c2, s2) = (calls.clone(), seen.clone());
    let dispatch: Dispatch = Arc::new(move |r: InnerRequest| {
        c2.fetch_add(1, Ordering::SeqCst);
        s2.lock().unwrap().push(r.id.clone());
        Box::pin(async move {
            if r.path_and_query.ends_with("missing") {
                ok_json(
                    404,
                    json!({"error": {"code": "ErrorItemNotFound", "message": "nope"}}),
                )
            } else {
                ok_json(200, json!({"id": r.id}))
            }
        })
    });
    let out = execute(batch, mailbox_segment, dispatch).await;
    let status: HashMap<&str, u16> = out.iter().map(|(id, r)| (id.as_str(), r.status)).collect();
    assert_eq!(status["1"], 200);
    assert_eq!(status["2"], 404);
    assert_eq!(status["3"], 424, "dependant of a failure is not run");
    assert_eq!(status["4"], 200);
    assert_eq!(*seen.lock().unwrap(), vec!["1", "2", "4"]);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[test]
fn responses_carry_status_headers_and_json_or_absent_body() {
    let throttled = InnerResponse {
        status: 429,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("retry-after".into(), "3".into()),
            ("request-id".into(), "x".into()),
        ],
        body: br#"{"error":{"code":"ApplicationThrottled"}}"#.to_vec(),
    };
    let deleted = InnerResponse {
        status: 204,
        headers: vec![],
        body: vec![],
    };
    let bytes = responses_body(&[("1".into(), throttled), ("2".into(), deleted)]);
    let body: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        body,
        json!({"responses": [
            {"id": "1", "status": 429, "headers": {"Content-Type": "application/json", "Retry-After": "3"},
             "body": {"error": {"code": "ApplicationThrottled"}}},
            {"id": "2", "status": 204, "headers": {}}]})
    );
}
