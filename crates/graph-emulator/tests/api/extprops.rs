//! Single-value extended properties on contacts (issue 13): set with POST/PATCH, stored,
//! returned only by `$expand=singleValueExtendedProperties($filter=id eq '…')` on GET by id and
//! on lists, ids echoed as Graph was observed to, the documented list `$filter`, and the
//! scenario format carrying them (singlevaluelegacyextendedproperty-get.md).

use graph_emulator::{EmulatorOptions, Scenario, Variants};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const ADELE: &str = "/v1.0/users/adele@contoso.com";
const SENSITIVITY: &str = "singleValueExtendedProperties($filter=id eq 'Integer 0x0036')";
const PRIVATE: &str = "singleValueExtendedProperties/Any(ep: ep/id eq 'Integer 0x0036' and cast(ep/value, Edm.Int32) eq 2)";

async fn create(env: &Env, token: &str, body: Value) -> Value {
    let (s, c) = env
        .send(
            Method::POST,
            &format!("{ADELE}/contacts"),
            token,
            Some(body),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    c
}

async fn get(env: &Env, token: &str, path: &str) -> Value {
    let (s, b) = env.send(Method::GET, path, token, None).await;
    assert_eq!(s, 200, "{path}: {b}");
    b
}

#[tokio::test]
async fn written_properties_come_back_only_when_expanded_by_id() {
    let env = start().await;
    let token = env.token().await;
    let c = create(
        &env,
        &token,
        json!({"givenName": "Doctor", "surname": "Who", "categories": ["Medical"],
               "singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": "2"},
                                                 {"id": "String 0x3A45", "value": "Dr."}]}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    assert!(
        c.get("singleValueExtendedProperties").is_none(),
        "not in the create answer: {c}"
    );
    let plain = get(&env, &token, &format!("{ADELE}/contacts/{id}")).await;
    assert!(plain.get("singleValueExtendedProperties").is_none());
    let selected = get(
        &env,
        &token,
        &format!("{ADELE}/contacts/{id}?$select=displayName,singleValueExtendedProperties"),
    )
    .await;
    assert!(
        selected.get("singleValueExtendedProperties").is_none(),
        "$select alone does not return a navigation"
    );

    let got = get(
        &env,
        &token,
        &format!("{ADELE}/contacts/{id}?$expand={SENSITIVITY}"),
    )
    .await;
    assert_eq!(
        got["singleValueExtendedProperties"],
        json!([{"id": "Integer 0x36", "value": "2"}]),
        "only the asked-for property, its id normalised as observed"
    );
    assert!(
        got["singleValueExtendedProperties@odata.context"]
            .as_str()
            .unwrap()
            .ends_with(&format!(
                "/v1.0/$metadata#users('adele@contoso.com')/contacts('{id}')/singleValueExtendedProperties"
            ))
    );
    assert_eq!(got["displayName"], "Doctor Who", "the whole contact too");

    let both = get(
        &env,
        &token,
        &format!(
            "{ADELE}/contacts/{id}?$select=displayName&$expand=singleValueExtendedProperties($filter=id eq 'String 0x3a45' or id eq 'integer 0x36')"
        ),
    )
    .await;
    assert_eq!(
        both["singleValueExtendedProperties"],
        json!([{"id": "String 0x3a45", "value": "Dr."}, {"id": "Integer 0x36", "value": "2"}])
    );
    assert!(both.get("surname").is_none(), "$select still trims");
    assert_eq!(both["displayName"], "Doctor Who");

    let unfiltered = get(
        &env,
        &token,
        &format!("{ADELE}/contacts/{id}?$expand=singleValueExtendedProperties"),
    )
    .await;
    assert!(unfiltered.get("singleValueExtendedProperties").is_none());
}

#[tokio::test]
async fn lists_expand_per_contact_and_absent_when_the_contact_has_none() {
    let env = start().await;
    let token = env.token().await;
    // Adele's 25 fixture contacts have none; add two marked private among them.
    for name in ["Private One", "Private Two"] {
        create(
            &env,
            &token,
            json!({"displayName": name,
                   "singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": "2"}]}),
        )
        .await;
    }
    let b = get(
        &env,
        &token,
        &format!("{ADELE}/contacts?$top=100&$select=displayName&$expand={SENSITIVITY}"),
    )
    .await;
    let rows = b["value"].as_array().unwrap();
    assert_eq!(rows.len(), 27);
    let marked: Vec<&str> = rows
        .iter()
        .filter(|r| r.get("singleValueExtendedProperties").is_some())
        .map(|r| r["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(marked, vec!["Private One", "Private Two"]);
    // The expand survives paging: nextLinks keep the query.
    let b = get(
        &env,
        &token,
        &format!("{ADELE}/contacts?$top=20&$expand={SENSITIVITY}"),
    )
    .await;
    let next = b["@odata.nextLink"].as_str().unwrap();
    assert!(next.contains("$expand="), "{next}");
    let b = get(&env, &token, next).await;
    assert_eq!(
        b["value"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r.get("singleValueExtendedProperties").is_some())
            .count(),
        2
    );
    // And inside $batch.
    let (_, out) = batch(
        &env,
        &token,
        json!({"requests": [{"id": "1", "method": "GET",
            "url": format!("/users/adele@contoso.com/contacts?$top=100&$expand={SENSITIVITY}")}]}),
    )
    .await;
    let rows = out["responses"][0]["body"]["value"].as_array().unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r["singleValueExtendedProperties"][0]["value"] == "2")
            .count(),
        2
    );
}

