//! Memory between runs, threaded through the in-memory tenant: our writes are not edits (I14,
//! docs/state-and-deletes.md §2), Exchange's spontaneous changeKey bumps, the trust check
//! (docs/state-and-deletes.md §1.2), what `next_memory` records, and bad or incomplete reads.

use super::*;
use crate::memory::Memory;
use crate::plan::book::{BadReadKind, Distrust, MemoryVerdict, WriteResult};
use jiff::SignedDuration;

pub(super) fn guid(i: usize) -> String {
    format!("{i:08x}-4f89-41d3-9a0c-0305e82c3301")
}

pub(super) fn tag(i: usize) -> String {
    format!("SyncId={};CreatedBy={HUB}", guid(i))
}

/// `people` contacts in the hub and a tagged copy of each in every user, all in sync.
pub(super) fn synced_tenant(people: usize, users: &[&str]) -> Tenant {
    let person = |prefix: &str, i: usize| {
        let mut c = contact(
            &format!("{prefix}-{i}"),
            &format!("Person {i}"),
            Some(&format!("p{i}@contoso.com")),
            Some(10),
            Some(&tag(i)),
        );
        c.fields.set(Field::JobTitle, "A");
        c
    };
    Tenant::new(
        mbx(HUB, (0..people).map(|i| person("h", i)).collect()),
        users
            .iter()
            .map(|u| mbx(u, (0..people).map(|i| person(u, i)).collect()))
            .collect(),
    )
}

/// One real run: plan with `memory`, apply every write (strictly), and the memory it leaves.
pub(super) fn step(
    t: &mut Tenant,
    memory: Option<Memory>,
    options: DeleteOptions,
) -> (Plan, Memory) {
    let input = t.input_with(true, memory, options);
    let p = plan(&input, &mut sequential_ids(7));
    let results = t.apply(&p).unwrap();
    let next = next_memory(&input, &p, &results);
    (p, next)
}

/// A first run and one more with its memory: returns the memory of a tenant at rest.
pub(super) fn at_rest(t: &mut Tenant) -> Memory {
    let (_, m) = step(t, None, DeleteOptions::default());
    let (p, m) = step(t, Some(m), DeleteOptions::default());
    assert!(p.operations.is_empty(), "{:#?}", p.operations);
    assert_eq!(p.memory_verdict, MemoryVerdict::Trusted);
    m
}

fn job(t: &Tenant, mailbox: &str, id: &str) -> Option<String> {
    let c = t.folder(mailbox)?.contacts.iter().find(|c| c.id() == id)?;
    Some(c.fields.text(Field::JobTitle).to_owned()).filter(|s| !s.is_empty())
}

/// I14: a user edit made after our read, to a copy the run is writing, is refused (412), and
/// with memory it wins the next run — the copies we wrote compete with the version we wrote
/// them with, not with the later time of our write. Without memory it is reverted.
#[test]
fn a_user_edit_during_a_run_survives_with_memory_and_is_reverted_without() {
    for with_memory in [true, false] {
        let mut t = synced_tenant(1, &["u1@c", "u2@c", "u3@c"]);
        let m = at_rest(&mut t);
        t.advance(SignedDuration::from_mins(5));
        assert!(t.edit("u1@c", "u1@c-0", |f| f.set(Field::JobTitle, "B")));
        let input = t.input_with(true, Some(m), DeleteOptions::default());
        let p = plan(&input, &mut sequential_ids(1));
        assert_eq!(p.operations.len(), 3, "hub, u2 and u3 get B");
        // Read done; u3 edits its copy before our write reaches it.
        assert!(t.edit("u3@c", "u3@c-0", |f| f.set(Field::JobTitle, "C")));
        let results = t.apply_lenient(&p);
        let u3 = p
            .operations
            .iter()
            .position(|o| o.mailbox == "u3@c")
            .unwrap();
        assert_eq!(results[u3], WriteResult::Conflict);
        let m = next_memory(&input, &p, &results);

        let (p, _) = step(&mut t, with_memory.then_some(m), DeleteOptions::default());
        let want = if with_memory { "C" } else { "B" };
        for (mailbox, id) in [
            (HUB, "h-0"),
            ("u1@c", "u1@c-0"),
            ("u2@c", "u2@c-0"),
            ("u3@c", "u3@c-0"),
        ] {
            assert_eq!(
                job(&t, mailbox, id).as_deref(),
                Some(want),
                "{mailbox}, memory {with_memory}: {:#?}",
                p.operations
            );
        }
    }
}

