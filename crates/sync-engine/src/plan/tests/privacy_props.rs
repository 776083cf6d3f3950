//! Property tests of privacy (docs/state-and-deletes.md §4, I15) over random runs: between runs
//! users mark their copies private (by flag or category) and un-mark them, edit them, and an admin
//! files hub copies under "Private" (as the old script copied categories along); the memory is kept
//! or lost and a run may be interrupted after any write. Checked every run: a private copy is never
//! a source nor written or stamped, and an owner's own private contact is never deleted; no contact
//! is created under the SyncId of one whose owner's copy is private; no write carries a private
//! category; never-shared private contacts appear in no other folder, in any state (I15); deletes
//! only with trusted memory (I10). At the end, with deletes released, runs settle to an empty plan
//! (I1) in which no contact an owner keeps private is anywhere but in the owner's folder, and every
//! other contact is in every folder exactly once.

use super::*;
use crate::memory::Memory;
use crate::plan::book::{MemoryVerdict, WriteResult};
use crate::privacy::PrivateCategories;
use jiff::SignedDuration;
use proptest::prelude::*;

fn guid(p: usize) -> String {
    format!("{p:08x}-0000-4000-8000-00000000beef")
}

fn email(p: usize) -> String {
    format!("p{p}@c")
}

fn user(u: usize) -> String {
    format!("user{u}@c")
}

#[derive(Clone, Debug)]
enum Event {
    /// User `u` marks their copy of person `p` private, by flag or by category.
    Mark(usize, usize, bool),
    /// User `u` clears both markings of their copy of person `p`.
    Unmark(usize, usize),
    /// User `u` edits their copy of person `p`.
    Edit(usize, usize),
    /// An admin files the hub copy of person `p` under "Private" (and "VIP").
    HubPrivateCategory(usize),
}

fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => (0usize..4, 0usize..8, any::<bool>()).prop_map(|(u, p, f)| Event::Mark(u, p, f)),
        2 => (0usize..4, 0usize..8).prop_map(|(u, p)| Event::Unmark(u, p)),
        2 => (0usize..4, 0usize..8).prop_map(|(u, p)| Event::Edit(u, p)),
        1 => (0usize..8).prop_map(Event::HubPrivateCategory),
    ]
}

#[derive(Clone, Debug)]
struct RunSpec {
    events: Vec<Event>,
    keep_memory: bool,
    /// Interrupted after this many writes (the rest not run; what was done is committed).
    crash: Option<usize>,
    release: bool,
}

fn arb_run() -> impl Strategy<Value = RunSpec> {
    (
        proptest::collection::vec(arb_event(), 0..5),
        proptest::bool::weighted(0.85),
        prop_oneof![4 => Just(None), 1 => (0usize..6).prop_map(Some)],
        any::<bool>(),
    )
        .prop_map(|(events, keep_memory, crash, release)| RunSpec {
            events,
            keep_memory,
            crash,
            release,
        })
}

/// The world: people 0..n, person p owned (created) by user `owner[p]`, shared: the hub and the
/// owner hold a tagged copy, other users a tagged copy or none (restored by the first run). Each
/// user also keeps one never-shared private contact (flag or category), `secret{u}@c`.
fn arb_world() -> impl Strategy<Value = (Tenant, Vec<usize>)> {
    (3usize..8, 2usize..4).prop_flat_map(|(people, users)| {
        (
            proptest::collection::vec(0..users, people),
            proptest::collection::vec(proptest::collection::vec(any::<bool>(), people), users),
            proptest::collection::vec(any::<bool>(), users),
        )
            .prop_map(move |(owner, has, secret_by_flag)| {
                let copy = |id: String, p: usize, owner: usize| {
                    let mut c = contact(
                        &id,
                        &format!("P {p}"),
                        Some(&email(p)),
                        Some(p as i64),
                        Some(&format!("SyncId={};CreatedBy={}", guid(p), user(owner))),
                    );
                    c.fields.set(Field::JobTitle, "A");
                    c
                };
                let hub = (0..people)
                    .map(|p| copy(format!("h{p}"), p, owner[p]))
                    .collect();
                let users = (0..users)
                    .map(|u| {
                        let mut contacts: Vec<Contact> = (0..people)
                            .filter(|&p| owner[p] == u || has[u][p])
                            .map(|p| copy(format!("u{u}p{p}"), p, owner[p]))
                            .collect();
                        let mut s = contact(
                            &format!("u{u}secret"),
                            "Secret",
                            Some(&format!("secret{u}@c")),
                            Some(1),
                            Some("my doctor"),
                        );
                        if secret_by_flag[u] {
                            s.set_private_flag(true);
                        } else {
                            s.fields.set(Field::Categories, vec!["Private".to_owned()]);
                        }
                        contacts.push(s);
                        mbx(&user(u), contacts)
                    })
                    .collect();
                (Tenant::new(mbx(HUB, hub), users), owner)
            })
    })
}

