//! Step 2 of the plan: link against the keys contacts will have *after* this run, so the next run
//! links exactly as this one did (I1).
//!
//! A written copy takes its winner's email/displayName. So a user copy that matches a hub contact
//! only by its *new* key joins it now (else it would become a new contact now and match the hub
//! contact next run), and an extra copy that matched by an *old* key it will no longer share is
//! released to be grouped on its own now (next run would do so anyway). Only links change here.

use super::Planner;
use super::keys::{CopyRef, KeyIndex, KeyedContact, Link, LogicalContact, LogicalId, same_key};
use rustc_hash::FxHashSet;

impl Planner<'_, '_> {
    /// Links user copies against the email/displayName each hub contact will have after this run
    /// (its winner's, when the winner's data is written), and releases extra copies of hub
    /// contacts that matched by a key about to change. Linking can change a winner and so a key;
    /// this repeats until nothing changes.
    pub(super) fn link_to_final_hub_keys(&mut self) {
        if !self.update_existing {
            // Nothing is rewritten, so the keys after the run are the keys read.
            return;
        }
        let copies = self.copies;
        // Bounded for safety; each round only adds links or releases extras, so it settles fast.
        for _ in 0..64 {
            let mut index = KeyIndex::default();
            // Per hub logical contact: the copy whose keys its hub copy will carry.
            let mut final_keys: Vec<&KeyedContact<'_>> = Vec::with_capacity(self.hub_logicals);
            for (ix, logical) in self.logicals.iter().enumerate().take(self.hub_logicals) {
                let winner = self.copy(self.winner_of(logical));
                let keys = if winner.contact.last_modified().is_some() {
                    winner
                } else {
                    self.copy(logical.copies[0])
                };
                index.insert_email_or_name(keys, LogicalId(ix as u32));
                final_keys.push(keys);
            }
            let mut changed = false;
            for (folder, folder_copies) in copies.iter().enumerate().skip(1) {
                for (pos, c) in folder_copies.iter().enumerate() {
                    match self.links[folder][pos] {
                        Link::Extra(id) if id.ix() < self.hub_logicals => {
                            let hub_sync_id = self.copy(self.logicals[id.ix()].copies[0]).sync_id;
                            if !same_key(c, final_keys[id.ix()])
                                && (c.sync_id.is_none() || c.sync_id != hub_sync_id)
                            {
                                self.links[folder][pos] = Link::Unlinked;
                                changed = true;
                            }
                        }
                        Link::Unlinked => {
                            let Some(id) = index.by_email_or_name(c) else {
                                continue;
                            };
                            self.link(CopyRef::new(folder, pos), id);
                            changed = true;
                        }
                        _ => {}
                    }
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// Releases extra copies of new logical contacts that share neither a SyncId with one of its
    /// copies nor the key its hub copy will be created with (the winner's): next run they would
    /// not match it, so they are grouped on their own now. Returns whether any was released.
    pub(super) fn release_stale_extras(&mut self, released: &mut FxHashSet<CopyRef>) -> bool {
        let copies = self.copies;
        let mut any = false;
        for (folder, folder_copies) in copies.iter().enumerate().skip(1) {
            for (pos, c) in folder_copies.iter().enumerate() {
                let Link::Extra(id) = self.links[folder][pos] else {
                    continue;
                };
                if id.ix() < self.hub_logicals {
                    continue;
                }
                if !self.still_matches(&self.logicals[id.ix()], c) {
                    self.links[folder][pos] = Link::Unlinked;
                    released.insert(CopyRef::new(folder, pos));
                    any = true;
                }
            }
        }
        any
    }

    /// Whether `c` will still match `logical` next run: it shares a SyncId with one of its
    /// copies, or the key of its winner (which the hub copy will carry).
    pub(super) fn still_matches(&self, logical: &LogicalContact, c: &KeyedContact<'_>) -> bool {
        same_key(c, self.copy(self.winner_of(logical)))
            || (c.sync_id.is_some()
                && logical
                    .copies
                    .iter()
                    .any(|&at| self.copy(at).sync_id == c.sync_id))
    }
}
