//! Privacy withdrawals (docs/state-and-deletes.md §4, docs/reliability.md I15, docs/state-and-deletes.md §4.1), decided
//! before any linking: which contacts leave the book because their owner marked their own copy
//! private, which withdrawals of earlier runs go on or end, and what becomes of the copies carrying
//! a withdrawn SyncId.
//!
//! A private user copy (`Link::Private`, set when the keys are read) is never a source: it is not
//! linked, not grouped, never written or stamped, and a create never lands next to it (`create`).
//! A contact S is **withdrawn** when the owner's copy is private and carries S in its own tag
//! line, and S's `CreatedBy` names the owner: the hub copy's tag line, else the withdrawal record
//! (memory), else the owner's copy's own tag line. Then the hub copy and every other tagged copy
//! of S are deleted (the brake counts S once, `deletes`), the owner's folder is never touched,
//! and nothing re-creates S while the owner's copy stays private. When it is no longer private,
//! the withdrawal ends and S is collected again from it. A private copy of a contact that came
//! from someone else only stops being a source.
//!
//! Decided here: **first-run mode freezes, it does not withdraw.** The evidence of a withdrawal is
//! read from the mailboxes (the owner's marking, the tag lines), but docs/state-and-deletes.md §1
//! and I10 promise that losing the state never deletes, whatever the mailboxes say; so without
//! trusted memory the contact is only frozen — every copy withheld: not written, not spread to
//! anyone, not re-created in the hub — and reported held (`HoldReason::NoState`, no exit code 4).
//! The run leaves a fresh memory, and the next run, which trusts it, withdraws the contact (the
//! brake applies). The contact spreads no further in between; the copies already shared stay one
//! run longer.
//!
//! A copy of a withdrawn contact is deleted wherever it is outside the owner's folder, marked
//! private or not — the old script copied categories along, so colleagues' copies of a contact
//! filed under "Private" carry the category too — except a private copy whose own tag line names
//! its own mailbox as `CreatedBy` (that user's own contact: never deleted by anything). The
//! owner's folder not being planned this run (failed, cut short, a bad read) withholds every
//! copy of its withdrawn contacts (no delete, no collect); so does a bad read of the hub.
//!
//! Only SyncIds in GUID layout are withdrawn (the ones a record can remember); a private copy
//! carrying another one only stops being a source. Nothing here decides a write: the Deletes
//! are recorded by `deletes`, which runs the brake over tombstones and withdrawals together.

use super::book::{Book, Entry};
use super::decide::{PendingWrite, WriteKey};
use super::deletes::Fate;
use super::keys::{CopyRef, KeyedContact, Link, LogicalId};
use super::{Action, Planner, Target};
use crate::memory::{ContactKey, Guid, Memory, RETENTION_DAYS, TombstoneStatus, Withdrawal};
use crate::tags::SyncId;
use jiff::{SignedDuration, Timestamp};
use rustc_hash::FxHashMap;

/// The logical id a withdrawal's Delete carries (a tombstone's is `u32::MAX`): `build` tells the
/// cause by it.
pub(super) const WITHDRAWN: LogicalId = LogicalId(u32::MAX - 1);

