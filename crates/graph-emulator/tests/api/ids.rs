//! Item ids and change keys with Exchange's shape (per-mailbox and per-folder prefix, a short
//! per-item tail, a change number that grows with every write), their survival through an
//! export and replay, and `--variant change-key-bump(-modified)`: Exchange bumping a change key
//! by itself shortly after a write (docs/graph-facts.md §1).

use std::time::Duration;

use graph_emulator::{EmulatorOptions, Scenario, Variants};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const ADELE: &str = "/v1.0/users/adele@contoso.com";

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

async fn list(env: &Env, token: &str, path: &str) -> Vec<Value> {
    let (s, b) = env.send(Method::GET, path, token, None).await;
    assert_eq!(s, 200, "{b}");
    b["value"].as_array().unwrap().clone()
}

#[tokio::test]
async fn ids_share_their_folders_prefix_and_change_keys_look_like_exchanges() {
    let env = start().await;
    let token = env.token().await;
    let rows = list(&env, &token, &format!("{ADELE}/contacts?$top=100")).await;
    assert_eq!(rows.len(), 25);
    let first = rows[0]["id"].as_str().unwrap();
    let folder = rows[0]["parentFolderId"].as_str().unwrap();
    assert_eq!(folder.len(), 120, "{folder}");
    assert!(folder.ends_with("AAAAAAEOAAA="), "{folder}");
    let mut seen = std::collections::HashSet::new();
    for r in &rows {
        let id = r["id"].as_str().unwrap();
        assert!(seen.insert(id.to_owned()), "duplicate {id}");
        assert_eq!(id.len(), 152, "{id}");
        assert!(id.starts_with("AAMkA") && id.ends_with("AAA="), "{id}");
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-_=".contains(&c))
        );
        assert!(common_prefix(id, first) >= 140, "{id} / {first}");
        // Both name the mailbox (its GUID fills the first 53 characters).
        assert!(common_prefix(id, folder) >= 52, "{id} / {folder}");
        let ck = r["changeKey"].as_str().unwrap();
        assert_eq!(ck.len(), 40, "{ck}");
        assert!(ck.starts_with("EQAAABYAAA"), "{ck}");
        assert_eq!(r["@odata.etag"], format!("W/\"{ck}\""));
    }
    // Another mailbox: another prefix.
    let carol = list(&env, &token, "/v1.0/users/carol@contoso.com/contacts").await;
    let other = carol[0]["id"].as_str().unwrap();
    assert!(common_prefix(other, first) < 40, "{other} / {first}");

    // A created contact joins the folder's prefix; every write moves the change key forward.
    let (s, created) = env
        .send(
            Method::POST,
            &format!("{ADELE}/contacts"),
            &token,
            Some(json!({"displayName": "New"})),
        )
        .await;
    assert_eq!(s, 201);
    let id = created["id"].as_str().unwrap();
    assert!(common_prefix(id, first) >= 140 && !seen.contains(id));
    let mut keys = vec![created["changeKey"].as_str().unwrap().to_owned()];
    for title in ["A", "B"] {
        let (s, b) = env
            .send(
                Method::PATCH,
                &format!("{ADELE}/contacts/{id}"),
                &token,
                Some(json!({"jobTitle": title})),
            )
            .await;
        assert_eq!(s, 200);
        keys.push(b["changeKey"].as_str().unwrap().to_owned());
    }
    // Same mailbox part, a different (growing) change number at the end.
    assert!(keys.windows(2).all(|w| w[0] != w[1]));
    assert!(
        keys.iter().all(|k| common_prefix(k, &keys[0]) >= 30),
        "{keys:?}"
    );
}

