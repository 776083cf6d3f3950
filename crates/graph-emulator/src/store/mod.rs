//! The in-memory state of an emulator: tenants, apps, users and their mailboxes, built from a
//! [`Scenario`] and exportable back into one.
//!
//! The store answers "what is there" and applies writes with Graph's server-side bookkeeping
//! (ids, timestamps, change keys, parent folders). It knows nothing about HTTP, tokens or
//! permissions, and it never reads the wall clock itself: `now` comes from the caller's [`Clock`].

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value};

use crate::contact::{self, format_ts};
use crate::scenario::{self, App, AssignedLicense, Domain, Quirks, Scenario};

mod background;
mod exchange_ids;
mod scenario_io;

pub use background::{ChangeKeyBump, DeletedContact};
pub use exchange_ids::MailboxIds;

use scenario_io::{export_user, load_folders, load_items};

/// The emulator's clock: real time plus an offset tests can move forward (token expiry, delta
/// token eviction) without sleeping.
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    pub fn now(&self) -> jiff::Timestamp {
        // The emulator stands in for a real service, so real time is right here; the offset lets
        // tests jump ahead.
        #[allow(clippy::disallowed_methods)]
        let real = jiff::Timestamp::now();
        real + jiff::SignedDuration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// Seeded randomness behind server-generated ids and change keys (their shape and per-mailbox
/// parts are `exchange_ids`'), so a run with a fixed seed and request order produces the same
/// ids.
pub struct IdGen {
    rng: SmallRng,
}

impl IdGen {
    pub fn new(seed: u64) -> Self {
        IdGen {
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// The generator behind everything else drawn at random (steps of the mailboxes' id
    /// counters, `exchange_ids`).
    pub fn rng(&mut self) -> &mut SmallRng {
        &mut self.rng
    }

    pub fn guid(&mut self) -> String {
        let mut b = [0u8; 16];
        self.rng.fill(&mut b[..]);
        uuid::Builder::from_random_bytes(b).into_uuid().to_string()
    }
}

pub struct Store {
    pub tenants: Vec<TenantState>,
    pub token_lifetime_seconds: u64,
    pub quirks: Option<Quirks>,
    pub ids: IdGen,
}

pub struct TenantState {
    pub tenant_id: String,
    pub display_name: Option<String>,
    pub domains: Vec<Domain>,
    pub apps: Vec<App>,
    pub users: Vec<UserState>,
    /// Lower-cased id and UPN → index in `users` (built once at load; users are never added
    /// later). Every Graph request resolves its mailbox here, under the store lock: a scan that
    /// lower-cased every UPN cost ~100 µs a request at 1,000 users (issue 8 benchmark).
    pub user_keys: HashMap<String, usize>,
    /// Directory groups, members resolved (`groups.rs`).
    pub groups: Vec<crate::groups::GroupState>,
}

pub struct UserState {
    pub id: String,
    pub upn: String,
    pub display_name: Option<String>,
    pub mail: Option<String>,
    pub account_enabled: Option<bool>,
    pub licenses: Vec<AssignedLicense>,
    pub mailbox: Option<Mailbox>,
}

pub struct Folder {
    pub id: String,
    pub display_name: String,
    pub parent_id: String,
}

pub struct StoredContact {
    pub folder_id: String,
    /// The full v1.0 contact including id, timestamps, changeKey and parentFolderId. For a
    /// contact group only `id` and `displayName`.
    pub data: Map<String, Value>,
    /// A contact group (distribution list): it occupies a paging slot but is never served as a
    /// contact (docs/graph-facts.md §3, MGD-issue#8153).
    pub is_group: bool,
}

/// One Exchange mailbox's contacts. Contacts are kept in creation order (a sequence number), with
/// an id index, because listing pages through a folder in a stable order.
pub struct Mailbox {
    pub root_folder_id: String,
    pub default_folder_id: String,
    /// Every folder except the default one, in creation order.
    pub folders: Vec<Folder>,
    contacts: BTreeMap<u64, StoredContact>,
    index: HashMap<String, u64>,
    next_seq: u64,
    /// This mailbox's id parts and GLOBCNT counter.
    id_space: MailboxIds,
    /// Change key bumps Exchange still owes after API writes (`background.rs`).
    bumps: Vec<background::PendingBump>,
    /// Contacts deleted through the API since the last stats reset (`background.rs`).
    deleted: Vec<DeletedContact>,
}

impl TenantState {
    /// Whether `name` is this tenant's id or one of its domains (case-insensitive).
    pub fn answers_to(&self, name: &str) -> bool {
        self.tenant_id.eq_ignore_ascii_case(name)
            || self.domains.iter().any(|d| d.id.eq_ignore_ascii_case(name))
    }

    /// A user by object id or userPrincipalName (both case-insensitive).
    pub fn user_index(&self, id_or_upn: &str) -> Option<usize> {
        self.user_keys.get(&id_or_upn.to_lowercase()).copied()
    }

    /// The `user_keys` of `users`: the first user wins a key, as a scan in order would.
    fn keys_of(users: &[UserState]) -> HashMap<String, usize> {
        let mut keys = HashMap::with_capacity(users.len() * 2);
        for (i, u) in users.iter().enumerate() {
            keys.entry(u.id.to_lowercase()).or_insert(i);
            keys.entry(u.upn.to_lowercase()).or_insert(i);
        }
        keys
    }

    pub fn app(&self, client_id: &str) -> Option<&App> {
        self.apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    }
}

impl Mailbox {
    fn new(user_id: &str) -> Self {
        // Derived from the user id alone, so the default folder keeps its id across an export
        // and replay (the scenario format has no place for it).
        let id_space = MailboxIds::for_user(user_id);
        Mailbox {
            root_folder_id: id_space.root_folder_id(),
            default_folder_id: id_space.default_folder_id(),
            folders: Vec::new(),
            contacts: BTreeMap::new(),
            index: HashMap::new(),
            next_seq: 0,
            id_space,
            bumps: Vec::new(),
            deleted: Vec::new(),
        }
    }

    /// A new change key of this mailbox (the next change number).
    fn next_change_key(&mut self, ids: &mut IdGen) -> String {
        self.id_space.new_change_key(ids.rng())
    }

    // Delta queries compare snapshots of a folder (delta.rs), so writes keep no change log.

    /// Applies a validated PATCH body to a contact (see [`StoredContact::apply_patch`]). Also
    /// what a user's edit in Outlook does (the control plane's `touch`).
    pub fn patch_contact(
        &mut self,
        id: &str,
        patch: Map<String, Value>,
        ids: &mut IdGen,
        now: jiff::Timestamp,
    ) -> Option<&StoredContact> {
        self.contact(id)?;
        let change_key = self.next_change_key(ids);
        self.contact_mut(id)?.apply_patch(patch, change_key, now);
        self.contact(id)
    }

    /// Creates a contact through the API; returns the stored v1.0 shape.
    pub fn create_contact(
        &mut self,
        ids: &mut IdGen,
        folder_id: &str,
        data: Map<String, Value>,
        now: jiff::Timestamp,
    ) -> &Map<String, Value> {
        &self.insert_contact(ids, folder_id, data, now).data
    }

    /// Moves a contact to another folder of this mailbox (a user's drag in Outlook): its id is
    /// kept (immutable ids), its version moves. `None` when there is no such contact.
    pub fn move_contact(
        &mut self,
        id: &str,
        folder_id: &str,
        ids: &mut IdGen,
        now: jiff::Timestamp,
    ) -> Option<&StoredContact> {
        self.contact(id)?;
        let change_key = self.next_change_key(ids);
        let c = self.contact_mut(id)?;
        c.folder_id = folder_id.to_owned();
        c.data
            .insert("parentFolderId".into(), Value::String(folder_id.to_owned()));
        c.touch(change_key, now);
        self.contact(id)
    }

    /// Whether the id names a folder of this mailbox (the default folder included).
    pub fn folder_exists(&self, id: &str) -> bool {
        id == self.default_folder_id || self.folders.iter().any(|f| f.id == id)
    }

    /// `{id, displayName, parentFolderId}` of a folder (the default one is named "Contacts").
    pub fn folder_json(&self, id: &str) -> Option<Map<String, Value>> {
        let (display_name, parent) = if id == self.default_folder_id {
            ("Contacts".to_string(), self.root_folder_id.clone())
        } else {
            let f = self.folders.iter().find(|f| f.id == id)?;
            (f.display_name.clone(), f.parent_id.clone())
        };
        let mut m = Map::new();
        m.insert("id".into(), Value::String(id.to_string()));
        m.insert("displayName".into(), Value::String(display_name));
        m.insert("parentFolderId".into(), Value::String(parent));
        Some(m)
    }

    pub fn child_folders(&self, parent_id: &str) -> impl Iterator<Item = &Folder> {
        self.folders
            .iter()
            .filter(move |f| f.parent_id == parent_id)
    }

    pub fn create_folder(
        &mut self,
        ids: &mut IdGen,
        parent_id: &str,
        display_name: &str,
        id: Option<String>,
    ) -> Result<String, FolderExists> {
        // Exchange compares folder names case-insensitively [UNCONF] (docs/graph-facts.md §2).
        let lower = display_name.to_lowercase();
        if self
            .child_folders(parent_id)
            .any(|f| f.display_name.to_lowercase() == lower)
        {
            return Err(FolderExists);
        }
        let id = match id {
            Some(id) => {
                self.id_space.observe_id(&id);
                id
            }
            None => self.id_space.new_folder_id(ids.rng()),
        };
        self.folders.push(Folder {
            id: id.clone(),
            display_name: display_name.to_string(),
            parent_id: parent_id.to_string(),
        });
        Ok(id)
    }

    /// Every item of a folder in order, contact groups included (they take paging slots).
    pub fn items_in<'a>(&'a self, folder_id: &'a str) -> impl Iterator<Item = &'a StoredContact> {
        self.contacts
            .values()
            .filter(move |c| c.folder_id == folder_id)
    }

    /// The contacts of a folder in order (no groups).
    pub fn contacts_in<'a>(
        &'a self,
        folder_id: &'a str,
    ) -> impl Iterator<Item = &'a StoredContact> {
        self.items_in(folder_id).filter(|c| !c.is_group)
    }

    /// A contact by id anywhere in the mailbox (a group's id is not a contact's).
    pub fn contact(&self, id: &str) -> Option<&StoredContact> {
        self.index
            .get(id)
            .and_then(|seq| self.contacts.get(seq))
            .filter(|c| !c.is_group)
    }

    pub fn contact_mut(&mut self, id: &str) -> Option<&mut StoredContact> {
        let seq = *self.index.get(id)?;
        self.contacts.get_mut(&seq).filter(|c| !c.is_group)
    }

    pub fn remove_contact(&mut self, id: &str) -> Option<StoredContact> {
        self.contact(id)?;
        let seq = self.index.remove(id)?;
        self.contacts.remove(&seq)
    }

    /// Appends a contact group to a folder.
    pub fn insert_group(
        &mut self,
        ids: &mut IdGen,
        folder_id: &str,
        group: &scenario::ContactGroup,
    ) {
        let id = match &group.id {
            Some(id) => {
                self.id_space.observe_id(id);
                id.clone()
            }
            None => self.id_space.new_item_id(folder_id, ids.rng()),
        };
        let mut data = Map::new();
        data.insert("id".into(), Value::String(id.clone()));
        data.insert(
            "displayName".into(),
            Value::String(group.display_name.clone()),
        );
        let seq = self.next_seq;
        self.next_seq += 1;
        self.index.insert(id, seq);
        self.contacts.insert(
            seq,
            StoredContact {
                folder_id: folder_id.to_string(),
                data,
                is_group: true,
            },
        );
    }

    /// Stores a contact whose writable properties are already validated and normalised, filling
    /// in what the server sets. Existing `id`/timestamps/`changeKey` (from a scenario) are kept.
    pub fn insert_contact(
        &mut self,
        ids: &mut IdGen,
        folder_id: &str,
        mut data: Map<String, Value>,
        now: jiff::Timestamp,
    ) -> &StoredContact {
        // Validated properties, possibly with nulls to remove: keep only the set ones.
        if let Some(Value::Array(props)) = data.remove(crate::extprops::KEY) {
            crate::extprops::merge(&mut data, props);
        }
        contact::fill_defaults(&mut data);
        let blank = |v: Option<&Value>| v.and_then(Value::as_str).is_none_or(str::is_empty);
        if blank(data.get("displayName"))
            && let Some(name) = contact::composed_display_name(&data)
        {
            data.insert("displayName".into(), Value::String(name));
        }
        let id = match data.get("id").and_then(Value::as_str) {
            Some(id) => {
                self.id_space.observe_id(id);
                id.to_string()
            }
            None => self.id_space.new_item_id(folder_id, ids.rng()),
        };
        let created = data
            .get("createdDateTime")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| format_ts(now));
        let modified = data
            .get("lastModifiedDateTime")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| created.clone());
        match data.get("changeKey").and_then(Value::as_str) {
            Some(ck) => self.id_space.observe_change_key(ck),
            None => {
                let ck = self.next_change_key(ids);
                data.insert("changeKey".into(), Value::String(ck));
            }
        }
        data.insert("id".into(), Value::String(id.clone()));
        data.insert("createdDateTime".into(), Value::String(created));
        data.insert("lastModifiedDateTime".into(), Value::String(modified));
        data.insert(
            "parentFolderId".into(),
            Value::String(folder_id.to_string()),
        );
        let seq = self.next_seq;
        self.next_seq += 1;
        self.index.insert(id, seq);
        self.contacts.insert(
            seq,
            StoredContact {
                folder_id: folder_id.to_string(),
                data,
                is_group: false,
            },
        );
        &self.contacts[&seq]
    }
}

