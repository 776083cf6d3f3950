//! Stage one (ripgrep's `LowArgs`): the environment snapshot → what the user wrote, parsed and
//! validated, for every shape of docs/compatibility.md §1 — the config JSON (and its older
//! top-level shape), the tenants JSON, the single-tenant variables, the test-user map — plus our
//! additions (other credentials, clouds and URLs).
//!
//! It never fails early: every problem is recorded and parsing goes on, so stage two can add its
//! own and the user sees them all at once (I6). It must never read a file, the network or the
//! process environment (only the [`Env`] it is given), and never echo a secret: JSON errors carry
//! positions, not content.

use std::path::PathBuf;

use graph::Cloud;
use url::Url;

use super::credential::CredentialConfig;
use super::env::{
    APP_BUDGET, BATCH, CA_FILE, CLIENT_ID, CLIENT_SECRET, CONFIG_JSON, DRY_RUN, Env, GAB_USER_ID,
    GRAPH_URL, LOGIN_URL, MAX_RUN_MINUTES, TENANT_ID, TENANTS_JSON, TEST_USERS_JSON,
};
use super::ordered_json::{JsonObject, OrderedJson, parse_json};
use super::problem::{Findings, Problem};
use super::scope::ScopeRules;
use super::tenant_fields::{
    GRAPH_URL_FIX, LOGIN_URL_FIX, Place, TENANT_FIELDS, TenantOptions, is_tenant_field, lookup,
    read_field, user_list,
};
use super::values::{
    APP_BUDGET_FIX, MAX_RUN_MINUTES_FIX, check_root_url, parse_app_budget, parse_flag,
    parse_flag_str, parse_minutes,
};

/// Which of the three shapes of docs/compatibility.md §1 configured the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    ConfigJson,
    TenantsJson,
    SingleTenantVariables,
}

impl Source {
    pub fn variable(self) -> &'static str {
        match self {
            Self::ConfigJson => CONFIG_JSON,
            Self::TenantsJson => TENANTS_JSON,
            Self::SingleTenantVariables => {
                "AUTOMATION_SYNCCONTACTS_TENANT_ID (and the other single-tenant variables)"
            }
        }
    }
}

/// Stage one's result: the configuration as written, with every problem found so far.
#[derive(Clone, Debug)]
pub struct LowConfig {
    pub source: Source,
    pub dry_run: bool,
    /// Which setting turned dry-run on (for the log), if any.
    pub dry_run_origin: Option<String>,
    /// Every tenant read, complete or not (a missing field is a recorded problem).
    pub tenants: Vec<LowTenant>,
    pub test_user_map: Option<TestUserMap>,
    /// `AUTOMATION_SYNCCONTACTS_LOGIN_URL` / `_GRAPH_URL`: roots for every tenant.
    pub login_url: Option<Url>,
    pub graph_url: Option<Url>,
    /// `AUTOMATION_SYNCCONTACTS_CA_FILE`, not read yet.
    pub ca_file: Option<PathBuf>,
    /// Group writes into `$batch` requests (default; `AUTOMATION_SYNCCONTACTS_BATCH=false` turns it off).
    pub batch_writes: bool,
    /// `AUTOMATION_SYNCCONTACTS_MAX_RUN_MINUTES`.
    pub max_run: Option<std::time::Duration>,
    /// `AUTOMATION_SYNCCONTACTS_APP_BUDGET`: requests per 10 s.
    pub app_budget: Option<u32>,
    pub(super) found: Findings,
}