/// I14 for a copy we did not write: the winner's own copy edited again after our read wins next.
#[test]
fn an_edit_to_an_unwritten_copy_after_the_read_wins_next_run() {
    let mut t = synced_tenant(1, &["u1@c", "u2@c"]);
    let m = at_rest(&mut t);
    t.advance(SignedDuration::from_mins(5));
    t.edit("u1@c", "u1@c-0", |f| f.set(Field::JobTitle, "B"));
    let input = t.input_with(true, Some(m), DeleteOptions::default());
    let p = plan(&input, &mut sequential_ids(1));
    t.edit("u1@c", "u1@c-0", |f| f.set(Field::JobTitle, "D"));
    let results = t.apply(&p).unwrap();
    let m = next_memory(&input, &p, &results);
    step(&mut t, Some(m), DeleteOptions::default());
    assert_eq!(job(&t, "u2@c", "u2@c-0").as_deref(), Some("D"));
    assert_eq!(job(&t, HUB, "h-0").as_deref(), Some("D"));
}

/// A changeKey Exchange bumped by itself (no field changed, a later `lastModifiedDateTime`) is
/// not an edit: the fingerprint shows the fields are as we left them, so an older genuine edit
/// elsewhere still wins. Without memory the bumped copy would win and revert the edit.
#[test]
fn a_spontaneous_change_key_bump_does_not_win() {
    for with_memory in [true, false] {
        let mut t = synced_tenant(1, &["u1@c", "u2@c"]);
        let m = at_rest(&mut t);
        t.advance(SignedDuration::from_mins(5));
        t.edit("u2@c", "u2@c-0", |f| f.set(Field::JobTitle, "E"));
        t.bump_change_key(HUB, "h-0");
        let (p, _) = step(&mut t, with_memory.then_some(m), DeleteOptions::default());
        let want = if with_memory { "E" } else { "A" };
        assert_eq!(
            job(&t, "u1@c", "u1@c-0").as_deref(),
            Some(want),
            "{:#?}",
            p.operations
        );
        assert_eq!(job(&t, "u2@c", "u2@c-0").as_deref(), Some(want));
    }
}

/// What the memory records after a run with each kind of write and result.
#[test]
fn next_memory_records_written_stamped_unwritten_conflict_and_lost_answers() {
    let mut t = synced_tenant(1, &["u1@c", "u2@c", "u3@c", "u4@c"]);
    let m = at_rest(&mut t);
    let hub_before = m.hub.copies[0].clone();
    t.advance(SignedDuration::from_mins(5));
    t.edit("u1@c", "u1@c-0", |f| f.set(Field::JobTitle, "B"));
    let winner_time = t.folder("u1@c").unwrap().contacts[0].last_modified();
    let input = t.input_with(true, Some(m), DeleteOptions::default());
    let p = plan(&input, &mut sequential_ids(1));
    let at = |mailbox: &str| {
        p.operations
            .iter()
            .position(|o| o.mailbox == mailbox)
            .unwrap()
    };
    let mut results = vec![WriteResult::NotRun; p.operations.len()];
    results[at(HUB)] = WriteResult::Done {
        change_key: Some("W/\"ours\"".into()),
    };
    results[at("u2@c")] = WriteResult::Conflict;
    results[at("u3@c")] = WriteResult::Unconfirmed;
    results[at("u4@c")] = WriteResult::Failed;
    let next = next_memory(&input, &p, &results);
    let mut b: ContactFields = t.folder("u1@c").unwrap().contacts[0].fields.clone();
    b.set(Field::JobTitle, "B");
    let g = crate::memory::Guid::parse(&guid(0)).unwrap();
    let hub = next.hub.get(g).unwrap();
    assert_eq!(hub.change_key.as_deref(), Some("ours"));
    assert_eq!(hub.version, crate::memory::Version::of(winner_time));
    assert_eq!(hub.fields_hash, crate::fingerprint::fields_fingerprint(&b));
    assert_eq!(hub.contact_id, hub_before.contact_id);
    assert!(
        next.user("u2@c").unwrap().get(g).is_none(),
        "a 412 is forgotten"
    );
    let lost = next.user("u3@c").unwrap().get(g).unwrap();
    assert_eq!(lost.change_key, None);
    assert_eq!(lost.fields_hash, hub.fields_hash, "the data sent");
    let failed = next.user("u4@c").unwrap().get(g).unwrap();
    assert_eq!(
        failed.version, hub_before.version,
        "as read: still the version we left it with"
    );
    assert_ne!(failed.fields_hash, hub.fields_hash);
    let winner = next.user("u1@c").unwrap().get(g).unwrap();
    assert_eq!(winner.version, crate::memory::Version::of(winner_time));
    assert_eq!(next.last_plan_time, input.now);
    assert!(next.is_normal());
}

