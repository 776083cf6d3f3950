//! Deletes (docs/state-and-deletes.md §3, I10–I13): hub deletions and their tombstones, untagged
//! look-alikes, `Deletes: off`, repairs told from deletions, users' own deletions, the brake and
//! bad hub reads.

use super::memory::{at_rest, guid, step, synced_tenant, tag};
use super::*;
use crate::memory::{Guid, HoldReason, TombstoneStatus};
use crate::plan::book::{RepairReason, WriteResult};
use jiff::SignedDuration;

fn deletes(p: &Plan) -> Vec<(String, String)> {
    p.operations
        .iter()
        .filter(|o| o.action() == Action::Delete)
        .map(|o| (o.mailbox.clone(), o.contact_id().unwrap().to_owned()))
        .collect()
}

fn hub_creates(p: &Plan) -> usize {
    p.operations
        .iter()
        .filter(|o| o.target == Target::Hub && o.action() == Action::Create)
        .count()
}

/// I11: an admin deletes a contact from the hub → every tagged user copy is deleted (If-Match),
/// an untagged look-alike older than the deletion is neither deleted nor collected, nothing is
/// re-created; the tombstone is remembered and the next run writes nothing (I1).
#[test]
fn a_hub_deletion_deletes_every_tagged_copy_and_sticks() {
    let mut t = synced_tenant(3, &["u1@c", "u2@c"]);
    // u2 also holds an untagged second copy of person 1 (a look-alike: same email), left alone.
    t.users[1].contacts.push(contact(
        "u2@c-dup",
        "Person 1",
        Some("p1@contoso.com"),
        Some(5),
        Some("my own note"),
    ));
    let m = at_rest(&mut t);
    t.advance(SignedDuration::from_mins(5));
    t.delete(HUB, "h-1").unwrap();
    let (p, m) = step(&mut t, Some(m), DeleteOptions::default());
    assert_eq!(
        deletes(&p),
        [
            ("u1@c".to_owned(), "u1@c-1".to_owned()),
            ("u2@c".into(), "u2@c-1".into())
        ]
    );
    for o in p.operations.iter().filter(|o| o.action() == Action::Delete) {
        assert_eq!(o.sync_id, guid(1));
        assert_eq!(o.step, 2);
        assert!(if_match(o).is_some());
        assert!(o.body().is_empty());
    }
    assert_eq!(hub_creates(&p), 0);
    assert_eq!(p.book.tombstones.len(), 1);
    assert_eq!(p.book.tombstones[0].entry.sync_id, guid(1));
    assert_eq!(p.book.tombstones[0].copies, 2);
    assert!(kinds(&p).contains(&ProblemKind::TombstonedLookAlike));
    assert!(
        t.folder("u2@c")
            .unwrap()
            .contacts
            .iter()
            .any(|c| c.id() == "u2@c-dup"),
        "the look-alike stays"
    );
    let g = Guid::parse(&guid(1)).unwrap();
    assert_eq!(m.tombstone(g).unwrap().status, TombstoneStatus::Applied);
    assert!(m.hub.get(g).is_none());

    // I1, and the tombstone keeps the contact out.
    let (p, m) = step(&mut t, Some(m), DeleteOptions::default());
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    // A user restores their copy from Deleted Items: deleted again, never re-created.
    let mut restored = contact(
        "u1@c-back",
        "Person 1",
        Some("p1@contoso.com"),
        Some(10),
        Some(&tag(1)),
    );
    restored.set_last_modified(Some(t.clock));
    t.users[0].contacts.push(restored);
    let (p, m) = step(&mut t, Some(m), DeleteOptions::default());
    assert_eq!(deletes(&p), [("u1@c".to_owned(), "u1@c-back".to_owned())]);
    assert_eq!(hub_creates(&p), 0);
    assert!(m.tombstone(g).is_some());
}

