//! Reading a tenant back, and the *baseline* a diff-commit compares against.
//!
//! The baseline is what the file holds for a tenant, kept in memory after a load or a commit so
//! the next commit writes only the rows that differ. For copies (hundreds of thousands) it keeps
//! the SyncId, the two integers and a 64-bit hash of the strings *as stored* (the short middles,
//! see `affix`) — not the strings — and which of them are stored whole. It is exact for
//! everything else, the book's and loose contacts' data included: those are few (one per
//! logical contact, a few per folder), and a stale blob would not fail safe the way a stale
//! changeKey does. It is only ever built from the file or from a transaction that committed, so
//! it never runs ahead of the file.
//!
//! This module only reads.

use crate::affix::Affix;
use crate::model::{
    Binding, BookEntry, CopyState, FolderState, LooseContact, OptOut, RunRecord, SyncId,
    TenantState, Tombstone, Withdrawal,
};
use rusqlite::{Connection, OptionalExtension, Transaction};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

/// What the file holds for one tenant (see the module doc).
#[derive(Clone, Debug, Default)]
pub(crate) struct Baseline {
    /// The tenant's row id; `None` when the tenant is not in the file.
    pub key: Option<i64>,
    pub binding: Option<Binding>,
    pub last_plan_time: Option<i64>,
    pub last_commit_time: Option<i64>,
    pub pending: BTreeSet<SyncId>,
    pub book: BTreeMap<SyncId, BookEntry>,
    /// By `(mailbox, folder_id)`.
    pub folders: HashMap<(String, String), FolderBase>,
    pub tombstones: BTreeMap<SyncId, Tombstone>,
    pub opt_outs: BTreeMap<(String, SyncId), OptOut>,
    pub withdrawals: BTreeMap<SyncId, Withdrawal>,
    pub runs: BTreeMap<i64, RunRecord>,
}

#[derive(Clone, Debug)]
pub(crate) struct FolderBase {
    pub key: i64,
    pub complete: bool,
    pub delta_link: Option<String>,
    pub read_at: Option<i64>,
    pub ids: Affix,
    pub cks: Affix,
    pub encoded_rows: i64,
    /// Sorted by SyncId.
    pub copies: Vec<RowBase>,
    pub loose: BTreeMap<LooseKey, LooseBase>,
}

/// A loose row's key as stored: whether the contact id is stored whole, and the stored text (the
/// middle under the folder's affixes, or the whole id).
pub(crate) type LooseKey = (bool, String);

/// The rest of a loose row, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LooseBase {
    pub ck: Option<String>,
    pub ck_whole: bool,
    pub last_modified: i64,
    pub data: Vec<u8>,
}

/// One copy row as the diff sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RowBase {
    pub sync_id: SyncId,
    pub version: i64,
    pub fields_hash: u64,
    /// [`Stored::hash`] of the row's strings as stored.
    pub strings: u64,
    /// Which of its strings are stored whole ([`ID_WHOLE`], [`CK_WHOLE`]).
    pub whole: u8,
}

/// A copy row's strings as stored: the middles under the folder's affixes (or whole values,
/// flagged). Under one pair of affixes the stored form determines the values, so comparing it
/// compares them — and it is short (the middles), so comparing is cheap.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stored<'a> {
    pub id: &'a str,
    pub ck: Option<&'a str>,
    pub whole: u8,
    pub user_text: Option<&'a str>,
    pub email_key: Option<&'a str>,
    pub name_key: Option<&'a str>,
}

impl Stored<'_> {
    /// A 64-bit SipHash: a changed row goes unwritten only on a 2^-64 collision, and even then
    /// in the safe direction (a stale changeKey reads as "edited by someone",
    /// docs/state-and-deletes.md §2).
    pub fn hash(&self) -> u64 {
        let mut h = DefaultHasher::new();
        (
            self.id,
            self.ck,
            self.whole,
            self.user_text,
            self.email_key,
            self.name_key,
        )
            .hash(&mut h);
        h.finish()
    }
}

impl RowBase {
    pub fn of(c: &CopyState, stored: &Stored<'_>) -> RowBase {
        RowBase {
            sync_id: c.sync_id,
            version: c.version,
            fields_hash: c.fields_hash,
            strings: stored.hash(),
            whole: stored.whole,
        }
    }

    /// Whether this row holds exactly `c`, stored as `stored` under the same affixes.
    pub fn same(&self, c: &CopyState, stored: &Stored<'_>) -> bool {
        self.version == c.version
            && self.fields_hash == c.fields_hash
            && self.whole == stored.whole
            && self.strings == stored.hash()
    }
}

