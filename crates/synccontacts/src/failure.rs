//! One classification of what stops a tenant, shared by `sync` and `check` (issue 16): each
//! [`Failure`] has a [`Class`], which decides the tenant's outcome (and through it the exit code,
//! `exit.rs`), and one text for what happened and one for what to do — the same words in both
//! commands, built here once. The README's exit-code table lists the classes.
//!
//! | class | examples | tenant outcome | exit code when every tenant has it |
//! |---|---|---|---|
//! | [`Class::Unreachable`] | DNS, connection refused, TLS, timeouts (the client's breaker), an untrusted certificate | `failed` | 1 |
//! | [`Class::Credentials`] | the identity platform refused the token (AADSTS…) | `auth-failed` | 3 |
//! | [`Class::Permission`] | 403: a permission or admin consent is missing (User.Read.All, Contacts.ReadWrite, GroupMember.Read.All for group rules) | `auth-failed` | 3 |
//! | [`Class::Configuration`] | the hub mailbox (GlobalAddressBookUserId) is not there; a test-user key that may be a typo for this tenant; scope rules that leave no user | `config-failed` | 3 |
//! | [`Class::Transient`] | Graph kept failing (throttling, server errors) after the client's retries | `failed` | 1 |
//! | [`Class::Stopped`] | the run was stopped (SIGINT, SIGTERM, the deadline) before this finished | `stopped` | 130 / 143 / 1 |
//!
//! A tenant that ran with some failed mailboxes or writes is `partial` (1), decided in `run/`.
//! This module only names and words failures; it never talks to Graph, never prints, and never
//! picks an exit code itself.

use graph::{ErrorKind, GraphError, TokenProblem};

use crate::config::{CA_FILE, GRAPH_URL, LOGIN_URL, TenantConfig};
use crate::exit::TenantOutcome;
use crate::report::Stage;

/// What kind of failure stopped a tenant (or a check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Graph or the login endpoint could not be reached, or not securely.
    Unreachable,
    /// The identity platform refused the credentials.
    Credentials,
    /// A Graph permission or admin consent is missing.
    Permission,
    /// The tenant's configuration names something that is not there (the hub mailbox), or a
    /// test-user key cannot be placed.
    Configuration,
    /// Graph kept failing after the client's retries (throttling, server errors).
    Transient,
    /// The run was stopped before this finished.
    Stopped,
}

impl Class {
    /// The class of a Graph error, when nothing more specific is known about the call.
    pub fn of(e: &GraphError) -> Class {
        match e.kind {
            ErrorKind::Unreachable | ErrorKind::Transport | ErrorKind::UntrustedCertificate => {
                Class::Unreachable
            }
            ErrorKind::Auth => Class::Credentials,
            ErrorKind::Permission => Class::Permission,
            ErrorKind::Cancelled => Class::Stopped,
            _ => Class::Transient,
        }
    }

    /// The tenant outcome a failure of this class gives.
    pub fn outcome(self) -> TenantOutcome {
        match self {
            Class::Unreachable | Class::Transient => TenantOutcome::Failed,
            Class::Credentials | Class::Permission => TenantOutcome::AuthFailed,
            Class::Configuration => TenantOutcome::ConfigFailed,
            Class::Stopped => TenantOutcome::Stopped,
        }
    }
}

/// A failure that stops a tenant (`sync`) or fails a check item (`check`), in the words both print.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub class: Class,
    /// What happened, with Graph's error (and request-id) when there is one.
    pub what: String,
    /// What to do about it.
    pub fix: String,
}

/// A failure that stopped a tenant, and the stage it stopped at (for the JUnit report's cases).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageFailure {
    pub stage: Stage,
    pub failure: Failure,
}

impl Failure {
    /// This failure, as having stopped a tenant at `stage`.
    pub fn at(self, stage: Stage) -> StageFailure {
        StageFailure {
            stage,
            failure: self,
        }
    }

    pub fn outcome(&self) -> TenantOutcome {
        self.class.outcome()
    }

    /// The one-line form `sync` reports: `what — fix: fix`.
    pub fn message(&self) -> String {
        format!("{} — fix: {}", self.what, self.fix)
    }

