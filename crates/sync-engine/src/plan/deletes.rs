//! Deletions from the book (docs/state-and-deletes.md §3, I11–I13; and the privacy
//! withdrawals of docs/state-and-deletes.md §4.1, I15), decided before any linking: which tombstones live, which are new, cleared,
//! pruned, held or released — with the privacy withdrawals `privacy` found, under one brake
//! (`brake`) — and what becomes of the copies carrying their SyncIds: a Delete, left alone, or
//! (`Deletes: off`) only reported. Both need trusted memory to delete anything: in first-run mode a
//! withdrawal only freezes its contact (see `privacy`).
//!
//! Evidence rules, all of them required for a new tombstone: the SyncId is in the hub's memory,
//! the hub's read is complete and not bad, no hub contact carries it or the contact's remembered
//! key (the hub holds it again: an admin restored or re-created it), it is not a pending create
//! of an interrupted run (a repair), and it is not withdrawn (a withdrawn contact's hub copy is
//! gone because we deleted it). Only copies whose own tag line carries the SyncId are ever
//! deleted, never a user's own private contact; an untagged look-alike older than the tombstone
//! (or withdrawal) is not collected either ([`LookAlikes`]). A tombstone never deletes a hub
//! copy; a withdrawal deletes the hub copy too.

use super::book::{Book, Entry, Held, Removal, Withdrawn};
use super::decide::{PendingWrite, WriteKey};
use super::keys::{CopyRef, EmailOrName, KeyedContact, Link, LogicalId};
use super::privacy::{Report as WReport, WithdrawalCase, self_owned};
use super::{Action, DeleteOptions, Deletes, Planner, brake};
use crate::memory::{
    ContactKey, Guid, HoldReason, Memory, RETENTION_DAYS, Tombstone, TombstoneStatus, Withdrawal,
};
use crate::tags::SyncId;
use jiff::{SignedDuration, Timestamp};
use rustc_hash::{FxHashMap, FxHashSet};

/// The matching keys of live tombstones, so that an untagged copy older than the deletion is
/// not collected into a new contact (docs/state-and-deletes.md §3).
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

/// The logical id a tombstone's Delete carries (a withdrawal's is `privacy::WITHDRAWN`).
pub(super) const DELETED_FROM_HUB: LogicalId = LogicalId(u32::MAX);

fn as_email_or_name(k: &ContactKey) -> EmailOrName<'_> {
    match k {
        ContactKey::Email(e) => EmailOrName::Email(e),
        ContactKey::Name(n) => EmailOrName::Name(n),
    }
}

/// What becomes of the copies carrying one SyncId (a tombstone's or a withdrawal's).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    Delete,
    /// Held, or the hub's read cannot back a delete this run: neither deleted nor collected.
    Withhold,
    /// `Deletes: off`: only reported — a tombstone's copies are collected as usual (the hub copy
    /// is re-created), a withdrawal's are left alone (not spread further either).
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
    /// The withdrawals after this run, sorted.
    pub(super) withdrawals: Vec<Withdrawal>,
    /// The Delete writes.
    pub(super) pending: Vec<PendingWrite>,
}

/// A removal the brake weighs: a tombstone case or a withdrawal case.
#[derive(Clone, Copy)]
enum Candidate {
    Tombstone(usize),
    Withdrawal(usize),
}

