//! Private contacts (docs/state-and-deletes.md §4, I15): never collected by category or flag;
//! withdrawn from the hub and the other users when their owner marks them private after they were
//! shared (also in first-run mode), never back while private, collected again when un-marked; a
//! private copy of someone else's contact only stops being a source; private categories never
//! propagate; the brake, bad hub reads, `Deletes: off`, interrupted withdrawals and tombstones.

use super::memory::guid;
use super::*;
use crate::memory::{HoldReason, Memory, TombstoneStatus};
use crate::plan::book::WriteResult;
use jiff::SignedDuration;

const ALICE: &str = "alice@c";
const BOB: &str = "bob@c";
const CAROL: &str = "carol@c";

/// Person `i` as a tagged copy created by `owner`.
fn person(id: &str, i: usize, owner: &str) -> Contact {
    let mut c = contact(
        id,
        &format!("Person {i}"),
        Some(&format!("p{i}@contoso.com")),
        Some(10),
        Some(&format!("SyncId={};CreatedBy={owner}", guid(i))),
    );
    c.fields.set(Field::JobTitle, "A");
    c
}

/// A converged tenant: person `i` created by `owners[i]`, in the hub and in every user.
fn shared(owners: &[&str], users: &[&str]) -> Tenant {
    Tenant::new(
        mbx(
            HUB,
            owners
                .iter()
                .enumerate()
                .map(|(i, o)| person(&format!("h-{i}"), i, o))
                .collect(),
        ),
        users
            .iter()
            .map(|u| {
                mbx(
                    u,
                    owners
                        .iter()
                        .enumerate()
                        .map(|(i, o)| person(&format!("{u}-{i}"), i, o))
                        .collect(),
                )
            })
            .collect(),
    )
}

fn step_with(t: &mut Tenant, memory: Option<Memory>, options: DeleteOptions) -> (Plan, Memory) {
    let input = t.input_with(true, memory, options);
    let p = plan(&input, &mut sequential_ids(9));
    let results = t.apply(&p).unwrap();
    let next = next_memory(&input, &p, &results);
    (p, next)
}

fn step(t: &mut Tenant, memory: Option<Memory>) -> (Plan, Memory) {
    step_with(t, memory, DeleteOptions::default())
}

fn emails(t: &Tenant, mailbox: &str) -> Vec<String> {
    let mut v: Vec<String> = t
        .folder(mailbox)
        .unwrap()
        .contacts
        .iter()
        .filter_map(|c| fields::primary_email(&c.fields).map(|e| e.into_owned()))
        .collect();
    v.sort();
    v
}

fn deleted(p: &Plan) -> Vec<(String, String, DeleteCause)> {
    p.operations
        .iter()
        .filter_map(|o| match &o.write {
            Write::Delete {
                contact_id, cause, ..
            } => Some((o.mailbox.clone(), contact_id.clone(), *cause)),
            _ => None,
        })
        .collect()
}

fn cats_of(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn user_mut<'t>(t: &'t mut Tenant, mailbox: &str) -> &'t mut MailboxSnapshot {
    t.users.iter_mut().find(|u| u.mailbox == mailbox).unwrap()
}

fn touches(p: &Plan, id: &str) -> bool {
    p.operations.iter().any(|o| o.contact_id() == Some(id))
}

fn private_doctor(id: &str, by_flag: bool) -> Contact {
    let mut c = contact(id, "Dr Who", Some("doctor@clinic.example"), Some(5), None);
    if by_flag {
        c.set_private_flag(true);
    } else {
        c.fields
            .set(Field::Categories, cats_of(&["VIP", "private"]));
    }
    c
}

