//! What a mailbox does or remembers beside the request that caused it: the change key bumps
//! Exchange applies by itself after a write (`--variant change-key-bump`), and the log of
//! contacts deleted through the API that the control plane shows test oracles
//! (`GET /_emulator/deleted`).
//!
//! Both are driven by the caller's clock and generator; nothing here runs on its own timer: a
//! bump that has come due is applied by the next access to the mailbox ([`Mailbox::settle`]).

use serde_json::{Map, Value};

use super::{IdGen, Mailbox, Store};
use crate::contact::format_ts;

/// How Exchange's spontaneous change key bump is played (docs/graph-facts.md §1 \[OBS\]: a change
/// key captured right after a create or update may already be stale, because background processing
/// bumps it shortly after — OfficeDev/ews-managed-api#249 "within milliseconds", a calendar
/// client's smoke test "a few seconds after a create"; msgraph-sdk-dotnet#1195/#1201).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangeKeyBump {
    /// How long after the write the bump happens, on the emulator clock. Zero: before the next
    /// request to the mailbox, so the change key a write returned is never usable again.
    pub delay: std::time::Duration,
    /// Whether the bump also moves `lastModifiedDateTime`. Unknown for contacts: background
    /// updates of calendar events were observed to move both (microsoft-graph-docs#14632), so
    /// both readings are playable. When it moves, it reads at least one second after the write,
    /// so the move shows at Graph's one-second resolution.
    pub moves_modified: bool,
}

/// A bump owed to one contact.
#[derive(Debug, Clone)]
pub(super) struct PendingBump {
    id: String,
    written_at: jiff::Timestamp,
    due: jiff::Timestamp,
    moves_modified: bool,
}

/// A contact deleted through the Graph API (directly or in a `$batch`), as it was just before
/// (one entry of `GET /_emulator/deleted`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeletedContact {
    pub id: String,
    pub parent_folder_id: String,
    /// When the DELETE was applied (emulator clock, Graph's timestamp format).
    pub deleted_at: String,
    /// The stored contact: its v1.0 properties and extended properties, as the scenario format
    /// holds them.
    pub contact: Map<String, Value>,
}

impl Mailbox {
    /// Owes the contact a change key bump after the write that just happened at `now`. A later
    /// write before it comes due replaces it (one background pass per item).
    pub fn schedule_bump(&mut self, id: &str, now: jiff::Timestamp, how: ChangeKeyBump) {
        self.bumps.retain(|b| b.id != id);
        let delay = jiff::SignedDuration::try_from(how.delay).unwrap_or(jiff::SignedDuration::MAX);
        self.bumps.push(PendingBump {
            id: id.to_owned(),
            written_at: now,
            due: now.checked_add(delay).unwrap_or(jiff::Timestamp::MAX),
            moves_modified: how.moves_modified,
        });
    }

    /// Applies every bump due at `now`: a new change key (so a new etag), the fields unchanged.
    /// Called before anything reads or writes the mailbox.
    pub fn settle(&mut self, now: jiff::Timestamp, ids: &mut IdGen) {
        if self.bumps.is_empty() {
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.bumps)
            .into_iter()
            .partition(|b| b.due <= now);
        self.bumps = later;
        for b in due {
            if self.contact(&b.id).is_none() {
                continue;
            }
            let change_key = self.next_change_key(ids);
            let Some(c) = self.contact_mut(&b.id) else {
                continue;
            };
            c.data.insert("changeKey".into(), Value::String(change_key));
            if b.moves_modified {
                let at = b.due.max(b.written_at + jiff::SignedDuration::from_secs(1));
                c.data
                    .insert("lastModifiedDateTime".into(), Value::String(format_ts(at)));
            }
        }
    }

    /// Deletes a contact through the API, keeping it in the deletion log.
    pub fn delete_contact(&mut self, id: &str, now: jiff::Timestamp) -> Option<()> {
        let gone = self.remove_contact(id)?;
        self.bumps.retain(|b| b.id != id);
        self.deleted.push(DeletedContact {
            id: id.to_owned(),
            parent_folder_id: gone.folder_id,
            deleted_at: format_ts(now),
            contact: gone.data,
        });
        Some(())
    }

    /// Contacts deleted through the API since the last [`Mailbox::clear_deleted`], oldest first.
    pub fn deleted(&self) -> &[DeletedContact] {
        &self.deleted
    }

