//! Step 5 of the plan, phase 2: create each logical contact, from its winner, in the hub and in
//! every user folder that lacks it — unless the folder, as it will be after phase 1, already holds
//! a contact the ladder would match: that is reported (`CreateSuppressed`), never duplicated (I2).
//! Never next to a user's private contact with the same SyncId, email or name (that user has it,
//! privately: not a problem either). With memory: not into a folder whose user opted out of the
//! contact, nothing into the hub after a bad read of it (nor anywhere for a contact without a hub
//! copy then), and a contact re-created in the hub from users' tagged copies is reported as a
//! repair (unless its withdrawal just ended).

use super::book::{Book, Entry, Repair, RepairReason};
use super::decide::{PendingWrite, PhaseOne, WriteKey, data_step};
use super::keys::{EmailOrName, Link, LogicalContact, LogicalId};
use super::{Action, DataProblem, Planner, ProblemKind, Target, target_of};
use crate::memory::Guid;
use crate::tags::SyncId;
use rustc_hash::FxHashSet;

/// The ladder keys a folder holds after phase 1, plus those of the contacts created in it so far;
/// apart, those of its private contacts.
#[derive(Default)]
struct FolderKeys<'s> {
    sync_ids: FxHashSet<SyncId>,
    emails_or_names: FxHashSet<EmailOrName<'s>>,
    private_sync_ids: FxHashSet<SyncId>,
    private_keys: FxHashSet<EmailOrName<'s>>,
}

impl<'s> FolderKeys<'s> {
    /// Whether a private contact of the folder holds one of these keys: the contact is already
    /// there, the user's own and private (docs/state-and-deletes.md §4), so nothing is created next
    /// to it — and it is no data problem either.
    fn private_holds(&self, sync_id: SyncId, key: Option<EmailOrName<'s>>) -> bool {
        self.private_sync_ids.contains(&sync_id)
            || key.is_some_and(|k| self.private_keys.contains(&k))
    }

    /// Claims the keys of a contact about to be created; false if one is already taken.
    fn claim(&mut self, sync_id: SyncId, key: Option<EmailOrName<'s>>) -> bool {
        if self.sync_ids.contains(&sync_id)
            || key.is_some_and(|k| self.emails_or_names.contains(&k))
        {
            return false;
        }
        self.sync_ids.insert(sync_id);
        if let Some(k) = key {
            self.emails_or_names.insert(k);
        }
        true
    }
}

impl<'s> Planner<'s, '_> {
    /// The keys of `folder` as they will be after phase 1: a linked copy carries its logical
    /// contact's SyncId, and a rewritten one its winner's email/displayName.
    fn keys_after_phase_one(&self, phase_one: &PhaseOne, folder: usize) -> FolderKeys<'s> {
        let mut keys = FolderKeys::default();
        for (pos, c) in self.copies[folder].iter().enumerate() {
            if self.links[folder][pos] == Link::Private {
                if let Some(s) = c.sync_id {
                    keys.private_sync_ids.insert(s);
                }
                if let Some(k) = c.email_or_name() {
                    keys.private_keys.insert(k);
                }
                continue;
            }
            let (mut sync_id, mut holder) = (c.sync_id, c);
            if let Link::To(id) = self.links[folder][pos] {
                let decision = &phase_one.decisions[id.ix()];
                sync_id = Some(decision.sync_id);
                if phase_one.rewritten[folder][pos] {
                    holder = self.copy(decision.winner);
                }
            }
            if let Some(s) = sync_id {
                keys.sync_ids.insert(s);
            }
            if let Some(k) = holder.email_or_name() {
                keys.emails_or_names.insert(k);
            }
        }
        keys
    }

    /// Phase 2 for every logical contact, in order: records the creates in `pending`, the
    /// suppressed ones in `problems`, and the repairs in `book`.
    pub(super) fn create_missing(
        &self,
        phase_one: &PhaseOne,
        pending: &mut Vec<PendingWrite>,
        problems: &mut Vec<DataProblem>,
        book: &mut Book,
    ) {
        // Built lazily: a run without creates (the steady state) never pays for them.
        let mut folder_keys: Vec<Option<FolderKeys<'s>>> =
            self.copies.iter().map(|_| None).collect();
        for (ix, (logical, decision)) in self.logicals.iter().zip(&phase_one.decisions).enumerate()
        {
            let has_hub_copy = logical.copies[0].folder == 0;
            if !has_hub_copy && !self.hub_writable {
                // Its hub copy cannot be made this run; created everywhere next run.
                continue;
            }
            let sync_id = decision.sync_id;
            let key = self.copy(decision.winner).email_or_name();
            let mut has_copy = logical.copies.iter().map(|at| at.folder).peekable();
            for folder in 0..self.copies.len() as u32 {
                if has_copy.peek() == Some(&folder) {
                    has_copy.next();
                    continue;
                }
                if !self.blocked.is_empty() && self.blocked.contains(&(folder, ix as u32)) {
                    continue;
                }
                let keys = folder_keys[folder as usize]
                    .get_or_insert_with(|| self.keys_after_phase_one(phase_one, folder as usize));
                if keys.private_holds(sync_id, key) {
                    continue;
                }
                if !keys.claim(sync_id, key) {
                    problems.push(DataProblem {
                        kind: ProblemKind::CreateSuppressed,
                        mailbox: self.mailbox(folder).to_owned(),
                        target: target_of(folder),
                        contact_ids: Vec::new(),
                        key: sync_id.to_string(),
                        detail: format!(
                            "not created: the folder already holds another contact with SyncId {sync_id}{}",
                            match key {
                                Some(EmailOrName::Email(e)) => format!(" or email {e}"),
                                Some(EmailOrName::Name(n)) => format!(" or displayName {n}"),
                                None => String::new(),
                            }
                        ),
                    });
                    continue;
                }
                if folder == 0
                    && let Some(r) = self.repair(logical, sync_id, decision.winner)
                {
                    book.repairs.push(r);
                }
                pending.push(PendingWrite {
                    key: WriteKey {
                        step: data_step(folder),
                        folder,
                        sync_id,
                        action: Action::Create,
                        pos: u32::MAX,
                    },
                    logical_id: LogicalId(ix as u32),
                });
            }
        }
    }

    /// With trusted memory, a contact created in the hub from users' copies of which one carries
    /// a SyncId is a repair (docs/state-and-deletes.md §3.3) — unless the hub's memory holds
    /// its SyncId (`Deletes: off` re-creating a deleted contact: reported as such instead).
    fn repair(
        &self,
        logical: &LogicalContact,
        sync_id: SyncId,
        winner: super::keys::CopyRef,
    ) -> Option<Repair> {
        let memory = self.memory?;
        if self.ended.contains(&sync_id) {
            // Collected again from its owner's copy after a withdrawal: not a repair.
            return None;
        }
        let found_in = logical
            .copies
            .iter()
            .find(|&&at| self.copy(at).sync_id.is_some())?;
        let guid = Guid::from_sync_id(sync_id);
        if guid.is_some_and(|g| memory.hub.get(g).is_some()) {
            return None;
        }
        let winner = self.copy(winner);
        Some(Repair {
            entry: Entry {
                sync_id: sync_id.to_string(),
                display_name: winner.contact.display_name().map(str::to_owned),
                email: winner.email().map(str::to_owned),
                mailbox: self.mailbox(0).to_owned(),
                target: Target::Hub,
            },
            reason: if guid.is_some_and(|g| memory.is_pending(g)) {
                RepairReason::InterruptedRun
            } else {
                RepairReason::NotInHub
            },
            found_in: self.mailbox(found_in.folder).to_owned(),
        })
    }
}
