//! I5: throttling and server-fault storms, each on a fixed seed so a failure replays. Each storm
//! runs a generated tenant (overlapping contacts, edits) under a fault plan until a run exits 0
//! (at most 3 runs), then checks against the oracles: the final state equals an undisturbed
//! run's (modulo ids, etags, timestamps, SyncId values), no duplicate (I2), never more than 4
//! requests in flight per mailbox, no throttled request repeated before its `Retry-After` passed
//! (emulator `earlyRetries`, on the emulator clock the virtual client clock drives), a quiet run
//! after (I1), and no secret in any output (I7). Also: 4xx answers are not retried, and a dry run
//! under the storm writes nothing and predicts the real run (I8).
//!
//! The storm's runs share a state file (issue 12): the first run commits what its writes came
//! to under the storm, the runs after load it (`"state": "loaded"`) and must never take a write
//! the storm lost for a deletion — no DELETE in any run. One storm runs each run with a fresh
//! state (first-run mode only), as before the state existed.

use std::time::Duration;

use graph_emulator::{EmulatorOptions, GenerateOptions, Scenario};
use serde_json::{Value, json};

use crate::crash::{State, repair, state_vars};
use crate::harness::{self, CLIENT, HUB, SECRET, TENANT};
use crate::kit::{self, SharedEmu};
use crate::memory::StateDir;

/// A generated tenant (hub + `users` users, overlapping contacts, 20 % edited copies) under the
/// harness's tenant/app/secret so the standard configuration reaches it.
pub fn generated(users: usize, per_user: usize, seed: u64) -> Scenario {
    let s = graph_emulator::generate(&GenerateOptions {
        users,
        contacts_per_user: per_user,
        pool: Some(users * per_user / 2),
        edits: 0.2,
        seed,
    });
    let mut v = serde_json::to_value(&s).unwrap();
    let t = &mut v["tenants"][0];
    t["tenantId"] = json!(TENANT);
    t["apps"][0]["clientId"] = json!(CLIENT);
    t["apps"][0]["clientSecret"] = json!(SECRET);
    serde_json::from_value(v).unwrap()
}

/// The state an undisturbed run reaches on `s`.
async fn undisturbed(s: Scenario, batch: bool) -> Vec<Vec<String>> {
    let emu = kit::start(s).await;
    let vars = kit::tenant_env(&emu, batch);
    let r = kit::sync_lib(&emu, &vars, false).await;
    assert_eq!(r.code(), 0, "undisturbed run: {}", r.report);
    kit::normalised(&emu)
}

/// Asserts the per-mailbox oracles of I5 over everything the emulator saw.
fn assert_polite(emu: &harness::Emu, context: &str) {
    let stats = emu.stats();
    for (m, s) in &stats.by_mailbox {
        assert!(
            s.max_in_flight <= 4,
            "{context}: {} requests in flight to {m}",
            s.max_in_flight
        );
        assert_eq!(
            s.early_retries, 0,
            "{context}: {m} got a throttled request again before its Retry-After"
        );
    }
}

struct Storm {
    name: &'static str,
    rules: Vec<Value>,
    batch: bool,
    /// Whether the first run must already exit 0 (the storm is survivable within one run).
    first_run_ok: bool,
    /// Whether the runs share one state file (else each gets a fresh one).
    state: State,
}

