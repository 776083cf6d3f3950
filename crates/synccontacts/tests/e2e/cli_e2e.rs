//! The command line as an operator meets it: output paths checked before any request, the last
//! stdout line naming the exit code actually returned, `help`, log levels, `check -q` and the
//! endpoints `check` shows.

use serde_json::json;

use crate::harness::*;

fn small() -> graph_emulator::Scenario {
    scenario(simple_users())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_path_that_cannot_be_written_refuses_the_run_before_any_request() {
    let emu = Emu::start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder").join("report.json");
    let cases = [
        (missing.display().to_string(), "does not exist"),
        (dir.path().display().to_string(), "is a folder"),
    ];
    for (path, needle) in cases {
        emu.reset();
        let r = sync(&one_tenant(&emu), &["--report", &path]).await;
        assert_eq!(r.code, 2, "{path}: {}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains("--report") && r.stderr.contains(needle),
            "{path}: {}",
            r.stderr
        );
        assert!(r.stderr.contains("fix:"), "{}", r.stderr);
        assert_eq!(emu.any_requests(), 0, "{path}: requests were made");
        assert!(r.last_line().ends_with("exit code 2"), "{}", r.stdout);
    }
    assert!(!dir.path().join("no-such-folder").exists());
    // Every problem at once: the configuration's and the report path's.
    let mut env = one_tenant(&emu);
    env.push(var("AUTOMATION_SYNCCONTACTS_DRY_RUN", "ture"));
    let r = sync(&env, &["--report", &missing.display().to_string()]).await;
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("2 problems") && r.stderr.contains("ture"),
        "{}",
        r.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_line_names_the_exit_code_returned_even_when_the_report_fails_at_the_end() {
    let emu = Emu::start(small()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    let r = sync(
        &one_tenant(&emu),
        &["--dry-run", "--report", &path.display().to_string()],
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.last_line().ends_with("exit code 0"), "{}", r.stdout);
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(rep["exitCode"], 0);
    // /dev/full passes the check (it exists and opens for writing) but every write to it fails:
    // the report is lost at the very end, and the last line must say 1, as the process does.
    if std::path::Path::new("/dev/full").exists() {
        let r = sync(&one_tenant(&emu), &["--report", "/dev/full"]).await;
        assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
        assert!(
            r.last_line().contains("the report could not be written")
                && r.last_line().ends_with("exit code 1"),
            "{}",
            r.stdout
        );
        assert!(r.stderr.contains("cannot write the report"), "{}", r.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_is_help_for_every_command() {
    let r = run(&vec![], &["help", "--help"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("COMMAND"), "{}", r.stdout);
    let r = run(&vec![], &["help", "sync"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("--report <FILE>"), "{}", r.stdout);
    let r = run(&vec![], &["help"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("check"), "{}", r.stdout);
    let r = run(&vec![], &["help", "bogus"]).await;
    assert_eq!(r.code, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vv_is_trace_and_v_is_debug() {
    let emu = Emu::start(small()).await;
    let v = run(&one_tenant(&emu), &["check", "-v"]).await;
    assert_eq!(v.code, 0, "{}", v.stderr);
    assert!(v.stderr.contains("DEBUG"), "{}", v.stderr);
    assert!(!v.stderr.contains("TRACE"), "{}", v.stderr);
    let vv = run(&one_tenant(&emu), &["check", "-vv"]).await;
    assert_eq!(vv.code, 0, "{}", vv.stderr);
    assert!(
        vv.stderr.contains("TRACE") && vv.stderr.contains("effective tenant configuration"),
        "{}",
        vv.stderr
    );
    assert!(!vv.all_output().contains(SECRET), "secret printed at trace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_q_prints_only_failures_warnings_and_the_last_line() {
    let emu = Emu::start(small()).await;
    let normal = run(&one_tenant(&emu), &["check"]).await;
    assert_eq!(normal.code, 0, "{}", normal.stderr);
    assert!(normal.stdout.contains("[ok]"), "{}", normal.stdout);
    let q = run(&one_tenant(&emu), &["check", "-q"]).await;
    assert_eq!(q.code, 0, "{}", q.stderr);
    assert_eq!(
        q.stdout.trim(),
        "Check finished: 1 tenant(s) — 1 ok; exit code 0",
        "{}",
        q.stdout
    );
    // A failure is still shown, under its tenant.
    let mut env = endpoints(&emu);
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([tenant_entry(TENANT, "wrong-secret-value-123")]).to_string(),
    ));
    let q = run(&env, &["check", "-q"]).await;
    assert_eq!(q.code, 3, "{}\n{}", q.stdout, q.stderr);
    assert!(!q.stdout.contains("[ok]"), "{}", q.stdout);
    assert!(
        q.stdout.contains("Tenant ") && q.stdout.contains("[FAIL] token"),
        "{}",
        q.stdout
    );
    assert!(q.last_line().ends_with("exit code 3"), "{}", q.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_shows_overridden_login_and_graph_roots() {
    let emu = Emu::start(small()).await;
    let root = format!("{}/", emu.url());
    let c = run(&one_tenant(&emu), &["check"]).await;
    assert!(
        c.stdout.contains(&format!(
            "login {root} from AUTOMATION_SYNCCONTACTS_LOGIN_URL, Graph {root} from AUTOMATION_SYNCCONTACTS_GRAPH_URL"
        )),
        "{}",
        c.stdout
    );
    let mut entry = tenant_entry(TENANT, SECRET);
    entry["LoginUrl"] = json!(emu.url());
    entry["GraphUrl"] = json!(emu.url());
    let env = vec![var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([entry]).to_string(),
    )];
    let c = run(&env, &["check"]).await;
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    assert!(
        c.stdout.contains(&format!(
            "login {root} from LoginUrl, Graph {root} from GraphUrl"
        )),
        "{}",
        c.stdout
    );
}
