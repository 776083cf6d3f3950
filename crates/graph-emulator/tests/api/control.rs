//! Control plane (EMULATOR.md §4): state export/replay and stats.

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
