//! The planner's use of memory before any linking: whether to trust it at all (docs/state-and-deletes.md §1.2), the
//! version each copy competes with (our writes are not edits, docs/state-and-deletes.md §2,
//! docs/state-and-deletes.md §2), and which folder reads are too broken to be evidence (bad reads, docs/state-and-deletes.md §3).
//!
//! Memory only ever adds evidence to this run's read: with none, or distrusted, nothing here
//! changes the plan. Never decides a write.

use super::PlanInput;
use super::book::{BadReadKind, Distrust, MemoryVerdict};
use super::keys::KeyedContact;
use crate::field::FieldSet;
use crate::fingerprint::fingerprint;
use crate::memory::{CopyMemory, FolderMemory, Guid, Version, change_key};
use crate::model::Contact;
use crate::tags;
use jiff::{SignedDuration, Timestamp};

/// A hub tag line may be this much later than the memory's last plan time and still be that
/// run's own (clock skew between the run and the tag it wrote is zero; this is margin).
const STALE_AFTER: SignedDuration = SignedDuration::from_secs(10);

/// A folder that held at least this many of our copies is checked for a bad read.
const BAD_READ_MIN: usize = 10;

/// Whether the given memory may be used (docs/state-and-deletes.md §1.2 "not stale"): no hub contact carries a tag
/// line whose `LastUpdatedAt` is later than the memory's last plan time + 10 s. Our own run wrote
/// every tag line with its plan time, so a later one was written by another run after the memory
/// was saved: the memory is an older copy of itself, or the old script ran in between. Binding
/// (tenant, hub, folder) and the file's health are the binary's checks.
pub(super) fn verdict(input: &PlanInput) -> MemoryVerdict {
    let Some(memory) = &input.memory else {
        return MemoryVerdict::NotGiven;
    };
    if !memory.is_normal() {
        return MemoryVerdict::Distrusted {
            reason: Distrust::Malformed,
        };
    }
    let limit = memory
        .last_plan_time
        .saturating_add(STALE_AFTER)
        .unwrap_or(Timestamp::MAX);
    // The latest offending tag line, for the message (ties: the first in folder order).
    let mut latest: Option<(Timestamp, tags::SyncId)> = None;
    for c in &input.hub.contacts {
        let Some(t) = c.personal_notes().and_then(tags::find_tags) else {
            continue;
        };
        let Some(at) = t.last_updated_at.and_then(tags::parse_timestamp) else {
            continue;
        };
        if at > limit && latest.is_none_or(|(l, _)| at > l) {
            latest = Some((at, t.sync_id));
        }
    }
    match latest {
        None => MemoryVerdict::Trusted,
        Some((at, sync_id)) => MemoryVerdict::Distrusted {
            reason: Distrust::HubWrittenLater {
                sync_id: sync_id.to_string(),
                last_updated_at: at,
                last_plan_time: memory.last_plan_time,
            },
        },
    }
}

/// The version `c` competes with when memory has it as we left it (docs/state-and-deletes.md §2): the same contact
/// id **and** either the same changeKey or — Exchange bumps changeKeys by itself after a write
/// (docs/graph-facts.md §1) — the same synced fields (fingerprint). Otherwise `None`: its own
/// `lastModifiedDateTime` counts.
pub(super) fn remembered(memory: &CopyMemory, c: &Contact, set: FieldSet) -> Option<Version> {
    as_left(memory, c, set).map(|(v, _)| v)
}

/// [`remembered`], with the copy's fingerprint: the remembered one when the changeKey is the same
/// (the item has not changed since), so the fields are hashed only when it differs.
pub(super) fn as_left(memory: &CopyMemory, c: &Contact, set: FieldSet) -> Option<(Version, u64)> {
    if *memory.contact_id != *c.id() {
        return None;
    }
    let same_change_key = match (&memory.change_key, c.etag()) {
        (Some(k), Some(e)) => change_key(k) == change_key(e),
        _ => false,
    };
    (same_change_key || memory.fields_hash == fingerprint(&c.fields, set))
        .then_some((memory.version, memory.fields_hash))
}

/// The version `c` (carrying `sync_id`) competes with in a folder with memory `folder`, and its
/// fingerprint.
pub(super) fn version_and_fingerprint(
    folder: Option<&FolderMemory>,
    sync_id: Option<Guid>,
    c: &Contact,
    set: FieldSet,
) -> (Version, u64) {
    folder
        .zip(sync_id)
        .and_then(|(f, s)| f.get(s))
        .and_then(|m| as_left(m, c, set))
        .unwrap_or_else(|| (Version::of(c.last_modified()), fingerprint(&c.fields, set)))
}

/// Sets the version every copy of one folder competes with from the folder's memory, and returns
/// the remembered copies (indexes into `memory.copies`) no contact read carries any more.
pub(super) fn apply_versions(
    keyed: &mut [KeyedContact<'_>],
    memory: &FolderMemory,
    set: FieldSet,
) -> Vec<u32> {
    let mut seen = vec![false; memory.copies.len()];
    for k in keyed.iter_mut() {
        let Some(guid) = k.sync_id.and_then(Guid::from_sync_id) else {
            continue;
        };
        let Ok(i) = memory.copies.binary_search_by_key(&guid, |c| c.sync_id) else {
            continue;
        };
        seen[i] = true;
        if let Some(v) = remembered(&memory.copies[i], k.contact, set) {
            k.modified = v.as_pair();
        }
    }
    seen.iter()
        .enumerate()
        .filter(|(_, s)| !**s)
        .map(|(i, _)| i as u32)
        .collect()
}

/// A bad read (docs/state-and-deletes.md §3): the folder held at least 10 of our copies and this read lists none of
/// them, or fewer than half.
pub(super) fn bad_read(remembered: usize, missing: usize) -> Option<BadReadKind> {
    let found = remembered - missing;
    if remembered < BAD_READ_MIN || found * 2 >= remembered {
        return None;
    }
    Some(if found == 0 {
        BadReadKind::Emptied { remembered }
    } else {
        BadReadKind::LostMost { remembered, found }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_read_needs_ten_remembered_and_more_than_half_lost() {
        assert_eq!(bad_read(9, 9), None);
        assert_eq!(
            bad_read(10, 10),
            Some(BadReadKind::Emptied { remembered: 10 })
        );
        assert_eq!(
            bad_read(10, 5),
            None,
            "exactly half found is not a bad read"
        );
        assert_eq!(
            bad_read(10, 6),
            Some(BadReadKind::LostMost {
                remembered: 10,
                found: 4
            })
        );
    }
}
