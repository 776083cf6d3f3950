//! Contacts and contact folders under `/users/{user}/` (docs/graph-facts.md §1–§3, §7, §9).

use crate::common::*;
use reqwest::Method;
use serde_json::{Value, json};

const ADELE: &str = "/v1.0/users/adele@contoso.com";

#[tokio::test]
async fn contacts_page_by_ten_with_skip_links_across_boundaries() {
    let env = start().await;
    let token = env.token().await;
    let mut url = env.url(&format!("{ADELE}/contacts"));
    let mut sizes = Vec::new();
    let mut ids = std::collections::HashSet::new();
    loop {
        let (status, body) = env.send(Method::GET, &url, &token, None).await;
        assert_eq!(status, 200, "{body}");
        let page = body["value"].as_array().unwrap();
        sizes.push(page.len());
        for c in page {
            assert!(
                ids.insert(c["id"].as_str().unwrap().to_string()),
                "duplicate across pages"
            );
        }
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&env.emu.url()));
                assert!(next.contains("$skip="), "{next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(sizes, [10, 10, 5]);
    assert_eq!(ids.len(), 25);
}

#[tokio::test]
async fn contacts_top_and_skip_are_honoured_and_capped() {
    let env = start().await;
    let (status, body) = env.get(&format!("{ADELE}/contacts?$top=7&$skip=21")).await;
    assert_eq!(status, 200);
    assert_eq!(body["value"].as_array().unwrap().len(), 4);
    assert_eq!(body["value"][0]["givenName"], "a21");
    assert!(body.get("@odata.nextLink").is_none());
    let (status, body) = env.get(&format!("{ADELE}/contacts?$top=1000")).await;
    assert_eq!(status, 200);
    assert_eq!(body["value"].as_array().unwrap().len(), 25);
    let (status, body) = env.get(&format!("{ADELE}/contacts?$top=1001")).await;
    assert_graph_error(status, &body, 400, "ErrorInvalidUrlQuery");
}

