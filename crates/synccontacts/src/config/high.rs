//! Stage two (ripgrep's `HiArgs`): stage one's [`LowConfig`] → the [`Config`] a run needs. It
//! loads what stage one names (the CA file; the certificate, assertion file and assertion variable
//! of each credential), applies the run-wide settings to every tenant (test-user map, URL
//! overrides, the cloud's roots) and reports its problems together with stage one's, so a run is
//! refused before any request (I6). It reads files and the given [`Env`], never the network: a
//! test-user key that needs a tenant's verified domains leaves that tenant's scope pending
//! (`scope.rs`), for the run to resolve before its first write.

use graph::{Cloud, Endpoints};

use super::credential::CredentialConfig;
use super::env::{CA_FILE, Env};
use super::env::{GRAPH_URL, LOGIN_URL};
use super::low::{LowConfig, LowTenant, Source};
use super::problem::{ConfigError, Findings, Problem};
use super::scope::{self, ScopeRules, UnresolvedTestUserKey, UserScope};
use super::tenant_fields::{Place, TenantOptions};

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
    /// `AUTOMATION_SYNCCONTACTS_MAX_RUN_MINUTES`, when set (`--max-duration` wins over it; the
    /// default is `stop::DEFAULT_MAX_DURATION`).
    pub max_run: Option<std::time::Duration>,
    /// `AUTOMATION_SYNCCONTACTS_APP_BUDGET`: Graph requests per 10 s for the app, when lowered.
    pub app_budget: Option<u32>,
    /// Things that are not errors but that an administrator should see (unknown fields, ignored
    /// variables, the same tenant and hub twice).
    pub warnings: Vec<String>,
    /// Test-user map keys that equal no tenant's TenantId, PrimaryDomain or TenantDomain; while
    /// there are any, tenants without test users of their own are
    /// [`UserScope::PendingVerifiedDomains`] (see [`Config::resolve_test_user_keys`]).
    pub unresolved_test_user_keys: Vec<UnresolvedTestUserKey>,
    /// `--tenant` left some tenants out (a test-user key may be meant for one of them).
    pub(super) narrowed: bool,
    /// The state file (docs/state-and-deletes.md §1): [`super::STATE`] or the default; the
    /// command line's `--state` replaces it.
    pub state: super::StatePath,
    /// `--allow-deletes N` (sync only): release up to N held deletes this run.
    pub allow_deletes: Option<usize>,
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
    /// Whose mailboxes it syncs: all licensed users, test users, or not decided yet.
    pub scope: UserScope,
    /// `IncludeGroups`, `ExcludeGroups`, `ExcludeUsers`: applied to the scope's users by the run,
    /// once it has resolved the groups.
    pub rules: ScopeRules,
    pub cloud: Cloud,
    /// Login and Graph roots: the URL variables, else `LoginUrl`/`GraphUrl`, else the cloud's.
    pub endpoints: Endpoints,
    /// Which setting gave each root, when not the cloud (for `check`).
    pub endpoint_origins: EndpointOrigins,
    pub options: TenantOptions,
}

/// The setting each root came from: the variable (`AUTOMATION_SYNCCONTACTS_LOGIN_URL`) or the
/// tenant field (`LoginUrl`); `None` when it is the cloud's own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointOrigins {
    pub login: Option<&'static str>,
    pub graph: Option<&'static str>,
}

impl TenantConfig {
    /// `--tenant KEY` matches TenantId, PrimaryDomain or TenantDomain (case-insensitively).
    pub fn matches_key(&self, key: &str) -> bool {
        matches_key(
            [
                Some(&self.tenant_id),
                self.primary_domain.as_ref(),
                self.tenant_domain.as_ref(),
            ],
            key,
        )
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

fn matches_key(keys: [Option<&String>; 3], key: &str) -> bool {
    let key = key.trim();
    keys.into_iter()
        .flatten()
        .any(|k| k.eq_ignore_ascii_case(key))
}

impl Config {
    /// Stage two over stage one's result: every problem of both stages, or the configuration.
    pub fn from_low(low: LowConfig, env: &Env) -> Result<Config, ConfigError> {
        let LowConfig {
            source,
            dry_run,
            dry_run_origin,
            tenants: low_tenants,
            test_user_map,
            login_url,
            graph_url,
            ca_file,
            batch_writes,
            max_run,
            app_budget,
            mut found,
        } = low;
        let extra_ca_pem = ca_file
            .as_deref()
            .and_then(|path| read_ca_file(&mut found, path));
        for t in &low_tenants {
            // Every credential given, even when there are two (already a problem): each file
            // that does not load is worth saying now rather than after the first fix.
            let at = Place {
                variable: t.variable,
                tenant: Some(&t.label),
            };
            for credential in &t.credentials {
                credential.check_references(&mut found, at, env);
            }
        }
        let unresolved = scope::unresolved_keys(test_user_map.as_ref(), &low_tenants);
        let tenants: Vec<TenantConfig> = low_tenants
            .into_iter()
            .filter_map(|t| {
                let scope = scope::scope_of(&t, test_user_map.as_ref(), !unresolved.is_empty());
                complete(t, scope, &login_url, &graph_url)
            })
            .collect();
        scope::refuse_keys_no_tenant_can_take(&mut found, &tenants, &unresolved);
        warn_about_run_wide_mistakes(&mut found, &tenants);
        if !found.problems.is_empty() {
            return Err(ConfigError {
                problems: found.problems,
                read_directory: false,
            });
        }
        Ok(Config {
            source,
            dry_run,
            dry_run_origin,
            tenants,
            extra_ca_pem,
            batch_writes,
            max_run,
            app_budget,
            warnings: found.warnings,
            unresolved_test_user_keys: unresolved,
            narrowed: false,
            state: super::StatePath::from_env(env),
            allow_deletes: None,
        })
    }

    /// Restricts the run to the tenants matching any of `keys` (docs/sync-rules.md §6 `--tenant`).
    /// Every key must match at least one tenant, otherwise it is a configuration error (a typo must
    /// not silently run nothing, or everything).
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
            return Err(ConfigError {
                problems,
                read_directory: false,
            });
        }
        let before = self.tenants.len();
        self.tenants
            .retain(|t| keys.iter().any(|k| t.matches_key(k)));
        self.narrowed |= self.tenants.len() < before;
        Ok(())
    }
}

