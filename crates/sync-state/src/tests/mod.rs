//! The crate's tests and their helpers: sample states, a directory snapshot (to prove a read-only
//! open or a refused file changed nothing), and a state normaliser (loaded vectors come sorted).
//! `fixtures/v1.sql` holds the rows the version 1 code wrote (see its header).

mod diff;
mod files;
mod properties;
mod roundtrip;

use crate::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub(crate) const RW: Mode = Mode::ReadWrite {
    lock_wait: Duration::from_millis(200),
};

pub(crate) fn rw(path: &Path) -> StateFile {
    StateFile::open(path, RW).expect("open read-write").0
}

pub(crate) fn sid(n: u32) -> SyncId {
    let mut s = [0u8; 16];
    s[..4].copy_from_slice(&n.to_be_bytes());
    s[15] = 0xa5;
    s
}

pub(crate) fn binding(tenant: &str) -> Binding {
    Binding {
        tenant_id: tenant.into(),
        hub_mailbox_id: format!("hub-of-{tenant}"),
        hub_folder_id: "AAMkHubFolder=".into(),
    }
}

/// A copy with an Exchange-like id and changeKey for `mailbox`.
pub(crate) fn copy(mailbox: &str, n: u32) -> CopyState {
    CopyState {
        sync_id: sid(n),
        contact_id: format!("AAMkAD{mailbox}AAAAAEOAAAAAABGAAAAA{n:08x}AAA="),
        change_key: Some(format!("EQAAABYAAAD{mailbox}{n:04x}")),
        version: 1_780_000_000_000_000 + i64::from(n),
        fields_hash: 0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(u64::from(n) + 1),
        user_text: None,
        email_key: None,
        name_key: None,
    }
}

pub(crate) fn folder(mailbox: &str, ns: impl IntoIterator<Item = u32>) -> FolderState {
    FolderState {
        mailbox: mailbox.into(),
        folder_id: format!("AAMkContacts-{mailbox}="),
        complete: true,
        delta_link: None,
        read_at: None,
        copies: ns.into_iter().map(|n| copy(mailbox, n)).collect(),
        loose: Vec::new(),
    }
}

/// A loose contact with an id and changeKey like `copy(mailbox, n)`'s (same folder affixes).
pub(crate) fn loose(mailbox: &str, n: u32) -> LooseContact {
    let c = copy(mailbox, n);
    LooseContact {
        contact_id: c.contact_id,
        change_key: c.change_key,
        last_modified: 1_770_000_000_000_000 + i64::from(n),
        data: format!("fields and notes of {mailbox} #{n}\0\u{ff}").into_bytes(),
    }
}

pub(crate) fn book_entry(n: u32) -> BookEntry {
    BookEntry {
        sync_id: sid(n),
        data: [
            b"converged fields ".as_slice(),
            &n.to_le_bytes(),
            &[0, 0xff],
        ]
        .concat(),
        created_by: format!("user{}@contoso.com", n % 3),
    }
}

