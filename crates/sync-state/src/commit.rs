//! Writing a tenant: the diff-commit and the run marker, inside the caller's transaction.
//!
//! A commit compares the new [`TenantState`] with the [`Baseline`] (what the file holds) and
//! writes only the rows that differ, so a run that changed nothing commits in milliseconds. The
//! tenant-wide tables are diffed here; each folder's copy and loose rows in `folder`.
//!
//! Nothing here commits: the caller commits the transaction and only then adopts the returned
//! baseline, so a failure anywhere leaves the file and the baseline as they were.

use crate::folder::{self, Rows, Stmts, order};
use crate::load::{Baseline, encode_counts};
use crate::model::{
    Binding, CommitStats, CopyState, FolderState, LooseContact, PriorMemory, RUN_LOG_LEN, SyncId,
    TenantState,
};
use rusqlite::{Transaction, params};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Counts rows written and, in tests, fails on purpose after a number of them.
pub(crate) struct Writes {
    pub stats: CommitStats,
    pub fail_after: Option<u64>,
}

impl Writes {
    pub fn row(&mut self) -> rusqlite::Result<()> {
        if let Some(n) = self.fail_after.as_mut() {
            if *n == 0 {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR),
                    Some("failure injected by a test".into()),
                ));
            }
            *n -= 1;
        }
        Ok(())
    }
    pub fn inserted(&mut self, n: u64) -> rusqlite::Result<()> {
        self.row()?;
        self.stats.inserted += n;
        Ok(())
    }
    pub fn updated(&mut self, n: u64) -> rusqlite::Result<()> {
        self.row()?;
        self.stats.updated += n;
        Ok(())
    }
    pub fn deleted(&mut self, n: u64) -> rusqlite::Result<()> {
        self.row()?;
        self.stats.deleted += n;
        Ok(())
    }
    /// A row rewritten unchanged, under its folder's new affixes.
    pub fn reencoded(&mut self) -> rusqlite::Result<()> {
        self.row()?;
        self.stats.reencoded += 1;
        Ok(())
    }
}

/// Each folder's rows sorted by key, in `state.folders`' order.
pub(crate) type Sorted<'s> = Vec<Rows<'s>>;

/// Checks that `state` can be stored (no duplicate keys, encodable count names) and sorts each
/// folder's rows for the merge with the stored ones.
pub(crate) fn validate(state: &TenantState) -> Result<Sorted<'_>, String> {
    fn unique<K: Ord>(what: &str, keys: impl Iterator<Item = K>) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        for k in keys {
            if !seen.insert(k) {
                return Err(format!("two {what} with the same key"));
            }
        }
        Ok(())
    }
    unique("pending creates", state.pending_creates.iter())?;
    unique("book entries", state.book.iter().map(|b| b.sync_id))?;
    unique(
        "folders",
        state.folders.iter().map(|f| (&f.mailbox, &f.folder_id)),
    )?;
    let mut sorted = Vec::with_capacity(state.folders.len());
    for f in &state.folders {
        let mut copies: Vec<&CopyState> = f.copies.iter().collect();
        copies.sort_unstable_by_key(|c| order(&c.sync_id));
        if copies.windows(2).any(|w| w[0].sync_id == w[1].sync_id) {
            return Err("two copies with the same SyncId in one folder".into());
        }
        let mut loose: Vec<&LooseContact> = f.loose.iter().collect();
        loose.sort_unstable_by(|a, b| a.contact_id.cmp(&b.contact_id));
        if loose.windows(2).any(|w| w[0].contact_id == w[1].contact_id) {
            return Err("two loose contacts with the same contact id in one folder".into());
        }
        sorted.push(Rows { copies, loose });
    }
    unique("tombstones", state.tombstones.iter().map(|t| t.sync_id))?;
    unique(
        "opt-outs",
        state.opt_outs.iter().map(|o| (&o.mailbox, o.sync_id)),
    )?;
    unique("withdrawals", state.withdrawals.iter().map(|w| w.sync_id))?;
    unique("run records", state.runs.iter().map(|r| r.started))?;
    for r in &state.runs {
        for k in r.counts.keys() {
            if k.is_empty() || k.contains(['=', ',']) || k.chars().any(char::is_control) {
                return Err(format!(
                    "the run count name {k:?} (empty, or with `=`, `,` or a control character)"
                ));
            }
        }
    }
    Ok(sorted)
}

