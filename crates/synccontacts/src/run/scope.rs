//! The user scopes that wait on verified domains, decided before the first write of any tenant
//! (issue 16: test mode fails closed). A test-user key that is no tenant's configured key leaves
//! the scope of every tenant it may name pending; this fetches those tenants' verified domains
//! (`GET /organization`) and lets the configuration decide (`Config::resolve_test_user_keys`).
//! `sync` and `check` both go through here.
//!
//! It only reads: no tenant is synced here, and a pending tenant whose domains could not be read
//! stays pending (its run then fails with that error, never syncs every user) — and so does every
//! pending tenant a still unmatched key may be meant for ([`Undecided`]).

use graph::{GraphClient, GraphError};

use crate::config::{Config, ConfigError, TenantConfig};
use crate::failure::{Class, Failure, PERM_USERS};

/// How `sync` and `check` say that a test user is unknown to the tenant's directory.
pub const NOT_IN_DIRECTORY: &str = "not in the directory";
/// What to do about it.
pub const FIX_UNKNOWN_TEST_USER: &str =
    "fix the user principal name in the test-user list, or remove the user";

/// Why a tenant's test-user scope is still undecided once the verified domains were read: the
/// tenant fails (never syncs every user), in the same words in `sync` and `check`.
#[derive(Clone, Debug)]
pub enum Undecided {
    /// Its own verified domains could not be read.
    DomainsUnread(GraphError),
    /// Its domains match no key, but these keys matched no tenant while the domains of these
    /// other tenants could not be read: each key may be theirs, or a typo meant for this tenant.
    KeyMayBeMeantForIt {
        keys: Vec<String>,
        unread: Vec<String>,
    },
}

impl Undecided {
    /// The failure `sync` and `check` report for the tenant.
    pub fn failure(&self, t: &TenantConfig) -> Failure {
        const KEY_FIX: &str =
            "key the test-user map by this tenant's TenantId, PrimaryDomain or TenantDomain";
        match self {
            Undecided::DomainsUnread(e) => {
                let mut f = Failure::graph(
                    t,
                    "test-user scope undecided: reading the tenant's verified domains, which decide \
                     its test users (a test-user key may name one of them)",
                    e,
                    PERM_USERS,
                );
                f.fix = format!("{}; or {KEY_FIX}", f.fix);
                f
            }
            Undecided::KeyMayBeMeantForIt { keys, unread } => Failure {
                class: Class::Configuration,
                what: format!(
                    "test-user scope undecided: the test-user key(s) {} match no verified domain \
                     of this tenant nor of any tenant whose domains could be read, and the \
                     verified domains of {} could not be read — a key may be theirs, or a typo \
                     meant for this tenant, so this tenant does not sync every user",
                    keys.iter()
                        .map(|k| format!("\"{k}\""))
                        .collect::<Vec<_>>()
                        .join(", "),
                    unread.join(", ")
                ),
                fix: format!(
                    "correct the key, or {KEY_FIX}, or make the other tenants' verified domains readable ({PERM_USERS})"
                ),
            },
        }
    }
}

/// Decides every pending scope of `config` (one client per tenant, in order). Returns, per
/// tenant, why its scope is still undecided (`None` where it was decided or never pending), or
/// the configuration error of a key that matches no tenant. Makes no request when no scope is
/// pending.
pub async fn resolve_pending_scopes(
    config: &mut Config,
    clients: &[GraphClient],
) -> Result<Vec<Option<Undecided>>, ConfigError> {
    let mut errors: Vec<Option<GraphError>> = vec![None; config.tenants.len()];
    if !config.needs_verified_domains() {
        return Ok(vec![None; config.tenants.len()]);
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
    let unread: Vec<String> = config
        .tenants
        .iter()
        .zip(&errors)
        .filter(|(_, e)| e.is_some())
        .map(|(t, _)| t.label())
        .collect();
    let keys: Vec<String> = config
        .unresolved_test_user_keys
        .iter()
        .map(|k| k.key.clone())
        .collect();
    Ok(config
        .tenants
        .iter()
        .zip(errors)
        .map(|(t, e)| match e {
            Some(e) => Some(Undecided::DomainsUnread(e)),
            None if t.scope.is_pending() => Some(Undecided::KeyMayBeMeantForIt {
                keys: keys.clone(),
                unread: unread.clone(),
            }),
            None => None,
        })
        .collect())
}
