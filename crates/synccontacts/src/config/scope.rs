//! Whose mailboxes a tenant syncs (docs/compatibility.md §1): every licensed user, or test users
//! from the tenant's own `TestUserList` or the test-user map — and, when the map holds keys that
//! match no tenant's `TenantId`, `PrimaryDomain` or `TenantDomain`, a scope *pending* until those
//! keys are resolved against each tenant's verified domains (so `contoso.onmicrosoft.com` works for
//! a tenant configured by its GUID).
//!
//! Test mode fails closed (issue 16): a key that matches no tenant is a configuration error, never
//! "ignored, so every user"; a pending scope holds no user list, so nothing can sync such a tenant
//! by accident. This module decides from plain strings: fetching the verified domains
//! (`GET /organization`) is the run's job, before the first write of any tenant. It makes no
//! request and reads no file.
//!
//! It also holds the tenant's [`ScopeRules`] (`IncludeGroups`, `ExcludeGroups`, `ExcludeUsers`,
//! docs/state-and-deletes.md §4.2) as written, and the checks of their shape (a GUID or a
//! `name@domain`); whether a named group exists is the run's question (`run/groups.rs`).

use std::fmt::Write as _;

use super::high::{Config, TenantConfig};
use super::low::{LowTenant, TestUserMap};
use super::problem::{ConfigError, Findings, Problem};

/// Whose mailboxes a tenant syncs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserScope {
    /// Every licensed user of the tenant (no test-user list applies to it).
    AllLicensedUsers,
    /// Test mode: only these users (never empty).
    TestUsers {
        users: Vec<String>,
        /// Where the list came from, for `check` and logs, e.g. `… TestUserList` or
        /// `AUTOMATION_SYNCCONTACTS_TEST_USER_LIST_BY_TENANT_JSON key "contoso.com"`.
        origin: String,
    },
    /// Not decided yet: the test-user map holds keys that matched no tenant's TenantId,
    /// PrimaryDomain or TenantDomain, and one of them may be a verified domain of this tenant.
    /// [`Config::resolve_test_user_keys`] decides it; a run must never sync a tenant whose scope
    /// is still pending (it would not know whether it is in test mode).
    PendingVerifiedDomains,
}

impl UserScope {
    /// The test users, when the scope is test mode.
    pub fn test_users(&self) -> Option<&[String]> {
        match self {
            Self::TestUsers { users, .. } => Some(users),
            _ => None,
        }
    }

    pub fn is_pending(&self) -> bool {
        matches!(self, Self::PendingVerifiedDomains)
    }

    /// For `check` and logs: `all licensed users`, `2 test users from …`, `pending …`.
    pub fn describe(&self) -> String {
        match self {
            Self::AllLicensedUsers => "all licensed users".into(),
            Self::TestUsers { users, origin } => {
                format!("{} test users from {origin}", users.len())
            }
            Self::PendingVerifiedDomains => {
                "pending: decided by the tenant's verified domains (a test-user key matched none of its configured keys)".into()
            }
        }
    }
}

/// A test-user map entry whose key equals no tenant's TenantId, PrimaryDomain or TenantDomain:
/// it must name a verified domain of a tenant whose scope is pending, or the run is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnresolvedTestUserKey {
    pub key: String,
    /// Its users (never empty).
    pub users: Vec<String>,
    /// Where the map came from (the variable, or the config JSON's `TestUserListByTenant`).
    pub origin: String,
}

/// Stage two: the map's keys that match none of `tenants` (every tenant read, before `--tenant`).
pub(super) fn unresolved_keys(
    map: Option<&TestUserMap>,
    tenants: &[LowTenant],
) -> Vec<UnresolvedTestUserKey> {
    let Some(map) = map else {
        return Vec::new();
    };
    map.entries
        .iter()
        .filter(|(k, _)| {
            !tenants
                .iter()
                .any(|t| static_keys(t).any(|c| same_key(c, k)))
        })
        .map(|(k, users)| UnresolvedTestUserKey {
            key: k.clone(),
            users: users.clone(),
            origin: map.origin.clone(),
        })
        .collect()
}

/// Stage two: one tenant's scope. docs/compatibility.md §1: its own list; else the first map entry
/// whose key equals its TenantId, then PrimaryDomain, then TenantDomain (case-insensitively, as
/// PowerShell's property lookup); else — pending while some key is unresolved, all licensed users
/// otherwise.
pub(super) fn scope_of(t: &LowTenant, map: Option<&TestUserMap>, unresolved: bool) -> UserScope {
    if let Some(own) = &t.test_users {
        return UserScope::TestUsers {
            users: own.clone(),
            origin: format!("{} TestUserList", t.origin),
        };
    }
    if let Some(map) = map {
        for c in static_keys(t) {
            if let Some((k, users)) = map.entries.iter().find(|(k, _)| same_key(c, k)) {
                return UserScope::TestUsers {
                    users: users.clone(),
                    origin: format!("{} key \"{k}\"", map.origin),
                };
            }
        }
    }
    if unresolved {
        UserScope::PendingVerifiedDomains
    } else {
        UserScope::AllLicensedUsers
    }
}

