//! What a run tells its reader: the script's per-action lines (the first few of each kind, or
//! all), per-mailbox and per-step totals (docs/compatibility.md §9), failures with Graph
//! request-ids, data problems, repairs — and the `--report FILE` JSON (docs/sync-rules.md §6),
//! which holds every action.
//!
//! This module holds the report's types; `build.rs` turns a tenant's plan and the outcomes of its
//! writes into records (and tells repairs from data problems), `book.rs` the plan's book changes
//! (held deletes, repairs, …) into records and lines, `text.rs` the report into the lines on
//! stdout, `json.rs` into the `--report` file, `junit.rs` into the `--junit` file (GitLab's unit
//! test report). It never talks to Graph, never decides an exit code (see `exit.rs`) and never
//! receives a secret (no field here can hold one: errors arrive already redacted by the client).

mod book;
pub mod build;
mod json;
mod junit;
#[cfg(test)]
mod tests;
mod text;

use serde::{Serialize, Serializer};
use sync_engine::{Field, Target};

use crate::exit::TenantOutcome;
use crate::run::{HUB_FOLDER, USER_FOLDER};
use crate::stop::StopCause;

pub use book::{
    BookRecord, BookReport, HeldDelete, RepairCause, RepairRecord, WithdrawalRecord, held_line,
    opt_out_line, release_line, repair_line, withdrawal_ended_line, withdrawn_line,
    would_delete_line, would_withdraw_line,
};
pub use json::write_json;
pub use junit::write_junit;
pub use text::{
    ActionLines, Detail, action_line, mailbox_lines, run_summary, run_summary_noting, stop_line,
    tenant_counts, tenant_text, thousands, totals_line,
};

/// The `--report` document: `{"dryRun", "tenants": [...]}` plus a top-level `error` when the
/// configuration was refused.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub dry_run: bool,
    /// A configuration error (exit code 2): nothing was written (and `dry_run` is true).
    pub error: Option<String>,
    /// The process exit code of this run (docs/sync-rules.md §6).
    pub exit_code: u8,
    /// SIGINT or SIGTERM stopped the run (exit code 130/143).
    pub interrupted: bool,
    /// What stopped the run, if anything did: `"SIGINT"`, `"SIGTERM"` or `"deadline"`.
    pub stopped_by: Option<StopCause>,
    pub tenants: Vec<TenantReport>,
}

impl RunReport {
    /// Writes done and writes planned, over every tenant that planned.
    pub fn writes_done_of_planned(&self) -> (usize, usize) {
        let actions = self.tenants.iter().flat_map(|t| &t.actions);
        let done = actions
            .clone()
            .filter(|a| a.result == ActionResult::Done)
            .count();
        (done, actions.count())
    }
}

/// One tenant's part of the report.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantReport {
    pub tenant_id: String,
    /// docs/sync-rules.md §6: a partial run is `"failed"` with `outcome: "partial"`.
    pub status: TenantStatus,
    /// Finer than `status`: `ok`, `partial`, `failed`, `auth-failed`.
    pub outcome: TenantOutcome,
    pub error: Option<String>,
    /// Users in scope (hub removed), including those skipped for having no mailbox.
    pub users: usize,
    pub hub: String,
    pub hub_folder: HubFolder,
    pub step1: StepTotals,
    pub step2: StepTotals,
    /// HTTP requests sent to Graph and the token endpoint for this tenant (the client's count).
    pub requests: u64,
    pub skipped_mailboxes: Vec<MailboxNote>,
    pub failed_mailboxes: Vec<MailboxNote>,
    /// Data problems the planner found (duplicate keys in a folder, …): reported, never "fixed".
    pub problems: Vec<String>,
    /// Contacts whose SyncId the hub did not know, linked again by this run — re-created in the
    /// hub, or a user copy linked to the hub contact with its email or name — because an earlier
    /// run was interrupted (or the hub copy was deleted): not data problems. Those whose write was
    /// done (or planned) are counted as `step1.repaired`. Both the planner's repairs (with a
    /// state) and the first-run mode's are here, once each (`build::problems_and_repairs`).
    pub repairs: Vec<RepairRecord>,
    pub actions: Vec<ActionRecord>,
    /// What the run made of the state file for this tenant (docs/state-and-deletes.md §1.2):
    /// `new`, `loaded` or `reset: <why>`; `null` when the tenant stopped before it was read.
    pub state: Option<String>,
    /// Held deletes, the release command, report-only deletes, opt-outs, privacy withdrawals.
    #[serde(flatten)]
    pub book: BookReport,
    /// What the `--junit` file needs beyond the JSON report's fields (whose shape is a
    /// contract, so these are not serialized): the tenant's label (`TenantId (PrimaryDomain)`),
    /// the stage a stopped tenant stopped at, the user mailboxes that were read.
    #[serde(skip)]
    pub stages: StageFacts,
}

