//! Stage two (ripgrep's `HiArgs`): stage one's [`LowConfig`] → the [`Config`] a run needs. It
//! loads what stage one names (the CA file; the certificate, assertion file and assertion variable
//! of each credential), applies the run-wide settings to every tenant (test-user map, URL
//! overrides, the cloud's roots) and reports its problems together with stage one's, so a run is
//! refused before any request (I6). It reads files and the given [`Env`], never the network.

use graph::{Cloud, Endpoints};

use super::credential::CredentialConfig;
use super::env::{CA_FILE, Env};
use super::low::{LowConfig, LowTenant, Source, TestUserMap};
use super::problem::{ConfigError, Findings, Problem};
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
    /// Things that are not errors but that an administrator should see (unknown fields, ignored
    /// variables, test-user keys that match no tenant).
    pub warnings: Vec<String>,
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
    pub cloud: Cloud,
    /// Login and Graph roots: the URL variables, else `LoginUrl`/`GraphUrl`, else the cloud's.
    pub endpoints: Endpoints,
    pub options: TenantOptions,
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
        let tenants: Vec<TenantConfig> = low_tenants
            .into_iter()
            .filter_map(|t| complete(t, test_user_map.as_ref(), &login_url, &graph_url))
            .collect();
        warn_about_run_wide_mistakes(&mut found, &tenants, test_user_map.as_ref());
        if !found.problems.is_empty() {
            return Err(ConfigError {
                problems: found.problems,
            });
        }
        Ok(Config {
            source,
            dry_run,
            dry_run_origin,
            tenants,
            extra_ca_pem,
            batch_writes,
            warnings: found.warnings,
        })
    }

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

/// A tenant with every required field and exactly one credential → its run configuration; `None`
/// when stage one already reported what it lacks.
fn complete(
    t: LowTenant,
    test_user_map: Option<&TestUserMap>,
    login_url: &Option<url::Url>,
    graph_url: &Option<url::Url>,
) -> Option<TenantConfig> {
    let (test_users, test_users_origin) = match (&t.test_users, test_user_map) {
        (Some(own), _) => (
            Some(own.clone()),
            Some(format!("{} TestUserList", t.origin)),
        ),
        (None, Some(map)) => map_users(&t, map),
        (None, None) => (None, None),
    };
    let cloud_roots = Endpoints::for_cloud(t.cloud);
    // Both roots passed `graph::endpoints::root` in stage one (or come from graph's cloud table).
    let endpoints = Endpoints {
        login: login_url
            .clone()
            .or(t.login_url)
            .unwrap_or(cloud_roots.login),
        graph: graph_url
            .clone()
            .or(t.graph_url)
            .unwrap_or(cloud_roots.graph),
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
        test_users,
        test_users_origin,
        cloud: t.cloud,
        endpoints,
        options: t.options,
    })
}

/// SPEC §2.1: TenantId, then PrimaryDomain, then TenantDomain; the first map entry whose key
/// equals the candidate case-insensitively (PowerShell property lookup) decides, even when it
/// gives no users.
fn map_users(t: &LowTenant, map: &TestUserMap) -> (Option<Vec<String>>, Option<String>) {
    let candidates = [&t.tenant_id, &t.primary_domain, &t.tenant_domain];
    for c in candidates.into_iter().flatten() {
        if let Some((k, users)) = map
            .entries
            .iter()
            .find(|(k, _)| k.trim().eq_ignore_ascii_case(c.trim()))
        {
            return match users {
                Some(users) => (
                    Some(users.clone()),
                    Some(format!("{} key \"{k}\"", map.origin)),
                ),
                None => (None, None),
            };
        }
    }
    (None, None)
}

/// Test-user keys that match no tenant are almost always typos; the same tenant and hub twice
/// would run the same sync twice.
fn warn_about_run_wide_mistakes(
    found: &mut Findings,
    tenants: &[TenantConfig],
    test_user_map: Option<&TestUserMap>,
) {
    for (k, _) in test_user_map.map_or(&[][..], |m| &m.entries) {
        if !tenants.is_empty() && !tenants.iter().any(|t| t.matches_key(k)) {
            found.warn(format!(
                "test-user map key \"{k}\" matches no configured tenant's TenantId, PrimaryDomain or TenantDomain; it is ignored"
            ));
        }
    }
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
