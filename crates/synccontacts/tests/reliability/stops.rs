//! Runs that end (issue 16), on the real binary as a child process: Graph gone mid-write (the
//! emulator killed), SIGTERM and SIGINT mid-write, and the deadline. Each run must end within a
//! bound, write its report and say how it ended; after an interruption the next run completes
//! the rest without a duplicate (I2) and without calling the repair a data problem.
//!
//! "Killed" is the emulator's whole runtime shut down at once: its listener and every
//! connection close as they would if its process died (new connections refused, requests in
//! flight cut), and its state stays readable for the oracles.

use std::time::{Duration, Instant};

use graph_emulator::EmulatorOptions;
use serde_json::Value;

use crate::harness::{self, Run};
use crate::kit::{self, Child};
use crate::storms::generated;

/// An emulator on a runtime of its own, so the test can kill it like a process.
struct Killable {
    rt: Option<tokio::runtime::Runtime>,
    emu: harness::Emu,
}

impl Killable {
    /// A generated tenant (40 users, overlapping contacts: about 4,000 writes in a cold run)
    /// served with `latency` per request, so a run spends a while writing.
    fn start(latency: Duration) -> Self {
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let emu = rt.block_on(harness::Emu::start_with(
                generated(40, 6, 11),
                EmulatorOptions {
                    seed: Some(7),
                    latency,
                    ..EmulatorOptions::default()
                },
            ));
            Self { rt: Some(rt), emu }
        })
        .join()
        .unwrap()
    }

    /// Every socket closes at once; nothing answers any more.
    fn kill(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Killable {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the emulator has seen a first batch of contact writes (the run is writing; the
/// very first write is the hub's folder).
async fn first_write(emu: &harness::Emu) {
    let t0 = Instant::now();
    while emu.writes() < 20 {
        assert!(t0.elapsed() < Duration::from_secs(60), "no write started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn results(r: &Run) -> Vec<String> {
    r.results()
}

/// Issue 16: the emulator killed a moment into the writes. The run ends (the client's breaker:
/// 3 transport failures over at least 20 s), writes its report, says Graph is unreachable and
/// what to check, and exits 1 — within a minute, measured here from the kill to the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_gone_mid_write_ends_the_run_with_its_report() {
    let mut k = Killable::start(Duration::from_millis(20));
    let env = harness::one_tenant(&k.emu);
    let child = Child::start(&env, &[]);
    first_write(&k.emu).await;
    k.kill();
    let gone = Instant::now();
    let r = child.finish(Duration::from_secs(120)).await;
    let took = gone.elapsed();
    eprintln!("Graph gone → exit: {took:?}");
    assert!(
        took < Duration::from_secs(60),
        "took {took:?}\n{}",
        r.stderr
    );
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let t = r.tenant(0);
    assert_eq!(t["outcome"], "failed", "{t}");
    let error = t["error"].as_str().unwrap();
    assert!(
        error.contains("unreachable") && error.contains("check the network"),
        "{error}"
    );
    assert!(r.stdout.contains(error), "the tenant line says it too");
    // Every write is accounted for: done before the kill, or not done (failed in flight, or
    // stopped), and the run says how many of each.
    let results = results(&r);
    assert!(results.iter().any(|x| x == "stopped"), "{results:?}");
    assert!(r.last_line().ends_with("exit code 1"), "{}", r.stdout);
    assert_eq!(r.report.as_ref().unwrap()["interrupted"], false);
    // The retries end with the breaker: a few log lines per mailbox, not a storm (issue 16 saw
    // 70,046 lines of `Connection refused` over 20 minutes).
    let lines = r.stderr.lines().count();
    assert!(lines < 1_000, "{lines} lines on stderr:\n{}", r.stderr);
}

/// Issue 16: SIGTERM or SIGINT mid-write stops starting writes, lets those in flight finish,
/// writes the report with `"interrupted": true`, prints one line and exits 143/130. The next run
/// completes the rest: no duplicate (I2), no data-problem line, and a third run writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_mid_write_stops_cleanly_and_the_next_run_completes_the_rest() {
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let k = Killable::start(Duration::from_millis(100));
        let env = harness::one_tenant(&k.emu);
        let child = Child::start(&env, &[]);
        first_write(&k.emu).await;
        child.signal(signal);
        let sent = Instant::now();
        let r = child.finish(Duration::from_secs(60)).await;
        eprintln!("SIG{signal} → exit: {:?}", sent.elapsed());
        assert_eq!(r.code, code, "SIG{signal}\n{}\n{}", r.stdout, r.stderr);
        let report = r.report.as_ref().expect("a report");
        assert_eq!(report["interrupted"], true, "SIG{signal}");
        assert_eq!(report["stoppedBy"], format!("SIG{signal}"));
        assert_eq!(report["exitCode"], code);
        let t = r.tenant(0);
        assert_eq!(t["outcome"], "stopped", "{t}");
        let done = results(&r).iter().filter(|x| *x == "done").count();
        let planned = results(&r).len();
        assert!(
            done < planned,
            "SIG{signal}: the run finished before the signal"
        );
        let line = format!(
            "interrupted by SIG{signal}: stopped after {} of {} writes; the next run completes the rest",
            thousands(done),
            thousands(planned)
        );
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(
            lines.iter().filter(|l| **l == line).count(),
            1,
            "{line}\n{}",
            r.stdout
        );
        assert!(
            r.last_line().ends_with(&format!("exit code {code}")),
            "{}",
            r.stdout
        );
        // Nothing the emulator holds is a duplicate, even half-way.
        kit::assert_no_duplicates(&k.emu, &format!("after SIG{signal}"));

        let next = harness::sync(&env, &[]).await;
        assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
        assert!(
            !next.stdout.contains("Data problem"),
            "the repair is not a data problem:\n{}",
            next.stdout
        );
        assert_eq!(next.tenant(0)["problems"], Value::Array(Vec::new()));
        // One count of repairs since the merge with issue 12: step 1's (the hub's link).
        let repaired = next.tenant(0)["step1"]["repaired"].as_u64().unwrap();
        assert_eq!(
            repaired as usize,
            next.tenant(0)["repairs"].as_array().unwrap().len()
        );
        kit::assert_no_duplicates(&k.emu, &format!("after the run that followed SIG{signal}"));
        k.emu.reset();
        let third = harness::sync(&env, &[]).await;
        assert_eq!(third.code, 0, "{}", third.stdout);
        assert_eq!(k.emu.writes(), 0, "converged: {:?}", third.action_keys());
    }
}

/// The deadline: no new write starts once `--max-duration` has passed; the run reports what it
/// did and exits 1, saying it stopped at the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_stops_the_run_with_exit_1() {
    let k = Killable::start(Duration::from_millis(100));
    let env = harness::one_tenant(&k.emu);
    let started = Instant::now();
    let r = Child::start(&env, &["--max-duration", "2s"])
        .finish(Duration::from_secs(60))
        .await;
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let report = r.report.as_ref().unwrap();
    assert_eq!(report["stoppedBy"], "deadline");
    assert_eq!(report["interrupted"], false);
    assert_eq!(r.tenant(0)["outcome"], "stopped");
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("stopped at the deadline (2 s): stopped after ")),
        "{}",
        r.stdout
    );
    assert!(
        r.last_line()
            .starts_with("Run stopped at the deadline (2 s): ")
            && r.last_line().ends_with("exit code 1"),
        "{}",
        r.stdout
    );
}