/// An untagged copy made or edited after the deletion is a user's new decision: collected.
#[test]
fn a_look_alike_newer_than_the_tombstone_is_collected() {
    let mut t = synced_tenant(2, &["u1@c", "u2@c"]);
    let m = at_rest(&mut t);
    t.advance(SignedDuration::from_mins(5));
    t.delete(HUB, "h-1").unwrap();
    let (_, m) = step(&mut t, Some(m), DeleteOptions::default());
    t.advance(SignedDuration::from_mins(5));
    let mut fresh = contact("u2@c-new", "Person 1", Some("p1@contoso.com"), None, None);
    fresh.set_last_modified(Some(t.clock));
    t.users[1].contacts.push(fresh);
    let (p, _) = step(&mut t, Some(m), DeleteOptions::default());
    assert_eq!(hub_creates(&p), 1);
    let created = p
        .operations
        .iter()
        .find(|o| o.target == Target::Hub)
        .unwrap();
    assert_ne!(
        created.sync_id,
        guid(1),
        "a new contact, not the deleted one"
    );
}

/// The hub holds the contact again (restored, or re-created by an admin): the tombstone is
/// cleared, the hub is the truth.
#[test]
fn a_tombstone_is_cleared_when_the_hub_holds_the_contact_again() {
    let mut t = synced_tenant(2, &["u1@c"]);
    let m = at_rest(&mut t);
    let gone = t.delete(HUB, "h-1").unwrap();
    let (_, m) = step(&mut t, Some(m), DeleteOptions::default());
    let g = Guid::parse(&guid(1)).unwrap();
    assert!(m.tombstone(g).is_some());
    // An admin re-creates it by hand: untagged, same email.
    let mut by_hand = gone.clone();
    by_hand.set_id("h-again");
    by_hand.set_personal_notes(None);
    t.hub.contacts.push(by_hand);
    let (p, m) = step(&mut t, Some(m), DeleteOptions::default());
    assert_eq!(p.book.cleared.len(), 1);
    assert!(m.tombstones.is_empty());
    assert!(deletes(&p).is_empty());
    assert!(
        t.folder("u1@c").unwrap().contacts.iter().any(|c| c
            .fields
            .emails()
            .next()
            .unwrap()
            .address
            == "p1@contoso.com"),
        "back in the user's folder"
    );
}

/// `Deletes: off`: nothing deleted, the deletes reported, the hub copy re-created, no tombstone.
#[test]
fn deletes_off_only_reports_and_recreates() {
    let mut t = synced_tenant(2, &["u1@c", "u2@c"]);
    let m = at_rest(&mut t);
    t.delete(HUB, "h-0").unwrap();
    let off = DeleteOptions {
        deletes: Deletes::Off,
        ..Default::default()
    };
    let (p, m) = step(&mut t, Some(m), off);
    assert!(deletes(&p).is_empty());
    assert_eq!(p.book.would_delete.len(), 2);
    assert!(
        p.book
            .would_delete
            .iter()
            .all(|e| e.sync_id == guid(0) && e.target == Target::UserDefault)
    );
    assert_eq!(hub_creates(&p), 1);
    assert!(p.book.repairs.is_empty(), "a deletion, not a repair");
    assert!(!kinds(&p).contains(&ProblemKind::UnknownSyncId));
    assert!(m.tombstones.is_empty());
    let (p, _) = step(&mut t, Some(m), off);
    assert!(p.operations.is_empty());
}

/// docs/state-and-deletes.md §3.3: a hub create an interrupted run planned (pending) and a
/// SyncId the hub never held are re-created and reported as repairs; without memory, today's
/// UnknownSyncId.
#[test]
fn an_interrupted_hub_create_is_repaired_not_deleted() {
    let mut t = synced_tenant(1, &["u1@c", "u2@c"]);
    let m = at_rest(&mut t);
    t.users[0]
        .contacts
        .push(contact("new", "Newcomer", Some("new@c"), Some(20), None));
    let input = t.input_with(true, Some(m), DeleteOptions::default());
    let p = plan(&input, &mut sequential_ids(9));
    let pending = p.pending_creates();
    assert_eq!(pending.len(), 1);
    // Interrupted: the hub create never happened; the users' writes did.
    let mut results = Vec::new();
    for op in &p.operations {
        results.push(if op.target == Target::Hub {
            WriteResult::NotRun
        } else {
            let mut one = p.clone();
            one.operations = vec![op.clone()];
            t.apply(&one).unwrap().remove(0)
        });
    }
    let m = next_memory(&input, &p, &results);
    assert_eq!(m.pending_creates, pending);
    let (p, m) = step(&mut t, Some(m), DeleteOptions::default());
    assert!(deletes(&p).is_empty());
    assert_eq!(hub_creates(&p), 1);
    assert_eq!(p.book.repairs.len(), 1);
    assert_eq!(p.book.repairs[0].reason, RepairReason::InterruptedRun);
    assert!(m.pending_creates.is_empty());
    assert!(
        step(&mut t, Some(m), DeleteOptions::default())
            .0
            .operations
            .is_empty()
    );
}

