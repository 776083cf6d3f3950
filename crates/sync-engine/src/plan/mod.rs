//! The convergence plan: from one snapshot of the hub folder and of every user's default Contacts
//! folder — and, when there is one, the memory of the previous run — the complete, sorted list of
//! writes that makes every copy of every contact equal to its newest version
//! (docs/compatibility.md §5–§8 and docs/sync-rules.md §2), and the deletions from the company book
//! the run decides (docs/state-and-deletes.md).
//!
//! Data flow, one file per step (see ARCHITECTURE.md "Plan"):
//! 0. `memory` — whether the given memory may be used at all (trust check); with it, the version
//!    each copy competes with (a copy as we left it competes with the version we wrote, not with
//!    the later time of our own write, docs/state-and-deletes.md §2), and which folders' reads are
//!    bad (not evidence: planned as if unread).
//! 1. `keys` — *read keys* of every contact once: SyncId (last tag line), primary email,
//!    displayName key; a user's private contact (`crate::privacy`) is marked private and takes
//!    part in nothing. `privacy` — contacts withdrawn because their owner marked their own copy
//!    private (new, going on, ended). `deletes` — tombstones (trusted memory only) new, cleared,
//!    pruned, held by the brake (`brake`, one count with the withdrawals) or released; the tagged
//!    copies of deleted or withdrawn contacts get a Delete or are left alone, and take part in
//!    nothing else. *Hub logical contacts*: each hub contact
//!    with a new SyncId is one logical contact; a hub contact without SyncId matching an earlier
//!    one by email/displayName is a duplicate and is left alone. *Link user copies* mailbox by
//!    mailbox (fixed order: sorted mailbox names) through the hub's index, ladder SyncId → email →
//!    displayName (only without email), SyncId matches first. A second copy of the same logical
//!    contact in one folder is a duplicate, left alone.
//! 2. `final_keys` — unlinked copies also try the key each hub contact will have *after* this
//!    run (its winner's), and extra copies that matched by a key about to change are released, so
//!    that the next run links exactly as this one did (I1).
//! 3. `group` — *group the rest* across users by the same ladder into new logical contacts (never
//!    an untagged look-alike of a tombstoned contact older than its deletion). `opt_outs` (trusted
//!    memory only) — a copy a user deleted is re-created, or (`UserDeletes: respect`) not.
//! 4. `decide` — phase 1, per logical contact: winner = newest version (ties: hub, then mailbox
//!    order); SyncId; update every other copy that differs (rule §2.7), stamp every copy lacking
//!    the SyncId — one write per copy. Whether a copy differs is decided in one folder-ordered
//!    pass, and the writes are then recorded folder by folder (memory order).
//! 5. `create` — phase 2: create where the contact is missing, unless the target folder, as it
//!    will be after phase 1, already holds a contact the ladder would match, which is reported
//!    instead (never a duplicate, invariant I2), or its user opted out. A contact re-created in
//!    the hub from tagged users' copies is a repair (with memory).
//! 6. `problems` — the data problems of each folder (duplicate keys, extra copies, …).
//!
//! Both phases only record small pending writes; `build` turns them into [`Operation`]s once, in
//! plan order. Every operation is independent of the others (SyncIds are chosen up front), so the
//! binary may run them in any order or in parallel; a crash part-way leaves copies the next run
//! links by SyncId. `next` computes the memory the run leaves ([`next_memory`]) from the input,
//! the plan and the write results. `book` holds the plan's non-write outputs.
//!
//! Decisions use only the timestamps read at the start of the run (and the memory), and a copy's
//! note text is only ever its own text plus a fresh tag line (I3). This module never performs
//! I/O, reads a clock or draws random numbers: `now`, the memory and the SyncId generator come in
//! with the input (the passes over every contact use at most one scoped thread per core; the
//! result does not depend on them). It never merges, and it deletes only what
//! docs/state-and-deletes.md §3 and §4 allow: with trusted memory, a complete and good read, tagged
//! user copies of a contact deleted from the hub, and the tagged copies (hub copy included) of a
//! contact withdrawn because its owner marked it private — never an untagged contact, never a
//! user's own private contact. Without memory it never deletes. A private user copy is never a
//! source and never written, and private categories never reach another copy (the hub is compared
//! without them). Data problems are reported, not fixed.
//!
//! Memory: an [`Operation`] holds its notes once and shares the winner's fields with the other
//! writes of its contact ([`WrittenFields`]); its JSON body is built when sent
//! ([`Operation::body`]).

