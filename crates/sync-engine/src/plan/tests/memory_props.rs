//! Property tests of memory over random runs: between runs an admin deletes hub contacts, users
//! delete, edit and add copies, Exchange bumps changeKeys, time passes, and the memory is kept
//! (`next_memory` of the run before), dropped, or rolled back to an older one; a run may be
//! interrupted after any write, with its memory committed or lost. Checked every run:
//! a Delete only ever targets a tagged copy of a contact an admin deleted from the hub, only with
//! trusted memory (I10, I11); no key group grows (I2); a tombstone the memory kept survives unless
//! pruned or the hub holds the contact again; the brake lets no more than its limit through
//! (I12). At the end, runs without events settle to an empty plan (I1).

use super::*;
use crate::memory::{ContactKey, Memory};
use crate::plan::book::MemoryVerdict;
use jiff::SignedDuration;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};

#[derive(Clone, Debug)]
enum Event {
    /// An admin deletes the n-th hub contact.
    AdminDelete(usize),
    /// A user deletes their n-th copy.
    UserDelete(usize, usize),
    /// A user edits their n-th copy.
    UserEdit(usize, usize),
    /// Exchange bumps the changeKey of the n-th contact of a folder (0 = hub).
    Bump(usize, usize),
    /// A user adds an untagged contact for person n (a look-alike, or a new contact).
    AddUntagged(usize, usize),
    /// A folder emptied behind our back (0 = the hub: an admin deletes everything).
    Wipe(usize),
}

/// How a run ends.
#[derive(Clone, Copy, Debug)]
enum Crash {
    /// Every write applied, the memory committed.
    None,
    /// Interrupted after the first n writes; what was done is committed (the rest `NotRun`).
    Committed(usize),
    /// Interrupted after the first n writes, before the commit: only the run marker and the
    /// pending creates, recorded before the first write, reach the state.
    Lost(usize),
}

#[derive(Clone, Copy, Debug)]
enum StateChoice {
    Keep,
    Drop,
    /// Memory from two runs before.
    Rollback,
}

#[derive(Clone, Debug)]
struct RunSpec {
    events: Vec<Event>,
    state: StateChoice,
    options: DeleteOptions,
    advance_minutes: i64,
    crash: Crash,
}

fn arb_options() -> impl Strategy<Value = DeleteOptions> {
    (
        prop_oneof![4 => Just(Deletes::Hub), 1 => Just(Deletes::Off)],
        prop_oneof![Just(UserDeletes::Restore), Just(UserDeletes::Respect)],
        prop_oneof![
            2 => Just(BrakeLimit::Default),
            1 => (0usize..4).prop_map(BrakeLimit::AllowDeletes),
            1 => (0usize..6).prop_map(BrakeLimit::MaxDeletes),
        ],
    )
        .prop_map(|(deletes, user_deletes, limit)| DeleteOptions {
            deletes,
            user_deletes,
            limit,
        })
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => (0usize..40).prop_map(Event::AdminDelete),
        2 => (0usize..4, 0usize..40).prop_map(|(u, n)| Event::UserDelete(u, n)),
        2 => (0usize..4, 0usize..40).prop_map(|(u, n)| Event::UserEdit(u, n)),
        1 => (0usize..5, 0usize..40).prop_map(|(f, n)| Event::Bump(f, n)),
        1 => (0usize..4, 0usize..30).prop_map(|(u, p)| Event::AddUntagged(u, p)),
        1 => (0usize..5).prop_map(Event::Wipe),
    ]
}

fn arb_run() -> impl Strategy<Value = RunSpec> {
    (
        proptest::collection::vec(arb_event(), 0..6),
        prop_oneof![6 => Just(StateChoice::Keep), 1 => Just(StateChoice::Drop), 1 => Just(StateChoice::Rollback)],
        arb_options(),
        prop_oneof![8 => 1i64..120, 1 => Just(100 * 24 * 60)],
        prop_oneof![
            6 => Just(Crash::None),
            1 => (0usize..8).prop_map(Crash::Committed),
            1 => (0usize..8).prop_map(Crash::Lost),
        ],
    )
        .prop_map(|(events, state, options, advance_minutes, crash)| RunSpec {
            events,
            state,
            options,
            advance_minutes,
            crash,
        })
}

