//! Writing one folder's rows — its tagged copies and (schema 2) its loose contacts — as a diff
//! against what the file holds, inside the caller's transaction.
//!
//! Both kinds of row store their contact id and changeKey as the middle between the folder's
//! common prefix and suffix ([`Affix`]), chosen from all of the folder's ids and changeKeys. The
//! affixes stay as they are while rows come and go; a folder is re-encoded (affixes recomputed,
//! every row rewritten) only when more than a quarter of its ids or changeKeys no longer fit or
//! it has doubled since it was last encoded — so that cost is amortised and a commit that
//! changes nothing never pays it.
//!
//! This module never decides what a row means; it writes what `commit` hands it.

use crate::affix::Affix;
use crate::commit::Writes;
use crate::load::{CK_WHOLE, FolderBase, ID_WHOLE, LooseBase, LooseKey, RowBase, Stored};
use crate::model::{CopyState, FolderState, LooseContact, SyncId};
use rusqlite::{Statement, Transaction, params};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// A folder's rows as the caller wants them: copies sorted by SyncId, loose contacts by id.
pub(crate) struct Rows<'s> {
    pub copies: Vec<&'s CopyState>,
    pub loose: Vec<&'s LooseContact>,
}

/// The prepared statements for copy and loose rows, reused across folders.
pub(crate) struct Stmts<'t> {
    insert: Statement<'t>,
    update: Statement<'t>,
    delete: Statement<'t>,
    loose_insert: Statement<'t>,
    loose_update: Statement<'t>,
    loose_delete: Statement<'t>,
}

impl<'t> Stmts<'t> {
    pub fn prepare(tx: &'t Transaction<'_>) -> rusqlite::Result<Stmts<'t>> {
        Ok(Stmts {
            insert: tx.prepare(
                "INSERT INTO copy (folder, sync_id, contact_id, change_key, version, fields_hash,
                                   whole, user_text, email_key, name_key)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?,
            update: tx.prepare(
                "UPDATE copy SET contact_id = ?3, change_key = ?4, version = ?5, fields_hash = ?6,
                                 whole = ?7, user_text = ?8, email_key = ?9, name_key = ?10
                 WHERE folder = ?1 AND sync_id = ?2",
            )?,
            delete: tx.prepare("DELETE FROM copy WHERE folder = ?1 AND sync_id = ?2")?,
            loose_insert: tx.prepare(
                "INSERT INTO loose (folder, id_whole, contact_id, change_key, ck_whole,
                                    last_modified, data)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?,
            loose_update: tx.prepare(
                "UPDATE loose SET change_key = ?4, ck_whole = ?5, last_modified = ?6, data = ?7
                 WHERE folder = ?1 AND id_whole = ?2 AND contact_id = ?3",
            )?,
            loose_delete: tx.prepare(
                "DELETE FROM loose WHERE folder = ?1 AND id_whole = ?2 AND contact_id = ?3",
            )?,
        })
    }
}

/// SyncId order as an integer: the same order as the BLOBs' (`memcmp`, big-endian), without a
/// `memcmp` call per comparison (sorting and merging 300,000 copies is most of an unchanged
/// commit).
pub(crate) fn order(s: &SyncId) -> u128 {
    u128::from_be_bytes(*s)
}

/// `v`'s middle under `affix`, or `v` itself and `true` (stored whole).
fn fit<'v>(affix: &Affix, v: &'v str) -> (&'v str, bool) {
    affix.middle(v).map_or((v, true), |m| (m, false))
}

/// A copy row's stored form under the folder's affixes.
fn encode<'c>(ids: &Affix, cks: &Affix, c: &'c CopyState) -> Stored<'c> {
    let (id, id_whole) = fit(ids, &c.contact_id);
    let mut whole = if id_whole { ID_WHOLE } else { 0 };
    let ck = c.change_key.as_deref().map(|k| {
        let (k, ck_whole) = fit(cks, k);
        if ck_whole {
            whole |= CK_WHOLE;
        }
        k
    });
    Stored {
        id,
        ck,
        whole,
        user_text: c.user_text.as_deref(),
        email_key: c.email_key.as_deref(),
        name_key: c.name_key.as_deref(),
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
        stored.user_text,
        stored.email_key,
        stored.name_key
    ])?;
    Ok(RowBase::of(c, stored))
}

