//! `synccontacts check`: the users' troubleshooting guide, automated. For each tenant, without
//! writing anything: configuration, token (and which credential), directory permission, the user
//! scope (with the users each scope rule leaves, or the unknown groups it names — exit 2 as in
//! `sync`), the hub mailbox and its "All Contacts" folder, mailbox permission, and the state file
//! (found, bound to this tenant and hub, age of the last run, tombstones, held deletes, opt-outs)
//! — each as a checklist line, with what to do when it fails.
//!
//! A failure is worded and classified by `failure.rs`, as `sync` words it, so both commands give
//! the same exit code and the same fix for the same cause: the tenant's outcome is the class of
//! its first failed item (where `sync` would have stopped). It must never write (no folder
//! creation, no contact write; the state file is opened read-only) and never print a secret; it
//! stops a tenant's checklist at the first failure that makes later checks meaningless (no token
//! → no permission checks).

use std::fmt::Write as _;

use graph::{ErrorKind, FolderRef, GraphClient, GraphError};
use sync_engine::Contact;

use crate::config::{self, Env, TenantConfig, UserScope};
use crate::exit::{Exit, RunEnd, TenantOutcome, process_exit_code};
use crate::failure::{Class, Failure, PERM_CONTACTS, PERM_USERS};
use crate::output::Out;
use crate::report::Detail;
use crate::run::{self, HUB_FOLDER, RunEnv, groups};
use crate::state::{self, Store};

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckItem {
    pub status: CheckStatus,
    pub what: String,
    pub fix: Option<String>,
    /// For a failed item: the tenant outcome `sync` would have for the same cause.
    pub outcome: TenantOutcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
}

impl CheckItem {
    fn ok(what: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Ok,
            what: what.into(),
            fix: None,
            outcome: TenantOutcome::Ok,
        }
    }
    fn warn(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Warn,
            what: what.into(),
            fix: Some(fix.into()),
            outcome: TenantOutcome::Ok,
        }
    }
    /// A failure in `sync`'s words and class.
    fn failure(f: Failure) -> Self {
        Self {
            status: CheckStatus::Fail,
            outcome: f.outcome(),
            what: f.what,
            fix: Some(f.fix),
        }
    }
    /// A state file `check` cannot read: every tenant's checklist shows it, and the command
    /// exits 2 as `sync` does when it refuses to run with that file.
    fn state_fail(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Fail,
            what: what.into(),
            fix: Some(fix.into()),
            outcome: TenantOutcome::Failed,
        }
    }
    /// A failure `sync` meets as a failed mailbox (the rest of the tenant goes on): partial.
    fn mailbox_fail(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Fail,
            what: what.into(),
            fix: Some(fix.into()),
            outcome: TenantOutcome::Partial,
        }
    }

    pub fn line(&self) -> String {
        let tag = match self.status {
            CheckStatus::Ok => "[ok]  ",
            CheckStatus::Warn => "[warn]",
            CheckStatus::Fail => "[FAIL]",
        };
        let mut s = format!("  {tag} {}", self.what);
        if let Some(f) = &self.fix {
            let _ = write!(s, "\n         fix: {f}");
        }
        s
    }
}