#[tokio::test]
async fn the_documented_list_filter_finds_private_contacts() {
    let env = start().await;
    let token = env.token().await;
    let private = create(
        &env,
        &token,
        json!({"displayName": "Flagged",
               "singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": "2"}]}),
    )
    .await;
    create(
        &env,
        &token,
        json!({"displayName": "Personal",
               "singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": "1"}]}),
    )
    .await;
    let b = get(
        &env,
        &token,
        &format!("{ADELE}/contacts?$filter={PRIVATE}&$select=id"),
    )
    .await;
    let rows = b["value"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], private["id"]);
    let b = get(
        &env,
        &token,
        &format!(
            "{ADELE}/contacts?$filter=singleValueExtendedProperties/any(ep:ep/id eq 'Integer 0x36' and cast(ep/value, Edm.Int32) ge 1)"
        ),
    )
    .await;
    assert_eq!(b["value"].as_array().unwrap().len(), 2);
    let (s, b) = env
        .send(
            Method::GET,
            &format!(
                "{ADELE}/contacts?$filter=singleValueExtendedProperties/Any(ep: ep/id eq 'Integer 0x0036' and contains(ep/value, '2'))"
            ),
            &token,
            None,
        )
        .await;
    assert_graph_error(s, &b, 400, "ErrorInvalidUrlQueryFilter");
}