/// A tenant with every required field and exactly one credential → its run configuration; `None`
/// when stage one already reported what it lacks.
fn complete(
    t: LowTenant,
    scope: UserScope,
    login_url: &Option<url::Url>,
    graph_url: &Option<url::Url>,
) -> Option<TenantConfig> {
    let cloud_roots = Endpoints::for_cloud(t.cloud);
    // Both roots passed `check_root_url` in stage one (or come from graph's cloud table).
    let (login, login_origin) = pick_root(login_url, LOGIN_URL, t.login_url, "LoginUrl");
    let (graph, graph_origin) = pick_root(graph_url, GRAPH_URL, t.graph_url, "GraphUrl");
    let endpoints = Endpoints {
        login: login.unwrap_or(cloud_roots.login),
        graph: graph.unwrap_or(cloud_roots.graph),
    };
    let [credential]: [CredentialConfig; 1] = t.credentials.try_into().ok()?;
    Some(TenantConfig {
        index: t.index,
        origin: t.origin,
        tenant_id: t.tenant_id?,
        client_id: t.client_id?,
        credential,
        hub: t.hub?,
        primary_domain: t.primary_domain,
        tenant_domain: t.tenant_domain,
        scope,
        rules: t.rules,
        cloud: t.cloud,
        endpoints,
        endpoint_origins: EndpointOrigins {
            login: login_origin,
            graph: graph_origin,
        },
        options: t.options,
    })
}

/// docs/sync-rules.md §6: the variable wins over the tenant field; `(None, None)` leaves the
/// cloud's root.
fn pick_root(
    variable: &Option<url::Url>,
    variable_name: &'static str,
    field: Option<url::Url>,
    field_name: &'static str,
) -> (Option<url::Url>, Option<&'static str>) {
    match (variable, field) {
        (Some(v), _) => (Some(v.clone()), Some(variable_name)),
        (None, Some(f)) => (Some(f), Some(field_name)),
        (None, None) => (None, None),
    }
}

/// The same tenant and hub twice would run the same sync twice.
fn warn_about_run_wide_mistakes(found: &mut Findings, tenants: &[TenantConfig]) {
    for (i, a) in tenants.iter().enumerate() {
        for b in &tenants[..i] {
            if a.tenant_id.eq_ignore_ascii_case(&b.tenant_id) && a.hub.eq_ignore_ascii_case(&b.hub)
            {
                found.warn(format!(
                    "{} and {} configure the same tenant and hub mailbox; it will be synced twice",
                    b.origin, a.origin
                ));
            }
        }
    }
}

/// The CA file must hold a PEM certificate; its bytes go to the Graph client as they are.
fn read_ca_file(found: &mut Findings, path: &std::path::Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Err(e) => {
            found.problem(
                CA_FILE,
                None,
                None,
                format!("cannot read {}: {e}", path.display()),
                "point it at a PEM file with the CA certificate to trust, or unset it",
            );
            None
        }
        Ok(bytes) => {
            if String::from_utf8_lossy(&bytes).contains("-----BEGIN CERTIFICATE-----") {
                Some(bytes)
            } else {
                found.problem(
                    CA_FILE,
                    None,
                    None,
                    format!("{} holds no PEM certificate", path.display()),
                    "point it at a PEM file (-----BEGIN CERTIFICATE-----) with the CA certificate to trust",
                );
                None
            }
        }
    }
}