/// `synccontacts check [--tenant KEY]...`. With [`Detail::Quiet`] (`-q`) only warnings,
/// failures and the last line are printed; that line always ends with the exit code returned.
pub async fn check_command(
    env: &Env,
    tenants: &[String],
    state_path: Option<&std::path::Path>,
    detail: Detail,
    out: &Out,
) -> Exit {
    let refused = |e: &config::ConfigError| {
        let exit = process_exit_code(&RunEnd::refused());
        out.line(&format!(
            "[FAIL] configuration: {} problem(s), listed on stderr; nothing was written; exit code {}",
            e.problems.len(),
            exit.code()
        ));
        eprint!("{e}");
        exit
    };
    let mut config = match config::load(env).and_then(|mut c| {
        c.select_tenants(tenants)?;
        if let Some(p) = state_path {
            c.state = config::StatePath::option(p.to_owned());
        }
        Ok(c)
    }) {
        Ok(c) => c,
        Err(e) => return refused(&e),
    };
    let run_env = RunEnv::default();
    let clients = match run::build_clients(&config, &run_env, env) {
        Ok(c) => c,
        Err(e) => return refused(&e),
    };
    crate::cli::trace_effective_config(&config);
    // Test-user keys that are no tenant's configured key: resolved against the verified domains
    // of the tenants they may name, as the sync does before its first write.
    let undecided = match run::resolve_pending_scopes(&mut config, &clients).await {
        Ok(u) => u,
        Err(e) => return refused(&e),
    };
    // The scope rules, resolved as the sync resolves them; an unknown group is a failed item of
    // its tenant here, and the exit code is `sync`'s: 2.
    let rules = groups::resolve_scope_rules(&config, &clients).await;
    let quiet = detail == Detail::Quiet;
    if !quiet {
        out.line(&format!(
            "[ok]   configuration: {} tenant(s) from {}{}",
            config.tenants.len(),
            config.source.variable(),
            if config.dry_run { ", DryRun on" } else { "" }
        ));
    }
    for w in &config.warnings {
        out.line(&format!("[warn] {w}"));
    }
    // Read-only: no lock, no folder, no move, no write (a missing file stays missing).
    let mut store = state::open(&config.state, true);
    let mut outcomes = Vec::new();
    let scopes = undecided.iter().zip(&rules);
    for ((t, client), (undecided, rules)) in config.tenants.iter().zip(&clients).zip(scopes) {
        let mut seen = Seen::default();
        let scope = run::TenantScope {
            undecided: undecided.as_ref(),
            rules,
        };
        let mut items = check_tenant(t, client, scope, &mut seen).await;
        items.extend(state_items(&mut store, t, &seen, &config.state));
        let shown: Vec<String> = items
            .iter()
            .filter(|i| !quiet || i.status != CheckStatus::Ok)
            .map(CheckItem::line)
            .collect();
        if !quiet || !shown.is_empty() {
            out.line(&format!("Tenant {} (hub {}):", t.label(), t.hub));
            out.lines(shown.iter().map(String::as_str));
        }
        // The first failure is where `sync` would have stopped (or, for a mailbox, gone on).
        outcomes.push(
            items
                .iter()
                .find(|i| i.status == CheckStatus::Fail)
                .map_or(TenantOutcome::Ok, |i| i.outcome),
        );
    }
    // A state file `sync` would refuse (held by a newer synccontacts, unreadable) is exit 2
    // here too: one classification for both commands.
    let exit = process_exit_code(&RunEnd {
        refused: groups::refusal(&rules).is_some() || store.is_err(),
        ..RunEnd::of_tenants(outcomes.iter().copied())
    });
    out.line(&summary(&outcomes, exit));
    exit
}

/// The last line: how many tenants passed, and the exit code.
fn summary(outcomes: &[TenantOutcome], exit: Exit) -> String {
    format!(
        "Check finished: {}; exit code {}",
        crate::report::tenant_counts(outcomes.iter().copied()),
        exit.code()
    )
}

fn is_perm(e: &GraphError) -> bool {
    e.is_auth_or_permission()
}

/// Whether the client can send nothing more (an endpoint is gone): later checks would only
/// repeat it.
fn is_halt(e: &GraphError) -> bool {
    matches!(Class::of(e), Class::Unreachable | Class::Stopped)
}

/// What the checklist learnt that the state is bound to (docs/state-and-deletes.md §1.1).
#[derive(Debug, Default)]
pub struct Seen {
    /// The token's `tid`.
    pub tenant_guid: Option<String>,
    /// The hub's directory object id.
    pub hub_object_id: Option<String>,
    /// The hub folder's id, when it exists.
    pub hub_folder_id: Option<String>,
    /// Whether the checklist got as far as looking for the hub folder.
    pub looked_for_folder: bool,
}

