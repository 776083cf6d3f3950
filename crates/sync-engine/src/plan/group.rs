//! Step 3 of the plan: the user copies no hub contact claimed are grouped across users by the same
//! ladder into new logical contacts (docs/sync-rules.md §2), which phase 2 will create in the hub
//! and in every other user. Only links and logical contacts change here. An untagged copy that
//! looks like a tombstoned contact and predates its deletion is never grouped
//! (`deletes::LookAlikes`).

use super::Planner;
use super::keys::{CopyRef, KeyIndex, Link};
use rustc_hash::FxHashSet;

impl<'s> Planner<'s, '_> {
    /// Groups the rest — then, as long as some extra copy turns out to match only by a key its
    /// contact is about to lose, releases it and groups again (see `final_keys`).
    pub(super) fn group_rest(&mut self) {
        let mut new_index = KeyIndex::default();
        let mut released = FxHashSet::default();
        // Bounded for safety; each round releases copies that then find their own group.
        for _ in 0..64 {
            self.group_leftovers(&mut new_index, &released);
            if !self.release_stale_extras(&mut released) {
                break;
            }
            self.link_to_final_hub_keys();
        }
    }

    /// Groups unlinked user copies into new logical contacts by the ladder, mailbox by mailbox:
    /// SyncId matches with earlier groups first, then copies with a SyncId, then the others — the
    /// same precedence as for the hub.
    fn group_leftovers(&mut self, new_index: &mut KeyIndex<'s>, released: &FxHashSet<CopyRef>) {
        let copies = self.copies;
        for (folder, folder_copies) in copies.iter().enumerate().skip(1) {
            // (copies with a SyncId?, by the whole ladder — else only by SyncId, and no new group)
            for (with_sync_id, whole_ladder) in [(true, false), (true, true), (false, true)] {
                for (pos, c) in folder_copies.iter().enumerate() {
                    if self.links[folder][pos] != Link::Unlinked
                        || c.sync_id.is_some() != with_sync_id
                    {
                        continue;
                    }
                    let at = CopyRef::new(folder, pos);
                    // Never collected: it would bring a tombstoned contact back (`deletes`).
                    if !self.lookalikes.is_empty() && self.lookalikes.matching(c).is_some() {
                        self.links[folder][pos] = Link::LookAlike;
                        continue;
                    }
                    let found = if whole_ladder {
                        new_index.ladder(c)
                    } else {
                        new_index.by_sync_id(c)
                    };
                    // A released copy only joins a contact it will still match next run.
                    let found = found.filter(|id| {
                        !released.contains(&at) || self.still_matches(&self.logicals[id.ix()], c)
                    });
                    let id = match found {
                        Some(id) => {
                            self.link(at, id);
                            id
                        }
                        None if !whole_ladder => continue,
                        None => self.new_logical(at),
                    };
                    if self.links[folder][pos] == Link::To(id) {
                        new_index.insert(c, id);
                    }
                }
            }
        }
    }
}