/// People 0..n; the hub holds most of them (tagged), each user a tagged copy (most), an untagged
/// one, or none.
fn arb_world() -> impl Strategy<Value = Tenant> {
    (4usize..24, 1usize..4).prop_flat_map(|(people, users)| {
        (
            proptest::collection::vec(proptest::bool::weighted(0.85), people),
            proptest::collection::vec(proptest::collection::vec((0u8..5, 0i64..5), people), users),
        )
            .prop_map(move |(in_hub, grid)| {
                let person = |id: String, p: usize, tagged: bool, t: i64| {
                    let notes =
                        tagged.then(|| format!("SyncId={:08x}-4f89-41d3-9a0c-0305e82c3301", p));
                    let mut c = contact(
                        &id,
                        &format!("P {p}"),
                        Some(&format!("p{p}@c")),
                        Some(t),
                        notes.as_deref(),
                    );
                    c.fields.set(Field::JobTitle, "A");
                    c
                };
                let hub = (0..people)
                    .filter(|&p| in_hub[p])
                    .map(|p| person(format!("h{p}"), p, true, 0))
                    .collect();
                let users = grid
                    .iter()
                    .enumerate()
                    .map(|(u, row)| {
                        let contacts = row
                            .iter()
                            .enumerate()
                            .filter(|(_, (kind, _))| *kind > 0)
                            .map(|(p, &(kind, t))| person(format!("u{u}p{p}"), p, kind > 1, t))
                            .collect();
                        mbx(&format!("user{u}@c"), contacts)
                    })
                    .collect();
                Tenant::new(mbx(HUB, hub), users)
            })
    })
}

/// docs/reliability.md I2 oracle, per folder: contacts by SyncId, else by email (or displayName).
fn key_counts(t: &Tenant) -> HashMap<(String, String), usize> {
    let mut m = HashMap::new();
    for f in t.folders() {
        for c in &f.contacts {
            let k = KeyedContact::new(c);
            let key = match (k.sync_id, k.email(), k.name()) {
                (Some(s), _, _) => format!("sid:{s}"),
                (None, Some(e), _) => format!("email:{e}"),
                (None, None, Some(n)) => format!("name:{n}"),
                _ => continue,
            };
            *m.entry((f.mailbox.clone(), key)).or_default() += 1;
        }
    }
    m
}

fn sync_id_of(c: &Contact) -> Option<String> {
    KeyedContact::new(c).sync_id.map(|s| s.to_string())
}

/// Applies the events between two runs; records the SyncIds of hub contacts the admin deleted.
fn happen(t: &mut Tenant, events: &[Event], admin_deleted: &mut HashSet<String>) {
    for e in events {
        match *e {
            Event::AdminDelete(n) => {
                if t.hub.contacts.is_empty() {
                    continue;
                }
                let id = t.hub.contacts[n % t.hub.contacts.len()].id().to_owned();
                let gone = t.delete(HUB, &id).unwrap();
                admin_deleted.extend(sync_id_of(&gone));
            }
            Event::UserDelete(u, n) | Event::UserEdit(u, n) => {
                let f = &t.users[u % t.users.len()];
                if f.contacts.is_empty() {
                    continue;
                }
                let (mailbox, id) = (
                    f.mailbox.clone(),
                    f.contacts[n % f.contacts.len()].id().to_owned(),
                );
                if matches!(e, Event::UserDelete(..)) {
                    t.delete(&mailbox, &id);
                } else {
                    t.edit(&mailbox, &id, |f| {
                        f.set(Field::JobTitle, format!("edit {n}"))
                    });
                }
            }
            Event::Bump(f, n) => {
                let folder = if f % (t.users.len() + 1) == 0 {
                    &t.hub
                } else {
                    &t.users[f % (t.users.len() + 1) - 1]
                };
                if folder.contacts.is_empty() {
                    continue;
                }
                let (mailbox, id) = (
                    folder.mailbox.clone(),
                    folder.contacts[n % folder.contacts.len()].id().to_owned(),
                );
                t.bump_change_key(&mailbox, &id);
            }
            Event::Wipe(f) => {
                let f = f % (t.users.len() + 1);
                let folder = if f == 0 {
                    &mut t.hub
                } else {
                    &mut t.users[f - 1]
                };
                let gone = std::mem::take(&mut folder.contacts);
                if f == 0 {
                    admin_deleted.extend(gone.iter().filter_map(sync_id_of));
                }
            }
            Event::AddUntagged(u, p) => {
                let u = u % t.users.len();
                let mut c = contact(
                    &format!("add-{}-{u}-{p}", t.clock.as_millisecond()),
                    &format!("P {p}"),
                    Some(&format!("p{p}@c")),
                    None,
                    None,
                );
                c.set_last_modified(Some(t.clock));
                t.users[u].contacts.push(c);
            }
        }
    }
}