/// A tenant using every field (each optional one both set and unset somewhere). Its `v1_view` is
/// what `fixtures/v1.sql` holds for tenant "t": keep the v1 part as it is.
pub(crate) fn full_tenant(tenant: &str) -> TenantState {
    let mut hub = folder("hub", 0..20);
    hub.delta_link = Some("https://graph.microsoft.com/v1.0/users/hub/contactFolders/x/contacts/delta?$deltatoken=abc".into());
    hub.copies[3].change_key = None;
    hub.copies[4].user_text = Some("Call after 5 — ask for Zoë\r\nsecond line".into());
    hub.copies[5].contact_id = "an id from elsewhere, stored whole".into();
    hub.copies[6].change_key = Some("a changeKey that shares nothing".into());
    hub.copies[7].fields_hash = u64::MAX;
    hub.copies[8].version = -5;
    // Schema 3: hub copies' matching keys, a folder's read time.
    hub.copies[9].email_key = Some("ann@example.com".into());
    hub.copies[10].name_key = Some("ann example".into());
    hub.read_at = Some(1_780_000_100_000_000);
    hub.loose = vec![
        loose("hub", 30),
        loose("hub", 31),
        loose("hub", 32),
        loose("hub", 33),
    ];
    hub.loose[1].change_key = None;
    hub.loose[2].contact_id = "a loose id from elsewhere, stored whole".into();
    hub.loose[3].change_key = Some("a loose changeKey that shares nothing".into());
    hub.loose[3].data = Vec::new();
    let mut user = folder("alice", 5..12);
    user.complete = false;
    user.loose = vec![loose("alice", 40)];
    let mut book: Vec<BookEntry> = (0..20).map(book_entry).collect();
    book[2].data = Vec::new();
    book[3].created_by = String::new();
    TenantState {
        binding: binding(tenant),
        last_plan_time: Some(1_780_000_100_000_000),
        last_commit_time: Some(1_780_000_200_000_000),
        pending_creates: vec![sid(900), sid(901)],
        book,
        folders: vec![hub, user, folder("bob", [])],
        tombstones: vec![
            Tombstone {
                sync_id: sid(100),
                observed_at: 1_779_000_000_000_000,
                email_key: Some("ann@example.com".into()),
                name_key: None,
                held: None,
            },
            Tombstone {
                sync_id: sid(101),
                observed_at: 1_779_000_000_000_001,
                email_key: None,
                name_key: Some("ann example".into()),
                held: Some("the brake: 15 deletes > 10 and > 10 % of 100".into()),
            },
        ],
        opt_outs: vec![OptOut {
            mailbox: "alice".into(),
            sync_id: sid(7),
            since: 1_779_500_000_000_000,
        }],
        withdrawals: vec![
            Withdrawal {
                sync_id: sid(8),
                owner: "bob".into(),
                since: 1_779_600_000_000_000,
                held: None,
            },
            Withdrawal {
                sync_id: sid(9),
                owner: "bob".into(),
                since: 1_779_600_000_000_001,
                held: Some("bad read".into()),
            },
        ],
        runs: vec![RunRecord {
            started: 1_780_000_100_000_000,
            finished: 1_780_000_190_000_000,
            exit_code: 4,
            counts: BTreeMap::from([("created".into(), 3), ("deleted".into(), 0)]),
        }],
    }
}

/// `state` as schema version 1 held it: no book, no loose contacts, and nothing of version 3.
pub(crate) fn v1_view(state: TenantState) -> TenantState {
    let mut state = v2_view(state);
    state.book.clear();
    for f in &mut state.folders {
        f.loose.clear();
    }
    state
}

/// `state` as schema version 2 held it: no copy keys, no folder read times.
pub(crate) fn v2_view(mut state: TenantState) -> TenantState {
    for f in &mut state.folders {
        f.read_at = None;
        for c in &mut f.copies {
            c.email_key = None;
            c.name_key = None;
        }
    }
    state
}

/// `state` with every vector in the order a load returns it.
pub(crate) fn normalized(mut state: TenantState) -> TenantState {
    state.pending_creates.sort();
    state.book.sort_by_key(|b| b.sync_id);
    state
        .folders
        .sort_by(|a, b| (&a.mailbox, &a.folder_id).cmp(&(&b.mailbox, &b.folder_id)));
    for f in &mut state.folders {
        f.copies.sort_by_key(|c| c.sync_id);
        f.loose.sort_by(|a, b| a.contact_id.cmp(&b.contact_id));
    }
    state.tombstones.sort_by_key(|t| t.sync_id);
    state
        .opt_outs
        .sort_by(|a, b| (&a.mailbox, a.sync_id).cmp(&(&b.mailbox, b.sync_id)));
    state.withdrawals.sort_by_key(|w| w.sync_id);
    state.runs.sort_by_key(|r| r.started);
    let cut = state.runs.len().saturating_sub(RUN_LOG_LEN);
    state.runs.drain(..cut);
    state
}

/// Every file in `dir` (recursively) with its bytes and modification time.
pub(crate) fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            let m = std::fs::metadata(&p).unwrap();
            out.insert(
                p.clone(),
                (std::fs::read(&p).unwrap(), m.modified().unwrap()),
            );
        }
    }
    out
}
