//! Turns the emulator's state at the start of a run (a scenario, crates/graph-emulator/README.md,
//! "Scenario file") into the [`DataShape`] the bound and the old-script model take: folder sizes,
//! and how many contact copies per mailbox must be created or changed for every copy to converge
//! (docs/sync-rules.md §2).
//!
//! It counts from the data alone, with its own simple grouping, and must never call the
//! engine's planner: the bound would then be whatever the planner does, and a planner that wrote
//! too much would still score 1.0. It reuses only the engine's data definitions (synced-field
//! equality, primary email, displayName key, tag-line parsing), which are the contract, not the
//! algorithm.

use std::collections::HashMap;

use graph_emulator::Scenario;
use graph_emulator::scenario::{ContactFolder, User};
use sync_engine::fields::{fields_equal, name_key, primary_email};
use sync_engine::tags::find_tags;
use sync_engine::{Contact, FieldSet, SyncId};

use crate::model::DataShape;

/// The hub folder's name (docs/compatibility.md §3).
const HUB_FOLDER: &str = "All Contacts";

struct Copy {
    /// 0 = the hub, k + 1 = user k.
    mailbox: usize,
    contact: Contact,
    sync_id: Option<SyncId>,
}

/// Union-find over copy indices.
struct Groups(Vec<usize>);

impl Groups {
    fn root(&mut self, mut i: usize) -> usize {
        while self.0[i] != i {
            self.0[i] = self.0[self.0[i]];
            i = self.0[i];
        }
        i
    }
    fn join(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            // Keep the smaller index as root so the first copy seen names the group.
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.0[hi] = lo;
        }
    }
}

fn parse(map: &serde_json::Map<String, serde_json::Value>) -> Contact {
    // Scenario contacts are v1.0 shapes the engine reads; one it cannot read would skew the
    // bound either way, so it stops the benchmark.
    // A scenario may leave `id` out (the emulator generates it); the engine's model requires one.
    let mut map = map.clone();
    map.entry("id")
        .or_insert_with(|| serde_json::Value::String(String::new()));
    serde_json::from_value(serde_json::Value::Object(map))
        .unwrap_or_else(|e| panic!("a scenario contact the engine cannot read: {e}"))
}

fn count_folders(folders: &[ContactFolder]) -> u64 {
    folders
        .iter()
        .map(|f| 1 + count_folders(&f.child_folders))
        .sum()
}

/// The first folder named "All Contacts", breadth first (top level before nested,
/// docs/compatibility.md §3).
fn find_hub_folder(folders: &[ContactFolder]) -> Option<&ContactFolder> {
    let mut level: Vec<&ContactFolder> = folders.iter().collect();
    while !level.is_empty() {
        if let Some(f) = level.iter().find(|f| f.display_name == HUB_FOLDER) {
            return Some(f);
        }
        level = level.iter().flat_map(|f| f.child_folders.iter()).collect();
    }
    None
}

fn licensed(u: &User) -> bool {
    !u.assigned_licenses.is_empty()
}

