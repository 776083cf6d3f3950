//! Contact delta completeness (docs/graph-facts.md §2, §3; issue 14): the default-folder form, page
//! sizes, both 410 forms, replays, moves out of a folder, and `$expand` refused as observed.

use graph_emulator::{EmulatorOptions, Scenario, Variants};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const ADELE: &str = "/v1.0/users/adele@contoso.com";

async fn start_variants(scenario: Scenario, variants: &[&str]) -> Env {
    let mut v = Variants::default();
    for name in variants {
        v.enable(name).unwrap();
    }
    let emu = graph_emulator::start(
        scenario,
        EmulatorOptions {
            variants: v,
            ..EmulatorOptions::default()
        },
    )
    .await
    .expect("emulator starts");
    Env {
        emu,
        http: reqwest::Client::new(),
    }
}

fn ids(rows: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

async fn expire(env: &Env, body: Option<Value>) -> u16 {
    let mut req = env.http.post(env.url("/_emulator/delta/expire"));
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn default_folder_delta_needs_no_folder_id_and_matches_the_folder_form() {
    let env = start().await;
    let token = env.token().await;
    let (rows, _, _) = follow_round(
        &env,
        &token,
        &env.url(&format!("{ADELE}/contacts/delta")),
        None,
    )
    .await;
    assert_eq!(rows.len(), 25);
    // The default folder's id, as a client learns it: any contact's parentFolderId.
    let (_, b) = env
        .send(
            Method::GET,
            &format!("{ADELE}/contacts?$top=1&$select=parentFolderId"),
            &token,
            None,
        )
        .await;
    let fid = b["value"][0]["parentFolderId"].as_str().unwrap();
    let (_, folder) = env
        .send(
            Method::GET,
            &format!("{ADELE}/contactFolders/{fid}"),
            &token,
            None,
        )
        .await;
    assert_eq!(folder["displayName"], "Contacts");
    let (by_id, _, _) = follow_round(
        &env,
        &token,
        &env.url(&format!("{ADELE}/contactFolders/{fid}/contacts/delta")),
        None,
    )
    .await;
    assert_eq!(ids(&rows), ids(&by_id));
    // The function's full name works too (what the SDKs send).
    let (full, _, _) = follow_round(
        &env,
        &token,
        &env.url(&format!("{ADELE}/contacts/microsoft.graph.delta()")),
        None,
    )
    .await;
    assert_eq!(full.len(), 25);
}

#[tokio::test]
async fn variant_no_default_folder_delta_refuses_the_undocumented_form() {
    let env = start_variants(fixture(), &["no-default-folder-delta"]).await;
    let token = env.token().await;
    let (s, b) = env
        .send(
            Method::GET,
            &format!("{ADELE}/contacts/delta"),
            &token,
            None,
        )
        .await;
    assert_graph_error(s, &b, 400, "ErrorInvalidIdMalformed");
    let (_, b) = env
        .send(
            Method::GET,
            &format!("{ADELE}/contacts?$top=1&$select=parentFolderId"),
            &token,
            None,
        )
        .await;
    let fid = b["value"][0]["parentFolderId"].as_str().unwrap();
    let (rows, _, _) = follow_round(
        &env,
        &token,
        &env.url(&format!("{ADELE}/contactFolders/{fid}/contacts/delta")),
        None,
    )
    .await;
    assert_eq!(rows.len(), 25);
}

fn big_mailbox(n: usize) -> Scenario {
    let mut s = fixture_json();
    let contacts: Vec<Value> = (0..n)
        .map(|i| json!({"givenName": format!("P{i}"), "surname": "Many"}))
        .collect();
    s["tenants"][0]["users"][1]["contacts"] = Value::Array(contacts);
    Scenario::from_json(&s.to_string()).unwrap()
}

#[tokio::test]
async fn page_size_defaults_to_ten_and_maxpagesize_is_capped_at_200() {
    let env = start_with(big_mailbox(250)).await;
    let token = env.token().await;
    let first = env.url(&format!("{ADELE}/contacts/delta?$select=id"));
    let resp = env
        .http
        .get(&first)
        .bearer_auth(&token)
        .header("prefer", "odata.maxpagesize=1000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["preference-applied"],
        "odata.maxpagesize=200",
        "~200 observed whatever a larger maxpagesize asks (docs/graph-facts.md §3)"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["value"].as_array().unwrap().len(), 200);
    let (rows, _, pages) = follow_round(&env, &token, &first, Some("odata.maxpagesize=1000")).await;
    assert_eq!((rows.len(), pages), (250, 2));
    let (rows, _, pages) = follow_round(&env, &token, &first, None).await;
    assert_eq!((rows.len(), pages), (250, 25), "10 a page without Prefer");
    let (rows, _, pages) = follow_round(&env, &token, &first, Some("odata.maxpagesize=100")).await;
    assert_eq!((rows.len(), pages), (250, 3));
}

#[tokio::test]
async fn expired_tokens_in_the_reset_form_get_410_with_a_location_that_restarts_the_round() {
    let env = start().await;
    let token = env.token().await;
    let base = env.url(&format!("{ADELE}/contacts/delta"));
    let first = format!("{base}?$select=displayName");
    let (_, delta, _) = follow_round(&env, &token, &first, None).await;
    // A nextLink in the middle of a round, too.
    let resp = env
        .http
        .get(&first)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let next = resp.json::<Value>().await.unwrap()["@odata.nextLink"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(expire(&env, Some(json!({"form": "reset"}))).await, 204);
    for link in [&delta, &next] {
        let resp = env.http.get(link).bearer_auth(&token).send().await.unwrap();
        assert_eq!(resp.status(), 410);
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(location, format!("{base}?$select=displayName&$deltatoken="));
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "resyncRequired");
        // The Location is a fresh initial round with the same options.
        let (rows, _, _) = follow_round(&env, &token, &location, None).await;
        assert_eq!(rows.len(), 25);
        assert_eq!(rows[0].as_object().unwrap().len(), 4, "{:?}", rows[0]);
    }
    // The default form again: 410 SyncStateNotFound without a Location.
    let (_, delta, _) = follow_round(&env, &token, &first, None).await;
    assert_eq!(
        expire(&env, Some(json!({"form": "syncStateNotFound"}))).await,
        204
    );
    let resp = env
        .http
        .get(&delta)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 410);
    assert!(resp.headers().get("location").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SyncStateNotFound");
    assert_eq!(expire(&env, Some(json!({"form": "later"}))).await, 400);
    assert_eq!(expire(&env, Some(json!({"from": "reset"}))).await, 400);
}

#[tokio::test]
async fn expiring_one_mailbox_leaves_the_other_mailboxes_links_working() {
    let env = start().await;
    let token = env.token().await;
    let hub = "/v1.0/users/hub@contoso.com";
    // The hub's folder and Adele's default folder, each with a finished round.
    let (_, folders) = env
        .send(Method::GET, &format!("{hub}/contactFolders"), &token, None)
        .await;
    let fid = folders["value"][0]["id"].as_str().unwrap().to_owned();
    let hub_first = env.url(&format!("{hub}/contactFolders/{fid}/contacts/delta"));
    let (_, hub_delta, _) = follow_round(&env, &token, &hub_first, None).await;
    let adele_first = env.url(&format!("{ADELE}/contacts/delta"));
    let (_, adele_delta, _) = follow_round(&env, &token, &adele_first, None).await;

    let resp = env
        .http
        .post(env.url("/_emulator/delta/expire"))
        .json(&json!({"mailbox": "HUB@contoso.com", "form": "reset"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.json::<Value>().await.unwrap(), json!({"expired": 1}));

    let resp = env
        .http
        .get(&hub_delta)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 410);
    assert!(resp.headers().get("location").is_some());
    // Adele's link still works and reports nothing new.
    let (rows, _, pages) = follow_round(&env, &token, &adele_delta, None).await;
    assert_eq!((rows.len(), pages), (0, 1));

    // By object id too; the default form answers 410 SyncStateNotFound.
    let (_, adele_delta, _) = follow_round(&env, &token, &adele_first, None).await;
    let resp = env
        .http
        .post(env.url("/_emulator/delta/expire"))
        .json(&json!({"mailbox": "11111111-1111-4111-8111-111111111111"}))
        .send()
        .await
        .unwrap();
    // Every token of Adele's: 2 skip + 1 delta per 25-contact round at 10 a page (two rounds)
    // and the empty round that followed the first one's deltaLink.
    assert_eq!(resp.json::<Value>().await.unwrap()["expired"], 7);
    let resp = env
        .http
        .get(&adele_delta)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 410);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SyncStateNotFound");

    for (mailbox, status) in [
        ("nobody@contoso.com", 404),
        ("bob@contoso.com", 404),
        ("", 404),
    ] {
        let resp = env
            .http
            .post(env.url("/_emulator/delta/expire"))
            .json(&json!({ "mailbox": mailbox }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{mailbox}");
    }
}

#[tokio::test]
async fn library_call_expires_in_the_reset_form_too() {
    let env = start().await;
    let token = env.token().await;
    let (_, delta, _) = follow_round(
        &env,
        &token,
        &env.url(&format!("{ADELE}/contacts/delta")),
        None,
    )
    .await;
    env.emu
        .expire_delta_tokens_as(graph_emulator::ExpiredForm::Reset);
    let resp = env
        .http
        .get(&delta)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 410);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("/contacts/delta?$deltatoken=")
    );
}

#[tokio::test]
async fn variant_delta_replays_repeats_the_previous_rounds_rows() {
    let env = start_variants(fixture(), &["delta-replays"]).await;
    let token = env.token().await;
    let (rows, delta, _) = follow_round(
        &env,
        &token,
        &env.url(&format!("{ADELE}/contacts/delta")),
        None,
    )
    .await;
    let (a, b) = (
        rows[0]["id"].as_str().unwrap().to_owned(),
        rows[1]["id"].as_str().unwrap().to_owned(),
    );
    env.send(
        Method::PATCH,
        &format!("{ADELE}/contacts/{a}"),
        &token,
        Some(json!({"jobTitle": "Replayed"})),
    )
    .await;
    env.send(
        Method::DELETE,
        &format!("{ADELE}/contacts/{b}"),
        &token,
        None,
    )
    .await;
    let (round2, delta2, _) = follow_round(&env, &token, &delta, None).await;
    // The initial round's 25 rows, then the two changes.
    assert_eq!(round2.len(), 27, "{round2:#?}");
    assert_eq!(round2[25]["jobTitle"], "Replayed");
    assert_eq!(round2[26]["@removed"]["reason"], "deleted");
    // Nothing changed since: the previous round's rows again, removal included.
    let (round3, _, _) = follow_round(&env, &token, &delta2, None).await;
    assert_eq!(round3, round2);
}

#[tokio::test]
async fn a_contact_moved_out_of_a_folder_is_removed_there_and_new_in_the_other() {
    let env = start().await;
    let token = env.token().await;
    let hub = "/v1.0/users/hub@contoso.com";
    let folder = |name: &'static str| {
        let env = &env;
        let token = &token;
        async move {
            let (_, b) = env
                .send(
                    Method::GET,
                    &format!("{hub}/contactFolders?$filter=displayName eq '{name}'"),
                    token,
                    None,
                )
                .await;
            b["value"][0]["id"].as_str().unwrap().to_owned()
        }
    };
    let (from, to) = (folder("Bob''s Folder").await, folder("All Contacts").await);
    let from_delta = env.url(&format!("{hub}/contactFolders/{from}/contacts/delta"));
    let to_delta = env.url(&format!("{hub}/contactFolders/{to}/contacts/delta"));
    let (rows, from_link, _) = follow_round(&env, &token, &from_delta, None).await;
    let (empty, to_link, _) = follow_round(&env, &token, &to_delta, None).await;
    assert!(empty.is_empty());
    let moved = rows[0]["id"].as_str().unwrap().to_owned();
    let r = env
        .http
        .post(env.url(&format!(
            "/_emulator/users/hub@contoso.com/contacts/{moved}/move"
        )))
        .json(&json!({"destinationId": to}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["parentFolderId"], to.as_str());
    assert_eq!(c["id"], moved.as_str(), "ids are immutable here");
    let (rows, _, _) = follow_round(&env, &token, &from_link, None).await;
    assert_eq!(
        rows,
        vec![
            json!({"@odata.type": "#microsoft.graph.contact", "id": moved, "@removed": {"reason": "deleted"}})
        ]
    );
    let (rows, _, _) = follow_round(&env, &token, &to_link, None).await;
    assert_eq!(ids(&rows), vec![moved.clone()]);
    assert_eq!(rows[0]["parentFolderId"], to.as_str());
    let r = env
        .http
        .post(env.url(&format!(
            "/_emulator/users/hub@contoso.com/contacts/{moved}/move"
        )))
        .json(&json!({"destinationId": "AAMkAGhvbmVzdGx5LW5vdC10aGVyZQ=="}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn expand_on_delta_is_refused_as_graph_was_observed_to() {
    let env = start().await;
    let token = env.token().await;
    let (s, b) = env
        .send(
            Method::GET,
            &format!(
                "{ADELE}/contacts/delta?$expand=singleValueExtendedProperties($filter=id eq 'Integer 0x0036')"
            ),
            &token,
            None,
        )
        .await;
    assert_graph_error(s, &b, 400, "BadRequest");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Parsing OData Select and Expand failed"),
        "{b}"
    );
}

#[tokio::test]
async fn variant_delta_expand_carries_the_expand_in_the_tokens() {
    let env = start_variants(fixture(), &["delta-expand"]).await;
    let token = env.token().await;
    let first = env.url(&format!(
        "{ADELE}/contacts/delta?$select=displayName&$expand=singleValueExtendedProperties($filter=id eq 'Integer 0x0036')"
    ));
    let (rows, delta, _) = follow_round(&env, &token, &first, None).await;
    assert_eq!(rows.len(), 25);
    assert!(
        rows.iter()
            .all(|r| r.get("singleValueExtendedProperties").is_none())
    );
    let id = rows[4]["id"].as_str().unwrap().to_owned();
    let (s, _) = env
        .send(
            Method::PATCH,
            &format!("{ADELE}/contacts/{id}"),
            &token,
            Some(
                json!({"singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": "2"}]}),
            ),
        )
        .await;
    assert_eq!(s, 200);
    let (rows, _, _) = follow_round(&env, &token, &delta, None).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["singleValueExtendedProperties"],
        json!([{"id": "Integer 0x36", "value": "2"}])
    );
    assert!(rows[0].get("jobTitle").is_none(), "$select carried as well");
}