/// The checklist of one tenant. `scope` is what was decided about its users before (why its
/// test-user scope is still undecided, its resolved scope rules); `seen` gets what the state is
/// bound to.
pub async fn check_tenant(
    t: &TenantConfig,
    client: &GraphClient,
    scope: run::TenantScope<'_>,
    seen: &mut Seen,
) -> Vec<CheckItem> {
    let mut items = vec![CheckItem::ok(format!(
        "configuration valid ({}, {} cloud, {})",
        t.origin,
        t.cloud,
        endpoints_text(t)
    ))];

    // Token.
    match client.token().await {
        Ok(info) => {
            seen.tenant_guid = info.tenant_id.clone();
            let roles = if info.roles.is_empty() {
                "no application roles in the token".to_owned()
            } else {
                format!("roles: {}", info.roles.join(", "))
            };
            items.push(CheckItem::ok(format!(
                "token obtained with the {} ({roles})",
                t.credential.describe()
            )));
            let has = |r: &str| info.roles.iter().any(|x| x.eq_ignore_ascii_case(r));
            if !has("Contacts.ReadWrite") {
                items.push(CheckItem::warn(
                    "Contacts.ReadWrite is not among the token's roles",
                    "fine if it is granted through Exchange RBAC for Applications (those grants never appear in the token); otherwise grant it and admin consent",
                ));
            }
        }
        Err(e) => {
            items.push(CheckItem::failure(Failure::token(t, &e)));
            return items;
        }
    }

    // Directory permission and user scope; the first user is also the mailbox-permission probe.
    let mut probe: Option<String> = None;
    let rules = match scope.rules.rules_for(t) {
        Ok(r) => r,
        // Unknown groups: a failed item each, as `sync` refuses the run (exit 2); the checklist
        // goes on without the rules.
        Err(_) if scope.rules.is_unknown() => {
            for p in scope.rules.unknown_groups() {
                let field = p.field.as_deref().unwrap_or("scope rules");
                items.push(CheckItem::failure(Failure {
                    class: Class::Configuration,
                    what: format!("{field}: {}", p.problem),
                    fix: p.fix.clone(),
                }));
            }
            None
        }
        Err(f) => {
            items.push(CheckItem::failure(f));
            return items;
        }
    };
    match &t.scope {
        UserScope::PendingVerifiedDomains => {
            items.push(CheckItem::failure(match scope.undecided {
                Some(u) => u.failure(t),
                None => Failure {
                    class: Class::Configuration,
                    what: "test-user scope undecided: the tenant's verified domains were not read"
                        .into(),
                    fix: "key the test-user map by this tenant's TenantId, PrimaryDomain or \
                          TenantDomain"
                        .into(),
                },
            }));
            return items;
        }
        UserScope::TestUsers {
            users: list,
            origin,
        } => {
            let mut missing = Vec::new();
            let mut denied = None;
            for u in list {
                match client.user(u).await {
                    Ok(_) => {}
                    Err(e) if e.kind == ErrorKind::NotFound => missing.push(u.clone()),
                    Err(e) => {
                        denied = Some(e);
                        break;
                    }
                }
            }
            match denied {
                Some(e) if is_perm(&e) => items.push(CheckItem::warn(
                    format!("test users ({}) could not be looked up: {e}", list.len()),
                    format!("test-user scope works without it, but {PERM_USERS}"),
                )),
                Some(e) => items.push(CheckItem::failure(Failure::graph(
                    t,
                    "looking up test users",
                    &e,
                    PERM_USERS,
                ))),
                None if missing.is_empty() => {
                    probe = list
                        .iter()
                        .find(|u| !u.eq_ignore_ascii_case(&t.hub))
                        .cloned();
                    items.push(CheckItem::ok(format!(
                        "{} test users resolved (from {origin})",
                        list.len(),
                    )));
                    if let Some(r) = rules {
                        let named = list
                            .iter()
                            .map(|u| groups::Candidate::test_user(u, Some(r)));
                        probe = scoped_item(t, "test users", named.collect(), r, &mut items);
                    }
                }
                None => items.push(CheckItem::mailbox_fail(
                    format!(
                        "test users {}: {}",
                        run::NOT_IN_DIRECTORY,
                        missing.join(", ")
                    ),
                    run::FIX_UNKNOWN_TEST_USER,
                )),
            }
        }
        UserScope::AllLicensedUsers => match client.licensed_users().await {
            Ok(users) if rules.is_some() => {
                let licensed = users.iter().map(groups::Candidate::licensed).collect();
                items.push(CheckItem::ok(format!(
                    "{} licensed users (read users: permitted)",
                    users.len()
                )));
                probe =
                    rules.and_then(|r| scoped_item(t, "licensed users", licensed, r, &mut items));
            }
            Ok(users) => {
                let others: Vec<&graph::User> = users
                    .iter()
                    .filter(|u| !u.key().eq_ignore_ascii_case(&t.hub))
                    .collect();
                let n = others.len();
                probe = others.first().map(|u| u.key().to_owned());
                if n == 0 {
                    items.push(CheckItem::failure(Failure::no_users(false)));
                } else {
                    items.push(CheckItem::ok(format!(
                        "{n} licensed users (read users: permitted)"
                    )));
                }
            }
            Err(e) => {
                let stop = is_perm(&e) || is_halt(&e);
                items.push(CheckItem::failure(Failure::graph(
                    t,
                    "listing licensed users",
                    &e,
                    PERM_USERS,
                )));
                if stop {
                    return items;
                }
            }
        },
    }

    // The hub mailbox and its folder.
    match client.user(&t.hub).await {
        Ok(u) => {
            seen.hub_object_id = Some(u.id.clone());
            items.push(CheckItem::ok(format!(
                "shared mailbox user exists ({})",
                u.user_principal_name.as_deref().unwrap_or(&u.id)
            )))
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            items.push(CheckItem::failure(Failure::hub_not_a_user(t, &e)));
            return items;
        }
        Err(e) if is_halt(&e) => {
            items.push(CheckItem::failure(Failure::graph(
                t,
                "reading the shared mailbox's user",
                &e,
                PERM_USERS,
            )));
            return items;
        }
        Err(e) => items.push(CheckItem::warn(
            format!("shared mailbox user could not be read: {e}"),
            PERM_USERS,
        )),
    }
    seen.looked_for_folder = true;
    match client.find_contact_folder(&t.hub, HUB_FOLDER).await {
        Ok(Some(f)) => {
            seen.hub_folder_id = Some(f.id.clone());
            items.push(CheckItem::ok(format!(
                "\"{HUB_FOLDER}\" found in {}",
                t.hub
            )));
            match client
                .list_contacts::<Contact>(
                    &t.hub,
                    &FolderRef::Id(f.id),
                    &t.options.fields.select_list(),
                )
                .await
            {
                Ok(c) => items.push(CheckItem::ok(format!(
                    "\"{HUB_FOLDER}\" readable ({} contacts)",
                    c.len()
                ))),
                Err(e) => items.push(hub_fail(t, &e)),
            }
        }
        Ok(None) => items.push(CheckItem::ok(format!(
            "\"{HUB_FOLDER}\" not found in {}; the first real sync creates it",
            t.hub
        ))),
        Err(e) if e.is_missing_mailbox() => {
            items.push(CheckItem::failure(Failure::hub_without_mailbox(t, &e)));
        }
        Err(e) if is_halt(&e) => {
            items.push(hub_fail(t, &e));
            return items;
        }
        Err(e) => items.push(hub_fail(t, &e)),
    }

    // One user's mailbox: an access policy or RBAC scope that leaves users out shows here. Not
    // while a named group is unknown: who is in scope is not known, so no user is read.
    if scope.rules.is_unknown() {
        probe = None;
    }
    if let Some(u) = probe {
        match client
            .list_contacts::<Contact>(&u, &FolderRef::Default, &t.options.fields.select_list())
            .await
        {
            Ok(c) => items.push(CheckItem::ok(format!(
                "user mailboxes readable (e.g. {u}: {} contacts)",
                c.len()
            ))),
            Err(e) if e.is_missing_mailbox() => items.push(CheckItem::warn(
                format!("{u} has no Exchange Online mailbox; such users are skipped"),
                "nothing to do unless this user should be synced (assign an Exchange plan)",
            )),
            // As in `sync`, a user's mailbox that cannot be read is a failed mailbox: partial.
            Err(e) if is_perm(&e) => items.push(CheckItem::mailbox_fail(
                format!("permission to read contacts of {u} missing: {e}"),
                PERM_CONTACTS,
            )),
            Err(e) => items.push(CheckItem::failure(Failure::graph(
                t,
                &format!("reading the contacts of {u}"),
                &e,
                PERM_CONTACTS,
            ))),
        }
    }
    items
}

