//! Directory groups (issue 13): `/groups/{id}`, `/groups?$filter=mail eq '…'`, `members`,
//! `transitiveMembers/microsoft.graph.user` with Graph's paging, advanced-query rule for casts,
//! permissions and limited information (group-get.md, group-list.md, group-list-members.md,
//! group-list-transitivemembers.md, aad-advanced-queries.md).

use graph_emulator::{EmulatorOptions, Scenario, Variants};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const SALES: &str = "6a1f5a7e-0000-4000-8000-00000000000a";
const EMEA: &str = "6a1f5a7e-0000-4000-8000-00000000000b";
const EMPTY: &str = "6a1f5a7e-0000-4000-8000-00000000000c";
const ADELE_ID: &str = "11111111-1111-4111-8111-111111111111";

/// The fixture plus: Sales (mail-enabled) = {Adele by id, carol by UPN, EMEA}; EMEA (security)
/// = {carol, dave, Sales} — a cycle; and two apps with group permissions.
fn scenario_json() -> Value {
    let mut s = fixture_json();
    let t = &mut s["tenants"][0];
    t["apps"].as_array_mut().unwrap().extend([
        json!({"clientId": "app-groups", "clientSecret": SECRET, "roles": ["GroupMember.Read.All"]}),
        json!({"clientId": "app-groups-users", "clientSecret": SECRET,
               "roles": ["GroupMember.Read.All", "User.Read.All"]}),
    ]);
    t["groups"] = json!([
        {"id": SALES, "displayName": "Sales", "mail": "sales@contoso.com",
         "members": [ADELE_ID, "carol@contoso.com", EMEA]},
        {"id": EMEA, "displayName": "EMEA", "mail": null,
         "members": ["CAROL@contoso.com", "dave@contoso.com", SALES]},
        {"id": EMPTY, "displayName": "Nobody", "members": []}
    ]);
    s
}

