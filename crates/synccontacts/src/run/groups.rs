//! Scope by group and by name (issue 13, docs/state-and-deletes.md §4.2): a tenant's
//! `IncludeGroups`, `ExcludeGroups` and `ExcludeUsers`, resolved against its directory before the
//! first write of any tenant ([`resolve_scope_rules`]), then applied to the users of its scope in
//! the order the README states ([`apply`]):
//!
//! 1. the test users, if the tenant has a test-user list (test mode wins: a group never widens
//!    it), else every licensed user;
//! 2. ∩ the members of any `IncludeGroups` group (when given);
//! 3. − the members of every `ExcludeGroups` group — so a user both included and excluded is out;
//! 4. − `ExcludeUsers`;
//! 5. − the hub.
//!
//! Membership is transitive (`/groups/{id}/transitiveMembers/microsoft.graph.user`, paged,
//! `$select=id,userPrincipalName,mail`). A user is matched by object id or user principal name,
//! case-insensitively: licensed users and members carry both; in test mode each test user's
//! directory entry is read (`GET /users/{x}`) so that both are known there too — a group member
//! read without User.Read.All carries only its id ("limited information", docs/graph-facts.md §4).
//!
//! A named group that is not a group of the tenant is a configuration problem
//! ([`Resolution::Unknown`]): `sync` refuses the run (exit 2) before any mailbox is read, `check`
//! fails the item and exits 2. A read the app may not make (no GroupMember.Read.All), a refused
//! token or Graph errors fail that tenant alone, in `failure.rs`'s class and words
//! ([`Resolution::Failed`]).
//!
//! This module only reads the directory, and decides nothing about contacts: a user the rules
//! leave out is not read this run — their mailbox is not touched, their contacts already in the
//! hub stay, and the state keeps its memory of their folder (leaving the scope is never a
//! deletion, docs/state-and-deletes.md §4).

use std::collections::{HashMap, HashSet};

use graph::{ErrorKind, GraphClient, GraphError, User};

use crate::config::{Config, ConfigError, Problem, ScopeRules, TenantConfig};
use crate::failure::{Class, Failure, PERM_GROUPS, PERM_USERS};

/// What every member read asks for: the two names a rule may match, and the mail for logs.
const MEMBER_SELECT: &str = "id,userPrincipalName,mail";

/// A group a rule names, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleGroup {
    /// As the configuration names it (object id or mail address).
    pub named: String,
    pub id: String,
    pub display_name: Option<String>,
    /// Its users, directly or through nested groups (each once).
    pub users: Vec<User>,
}

/// A tenant's scope rules with their groups read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResolvedRules {
    /// `IncludeGroups`, when given.
    pub include: Option<Vec<RuleGroup>>,
    pub exclude: Vec<RuleGroup>,
    /// `ExcludeUsers`, as written.
    pub exclude_users: Vec<String>,
    /// Test mode: each test user as the list names it, with its directory entry (`None`: the
    /// directory does not know it; its mailbox read then says so).
    pub test_users: Vec<(String, Option<User>)>,
}

/// A tenant's scope rules, after [`resolve_scope_rules`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// No rule given (or the tenant's test-user scope is still pending, which fails the tenant on
    /// its own): the scope is the licence filter or the test list alone.
    None,
    Resolved(ResolvedRules),
    /// Named groups that are no group of the tenant: configuration problems (exit 2).
    Unknown(Vec<Problem>),
    /// The rules could not be resolved: the tenant fails with this (permission, token, Graph).
    Failed(Failure),
}

impl Resolution {
    pub fn is_unknown(&self) -> bool {
        matches!(self, Self::Unknown(_))
    }

    /// The named groups that are no group of the tenant, each a configuration problem.
    pub fn unknown_groups(&self) -> &[Problem] {
        match self {
            Self::Unknown(p) => p,
            _ => &[],
        }
    }

