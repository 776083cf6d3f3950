//! The run's side of the state file (docs/state-and-deletes.md §1): opened once per run before
//! any request, each tenant's memory loaded and judged (is it this tenant's, this hub's, this
//! folder's?), the run marker recorded before a tenant's first write, the memory the run leaves
//! committed after its writes — one transaction per tenant, so what was written is remembered
//! even when a later tenant fails.
//!
//! The mailboxes are the truth; the state is only memory (STYLE 12): whatever is wrong with it —
//! missing, corrupt, another tenant's or hub's — puts the tenant in first-run mode (`memory:
//! None`), says so once (`"state": "reset: <why>"` and one warning) and never fails the run. Only
//! a file this run may not use at all fails it, before any request (exit 2): another run holds it,
//! a newer synccontacts wrote it, or it cannot be read.
//!
//! A dry run opens the file read-only: it reads, never writes, never moves a corrupt file aside,
//! never records a marker or commits. `map.rs` translates between the file's records and the
//! planner's memory. This module never talks to Graph and never decides a sync rule.

pub mod map;

use std::time::Duration;

use jiff::Timestamp;
use sync_engine::Memory;
use sync_engine::plan::MemoryVerdict;
use sync_state::{
    Binding, CommitStats, Mode, OpenStatus, PriorMemory, StateError, StateFile, TenantState,
};
use tracing::warn;

use crate::config::{Problem, StatePath};

/// How long a real run waits for another run to release the file (docs/state-and-deletes.md
/// §1.3), then stops with exit code 2.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// What the run made of a tenant's state (the report's `"state"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateWord {
    /// No memory of this tenant (a new file, or a tenant it does not hold yet).
    New,
    /// Memory loaded and used.
    Loaded,
    /// Memory found but not used: first-run mode, and why.
    Reset(String),
}

impl std::fmt::Display for StateWord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StateWord::New => f.write_str("new"),
            StateWord::Loaded => f.write_str("loaded"),
            StateWord::Reset(why) => write!(f, "reset: {why}"),
        }
    }
}

impl StateWord {
    /// The word once the planner judged the memory it was given: memory it distrusted (a hub
    /// written after the state was saved) is a reset too.
    pub fn after(self, verdict: &MemoryVerdict) -> StateWord {
        match (self, verdict) {
            (StateWord::Loaded, MemoryVerdict::Distrusted { reason }) => {
                StateWord::Reset(reason.to_string())
            }
            (word, _) => word,
        }
    }
}

/// A tenant's memory as loaded and judged.
pub struct Loaded {
    /// For the planner: `None` is first-run mode.
    pub memory: Option<Memory>,
    pub word: StateWord,
    /// The records it came from (carried into the commit when the memory is used).
    pub state: Option<TenantState>,
}