/// A sibling folder already has that name.
#[derive(Debug)]
pub struct FolderExists;

impl StoredContact {
    pub fn change_key(&self) -> &str {
        self.data
            .get("changeKey")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// Applies a validated PATCH body: collections are replaced wholesale, the change key and
    /// lastModifiedDateTime move. Changing a name part without resending displayName regenerates
    /// it, as Exchange may (contact-update.md: "include displayName in every PATCH to keep it").
    pub fn apply_patch(
        &mut self,
        patch: Map<String, Value>,
        change_key: String,
        now: jiff::Timestamp,
    ) {
        let touches_names = ["givenName", "middleName", "surname"]
            .iter()
            .any(|k| patch.contains_key(*k));
        let sets_display = patch.contains_key("displayName");
        for (k, v) in patch {
            match (k.as_str(), v) {
                // Extended properties merge: a PATCH sets the ones it names (post-
                // singlevalueextendedproperties.md: "update … an existing instance").
                (crate::extprops::KEY, Value::Array(props)) => {
                    crate::extprops::merge(&mut self.data, props);
                }
                (_, v) => {
                    self.data.insert(k, v);
                }
            }
        }
        contact::fill_defaults(&mut self.data);
        if touches_names
            && !sets_display
            && let Some(name) = contact::composed_display_name(&self.data)
        {
            self.data.insert("displayName".into(), Value::String(name));
        }
        self.touch(change_key, now);
    }

    /// A new version: the given change key (the mailbox's next) and modification time.
    pub fn touch(&mut self, change_key: String, now: jiff::Timestamp) {
        self.data
            .insert("changeKey".into(), Value::String(change_key));
        self.data
            .insert("lastModifiedDateTime".into(), Value::String(format_ts(now)));
    }
}

impl Store {
    /// Builds the store from a validated scenario. `seed` drives generated ids.
    pub fn from_scenario(sc: &Scenario, seed: u64, now: jiff::Timestamp) -> Store {
        let mut ids = IdGen::new(seed);
        let mut tenants = Vec::new();
        for t in &sc.tenants {
            let mut users = Vec::new();
            for u in &t.users {
                let id = u.id.clone().unwrap_or_else(|| ids.guid());
                let mailbox = u.has_mailbox().then(|| {
                    let mut mb = Mailbox::new(&id);
                    let default = mb.default_folder_id.clone();
                    load_items(
                        &mut mb,
                        &mut ids,
                        &default,
                        &u.contacts,
                        &u.contact_groups,
                        now,
                    );
                    load_folders(&mut mb, &mut ids, &default, &u.contact_folders, now);
                    mb
                });
                users.push(UserState {
                    id,
                    upn: u.user_principal_name.clone(),
                    display_name: u.display_name.clone(),
                    mail: u.mail.clone(),
                    account_enabled: u.account_enabled,
                    licenses: u.assigned_licenses.clone(),
                    mailbox,
                });
            }
            let user_keys = TenantState::keys_of(&users);
            let groups = crate::groups::load(&t.groups, &user_keys, &mut ids);
            tenants.push(TenantState {
                tenant_id: t.tenant_id.clone(),
                display_name: t.display_name.clone(),
                domains: t.domains.clone(),
                apps: t.apps.clone(),
                user_keys,
                users,
                groups,
            });
        }
        Store {
            tenants,
            token_lifetime_seconds: sc.token_lifetime_seconds.unwrap_or(3599),
            quirks: sc.quirks.clone(),
            ids,
        }
    }

