//! Deletions from the hub (SPEC §7.3, I11–I13, design §5), decided before any linking: which
//! tombstones live, which are new, cleared, pruned, held or released (the brake), and what
//! becomes of the user copies carrying their SyncIds — a Delete, left alone, or (`Deletes: off`)
//! only reported. Trusted memory only: without it this step never runs.
//!
//! Evidence rules, all of them required for a new tombstone: the SyncId is in the hub's memory,
//! the hub's read is complete and not bad, no hub contact carries it or the contact's remembered
//! key (the hub holds it again: an admin restored or re-created it), and it is not a pending
//! create of an interrupted run (a repair). Only copies whose own tag line carries the SyncId are
//! ever deleted; an untagged look-alike older than the tombstone is not collected either
//! ([`LookAlikes`]). Never deletes a hub copy.

use super::book::{Book, Entry, Held, Removal};
use super::decide::{PendingWrite, WriteKey};
use super::keys::{CopyRef, EmailOrName, KeyedContact, Link, LogicalId};
use super::{Action, DeleteOptions, Deletes, Planner, Target, brake};
use crate::memory::{
    ContactKey, Guid, HoldReason, Memory, RETENTION_DAYS, Tombstone, TombstoneStatus,
};
use crate::tags::SyncId;
use jiff::{SignedDuration, Timestamp};
use rustc_hash::{FxHashMap, FxHashSet};

/// The matching keys of live tombstones, so that an untagged copy older than the deletion is
/// not collected into a new contact (design §5).
#[derive(Default)]
pub(super) struct LookAlikes {
    emails: FxHashMap<Box<str>, (Timestamp, Guid)>,
    names: FxHashMap<Box<str>, (Timestamp, Guid)>,
}

impl LookAlikes {
    fn insert(&mut self, key: &ContactKey, observed_at: Timestamp, sync_id: Guid) {
        let (map, k) = match key {
            ContactKey::Email(e) => (&mut self.emails, e),
            ContactKey::Name(n) => (&mut self.names, n),
        };
        let e = map.entry(k.clone()).or_insert((observed_at, sync_id));
        // Several tombstones with one key: the latest deletion decides.
        if observed_at > e.0 {
            *e = (observed_at, sync_id);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.emails.is_empty() && self.names.is_empty()
    }

    /// The tombstone an untagged copy `c` would resurrect: it matches its key and was last
    /// modified (its own time) before the deletion was observed. A copy edited or made after that
    /// is a user's new decision and is collected normally.
    pub(super) fn matching(&self, c: &KeyedContact<'_>) -> Option<Guid> {
        if c.sync_id.is_some() {
            return None;
        }
        let &(observed_at, sync_id) = match c.email_or_name()? {
            EmailOrName::Email(e) => self.emails.get(e),
            EmailOrName::Name(n) => self.names.get(n),
        }?;
        c.contact
            .last_modified()
            .is_none_or(|m| m < observed_at)
            .then_some(sync_id)
    }
}

fn as_email_or_name(k: &ContactKey) -> EmailOrName<'_> {
    match k {
        ContactKey::Email(e) => EmailOrName::Email(e),
        ContactKey::Name(n) => EmailOrName::Name(n),
    }
}

/// What becomes of the user copies carrying one SyncId.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Delete,
    /// Held, or the hub's read cannot back a delete this run: neither deleted nor collected.
    Withhold,
    /// `Deletes: off`: collected as usual (the hub copy is re-created), and reported.
    ReportOnly,
}