#[tokio::test]
async fn an_exported_state_replays_with_its_ids_and_new_ids_never_repeat_them() {
    let env = start().await;
    let token = env.token().await;
    let folder_id = {
        let (_, b) = env
            .get("/v1.0/users/hub@contoso.com/contactFolders?$filter=displayName eq 'All Contacts'")
            .await;
        b["value"][0]["id"].as_str().unwrap().to_owned()
    };
    for i in 0..3 {
        let (s, _) = env
            .send(
                Method::POST,
                &format!("/v1.0/users/hub@contoso.com/contactFolders/{folder_id}/contacts"),
                &token,
                Some(json!({"displayName": format!("Hub {i}")})),
            )
            .await;
        assert_eq!(s, 201);
    }
    let before = list(&env, &token, &format!("{ADELE}/contacts?$top=100")).await;
    let hub_before = list(
        &env,
        &token,
        &format!("/v1.0/users/hub@contoso.com/contactFolders/{folder_id}/contacts"),
    )
    .await;
    let state = env.emu.state();

    // Replayed with another seed: same ids, same folders, same change keys.
    let replay = Scenario::from_json(&serde_json::to_string(&state).unwrap()).unwrap();
    let env2 = Env {
        emu: graph_emulator::start(
            replay,
            EmulatorOptions {
                seed: Some(999),
                ..EmulatorOptions::default()
            },
        )
        .await
        .unwrap(),
        http: reqwest::Client::new(),
    };
    let token2 = env2.token().await;
    let after = list(&env2, &token2, &format!("{ADELE}/contacts?$top=100")).await;
    let pick =
        |rows: &[Value], k: &str| -> Vec<Value> { rows.iter().map(|r| r[k].clone()).collect() };
    for k in ["id", "changeKey", "parentFolderId"] {
        assert_eq!(pick(&before, k), pick(&after, k), "{k}");
    }
    let hub_after = list(
        &env2,
        &token2,
        &format!("/v1.0/users/hub@contoso.com/contactFolders/{folder_id}/contacts"),
    )
    .await;
    assert_eq!(pick(&hub_before, "id"), pick(&hub_after, "id"));

    // New writes in the replay: new ids and change keys, never one the export already had.
    let old_ids: Vec<Value> = pick(&before, "id");
    let old_keys: Vec<Value> = pick(&before, "changeKey");
    for i in 0..20 {
        let (s, c) = env2
            .send(
                Method::POST,
                &format!("{ADELE}/contacts"),
                &token2,
                Some(json!({"displayName": format!("Replay {i}")})),
            )
            .await;
        assert_eq!(s, 201);
        assert!(!old_ids.contains(&c["id"]), "{}", c["id"]);
        assert!(!old_keys.contains(&c["changeKey"]));
    }
    let target = before[0]["id"].as_str().unwrap();
    let (s, patched) = env2
        .send(
            Method::PATCH,
            &format!("{ADELE}/contacts/{target}"),
            &token2,
            Some(json!({"jobTitle": "x"})),
        )
        .await;
    assert_eq!(s, 200);
    assert!(!old_keys.contains(&patched["changeKey"]));
}

async fn start_bump(variants: &[&str], delay: Duration) -> Env {
    let mut v = Variants::default();
    for name in variants {
        v.enable(name).unwrap();
    }
    v.change_key_bump_delay = delay;
    let emu = graph_emulator::start(
        fixture(),
        EmulatorOptions {
            variants: v,
            ..EmulatorOptions::default()
        },
    )
    .await
    .unwrap();
    Env {
        emu,
        http: reqwest::Client::new(),
    }
}

async fn get_contact(env: &Env, token: &str, id: &str) -> Value {
    let (s, b) = env
        .send(Method::GET, &format!("{ADELE}/contacts/{id}"), token, None)
        .await;
    assert_eq!(s, 200, "{b}");
    b
}

