//! The book changes a run decided besides its writes (docs/state-and-deletes.md §3): deletes the
//! brake held (and the command that releases them), deletes `Deletes: "off"` only reports,
//! contacts whose SyncId the hub did not know and that the run linked again (repairs: the
//! planner's, with a state, and the first-run mode's, `build::problems_and_repairs`), users opted
//! out of a contact, contacts withdrawn because their owner marked them private (and withdrawals
//! ended) — as report records ([`BookReport`], [`RepairRecord`], from the plan's
//! [`Book`]) and as the lines an administrator reads (how many of them is `text.rs`'s business:
//! `--actions` caps them like action lines).
//!
//! Text and records only: it never talks to Graph, never writes the state and decides no exit
//! code (held deletes become exit code 4 in `exit.rs`).

use jiff::Timestamp;
use serde::Serialize;
use sync_engine::HoldReason;
use sync_engine::plan::{Book, Entry, RepairReason};

use super::Folder;

/// One logical contact a book change concerns, where.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BookRecord {
    pub sync_id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub mailbox: String,
    pub folder: Folder,
}

impl From<&Entry> for BookRecord {
    fn from(e: &Entry) -> Self {
        Self {
            sync_id: e.sync_id.clone(),
            display_name: e.display_name.clone(),
            email: e.email.clone(),
            mailbox: e.mailbox.clone(),
            folder: e.target.into(),
        }
    }
}

/// A contact deleted from the hub whose deletion was not carried out this run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeldDelete {
    #[serde(flatten)]
    pub contact: BookRecord,
    /// `brake` (released with `--allow-deletes N`) or `badRead` (the hub's listing looked broken:
    /// decided again on the next good read).
    pub reason: HoldReason,
    /// When a run first saw it gone from the hub.
    pub observed_at: Timestamp,
    /// Tagged copies it would delete (a withdrawal's hub copy included).
    pub copies: usize,
    /// A privacy withdrawal (not a hub deletion): the owner who marked their copy private.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_by: Option<String>,
}

/// A contact withdrawn from the company book this run because its owner marked their own copy
/// private (docs/state-and-deletes.md §4): its hub copy and the other users' copies are deleted
/// (the `delete` actions with `"reason": "withdrawn"`); the owner's contact is never touched.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawalRecord {
    /// The hub's, named after a copy carrying the SyncId.
    #[serde(flatten)]
    pub contact: BookRecord,
    /// The owner's mailbox.
    pub owner: String,
    /// When a run first withdrew it.
    pub since: Timestamp,
    /// Copies this run deletes for it.
    pub copies: usize,
    /// Held by the brake earlier, released now.
    pub released: bool,
}

/// Why a contact's SyncId was unknown to the hub (the report's `reason` of a repair).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RepairCause {
    /// An earlier run planned this hub create and was interrupted (the state's pending creates).
    InterruptedRun,
    /// According to the state, the hub never held this SyncId.
    NotInHub,
    /// Nothing tells which (first-run mode has no memory; a copy linked by email or name keeps
    /// no trace of its hub copy): an earlier run was interrupted, or the hub copy was deleted.
    InterruptedOrDeleted,
}

impl From<RepairReason> for RepairCause {
    fn from(r: RepairReason) -> Self {
        match r {
            RepairReason::InterruptedRun => RepairCause::InterruptedRun,
            RepairReason::NotInHub => RepairCause::NotInHub,
        }
    }
}

/// A contact whose SyncId the hub did not know, linked again: re-created in the hub from users'
/// copies (`folder` is the hub's), or a user's copy linked to the hub contact with the same email
/// or name and stamped with its SyncId (`folder` is the user's). Never really deleted, never a
/// data problem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairRecord {
    /// Where the repair writes, with the SyncId the hub did not know.
    #[serde(flatten)]
    pub contact: BookRecord,
    pub reason: RepairCause,
    /// The mailbox whose copy carried the SyncId.
    pub found_in: String,
    /// The plan's operation that carries the repair out (its index in the tenant's `actions`),
    /// which says whether it was done; `None` when the plan holds none.
    #[serde(skip)]
    pub write: Option<usize>,
}

