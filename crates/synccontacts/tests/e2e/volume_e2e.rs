//! Issue 16: readable at scale. A first run of many users prints the first lines of each kind,
//! one line per mailbox and the totals — not one line per write (GitLab truncates a job log at
//! 4 MB) — while the report keeps every action, and may be gzip-compressed.

use std::io::Read as _;

use graph_emulator::GenerateOptions;
use serde_json::Value;

use crate::harness::*;

fn lines_starting(stdout: &str, prefix: &str) -> usize {
    stdout.lines().filter(|l| l.starts_with(prefix)).count()
}

fn actions_of(report: &Value) -> Vec<Value> {
    report["tenants"][0]["actions"].as_array().unwrap().clone()
}

/// 1,000 users, a dry run (every write of a first run planned, nothing written): stdout stays
/// far under 1 MB, with at most 20 lines of each kind per step, one line per mailbox and no line
/// twice; the gzip report holds every planned action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_user_first_run_prints_summaries_not_every_write() {
    let emu = Emu::start(generated(&GenerateOptions {
        users: 1000,
        contacts_per_user: 2,
        pool: Some(30),
        edits: 0.0,
        seed: 4,
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("report.json.gz");
    let r = run(
        &one_tenant(&emu),
        &[
            "sync",
            "--no-progress",
            "--dry-run",
            "--report",
            gz.to_str().unwrap(),
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut json = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
        .read_to_string(&mut json)
        .expect("a gzip report");
    let report: Value = serde_json::from_str(&json).unwrap();
    let actions = actions_of(&report);
    let creates = actions.iter().filter(|a| a["action"] == "create").count();
    assert!(creates > 25_000, "{creates} planned creates");
    eprintln!(
        "1,000 users dry run: {} actions; stdout {} bytes in {} lines; report {} bytes ({} gzip)",
        actions.len(),
        r.stdout.len(),
        r.stdout.lines().count(),
        json.len(),
        std::fs::metadata(&gz).unwrap().len()
    );
    assert!(r.stdout.len() < 1_000_000, "{} bytes", r.stdout.len());
    assert!(lines_starting(&r.stdout, "Would create:") <= 2 * 20);
    assert!(lines_starting(&r.stdout, "Would stamp:") <= 2 * 20);
    assert_eq!(
        lines_starting(&r.stdout, "Mailbox "),
        1001,
        "hub + 1,000 users"
    );
    let more_step2 = actions
        .iter()
        .filter(|a| a["action"] == "create" && a["step"] == 2)
        .count()
        - 20;
    assert!(
        r.stdout.contains(&format!(
            "… and {} more creates in step 2 (all in the report; --actions all prints every line)",
            synccontacts::report::thousands(more_step2)
        )),
        "{}",
        r.stdout
    );
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    let n = lines.len();
    lines.sort_unstable();
    lines.dedup();
    assert_eq!(lines.len(), n, "a line was printed twice");
}

/// A real first run of 200 users: every create done, at most 20 lines of each kind per step,
/// `--actions all` prints one line per write (and nothing twice), `--actions summary` none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_first_run_keeps_every_action_in_the_report_and_caps_stdout() {
    let s = generated(&GenerateOptions {
        users: 200,
        contacts_per_user: 2,
        pool: Some(12),
        edits: 0.0,
        seed: 5,
    });
    let emu = Emu::start(s.clone()).await;
    let r = sync(&one_tenant(&emu), &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let actions = actions_of(r.report.as_ref().unwrap());
    assert!(actions.len() > 2_000, "{} actions", actions.len());
    assert!(actions.iter().all(|a| a["result"] == "done"));
    assert!(lines_starting(&r.stdout, "Created:") <= 40, "{}", r.stdout);
    assert_eq!(lines_starting(&r.stdout, "Mailbox "), 201);
    eprintln!(
        "200 users cold run: {} actions, stdout {} bytes",
        actions.len(),
        r.stdout.len()
    );
    assert!(r.stdout.len() < 100_000, "{} bytes", r.stdout.len());

    // The same first run, with every line: one per write, none twice.
    let emu = Emu::start(s.clone()).await;
    let all = sync(&one_tenant(&emu), &["--actions", "all"]).await;
    assert_eq!(all.code, 0, "{}", all.stderr);
    let written = lines_starting(&all.stdout, "Created:") + lines_starting(&all.stdout, "Stamped:");
    assert_eq!(written, actions.len());
    assert!(!all.stdout.contains("… and "), "nothing left out");

    let emu = Emu::start(s).await;
    let summary = sync(&one_tenant(&emu), &["--actions", "summary"]).await;
    assert_eq!(summary.code, 0);
    assert_eq!(lines_starting(&summary.stdout, "Created:"), 0);
    assert_eq!(lines_starting(&summary.stdout, "Mailbox "), 201);
    assert!(summary.stdout.contains("Step2 - Created: "));
}

/// Repairing an interrupted earlier run is not a data problem (issue 16): a user copy whose
/// SyncId the hub lacks is re-created in the hub, reported as `Repaired:` and counted in step 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_the_hub_lacks_is_repaired_not_a_data_problem() {
    let sid = "5a1e0c3b-0000-4000-8000-00000000c0de";
    let emu = Emu::start(scenario(vec![
        hub_with(Some(vec![])),
        user(
            "adele@contoso.com",
            vec![with(
                contact(
                    "Alex Wilber",
                    Some("alex@fabrikam.com"),
                    "2026-01-01T00:00:00Z",
                ),
                "personalNotes",
                Value::String(tag4(sid, "adele@contoso.com")),
            )],
        ),
    ]))
    .await;
    let r = sync(&one_tenant(&emu), &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("Data problem"), "{}", r.stdout);
    // The merge with issue 12 gave every repair one wording (the book lines'), whether the state
    // told it or, as here, first-run mode did; and one count, `step1.repaired` (it is the hub's
    // link that is repaired).
    assert!(
        r.stdout.contains(&format!(
            "Repaired: NotesId={sid} | Alex Wilber (alex@fabrikam.com) | in \
             hub@contoso.com/All Contacts (re-created from adele@contoso.com's copy, whose SyncId \
             was not in the hub: an earlier run was interrupted, or the hub copy was deleted)"
        )),
        "{}",
        r.stdout
    );
    let t = r.tenant(0);
    assert_eq!(t["problems"], Value::Array(vec![]));
    assert_eq!(t["repairs"][0]["reason"], "interruptedOrDeleted");
    assert_eq!(t["repairs"][0]["foundIn"], "adele@contoso.com");
    assert_eq!(t["step1"]["repaired"], 1);
    assert_eq!(t["step2"]["repaired"], 0);
    assert!(r.stdout.contains("Repaired: 1"), "{}", r.stdout);
    assert_eq!(
        sync_id(&emu.hub_contacts().unwrap()[0]).as_deref(),
        Some(sid)
    );
}
