//! I4 over runs that delete (issue 12's proof; I2, I4, I11, I1 with a state file). A tenant
//! converges with a state file (run 1); then an administrator deletes two contacts from "All
//! Contacts", a user edits a copy, a user adds a contact and a user deletes a copy of their own
//! (`UserDeletes` "restore" re-creates it, "respect" opts the user out). Run 2 propagates all of
//! it — DELETEs, updates and creates, N writes — and is crashed at every write k in 1..=N:
//!
//! - **alone**: write k fails (dropped before it applies, applied then the connection dropped,
//!   applied then answered 504) and the run carries on;
//! - **crash, committed**: write k fails and every later write is dropped before it applies (the
//!   process lost Graph), but the run ends normally and commits what it saw;
//! - **death, not committed**: the real binary, every write after k held until it is SIGKILLed —
//!   nothing runs after, so the state holds run 1's memory and run 2's run marker only.
//!
//! Then runs with the state the crashed run left (at most 3) must reach exit 0 and end in exactly
//! the uninterrupted run 2's state (modulo ids, etags, timestamps and SyncId values), and after
//! every run: the deleted contacts never come back into the hub, every DELETE was of a copy tagged
//! with a deleted contact's SyncId and none was in the hub, the untagged look-alike survives, no
//! duplicate (I2); a further run writes nothing (I1). Direct and `$batch`.
//!
//! Every crash point of every combination is `#[ignore]`d (CI runs it once, with the other
//! heavy scenarios); by default a seeded sample of them runs.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use graph_emulator::Scenario;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Map, Value, json};

use crate::harness::{
    self, EnvVars, HUB, by_email, contact, s, scenario, sync_id, tag2, tag4, with,
};
use crate::kit::{self, Child, SharedEmu};
use crate::memory::{StateDir, admin, delete_from_hub};

const ALICE: &str = "alice@contoso.com";
const BOB: &str = "bob@contoso.com";
const CAROL: &str = "carol@contoso.com";
const ANN: &str = "ann@fabrikam.com";
const DEE: &str = "dee@fabrikam.com";

/// Run 1's tenant: three users, overlapping contacts, an old-script tag with CRLF note text, a
/// 4-field tag, and Carol holding Ann twice (run 1 stamps one and leaves the other untagged: the
/// look-alike that must survive Ann's deletion).
fn first_scenario() -> Scenario {
    let ann = || contact("Ann Lee", Some(ANN), "2026-03-01T10:00:00Z");
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
            "Prefers email.\r\nSecond line\r\n{}",
            tag2("6d1f0e4a-0000-4000-8000-00000000c1d0", BOB)
        )),
    );
    let dee = with(
        contact("Dee Ng", Some(DEE), "2026-02-01T10:00:00Z"),
        "personalNotes",
        json!(format!(
            "Ünïcode note 🎉\n\n{}",
            tag4("0a9b8c7d-0000-4000-8000-0000000000de", CAROL)
        )),
    );
    let fay = contact("Fay Orr", Some("fay@fabrikam.com"), "2026-02-01T10:00:00Z");
    scenario(vec![
        harness::hub_with(None),
        harness::user(
            ALICE,
            vec![
                with(ann(), "personalNotes", json!("met at the fair")),
                bob_old,
                fay,
            ],
        ),
        harness::user(BOB, vec![bob_new, cid]),
        harness::user(CAROL, vec![dee, ann(), ann()]),
    ])
}

/// The tenant just before run 2, replayable: the emulator's state and the state file's bytes.
struct Before {
    scenario: Scenario,
    state: Vec<u8>,
    /// The SyncIds of Ann and Dee, deleted from the hub.
    deleted: BTreeSet<String>,
    /// Carol's untagged Ann: its id and changeKey, which no run may touch.
    look_alike: (String, String),
}

fn vars(emu: &harness::Emu, respect: bool, batch: bool, state: &StateDir) -> EnvVars {
    let mut tenant = harness::tenant_entry(harness::TENANT, harness::SECRET);
    tenant["UserDeletes"] = json!(if respect { "respect" } else { "restore" });
    let mut v = harness::endpoints(emu);
    v.push(harness::var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([tenant]).to_string(),
    ));
    v.push(harness::var(
        "AUTOMATION_SYNCCONTACTS_BATCH",
        if batch { "true" } else { "false" },
    ));
    crate::memory::with_state(&v, &state.path)
}

fn folder(emu: &harness::Emu, mailbox: &str) -> Vec<Map<String, Value>> {
    if mailbox == HUB {
        emu.hub_contacts().unwrap_or_default()
    } else {
        emu.contacts(mailbox)
    }
}