#[test]
fn a_sync_id_the_hub_never_held_is_a_repair_with_memory_and_unknown_without() {
    let mut t = synced_tenant(1, &["u1@c"]);
    let m = at_rest(&mut t);
    t.users[0].contacts.push(contact(
        "x",
        "Stray",
        Some("stray@c"),
        Some(20),
        Some(&tag(77)),
    ));
    let with = plan(
        &t.input_with(true, Some(m), DeleteOptions::default()),
        &mut sequential_ids(1),
    );
    assert_eq!(with.book.repairs.len(), 1);
    assert_eq!(with.book.repairs[0].reason, RepairReason::NotInHub);
    assert_eq!(with.book.repairs[0].found_in, "u1@c");
    assert!(!kinds(&with).contains(&ProblemKind::UnknownSyncId));
    let without = plan(&t.input(true), &mut sequential_ids(1));
    assert!(without.book.repairs.is_empty());
    assert!(kinds(&without).contains(&ProblemKind::UnknownSyncId));
    assert_eq!(with.operations, without.operations);
}

/// A user deletes their copy: `restore` brings it back; `respect` opts them out (no re-create)
/// until their folder holds the contact again.
#[test]
fn a_user_deletion_is_restored_or_respected() {
    for respect in [false, true] {
        let options = DeleteOptions {
            user_deletes: if respect {
                UserDeletes::Respect
            } else {
                UserDeletes::Restore
            },
            ..Default::default()
        };
        let mut t = synced_tenant(2, &["u1@c", "u2@c"]);
        let m = at_rest(&mut t);
        let gone = t.delete("u1@c", "u1@c-0").unwrap();
        let (p, m) = step(&mut t, Some(m), options);
        let recreated = p
            .operations
            .iter()
            .any(|o| o.mailbox == "u1@c" && o.action() == Action::Create);
        assert_eq!(recreated, !respect);
        assert_eq!(p.book.opt_outs_set.len(), usize::from(respect));
        assert_eq!(m.opt_outs.len(), usize::from(respect));
        assert!(
            deletes(&p).is_empty(),
            "a user's deletion deletes nothing else"
        );
        let (p, m) = step(&mut t, Some(m), options);
        assert!(p.operations.is_empty(), "{:#?}", p.operations);
        if respect {
            // The user makes it again (untagged): linked by email, stamped, opt-out cleared.
            let mut again = gone;
            again.set_id("u1@c-again");
            again.set_personal_notes(None);
            t.users[0].contacts.push(again);
            let (p, m) = step(&mut t, Some(m), options);
            assert_eq!(p.book.opt_outs_cleared.len(), 1);
            assert!(m.opt_outs.is_empty());
            assert_eq!(
                summary(&p),
                [(1, Action::Stamp, "u1@c".into(), Some("u1@c-again".into()))]
            );
        }
    }
}

/// I12: 12 of 30 hub contacts deleted (more than 10 and more than 10 %): every delete held, none
/// re-created, the rest applied; `--allow-deletes 5` then releases the five oldest (then by
/// SyncId), `MaxDeletes 20` the rest.
#[test]
fn the_brake_holds_a_mass_deletion_and_allow_deletes_releases_it() {
    let mut t = synced_tenant(30, &["u1@c", "u2@c"]);
    let m = at_rest(&mut t);
    for i in 0..12 {
        t.delete(HUB, &format!("h-{i}")).unwrap();
    }
    t.edit("u1@c", "u1@c-15", |f| f.set(Field::JobTitle, "B"));
    let (p, m) = step(&mut t, Some(m), DeleteOptions::default());
    assert!(deletes(&p).is_empty());
    assert_eq!(hub_creates(&p), 0, "held: not re-created either");
    assert!(p.book.brake_held());
    assert_eq!(p.book.held.len(), 12);
    assert!(
        p.book
            .held
            .iter()
            .all(|h| h.reason == HoldReason::Brake && h.copies == 2)
    );
    assert!(
        p.operations
            .iter()
            .any(|o| o.mailbox == HUB && o.action() == Action::Update),
        "everything else applied"
    );
    assert!(
        m.tombstones
            .iter()
            .all(|t| t.status == TombstoneStatus::Held(HoldReason::Brake))
    );

    let allow = DeleteOptions {
        limit: BrakeLimit::AllowDeletes(5),
        ..Default::default()
    };
    let (p, m) = step(&mut t, Some(m), allow);
    assert_eq!(p.book.released.len(), 5);
    assert_eq!(
        p.book
            .released
            .iter()
            .map(|r| r.entry.sync_id.clone())
            .collect::<Vec<_>>(),
        (0..5).map(guid).collect::<Vec<_>>()
    );
    assert_eq!(deletes(&p).len(), 10);
    assert_eq!(p.book.held.len(), 7);
    assert!(p.book.brake_held());

    let max = DeleteOptions {
        limit: BrakeLimit::MaxDeletes(20),
        ..Default::default()
    };
    let (p, m) = step(&mut t, Some(m), max);
    assert_eq!(p.book.released.len(), 7);
    assert!(!p.book.brake_held());
    assert!(
        m.tombstones
            .iter()
            .all(|t| t.status == TombstoneStatus::Applied)
    );
    assert!(
        step(&mut t, Some(m), DeleteOptions::default())
            .0
            .operations
            .is_empty()
    );
}