impl RepairRecord {
    /// Whether the repair was re-created in the hub (rather than a user copy linked).
    pub fn recreated(&self) -> bool {
        self.contact.folder == Folder::Hub
    }
}

/// A tenant's book changes in the report (all additive JSON fields of the tenant).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BookReport {
    /// Held by the brake or by a bad read of the hub (or, for a withdrawal, by first-run mode):
    /// no DELETE, no re-create either.
    pub held_deletes: Vec<HeldDelete>,
    /// The command that releases the deletes the brake held (`None` when it held none).
    pub release_command: Option<String>,
    /// `Deletes: "off"`: the tagged user copies a hub deletion would delete; never executed.
    pub would_delete: Vec<BookRecord>,
    /// `UserDeletes: "respect"`: users opted out of a contact they deleted (this run).
    pub opt_outs: Vec<BookRecord>,
    /// Contacts withdrawn from the book this run because their owner marked them private.
    pub withdrawals: Vec<WithdrawalRecord>,
    /// Withdrawals that ended: the owner's copy is no longer private, so the contact is collected
    /// again from it.
    pub withdrawals_ended: Vec<BookRecord>,
    /// `Deletes: "off"`: the copies a withdrawal would delete; never executed.
    pub would_withdraw: Vec<BookRecord>,
}

impl BookReport {
    /// The records of a plan's book changes; `release` builds the release command from the
    /// number of deletes the brake held.
    pub fn of(book: &Book, release: impl FnOnce(usize) -> String) -> Self {
        let held_by_brake = book
            .held
            .iter()
            .filter(|h| h.reason == HoldReason::Brake)
            .count();
        Self {
            held_deletes: book
                .held
                .iter()
                .map(|h| HeldDelete {
                    contact: (&h.entry).into(),
                    reason: h.reason,
                    observed_at: h.observed_at,
                    copies: h.copies,
                    withdrawn_by: h.withdrawn_by.clone(),
                })
                .collect(),
            release_command: (held_by_brake > 0).then(|| release(held_by_brake)),
            would_delete: book.would_delete.iter().map(Into::into).collect(),
            opt_outs: book.opt_outs_set.iter().map(Into::into).collect(),
            withdrawals: book
                .withdrawn
                .iter()
                .map(|w| WithdrawalRecord {
                    contact: (&w.entry).into(),
                    owner: w.owner.clone(),
                    since: w.since,
                    copies: w.copies,
                    released: w.released,
                })
                .collect(),
            withdrawals_ended: book.withdrawals_ended.iter().map(Into::into).collect(),
            would_withdraw: book.would_withdraw.iter().map(Into::into).collect(),
        }
    }

    /// Whether the brake held anything (exit code 4).
    pub fn brake_held(&self) -> bool {
        self.release_command.is_some()
    }
}

/// `NotesId=<id> | Name (email) | in mailbox/folder`: the part every book line shares with the
/// action lines.
fn contact_part(c: &BookRecord) -> String {
    format!(
        "NotesId={} | {} ({}) | in {}/{}",
        c.sync_id,
        c.display_name.as_deref().unwrap_or("(no name)"),
        c.email.as_deref().unwrap_or("no email"),
        c.mailbox,
        c.folder
    )
}

/// `Repaired: NotesId=<id> | Name (email) | in mailbox/folder (why and what was done)`.
pub fn repair_line(r: &RepairRecord) -> String {
    let why = match (r.reason, r.recreated()) {
        (RepairCause::InterruptedRun, _) => "an earlier run was interrupted".to_owned(),
        (RepairCause::NotInHub, _) => format!(
            "{}'s copy carries a SyncId the hub never held; not a deletion",
            r.found_in
        ),
        (RepairCause::InterruptedOrDeleted, true) => format!(
            "re-created from {}'s copy, whose SyncId was not in the hub: an earlier run was \
             interrupted, or the hub copy was deleted",
            r.found_in
        ),
        (RepairCause::InterruptedOrDeleted, false) => "its SyncId was not in the hub: linked to \
             the hub contact with the same email or name, and stamped with its SyncId; an earlier \
             run was interrupted, or the hub copy was deleted"
            .to_owned(),
    };
    format!("Repaired: {} ({why})", contact_part(&r.contact))
}