mod book;
mod brake;
mod build;
mod create;
mod decide;
mod deletes;
mod final_keys;
mod group;
mod input;
mod keys;
mod memory;
mod next;
mod opt_outs;
mod privacy;
mod problems;
#[cfg(test)]
mod tests;

pub use book::{
    BadRead, BadReadKind, Book, Distrust, Entry, Held, MemoryVerdict, Removal, Repair,
    RepairReason, Withdrawn, WriteResult,
};
pub use input::{
    BrakeLimit, DeleteOptions, Deletes, MailboxSnapshot, PlanInput, ReadStatus, UserDeletes,
};
pub use next::next_memory;

use crate::field::{Field, FieldSet};
use crate::fields::{self, FieldChange, WrittenFields};
use crate::memory::{FolderMemory, Guid, Memory};
use crate::model::Contact;
use crate::tags::{self, SyncId};
use keys::{CopyRef, KeyedContact, Link, LogicalContact};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What an operation does, without its data: for sorting, counting and reporting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Action {
    /// POST a new contact (body: the winner's fields and a tag line).
    Create,
    /// PATCH the winner's differing fields, `displayName`, and the copy's notes with a fresh tag line.
    Update,
    /// PATCH only the copy's notes (its own text and the SyncId tag line) and its `displayName`.
    Stamp,
    /// DELETE a tagged copy of a contact leaving the book (it goes to Deleted Items): a user copy
    /// of a contact deleted from the hub, or a copy of a contact its owner marked private.
    Delete,
}

/// Why a copy is deleted ([`Write::Delete`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DeleteCause {
    /// A user's tagged copy of a contact deleted from the hub (a tombstone,
    /// docs/state-and-deletes.md §3).
    DeletedFromHub,
    /// The hub copy, or another user's tagged copy, of a contact withdrawn because its owner
    /// marked their own copy private (docs/state-and-deletes.md §4, I15).
    Withdrawn,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Target {
    /// The hub's "All Contacts" folder.
    Hub,
    /// A user's default Contacts folder.
    UserDefault,
}

/// One write, independent of every other (see the module note).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Operation {
    /// 1 = users → hub (hub writes and stamps of user copies), 2 = hub → users (user data writes).
    /// A reporting category only: operations are independent, so it implies no order.
    pub step: u8,
    /// Target mailbox.
    pub mailbox: String,
    pub target: Target,
    pub sync_id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub created_by: String,
    /// Where the data comes from (the `LastUpdatedBy` written).
    pub source_mailbox: String,
    /// The `personalNotes` written (the body's `personalNotes`); if a created contact comes back
    /// without it, write it again (docs/compatibility.md §7).
    pub expected_notes: String,
    /// The write itself, with exactly the data its kind needs.
    pub write: Write,
}

/// The kind of a write and the data only that kind has: an update or a stamp names the existing
/// copy it changes, a create names none — so one can never be sent as the other.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Write {
    /// POST a new contact into the target folder.
    Create {
        /// The winner's set fields.
        #[serde(skip)]
        fields: WrittenFields,
    },
    /// PATCH the copy `contact_id` with the winner's differing fields and `displayName`, and its
    /// own notes with a fresh tag line.
    Update {
        contact_id: String,
        /// `If-Match`: the etag read at the start of the run (invariant I9); `None` only if that
        /// read had none (Graph always returns one), and then the write is not guarded.
        etag: Option<String>,
        /// Differing fields, old → new, for the report.
        changes: Vec<FieldChange>,
        #[serde(skip)]
        fields: WrittenFields,
    },
    /// PATCH only the notes of the copy `contact_id` (its own text and the SyncId tag line), and
    /// its own `displayName` ([`Operation::display_name`]).
    Stamp {
        contact_id: String,
        /// `If-Match`, as for [`Write::Update`].
        etag: Option<String>,
    },
    /// DELETE the copy `contact_id`, which carries the SyncId ([`Operation::sync_id`]) of a
    /// contact leaving the book: a user copy of a tombstoned contact, or the hub copy or another
    /// user's copy of a withdrawn one (`cause`). Only ever planned for a copy whose own tag line
    /// names that SyncId, never for an owner's own private contact; 404 means done.
    Delete {
        contact_id: String,
        /// `If-Match`, as for [`Write::Update`]: a copy edited after our read is not deleted (412;
        /// the next run decides again).
        etag: Option<String>,
        cause: DeleteCause,
    },
}

