//! The file's schema and its forward migrations.
//!
//! A state file is a SQLite database whose header carries our `application_id` ([`APP_ID`]) and
//! its schema version in `user_version`. `SCHEMA.migrations[i]` takes a file from version `i` to
//! `i + 1`; a fresh file is "migrated" from 0, so creating and upgrading run the same code. Adding
//! a version (issue 14's per-tenant `book` table, say) is one function appended to the list — and
//! never an edit to an existing one: files in the field were made by them.
//!
//! Times are integers (µs since the Unix epoch), SyncIds 16-byte BLOBs, hashes `u64` stored as
//! the `i64` with the same bits. Copy rows hold only the middle of their contact id and changeKey
//! (see `affix`): `whole` bit 0 / bit 1 set means `contact_id` / `change_key` is stored whole.
//!
//! This module never reads or writes user data; it only shapes the file.

use rusqlite::Transaction;

/// "SyCo": marks a SQLite file as a synccontacts state file (SQLite header offset 68).
pub(crate) const APP_ID: u32 = 0x5379_436f;

/// One schema step, run inside the transaction that also sets `user_version`.
pub(crate) type Migration = fn(&Transaction<'_>) -> rusqlite::Result<()>;

/// A list of migrations; the version a file ends at is their number.
#[derive(Clone, Copy)]
pub(crate) struct Schema {
    pub migrations: &'static [Migration],
}

impl Schema {
    pub fn version(&self) -> u32 {
        u32::try_from(self.migrations.len()).unwrap_or(u32::MAX)
    }

    /// The tables a file of this schema must hold (checked on open, after the integrity check).
    pub fn tables(&self) -> &'static [&'static str] {
        &[
            "tenant",
            "folder",
            "copy",
            "pending_create",
            "tombstone",
            "opt_out",
            "withdrawal",
            "run",
        ]
    }
}

/// The schema this build writes.
pub(crate) const SCHEMA: Schema = Schema { migrations: &[v1] };

/// Runs the migrations from version `from` up to `schema.version()` and stamps the header, in the
/// caller's transaction.
pub(crate) fn migrate(tx: &Transaction<'_>, schema: &Schema, from: u32) -> rusqlite::Result<()> {
    for m in &schema.migrations[from as usize..] {
        m(tx)?;
    }
    // PRAGMA values cannot be bound parameters; both are integers we produce.
    tx.execute_batch(&format!(
        "PRAGMA application_id = {APP_ID}; PRAGMA user_version = {};",
        schema.version()
    ))
}

pub(crate) fn v1(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "
        CREATE TABLE tenant (
            id               INTEGER PRIMARY KEY,
            tenant_id        TEXT NOT NULL UNIQUE,
            hub_mailbox_id   TEXT NOT NULL,
            hub_folder_id    TEXT NOT NULL,
            last_plan_time   INTEGER,
            last_commit_time INTEGER
        ) STRICT;

        -- `id_*` / `ck_*`: the common prefix and suffix of the folder's contact ids and
        -- changeKeys; `encoded_rows`: how many copies the folder had when they were chosen.
        CREATE TABLE folder (
            id           INTEGER PRIMARY KEY,
            tenant       INTEGER NOT NULL REFERENCES tenant(id),
            mailbox      TEXT NOT NULL,
            folder_id    TEXT NOT NULL,
            complete     INTEGER NOT NULL,
            delta_link   TEXT,
            id_prefix    TEXT NOT NULL,
            id_suffix    TEXT NOT NULL,
            ck_prefix    TEXT NOT NULL,
            ck_suffix    TEXT NOT NULL,
            encoded_rows INTEGER NOT NULL,
            UNIQUE (tenant, mailbox, folder_id)
        ) STRICT;

        CREATE TABLE copy (
            folder      INTEGER NOT NULL REFERENCES folder(id),
            sync_id     BLOB NOT NULL,
            contact_id  TEXT NOT NULL,
            change_key  TEXT,
            version     INTEGER NOT NULL,
            fields_hash INTEGER NOT NULL,
            whole       INTEGER NOT NULL,
            user_text   TEXT,
            PRIMARY KEY (folder, sync_id)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE pending_create (
            tenant  INTEGER NOT NULL REFERENCES tenant(id),
            sync_id BLOB NOT NULL,
            PRIMARY KEY (tenant, sync_id)
        ) STRICT, WITHOUT ROWID;

        -- `held`: NULL when applied, else why it is held.
        CREATE TABLE tombstone (
            tenant      INTEGER NOT NULL REFERENCES tenant(id),
            sync_id     BLOB NOT NULL,
            observed_at INTEGER NOT NULL,
            email_key   TEXT,
            name_key    TEXT,
            held        TEXT,
            PRIMARY KEY (tenant, sync_id)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE opt_out (
            tenant  INTEGER NOT NULL REFERENCES tenant(id),
            mailbox TEXT NOT NULL,
            sync_id BLOB NOT NULL,
            since   INTEGER NOT NULL,
            PRIMARY KEY (tenant, mailbox, sync_id)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE withdrawal (
            tenant  INTEGER NOT NULL REFERENCES tenant(id),
            sync_id BLOB NOT NULL,
            owner   TEXT NOT NULL,
            since   INTEGER NOT NULL,
            held    TEXT,
            PRIMARY KEY (tenant, sync_id)
        ) STRICT, WITHOUT ROWID;

        -- `counts`: `name=value` pairs joined by `,`.
        CREATE TABLE run (
            tenant    INTEGER NOT NULL REFERENCES tenant(id),
            started   INTEGER NOT NULL,
            finished  INTEGER NOT NULL,
            exit_code INTEGER NOT NULL,
            counts    TEXT NOT NULL,
            PRIMARY KEY (tenant, started)
        ) STRICT, WITHOUT ROWID;
        ",
    )
}

/// What the first 100 bytes of a file say it is, read without SQLite (so a file of a newer
/// schema is refused before SQLite could touch it, e.g. by rolling back a journal).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Header {
    /// Our application id and a schema version (0 when none was ever stamped).
    Ours { version: u32 },
    /// Not a state file of ours; why.
    Foreign(&'static str),
}

pub(crate) fn read_header(bytes: &[u8]) -> Header {
    const MAGIC: &[u8] = b"SQLite format 3\0";
    if bytes.is_empty() {
        return Header::Foreign("the file is empty");
    }
    if bytes.len() < 100 || !bytes.starts_with(MAGIC) {
        return Header::Foreign("not a SQLite database");
    }
    let be =
        |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if be(68) != APP_ID {
        return Header::Foreign("a SQLite database, but not a synccontacts state file");
    }
    Header::Ours { version: be(60) }
}