/// A tenant's facts for the stage-by-stage view of the `--junit` file (see [`TenantReport::stages`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageFacts {
    /// How the tenant is named to people (`TenantId (PrimaryDomain)`); empty: the tenant id.
    pub label: String,
    /// Where a tenant that stopped before planning stopped; `None` when it planned (or when the
    /// code that stopped it did not say: the JUnit file then shows a failing `run` case).
    pub stopped_at: Option<Stage>,
    /// The user mailboxes read (hub excluded), besides the skipped and failed ones in the report.
    pub read: Vec<String>,
}

/// The stages of a tenant that can stop it before anything is planned (ARCHITECTURE "One run").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Getting an access token.
    Token,
    /// The directory reads that need the app's directory permission: the hub's directory entry,
    /// the user scope (licensed users, or the verified domains a test-user key needs); also an
    /// empty scope.
    Permissions,
    /// The hub: its mailbox, its "All Contacts" folder (found or created), the folder's read.
    Hub,
}

impl TenantReport {
    /// A tenant that stopped before planning (token, user scope, hub).
    pub fn failed(tenant_id: &str, hub: &str, outcome: TenantOutcome, error: String) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            status: TenantStatus::Failed,
            outcome,
            error: Some(error),
            users: 0,
            hub: hub.to_owned(),
            hub_folder: HubFolder::Unknown,
            step1: StepTotals::default(),
            step2: StepTotals::default(),
            requests: 0,
            skipped_mailboxes: Vec::new(),
            failed_mailboxes: Vec::new(),
            problems: Vec::new(),
            repairs: Vec::new(),
            actions: Vec::new(),
            state: None,
            book: BookReport::default(),
            stages: StageFacts::default(),
        }
    }
}

/// A tenant's `status` (docs/sync-rules.md §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Everything planned was done (or planned, in a dry run).
    Ok,
    /// Partial, stopped, or refused its credentials: see `outcome`.
    Failed,
}

/// What became of the hub's "All Contacts" folder (`hubFolder`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HubFolder {
    Found,
    Created,
    /// A dry run found none (a real run creates it).
    WouldCreate,
    /// The tenant stopped before the folder was looked up.
    Unknown,
}

/// The folder an action wrote, serialized (and printed) by its name in Outlook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Folder {
    /// The hub's "All Contacts".
    Hub,
    /// A user's default "Contacts".
    UserDefault,
}

impl Folder {
    pub fn name(self) -> &'static str {
        match self {
            Folder::Hub => HUB_FOLDER,
            Folder::UserDefault => USER_FOLDER,
        }
    }
}

impl From<Target> for Folder {
    fn from(t: Target) -> Self {
        match t {
            Target::Hub => Folder::Hub,
            Target::UserDefault => Folder::UserDefault,
        }
    }
}

