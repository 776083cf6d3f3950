//! The state file's records (`sync_state::TenantState`) ↔ the planner's memory
//! (`sync_engine::Memory`), both ways, losing nothing the planner reads.
//!
//! - Times are microseconds since the Unix epoch on disk: the run plans with a `now` already cut
//!   to whole microseconds (`run`), so a remembered time compares exactly with the one written.
//! - A SyncId is its 16 bytes in text order in both ([`Guid`] and the state's BLOB).
//! - changeKeys are kept as the engine holds them (`next_memory` already took them out of their
//!   `W/"…"` etags).
//! - Folders: the hub's is the one whose folder id is the binding's; a user's default folder is
//!   stored under [`USER_FOLDER_ID`] (the engine keys users' folders by mailbox only). A folder
//!   of any other id (written by a later version) is not the planner's business and is left out.
//! - A hub copy's matching key is stored as `email_key` / `name_key`, a folder's read time at
//!   day granularity (the retention is 190 days; a folder row then changes once a day, not every
//!   run).
//! - Tombstones and privacy withdrawals (issue 13) map to the state's rows of the same names; a
//!   held one's reason is spelled out (`brake`, `bad-read`, `no-state`), and a reason this version
//!   does not know reads back as the brake's (held until released: the safe reading).
//! - The book stays empty; loose contacts and delta links (issue 14) are filled in by
//!   `run::remember` from the folders the run read (`run::delta`).
//!
//! Pure data mapping: no I/O, no clock (the commit time comes in), no trust decisions (`state`
//! makes those).

use jiff::Timestamp;
use sync_engine::memory::{
    ContactKey, CopyMemory, FolderMemory, Guid, HoldReason, Memory, OptOut, Tombstone,
    TombstoneStatus, Version, Withdrawal,
};
use sync_state::{Binding, CopyState, FolderState, RunRecord, TenantState, UnixMicros};

/// The folder id a user's default Contacts folder is stored under (Graph's well-known name).
pub const USER_FOLDER_ID: &str = "contacts";

/// How a held tombstone's reason is written; anything else read back is taken as the brake's
/// (held until released: the safe reading of a reason this version does not know).
const HELD_BRAKE: &str = "brake";
const HELD_BAD_READ: &str = "bad-read";
const HELD_NO_STATE: &str = "no-state";

/// A tombstone's or withdrawal's status as the state file spells it (`None`: applied).
fn held_reason(status: TombstoneStatus) -> Option<String> {
    match status {
        TombstoneStatus::Applied => None,
        TombstoneStatus::Held(HoldReason::Brake) => Some(HELD_BRAKE.into()),
        TombstoneStatus::Held(HoldReason::BadRead) => Some(HELD_BAD_READ.into()),
        TombstoneStatus::Held(HoldReason::NoState) => Some(HELD_NO_STATE.into()),
    }
}

/// [`held_reason`] read back; an unknown reason is the brake's.
fn status_of(held: Option<&str>) -> TombstoneStatus {
    match held {
        None => TombstoneStatus::Applied,
        Some(HELD_BAD_READ) => TombstoneStatus::Held(HoldReason::BadRead),
        Some(HELD_NO_STATE) => TombstoneStatus::Held(HoldReason::NoState),
        Some(_) => TombstoneStatus::Held(HoldReason::Brake),
    }
}

const DAY_MICROS: i64 = 86_400_000_000;

fn micros(t: Timestamp) -> UnixMicros {
    t.as_microsecond()
}