    /// The rules to apply to `t`'s users: `Ok(None)` without rules, `Err` when `t` must not be
    /// synced — its rules failed to resolve, or name unknown groups, or were never resolved
    /// (fails closed: a tenant with rules is never read as if it had none).
    pub fn rules_for(&self, t: &TenantConfig) -> Result<Option<&ResolvedRules>, Failure> {
        match self {
            Self::Resolved(r) => Ok(Some(r)),
            Self::Failed(f) => Err(f.clone()),
            Self::None if t.rules.is_empty() || t.scope.is_pending() => Ok(None),
            Self::None | Self::Unknown(_) => Err(Failure {
                class: Class::Configuration,
                what: "the scope rules (IncludeGroups, ExcludeGroups, ExcludeUsers) are not \
                       resolved (a named group is unknown, or they were not read): the tenant is \
                       not synced without them"
                    .into(),
                fix: UNKNOWN_GROUP_FIX.into(),
            }),
        }
    }
}

/// What to do about a group the directory does not know.
pub const UNKNOWN_GROUP_FIX: &str = "correct the group's object id or mail address (Entra admin center → Groups → the group: Object ID, Group email), or remove it; a group the app may not read answers 403 instead, reported as the missing permission GroupMember.Read.All (exit 3)";

/// Resolves the scope rules of every tenant (one client per tenant, tenants at once): each named
/// group, then the transitive users of each, then (test mode) each test user's directory entry.
/// Reads only; makes no request for a tenant without rules.
pub async fn resolve_scope_rules(config: &Config, clients: &[GraphClient]) -> Vec<Resolution> {
    let reads = config
        .tenants
        .iter()
        .zip(clients)
        .map(|(t, client)| resolve_tenant(t, client));
    futures::future::join_all(reads).await
}

/// The run refused for its unknown groups: every one of every tenant, at once (I6).
pub fn refusal(resolutions: &[Resolution]) -> Option<ConfigError> {
    let problems: Vec<Problem> = resolutions
        .iter()
        .filter_map(|r| match r {
            Resolution::Unknown(p) => Some(p.iter().cloned()),
            _ => None,
        })
        .flatten()
        .collect();
    (!problems.is_empty()).then_some(ConfigError {
        problems,
        read_directory: true,
    })
}