    /// A failure of a Graph call made for `context`; `permission_fix` says which permission the
    /// call needs, when a 403 is possible.
    pub fn graph(t: &TenantConfig, context: &str, e: &GraphError, permission_fix: &str) -> Self {
        let class = Class::of(e);
        let fix = match class {
            Class::Credentials => token_fix(t, e),
            Class::Permission => permission_fix.to_owned(),
            Class::Unreachable => unreachable_fix(t, e),
            Class::Stopped => STOPPED_FIX.to_owned(),
            Class::Transient | Class::Configuration => TRANSIENT_FIX.to_owned(),
        };
        Self {
            class,
            what: format!("{context}: {e}"),
            fix,
        }
    }

    /// No token: the credential, the endpoint, or the stop.
    pub fn token(t: &TenantConfig, e: &GraphError) -> Self {
        Self::graph(
            t,
            &format!("token with the {}", t.credential.describe()),
            e,
            PERM_USERS,
        )
    }

    /// No user to sync: the test-user list holds only the hub, or no user has a licence.
    pub fn no_users(test_mode: bool) -> Self {
        let (what, fix) = if test_mode {
            (
                "no users in scope: the test-user list holds only the shared mailbox",
                "add test users",
            )
        } else {
            (
                "no licensed users found: no user of the tenant has a licence (the shared mailbox does not count)",
                "assign licences to the users to sync, or configure TestUserList",
            )
        };
        Self {
            class: Class::Transient,
            what: what.into(),
            fix: fix.into(),
        }
    }

    /// The scope rules (IncludeGroups, ExcludeGroups, ExcludeUsers) leave no user: a
    /// configuration of the tenant to look at, not something a rerun fixes. `counts` is how each
    /// rule narrowed the users (`run::groups::Scoped::counts`).
    pub fn no_users_in_scope(counts: &str) -> Self {
        Self {
            class: Class::Configuration,
            what: format!("no users in scope: the scope rules leave none ({counts})"),
            fix: "check IncludeGroups, ExcludeGroups and ExcludeUsers: an included group with no \
                  licensed member, or exclusions that cover every included user"
                .into(),
        }
    }

    /// The hub is not a user of the tenant (404 on its directory entry).
    pub fn hub_not_a_user(t: &TenantConfig, e: &GraphError) -> Self {
        Self {
            class: Class::Configuration,
            what: format!(
                "shared mailbox not found: GlobalAddressBookUserId \"{}\" is not a user of tenant {} ({e})",
                t.hub, t.tenant_id
            ),
            fix: HUB_FIX.to_owned(),
        }
    }

    /// The hub has no Exchange Online mailbox.
    pub fn hub_without_mailbox(t: &TenantConfig, e: &GraphError) -> Self {
        Self {
            class: Class::Configuration,
            what: format!(
                "shared mailbox not found: \"{}\" has no Exchange Online mailbox ({e})",
                t.hub
            ),
            fix: HUB_FIX.to_owned(),
        }
    }
}

/// What to do about a missing hub mailbox.
pub const HUB_FIX: &str = "set GlobalAddressBookUserId to the user principal name of the shared mailbox that holds \"All Contacts\" (it must have an Exchange Online mailbox)";
/// The permission to list users and read the hub's directory entry.
pub const PERM_USERS: &str = "grant the application permission User.Read.All (or Directory.Read.All) to the app registration and click \"Grant admin consent\"";
/// The permission to read groups and their members (`IncludeGroups`, `ExcludeGroups`; Get group and
/// List group transitive members, docs/graph-facts.md §4 "Groups").
pub const PERM_GROUPS: &str = "grant the application permission GroupMember.Read.All (or Directory.Read.All) to the app registration and click \"Grant admin consent\" (IncludeGroups and ExcludeGroups read groups and their members)";
/// The permission to read and write contacts.
pub const PERM_CONTACTS: &str = "grant the application permission Contacts.ReadWrite and admin consent; if the app is scoped to mailboxes (Application Access Policy or Exchange RBAC for Applications), include this mailbox";
/// Graph kept failing.
pub const TRANSIENT_FIX: &str = "Graph kept failing after retries; the run is safe to repeat later — if it persists, quote the request-id to Microsoft support";
/// The run was stopped.
pub const STOPPED_FIX: &str =
    "nothing to fix: the run was stopped; the next run completes what this one did not";

