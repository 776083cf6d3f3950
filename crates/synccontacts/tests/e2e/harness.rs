//! The small harness: scenario builders, an emulator per test, and a runner for the real binary
//! with a cleared environment (only what the test sets, plus PATH-free basics).

#![allow(dead_code, reason = "each test uses a different subset")]

use std::collections::BTreeMap;

use graph_emulator::{EmulatorOptions, RunningEmulator, Scenario, Stats};
use serde_json::{Map, Value, json};

/// The client secret of the test app: a canary searched for in every output (I7).
pub const SECRET: &str = "canary-Secret-9f8e7d6c5b4a~x";
pub const TENANT: &str = "b0d5e3c2-0000-4000-8000-000000000001";
pub const TENANT_B: &str = "b0d5e3c2-0000-4000-8000-00000000000b";
pub const CLIENT: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
pub const HUB: &str = "hub@contoso.com";
pub const E3: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";

// ----- scenario builders -----

pub fn contact(name: &str, email: Option<&str>, modified: &str) -> Map<String, Value> {
    let mut c = Map::new();
    c.insert("displayName".into(), json!(name));
    if let Some((g, s)) = name.split_once(' ') {
        c.insert("givenName".into(), json!(g));
        c.insert("surname".into(), json!(s));
    }
    if let Some(e) = email {
        c.insert(
            "emailAddresses".into(),
            json!([{"name": name, "address": e}]),
        );
    }
    c.insert("lastModifiedDateTime".into(), json!(modified));
    c
}

pub fn with(mut c: Map<String, Value>, key: &str, value: Value) -> Map<String, Value> {
    c.insert(key.into(), value);
    c
}

pub fn tag4(sync_id: &str, created_by: &str) -> String {
    format!(
        "SyncId={sync_id};CreatedBy={created_by};LastUpdatedAt=2026-01-01T00:00:00.0000000Z;LastUpdatedBy={created_by}"
    )
}

pub fn tag2(sync_id: &str, created_by: &str) -> String {
    format!("SyncId={sync_id};CreatedBy={created_by}")
}

pub fn user(upn: &str, contacts: Vec<Map<String, Value>>) -> Value {
    json!({
        "userPrincipalName": upn,
        "mail": upn,
        "displayName": upn.split('@').next().unwrap(),
        "assignedLicenses": [{"skuId": E3}],
        "contacts": contacts,
    })
}

pub fn hub_with(all_contacts: Option<Vec<Map<String, Value>>>) -> Value {
    let folders = match all_contacts {
        Some(c) => json!([{"displayName": "All Contacts", "contacts": c}]),
        None => json!([]),
    };
    json!({
        "userPrincipalName": HUB,
        "mail": HUB,
        "displayName": "Contacts hub",
        "assignedLicenses": [],
        "contactFolders": folders,
    })
}

pub fn tenant_json(tenant_id: &str, users: Vec<Value>) -> Value {
    json!({
        "tenantId": tenant_id,
        "domains": [
            {"id": "contoso.onmicrosoft.com", "isInitial": true, "isDefault": false},
            {"id": "contoso.com", "isInitial": false, "isDefault": true}
        ],
        "apps": [{
            "clientId": CLIENT,
            "clientSecret": SECRET,
            "roles": ["Contacts.ReadWrite", "User.Read.All"]
        }],
        "users": users,
    })
}

/// A generated tenant (`graph-emulator generate`) under the harness's tenant, app and secret, so
/// [`one_tenant`] reaches it.
pub fn generated(opts: &graph_emulator::GenerateOptions) -> Scenario {
    let mut v = serde_json::to_value(graph_emulator::generate(opts)).unwrap();
    let t = &mut v["tenants"][0];
    t["tenantId"] = json!(TENANT);
    t["apps"][0]["clientId"] = json!(CLIENT);
    t["apps"][0]["clientSecret"] = json!(SECRET);
    serde_json::from_value(v).unwrap()
}

pub fn scenario(users: Vec<Value>) -> Scenario {
    scenario_of(vec![tenant_json(TENANT, users)])
}

pub fn scenario_of(tenants: Vec<Value>) -> Scenario {
    serde_json::from_value(json!({ "tenants": tenants })).expect("valid scenario")
}