    pub fn clear_deleted(&mut self) {
        self.deleted.clear();
    }
}

impl Store {
    /// Applies every change key bump due at `now` in every mailbox (before the state is
    /// exported, so it shows what the next Graph read would).
    pub fn settle_all(&mut self, now: jiff::Timestamp) {
        let Store { tenants, ids, .. } = self;
        for mb in tenants
            .iter_mut()
            .flat_map(|t| t.users.iter_mut())
            .filter_map(|u| u.mailbox.as_mut())
        {
            mb.settle(now, ids);
        }
    }

    /// The deletion logs of every mailbox that has one, by UPN.
    pub fn deleted_by_mailbox(&self) -> std::collections::BTreeMap<String, Vec<DeletedContact>> {
        self.tenants
            .iter()
            .flat_map(|t| t.users.iter())
            .filter_map(|u| Some((u, u.mailbox.as_ref()?)))
            .filter(|(_, mb)| !mb.deleted().is_empty())
            .map(|(u, mb)| (u.upn.clone(), mb.deleted().to_vec()))
            .collect()
    }

    /// Empties every mailbox's deletion log (with the stats reset).
    pub fn clear_deleted(&mut self) {
        for mb in self
            .tenants
            .iter_mut()
            .flat_map(|t| t.users.iter_mut())
            .filter_map(|u| u.mailbox.as_mut())
        {
            mb.clear_deleted();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_767_600_000 + s).unwrap()
    }

    #[test]
    fn a_due_bump_changes_only_the_change_key_unless_asked_to_move_the_time() {
        let mut ids = IdGen::new(1);
        let mut mb = Mailbox::new("u");
        let folder = mb.default_folder_id.clone();
        let created = mb.create_contact(&mut ids, &folder, Map::new(), ts(0));
        let (id, ck0) = (created["id"].clone(), created["changeKey"].clone());
        let id = id.as_str().unwrap().to_owned();
        let later = ChangeKeyBump {
            delay: std::time::Duration::from_secs(5),
            moves_modified: false,
        };
        mb.schedule_bump(&id, ts(0), later);
        mb.settle(ts(4), &mut ids);
        assert_eq!(
            mb.contact(&id).unwrap().data["changeKey"],
            ck0,
            "not due yet"
        );
        mb.settle(ts(5), &mut ids);
        let c = &mb.contact(&id).unwrap().data;
        assert_ne!(c["changeKey"], ck0);
        assert_eq!(c["lastModifiedDateTime"], format_ts(ts(0)));
        let ck1 = c["changeKey"].clone();
        mb.settle(ts(60), &mut ids);
        assert_eq!(mb.contact(&id).unwrap().data["changeKey"], ck1, "once");

        let now = ChangeKeyBump {
            delay: std::time::Duration::ZERO,
            moves_modified: true,
        };
        mb.schedule_bump(&id, ts(10), now);
        mb.settle(ts(10), &mut ids);
        let c = &mb.contact(&id).unwrap().data;
        assert_ne!(c["changeKey"], ck1);
        assert_eq!(c["lastModifiedDateTime"], format_ts(ts(11)));
    }

    #[test]
    fn deletes_are_logged_with_the_contact_and_a_deleted_contact_owes_no_bump() {
        let mut ids = IdGen::new(1);
        let mut mb = Mailbox::new("u");
        let folder = mb.default_folder_id.clone();
        let mut data = Map::new();
        data.insert("displayName".into(), Value::String("Zoë".into()));
        let id = mb.create_contact(&mut ids, &folder, data, ts(0))["id"]
            .as_str()
            .unwrap()
            .to_owned();
        mb.schedule_bump(&id, ts(0), ChangeKeyBump::default());
        assert!(mb.delete_contact(&id, ts(3)).is_some());
        assert!(mb.delete_contact(&id, ts(4)).is_none());
        mb.settle(ts(5), &mut ids);
        let log = mb.deleted();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].id, id);
        assert_eq!(log[0].parent_folder_id, folder);
        assert_eq!(log[0].deleted_at, format_ts(ts(3)));
        assert_eq!(log[0].contact["displayName"], "Zoë");
        mb.clear_deleted();
        assert!(mb.deleted().is_empty());
    }
}