impl std::fmt::Display for Folder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Folder {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StepTotals {
    pub created: usize,
    pub updated: usize,
    /// Contact copies that were already up to date (or newer than the source).
    pub skipped: usize,
    pub stamped: usize,
    /// Copies deleted (DELETE, or planned in a dry run): tagged copies of a contact deleted from
    /// the book (docs/state-and-deletes.md §3).
    pub deleted: usize,
    pub failed: usize,
    /// Writes refused with 412 because the contact changed after it was read
    /// (docs/reliability.md I9); the next run syncs the newer version. Not a failure.
    pub conflicts: usize,
    /// Writes not done because the run stopped (a signal, the deadline, an unreachable
    /// endpoint); the next run completes them.
    pub stopped: usize,
    /// Repairs done (or planned) this run: contacts whose SyncId the hub did not know, linked
    /// again — re-created in the hub (also counted as created) or a user copy linked to its hub
    /// contact (also counted as stamped or updated). Step 1 only (it is the hub's link that is
    /// repaired; see [`TenantReport::repairs`]). Not a data problem.
    pub repaired: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MailboxNote {
    pub mailbox: String,
    pub reason: String,
    pub request_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Create,
    Update,
    Stamp,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionResult {
    Done,
    Planned,
    Failed,
    /// Refused with 412 (the contact changed after we read it); left for the next run.
    Conflict,
    /// Not done because the run stopped first (a signal, the deadline, an unreachable endpoint):
    /// not sent, or in flight when the run gave up on it (its `error` says which); the next run
    /// completes it.
    Stopped,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delta {
    /// Serialized as its Graph JSON name (`mobilePhone`).
    pub field: Field,
    pub old: String,
    pub new: String,
}

/// One planned or performed write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    pub step: u8,
    pub action: ActionKind,
    pub mailbox: String,
    /// `All Contacts` (the hub folder) or `Contacts` (a user's default folder).
    pub folder: Folder,
    pub sync_id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// Graph JSON names of the fields an update changes.
    pub changed: Vec<Field>,
    pub delta: Vec<Delta>,
    pub created_by: String,
    pub source_mailbox: String,
    pub result: ActionResult,
    pub error: Option<String>,
    pub request_id: Option<String>,
    /// Why a delete deletes, when it is not a hub deletion: `withdrawn` (its owner marked their
    /// own copy private, docs/state-and-deletes.md §4). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<DeleteReason>,
}

/// [`ActionRecord::reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum DeleteReason {
    /// A privacy withdrawal: the hub copy or another user's copy of a contact its owner marked
    /// private.
    Withdrawn,
}

/// Totals of one step from its actions, plus the skipped count the planner reports and the
/// repairs.
pub fn totals(actions: &[ActionRecord], step: u8, skipped: usize, repaired: usize) -> StepTotals {
    let mut t = StepTotals {
        skipped,
        repaired,
        ..StepTotals::default()
    };
    for a in actions.iter().filter(|a| a.step == step) {
        match a.result {
            ActionResult::Done | ActionResult::Planned => match a.action {
                ActionKind::Create => t.created += 1,
                ActionKind::Update => t.updated += 1,
                ActionKind::Stamp => t.stamped += 1,
                ActionKind::Delete => t.deleted += 1,
            },
            ActionResult::Failed => t.failed += 1,
            ActionResult::Conflict => t.conflicts += 1,
            ActionResult::Stopped => t.stopped += 1,
        }
    }
    t
}

/// The result of one operation: the action record's `result`, `error` and `requestId`.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub result: ActionResult,
    pub error: Option<String>,
    pub request_id: Option<String>,
}

impl Outcome {
    pub fn planned() -> Self {
        Self {
            result: ActionResult::Planned,
            error: None,
            request_id: None,
        }
    }
    pub fn done(request_id: Option<String>) -> Self {
        Self {
            result: ActionResult::Done,
            error: None,
            request_id,
        }
    }
    pub fn stopped(error: String) -> Self {
        Self {
            result: ActionResult::Stopped,
            error: Some(error),
            request_id: None,
        }
    }
}
