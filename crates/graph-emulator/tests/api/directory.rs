//! `/users`, `/users/{id|upn}`, `/organization` (docs/graph-facts.md §3, §4, §7).

use crate::common::*;
use reqwest::Method;
use serde_json::Value;

#[tokio::test]
async fn users_default_properties_exclude_select_only_ones() {
    let env = start().await;
    let (status, body) = env.get("/v1.0/users").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["@odata.context"],
        format!("{}/v1.0/$metadata#users", env.emu.url())
    );
    let users = body["value"].as_array().unwrap();
    assert_eq!(users.len(), 5);
    let adele = &users[1];
    assert_eq!(adele["userPrincipalName"], "adele@contoso.com");
    assert_eq!(adele["id"], "11111111-1111-4111-8111-111111111111");
    assert!(adele.get("accountEnabled").is_none(), "{adele}");
    assert!(adele.get("assignedLicenses").is_none(), "{adele}");
    assert!(body.get("@odata.nextLink").is_none());
}

#[tokio::test]
async fn users_select_trims_and_returns_licences() {
    let env = start().await;
    let (status, body) = env
        .get("/v1.0/users?$select=id,userPrincipalName,assignedLicenses,accountEnabled")
        .await;
    assert_eq!(status, 200, "{body}");
    let hub = &body["value"][0];
    let keys: Vec<&String> = hub.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "{hub}");
    assert_eq!(hub["accountEnabled"], false);
    assert_eq!(body["value"][1]["assignedLicenses"][0]["skuId"], SKU);
    let (status, body) = env.get("/v1.0/users?$select=id,shoeSize").await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
}

#[tokio::test]
async fn users_page_with_absolute_skiptoken_links() {
    let env = start().await;
    let token = env.token().await;
    let mut url = env.url("/v1.0/users?$top=2&$select=id,userPrincipalName");
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, body) = env.send(Method::GET, &url, &token, None).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for u in body["value"].as_array().unwrap() {
            seen.push(u["userPrincipalName"].as_str().unwrap().to_string());
        }
        match body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&env.emu.url()), "{next}");
                assert!(next.contains("$skiptoken="), "{next}");
                assert!(next.contains("$top=2"), "{next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        [
            "hub@contoso.com",
            "adele@contoso.com",
            "bob@contoso.com",
            "carol@contoso.com",
            "dave@contoso.com"
        ]
    );
}

#[tokio::test]
async fn users_top_over_999_is_rejected() {
    let env = start().await;
    let (status, body) = env.get("/v1.0/users?$top=1000").await;
    assert_graph_error(status, &body, 400, "Request_BadRequest");
}

#[tokio::test]
async fn licence_filter_by_sku_is_a_default_query() {
    let env = start().await;
    let (status, body) = env
        .get(&format!(
            "/v1.0/users?$filter=assignedLicenses/any(x:x/skuId eq {SKU})&$select=userPrincipalName"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let upns: Vec<&str> = body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userPrincipalName"].as_str().unwrap())
        .collect();
    assert_eq!(
        upns,
        ["adele@contoso.com", "bob@contoso.com", "carol@contoso.com"]
    );
}

#[tokio::test]
async fn licence_count_filter_without_advanced_parameters_is_unsupported() {
    let env = start().await;
    let (status, body) = env
        .get("/v1.0/users?$filter=assignedLicenses/$count ne 0")
        .await;
    assert_graph_error(status, &body, 400, "Request_UnsupportedQuery");
    // $count=true alone is not enough: the ConsistencyLevel header is required too.
    let (status, body) = env
        .get("/v1.0/users?$filter=assignedLicenses/$count ne 0&$count=true")
        .await;
    assert_graph_error(status, &body, 400, "Request_UnsupportedQuery");
    let (status, body) = env
        .get("/v1.0/users?$filter=assignedLicenses/any(x:x/skuId ne null)")
        .await;
    assert_graph_error(status, &body, 400, "Request_UnsupportedQuery");
}

#[tokio::test]
async fn licence_count_filter_with_advanced_parameters_counts_on_first_page_only() {
    let env = start().await;
    let token = env.token().await;
    let get = |url: String| {
        let env = &env;
        let token = token.clone();
        async move {
            let resp = env
                .http
                .get(url)
                .bearer_auth(token)
                .header("ConsistencyLevel", "eventual")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
            resp.json::<Value>().await.unwrap()
        }
    };
    let first =
        get(env.url("/v1.0/users?$filter=assignedLicenses/$count ne 0&$count=true&$top=2")).await;
    assert_eq!(first["@odata.count"], 3);
    assert_eq!(first["value"].as_array().unwrap().len(), 2);
    let second = get(first["@odata.nextLink"].as_str().unwrap().to_string()).await;
    assert!(second.get("@odata.count").is_none(), "{second}");
    assert_eq!(second["value"][0]["userPrincipalName"], "carol@contoso.com");
    let unlicensed =
        get(env.url("/v1.0/users?$filter=assignedLicenses/$count eq 0&$count=true")).await;
    assert_eq!(unlicensed["@odata.count"], 2);
}

#[tokio::test]
async fn other_user_filters_are_unsupported() {
    let env = start().await;
    let (status, body) = env.get("/v1.0/users?$filter=accountEnabled eq true").await;
    assert_graph_error(status, &body, 400, "Request_UnsupportedQuery");
    let (status, body) = env.get("/v1.0/users?$orderby=displayName").await;
    assert_graph_error(status, &body, 400, "Request_UnsupportedQuery");
}

#[tokio::test]
async fn user_by_upn_is_case_insensitive_and_by_id_works() {
    let env = start().await;
    let (status, body) = env.get("/v1.0/users/ADELE@Contoso.com").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], "11111111-1111-4111-8111-111111111111");
    let (status, body) = env
        .get("/v1.0/users/11111111-1111-4111-8111-111111111111?$select=mail")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["mail"], "adele@contoso.com");
    assert!(body.get("displayName").is_none());
}

#[tokio::test]
async fn unknown_user_is_request_resource_not_found() {
    let env = start().await;
    let (status, body) = env.get("/v1.0/users/ghost@contoso.com").await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound");
}

#[tokio::test]
async fn organization_lists_verified_domains() {
    let env = start().await;
    let (status, body) = env.get("/v1.0/organization").await;
    assert_eq!(status, 200, "{body}");
    let org = &body["value"][0];
    assert_eq!(org["id"], TENANT);
    let domains = org["verifiedDomains"].as_array().unwrap();
    let default: Vec<&Value> = domains.iter().filter(|d| d["isDefault"] == true).collect();
    assert_eq!(default.len(), 1);
    assert_eq!(default[0]["name"], "contoso.com");
    assert_eq!(domains[0]["isInitial"], true);
}

#[tokio::test]
async fn directory_without_user_read_all_is_authorization_request_denied() {
    let env = start().await;
    let token = env.token_for("app-nodir").await;
    let (status, body) = env.send(Method::GET, "/v1.0/users", &token, None).await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
    let (status, body) = env
        .send(Method::GET, "/v1.0/organization", &token, None)
        .await;
    assert_graph_error(status, &body, 403, "Authorization_RequestDenied");
}

#[tokio::test]
async fn organization_by_id_is_the_object_and_other_ids_are_404() {
    let env = start().await;
    let (status, body) = env.get(&format!("/v1.0/organization/{TENANT}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], TENANT);
    assert!(body["verifiedDomains"].is_array());
    let (status, body) = env
        .get("/v1.0/organization/00000000-0000-4000-8000-000000000000")
        .await;
    assert_graph_error(status, &body, 404, "Request_ResourceNotFound");
}