fn copy_of(t: &Tenant, u: usize, p: usize) -> Option<&Contact> {
    t.users
        .get(u)?
        .contacts
        .iter()
        .find(|c| c.id() == format!("u{u}p{p}"))
}

fn happen(t: &mut Tenant, events: &[Event]) {
    let users = t.users.len();
    for e in events {
        match *e {
            Event::Mark(u, p, by_flag) => {
                let (mb, id) = (user(u % users), format!("u{}p{p}", u % users));
                if by_flag {
                    t.set_private_flag(&mb, &id, true);
                } else {
                    t.edit(&mb, &id, |f| {
                        let mut cats: Vec<String> =
                            f.list(Field::Categories).map(str::to_owned).collect();
                        cats.push("private".to_owned());
                        f.set(Field::Categories, cats);
                    });
                }
            }
            Event::Unmark(u, p) => {
                let (mb, id) = (user(u % users), format!("u{}p{p}", u % users));
                t.set_private_flag(&mb, &id, false);
                t.edit(&mb, &id, |f| {
                    let cats: Vec<String> = f
                        .list(Field::Categories)
                        .filter(|c| !c.eq_ignore_ascii_case("private"))
                        .map(str::to_owned)
                        .collect();
                    f.set(Field::Categories, cats);
                });
            }
            Event::Edit(u, p) => {
                let (mb, id) = (user(u % users), format!("u{}p{p}", u % users));
                let n = t.clock.as_millisecond();
                t.edit(&mb, &id, |f| f.set(Field::JobTitle, format!("edit {n}")));
            }
            Event::HubPrivateCategory(p) => {
                let id = format!("h{p}");
                t.edit(HUB, &id, |f| {
                    f.set(
                        Field::Categories,
                        vec!["Private".to_owned(), "VIP".to_owned()],
                    )
                });
            }
        }
    }
}

/// The people whose owner's copy is private now.
fn withdrawn_people(t: &Tenant, owner: &[usize], cats: &PrivateCategories) -> Vec<usize> {
    (0..owner.len())
        .filter(|&p| copy_of(t, owner[p], p).is_some_and(|c| crate::privacy::is_private(c, cats)))
        .collect()
}