/// Stage two: unresolved keys when no tenant is left for them (every tenant already has its test
/// users) can never apply — a typo, refused now rather than after a request.
pub(super) fn refuse_keys_no_tenant_can_take(
    found: &mut Findings,
    tenants: &[TenantConfig],
    keys: &[UnresolvedTestUserKey],
) {
    if tenants.is_empty() || tenants.iter().any(|t| t.scope.is_pending()) {
        return;
    }
    for k in keys {
        found.problem(
            &k.origin,
            None,
            Some(&format!("\"{}\"", k.key)),
            "matches no tenant: it is no tenant's TenantId, PrimaryDomain or TenantDomain, and every \
             tenant already has its test users (its own TestUserList or another key)",
            "correct it to the TenantId, PrimaryDomain, TenantDomain or a verified domain of the \
             tenant it is meant for, or remove it",
        );
    }
}

fn static_keys(t: &LowTenant) -> impl Iterator<Item = &String> {
    [&t.tenant_id, &t.primary_domain, &t.tenant_domain]
        .into_iter()
        .flatten()
}

fn same_key(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// How many verified domains a refusal lists per tenant (a tenant may have hundreds).
const DOMAINS_SHOWN: usize = 8;

impl Config {
    /// Whether some tenant's user scope waits on its verified domains. False when every
    /// test-user key matched a configured key (or there is no map): such a run fetches nothing.
    pub fn needs_verified_domains(&self) -> bool {
        self.tenants.iter().any(|t| t.scope.is_pending())
    }

    /// Decides every pending scope from the tenants' verified domains: a tenant takes the first
    /// unresolved key (in the map's order) that equals one of its domains, case-insensitively, or
    /// all licensed users when none does. `verified_domains[i]` holds the domain names of
    /// `self.tenants[i]` (`verifiedDomains[].name` of `GET /organization`); `None` (or a short
    /// slice) where they were not fetched — needed only for tenants whose scope is pending.
    ///
    /// Refused, before anything is written: a key that matches no tenant (listing the domains
    /// seen), and two keys naming one tenant. A pending tenant given `None` (its fetch failed)
    /// stays pending — the run must fail that tenant, never sync it — and then an unmatched key
    /// is not refused, since it may name that tenant. It fails closed: while such a key is
    /// unmatched, every pending tenant that no key matched stays pending too, since the key may
    /// as well be a typo meant for it ("all licensed users" would then sync the whole tenant a
    /// test-user list was meant for). Only once every key has found its tenant does a tenant no
    /// key names get all its licensed users.
    pub fn resolve_test_user_keys(
        &mut self,
        verified_domains: &[Option<Vec<String>>],
    ) -> Result<(), ConfigError> {
        let keys = &self.unresolved_test_user_keys;
        let mut matched = vec![false; keys.len()];
        let mut unknown = false;
        // Pending tenants whose domains are known, with the keys each one's domains match.
        let mut hits_of: Vec<(usize, Vec<usize>)> = Vec::new();
        for (i, t) in self.tenants.iter().enumerate() {
            if !t.scope.is_pending() {
                continue;
            }
            let Some(domains) = verified_domains.get(i).and_then(Option::as_ref) else {
                unknown = true;
                continue;
            };
            let hits: Vec<usize> = (0..keys.len())
                .filter(|&j| domains.iter().any(|d| same_key(d, &keys[j].key)))
                .collect();
            for &j in &hits {
                matched[j] = true;
            }
            hits_of.push((i, hits));
        }
        let some_key_unmatched = matched.iter().any(|m| !m);
        let mut decided: Vec<(usize, UserScope)> = Vec::new();
        let mut problems = Vec::new();
        for (i, hits) in hits_of {
            let t = &self.tenants[i];
            match hits.as_slice() {
                // Fails closed: the unmatched key may be a typo meant for this tenant.
                [] if unknown && some_key_unmatched => {}
                [] => decided.push((i, UserScope::AllLicensedUsers)),
                [j] => decided.push((
                    i,
                    UserScope::TestUsers {
                        users: keys[*j].users.clone(),
                        origin: format!(
                            "{} key \"{}\" (a verified domain of the tenant)",
                            keys[*j].origin, keys[*j].key
                        ),
                    },
                )),
                several => {
                    let names: Vec<String> = several
                        .iter()
                        .map(|&j| format!("\"{}\"", keys[j].key))
                        .collect();
                    problems.push(Problem {
                        variable: keys[several[0]].origin.clone(),
                        tenant: Some(format!("tenant {}", t.label())),
                        field: None,
                        problem: format!(
                            "test-user keys {} all name this tenant (verified domains of it)",
                            names.join(" and ")
                        ),
                        fix: "keep one key per tenant, so it is clear which test users apply"
                            .into(),
                    });
                }
            }
        }
        if !unknown {
            for (k, _) in keys.iter().zip(&matched).filter(|(_, m)| !**m) {
                problems.push(self.no_tenant_matches(k, verified_domains));
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError {
                problems,
                read_directory: true,
            });
        }
        for (i, scope) in decided {
            self.tenants[i].scope = scope;
        }
        let still_open: Vec<UnresolvedTestUserKey> = self
            .unresolved_test_user_keys
            .iter()
            .zip(&matched)
            .filter(|(_, m)| !**m)
            .map(|(k, _)| k.clone())
            .collect();
        self.unresolved_test_user_keys = still_open;
        Ok(())
    }

    fn no_tenant_matches(
        &self,
        k: &UnresolvedTestUserKey,
        verified_domains: &[Option<Vec<String>>],
    ) -> Problem {
        let mut seen = String::new();
        for (i, t) in self.tenants.iter().enumerate() {
            if let Some(Some(ds)) = verified_domains.get(i).filter(|_| t.scope.is_pending()) {
                let shown: Vec<&str> = ds.iter().take(DOMAINS_SHOWN).map(String::as_str).collect();
                let more = if ds.len() > DOMAINS_SHOWN {
                    ", …"
                } else {
                    ""
                };
                let _ = write!(seen, "; {}: {}{more}", t.label(), shown.join(", "));
            }
        }
        let mut fix = format!(
            "use a TenantId, PrimaryDomain, TenantDomain or verified domain of the tenant it is \
             meant for (verified domains{seen}); a key that matches nothing is refused so test mode \
             never syncs a whole tenant"
        );
        if self.narrowed {
            fix.push_str(
                "; a key for a tenant left out by --tenant must be that tenant's TenantId, \
                 PrimaryDomain or TenantDomain",
            );
        }
        Problem {
            variable: k.origin.clone(),
            tenant: None,
            field: Some(format!("\"{}\"", k.key)),
            problem: "matches no tenant: it is no tenant's TenantId, PrimaryDomain or \
                      TenantDomain, nor a verified domain of one"
                .into(),
            fix,
        }
    }
}

/// A tenant's scope rules beyond licences and test lists (docs/state-and-deletes.md §4.2), as
/// written and shape-checked: the run resolves the groups against the tenant's directory before
/// the first write of any tenant and applies the rules in the README's order — the test users or
/// the licensed users, ∩ members of `IncludeGroups`, − members of `ExcludeGroups`, −
/// `ExcludeUsers`, − the hub.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeRules {
    /// `IncludeGroups`: only users who are members (directly or through nested groups) of at
    /// least one of these groups (object ids or mail addresses); `None` when not given (never
    /// empty: `[]` is refused, it would leave nobody).
    pub include_groups: Option<Vec<String>>,
    /// `ExcludeGroups`: never members of these groups (same forms, transitive).
    pub exclude_groups: Vec<String>,
    /// `ExcludeUsers`: never these users (user principal names or object ids, any case).
    pub exclude_users: Vec<String>,
}

