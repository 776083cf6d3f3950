//! Moving a mailbox between the scenario format and the store: loading a user's folders,
//! contacts and contact groups, and exporting them back in the same format.
//!
//! Only used at load and at `GET /_emulator/state`; it never sees HTTP.

use serde_json::{Map, Value};

use super::{IdGen, Mailbox, UserState};
use crate::contact::{self, format_ts};
use crate::scenario;

/// Loads a folder's contacts with its groups spread evenly between them (group `j` of `k` goes
/// before contact `(j+1)·n/(k+1)`), so groups fall inside pages rather than only at the end.
/// The placement depends only on the two lists, so export → replay is stable.
pub(super) fn load_items(
    mb: &mut Mailbox,
    ids: &mut IdGen,
    folder_id: &str,
    contacts: &[Map<String, Value>],
    groups: &[scenario::ContactGroup],
    now: jiff::Timestamp,
) {
    let n = contacts.len();
    let k = groups.len();
    let slot = |j: usize| (j + 1) * n / (k + 1);
    let mut next_group = 0;
    for (i, c) in contacts.iter().enumerate() {
        while next_group < k && slot(next_group) == i {
            mb.insert_group(ids, folder_id, &groups[next_group]);
            next_group += 1;
        }
        load_contact(mb, ids, folder_id, c, now);
    }
    for g in &groups[next_group..] {
        mb.insert_group(ids, folder_id, g);
    }
}

fn load_contact(
    mb: &mut Mailbox,
    ids: &mut IdGen,
    folder_id: &str,
    c: &Map<String, Value>,
    now: jiff::Timestamp,
) {
    let mut data = Map::new();
    for (k, v) in c {
        // Validated already (Scenario::validate); normalise the writable part the same way a
        // POST would, and keep the server-set part verbatim. parentFolderId is positional.
        match k.as_str() {
            "createdDateTime" | "lastModifiedDateTime" => {
                let v = match contact::parse_timestamp(k, v) {
                    Ok(ts) => Value::String(format_ts(ts)),
                    Err(_) => v.clone(),
                };
                data.insert(k.clone(), v);
            }
            "id" | "changeKey" => {
                data.insert(k.clone(), v.clone());
            }
            "parentFolderId" => {}
            _ => {
                let one: Map<String, Value> = [(k.clone(), v.clone())].into_iter().collect();
                if let Ok(norm) = contact::validate_write(&one) {
                    data.extend(norm);
                }
            }
        }
    }
    mb.insert_contact(ids, folder_id, data, now);
}

pub(super) fn load_folders(
    mb: &mut Mailbox,
    ids: &mut IdGen,
    parent_id: &str,
    folders: &[scenario::ContactFolder],
    now: jiff::Timestamp,
) {
    for f in folders {
        // Sibling names were checked unique by Scenario::validate.
        let Ok(id) = mb.create_folder(ids, parent_id, &f.display_name, f.id.clone()) else {
            continue;
        };
        load_items(mb, ids, &id, &f.contacts, &f.contact_groups, now);
        load_folders(mb, ids, &id, &f.child_folders, now);
    }
}

pub(super) fn export_user(u: &UserState) -> scenario::User {
    let (contacts, contact_folders) = match &u.mailbox {
        Some(mb) => (
            export_contacts(mb, &mb.default_folder_id),
            export_folders(mb, &mb.default_folder_id),
        ),
        None => (Vec::new(), Vec::new()),
    };
    scenario::User {
        id: Some(u.id.clone()),
        user_principal_name: u.upn.clone(),
        display_name: u.display_name.clone(),
        mail: u.mail.clone(),
        account_enabled: u.account_enabled,
        assigned_licenses: u.licenses.clone(),
        mailbox: Some(u.mailbox.is_some()),
        contacts,
        contact_folders,
        contact_groups: u
            .mailbox
            .as_ref()
            .map(|mb| export_groups(mb, &mb.default_folder_id))
            .unwrap_or_default(),
    }
}

fn export_groups(mb: &Mailbox, folder_id: &str) -> Vec<scenario::ContactGroup> {
    mb.items_in(folder_id)
        .filter(|c| c.is_group)
        .map(|c| scenario::ContactGroup {
            id: c.data.get("id").and_then(Value::as_str).map(str::to_string),
            display_name: c
                .data
                .get("displayName")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        })
        .collect()
}

fn export_contacts(mb: &Mailbox, folder_id: &str) -> Vec<Map<String, Value>> {
    mb.contacts_in(folder_id).map(|c| c.data.clone()).collect()
}

fn export_folders(mb: &Mailbox, parent_id: &str) -> Vec<scenario::ContactFolder> {
    mb.child_folders(parent_id)
        .map(|f| scenario::ContactFolder {
            id: Some(f.id.clone()),
            display_name: f.display_name.clone(),
            contacts: export_contacts(mb, &f.id),
            child_folders: export_folders(mb, &f.id),
            contact_groups: export_groups(mb, &f.id),
        })
        .collect()
}
