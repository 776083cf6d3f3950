//! Step 5 of the plan, phase 2: create each logical contact, from its winner, in the hub and in
//! every user folder that lacks it — unless the folder, as it will be after phase 1, already holds
//! a contact the ladder would match: that is reported (`CreateSuppressed`), never duplicated (I2).

use super::decide::{PendingWrite, PhaseOne, WriteKey, data_step};
use super::keys::{EmailOrName, Link, LogicalId};
use super::{Action, DataProblem, Planner, ProblemKind, target_of};
use crate::tags::SyncId;
use rustc_hash::FxHashSet;

/// The ladder keys a folder holds after phase 1, plus those of the contacts created in it so far.
#[derive(Default)]
struct FolderKeys<'s> {
    sync_ids: FxHashSet<SyncId>,
    emails_or_names: FxHashSet<EmailOrName<'s>>,
}

impl<'s> FolderKeys<'s> {
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

    /// Phase 2 for every logical contact, in order: records the creates in `pending` and the
    /// suppressed ones in `problems`.
    pub(super) fn create_missing(
        &self,
        phase_one: &PhaseOne,
        pending: &mut Vec<PendingWrite>,
        problems: &mut Vec<DataProblem>,
    ) {
        // Built lazily: a run without creates (the steady state) never pays for them.
        let mut folder_keys: Vec<Option<FolderKeys<'s>>> =
            self.copies.iter().map(|_| None).collect();
        for (ix, (logical, decision)) in self.logicals.iter().zip(&phase_one.decisions).enumerate()
        {
            let sync_id = decision.sync_id;
            let key = self.copy(decision.winner).email_or_name();
            let mut has_copy = logical.copies.iter().map(|at| at.folder).peekable();
            for folder in 0..self.copies.len() as u32 {
                if has_copy.peek() == Some(&folder) {
                    has_copy.next();
                    continue;
                }
                let keys = folder_keys[folder as usize]
                    .get_or_insert_with(|| self.keys_after_phase_one(phase_one, folder as usize));
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
}
