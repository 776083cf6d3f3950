//! `synccontacts check`: the users' troubleshooting guide, automated. For each tenant, without
//! writing anything: configuration, token (and which credential), directory permission, the hub
//! mailbox and its "All Contacts" folder, mailbox permission, and the user scope — each as a
//! checklist line, with what to do when it fails.
//!
//! It must never write (no folder creation, no contact write) and never print a secret; it stops
//! a tenant's checklist at the first failure that makes later checks meaningless (no token → no
//! permission checks).

use std::fmt::Write as _;

use graph::{ErrorKind, FolderRef, GraphClient, GraphError, TokenProblem};
use sync_engine::Contact;

use crate::config::{self, Env, TenantConfig, UserScope};
use crate::exit::{Exit, RunEnd, TenantOutcome, process_exit_code};
use crate::output::Out;
use crate::report::Detail;
use crate::run::{self, HUB_FOLDER, RunEnv};

/// One line of the checklist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckItem {
    pub status: CheckStatus,
    pub what: String,
    pub fix: Option<String>,
    /// A failure whose fix is in the app registration (credential, permission): exit code 3.
    pub auth: bool,
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
            auth: false,
        }
    }
    fn warn(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Warn,
            what: what.into(),
            fix: Some(fix.into()),
            auth: false,
        }
    }
    fn fail(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status: CheckStatus::Fail,
            what: what.into(),
            fix: Some(fix.into()),
            auth: false,
        }
    }
    fn auth_fail(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            auth: true,
            ..Self::fail(what, fix)
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
pub async fn check_command(env: &Env, tenants: &[String], detail: Detail, out: &Out) -> Exit {
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
    let scope_errors = match run::resolve_pending_scopes(&mut config, &clients).await {
        Ok(errors) => errors,
        Err(e) => return refused(&e),
    };
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
    let mut outcomes = Vec::new();
    for ((t, client), scope_error) in config.tenants.iter().zip(&clients).zip(&scope_errors) {
        let items = check_tenant(t, client, scope_error.as_ref()).await;
        let shown: Vec<String> = items
            .iter()
            .filter(|i| !quiet || i.status != CheckStatus::Ok)
            .map(CheckItem::line)
            .collect();
        if !quiet || !shown.is_empty() {
            out.line(&format!("Tenant {} (hub {}):", t.label(), t.hub));
            out.lines(shown.iter().map(String::as_str));
        }
        let failed: Vec<&CheckItem> = items
            .iter()
            .filter(|i| i.status == CheckStatus::Fail)
            .collect();
        outcomes.push(if failed.is_empty() {
            TenantOutcome::Ok
        } else if failed.iter().all(|i| i.auth) {
            TenantOutcome::AuthFailed
        } else {
            TenantOutcome::Failed
        });
    }
    let exit = process_exit_code(&RunEnd::of_tenants(outcomes.iter().copied()));
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

const PERM_USERS: &str = "grant the application permission User.Read.All (or Directory.Read.All) to the app registration and click \"Grant admin consent\"";
const PERM_CONTACTS: &str = "grant the application permission Contacts.ReadWrite and admin consent; if the app is scoped to mailboxes (Application Access Policy or Exchange RBAC for Applications), include this mailbox";

fn is_perm(e: &GraphError) -> bool {
    e.is_auth_or_permission()
}

/// The checklist of one tenant. `scope_error` is why its verified domains could not be read,
/// when a test-user key needed them.
pub async fn check_tenant(
    t: &TenantConfig,
    client: &GraphClient,
    scope_error: Option<&GraphError>,
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
            items.push(CheckItem::auth_fail(
                format!(
                    "token with the {}: {}",
                    t.credential.describe(),
                    run::with_hint(e.clone())
                ),
                token_fix(t, &e),
            ));
            return items;
        }
    }

    // Directory permission and user scope; the first user is also the mailbox-permission probe.
    let mut probe: Option<String> = None;
    match &t.scope {
        UserScope::PendingVerifiedDomains => {
            let e = scope_error.map_or_else(|| "not read".to_owned(), ToString::to_string);
            let what = format!(
                "test-user scope undecided: the tenant's verified domains could not be read ({e})"
            );
            let fix = format!(
                "{PERM_USERS}; or key the test-user map by this tenant's TenantId, PrimaryDomain or TenantDomain"
            );
            items.push(if scope_error.is_some_and(is_perm) {
                CheckItem::auth_fail(what, fix)
            } else {
                CheckItem::fail(what, fix)
            });
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
                Some(e) => items.push(CheckItem::fail(
                    format!("looking up test users: {e}"),
                    "retry later; if it persists, the request-id helps Microsoft support",
                )),
                None if missing.is_empty() => {
                    probe = list
                        .iter()
                        .find(|u| !u.eq_ignore_ascii_case(&t.hub))
                        .cloned();
                    items.push(CheckItem::ok(format!(
                        "{} test users resolved (from {origin})",
                        list.len(),
                    )));
                }
                None => items.push(CheckItem::fail(
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
            Ok(users) => {
                let others: Vec<&graph::User> = users
                    .iter()
                    .filter(|u| !u.key().eq_ignore_ascii_case(&t.hub))
                    .collect();
                let n = others.len();
                probe = others.first().map(|u| u.key().to_owned());
                if n == 0 {
                    items.push(CheckItem::fail(
                        "no licensed users found (the shared mailbox does not count)",
                        "assign licences to the users to sync, or configure TestUserList",
                    ));
                } else {
                    items.push(CheckItem::ok(format!(
                        "{n} licensed users (read users: permitted)"
                    )));
                }
            }
            Err(e) if is_perm(&e) => {
                items.push(CheckItem::auth_fail(
                    format!("permission to read users missing: {e}"),
                    PERM_USERS,
                ));
                return items;
            }
            Err(e) => items.push(CheckItem::fail(
                format!("listing licensed users: {e}"),
                "retry later",
            )),
        },
    }

    // The hub mailbox and its folder.
    match client.user(&t.hub).await {
        Ok(u) => items.push(CheckItem::ok(format!(
            "shared mailbox user exists ({})",
            u.user_principal_name.as_deref().unwrap_or(&u.id)
        ))),
        Err(e) if e.kind == ErrorKind::NotFound => {
            items.push(CheckItem::fail(
                format!("shared mailbox not found: GlobalAddressBookUserId \"{}\" is not a user of this tenant", t.hub),
                "set GlobalAddressBookUserId to the UPN of the shared mailbox",
            ));
            return items;
        }
        Err(e) => items.push(CheckItem::warn(
            format!("shared mailbox user could not be read: {e}"),
            PERM_USERS,
        )),
    }
    match client.find_contact_folder(&t.hub, HUB_FOLDER).await {
        Ok(Some(f)) => {
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
                Err(e) => items.push(mailbox_fail(&t.hub, &e)),
            }
        }
        Ok(None) => items.push(CheckItem::ok(format!(
            "\"{HUB_FOLDER}\" not found in {}; the first real sync creates it",
            t.hub
        ))),
        Err(e) if e.is_missing_mailbox() => items.push(CheckItem::fail(
            format!(
                "shared mailbox not found: \"{}\" has no Exchange Online mailbox ({e})",
                t.hub
            ),
            "GlobalAddressBookUserId must name a shared (or user) mailbox in Exchange Online",
        )),
        Err(e) => items.push(mailbox_fail(&t.hub, &e)),
    }

    // One user's mailbox: an access policy or RBAC scope that leaves users out shows here.
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
            Err(e) => items.push(mailbox_fail(&u, &e)),
        }
    }
    items
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

