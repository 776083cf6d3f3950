//! Users' own deletions (docs/state-and-deletes.md §3.2), decided after
//! linking: a copy the memory saw in a user's folder, gone from a complete, good read of it while
//! the hub still holds the contact, was deleted by the user. `UserDeletes: restore` re-creates it
//! (nothing to do here: phase 2 creates it, as without memory); `respect` records an opt-out and
//! the contact is not created in that folder while it lasts. An opt-out ends when the user's
//! folder holds a copy linked to the contact again (by SyncId or key).
//!
//! Trusted memory only. Never decides a write: it only withholds creates.

use super::book::{Book, Entry};
use super::keys::{KeyIndex, LogicalId};
use super::{Planner, Target, UserDeletes};
use crate::memory::{Memory, OptOut};
use jiff::Timestamp;
use rustc_hash::FxHashMap;

impl Planner<'_, '_> {
    /// The opt-outs after this run (sorted); fills `self.blocked` with the creates they withhold.
    pub(super) fn user_deletes(
        &mut self,
        memory: &Memory,
        hub_index: &KeyIndex<'_>,
        user_deletes: UserDeletes,
        now: Timestamp,
        book: &mut Book,
    ) -> Vec<OptOut> {
        let respect = user_deletes == UserDeletes::Respect;
        let folder_of: FxHashMap<&str, u32> = (1..self.snapshots.len() as u32)
            .map(|f| (self.mailbox(f), f))
            .collect();
        let mut after = Vec::new();
        for o in &memory.opt_outs {
            let folder = folder_of.get(o.mailbox.as_str()).copied();
            let logical = hub_index.of_sync_id(o.sync_id.sync_id());
            match (folder, logical) {
                (Some(f), Some(l)) if self.has_copy(l, f) => {
                    book.opt_outs_cleared.push(self.opt_out_entry(l, f));
                }
                (Some(f), Some(l)) => {
                    after.push(o.clone());
                    if respect {
                        self.blocked.insert((f, l.0));
                    }
                }
                // The folder was not read well, or the hub does not hold the contact: kept.
                _ => after.push(o.clone()),
            }
        }
        if respect {
            for f in 1..self.snapshots.len() as u32 {
                let Some(fm) = self.folder_memory[f as usize] else {
                    continue;
                };
                for &i in &self.missing[f as usize] {
                    let s = fm.copies[i as usize].sync_id;
                    let Some(l) = hub_index.of_sync_id(s.sync_id()) else {
                        continue;
                    };
                    if self.has_copy(l, f) || !self.blocked.insert((f, l.0)) {
                        continue;
                    }
                    after.push(OptOut {
                        mailbox: self.mailbox(f).to_owned(),
                        sync_id: s,
                        since: now,
                    });
                    book.opt_outs_set.push(self.opt_out_entry(l, f));
                }
            }
        }
        after.sort_by(|a, b| (&a.mailbox, a.sync_id).cmp(&(&b.mailbox, b.sync_id)));
        after
    }

    /// Whether logical contact `l` has a copy in `folder`.
    fn has_copy(&self, l: LogicalId, folder: u32) -> bool {
        self.logicals[l.ix()]
            .copies
            .binary_search_by_key(&folder, |c| c.folder)
            .is_ok()
    }

    /// An opt-out's line: the hub contact's SyncId, name and email, in the user's mailbox.
    fn opt_out_entry(&self, l: LogicalId, folder: u32) -> Entry {
        let hub_copy = self.copy(self.logicals[l.ix()].copies[0]);
        Entry {
            sync_id: hub_copy.sync_id.map(|s| s.to_string()).unwrap_or_default(),
            display_name: hub_copy.contact.display_name().map(str::to_owned),
            email: hub_copy.email().map(str::to_owned),
            mailbox: self.mailbox(folder).to_owned(),
            target: Target::UserDefault,
        }
    }
}