/// A loose row's stored form under the folder's affixes.
struct LooseStored<'a> {
    id: &'a str,
    id_whole: bool,
    ck: Option<&'a str>,
    ck_whole: bool,
}

impl LooseStored<'_> {
    fn of<'l>(ids: &Affix, cks: &Affix, l: &'l LooseContact) -> LooseStored<'l> {
        let (id, id_whole) = fit(ids, &l.contact_id);
        let (ck, ck_whole) = match l.change_key.as_deref() {
            Some(k) => {
                let (k, whole) = fit(cks, k);
                (Some(k), whole)
            }
            None => (None, false),
        };
        LooseStored {
            id,
            id_whole,
            ck,
            ck_whole,
        }
    }

    fn key(&self) -> LooseKey {
        (self.id_whole, self.id.to_owned())
    }

    /// Whether `row` (stored under the same affixes) holds exactly `l`.
    fn same(&self, l: &LooseContact, row: &LooseBase) -> bool {
        row.last_modified == l.last_modified
            && row.ck_whole == self.ck_whole
            && row.ck.as_deref() == self.ck
            && row.data == l.data
    }

    /// Inserts or updates (by `stmt`) the row of `l`; returns its baseline.
    fn put(
        &self,
        stmt: &mut Statement<'_>,
        folder: i64,
        l: &LooseContact,
    ) -> rusqlite::Result<(LooseKey, LooseBase)> {
        stmt.execute(params![
            folder,
            self.id_whole,
            self.id,
            self.ck,
            self.ck_whole,
            l.last_modified,
            l.data
        ])?;
        let row = LooseBase {
            ck: self.ck.map(str::to_owned),
            ck_whole: self.ck_whole,
            last_modified: l.last_modified,
            data: l.data.clone(),
        };
        Ok((self.key(), row))
    }
}

/// What happens to one copy in a folder diff (with its row encoded under the old affixes).
enum Step<'a> {
    Insert(&'a CopyState, Stored<'a>),
    Update(&'a CopyState, Stored<'a>),
    Keep(&'a CopyState, RowBase),
    Delete(SyncId),
}