/// `Opted out: …` (`UserDeletes: "respect"`).
pub fn opt_out_line(o: &BookRecord) -> String {
    format!(
        "Opted out: {} (the user deleted their copy; UserDeletes is \"respect\", so it is not re-created there)",
        contact_part(o)
    )
}

/// `Would delete: …` (`Deletes: "off"`: reported, never executed).
pub fn would_delete_line(w: &BookRecord) -> String {
    format!(
        "Would delete: {} (deleted from the hub; Deletes is \"off\", so nothing is deleted)",
        contact_part(w)
    )
}

/// `Held delete: …`: a deletion not carried out this run, and why.
pub fn held_line(h: &HeldDelete) -> String {
    let why = match h.reason {
        HoldReason::Brake => "held by the brake",
        HoldReason::BadRead => {
            "held: the hub's listing looked broken, decided again on the next good read"
        }
        HoldReason::NoState => {
            "held: without a trusted state nothing is deleted; the contact is not shared \
             further, and the next run withdraws it"
        }
    };
    match &h.withdrawn_by {
        Some(owner) => format!(
            "Held delete: {} | {} tagged copies | withdrawn since {}: marked private by its \
             owner {owner} ({why})",
            contact_part(&h.contact),
            h.copies,
            h.observed_at
        ),
        None => format!(
            "Held delete: {} | {} tagged copies | gone from the hub since {} ({why})",
            contact_part(&h.contact),
            h.copies,
            h.observed_at
        ),
    }
}

/// `Withdrawn: …` (`Would withdraw: …` in a dry run): a contact its owner marked private, taken
/// out of the company book this run.
pub fn withdrawn_line(w: &WithdrawalRecord, dry_run: bool) -> String {
    format!(
        "{}: {} (marked private by its owner {}; {} cop{} {}deleted{}, the owner's contact is \
         kept as it is)",
        if dry_run {
            "Would withdraw"
        } else {
            "Withdrawn"
        },
        contact_part(&w.contact),
        w.owner,
        w.copies,
        if w.copies == 1 { "y" } else { "ies" },
        if dry_run { "to be " } else { "" },
        if w.released {
            ", released from the brake"
        } else {
            ""
        }
    )
}

/// `Withdrawal ended: …`: the owner no longer marks it private; collected again.
pub fn withdrawal_ended_line(c: &BookRecord) -> String {
    format!(
        "Withdrawal ended: {} (its owner no longer marks it private: shared again from their copy)",
        contact_part(c)
    )
}

/// `Would delete: …` for a withdrawal under `Deletes: "off"`.
pub fn would_withdraw_line(c: &BookRecord) -> String {
    format!(
        "Would delete: {} (withdrawn: marked private by its owner; Deletes is \"off\", so \
         nothing is deleted and the contact is not shared further)",
        contact_part(c)
    )
}

/// The line that says how many deletes the brake held and the exact command that releases them
/// (`None` when it held none). Always printed, whatever `-q` and `--actions` say: it needs a
/// decision.
pub fn release_line(b: &BookReport) -> Option<String> {
    let cmd = b.release_command.as_ref()?;
    let n = b
        .held_deletes
        .iter()
        .filter(|h| h.reason == HoldReason::Brake)
        .count();
    Some(format!(
        "Held {n} deletion(s) from the company book: more than one run may remove on its own \
         (MaxDeletes, default more than 10 and more than 10 % of the hub). Nothing else was \
         held. If these deletions are intended, release them with: {cmd}"
    ))
}

#[cfg(test)]
#[path = "book_tests.rs"]
mod tests;