/// `whole` bits of a copy row.
pub(crate) const ID_WHOLE: u8 = 1;
pub(crate) const CK_WHOLE: u8 = 2;

/// Tenant ids in the file, sorted.
pub(crate) fn tenant_ids(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT tenant_id FROM tenant ORDER BY tenant_id")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

/// Loads a tenant in one read transaction (a consistent snapshot even while another process
/// commits). `want_state: false` builds only the baseline.
pub(crate) fn load(
    tx: &Transaction<'_>,
    tenant_id: &str,
    want_state: bool,
) -> rusqlite::Result<(Option<TenantState>, Baseline)> {
    let row = tx
        .query_row(
            "SELECT id, hub_mailbox_id, hub_folder_id, last_plan_time, last_commit_time
             FROM tenant WHERE tenant_id = ?1",
            [tenant_id],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            },
        )
        .optional()?;
    let Some((key, hub_mailbox_id, hub_folder_id, last_plan_time, last_commit_time)) = row else {
        return Ok((None, Baseline::default()));
    };
    let binding = Binding {
        tenant_id: tenant_id.to_owned(),
        hub_mailbox_id,
        hub_folder_id,
    };
    let mut base = Baseline {
        key: Some(key),
        binding: Some(binding.clone()),
        last_plan_time,
        last_commit_time,
        ..Baseline::default()
    };
    let mut state = TenantState {
        binding,
        last_plan_time,
        last_commit_time,
        ..TenantState::default()
    };

    let mut stmt =
        tx.prepare("SELECT sync_id FROM pending_create WHERE tenant = ?1 ORDER BY sync_id")?;
    base.pending = stmt
        .query_map([key], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    state.pending_creates = base.pending.iter().copied().collect();

    let mut stmt = tx
        .prepare("SELECT sync_id, created_by, data FROM book WHERE tenant = ?1 ORDER BY sync_id")?;
    for b in stmt.query_map([key], |r| {
        Ok(BookEntry {
            sync_id: r.get(0)?,
            created_by: r.get(1)?,
            data: r.get(2)?,
        })
    })? {
        let b = b?;
        base.book.insert(b.sync_id, b);
    }
    if want_state {
        state.book = base.book.values().cloned().collect();
    }

    let mut stmt = tx.prepare(
        "SELECT id, mailbox, folder_id, complete, delta_link, id_prefix, id_suffix, ck_prefix,
                ck_suffix, encoded_rows, read_at
         FROM folder WHERE tenant = ?1 ORDER BY mailbox, folder_id",
    )?;
    let mut copies = tx.prepare(
        "SELECT sync_id, contact_id, change_key, version, fields_hash, whole, user_text,
                email_key, name_key
         FROM copy WHERE folder = ?1 ORDER BY sync_id",
    )?;
    let mut loose = tx.prepare(
        "SELECT id_whole, contact_id, change_key, ck_whole, last_modified, data
         FROM loose WHERE folder = ?1",
    )?;
    let mut rows = stmt.query([key])?;
    while let Some(r) = rows.next()? {
        let mut f = FolderBase {
            key: r.get(0)?,
            complete: r.get(3)?,
            delta_link: r.get(4)?,
            read_at: r.get(10)?,
            ids: Affix {
                prefix: r.get(5)?,
                suffix: r.get(6)?,
            },
            cks: Affix {
                prefix: r.get(7)?,
                suffix: r.get(8)?,
            },
            encoded_rows: r.get(9)?,
            copies: Vec::new(),
            loose: BTreeMap::new(),
        };
        let mut folder = FolderState {
            mailbox: r.get(1)?,
            folder_id: r.get(2)?,
            complete: f.complete,
            delta_link: f.delta_link.clone(),
            read_at: f.read_at,
            copies: Vec::new(),
            loose: Vec::new(),
        };
        let mut crows = copies.query([f.key])?;
        while let Some(c) = crows.next()? {
            let whole: u8 = c.get(5)?;
            let stored = Stored {
                id: c.get_ref(1)?.as_str()?,
                ck: c.get_ref(2)?.as_str_or_null()?,
                whole,
                user_text: c.get_ref(6)?.as_str_or_null()?,
                email_key: c.get_ref(7)?.as_str_or_null()?,
                name_key: c.get_ref(8)?.as_str_or_null()?,
            };
            let row = RowBase {
                sync_id: c.get(0)?,
                version: c.get(3)?,
                // The bits of the u64, stored as an i64.
                fields_hash: c.get::<_, i64>(4)? as u64,
                strings: stored.hash(),
                whole,
            };
            f.copies.push(row);
            if want_state {
                folder.copies.push(CopyState {
                    sync_id: row.sync_id,
                    contact_id: if whole & ID_WHOLE != 0 {
                        stored.id.to_owned()
                    } else {
                        f.ids.join(stored.id)
                    },
                    change_key: stored.ck.map(|k| {
                        if whole & CK_WHOLE != 0 {
                            k.to_owned()
                        } else {
                            f.cks.join(k)
                        }
                    }),
                    version: row.version,
                    fields_hash: row.fields_hash,
                    user_text: stored.user_text.map(str::to_owned),
                    email_key: stored.email_key.map(str::to_owned),
                    name_key: stored.name_key.map(str::to_owned),
                });
            }
        }
        let mut lrows = loose.query([f.key])?;
        while let Some(l) = lrows.next()? {
            let key: LooseKey = (l.get(0)?, l.get(1)?);
            let row = LooseBase {
                ck: l.get(2)?,
                ck_whole: l.get(3)?,
                last_modified: l.get(4)?,
                data: l.get(5)?,
            };
            if want_state {
                folder.loose.push(LooseContact {
                    contact_id: if key.0 {
                        key.1.clone()
                    } else {
                        f.ids.join(&key.1)
                    },
                    change_key: row.ck.as_deref().map(|k| {
                        if row.ck_whole {
                            k.to_owned()
                        } else {
                            f.cks.join(k)
                        }
                    }),
                    last_modified: row.last_modified,
                    data: row.data.clone(),
                });
            }
            f.loose.insert(key, row);
        }
        folder
            .loose
            .sort_unstable_by(|a, b| a.contact_id.cmp(&b.contact_id));
        base.folders
            .insert((folder.mailbox.clone(), folder.folder_id.clone()), f);
        state.folders.push(folder);
    }

    let mut stmt = tx.prepare(
        "SELECT sync_id, observed_at, email_key, name_key, held FROM tombstone
         WHERE tenant = ?1 ORDER BY sync_id",
    )?;
    for t in stmt.query_map([key], |r| {
        Ok(Tombstone {
            sync_id: r.get(0)?,
            observed_at: r.get(1)?,
            email_key: r.get(2)?,
            name_key: r.get(3)?,
            held: r.get(4)?,
        })
    })? {
        let t = t?;
        base.tombstones.insert(t.sync_id, t);
    }
    state.tombstones = base.tombstones.values().cloned().collect();

    let mut stmt = tx.prepare(
        "SELECT mailbox, sync_id, since FROM opt_out WHERE tenant = ?1 ORDER BY mailbox, sync_id",
    )?;
    for o in stmt.query_map([key], |r| {
        Ok(OptOut {
            mailbox: r.get(0)?,
            sync_id: r.get(1)?,
            since: r.get(2)?,
        })
    })? {
        let o = o?;
        base.opt_outs.insert((o.mailbox.clone(), o.sync_id), o);
    }
    state.opt_outs = base.opt_outs.values().cloned().collect();

    let mut stmt = tx.prepare(
        "SELECT sync_id, owner, since, held FROM withdrawal WHERE tenant = ?1 ORDER BY sync_id",
    )?;
    for w in stmt.query_map([key], |r| {
        Ok(Withdrawal {
            sync_id: r.get(0)?,
            owner: r.get(1)?,
            since: r.get(2)?,
            held: r.get(3)?,
        })
    })? {
        let w = w?;
        base.withdrawals.insert(w.sync_id, w);
    }
    state.withdrawals = base.withdrawals.values().cloned().collect();

    let mut stmt = tx.prepare(
        "SELECT started, finished, exit_code, counts FROM run WHERE tenant = ?1 ORDER BY started",
    )?;
    for run in stmt.query_map([key], |r| {
        Ok(RunRecord {
            started: r.get(0)?,
            finished: r.get(1)?,
            exit_code: r.get(2)?,
            counts: decode_counts(r.get_ref(3)?.as_str()?),
        })
    })? {
        let run = run?;
        base.runs.insert(run.started, run);
    }
    state.runs = base.runs.values().cloned().collect();

    Ok((want_state.then_some(state), base))
}

/// `name=value,name=value`; a pair that does not parse is skipped (the run log is informative,
/// never a reason to refuse a file).
fn decode_counts(s: &str) -> BTreeMap<String, u64> {
    s.split(',')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

pub(crate) fn encode_counts(counts: &BTreeMap<String, u64>) -> String {
    let mut s = String::new();
    for (k, v) in counts {
        if !s.is_empty() {
            s.push(',');
        }
        s.push_str(k);
        s.push('=');
        s.push_str(&v.to_string());
    }
    s
}