async fn before_run_2() -> Before {
    let emu = kit::start(first_scenario()).await;
    let state = StateDir::new();
    let v = vars(&emu, false, false, &state);
    let r = kit::sync_lib(&emu, &v, false).await;
    assert_eq!(r.code(), 0, "run 1: {}", r.report);
    kit::assert_second_run_writes_nothing(&emu, &v, "run 1").await;
    let hub = by_email(&folder(&emu, HUB));
    let deleted: BTreeSet<String> = [ANN, DEE]
        .iter()
        .map(|e| sync_id(&hub[*e]).unwrap().to_lowercase())
        .collect();
    let look_alike = folder(&emu, CAROL)
        .into_iter()
        .find(|c| harness::email(c).as_deref() == Some(ANN) && sync_id(c).is_none())
        .map(|c| {
            (
                s(&c, "id").unwrap().to_owned(),
                s(&c, "changeKey").unwrap().to_owned(),
            )
        })
        .expect("run 1 leaves Carol's second Ann untagged");

    // The administrator deletes Ann and Dee from "All Contacts".
    delete_from_hub(&emu, &[ANN.into(), DEE.into()]).await;
    // Carol edits her copy of Bob, in a later second than run 1's writes (the emulator's
    // lastModifiedDateTime has whole seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let bob_id = crate::memory::contact_id(&emu, CAROL, "bob@fabrikam.com");
    emu.touch(CAROL, &bob_id, &json!({"jobTitle": "CTO"})).await;
    // Alice adds Eve; Bob deletes his copy of Fay (both as Outlook would, through Graph).
    let mut eve = contact("Eve Tan", Some("eve@fabrikam.com"), "2026-05-01T00:00:00Z");
    eve.remove("lastModifiedDateTime");
    let fay_id = crate::memory::contact_id(&emu, BOB, "fay@fabrikam.com");
    let client = admin(&emu);
    for (mailbox, w) in [
        (
            ALICE,
            graph::WriteRequest::create(graph::FolderRef::Default, Value::Object(eve)),
        ),
        (
            BOB,
            graph::WriteRequest::delete(graph::FolderRef::Default, fay_id, None),
        ),
    ] {
        for r in client.execute_writes::<Value>(mailbox, vec![w]).await {
            r.expect("a user's own write");
        }
    }
    Before {
        scenario: emu.inner.state(),
        state: state.bytes(),
        deleted,
        look_alike,
    }
}

/// A fresh emulator and state file holding exactly `b`.
async fn replay(b: &Before) -> (SharedEmu, StateDir) {
    let emu = kit::start(b.scenario.clone()).await;
    let state = StateDir::new();
    std::fs::write(&state.path, &b.state).unwrap();
    (emu, state)
}

/// The oracles that hold after every run, crashed or not: Ann and Dee never back in the hub (by
/// email or SyncId), every DELETE since the last reset was of a user's copy tagged with one of
/// their SyncIds, Carol's look-alike untouched, no duplicate.
fn assert_after_run(emu: &harness::Emu, b: &Before, ctx: &str) {
    for c in folder(emu, HUB) {
        let e = harness::email(&c).unwrap_or_default();
        assert!(e != ANN && e != DEE, "{ctx}: {e} came back into the hub");
        let id = sync_id(&c).map(|i| i.to_lowercase()).unwrap_or_default();
        assert!(!b.deleted.contains(&id), "{ctx}: {id} came back as {e}");
    }
    for (mailbox, items) in emu.inner.deleted() {
        assert_ne!(mailbox, HUB, "{ctx}: a hub contact was deleted");
        for d in items {
            let id = sync_id(&d.contact).map(|i| i.to_lowercase());
            assert!(
                id.as_ref().is_some_and(|i| b.deleted.contains(i)),
                "{ctx}: {mailbox} lost a contact no deletion asked for: {:?}",
                d.contact
            );
        }
    }
    let carol = folder(emu, CAROL);
    let look = carol
        .iter()
        .find(|c| s(c, "id") == Some(b.look_alike.0.as_str()))
        .unwrap_or_else(|| panic!("{ctx}: Carol's untagged Ann was deleted"));
    assert_eq!(
        s(look, "changeKey"),
        Some(b.look_alike.1.as_str()),
        "{ctx}: Carol's untagged Ann was written"
    );
    kit::assert_no_duplicates(emu, ctx);
}

/// Runs until one exits 0 (at most `max`), checking [`assert_after_run`] after each.
async fn repair(emu: &SharedEmu, v: &EnvVars, b: &Before, max: usize, ctx: &str) -> usize {
    for i in 1..=max {
        emu.reset();
        let r = kit::sync_lib(emu, v, false).await;
        let ctx = format!("{ctx}, repair run {i}");
        assert!(r.code() <= 1, "{ctx}: {}", r.report);
        assert_eq!(r.report["tenants"][0]["state"], "loaded", "{ctx}");
        assert_after_run(emu, b, &ctx);
        if r.code() == 0 {
            return i;
        }
    }
    panic!("{ctx}: no clean run in {max} repair runs");
}

