//! Stage one of configuration: the environment → a validated [`Config`] for every tenant, with no
//! network access at all (SPEC §2.1 and §6).
//!
//! It accepts every shape the PowerShell script accepted (the config JSON and its older top-level
//! shape, the tenants JSON, the single-tenant variables, the test-user map) plus our additions
//! (other credentials, clouds and URLs). Every tenant is validated before anything else happens and
//! *all* problems are reported at once, each naming the variable, the tenant and the field and
//! saying what to do (I6). This module must never make a request, never echo a secret value (the
//! JSON parser's messages carry positions, not content), and never read the process environment
//! itself: it reads an injected [`Env`] so tests are hermetic.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use url::Url;

/// The client secret and the cloud are the Graph client's own types: one redaction, one table of
/// national-cloud roots.
pub use graph::{Cloud, Secret};

/// The full configuration JSON (preferred shape).
pub const CONFIG_JSON: &str = "AUTOMATION_SYNCCONTACTS_CONFIG_JSON";
/// A JSON array of tenants (used when [`CONFIG_JSON`] is unset or blank).
pub const TENANTS_JSON: &str = "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON";
/// DryRun for the tenants JSON and single-tenant shapes (and a safety override for the config JSON).
pub const DRY_RUN: &str = "AUTOMATION_SYNCCONTACTS_DRY_RUN";
pub const TENANT_ID: &str = "AUTOMATION_SYNCCONTACTS_TENANT_ID";
pub const CLIENT_ID: &str = "AUTOMATION_SYNCCONTACTS_CLIENT_ID";
pub const CLIENT_SECRET: &str = "AUTOMATION_SYNCCONTACTS_CLIENT_SECRET";
pub const GAB_USER_ID: &str = "AUTOMATION_SYNCCONTACTS_GLOBAL_ADDRESS_BOOK_USER_ID";
/// Tenant key → test users; overrides `TestUserListByTenant` of the config JSON.
pub const TEST_USERS_JSON: &str = "AUTOMATION_SYNCCONTACTS_TEST_USER_LIST_BY_TENANT_JSON";
pub const LOGIN_URL: &str = "AUTOMATION_SYNCCONTACTS_LOGIN_URL";
pub const GRAPH_URL: &str = "AUTOMATION_SYNCCONTACTS_GRAPH_URL";
pub const CA_FILE: &str = "AUTOMATION_SYNCCONTACTS_CA_FILE";
/// `false` sends every write as its own request instead of `$batch` (an escape hatch for a proxy
/// that blocks `$batch`; costs up to 20× the requests).
pub const BATCH: &str = "AUTOMATION_SYNCCONTACTS_BATCH";

/// Every variable this module reads (for messages and for the hermetic tests).
pub const ALL_VARIABLES: [&str; 12] = [
    CONFIG_JSON,
    TENANTS_JSON,
    DRY_RUN,
    TENANT_ID,
    CLIENT_ID,
    CLIENT_SECRET,
    GAB_USER_ID,
    TEST_USERS_JSON,
    LOGIN_URL,
    GRAPH_URL,
    CA_FILE,
    BATCH,
];

// ---------------------------------------------------------------------------------------------
// Environment and secrets
// ---------------------------------------------------------------------------------------------

/// A snapshot of environment variables. Holds secrets, so its `Debug` lists names only.
#[derive(Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, String>,
}

impl Env {
    /// The process environment (non-UTF-8 values are converted lossily; none of ours are binary).
    pub fn from_process() -> Self {
        std::env::vars_os()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.to_string_lossy().into_owned(),
                )
            })
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    /// The value when set and not blank (a CI variable defined as empty counts as unset).
    pub fn non_blank(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.vars.insert(name.into(), value.into());
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            vars: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Env")
            .field("names", &self.vars.keys().collect::<Vec<_>>())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// The validated configuration
// ---------------------------------------------------------------------------------------------

/// How a tenant authenticates (SPEC §6: exactly one per tenant).
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialConfig {
    /// `ClientSecret`.
    Secret(Secret),
    /// `ClientCertificatePath`: PEM with the certificate and its private key.
    CertificatePath(PathBuf),
    /// `ClientAssertionFile`: a federated token read fresh at each token request.
    AssertionFile(PathBuf),
    /// `ClientAssertionEnv`: the name of a variable holding a federated token (GitLab `id_tokens`).
    AssertionEnv(String),
}

impl CredentialConfig {
    /// The JSON field this credential came from, for messages and `check`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Secret(_) => "ClientSecret",
            Self::CertificatePath(_) => "ClientCertificatePath",
            Self::AssertionFile(_) => "ClientAssertionFile",
            Self::AssertionEnv(_) => "ClientAssertionEnv",
        }
    }

    /// A human description that never includes the secret.
    pub fn describe(&self) -> String {
        match self {
            Self::Secret(_) => "client secret".into(),
            Self::CertificatePath(p) => format!("certificate {}", p.display()),
            Self::AssertionFile(p) => format!("federated token from file {}", p.display()),
            Self::AssertionEnv(v) => format!("federated token from variable {v}"),
        }
    }
}