/// One tenant as its source wrote it; fields the user left out are `None` (a problem when
/// required). The `TENANT_FIELDS` setters fill it.
#[derive(Clone, Debug, Default)]
pub struct LowTenant {
    /// Position in its source (0-based), for messages.
    pub index: usize,
    /// The variable it came from.
    pub variable: &'static str,
    /// Where it came from, e.g. `AUTOMATION_SYNCCONTACTS_CONFIG_JSON MicrosoftTenants[1]`.
    pub origin: String,
    /// How problems name it, e.g. `tenant #2 (MicrosoftTenants[1], TenantId "t2")`.
    pub label: String,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    /// Every credential field given, in table order (exactly one is valid).
    pub credentials: Vec<CredentialConfig>,
    pub hub: Option<String>,
    pub primary_domain: Option<String>,
    pub tenant_domain: Option<String>,
    /// Its own non-empty `TestUserList`.
    pub test_users: Option<Vec<String>>,
    pub cloud: Cloud,
    pub login_url: Option<Url>,
    pub graph_url: Option<Url>,
    pub options: TenantOptions,
    /// `IncludeGroups`, `ExcludeGroups`, `ExcludeUsers`.
    pub rules: ScopeRules,
}

/// The test-user map (`TestUserListByTenant` or its variable), validated.
#[derive(Clone, Debug)]
pub struct TestUserMap {
    /// Where it came from, for `check` and logs.
    pub origin: String,
    /// Keys in document order (the first match wins), each with its users (never empty: a key
    /// that lists none is refused).
    pub entries: Vec<(String, Vec<String>)>,
}

impl LowConfig {
    /// Stage one. Never fails: problems are recorded for stage two to report with its own.
    pub fn parse(env: &Env) -> Self {
        let parser = Parser {
            env,
            found: Findings::default(),
            dry_run: None,
            json_test_map: None,
            tenants: Vec::new(),
        };
        parser.parse()
    }

    /// The problems found so far (stage two adds its own).
    pub fn problems(&self) -> &[Problem] {
        &self.found.problems
    }
}

/// Config JSON fields that belong to the run, not to a tenant.
const RUN_FIELDS: [&str; 3] = ["MicrosoftTenants", "DryRun", "TestUserListByTenant"];

const DRY_RUN_FIX: &str =
    "use true/false (or 1/0, yes/no, y/n); anything else is refused so a typo never causes writes";
const TEST_MAP_FIX: &str =
    r#"map a tenant key to its test users: {"contoso.onmicrosoft.com": ["user1@contoso.com"]}"#;

struct Parser<'a> {
    env: &'a Env,
    found: Findings,
    /// DryRun and the setting it came from.
    dry_run: Option<(bool, String)>,
    /// `TestUserListByTenant` of the config JSON (the variable overrides it).
    json_test_map: Option<Vec<(String, OrderedJson)>>,
    tenants: Vec<LowTenant>,
}