/// One tombstone this run looks at: an old live one, or a new one.
struct Case {
    tombstone: Tombstone,
    new: bool,
    /// Held earlier (old) — such a case is counted by the brake again.
    was_held: bool,
    fate: Fate,
    /// Entry list it is reported in, once its copies are counted.
    report: Report,
    copies: usize,
    first: Option<CopyRef>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Report {
    None,
    New,
    Released,
    Held(HoldReason),
}

/// This step's result.
#[derive(Default)]
pub(super) struct Deletions {
    /// The tombstones after this run (for [`super::next_memory`]), sorted.
    pub(super) tombstones: Vec<Tombstone>,
    /// The Delete writes.
    pub(super) pending: Vec<PendingWrite>,
}

impl Planner<'_, '_> {
    /// Decides the tombstones and marks the user copies they concern (see the module note);
    /// fills `self.lookalikes`.
    pub(super) fn tombstones(
        &mut self,
        memory: &Memory,
        options: DeleteOptions,
        now: Timestamp,
        book: &mut Book,
    ) -> Deletions {
        let hub = &self.copies[0];
        let hub_sync_ids: FxHashSet<SyncId> = hub.iter().filter_map(|c| c.sync_id).collect();
        let hub_keys: FxHashSet<EmailOrName<'_>> =
            hub.iter().filter_map(|c| c.email_or_name()).collect();
        let holds = |s: Guid, key: &Option<ContactKey>| {
            hub_sync_ids.contains(&s.sync_id())
                || key
                    .as_ref()
                    .is_some_and(|k| hub_keys.contains(&as_email_or_name(k)))
        };
        let horizon = now
            .saturating_sub(SignedDuration::from_hours(24 * RETENTION_DAYS))
            .unwrap_or(Timestamp::MIN);

        let mut cases: Vec<Case> = Vec::new();
        let case = |tombstone: Tombstone, new: bool| Case {
            was_held: matches!(tombstone.status, TombstoneStatus::Held(_)),
            tombstone,
            new,
            fate: Fate::Withhold,
            report: Report::None,
            copies: 0,
            first: None,
        };
        let mut cleared = Vec::new();
        for t in &memory.tombstones {
            if t.observed_at < horizon {
                book.pruned += 1;
            } else if holds(t.sync_id, &t.key) {
                cleared.push(t.clone());
            } else {
                cases.push(case(t.clone(), false));
            }
        }
        for c in &memory.hub.copies {
            if holds(c.sync_id, &c.key)
                || memory.is_pending(c.sync_id)
                || memory.tombstone(c.sync_id).is_some()
            {
                continue;
            }
            let t = Tombstone {
                sync_id: c.sync_id,
                observed_at: now,
                key: c.key.clone(),
                status: TombstoneStatus::Held(HoldReason::Brake),
            };
            cases.push(case(t, true));
        }
        cases.sort_by_key(|c| c.tombstone.sync_id);

        match (options.deletes, self.hub_writable) {
            (Deletes::Off, _) => {
                // Nothing is tombstoned; old tombstones stay until the hub holds them again
                // (the re-create does that).
                for c in &mut cases {
                    c.fate = Fate::ReportOnly;
                }
            }
            (Deletes::Hub, false) => {
                // The hub's listing is not evidence this run: hold what it seems to have lost,
                // delete nothing.
                for c in &mut cases {
                    c.fate = Fate::Withhold;
                    if c.new || c.was_held {
                        c.tombstone.status = TombstoneStatus::Held(HoldReason::BadRead);
                        c.report = Report::Held(HoldReason::BadRead);
                    }
                }
            }
            (Deletes::Hub, true) => {
                let mut order: Vec<usize> = (0..cases.len())
                    .filter(|&i| cases[i].new || cases[i].was_held)
                    .collect();
                order
                    .sort_by_key(|&i| (cases[i].tombstone.observed_at, cases[i].tombstone.sync_id));
                let release =
                    brake::releasable(options.limit, order.len(), memory.hub.copies.len());
                for (n, &i) in order.iter().enumerate() {
                    let c = &mut cases[i];
                    if n < release {
                        c.tombstone.status = TombstoneStatus::Applied;
                        c.report = if c.new { Report::New } else { Report::Released };
                    } else {
                        c.tombstone.status = TombstoneStatus::Held(HoldReason::Brake);
                        c.report = Report::Held(HoldReason::Brake);
                    }
                }
                for c in &mut cases {
                    if c.tombstone.status == TombstoneStatus::Applied {
                        c.fate = Fate::Delete;
                    }
                }
            }
        }
        if options.deletes == Deletes::Hub {
            for c in &cases {
                if let Some(k) = &c.tombstone.key {
                    self.lookalikes
                        .insert(k, c.tombstone.observed_at, c.tombstone.sync_id);
                }
            }
        }

        let pending = self.mark_copies(&mut cases, book);

        for t in &cleared {
            book.cleared.push(self.tombstone_entry(t, None));
        }
        for c in &cases {
            let entry = || self.tombstone_entry(&c.tombstone, c.first);
            let removal = || Removal {
                entry: entry(),
                observed_at: c.tombstone.observed_at,
                copies: c.copies,
            };
            match c.report {
                Report::None => {}
                Report::New => book.tombstones.push(removal()),
                Report::Released => book.released.push(removal()),
                Report::Held(reason) => book.held.push(Held {
                    entry: entry(),
                    reason,
                    observed_at: c.tombstone.observed_at,
                    copies: c.copies,
                }),
            }
        }
        let tombstones = if options.deletes == Deletes::Off {
            cases
                .into_iter()
                .filter(|c| !c.new)
                .map(|c| c.tombstone)
                .collect()
        } else {
            cases.into_iter().map(|c| c.tombstone).collect()
        };
        Deletions {
            tombstones,
            pending,
        }
    }

