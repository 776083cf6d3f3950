//! The inter-process lock: an exclusive OS lock (`flock` on Unix, `LockFileEx` on Windows,
//! through `std::fs::File::try_lock`) on `<state>.lock`, held for a read-write `StateFile`'s
//! whole life, so two real runs never share one state file.
//!
//! The lock lives on a separate file rather than on the database itself because SQLite's own
//! locks on the database are per transaction (released between them) and POSIX record locks are
//! dropped when any descriptor of the file closes; an `flock` on a file nobody else opens is held
//! until our descriptor closes — also when the process dies, so a crashed run never leaves a
//! stale lock behind. The lock file is never deleted (deleting it would let a third process lock a
//! new inode while the second still waits on the old one).
//!
//! Read-only opens take no lock (see the crate doc). This module never touches the database.

use crate::StateError;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;
use std::time::{Duration, Instant};

/// How often a waiting process tries again.
const RETRY: Duration = Duration::from_millis(50);

/// Takes the lock on `lock_path` for the state file `state_path`, trying for up to `wait`.
/// The lock is released when the returned file is dropped.
pub(crate) fn acquire(
    lock_path: &Path,
    state_path: &Path,
    wait: Duration,
) -> Result<File, StateError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock_path)
        .map_err(|e| StateError::io(lock_path, "create the lock file", e))?;
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {
                let waited = start.elapsed();
                if waited >= wait {
                    return Err(StateError::Locked {
                        path: state_path.to_owned(),
                        waited,
                    });
                }
                pause(RETRY.min(wait - waited));
            }
            Err(TryLockError::Error(e)) => {
                return Err(StateError::io(lock_path, "lock", e));
            }
        }
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "opening the state file is synchronous and the OS offers no timed flock: waiting for \
              another process is a real sleep, bounded by the caller's lock_wait"
)]
fn pause(d: Duration) {
    std::thread::sleep(d);
}