/// Design §4: a hub tag line written after the memory's last plan time (+10 s) means another run
/// wrote the hub since (an older copy of the state, or the old script): the memory is not used —
/// the plan is the first-run plan, with no delete even though a hub contact is gone.
#[test]
fn stale_memory_is_distrusted_and_plans_as_the_first_run() {
    let mut t = synced_tenant(3, &["u1@c", "u2@c"]);
    let old = at_rest(&mut t);
    // Another program's run, a minute later, writes the hub.
    t.advance(SignedDuration::from_mins(1));
    t.edit("u1@c", "u1@c-1", |f| f.set(Field::JobTitle, "B"));
    step(&mut t, None, DeleteOptions::default());
    t.advance(SignedDuration::from_mins(1));
    t.delete(HUB, "h-2").unwrap();
    let input = t.input_with(true, Some(old.clone()), DeleteOptions::default());
    let p = plan(&input, &mut sequential_ids(1));
    assert!(
        matches!(&p.memory_verdict, MemoryVerdict::Distrusted { reason: Distrust::HubWrittenLater { sync_id, .. } } if *sync_id == guid(1)),
        "{:?}",
        p.memory_verdict
    );
    let first_run = plan(&t.input(true), &mut sequential_ids(1));
    assert_eq!(p.operations, first_run.operations);
    assert!(p.operations.iter().all(|o| o.action() != Action::Delete));
    assert!(
        p.operations
            .iter()
            .any(|o| o.target == Target::Hub && o.action() == Action::Create),
        "re-created, as without memory"
    );
    // The memory starts afresh: the old one's folders are not carried over.
    let next = next_memory(&input, &p, &vec![WriteResult::NotRun; p.operations.len()]);
    assert!(next.tombstones.is_empty());
    assert_eq!(next.last_plan_time, input.now);

    // Within the 10 s margin the memory is trusted.
    let mut m = old;
    m.last_plan_time = t.clock - SignedDuration::from_secs(5);
    let p = plan(
        &t.input_with(true, Some(m), DeleteOptions::default()),
        &mut sequential_ids(1),
    );
    assert_eq!(p.memory_verdict, MemoryVerdict::Trusted);
}

#[test]
fn memory_out_of_order_is_distrusted() {
    let mut t = synced_tenant(2, &["u1@c"]);
    let mut m = at_rest(&mut t);
    m.hub.copies.reverse();
    let p = plan(
        &t.input_with(true, Some(m), DeleteOptions::default()),
        &mut sequential_ids(1),
    );
    assert_eq!(
        p.memory_verdict,
        MemoryVerdict::Distrusted {
            reason: Distrust::Malformed
        }
    );
}

/// A user folder that held ≥ 10 of our copies and lists none: a bad read — no write into it, no
/// opt-out from it, its memory kept; the other folders proceed.
#[test]
fn a_user_folder_emptied_behind_our_back_is_a_bad_read() {
    let mut t = synced_tenant(12, &["u1@c", "u2@c"]);
    let m = at_rest(&mut t);
    t.users[0].contacts.clear();
    t.edit("u2@c", "u2@c-3", |f| f.set(Field::JobTitle, "B"));
    let options = DeleteOptions {
        user_deletes: UserDeletes::Respect,
        ..Default::default()
    };
    let input = t.input_with(true, Some(m.clone()), options);
    let p = plan(&input, &mut sequential_ids(1));
    assert_eq!(p.book.bad_reads.len(), 1);
    assert_eq!(
        p.book.bad_reads[0].kind,
        BadReadKind::Emptied { remembered: 12 }
    );
    assert!(
        p.operations.iter().all(|o| o.mailbox != "u1@c"),
        "{:#?}",
        p.operations
    );
    assert!(
        p.operations.iter().any(|o| o.mailbox == HUB),
        "the edit still reaches the hub"
    );
    assert!(p.book.opt_outs_set.is_empty());
    let results = t.apply(&p).unwrap();
    let next = next_memory(&input, &p, &results);
    assert_eq!(next.user("u1@c"), m.user("u1@c"), "kept as it was");
}

/// An incomplete user read is planned as a failed one; an incomplete hub read plans nothing.
#[test]
fn incomplete_reads_are_never_evidence() {
    let mut t = synced_tenant(2, &["u1@c", "u2@c"]);
    let m = at_rest(&mut t);
    t.edit("u2@c", "u2@c-0", |f| f.set(Field::JobTitle, "B"));
    let mut input = t.input_with(true, Some(m.clone()), DeleteOptions::default());
    input.users[0].contacts.clear();
    input.users[0].read = ReadStatus::Incomplete;
    let p = plan(&input, &mut sequential_ids(1));
    assert_eq!(p.book.bad_reads[0].kind, BadReadKind::Incomplete);
    assert!(p.operations.iter().all(|o| o.mailbox != "u1@c"));
    assert!(!p.operations.is_empty());
    let next = next_memory(&input, &p, &vec![WriteResult::NotRun; p.operations.len()]);
    assert_eq!(next.user("u1@c"), m.user("u1@c"));

    input.hub.read = ReadStatus::Incomplete;
    let p = plan(&input, &mut sequential_ids(1));
    assert!(p.operations.is_empty());
    assert_eq!(p.book.bad_reads.len(), 1);
    let next = next_memory(&input, &p, &[]);
    assert_eq!((&next.hub, &next.users), (&m.hub, &m.users));
}
