//! Two processes on one state file: the second waits `lock_wait`, then gives up with
//! `StateError::Locked`; a holder that dies (killed, no clean-up) releases the lock with it.
//!
//! The holder is this test binary run again with `SYNC_STATE_TEST_HOLD=<path>`: it opens the
//! file, says "holding" on stdout (after the harness's "test … " prefix), and waits to be killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use sync_state::{Mode, OpenStatus, StateError, StateFile};

const HOLD: &str = "SYNC_STATE_TEST_HOLD";
const NAME: &str = "a_second_process_waits_then_gives_up_and_a_killed_holder_releases_the_lock";

#[test]
fn a_second_process_waits_then_gives_up_and_a_killed_holder_releases_the_lock() {
    if let Some(path) = std::env::var_os(HOLD) {
        return hold(path.as_ref());
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", NAME, "--nocapture", "--test-threads=1"])
        .env(HOLD, &path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let holding = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .any(|l| l.ends_with("holding"));
    assert!(holding, "the holder never got the lock");

    let wait = Duration::from_millis(400);
    let start = Instant::now();
    let err = StateFile::open(&path, Mode::ReadWrite { lock_wait: wait }).unwrap_err();
    assert!(matches!(err, StateError::Locked { .. }), "{err}");
    assert!(start.elapsed() >= wait);

    child.kill().unwrap();
    child.wait().unwrap();
    let (_, status) = StateFile::open(
        &path,
        Mode::ReadWrite {
            lock_wait: Duration::from_secs(10),
        },
    )
    .unwrap();
    assert_eq!(status, OpenStatus::Opened);
}

#[allow(
    clippy::disallowed_methods,
    reason = "the holder process idles until the test kills it"
)]
fn hold(path: &std::path::Path) {
    let _file = StateFile::open(
        path,
        Mode::ReadWrite {
            lock_wait: Duration::from_secs(10),
        },
    )
    .unwrap();
    println!("holding");
    // Killed long before this ends; the bound only keeps a stray holder from living forever.
    std::thread::sleep(Duration::from_secs(60));
}
