//! Step 6 of the plan: the data problems of each folder — duplicate keys, extra copies, contacts
//! without a key, SyncIds the hub does not know, look-alikes of tombstoned contacts. Reported,
//! never fixed: nothing here changes a link or decides a write. With trusted memory a SyncId the
//! hub lacks is a repair or a deletion (`create`, `deletes`), not a data problem.

use super::keys::{KeyIndex, KeyedContact, Link, per_folder_with};
use super::{DataProblem, Planner, ProblemKind, target_of};
use crate::tags::SyncId;
use rustc_hash::FxHashMap;
use std::hash::Hash;

/// Groups of positions sharing a key, only for keys seen more than once (no allocation per key).
/// `first` is scratch space, reused for the three keys of a folder.
fn duplicates<K: Hash + Eq + Copy>(
    first: &mut FxHashMap<K, usize>,
    items: impl Iterator<Item = (K, usize)>,
) -> FxHashMap<K, Vec<usize>> {
    first.clear();
    let mut dups: FxHashMap<K, Vec<usize>> = FxHashMap::default();
    for (k, i) in items {
        match first.entry(k) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let f = *o.get();
                dups.entry(*o.key()).or_insert_with(|| vec![f]).push(i);
            }
        }
    }
    dups
}

/// The first position of each key in a folder: per thread, reused from folder to folder.
#[derive(Default)]
struct Scratch<'k> {
    sync_ids: FxHashMap<SyncId, usize>,
    keys: FxHashMap<&'k str, usize>,
}

impl<'s> Planner<'s, '_> {
    /// Every folder's problems, folder by folder (the plan sorts them afterwards); folders are
    /// independent, so big inputs are split over threads like the key reading (`per_folder`).
    pub(super) fn folder_problems(&self, hub_index: &KeyIndex<'_>) -> Vec<DataProblem> {
        per_folder_with(
            self.copies,
            self.total,
            Scratch::default,
            |scratch, folder, _| self.problems_of(scratch, hub_index, folder),
        )
        .into_iter()
        .flatten()
        .collect()
    }

    fn problems_of(
        &self,
        scratch: &mut Scratch<'s>,
        hub_index: &KeyIndex<'_>,
        folder: usize,
    ) -> Vec<DataProblem> {
        let folder_copies: &'s [KeyedContact<'_>] = &self.copies[folder];
        let mut problems = Vec::new();
        let Scratch {
            sync_ids: first_sync_id,
            keys: first_key,
        } = scratch;
        {
            let mailbox = &self.snapshots[folder].mailbox;
            let target = target_of(folder as u32);
            let mut push = |kind, contact_ids: Vec<String>, key: String, detail: String| {
                problems.push(DataProblem {
                    kind,
                    mailbox: mailbox.clone(),
                    target,
                    contact_ids,
                    key,
                    detail,
                })
            };
            // Duplicate keys inside the folder (folder order kept within a group).
            let by_sync_id = duplicates(
                first_sync_id,
                folder_copies
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| Some((c.sync_id?, i))),
            );
            let by_email = duplicates(
                first_key,
                folder_copies
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| Some((c.email()?, i))),
            );
            let by_name = duplicates(
                first_key,
                folder_copies
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| Some((c.name()?, i))),
            );
            let ids = |positions: &[usize]| {
                positions
                    .iter()
                    .map(|&i| folder_copies[i].contact.id().to_owned())
                    .collect::<Vec<_>>()
            };
            for (s, v) in by_sync_id.iter().filter(|(_, v)| v.len() > 1) {
                push(
                    ProblemKind::DuplicateSyncId,
                    ids(v),
                    s.to_string(),
                    format!("{} contacts share this SyncId", v.len()),
                );
            }
            for (e, v) in by_email.iter().filter(|(_, v)| v.len() > 1) {
                push(
                    ProblemKind::DuplicateEmail,
                    ids(v),
                    (*e).to_owned(),
                    format!("{} contacts share this email", v.len()),
                );
            }
            for (n, v) in by_name.iter().filter(|(_, v)| v.len() > 1) {
                push(
                    ProblemKind::DuplicateDisplayName,
                    ids(v),
                    (*n).to_owned(),
                    format!("{} contacts without email share this displayName", v.len()),
                );
            }
            for (pos, c) in folder_copies.iter().enumerate() {
                match self.links[folder][pos] {
                    Link::Extra(id) => {
                        let kept = self.logicals[id.ix()]
                            .copies
                            .iter()
                            .find(|at| at.folder as usize == folder)
                            .map_or(pos, |at| at.pos as usize);
                        push(
                            ProblemKind::ExtraCopy,
                            vec![c.contact.id().to_owned()],
                            c.sync_id
                                .map(|s| s.to_string())
                                .or_else(|| c.email().map(str::to_owned))
                                .or_else(|| c.name().map(str::to_owned))
                                .unwrap_or_default(),
                            format!(
                                "matches a contact that already has a copy in this folder ({}); left alone",
                                folder_copies[kept].contact.id()
                            ),
                        )
                    }
                    Link::NoKey => push(
                        ProblemKind::NoEmailOrName,
                        vec![c.contact.id().to_owned()],
                        String::new(),
                        "neither email nor displayName nor SyncId: cannot be matched, left alone"
                            .into(),
                    ),
                    Link::To(id) => {
                        if c.email().is_none() && c.name().is_none() {
                            push(
                                ProblemKind::NoEmailOrName,
                                vec![c.contact.id().to_owned()],
                                c.sync_id.map(|s| s.to_string()).unwrap_or_default(),
                                "neither email nor displayName; matched by SyncId only".into(),
                            );
                        }
                        // With trusted memory, a contact re-created in the hub is a repair (or a
                        // deletion `Deletes: off` reports), not a data problem.
                        let recreated = id.ix() >= self.hub_logicals;
                        if let Some(s) = c.sync_id.filter(|&s| {
                            folder > 0
                                && !hub_index.has_sync_id(s)
                                && !(recreated && self.memory.is_some())
                        }) {
                            let detail = if id.ix() < self.hub_logicals {
                                "SyncId unknown to the hub; linked to a hub contact by email/displayName and re-stamped"
                            } else {
                                "SyncId unknown to the hub (hub copy deleted?); the contact is re-created in the hub"
                            };
                            push(
                                ProblemKind::UnknownSyncId,
                                vec![c.contact.id().to_owned()],
                                s.to_string(),
                                detail.into(),
                            );
                        }
                    }
                    Link::LookAlike => {
                        let tombstone = self.lookalikes.matching(c);
                        push(
                            ProblemKind::TombstonedLookAlike,
                            vec![c.contact.id().to_owned()],
                            c.email().or(c.name()).unwrap_or_default().to_owned(),
                            format!(
                                "untagged, older than the deletion of SyncId {} from the hub: not \
                                 collected (it would bring the contact back), left alone",
                                tombstone.map(|g| g.to_string()).unwrap_or_default()
                            ),
                        )
                    }
                    Link::Unlinked | Link::Deleted | Link::Withheld | Link::Private => {}
                }
            }
        }
        problems
    }
}
