//! The memory a run leaves ([`next_memory`]): a pure function of what was read (the input),
//! planned (the plan) and done (one [`WriteResult`] per operation), which the binary commits.
//!
//! Per copy (docs/state-and-deletes.md §2's table): written with data → the changeKey Graph answered, the winner's
//! version and fingerprint; stamped → its answer's changeKey, its own version and fingerprint;
//! not written, or the write failed → as read; 412 → forgotten (the user edited it: next run its
//! own time counts); answer lost → changeKey unknown, the data sent (only where the copy surely
//! carries the SyncId: a lost stamp or create may not have happened, and memory of a copy that is
//! not there would read as a deletion). Folders not planned this run (failed, incomplete or bad
//! reads) keep what they had. Tombstones, withdrawals and opt-outs are decided by the plan; a
//! copy deleted (or withheld) for a withdrawal is not remembered — the withdrawal record keeps
//! its contact out, so a hub copy gone is never read as a deletion from the hub. Untrusted memory
//! leaves nothing behind: the memory starts afresh from this run.

use super::book::WriteResult;
use super::keys::{CopyRef, Link};
use super::memory::version_and_fingerprint;
use super::{Action, Plan, PlanInput};
use crate::memory::{
    ContactKey, CopyMemory, FolderMemory, Guid, Memory, OptOut, RETENTION_DAYS, Tombstone, Version,
    Withdrawal, change_key,
};
use crate::model::Contact;
use crate::tags::{self, SyncId};
use jiff::{SignedDuration, Timestamp};
use rustc_hash::{FxHashMap, FxHashSet};

/// Where an operation writes: its logical contact (`u32::MAX` for a delete), folder and copy
/// position (`u32::MAX` for a create).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct OpRef {
    pub(super) logical: u32,
    pub(super) folder: u32,
    pub(super) pos: u32,
}

/// What the planner knew that [`next_memory`] needs: moved out of the planner, not copied.
/// Bookkeeping about the input (positions in it), not something the plan says: two plans that
/// say the same are equal whatever their drafts (see the `PartialEq` impl).
#[derive(Clone, Debug, Default)]
pub(super) struct Draft {
    /// False when nothing was planned (an incomplete hub read).
    pub(super) planned: bool,
    /// Whether the input's memory was used (and is carried forward).
    pub(super) trusted: bool,
    /// The input index of planner folder `f + 1` (folder 0 is the hub).
    pub(super) users: Vec<usize>,
    pub(super) links: Vec<Vec<Link>>,
    /// Per logical contact: its SyncId and winning copy.
    pub(super) sync_ids: Vec<SyncId>,
    pub(super) winners: Vec<CopyRef>,
    /// Parallel to the plan's operations.
    pub(super) ops: Vec<OpRef>,
    pub(super) hub_writable: bool,
    pub(super) tombstones: Vec<Tombstone>,
    pub(super) withdrawals: Vec<Withdrawal>,
    pub(super) opt_outs: Vec<OptOut>,
}

impl PartialEq for Draft {
    fn eq(&self, _: &Draft) -> bool {
        true
    }
}

/// The SyncId of a copy's own tag line, if remembered-able.
fn read_guid(c: &Contact) -> Option<Guid> {
    let tags = c.personal_notes().and_then(tags::find_tags)?;
    Guid::from_sync_id(tags.sync_id)
}

/// The winner's data as every copy written with it holds it afterwards.
#[derive(Clone)]
struct Written {
    version: Version,
    hash: u64,
    key: Option<ContactKey>,
}