/// Writes folder `f` of `tenant` over `old` (`None`: a new folder); returns its baseline once
/// the transaction commits.
pub(crate) fn write_folder(
    tx: &Transaction<'_>,
    stmts: &mut Stmts<'_>,
    tenant: i64,
    old: Option<&FolderBase>,
    f: &FolderState,
    rows: Rows<'_>,
    w: &mut Writes,
) -> rusqlite::Result<FolderBase> {
    let Rows { copies, loose } = rows;
    let n = (copies.len() + loose.len()) as i64;

    let Some(old) = old else {
        let (ids, cks) = affixes(&copies, &loose);
        tx.execute(
            "INSERT INTO folder (tenant, mailbox, folder_id, complete, delta_link, id_prefix,
                                 id_suffix, ck_prefix, ck_suffix, encoded_rows, read_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
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
                n,
                f.read_at
            ],
        )?;
        w.inserted(1)?;
        let key = tx.last_insert_rowid();
        let mut rows = Vec::with_capacity(copies.len());
        for c in copies {
            rows.push(put_copy(&mut stmts.insert, key, c, &encode(&ids, &cks, c))?);
            w.inserted(1)?;
        }
        let mut loose_rows = BTreeMap::new();
        for l in loose {
            let (k, row) = LooseStored::of(&ids, &cks, l).put(&mut stmts.loose_insert, key, l)?;
            w.inserted(1)?;
            loose_rows.insert(k, row);
        }
        return Ok(FolderBase {
            key,
            complete: f.complete,
            delta_link: f.delta_link.clone(),
            read_at: f.read_at,
            ids,
            cks,
            encoded_rows: n,
            copies: rows,
            loose: loose_rows,
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
    // Loose contacts are few: encoded under the old affixes, looked up by their stored key.
    let loose_old: Vec<(&LooseContact, LooseStored<'_>)> = loose
        .iter()
        .map(|&l| (l, LooseStored::of(&old.ids, &old.cks, l)))
        .collect();

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
    for (_, st) in &loose_old {
        whole_ids += i64::from(st.id_whole);
        whole_cks += i64::from(st.ck_whole);
    }
    let n_cks = copies.iter().filter(|c| c.change_key.is_some()).count()
        + loose.iter().filter(|l| l.change_key.is_some()).count();
    let n_cks = n_cks as i64;
    let (mut ids, mut cks, mut encoded_rows) = (old.ids.clone(), old.cks.clone(), old.encoded_rows);
    let mut rewrite = false;
    if n >= 3 && (whole_ids * 4 > n || whole_cks * 4 > n_cks || n > 2 * encoded_rows) {
        (ids, cks) = affixes(&copies, &loose);
        encoded_rows = n;
        rewrite = ids != old.ids || cks != old.cks;
    }
    if rewrite
        || encoded_rows != old.encoded_rows
        || old.complete != f.complete
        || old.delta_link != f.delta_link
        || old.read_at != f.read_at
    {
        tx.execute(
            "UPDATE folder SET complete = ?2, delta_link = ?3, id_prefix = ?4, id_suffix = ?5,
                               ck_prefix = ?6, ck_suffix = ?7, encoded_rows = ?8, read_at = ?9
             WHERE id = ?1",
            params![
                old.key,
                f.complete,
                f.delta_link,
                ids.prefix,
                ids.suffix,
                cks.prefix,
                cks.suffix,
                encoded_rows,
                f.read_at
            ],
        )?;
        w.updated(1)?;
    }

    let mut rows = Vec::with_capacity(copies.len());
    let mut loose_rows = BTreeMap::new();
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
                _ => w.reencoded()?,
            }
        }
        let gone = tx.execute("DELETE FROM loose WHERE folder = ?1", [old.key])?;
        debug_assert_eq!(gone, old.loose.len());
        w.row()?;
        let mut matched = 0;
        for (l, was) in &loose_old {
            let (k, row) =
                LooseStored::of(&ids, &cks, l).put(&mut stmts.loose_insert, old.key, l)?;
            loose_rows.insert(k, row);
            match old.loose.get(&was.key()) {
                Some(row) if was.same(l, row) => w.reencoded()?,
                Some(_) => w.updated(1)?,
                None => w.inserted(1)?,
            }
            matched += usize::from(old.loose.contains_key(&was.key()));
        }
        for _ in matched..old.loose.len() {
            w.deleted(1)?;
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
        let wanted: BTreeSet<LooseKey> = loose_old.iter().map(|(_, st)| st.key()).collect();
        for k in old.loose.keys().filter(|k| !wanted.contains(*k)) {
            stmts.loose_delete.execute(params![old.key, k.0, k.1])?;
            w.deleted(1)?;
        }
        for (l, st) in &loose_old {
            let key = st.key();
            match old.loose.get(&key) {
                Some(row) if st.same(l, row) => {
                    loose_rows.insert(key, row.clone());
                }
                Some(_) => {
                    let (k, row) = st.put(&mut stmts.loose_update, old.key, l)?;
                    w.updated(1)?;
                    loose_rows.insert(k, row);
                }
                None => {
                    let (k, row) = st.put(&mut stmts.loose_insert, old.key, l)?;
                    w.inserted(1)?;
                    loose_rows.insert(k, row);
                }
            }
        }
    }
    Ok(FolderBase {
        key: old.key,
        complete: f.complete,
        delta_link: f.delta_link.clone(),
        read_at: f.read_at,
        ids,
        cks,
        encoded_rows,
        copies: rows,
        loose: loose_rows,
    })
}

/// The affixes of a folder's ids and changeKeys, copies and loose contacts together (both kinds
/// of row are encoded under them).
fn affixes(copies: &[&CopyState], loose: &[&LooseContact]) -> (Affix, Affix) {
    let ids = copies
        .iter()
        .map(|c| c.contact_id.as_str())
        .chain(loose.iter().map(|l| l.contact_id.as_str()));
    let cks = copies
        .iter()
        .filter_map(|c| c.change_key.as_deref())
        .chain(loose.iter().filter_map(|l| l.change_key.as_deref()));
    (Affix::of(ids), Affix::of(cks))
}