fn hub_holds(hub: &MailboxSnapshot, sync_id: &str, key: &Option<ContactKey>) -> bool {
    hub.contacts.iter().any(|c| {
        sync_id_of(c).as_deref() == Some(sync_id)
            || key
                .as_ref()
                .is_some_and(|k| ContactKey::of(&c.fields).as_ref() == Some(k))
    })
}

/// One run with every per-run check; returns the plan and the memory it leaves.
fn checked_run(
    t: &mut Tenant,
    memory: Option<Memory>,
    options: DeleteOptions,
    admin_deleted: &HashSet<String>,
    ids: &mut dyn FnMut() -> String,
    crash: Crash,
) -> Result<(Plan, Memory), TestCaseError> {
    let input = t.input_with(true, memory, options);
    let p = plan(&input, ids);
    let trusted = p.memory_verdict == MemoryVerdict::Trusted;
    prop_assert_eq!(
        input.memory.is_some(),
        p.memory_verdict != MemoryVerdict::NotGiven
    );
    let now = input.now;

    for op in p.operations.iter().filter(|o| o.action() == Action::Delete) {
        // I10: only with trusted memory.
        prop_assert!(trusted, "a delete with {:?}", p.memory_verdict);
        prop_assert_eq!(options.deletes, Deletes::Hub);
        // I11: only a tagged copy carrying the deleted SyncId, only of a contact the admin deleted.
        let folder = input
            .users
            .iter()
            .find(|u| u.mailbox == op.mailbox)
            .unwrap();
        let c = folder
            .contacts
            .iter()
            .find(|c| Some(c.id()) == op.contact_id())
            .unwrap();
        prop_assert_eq!(
            sync_id_of(c),
            Some(op.sync_id.clone()),
            "deleting an untagged or other contact"
        );
        prop_assert!(
            admin_deleted.contains(&op.sync_id),
            "{} was never deleted from the hub",
            op.sync_id
        );
        prop_assert!(
            input
                .hub
                .contacts
                .iter()
                .all(|h| sync_id_of(h).as_deref() != Some(op.sync_id.as_str()))
        );
    }

    // I12: the brake.
    if let (true, Some(m)) = (trusted, &input.memory) {
        let released = p.book.tombstones.len() + p.book.released.len();
        match options.limit {
            BrakeLimit::AllowDeletes(n) => prop_assert!(released <= n),
            BrakeLimit::MaxDeletes(n) => prop_assert!(released <= n),
            BrakeLimit::Default => {
                prop_assert!(released <= 10 || released * 10 <= m.hub.copies.len())
            }
        }
    }

    let before = key_counts(t);
    let done = match crash {
        Crash::None => p.operations.len(),
        Crash::Committed(n) | Crash::Lost(n) => n.min(p.operations.len()),
    };
    let mut partial = p.clone();
    partial.operations.truncate(done);
    let mut results = t
        .apply(&partial)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    results.resize(p.operations.len(), crate::plan::book::WriteResult::NotRun);
    // I2: no key group grows.
    for (k, n) in &key_counts(t) {
        let was = before.get(k).copied().unwrap_or(0);
        prop_assert!(*n <= was.max(1), "{:?}: {} -> {}", k, was, n);
    }
    if let Crash::Lost(_) = crash {
        // The state holds what was recorded before the first write: the marker and the
        // pending creates, over the memory loaded (or a fresh one).
        let mut m = input
            .memory
            .clone()
            .filter(|_| trusted)
            .unwrap_or_else(|| Memory::empty(HUB, now));
        m.last_plan_time = now;
        m.pending_creates.extend(p.pending_creates());
        m.normalise();
        return Ok((p, m));
    }
    let next = next_memory(&input, &p, &results);
    prop_assert!(next.is_normal());

    // A tombstone the (trusted) memory kept is lost only by pruning or the hub holding it again.
    if let (true, Some(m)) = (trusted, &input.memory) {
        let horizon = now - SignedDuration::from_hours(24 * crate::memory::RETENTION_DAYS);
        for ts in &m.tombstones {
            let kept = next.tombstone(ts.sync_id).is_some();
            prop_assert!(
                kept || ts.observed_at < horizon
                    || hub_holds(&input.hub, &ts.sync_id.to_string(), &ts.key),
                "tombstone {} lost",
                ts.sync_id
            );
        }
    }
    Ok((p, next))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn random_runs_with_deletions_and_state_losses(
        mut t in arb_world(),
        runs in proptest::collection::vec(arb_run(), 1..6),
    ) {
        let mut admin_deleted = HashSet::new();
        let mut memories: Vec<Memory> = Vec::new();
        // SyncIds are unique across runs, as UUIDs are.
        let ids = &mut sequential_ids(0x5eed);
        let (_, m) = checked_run(&mut t, None, DeleteOptions::default(), &admin_deleted, ids, Crash::None)?;
        memories.push(m);
        let mut last = DeleteOptions::default();
        for r in &runs {
            t.advance(SignedDuration::from_mins(r.advance_minutes));
            happen(&mut t, &r.events, &mut admin_deleted);
            let memory = match r.state {
                StateChoice::Keep => memories.last().cloned(),
                StateChoice::Drop => None,
                StateChoice::Rollback => memories.iter().rev().nth(1).cloned(),
            };
            let (_, m) = checked_run(&mut t, memory, r.options, &admin_deleted, ids, r.crash)?;
            memories.push(m);
            last = r.options;
        }
        // I1: without events, and with the held deletions released, the runs settle to an empty
        // plan.
        let last = DeleteOptions { limit: BrakeLimit::AllowDeletes(usize::MAX), ..last };
        let mut settled = false;
        for _ in 0..4 {
            t.advance(SignedDuration::from_mins(10));
            let (p, m) = checked_run(&mut t, memories.last().cloned(), last, &admin_deleted, ids, Crash::None)?;
            memories.push(m);
            if p.operations.is_empty() {
                settled = true;
                break;
            }
        }
        prop_assert!(settled, "still writing after 4 quiet runs");
    }

    /// With memory threaded, a random tenant converges in one run exactly as without (I1): the
    /// second plan, with the first run's memory, is empty.
    #[test]
    fn memory_threaded_tenants_converge_in_one_run(mut t in arb_world()) {
        let ids = &mut sequential_ids(0x5eed);
        let (_, m) = checked_run(&mut t, None, DeleteOptions::default(), &HashSet::new(), ids, Crash::None)?;
        t.advance(SignedDuration::from_mins(5));
        let (p, _) = checked_run(&mut t, Some(m), DeleteOptions::default(), &HashSet::new(), ids, Crash::None)?;
        prop_assert!(p.operations.is_empty(), "{:#?}", p.operations);
        prop_assert_eq!(p.memory_verdict, MemoryVerdict::Trusted);
    }
}