fn thousands(n: usize) -> String {
    synccontacts::report::thousands(n)
}

/// The stop's grace is bounded: writes still on the wire when it ends are abandoned — `stopped`,
/// saying their outcome is unknown — and the run ends at once instead of waiting for Graph. (The
/// binary ends the grace after 10 s or at a second signal; here the library caller ends it.) The
/// next run completes the rest without a duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_in_flight_after_the_grace_are_abandoned_and_the_next_run_completes_them() {
    use synccontacts::cli::{OutputOptions, SyncArgs};
    use synccontacts::report::{ActionLines, Detail};
    use synccontacts::stop::{Signal, StopCause};

    let emu = kit::start(harness::scenario(vec![
        harness::hub_with(Some(vec![])),
        harness::user(
            "adele@contoso.com",
            vec![harness::contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-01-01T00:00:00Z",
            )],
        ),
    ]))
    .await;
    // Every contact write takes a minute: the run is stuck on them.
    emu.inner.set_faults(kit::plan(
        1,
        vec![
            serde_json::json!({"match": {"method": "POST|PATCH", "path": "/v1.0/users/**"},
                                 "times": 2, "action": {"delayMs": 60_000}}),
        ],
    ));
    let vars: synccontacts::config::Env = kit::tenant_env(&emu, false).into_iter().collect();
    let run_env = synccontacts::run::RunEnv::default();
    let stop = run_env.stop.clone();
    let opts = OutputOptions {
        detail: Detail::Normal,
        actions: ActionLines::default(),
        progress: false,
    };
    let out = synccontacts::output::Out::discard();
    // A state file of its own (not the working folder's default): the stopped run commits what
    // its writes came to — unknown, for abandoned ones — and the next run loads it.
    let state = tempfile::tempdir().unwrap();
    let state_file = state.path().join("state.sqlite");
    let args = SyncArgs {
        state: Some(state_file.clone()),
        ..SyncArgs::default()
    };
    let stopper = async {
        first_write_started(&emu).await;
        stop.stop(StopCause::Signal(Signal::Term));
        stop.abandon();
        Instant::now()
    };
    let ((exit, report), t0) = tokio::time::timeout(Duration::from_secs(40), async {
        tokio::join!(
            synccontacts::cli::sync_with_report(&vars, &args, &run_env, opts, &out),
            stopper
        )
    })
    .await
    .expect("the run ends once the grace is over");
    assert!(
        t0.elapsed() < Duration::from_millis(1_500),
        "the run waited for the writes: {:?}",
        t0.elapsed()
    );
    assert_eq!(exit.code(), 143);
    let t = &report.tenants[0];
    assert_eq!(t.outcome, synccontacts::exit::TenantOutcome::Stopped);
    let abandoned: Vec<&str> = t
        .actions
        .iter()
        .filter(|a| a.result == synccontacts::report::ActionResult::Stopped)
        .filter_map(|a| a.error.as_deref())
        .filter(|e| e.contains("in flight when the run stopped"))
        .collect();
    assert!(!abandoned.is_empty(), "{:#?}", t.actions);
    assert!(
        abandoned[0].contains("outcome is unknown"),
        "{}",
        abandoned[0]
    );

    // Whatever the abandoned writes did (the emulator drops a request whose connection closes,
    // so here nothing), the next run completes the rest.
    emu.inner.set_faults(kit::plan(1, vec![]));
    let mut with_state = kit::tenant_env(&emu, false);
    with_state.push(harness::var(
        synccontacts::config::STATE,
        state_file.display().to_string(),
    ));
    let next = kit::sync_lib(&emu, &with_state, false).await;
    assert_eq!(next.code(), 0, "{}", next.report);
    assert_eq!(
        next.report["tenants"][0]["state"], "loaded",
        "{}",
        next.report
    );
    kit::assert_no_duplicates(&emu, "after the abandoned writes");
    kit::assert_second_run_writes_nothing(&emu, &kit::tenant_env(&emu, false), "abandoned").await;
}