impl ScopeRules {
    /// No rule given: the scope is the licence filter or the test list alone.
    pub fn is_empty(&self) -> bool {
        self.include_groups.is_none()
            && self.exclude_groups.is_empty()
            && self.exclude_users.is_empty()
    }
}

/// How `IncludeGroups` and `ExcludeGroups` may name a group.
pub(super) const GROUP_LIST_FIX: &str = r#"name each group by its object id (Entra admin center → Groups → the group → Object ID) or its mail address, e.g. ["6a1f5a7e-0000-4000-8000-00000000000a", "sales@contoso.com"]; members of nested groups count"#;
/// How `ExcludeUsers` may name a user.
pub(super) const USER_NAME_LIST_FIX: &str = r#"name each user by user principal name or object id, e.g. ["ceo@contoso.com", "11111111-1111-4111-8111-111111111111"]"#;

/// Stage one: `IncludeGroups` / `ExcludeGroups` items are group object ids or mail addresses.
pub(super) fn group_names(names: Vec<String>) -> Result<Vec<String>, String> {
    refuse_other_shapes(names, "a group object id (a GUID) nor a mail address")
}

/// Stage one: `ExcludeUsers` items are user principal names or object ids.
pub(super) fn user_names(names: Vec<String>) -> Result<Vec<String>, String> {
    refuse_other_shapes(
        names,
        "a user principal name (name@domain) nor an object id (a GUID)",
    )
}

/// `names` when every item is a GUID or a `name@domain`; otherwise the refused items, all at once.
fn refuse_other_shapes(names: Vec<String>, neither: &str) -> Result<Vec<String>, String> {
    let refused: Vec<String> = names
        .iter()
        .filter(|n| !is_object_id(n) && !is_address(n))
        .map(|n| format!("`{}`", graph::text::truncate(n, 60)))
        .collect();
    match refused.as_slice() {
        [] => Ok(names),
        [one] => Err(format!("{one} is neither {neither}")),
        many => Err(format!("{} are neither {neither}", many.join(", "))),
    }
}

/// A directory object id as Entra shows it: a GUID, 8-4-4-4-12 hex digits.
pub fn is_object_id(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

/// `name@domain`: one `@` with something on both sides, no spaces.
fn is_address(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}