/// A private contact, by category or by flag, is never collected: not into the hub, not into
/// another user; it is not stamped; nothing of it is reported; everything else converges.
#[test]
fn a_private_contact_is_never_collected() {
    for by_flag in [false, true] {
        let mut t = Tenant::new(
            mbx(HUB, vec![]),
            vec![
                mbx(
                    ALICE,
                    vec![
                        private_doctor("a-dr", by_flag),
                        contact("a-x", "X Y", Some("x@y"), Some(1), None),
                    ],
                ),
                mbx(BOB, vec![]),
            ],
        );
        let (p, m) = step(&mut t, None);
        assert!(!touches(&p, "a-dr"), "{:#?}", p.operations);
        assert!(
            p.operations
                .iter()
                .all(|o| o.email.as_deref() != Some("doctor@clinic.example"))
        );
        assert!(p.problems.is_empty(), "{:#?}", p.problems);
        assert_eq!(emails(&t, HUB), ["x@y"]);
        assert_eq!(emails(&t, BOB), ["x@y"]);
        let (p, _) = step(&mut t, Some(m));
        assert!(p.operations.is_empty(), "{:#?}", p.operations);
        assert!(p.book.withdrawn.is_empty() && p.book.held.is_empty());
    }
}

/// The owner marks a shared contact private: the run deletes its hub copy and every other user's
/// copy (counted once), never touches the owner's, and it never comes back while private; the
/// memory keeps the withdrawal. Un-marked, it is collected again under its SyncId (no repair).
#[test]
fn a_contact_marked_private_by_its_owner_is_withdrawn_and_comes_back_when_unmarked() {
    let mut t = shared(&[ALICE, BOB], &[ALICE, BOB, CAROL]);
    let (_, m) = step(&mut t, None);
    let (p, m) = step(&mut t, Some(m));
    assert!(p.operations.is_empty());
    t.advance(SignedDuration::from_mins(5));
    let owners_copy = t.folder(ALICE).unwrap().contacts[0].clone();
    assert!(t.set_private_flag(ALICE, "alice@c-0", true));
    let before = t.folder(ALICE).unwrap().contacts[0].clone();

    let (p, m) = step(&mut t, Some(m));
    let mut d = deleted(&p);
    d.sort();
    assert_eq!(
        d,
        [
            (BOB.to_owned(), "bob@c-0".to_owned(), DeleteCause::Withdrawn),
            (CAROL.into(), "carol@c-0".into(), DeleteCause::Withdrawn),
            (HUB.into(), "h-0".into(), DeleteCause::Withdrawn),
        ]
    );
    let hub_delete = p
        .operations
        .iter()
        .find(|o| o.target == Target::Hub)
        .unwrap();
    assert_eq!(
        (hub_delete.step, hub_delete.sync_id.as_str()),
        (1, &*guid(0))
    );
    assert!(if_match(hub_delete).is_some());
    assert_eq!(p.operations.len(), 3, "{:#?}", p.operations);
    assert_eq!(p.book.withdrawn.len(), 1);
    let w = &p.book.withdrawn[0];
    assert_eq!((w.owner.as_str(), w.copies, w.released), (ALICE, 3, false));
    assert_eq!(w.entry.email.as_deref(), Some("p0@contoso.com"));
    assert_eq!(m.withdrawals.len(), 1);
    assert_eq!(m.withdrawals[0].status, TombstoneStatus::Applied);
    assert!(
        m.hub
            .get(crate::memory::Guid::parse(&guid(0)).unwrap())
            .is_none()
    );
    assert!(m.tombstones.is_empty());
    // The owner's contact is exactly as it was; nobody else holds it.
    assert_eq!(t.folder(ALICE).unwrap().contacts[0], before);
    assert_ne!(before, owners_copy, "the owner's own edit (the flag)");
    for mb in [HUB, BOB, CAROL] {
        assert_eq!(emails(&t, mb), ["p1@contoso.com"], "{mb}");
    }

    // Never back while private, and nothing is a tombstone or a repair.
    let mut m = m;
    for _ in 0..2 {
        t.advance(SignedDuration::from_mins(5));
        let (p, next) = step(&mut t, Some(m));
        assert!(p.operations.is_empty(), "{:#?}", p.operations);
        assert!(p.book.tombstones.is_empty() && p.book.repairs.is_empty());
        assert_eq!(next.withdrawals.len(), 1);
        m = next;
    }

    // Un-marked: collected again under its SyncId, from the owner's copy.
    t.advance(SignedDuration::from_mins(5));
    assert!(t.set_private_flag(ALICE, "alice@c-0", false));
    let (p, m) = step(&mut t, Some(m));
    assert_eq!(p.book.withdrawals_ended.len(), 1);
    assert!(p.book.repairs.is_empty(), "{:#?}", p.book.repairs);
    assert!(p.problems.is_empty(), "{:#?}", p.problems);
    let creates: Vec<&str> = p
        .operations
        .iter()
        .filter(|o| o.action() == Action::Create)
        .map(|o| o.mailbox.as_str())
        .collect();
    assert_eq!(creates, [HUB, BOB, CAROL]);
    assert!(p.operations.iter().all(|o| o.sync_id == guid(0)));
    assert!(m.withdrawals.is_empty());
    let (p, _) = step(&mut t, Some(m));
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
}

