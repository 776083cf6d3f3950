//! The environment snapshot configuration is read from, and the names of the variables it reads.
//!
//! Only `main` (through [`Env::from_process`]) touches the process environment; everything else
//! reads an [`Env`] handed to it, so tests set exactly the variables they mean. An `Env` holds
//! secrets (a client secret, a federated token): it must never print a value.

use std::collections::BTreeMap;
use std::fmt;

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
/// The run's maximum duration in whole minutes (`--max-duration` wins); after it no new write
/// starts and the run reports what it did.
pub const MAX_RUN_MINUTES: &str = "AUTOMATION_SYNCCONTACTS_MAX_RUN_MINUTES";
/// Graph requests per 10 s this run may send for its app, below Graph's 130,000 (several jobs
/// sharing one app registration split the budget).
pub const APP_BUDGET: &str = "AUTOMATION_SYNCCONTACTS_APP_BUDGET";

/// The state file (`--state` wins; default `.synccontacts/state.sqlite` under the working
/// directory).
pub const STATE: &str = "AUTOMATION_SYNCCONTACTS_STATE";

/// Every variable configuration reads (for messages and for the hermetic tests).
pub const ALL_VARIABLES: [&str; 15] = [
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
    MAX_RUN_MINUTES,
    APP_BUDGET,
    STATE,
];

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