impl Write {
    pub fn action(&self) -> Action {
        match self {
            Write::Create { .. } => Action::Create,
            Write::Update { .. } => Action::Update,
            Write::Stamp { .. } => Action::Stamp,
            Write::Delete { .. } => Action::Delete,
        }
    }
}

impl Operation {
    /// An operation that allocates nothing, to be overwritten.
    fn placeholder() -> Operation {
        Operation {
            step: 0,
            mailbox: String::new(),
            target: Target::Hub,
            sync_id: String::new(),
            display_name: None,
            email: None,
            created_by: String::new(),
            source_mailbox: String::new(),
            expected_notes: String::new(),
            write: Write::Stamp {
                contact_id: String::new(),
                etag: None,
            },
        }
    }

    pub fn action(&self) -> Action {
        self.write.action()
    }

    /// The existing contact this operation writes or deletes; `None` for a create.
    pub fn contact_id(&self) -> Option<&str> {
        match &self.write {
            Write::Create { .. } => None,
            Write::Update { contact_id, .. }
            | Write::Stamp { contact_id, .. }
            | Write::Delete { contact_id, .. } => Some(contact_id),
        }
    }

    /// Differing fields, old → new (empty unless an update).
    pub fn changes(&self) -> &[FieldChange] {
        match &self.write {
            Write::Update { changes, .. } => changes,
            Write::Create { .. } | Write::Stamp { .. } | Write::Delete { .. } => &[],
        }
    }

    /// The exact JSON to POST/PATCH, including `personalNotes`: for a Create every field the
    /// winner has set; for an Update every differing field (clears as `null`/`[]`) and always
    /// `displayName` (docs/graph-facts.md §1 displayName caveat); for a Stamp only the copy's own
    /// `displayName` (same caveat) and the notes; for a Delete nothing (a DELETE has no body).
    pub fn body(&self) -> Map<String, Value> {
        let mut m = Map::new();
        match &self.write {
            Write::Create { fields } | Write::Update { fields, .. } => fields.write_json(&mut m),
            Write::Stamp { .. } => {
                if let Some(d) = &self.display_name {
                    m.insert("displayName".into(), Value::String(d.clone()));
                }
            }
            Write::Delete { .. } => return m,
        }
        m.insert(
            "personalNotes".into(),
            Value::String(self.expected_notes.clone()),
        );
        m
    }

    /// The `$select` that reads back what this operation writes, for [`Operation::is_applied`]:
    /// `id`, `personalNotes` and the fields it sends (`displayName` for a stamp).
    pub fn read_back_select(&self) -> String {
        let sent = match &self.write {
            Write::Create { fields } | Write::Update { fields, .. } => fields.sent(),
            Write::Stamp { .. } => FieldSet::of([Field::DisplayName]),
            Write::Delete { .. } => FieldSet::EMPTY,
        };
        sent.select_list()
    }