/// The users in scope after the rules, as `sync` counts them per rule; the probe user.
fn scoped_item(
    t: &TenantConfig,
    base: &str,
    candidates: Vec<groups::Candidate>,
    rules: &groups::ResolvedRules,
    items: &mut Vec<CheckItem>,
) -> Option<String> {
    let is_hub = |u: &str| u.eq_ignore_ascii_case(&t.hub);
    let scoped = groups::apply(base, candidates, Some(rules), is_hub);
    items.push(match scoped.summary() {
        Ok(line) => CheckItem::ok(format!("{line} (read groups: permitted)")),
        Err(f) => CheckItem::failure(f),
    });
    scoped.users.into_iter().next()
}

const STATE_KEEP: &str =
    "keep the state file between runs (README: \"Keeping the state in GitLab CI\")";

/// The state section of a tenant's checklist: never fails the tenant (the state is only memory),
/// warns where a sync would run in first-run mode or hold deletes.
fn state_items(
    store: &mut Result<Store, config::Problem>,
    t: &TenantConfig,
    seen: &Seen,
    path: &config::StatePath,
) -> Vec<CheckItem> {
    let shown = path.path.display();
    let store = match store {
        Ok(s) => s,
        Err(p) => {
            return vec![CheckItem::state_fail(
                format!("state file {shown}: {}", p.problem),
                p.fix.clone(),
            )];
        }
    };
    match store.status() {
        // A first setup has none yet; a lost one shows as a first-run-mode sync (and its warning).
        sync_state::OpenStatus::Missing => {
            return vec![CheckItem::ok(format!(
                "no state file at {shown} ({}) yet: the first real sync creates it (a sync without \
                 it runs in first-run mode: nothing is deleted)",
                path.origin
            ))];
        }
        sync_state::OpenStatus::Unusable { why } => {
            return vec![CheckItem::warn(
                format!(
                    "state file {shown} is unusable ({why}): the next sync moves it aside and runs \
                     in first-run mode"
                ),
                "nothing to do unless it happens again (then check what else writes that path)",
            )];
        }
        _ => {}
    }
    let Some(folder_id) = &seen.hub_folder_id else {
        let what = if seen.looked_for_folder {
            format!(
                "state file {shown} found; \"{HUB_FOLDER}\" does not exist yet, so there is no memory of this hub"
            )
        } else {
            format!(
                "state file {shown} found; not compared with this tenant (the checks above stopped first)"
            )
        };
        return vec![CheckItem::ok(what)];
    };
    let binding = state::binding(
        seen.tenant_guid.as_deref(),
        &t.tenant_id,
        seen.hub_object_id.as_deref(),
        &t.hub,
        folder_id,
    );
    let records = match store.records(&binding.tenant_id) {
        Ok(r) => r,
        Err(e) => {
            return vec![CheckItem::warn(
                format!("state file {shown} could not be read: {e}"),
                "the next sync runs in first-run mode; if this repeats, move the file away",
            )];
        }
    };
    let Some(s) = records else {
        let others = store.tenant_ids();
        if others.is_empty() {
            return vec![CheckItem::ok(format!(
                "state file {shown} holds no memory yet: the first real sync fills it"
            ))];
        }
        return vec![CheckItem::warn(
            format!(
                "state file {shown} holds no memory of this tenant ({}), only of: {}; the next \
                 sync of this tenant runs in first-run mode (nothing is deleted)",
                binding.tenant_id,
                others.join(", ")
            ),
            format!("check that --state names this tenant's file, or {STATE_KEEP}"),
        )];
    };
    let mut items = Vec::new();
    if s.binding != binding {
        items.push(CheckItem::warn(
            format!(
                "state file {shown} is bound to {}: the next sync runs in first-run mode (nothing \
                 is deleted) and replaces it",
                state::other_binding(&s.binding, &binding)
            ),
            "expected after GlobalAddressBookUserId changed or \"All Contacts\" was re-created; otherwise check --state",
        ));
        return items;
    }
    #[allow(
        clippy::disallowed_methods,
        reason = "check reports the age of the last run against the wall clock; it plans nothing"
    )]
    let now = jiff::Timestamp::now();
    let last = s.last_commit_time.or(s.last_plan_time);
    let age = last
        .and_then(|m| jiff::Timestamp::from_microsecond(m).ok())
        .map_or_else(
            || "no run recorded".to_owned(),
            |at| format!("last run {} ago ({at})", age(now.duration_since(at))),
        );
    items.push(CheckItem::ok(format!(
        "state file {shown} bound to this tenant ({}) and hub ({}); {age}",
        binding.tenant_id, binding.hub_mailbox_id
    )));
    let held = s.tombstones.iter().filter(|t| t.held.is_some()).count();
    let copies: usize = s.folders.iter().map(|f| f.copies.len()).sum();
    items.push(CheckItem::ok(format!(
        "state remembers {copies} contact copies in {} folders, {} tombstones (contacts deleted \
         from the hub), {} opt-outs",
        s.folders.len(),
        s.tombstones.len() - held,
        s.opt_outs.len()
    )));
    if held > 0 {
        items.push(CheckItem::warn(
            format!("{held} deletion(s) from the company book are held (by the brake or a bad read)"),
            format!(
                "if they are intended: synccontacts sync --tenant {} --allow-deletes {held}; otherwise restore the contacts in \"{HUB_FOLDER}\"",
                t.tenant_id
            ),
        ));
    }
    items
}

/// `3 d 4 h`, `2 h 5 min`, `42 s`: how long ago, for a checklist line.
fn age(d: jiff::SignedDuration) -> String {
    let s = d.as_secs().max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// `login <root>, Graph <root>`, each with the setting it came from when not the cloud's.
fn endpoints_text(t: &TenantConfig) -> String {
    let from = |origin: Option<&str>| origin.map(|o| format!(" from {o}")).unwrap_or_default();
    format!(
        "login {}{}, Graph {}{}",
        t.endpoints.login,
        from(t.endpoint_origins.login),
        t.endpoints.graph,
        from(t.endpoint_origins.graph)
    )
}

/// The hub's contacts could not be read: as `sync` words it.
fn hub_fail(t: &TenantConfig, e: &GraphError) -> CheckItem {
    CheckItem::failure(Failure::graph(
        t,
        &format!("reading the contact folders of {}", t.hub),
        e,
        PERM_CONTACTS,
    ))
}