// ----- the emulator -----

pub struct Emu {
    pub inner: RunningEmulator,
}

impl Emu {
    pub async fn start(s: Scenario) -> Self {
        let inner = graph_emulator::start(
            s,
            EmulatorOptions {
                seed: Some(7),
                ..EmulatorOptions::default()
            },
        )
        .await
        .expect("emulator starts");
        Self { inner }
    }

    pub fn url(&self) -> String {
        self.inner.url()
    }

    pub fn stats(&self) -> Stats {
        self.inner.stats()
    }

    pub fn reset(&self) {
        self.inner.reset_stats();
    }

    /// POST + PATCH + DELETE over all mailboxes (batch items counted one by one).
    pub fn writes(&self) -> u64 {
        self.stats()
            .by_mailbox
            .values()
            .map(|m| m.post + m.patch + m.delete)
            .sum()
    }

    /// Every request at all, tokens included.
    pub fn any_requests(&self) -> u64 {
        let s = self.stats();
        s.requests + s.token_requests
    }

    fn user_of(&self, upn: &str) -> graph_emulator::scenario::User {
        self.inner
            .state()
            .tenants
            .into_iter()
            .flat_map(|t| t.users)
            .find(|u| u.user_principal_name.eq_ignore_ascii_case(upn))
            .unwrap_or_else(|| panic!("no user {upn}"))
    }

    /// The default Contacts folder of `upn`.
    pub fn contacts(&self, upn: &str) -> Vec<Map<String, Value>> {
        self.user_of(upn).contacts
    }

    /// The hub's "All Contacts" folder (searched through the tree), if it exists.
    pub fn hub_contacts(&self) -> Option<Vec<Map<String, Value>>> {
        fn find(fs: &[graph_emulator::scenario::ContactFolder]) -> Option<Vec<Map<String, Value>>> {
            for f in fs {
                if f.display_name == "All Contacts" {
                    return Some(f.contacts.clone());
                }
                if let Some(c) = find(&f.child_folders) {
                    return Some(c);
                }
            }
            None
        }
        find(&self.user_of(HUB).contact_folders)
    }
}

// ----- reading contacts -----

pub fn s<'a>(c: &'a Map<String, Value>, k: &str) -> Option<&'a str> {
    c.get(k).and_then(Value::as_str)
}

pub fn email(c: &Map<String, Value>) -> Option<String> {
    c.get("emailAddresses")?
        .as_array()?
        .iter()
        .find_map(|e| e.get("address").and_then(Value::as_str))
        .map(str::to_lowercase)
}

pub fn notes(c: &Map<String, Value>) -> Option<&str> {
    s(c, "personalNotes")
}

pub fn sync_id(c: &Map<String, Value>) -> Option<String> {
    sync_engine::tags::parse(notes(c)?)
        .tags
        .map(|t| t.sync_id.as_str().to_owned())
}

pub fn user_text(c: &Map<String, Value>) -> String {
    sync_engine::tags::user_text(notes(c))
}

/// Contacts of one folder keyed by email (panics on a duplicate email: I2).
pub fn by_email(cs: &[Map<String, Value>]) -> BTreeMap<String, Map<String, Value>> {
    let mut out = BTreeMap::new();
    for c in cs {
        let e = email(c).expect("every test contact has an email");
        assert!(
            out.insert(e.clone(), c.clone()).is_none(),
            "duplicate contact {e} in one folder"
        );
    }
    out
}

// ----- running the binary -----

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Option<Value>,
}

