//! The file's schema and its forward migrations.
//!
//! A state file is a SQLite database whose header carries our `application_id` ([`APP_ID`]) and
//! its schema version in `user_version`. `SCHEMA.steps[i]` takes a file from version `i` to
//! `i + 1`; a fresh file is "migrated" from 0, so creating and upgrading run the same code. Adding
//! a version is one [`Step`] appended to the list — and never an edit to an existing one: files
//! in the field were made by them (`src/tests/fixtures/v1.sql` holds rows the version 1 code
//! wrote, and the tests migrate them).
//!
//! Versions:
//! 1. tenants, folders, tagged copies, pending creates, tombstones, opt-outs, withdrawals, the
//!    run log (issue 12);
//! 2. the per-tenant `book` and the per-folder `loose` contacts (issue 14: delta runs must be able
//!    to reproduce every contact of every folder from memory);
//! 3. the matching key of each hub copy (`copy.email_key` / `copy.name_key`) and when each
//!    folder was last read (`folder.read_at`): what the planner's memory holds that versions 1–2
//!    had no place for (issue 12, wiring the binary).
//!
//! Times are integers (µs since the Unix epoch), SyncIds 16-byte BLOBs, hashes `u64` stored as
//! the `i64` with the same bits. Copy rows hold only the middle of their contact id and changeKey
//! (see `affix`): `whole` bit 0 / bit 1 set means `contact_id` / `change_key` is stored whole.
//! Loose rows use the same folder affixes, with the two flags as columns (`id_whole` is part of
//! the key: a whole id and another id's middle may be the same text).
//!
//! This module never reads or writes user data; it only shapes the file.

use rusqlite::Transaction;

/// "SyCo": marks a SQLite file as a synccontacts state file (SQLite header offset 68).
pub(crate) const APP_ID: u32 = 0x5379_436f;

/// One schema step, run inside the transaction that also sets `user_version`.
pub(crate) type Migration = fn(&Transaction<'_>) -> rusqlite::Result<()>;

/// One version: the migration that reaches it and the tables it adds (a file at this version or
/// later must hold them; checked on open, after the integrity check).
#[derive(Clone, Copy)]
pub(crate) struct Step {
    pub migrate: Migration,
    pub tables: &'static [&'static str],
}

/// A list of steps; the version a file ends at is their number.
#[derive(Clone, Copy)]
pub(crate) struct Schema {
    pub steps: &'static [Step],
}

impl Schema {
    pub fn version(&self) -> u32 {
        u32::try_from(self.steps.len()).unwrap_or(u32::MAX)
    }

    /// The tables a file at `version` (at most this schema's) must hold.
    pub fn tables(&self, version: u32) -> impl Iterator<Item = &'static str> {
        let steps: &'static [Step] = self.steps;
        steps[..(version as usize).min(steps.len())]
            .iter()
            .flat_map(|s| s.tables.iter().copied())
    }
}

pub(crate) const V1: Step = Step {
    migrate: v1,
    tables: &[
        "tenant",
        "folder",
        "copy",
        "pending_create",
        "tombstone",
        "opt_out",
        "withdrawal",
        "run",
    ],
};

pub(crate) const V2: Step = Step {
    migrate: v2,
    tables: &["book", "loose"],
};

pub(crate) const V3: Step = Step {
    migrate: v3,
    tables: &[],
};

/// The schema this build writes.
pub(crate) const SCHEMA: Schema = Schema {
    steps: &[V1, V2, V3],
};

/// Runs the migrations from version `from` up to `schema.version()` and stamps the header, in the
/// caller's transaction.
pub(crate) fn migrate(tx: &Transaction<'_>, schema: &Schema, from: u32) -> rusqlite::Result<()> {
    for step in &schema.steps[from as usize..] {
        (step.migrate)(tx)?;
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

/// Issue 14: what a delta run needs to reproduce every contact without reading it. The blobs are
/// the engine's encoding, opaque here. Adds no column to a version 1 table: a v1 file's rows stay
/// as they are and mean what they meant (no book, no loose contacts — a v1 caller's view).
/// From this version on, `folder.encoded_rows` counts the folder's copy *and* loose rows when its
/// affixes were chosen (both are encoded under them).
pub(crate) fn v2(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "
        -- One row per logical contact: its converged field values (`data`, engine-encoded) and
        -- the mailbox it was collected from.
        CREATE TABLE book (
            tenant     INTEGER NOT NULL REFERENCES tenant(id),
            sync_id    BLOB NOT NULL,
            created_by TEXT NOT NULL,
            data       BLOB NOT NULL,
            PRIMARY KEY (tenant, sync_id)
        ) STRICT, WITHOUT ROWID;

        -- Every other contact of a folder (untagged, duplicate, private, not converged): its id
        -- and changeKey as middles under the folder's affixes unless `id_whole` / `ck_whole`,
        -- `last_modified` (µs) and its fields and notes (`data`, engine-encoded).
        CREATE TABLE loose (
            folder        INTEGER NOT NULL REFERENCES folder(id),
            id_whole      INTEGER NOT NULL,
            contact_id    TEXT NOT NULL,
            change_key    TEXT,
            ck_whole      INTEGER NOT NULL,
            last_modified INTEGER NOT NULL,
            data          BLOB NOT NULL,
            PRIMARY KEY (folder, id_whole, contact_id)
        ) STRICT, WITHOUT ROWID;
        ",
    )
}

/// Issue 12 (the binary's mapping of the planner's memory): a hub copy's matching key — its
/// primary email, or its displayName when it has no email, normalised as the planner compares
/// them — so that when the contact is deleted from the hub the tombstone knows its look-alikes,
/// and a hub contact that merely lost its tag line is recognised by its key instead of being
/// taken for a deletion; and when each folder was last read completely, so that the memory of a
/// folder no run reads any more (a user who left the scope) is forgotten after the retention
/// period. Columns only, all nullable: rows of versions 1–2 read as "no key, read time unknown".
pub(crate) fn v3(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "
        ALTER TABLE copy ADD COLUMN email_key TEXT;
        ALTER TABLE copy ADD COLUMN name_key TEXT;
        ALTER TABLE folder ADD COLUMN read_at INTEGER;
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