/// Rides out `storm` on a generated tenant; returns the emulator, the runs, and the stats of
/// everything up to convergence (the quiet run after resets them).
async fn weather(storm: Storm, seed: u64) -> (SharedEmu, Vec<kit::LibRun>, graph_emulator::Stats) {
    let s = generated(6, 6, seed);
    let want = undisturbed(s.clone(), storm.batch).await;
    let emu = kit::start(s).await;
    let dir = StateDir::new();
    let vars = state_vars(&kit::tenant_env(&emu, storm.batch), storm.state, &dir);
    let ctx = format!("storm {} seed {seed} {:?}", storm.name, storm.state);
    // I8: the dry run writes nothing and predicts the real run (whose plan is the same whatever
    // the storm does to its writes, as long as every mailbox could be read).
    let dry = kit::sync_lib(&emu, &vars, true).await;
    assert_eq!(dry.code(), 0, "{ctx}: dry run {}", dry.report);
    assert_eq!(emu.writes(), 0, "{ctx}: the dry run wrote");

    emu.inner.set_faults(kit::plan(seed, storm.rules));
    let runs = repair(&emu, &vars, (storm.state, &dir), 3, &ctx).await;
    if storm.first_run_ok {
        assert_eq!(
            runs.len(),
            1,
            "{ctx}: the storm should be ridden out in one run"
        );
    }
    let first = &runs[0].report["tenants"][0];
    if first["failedMailboxes"]
        .as_array()
        .is_some_and(Vec::is_empty)
        && first["outcome"] != "failed"
    {
        assert_eq!(
            dry.action_keys(),
            runs[0].action_keys(),
            "{ctx}: the dry run did not predict the real run"
        );
    }
    kit::assert_no_duplicates(&emu, &ctx);
    kit::assert_same_state(&kit::normalised(&emu), &want, &ctx);
    assert_polite(&emu, &ctx);
    for r in runs.iter().chain([&dry]) {
        kit::assert_no_canary(&r.all_output(), &[SECRET], &ctx);
    }
    let stats = emu.stats();
    emu.inner.set_faults(kit::plan(0, vec![]));
    kit::assert_second_run_writes_nothing(&emu, &vars, &ctx).await;
    (emu, runs, stats)
}

fn mailbox_requests() -> Value {
    json!({"path": "/v1.0/users/**"})
}

/// 30 % of mailbox requests throttled, `Retry-After` 1–5 s (five rules of ~7 % each).
fn throttled_with_retry_after() -> Vec<Value> {
    (1..=5)
        .map(|s| {
            json!({"match": mailbox_requests(), "probability": 0.069,
                         "action": {"status": 429, "retryAfter": s}})
        })
        .collect()
}

#[tokio::test]
async fn storm_429_with_retry_after() {
    let (_, runs, stats) = weather(
        Storm {
            name: "429+Retry-After",
            rules: throttled_with_retry_after(),
            batch: false,
            first_run_ok: true,
            state: State::Carried,
        },
        11,
    )
    .await;
    assert!(stats.throttled >= 10, "the storm did not blow");
    // The client waited at least as long as asked (every Retry-After is 1–5 s).
    assert!(
        runs[0].sleeps.iter().any(|d| *d >= Duration::from_secs(1)),
        "{:?}",
        runs[0].sleeps
    );
}

#[tokio::test]
async fn storm_429_with_retry_after_batched() {
    let (_, _, stats) = weather(
        Storm {
            name: "429+Retry-After batched",
            rules: throttled_with_retry_after(),
            batch: true,
            first_run_ok: true,
            state: State::Carried,
        },
        12,
    )
    .await;
    assert!(stats.throttled >= 5, "the storm did not blow");
}

#[tokio::test]
async fn storm_429_without_retry_after() {
    let (_, runs, stats) = weather(
        Storm {
            name: "429 bare",
            rules: vec![json!({"match": mailbox_requests(), "probability": 0.3,
                                "action": {"status": 429}})],
            batch: false,
            first_run_ok: true,
            state: State::Carried,
        },
        13,
    )
    .await;
    assert!(stats.throttled >= 10, "the storm did not blow");
    assert!(!runs[0].sleeps.is_empty(), "a bare 429 must back off");
}

/// A burst of 503s on the users' default folders (reads and creates): backed off and survived
/// within the run.
#[tokio::test]
async fn storm_503_burst_is_ridden_out() {
    let (_, _, stats) = weather(
        Storm {
            name: "503 burst",
            rules: vec![
                json!({"match": {"path": "/v1.0/users/*/contacts"}, "times": 20,
                                "action": {"status": 503}}),
            ],
            batch: false,
            first_run_ok: true,
            state: State::Carried,
        },
        14,
    )
    .await;
    assert!(stats.requests > 20);
}