impl fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(s) => write!(f, "Secret({s:?})"),
            other => f.write_str(&other.describe()),
        }
    }
}

/// Login and Graph roots of one tenant, already checked (https, or http to loopback only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub login: Url,
    pub graph: Url,
}

/// One tenant, fully validated.
#[derive(Clone, Debug)]
pub struct TenantConfig {
    /// Position in its source (0-based), for messages.
    pub index: usize,
    /// Where it came from, e.g. `AUTOMATION_SYNCCONTACTS_CONFIG_JSON MicrosoftTenants[1]`.
    pub origin: String,
    pub tenant_id: String,
    pub client_id: String,
    pub credential: CredentialConfig,
    /// `GlobalAddressBookUserId`: the hub (shared) mailbox.
    pub hub: String,
    pub primary_domain: Option<String>,
    pub tenant_domain: Option<String>,
    /// Test-user scope, when configured (never empty); `None` means all licensed users.
    pub test_users: Option<Vec<String>>,
    /// Where the test users came from (for `check` and logs).
    pub test_users_origin: Option<String>,
    pub update_existing: bool,
    pub cloud: Cloud,
    pub endpoints: Endpoints,
}

impl TenantConfig {
    /// `--tenant KEY` matches TenantId, PrimaryDomain or TenantDomain (case-insensitively).
    pub fn matches_key(&self, key: &str) -> bool {
        let key = key.trim();
        [
            Some(&self.tenant_id),
            self.primary_domain.as_ref(),
            self.tenant_domain.as_ref(),
        ]
        .into_iter()
        .flatten()
        .any(|k| k.eq_ignore_ascii_case(key))
    }

    /// Short label for log lines and messages.
    pub fn label(&self) -> String {
        match (&self.primary_domain, &self.tenant_domain) {
            (Some(d), _) | (None, Some(d)) if !d.eq_ignore_ascii_case(&self.tenant_id) => {
                format!("{} ({d})", self.tenant_id)
            }
            _ => self.tenant_id.clone(),
        }
    }
}

/// Which of the three shapes of SPEC §2.1 configured the run.
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

/// The validated configuration of a run.
#[derive(Clone, Debug)]
pub struct Config {
    pub source: Source,
    pub dry_run: bool,
    /// Which setting turned dry-run on (for the log), if any.
    pub dry_run_origin: Option<String>,
    pub tenants: Vec<TenantConfig>,
    /// `AUTOMATION_SYNCCONTACTS_CA_FILE`, read and checked to contain a PEM certificate.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Group writes into `$batch` requests (default; `AUTOMATION_SYNCCONTACTS_BATCH=false` turns it off).
    pub batch_writes: bool,
    /// Things that are not errors but that an administrator should see (unknown fields, ignored
    /// variables, test-user keys that match no tenant).
    pub warnings: Vec<String>,
}

impl Config {
    /// Restricts the run to the tenants matching any of `keys` (SPEC §6 `--tenant`). Every key must
    /// match at least one tenant, otherwise it is a configuration error (a typo must not silently
    /// run nothing, or everything).
    pub fn select_tenants(&mut self, keys: &[String]) -> Result<(), ConfigError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut problems = Vec::new();
        for key in keys {
            if !self.tenants.iter().any(|t| t.matches_key(key)) {
                let known: Vec<String> = self.tenants.iter().map(TenantConfig::label).collect();
                problems.push(Problem {
                    variable: "--tenant".into(),
                    tenant: None,
                    field: None,
                    problem: format!("`{key}` matches no configured tenant"),
                    fix: format!(
                        "pass a TenantId, PrimaryDomain or TenantDomain of a configured tenant: {}",
                        known.join(", ")
                    ),
                });
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        self.tenants
            .retain(|t| keys.iter().any(|k| t.matches_key(k)));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// One configuration problem: where, what, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The environment variable (or option) that holds the problem.
    pub variable: String,
    /// `tenant #2 (MicrosoftTenants[1], TenantId "contoso.onmicrosoft.com")` when it concerns one.
    pub tenant: Option<String>,
    /// The JSON field (or the variable itself for the single-tenant shape).
    pub field: Option<String>,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.variable)?;
        if let Some(t) = &self.tenant {
            write!(f, ", {t}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}\n    fix: {}", self.problem, self.fix)
    }
}

/// Every problem found in the configuration (exit code 2; nothing was requested).
#[derive(Clone, Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "configuration error: {n} problem{} found; nothing was sent to Microsoft Graph",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, p) in self.problems.iter().enumerate() {
            writeln!(f, "  {}. {p}", i + 1)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// An order-preserving JSON value (first-match rules and duplicate detection need key order,
// which serde_json's default map does not keep)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    fn kind(&self) -> &'static str {
        match self {
            J::Null => "null",
            J::Bool(_) => "a boolean",
            J::Num(_) => "a number",
            J::Str(_) => "a string",
            J::Arr(_) => "an array",
            J::Obj(_) => "an object",
        }
    }
}

