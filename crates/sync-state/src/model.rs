//! The plain data the state file stores: one [`TenantState`] per tenant, as the binary hands it to
//! [`StateFile::commit_tenant`](crate::StateFile::commit_tenant) and gets it back from
//! [`StateFile::tenant`](crate::StateFile::tenant).
//!
//! These are records, not a model: they carry no rules (what a tombstone means, when memory is
//! trusted) — those live in the planner and the binary. They never hold a secret: ids, keys,
//! hashes, times, and contact data the engine encoded (opaque bytes here).

use std::collections::BTreeMap;

/// A contact's SyncId (the UUID of its tag line) as its 16 bytes, big-endian as written
/// (`uuid::Uuid::as_bytes` / `Uuid::from_bytes`).
pub type SyncId = [u8; 16];

/// A point in time: microseconds since 1970-01-01T00:00:00Z (`jiff::Timestamp::as_microsecond` /
/// `Timestamp::from_microsecond`). Finer precision is not kept: map every time through it before
/// comparing a remembered time with a freshly read one.
pub type UnixMicros = i64;

/// What a tenant's memory is bound to (docs/state-and-deletes.md §1): memory is only ever used for
/// the hub it was made for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct Binding {
    /// The tenant's GUID (the token's `tid`), the key of the tenant in the file.
    pub tenant_id: String,
    /// The hub's directory object id (or the configured hub, lower-cased, when unreadable).
    pub hub_mailbox_id: String,
    /// The hub folder's id.
    pub hub_folder_id: String,
}

/// Everything remembered about one tenant.
///
/// Loaded vectors come sorted by their key (folders by `(mailbox, folder_id)`, copies, book
/// entries and tombstones by SyncId, loose contacts by contact id, opt-outs by
/// `(mailbox, sync_id)`, runs by `started`); a commit accepts any order but refuses duplicate
/// keys.
///
/// A caller that never sets `book` or `FolderState::loose` (schema version 1's view) stores and
/// gets back empty vectors.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TenantState {
    pub binding: Binding,
    /// The `now` of the last real run's plan, recorded before its first write.
    pub last_plan_time: Option<UnixMicros>,
    /// When the last commit of this tenant was made (the caller's clock).
    pub last_commit_time: Option<UnixMicros>,
    /// SyncIds the last run planned to create in the hub (so an interrupted run's user copies
    /// read as repairs, not deletions).
    pub pending_creates: Vec<SyncId>,
    /// The book (issue 14): one entry per logical contact, as of the end of the last run.
    pub book: Vec<BookEntry>,
    pub folders: Vec<FolderState>,
    pub tombstones: Vec<Tombstone>,
    pub opt_outs: Vec<OptOut>,
    pub withdrawals: Vec<Withdrawal>,
    /// The run log; a commit keeps the newest [`RUN_LOG_LEN`] by `started`.
    pub runs: Vec<RunRecord>,
}

/// How many run records a tenant keeps.
pub const RUN_LOG_LEN: usize = 50;

/// One folder's memory (the hub folder or a user's default Contacts folder).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct FolderState {
    /// The mailbox (user id or UPN, as the binary names it).
    pub mailbox: String,
    pub folder_id: String,
    /// Whether the last read of this folder was complete (every page read without error).
    pub complete: bool,
    /// The folder's delta link (issue 14), when a delta round ended in one.
    pub delta_link: Option<String>,
    /// When this folder was last read completely (the caller's clock; schema 3, `None` in rows
    /// of older files).
    pub read_at: Option<UnixMicros>,
    /// The tagged copies present after the last run, at most one per SyncId.
    pub copies: Vec<CopyState>,
    /// Every other contact of the folder (issue 14), at most one per contact id.
    pub loose: Vec<LooseContact>,
}

/// One logical contact of the book (issue 14): what its copies converged to at the end of the
/// last run. A copy whose `fields_hash` equals the book's fingerprint of `data` is reproduced
/// from it (the engine's rule; this crate only stores the entry).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct BookEntry {
    pub sync_id: SyncId,
    /// The converged synced field values, encoded by the engine (opaque here).
    pub data: Vec<u8>,
    /// The mailbox the contact was collected from (its `CreatedBy`).
    pub created_by: String,
}

/// A contact of a folder that is not a tagged, converged copy (untagged, a duplicate, private,
/// not converged) as the last run left it (issue 14): enough to reproduce it without reading it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct LooseContact {
    /// Graph's contact id (the key within its folder).
    pub contact_id: String,
    pub change_key: Option<String>,
    /// Its `lastModifiedDateTime`.
    pub last_modified: UnixMicros,
    /// Its fields and notes, encoded by the engine (opaque here).
    pub data: Vec<u8>,
}

/// One tagged contact copy as we left it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
pub struct CopyState {
    pub sync_id: SyncId,
    /// Graph's contact id.
    pub contact_id: String,
    /// The changeKey as we last saw or wrote it; `None` when unknown (an ambiguous write).
    pub change_key: Option<String>,
    /// The logical version time this copy competes with.
    pub version: UnixMicros,
    /// The fingerprint of its synced fields as we left it.
    pub fields_hash: u64,
    /// The copy's own note text (issue 14), only when non-empty.
    pub user_text: Option<String>,
    /// The copy's matching key (schema 3), normalised by the caller: its primary email, or —
    /// without one — its displayName. The binary keeps it for hub copies only (`None` in users'
    /// folders and in rows of older files).
    pub email_key: Option<String>,
    pub name_key: Option<String>,
}

/// A hub deletion remembered (or held).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Tombstone {
    pub sync_id: SyncId,
    pub observed_at: UnixMicros,
    pub email_key: Option<String>,
    pub name_key: Option<String>,
    /// `None`: applied; `Some(reason)`: held (the brake, a bad read).
    pub held: Option<String>,
}

/// A user who deleted their copy under `UserDeletes: respect`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct OptOut {
    pub mailbox: String,
    pub sync_id: SyncId,
    pub since: UnixMicros,
}

/// A logical contact withdrawn from the book because its owner marked their copy private.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Withdrawal {
    pub sync_id: SyncId,
    /// The owner's mailbox.
    pub owner: String,
    pub since: UnixMicros,
    /// `None`: applied; `Some(reason)`: held.
    pub held: Option<String>,
}

/// One line of the run log.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RunRecord {
    /// The key of the record: use the run's plan time (the one given to `record_run_start`).
    pub started: UnixMicros,
    pub finished: UnixMicros,
    pub exit_code: i32,
    /// Named counts (`created`, `updated`, …). Names are non-empty and contain no `=`, `,` or
    /// control character.
    pub counts: BTreeMap<String, u64>,
}

/// What `record_run_start` does with the memory already stored for the tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriorMemory {
    /// Keep it (the run trusts and uses it).
    Keep,
    /// Delete the book, folders (with their copies and loose contacts), tombstones, opt-outs and
    /// withdrawals (the run is in first-run mode): if the run is interrupted, the next one must
    /// not find old memory that now looks fresh under the new run marker. The run log is kept.
    Forget,
}

/// What a commit wrote, in rows (all tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CommitStats {
    pub inserted: u64,
    pub updated: u64,
    pub deleted: u64,
    /// Copy and loose rows rewritten only because their folder's common prefix/suffix was
    /// recomputed.
    pub reencoded: u64,
}

impl CommitStats {
    /// Whether the commit wrote nothing at all.
    pub fn is_empty(&self) -> bool {
        *self == CommitStats::default()
    }
}