fn mailbox_fail(mailbox: &str, e: &GraphError) -> CheckItem {
    if is_perm(e) {
        CheckItem::auth_fail(
            format!("permission to read contacts of {mailbox} missing: {e}"),
            PERM_CONTACTS,
        )
    } else {
        CheckItem::fail(
            format!("reading contacts of {mailbox}: {e}"),
            "retry later; if it persists, quote the request-id to Microsoft support",
        )
    }
}

/// The fix for a refused token, naming our settings. What the refusal means is the client's
/// call ([`TokenProblem`], from the AADSTS code); its error text already carries the advice in
/// neutral words, so this line says which settings to look at.
fn token_fix(t: &TenantConfig, e: &GraphError) -> String {
    let cred = t.credential.field();
    match e.token_problem() {
        Some(TokenProblem::WrongSecret) => format!(
            "the {cred} is wrong: create a new client secret in the app registration and update the CI variable"
        ),
        Some(TokenProblem::ExpiredSecret) => {
            "the client secret has expired: create a new one and update the CI variable".into()
        }
        Some(TokenProblem::UnknownApp) => {
            "ClientId is not an app registration in this tenant: check ClientId and TenantId".into()
        }
        Some(TokenProblem::UnknownTenant | TokenProblem::NationalCloudTenant) => {
            "TenantId is unknown (or belongs to another cloud): check TenantId and Cloud".into()
        }
        Some(TokenProblem::InvalidTenant) => {
            "TenantId must be the tenant's GUID or a verified domain name".into()
        }
        Some(TokenProblem::NoMatchingFederatedCredential) => {
            "no federated credential matches the token: check issuer, subject (project path and branch) and audience api://AzureADTokenExchange in the app registration".into()
        }
        Some(
            TokenProblem::AssertionSignatureInvalid
            | TokenProblem::InvalidAssertion
            | TokenProblem::AssertionExpired,
        ) => format!("check the {cred}, the machine clock, and Cloud/LoginUrl"),
        Some(TokenProblem::InvalidScope | TokenProblem::GraphUnavailable) => {
            "check Cloud and GraphUrl".into()
        }
        _ if e.kind == ErrorKind::UntrustedCertificate => {
            "set AUTOMATION_SYNCCONTACTS_CA_FILE to the CA certificate (PEM) of the TLS-intercepting proxy or test endpoint".into()
        }
        _ if e.kind == ErrorKind::Transport => format!(
            "cannot reach {}: check network, proxy, and AUTOMATION_SYNCCONTACTS_CA_FILE for a TLS-intercepting proxy",
            t.endpoints.login
        ),
        _ => format!("check TenantId, ClientId and the {cred}"),
    }
}
