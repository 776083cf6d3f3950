//! What a run remembers of the previous one, as plain data the planner reads
//! (docs/state-and-deletes.md §1–§3): per folder the tagged copies present after the last run
//! (contact id, changeKey, the version time the copy competes with, a fingerprint of its synced
//! fields), the hub's pending creates, tombstones, user opt-outs, privacy withdrawals and the last
//! plan time.
//!
//! Memory is not truth (STYLE 12): the mailboxes are. Memory only ever *adds evidence* to a
//! complete read; without it (`PlanInput::memory = None`, or memory the planner distrusts) the plan
//! is exactly the first-run plan. This module holds data and nothing else: no I/O, no clock; the
//! state file's encoding is the `sync-state` crate's business, and the binary maps between the two.
//!
//! Compact on purpose (a tenant of 1,000 users × 1,000 contacts remembers a million copies): a
//! SyncId is 16 bytes ([`Guid`]), a time 8 ([`Version`]), a fingerprint 8, and a folder's copies are
//! a vector sorted by SyncId, searched by bisection.

use crate::tags::SyncId;
use jiff::Timestamp;
use std::fmt;

/// A SyncId in 16 bytes: the 32 hex digits of its canonical GUID text (8-4-4-4-12) in text order,
/// two per byte (so bytes sort like the lower-case text). Only SyncIds of that layout are
/// remembered; a tag line with another arrangement of its 36 hex digits and dashes is still read
/// (`tags`), but its contact is planned without memory, as on a first run (safe: no memory, no
/// deletion).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The 16 bytes of a SyncId in canonical GUID layout; `None` for any other layout.
    pub fn from_sync_id(s: SyncId) -> Option<Guid> {
        let b = s.as_str().as_bytes();
        let mut out = [0u8; 16];
        let mut nibbles = 0usize;
        for (i, &c) in b.iter().enumerate() {
            let dash = matches!(i, 8 | 13 | 18 | 23);
            if dash != (c == b'-') {
                return None;
            }
            if dash {
                continue;
            }
            let v = (c as char).to_digit(16)? as u8;
            // High nibble first: bytes sort like the text.
            out[nibbles / 2] |= v << (4 * (1 - (nibbles & 1)));
            nibbles += 1;
        }
        (nibbles == 32).then_some(Guid(out))
    }

    /// Parses a SyncId text (any case) in canonical GUID layout.
    pub fn parse(s: &str) -> Option<Guid> {
        Guid::from_sync_id(SyncId::parse(s)?)
    }

    /// The SyncId it stands for (lower-case text).
    pub fn sync_id(self) -> SyncId {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 36];
        let mut n = 0;
        for (i, t) in text.iter_mut().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                *t = b'-';
                continue;
            }
            let byte = self.0[n / 2];
            *t = HEX[usize::from((byte >> (4 * (1 - (n & 1)))) & 15)];
            n += 1;
        }
        SyncId::parse(std::str::from_utf8(&text).unwrap_or_default())
            .expect("hex digits and dashes are a SyncId")
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.sync_id(), f)
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({})", self.sync_id())
    }
}

/// A version time: microseconds since the Unix epoch, or [`Version::NONE`] for a copy without
/// `lastModifiedDateTime` (older than any time). Graph's times have at most 100 ns ticks; only
/// their order matters, and every copy remembered for one logical contact carries the same value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub i64);

impl Version {
    pub const NONE: Version = Version(i64::MIN);

    pub fn of(t: Option<Timestamp>) -> Version {
        t.map_or(Version::NONE, |t| Version(t.as_microsecond()))
    }

    /// As the planner orders times: (seconds, nanoseconds) as jiff splits them (both with the
    /// instant's sign), `NONE` as `(i64::MIN, 0)`.
    pub(crate) fn as_pair(self) -> (i64, i32) {
        if self == Version::NONE {
            return (i64::MIN, 0);
        }
        (self.0 / 1_000_000, ((self.0 % 1_000_000) * 1000) as i32)
    }
}