#[tokio::test]
async fn select_really_trims_but_keeps_id_and_etag() {
    let env = start().await;
    let (status, body) = env
        .get(&format!(
            "{ADELE}/contacts?$select=displayName,emailAddresses&$top=2"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/contacts(displayName,emailAddresses)")
    );
    let c = body["value"][0].as_object().unwrap();
    let mut keys: Vec<&str> = c.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["@odata.etag", "displayName", "emailAddresses", "id"]);
    let (status, body) = env.get(&format!("{ADELE}/contacts?$select=phones")).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn full_contact_has_v1_normalisation_and_server_fields() {
    let env = start().await;
    let (_, body) = env.get(&format!("{ADELE}/contacts?$top=1")).await;
    let c = &body["value"][0];
    assert_eq!(c["homePhones"], json!([]));
    assert_eq!(c["categories"], json!([]));
    assert_eq!(c["middleName"], Value::Null);
    assert_eq!(c["personalNotes"], Value::Null);
    assert_eq!(c["homeAddress"], json!({}));
    let ck = c["changeKey"].as_str().unwrap();
    assert_eq!(c["@odata.etag"], format!("W/\"{ck}\""));
    assert!(c["createdDateTime"].as_str().unwrap().ends_with('Z'));
    assert!(c["parentFolderId"].is_string());
}

#[tokio::test]
async fn create_get_patch_delete_round_trip() {
    let env = start().await;
    let token = env.token().await;
    let (status, created) = env
        .send(
            Method::POST,
            &format!("{ADELE}/contacts"),
            &token,
            Some(json!({"givenName": "Zoë", "surname": "Øvergård",
                        "emailAddresses": [{"address": "zoe@fabrikam.com"}],
                        "businessPhones": ["+47 22 00 00 00"]})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    // displayName is derived from the name parts when not sent; a missing name echoes the address.
    assert_eq!(created["displayName"], "Zoë Øvergård");
    assert_eq!(created["emailAddresses"][0]["name"], "zoe@fabrikam.com");
    assert_eq!(created["createdDateTime"], created["lastModifiedDateTime"]);
    assert!(
        created["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("/contacts/$entity")
    );

    let (status, got) = env
        .send(Method::GET, &format!("{ADELE}/contacts/{id}"), &token, None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["surname"], "Øvergård");

    let etag = created["@odata.etag"].as_str().unwrap().to_string();
    let resp = env
        .http
        .patch(env.url(&format!("{ADELE}/contacts/{id}")))
        .bearer_auth(&token)
        .header("if-match", &etag)
        .json(&json!({"jobTitle": "CFO", "displayName": "Zoë Ø."}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let patched: Value = resp.json().await.unwrap();
    assert_eq!(patched["jobTitle"], "CFO");
    assert_eq!(patched["displayName"], "Zoë Ø.");
    assert_eq!(
        patched["businessPhones"],
        json!(["+47 22 00 00 00"]),
        "untouched fields stay"
    );
    assert_ne!(
        patched["@odata.etag"], etag,
        "every write moves the change key"
    );

    // The old etag is now stale: 412 on PATCH and DELETE.
    for method in [Method::PATCH, Method::DELETE] {
        let resp = env
            .http
            .request(method, env.url(&format!("{ADELE}/contacts/{id}")))
            .bearer_auth(&token)
            .header("if-match", &etag)
            .json(&json!({"jobTitle": "x"}))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap();
        assert_graph_error(status, &body, 412, "ErrorIrresolvableConflict");
    }

    let (status, body) = env
        .send(
            Method::DELETE,
            &format!("{ADELE}/contacts/{id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(body, Value::Null);
    let (status, body) = env
        .send(Method::GET, &format!("{ADELE}/contacts/{id}"), &token, None)
        .await;
    assert_graph_error(status, &body, 404, "ErrorItemNotFound");
}

#[tokio::test]
async fn patching_a_name_part_without_display_name_regenerates_it() {
    let env = start().await;
    let token = env.token().await;
    let (_, created) = env
        .send(
            Method::POST,
            &format!("{ADELE}/contacts"),
            &token,
            Some(json!({"givenName": "Ann", "surname": "Lee", "displayName": "Dr. Ann Lee"})),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let (_, patched) = env
        .send(
            Method::PATCH,
            &format!("{ADELE}/contacts/{id}"),
            &token,
            Some(json!({"surname": "Kim"})),
        )
        .await;
    assert_eq!(patched["displayName"], "Ann Kim");
}

#[tokio::test]
async fn caps_on_emails_and_business_phones_are_400() {
    let env = start().await;
    let token = env.token().await;
    let emails: Vec<Value> = (0..4)
        .map(|i| json!({"address": format!("x{i}@y.com")}))
        .collect();
    let (status, body) = env
        .send(
            Method::POST,
            &format!("{ADELE}/contacts"),
            &token,
            Some(json!({"emailAddresses": emails})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("EmailAddresses has 4 entries")
    );
    let (status, _) = env
        .send(
            Method::POST,
            &format!("{ADELE}/contacts"),
            &token,
            Some(json!({"businessPhones": ["1", "2", "3"]})),
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn unknown_property_in_body_is_400() {
    let env = start().await;
    let token = env.token().await;
    let (status, body) = env
        .send(
            Method::POST,
            &format!("{ADELE}/contacts"),
            &token,
            Some(json!({"phones": []})),
        )
        .await;
    assert_graph_error(status, &body, 400, "RequestBodyRead");
}

#[tokio::test]
async fn email_filter_matches_exact_address_only() {
    let env = start().await;
    let (status, body) = env
        .get(&format!(
            "{ADELE}/contacts?$filter=emailAddresses/any(a:a/address eq 'a7@fabrikam.com')"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let v = body["value"].as_array().unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0]["givenName"], "a7");
    let (_, body) = env
        .get(&format!(
            "{ADELE}/contacts?$filter=emailAddresses/any(a:a/address eq 'fabrikam.com')"
        ))
        .await;
    assert_eq!(body["value"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn other_contact_filters_are_error_invalid_url_query_filter() {
    let env = start().await;
    let (status, body) = env
        .get(&format!(
            "{ADELE}/contacts?$filter=startswith(displayName,'a')"
        ))
        .await;
    assert_graph_error(status, &body, 400, "ErrorInvalidUrlQueryFilter");
    let (status, body) = env
        .get(&format!(
            "{ADELE}/contacts?$filter=emailAddresses/any(a:a/name eq 'a1')"
        ))
        .await;
    assert_graph_error(status, &body, 400, "ErrorInvalidUrlQueryFilter");
}

#[tokio::test]
async fn mailbox_without_contacts_role_is_error_access_denied() {
    let env = start().await;
    let token = env.token_for("app-nocontacts").await;
    let (status, body) = env
        .send(Method::GET, &format!("{ADELE}/contacts"), &token, None)
        .await;
    assert_graph_error(status, &body, 403, "ErrorAccessDenied");
}

#[tokio::test]
async fn read_only_role_cannot_write() {
    let env = start().await;
    let token = env.token_for("app-readonly").await;
    let (status, _) = env
        .send(Method::GET, &format!("{ADELE}/contacts"), &token, None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = env
        .send(
            Method::POST,
            &format!("{ADELE}/contacts"),
            &token,
            Some(json!({"givenName": "x"})),
        )
        .await;
    assert_graph_error(status, &body, 403, "ErrorAccessDenied");
}

#[tokio::test]
async fn mailbox_outside_scope_is_odata_disabled() {
    let env = start().await;
    let token = env.token_for("app-scoped").await;
    let (status, _) = env
        .send(Method::GET, &format!("{ADELE}/contacts"), &token, None)
        .await;
    assert_eq!(status, 200);
    let (status, body) = env
        .send(
            Method::GET,
            "/v1.0/users/carol@contoso.com/contacts",
            &token,
            None,
        )
        .await;
    assert_graph_error(status, &body, 403, "ErrorAccessDenied");
    assert_eq!(body["error"]["message"], "Access to OData is disabled.");
}

#[tokio::test]
async fn unknown_user_on_mailbox_path_is_error_invalid_user() {
    let env = start().await;
    let (status, body) = env.get("/v1.0/users/ghost@contoso.com/contacts").await;
    assert_graph_error(status, &body, 404, "ErrorInvalidUser");
}

#[tokio::test]
async fn user_without_mailbox_is_mailbox_not_enabled() {
    let env = start().await;
    let (status, body) = env.get("/v1.0/users/bob@contoso.com/contacts").await;
    assert_graph_error(status, &body, 404, "MailboxNotEnabledForRESTAPI");
}

#[tokio::test]
async fn malformed_contact_id_is_400() {
    let env = start().await;
    let (status, body) = env.get(&format!("{ADELE}/contacts/abc")).await;
    assert_graph_error(status, &body, 400, "ErrorInvalidIdMalformed");
}

#[tokio::test]
async fn folders_list_children_of_default_folder_and_filter_by_name() {
    let env = start().await;
    let hub = "/v1.0/users/hub@contoso.com";
    let (status, body) = env.get(&format!("{hub}/contactFolders")).await;
    assert_eq!(status, 200, "{body}");
    let folders = body["value"].as_array().unwrap();
    let names: Vec<&str> = folders
        .iter()
        .map(|f| f["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["All Contacts", "Bob's Folder"],
        "Archive is nested, not top-level"
    );
    assert_eq!(folders[0]["parentFolderId"], folders[1]["parentFolderId"]);

    let (status, body) = env
        .get(&format!(
            "{hub}/contactFolders?$filter=displayName eq 'Bob''s Folder'"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["value"].as_array().unwrap().len(), 1);
    let (status, body) = env
        .get(&format!(
            "{hub}/contactFolders?$filter=startswith(displayName,'B')"
        ))
        .await;
    assert_graph_error(status, &body, 400, "ErrorInvalidUrlQueryFilter");
}

#[tokio::test]
async fn folders_create_children_and_reject_duplicate_siblings() {
    let env = start().await;
    let token = env.token().await;
    let hub = "/v1.0/users/hub@contoso.com";
    let (status, body) = env
        .send(
            Method::POST,
            &format!("{hub}/contactFolders"),
            &token,
            Some(json!({"displayName": "all contacts"})),
        )
        .await;
    assert_graph_error(status, &body, 409, "ErrorFolderExists");

    let (status, top) = env
        .send(
            Method::POST,
            &format!("{hub}/contactFolders"),
            &token,
            Some(json!({"displayName": "Vendors"})),
        )
        .await;
    assert_eq!(status, 201, "{top}");
    let top_id = top["id"].as_str().unwrap();
    let (status, child) = env
        .send(
            Method::POST,
            &format!("{hub}/contactFolders/{top_id}/childFolders"),
            &token,
            Some(json!({"displayName": "EU"})),
        )
        .await;
    assert_eq!(status, 201, "{child}");
    assert_eq!(child["parentFolderId"], top_id);
    let child_id = child["id"].as_str().unwrap();

    let (_, listed) = env
        .send(
            Method::GET,
            &format!("{hub}/contactFolders/{top_id}/childFolders"),
            &token,
            None,
        )
        .await;
    assert_eq!(listed["value"][0]["id"], child_id);
    // Folder ids are mailbox-unique: a nested folder is addressable directly.
    let (status, got) = env
        .send(
            Method::GET,
            &format!("{hub}/contactFolders/{child_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["displayName"], "EU");

    // Contacts in a folder carry its id as parentFolderId and are listed only there.
    let (status, c) = env
        .send(
            Method::POST,
            &format!("{hub}/contactFolders/{child_id}/contacts"),
            &token,
            Some(json!({"displayName": "In EU"})),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["parentFolderId"], child_id);
    let (_, in_folder) = env
        .send(
            Method::GET,
            &format!("{hub}/contactFolders/{child_id}/contacts"),
            &token,
            None,
        )
        .await;
    assert_eq!(in_folder["value"].as_array().unwrap().len(), 1);
    let (_, default) = env
        .send(Method::GET, &format!("{hub}/contacts"), &token, None)
        .await;
    assert_eq!(default["value"].as_array().unwrap().len(), 0);
    // GET /contacts/{id} finds it anywhere in the mailbox.
    let cid = c["id"].as_str().unwrap();
    let (status, _) = env
        .send(Method::GET, &format!("{hub}/contacts/{cid}"), &token, None)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn errors_carry_request_ids_and_echo_client_request_id() {
    let env = start().await;
    let token = env.token().await;
    let resp = env
        .http
        .get(env.url("/v1.0/users/ghost@contoso.com/contacts"))
        .bearer_auth(&token)
        .header("client-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    let request_id = resp.headers()["request-id"].to_str().unwrap().to_string();
    assert_eq!(resp.headers()["client-request-id"], "abc-123");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["innerError"]["request-id"], request_id);
    assert_eq!(body["error"]["innerError"]["client-request-id"], "abc-123");
}

#[tokio::test]
async fn me_is_refused_for_app_only_tokens() {
    let env = start().await;
    let (status, body) = env.get("/v1.0/me/contacts").await;
    assert_graph_error(status, &body, 400, "BadRequest");
}

#[tokio::test]
async fn immutable_id_preference_is_echoed() {
    let env = start().await;
    let token = env.token().await;
    let resp = env
        .http
        .get(env.url(&format!("{ADELE}/contacts?$top=1")))
        .bearer_auth(&token)
        .header("Prefer", "IdType=\"ImmutableId\"")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["preference-applied"],
        "IdType=\"ImmutableId\""
    );
}

#[tokio::test]
async fn notes_with_leading_line_break_are_mangled_in_lists_only() {
    let env = start().await;
    let token = env.token().await;
    let notes = format!("\n{}\nend", "x".repeat(300));
    let (status, created) = env
        .send(
            Method::POST,
            "/v1.0/users/carol@contoso.com/contacts",
            &token,
            Some(json!({"displayName": "Notes", "personalNotes": notes})),
        )
        .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap();
    let (_, got) = env
        .send(
            Method::GET,
            &format!("/v1.0/users/carol@contoso.com/contacts/{id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(got["personalNotes"], notes.as_str(), "GET by id is intact");
    let (_, list) = env
        .send(
            Method::GET,
            "/v1.0/users/carol@contoso.com/contacts?$select=personalNotes",
            &token,
            None,
        )
        .await;
    let listed = list["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap();
    let mangled = listed["personalNotes"].as_str().unwrap();
    assert_eq!(mangled.chars().count(), 256);
    assert!(!mangled.contains('\n'));
}

#[tokio::test]
async fn ignore_notes_on_create_quirk_drops_notes_until_patched() {
    let mut scenario = fixture_json();
    scenario["quirks"] = json!({"ignoreNotesOnCreate": true});
    let env = start_with(graph_emulator::Scenario::from_json(&scenario.to_string()).unwrap()).await;
    let token = env.token().await;
    let (_, created) = env
        .send(
            Method::POST,
            &format!("{ADELE}/contacts"),
            &token,
            Some(json!({"displayName": "N", "personalNotes": "SyncId: 1"})),
        )
        .await;
    assert_eq!(created["personalNotes"], Value::Null);
    let id = created["id"].as_str().unwrap();
    let (_, patched) = env
        .send(
            Method::PATCH,
            &format!("{ADELE}/contacts/{id}"),
            &token,
            Some(json!({"personalNotes": "SyncId: 1"})),
        )
        .await;
    assert_eq!(patched["personalNotes"], "SyncId: 1");
}

#[tokio::test]
async fn contact_groups_take_paging_slots_so_pages_can_be_short() {
    let env = start().await;
    let token = env.token().await;
    let hub = "/v1.0/users/hub@contoso.com";
    let (_, folders) = env
        .send(
            Method::GET,
            &format!("{hub}/contactFolders?$filter=displayName eq 'Bob''s Folder'"),
            &token,
            None,
        )
        .await;
    let fid = folders["value"][0]["id"].as_str().unwrap().to_string();
    let (status, first) = env
        .send(
            Method::GET,
            &format!("{hub}/contactFolders/{fid}/contacts?$count=true"),
            &token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{first}");
    // 12 contacts + 2 groups: the groups sit inside the first ten slots.
    assert_eq!(first["@odata.count"], 14);
    assert_eq!(first["value"].as_array().unwrap().len(), 8);
    let next = first["@odata.nextLink"]
        .as_str()
        .expect("short page still has a nextLink");
    let (_, second) = env.send(Method::GET, next, &token, None).await;
    assert_eq!(second["value"].as_array().unwrap().len(), 4);
    assert!(second.get("@odata.nextLink").is_none());
    let names: Vec<&str> = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["value"].as_array().unwrap())
        .map(|c| c["givenName"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 12);
    assert!(!names.iter().any(|n| n.starts_with("Team")));
}

#[tokio::test]
async fn percent_encoded_upn_and_filter_survive_paging() {
    let env = start().await;
    let token = env.token().await;
    let (status, body) = env
        .send(
            Method::GET,
            "/v1.0/users/adele%40contoso.com/contacts?$top=1&$filter=emailAddresses/any(a:a/address%20eq%20'a3@fabrikam.com')&$count=true",
            &token,
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["@odata.count"], 1);
    assert_eq!(body["value"][0]["givenName"], "a3");
    assert!(body.get("@odata.nextLink").is_none());
}

#[tokio::test]
async fn patch_on_a_collection_is_405_and_unknown_segments_400() {
    let env = start().await;
    let token = env.token().await;
    let (status, body) = env
        .send(
            Method::PATCH,
            &format!("{ADELE}/contacts"),
            &token,
            Some(json!({"jobTitle": "x"})),
        )
        .await;
    assert_graph_error(status, &body, 405, "ErrorInvalidRequest");
    let (status, body) = env
        .send(Method::GET, &format!("{ADELE}/calendars"), &token, None)
        .await;
    assert_graph_error(status, &body, 400, "BadRequest");
    // `/groups` is served now (groups.rs); another top-level segment stays unknown.
    let (status, body) = env.send(Method::GET, "/v1.0/sites", &token, None).await;
    assert_graph_error(status, &body, 400, "BadRequest");
}

#[tokio::test]
async fn filtered_next_link_keeps_the_filter() {
    let env = start().await;
    let token = env.token().await;
    // Two of Adele's contacts share a new address, so a $top=1 filtered list needs two pages.
    for name in ["dup1", "dup2"] {
        let (status, _) = env
            .send(
                Method::POST,
                &format!("{ADELE}/contacts"),
                &token,
                Some(json!({"displayName": name, "emailAddresses": [{"address": "shared@x.com"}]})),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (_, first) = env
        .send(
            Method::GET,
            &format!(
                "{ADELE}/contacts?$top=1&$filter=emailAddresses/any(a:a/address eq 'shared@x.com')"
            ),
            &token,
            None,
        )
        .await;
    assert_eq!(first["value"][0]["displayName"], "dup1");
    let next = first["@odata.nextLink"].as_str().unwrap();
    let (_, second) = env.send(Method::GET, next, &token, None).await;
    assert_eq!(second["value"].as_array().unwrap().len(), 1);
    assert_eq!(second["value"][0]["displayName"], "dup2");
}