/// Waits until a contact write has reached the emulator (it counts a request when it arrives).
async fn first_write_started(emu: &harness::Emu) {
    let t0 = Instant::now();
    while emu.writes() == 0 {
        assert!(t0.elapsed() < Duration::from_secs(30), "no write started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Issue 12 meets issue 16: a run SIGTERM'd while it propagates a hub deletion commits what it
/// wrote (`run::commit_written` runs after a stopped apply too). Its state holds the tombstones
/// and its run record (exit code 143, the deletes done and stopped); the next run loads it
/// (`"state": "loaded"`, not first-run mode) and deletes the copies the interrupted run did not
/// reach — the deletion is propagated, not lost, and nothing comes back into the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigtermed_run_commits_what_it_wrote_and_the_next_run_finishes_the_deletion() {
    use crate::memory::{StateDir, assert_quiet_run, converged, delete_from_hub, deletes, sid};

    // A converged book of 12 contacts in the hub and 12 users; 5 are deleted from the hub: 60
    // tagged copies to delete, 5 per mailbox — more than the 4 a mailbox has in flight, so a
    // stop after the first round leaves some in every mailbox.
    let users: Vec<String> = (0..12).map(|i| format!("user{i:02}@contoso.com")).collect();
    let names: Vec<&str> = users.iter().map(String::as_str).collect();
    let emu = harness::Emu::start(converged(12, &names)).await;
    let state = StateDir::new();
    let mut vars = crate::memory::with_state(&harness::one_tenant(&emu), &state.path);
    vars.retain(|(k, _)| k != "AUTOMATION_SYNCCONTACTS_BATCH");
    vars.push(harness::var("AUTOMATION_SYNCCONTACTS_BATCH", "false"));
    let first = harness::sync(&vars, &[]).await;
    assert_eq!(first.code, 0, "{}\n{}", first.stdout, first.stderr);

    let gone: Vec<String> = (0..5)
        .map(|n| {
            harness::email(&crate::memory::book_contact(n)).expect("every book contact has one")
        })
        .collect();
    delete_from_hub(&emu, &gone).await;
    // Every DELETE takes 1.5 s: the signal lands while the first round is on the wire.
    emu.inner.set_faults(kit::plan(
        1,
        vec![serde_json::json!({"match": {"method": "DELETE"}, "action": {"delayMs": 1_500}})],
    ));
    let child = Child::start(&vars, &[]);
    first_write_started(&emu).await;
    child.signal("TERM");
    let r = child.finish(Duration::from_secs(60)).await;
    assert_eq!(r.code, 143, "{}\n{}", r.stdout, r.stderr);
    let report = r.report.as_ref().expect("a report");
    assert_eq!(report["stoppedBy"], "SIGTERM");
    let t = r.tenant(0);
    assert_eq!(t["outcome"], "stopped", "{t}");
    assert_eq!(t["state"], "loaded", "{t}");
    let results = results(&r);
    let done = results.iter().filter(|x| *x == "done").count();
    let stopped = results.iter().filter(|x| *x == "stopped").count();
    assert_eq!(results.len(), 60, "{results:?}");
    assert!(done > 0 && stopped > 0, "{results:?}");
    assert_eq!(
        deletes(&emu),
        done as u64,
        "stopped deletes were never sent"
    );

    // The state file holds what the interrupted run wrote: the tombstones it decided and its
    // run record. Without the commit it would still hold the first run's memory only.
    let (mut file, _) =
        sync_state::StateFile::open(&state.path, sync_state::Mode::ReadOnly).expect("readable");
    let tenant = file.tenant_ids().unwrap().pop().expect("one tenant");
    let s = file.tenant(&tenant).unwrap().expect("the tenant's memory");
    assert_eq!(s.tombstones.len(), 5, "{:?}", s.tombstones);
    assert!(s.tombstones.iter().all(|t| t.held.is_none()));
    let last = s.runs.last().expect("the interrupted run's record");
    assert_eq!(last.exit_code, 143);
    assert_eq!(last.counts.get("deleted"), Some(&(done as u64)));
    assert_eq!(last.counts.get("stopped"), Some(&(stopped as u64)));
    drop(file);

    emu.inner.set_faults(kit::plan(1, vec![]));
    emu.reset();
    let next = harness::sync(&vars, &[]).await;
    assert_eq!(next.code, 0, "{}\n{}", next.stdout, next.stderr);
    assert_eq!(next.tenant(0)["state"], "loaded");
    assert_eq!(
        deletes(&emu),
        stopped as u64,
        "the next run deletes exactly what the interrupted one did not reach"
    );
    assert!(
        !next
            .stdout
            .lines()
            .any(|l| l.starts_with("Repaired:") || l.starts_with("Created:")),
        "nothing comes back: {}",
        next.stdout
    );
    let deleted: Vec<String> = (0..5).map(sid).collect();
    for m in names.iter().copied().chain([harness::HUB]) {
        let cs = if m == harness::HUB {
            emu.hub_contacts().unwrap()
        } else {
            emu.contacts(m)
        };
        assert_eq!(cs.len(), 7, "{m}: {cs:?}");
        for c in &cs {
            let id = harness::sync_id(c).unwrap_or_default();
            assert!(!deleted.contains(&id), "{m} still holds {id}");
        }
    }
    assert_quiet_run(&emu, &vars, "after the interrupted deletion").await;
}