fn time(m: UnixMicros) -> Timestamp {
    Timestamp::from_microsecond(m).unwrap_or(if m < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

fn key_of(email: Option<&str>, name: Option<&str>) -> Option<ContactKey> {
    match (email, name) {
        (Some(e), _) => Some(ContactKey::Email(e.into())),
        (None, Some(n)) => Some(ContactKey::Name(n.into())),
        (None, None) => None,
    }
}

fn key_parts(k: Option<&ContactKey>) -> (Option<String>, Option<String>) {
    match k {
        Some(ContactKey::Email(e)) => (Some(e.to_string()), None),
        Some(ContactKey::Name(n)) => (None, Some(n.to_string())),
        None => (None, None),
    }
}

fn folder_memory(f: &FolderState, hub: bool, last_plan_time: Timestamp) -> FolderMemory {
    FolderMemory {
        mailbox: f.mailbox.clone(),
        read_at: f.read_at.map_or(last_plan_time, time),
        copies: f
            .copies
            .iter()
            .map(|c| CopyMemory {
                sync_id: Guid(c.sync_id),
                contact_id: c.contact_id.as_str().into(),
                change_key: c.change_key.as_deref().map(Into::into),
                version: Version(c.version),
                fields_hash: c.fields_hash,
                key: if hub {
                    key_of(c.email_key.as_deref(), c.name_key.as_deref())
                } else {
                    None
                },
            })
            .collect(),
    }
}

/// The planner's memory of a tenant as the state file holds it. `hub_mailbox` names the hub
/// folder as this run's snapshots do (the state keys it by folder id).
pub fn to_memory(s: &TenantState, hub_mailbox: &str) -> Memory {
    // A tenant row without a plan time never recorded a run: the oldest time, so any tag line the
    // hub carries reads as newer and the planner distrusts the memory (safe).
    let last_plan_time = s.last_plan_time.map_or(Timestamp::UNIX_EPOCH, time);
    let hub = s
        .folders
        .iter()
        .find(|f| f.folder_id == s.binding.hub_folder_id)
        .map(|f| FolderMemory {
            mailbox: hub_mailbox.to_owned(),
            ..folder_memory(f, true, last_plan_time)
        })
        .unwrap_or_else(|| FolderMemory {
            mailbox: hub_mailbox.to_owned(),
            read_at: last_plan_time,
            copies: Vec::new(),
        });
    let users = s
        .folders
        .iter()
        .filter(|f| f.folder_id == USER_FOLDER_ID && f.folder_id != s.binding.hub_folder_id)
        .map(|f| folder_memory(f, false, last_plan_time))
        .collect();
    let mut m = Memory {
        last_plan_time,
        hub,
        users,
        pending_creates: s.pending_creates.iter().map(|b| Guid(*b)).collect(),
        tombstones: s
            .tombstones
            .iter()
            .map(|t| Tombstone {
                sync_id: Guid(t.sync_id),
                observed_at: time(t.observed_at),
                key: key_of(t.email_key.as_deref(), t.name_key.as_deref()),
                status: status_of(t.held.as_deref()),
            })
            .collect(),
        opt_outs: s
            .opt_outs
            .iter()
            .map(|o| OptOut {
                mailbox: o.mailbox.clone(),
                sync_id: Guid(o.sync_id),
                since: time(o.since),
            })
            .collect(),
        withdrawals: s
            .withdrawals
            .iter()
            .map(|w| Withdrawal {
                sync_id: Guid(w.sync_id),
                owner: w.owner.clone(),
                since: time(w.since),
                status: status_of(w.held.as_deref()),
            })
            .collect(),
    };
    // Loaded vectors come sorted already; this only guards the planner's assumption.
    m.normalise();
    m
}

fn folder_state(f: &FolderMemory, folder_id: &str, hub: bool) -> FolderState {
    let read_at = micros(f.read_at);
    FolderState {
        mailbox: f.mailbox.clone(),
        folder_id: folder_id.to_owned(),
        // The engine remembers a folder only as a complete read left it.
        complete: true,
        delta_link: None,
        read_at: Some(read_at - read_at.rem_euclid(DAY_MICROS)),
        copies: f
            .copies
            .iter()
            .map(|c| {
                let (email_key, name_key) = if hub {
                    key_parts(c.key.as_ref())
                } else {
                    (None, None)
                };
                CopyState {
                    sync_id: c.sync_id.0,
                    contact_id: c.contact_id.to_string(),
                    change_key: c.change_key.as_deref().map(str::to_owned),
                    version: c.version.0,
                    fields_hash: c.fields_hash,
                    user_text: None,
                    email_key,
                    name_key,
                }
            })
            .collect(),
        loose: Vec::new(),
    }
}

/// What a commit stores for a tenant besides the memory: the run log entry and the log so far.
pub struct CommitExtras<'a> {
    /// The state as loaded and trusted (its run log is carried over), or `None` when the memory
    /// was not used.
    pub loaded: Option<&'a TenantState>,
    pub committed_at: Timestamp,
    pub run: RunRecord,
}

/// The state file's records of the memory `m` a run leaves for `binding`.
pub fn to_state(m: &Memory, binding: &Binding, extras: CommitExtras<'_>) -> TenantState {
    let mut folders = Vec::with_capacity(m.users.len() + 1);
    folders.push(folder_state(&m.hub, &binding.hub_folder_id, true));
    folders.extend(
        m.users
            .iter()
            .map(|f| folder_state(f, USER_FOLDER_ID, false)),
    );
    let mut runs = extras.loaded.map(|s| s.runs.clone()).unwrap_or_default();
    runs.retain(|r| r.started != extras.run.started);
    runs.push(extras.run);
    TenantState {
        binding: binding.clone(),
        last_plan_time: Some(micros(m.last_plan_time)),
        last_commit_time: Some(micros(extras.committed_at)),
        pending_creates: m.pending_creates.iter().map(|g| g.0).collect(),
        book: Vec::new(),
        folders,
        tombstones: m
            .tombstones
            .iter()
            .map(|t| {
                let (email_key, name_key) = key_parts(t.key.as_ref());
                sync_state::Tombstone {
                    sync_id: t.sync_id.0,
                    observed_at: micros(t.observed_at),
                    email_key,
                    name_key,
                    held: held_reason(t.status),
                }
            })
            .collect(),
        opt_outs: m
            .opt_outs
            .iter()
            .map(|o| sync_state::OptOut {
                mailbox: o.mailbox.clone(),
                sync_id: o.sync_id.0,
                since: micros(o.since),
            })
            .collect(),
        withdrawals: m
            .withdrawals
            .iter()
            .map(|w| sync_state::Withdrawal {
                sync_id: w.sync_id.0,
                owner: w.owner.clone(),
                since: micros(w.since),
                held: held_reason(w.status),
            })
            .collect(),
        runs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn guid(n: u8) -> Guid {
        let mut b = [0u8; 16];
        b[0] = n;
        b[15] = 0x5a;
        Guid(b)
    }

    fn binding() -> Binding {
        Binding {
            tenant_id: "b0d5e3c2-0000-4000-8000-000000000001".into(),
            hub_mailbox_id: "hub-object-id".into(),
            hub_folder_id: "AAMkHubFolder=".into(),
        }
    }

    fn copy(n: u8, key: Option<ContactKey>) -> CopyMemory {
        CopyMemory {
            sync_id: guid(n),
            contact_id: format!("AAMkAD{n:03}AAA=").into(),
            change_key: (!n.is_multiple_of(3)).then(|| format!("EQAAABYAAAD{n}").into()),
            version: if n == 4 {
                Version::NONE
            } else {
                Version(t("2026-03-01T10:00:00.123456Z").as_microsecond() + i64::from(n))
            },
            fields_hash: u64::MAX - u64::from(n),
            key,
        }
    }

    /// A memory using every field, with times at whole microseconds (as the run plans) and read
    /// times at whole days (as they are stored).
    fn memory() -> Memory {
        let day = t("2026-03-01T00:00:00Z");
        let mut m = Memory {
            last_plan_time: t("2026-03-01T10:00:00.654321Z"),
            hub: FolderMemory {
                mailbox: "hub@contoso.com".into(),
                read_at: day,
                copies: vec![
                    copy(1, Some(ContactKey::Email("ann@fabrikam.com".into()))),
                    copy(2, Some(ContactKey::Name("bob example".into()))),
                    copy(3, None),
                    copy(4, Some(ContactKey::Email("dee@fabrikam.com".into()))),
                ],
            },
            users: vec![
                FolderMemory {
                    mailbox: "adele@contoso.com".into(),
                    read_at: day,
                    copies: vec![copy(1, None), copy(2, None)],
                },
                FolderMemory {
                    mailbox: "megan@contoso.com".into(),
                    read_at: t("2025-12-24T00:00:00Z"),
                    copies: vec![],
                },
            ],
            pending_creates: vec![guid(7), guid(8)],
            tombstones: vec![
                Tombstone {
                    sync_id: guid(9),
                    observed_at: t("2026-02-01T08:00:00.000001Z"),
                    key: Some(ContactKey::Email("gone@fabrikam.com".into())),
                    status: TombstoneStatus::Applied,
                },
                Tombstone {
                    sync_id: guid(10),
                    observed_at: t("2026-02-02T08:00:00Z"),
                    key: Some(ContactKey::Name("held by name".into())),
                    status: TombstoneStatus::Held(HoldReason::Brake),
                },
                Tombstone {
                    sync_id: guid(11),
                    observed_at: t("2026-02-03T08:00:00Z"),
                    key: None,
                    status: TombstoneStatus::Held(HoldReason::BadRead),
                },
            ],
            opt_outs: vec![OptOut {
                mailbox: "adele@contoso.com".into(),
                sync_id: guid(2),
                since: t("2026-02-10T00:00:00.5Z"),
            }],
            withdrawals: vec![
                Withdrawal {
                    sync_id: guid(12),
                    owner: "adele@contoso.com".into(),
                    since: t("2026-02-11T08:00:00.000001Z"),
                    status: TombstoneStatus::Applied,
                },
                Withdrawal {
                    sync_id: guid(13),
                    owner: "megan@contoso.com".into(),
                    since: t("2026-02-12T08:00:00Z"),
                    status: TombstoneStatus::Held(HoldReason::Brake),
                },
                Withdrawal {
                    sync_id: guid(14),
                    owner: "Megan@Contoso.com".into(),
                    since: t("2026-02-13T08:00:00Z"),
                    status: TombstoneStatus::Held(HoldReason::BadRead),
                },
                Withdrawal {
                    sync_id: guid(15),
                    owner: "megan@contoso.com".into(),
                    since: t("2026-02-14T08:00:00Z"),
                    status: TombstoneStatus::Held(HoldReason::NoState),
                },
            ],
        };
        m.normalise();
        m
    }

    fn extras(loaded: Option<&TenantState>) -> CommitExtras<'_> {
        CommitExtras {
            loaded,
            committed_at: t("2026-03-01T10:05:00Z"),
            run: RunRecord {
                started: t("2026-03-01T10:00:00.654321Z").as_microsecond(),
                finished: t("2026-03-01T10:05:00Z").as_microsecond(),
                exit_code: 0,
                counts: BTreeMap::from([("created".into(), 2)]),
            },
        }
    }

    #[test]
    fn memory_round_trips_through_the_state_records() {
        let m = memory();
        let s = to_state(&m, &binding(), extras(None));
        assert_eq!(to_memory(&s, "hub@contoso.com"), m);
        // The hub folder is stored under the binding's folder id, users' under the well-known
        // name; keys only on hub copies; held reasons spelled out.
        assert_eq!(s.folders[0].folder_id, "AAMkHubFolder=");
        assert!(s.folders[1..].iter().all(|f| f.folder_id == USER_FOLDER_ID));
        assert_eq!(
            s.folders[0].copies[0].email_key.as_deref(),
            Some("ann@fabrikam.com")
        );
        assert_eq!(
            s.folders[0].copies[1].name_key.as_deref(),
            Some("bob example")
        );
        assert!(s.folders[1].copies.iter().all(|c| c.email_key.is_none()));
        let held: Vec<Option<&str>> = s.tombstones.iter().map(|t| t.held.as_deref()).collect();
        assert_eq!(held, [None, Some("brake"), Some("bad-read")]);
        let held: Vec<(&str, Option<&str>)> = s
            .withdrawals
            .iter()
            .map(|w| (w.owner.as_str(), w.held.as_deref()))
            .collect();
        assert_eq!(
            held,
            [
                ("adele@contoso.com", None),
                ("megan@contoso.com", Some("brake")),
                ("Megan@Contoso.com", Some("bad-read")),
                ("megan@contoso.com", Some("no-state")),
            ]
        );
        assert_eq!(s.withdrawals[0].sync_id, guid(12).0);
        assert_eq!(s.last_plan_time, Some(m.last_plan_time.as_microsecond()));
    }

    #[test]
    fn the_state_records_round_trip_through_memory() {
        let s = to_state(&memory(), &binding(), extras(None));
        let back = to_state(&to_memory(&s, "hub@contoso.com"), &binding(), extras(None));
        assert_eq!(back, s);
    }

    #[test]
    fn read_times_are_stored_by_the_day_and_micro_times_exactly() {
        let mut m = memory();
        m.users[0].read_at = t("2026-03-01T23:59:59.999999Z");
        let s = to_state(&m, &binding(), extras(None));
        let adele = s
            .folders
            .iter()
            .find(|f| f.mailbox == "adele@contoso.com")
            .unwrap();
        assert_eq!(
            adele.read_at,
            Some(t("2026-03-01T00:00:00Z").as_microsecond())
        );
        let before_epoch = t("1969-12-31T12:00:00Z");
        m.users[0].read_at = before_epoch;
        let s = to_state(&m, &binding(), extras(None));
        let adele = s
            .folders
            .iter()
            .find(|f| f.mailbox == "adele@contoso.com")
            .unwrap();
        assert_eq!(
            adele.read_at,
            Some(t("1969-12-31T00:00:00Z").as_microsecond())
        );
        // Versions, fingerprints and the SyncId bytes are kept bit for bit.
        let c = &s.folders[0].copies[3];
        assert_eq!((c.version, c.fields_hash), (i64::MIN, u64::MAX - 4));
        assert_eq!(c.sync_id, guid(4).0);
    }

    #[test]
    fn what_the_planner_does_not_read_is_carried_over_or_left_out() {
        let mut loaded = to_state(&memory(), &binding(), extras(None));
        loaded.withdrawals[1].held = Some("a reason from the future".into());
        // A folder of another id (a later version's), a reason this version does not know, a
        // read time older files did not keep.
        loaded.folders.push(FolderState {
            mailbox: "megan@contoso.com".into(),
            folder_id: "AAMkSomeOtherFolder=".into(),
            ..FolderState::default()
        });
        loaded.tombstones[0].held = Some("a reason from the future".into());
        loaded.folders[1].read_at = None;
        let m = to_memory(&loaded, "HUB@contoso.com");
        assert_eq!(m.hub.mailbox, "HUB@contoso.com");
        assert_eq!(m.users.len(), 2, "the other folder is left out");
        assert_eq!(
            m.tombstones[0].status,
            TombstoneStatus::Held(HoldReason::Brake)
        );
        assert_eq!(m.users[0].read_at, m.last_plan_time);
        assert_eq!(
            m.withdrawals[1].status,
            TombstoneStatus::Held(HoldReason::Brake)
        );
        let next = to_state(&m, &binding(), extras(Some(&loaded)));
        assert_eq!(
            next.withdrawals.len(),
            4,
            "the memory's withdrawals are stored"
        );
        assert_eq!(next.withdrawals[1].held.as_deref(), Some("brake"));
        assert_eq!(next.runs.len(), 1, "the same run is not logged twice");
        assert!(next.book.is_empty() && next.folders.iter().all(|f| f.loose.is_empty()));
    }

    #[test]
    fn a_state_without_a_plan_time_or_hub_folder_maps_to_an_empty_oldest_memory() {
        let s = TenantState {
            binding: binding(),
            ..TenantState::default()
        };
        let m = to_memory(&s, "hub@contoso.com");
        assert_eq!(m, Memory::empty("hub@contoso.com", Timestamp::UNIX_EPOCH));
    }
}
