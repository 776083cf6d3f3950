//! Configuration: the environment → a validated [`Config`] for every tenant, or every problem at
//! once (docs/compatibility.md §1 and docs/sync-rules.md §6; exit 2 and nothing requested,
//! docs/reliability.md I6).
//!
//! It accepts every shape the PowerShell script accepted (the config JSON and its older top-level
//! shape, the tenants JSON, the single-tenant variables, the test-user map) plus our additions
//! (other credentials, clouds and URLs). Two stages, as ripgrep's `LowArgs` → `HiArgs`:
//!
//! 1. [`LowConfig::parse`] (`low.rs`) reads only what the user wrote — the variables of the
//!    given [`Env`] and the JSON inside them — with no file read and no network, and records every
//!    problem instead of stopping at the first.
//! 2. [`Config::from_low`] (`high.rs`) loads what stage one names (CA file, certificate PEM,
//!    assertion file, assertion variable), resolves each tenant's endpoints and test users, and
//!    returns stage one's problems together with its own.
//!
//! [`load`] runs both. The Graph client is built from a [`Config`] later (`run::build_clients`),
//! still before the first request. Two checks need more than the environment, and run in between:
//! a test-user key that is no tenant's configured key leaves the scope of the tenants it may name
//! pending ([`UserScope::PendingVerifiedDomains`]) until the run has fetched their verified
//! domains and called [`Config::resolve_test_user_keys`], before the first write of any tenant;
//! and [`check_output_path`] (`outputs.rs`) checks the files the command line names (`--report`)
//! before the first request. No part of this module makes a request, reads the process
//! environment (only `main`, through [`Env::from_process`]), or echoes a secret value.
//!
//! Files: `env.rs` (the snapshot and the variable names), `ordered_json.rs` (the JSON reader that
//! keeps key order), `tenant_fields.rs` (the tenant-field table and [`TenantOptions`]),
//! `values.rs` (flag and root-URL parsers), `credential.rs` (credentials and the check of what
//! they name), `scope.rs` (test users, the resolution of test-user keys, and the scope rules as written), `outputs.rs` (output
//! paths), `problem.rs` (problems, warnings, [`ConfigError`]).
//!
//! # Adding a tenant option
//!
//! 1. Add a field to [`TenantOptions`] (`tenant_fields.rs`) with a doc line and its default in
//!    `TenantOptions::default`.
//! 2. Add one row to `TENANT_FIELDS` next to it: the canonical name (matched case-insensitively),
//!    `top_level: true` if the config JSON's top level may give it as every tenant's default (like
//!    `UpdateExisting`), how its JSON is read (`Text`, `Flag`, `List`), and a setter that validates
//!    and stores it in `t.options` — `Err(text)` refuses the value and the row's `fix` says what to
//!    write instead. A string with a closed set of values (`Deletes`: `"hub"`/`"off"`) is `Text`
//!    with a setter that parses it into an enum; a list of names (`PrivateCategories`,
//!    `IncludeGroups`) is `List`, and `Fields` (an array or `"all"`) is `List` too, since one string
//!    reaches the setter as a one-item list. A new JSON shape (an integer for `MaxDeletes`) is a new
//!    `FieldValue` variant with its reading in `read_field`.
//! 3. Use it as `tenant.options.<field>`, and add it to the README's "Tenant fields" table.
//!
//! Lookup, two spellings with different values, unknown-field warnings, the "tenant field next to
//! `MicrosoftTenants`" problem and the top-level default all follow from the row. A check that
//! needs a file or another variable belongs to stage two (`high.rs`), one that needs Graph (does
//! this group exist? — `run/groups.rs`) to the run.

mod credential;
mod env;
mod high;
mod low;
mod ordered_json;
mod outputs;
mod problem;
mod scope;
mod tenant_fields;
mod values;

/// The client secret, the cloud and the endpoints are the Graph client's own types: one
/// redaction, one table of national-cloud roots, one rule for root URLs.
pub use graph::{Cloud, Endpoints, Secret};

pub use credential::CredentialConfig;
pub use env::{
    ALL_VARIABLES, APP_BUDGET, BATCH, CA_FILE, CLIENT_ID, CLIENT_SECRET, CONFIG_JSON, DRY_RUN, Env,
    GAB_USER_ID, GRAPH_URL, LOGIN_URL, MAX_RUN_MINUTES, STATE, TENANT_ID, TENANTS_JSON,
    TEST_USERS_JSON,
};
pub use high::{Config, EndpointOrigins, TenantConfig};
pub use low::{LowConfig, LowTenant, Source, TestUserMap};
pub use outputs::{DEFAULT_STATE, MissingFolder, StatePath, check_input_path, check_output_path};
pub use problem::{ConfigError, Problem};
pub use scope::{ScopeRules, UnresolvedTestUserKey, UserScope, is_object_id};
pub use tenant_fields::TenantOptions;
pub use values::{check_root_url, parse_app_budget, parse_duration, parse_flag_str};

/// Both stages: the configuration of a run from `env`, or every problem found. Makes no request;
/// reads only the files the configuration names.
pub fn load(env: &Env) -> Result<Config, ConfigError> {
    Config::from_low(LowConfig::parse(env), env)
}

#[cfg(test)]
mod tests;
