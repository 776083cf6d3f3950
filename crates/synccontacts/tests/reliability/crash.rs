//! I4: a crash at any write is repaired by the next run. A clean run of a small scenario counts
//! its N writes; then, for every k in 1..=N, a fresh emulator makes the k-th write fail — dropped
//! before it applies, applied then the connection dropped, or applied then answered 504 — either
//! alone (the run carries on) or together with every later write (the process "dies" at k: nothing
//! after it lands, retries included). Reruns without faults must reach exit 0 within 3 runs and
//! end in exactly the clean run's state (modulo ids, etags, timestamps and SyncId values), with
//! no duplicate (I2), every user note intact (I3) and a quiet run after (I1).

use serde_json::{Value, json};

use crate::harness::{self, contact, hub_with, scenario, tag2, tag4, user, with};
use crate::kit::{self, SharedEmu};

/// Three users, overlapping contacts, a newer edit, a contact stamped by the old script (2-field
/// tag) with note text, a 4-field-tagged copy, CRLF note text and no hub folder yet.
pub fn crash_scenario() -> graph_emulator::Scenario {
    let ann = contact("Ann Lee", Some("ann@fabrikam.com"), "2026-03-01T10:00:00Z");
    let bob_old = contact("Bob Ray", Some("bob@fabrikam.com"), "2026-03-01T10:00:00Z");
    let bob_new = with(
        contact("Bob Ray", Some("bob@fabrikam.com"), "2026-04-01T10:00:00Z"),
        "mobilePhone",
        json!("+1 555 0100"),
    );
    let cid = with(
        contact("Cid Moe", Some("cid@fabrikam.com"), "2026-02-01T10:00:00Z"),
        "personalNotes",
        json!(format!(
            "Prefers email.\r\nSecond line, mentions SyncId=inline\r\n{}",
            tag2("6d1f0e4a-0000-4000-8000-00000000c1d0", "bob@contoso.com")
        )),
    );
    let dee = with(
        contact("Dee Ng", Some("dee@fabrikam.com"), "2026-02-01T10:00:00Z"),
        "personalNotes",
        json!(format!(
            "Ünïcode note 🎉\n\n{}",
            tag4("0a9b8c7d-0000-4000-8000-0000000000de", "carol@contoso.com")
        )),
    );
    let ann_noted = with(ann, "personalNotes", json!("met at the fair"));
    scenario(vec![
        hub_with(None),
        user("alice@contoso.com", vec![ann_noted, bob_old]),
        user("bob@contoso.com", vec![bob_new, cid]),
        user("carol@contoso.com", vec![dee]),
    ])
}

/// The clean run: its normalised final state and how many writes it took.
async fn reference(batch: bool) -> (Vec<Vec<String>>, u64) {
    let emu = kit::start(crash_scenario()).await;
    let vars = kit::tenant_env(&emu, batch);
    let r = kit::sync_lib(&emu, &vars, false).await;
    assert_eq!(r.code(), 0, "clean run: {}", r.report);
    let n = emu.writes();
    kit::assert_no_duplicates(&emu, "clean run");
    kit::assert_second_run_writes_nothing(&emu, &vars, "clean run").await;
    (kit::normalised(&emu), n)
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    DropBefore,
    DropAfter,
    Apply504,
}

impl Fault {
    fn action(self) -> Value {
        match self {
            Fault::DropBefore => json!({"drop": "before"}),
            Fault::DropAfter => json!({"drop": "after"}),
            Fault::Apply504 => json!({"status": 504, "afterApply": true}),
        }
    }
}

/// The rules that fail write `k` with `fault`, and with `crash` every later write too (each a
/// rule of its own so `nth` reaches past k; later writes are dropped before they apply, as if
/// the process had died).
fn crash_rules(k: u64, n: u64, fault: Fault, crash: bool) -> Vec<Value> {
    let mut rules = vec![json!({"match": kit::writes_match(), "nth": k, "action": fault.action()})];
    if crash {
        // Retries of updates (up to 8 attempts) and re-writes of notes all count as writes.
        for i in 1..=(10 * n) {
            rules.push(json!({"match": kit::writes_match(), "nth": k + i,
                               "action": {"drop": "before"}}));
        }
    }
    rules
}

