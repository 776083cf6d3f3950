//! Contact DELETE as Graph does it (contact-delete.md; docs/graph-facts.md §2, §7): 204 with an
//! empty body, the contact gone from its folder's listing and from its delta except as an
//! `@removed` row, `If-Match` honoured, a second DELETE 404, the same inside `$batch`, and counted
//! per mailbox.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const ADELE: &str = "/v1.0/users/adele@contoso.com";
const HUB: &str = "/v1.0/users/hub@contoso.com";

async fn first_contact(env: &Env, token: &str, path: &str) -> (String, String) {
    let (s, b) = env.send(Method::GET, path, token, None).await;
    assert_eq!(s, 200, "{b}");
    let c = &b["value"][0];
    (
        c["id"].as_str().unwrap().to_owned(),
        c["@odata.etag"].as_str().unwrap().to_owned(),
    )
}

async fn delete_with(env: &Env, token: &str, path: &str, if_match: Option<&str>) -> (u16, String) {
    let mut req = env.http.delete(env.url(path)).bearer_auth(token);
    if let Some(tag) = if_match {
        req = req.header("if-match", tag);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

async fn folder_id(env: &Env, token: &str, name: &str) -> String {
    let (_, b) = env
        .send(
            Method::GET,
            &format!(
                "{HUB}/contactFolders?$filter=displayName eq '{}'",
                name.replace('\'', "''")
            ),
            token,
            None,
        )
        .await;
    b["value"][0]["id"].as_str().unwrap().to_owned()
}

fn ids(rows: &[Value]) -> Vec<String> {
    rows.iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn delete_is_204_empty_then_gone_from_list_get_and_a_second_delete_is_404() {
    let env = start().await;
    let token = env.token().await;
    let (id, etag) = first_contact(&env, &token, &format!("{ADELE}/contacts?$top=1")).await;
    let (s, body) = delete_with(&env, &token, &format!("{ADELE}/contacts/{id}"), Some(&etag)).await;
    assert_eq!(s, 204);
    assert_eq!(body, "", "204 has an empty body");

    let (s, b) = env
        .send(
            Method::GET,
            &format!("{ADELE}/contacts?$top=100"),
            &token,
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(b["value"].as_array().unwrap().len(), 24);
    assert!(!ids(b["value"].as_array().unwrap()).contains(&id));
    let (s, b) = env
        .send(Method::GET, &format!("{ADELE}/contacts/{id}"), &token, None)
        .await;
    assert_graph_error(s, &b, 404, "ErrorItemNotFound");

    let (s, body) = delete_with(&env, &token, &format!("{ADELE}/contacts/{id}"), None).await;
    let b: Value = serde_json::from_str(&body).unwrap();
    assert_graph_error(s, &b, 404, "ErrorItemNotFound");
    // Not in any exported state either (Deleted Items is not part of the scenario format).
    let state = env.emu.state();
    let adele = state.tenants[0]
        .users
        .iter()
        .find(|u| u.user_principal_name == "adele@contoso.com")
        .unwrap();
    assert!(adele.contacts.iter().all(|c| c["id"] != id.as_str()));
}

#[tokio::test]
async fn delete_with_a_stale_etag_is_412_and_keeps_the_contact() {
    let env = start().await;
    let token = env.token().await;
    let (id, etag) = first_contact(&env, &token, &format!("{ADELE}/contacts?$top=1")).await;
    let r = env
        .http
        .post(env.url(&format!(
            "/_emulator/users/adele@contoso.com/contacts/{id}/touch"
        )))
        .json(&json!({"jobTitle": "Edited in Outlook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, body) = delete_with(&env, &token, &format!("{ADELE}/contacts/{id}"), Some(&etag)).await;
    let b: Value = serde_json::from_str(&body).unwrap();
    assert_graph_error(s, &b, 412, "ErrorIrresolvableConflict");
    let (s, got) = env
        .send(Method::GET, &format!("{ADELE}/contacts/{id}"), &token, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(got["jobTitle"], "Edited in Outlook");
    // `*` matches whatever the current version is.
    let (s, _) = delete_with(&env, &token, &format!("{ADELE}/contacts/{id}"), Some("*")).await;
    assert_eq!(s, 204);
}

#[tokio::test]
async fn folder_form_delete_only_finds_contacts_of_that_folder() {
    let env = start().await;
    let token = env.token().await;
    let bobs = folder_id(&env, &token, "Bob's Folder").await;
    let all = folder_id(&env, &token, "All Contacts").await;
    let (id, _) = first_contact(
        &env,
        &token,
        &format!("{HUB}/contactFolders/{bobs}/contacts?$top=1"),
    )
    .await;
    // Through another folder's URL the contact is not found [UNCONF: strict reading].
    let (s, body) = delete_with(
        &env,
        &token,
        &format!("{HUB}/contactFolders/{all}/contacts/{id}"),
        None,
    )
    .await;
    let b: Value = serde_json::from_str(&body).unwrap();
    assert_graph_error(s, &b, 404, "ErrorItemNotFound");
    let (s, _) = delete_with(
        &env,
        &token,
        &format!("{HUB}/contactFolders/{bobs}/contacts/{id}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (_, b) = env
        .send(
            Method::GET,
            &format!("{HUB}/contactFolders/{bobs}/contacts?$top=100"),
            &token,
            None,
        )
        .await;
    assert_eq!(b["value"].as_array().unwrap().len(), 11);
}

#[tokio::test]
async fn deletes_show_in_the_folder_delta_only_as_removed_rows() {
    let env = start().await;
    let token = env.token().await;
    let bobs = folder_id(&env, &token, "Bob's Folder").await;
    let first = env.url(&format!("{HUB}/contactFolders/{bobs}/contacts/delta"));
    let (rows, delta, _) = follow_round(&env, &token, &first, None).await;
    assert_eq!(rows.len(), 12);
    let gone = ids(&rows)[3].clone();
    let (s, _) = delete_with(
        &env,
        &token,
        &format!("{HUB}/contactFolders/{bobs}/contacts/{gone}"),
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (rows, delta2, _) = follow_round(&env, &token, &delta, None).await;
    assert_eq!(
        rows,
        vec![
            json!({"@odata.type": "#microsoft.graph.contact", "id": gone, "@removed": {"reason": "deleted"}})
        ]
    );
    // A fresh round (what a client does after losing its link) does not list it at all.
    let (rows, _, _) = follow_round(&env, &token, &first, None).await;
    assert_eq!(rows.len(), 11);
    assert!(!ids(&rows).contains(&gone));
    // Nothing more to report afterwards.
    let (rows, _, _) = follow_round(&env, &token, &delta2, None).await;
    assert!(rows.is_empty(), "{rows:?}");
}

#[tokio::test]
async fn delete_inside_batch_with_if_match_and_counted_per_mailbox() {
    let env = start().await;
    let token = env.token().await;
    let (_, b) = env
        .send(
            Method::GET,
            &format!("{ADELE}/contacts?$top=3"),
            &token,
            None,
        )
        .await;
    let v = b["value"].as_array().unwrap();
    let (a, b_id, c) = (
        v[0]["id"].as_str().unwrap(),
        v[1]["id"].as_str().unwrap(),
        v[2]["id"].as_str().unwrap(),
    );
    let c_etag = v[2]["@odata.etag"].as_str().unwrap();
    // c is edited by its owner, so the etag the client holds is stale.
    env.http
        .post(env.url(&format!(
            "/_emulator/users/adele@contoso.com/contacts/{c}/touch"
        )))
        .send()
        .await
        .unwrap();
    env.emu.reset_stats();
    let (s, body) = batch(
        &env,
        &token,
        json!({"requests": [
            {"id": "1", "method": "DELETE", "url": format!("/users/adele@contoso.com/contacts/{a}")},
            {"id": "2", "method": "DELETE", "url": format!("/users/adele@contoso.com/contacts/{b_id}"),
             "headers": {"If-Match": v[1]["@odata.etag"]}},
            {"id": "3", "method": "DELETE", "url": format!("/users/adele@contoso.com/contacts/{c}"),
             "headers": {"If-Match": c_etag}},
            {"id": "4", "method": "DELETE", "url": "/users/adele@contoso.com/contacts/AAMkAGhvbmVzdGx5LW5vdC10aGVyZQ=="}
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let r = by_id(&body);
    assert_eq!(r["1"]["status"], 204);
    assert!(
        r["1"].get("body").is_none(),
        "a 204 item carries no body: {body}"
    );
    assert_eq!(r["2"]["status"], 204);
    assert_eq!(r["3"]["status"], 412);
    assert_eq!(r["3"]["body"]["error"]["code"], "ErrorIrresolvableConflict");
    assert_eq!(r["4"]["status"], 404);
    assert_eq!(r["4"]["body"]["error"]["code"], "ErrorItemNotFound");
    let stats = env.emu.stats();
    assert_eq!(stats.by_mailbox["adele@contoso.com"].delete, 4, "{stats:?}");
    assert_eq!((stats.batches, stats.batch_items), (1, 4));
    let (_, b) = env
        .send(
            Method::GET,
            &format!("{ADELE}/contacts?$top=100"),
            &token,
            None,
        )
        .await;
    let left = ids(b["value"].as_array().unwrap());
    assert_eq!(left.len(), 23);
    assert!(left.contains(&c.to_owned()));
}

#[tokio::test]
async fn read_only_app_cannot_delete() {
    let env = start().await;
    let token = env.token_for("app-readonly").await;
    let full = env.token().await;
    let (id, _) = first_contact(&env, &full, &format!("{ADELE}/contacts?$top=1")).await;
    let (s, body) = delete_with(&env, &token, &format!("{ADELE}/contacts/{id}"), None).await;
    let b: Value = serde_json::from_str(&body).unwrap();
    assert_graph_error(s, &b, 403, "ErrorAccessDenied");
}