#[tokio::test]
async fn patch_merges_by_property_and_other_patches_keep_them() {
    let env = start().await;
    let token = env.token().await;
    let c = create(
        &env,
        &token,
        json!({"displayName": "X", "singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": "0"}]}),
    )
    .await;
    let id = c["id"].as_str().unwrap();
    let etag = c["@odata.etag"].as_str().unwrap();
    let (s, patched) = env
        .send(
            Method::PATCH,
            &format!("{ADELE}/contacts/{id}"),
            &token,
            Some(json!({"singleValueExtendedProperties": [{"id": "Integer 0x36", "value": "2"},
                                                          {"id": "String 0x3a45", "value": "Ms."}]})),
        )
        .await;
    assert_eq!(s, 200);
    assert_ne!(patched["@odata.etag"], etag, "a write moves the version");
    env.send(
        Method::PATCH,
        &format!("{ADELE}/contacts/{id}"),
        &token,
        Some(json!({"jobTitle": "CFO"})),
    )
    .await;
    let got = get(
        &env,
        &token,
        &format!(
            "{ADELE}/contacts/{id}?$expand=singleValueExtendedProperties($filter=id eq 'Integer 0x0036' or id eq 'String 0x3A45')"
        ),
    )
    .await;
    assert_eq!(
        got["singleValueExtendedProperties"],
        json!([{"id": "Integer 0x36", "value": "2"}, {"id": "String 0x3a45", "value": "Ms."}])
    );
    assert_eq!(got["jobTitle"], "CFO");
    // The owner marks it private in Outlook: the control plane's touch takes them too.
    let r = env
        .http
        .post(env.url(&format!(
            "/_emulator/users/adele@contoso.com/contacts/{id}/touch"
        )))
        .json(&json!({"singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": "1"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = get(
        &env,
        &token,
        &format!("{ADELE}/contacts/{id}?$expand={SENSITIVITY}"),
    )
    .await;
    assert_eq!(got["singleValueExtendedProperties"][0]["value"], "1");
}

#[tokio::test]
async fn malformed_ids_and_values_are_refused() {
    let env = start().await;
    let token = env.token().await;
    for (prop, code) in [
        (json!({"id": "Test", "value": "1"}), "ErrorInvalidProperty"),
        (
            json!({"id": "Integer 0x0036", "value": 2}),
            "RequestBodyRead",
        ),
        (
            json!({"id": "Integer 0x0036", "value": "private"}),
            "ErrorInvalidExtendedPropertyValue",
        ),
        (
            json!({"id": "Integer 0x0036", "val": "2"}),
            "RequestBodyRead",
        ),
    ] {
        let (s, b) = env
            .send(
                Method::POST,
                &format!("{ADELE}/contacts"),
                &token,
                Some(json!({"displayName": "x", "singleValueExtendedProperties": [prop]})),
            )
            .await;
        assert_graph_error(s, &b, 400, code);
    }
    let (s, b) = env
        .send(
            Method::GET,
            &format!(
                "{ADELE}/contacts?$expand=singleValueExtendedProperties($filter=id eq 'Test')"
            ),
            &token,
            None,
        )
        .await;
    assert_graph_error(s, &b, 400, "ErrorInvalidProperty");
    let (s, b) = env
        .send(
            Method::GET,
            &format!("{ADELE}/contacts?$expand=extensions"),
            &token,
            None,
        )
        .await;
    assert_eq!(s, 400, "{b}");
}

#[tokio::test]
async fn scenario_contacts_carry_them_and_the_export_keeps_them() {
    let mut s = fixture_json();
    s["tenants"][0]["users"][3]["contacts"][0]["singleValueExtendedProperties"] =
        json!([{"id": "Integer 0x0036", "value": "2"}]);
    s["tenants"][0]["users"][3]["contacts"][1]["categories"] = json!(["Private"]);
    let env = start_with(Scenario::from_json(&s.to_string()).unwrap()).await;
    let token = env.token().await;
    let b = get(
        &env,
        &token,
        &format!("/v1.0/users/carol@contoso.com/contacts?$filter={PRIVATE}"),
    )
    .await;
    assert_eq!(b["value"].as_array().unwrap().len(), 1);
    assert_eq!(b["value"][0]["givenName"], "c0");
    let state = env.emu.state();
    let carol = &state.tenants[0].users[3];
    assert_eq!(
        carol.contacts[0]["singleValueExtendedProperties"],
        json!([{"id": "Integer 0x0036", "value": "2"}])
    );
    // The export replays.
    let again = Scenario::from_json(&state.to_json_pretty()).unwrap();
    assert_eq!(again, state);

    let mut bad = fixture_json();
    bad["tenants"][0]["users"][3]["contacts"][0]["singleValueExtendedProperties"] =
        json!([{"id": "Sensitivity", "value": "2"}]);
    let e = Scenario::from_json(&bad.to_string())
        .unwrap_err()
        .to_string();
    assert!(e.contains("tenants[0].users[3].contacts[0]"), "{e}");
}

#[tokio::test]
async fn variant_ids_as_sent_echoes_the_id_verbatim() {
    let mut v = Variants::default();
    v.enable("extended-property-ids-as-sent").unwrap();
    let emu = graph_emulator::start(
        fixture(),
        EmulatorOptions {
            variants: v,
            ..EmulatorOptions::default()
        },
    )
    .await
    .unwrap();
    let env = Env {
        emu,
        http: reqwest::Client::new(),
    };
    let token = env.token().await;
    let c = create(
        &env,
        &token,
        json!({"displayName": "x", "singleValueExtendedProperties": [{"id": "Integer 0x36", "value": "2"}]}),
    )
    .await;
    let got = get(
        &env,
        &token,
        &format!(
            "{ADELE}/contacts/{}?$expand={SENSITIVITY}",
            c["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(
        got["singleValueExtendedProperties"],
        json!([{"id": "Integer 0x0036", "value": "2"}])
    );
}
