//! Control plane (crates/graph-emulator/README.md, "Control plane"): state export/replay and stats.

use crate::common::*;
use graph_emulator::Scenario;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn state_round_trips_through_the_scenario_format() {
    let env = start().await;
    let token = env.token().await;
    let (status, _) = env
        .send(
            Method::POST,
            "/v1.0/users/adele@contoso.com/contacts",
            &token,
            Some(json!({"displayName": "New", "homeAddress": {"city": "Oslo"}})),
        )
        .await;
    assert_eq!(status, 201);
    let resp = env
        .http
        .get(env.url("/_emulator/state"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let exported_text = resp.text().await.unwrap();
    let exported = Scenario::from_json(&exported_text).expect("export parses strictly");
    assert_eq!(exported, env.emu.state());
    let adele = &exported.tenants[0].users[1];
    assert_eq!(adele.contacts.len(), 26);

    let replay = start_with(exported.clone()).await;
    assert_eq!(
        replay.emu.state(),
        exported,
        "replaying an export reproduces it exactly"
    );
    // Same ids and etags are served after replay.
    let (_, a) = env
        .get("/v1.0/users/adele@contoso.com/contacts?$top=1")
        .await;
    let (_, b) = replay
        .get("/v1.0/users/adele@contoso.com/contacts?$top=1")
        .await;
    assert_eq!(a["value"][0]["id"], b["value"][0]["id"]);
    assert_eq!(a["value"][0]["@odata.etag"], b["value"][0]["@odata.etag"]);
}

#[tokio::test]
async fn stats_count_per_mailbox_and_reset() {
    let env = start().await;
    let token = env.token().await;
    env.send(
        Method::GET,
        "/v1.0/users/ADELE@contoso.com/contacts",
        &token,
        None,
    )
    .await;
    env.send(
        Method::GET,
        "/v1.0/users/11111111-1111-4111-8111-111111111111/contacts",
        &token,
        None,
    )
    .await;
    env.send(
        Method::POST,
        "/v1.0/users/adele@contoso.com/contacts",
        &token,
        Some(json!({"displayName": "x"})),
    )
    .await;
    env.send(Method::GET, "/v1.0/users", &token, None).await;
    let resp = env
        .http
        .get(env.url("/_emulator/stats"))
        .send()
        .await
        .unwrap();
    let stats: Value = resp.json().await.unwrap();
    assert_eq!(stats["requests"], 4);
    assert_eq!(stats["tokenRequests"], 1);
    assert_eq!(stats["batches"], 0);
    let adele = &stats["byMailbox"]["adele@contoso.com"];
    assert_eq!(adele["GET"], 2, "{stats}");
    assert_eq!(adele["POST"], 1);
    assert_eq!(adele["maxInFlight"], 1);
    assert_eq!(
        stats["byMailbox"].as_object().unwrap().len(),
        1,
        "directory calls are not mailbox calls"
    );

    let resp = env
        .http
        .post(env.url("/_emulator/stats/reset"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    assert_eq!(env.emu.stats(), graph_emulator::Stats::default());
}

#[tokio::test]
async fn stats_count_requests_per_user_agent() {
    let env = start().await;
    // The test client sends no User-Agent: its token request and one Graph request count under "".
    let token = env.token().await;
    env.send(Method::GET, "/v1.0/users", &token, None).await;
    let agent = "ISV|synccontacts|synccontacts/9.9.9 (commit abc)";
    for path in ["/v1.0/users", "/v1.0/users/adele@contoso.com/contacts"] {
        let resp = env
            .http
            .get(env.url(path))
            .bearer_auth(&token)
            .header("user-agent", agent)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    // A `$batch` counts once, as in `requests`.
    let resp = env
        .http
        .post(env.url("/v1.0/$batch"))
        .bearer_auth(&token)
        .header("user-agent", agent)
        .json(&json!({"requests": [
            {"id": "1", "method": "GET", "url": "/users/adele@contoso.com/contacts"},
            {"id": "2", "method": "GET", "url": "/users"}
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = env
        .http
        .post(env.url(&format!("/{TENANT}/oauth2/v2.0/token")))
        .header("user-agent", agent)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[("grant_type", "client_credentials")]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400, "a refused token request counts too");

    let stats: Value = env
        .http
        .get(env.url("/_emulator/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["userAgents"],
        json!({
            "": {"requests": 1, "tokenRequests": 1},
            agent: {"requests": 3, "tokenRequests": 1},
        }),
        "{stats}"
    );
    assert_eq!(stats["requests"], 4);
    assert_eq!(stats["tokenRequests"], 2);
    let typed = env.emu.stats();
    assert_eq!(typed.user_agents[agent].requests, 3);
    // Readers of an older stats document (no userAgents) still parse it.
    let old: graph_emulator::Stats =
        serde_json::from_value(json!({"requests": 1, "throttled": 0, "byMailbox": {},
            "batches": 0, "batchItems": 0, "tokenRequests": 0}))
        .unwrap();
    assert!(old.user_agents.is_empty());
    env.http
        .post(env.url("/_emulator/stats/reset"))
        .send()
        .await
        .unwrap();
    assert!(env.emu.stats().user_agents.is_empty(), "reset clears it");
}

#[tokio::test]
async fn max_in_flight_counts_concurrent_requests_per_mailbox() {
    let emu = graph_emulator::start(
        fixture(),
        graph_emulator::EmulatorOptions {
            latency: std::time::Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let env = Env {
        emu,
        http: reqwest::Client::new(),
    };
    let token = env.token().await;
    let calls = (0..3).map(|_| {
        env.send(
            Method::GET,
            "/v1.0/users/adele@contoso.com/contacts?$top=1",
            &token,
            None,
        )
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|(s, _)| *s == 200));
    env.send(
        Method::GET,
        "/v1.0/users/carol@contoso.com/contacts",
        &token,
        None,
    )
    .await;
    let stats = env.emu.stats();
    assert_eq!(stats.by_mailbox["adele@contoso.com"].max_in_flight, 3);
    assert_eq!(stats.by_mailbox["carol@contoso.com"].max_in_flight, 1);
}

/// Sends a request and returns (status, body length in bytes as received).
async fn raw(
    env: &Env,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, usize) {
    let mut req = env.http.request(method, env.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.bytes().await.unwrap().len())
}

#[tokio::test]
async fn response_bytes_count_bodies_sent_per_mailbox_and_a_batch_once() {
    let env = start().await;
    let token = env.token().await;
    env.emu.reset_stats();
    let (s, adele_list) = raw(
        &env,
        Method::GET,
        "/v1.0/users/adele@contoso.com/contacts?$top=3",
        &token,
        None,
    )
    .await;
    assert_eq!(s, 200);
    let (s, users) = raw(&env, Method::GET, "/v1.0/users", &token, None).await;
    assert_eq!(s, 200);
    let (_, b) = env
        .send(
            Method::GET,
            "/v1.0/users/adele@contoso.com/contacts?$top=1&$select=id",
            &token,
            None,
        )
        .await;
    let id = b["value"][0]["id"].as_str().unwrap().to_owned();
    let select_len = serde_json::to_vec(&b).unwrap().len();
    let (s, deleted) = raw(
        &env,
        Method::DELETE,
        &format!("/v1.0/users/adele@contoso.com/contacts/{id}"),
        &token,
        None,
    )
    .await;
    assert_eq!((s, deleted), (204, 0));
    let (s, missing) = raw(
        &env,
        Method::GET,
        "/v1.0/users/carol@contoso.com/contacts/AAMkAGhvbmVzdGx5LW5vdC10aGVyZQ==",
        &token,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let carol_items = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users/carol@contoso.com/contacts"},
        {"id": "2", "method": "GET", "url": "/users/CAROL@contoso.com/contacts?$top=1"}]});
    let (s, carol_batch) = raw(
        &env,
        Method::POST,
        "/v1.0/$batch",
        &token,
        Some(carol_items),
    )
    .await;
    assert_eq!(s, 200);
    let mixed = json!({"requests": [
        {"id": "1", "method": "GET", "url": "/users/carol@contoso.com/contacts?$top=1"},
        {"id": "2", "method": "GET", "url": "/users/adele@contoso.com/contacts?$top=1"}]});
    let (s, mixed_batch) = raw(&env, Method::POST, "/v1.0/$batch", &token, Some(mixed)).await;
    assert_eq!(s, 200);
    // A token request is not a Graph response.
    env.token().await;

    let stats = env.emu.stats();
    let adele = &stats.by_mailbox["adele@contoso.com"];
    let carol = &stats.by_mailbox["carol@contoso.com"];
    assert_eq!(
        adele.response_bytes,
        (adele_list + select_len) as u64,
        "{stats:?}"
    );
    assert_eq!(
        carol.response_bytes,
        (missing + carol_batch) as u64,
        "errors count; a batch to one mailbox is that mailbox's: {stats:?}"
    );
    assert_eq!(
        stats.response_bytes,
        (adele_list + users + select_len + missing + carol_batch + mixed_batch) as u64,
        "the directory and a mixed batch count in the total only: {stats:?}"
    );
    let doc: Value = env
        .http
        .get(env.url("/_emulator/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["responseBytes"], stats.response_bytes);
    assert_eq!(
        doc["byMailbox"]["adele@contoso.com"]["responseBytes"],
        adele.response_bytes
    );
    env.emu.reset_stats();
    assert_eq!(env.emu.stats().response_bytes, 0);
}

#[tokio::test]
async fn a_dropped_answer_is_not_counted_as_sent() {
    let env = start().await;
    let token = env.token().await;
    env.emu.set_faults(
        serde_json::from_value(json!({"rules": [
            {"match": {"method": "GET", "mailbox": "adele@contoso.com"}, "nth": 1,
             "action": {"drop": "before"}}]}))
        .unwrap(),
    );
    env.emu.reset_stats();
    let dropped = env
        .http
        .get(env.url("/v1.0/users/adele@contoso.com/contacts"))
        .bearer_auth(&token)
        .send()
        .await;
    assert!(dropped.is_err(), "the connection is dropped");
    let stats = env.emu.stats();
    assert_eq!(stats.response_bytes, 0, "{stats:?}");
    assert_eq!(stats.by_mailbox["adele@contoso.com"].get, 1);
}
