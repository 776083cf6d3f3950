//! Shared harness for the emulator's integration tests: a small fixture tenant, an emulator on
//! 127.0.0.1:0, and helpers to fetch tokens and call Graph through reqwest.

#![allow(dead_code)]

use graph_emulator::{EmulatorOptions, RunningEmulator, Scenario};
use reqwest::Method;
use serde_json::{Value, json};

pub const TENANT: &str = "b0d5e3c2-0000-4000-8000-000000000001";
pub const SKU: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
pub const SECRET: &str = "s3cret~value";
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";

/// `n` contacts for a user, each with a distinct address.
fn contacts(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "givenName": format!("{prefix}{i}"),
                "surname": "Tester",
                "displayName": format!("{prefix}{i} Tester"),
                "emailAddresses": [{"name": format!("{prefix}{i}"), "address": format!("{prefix}{i}@fabrikam.com")}],
                "businessPhones": ["+1 425 555 0100"],
                "companyName": "Fabrikam"
            })
        })
        .collect()
}

pub fn fixture_json() -> Value {
    json!({
      "tenants": [{
        "tenantId": TENANT,
        "domains": [
          {"id": "contoso.onmicrosoft.com", "isInitial": true, "isDefault": false},
          {"id": "contoso.com", "isInitial": false, "isDefault": true}
        ],
        "apps": [
          {"clientId": "app-full", "clientSecret": SECRET, "roles": ["Contacts.ReadWrite", "User.Read.All"]},
          {"clientId": "app-nocontacts", "clientSecret": SECRET, "roles": ["User.Read.All"]},
          {"clientId": "app-nodir", "clientSecret": SECRET, "roles": ["Contacts.ReadWrite"]},
          {"clientId": "app-readonly", "clientSecret": SECRET, "roles": ["Contacts.Read", "User.Read.All"]},
          {"clientId": "app-scoped", "clientSecret": SECRET, "roles": ["Contacts.ReadWrite", "User.Read.All"],
           "mailboxScope": ["adele@contoso.com"]}
        ],
        "users": [
          {"userPrincipalName": "hub@contoso.com", "mail": "hub@contoso.com", "displayName": "Hub",
           "accountEnabled": false,
           "contactFolders": [{"displayName": "All Contacts", "childFolders": [{"displayName": "Archive"}]},
                              {"displayName": "Bob's Folder", "contacts": contacts("b", 12),
                               "contactGroups": [{"displayName": "Team A"}, {"displayName": "Team B"}]}]},
          {"id": "11111111-1111-4111-8111-111111111111", "userPrincipalName": "adele@contoso.com",
           "mail": "adele@contoso.com", "displayName": "Adele Vance",
           "assignedLicenses": [{"skuId": SKU}], "contacts": contacts("a", 25)},
          {"userPrincipalName": "bob@contoso.com", "displayName": "Bob NoMailbox", "mailbox": false,
           "assignedLicenses": [{"skuId": SKU}]},
          {"userPrincipalName": "carol@contoso.com", "displayName": "Carol Vance",
           "assignedLicenses": [{"skuId": SKU}], "contacts": contacts("c", 3)},
          {"userPrincipalName": "dave@contoso.com", "displayName": "Dave Unlicensed"}
        ]
      }]
    })
}

pub fn fixture() -> Scenario {
    Scenario::from_json(&fixture_json().to_string()).expect("fixture is valid")
}

pub struct Env {
    pub emu: RunningEmulator,
    pub http: reqwest::Client,
}

pub async fn start() -> Env {
    start_with(fixture()).await
}

pub async fn start_with(scenario: Scenario) -> Env {
    let emu = graph_emulator::start(scenario, EmulatorOptions::default())
        .await
        .expect("emulator starts");
    Env {
        emu,
        http: reqwest::Client::new(),
    }
}

impl Env {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emu.url())
    }

    /// Raw token request with the given form fields.
    pub async fn token_request(&self, tenant: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(&format!("/{tenant}/oauth2/v2.0/token")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(form))
            .send()
            .await
            .unwrap()
    }

    pub async fn token_for(&self, client_id: &str) -> String {
        let resp = self
            .token_request(
                TENANT,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id),
                    ("client_secret", SECRET),
                    ("scope", GRAPH_SCOPE),
                ],
            )
            .await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_string()
    }

    pub async fn token(&self) -> String {
        self.token_for("app-full").await
    }

    /// A request with the full app's token; `path` is relative to the emulator root.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let token = self.token().await;
        self.send(reqwest::Method::GET, path, &token, None).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.url(path)
        };
        let mut req = self.http.request(method, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, value)
    }
}

/// `application/x-www-form-urlencoded` body (reqwest's `form` feature is not enabled).
pub fn form_body(form: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in form {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Asserts a Graph error envelope with this status and code.
pub fn assert_graph_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "body: {body}");
    assert_eq!(body["error"]["code"], want_code, "body: {body}");
    assert!(
        body["error"]["innerError"]["request-id"].is_string(),
        "body: {body}"
    );
    assert!(
        body["error"]["innerError"]["date"].is_string(),
        "body: {body}"
    );
}

/// `POST /v1.0/$batch` with this body.
pub async fn batch(env: &Env, token: &str, body: Value) -> (u16, Value) {
    env.send(Method::POST, "/v1.0/$batch", token, Some(body))
        .await
}

/// A batch answer's items by id.
pub fn by_id(body: &Value) -> std::collections::HashMap<String, Value> {
    body["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_owned(), r.clone()))
        .collect()
}

/// Follows a delta round from `first` to its deltaLink: (rows, deltaLink, pages).
pub async fn follow_round(
    env: &Env,
    token: &str,
    first: &str,
    prefer: Option<&str>,
) -> (Vec<Value>, String, usize) {
    let mut rows = vec![];
    let mut url = first.to_owned();
    let mut pages = 0;
    loop {
        let mut req = env.http.get(&url).bearer_auth(token);
        if let Some(p) = prefer {
            req = req.header("prefer", p);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "{url}");
        let body: Value = resp.json().await.unwrap();
        pages += 1;
        rows.extend(body["value"].as_array().unwrap().iter().cloned());
        if let Some(next) = body["@odata.nextLink"].as_str() {
            assert!(
                next.starts_with(&env.emu.url()) && next.contains("$skiptoken="),
                "{next}"
            );
            url = next.to_owned();
        } else {
            let delta = body["@odata.deltaLink"]
                .as_str()
                .expect("a round ends with a deltaLink");
            assert!(
                delta.starts_with(&env.emu.url()) && delta.contains("$deltatoken="),
                "{delta}"
            );
            return (rows, delta.to_owned(), pages);
        }
    }
}