    /// Whether `contact`, as read back from Graph, now holds what this operation writes: every
    /// field of the body compares equal as Graph round-trips it (the planner's comparison,
    /// [`Field::equal`]), and its `personalNotes` are [`Operation::expected_notes`] up to
    /// line endings and trailing whitespace ([`tags::same_notes`]). For an update or a stamp,
    /// `contact` must also be the copy written (same id).
    ///
    /// Tells a 412 after a retried PATCH whose first attempt was applied (the write is done) from
    /// a user's edit made after the read (a conflict). A contact read back never holds a Delete
    /// (a deleted contact cannot be read): always false for one.
    pub fn is_applied(&self, contact: &Contact) -> bool {
        if matches!(self.write, Write::Delete { .. }) {
            return false;
        }
        let notes = contact.personal_notes().unwrap_or("");
        if !tags::same_notes(notes, &self.expected_notes) {
            return false;
        }
        match &self.write {
            Write::Create { fields } => fields.held_by(&contact.fields),
            Write::Update {
                contact_id, fields, ..
            } => *contact_id == contact.id() && fields.held_by(&contact.fields),
            Write::Stamp { contact_id, .. } => {
                // The displayName is only written when the copy had one (see `body`).
                *contact_id == contact.id()
                    && self
                        .display_name
                        .as_deref()
                        .is_none_or(|d| fields::strings_equal(Some(d), contact.display_name()))
            }
            Write::Delete { .. } => false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ProblemKind {
    /// Several contacts in one folder carry the same SyncId.
    DuplicateSyncId,
    /// Several contacts in one folder share a primary email.
    DuplicateEmail,
    /// Several contacts without email in one folder share a displayName.
    DuplicateDisplayName,
    /// A contact matched a logical contact that already has a copy in this folder; left alone.
    ExtraCopy,
    /// A user copy's SyncId is not in the hub (the hub copy was deleted); it is re-created in the
    /// hub, or linked by email/displayName if the ladder finds another hub contact.
    UnknownSyncId,
    /// A contact with neither email nor displayName; without a SyncId it cannot be matched and is
    /// left alone.
    NoEmailOrName,
    /// A contact was not created in a folder because the folder already holds a different contact
    /// with the same SyncId, email or displayName (it would be a duplicate).
    CreateSuppressed,
    /// An untagged contact matches a contact deleted from the hub (a tombstone) by email or
    /// displayName and was last modified before the deletion: not collected, or it would bring the
    /// deleted contact back under a new SyncId. Left alone (never deleted: it is not ours).
    TombstonedLookAlike,
}

/// A data problem: reported, never "fixed" by deleting or merging.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataProblem {
    pub kind: ProblemKind,
    pub mailbox: String,
    pub target: Target,
    /// The contacts concerned, in folder order.
    pub contact_ids: Vec<String>,
    /// The SyncId, email or displayName concerned.
    pub key: String,
    pub detail: String,
}

/// The plan: every write of the run, sorted, every data problem found, whether the memory was
/// used, and the book changes decided (tombstones, held deletes, opt-outs, …).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub operations: Vec<Operation>,
    pub problems: Vec<DataProblem>,
    pub memory_verdict: MemoryVerdict,
    pub book: Book,
    /// What [`next_memory`] needs besides the input and the results.
    #[serde(skip)]
    draft: next::Draft,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The SyncIds this plan creates in the hub: recorded as pending before the first write, so
    /// an interrupted run is repaired, never taken for a deletion (docs/state-and-deletes.md §1.4). SyncIds that are
    /// not in GUID layout cannot be remembered and are left out.
    pub fn pending_creates(&self) -> Vec<Guid> {
        let mut v: Vec<Guid> = self
            .operations
            .iter()
            .filter(|o| o.target == Target::Hub && o.action() == Action::Create)
            .filter_map(|o| Guid::from_sync_id(SyncId::parse(&o.sync_id)?))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// The state every step shares: the folders (hub first, then users in mailbox order), the keys
/// read from their contacts, and how each copy is linked to a logical contact so far.
struct Planner<'s, 'a> {
    snapshots: &'s [&'a MailboxSnapshot],
    /// `copies[folder][position]`: the keys of every contact, in folder order; folder 0 is the hub.
    copies: &'s [Vec<KeyedContact<'a>>],
    /// Contacts in all folders (whether a pass is worth splitting over threads).
    total: usize,
    /// `links[folder][position]`: what each copy belongs to.
    links: Vec<Vec<Link>>,
    /// Logical contacts with a hub copy first (`..hub_logicals`), then new ones from users.
    logicals: Vec<LogicalContact>,
    hub_logicals: usize,
    update_existing: bool,
    /// The fields synced ([`PlanInput::fields`]).
    fields: FieldSet,
    /// Trusted memory (`None`: first-run mode).
    memory: Option<&'a Memory>,
    /// False after a bad read of the hub: nothing is written into it this run.
    hub_writable: bool,
    /// Keys of tombstoned contacts: their untagged look-alikes are not collected.
    lookalikes: deletes::LookAlikes,
    /// `(folder, logical contact)`: creates withheld by an opt-out.
    blocked: FxHashSet<(u32, u32)>,
    /// Per folder: its trusted memory, and the remembered copies its read no longer lists.
    folder_memory: Vec<Option<&'a FolderMemory>>,
    missing: Vec<Vec<u32>>,
    /// SyncIds whose withdrawal ended this run: collected again from the owner's copy, which is
    /// not a repair.
    ended: FxHashSet<SyncId>,
}

impl<'s, 'a> Planner<'s, 'a> {
    fn copy(&self, at: CopyRef) -> &'s KeyedContact<'a> {
        &self.copies[at.folder as usize][at.pos as usize]
    }