    /// Marks every user copy carrying a case's SyncId by its fate, counts them, and returns the
    /// Delete writes.
    fn mark_copies(&mut self, cases: &mut [Case], book: &mut Book) -> Vec<PendingWrite> {
        let fates: FxHashMap<SyncId, usize> = cases
            .iter()
            .enumerate()
            .map(|(i, c)| (c.tombstone.sync_id.sync_id(), i))
            .collect();
        let mut pending = Vec::new();
        if fates.is_empty() {
            return pending;
        }
        let copies = self.copies;
        for (folder, folder_copies) in copies.iter().enumerate().skip(1) {
            for (pos, c) in folder_copies.iter().enumerate() {
                let Some(&i) = c.sync_id.and_then(|s| fates.get(&s)) else {
                    continue;
                };
                let at = CopyRef::new(folder, pos);
                let case = &mut cases[i];
                case.copies += 1;
                case.first.get_or_insert(at);
                match case.fate {
                    Fate::Delete => {
                        self.links[folder][pos] = Link::Deleted;
                        pending.push(PendingWrite {
                            key: WriteKey {
                                step: 2,
                                folder: at.folder,
                                sync_id: case.tombstone.sync_id.sync_id(),
                                action: Action::Delete,
                                pos: at.pos,
                            },
                            logical_id: LogicalId(u32::MAX),
                        });
                    }
                    Fate::Withhold => self.links[folder][pos] = Link::Withheld,
                    Fate::ReportOnly => book.would_delete.push(self.copy_entry(at)),
                }
            }
        }
        pending
    }

    /// A line about a copy: its SyncId, name and email, and its mailbox.
    pub(super) fn copy_entry(&self, at: CopyRef) -> Entry {
        let c = self.copy(at);
        Entry {
            sync_id: c.sync_id.map(|s| s.to_string()).unwrap_or_default(),
            display_name: c.contact.display_name().map(str::to_owned),
            email: c.email().map(str::to_owned),
            mailbox: self.mailbox(at.folder).to_owned(),
            target: super::target_of(at.folder),
        }
    }

    /// A line about a tombstone, in the hub: named after a copy carrying it if one was read,
    /// else after its remembered key.
    fn tombstone_entry(&self, t: &Tombstone, copy: Option<CopyRef>) -> Entry {
        let (display_name, email) = match (copy.map(|at| self.copy(at)), &t.key) {
            (Some(c), _) => (
                c.contact.display_name().map(str::to_owned),
                c.email().map(str::to_owned),
            ),
            (None, Some(ContactKey::Email(e))) => (None, Some(e.to_string())),
            (None, Some(ContactKey::Name(n))) => (Some(n.to_string()), None),
            (None, None) => (None, None),
        };
        Entry {
            sync_id: t.sync_id.to_string(),
            display_name,
            email,
            mailbox: self.mailbox(0).to_owned(),
            target: Target::Hub,
        }
    }
}
