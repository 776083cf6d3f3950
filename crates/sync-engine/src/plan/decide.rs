//! Step 4 of the plan, phase 1: per logical contact the winner, the SyncId and `CreatedBy`, and
//! which existing copies get a write — an Update when its data differs from the winner's, else a
//! Stamp when it lacks the SyncId; at most one write per copy (docs/compatibility.md §5, §7,
//! docs/sync-rules.md §2). The winner is the newest *version*: a copy's `lastModifiedDateTime`, or
//! — with memory, for a copy as we left it — the version we wrote it with (set when the keys are
//! read, `memory`). Nothing is written into the hub after a bad read of it.
//!
//! Writes are only recorded here, as small [`PendingWrite`]s; `build` makes the operations.

use super::keys::{CopyRef, KeyedContact, Link, LogicalContact, LogicalId, per_folder};
use super::{Action, Planner};
use crate::fields;
use crate::tags::SyncId;
use rustc_hash::FxHashSet;
use std::cmp::Reverse;

/// What phase 1 decided for one logical contact.
pub(super) struct Decision {
    pub(super) sync_id: SyncId,
    pub(super) winner: CopyRef,
    pub(super) created_by: String,
}

/// Phase 1's result.
pub(super) struct PhaseOne {
    /// One per logical contact, in the same order.
    pub(super) decisions: Vec<Decision>,
    /// `rewritten[folder][position]`: whether the copy gets its winner's data (an Update).
    pub(super) rewritten: Vec<Vec<bool>>,
}

/// The sort key of a write; it also names the target folder, the action and the copy.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct WriteKey {
    pub(super) step: u8,
    pub(super) folder: u32,
    pub(super) sync_id: SyncId,
    pub(super) action: Action,
    /// The copy's position in its folder; `u32::MAX` for a create.
    pub(super) pos: u32,
}

impl WriteKey {
    /// The copy an Update or a Stamp writes.
    pub(super) fn copy(&self) -> CopyRef {
        CopyRef {
            folder: self.folder,
            pos: self.pos,
        }
    }
}

/// A write decided but not built yet.
pub(super) struct PendingWrite {
    pub(super) key: WriteKey,
    pub(super) logical_id: LogicalId,
}

/// Data writes to the hub are step 1 (users → hub), to users step 2 (hub → users); stamps are
/// step 1 wherever they are.
pub(super) fn data_step(folder: u32) -> u8 {
    if folder == 0 { 1 } else { 2 }
}

/// SyncIds taken by logical contacts so far, and (built on demand) each folder's SyncIds.
struct SyncIdClaims {
    claimed: FxHashSet<SyncId>,
    folders: Vec<Option<FxHashSet<SyncId>>>,
}

impl SyncIdClaims {
    fn folder(&mut self, copies: &[Vec<KeyedContact<'_>>], folder: usize) -> &FxHashSet<SyncId> {
        self.folders[folder]
            .get_or_insert_with(|| copies[folder].iter().filter_map(|c| c.sync_id).collect())
    }
}

impl Planner<'_, '_> {
    /// Newest copy at read time (by version, see the module note); ties go to the hub, then to
    /// the earlier mailbox. A copy without a timestamp is older than any with one
    /// (docs/compatibility.md §7).
    pub(super) fn winner_of(&self, logical: &LogicalContact) -> CopyRef {
        *logical
            .copies
            .iter()
            .max_by_key(|&&at| (self.copy(at).modified, Reverse(at.folder)))
            .expect("a logical contact has at least one copy")
    }

    /// Every logical contact's winner ([`Planner::winner_of`]), in one pass over the copies in
    /// memory order: a copy replaces the best so far only when strictly newer, and folders come
    /// in tie-break order (hub, then mailboxes), so the result is `winner_of`'s.
    fn winners(&self) -> Vec<CopyRef> {
        let mut best: Vec<Option<(CopyRef, (i64, i32))>> = vec![None; self.logicals.len()];
        for (folder, (links, folder_copies)) in self.links.iter().zip(self.copies).enumerate() {
            for (pos, (link, c)) in links.iter().zip(folder_copies).enumerate() {
                let Link::To(id) = *link else { continue };
                let slot = &mut best[id.ix()];
                if slot.is_none_or(|(_, m)| c.modified > m) {
                    *slot = Some((CopyRef::new(folder, pos), c.modified));
                }
            }
        }
        best.into_iter()
            .map(|b| b.expect("a logical contact has at least one copy").0)
            .collect()
    }

    /// For every copy, whether it gets its winner's data (an Update): it is linked to a logical
    /// contact, is not the winner, differs from it in the synced fields, `UpdateExisting` is on
    /// and the winner has a timestamp. The winner is newer than every other copy in the
    /// (timestamp, tie-break) order, so "target older than source" holds for all of them; a
    /// winner without a timestamp never overwrites (docs/compatibility.md §7).
    ///
    /// Compared exactly, folder by folder: the copies are visited in memory order and the winners
    /// (one per logical contact) stay in cache, which is what makes a million comparisons cheap —
    /// visiting them contact by contact would miss the cache on every block.
    fn rewritten(&self, winners: &[CopyRef]) -> Vec<Vec<bool>> {
        let timed: Vec<bool> = winners
            .iter()
            .map(|&w| self.copy(w).contact.last_modified().is_some())
            .collect();
        per_folder(self.copies, self.total, |folder, folder_copies| {
            folder_copies
                .iter()
                .zip(&self.links[folder])
                .enumerate()
                .map(|(pos, (c, link))| match *link {
                    Link::To(id) => {
                        let winner = winners[id.ix()];
                        winner != CopyRef::new(folder, pos)
                            && self.update_existing
                            && timed[id.ix()]
                            && !fields::fields_equal(
                                &c.contact.fields,
                                &self.copy(winner).contact.fields,
                                self.fields,
                            )
                    }
                    _ => false,
                })
                .collect()
        })
    }