    pub fn ignore_notes_on_create(&self) -> bool {
        self.quirks
            .as_ref()
            .is_some_and(|q| q.ignore_notes_on_create)
    }

    pub fn tenant_index(&self, name: &str) -> Option<usize> {
        self.tenants.iter().position(|t| t.answers_to(name))
    }

    /// The current state in scenario format (crates/graph-emulator/README.md, "Control plane"
    /// `GET /_emulator/state`).
    pub fn export(&self) -> Scenario {
        let tenants = self
            .tenants
            .iter()
            .map(|t| scenario::Tenant {
                tenant_id: t.tenant_id.clone(),
                display_name: t.display_name.clone(),
                domains: t.domains.clone(),
                apps: t.apps.clone(),
                users: t.users.iter().map(export_user).collect(),
                groups: crate::groups::export(&t.groups),
            })
            .collect();
        Scenario {
            tenants,
            token_lifetime_seconds: Some(self.token_lifetime_seconds),
            quirks: self.quirks.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ts(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_767_600_000 + s).unwrap()
    }

    #[test]
    fn api_writes_keep_graphs_bookkeeping() {
        let mut ids = IdGen::new(1);
        let mut mb = Mailbox::new("u");
        let folder = mb.default_folder_id.clone();
        let a = mb.create_contact(&mut ids, &folder, Map::new(), ts(1));
        let a_id = a["id"].as_str().unwrap().to_string();
        assert_eq!(a["parentFolderId"], folder.as_str());
        let before = a["changeKey"].clone();
        let patch = json!({"jobTitle": "CFO"}).as_object().unwrap().clone();
        let patched = mb.patch_contact(&a_id, patch, &mut ids, ts(2)).unwrap();
        assert_ne!(patched.data["changeKey"], before);
        assert_eq!(patched.data["lastModifiedDateTime"], "2026-01-05T08:00:02Z");
        assert_eq!(patched.data["jobTitle"], "CFO");
        assert!(mb.delete_contact(&a_id, ts(3)).is_some());
        assert!(mb.contact(&a_id).is_none());
        assert!(
            mb.delete_contact(&a_id, ts(4)).is_none(),
            "deleting twice finds nothing"
        );
    }
}
