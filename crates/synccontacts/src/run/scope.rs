//! The user scopes that wait on verified domains, decided before the first write of any tenant
//! (issue 16: test mode fails closed). A test-user key that is no tenant's configured key leaves
//! the scope of every tenant it may name pending; this fetches those tenants' verified domains
//! (`GET /organization`) and lets the configuration decide (`Config::resolve_test_user_keys`).
//! `sync` and `check` both go through here.
//!
//! It only reads: no tenant is synced here, and a pending tenant whose domains could not be read
//! stays pending (its run then fails with that error, never syncs every user).

use graph::{GraphClient, GraphError};

use crate::config::{Config, ConfigError};

/// How `sync` and `check` say that a test user is unknown to the tenant's directory.
pub const NOT_IN_DIRECTORY: &str = "not in the directory";
/// What to do about it.
pub const FIX_UNKNOWN_TEST_USER: &str =
    "fix the user principal name in the test-user list, or remove the user";

/// Decides every pending scope of `config` (one client per tenant, in order). Returns, per
/// tenant, why its verified domains could not be read (`None` where they were read or not
/// needed), or the configuration error of a key that matches no tenant. Makes no request when
/// no scope is pending.
pub async fn resolve_pending_scopes(
    config: &mut Config,
    clients: &[GraphClient],
) -> Result<Vec<Option<GraphError>>, ConfigError> {
    let mut errors: Vec<Option<GraphError>> = vec![None; config.tenants.len()];
    if !config.needs_verified_domains() {
        return Ok(errors);
    }
    let reads = config
        .tenants
        .iter()
        .zip(clients)
        .map(|(t, client)| async move {
            if t.scope.is_pending() {
                Some(client.verified_domains().await)
            } else {
                None
            }
        });
    let mut domains: Vec<Option<Vec<String>>> = vec![None; config.tenants.len()];
    for (i, read) in futures::future::join_all(reads)
        .await
        .into_iter()
        .enumerate()
    {
        match read {
            Some(Ok(ds)) => domains[i] = Some(ds.into_iter().map(|d| d.name).collect()),
            Some(Err(e)) => errors[i] = Some(e),
            None => {}
        }
    }
    config.resolve_test_user_keys(&domains)?;
    Ok(errors)
}