impl Planner<'_, '_> {
    /// Decides the tombstones (trusted memory only) and the withdrawals (`privacy`), runs the
    /// brake over both, and marks the copies they concern (see the module note); fills
    /// `self.lookalikes`.
    pub(super) fn removals(
        &mut self,
        memory: Option<&Memory>,
        mut withdrawals: Vec<WithdrawalCase>,
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
        let withdrawn: FxHashSet<Guid> = withdrawals.iter().map(|w| w.sync_id()).collect();

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
        if let Some(memory) = memory {
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
                // A withdrawn contact gone from the hub was withdrawn, not deleted by an admin.
                if holds(c.sync_id, &c.key)
                    || memory.is_pending(c.sync_id)
                    || memory.tombstone(c.sync_id).is_some()
                    || withdrawn.contains(&c.sync_id)
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
        }
        cases.sort_by_key(|c| c.tombstone.sync_id);
        // A contact deleted from the hub (a live tombstone) is removed by its tombstone already.
        withdrawals.retain(|w| {
            cases
                .binary_search_by_key(&w.sync_id(), |c| c.tombstone.sync_id)
                .is_err()
        });

        if memory.is_none() {
            // First-run mode: losing the state never deletes (docs/state-and-deletes.md §1, I10). A
            // contact whose owner's copy is private is frozen until a run with trusted memory
            // withdraws it.
            for w in &mut withdrawals {
                w.fate = Fate::Withhold;
                w.report = WReport::Held(HoldReason::NoState);
            }
        }
        match (options.deletes, self.hub_writable) {
            _ if memory.is_none() => {}
            (Deletes::Off, _) => {
                // Nothing is tombstoned or withdrawn; old ones stay until the hub holds them
                // again (tombstones: the re-create does that) or the owner un-marks the contact.
                for c in &mut cases {
                    c.fate = Fate::ReportOnly;
                }
                for w in &mut withdrawals {
                    w.fate = Fate::ReportOnly;
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
                for w in &mut withdrawals {
                    w.fate = Fate::Withhold;
                    if w.new || w.was_held {
                        w.withdrawal.status = TombstoneStatus::Held(HoldReason::BadRead);
                        w.report = WReport::Held(HoldReason::BadRead);
                    }
                }
            }
            (Deletes::Hub, true) => {
                // One brake for both kinds: each logical contact leaving the book counts once,
                // the oldest released first.
                let mut order: Vec<(Timestamp, Guid, Candidate)> = Vec::new();
                for (i, c) in cases.iter().enumerate() {
                    if c.new || c.was_held {
                        let t = &c.tombstone;
                        order.push((t.observed_at, t.sync_id, Candidate::Tombstone(i)));
                    }
                }
                for (i, w) in withdrawals.iter().enumerate() {
                    if (w.new || w.was_held) && w.owner_folder.is_some() {
                        let x = &w.withdrawal;
                        order.push((x.since, x.sync_id, Candidate::Withdrawal(i)));
                    }
                }
                order.sort_by_key(|&(t, g, _)| (t, g));
                // The book: the hub's contacts as remembered, or as read in first-run mode.
                let book_size = memory.map_or(self.copies[0].len(), |m| m.hub.copies.len());
                let release = brake::releasable(options.limit, order.len(), book_size);
                for (n, &(_, _, which)) in order.iter().enumerate() {
                    let released = n < release;
                    match which {
                        Candidate::Tombstone(i) => {
                            let c = &mut cases[i];
                            if released {
                                c.tombstone.status = TombstoneStatus::Applied;
                                c.report = if c.new { Report::New } else { Report::Released };
                            } else {
                                c.tombstone.status = TombstoneStatus::Held(HoldReason::Brake);
                                c.report = Report::Held(HoldReason::Brake);
                            }
                        }
                        Candidate::Withdrawal(i) => {
                            let w = &mut withdrawals[i];
                            if released {
                                w.withdrawal.status = TombstoneStatus::Applied;
                                w.report = if w.new {
                                    WReport::Withdrawn
                                } else {
                                    WReport::Released
                                };
                            } else {
                                w.withdrawal.status = TombstoneStatus::Held(HoldReason::Brake);
                                w.report = WReport::Held(HoldReason::Brake);
                            }
                        }
                    }
                }
                for c in &mut cases {
                    if c.tombstone.status == TombstoneStatus::Applied {
                        c.fate = Fate::Delete;
                    }
                }
                for w in &mut withdrawals {
                    if w.withdrawal.status == TombstoneStatus::Applied && w.owner_folder.is_some() {
                        w.fate = Fate::Delete;
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
            for w in &withdrawals {
                if let Some(k) = self.withdrawn_key(w.sync_id(), memory) {
                    self.lookalikes
                        .insert(&k, w.withdrawal.since, w.withdrawal.sync_id);
                }
            }
        }

        let mut pending = self.mark_copies(&mut cases, book);
        pending.extend(self.mark_withdrawn(&mut withdrawals, book));

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
                    withdrawn_by: None,
                }),
            }
        }
        for w in &withdrawals {
            let x = &w.withdrawal;
            let entry = || {
                let key = w
                    .first
                    .is_none()
                    .then(|| self.withdrawn_key(x.sync_id, memory));
                self.hub_entry(x.sync_id, w.first, key.flatten())
            };
            let withdrawn = |released| Withdrawn {
                entry: entry(),
                owner: x.owner.clone(),
                since: x.since,
                copies: w.copies,
                released,
            };
            match w.report {
                WReport::None => {}
                WReport::Withdrawn => book.withdrawn.push(withdrawn(false)),
                WReport::Released => book.withdrawn.push(withdrawn(true)),
                WReport::Held(reason) => book.held.push(Held {
                    entry: entry(),
                    reason,
                    observed_at: x.since,
                    copies: w.copies,
                    withdrawn_by: Some(x.owner.clone()),
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
        // New withdrawals are remembered only when they act (not under `Deletes: off`, not in
        // first-run mode): the mailboxes show them again next run.
        let withdrawals = withdrawals
            .into_iter()
            .filter(|w| (options.deletes == Deletes::Hub && memory.is_some()) || !w.new)
            .map(|w| w.withdrawal)
            .collect();
        Deletions {
            tombstones,
            withdrawals,
            pending,
        }
    }

    /// Marks every user copy carrying a case's SyncId by its fate (a user's own private contact
    /// excepted), counts them, and returns the Delete writes.
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
            let mailbox = self.mailbox(folder as u32);
            for (pos, c) in folder_copies.iter().enumerate() {
                let Some(&i) = c.sync_id.and_then(|s| fates.get(&s)) else {
                    continue;
                };
                // A user's own private contact is never deleted
                // (docs/state-and-deletes.md §4, I15).
                if self.links[folder][pos] == Link::Private && self_owned(c, mailbox) {
                    continue;
                }
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
                            logical_id: DELETED_FROM_HUB,
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
        self.hub_entry(t.sync_id, copy, t.key.clone())
    }
}