/// The uninterrupted run 2: its normalised end state and its number of writes.
async fn reference(b: &Before, respect: bool, batch: bool) -> (Vec<Vec<String>>, u64) {
    let (emu, state) = replay(b).await;
    let v = vars(&emu, respect, batch, &state);
    let r = kit::sync_lib(&emu, &v, false).await;
    let ctx = format!("uninterrupted run 2 respect={respect} batch={batch}");
    assert_eq!(r.code(), 0, "{ctx}: {}", r.report);
    assert_eq!(r.report["tenants"][0]["state"], "loaded", "{ctx}");
    let n = emu.writes();
    // Two contacts × three users' tagged copies deleted, nothing else.
    let deleted: usize = emu.inner.deleted().values().map(Vec::len).sum();
    assert_eq!(deleted, 6, "{ctx}: {}", r.stdout);
    assert_after_run(&emu, b, &ctx);
    // The rest of run 2 was done: Carol's edit everywhere, Alice's Eve everywhere, Bob's Fay
    // back (restore) or not (respect).
    for m in [HUB, ALICE, BOB, CAROL] {
        let f = by_email(
            &folder(&emu, m)
                .into_iter()
                .filter(|c| sync_id(c).is_some())
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            s(&f["bob@fabrikam.com"], "jobTitle"),
            Some("CTO"),
            "{ctx}: {m}"
        );
        assert!(f.contains_key("eve@fabrikam.com"), "{ctx}: {m}");
        assert!(!f.contains_key(ANN) && !f.contains_key(DEE), "{ctx}: {m}");
        let fay = f.contains_key("fay@fabrikam.com");
        assert_eq!(fay, m != BOB || !respect, "{ctx}: Fay in {m}");
    }
    kit::assert_second_run_writes_nothing(&emu, &v, &ctx).await;
    (kit::normalised(&emu), n)
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    DropBefore,
    DropAfter,
    Apply504,
}

impl Fault {
    const ALL: [Fault; 3] = [Fault::DropBefore, Fault::DropAfter, Fault::Apply504];