/// Writes `state` over `base`; returns the baseline the file holds once the transaction commits.
pub(crate) fn commit(
    tx: &Transaction<'_>,
    base: &Baseline,
    state: &TenantState,
    sorted: Sorted<'_>,
    w: &mut Writes,
) -> rusqlite::Result<Baseline> {
    let key = upsert_tenant(
        tx,
        base,
        &state.binding,
        state.last_plan_time,
        state.last_commit_time,
        w,
    )?;
    let mut next = Baseline {
        key: Some(key),
        binding: Some(state.binding.clone()),
        last_plan_time: state.last_plan_time,
        last_commit_time: state.last_commit_time,
        ..Baseline::default()
    };
    next.pending = write_pending(tx, key, &base.pending, &state.pending_creates, w)?;
    next.book = sync_rows(
        &base.book,
        state.book.iter().map(|b| (b.sync_id, b.clone())),
        w,
        |k, b| {
            tx.execute(
                "INSERT OR REPLACE INTO book (tenant, sync_id, created_by, data)
                 VALUES (?1, ?2, ?3, ?4)",
                params![key, k, b.created_by, b.data],
            )
            .map(drop)
        },
        |k| {
            tx.execute(
                "DELETE FROM book WHERE tenant = ?1 AND sync_id = ?2",
                params![key, k],
            )
            .map(drop)
        },
    )?;

    let mut stmts = Stmts::prepare(tx)?;
    let wanted: HashMap<(&str, &str), &FolderState> = state
        .folders
        .iter()
        .map(|f| ((f.mailbox.as_str(), f.folder_id.as_str()), f))
        .collect();
    for ((mailbox, folder_id), f) in &base.folders {
        if !wanted.contains_key(&(mailbox.as_str(), folder_id.as_str())) {
            for table in ["copy", "loose"] {
                let n = tx.execute(&format!("DELETE FROM {table} WHERE folder = ?1"), [f.key])?;
                w.deleted(n as u64)?;
            }
            tx.execute("DELETE FROM folder WHERE id = ?1", [f.key])?;
            w.deleted(1)?;
        }
    }
    for (f, rows) in state.folders.iter().zip(sorted) {
        let old = base.folders.get(&(f.mailbox.clone(), f.folder_id.clone()));
        let fb = folder::write_folder(tx, &mut stmts, key, old, f, rows, w)?;
        next.folders
            .insert((f.mailbox.clone(), f.folder_id.clone()), fb);
    }

    next.tombstones = sync_rows(
        &base.tombstones,
        state.tombstones.iter().map(|t| (t.sync_id, t.clone())),
        w,
        |k, t| {
            tx.execute(
                "INSERT OR REPLACE INTO tombstone (tenant, sync_id, observed_at, email_key, name_key, held)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![key, k, t.observed_at, t.email_key, t.name_key, t.held],
            )
            .map(drop)
        },
        |k| {
            tx.execute(
                "DELETE FROM tombstone WHERE tenant = ?1 AND sync_id = ?2",
                params![key, k],
            )
            .map(drop)
        },
    )?;
    next.opt_outs = sync_rows(
        &base.opt_outs,
        state
            .opt_outs
            .iter()
            .map(|o| ((o.mailbox.clone(), o.sync_id), o.clone())),
        w,
        |k, o| {
            tx.execute(
                "INSERT OR REPLACE INTO opt_out (tenant, mailbox, sync_id, since) VALUES (?1, ?2, ?3, ?4)",
                params![key, k.0, k.1, o.since],
            )
            .map(drop)
        },
        |k| {
            tx.execute(
                "DELETE FROM opt_out WHERE tenant = ?1 AND mailbox = ?2 AND sync_id = ?3",
                params![key, k.0, k.1],
            )
            .map(drop)
        },
    )?;
    next.withdrawals = sync_rows(
        &base.withdrawals,
        state.withdrawals.iter().map(|x| (x.sync_id, x.clone())),
        w,
        |k, x| {
            tx.execute(
                "INSERT OR REPLACE INTO withdrawal (tenant, sync_id, owner, since, held)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key, k, x.owner, x.since, x.held],
            )
            .map(drop)
        },
        |k| {
            tx.execute(
                "DELETE FROM withdrawal WHERE tenant = ?1 AND sync_id = ?2",
                params![key, k],
            )
            .map(drop)
        },
    )?;
    // The run log keeps the newest RUN_LOG_LEN records.
    let mut runs: Vec<_> = state.runs.iter().collect();
    runs.sort_by_key(|r| r.started);
    let keep = &runs[runs.len().saturating_sub(RUN_LOG_LEN)..];
    next.runs = sync_rows(
        &base.runs,
        keep.iter().map(|r| (r.started, (*r).clone())),
        w,
        |k, r| {
            tx.execute(
                "INSERT OR REPLACE INTO run (tenant, started, finished, exit_code, counts)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![key, k, r.finished, r.exit_code, encode_counts(&r.counts)],
            )
            .map(drop)
        },
        |k| {
            tx.execute(
                "DELETE FROM run WHERE tenant = ?1 AND started = ?2",
                params![key, k],
            )
            .map(drop)
        },
    )?;
    Ok(next)
}