/// One withdrawal this run looks at: a new one, or a record of an earlier run.
pub(super) struct WithdrawalCase {
    pub(super) withdrawal: Withdrawal,
    pub(super) new: bool,
    /// Held earlier — counted by the brake again.
    pub(super) was_held: bool,
    /// The owner's folder in this plan; `None` when it is not planned this run (its copies are
    /// withheld, the record kept as it is).
    pub(super) owner_folder: Option<u32>,
    pub(super) fate: Fate,
    /// Reported as withdrawn (new or released) or held, once its copies are counted.
    pub(super) report: Report,
    pub(super) copies: usize,
    pub(super) first: Option<CopyRef>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Report {
    None,
    Withdrawn,
    Released,
    Held(crate::memory::HoldReason),
}

impl WithdrawalCase {
    pub(super) fn sync_id(&self) -> Guid {
        self.withdrawal.sync_id
    }
}

/// Whether `c`'s own tag line names `mailbox` as its `CreatedBy`: the user's own contact.
pub(super) fn self_owned(c: &KeyedContact<'_>, mailbox: &str) -> bool {
    c.created_by()
        .is_some_and(|o| o.trim().eq_ignore_ascii_case(mailbox))
}

impl Planner<'_, '_> {
    /// The withdrawals of this run, sorted by SyncId (see the module note): new ones found from
    /// the owners' private copies, and the records of earlier runs that go on. Records whose
    /// owner's copy is no longer private end here (`book.withdrawals_ended`, `self.ended`).
    pub(super) fn find_withdrawals(
        &mut self,
        memory: Option<&Memory>,
        now: Timestamp,
        book: &mut Book,
    ) -> Vec<WithdrawalCase> {
        let records = memory.map_or(&[][..], |m| &m.withdrawals[..]);
        let any_private = self.links[1..].iter().any(|l| l.contains(&Link::Private));
        if !any_private && records.is_empty() {
            return Vec::new();
        }
        let copies = self.copies;
        // The hub copy carrying each SyncId (the first, in folder order).
        let mut hub_of: FxHashMap<SyncId, u32> = FxHashMap::default();
        for (pos, c) in copies[0].iter().enumerate() {
            if let Some(s) = c.sync_id {
                hub_of.entry(s).or_insert(pos as u32);
            }
        }
        let record = |g: Guid| memory.and_then(|m| m.withdrawal(g));

        // New or continuing: an owner's private copy carrying S, S created by that owner.
        let mut found: FxHashMap<Guid, u32> = FxHashMap::default();
        for f in 1..copies.len() {
            let mailbox = self.mailbox(f as u32);
            for (pos, c) in copies[f].iter().enumerate() {
                if self.links[f][pos] != Link::Private {
                    continue;
                }
                let Some(s) = c.sync_id else { continue };
                let Some(g) = Guid::from_sync_id(s) else {
                    continue;
                };
                let hub_created_by = hub_of
                    .get(&s)
                    .and_then(|&p| copies[0][p as usize].created_by());
                let owner = hub_created_by
                    .or_else(|| record(g).map(|r| r.owner.as_str()))
                    .or_else(|| c.created_by());
                if owner.is_some_and(|o| o.trim().eq_ignore_ascii_case(mailbox)) {
                    found.entry(g).or_insert(f as u32);
                }
            }
        }

        let folder_of: FxHashMap<String, u32> = (1..copies.len() as u32)
            .map(|f| (self.mailbox(f).to_lowercase(), f))
            .collect();
        let horizon = now
            .saturating_sub(SignedDuration::from_hours(24 * RETENTION_DAYS))
            .unwrap_or(Timestamp::MIN);
        let mut cases: Vec<WithdrawalCase> = Vec::new();
        let case = |withdrawal: Withdrawal, new: bool, owner_folder: Option<u32>| WithdrawalCase {
            was_held: matches!(withdrawal.status, TombstoneStatus::Held(_)),
            withdrawal,
            new,
            owner_folder,
            fate: Fate::Withhold,
            report: Report::None,
            copies: 0,
            first: None,
        };
        for r in records {
            if let Some(f) = found.remove(&r.sync_id) {
                let mut w = r.clone();
                w.owner = self.mailbox(f).to_owned();
                cases.push(case(w, false, Some(f)));
                continue;
            }
            let Some(&f) = folder_of.get(&r.owner.to_lowercase()) else {
                // The owner's folder is not planned this run: nothing is known of their copy.
                cases.push(case(r.clone(), false, None));
                continue;
            };
            let s = r.sync_id.sync_id();
            let mut any = false;
            let mut public = None;
            for (pos, c) in copies[f as usize].iter().enumerate() {
                if c.sync_id == Some(s) {
                    any = true;
                    if self.links[f as usize][pos] != Link::Private {
                        public.get_or_insert(CopyRef::new(f as usize, pos));
                    }
                }
            }
            if let Some(at) = public {
                // The owner un-marked it: collected again from their copy.
                book.withdrawals_ended
                    .push(self.hub_entry(r.sync_id, Some(at), None));
                self.ended.insert(s);
            } else if !any && r.since < horizon {
                // The owner deleted their contact long ago: forgotten.
            } else {
                // Still private — or deleted by its owner: kept, nothing brings it back.
                cases.push(case(r.clone(), false, Some(f)));
            }
        }
        for (g, f) in found {
            let w = Withdrawal {
                sync_id: g,
                owner: self.mailbox(f).to_owned(),
                since: now,
                status: TombstoneStatus::Held(crate::memory::HoldReason::Brake),
            };
            cases.push(case(w, true, Some(f)));
        }
        cases.sort_by_key(WithdrawalCase::sync_id);
        cases
    }