/// Without memory (a lost state, or the first run after an upgrade) nothing is deleted
/// (docs/state-and-deletes.md §1, I10): the contact whose owner marked it private is frozen — not
/// written, not spread to a new user — and reported held; the next run, trusting the memory the
/// first one left, withdraws it. A state lost after a withdrawal re-creates nothing either.
#[test]
fn first_run_mode_freezes_and_the_next_run_withdraws() {
    let mut t = shared(&[ALICE, BOB], &[ALICE, BOB]);
    user_mut(&mut t, ALICE).contacts[0]
        .fields
        .set(Field::Categories, cats_of(&["Private"]));
    t.users.push(mbx(CAROL, vec![]));
    let (p, m) = step(&mut t, None);
    assert_eq!(p.memory_verdict, MemoryVerdict::NotGiven);
    assert!(deleted(&p).is_empty());
    assert!(p.operations.iter().all(|o| o.sync_id != guid(0)));
    assert_eq!(emails(&t, CAROL), ["p1@contoso.com"], "not spread further");
    assert_eq!(p.book.held.len(), 1);
    let h = &p.book.held[0];
    assert_eq!(
        (h.reason, h.withdrawn_by.as_deref(), h.copies),
        (HoldReason::NoState, Some(ALICE), 2)
    );
    assert!(!p.book.brake_held(), "no exit code 4 for it");
    assert!(m.withdrawals.is_empty());

    let (p, m) = step(&mut t, Some(m));
    assert_eq!(p.memory_verdict, MemoryVerdict::Trusted);
    let mut d = deleted(&p);
    d.sort();
    assert_eq!(
        d,
        [
            (BOB.to_owned(), "bob@c-0".to_owned(), DeleteCause::Withdrawn),
            (HUB.into(), "h-0".into(), DeleteCause::Withdrawn),
        ]
    );
    assert_eq!(m.withdrawals.len(), 1);
    let (p, _) = step(&mut t, Some(m));
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    // The state lost after the withdrawal: the hub copy is gone, the owner's own tag line names
    // the owner, and nothing is re-created.
    let (p, _) = step(&mut t, None);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_eq!(p.book.held.len(), 1);
    assert_eq!(emails(&t, HUB), ["p1@contoso.com"]);
}

/// A contact that came from someone else: the private copy only stops being a source — never
/// written, stamped or deleted, and nothing is created next to it — and the contact stays in
/// the book.
#[test]
fn a_private_copy_of_someone_elses_contact_only_stops_being_a_source() {
    let mut t = shared(&[ALICE], &[ALICE, BOB, CAROL]);
    let (_, m) = step(&mut t, None);
    t.advance(SignedDuration::from_mins(5));
    assert!(t.set_private_flag(BOB, "bob@c-0", true));
    // Bob's private copy is the newest and differs: still no source.
    t.edit(BOB, "bob@c-0", |f| f.set(Field::JobTitle, "Bob's secret"));
    let bob_copy = t.folder(BOB).unwrap().contacts[0].clone();
    let (p, m) = step(&mut t, Some(m));
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert!(p.book.withdrawn.is_empty() && p.book.held.is_empty());
    // The owner edits it: the hub and Carol follow, Bob's copy is left as it is.
    t.advance(SignedDuration::from_mins(5));
    t.edit(ALICE, "alice@c-0", |f| f.set(Field::JobTitle, "B"));
    let (p, _) = step(&mut t, Some(m));
    let written: Vec<&str> = p.operations.iter().map(|o| o.mailbox.as_str()).collect();
    assert_eq!(written, [HUB, CAROL]);
    assert!(p.problems.is_empty(), "{:#?}", p.problems);
    assert_eq!(t.folder(BOB).unwrap().contacts, [bob_copy]);
}

