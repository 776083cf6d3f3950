//! synccontacts' memory between runs: the state file (docs/state-and-deletes.md §1).
//!
//! One SQLite database (SQLite bundled, no system library) holds, per tenant, what the last run
//! left behind: the binding (tenant, hub mailbox, hub folder), the run marker, pending creates,
//! the book (each logical contact's converged field values), per folder the tagged copies with
//! their changeKey / version / fingerprint and every other ("loose") contact, tombstones,
//! opt-outs, withdrawals, delta links and a short run log. This crate is the *persistence* of that
//! memory and nothing more: the schema and its forward migrations, the inter-process lock, what
//! to do with a corrupt or foreign file, the compact encoding and the diff-commit. Its types are
//! plain data of its own; the binary maps them to and from the planner's memory model.
//!
//! The mailboxes are the truth and this file is only memory (STYLE 12): everything here may be
//! missing, stale or from elsewhere, and the caller decides whether to trust it. This crate
//! therefore never decides anything about contacts.
//!
//! It must never:
//! - talk to Graph, plan, or interpret what it stores (no rules about tombstones or trust);
//! - read the environment or configuration (paths and waits are arguments);
//! - store a secret: the file holds ids, changeKeys, hashes, times, counts and the contact data
//!   the engine hands it (field values and notes, opaque bytes here) — never a token, a client
//!   secret or a key — and errors name paths, never contents;
//! - look inside the book's or loose contacts' data: the engine encodes and decodes it;
//! - write anything when opened [`Mode::ReadOnly`] (a dry run): no file, directory, lock file,
//!   rename, migration or commit — a corrupt file is only reported, an older schema migrated in
//!   memory;
//! - overwrite a file it cannot use: an unusable file is renamed to `<path>.corrupt-<UTC
//!   timestamp>` and a fresh one started; a file of a newer schema is refused, untouched;
//! - share the file between two processes: a read-write `StateFile` holds an exclusive OS lock
//!   on `<path>.lock` for its whole life.
//!
//! # Journal mode
//! The file uses SQLite's rollback journal (`journal_mode = DELETE`, `synchronous = FULL`), not
//! WAL. At rest it is exactly one file, so a CI cache or a package-registry upload that saves
//! only `state.sqlite` saves everything (a WAL file would hold the last commits beside it); it
//! needs no shared-memory `-shm` file, which WAL requires and which does not work on network
//! file systems a CI cache volume may be; and a read-only open creates nothing (a WAL reader
//! must create or write `-shm`). WAL's advantage, readers not blocking the writer, buys nothing
//! here: the only concurrent reader is a dry run, and the writer waits at most the few hundred
//! milliseconds a load takes (SQLite's busy timeout).
//!
//! # Why a read-only open needs no lock
//! A read-write `StateFile` excludes other read-write ones through `<path>.lock`. A read-only one
//! reads each tenant inside one SQLite read transaction, which holds SQLite's SHARED lock on the
//! database: a concurrent writer cannot commit until the read ends (its commit waits, busy
//! timeout), and a reader cannot start while a commit is being written (the writer's PENDING /
//! EXCLUSIVE locks), so every load sees one committed state, never a mix. A commit interrupted by
//! a crash leaves a hot journal that only a writer may roll back; a read-only open reports that
//! file [`OpenStatus::Unusable`] until a real run has recovered it.
//!
//! # Size
//! Copy rows live in a `WITHOUT ROWID` table keyed by (folder, SyncId); a SyncId is a 16-byte
//! BLOB, times and hashes integers, and contact ids and changeKeys — of copies and of loose
//! contacts alike — are stored as the middle between their folder's common prefix and suffix
//! (module `affix`). See the crate README for the measured bytes per copy and timings.

mod affix;
mod commit;
mod error;
mod folder;
mod load;
mod lock;
mod model;
mod open;
mod schema;
#[cfg(test)]
mod tests;

pub use error::{Mode, OpenStatus, StateError};
pub use model::{
    Binding, BookEntry, CommitStats, CopyState, FolderState, LooseContact, OptOut, PriorMemory,
    RUN_LOG_LEN, RunRecord, SyncId, TenantState, Tombstone, UnixMicros, Withdrawal,
};

use load::Baseline;
use rusqlite::{Connection, TransactionBehavior};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// An open state file. Read-write: holds the lock until dropped. Read-only: may hold no database
/// at all (missing or unusable file), and then every tenant is absent.
pub struct StateFile {
    path: PathBuf,
    conn: Option<Connection>,
    read_only: bool,
    _lock: Option<std::fs::File>,
    /// Per tenant id, what the file holds (see `load`), for diff-commits.
    baselines: HashMap<String, Baseline>,
    #[cfg(test)]
    fail_after_writes: Option<u64>,
}