/// A 503 outage longer than the client's patience at the very start (the hub's directory
/// entry): the run stops cleanly with exit 1 before writing anything, and the next run, after
/// recovery, converges.
#[tokio::test]
async fn storm_503_outage_stops_cleanly_then_recovers() {
    let (_, runs, _) = weather(
        Storm {
            name: "503 outage",
            rules: vec![
                json!({"match": {"method": "GET", "path": "/v1.0/users/*"}, "times": 8,
                                "action": {"status": 503}}),
            ],
            batch: false,
            first_run_ok: false,
            state: State::Carried,
        },
        21,
    )
    .await;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].code(), 1);
    assert!(
        runs[0].actions().is_empty(),
        "nothing planned while Graph was down"
    );
}

/// 10 % of creates are applied and answered 504: the ambiguous write. Never repeated in the run
/// (a repeat could duplicate), reconciled by the next run without duplicates.
#[tokio::test]
async fn storm_apply_then_504_on_creates() {
    let (_, runs, stats) = weather(
        Storm {
            name: "apply-then-504 on creates",
            rules: vec![
                json!({"match": {"method": "POST", "path": "/v1.0/users/*/contacts"},
                                "probability": 0.1,
                                "action": {"status": 504, "afterApply": true}}),
            ],
            batch: false,
            first_run_ok: false,
            state: State::Carried,
        },
        15,
    )
    .await;
    assert!(
        runs.len() >= 2,
        "the storm did not blow: {}",
        runs[0].report
    );
    assert_eq!(runs[0].code(), 1, "ambiguous creates make the run partial");
    assert!(stats.by_mailbox.values().map(|m| m.post).sum::<u64>() > 0);
}

/// 10 % of creates lose their connection after applying, as `$batch` items.
#[tokio::test]
async fn storm_apply_then_drop_on_batched_creates() {
    weather(
        Storm {
            name: "apply-then-drop on batched creates",
            rules: vec![
                json!({"match": {"method": "POST", "path": "/v1.0/users/*/contacts"},
                                "probability": 0.1,
                                "action": {"drop": "after"}}),
            ],
            batch: true,
            first_run_ok: false,
            state: State::Carried,
        },
        16,
    )
    .await;
}

/// Connections lost: 10 % of mailbox requests (reads included) dropped before they apply, and
/// 10 % of writes dropped after applying. Reads and updates are repeated; an ambiguous create is
/// not, and the next run reconciles it.
#[tokio::test]
async fn storm_dropped_connections() {
    dropped_connections(State::Carried).await;
}

/// The same storm without memory: every run in first-run mode.
#[tokio::test]
async fn storm_dropped_connections_each_run_with_a_fresh_state() {
    dropped_connections(State::Fresh).await;
}

async fn dropped_connections(state: State) {
    let (_, runs, _) = weather(
        Storm {
            name: "dropped connections",
            rules: vec![
                json!({"match": mailbox_requests(), "probability": 0.1,
                       "action": {"drop": "before"}}),
                json!({"match": kit::writes_match(), "probability": 0.1,
                       "action": {"drop": "after"}}),
            ],
            batch: false,
            first_run_ok: false,
            state,
        },
        22,
    )
    .await;
    assert!(
        runs[0].logs.contains("connection"),
        "the storm did not blow: {}",
        runs[0].report
    );
}

/// The token is revoked mid-run (the 20th mailbox request): one refresh, and the run goes on.
#[tokio::test]
async fn storm_token_expires_mid_run() {
    let (_, runs, stats) = weather(
        Storm {
            name: "token expiry",
            rules: vec![json!({"match": mailbox_requests(), "nth": 20,
                                "action": {"expireToken": true}})],
            batch: false,
            first_run_ok: true,
            state: State::Carried,
        },
        17,
    )
    .await;
    // The dry run and the real run get a token each, plus exactly one refresh after the 401s.
    assert_eq!(stats.token_requests, 3, "{stats:?}");
    // Every request that carried the revoked token saw a 401, but they share one refresh.
    assert!(
        runs[0]
            .logs
            .contains("access token refused (401); refreshing it once")
    );
}