/// Private categories are never written to another copy and never a reason to write: a hub copy
/// the old script wrote with "Private" compares equal to users' copies without it, and when it
/// wins, what it writes to others (and to a new user) has no private category.
#[test]
fn private_categories_never_propagate_nor_cause_a_write() {
    let cats = |c: &Contact| -> Vec<String> {
        c.fields
            .list(Field::Categories)
            .map(str::to_owned)
            .collect()
    };
    let mut t = shared(&[ALICE], &[ALICE, BOB]);
    t.hub.contacts[0]
        .fields
        .set(Field::Categories, cats_of(&["VIP", "PRIVATE"]));
    for u in &mut t.users {
        u.contacts[0]
            .fields
            .set(Field::Categories, cats_of(&["VIP"]));
    }
    let (p, m) = step(&mut t, None);
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    // The hub copy wins with a new job title: only that is written; a new user gets no "Private".
    t.advance(SignedDuration::from_mins(5));
    t.edit(HUB, "h-0", |f| f.set(Field::JobTitle, "Z"));
    t.users.push(mbx(CAROL, vec![]));
    let (p, m) = step(&mut t, Some(m));
    for o in &p.operations {
        let body = o.body();
        if let Some(c) = body.get("categories") {
            assert_eq!(c, &json!(["VIP"]), "{o:#?}");
        }
        if o.action() == Action::Update {
            assert_eq!(
                o.changes().iter().map(|c| c.field).collect::<Vec<_>>(),
                [Field::JobTitle]
            );
        }
    }
    assert_eq!(cats(&t.folder(CAROL).unwrap().contacts[0]), ["VIP"]);
    assert_eq!(cats(&t.hub.contacts[0]), ["VIP", "PRIVATE"]);
    let (p, _) = step(&mut t, Some(m));
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
}

/// The owner's private copy is never deleted by a tombstone either; other copies are. A hub copy
/// gone in the run that sees its owner's copy private is a withdrawal, not a hub deletion.
#[test]
fn a_tombstone_spares_the_owners_private_copy() {
    let mut t = shared(&[ALICE], &[ALICE, BOB]);
    let (_, m) = step(&mut t, None);
    t.advance(SignedDuration::from_mins(5));
    t.delete(HUB, "h-0").unwrap();
    let hold = DeleteOptions {
        limit: BrakeLimit::MaxDeletes(0),
        ..DeleteOptions::default()
    };
    let (p, m) = step_with(&mut t, Some(m), hold);
    assert!(deleted(&p).is_empty() && p.book.brake_held());
    assert!(t.set_private_flag(ALICE, "alice@c-0", true));
    let release = DeleteOptions {
        limit: BrakeLimit::AllowDeletes(1),
        ..DeleteOptions::default()
    };
    let (p, m) = step_with(&mut t, Some(m), release);
    assert_eq!(
        deleted(&p),
        [(
            BOB.to_owned(),
            "bob@c-0".to_owned(),
            DeleteCause::DeletedFromHub
        )]
    );
    assert_eq!(p.book.released.len(), 1);
    assert!(p.book.withdrawn.is_empty());
    assert_eq!(t.folder(ALICE).unwrap().contacts.len(), 1);
    let (p, _) = step(&mut t, Some(m));
    assert!(p.operations.is_empty(), "{:#?}", p.operations);

    let mut t = shared(&[ALICE], &[ALICE, BOB]);
    let (_, m) = step(&mut t, None);
    t.advance(SignedDuration::from_mins(5));
    t.delete(HUB, "h-0").unwrap();
    assert!(t.set_private_flag(ALICE, "alice@c-0", true));
    let (p, m) = step(&mut t, Some(m));
    assert_eq!(
        deleted(&p),
        [(BOB.to_owned(), "bob@c-0".to_owned(), DeleteCause::Withdrawn)]
    );
    assert!(p.book.tombstones.is_empty() && m.tombstones.is_empty());
    assert_eq!(m.withdrawals.len(), 1);
}