    /// The matching key a withdrawn contact had in the hub (its hub copy's, else the memory's):
    /// untagged look-alikes older than the withdrawal are not collected (`deletes::LookAlikes`).
    pub(super) fn withdrawn_key(&self, g: Guid, memory: Option<&Memory>) -> Option<ContactKey> {
        let s = g.sync_id();
        self.copies[0]
            .iter()
            .find(|c| c.sync_id == Some(s))
            .and_then(|c| ContactKey::of(&c.contact.fields))
            .or_else(|| {
                memory
                    .and_then(|m| m.hub.get(g))
                    .and_then(|c| c.key.clone())
            })
    }

    /// Marks every copy carrying a withdrawn SyncId by its case's fate (the owner's folder and a
    /// user's own private contact excepted), counts them, and returns the Delete writes. The hub
    /// copy's Delete is step 1, users' step 2.
    pub(super) fn mark_withdrawn(
        &mut self,
        cases: &mut [WithdrawalCase],
        book: &mut Book,
    ) -> Vec<PendingWrite> {
        let mut pending = Vec::new();
        if cases.is_empty() {
            return pending;
        }
        let index: FxHashMap<SyncId, usize> = cases
            .iter()
            .enumerate()
            .map(|(i, c)| (c.sync_id().sync_id(), i))
            .collect();
        let copies = self.copies;
        for (folder, folder_copies) in copies.iter().enumerate() {
            let mailbox = self.mailbox(folder as u32);
            for (pos, c) in folder_copies.iter().enumerate() {
                let Some(&i) = c.sync_id.and_then(|s| index.get(&s)) else {
                    continue;
                };
                let link = self.links[folder][pos];
                let case = &mut cases[i];
                if case.owner_folder == Some(folder as u32) {
                    // The owner's folder is never touched; a copy there that is not private is
                    // not collected either while the withdrawal lasts.
                    if link != Link::Private {
                        self.links[folder][pos] = Link::Withheld;
                    }
                    continue;
                }
                if link == Link::Private && self_owned(c, mailbox) {
                    continue;
                }
                let at = CopyRef::new(folder, pos);
                case.copies += 1;
                // Named after the hub copy when there is one (folder 0 comes first).
                case.first.get_or_insert(at);
                match case.fate {
                    Fate::Delete => {
                        self.links[folder][pos] = Link::Deleted;
                        pending.push(PendingWrite {
                            key: WriteKey {
                                step: if folder == 0 { 1 } else { 2 },
                                folder: at.folder,
                                sync_id: case.sync_id().sync_id(),
                                action: Action::Delete,
                                pos: at.pos,
                            },
                            logical_id: WITHDRAWN,
                        });
                    }
                    Fate::Withhold => self.links[folder][pos] = Link::Withheld,
                    Fate::ReportOnly => {
                        self.links[folder][pos] = Link::Withheld;
                        book.would_withdraw.push(self.copy_entry(at));
                    }
                }
            }
        }
        pending
    }

    /// A line about a contact of the hub (withdrawn, or deleted: a tombstone): named after a copy
    /// carrying it if one was read, else after its remembered key.
    pub(super) fn hub_entry(
        &self,
        g: Guid,
        copy: Option<CopyRef>,
        key: Option<ContactKey>,
    ) -> Entry {
        let (display_name, email) = match (copy.map(|at| self.copy(at)), key) {
            (Some(c), _) => (
                c.contact.display_name().map(str::to_owned),
                c.email().map(str::to_owned),
            ),
            (None, Some(ContactKey::Email(e))) => (None, Some(e.to_string())),
            (None, Some(ContactKey::Name(n))) => (Some(n.to_string()), None),
            (None, None) => (None, None),
        };
        Entry {
            sync_id: g.to_string(),
            display_name,
            email,
            mailbox: self.mailbox(0).to_owned(),
            target: Target::Hub,
        }
    }
}