/// Regression (graph client): a request queued behind a mailbox's `Retry-After` took its
/// access token *before* waiting, so a token that expired during the wait was sent (a 401 that
/// spends the request's one refresh; a second expiry would fail it). Real time here, because
/// the virtual clock jumps over requests still in flight: a 3-second token, a 4-second
/// `Retry-After` on the first hub create while more hub creates queue behind it. Fixed in
/// `crates/graph/src/client.rs` (`send`: slot first, then the token).
#[tokio::test]
async fn a_token_is_taken_after_waiting_out_retry_after_not_before() {
    let mut s = generated(4, 4, 18);
    s.token_lifetime_seconds = Some(3);
    let emu = kit::start(s).await;
    let vars = kit::tenant_env(&emu, false);
    emu.inner.set_faults(kit::plan(
        18,
        vec![json!({"match": {"method": "POST", "path": "/v1.0/users/hub@contoso.com/contactFolders/*/contacts"},
                     "nth": 1, "action": {"status": 429, "retryAfter": 4}})],
    ));
    let r = kit::sync_lib_real_time(&emu, &vars).await;
    assert_eq!(r.code(), 0, "{}", r.report);
    assert!(emu.stats().by_mailbox[HUB].post >= 6, "creates must queue");
    assert_eq!(
        r.logs.matches("access token refused (401)").count(),
        0,
        "a token expired while its request waited"
    );
    assert!(emu.stats().token_requests >= 2, "the token was renewed");
    assert_polite(&emu, "token after wait");
}

/// One mailbox (the hub) gets every create at once while each request is slow: the client must
/// hold itself to 4 in flight, so Outlook's concurrency limit never throttles it.
async fn parallel_pressure(batch: bool) {
    let s = generated(8, 8, 19);
    let emu = std::sync::Arc::new(harness::Emu {
        inner: graph_emulator::start(
            s,
            EmulatorOptions {
                seed: Some(7),
                latency: Duration::from_millis(3),
                ..EmulatorOptions::default()
            },
        )
        .await
        .unwrap(),
    });
    let vars = kit::tenant_env(&emu, batch);
    let r = kit::sync_lib(&emu, &vars, false).await;
    assert_eq!(r.code(), 0, "{}", r.report);
    let stats = emu.stats();
    let hub = &stats.by_mailbox[HUB];
    assert!(hub.post >= 20, "the hub should take many creates: {hub:?}");
    assert_eq!(
        hub.max_in_flight, 4,
        "the client should use its 4 slots, and no more"
    );
    assert_polite(&emu, "parallel pressure");
    assert_eq!(
        stats.throttled, 0,
        "the concurrency limit was hit: {stats:?}"
    );
}

#[tokio::test]
async fn never_more_than_4_in_flight_per_mailbox() {
    parallel_pressure(false).await;
}

#[tokio::test]
async fn never_more_than_4_in_flight_per_mailbox_batched() {
    parallel_pressure(true).await;
}

/// 400/403/404 are final: a mailbox outside the app's access policy (403) and a test user that
/// does not exist (404) are each asked once, and the other mailboxes still converge.
#[tokio::test]
async fn client_errors_are_not_retried() {
    let mut s = generated(3, 4, 20);
    let users: Vec<String> = s.tenants[0]
        .users
        .iter()
        .map(|u| u.user_principal_name.clone())
        .collect();
    let denied = users[3].clone();
    let allowed: Vec<String> = users.iter().filter(|u| **u != denied).cloned().collect();
    s.tenants[0].apps[0].mailbox_scope = Some(allowed);
    let emu = kit::start(s).await;
    let mut vars = kit::tenant_env(&emu, false);
    let mut test_users: Vec<&str> = users[1..].iter().map(String::as_str).collect();
    test_users.push("ghost@contoso.com");
    vars.push(harness::var(
        "AUTOMATION_SYNCCONTACTS_TEST_USER_LIST_BY_TENANT_JSON",
        json!({ TENANT: test_users }).to_string(),
    ));
    let r = kit::sync_lib(&emu, &vars, false).await;
    assert_eq!(r.code(), 1, "{}", r.report);
    let stats = emu.stats();
    let denied_stats = &stats.by_mailbox[&denied.to_lowercase()];
    assert_eq!(
        denied_stats.get, 1,
        "a 403 was retried: {:?}",
        stats.by_mailbox
    );
    assert_eq!(
        stats.by_mailbox["ghost@contoso.com"].get, 1,
        "a 404 was retried: {:?}",
        stats.by_mailbox
    );
    kit::assert_no_duplicates(&emu, "4xx");
}