impl Parser<'_> {
    fn parse(mut self) -> LowConfig {
        let env = self.env;
        let source = if let Some(text) = env.non_blank(CONFIG_JSON) {
            self.warn_ignored(
                CONFIG_JSON,
                &[
                    TENANTS_JSON,
                    TENANT_ID,
                    CLIENT_ID,
                    CLIENT_SECRET,
                    GAB_USER_ID,
                ],
            );
            match parse_json(CONFIG_JSON, text) {
                Err(p) => self.found.problems.push(p),
                Ok(OrderedJson::Object(top)) => self.read_config_object(&top),
                Ok(other) => self.found.problem(
                    CONFIG_JSON,
                    None,
                    None,
                    format!("must be a JSON object, found {}", other.kind()),
                    r#"use {"MicrosoftTenants": [{"TenantId": "…", "ClientId": "…", "ClientSecret": "…", "GlobalAddressBookUserId": "…"}], "DryRun": "true"}"#,
                ),
            }
            // Safety: the variable may only turn dry-run on when the config JSON is used (the
            // script ignored it there; honouring a `true` can never cause a write).
            if let Some(v) = self.flag_var(DRY_RUN) {
                let json_dry = self.dry_run.as_ref().is_some_and(|d| d.0);
                if v && !json_dry {
                    self.dry_run = Some((true, DRY_RUN.into()));
                } else if !v && json_dry {
                    self.found.warn(format!(
                        "{DRY_RUN} is false but the config JSON says DryRun true: running as a dry run"
                    ));
                }
            }
            Source::ConfigJson
        } else if let Some(text) = env.non_blank(TENANTS_JSON) {
            self.warn_ignored(
                TENANTS_JSON,
                &[TENANT_ID, CLIENT_ID, CLIENT_SECRET, GAB_USER_ID],
            );
            match parse_json(TENANTS_JSON, text) {
                Err(p) => self.found.problems.push(p),
                Ok(j) => self.read_tenant_list(TENANTS_JSON, "", &j, &LowTenant::default()),
            }
            if let Some(v) = self.flag_var(DRY_RUN) {
                self.dry_run = Some((v, DRY_RUN.into()));
            }
            Source::TenantsJson
        } else {
            let vars = [TENANT_ID, CLIENT_ID, CLIENT_SECRET, GAB_USER_ID];
            if vars.iter().all(|v| env.non_blank(v).is_none()) {
                self.found.problem(
                    CONFIG_JSON,
                    None,
                    None,
                    "no tenants configured",
                    format!(
                        "set {CONFIG_JSON} (preferred), or {TENANTS_JSON}, or all four of {TENANT_ID}, \
                         {CLIENT_ID}, {CLIENT_SECRET} and {GAB_USER_ID}"
                    ),
                );
            } else {
                let tenant = self.read_single_tenant_vars();
                self.tenants.push(tenant);
            }
            if let Some(v) = self.flag_var(DRY_RUN) {
                self.dry_run = Some((v, DRY_RUN.into()));
            }
            Source::SingleTenantVariables
        };

        let test_user_map = self.test_user_map();
        let login_url = self.url_var(LOGIN_URL, LOGIN_URL_FIX);
        let graph_url = self.url_var(GRAPH_URL, GRAPH_URL_FIX);
        let ca_file = env.non_blank(CA_FILE).map(|p| PathBuf::from(p.trim()));
        let batch_writes = match env.non_blank(BATCH).map(parse_flag_str) {
            None => true,
            Some(Ok(b)) => b,
            Some(Err(msg)) => {
                self.found
                    .problem(BATCH, None, None, msg, "use true (the default) or false");
                true
            }
        };
        let max_run = self.value_var(MAX_RUN_MINUTES, parse_minutes, MAX_RUN_MINUTES_FIX);
        let app_budget = self.value_var(APP_BUDGET, parse_app_budget, APP_BUDGET_FIX);
        let (dry_run, dry_run_origin) = match self.dry_run {
            Some((true, origin)) => (true, Some(origin)),
            _ => (false, None),
        };
        LowConfig {
            source,
            dry_run,
            dry_run_origin,
            tenants: self.tenants,
            test_user_map,
            login_url,
            graph_url,
            ca_file,
            batch_writes,
            max_run,
            app_budget,
            found: self.found,
        }
    }

    fn warn_ignored(&mut self, winner: &str, others: &[&str]) {
        for other in others {
            if self.env.non_blank(other).is_some() {
                self.found.warn(format!(
                    "{other} is set but ignored: {winner} takes precedence"
                ));
            }
        }
    }

    fn read_config_object(&mut self, top: &JsonObject) {
        let var = CONFIG_JSON;
        let at_top = Place {
            variable: var,
            tenant: None,
        };
        if let Some(v) = lookup(&mut self.found, at_top, top, "DryRun") {
            match parse_flag(v) {
                Ok(Some(b)) => self.dry_run = Some((b, format!("{var} DryRun"))),
                Ok(None) => {}
                Err(msg) => self
                    .found
                    .problem(var, None, Some("DryRun"), msg, DRY_RUN_FIX),
            }
        }
        if let Some(v) = lookup(&mut self.found, at_top, top, "TestUserListByTenant") {
            match v {
                OrderedJson::Object(m) => self.json_test_map = Some(m.clone()),
                OrderedJson::Null => {}
                other => self.found.problem(
                    var,
                    None,
                    Some("TestUserListByTenant"),
                    format!("must be an object, found {}", other.kind()),
                    TEST_MAP_FIX,
                ),
            }
        }
        let tenant_fields_at_top: Vec<&str> = top
            .iter()
            .filter(|(k, _)| {
                TENANT_FIELDS
                    .iter()
                    .any(|f| !f.top_level && f.name.eq_ignore_ascii_case(k.trim()))
            })
            .map(|(k, _)| k.as_str())
            .collect();
        let tenants = lookup(&mut self.found, at_top, top, "MicrosoftTenants")
            .filter(|list| !matches!(list, OrderedJson::Null));
        // Tenant fields the top level may give as every tenant's default (in the older shape the
        // top level is the tenant itself, read below).
        let mut defaults = LowTenant::default();
        if tenants.is_some() || tenant_fields_at_top.is_empty() {
            for field in TENANT_FIELDS.iter().filter(|f| f.top_level) {
                read_field(&mut self.found, at_top, top, field, &mut defaults);
            }
        }
        match tenants {
            Some(list) => {
                if !tenant_fields_at_top.is_empty() {
                    self.found.problem(
                        var,
                        None,
                        Some(&tenant_fields_at_top.join(", ")),
                        "tenant fields at the top level next to MicrosoftTenants would be ignored",
                        "move them into an entry of MicrosoftTenants (or drop MicrosoftTenants to use the older single-tenant shape)",
                    );
                }
                for (k, _) in top {
                    if !is_run_field(k) && !is_tenant_field(k) {
                        self.found
                            .warn(format!("{var}: unknown top-level field \"{k}\" is ignored"));
                    }
                }
                self.read_tenant_list(var, "MicrosoftTenants", list, &defaults);
            }
            None => {
                if tenant_fields_at_top.is_empty() {
                    self.found.problem(
                        var,
                        None,
                        Some("MicrosoftTenants"),
                        "no tenants configured",
                        r#"add "MicrosoftTenants": [{"TenantId": "…", "ClientId": "…", "ClientSecret": "…", "GlobalAddressBookUserId": "…"}]"#,
                    );
                } else {
                    // The older shape: the top level is the one tenant.
                    let slot = Slot {
                        var,
                        at: "",
                        index: 0,
                        count: 1,
                    };
                    let tenant = self.read_tenant(slot, top, &LowTenant::default(), is_run_field);
                    self.tenants.push(tenant);
                }
            }
        }
    }

    fn read_tenant_list(
        &mut self,
        var: &'static str,
        path: &str,
        list: &OrderedJson,
        defaults: &LowTenant,
    ) {
        let field = (!path.is_empty()).then_some(path);
        // PowerShell's ConvertTo-Json turns a one-element array into its element; accept that.
        let items: Vec<&OrderedJson> = match list {
            OrderedJson::Array(items) => items.iter().collect(),
            OrderedJson::Object(_) => vec![list],
            other => {
                self.found.problem(
                    var,
                    None,
                    field,
                    format!("must be an array of tenant objects, found {}", other.kind()),
                    r#"use [{"TenantId": "…", "ClientId": "…", "ClientSecret": "…", "GlobalAddressBookUserId": "…"}]"#,
                );
                return;
            }
        };
        if items.is_empty() {
            self.found.problem(
                var,
                None,
                field,
                "no tenants configured (the list is empty)",
                r#"add a tenant: {"TenantId": "…", "ClientId": "…", "ClientSecret": "…", "GlobalAddressBookUserId": "…"}"#,
            );
        }
        let n = items.len();
        for (i, item) in items.into_iter().enumerate() {
            let at = if path.is_empty() {
                format!("[{i}]")
            } else {
                format!("{path}[{i}]")
            };
            match item {
                OrderedJson::Object(obj) => {
                    let slot = Slot {
                        var,
                        at: &at,
                        index: i,
                        count: n,
                    };
                    let tenant = self.read_tenant(slot, obj, defaults, |_| false);
                    self.tenants.push(tenant);
                }
                other => self.found.problem(
                    var,
                    Some(&format!("tenant #{} ({at})", i + 1)),
                    None,
                    format!("must be an object, found {}", other.kind()),
                    r#"each tenant is {"TenantId": "…", "ClientId": "…", "ClientSecret": "…", "GlobalAddressBookUserId": "…"}"#,
                ),
            }
        }
    }

    /// One tenant object: every row of [`TENANT_FIELDS`] over `defaults`, then the rules that span
    /// fields. Keys that are neither tenant fields nor `also_known` are warned about.
    fn read_tenant(
        &mut self,
        slot: Slot<'_>,
        obj: &JsonObject,
        defaults: &LowTenant,
        also_known: fn(&str) -> bool,
    ) -> LowTenant {
        let Slot {
            var,
            at,
            index,
            count,
        } = slot;
        let tenant_id_hint = obj
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("TenantId"))
            .and_then(|(_, v)| match v {
                OrderedJson::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                _ => None,
            });
        let who = tenant_label(index, count, at, tenant_id_hint.as_deref());
        for (k, _) in obj {
            if !is_tenant_field(k) && !also_known(k) {
                self.found
                    .warn(format!("{var}, {who}: unknown field \"{k}\" is ignored"));
            }
        }
        let mut tenant = LowTenant {
            index,
            variable: var,
            origin: if at.is_empty() {
                var.to_owned()
            } else {
                format!("{var} {at}")
            },
            label: who.clone(),
            ..defaults.clone()
        };
        let place = Place {
            variable: var,
            tenant: Some(&who),
        };
        let given: Vec<bool> = TENANT_FIELDS
            .iter()
            .map(|field| read_field(&mut self.found, place, obj, field, &mut tenant))
            .collect();
        for (field, given) in TENANT_FIELDS.iter().zip(given) {
            if field.required && !given {
                self.found
                    .problem(var, Some(&who), Some(field.name), "is missing", field.fix);
            }
        }
        if tenant.credentials.is_empty() {
            self.found.problem(
                var,
                Some(&who),
                Some("ClientSecret"),
                "no credential given",
                "give exactly one of ClientSecret, ClientCertificatePath, ClientAssertionFile or ClientAssertionEnv",
            );
        } else if tenant.credentials.len() > 1 {
            let names: Vec<&str> = tenant
                .credentials
                .iter()
                .map(CredentialConfig::field)
                .collect();
            self.found.problem(
                var,
                Some(&who),
                Some(&names.join(", ")),
                "more than one credential given",
                "keep exactly one of ClientSecret, ClientCertificatePath, ClientAssertionFile or ClientAssertionEnv",
            );
        }
        tenant
    }

    fn read_single_tenant_vars(&mut self) -> LowTenant {
        let env = self.env;
        let who = "the single-tenant variables".to_owned();
        let get = |name: &str| env.non_blank(name).map(|s| s.trim().to_owned());
        let fixes = [
            (
                TENANT_ID,
                "set it to the directory (tenant) id or its .onmicrosoft.com domain",
            ),
            (
                CLIENT_ID,
                "set it to the application (client) id of the app registration",
            ),
            (
                CLIENT_SECRET,
                "set it to a client secret of the app registration (a masked CI variable)",
            ),
            (
                GAB_USER_ID,
                "set it to the UPN of the shared mailbox that holds \"All Contacts\"",
            ),
        ];
        for (name, fix) in fixes {
            if get(name).is_none() {
                self.found.problem(
                    name,
                    Some(&who),
                    None,
                    "is not set; the four single-tenant variables form one tenant together",
                    fix,
                );
            }
        }
        LowTenant {
            index: 0,
            variable: TENANT_ID,
            origin: TENANT_ID.to_owned(),
            label: who,
            tenant_id: get(TENANT_ID),
            client_id: get(CLIENT_ID),
            credentials: get(CLIENT_SECRET)
                .map(|s| CredentialConfig::Secret(graph::Secret::new(s)))
                .into_iter()
                .collect(),
            hub: get(GAB_USER_ID),
            ..LowTenant::default()
        }
    }

    /// The test-user map: the variable overrides the config JSON's map. Its values are validated
    /// once, whatever tenant uses them.
    fn test_user_map(&mut self) -> Option<TestUserMap> {
        let (origin, entries) = if let Some(text) = self.env.non_blank(TEST_USERS_JSON) {
            match parse_json(TEST_USERS_JSON, text) {
                Err(p) => {
                    self.found.problems.push(p);
                    return None;
                }
                Ok(OrderedJson::Object(m)) => {
                    if self.json_test_map.is_some() {
                        self.found.warn(format!(
                            "{TEST_USERS_JSON} overrides TestUserListByTenant of {CONFIG_JSON}"
                        ));
                    }
                    (TEST_USERS_JSON.to_owned(), m)
                }
                Ok(other) => {
                    self.found.problem(
                        TEST_USERS_JSON,
                        None,
                        None,
                        format!("must be a JSON object, found {}", other.kind()),
                        TEST_MAP_FIX,
                    );
                    return None;
                }
            }
        } else {
            (
                format!("{CONFIG_JSON} TestUserListByTenant"),
                self.json_test_map.take()?,
            )
        };
        let place = Place {
            variable: &origin,
            tenant: None,
        };
        let mut valid = Vec::new();
        for (k, v) in &entries {
            let field = format!("\"{k}\"");
            match user_list(&mut self.found, place, &field, v) {
                Some(users) if !users.is_empty() => valid.push((k.clone(), users)),
                // Refused items are already reported; a key with nothing left would have meant
                // "every user" to the script — test mode fails closed instead.
                Some(_) | None if list_has_items(v) => {}
                _ => self.found.problem(
                    &origin,
                    None,
                    Some(&field),
                    "lists no users: an empty test-user list would sync every licensed user of the tenant",
                    r#"list its test users, e.g. ["user1@contoso.com"], or remove the key"#,
                ),
            }
        }
        Some(TestUserMap {
            origin,
            entries: valid,
        })
    }

    fn flag_var(&mut self, name: &str) -> Option<bool> {
        let v = self.env.non_blank(name)?;
        match parse_flag_str(v) {
            Ok(b) => Some(b),
            Err(msg) => {
                self.found.problem(name, None, None, msg, DRY_RUN_FIX);
                None
            }
        }
    }

    /// A variable read by `parse`; a refused value is a problem with `fix`.
    fn value_var<T>(
        &mut self,
        name: &str,
        parse: fn(&str) -> Result<T, String>,
        fix: &str,
    ) -> Option<T> {
        let v = self.env.non_blank(name)?;
        parse(v)
            .map_err(|msg| self.found.problem(name, None, None, msg, fix))
            .ok()
    }

    fn url_var(&mut self, name: &str, fix: &str) -> Option<Url> {
        let v = self.env.non_blank(name)?;
        match check_root_url(v) {
            Ok(u) => Some(u),
            Err(msg) => {
                self.found.problem(name, None, None, msg, fix);
                None
            }
        }
    }
}

