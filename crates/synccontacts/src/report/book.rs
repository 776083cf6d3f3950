//! The book changes a run decided besides its writes (docs/state-and-deletes.md §3): deletes the
//! brake held (and the command that releases them), deletes `Deletes: "off"` only reports,
//! contacts re-created in the hub because an earlier run was interrupted (repairs), users opted
//! out of a contact — as report records ([`BookReport`], from the plan's [`Book`]) and as the
//! lines an administrator reads.
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
    /// Tagged user copies it would delete.
    pub copies: usize,
}

/// A contact re-created in the hub from users' copies that was never really deleted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RepairRecord {
    #[serde(flatten)]
    pub contact: BookRecord,
    /// `interruptedRun` or `notInHub`.
    pub reason: RepairReason,
    /// The mailbox whose copy carried the SyncId.
    pub found_in: String,
}

/// A tenant's book changes in the report (all additive JSON fields of the tenant).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BookReport {
    /// Held by the brake or by a bad read of the hub: no DELETE, no re-create either.
    pub held_deletes: Vec<HeldDelete>,
    /// The command that releases the deletes the brake held (`None` when it held none).
    pub release_command: Option<String>,
    /// `Deletes: "off"`: the tagged user copies a hub deletion would delete; never executed.
    pub would_delete: Vec<BookRecord>,
    pub repairs: Vec<RepairRecord>,
    /// `UserDeletes: "respect"`: users opted out of a contact they deleted (this run).
    pub opt_outs: Vec<BookRecord>,
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
                })
                .collect(),
            release_command: (held_by_brake > 0).then(|| release(held_by_brake)),
            would_delete: book.would_delete.iter().map(Into::into).collect(),
            repairs: book
                .repairs
                .iter()
                .map(|r| RepairRecord {
                    contact: (&r.entry).into(),
                    reason: r.reason,
                    found_in: r.found_in.clone(),
                })
                .collect(),
            opt_outs: book.opt_outs_set.iter().map(Into::into).collect(),
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

/// The lines of a tenant's book changes, in reading order: repairs, opt-outs, report-only
/// deletes (these three only with `all`: `-q` leaves them out), held deletes and the release
/// command (always: they need a decision).
pub fn book_lines(b: &BookReport, all: bool) -> Vec<String> {
    let mut out = Vec::new();
    let (repairs, opt_outs, would) = if all {
        (&b.repairs[..], &b.opt_outs[..], &b.would_delete[..])
    } else {
        (&[][..], &[][..], &[][..])
    };
    for r in repairs {
        let why = match r.reason {
            RepairReason::InterruptedRun => "an earlier run was interrupted".to_owned(),
            RepairReason::NotInHub => format!(
                "{}'s copy carries a SyncId the hub never held; not a deletion",
                r.found_in
            ),
        };
        out.push(format!("Repaired: {} ({why})", contact_part(&r.contact)));
    }
    for o in opt_outs {
        out.push(format!(
            "Opted out: {} (the user deleted their copy; UserDeletes is \"respect\", so it is not re-created there)",
            contact_part(o)
        ));
    }
    for w in would {
        out.push(format!(
            "Would delete: {} (deleted from the hub; Deletes is \"off\", so nothing is deleted)",
            contact_part(w)
        ));
    }
    for h in &b.held_deletes {
        let why = match h.reason {
            HoldReason::Brake => "held by the brake",
            HoldReason::BadRead => {
                "held: the hub's listing looked broken, decided again on the next good read"
            }
        };
        out.push(format!(
            "Held delete: {} | {} tagged copies | gone from the hub since {} ({why})",
            contact_part(&h.contact),
            h.copies,
            h.observed_at
        ));
    }
    if let Some(cmd) = &b.release_command {
        let n = b
            .held_deletes
            .iter()
            .filter(|h| h.reason == HoldReason::Brake)
            .count();
        out.push(format!(
            "Held {n} deletion(s) from the company book: more than one run may remove on its own \
             (MaxDeletes, default more than 10 and more than 10 % of the hub). Nothing else was \
             held. If these deletions are intended, release them with: {cmd}"
        ));
    }
    out
}