impl<'de> serde::Deserialize<'de> for J {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = J;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_none<E>(self) -> Result<J, E> {
                Ok(J::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<J, E> {
                Ok(J::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<J, E> {
                Ok(J::Num(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<J, E> {
                Ok(J::Num(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<J, E> {
                Ok(J::Num(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<J, E> {
                Ok(J::Str(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<J, E> {
                Ok(J::Str(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = a.next_element()? {
                    out.push(v);
                }
                Ok(J::Arr(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<J, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, J>()? {
                    out.push((k, v));
                }
                Ok(J::Obj(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses `text` (the value of `variable`). The parser's message gives line and column and never
/// quotes the input, so a secret inside a broken JSON is not echoed.
fn parse_json(variable: &str, text: &str) -> Result<J, Problem> {
    let text = text.trim_start_matches('\u{feff}');
    serde_json::from_str::<J>(text).map_err(|e| Problem {
        variable: variable.into(),
        tenant: None,
        field: None,
        problem: format!(
            "is not valid JSON: {} (line {}, column {})",
            json_error_kind(&e),
            e.line(),
            e.column()
        ),
        fix: "fix the JSON at that position (a missing comma or quote is the usual cause; in GitLab, \
              check that the variable is not expanded: tick \"Expand variable reference\" off)"
            .into(),
    })
}

fn json_error_kind(e: &serde_json::Error) -> String {
    // serde_json's Display is "<what> at line L column C"; keep the <what> only. It never contains
    // input text for syntax errors, and `J` accepts every value so no data error can arise.
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

/// Loads and validates the whole configuration from `env`. Makes no request; reads only the files
/// the configuration names (CA file, certificate, assertion file) to check they are usable.
pub fn load(env: &Env) -> Result<Config, ConfigError> {
    let mut l = Loader {
        env,
        problems: Vec::new(),
        warnings: Vec::new(),
    };
    let config = l.load();
    if l.problems.is_empty() {
        let mut config = config.expect("no problems means a config");
        config.warnings = l.warnings;
        Ok(config)
    } else {
        Err(ConfigError {
            problems: l.problems,
        })
    }
}

struct Loader<'a> {
    env: &'a Env,
    problems: Vec<Problem>,
    warnings: Vec<String>,
}

/// A tenant as read from its source, before the test-user map and endpoints are applied.
struct RawTenant {
    index: usize,
    origin: String,
    tenant_id: Option<String>,
    client_id: Option<String>,
    credential: Option<CredentialConfig>,
    hub: Option<String>,
    primary_domain: Option<String>,
    tenant_domain: Option<String>,
    test_users: Option<Vec<String>>,
    update_existing: Option<bool>,
    cloud: Cloud,
    login_url: Option<Url>,
    graph_url: Option<Url>,
}

const TENANT_FIELDS: [&str; 14] = [
    "TenantId",
    "ClientId",
    "ClientSecret",
    "ClientCertificatePath",
    "ClientAssertionFile",
    "ClientAssertionEnv",
    "GlobalAddressBookUserId",
    "TestUserList",
    "PrimaryDomain",
    "TenantDomain",
    "UpdateExisting",
    "Cloud",
    "LoginUrl",
    "GraphUrl",
];

const TOP_FIELDS: [&str; 4] = [
    "MicrosoftTenants",
    "DryRun",
    "TestUserListByTenant",
    "UpdateExisting",
];

impl Loader<'_> {
    fn problem(
        &mut self,
        variable: &str,
        tenant: Option<&str>,
        field: Option<&str>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem {
            variable: variable.into(),
            tenant: tenant.map(Into::into),
            field: field.map(Into::into),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    fn load(&mut self) -> Option<Config> {
        let env = self.env;
        let mut dry_run: Option<(bool, String)> = None;
        let mut top_update_existing: Option<bool> = None;
        let mut json_test_map: Option<Vec<(String, J)>> = None;
        let mut raws: Vec<RawTenant> = Vec::new();

        let source = if let Some(text) = env.non_blank(CONFIG_JSON) {
            for other in [
                TENANTS_JSON,
                TENANT_ID,
                CLIENT_ID,
                CLIENT_SECRET,
                GAB_USER_ID,
            ] {
                if env.non_blank(other).is_some() {
                    self.warnings.push(format!(
                        "{other} is set but ignored: {CONFIG_JSON} takes precedence"
                    ));
                }
            }
            match parse_json(CONFIG_JSON, text) {
                Err(p) => self.problems.push(p),
                Ok(J::Obj(top)) => {
                    self.read_config_object(
                        &top,
                        &mut dry_run,
                        &mut top_update_existing,
                        &mut json_test_map,
                        &mut raws,
                    );
                }
                Ok(other) => self.problem(
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
                if v && !dry_run.as_ref().is_some_and(|d| d.0) {
                    dry_run = Some((true, DRY_RUN.into()));
                } else if !v && dry_run.as_ref().is_some_and(|d| d.0) {
                    self.warnings.push(format!(
                        "{DRY_RUN} is false but the config JSON says DryRun true: running as a dry run"
                    ));
                }
            }
            Source::ConfigJson
        } else if let Some(text) = env.non_blank(TENANTS_JSON) {
            for other in [TENANT_ID, CLIENT_ID, CLIENT_SECRET, GAB_USER_ID] {
                if env.non_blank(other).is_some() {
                    self.warnings.push(format!(
                        "{other} is set but ignored: {TENANTS_JSON} takes precedence"
                    ));
                }
            }
            match parse_json(TENANTS_JSON, text) {
                Err(p) => self.problems.push(p),
                Ok(j) => self.read_tenant_list(TENANTS_JSON, "", &j, &mut raws),
            }
            if let Some(v) = self.flag_var(DRY_RUN) {
                dry_run = Some((v, DRY_RUN.into()));
            }
            Source::TenantsJson
        } else {
            let vars = [TENANT_ID, CLIENT_ID, CLIENT_SECRET, GAB_USER_ID];
            if vars.iter().all(|v| env.non_blank(v).is_none()) {
                self.problem(
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
                raws.push(self.read_single_tenant_vars());
            }
            if let Some(v) = self.flag_var(DRY_RUN) {
                dry_run = Some((v, DRY_RUN.into()));
            }
            Source::SingleTenantVariables
        };

        // The test-user map: the variable overrides the config JSON's map.
        let test_map: Option<(String, Vec<(String, J)>)> = if let Some(text) =
            env.non_blank(TEST_USERS_JSON)
        {
            match parse_json(TEST_USERS_JSON, text) {
                Err(p) => {
                    self.problems.push(p);
                    None
                }
                Ok(J::Obj(m)) => {
                    if json_test_map.is_some() {
                        self.warnings.push(format!(
                            "{TEST_USERS_JSON} overrides TestUserListByTenant of {CONFIG_JSON}"
                        ));
                    }
                    Some((TEST_USERS_JSON.to_owned(), m))
                }
                Ok(other) => {
                    self.problem(
                            TEST_USERS_JSON,
                            None,
                            None,
                            format!("must be a JSON object, found {}", other.kind()),
                            r#"map a tenant key to its test users: {"contoso.onmicrosoft.com": ["user1@contoso.com"]}"#,
                        );
                    None
                }
            }
        } else {
            json_test_map.map(|m| (format!("{CONFIG_JSON} TestUserListByTenant"), m))
        };
        // Validate the map's values once, whatever tenant uses them.
        let test_map_var: Option<String> = test_map.as_ref().map(|(v, _)| v.clone());
        let test_map: Vec<(String, Option<Vec<String>>)> = match &test_map {
            None => Vec::new(),
            Some((var, entries)) => entries
                .iter()
                .map(|(k, v)| {
                    let users = self.user_list(var, None, &format!("\"{k}\""), v);
                    (k.clone(), users)
                })
                .collect(),
        };

        // Global endpoint overrides.
        let login_override = self.url_var(LOGIN_URL);
        let graph_override = self.url_var(GRAPH_URL);
        let extra_ca_pem = self.ca_file();
        let batch_writes = match self.env.non_blank(BATCH).map(parse_flag_str) {
            None => true,
            Some(Ok(b)) => b,
            Some(Err(msg)) => {
                self.problem(BATCH, None, None, msg, "use true (the default) or false");
                true
            }
        };

        let mut tenants = Vec::new();
        for raw in raws {
            let mut test_users_origin = None;
            let mut test_users = raw.test_users.clone();
            if test_users.is_some() {
                test_users_origin = Some(format!("{} TestUserList", raw.origin));
            } else if let Some(var) = &test_map_var {
                // SPEC §2.1: TenantId, then PrimaryDomain, then TenantDomain; the first map entry
                // whose key equals the candidate case-insensitively (PowerShell property lookup).
                let candidates = [&raw.tenant_id, &raw.primary_domain, &raw.tenant_domain];
                'found: for c in candidates.into_iter().flatten() {
                    for (k, users) in &test_map {
                        if k.trim().eq_ignore_ascii_case(c.trim()) {
                            if let Some(users) = users {
                                test_users = Some(users.clone());
                                test_users_origin = Some(format!("{var} key \"{k}\""));
                            }
                            break 'found;
                        }
                    }
                }
            }
            let update_existing = raw.update_existing.or(top_update_existing).unwrap_or(true);
            let login = login_override
                .clone()
                .or(raw.login_url.clone())
                .unwrap_or_else(|| Url::parse(raw.cloud.roots().0).expect("constant URL"));
            let graph = graph_override
                .clone()
                .or(raw.graph_url.clone())
                .unwrap_or_else(|| Url::parse(raw.cloud.roots().1).expect("constant URL"));
            if let (Some(tenant_id), Some(client_id), Some(credential), Some(hub)) = (
                raw.tenant_id.clone(),
                raw.client_id.clone(),
                raw.credential.clone(),
                raw.hub.clone(),
            ) {
                tenants.push(TenantConfig {
                    index: raw.index,
                    origin: raw.origin.clone(),
                    tenant_id,
                    client_id,
                    credential,
                    hub,
                    primary_domain: raw.primary_domain.clone(),
                    tenant_domain: raw.tenant_domain.clone(),
                    test_users,
                    test_users_origin,
                    update_existing,
                    cloud: raw.cloud,
                    endpoints: Endpoints { login, graph },
                });
            }
        }

        // Keys of the test-user map that match no tenant are almost always typos.
        for (k, _) in &test_map {
            let used = tenants.iter().any(|t| t.matches_key(k));
            if !used && !tenants.is_empty() {
                self.warnings.push(format!(
                    "test-user map key \"{k}\" matches no configured tenant's TenantId, PrimaryDomain or TenantDomain; it is ignored"
                ));
            }
        }
        // The same tenant and hub twice would run the same sync twice.
        for (i, a) in tenants.iter().enumerate() {
            for b in &tenants[..i] {
                if a.tenant_id.eq_ignore_ascii_case(&b.tenant_id)
                    && a.hub.eq_ignore_ascii_case(&b.hub)
                {
                    self.warnings.push(format!(
                        "{} and {} configure the same tenant and hub mailbox; it will be synced twice",
                        b.origin, a.origin
                    ));
                }
            }
        }

        let (dry_run, dry_run_origin) = match dry_run {
            Some((true, origin)) => (true, Some(origin)),
            _ => (false, None),
        };
        Some(Config {
            source,
            dry_run,
            dry_run_origin,
            tenants,
            extra_ca_pem,
            batch_writes,
            warnings: Vec::new(),
        })
    }

    fn read_config_object(
        &mut self,
        top: &[(String, J)],
        dry_run: &mut Option<(bool, String)>,
        top_update_existing: &mut Option<bool>,
        json_test_map: &mut Option<Vec<(String, J)>>,
        raws: &mut Vec<RawTenant>,
    ) {
        let var = CONFIG_JSON;
        if let Some(v) = self.field(var, None, top, "DryRun") {
            match parse_flag(v) {
                Ok(Some(b)) => *dry_run = Some((b, format!("{var} DryRun"))),
                Ok(None) => {}
                Err(msg) => self.problem(var, None, Some("DryRun"), msg, DRY_RUN_FIX),
            }
        }
        if let Some(v) = self.field(var, None, top, "UpdateExisting") {
            match parse_flag(v) {
                Ok(b) => *top_update_existing = b,
                Err(msg) => self.problem(var, None, Some("UpdateExisting"), msg, UPDATE_FIX),
            }
        }
        if let Some(v) = self.field(var, None, top, "TestUserListByTenant") {
            match v {
                J::Obj(m) => *json_test_map = Some(m.clone()),
                J::Null => {}
                other => self.problem(
                    var,
                    None,
                    Some("TestUserListByTenant"),
                    format!("must be an object, found {}", other.kind()),
                    r#"map a tenant key to its test users: {"contoso.onmicrosoft.com": ["user1@contoso.com"]}"#,
                ),
            }
        }
        let tenant_fields_at_top: Vec<&str> = top
            .iter()
            .filter(|(k, _)| {
                TENANT_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(k))
                    && !k.eq_ignore_ascii_case("UpdateExisting")
            })
            .map(|(k, _)| k.as_str())
            .collect();
        match self.field(var, None, top, "MicrosoftTenants") {
            Some(list) if !matches!(list, J::Null) => {
                if !tenant_fields_at_top.is_empty() {
                    self.problem(
                        var,
                        None,
                        Some(&tenant_fields_at_top.join(", ")),
                        "tenant fields at the top level next to MicrosoftTenants would be ignored",
                        "move them into an entry of MicrosoftTenants (or drop MicrosoftTenants to use the older single-tenant shape)",
                    );
                }
                for (k, _) in top {
                    if !TOP_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(k))
                        && !TENANT_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(k))
                    {
                        self.warnings
                            .push(format!("{var}: unknown top-level field \"{k}\" is ignored"));
                    }
                }
                self.read_tenant_list(var, "MicrosoftTenants", list, raws);
            }
            _ => {
                if tenant_fields_at_top.is_empty() {
                    self.problem(
                        var,
                        None,
                        Some("MicrosoftTenants"),
                        "no tenants configured",
                        r#"add "MicrosoftTenants": [{"TenantId": "…", "ClientId": "…", "ClientSecret": "…", "GlobalAddressBookUserId": "…"}]"#,
                    );
                } else {
                    // The older shape: the top level is the one tenant.
                    let known: Vec<&str> = TENANT_FIELDS
                        .iter()
                        .chain(TOP_FIELDS.iter())
                        .copied()
                        .collect();
                    let raw = self.read_tenant(var, "", 0, 1, top, &known);
                    raws.push(raw);
                }
            }
        }
    }

    fn read_tenant_list(&mut self, var: &str, path: &str, list: &J, raws: &mut Vec<RawTenant>) {
        let field = (!path.is_empty()).then_some(path);
        // PowerShell's ConvertTo-Json turns a one-element array into its element; accept that.
        let items: Vec<&J> = match list {
            J::Arr(items) => items.iter().collect(),
            J::Obj(_) => vec![list],
            other => {
                self.problem(
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
            self.problem(
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
                J::Obj(obj) => {
                    let raw = self.read_tenant(var, &at, i, n, obj, &TENANT_FIELDS);
                    raws.push(raw);
                }
                other => self.problem(
                    var,
                    Some(&format!("tenant #{} ({at})", i + 1)),
                    None,
                    format!("must be an object, found {}", other.kind()),
                    r#"each tenant is {"TenantId": "…", "ClientId": "…", "ClientSecret": "…", "GlobalAddressBookUserId": "…"}"#,
                ),
            }
        }
    }

    /// Looks `name` up case-insensitively (PowerShell property semantics; so `TenantID` is
    /// `TenantId`). Two spellings with different values are a problem.
    fn field<'j>(
        &mut self,
        var: &str,
        who: Option<&str>,
        obj: &'j [(String, J)],
        name: &str,
    ) -> Option<&'j J> {
        let hits: Vec<&(String, J)> = obj
            .iter()
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .collect();
        let first = hits.first()?;
        if hits.iter().any(|(_, v)| v != &first.1) {
            let spellings: Vec<&str> = hits.iter().map(|(k, _)| k.as_str()).collect();
            self.problem(
                var,
                who,
                Some(name),
                format!(
                    "given more than once with different values ({})",
                    spellings.join(", ")
                ),
                "keep one of them",
            );
        }
        Some(&first.1)
    }

    fn string_field(
        &mut self,
        var: &str,
        who: &str,
        obj: &[(String, J)],
        name: &str,
    ) -> Option<String> {
        match self.field(var, Some(who), obj, name)? {
            J::Str(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            J::Str(_) | J::Null => None,
            other => {
                let kind = other.kind();
                self.problem(
                    var,
                    Some(who),
                    Some(name),
                    format!("must be a string, found {kind}"),
                    format!("write it in quotes: \"{name}\": \"…\""),
                );
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn read_tenant(
        &mut self,
        var: &str,
        at: &str,
        index: usize,
        count: usize,
        obj: &[(String, J)],
        known: &[&str],
    ) -> RawTenant {
        let tenant_id_hint = obj
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("TenantId"))
            .and_then(|(_, v)| match v {
                J::Str(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                _ => None,
            });
        let who = tenant_label(index, count, at, tenant_id_hint.as_deref());
        for (k, _) in obj {
            if !known.iter().any(|f| f.eq_ignore_ascii_case(k.trim())) {
                self.warnings
                    .push(format!("{var}, {who}: unknown field \"{k}\" is ignored"));
            }
        }
        let tenant_id = self.string_field(var, &who, obj, "TenantId");
        let client_id = self.string_field(var, &who, obj, "ClientId");
        let hub = self.string_field(var, &who, obj, "GlobalAddressBookUserId");
        let primary_domain = self.string_field(var, &who, obj, "PrimaryDomain");
        let tenant_domain = self.string_field(var, &who, obj, "TenantDomain");
        if tenant_id.is_none() {
            self.problem(
                var,
                Some(&who),
                Some("TenantId"),
                "is missing",
                "set it to the directory (tenant) id or its .onmicrosoft.com domain, from Entra admin center → Overview",
            );
        }
        if client_id.is_none() {
            self.problem(
                var,
                Some(&who),
                Some("ClientId"),
                "is missing",
                "set it to the application (client) id of the app registration, from Entra admin center → App registrations",
            );
        }
        if hub.is_none() {
            self.problem(
                var,
                Some(&who),
                Some("GlobalAddressBookUserId"),
                "is missing",
                "set it to the UPN (or object id) of the shared mailbox that holds the \"All Contacts\" folder",
            );
        }
        let credential = self.credential(var, &who, obj);
        let test_users = match self.field(var, Some(&who), obj, "TestUserList") {
            Some(v) => self.user_list(var, Some(&who), "TestUserList", v),
            None => None,
        };
        let update_existing = match self.field(var, Some(&who), obj, "UpdateExisting") {
            Some(v) => match parse_flag(v) {
                Ok(b) => b,
                Err(msg) => {
                    self.problem(var, Some(&who), Some("UpdateExisting"), msg, UPDATE_FIX);
                    None
                }
            },
            None => None,
        };
        let cloud = match self.string_field(var, &who, obj, "Cloud") {
            None => Cloud::Global,
            Some(s) => s.parse::<Cloud>().unwrap_or_else(|_| {
                self.problem(
                    var,
                    Some(&who),
                    Some("Cloud"),
                    format!("`{}` is not a known cloud", truncate(&s, 40)),
                    "use one of Global, USGov, USGovDoD, China (or give LoginUrl and GraphUrl)",
                );
                Cloud::Global
            }),
        };
        let login_url = self
            .string_field(var, &who, obj, "LoginUrl")
            .and_then(|s| self.checked_url(var, Some(&who), Some("LoginUrl"), &s));
        let graph_url = self
            .string_field(var, &who, obj, "GraphUrl")
            .and_then(|s| self.checked_url(var, Some(&who), Some("GraphUrl"), &s));
        RawTenant {
            index,
            origin: if at.is_empty() {
                var.to_owned()
            } else {
                format!("{var} {at}")
            },
            tenant_id,
            client_id,
            credential,
            hub,
            primary_domain,
            tenant_domain,
            test_users,
            update_existing,
            cloud,
            login_url,
            graph_url,
        }
    }

    fn credential(
        &mut self,
        var: &str,
        who: &str,
        obj: &[(String, J)],
    ) -> Option<CredentialConfig> {
        let mut found: Vec<CredentialConfig> = Vec::new();
        if let Some(s) = self.string_field(var, who, obj, "ClientSecret") {
            found.push(CredentialConfig::Secret(Secret::new(s)));
        }
        if let Some(p) = self.string_field(var, who, obj, "ClientCertificatePath") {
            let path = PathBuf::from(&p);
            match std::fs::read_to_string(&path) {
                Err(e) => self.problem(
                    var,
                    Some(who),
                    Some("ClientCertificatePath"),
                    format!("cannot read {}: {e}", path.display()),
                    "point it at a PEM file holding the certificate and its private key (in CI, a File-type variable)",
                ),
                Ok(pem) => {
                    let has_cert = pem.contains("-----BEGIN CERTIFICATE-----");
                    let has_key = pem.contains("PRIVATE KEY-----");
                    if !has_cert || !has_key {
                        self.problem(
                            var,
                            Some(who),
                            Some("ClientCertificatePath"),
                            format!(
                                "{} does not hold {}",
                                path.display(),
                                match (has_cert, has_key) {
                                    (false, false) => "a PEM certificate nor a private key",
                                    (false, true) => "a PEM certificate",
                                    _ => "a PEM private key",
                                }
                            ),
                            "concatenate the certificate and its unencrypted private key into one PEM file",
                        );
                    }
                }
            }
            found.push(CredentialConfig::CertificatePath(path));
        }
        if let Some(p) = self.string_field(var, who, obj, "ClientAssertionFile") {
            let path = PathBuf::from(&p);
            if !path.is_file() {
                self.problem(
                    var,
                    Some(who),
                    Some("ClientAssertionFile"),
                    format!("{} does not exist or is not a file", path.display()),
                    "point it at the file holding the federated token (or use ClientAssertionEnv with a GitLab id_tokens variable)",
                );
            }
            found.push(CredentialConfig::AssertionFile(path));
        }
        if let Some(name) = self.string_field(var, who, obj, "ClientAssertionEnv") {
            if self.env.non_blank(&name).is_none() {
                self.problem(
                    var,
                    Some(who),
                    Some("ClientAssertionEnv"),
                    format!("names the variable {name}, which is not set"),
                    format!(
                        "in .gitlab-ci.yml add `id_tokens: {{ {name}: {{ aud: \"api://AzureADTokenExchange\" }} }}` to the job (or fix the name)"
                    ),
                );
            }
            found.push(CredentialConfig::AssertionEnv(name));
        }
        match found.len() {
            1 => found.pop(),
            0 => {
                self.problem(
                    var,
                    Some(who),
                    Some("ClientSecret"),
                    "no credential given",
                    "give exactly one of ClientSecret, ClientCertificatePath, ClientAssertionFile or ClientAssertionEnv",
                );
                None
            }
            _ => {
                let names: Vec<&str> = found.iter().map(CredentialConfig::field).collect();
                self.problem(
                    var,
                    Some(who),
                    Some(&names.join(", ")),
                    "more than one credential given",
                    "keep exactly one of ClientSecret, ClientCertificatePath, ClientAssertionFile or ClientAssertionEnv",
                );
                None
            }
        }
    }

    /// A list of users: an array of strings (or one string, as PowerShell iterates a scalar).
    /// Empty means "not configured". Duplicates are dropped, case-insensitively.
    fn user_list(
        &mut self,
        var: &str,
        who: Option<&str>,
        field: &str,
        v: &J,
    ) -> Option<Vec<String>> {
        let items: Vec<&J> = match v {
            J::Null => return None,
            J::Str(_) => vec![v],
            J::Arr(a) => a.iter().collect(),
            other => {
                self.problem(
                    var,
                    who,
                    Some(field),
                    format!(
                        "must be an array of user principal names, found {}",
                        other.kind()
                    ),
                    r#"use ["user1@contoso.com", "user2@contoso.com"]"#,
                );
                return None;
            }
        };
        let mut out: Vec<String> = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            match item {
                J::Str(s) if s.trim().is_empty() => {}
                J::Str(s) => {
                    let s = s.trim();
                    if !out.iter().any(|o| o.eq_ignore_ascii_case(s)) {
                        out.push(s.to_owned());
                    }
                }
                other => self.problem(
                    var,
                    who,
                    Some(&format!("{field}[{i}]")),
                    format!(
                        "must be a user principal name string, found {}",
                        other.kind()
                    ),
                    r#"use ["user1@contoso.com", "user2@contoso.com"]"#,
                ),
            }
        }
        (!out.is_empty()).then_some(out)
    }

    fn read_single_tenant_vars(&mut self) -> RawTenant {
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
                self.problem(
                    name,
                    Some(&who),
                    None,
                    "is not set; the four single-tenant variables form one tenant together",
                    fix,
                );
            }
        }
        RawTenant {
            index: 0,
            origin: TENANT_ID.to_owned(),
            tenant_id: get(TENANT_ID),
            client_id: get(CLIENT_ID),
            credential: get(CLIENT_SECRET).map(|s| CredentialConfig::Secret(Secret::new(s))),
            hub: get(GAB_USER_ID),
            primary_domain: None,
            tenant_domain: None,
            test_users: None,
            update_existing: None,
            cloud: Cloud::Global,
            login_url: None,
            graph_url: None,
        }
    }

    fn flag_var(&mut self, name: &str) -> Option<bool> {
        let v = self.env.non_blank(name)?;
        match parse_flag_str(v) {
            Ok(b) => Some(b),
            Err(msg) => {
                self.problem(name, None, None, msg, DRY_RUN_FIX);
                None
            }
        }
    }

    fn url_var(&mut self, name: &str) -> Option<Url> {
        let v = self.env.non_blank(name)?.trim().to_owned();
        self.checked_url(name, None, None, &v)
    }

    fn checked_url(
        &mut self,
        var: &str,
        who: Option<&str>,
        field: Option<&str>,
        s: &str,
    ) -> Option<Url> {
        match check_root_url(s) {
            Ok(u) => Some(u),
            Err(msg) => {
                self.problem(
                    var,
                    who,
                    field,
                    msg,
                    "give a root URL such as https://graph.microsoft.com (plain http only to 127.0.0.1, ::1 or localhost)",
                );
                None
            }
        }
    }

    fn ca_file(&mut self) -> Option<Vec<u8>> {
        let path = self.env.non_blank(CA_FILE)?.trim().to_owned();
        match std::fs::read(&path) {
            Err(e) => {
                self.problem(
                    CA_FILE,
                    None,
                    None,
                    format!("cannot read {path}: {e}"),
                    "point it at a PEM file with the CA certificate to trust, or unset it",
                );
                None
            }
            Ok(bytes) => {
                if String::from_utf8_lossy(&bytes).contains("-----BEGIN CERTIFICATE-----") {
                    Some(bytes)
                } else {
                    self.problem(
                        CA_FILE,
                        None,
                        None,
                        format!("{path} holds no PEM certificate"),
                        "point it at a PEM file (-----BEGIN CERTIFICATE-----) with the CA certificate to trust",
                    );
                    None
                }
            }
        }
    }
}

const DRY_RUN_FIX: &str =
    "use true/false (or 1/0, yes/no, y/n); anything else is refused so a typo never causes writes";
const UPDATE_FIX: &str = "use true or false (true is the default)";

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

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

/// DryRun / UpdateExisting: a JSON boolean or a string (SPEC §2.1); null means absent.
fn parse_flag(v: &J) -> Result<Option<bool>, String> {
    match v {
        J::Null => Ok(None),
        J::Bool(b) => Ok(Some(*b)),
        J::Str(s) => parse_flag_str(s).map(Some),
        other => Err(format!(
            "must be true or false (a JSON boolean or string), found {}",
            other.kind()
        )),
    }
}

/// `true/1/yes/y` and `false/0/no/n`, trimmed, any case. **FIX** (SPEC §2.1): anything else is an
/// error, not a silent false.
pub fn parse_flag_str(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" => Ok(true),
        "false" | "0" | "no" | "n" => Ok(false),
        _ => Err(format!(
            "`{}` is not a recognised true/false value",
            truncate(s.trim(), 20)
        )),
    }
}

/// A login or Graph root: https anywhere, http only to loopback (SPEC §6), no credentials, query
/// or fragment. A trailing slash is normalised away by the client's joining.
pub fn check_root_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s.trim()).map_err(|e| format!("is not a valid URL ({e})"))?;
    if !u.username().is_empty() || u.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err("must be a root URL without query or fragment".into());
    }
    match u.scheme() {
        "https" => Ok(u),
        "http" => {
            if graph::endpoints::is_loopback_host(&u) {
                Ok(u)
            } else {
                Err(format!(
                    "plain http is only allowed to a loopback address, not {}",
                    u.host_str().unwrap_or("")
                ))
            }
        }
        other => Err(format!("scheme `{other}` is not supported (use https)")),
    }
}

#[cfg(test)]
mod tests;