/// Where a tenant object sits in its source, for its origin and label.
#[derive(Clone, Copy)]
struct Slot<'a> {
    var: &'static str,
    /// `MicrosoftTenants[1]`, `[0]`, or empty for the older shape (the top level is the tenant).
    at: &'a str,
    index: usize,
    /// How many tenants the list holds.
    count: usize,
}

/// Whether a list value holds any non-blank item (refused items are reported on their own).
fn list_has_items(v: &OrderedJson) -> bool {
    match v {
        OrderedJson::Array(items) => items
            .iter()
            .any(|i| !matches!(i, OrderedJson::String(s) if s.trim().is_empty())),
        OrderedJson::String(s) => !s.trim().is_empty(),
        OrderedJson::Null => false,
        // Another type is refused by `user_list` already.
        _ => true,
    }
}

fn is_run_field(key: &str) -> bool {
    RUN_FIELDS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(key.trim()))
}

fn tenant_label(index: usize, count: usize, at: &str, tenant_id: Option<&str>) -> String {
    let mut s = if count > 1 || !at.is_empty() {
        format!("tenant #{}", index + 1)
    } else {
        "tenant".to_owned()
    };
    let mut inner = Vec::new();
    if !at.is_empty() {
        inner.push(at.to_owned());
    }
    if let Some(t) = tenant_id {
        inner.push(format!("TenantId \"{t}\""));
    }
    if !inner.is_empty() {
        s.push_str(&format!(" ({})", inner.join(", ")));
    }
    s
}