impl std::fmt::Debug for StateFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateFile")
            .field("path", &self.path)
            .field("read_only", &self.read_only)
            .field("has_database", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl StateFile {
    /// Opens (read-write: creating, migrating or moving aside as needed) the state file at
    /// `path`. Refuses a file of a newer schema ([`StateError::NewerSchema`]) and, read-write, a
    /// file another process holds for longer than `lock_wait` ([`StateError::Locked`]).
    pub fn open(path: impl AsRef<Path>, mode: Mode) -> Result<(StateFile, OpenStatus), StateError> {
        open::open(path.as_ref(), mode, &schema::SCHEMA)
    }

    fn new(path: &Path, conn: Option<Connection>, lock: Option<std::fs::File>) -> StateFile {
        StateFile {
            path: path.to_owned(),
            read_only: lock.is_none(),
            conn,
            _lock: lock,
            baselines: HashMap::new(),
            #[cfg(test)]
            fail_after_writes: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The tenant ids the file holds, sorted.
    pub fn tenant_ids(&self) -> Result<Vec<String>, StateError> {
        let Some(conn) = &self.conn else {
            return Ok(Vec::new());
        };
        load::tenant_ids(conn).map_err(|e| StateError::db(&self.path, "list the tenants", e))
    }

    /// The memory of `tenant_id`, or `None` when the file does not hold it. Read in one
    /// transaction: a consistent snapshot. Also becomes the baseline the next commit of this
    /// tenant is compared with.
    pub fn tenant(&mut self, tenant_id: &str) -> Result<Option<TenantState>, StateError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        let (state, base) = read(conn, tenant_id, true)
            .map_err(|e| StateError::db(&self.path, "read a tenant", e))?;
        self.baselines.insert(tenant_id.to_owned(), base);
        Ok(state)
    }

    /// Records that a real run is about to write to `binding`'s tenant: the binding, the run's
    /// plan time (`last_plan_time`) and the SyncIds it plans to create in the hub (replacing the
    /// previous ones), in one small transaction. Call it before the run's first write.
    ///
    /// `prior`: [`PriorMemory::Forget`] when the run does not trust the stored memory; memory
    /// bound to another hub or folder is always forgotten (never kept under a new binding).
    pub fn record_run_start(
        &mut self,
        binding: &Binding,
        plan_time: UnixMicros,
        pending_creates: &[SyncId],
        prior: PriorMemory,
    ) -> Result<(), StateError> {
        let mut seen = std::collections::BTreeSet::new();
        if !pending_creates.iter().all(|s| seen.insert(s)) {
            return Err(self.invalid("two pending creates with the same SyncId".into()));
        }
        self.write(&binding.tenant_id, "record the run start", |tx, base, w| {
            commit::run_start(tx, base, binding, plan_time, pending_creates, prior, w)
        })
        .map(drop)
    }

    /// Stores `state` as the memory of its tenant (`state.binding.tenant_id`), atomically: one
    /// transaction that writes only the rows that differ from what the file holds. The run log is
    /// cut to the newest [`RUN_LOG_LEN`] records. Folders, copies, tombstones… absent from
    /// `state` are deleted; other tenants are not touched.
    pub fn commit_tenant(&mut self, state: &TenantState) -> Result<CommitStats, StateError> {
        let sorted = commit::validate(state).map_err(|what| self.invalid(what))?;
        self.write(
            &state.binding.tenant_id,
            "commit a tenant",
            |tx, base, w| commit::commit(tx, base, state, sorted, w),
        )
    }

    fn invalid(&self, what: String) -> StateError {
        StateError::InvalidData {
            path: self.path.clone(),
            what,
        }
    }

    /// Runs `f` in an immediate write transaction against the tenant's baseline; adopts the
    /// baseline `f` returns only once the transaction committed. On failure the baseline is
    /// dropped, so the next write reloads it from the file.
    fn write(
        &mut self,
        tenant_id: &str,
        action: &'static str,
        f: impl FnOnce(
            &rusqlite::Transaction<'_>,
            &Baseline,
            &mut commit::Writes,
        ) -> rusqlite::Result<Baseline>,
    ) -> Result<CommitStats, StateError> {
        if self.read_only {
            return Err(StateError::ReadOnly {
                path: self.path.clone(),
            });
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(StateError::ReadOnly {
                path: self.path.clone(),
            });
        };
        #[cfg(test)]
        let fail_after = self.fail_after_writes;
        #[cfg(not(test))]
        let fail_after = None;
        let mut w = commit::Writes {
            stats: CommitStats::default(),
            fail_after,
        };
        let base = match self.baselines.remove(tenant_id) {
            Some(b) => b,
            None => {
                read(conn, tenant_id, false)
                    .map_err(|e| StateError::db(&self.path, action, e))?
                    .1
            }
        };
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let next = f(&tx, &base, &mut w)?;
            tx.commit()?;
            Ok(next)
        })();
        let next = result.map_err(|e| StateError::db(&self.path, action, e))?;
        self.baselines.insert(tenant_id.to_owned(), next);
        Ok(w.stats)
    }
}

fn read(
    conn: &mut Connection,
    tenant_id: &str,
    want_state: bool,
) -> rusqlite::Result<(Option<TenantState>, Baseline)> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let loaded = load::load(&tx, tenant_id, want_state)?;
    tx.commit()?;
    Ok(loaded)
}
