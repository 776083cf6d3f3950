//! Writing a tenant: the diff-commit and the run marker, inside the caller's transaction.
//!
//! A commit compares the new [`TenantState`] with the [`Baseline`] (what the file holds) and
//! writes only the rows that differ, so a run that changed nothing commits in milliseconds. Copy
//! rows are encoded against their folder's [`Affix`], which stays as it is while rows come and go;
//! a folder is re-encoded (its affixes recomputed, its rows rewritten) only when more than a
//! quarter of its rows no longer fit or it has doubled since it was last encoded — so that cost
//! is amortised and a commit that changes nothing never pays it.
//!
//! Nothing here commits: the caller commits the transaction and only then adopts the returned
//! baseline, so a failure anywhere leaves the file and the baseline as they were.

use crate::affix::Affix;
use crate::load::{Baseline, CK_WHOLE, FolderBase, ID_WHOLE, RowBase, Stored, encode_counts};
use crate::model::{
    Binding, CommitStats, CopyState, FolderState, PriorMemory, RUN_LOG_LEN, SyncId, TenantState,
};
use rusqlite::{Statement, Transaction, params};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Counts rows written and, in tests, fails on purpose after a number of them.
pub(crate) struct Writes {
    pub stats: CommitStats,
    pub fail_after: Option<u64>,
}

impl Writes {
    fn row(&mut self) -> rusqlite::Result<()> {
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
    fn inserted(&mut self, n: u64) -> rusqlite::Result<()> {
        self.row()?;
        self.stats.inserted += n;
        Ok(())
    }
    fn updated(&mut self, n: u64) -> rusqlite::Result<()> {
        self.row()?;
        self.stats.updated += n;
        Ok(())
    }
    fn deleted(&mut self, n: u64) -> rusqlite::Result<()> {
        self.row()?;
        self.stats.deleted += n;
        Ok(())
    }
}

/// Each folder's copies sorted by SyncId, in `state.folders`' order.
pub(crate) type Sorted<'s> = Vec<Vec<&'s CopyState>>;

/// Checks that `state` can be stored (no duplicate keys, encodable count names) and sorts each
/// folder's copies for the merge with the stored rows.
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
        sorted.push(copies);
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

/// The prepared statements for copy rows, reused across folders.
struct CopyStmts<'t> {
    insert: Statement<'t>,
    update: Statement<'t>,
    delete: Statement<'t>,
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

    let mut stmts = CopyStmts {
        insert: tx.prepare(
            "INSERT INTO copy (folder, sync_id, contact_id, change_key, version, fields_hash, whole,
                               user_text)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?,
        update: tx.prepare(
            "UPDATE copy SET contact_id = ?3, change_key = ?4, version = ?5, fields_hash = ?6,
                             whole = ?7, user_text = ?8
             WHERE folder = ?1 AND sync_id = ?2",
        )?,
        delete: tx.prepare("DELETE FROM copy WHERE folder = ?1 AND sync_id = ?2")?,
    };
    let wanted: HashMap<(&str, &str), &FolderState> = state
        .folders
        .iter()
        .map(|f| ((f.mailbox.as_str(), f.folder_id.as_str()), f))
        .collect();
    for ((mailbox, folder_id), f) in &base.folders {
        if !wanted.contains_key(&(mailbox.as_str(), folder_id.as_str())) {
            let n = tx.execute("DELETE FROM copy WHERE folder = ?1", [f.key])?;
            w.deleted(n as u64)?;
            tx.execute("DELETE FROM folder WHERE id = ?1", [f.key])?;
            w.deleted(1)?;
        }
    }
    for (f, copies) in state.folders.iter().zip(sorted) {
        let old = base.folders.get(&(f.mailbox.clone(), f.folder_id.clone()));
        let fb = write_folder(tx, &mut stmts, key, old, f, copies, w)?;
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
        let n = tx.execute(
            "DELETE FROM copy WHERE folder IN (SELECT id FROM folder WHERE tenant = ?1)",
            [key],
        )?;
        w.deleted(n as u64)?;
        for table in ["folder", "tombstone", "opt_out", "withdrawal"] {
            let n = tx.execute(&format!("DELETE FROM {table} WHERE tenant = ?1"), [key])?;
            w.deleted(n as u64)?;
        }
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

/// SyncId order as an integer: the same order as the BLOBs' (`memcmp`, big-endian), without a
/// `memcmp` call per comparison (sorting and merging 300,000 copies is most of an unchanged
/// commit).
fn order(s: &SyncId) -> u128 {
    u128::from_be_bytes(*s)
}

/// A copy row's stored form under the folder's affixes.
fn encode<'c>(ids: &Affix, cks: &Affix, c: &'c CopyState) -> Stored<'c> {
    let mut whole = 0;
    let id = ids.middle(&c.contact_id).unwrap_or_else(|| {
        whole |= ID_WHOLE;
        &c.contact_id
    });
    let ck = c.change_key.as_deref().map(|k| {
        cks.middle(k).unwrap_or_else(|| {
            whole |= CK_WHOLE;
            k
        })
    });
    Stored {
        id,
        ck,
        whole,
        user_text: c.user_text.as_deref(),
    }
}