    fn action(self) -> Value {
        match self {
            Fault::DropBefore => json!({"drop": "before"}),
            Fault::DropAfter => json!({"drop": "after"}),
            Fault::Apply504 => json!({"status": 504, "afterApply": true}),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Write k fails; the run carries on.
    Alone,
    /// Write k fails, every later write is dropped before it applies; the run commits.
    Crash,
    /// Write k fails, the binary is SIGKILLed while the next write is held: no commit.
    Death,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::Alone, Mode::Crash, Mode::Death];
}

#[derive(Clone, Copy, Debug)]
struct Point {
    respect: bool,
    batch: bool,
    fault: Fault,
    mode: Mode,
    k: u64,
}

/// Write k fails with `fault`; with `later`, every write after it (retries included) gets
/// `later` instead.
fn rules(k: u64, n: u64, fault: Fault, later: Option<Value>) -> Vec<Value> {
    let mut rules = vec![json!({"match": kit::writes_match(), "nth": k, "action": fault.action()})];
    if let Some(action) = later {
        for i in 1..=(10 * n) {
            rules.push(json!({"match": kit::writes_match(), "nth": k + i, "action": action}));
        }
    }
    rules
}

/// Runs the binary until write k has failed and the next write is held, then SIGKILLs it.
/// Returns whether it was killed (a run whose last write was k ends by itself first).
async fn die_at(emu: &SharedEmu, v: &EnvVars, k: u64, ctx: &str) -> bool {
    let mut child = Child::start(v, &[]);
    let t0 = Instant::now();
    let killed = loop {
        if emu.writes() > k {
            // A held write has arrived, after every earlier one: a margin for those still being
            // handled. (Were one cut short on a loaded machine, the crash point is only a write
            // earlier; every assertion holds for any crash point.)
            tokio::time::sleep(Duration::from_millis(100)).await;
            child.kill();
            break true;
        }
        if child.has_exited() {
            break false;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "{ctx}: the run reached no write after {k}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let r = child.finish(Duration::from_secs(60)).await;
    if killed {
        assert!(r.report.is_none(), "{ctx}: a killed run wrote a report");
    } else {
        assert!(r.code <= 1, "{ctx}: {}\n{}", r.stdout, r.stderr);
    }
    killed
}

/// One crash point and its repair; returns whether the process was killed (mode death).
async fn crash_case(b: &Before, p: Point, n: u64, want: &[Vec<String>]) -> bool {
    let ctx = format!("{p:?} of {n}");
    let mut deaths = 0;
    let (emu, state) = replay(b).await;
    let v = vars(&emu, p.respect, p.batch, &state);
    let runs_before = kit::remembered(&state.path)
        .expect("run 1's memory")
        .runs
        .len();
    match p.mode {
        Mode::Alone => {
            emu.inner
                .set_faults(kit::plan(p.k, rules(p.k, n, p.fault, None)));
            let r = kit::sync_lib(&emu, &v, false).await;
            assert!(r.code() <= 1, "{ctx}: {}", r.report);
            let s = kit::remembered(&state.path).unwrap();
            assert_eq!(
                s.runs.len(),
                runs_before + 1,
                "{ctx}: the run did not commit"
            );
        }
        Mode::Crash => {
            let later = Some(json!({"drop": "before"}));
            emu.inner
                .set_faults(kit::plan(p.k, rules(p.k, n, p.fault, later)));
            let r = kit::sync_lib(&emu, &v, false).await;
            assert_eq!(
                r.code(),
                1,
                "{ctx}: a run that lost writes must exit 1: {}",
                r.report
            );
            let s = kit::remembered(&state.path).unwrap();
            assert_eq!(
                s.runs.len(),
                runs_before + 1,
                "{ctx}: the crashed run did not commit"
            );
            assert_eq!(s.runs.last().unwrap().exit_code, 1, "{ctx}");
        }
        Mode::Death => {
            let later = Some(json!({"delayMs": 600_000}));
            emu.inner
                .set_faults(kit::plan(p.k, rules(p.k, n, p.fault, later)));
            let killed = die_at(&emu, &v, p.k, &ctx).await;
            deaths += usize::from(killed);
            let s = kit::remembered(&state.path).expect("the state survives a kill");
            if killed {
                // Nothing was committed: run 1's memory, with run 2's run marker.
                assert_eq!(s.runs.len(), runs_before, "{ctx}: a killed run committed");
                let before = kit::remembered_bytes(&b.state).unwrap();
                assert!(
                    s.last_plan_time > before.last_plan_time,
                    "{ctx}: no run marker"
                );
            } else {
                assert_eq!(
                    s.runs.len(),
                    runs_before + 1,
                    "{ctx}: the run did not commit"
                );
            }
        }
    }
    emu.inner.set_faults(kit::plan(0, vec![]));
    assert_after_run(&emu, b, &format!("{ctx}, crashed run"));
    let repairs = repair(&emu, &v, b, 3, &ctx).await;
    kit::assert_same_state(
        &kit::normalised(&emu),
        want,
        &format!("{ctx} after {repairs} repair run(s)"),
    );
    kit::assert_second_run_writes_nothing(&emu, &v, &ctx).await;
    assert_after_run(&emu, b, &format!("{ctx}, quiet run"));
    deaths > 0
}

/// Every point `pick` chooses, over both `UserDeletes`, direct and batched, every fault and mode.
/// Returns how many points ran and how many of them killed the process.
async fn crash_points(mut pick: impl FnMut(&Point, u64) -> bool) -> (usize, usize) {
    let b = before_run_2().await;
    let (mut cases, mut deaths) = (0, 0);
    for respect in [false, true] {
        for batch in [false, true] {
            let (want, n) = reference(&b, respect, batch).await;
            assert!(
                (10..=30).contains(&n),
                "run 2 should take 10-30 writes, took {n}"
            );
            for fault in Fault::ALL {
                for mode in Mode::ALL {
                    for k in 1..=n {
                        let p = Point {
                            respect,
                            batch,
                            fault,
                            mode,
                            k,
                        };
                        if pick(&p, n) {
                            deaths += usize::from(crash_case(&b, p, n, &want).await);
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    (cases, deaths)
}

/// A seeded sample: one crash point per combination of `UserDeletes`, batching, fault and mode
/// (36 of the several hundred), the first and last writes among them.
#[tokio::test]
async fn crash_points_over_a_run_that_deletes_sampled() {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(12);
    let mut c = std::collections::BTreeMap::new();
    let (cases, deaths) = crash_points(|p, n| {
        let key = format!("{} {} {:?} {:?}", p.respect, p.batch, p.fault, p.mode);
        let len = c.len();
        let k = *c.entry(key).or_insert_with(|| match len {
            0 => 1,
            1 => n,
            _ => rng.random_range(1..=n),
        });
        p.k == k
    })
    .await;
    assert_eq!(cases, 36);
    // Every death point but one at the very last write kills the process mid-run.
    assert!(deaths >= 11, "{deaths} of 12 killed");
}

/// Every crash point: 2 × 2 × 3 faults × 3 modes × N (CI runs it once, with `--ignored`).
#[tokio::test]
#[ignore = "heavy: every crash point of a run that deletes, ~500 cases; run with --ignored"]
async fn crash_points_over_a_run_that_deletes_every_one() {
    let (cases, deaths) = crash_points(|_, _| true).await;
    assert!(cases > 300, "{cases}");
    eprintln!("{cases} crash points, {deaths} of them a process killed before its commit");
}