impl Run {
    /// The last line on stdout (the run's summary, which names the exit code).
    pub fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }

    pub fn all_output(&self) -> String {
        format!(
            "{}\n{}\n{}",
            self.stdout,
            self.stderr,
            self.report
                .as_ref()
                .map(Value::to_string)
                .unwrap_or_default()
        )
    }

    pub fn tenant(&self, i: usize) -> &Value {
        &self.report.as_ref().expect("a report")["tenants"][i]
    }

    /// The report's actions as comparable tuples (SyncIds of creates are fresh per run, so they
    /// are left out).
    pub fn action_keys(&self) -> Vec<String> {
        let mut v: Vec<String> = self.report.as_ref().expect("a report")["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["actions"].as_array().unwrap().clone())
            .map(|a| {
                format!(
                    "{}|{}|{}|{}|{}|{}",
                    a["step"],
                    a["action"],
                    a["mailbox"],
                    a["displayName"],
                    a["email"],
                    a["changed"]
                )
            })
            .collect();
        v.sort();
        v
    }

    pub fn results(&self) -> Vec<String> {
        self.report.as_ref().expect("a report")["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["actions"].as_array().unwrap().clone())
            .map(|a| a["result"].as_str().unwrap().to_owned())
            .collect()
    }
}

pub type EnvVars = Vec<(String, String)>;

pub fn var(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

/// The tenants-JSON configuration of the default test tenant, pointed at `emu`.
pub fn tenant_entry(tenant: &str, secret: &str) -> Value {
    json!({
        "TenantId": tenant,
        "ClientId": CLIENT,
        "ClientSecret": secret,
        "GlobalAddressBookUserId": HUB,
    })
}

pub fn endpoints(emu: &Emu) -> EnvVars {
    vec![
        var("AUTOMATION_SYNCCONTACTS_LOGIN_URL", emu.url()),
        var("AUTOMATION_SYNCCONTACTS_GRAPH_URL", emu.url()),
    ]
}

pub fn one_tenant(emu: &Emu) -> EnvVars {
    let mut v = endpoints(emu);
    v.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([tenant_entry(TENANT, SECRET)]).to_string(),
    ));
    v
}

/// Runs the binary with exactly `env` (the environment is cleared) and `args`. For `sync`, a
/// `--report` file is added and parsed, unless `args` name their own.
pub async fn run(env: &EnvVars, args: &[&str]) -> Run {
    let env = env.clone();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || run_blocking(&env, &args))
        .await
        .expect("runner thread")
}

fn run_blocking(env: &EnvVars, args: &[String]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let report_path = dir.path().join("report.json");
    let mut cmd = assert_cmd::Command::cargo_bin("synccontacts").unwrap();
    cmd.env_clear();
    // The default state file (.synccontacts/state.sqlite) lands in this run's own folder: a test
    // that keeps state between runs names it (AUTOMATION_SYNCCONTACTS_STATE).
    cmd.current_dir(dir.path());
    cmd.args(args);
    let is_sync = args.first().is_some_and(|a| a == "sync");
    if is_sync && !args.iter().any(|a| a == "--report") {
        cmd.arg("--report").arg(&report_path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.timeout(std::time::Duration::from_secs(120));
    let out = cmd.output().expect("binary runs");
    let report = std::fs::read(&report_path)
        .ok()
        .map(|b| serde_json::from_slice(&b).expect("report is JSON"));
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    }
}

pub async fn sync(env: &EnvVars, extra: &[&str]) -> Run {
    let mut args = vec!["sync", "--no-progress"];
    args.extend_from_slice(extra);
    run(env, &args).await
}

impl Emu {
    pub async fn start_with(s: Scenario, opts: EmulatorOptions) -> Self {
        let inner = graph_emulator::start(s, opts)
            .await
            .expect("emulator starts");
        Self { inner }
    }

    /// `POST /_emulator/users/{upn}/contacts/{cid}/touch` — a user's edit, mid-run.
    pub async fn touch(&self, upn: &str, cid: &str, body: &Value) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let body = body.to_string();
        let path = format!(
            "/_emulator/users/{upn}/contacts/{}/touch",
            url::form_urlencoded::byte_serialize(cid.as_bytes()).collect::<String>()
        );
        let req = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.inner.addr(),
            body.len()
        );
        let mut s = tokio::net::TcpStream::connect(self.inner.addr())
            .await
            .unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 200"), "touch failed: {resp}");
    }
}

/// The hub (no "All Contacts" yet) and two users with one contact each: the smallest tenant
/// that exercises both steps.
pub fn simple_users() -> Vec<serde_json::Value> {
    vec![
        hub_with(None),
        user(
            "adele@contoso.com",
            vec![contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-01-01T00:00:00Z",
            )],
        ),
        user(
            "megan@contoso.com",
            vec![contact(
                "Bianca Pisani",
                Some("bianca@fabrikam.com"),
                "2026-01-01T00:00:00Z",
            )],
        ),
    ]
}