    fn mailbox(&self, folder: u32) -> &'a str {
        &self.snapshots[folder as usize].mailbox
    }
}

/// Folder 0 is the hub's.
fn target_of(folder: u32) -> Target {
    if folder == 0 {
        Target::Hub
    } else {
        Target::UserDefault
    }
}

/// Builds the plan. `new_sync_id` is called once per logical contact that has no SyncId yet, in a
/// deterministic order; it must return a GUID (36 hex digits and dashes, e.g. a UUID v4).
///
/// # Panics
/// If `new_sync_id` returns something that is not a GUID (a caller bug).
pub fn plan(input: &PlanInput, new_sync_id: &mut dyn FnMut() -> String) -> Plan {
    // The hub as compared and written: without private categories (`crate::privacy`).
    let hub = crate::privacy::strip_hub(&input.hub, &input.private_categories);
    let memory_verdict = memory::verdict(input);
    let memory = input
        .memory
        .as_ref()
        .filter(|_| memory_verdict.is_trusted());
    let mut book = Book::default();
    if input.hub.read == ReadStatus::Incomplete {
        // Every decision depends on the hub: nothing is planned (docs/state-and-deletes.md §3, made stricter).
        book.bad_reads.push(BadRead {
            mailbox: input.hub.mailbox.clone(),
            target: Target::Hub,
            kind: BadReadKind::Incomplete,
        });
        return Plan {
            memory_verdict,
            book,
            draft: next::Draft {
                trusted: memory.is_some(),
                ..Default::default()
            },
            ..Default::default()
        };
    }
    // Fixed mailbox order: hub first, then users by name, so the result never depends on the
    // order Graph listed the users in. An incomplete user read is planned as a failed one.
    let mut users: Vec<usize> = (0..input.users.len()).collect();
    users.sort_by(|&a, &b| {
        let (a, b) = (&input.users[a].mailbox, &input.users[b].mailbox);
        a.to_lowercase()
            .cmp(&b.to_lowercase())
            .then_with(|| a.cmp(b))
    });
    users.retain(|&u| {
        let s = &input.users[u];
        if s.read == ReadStatus::Incomplete {
            book.bad_reads.push(BadRead {
                mailbox: s.mailbox.clone(),
                target: Target::UserDefault,
                kind: BadReadKind::Incomplete,
            });
        }
        s.read == ReadStatus::Complete
    });
    let mut snapshots: Vec<&MailboxSnapshot> = std::iter::once(&*hub)
        .chain(users.iter().map(|&u| &input.users[u]))
        .collect();
    let mut folder_memory: Vec<Option<&FolderMemory>> = snapshots
        .iter()
        .enumerate()
        .map(|(f, s)| {
            memory.and_then(|m| {
                if f == 0 {
                    Some(&m.hub)
                } else {
                    m.user(&s.mailbox)
                }
            })
        })
        .collect();
    let total = snapshots.iter().map(|s| s.contacts.len()).sum();
    let (mut copies, mut links, mut missing) = keys::read_all(
        &snapshots,
        total,
        &folder_memory,
        input.fields,
        &input.private_categories,
    );

    // Bad reads (docs/state-and-deletes.md §3): a user folder is planned as if its read had failed; the hub gets no
    // write, and what it seems to have lost is held.
    let mut hub_writable = true;
    for f in (0..snapshots.len()).rev() {
        let Some(kind) =
            folder_memory[f].and_then(|m| memory::bad_read(m.copies.len(), missing[f].len()))
        else {
            continue;
        };
        book.bad_reads.push(BadRead {
            mailbox: snapshots[f].mailbox.clone(),
            target: target_of(f as u32),
            kind,
        });
        if f == 0 {
            hub_writable = false;
        } else {
            for v in [&mut copies as &mut dyn Remove, &mut links, &mut missing] {
                v.remove_at(f);
            }
            snapshots.remove(f);
            folder_memory.remove(f);
            users.remove(f - 1);
        }
    }
    book.bad_reads.reverse();
    let total = snapshots.iter().map(|s| s.contacts.len()).sum();

    let mut planner = Planner {
        snapshots: &snapshots,
        copies: &copies,
        total,
        links,
        logicals: Vec::new(),
        hub_logicals: 0,
        update_existing: input.update_existing,
        fields: input.fields,
        memory,
        hub_writable,
        lookalikes: Default::default(),
        blocked: Default::default(),
        folder_memory,
        missing,
        ended: Default::default(),
    };

    // Deletions first: the copies of a deleted or withdrawn contact take part in no linking.
    let withdrawals = planner.find_withdrawals(memory, input.now, &mut book);
    let deletions = planner.removals(memory, withdrawals, input.options, input.now, &mut book);
    let hub_index = planner.link_hub();
    planner.link_users(&hub_index);
    planner.link_to_final_hub_keys();
    planner.group_rest();
    let opt_outs = match memory {
        Some(m) => planner.user_deletes(
            m,
            &hub_index,
            input.options.user_deletes,
            input.now,
            &mut book,
        ),
        None => Vec::new(),
    };
    let mut problems = planner.folder_problems(&hub_index);

    // Phase 1: existing copies (updates, stamps). Phase 2: creates, checked against each
    // folder's keys as they will be after phase 1, so the next run sees the same folders.
    // Both phases only *decide* writes (small pending records); every `Operation` is built
    // once, in plan order, at the end — no second copy of the operations ever exists.
    let phase_one = planner.decide(new_sync_id);
    let mut pending = planner.existing_writes(&phase_one);
    planner.create_missing(&phase_one, &mut pending, &mut problems, &mut book);
    pending.extend(deletions.pending);
    // Sorted by step, mailbox (hub first, then name order), SyncId, action, folder position.
    pending.sort_unstable_by_key(|p| p.key);
    // Everything is decided: the per-contact key records (a million of them) are freed before
    // the operations are made, so the two never weigh on memory together.
    let links = std::mem::take(&mut planner.links);
    drop(planner);
    drop(hub_index);
    drop(copies);
    let operations = build::Builder::new(&snapshots, input.fields)
        .build_operations(&phase_one, &pending, input.now);

    let rank: FxHashMap<&str, usize> = snapshots
        .iter()
        .enumerate()
        .map(|(i, s)| (s.mailbox.as_str(), i))
        .collect();
    problems.sort_by(|a: &DataProblem, b: &DataProblem| {
        (rank.get(a.mailbox.as_str()), a.kind, &a.key, &a.contact_ids).cmp(&(
            rank.get(b.mailbox.as_str()),
            b.kind,
            &b.key,
            &b.contact_ids,
        ))
    });
    let draft = next::Draft {
        planned: true,
        trusted: memory.is_some(),
        users,
        sync_ids: phase_one.decisions.iter().map(|d| d.sync_id).collect(),
        winners: phase_one.decisions.iter().map(|d| d.winner).collect(),
        // Collected in place over the pending writes' allocation: no second buffer at the peak.
        ops: pending
            .into_iter()
            .map(|p| next::OpRef {
                logical: p.logical_id.0,
                folder: p.key.folder,
                pos: p.key.pos,
            })
            .collect(),
        links,
        hub_writable,
        tombstones: deletions.tombstones,
        withdrawals: deletions.withdrawals,
        opt_outs,
    };
    Plan {
        operations,
        problems,
        memory_verdict,
        book,
        draft,
    }
}

/// Removing one folder from the per-folder vectors of different types at once.
trait Remove {
    fn remove_at(&mut self, i: usize);
}

impl<T> Remove for Vec<T> {
    fn remove_at(&mut self, i: usize) {
        self.remove(i);
    }
}