async fn one_case(
    k: u64,
    n: u64,
    fault: Fault,
    crash: bool,
    batch: bool,
    want: &[Vec<String>],
) -> SharedEmu {
    let ctx = format!("k={k}/{n} {fault:?} crash={crash} batch={batch}");
    let emu = kit::start(crash_scenario()).await;
    let vars = kit::tenant_env(&emu, batch);
    emu.inner
        .set_faults(kit::plan(k, crash_rules(k, n, fault, crash)));
    let first = kit::sync_lib(&emu, &vars, false).await;
    if crash {
        assert_eq!(
            first.code(),
            1,
            "{ctx}: a run that lost writes must exit 1: {}",
            first.report
        );
    } else {
        assert!(first.code() <= 1, "{ctx}: {}", first.report);
    }
    kit::assert_no_duplicates(&emu, &ctx);
    kit::assert_no_canary(&first.all_output(), &[harness::SECRET], &ctx);
    emu.inner.set_faults(kit::plan(0, vec![]));
    let runs = kit::converge(&emu, &vars, 3).await;
    kit::assert_no_duplicates(&emu, &ctx);
    kit::assert_same_state(
        &kit::normalised(&emu),
        want,
        &format!("{ctx} after {} repair run(s)", runs.len()),
    );
    kit::assert_second_run_writes_nothing(&emu, &vars, &ctx).await;
    emu
}

async fn enumerate(fault: Fault, crash: bool, batch: bool) {
    let (want, n) = reference(batch).await;
    assert!(
        (10..=40).contains(&n),
        "the crash scenario should take 10-40 writes, took {n}"
    );
    for k in 1..=n {
        one_case(k, n, fault, crash, batch, &want).await;
    }
}

#[tokio::test]
async fn crash_at_every_write_dropped_before_it_applies() {
    enumerate(Fault::DropBefore, true, false).await;
}

#[tokio::test]
async fn crash_at_every_write_applied_then_connection_dropped() {
    enumerate(Fault::DropAfter, true, false).await;
}

#[tokio::test]
async fn crash_at_every_write_applied_then_504() {
    enumerate(Fault::Apply504, true, false).await;
}

#[tokio::test]
async fn every_write_failing_alone_dropped_before() {
    enumerate(Fault::DropBefore, false, false).await;
}

#[tokio::test]
async fn every_write_failing_alone_applied_then_504() {
    enumerate(Fault::Apply504, false, false).await;
}

#[tokio::test]
async fn every_write_failing_alone_applied_then_dropped() {
    enumerate(Fault::DropAfter, false, false).await;
}

/// Creates in a mailbox that drops `personalNotes` on create (SPEC 2.7): every create is followed
/// by a notes re-write, so a crash can fall between the two — a contact without its tag line,
/// which the next run must match by email and stamp, not duplicate.
///
/// CreatedBy is left out of the comparison here, by SPEC 2.5: a hub copy whose notes never
/// landed carries no tag, and a later stamp can only take CreatedBy from the target's tags, the
/// source's tags, or the source mailbox — the hub itself when the hub copy is the newest version
/// (it was created during the run). The data, links and note texts must still be exactly the
/// clean run's.
#[tokio::test]
async fn crash_at_every_write_when_creates_drop_notes() {
    let quirky = || {
        let mut v = serde_json::to_value(crash_scenario()).unwrap();
        v["quirks"] = json!({"ignoreNotesOnCreate": true});
        serde_json::from_value::<graph_emulator::Scenario>(v).unwrap()
    };
    let emu = kit::start(quirky()).await;
    let vars = kit::tenant_env(&emu, false);
    assert_eq!(kit::sync_lib(&emu, &vars, false).await.code(), 0);
    let n = emu.writes();
    let want = kit::normalised_with(&emu, false);
    assert!(n > 20, "creates and their re-writes: {n}");
    for fault in [Fault::DropBefore, Fault::Apply504] {
        for k in 1..=n {
            let ctx = format!("k={k}/{n} {fault:?} notes dropped on create");
            let emu = kit::start(quirky()).await;
            let vars = kit::tenant_env(&emu, false);
            emu.inner
                .set_faults(kit::plan(k, crash_rules(k, n, fault, true)));
            assert_eq!(kit::sync_lib(&emu, &vars, false).await.code(), 1, "{ctx}");
            emu.inner.set_faults(kit::plan(0, vec![]));
            kit::converge(&emu, &vars, 3).await;
            kit::assert_no_duplicates(&emu, &ctx);
            kit::assert_same_state(&kit::normalised_with(&emu, false), &want, &ctx);
        }
    }
}