/// I13: a hub listing that lost more than half of ≥ 10 remembered contacts is a bad read: the
/// missing ones are held (no delete, no re-create), nothing is written into the hub.
#[test]
fn a_bad_hub_read_holds_instead_of_deleting() {
    let mut t = synced_tenant(12, &["u1@c"]);
    let m = at_rest(&mut t);
    let lost: Vec<_> = (0..7)
        .map(|i| t.delete(HUB, &format!("h-{i}")).unwrap())
        .collect();
    t.edit("u1@c", "u1@c-9", |f| f.set(Field::JobTitle, "B"));
    let options = DeleteOptions {
        limit: BrakeLimit::AllowDeletes(100),
        ..Default::default()
    };
    let (p, m) = step(&mut t, Some(m), options);
    assert_eq!(p.book.bad_reads.len(), 1);
    assert!(deletes(&p).is_empty());
    assert!(
        p.operations.iter().all(|o| o.target != Target::Hub),
        "{:#?}",
        p.operations
    );
    assert_eq!(p.book.held.len(), 7);
    assert!(p.book.held.iter().all(|h| h.reason == HoldReason::BadRead));
    assert!(
        !p.book.brake_held(),
        "a bad read is not the brake (exit 1, not 4)"
    );
    // The listing comes back whole: the held tombstones are cleared.
    t.hub.contacts.extend(lost);
    let (p, m) = step(&mut t, Some(m), options);
    assert_eq!(p.book.cleared.len(), 7);
    assert!(m.tombstones.is_empty());
    assert!(deletes(&p).is_empty());
}

/// I10: without memory (lost, or first run) nothing is ever deleted, and a hub deletion is
/// re-created, as today.
#[test]
fn without_memory_nothing_is_deleted() {
    let mut t = synced_tenant(3, &["u1@c"]);
    at_rest(&mut t);
    t.delete(HUB, "h-0").unwrap();
    let (p, _) = step(&mut t, None, DeleteOptions::default());
    assert!(deletes(&p).is_empty());
    assert_eq!(hub_creates(&p), 1);
    assert!(p.book == Book::default());
}

/// Tombstones are forgotten after 190 days; then a remaining tagged copy brings the contact back.
#[test]
fn tombstones_are_pruned_after_190_days() {
    let mut t = synced_tenant(2, &["u1@c"]);
    let m = at_rest(&mut t);
    t.delete(HUB, "h-1").unwrap();
    // The user's mailbox fails to read for a long time.
    let u1 = t.users.remove(0);
    let (_, m) = step(&mut t, Some(m), DeleteOptions::default());
    t.advance(SignedDuration::from_hours(24 * 189));
    let (p, m) = step(&mut t, Some(m), DeleteOptions::default());
    assert_eq!(p.book.pruned, 0);
    assert_eq!(m.tombstones.len(), 1);
    t.advance(SignedDuration::from_hours(24 * 2));
    t.users.push(u1);
    let (p, m) = step(&mut t, Some(m), DeleteOptions::default());
    assert_eq!(p.book.pruned, 1);
    assert!(m.tombstones.is_empty());
    assert_eq!(hub_creates(&p), 1);
}
