//! What a plan says besides its writes: whether the memory was used ([`MemoryVerdict`]), and the
//! changes to the company book the run decides ([`Book`]) — tombstones made, cleared, held and
//! released, privacy withdrawals made, held and ended, deletes that are only reported, opt-outs,
//! repairs and bad reads — each entry with
//! what one output line needs (SyncId, name, email, mailbox). Also the per-write results the
//! binary hands back to [`super::next_memory`] ([`WriteResult`]).
//!
//! Plain data: a held delete or a report-only delete is an entry here, never an [`super::Operation`],
//! so no code path can execute one.

use super::Target;
use crate::memory::HoldReason;
use jiff::Timestamp;
use serde::Serialize;
use std::fmt;

/// Whether the memory given to the planner was used (docs/state-and-deletes.md §1.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "verdict")]
pub enum MemoryVerdict {
    /// No memory was given: first-run mode.
    #[default]
    NotGiven,
    /// Used.
    Trusted,
    /// Given but not used: the plan is the first-run plan, and the memory the run commits starts
    /// afresh.
    Distrusted { reason: Distrust },
}

impl MemoryVerdict {
    pub fn is_trusted(&self) -> bool {
        matches!(self, MemoryVerdict::Trusted)
    }
}

/// Why memory was not used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Distrust {
    /// A hub tag line was written after the memory was saved (+10 s): an older copy of the state
    /// file, or another program (the old script) ran in between.
    HubWrittenLater {
        sync_id: String,
        last_updated_at: Timestamp,
        last_plan_time: Timestamp,
    },
    /// Its lists are not sorted or hold duplicates (a mapping bug): never guessed at.
    Malformed,
}

impl fmt::Display for Distrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distrust::HubWrittenLater {
                sync_id,
                last_updated_at,
                last_plan_time,
            } => write!(
                f,
                "the hub was written by another run after this state was saved (an older copy of \
                 the state file, or the old script): SyncId {sync_id} was updated at \
                 {last_updated_at}, the state's last run planned at {last_plan_time}"
            ),
            Distrust::Malformed => f.write_str("the state's lists are not in order (a bug)"),
        }
    }
}

/// One line's worth of a book change: the logical contact and where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub sync_id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// For a tombstone, held delete or repair: the hub; for an opt-out or a report-only delete:
    /// the user's.
    pub mailbox: String,
    pub target: Target,
}

/// A contact removed from the book this run (a new tombstone, or a held one released).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Removal {
    pub entry: Entry,
    pub observed_at: Timestamp,
    /// Tagged user copies deleted for it by this plan.
    pub copies: usize,
}

/// A deletion not executed (no DELETE, no re-create either).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Held {
    pub entry: Entry,
    pub reason: HoldReason,
    /// When a run first saw it gone from the hub, or first withdrew it.
    pub observed_at: Timestamp,
    /// Tagged copies it would delete (a withdrawal's hub copy included).
    pub copies: usize,
    /// A privacy withdrawal (not a hub deletion): the owner who marked their copy private.
    pub withdrawn_by: Option<String>,
}

/// A contact withdrawn from the book this run (docs/state-and-deletes.md §4, I15): its owner marked
/// their own copy private, so its hub copy and the other users' tagged copies are deleted
/// (operations with [`super::DeleteCause::Withdrawn`]); the owner's contact is never touched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Withdrawn {
    /// The hub's (named after a copy carrying the SyncId).
    pub entry: Entry,
    /// The owner's mailbox.
    pub owner: String,
    pub since: Timestamp,
    /// Copies deleted for it by this plan.
    pub copies: usize,
    /// Held by the brake earlier, released now.
    pub released: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RepairReason {
    /// An earlier run planned this hub create and was interrupted.
    InterruptedRun,
    /// User copies carry a SyncId the hub never held according to the memory.
    NotInHub,
}

/// A contact re-created in the hub from users' copies because it was never really deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Repair {
    /// The hub (where it is re-created).
    pub entry: Entry,
    pub reason: RepairReason,
    /// The mailbox whose copy carried the SyncId.
    pub found_in: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum BadReadKind {
    /// The read did not finish (paging cut short): the folder may hold more.
    Incomplete,
    /// It held `remembered` of our contacts and lists none of them.
    Emptied { remembered: usize },
    /// It held `remembered` and lists fewer than half of them.
    LostMost { remembered: usize, found: usize },
}

/// A folder whose read is not evidence: nothing is deleted or opted out because of it. A user
/// folder gets no write at all this run (as if its read had failed); the hub gets none either,
/// and what it seems to have lost is held.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BadRead {
    pub mailbox: String,
    pub target: Target,
    pub kind: BadReadKind,
}

/// The book changes a plan decides (docs/state-and-deletes.md §3, ARCHITECTURE.md).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Book {
    /// New tombstones in force this run (their copies' DELETEs are operations).
    pub tombstones: Vec<Removal>,
    /// Held earlier, released now (their copies' DELETEs are operations).
    pub released: Vec<Removal>,
    /// Held: no DELETE, no re-create.
    pub held: Vec<Held>,
    /// Tombstones cleared because the hub holds the contact again.
    pub cleared: Vec<Entry>,
    /// Tombstones forgotten after [`crate::memory::RETENTION_DAYS`].
    pub pruned: usize,
    /// `Deletes: off`: the tagged user copies a hub deletion would delete (never executed; the hub
    /// copy is re-created instead). One per copy, in its user's mailbox.
    pub would_delete: Vec<Entry>,
    /// Privacy withdrawals applied this run (new, or released by the brake).
    pub withdrawn: Vec<Withdrawn>,
    /// Withdrawals that ended: the owner's copy is no longer private, so the contact is collected
    /// again from it (under its SyncId).
    pub withdrawals_ended: Vec<Entry>,
    /// `Deletes: off`: the copies a withdrawal would delete (never executed; the contact is left
    /// as it is everywhere and not spread further). One per copy, in its mailbox.
    pub would_withdraw: Vec<Entry>,
    /// `UserDeletes: respect`: a user deleted their copy; it is not re-created there.
    pub opt_outs_set: Vec<Entry>,
    /// The user's folder holds the contact again.
    pub opt_outs_cleared: Vec<Entry>,
    pub repairs: Vec<Repair>,
    pub bad_reads: Vec<BadRead>,
}

impl Book {
    /// Whether the brake held anything (the binary's exit code 4).
    pub fn brake_held(&self) -> bool {
        self.held.iter().any(|h| h.reason == HoldReason::Brake)
    }
}

/// What became of one operation, for [`super::next_memory`]. The binary maps Graph's answers:
/// 2xx → `Done` (`Created` for a create whose answer carried the new contact), 404 on a delete →
/// `Done`, 412 → `Conflict`, a lost answer (timeout, dropped connection, 5xx after sending) →
/// `Unconfirmed`, any other error → `Failed`, not attempted (dry run, interrupted) → `NotRun`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteResult {
    /// Applied. `change_key`: the changeKey (or `@odata.etag`) Graph answered with, if any.
    Done {
        change_key: Option<String>,
    },
    /// A create applied, with the new contact's id (a create answered `Done` without an id is
    /// remembered as `Unconfirmed`).
    Created {
        contact_id: String,
        change_key: Option<String>,
    },
    /// 412: the copy changed after our read (a user edit); decided again next run.
    Conflict,
    Failed,
    /// Sent, answer lost: it may or may not have applied.
    Unconfirmed,
    NotRun,
}