/// The run's state file.
pub struct Store {
    file: StateFile,
    status: OpenStatus,
    path: StatePath,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path.path)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Opens the state file: read-write with the lock (a real run), or read-only (a dry run,
/// `check`). A file this run may not use is a [`Problem`] (exit 2, before any request).
pub fn open(path: &StatePath, read_only: bool) -> Result<Store, Problem> {
    let mode = if read_only {
        Mode::ReadOnly
    } else {
        Mode::ReadWrite {
            lock_wait: LOCK_WAIT,
        }
    };
    let (file, status) = StateFile::open(&path.path, mode).map_err(|e| refusal(path, &e))?;
    match &status {
        OpenStatus::MovedAside { to, why } => warn!(
            "the state file {} was unusable ({why}): moved to {}; this run starts a fresh memory",
            path.path.display(),
            to.display()
        ),
        OpenStatus::Unusable { why } => warn!(
            "the state file {} is unusable ({why}); this dry run reads no memory (a real run \
             moves it aside and starts afresh)",
            path.path.display()
        ),
        OpenStatus::Migrated { from } => tracing::info!(
            "the state file {} was written by an older synccontacts (schema {from}){}",
            path.path.display(),
            if read_only {
                "; read through an upgraded copy, the file is left as it is"
            } else {
                "; upgraded"
            }
        ),
        _ => {}
    }
    Ok(Store {
        file,
        status,
        path: path.clone(),
    })
}

/// A file the run may not use, as a configuration problem that says what to do.
fn refusal(path: &StatePath, e: &StateError) -> Problem {
    let fix = match e {
        StateError::Locked { .. } => {
            "wait for the other run to finish; in GitLab CI give every job that uses this state \
             file the same resource_group, so runs never overlap"
        }
        StateError::NewerSchema { .. } => {
            "upgrade synccontacts to the version that wrote it, or point --state at another file"
        }
        _ => {
            "check the path and that this job may read and write it; a file that is damaged can \
             be moved away (the next run starts a fresh memory: it deletes nothing, and may bring \
             a deleted contact back once)"
        }
    };
    Problem {
        variable: path.origin.clone(),
        tenant: None,
        field: None,
        problem: e.to_string(),
        fix: fix.into(),
    }
}

/// What a tenant's memory is bound to: the token's tenant GUID (`tid`), the hub's directory
/// object id and the hub folder's id. When the token carries no `tid` (an opaque token) or the
/// hub's directory entry could not be read (a test-user scope without User.Read.All), the
/// configured values stand in, lower-cased (docs/state-and-deletes.md §1.1).
pub fn binding(
    token_tenant: Option<&str>,
    configured_tenant: &str,
    hub_object_id: Option<&str>,
    configured_hub: &str,
    hub_folder_id: &str,
) -> Binding {
    Binding {
        tenant_id: token_tenant
            .unwrap_or(configured_tenant)
            .trim()
            .to_lowercase(),
        hub_mailbox_id: hub_object_id
            .unwrap_or(configured_hub)
            .trim()
            .to_lowercase(),
        hub_folder_id: hub_folder_id.to_owned(),
    }
}

/// What a stored binding is bound to, said against this run's (`now`): another hub, or another
/// folder of the same hub.
pub fn other_binding(stored: &Binding, now: &Binding) -> String {
    if stored.hub_mailbox_id != now.hub_mailbox_id {
        format!(
            "another hub ({}; this run syncs {})",
            stored.hub_mailbox_id, now.hub_mailbox_id
        )
    } else {
        format!(
            "another \"All Contacts\" folder of this hub ({}; this run syncs {})",
            tail(&stored.hub_folder_id),
            tail(&now.hub_folder_id)
        )
    }
}

/// The last few characters of a long id, for messages (folder ids are 120 characters).
fn tail(id: &str) -> String {
    let n = id.chars().count();
    if n <= 16 {
        id.to_owned()
    } else {
        format!("…{}", id.chars().skip(n - 12).collect::<String>())
    }
}

impl Store {
    pub fn path(&self) -> &StatePath {
        &self.path
    }

    pub fn status(&self) -> &OpenStatus {
        &self.status
    }

    pub fn is_read_only(&self) -> bool {
        self.file.is_read_only()
    }

    /// Tenant ids the file holds (for `check`: "bound to another tenant").
    pub fn tenant_ids(&self) -> Vec<String> {
        self.file.tenant_ids().unwrap_or_default()
    }

    /// The records of a tenant, as stored (for `check`).
    pub fn records(&mut self, tenant_id: &str) -> Result<Option<TenantState>, StateError> {
        self.file.tenant(tenant_id)
    }

    /// Loads and judges the memory of `binding`'s tenant; `hub_mailbox` names the hub as this
    /// run's snapshots do. Never fails: anything unusable is first-run mode, said once.
    pub fn load(&mut self, binding: &Binding, hub_mailbox: &str) -> Loaded {
        let first_run = |word: StateWord| Loaded {
            memory: None,
            word,
            state: None,
        };
        let loaded = match &self.status {
            OpenStatus::MovedAside { to, why } => {
                return first_run(StateWord::Reset(format!(
                    "the state file was corrupt ({why}; moved to {})",
                    to.display()
                )));
            }
            OpenStatus::Unusable { why } => {
                return first_run(StateWord::Reset(format!(
                    "the state file is unusable ({why}); a real run moves it aside"
                )));
            }
            _ => self.file.tenant(&binding.tenant_id),
        };
        let state = match loaded {
            Ok(Some(s)) => s,
            Ok(None) => return first_run(StateWord::New),
            Err(e) => {
                warn!(
                    "the state of tenant {} could not be read: {e}",
                    binding.tenant_id
                );
                return first_run(StateWord::Reset(format!(
                    "the state could not be read ({e})"
                )));
            }
        };
        if state.binding != *binding {
            return first_run(StateWord::Reset(format!(
                "the hub folder is not the one this state was made for (it is bound to {})",
                other_binding(&state.binding, binding)
            )));
        }
        Loaded {
            memory: Some(map::to_memory(&state, hub_mailbox)),
            word: StateWord::Loaded,
            state: Some(state),
        }
    }

    /// Records, before the tenant's first write, the run's plan time and the hub creates it plans
    /// (so an interrupted run is repaired next time, never taken for a deletion); forgets the
    /// stored memory when the run did not use it (`trusted` false).
    pub fn record_start(
        &mut self,
        binding: &Binding,
        plan_time: Timestamp,
        pending_creates: &[sync_engine::Guid],
        trusted: bool,
    ) -> Result<(), StateError> {
        let pending: Vec<sync_state::SyncId> = pending_creates.iter().map(|g| g.0).collect();
        self.file.record_run_start(
            binding,
            plan_time.as_microsecond(),
            &pending,
            if trusted {
                PriorMemory::Keep
            } else {
                PriorMemory::Forget
            },
        )
    }

    /// Stores the memory a tenant's run leaves, in one transaction.
    pub fn commit(&mut self, state: &TenantState) -> Result<CommitStats, StateError> {
        self.file.commit_tenant(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: std::path::PathBuf) -> StatePath {
        StatePath::option(p)
    }

    #[test]
    fn the_binding_falls_back_to_the_configured_values_lower_cased() {
        let b = binding(
            None,
            "Contoso.onmicrosoft.com",
            None,
            "Hub@Contoso.com",
            "AAMk=",
        );
        assert_eq!(b.tenant_id, "contoso.onmicrosoft.com");
        assert_eq!(b.hub_mailbox_id, "hub@contoso.com");
        assert_eq!(b.hub_folder_id, "AAMk=", "folder ids are case-sensitive");
        let b = binding(
            Some("B0D5E3C2-0000-4000-8000-000000000001"),
            "x",
            Some("OID"),
            "h",
            "f",
        );
        assert_eq!(b.tenant_id, "b0d5e3c2-0000-4000-8000-000000000001");
        assert_eq!(b.hub_mailbox_id, "oid");
    }

    #[test]
    fn memory_of_another_hub_or_folder_is_a_reset_and_a_missing_tenant_is_new() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path().join("state.sqlite"));
        let b = binding(Some("t"), "t", Some("hub-id"), "hub@c.com", "folder-1");
        let mut store = open(&p, false).unwrap();
        assert_eq!(store.load(&b, "hub@c.com").word, StateWord::New);
        store
            .record_start(&b, Timestamp::UNIX_EPOCH, &[], false)
            .unwrap();
        let l = store.load(&b, "hub@c.com");
        assert_eq!(l.word, StateWord::Loaded);
        assert!(l.memory.is_some());
        let other = binding(Some("t"), "t", Some("hub-id"), "hub@c.com", "folder-2");
        let l = store.load(&other, "hub@c.com");
        assert!(l.memory.is_none());
        assert!(
            l.word
                .to_string()
                .starts_with("reset: the hub folder is not the one this state was made for"),
            "{}",
            l.word
        );
        assert_eq!(
            store
                .load(&binding(Some("u"), "u", None, "h", "f"), "h")
                .word,
            StateWord::New
        );
    }

    #[test]
    fn a_corrupt_file_is_a_reset_moved_aside_by_a_real_run_and_only_reported_by_a_dry_run() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("state.sqlite");
        std::fs::write(&file, b"garbage, not a database".repeat(100)).unwrap();
        let b = binding(Some("t"), "t", None, "hub@c.com", "f");
        let mut ro = open(&path(file.clone()), true).unwrap();
        let word = ro.load(&b, "hub@c.com").word.to_string();
        assert!(
            word.starts_with("reset: the state file is unusable"),
            "{word}"
        );
        drop(ro);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "nothing moved"
        );
        let mut rw = open(&path(file), false).unwrap();
        let word = rw.load(&b, "hub@c.com").word.to_string();
        assert!(
            word.starts_with("reset: the state file was corrupt"),
            "{word}"
        );
        assert!(word.contains("moved to"), "{word}");
    }

    #[test]
    fn a_file_held_by_another_run_or_written_by_a_newer_one_refuses_the_run() {
        let p = path("state.sqlite".into());
        let locked = refusal(
            &p,
            &StateError::Locked {
                path: p.path.clone(),
                waited: LOCK_WAIT,
            },
        );
        assert_eq!(locked.variable, "--state");
        assert!(
            locked.problem.contains("another synccontacts run"),
            "{locked}"
        );
        assert!(locked.fix.contains("resource_group"), "{locked}");
        let newer = refusal(
            &p,
            &StateError::NewerSchema {
                path: p.path.clone(),
                found: 9,
                known: 3,
            },
        );
        assert!(newer.problem.contains("newer synccontacts"), "{newer}");
        assert!(newer.fix.contains("upgrade"), "{newer}");
    }

    #[test]
    fn the_planners_distrust_turns_loaded_into_a_reset() {
        use sync_engine::plan::Distrust;
        let v = MemoryVerdict::Distrusted {
            reason: Distrust::Malformed,
        };
        assert!(
            StateWord::Loaded
                .after(&v)
                .to_string()
                .starts_with("reset: ")
        );
        assert_eq!(StateWord::New.after(&v), StateWord::New);
        assert_eq!(
            StateWord::Loaded.after(&MemoryVerdict::Trusted),
            StateWord::Loaded
        );
    }
}