async fn env_with(variants: &[&str], scenario: Value) -> Env {
    let mut v = Variants::default();
    for n in variants {
        v.enable(n).unwrap();
    }
    let emu = graph_emulator::start(
        Scenario::from_json(&scenario.to_string()).unwrap(),
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

/// GET with `ConsistencyLevel: eventual` when `eventual`.
async fn get(env: &Env, token: &str, url: &str, eventual: bool) -> (u16, Value) {
    let url = if url.starts_with("http") {
        url.to_owned()
    } else {
        env.url(url)
    };
    let mut req = env.http.get(url).bearer_auth(token);
    if eventual {
        req = req.header("ConsistencyLevel", "eventual");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn upns(rows: &Value) -> Vec<String> {
    let mut v: Vec<String> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userPrincipalName"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn get_a_group_and_find_one_by_mail() {
    let env = env_with(&[], scenario_json()).await;
    let token = env.token_for("app-groups").await;
    let (s, g) = get(&env, &token, &format!("/v1.0/groups/{SALES}"), false).await;
    assert_eq!(s, 200, "{g}");
    assert_eq!(g["displayName"], "Sales");
    assert_eq!(g["mail"], "sales@contoso.com");
    assert_eq!(g["mailEnabled"], true);
    assert_eq!(g["securityEnabled"], true);
    assert!(
        g["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#groups/$entity")
    );
    let (_, g) = get(
        &env,
        &token,
        &format!("/v1.0/groups/{EMEA}?$select=id,mail"),
        false,
    )
    .await;
    assert_eq!(g["mail"], Value::Null);
    assert!(g.get("displayName").is_none());

    let (s, b) = get(
        &env,
        &token,
        "/v1.0/groups?$filter=mail eq 'Sales@Contoso.com'&$select=id,displayName",
        false,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["value"], json!([{"id": SALES, "displayName": "Sales"}]));
    let (_, b) = get(
        &env,
        &token,
        "/v1.0/groups?$filter=mail eq 'nobody@contoso.com'",
        false,
    )
    .await;
    assert_eq!(b["value"], json!([]));
    let (_, b) = get(&env, &token, "/v1.0/groups", false).await;
    assert_eq!(b["value"].as_array().unwrap().len(), 3);
    let (s, b) = get(
        &env,
        &token,
        "/v1.0/groups?$filter=startswith(mail,'s')",
        false,
    )
    .await;
    assert_graph_error(s, &b, 400, "Request_UnsupportedQuery");
}

#[tokio::test]
async fn unknown_group_is_404_and_a_missing_permission_403() {
    let env = env_with(&[], scenario_json()).await;
    let token = env.token_for("app-groups").await;
    for path in [
        "/v1.0/groups/6a1f5a7e-0000-4000-8000-0000000000ff".to_owned(),
        "/v1.0/groups/6a1f5a7e-0000-4000-8000-0000000000ff/members".to_owned(),
        "/v1.0/groups/6a1f5a7e-0000-4000-8000-0000000000ff/transitiveMembers/microsoft.graph.user?$count=true"
            .to_owned(),
    ] {
        let (s, b) = get(&env, &token, &path, true).await;
        assert_graph_error(s, &b, 404, "Request_ResourceNotFound");
    }
    // Groups are addressed by object id; a mail address is not one.
    let (s, b) = get(&env, &token, "/v1.0/groups/sales@contoso.com", false).await;
    assert_graph_error(s, &b, 400, "Request_BadRequest");
    // User.Read.All alone does not read groups.
    let token = env.token().await;
    for path in [
        format!("/v1.0/groups/{SALES}"),
        "/v1.0/groups".to_owned(),
        format!("/v1.0/groups/{SALES}/transitiveMembers/microsoft.graph.user?$count=true"),
    ] {
        let (s, b) = get(&env, &token, &path, true).await;
        assert_graph_error(s, &b, 403, "Authorization_RequestDenied");
    }
    let full = env.token_for("app-groups").await;
    let (s, b) = env
        .send(
            Method::PATCH,
            &format!("/v1.0/groups/{SALES}"),
            &full,
            Some(json!({})),
        )
        .await;
    assert_graph_error(s, &b, 405, "Request_BadRequest");
}

#[tokio::test]
async fn members_are_direct_and_typed() {
    let env = env_with(&[], scenario_json()).await;
    let token = env.token_for("app-groups-users").await;
    let (s, b) = get(
        &env,
        &token,
        &format!("/v1.0/groups/{SALES}/members"),
        false,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(
        b["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#directoryObjects")
    );
    let rows = b["value"].as_array().unwrap();
    let kinds: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["@odata.type"].as_str().unwrap(),
                r["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(kinds[0], ("#microsoft.graph.user", ADELE_ID));
    assert_eq!(kinds[1].0, "#microsoft.graph.user");
    assert_eq!(kinds[2], ("#microsoft.graph.group", EMEA));
    assert_eq!(rows.len(), 3, "dave is only in EMEA");
    assert_eq!(rows[0]["userPrincipalName"], "adele@contoso.com");
}

#[tokio::test]
async fn transitive_users_need_the_advanced_query_parameters_and_are_deduplicated() {
    let env = env_with(&[], scenario_json()).await;
    let token = env.token_for("app-groups-users").await;
    let path = format!(
        "/v1.0/groups/{SALES}/transitiveMembers/microsoft.graph.user?$count=true&$select=id,userPrincipalName"
    );
    let (s, b) = get(&env, &token, &path, true).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["@odata.count"], 3);
    assert_eq!(
        upns(&b["value"]),
        vec!["adele@contoso.com", "carol@contoso.com", "dave@contoso.com"],
        "through EMEA, carol once, the cycle back to Sales harmless"
    );
    assert!(
        b["value"][0].get("@odata.type").is_none(),
        "a cast collection is one type"
    );
    assert_eq!(
        b["value"][0].as_object().unwrap().len(),
        2,
        "{}",
        b["value"][0]
    );
    assert!(
        b["@odata.context"]
            .as_str()
            .unwrap()
            .ends_with("$metadata#users(id,userPrincipalName)")
    );
    // The cast needs ConsistencyLevel: eventual and $count=true.
    let (s, e) = get(&env, &token, &path, false).await;
    assert_graph_error(s, &e, 400, "Request_UnsupportedQuery");
    let (s, e) = get(
        &env,
        &token,
        &format!("/v1.0/groups/{SALES}/transitiveMembers/microsoft.graph.user"),
        true,
    )
    .await;
    assert_graph_error(s, &e, 400, "Request_UnsupportedQuery");
    // Nested groups, without the cast: users and groups, never the group itself.
    let (_, all) = get(
        &env,
        &token,
        &format!("/v1.0/groups/{EMEA}/transitiveMembers"),
        false,
    )
    .await;
    let ids: Vec<&str> = all["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&SALES) && !ids.contains(&EMEA), "{ids:?}");
    assert_eq!(ids.len(), 4, "carol, dave, Sales, adele");
    let (_, groups) = get(
        &env,
        &token,
        &format!("/v1.0/groups/{SALES}/transitiveMembers/microsoft.graph.group?$count=true"),
        true,
    )
    .await;
    assert_eq!(groups["value"][0]["id"], EMEA);
    // The namespace alias, as msgraph-sdk writes the cast.
    let (s, alias) = get(
        &env,
        &token,
        &format!("/v1.0/groups/{SALES}/transitiveMembers/graph.user?$count=true"),
        true,
    )
    .await;
    assert_eq!(s, 200, "{alias}");
    assert_eq!(alias["@odata.count"], 3);
    let (_, empty) = get(
        &env,
        &token,
        &format!("/v1.0/groups/{EMPTY}/transitiveMembers/microsoft.graph.user?$count=true"),
        true,
    )
    .await;
    assert_eq!(
        (empty["@odata.count"].clone(), empty["value"].clone()),
        (json!(0), json!([]))
    );
}

#[tokio::test]
async fn variant_lenient_group_cast_accepts_the_cast_alone() {
    let env = env_with(&["lenient-group-cast"], scenario_json()).await;
    let token = env.token_for("app-groups-users").await;
    let (s, b) = get(
        &env,
        &token,
        &format!("/v1.0/groups/{SALES}/transitiveMembers/microsoft.graph.user"),
        false,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["value"].as_array().unwrap().len(), 3);
    assert!(b.get("@odata.count").is_none());
}

#[tokio::test]
async fn without_a_user_permission_members_come_back_with_limited_information() {
    let env = env_with(&[], scenario_json()).await;
    let token = env.token_for("app-groups").await;
    let (s, b) = get(
        &env,
        &token,
        &format!("/v1.0/groups/{SALES}/transitiveMembers/microsoft.graph.user?$count=true&$select=id,userPrincipalName,mail"),
        true,
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let first = &b["value"][0];
    assert_eq!(first["id"], ADELE_ID);
    assert_eq!(first["userPrincipalName"], Value::Null);
    assert_eq!(first["mail"], Value::Null);
}

#[tokio::test]
async fn a_2000_member_group_pages_with_skiptoken_and_the_header_on_every_page() {
    let mut s = scenario_json();
    let t = &mut s["tenants"][0];
    let users = t["users"].as_array_mut().unwrap();
    for i in 0..2_000 {
        users.push(json!({"userPrincipalName": format!("m{i:04}@contoso.com"), "mailbox": false}));
    }
    // Big = m0000..m1499 + Nested; Nested = m1400..m1999 + Big (overlap of 100, and a cycle).
    let big = "6a1f5a7e-0000-4000-8000-0000000000b1";
    let nested = "6a1f5a7e-0000-4000-8000-0000000000b2";
    let mut big_members: Vec<Value> = (0..1_500)
        .map(|i| json!(format!("m{i:04}@contoso.com")))
        .collect();
    big_members.push(json!(nested));
    let mut nested_members: Vec<Value> = (1_400..2_000)
        .map(|i| json!(format!("m{i:04}@contoso.com")))
        .collect();
    nested_members.push(json!(big));
    t["groups"].as_array_mut().unwrap().extend([
        json!({"id": big, "displayName": "Everyone", "mail": "everyone@contoso.com", "members": big_members}),
        json!({"id": nested, "displayName": "Late joiners", "members": nested_members}),
    ]);
    let env = env_with(&[], s).await;
    let token = env.token_for("app-groups-users").await;
    let walk = |first: String, eventual: bool| {
        let env = &env;
        let token = &token;
        async move {
            let mut url = first;
            let mut seen = Vec::new();
            let mut pages = 0;
            let mut counts = Vec::new();
            loop {
                let (s, b) = get(env, token, &url, eventual).await;
                assert_eq!(s, 200, "{url}: {b}");
                pages += 1;
                counts.push(b.get("@odata.count").cloned());
                for r in b["value"].as_array().unwrap() {
                    seen.push(r["userPrincipalName"].as_str().unwrap().to_owned());
                }
                match b["@odata.nextLink"].as_str() {
                    Some(next) => {
                        assert!(
                            next.contains("$skiptoken=") && next.starts_with(&env.emu.url()),
                            "{next}"
                        );
                        url = next.to_owned();
                    }
                    None => return (seen, pages, counts),
                }
            }
        }
    };
    let base = format!(
        "/v1.0/groups/{big}/transitiveMembers/microsoft.graph.user?$count=true&$select=id,userPrincipalName"
    );
    let (seen, pages, counts) = walk(env.url(&base), true).await;
    assert_eq!(pages, 20, "100 a page by default");
    assert_eq!(seen.len(), 2_000);
    let distinct: std::collections::HashSet<_> = seen.iter().collect();
    assert_eq!(distinct.len(), 2_000, "each user once");
    assert_eq!(counts[0], Some(json!(2_000)));
    assert!(
        counts[1..].iter().all(Option::is_none),
        "@odata.count on page 1 only"
    );
    let (seen, pages, _) = walk(env.url(&format!("{base}&$top=999")), true).await;
    assert_eq!((seen.len(), pages), (2_000, 3));
    // Direct members of the big group: 1,500 users and the nested group.
    let (_, b) = get(
        &env,
        &token,
        &format!("/v1.0/groups/{big}/members?$top=999"),
        false,
    )
    .await;
    assert_eq!(b["value"].as_array().unwrap().len(), 999);
    // The header is not carried by nextLinks: a page fetched without it is refused.
    let (_, first) = get(&env, &token, &base, true).await;
    let next = first["@odata.nextLink"].as_str().unwrap();
    let (s, b) = get(&env, &token, next, false).await;
    assert_graph_error(s, &b, 400, "Request_UnsupportedQuery");
    let (s, b) = get(&env, &token, &format!("{base}&$top=1000"), true).await;
    assert_graph_error(s, &b, 400, "Request_BadRequest");
}

#[tokio::test]
async fn groups_work_inside_batch_and_survive_export() {
    let env = env_with(&[], scenario_json()).await;
    let token = env.token_for("app-groups-users").await;
    let (s, b) = batch(
        &env,
        &token,
        json!({"requests": [
            {"id": "1", "method": "GET",
             "url": format!("/groups/{SALES}/transitiveMembers/microsoft.graph.user?$count=true&$select=userPrincipalName"),
             "headers": {"ConsistencyLevel": "eventual"}},
            {"id": "2", "method": "GET", "url": "/groups?$filter=mail eq 'sales@contoso.com'"}
        ]}),
    )
    .await;
    assert_eq!(s, 200);
    let r = by_id(&b);
    assert_eq!(r["1"]["status"], 200, "{b}");
    assert_eq!(upns(&r["1"]["body"]["value"]).len(), 3);
    assert_eq!(r["2"]["body"]["value"][0]["id"], SALES);
    let state = env.emu.state();
    assert_eq!(state.tenants[0].groups.len(), 3);
    assert_eq!(state.tenants[0].groups[0].members[1], "carol@contoso.com");
    assert_eq!(Scenario::from_json(&state.to_json_pretty()).unwrap(), state);
}