    /// Phase 1 for every logical contact, in order (`new_sync_id` is called in that order).
    pub(super) fn decide(&self, new_sync_id: &mut dyn FnMut() -> String) -> PhaseOne {
        let winners = self.winners();
        debug_assert!(
            self.logicals
                .iter()
                .zip(&winners)
                .all(|(l, &w)| self.winner_of(l) == w),
            "the folder-ordered pass picks winner_of's winners"
        );
        // Existing copies: at most one write each, combining data and stamp
        // (docs/sync-rules.md §2). Here only *whether* a copy gets its data rewritten; the writes
        // themselves are recorded folder by folder afterwards (`existing_writes`), which reads the
        // copies in memory order.
        let rewritten = self.rewritten(&winners);
        let mut sync_ids = SyncIdClaims {
            claimed: FxHashSet::default(),
            folders: self.copies.iter().map(|_| None).collect(),
        };
        let decisions = self
            .logicals
            .iter()
            .zip(winners)
            .map(|(logical, winner)| {
                let sync_id = self.choose_sync_id(logical, new_sync_id, &mut sync_ids);
                Decision {
                    sync_id,
                    winner,
                    created_by: self.created_by(logical, winner),
                }
            })
            .collect();
        PhaseOne {
            decisions,
            rewritten,
        }
    }

    /// SyncId (docs/compatibility.md §5 "kept if present"): the hub copy's (unique among hub
    /// logical contacts); else the first user copy's that is safe to spread — no earlier logical
    /// contact uses it, and no folder that gets it stamped already holds another contact with it
    /// (I2, and the next run must link exactly as this one did, I1); else a new one.
    fn choose_sync_id(
        &self,
        logical: &LogicalContact,
        new_sync_id: &mut dyn FnMut() -> String,
        sync_ids: &mut SyncIdClaims,
    ) -> SyncId {
        let hub_sync_id = logical
            .copies
            .first()
            .filter(|at| at.folder == 0)
            .and_then(|&at| self.copy(at).sync_id);
        let sync_id = hub_sync_id.unwrap_or_else(|| {
            let candidates: Vec<SyncId> = logical
                .copies
                .iter()
                .filter_map(|&at| self.copy(at).sync_id)
                .collect();
            let safe = candidates.into_iter().find(|&s| {
                !sync_ids.claimed.contains(&s)
                    && !logical.copies.iter().any(|&at| {
                        self.copy(at).sync_id != Some(s)
                            && sync_ids
                                .folder(self.copies, at.folder as usize)
                                .contains(&s)
                    })
            });
            safe.unwrap_or_else(|| {
                let s = new_sync_id();
                SyncId::parse(s.trim())
                    .unwrap_or_else(|| panic!("SyncId generator returned {s:?}, not a GUID"))
            })
        });
        sync_ids.claimed.insert(sync_id);
        sync_id
    }

    /// CreatedBy (docs/compatibility.md §5): kept from a copy's own tags, else the hub's, else the
    /// winning source's, else any copy's, else the mailbox the contact first reaches the hub from.
    fn created_by(&self, logical: &LogicalContact, winner: CopyRef) -> String {
        let hub_copy = logical
            .copies
            .first()
            .filter(|at| at.folder == 0)
            .map(|&at| self.copy(at));
        hub_copy
            .and_then(KeyedContact::created_by)
            .or_else(|| self.copy(winner).created_by())
            .or_else(|| {
                logical
                    .copies
                    .iter()
                    .find_map(|&at| self.copy(at).created_by())
            })
            .unwrap_or(self.mailbox(winner.folder))
            .to_owned()
    }

    /// Phase 1's writes to existing copies, folder by folder (memory order, split over threads
    /// like the key reading): a copy linked to a logical contact gets one write if its data is
    /// rewritten (Update) or it lacks the contact's SyncId (Stamp).
    pub(super) fn existing_writes(&self, phase_one: &PhaseOne) -> Vec<PendingWrite> {
        per_folder(self.copies, self.total, |folder, folder_copies| {
            let mut out = Vec::new();
            for (pos, c) in folder_copies.iter().enumerate() {
                let Link::To(logical_id) = self.links[folder][pos] else {
                    continue;
                };
                if folder == 0 && !self.hub_writable {
                    // A bad read of the hub: no write into it this run (docs/state-and-deletes.md §3).
                    continue;
                }
                let sync_id = phase_one.decisions[logical_id.ix()].sync_id;
                let at = CopyRef::new(folder, pos);
                let (step, action) = if phase_one.rewritten[folder][pos] {
                    (data_step(at.folder), Action::Update)
                } else if c.sync_id != Some(sync_id) {
                    (1, Action::Stamp)
                } else {
                    continue;
                };
                let key = WriteKey {
                    step,
                    folder: at.folder,
                    sync_id,
                    action,
                    pos: at.pos,
                };
                out.push(PendingWrite { key, logical_id });
            }
            out
        })
        .into_iter()
        .flatten()
        .collect()
    }
}