/// Inserts or updates (by `stmt`) the row of `c`; returns its baseline.
fn put_copy(
    stmt: &mut Statement<'_>,
    folder: i64,
    c: &CopyState,
    stored: &Stored<'_>,
) -> rusqlite::Result<RowBase> {
    stmt.execute(params![
        folder,
        c.sync_id,
        stored.id,
        stored.ck,
        c.version,
        // The bits of the u64, stored as an i64.
        c.fields_hash as i64,
        stored.whole,
        stored.user_text
    ])?;
    Ok(RowBase::of(c, stored))
}

/// What happens to one copy in a folder diff (with its row encoded under the old affixes).
enum Step<'a> {
    Insert(&'a CopyState, Stored<'a>),
    Update(&'a CopyState, Stored<'a>),
    Keep(&'a CopyState, RowBase),
    Delete(SyncId),
}

fn write_folder(
    tx: &Transaction<'_>,
    stmts: &mut CopyStmts<'_>,
    tenant: i64,
    old: Option<&FolderBase>,
    f: &FolderState,
    copies: Vec<&CopyState>,
    w: &mut Writes,
) -> rusqlite::Result<FolderBase> {
    let n = copies.len() as i64;

    let Some(old) = old else {
        let (ids, cks) = affixes(&copies);
        tx.execute(
            "INSERT INTO folder (tenant, mailbox, folder_id, complete, delta_link, id_prefix,
                                 id_suffix, ck_prefix, ck_suffix, encoded_rows)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                tenant,
                f.mailbox,
                f.folder_id,
                f.complete,
                f.delta_link,
                ids.prefix,
                ids.suffix,
                cks.prefix,
                cks.suffix,
                n
            ],
        )?;
        w.inserted(1)?;
        let key = tx.last_insert_rowid();
        let mut rows = Vec::with_capacity(copies.len());
        for c in copies {
            rows.push(put_copy(&mut stmts.insert, key, c, &encode(&ids, &cks, c))?);
            w.inserted(1)?;
        }
        return Ok(FolderBase {
            key,
            complete: f.complete,
            delta_link: f.delta_link.clone(),
            ids,
            cks,
            encoded_rows: n,
            copies: rows,
        });
    };

    // Merge the sorted new copies with the sorted stored rows.
    let mut steps = Vec::with_capacity(copies.len());
    let (mut i, mut j) = (0, 0);
    while i < copies.len() || j < old.copies.len() {
        let (a, b) = (copies.get(i), old.copies.get(j));
        let cmp = a
            .zip(b)
            .map(|(c, o)| order(&c.sync_id).cmp(&order(&o.sync_id)));
        match (a, b) {
            (Some(&c), Some(o)) if cmp == Some(Ordering::Equal) => {
                let stored = encode(&old.ids, &old.cks, c);
                steps.push(if o.same(c, &stored) {
                    Step::Keep(c, *o)
                } else {
                    Step::Update(c, stored)
                });
                i += 1;
                j += 1;
            }
            (Some(&c), Some(_)) if cmp == Some(Ordering::Less) => {
                steps.push(Step::Insert(c, encode(&old.ids, &old.cks, c)));
                i += 1;
            }
            (Some(&c), None) => {
                steps.push(Step::Insert(c, encode(&old.ids, &old.cks, c)));
                i += 1;
            }
            (_, Some(o)) => {
                steps.push(Step::Delete(o.sync_id));
                j += 1;
            }
            (None, None) => unreachable!("the loop condition"),
        }
    }

    // Re-encode when more than a quarter of the ids (or of the changeKeys) would be stored
    // whole, or the folder has doubled since its affixes were chosen. Right after a re-encode
    // fewer than a quarter are whole (`Affix::of`), so an unchanged folder never re-encodes.
    let (mut whole_ids, mut whole_cks) = (0i64, 0i64);
    for s in &steps {
        let bits = match s {
            Step::Keep(_, row) => row.whole,
            Step::Insert(_, st) | Step::Update(_, st) => st.whole,
            Step::Delete(_) => 0,
        };
        whole_ids += i64::from(bits & ID_WHOLE != 0);
        whole_cks += i64::from(bits & CK_WHOLE != 0);
    }
    let n_cks = copies.iter().filter(|c| c.change_key.is_some()).count() as i64;
    let (mut ids, mut cks, mut encoded_rows) = (old.ids.clone(), old.cks.clone(), old.encoded_rows);
    let mut rewrite = false;
    if n >= 3 && (whole_ids * 4 > n || whole_cks * 4 > n_cks || n > 2 * encoded_rows) {
        (ids, cks) = affixes(&copies);
        encoded_rows = n;
        rewrite = ids != old.ids || cks != old.cks;
    }
    if rewrite
        || encoded_rows != old.encoded_rows
        || old.complete != f.complete
        || old.delta_link != f.delta_link
    {
        tx.execute(
            "UPDATE folder SET complete = ?2, delta_link = ?3, id_prefix = ?4, id_suffix = ?5,
                               ck_prefix = ?6, ck_suffix = ?7, encoded_rows = ?8
             WHERE id = ?1",
            params![
                old.key,
                f.complete,
                f.delta_link,
                ids.prefix,
                ids.suffix,
                cks.prefix,
                cks.suffix,
                encoded_rows
            ],
        )?;
        w.updated(1)?;
    }

    let mut rows = Vec::with_capacity(copies.len());
    if rewrite {
        // New affixes: every row is written again, encoded under them.
        let gone = tx.execute("DELETE FROM copy WHERE folder = ?1", [old.key])?;
        debug_assert_eq!(gone, old.copies.len());
        w.row()?;
        for s in &steps {
            let (Step::Insert(c, _) | Step::Update(c, _) | Step::Keep(c, _)) = s else {
                w.deleted(1)?;
                continue;
            };
            rows.push(put_copy(
                &mut stmts.insert,
                old.key,
                c,
                &encode(&ids, &cks, c),
            )?);
            match s {
                Step::Insert(..) => w.inserted(1)?,
                Step::Update(..) => w.updated(1)?,
                _ => {
                    w.row()?;
                    w.stats.reencoded += 1;
                }
            }
        }
    } else {
        for s in steps {
            match s {
                Step::Keep(_, row) => rows.push(row),
                Step::Insert(c, stored) => {
                    rows.push(put_copy(&mut stmts.insert, old.key, c, &stored)?);
                    w.inserted(1)?;
                }
                Step::Update(c, stored) => {
                    rows.push(put_copy(&mut stmts.update, old.key, c, &stored)?);
                    w.updated(1)?;
                }
                Step::Delete(s) => {
                    stmts.delete.execute(params![old.key, s])?;
                    w.deleted(1)?;
                }
            }
        }
    }
    Ok(FolderBase {
        key: old.key,
        complete: f.complete,
        delta_link: f.delta_link.clone(),
        ids,
        cks,
        encoded_rows,
        copies: rows,
    })
}

fn affixes(copies: &[&CopyState]) -> (Affix, Affix) {
    (
        Affix::of(copies.iter().map(|c| c.contact_id.as_str())),
        Affix::of(copies.iter().filter_map(|c| c.change_key.as_deref())),
    )
}