/// What to do when an endpoint could not be reached (or its certificate is not trusted).
fn unreachable_fix(t: &TenantConfig, e: &GraphError) -> String {
    if e.kind == ErrorKind::UntrustedCertificate {
        return format!(
            "if a TLS-intercepting proxy or a test endpoint is in the way, set {CA_FILE} to its CA certificate (PEM)"
        );
    }
    format!(
        "check the network and any proxy between this job and {} / {}, and that Cloud, LoginUrl and GraphUrl (or {LOGIN_URL} and {GRAPH_URL}) name the right hosts; nothing more was sent, and the run is safe to repeat",
        t.endpoints.login, t.endpoints.graph
    )
}

/// The fix for a refused token, naming our settings. What the refusal means is the client's
/// call ([`TokenProblem`], from the AADSTS code); its error text already carries the advice in
/// neutral words, so this says which settings to look at.
pub fn token_fix(t: &TenantConfig, e: &GraphError) -> String {
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
        _ => format!("check TenantId, ClientId and the {cred}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::HUB_FOLDER;

    fn tenant() -> TenantConfig {
        let env: crate::config::Env = [(
            crate::config::TENANTS_JSON,
            r#"[{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t"}]"#,
        )]
        .into_iter()
        .collect();
        crate::config::load(&env).unwrap().tenants.remove(0)
    }

    #[test]
    fn the_hub_fix_names_the_hub_folder() {
        assert!(HUB_FIX.contains(HUB_FOLDER));
    }

    #[test]
    fn an_untrusted_certificate_says_which_setting_trusts_it() {
        let e = GraphError::new(
            ErrorKind::UntrustedCertificate,
            "requesting a token: the server's TLS certificate is not trusted (invalid peer certificate)",
        );
        let f = Failure::token(&tenant(), &e);
        assert_eq!(f.class, Class::Unreachable);
        assert_eq!(
            f.fix,
            "if a TLS-intercepting proxy or a test endpoint is in the way, set \
             AUTOMATION_SYNCCONTACTS_CA_FILE to its CA certificate (PEM)"
        );
        assert!(
            f.message()
                .starts_with("token with the client secret: requesting a token")
        );
        // An endpoint gone: the fix names the roots in use and the settings that set them.
        let gone = GraphError::new(ErrorKind::Unreachable, "Graph at x unreachable");
        let f = Failure::graph(&tenant(), "listing licensed users", &gone, PERM_USERS);
        assert!(
            f.fix.contains("https://login.microsoftonline.com/"),
            "{}",
            f.fix
        );
        assert!(
            f.fix.contains("AUTOMATION_SYNCCONTACTS_GRAPH_URL"),
            "{}",
            f.fix
        );
        assert!(f.fix.contains("safe to repeat"), "{}", f.fix);
    }

    #[test]
    fn graph_errors_fall_into_the_documented_classes() {
        let e = |kind| GraphError::new(kind, "x");
        for (kind, class, outcome) in [
            (
                ErrorKind::Unreachable,
                Class::Unreachable,
                TenantOutcome::Failed,
            ),
            (
                ErrorKind::Transport,
                Class::Unreachable,
                TenantOutcome::Failed,
            ),
            (
                ErrorKind::UntrustedCertificate,
                Class::Unreachable,
                TenantOutcome::Failed,
            ),
            (
                ErrorKind::Auth,
                Class::Credentials,
                TenantOutcome::AuthFailed,
            ),
            (
                ErrorKind::Permission,
                Class::Permission,
                TenantOutcome::AuthFailed,
            ),
            (ErrorKind::Server, Class::Transient, TenantOutcome::Failed),
            (
                ErrorKind::Throttled,
                Class::Transient,
                TenantOutcome::Failed,
            ),
            (ErrorKind::Cancelled, Class::Stopped, TenantOutcome::Stopped),
        ] {
            assert_eq!(Class::of(&e(kind)), class, "{kind}");
            assert_eq!(class.outcome(), outcome, "{kind}");
        }
        assert_eq!(Class::Configuration.outcome(), TenantOutcome::ConfigFailed);
    }
}