/// Records the run marker (binding, plan time, pending creates), forgetting the tenant's memory
/// when asked to or when it was bound to another hub. Returns the new baseline.
pub(crate) fn run_start(
    tx: &Transaction<'_>,
    base: &Baseline,
    binding: &Binding,
    plan_time: i64,
    pending: &[SyncId],
    prior: PriorMemory,
    w: &mut Writes,
) -> rusqlite::Result<Baseline> {
    let rebound = base.binding.as_ref().is_some_and(|b| b != binding);
    let key = upsert_tenant(tx, base, binding, Some(plan_time), base.last_commit_time, w)?;
    let mut next = base.clone();
    next.key = Some(key);
    next.binding = Some(binding.clone());
    next.last_plan_time = Some(plan_time);
    next.pending = write_pending(tx, key, &base.pending, pending, w)?;
    if prior == PriorMemory::Forget || rebound {
        for table in ["copy", "loose"] {
            let n = tx.execute(
                &format!(
                    "DELETE FROM {table} WHERE folder IN (SELECT id FROM folder WHERE tenant = ?1)"
                ),
                [key],
            )?;
            w.deleted(n as u64)?;
        }
        for table in ["book", "folder", "tombstone", "opt_out", "withdrawal"] {
            let n = tx.execute(&format!("DELETE FROM {table} WHERE tenant = ?1"), [key])?;
            w.deleted(n as u64)?;
        }
        next.book.clear();
        next.folders.clear();
        next.tombstones.clear();
        next.opt_outs.clear();
        next.withdrawals.clear();
    }
    Ok(next)
}

fn upsert_tenant(
    tx: &Transaction<'_>,
    base: &Baseline,
    binding: &Binding,
    last_plan_time: Option<i64>,
    last_commit_time: Option<i64>,
    w: &mut Writes,
) -> rusqlite::Result<i64> {
    let Some(key) = base.key else {
        tx.execute(
            "INSERT INTO tenant (tenant_id, hub_mailbox_id, hub_folder_id, last_plan_time, last_commit_time)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![binding.tenant_id, binding.hub_mailbox_id, binding.hub_folder_id, last_plan_time, last_commit_time],
        )?;
        w.inserted(1)?;
        return Ok(tx.last_insert_rowid());
    };
    if base.binding.as_ref() != Some(binding)
        || base.last_plan_time != last_plan_time
        || base.last_commit_time != last_commit_time
    {
        tx.execute(
            "UPDATE tenant SET hub_mailbox_id = ?2, hub_folder_id = ?3, last_plan_time = ?4,
                               last_commit_time = ?5
             WHERE id = ?1",
            params![
                key,
                binding.hub_mailbox_id,
                binding.hub_folder_id,
                last_plan_time,
                last_commit_time
            ],
        )?;
        w.updated(1)?;
    }
    Ok(key)
}

fn write_pending(
    tx: &Transaction<'_>,
    key: i64,
    old: &BTreeSet<SyncId>,
    new: &[SyncId],
    w: &mut Writes,
) -> rusqlite::Result<BTreeSet<SyncId>> {
    let new: BTreeSet<SyncId> = new.iter().copied().collect();
    for s in old.difference(&new) {
        tx.execute(
            "DELETE FROM pending_create WHERE tenant = ?1 AND sync_id = ?2",
            params![key, s],
        )?;
        w.deleted(1)?;
    }
    for s in new.difference(old) {
        tx.execute(
            "INSERT INTO pending_create (tenant, sync_id) VALUES (?1, ?2)",
            params![key, s],
        )?;
        w.inserted(1)?;
    }
    Ok(new)
}

/// Diffs a small keyed table: `put(key, value)` (an upsert) for new or changed rows, `del(key)` for
/// rows gone. Returns the new contents.
fn sync_rows<K: Ord + Clone, V: PartialEq>(
    old: &BTreeMap<K, V>,
    new: impl Iterator<Item = (K, V)>,
    w: &mut Writes,
    mut put: impl FnMut(&K, &V) -> rusqlite::Result<()>,
    mut del: impl FnMut(&K) -> rusqlite::Result<()>,
) -> rusqlite::Result<BTreeMap<K, V>> {
    let new: BTreeMap<K, V> = new.collect();
    for k in old.keys().filter(|k| !new.contains_key(k)) {
        del(k)?;
        w.deleted(1)?;
    }
    for (k, v) in &new {
        match old.get(k) {
            Some(o) if o == v => {}
            Some(_) => {
                put(k, v)?;
                w.updated(1)?;
            }
            None => {
                put(k, v)?;
                w.inserted(1)?;
            }
        }
    }
    Ok(new)
}