/// The per-run checks; applies the plan (up to `crash` writes) and returns the next memory.
fn checked_run(
    t: &mut Tenant,
    owner: &[usize],
    memory: Option<Memory>,
    options: DeleteOptions,
    crash: Option<usize>,
    ids: &mut dyn FnMut() -> String,
) -> Result<(Plan, Memory), TestCaseError> {
    let cats = t.private_categories.clone();
    let input = t.input_with(true, memory, options);
    let p = plan(&input, ids);
    let trusted = p.memory_verdict == MemoryVerdict::Trusted;
    let withdrawn: Vec<String> = withdrawn_people(t, owner, &cats)
        .into_iter()
        .map(guid)
        .collect();
    let all = std::iter::once(&input.hub).chain(input.users.iter());
    let find = |mailbox: &str, id: &str| {
        all.clone()
            .find(|f| f.mailbox == mailbox)
            .and_then(|f| f.contacts.iter().find(|c| c.id() == id))
    };
    for op in &p.operations {
        // No write ever carries a private category.
        if let Some(serde_json::Value::Array(c)) = op.body().get("categories") {
            prop_assert!(
                c.iter()
                    .all(|x| !cats.contains(x.as_str().unwrap_or_default())),
                "{op:#?}"
            );
        }
        // Nothing is created (or linked) under the SyncId of a contact kept private.
        if op.action() != Action::Delete {
            prop_assert!(!withdrawn.contains(&op.sync_id), "{op:#?}");
        } else {
            prop_assert!(trusted, "a delete in first-run mode (I10): {op:#?}");
        }
        let Some(id) = op.contact_id() else { continue };
        let c = find(&op.mailbox, id).expect("an operation names a copy read");
        if op.target == Target::UserDefault && crate::privacy::is_private(c, &cats) {
            // A private copy is only ever deleted, and never its owner's own contact.
            prop_assert_eq!(op.action(), Action::Delete, "{:#?}", op);
            let own = KeyedContact::new(c)
                .created_by()
                .is_none_or(|o| o.eq_ignore_ascii_case(&op.mailbox));
            prop_assert!(!own, "the owner's private contact targeted: {op:#?}");
        }
    }
    let done = crash.unwrap_or(usize::MAX).min(p.operations.len());
    let mut partial = p.clone();
    partial.operations.truncate(done);
    let mut results = t
        .apply(&partial)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    results.resize(p.operations.len(), WriteResult::NotRun);
    // I15 for contacts never shared: in no other folder, whatever happened.
    for f in t.folders() {
        for c in &f.contacts {
            if let Some(e) = fields::primary_email(&c.fields).filter(|e| e.starts_with("secret")) {
                prop_assert_eq!(
                    format!("{e}").trim_start_matches("secret").to_owned(),
                    f.mailbox.trim_start_matches("user").to_owned(),
                    "a private contact left its owner's mailbox"
                );
            }
        }
    }
    let next = next_memory(&input, &p, &results);
    prop_assert!(next.is_normal());
    Ok((p, next))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn private_contacts_stay_with_their_owners_over_random_runs(
        (mut t, owner) in arb_world(),
        runs in proptest::collection::vec(arb_run(), 1..6),
    ) {
        let ids = &mut sequential_ids(0x9e1);
        let (_, mut m) = checked_run(&mut t, &owner, None, DeleteOptions::default(), None, ids)?;
        for r in &runs {
            t.advance(SignedDuration::from_mins(7));
            happen(&mut t, &r.events);
            let options = DeleteOptions {
                limit: if r.release { BrakeLimit::AllowDeletes(100) } else { BrakeLimit::Default },
                ..DeleteOptions::default()
            };
            let memory = r.keep_memory.then(|| m.clone());
            (_, m) = checked_run(&mut t, &owner, memory, options, r.crash, ids)?;
        }
        // Quiet runs with deletes released: they settle to an empty plan.
        let release = DeleteOptions {
            limit: BrakeLimit::AllowDeletes(usize::MAX),
            ..DeleteOptions::default()
        };
        let mut settled = false;
        for _ in 0..4 {
            t.advance(SignedDuration::from_mins(10));
            let (p, next) = checked_run(&mut t, &owner, Some(m.clone()), release, None, ids)?;
            m = next;
            if p.operations.is_empty() {
                settled = true;
                break;
            }
        }
        prop_assert!(settled, "still writing after 4 quiet runs");
        // Settled: a contact its owner keeps private is nowhere else; every other one is in
        // every folder once (a user's own private copy of it counts).
        let cats = t.private_categories.clone();
        let kept_private = withdrawn_people(&t, &owner, &cats);
        for (p, &o) in owner.iter().enumerate() {
            for f in t.folders() {
                let n = f
                    .contacts
                    .iter()
                    .filter(|c| fields::primary_email(&c.fields).as_deref() == Some(email(p).as_str()))
                    .count();
                let is_owner = f.mailbox == user(o);
                let want = if kept_private.contains(&p) { usize::from(is_owner) } else { 1 };
                prop_assert_eq!(n, want, "person {} in {}", p, f.mailbox);
            }
        }
    }
}