/// The memory to commit after a run: see the module note. `results` are the outcomes of
/// `plan.operations`, in order; a missing one counts as [`WriteResult::NotRun`]. Pure.
pub fn next_memory(input: &PlanInput, plan: &Plan, results: &[WriteResult]) -> Memory {
    let d = &plan.draft;
    let now = input.now;
    let old = input.memory.as_ref().filter(|_| d.trusted);
    if !d.planned {
        let mut m = old
            .cloned()
            .unwrap_or_else(|| Memory::empty(&input.hub.mailbox, now));
        m.last_plan_time = now;
        return m;
    }
    // The hub as the plan read it (without private categories), so fingerprints match.
    let hub_read = crate::privacy::strip_hub(&input.hub, &input.private_categories);
    let snapshot = |f: usize| {
        if f == 0 {
            &*hub_read
        } else {
            &input.users[d.users[f - 1]]
        }
    };
    let old_folder = |f: usize| -> Option<&FolderMemory> {
        let m = old?;
        if f == 0 {
            Some(&m.hub)
        } else {
            m.user(&snapshot(f).mailbox)
        }
    };
    let contact = |at: CopyRef| &snapshot(at.folder as usize).contacts[at.pos as usize];
    let mut written: FxHashMap<u32, Written> = FxHashMap::default();
    let mut winner = |l: u32| -> Written {
        written
            .entry(l)
            .or_insert_with(|| {
                let at = d.winners[l as usize];
                let c = contact(at);
                let (version, hash) = version_and_fingerprint(
                    old_folder(at.folder as usize),
                    read_guid(c),
                    c,
                    input.fields,
                );
                Written {
                    version,
                    hash,
                    key: ContactKey::of(&c.fields),
                }
            })
            .clone()
    };

    // Operations by folder: writes to existing copies by position, creates apart.
    let mut by_copy: Vec<FxHashMap<u32, usize>> = vec![FxHashMap::default(); d.links.len()];
    let mut creates: Vec<Vec<usize>> = vec![Vec::new(); d.links.len()];
    for (i, r) in d.ops.iter().enumerate() {
        if r.pos == u32::MAX {
            creates[r.folder as usize].push(i);
        } else {
            by_copy[r.folder as usize].insert(r.pos, i);
        }
    }
    let result = |i: usize| results.get(i).unwrap_or(&WriteResult::NotRun);

    let mut folders: Vec<FolderMemory> = Vec::with_capacity(d.links.len());
    for (f, links) in d.links.iter().enumerate() {
        let snap = snapshot(f);
        if f == 0 && !d.hub_writable {
            // A bad read of the hub: its memory stays as it was (docs/state-and-deletes.md §3).
            folders.push(old_folder(0).cloned().unwrap_or_else(|| FolderMemory {
                mailbox: snap.mailbox.clone(),
                read_at: now,
                copies: Vec::new(),
            }));
            continue;
        }
        let hub = f == 0;
        let mut copies = Vec::new();
        for (pos, link) in links.iter().enumerate() {
            let Link::To(l) = *link else { continue };
            let Some(s) = Guid::from_sync_id(d.sync_ids[l.ix()]) else {
                continue;
            };
            let c = &snap.contacts[pos];
            let read = read_guid(c);
            let carries = read == Some(s);
            let as_read = |change_key_now: Option<&str>| {
                let (version, fields_hash) =
                    version_and_fingerprint(old_folder(f), read, c, input.fields);
                CopyMemory {
                    sync_id: s,
                    contact_id: c.id().into(),
                    change_key: change_key_now.map(|k| change_key(k).into()),
                    version,
                    fields_hash,
                    key: if hub { ContactKey::of(&c.fields) } else { None },
                }
            };
            let Some(&i) = by_copy[f].get(&(pos as u32)) else {
                if carries {
                    copies.push(as_read(c.etag()));
                }
                continue;
            };
            let action = plan.operations[i].action();
            match (action, result(i)) {
                (Action::Update, WriteResult::Done { change_key: ck })
                | (Action::Update, WriteResult::Created { change_key: ck, .. }) => {
                    let w = winner(l.0);
                    copies.push(CopyMemory {
                        sync_id: s,
                        contact_id: c.id().into(),
                        change_key: ck.as_deref().map(|k| change_key(k).into()),
                        version: w.version,
                        fields_hash: w.hash,
                        key: if hub { w.key } else { None },
                    });
                }
                (Action::Update, WriteResult::Unconfirmed) if carries => {
                    let w = winner(l.0);
                    copies.push(CopyMemory {
                        sync_id: s,
                        contact_id: c.id().into(),
                        change_key: None,
                        version: w.version,
                        fields_hash: w.hash,
                        key: if hub { w.key } else { None },
                    });
                }
                (Action::Stamp, WriteResult::Done { change_key: ck })
                | (Action::Stamp, WriteResult::Created { change_key: ck, .. }) => {
                    copies.push(as_read(ck.as_deref()));
                }
                (_, WriteResult::Conflict) => {}
                (_, WriteResult::Failed | WriteResult::NotRun) if carries => {
                    copies.push(as_read(c.etag()));
                }
                _ => {}
            }
        }
        for &i in &creates[f] {
            if let WriteResult::Created {
                contact_id,
                change_key: ck,
            } = result(i)
            {
                let op = &plan.operations[i];
                let Some(s) = SyncId::parse(&op.sync_id).and_then(Guid::from_sync_id) else {
                    continue;
                };
                let w = winner(d.ops[i].logical);
                copies.push(CopyMemory {
                    sync_id: s,
                    contact_id: contact_id.as_str().into(),
                    change_key: ck.as_deref().map(|k| change_key(k).into()),
                    version: w.version,
                    fields_hash: w.hash,
                    key: if hub { w.key } else { None },
                });
            }
        }
        copies.sort_by_key(|c| c.sync_id);
        copies.dedup_by_key(|c| c.sync_id);
        folders.push(FolderMemory {
            mailbox: snap.mailbox.clone(),
            read_at: now,
            copies,
        });
    }
    let mut folders = folders.into_iter();
    let hub = folders.next().expect("the hub is folder 0");
    let mut users: Vec<FolderMemory> = folders.collect();

    // Folders not planned this run keep their memory, until unseen for the retention period.
    let horizon = now
        .saturating_sub(SignedDuration::from_hours(24 * RETENTION_DAYS))
        .unwrap_or(Timestamp::MIN);
    if let Some(old) = old {
        let planned: FxHashSet<&str> = users.iter().map(|f| f.mailbox.as_str()).collect();
        let kept: Vec<FolderMemory> = old
            .users
            .iter()
            .filter(|f| !planned.contains(f.mailbox.as_str()) && f.read_at >= horizon)
            .cloned()
            .collect();
        users.extend(kept);
    }
    users.sort_by(|a, b| a.mailbox.cmp(&b.mailbox));
    users.dedup_by(|a, b| a.mailbox == b.mailbox);

    // Pending creates: this run's hub creates the hub does not hold yet. Earlier ones are
    // planned again when still needed — except after a bad read of the hub, which plans none.
    let tombstoned: FxHashSet<Guid> = d.tombstones.iter().map(|t| t.sync_id).collect();
    let mut pending: Vec<Guid> = if d.hub_writable {
        plan.pending_creates()
    } else {
        old.map(|m| m.pending_creates.clone()).unwrap_or_default()
    };
    let hub_has: FxHashSet<Guid> = hub
        .copies
        .iter()
        .map(|c| c.sync_id)
        .chain(input.hub.contacts.iter().filter_map(read_guid))
        .collect();
    pending.retain(|s| !hub_has.contains(s) && !tombstoned.contains(s));

    Memory {
        last_plan_time: now,
        hub,
        users,
        pending_creates: pending,
        tombstones: d.tombstones.clone(),
        opt_outs: d.opt_outs.clone(),
        withdrawals: d.withdrawals.clone(),
    }
}