/// 12 of 80 contacts marked private by their owner (15 %): the brake holds every withdrawal —
/// no Delete, and the held contacts are frozen (not created for a new user) — and releases them
/// with `--allow-deletes`; tombstones and withdrawals share one count.
#[test]
fn the_brake_holds_withdrawals_like_deletes() {
    let owners = vec![ALICE; 80];
    let mut t = shared(&owners, &[ALICE, BOB]);
    let (_, m) = step(&mut t, None);
    t.advance(SignedDuration::from_mins(5));
    for i in 0..12 {
        assert!(t.set_private_flag(ALICE, &format!("alice@c-{i}"), true));
    }
    t.users.push(mbx(CAROL, vec![]));
    let (p, held) = step(&mut t, Some(m.clone()));
    assert!(deleted(&p).is_empty());
    assert!(p.book.brake_held());
    assert_eq!(p.book.held.len(), 12);
    assert!(
        p.book
            .held
            .iter()
            .all(|h| h.withdrawn_by.as_deref() == Some(ALICE)
                && h.reason == HoldReason::Brake
                && h.copies == 2)
    );
    assert_eq!(
        emails(&t, CAROL).len(),
        68,
        "held contacts are not spread further"
    );
    assert!(
        held.withdrawals
            .iter()
            .all(|w| w.status == TombstoneStatus::Held(HoldReason::Brake))
    );
    // Still held next run, then released.
    let (p, held) = step(&mut t, Some(held));
    assert!(p.book.brake_held() && deleted(&p).is_empty());
    let release = DeleteOptions {
        limit: BrakeLimit::AllowDeletes(12),
        ..DeleteOptions::default()
    };
    let (p, m2) = step_with(&mut t, Some(held), release);
    assert_eq!(deleted(&p).len(), 24);
    assert_eq!(p.book.withdrawn.len(), 12);
    assert!(p.book.withdrawn.iter().all(|w| w.released));
    assert!(
        m2.withdrawals
            .iter()
            .all(|w| w.status == TombstoneStatus::Applied)
    );
    let (p, _) = step(&mut t, Some(m2));
    assert!(p.operations.is_empty(), "{:#?}", p.operations);

    // One count for both kinds: 6 hub deletions and 6 withdrawals of 80 are held together.
    let mut t = shared(&owners, &[ALICE, BOB]);
    let (_, m) = step(&mut t, None);
    t.advance(SignedDuration::from_mins(5));
    for i in 0..6 {
        t.delete(HUB, &format!("h-{i}")).unwrap();
        assert!(t.set_private_flag(ALICE, &format!("alice@c-{}", 40 + i), true));
    }
    let (p, _) = step(&mut t, Some(m));
    assert!(deleted(&p).is_empty(), "{:#?}", deleted(&p));
    assert_eq!(p.book.held.len(), 12);
    assert_eq!(
        p.book
            .held
            .iter()
            .filter(|h| h.withdrawn_by.is_some())
            .count(),
        6
    );
}

