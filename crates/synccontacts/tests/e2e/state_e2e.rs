//! The state file at the edges of a run, through the real binary (issue 12): a path or a file
//! the run may not use refuses it before any request (exit 2) — a folder, a file held by another
//! run, a file of a newer synccontacts, `--allow-deletes` without a single tenant — and `check`
//! reports the state (found or not, bound to this tenant and hub or to another, its last run)
//! without ever writing it.

use serde_json::json;

use crate::harness::{
    Emu, EnvVars, SECRET, TENANT, TENANT_B, endpoints, hub_with, one_tenant, run, scenario,
    simple_users, sync, tenant_entry, var,
};

fn with_state(vars: &EnvVars, path: &std::path::Path) -> EnvVars {
    let mut v = vars.clone();
    v.push(var(
        "AUTOMATION_SYNCCONTACTS_STATE",
        path.display().to_string(),
    ));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_path_the_run_cannot_use_refuses_it_before_any_request() {
    let emu = Emu::start(scenario(simple_users())).await;
    let dir = tempfile::tempdir().unwrap();
    // A folder, named by the option and by the variable.
    let r = sync(
        &one_tenant(&emu),
        &["--state", &dir.path().display().to_string()],
    )
    .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--state") && r.stderr.contains("is a folder"),
        "{}",
        r.stderr
    );
    let r = sync(&with_state(&one_tenant(&emu), dir.path()), &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("AUTOMATION_SYNCCONTACTS_STATE"),
        "{}",
        r.stderr
    );
    assert_eq!(emu.any_requests(), 0, "requests were made");

    // A file written by a newer synccontacts: refused, left as it was.
    let path = dir.path().join("state.sqlite");
    let r = sync(&with_state(&one_tenant(&emu), &path), &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes()); // SQLite's user_version: the schema
    std::fs::write(&path, &bytes).unwrap();
    emu.reset();
    for dry in [false, true] {
        let args: &[&str] = if dry { &["--dry-run"] } else { &[] };
        let r = sync(&with_state(&one_tenant(&emu), &path), args).await;
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stderr.contains("newer synccontacts"), "{}", r.stderr);
        assert!(r.stderr.contains("upgrade synccontacts"), "{}", r.stderr);
        assert_eq!(r.report.as_ref().unwrap()["exitCode"], 2);
    }
    assert_eq!(emu.any_requests(), 0, "requests were made");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        bytes,
        "the newer file was changed"
    );
}

/// Two runs on one state file: the second waits 10 s for the lock, then stops with exit code 2
/// and says to use a resource_group — before any request. A dry run needs no lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_held_by_another_run_stops_the_second_after_ten_seconds() {
    let emu = Emu::start(scenario(simple_users())).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let held = sync_state::StateFile::open(
        &path,
        sync_state::Mode::ReadWrite {
            lock_wait: std::time::Duration::ZERO,
        },
    )
    .unwrap();
    let started = std::time::Instant::now();
    let r = sync(&with_state(&one_tenant(&emu), &path), &[]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(started.elapsed() >= std::time::Duration::from_secs(10));
    assert!(
        r.stderr
            .contains("another synccontacts run holds the state file"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("resource_group"), "{}", r.stderr);
    assert_eq!(emu.any_requests(), 0);
    let r = sync(&with_state(&one_tenant(&emu), &path), &["--dry-run"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_deletes_acts_on_one_tenant_only() {
    let emu = Emu::start(scenario(simple_users())).await;
    let mut vars = endpoints(&emu);
    vars.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([tenant_entry(TENANT, SECRET), tenant_entry(TENANT_B, SECRET)]).to_string(),
    ));
    let dir = tempfile::tempdir().unwrap();
    let vars = with_state(&vars, &dir.path().join("state.sqlite"));
    let r = sync(&vars, &["--allow-deletes", "3"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--allow-deletes"), "{}", r.stderr);
    assert!(r.stderr.contains("--tenant KEY"), "{}", r.stderr);
    assert_eq!(emu.any_requests(), 0);
    let r = sync(&vars, &["--allow-deletes", "x"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
}

/// `check` reports the state — missing (and creates nothing), bound to this tenant and hub with
/// the last run's age, bound to another hub folder — and never changes the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_the_state_and_never_writes_it() {
    let emu = Emu::start(scenario(simple_users())).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join("state.sqlite");
    let vars = with_state(&one_tenant(&emu), &path);
    let r = run(&vars, &["check"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("[ok]   no state file at"), "{}", r.stdout);
    assert!(!dir.path().join("sub").exists(), "check created a folder");

    assert_eq!(sync(&vars, &[]).await.code, 0);
    let before = std::fs::read(&path).unwrap();
    let r = run(&vars, &["check"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let bound = r
        .stdout
        .lines()
        .find(|l| l.contains("bound to this tenant"))
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(
        bound.contains(TENANT) && bound.contains("last run"),
        "{bound}"
    );
    assert!(r.stdout.contains("0 tombstones"), "{}", r.stdout);
    assert!(!r.stdout.contains("[warn]"), "{}", r.stdout);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "check changed the state file"
    );

    // The same file against a tenant whose "All Contacts" is another folder.
    let mut users = simple_users();
    users[0] = hub_with(Some(vec![]));
    users[0]["contactFolders"][0]["id"] = json!("AAMkAnotherHubFolder=");
    let other = Emu::start(scenario(users)).await;
    let shown = path.display().to_string();
    let r = run(&one_tenant(&other), &["check", "--state", &shown]).await;
    assert!(
        r.stdout.contains("[warn] state file")
            && r.stdout
                .contains("bound to another \"All Contacts\" folder of this hub"),
        "{}",
        r.stdout
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "check changed the state file"
    );
}

/// A state file `sync` refuses — written by a newer synccontacts — is exit 2 in `check` too, with
/// the same fix, and neither command changes the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_of_a_newer_synccontacts_is_exit_2_in_check_and_sync() {
    let emu = Emu::start(scenario(simple_users())).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let vars = with_state(&one_tenant(&emu), &path);
    assert_eq!(sync(&vars, &[]).await.code, 0);
    // SQLite keeps `user_version` (our schema version) big-endian at byte 60 of the header.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[60..64].copy_from_slice(&99u32.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    emu.reset();
    for args in [&["check"][..], &[][..]] {
        let r = if args.is_empty() {
            sync(&vars, &[]).await
        } else {
            run(&vars, args).await
        };
        let out = format!("{}{}", r.stdout, r.stderr);
        assert_eq!(r.code, 2, "{args:?}\n{out}");
        assert!(out.contains("newer synccontacts"), "{args:?}\n{out}");
        assert!(out.contains("upgrade synccontacts"), "{args:?}\n{out}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{args:?} changed the file"
        );
    }
    assert_eq!(emu.writes(), 0);
}