/// The same enumeration with writes sent as `$batch` items (faults hit items like requests).
#[tokio::test]
async fn crash_at_every_write_applied_then_504_batched() {
    enumerate(Fault::Apply504, true, true).await;
}

/// The uninterrupted run this suite compares against is itself right: every contact in every
/// folder, linked by one SyncId, notes kept.
#[tokio::test]
async fn the_reference_run_is_complete() {
    let emu = kit::start(crash_scenario()).await;
    let vars = kit::tenant_env(&emu, false);
    let before = kit::user_texts(&emu);
    assert_eq!(kit::sync_lib(&emu, &vars, false).await.code(), 0);
    let emails = ["ann", "bob", "cid", "dee"].map(|n| format!("{n}@fabrikam.com"));
    for (mailbox, contacts) in kit::folders(&emu) {
        let by = harness::by_email(&contacts);
        assert_eq!(
            by.keys().cloned().collect::<Vec<_>>(),
            emails.to_vec(),
            "{mailbox}"
        );
    }
    let groups = kit::normalised(&emu);
    assert_eq!(groups.len(), 4, "one SyncId group per person: {groups:#?}");
    assert!(groups.iter().all(|g| g.len() == 4), "{groups:#?}");
    // Users' own note text is unchanged (I3), whatever was added around it.
    let after = kit::user_texts(&emu);
    for (k, text) in before {
        assert_eq!(after[&k], text, "{k:?}");
    }
    // Bob's newer edit won everywhere.
    for (_, contacts) in kit::folders(&emu) {
        let bob = &harness::by_email(&contacts)["bob@fabrikam.com"];
        assert_eq!(harness::s(bob, "mobilePhone"), Some("+1 555 0100"));
    }
}

/// The heavier variant (not in CI's default run: `cargo test -p synccontacts --test reliability
/// -- --ignored`): a generated tenant of 6 users × 6 contacts (some 80 writes), `$batch` on, a
/// seeded sample of 25 crash points per fault kind.
#[tokio::test]
#[ignore = "heavy: ~80-write scenario, 75 crash runs; run with --ignored"]
async fn crash_points_sampled_on_a_larger_tenant_batched() {
    use rand::{Rng as _, SeedableRng as _};
    let s = crate::storms::generated(6, 6, 31);
    let emu = kit::start(s.clone()).await;
    let vars = kit::tenant_env(&emu, true);
    assert_eq!(kit::sync_lib(&emu, &vars, false).await.code(), 0);
    let n = emu.writes();
    let want = kit::normalised(&emu);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(31);
    for fault in [Fault::DropBefore, Fault::DropAfter, Fault::Apply504] {
        for _ in 0..25 {
            let k = rng.random_range(1..=n);
            let ctx = format!("k={k}/{n} {fault:?} large batched");
            let emu = kit::start(s.clone()).await;
            let vars = kit::tenant_env(&emu, true);
            emu.inner
                .set_faults(kit::plan(k, crash_rules(k, n, fault, true)));
            let first = kit::sync_lib(&emu, &vars, false).await;
            assert_eq!(first.code(), 1, "{ctx}");
            emu.inner.set_faults(kit::plan(0, vec![]));
            kit::converge(&emu, &vars, 3).await;
            kit::assert_no_duplicates(&emu, &ctx);
            kit::assert_same_state(&kit::normalised(&emu), &want, &ctx);
        }
    }
}