/// The UPNs of the user mailboxes a [`DataShape`] of `s` counts, in its order (`user_contacts`,
/// `user_writes`): licensed users with a mailbox, the hub left out, in the scenario's order.
pub fn user_mailboxes(s: &Scenario, hub: &str) -> Vec<String> {
    s.tenants
        .first()
        .map(|t| {
            t.users
                .iter()
                .filter(|u| {
                    licensed(u)
                        && u.has_mailbox()
                        && !u.user_principal_name.eq_ignore_ascii_case(hub)
                })
                .map(|u| u.user_principal_name.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// The shape of the first tenant of `s`, with `hub` (a UPN) as the shared mailbox and every
/// licensed user with a mailbox in scope, in the scenario's order (the order Graph lists them).
pub fn shape_of(s: &Scenario, hub: &str) -> DataShape {
    let Some(tenant) = s.tenants.first() else {
        return DataShape::default();
    };
    let hub_user = tenant
        .users
        .iter()
        .find(|u| u.user_principal_name.eq_ignore_ascii_case(hub));
    let hub_tree = hub_user
        .map(|u| u.contact_folders.as_slice())
        .unwrap_or(&[]);
    let hub_folder = find_hub_folder(hub_tree);
    let in_scope: Vec<&User> = tenant
        .users
        .iter()
        .filter(|u| licensed(u) && !u.user_principal_name.eq_ignore_ascii_case(hub))
        .collect();
    let with_mailbox: Vec<&User> = in_scope
        .iter()
        .copied()
        .filter(|u| u.has_mailbox())
        .collect();

    let mut copies = Vec::new();
    for c in hub_folder.map(|f| f.contacts.as_slice()).unwrap_or(&[]) {
        copies.push(parse(c));
    }
    let hub_contacts = copies.len();
    let mut copies: Vec<Copy> = copies
        .into_iter()
        .map(|contact| (0, contact))
        .chain(
            with_mailbox
                .iter()
                .enumerate()
                .flat_map(|(k, u)| u.contacts.iter().map(move |c| (k + 1, parse(c)))),
        )
        .map(|(mailbox, contact)| {
            let sync_id = contact
                .personal_notes()
                .and_then(find_tags)
                .map(|t| t.sync_id);
            Copy {
                mailbox,
                contact,
                sync_id,
            }
        })
        .collect();

    // Link copies that share a SyncId, a primary email, or (both without email) a displayName:
    // the matching ladder of docs/compatibility.md §6 applied across all mailboxes at once.
    let mut groups = Groups((0..copies.len()).collect());
    let mut by_id: HashMap<SyncId, usize> = HashMap::new();
    let mut by_key: HashMap<String, usize> = HashMap::new();
    for (i, c) in copies.iter().enumerate() {
        if let Some(id) = c.sync_id {
            let first = *by_id.entry(id).or_insert(i);
            groups.join(first, i);
        }
        let key = match primary_email(&c.contact.fields) {
            Some(e) => Some(format!("e:{e}")),
            None => name_key(&c.contact.fields).map(|n| format!("n:{n}")),
        };
        if let Some(k) = key {
            let first = *by_key.entry(k).or_insert(i);
            groups.join(first, i);
        }
    }
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut order = Vec::new();
    for i in 0..copies.len() {
        let r = groups.root(i);
        members
            .entry(r)
            .or_insert_with(|| {
                order.push(r);
                Vec::new()
            })
            .push(i);
    }

    let mailboxes = with_mailbox.len() + 1;
    let mut writes = vec![0u64; mailboxes];
    // Groups without a hub copy, by the user that brings them first (for the old script's hub growth).
    let mut new_by_user = vec![0u64; mailboxes];
    for r in &order {
        let m = &members[r];
        // The winner: newest lastModifiedDateTime; ties go to the hub, then to the first mailbox.
        let winner = m
            .iter()
            .copied()
            .max_by_key(|&i| {
                let c = &copies[i];
                (
                    c.contact.last_modified(),
                    c.mailbox == 0,
                    std::cmp::Reverse(c.mailbox),
                )
            })
            .unwrap_or(m[0]);
        let hub_id = m
            .iter()
            .find(|&&i| copies[i].mailbox == 0)
            .and_then(|&i| copies[i].sync_id);
        let group_id = hub_id.or_else(|| m.iter().filter_map(|&i| copies[i].sync_id).min());
        let mut first_in = vec![None; mailboxes];
        for &i in m {
            let slot = &mut first_in[copies[i].mailbox];
            if slot.is_none() {
                *slot = Some(i);
            }
        }
        for (mb, first) in first_in.iter().enumerate() {
            let needs = match first {
                None => true,
                Some(i) => {
                    let c = &copies[*i];
                    group_id.is_none()
                        || c.sync_id != group_id
                        || !fields_equal(
                            &c.contact.fields,
                            &copies[winner].contact.fields,
                            FieldSet::DEFAULT,
                        )
                }
            };
            writes[mb] += u64::from(needs);
        }
        if first_in[0].is_none()
            && let Some(first_user) = first_in.iter().position(Option::is_some)
        {
            new_by_user[first_user] += 1;
        }
    }
    // Copies are no longer needed; free them before the caller goes on (a large tenant holds
    // hundreds of thousands).
    copies.clear();

    let mut hub_before = Vec::with_capacity(with_mailbox.len() + 1);
    let mut size = hub_contacts as u64;
    for added in new_by_user.iter().skip(1) {
        hub_before.push(size);
        size += added;
    }
    hub_before.push(size);

    DataShape {
        users: in_scope.len() as u64,
        hub_folder_exists: hub_folder.is_some(),
        hub_tree_folders: count_folders(hub_tree),
        hub_contacts: hub_contacts as u64,
        user_contacts: with_mailbox
            .iter()
            .map(|u| u.contacts.len() as u64)
            .collect(),
        hub_writes: writes[0],
        user_writes: writes[1..].to_vec(),
        hub_before_user_step1: hub_before,
    }
}