async fn patch_if_match(env: &Env, token: &str, id: &str, etag: &str, body: Value) -> (u16, Value) {
    let resp = env
        .http
        .patch(env.url(&format!("{ADELE}/contacts/{id}")))
        .bearer_auth(token)
        .header("if-match", etag)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

/// Everything but the version stamps.
fn fields(c: &Value) -> Value {
    let mut c = c.clone();
    for k in [
        "@odata.etag",
        "@odata.context",
        "changeKey",
        "lastModifiedDateTime",
    ] {
        c.as_object_mut().unwrap().remove(k);
    }
    c
}

#[tokio::test]
async fn by_default_the_change_key_a_write_returns_stays_current() {
    let env = start().await;
    let token = env.token().await;
    let (_, created) = env
        .send(
            Method::POST,
            &format!("{ADELE}/contacts"),
            &token,
            Some(json!({"displayName": "Stable"})),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    env.emu.advance_clock(Duration::from_secs(3600));
    let token = env.token().await;
    let got = get_contact(&env, &token, id).await;
    assert_eq!(got["changeKey"], created["changeKey"]);
    let etag = created["@odata.etag"].as_str().unwrap();
    let (s, _) = patch_if_match(&env, &token, id, etag, json!({"jobTitle": "x"})).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn variant_change_key_bump_makes_the_written_change_key_stale_with_the_fields_unchanged() {
    let env = start_bump(&["change-key-bump"], Duration::ZERO).await;
    let token = env.token().await;
    let (s, created) = env
        .send(
            Method::POST,
            &format!("{ADELE}/contacts"),
            &token,
            Some(json!({"displayName": "Bumped", "jobTitle": "CFO"})),
        )
        .await;
    assert_eq!(s, 201);
    let id = created["id"].as_str().unwrap();
    let got = get_contact(&env, &token, id).await;
    assert_ne!(
        got["changeKey"], created["changeKey"],
        "bumped before the next read"
    );
    assert_ne!(got["@odata.etag"], created["@odata.etag"]);
    assert_eq!(fields(&got), fields(&created));
    assert_eq!(got["lastModifiedDateTime"], created["lastModifiedDateTime"]);
    // Once: reading again changes nothing.
    assert_eq!(
        get_contact(&env, &token, id).await["changeKey"],
        got["changeKey"]
    );

    // The change key the create returned is stale for If-Match; the one read back works, and
    // that update is bumped in turn.
    let stale = created["@odata.etag"].as_str().unwrap();
    let (s, b) = patch_if_match(&env, &token, id, stale, json!({"jobTitle": "x"})).await;
    assert_graph_error(s, &b, 412, "ErrorIrresolvableConflict");
    let fresh = got["@odata.etag"].as_str().unwrap();
    let (s, patched) = patch_if_match(&env, &token, id, fresh, json!({"jobTitle": "CEO"})).await;
    assert_eq!(s, 200);
    let listed = list(&env, &token, &format!("{ADELE}/contacts?$top=100")).await;
    let row = listed.iter().find(|r| r["id"] == id).unwrap();
    assert_ne!(row["changeKey"], patched["changeKey"]);
    assert_eq!(row["jobTitle"], "CEO");
    // The state snapshot shows the bumped version too.
    let state = serde_json::to_value(env.emu.state()).unwrap();
    let stored = state["tenants"][0]["users"][1]["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
        .clone();
    assert_eq!(stored["changeKey"], row["changeKey"]);
}

#[tokio::test]
async fn variant_change_key_bump_with_a_delay_and_the_modified_time_option() {
    let env = start_bump(&["change-key-bump-modified"], Duration::from_secs(5)).await;
    let token = env.token().await;
    let (_, created) = env
        .send(
            Method::POST,
            &format!("{ADELE}/contacts"),
            &token,
            Some(json!({"displayName": "Later"})),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let early = get_contact(&env, &token, id).await;
    assert_eq!(early["changeKey"], created["changeKey"], "not yet");
    env.emu.advance_clock(Duration::from_secs(5));
    let late = get_contact(&env, &token, id).await;
    assert_ne!(late["changeKey"], created["changeKey"]);
    assert_eq!(fields(&late), fields(&created));
    let t = |v: &Value| {
        v["lastModifiedDateTime"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    assert!(t(&late) >= t(&created) + jiff::SignedDuration::from_secs(5));
}