/// A withdrawal interrupted after some of its deletes: the next run finishes it, and nothing is
/// re-created from the copies left — with the memory committed, and with it lost.
#[test]
fn an_interrupted_withdrawal_is_finished_and_nothing_comes_back() {
    for keep_memory in [true, false] {
        let mut t = shared(&[ALICE, BOB], &[ALICE, BOB, CAROL]);
        let (_, m) = step(&mut t, None);
        t.advance(SignedDuration::from_mins(5));
        assert!(t.set_private_flag(ALICE, "alice@c-0", true));
        let input = t.input_with(true, Some(m), DeleteOptions::default());
        let p = plan(&input, &mut sequential_ids(9));
        assert_eq!(deleted(&p).len(), 3);
        // Only the hub copy's delete lands.
        let mut results = Vec::new();
        for o in &p.operations {
            if o.target == Target::Hub {
                let one = Plan {
                    operations: vec![o.clone()],
                    ..Default::default()
                };
                results.extend(t.apply(&one).unwrap());
            } else {
                results.push(WriteResult::NotRun);
            }
        }
        let m = next_memory(&input, &p, &results);
        assert_eq!(emails(&t, HUB), ["p1@contoso.com"]);
        let m = if keep_memory {
            m
        } else {
            // The state lost: the copies left are frozen (nothing re-created, nothing deleted),
            // and the run after, with the fresh memory, finishes the withdrawal.
            let (p, m) = step(&mut t, None);
            assert!(p.operations.is_empty(), "{:#?}", p.operations);
            assert_eq!(emails(&t, HUB), ["p1@contoso.com"]);
            m
        };
        let (p, m) = step(&mut t, Some(m));
        let mut d = deleted(&p);
        d.sort();
        assert_eq!(
            d,
            [
                (BOB.to_owned(), "bob@c-0".to_owned(), DeleteCause::Withdrawn),
                (CAROL.into(), "carol@c-0".into(), DeleteCause::Withdrawn),
            ],
            "memory kept: {keep_memory}"
        );
        assert_eq!(p.operations.len(), 2, "{:#?}", p.operations);
        let (p, _) = step(&mut t, Some(m));
        assert!(p.operations.is_empty(), "{:#?}", p.operations);
        for mb in [HUB, BOB, CAROL] {
            assert_eq!(emails(&t, mb), ["p1@contoso.com"], "{mb}");
        }
    }
}

/// `Deletes: off` never deletes: the copies a withdrawal would delete are reported, and the
/// contact is frozen (not written, not spread to a new user). A bad read of the hub holds a new
/// withdrawal (and writes nothing into the hub).
#[test]
fn deletes_off_and_bad_hub_reads_withdraw_nothing() {
    let mut t = shared(&[ALICE, BOB], &[ALICE, BOB]);
    let (_, m) = step(&mut t, None);
    t.advance(SignedDuration::from_mins(5));
    assert!(t.set_private_flag(ALICE, "alice@c-0", true));
    t.users.push(mbx(CAROL, vec![]));
    let off = DeleteOptions {
        deletes: Deletes::Off,
        ..DeleteOptions::default()
    };
    let (p, next) = step_with(&mut t, Some(m.clone()), off);
    assert!(deleted(&p).is_empty());
    assert_eq!(p.book.would_withdraw.len(), 2, "{:#?}", p.book);
    assert!(p.operations.iter().all(|o| o.sync_id != guid(0)));
    assert_eq!(emails(&t, CAROL), ["p1@contoso.com"]);
    assert!(next.withdrawals.is_empty(), "not recorded under off");

    // A hub listing that lost most of our contacts: no delete, the withdrawal held.
    let mut owners = vec![BOB; 12];
    owners[0] = ALICE;
    let mut t = shared(&owners, &[ALICE, BOB]);
    let (_, m) = step(&mut t, None);
    t.advance(SignedDuration::from_mins(5));
    assert!(t.set_private_flag(ALICE, "alice@c-0", true));
    t.hub.contacts.truncate(3);
    let (p, m) = step(&mut t, Some(m));
    assert!(deleted(&p).is_empty());
    assert_eq!(p.book.bad_reads.len(), 1);
    let held: Vec<_> = p
        .book
        .held
        .iter()
        .filter(|h| h.withdrawn_by.is_some())
        .collect();
    assert_eq!(held.len(), 1, "{:#?}", p.book.held);
    assert_eq!(held[0].reason, HoldReason::BadRead);
    assert_eq!(held[0].withdrawn_by.as_deref(), Some(ALICE));
    assert_eq!(
        m.withdrawals[0].status,
        TombstoneStatus::Held(HoldReason::BadRead)
    );
}