/// The changeKey in an `@odata.etag` (`W/"<changeKey>"`, docs/graph-facts.md §1); any other text is
/// taken as the changeKey itself, so either form may be remembered.
pub fn change_key(etag: &str) -> &str {
    etag.strip_prefix("W/\"")
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(etag)
}

/// The matching key below SyncId (docs/compatibility.md §6), normalised as the ladder compares it:
/// the primary email trimmed and lower-cased, or — only for a contact without email — its
/// displayName trimmed and lower-cased.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContactKey {
    Email(Box<str>),
    Name(Box<str>),
}

impl ContactKey {
    /// The key of a contact with these fields, if it has one.
    pub fn of(f: &crate::model::ContactFields) -> Option<ContactKey> {
        if let Some(e) = crate::fields::primary_email(f) {
            return Some(ContactKey::Email(e.into()));
        }
        crate::fields::name_key(f).map(|n| ContactKey::Name(n.into()))
    }
}

/// Everything remembered of one tenant (bound by the binary to tenant, hub mailbox and folder).
/// Every list is sorted by its key and has no duplicate; the planner distrusts memory that is not
/// ([`crate::plan::Distrust::Malformed`]). [`Memory::normalise`] sorts a hand-made one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Memory {
    /// `now` of the last real run's plan: every tag line that run wrote carries it as
    /// `LastUpdatedAt`, so a hub tag line newer than this (+10 s) was written by someone else
    /// after the memory was saved, and the memory is stale (docs/state-and-deletes.md §1.2).
    pub last_plan_time: Timestamp,
    /// The hub's "All Contacts" folder.
    pub hub: FolderMemory,
    /// Users' default folders, sorted by mailbox.
    pub users: Vec<FolderMemory>,
    /// SyncIds an earlier run planned to create in the hub and the hub has not shown yet: a user
    /// copy carrying one is the trace of an interrupted run (a repair), never a deletion. Sorted.
    pub pending_creates: Vec<Guid>,
    /// Contacts deleted from the hub. Sorted by SyncId.
    pub tombstones: Vec<Tombstone>,
    /// `UserDeletes: respect`: copies users deleted and do not want back. Sorted by (mailbox,
    /// SyncId).
    pub opt_outs: Vec<OptOut>,
    /// Contacts withdrawn from the book because their owner marked their own copy private
    /// (docs/state-and-deletes.md §4, I15). Sorted by SyncId.
    pub withdrawals: Vec<Withdrawal>,
}

/// One folder as the last run that read it completely left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderMemory {
    /// UPN or object id, exactly as in [`crate::plan::MailboxSnapshot::mailbox`].
    pub mailbox: String,
    /// `now` of the last run that read this folder completely (folders unseen for more than
    /// [`RETENTION_DAYS`] are forgotten).
    pub read_at: Timestamp,
    /// One per tagged copy present after that run (a folder holds at most one linked copy per
    /// SyncId), sorted by SyncId.
    pub copies: Vec<CopyMemory>,
}

impl FolderMemory {
    /// The copy remembered under `sync_id`.
    pub fn get(&self, sync_id: Guid) -> Option<&CopyMemory> {
        self.copies
            .binary_search_by_key(&sync_id, |c| c.sync_id)
            .ok()
            .map(|i| &self.copies[i])
    }
}

/// One tagged copy as we left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyMemory {
    pub sync_id: Guid,
    pub contact_id: Box<str>,
    /// The changeKey our write returned, or the one read when we did not write it; `None` when
    /// unknown (a write whose answer was lost).
    pub change_key: Option<Box<str>>,
    /// The logical version time this copy competes with while it is as we left it
    /// (docs/state-and-deletes.md §2).
    pub version: Version,
    /// [`crate::fingerprint::fields_fingerprint`] of its synced fields as we left them.
    pub fields_hash: u64,
    /// Hub copies only (`None` in users' folders): the copy's matching key, kept for the
    /// tombstone if the contact is deleted from the hub (the untagged look-alike rule).
    pub key: Option<ContactKey>,
}