async fn resolve_tenant(t: &TenantConfig, client: &GraphClient) -> Resolution {
    let rules: &ScopeRules = &t.rules;
    if rules.is_empty() || t.scope.is_pending() {
        return Resolution::None;
    }
    // Every named group first, so that all unknown ones are reported together and no member
    // list is read for a configuration that is refused anyway.
    let named = rules
        .include_groups
        .iter()
        .flatten()
        .map(|n| (INCLUDE, n))
        .chain(rules.exclude_groups.iter().map(|n| (EXCLUDE, n)));
    let mut found: Vec<(&'static str, &String, graph::Group)> = Vec::new();
    let mut unknown = Vec::new();
    for (field, name) in named {
        match client.group_by_id_or_mail(name).await {
            Ok(g) => found.push((field, name, g)),
            // Not found, or a mail address two groups share: the configuration names no group.
            Err(e) if matches!(e.kind, ErrorKind::NotFound | ErrorKind::BadRequest) => {
                unknown.push(unknown_group(t, field, name, &e));
            }
            Err(e) => {
                return Resolution::Failed(Failure::graph(
                    t,
                    &format!("reading group \"{name}\" ({field})"),
                    &e,
                    PERM_GROUPS,
                ));
            }
        }
    }
    if !unknown.is_empty() {
        return Resolution::Unknown(unknown);
    }
    // Members, once per group (one group may be named by id and by mail, or in both lists).
    let mut members: HashMap<String, Vec<User>> = HashMap::new();
    for (field, name, g) in &found {
        let key = g.id.to_ascii_lowercase();
        if members.contains_key(&key) {
            continue;
        }
        match client
            .group_transitive_users::<User>(&g.id, MEMBER_SELECT)
            .await
        {
            Ok(users) => {
                members.insert(key, users);
            }
            Err(e) => {
                return Resolution::Failed(Failure::graph(
                    t,
                    &format!("listing the members of group \"{name}\" ({field})"),
                    &e,
                    PERM_GROUPS,
                ));
            }
        }
    }
    let mut resolved = ResolvedRules {
        exclude_users: rules.exclude_users.clone(),
        ..ResolvedRules::default()
    };
    for (field, name, g) in found {
        let group = RuleGroup {
            named: name.clone(),
            users: members[&g.id.to_ascii_lowercase()].clone(),
            id: g.id,
            display_name: g.display_name,
        };
        let list = if field == INCLUDE {
            resolved.include.get_or_insert_with(Vec::new)
        } else {
            &mut resolved.exclude
        };
        // One group named twice in a list (by id and by mail) counts once.
        if !list.iter().any(|g| g.id.eq_ignore_ascii_case(&group.id)) {
            list.push(group);
        }
    }
    if let Some(list) = t.scope.test_users() {
        for u in list {
            match client.user(u).await {
                Ok(entry) => resolved.test_users.push((u.clone(), Some(entry))),
                Err(e) if e.kind == ErrorKind::NotFound => {
                    resolved.test_users.push((u.clone(), None))
                }
                Err(e) => {
                    return Resolution::Failed(test_user_failure(t, u, &e));
                }
            }
        }
    }
    Resolution::Resolved(resolved)
}

const INCLUDE: &str = "IncludeGroups";
const EXCLUDE: &str = "ExcludeGroups";

fn unknown_group(t: &TenantConfig, field: &str, name: &str, e: &GraphError) -> Problem {
    let problem = if e.kind == ErrorKind::NotFound {
        format!("\"{name}\" is not a group of this tenant ({e})")
    } else {
        format!("\"{name}\" names no single group of this tenant ({e})")
    };
    Problem {
        variable: t.origin.clone(),
        tenant: Some(format!("tenant {}", t.label())),
        field: Some(field.into()),
        problem,
        fix: UNKNOWN_GROUP_FIX.into(),
    }
}

fn test_user_failure(t: &TenantConfig, u: &str, e: &GraphError) -> Failure {
    Failure::graph(
        t,
        &format!(
            "looking up test user {u} (with IncludeGroups, ExcludeGroups or ExcludeUsers, each test \
             user's object id and user principal name are read to match them)"
        ),
        e,
        PERM_USERS,
    )
}

/// A user of the base scope: the name its mailbox is addressed by, and every name a rule may
/// give it (lower-cased).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub key: String,
    names: Vec<String>,
}

impl Candidate {
    /// A licensed user: addressed by its UPN (its id without one), matched by both.
    pub fn licensed(u: &User) -> Self {
        let mut c = Self {
            key: u.key().to_owned(),
            names: Vec::new(),
        };
        c.add(u);
        c
    }

    /// A test user as the list names it, with its directory entry when the rules read it.
    pub fn test_user(name: &str, rules: Option<&ResolvedRules>) -> Self {
        let mut c = Self {
            key: name.to_owned(),
            names: vec![name.to_ascii_lowercase()],
        };
        let entry = rules
            .and_then(|r| r.test_users.iter().find(|(n, _)| n == name))
            .and_then(|(_, e)| e.as_ref());
        if let Some(u) = entry {
            c.add(u);
        }
        c
    }

    fn add(&mut self, u: &User) {
        self.names.push(u.id.to_ascii_lowercase());
        self.names.extend(
            u.user_principal_name
                .as_deref()
                .map(str::to_ascii_lowercase),
        );
    }

    fn is_in(&self, names: &HashSet<String>) -> bool {
        self.names.iter().any(|n| names.contains(n))
    }
}

/// The users a tenant syncs, and how each rule narrowed them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scoped {
    /// The mailboxes to read: deduplicated case-insensitively, sorted.
    pub users: Vec<String>,
    /// Each step, in order: the rule (the first is the base scope) and how many users it left.
    pub steps: Vec<(String, usize)>,
}

