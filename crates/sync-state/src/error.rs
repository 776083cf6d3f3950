//! How a state file is opened, what opening found, and what can go wrong — each error's message
//! says what to do about it. Messages name paths, never contents (the file holds no secret, but
//! a message is no place for contact ids either).

use std::path::PathBuf;
use std::time::Duration;

/// How to open a state file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A real run: takes the lock (waiting up to `lock_wait` for another process to release it),
    /// creates the file and its directory when missing, migrates an older schema, moves an
    /// unusable file aside.
    ReadWrite { lock_wait: Duration },
    /// A dry run: never creates, moves, migrates on disk, locks or writes anything.
    ReadOnly,
}

/// What opening found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenStatus {
    /// There was no file; a fresh one was created (read-write).
    Created,
    /// An existing file of the current schema.
    Opened,
    /// An existing file of an older schema, migrated forward (read-only: in memory only).
    Migrated { from: u32 },
    /// The file was unusable (`why`): it was renamed to `to` and a fresh file created
    /// (read-write). The binary reports "reset: the state file was corrupt (moved to …)".
    MovedAside { to: PathBuf, why: String },
    /// Read-only and there is no file: the state is empty, nothing was created.
    Missing,
    /// Read-only and the file is unusable (`why`): it was left as it is and the state is empty.
    /// A real run would move it aside.
    Unusable { why: String },
}

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(
        "another synccontacts run holds the state file {path} (waited {} s for it): runs that \
         share a state file must not overlap (in GitLab CI, give the job a resource_group)",
        waited.as_secs_f32().round()
    )]
    Locked { path: PathBuf, waited: Duration },

    #[error(
        "the state file {path} was written by a newer synccontacts (schema {found}; this one \
         knows up to {known}): upgrade synccontacts, or point --state at another file; the file \
         was left untouched"
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        known: u32,
    },

    #[error("the state file {path} was opened read-only (a dry run); nothing may be written to it")]
    ReadOnly { path: PathBuf },

    #[error("cannot store this state in {path}: {what} (a bug in the caller; nothing was written)")]
    InvalidData { path: PathBuf, what: String },

    #[error(
        "cannot {action} {path}: {source} (check that the path is right and that this user may \
         read and write it)"
    )]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "the state file {path} could not be used ({action}): {source}; any transaction in \
         progress was rolled back (if this repeats, move the file away: the next run starts a \
         fresh memory)"
    )]
    Database {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StateError {
    pub(crate) fn db(path: &std::path::Path, action: &'static str, e: rusqlite::Error) -> Self {
        StateError::Database {
            path: path.to_owned(),
            action,
            source: Box::new(e),
        }
    }

    pub(crate) fn io(path: &std::path::Path, action: &'static str, e: std::io::Error) -> Self {
        StateError::Io {
            path: path.to_owned(),
            action,
            source: e,
        }
    }
}