/// A contact deleted from the hub (docs/state-and-deletes.md §3): its tagged copies are deleted,
/// and no copy brings it back while the tombstone lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tombstone {
    pub sync_id: Guid,
    /// `now` of the run that first saw the deletion.
    pub observed_at: Timestamp,
    /// The hub copy's matching key as of the last run that saw it.
    pub key: Option<ContactKey>,
    pub status: TombstoneStatus,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TombstoneStatus {
    /// In force: the tagged copies are deleted.
    Applied,
    /// Not in force yet: no copy is deleted, none re-creates the contact either.
    Held(HoldReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HoldReason {
    /// Past the brake (docs/state-and-deletes.md §3): released with `--allow-deletes N` or
    /// `MaxDeletes`.
    Brake,
    /// The hub's listing looked broken (docs/state-and-deletes.md §3): decided again on the next good read.
    BadRead,
    /// A privacy withdrawal seen in first-run mode (no trusted memory): losing the state never
    /// deletes (docs/state-and-deletes.md §1, I10), so the contact is only frozen — not written,
    /// not spread, not re-created — and withdrawn by the next run that trusts its memory. Never
    /// remembered.
    NoState,
}

/// A contact withdrawn from the book (docs/state-and-deletes.md §4, I15): its owner — the mailbox
/// it came from, its `CreatedBy` — marked their own copy private, so its hub copy and every other
/// user's tagged copy are deleted (`Applied`) or wait for the brake (`Held`), and nothing brings it
/// back while the owner's copy stays private. When the owner's copy is no longer private, the
/// record ends and the contact is collected again from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Withdrawal {
    pub sync_id: Guid,
    /// The owner's mailbox, as [`crate::plan::MailboxSnapshot::mailbox`] names it.
    pub owner: String,
    /// `now` of the run that first withdrew it (the brake releases the oldest first).
    pub since: Timestamp,
    pub status: TombstoneStatus,
}

/// A user who deleted their copy of a contact and does not want it back (`UserDeletes:
/// respect`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptOut {
    pub mailbox: String,
    pub sync_id: Guid,
    pub since: Timestamp,
}

/// Tombstones are kept at least 180 days (docs/state-and-deletes.md §3); we forget them, and
/// folders unseen, after this many days.
pub const RETENTION_DAYS: i64 = 190;

impl Memory {
    /// An empty memory (nothing remembered): plans like the first run, but trusted.
    pub fn empty(hub_mailbox: &str, last_plan_time: Timestamp) -> Memory {
        Memory {
            last_plan_time,
            hub: FolderMemory {
                mailbox: hub_mailbox.to_owned(),
                read_at: last_plan_time,
                copies: Vec::new(),
            },
            users: Vec::new(),
            pending_creates: Vec::new(),
            tombstones: Vec::new(),
            opt_outs: Vec::new(),
            withdrawals: Vec::new(),
        }
    }

    /// Sorts every list by its key and drops duplicates (the first of each key is kept).
    pub fn normalise(&mut self) {
        for f in std::iter::once(&mut self.hub).chain(self.users.iter_mut()) {
            f.copies.sort_by_key(|c| c.sync_id);
            f.copies.dedup_by_key(|c| c.sync_id);
        }
        self.users.sort_by(|a, b| a.mailbox.cmp(&b.mailbox));
        self.users.dedup_by(|a, b| a.mailbox == b.mailbox);
        self.pending_creates.sort();
        self.pending_creates.dedup();
        self.tombstones.sort_by_key(|t| t.sync_id);
        self.tombstones.dedup_by_key(|t| t.sync_id);
        self.opt_outs
            .sort_by(|a, b| (&a.mailbox, a.sync_id).cmp(&(&b.mailbox, b.sync_id)));
        self.opt_outs
            .dedup_by(|a, b| a.mailbox == b.mailbox && a.sync_id == b.sync_id);
        self.withdrawals.sort_by_key(|w| w.sync_id);
        self.withdrawals.dedup_by_key(|w| w.sync_id);
    }