impl Scoped {
    /// `licensed users 120; ∩ IncludeGroups (2 groups, 80 users) → 75; − ExcludeUsers (1) → 74`:
    /// what `check` shows and `sync` logs.
    pub fn counts(&self) -> String {
        let mut parts = Vec::new();
        for (i, (rule, left)) in self.steps.iter().enumerate() {
            let n = crate::report::thousands(*left);
            parts.push(if i == 0 {
                format!("{rule} {n}")
            } else {
                format!("{rule} → {n}")
            });
        }
        parts.join("; ")
    }

    /// `2 users in scope: licensed users 6; …`, or the failure when the rules leave nobody.
    pub fn summary(&self) -> Result<String, Failure> {
        if self.users.is_empty() {
            return Err(Failure::no_users_in_scope(&self.counts()));
        }
        let n = crate::report::thousands(self.users.len());
        Ok(format!("{n} users in scope: {}", self.counts()))
    }
}

/// Applies the rules to `candidates` (the base scope, named `base` in the counts: "licensed
/// users", "test users") in the module's order; `is_hub` tells the hub by any of its names.
/// Without rules only the hub is removed. Pure.
pub fn apply(
    base: &str,
    candidates: Vec<Candidate>,
    rules: Option<&ResolvedRules>,
    is_hub: impl Fn(&str) -> bool,
) -> Scoped {
    let mut seen = HashSet::new();
    let mut users: Vec<Candidate> = candidates
        .into_iter()
        .filter(|c| seen.insert(c.key.to_ascii_lowercase()))
        .collect();
    let mut steps = vec![(base.to_owned(), users.len())];
    if let Some(r) = rules {
        if let Some(include) = &r.include {
            let names = member_names(include);
            users.retain(|c| c.is_in(&names));
            steps.push((groups_step("∩ IncludeGroups", include), users.len()));
        }
        if !r.exclude.is_empty() {
            let names = member_names(&r.exclude);
            users.retain(|c| !c.is_in(&names));
            steps.push((groups_step("− ExcludeGroups", &r.exclude), users.len()));
        }
        if !r.exclude_users.is_empty() {
            let names: HashSet<String> = r
                .exclude_users
                .iter()
                .map(|n| n.to_ascii_lowercase())
                .collect();
            users.retain(|c| !c.is_in(&names));
            steps.push((
                format!("− ExcludeUsers ({})", r.exclude_users.len()),
                users.len(),
            ));
        }
    }
    let before = users.len();
    users.retain(|c| !is_hub(&c.key) && !c.names.iter().any(|n| is_hub(n)));
    if users.len() < before {
        steps.push(("− the hub".to_owned(), users.len()));
    }
    let mut users: Vec<String> = users.into_iter().map(|c| c.key).collect();
    users.sort_by_key(|u| u.to_ascii_lowercase());
    Scoped { users, steps }
}

/// Every name of every user of `groups`, lower-cased.
fn member_names(groups: &[RuleGroup]) -> HashSet<String> {
    groups
        .iter()
        .flat_map(|g| &g.users)
        .flat_map(|u| std::iter::once(&u.id).chain(u.user_principal_name.as_ref()))
        .map(|n| n.to_ascii_lowercase())
        .collect()
}

/// `∩ IncludeGroups (2 groups, 80 users)`: distinct users over the groups.
fn groups_step(rule: &str, groups: &[RuleGroup]) -> String {
    let users: HashSet<String> = groups
        .iter()
        .flat_map(|g| &g.users)
        .map(|u| u.id.to_ascii_lowercase())
        .collect();
    let plural = |n: usize, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{} {one}s", crate::report::thousands(n))
        }
    };
    format!(
        "{rule} ({}, {})",
        plural(groups.len(), "group"),
        plural(users.len(), "user")
    )
}

#[cfg(test)]
mod tests;