    /// Whether every list is sorted without duplicates (what the planner relies on).
    pub fn is_normal(&self) -> bool {
        fn strictly<T, K: Ord>(v: &[T], key: impl Fn(&T) -> K) -> bool {
            v.windows(2).all(|w| key(&w[0]) < key(&w[1]))
        }
        std::iter::once(&self.hub)
            .chain(self.users.iter())
            .all(|f| strictly(&f.copies, |c| c.sync_id))
            && strictly(&self.users, |f| f.mailbox.clone())
            && strictly(&self.pending_creates, |g| *g)
            && strictly(&self.tombstones, |t| t.sync_id)
            && strictly(&self.opt_outs, |o| (o.mailbox.clone(), o.sync_id))
            && strictly(&self.withdrawals, |w| w.sync_id)
    }

    /// The folder memory of `mailbox` (a user's).
    pub fn user(&self, mailbox: &str) -> Option<&FolderMemory> {
        self.users
            .binary_search_by(|f| f.mailbox.as_str().cmp(mailbox))
            .ok()
            .map(|i| &self.users[i])
    }

    pub fn tombstone(&self, sync_id: Guid) -> Option<&Tombstone> {
        self.tombstones
            .binary_search_by_key(&sync_id, |t| t.sync_id)
            .ok()
            .map(|i| &self.tombstones[i])
    }

    pub fn withdrawal(&self, sync_id: Guid) -> Option<&Withdrawal> {
        self.withdrawals
            .binary_search_by_key(&sync_id, |w| w.sync_id)
            .ok()
            .map(|i| &self.withdrawals[i])
    }

    pub fn is_pending(&self, sync_id: Guid) -> bool {
        self.pending_creates.binary_search(&sync_id).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guid_round_trips_canonical_sync_ids_and_refuses_other_layouts() {
        let s = SyncId::parse("3F2504E0-4F89-11D3-9A0C-0305E82C3301").unwrap();
        let g = Guid::from_sync_id(s).unwrap();
        assert_eq!(g.0[0], 0x3f);
        assert_eq!(g.0[15], 0x01);
        assert_eq!(g.sync_id(), s);
        assert_eq!(g.to_string(), "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
        // 36 hex digits and dashes, but not a GUID's layout: read as a SyncId, never remembered.
        let odd = SyncId::parse("3f2504e04f8911d39a0c0305e82c3301----").unwrap();
        assert_eq!(Guid::from_sync_id(odd), None);
        // Byte order is text order.
        let a = Guid::parse("00000000-0000-0000-0000-0000000000ff").unwrap();
        let b = Guid::parse("00000000-0000-0000-0000-000000000100").unwrap();
        assert!(a < b);
    }

    #[test]
    fn versions_order_like_the_planner_and_none_is_oldest() {
        let t: Timestamp = "2026-11-27T12:00:00.1234567Z".parse().unwrap();
        let v = Version::of(Some(t));
        assert_eq!(v.as_pair(), (t.as_second(), 123_456_000));
        assert_eq!(Version::NONE.as_pair(), (i64::MIN, 0));
        assert!(Version::NONE < v);
        let before: Timestamp = "1960-01-01T00:00:00.5Z".parse().unwrap();
        let b = Version::of(Some(before));
        assert_eq!(
            b.as_pair(),
            (before.as_second(), before.subsec_nanosecond())
        );
    }

    #[test]
    fn change_key_is_taken_from_a_weak_etag_or_as_is() {
        assert_eq!(change_key("W/\"EQAAABYAAAA\""), "EQAAABYAAAA");
        assert_eq!(change_key("EQAAABYAAAA"), "EQAAABYAAAA");
    }
}
