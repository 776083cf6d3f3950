//! The scenario file (crates/graph-emulator/README.md, "Scenario file"): the tenants, apps, users
//! and mailbox contents an emulator starts from, and the format `GET /_emulator/state` exports.
//!
//! Parsing is strict: an unknown field anywhere is an error that names its path
//! (`tenants[0].apps[0].clientSecrt: unknown field ...`), because a typo that silently drops a
//! setting would make a test prove nothing. This module never touches the running store; the
//! store is built from a validated [`Scenario`] and exported back into one.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::contact;

/// A whole scenario. Every field is optional except where noted on the inner types.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    /// Lifetime of issued access tokens; Graph's usual value is 3599 (docs/graph-facts.md §8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lifetime_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quirks: Option<Quirks>,
}

/// Behaviour switches for observed-but-unconfirmed Graph quirks.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quirks {
    /// Create drops `personalNotes` (a client must re-write them after create;
    /// docs/compatibility.md §7).
    #[serde(default)]
    pub ignore_notes_on_create: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tenant {
    pub tenant_id: String,
    /// Organization display name (additive to the §2 format; `GET /organization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub domains: Vec<Domain>,
    #[serde(default)]
    pub apps: Vec<App>,
    #[serde(default)]
    pub users: Vec<User>,
    /// Directory groups (additive to the §2 format): for scoping by group membership.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<Group>,
}

/// A directory group (`GET /groups/{id}`, its `members` and `transitiveMembers`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Group {
    /// Object id (a GUID); generated when absent, but then no other group can name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub display_name: String,
    /// SMTP address of a mail-enabled group; `null` or absent for a security group.
    #[serde(default)]
    pub mail: Option<String>,
    /// Direct members: a user's object id or userPrincipalName, or another group's id (nesting;
    /// cycles are allowed and harmless).
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Domain {
    pub id: String,
    #[serde(default)]
    pub is_initial: bool,
    #[serde(default)]
    pub is_default: bool,
}

/// An app registration with its consented application permissions. It holds credentials, so
/// its `Debug` is hand-written and redacts them.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct App {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_pem: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub federated: Vec<Federated>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// Exchange application access policy: when present, only these mailboxes (UPN, mail or id)
    /// are reachable (docs/graph-facts.md §10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox_scope: Option<Vec<String>>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("certificate_pem", &self.certificate_pem.is_some())
            .field("federated", &self.federated)
            .field("roles", &self.roles)
            .field("mailbox_scope", &self.mailbox_scope)
            .finish()
    }
}

/// A federated identity credential (docs/graph-facts.md §8): a token from `issuer` with exactly
/// this `subject` and `audience`, signed by the key in `jwksPem`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Federated {
    pub issuer: String,
    pub subject: String,
    pub audience: String,
    pub jwks_pem: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub user_principal_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_enabled: Option<bool>,
    #[serde(default)]
    pub assigned_licenses: Vec<AssignedLicense>,
    /// `false`: a user without an Exchange Online mailbox. Absent means `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<bool>,
    /// The default Contacts folder, as v1.0 contacts.
    #[serde(default)]
    pub contacts: Vec<Map<String, Value>>,
    #[serde(default)]
    pub contact_folders: Vec<ContactFolder>,
    /// Contact groups (distribution lists) in the default folder: they take `$top`/`$skip` slots
    /// and count in `@odata.count` but are never returned by `/contacts` (docs/graph-facts.md §3).
    /// Additive to the §2 format.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact_groups: Vec<ContactGroup>,
}

/// A contact group (distribution list) in a folder; only its slot in paging is modelled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactGroup {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub display_name: String,
}

impl User {
    pub fn has_mailbox(&self) -> bool {
        self.mailbox.unwrap_or(true)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AssignedLicense {
    pub sku_id: String,
    #[serde(default)]
    pub disabled_plans: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactFolder {
    /// Folder id; generated if absent (additive to the §2 format, so exported state replays
    /// with the same ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub display_name: String,
    #[serde(default)]
    pub contacts: Vec<Map<String, Value>>,
    #[serde(default)]
    pub child_folders: Vec<ContactFolder>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact_groups: Vec<ContactGroup>,
}

/// A scenario that cannot be used; the message names the offending field's path.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario: {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("scenario: cannot read {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

impl Scenario {
    /// Parses and validates a scenario. Errors name the JSON path of the offending field.
    pub fn from_json(text: &str) -> Result<Scenario, ScenarioError> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let scenario: Scenario = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { "(root)".into() } else { path };
            invalid(path, e.into_inner().to_string())
        })?;
        scenario.validate()?;
        Ok(scenario)
    }

    pub fn from_file(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            file: path.display().to_string(),
            source,
        })?;
        Scenario::from_json(&text)
    }

    /// Pretty JSON in the scenario format (stable key order, so equal states give equal bytes).
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a scenario always serializes")
    }

    /// Checks what serde cannot: uniqueness, references and contact shapes.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let mut tenant_ids = HashSet::new();
        let mut all_domains = HashSet::new();
        for (ti, t) in self.tenants.iter().enumerate() {
            let tp = format!("tenants[{ti}]");
            if t.tenant_id.trim().is_empty() {
                return Err(invalid(format!("{tp}.tenantId"), "must not be empty"));
            }
            if !tenant_ids.insert(t.tenant_id.to_ascii_lowercase()) {
                return Err(invalid(format!("{tp}.tenantId"), "duplicate tenant id"));
            }
            for (di, d) in t.domains.iter().enumerate() {
                if !all_domains.insert(d.id.to_ascii_lowercase()) {
                    return Err(invalid(
                        format!("{tp}.domains[{di}].id"),
                        format!("domain {:?} is listed twice", d.id),
                    ));
                }
            }
            if t.domains.iter().filter(|d| d.is_default).count() > 1 {
                return Err(invalid(
                    format!("{tp}.domains"),
                    "more than one isDefault domain",
                ));
            }
            let mut clients = HashSet::new();
            for (ai, a) in t.apps.iter().enumerate() {
                if !clients.insert(a.client_id.to_ascii_lowercase()) {
                    return Err(invalid(
                        format!("{tp}.apps[{ai}].clientId"),
                        "duplicate client id",
                    ));
                }
            }
            let mut upns = HashSet::new();
            let mut ids = HashSet::new();
            let mut item_ids = HashSet::new();
            for (ui, u) in t.users.iter().enumerate() {
                let up = format!("{tp}.users[{ui}]");
                if !u.user_principal_name.contains('@') {
                    return Err(invalid(
                        format!("{up}.userPrincipalName"),
                        "must look like name@domain",
                    ));
                }
                if !upns.insert(u.user_principal_name.to_lowercase()) {
                    return Err(invalid(
                        format!("{up}.userPrincipalName"),
                        "duplicate userPrincipalName",
                    ));
                }
                if let Some(id) = &u.id
                    && !ids.insert(id.to_ascii_lowercase())
                {
                    return Err(invalid(format!("{up}.id"), "duplicate user id"));
                }
                if !u.has_mailbox()
                    && (!u.contacts.is_empty()
                        || !u.contact_folders.is_empty()
                        || !u.contact_groups.is_empty())
                {
                    return Err(invalid(
                        format!("{up}.mailbox"),
                        "a user without a mailbox cannot have contacts or contact folders",
                    ));
                }
                validate_contacts(&u.contacts, &format!("{up}.contacts"), &mut item_ids)?;
                validate_groups(
                    &u.contact_groups,
                    &format!("{up}.contactGroups"),
                    &mut item_ids,
                )?;
                validate_folders(
                    &u.contact_folders,
                    &format!("{up}.contactFolders"),
                    &mut item_ids,
                )?;
            }
            validate_groups_of(t, &tp)?;
        }
        Ok(())
    }
}

/// Group ids are unique GUIDs (not a user's id) and every member names a user (id or UPN) or a
/// group of the same tenant.
fn validate_groups_of(t: &Tenant, tp: &str) -> Result<(), ScenarioError> {
    let mut ids = HashSet::new();
    let user_keys: HashSet<String> = t
        .users
        .iter()
        .flat_map(|u| [u.id.clone(), Some(u.user_principal_name.clone())])
        .flatten()
        .map(|k| k.to_lowercase())
        .collect();
    for (gi, g) in t.groups.iter().enumerate() {
        let gp = format!("{tp}.groups[{gi}]");
        if g.display_name.trim().is_empty() {
            return Err(invalid(format!("{gp}.displayName"), "must not be empty"));
        }
        if let Some(id) = &g.id {
            if uuid::Uuid::parse_str(id).is_err() {
                return Err(invalid(format!("{gp}.id"), "must be a GUID"));
            }
            if !ids.insert(id.to_lowercase()) || user_keys.contains(&id.to_lowercase()) {
                return Err(invalid(format!("{gp}.id"), "duplicate object id"));
            }
        }
        if let Some(mail) = &g.mail
            && !mail.contains('@')
        {
            return Err(invalid(format!("{gp}.mail"), "must look like name@domain"));
        }
    }
    for (gi, g) in t.groups.iter().enumerate() {
        for (mi, m) in g.members.iter().enumerate() {
            let key = m.to_lowercase();
            if !user_keys.contains(&key) && !ids.contains(&key) {
                return Err(invalid(
                    format!("{tp}.groups[{gi}].members[{mi}]"),
                    format!(
                        "{m:?} is neither a user (id or userPrincipalName) nor a group id of this tenant"
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn validate_contacts(
    contacts: &[Map<String, Value>],
    path: &str,
    item_ids: &mut HashSet<String>,
) -> Result<(), ScenarioError> {
    for (ci, c) in contacts.iter().enumerate() {
        let cp = format!("{path}[{ci}]");
        contact::validate_stored(c).map_err(|e| invalid(&cp, e.message))?;
        if let Some(Value::String(id)) = c.get("id")
            && !item_ids.insert(id.clone())
        {
            return Err(invalid(
                format!("{cp}.id"),
                "duplicate item id in this mailbox",
            ));
        }
    }
    Ok(())
}

fn validate_groups(
    groups: &[ContactGroup],
    path: &str,
    item_ids: &mut HashSet<String>,
) -> Result<(), ScenarioError> {
    for (gi, g) in groups.iter().enumerate() {
        if let Some(id) = &g.id
            && !item_ids.insert(id.clone())
        {
            return Err(invalid(
                format!("{path}[{gi}].id"),
                "duplicate item id in this mailbox",
            ));
        }
    }
    Ok(())
}

fn validate_folders(
    folders: &[ContactFolder],
    path: &str,
    item_ids: &mut HashSet<String>,
) -> Result<(), ScenarioError> {
    let mut names = HashSet::new();
    for (fi, f) in folders.iter().enumerate() {
        let fp = format!("{path}[{fi}]");
        if f.display_name.trim().is_empty() {
            return Err(invalid(format!("{fp}.displayName"), "must not be empty"));
        }
        // Exchange refuses two sibling folders with the same name (ErrorFolderExists).
        if !names.insert(f.display_name.to_lowercase()) {
            return Err(invalid(
                format!("{fp}.displayName"),
                "a sibling folder already has this name",
            ));
        }
        if let Some(id) = &f.id
            && !item_ids.insert(id.clone())
        {
            return Err(invalid(
                format!("{fp}.id"),
                "duplicate folder id in this mailbox",
            ));
        }
        validate_contacts(&f.contacts, &format!("{fp}.contacts"), item_ids)?;
        validate_groups(&f.contact_groups, &format!("{fp}.contactGroups"), item_ids)?;
        validate_folders(&f.child_folders, &format!("{fp}.childFolders"), item_ids)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        Scenario::from_json(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_fields_name_their_path() {
        let e = err(
            r#"{"tenants":[{"tenantId":"t","users":[{"userPrincipalName":"a@b","mailbx":true}]}]}"#,
        );
        assert!(e.contains("tenants[0].users[0]"), "{e}");
        assert!(e.contains("mailbx"), "{e}");
        let e = err(r#"{"tenants":[], "quirks": {"ignoreNotes": true}}"#);
        assert!(e.contains("quirks"), "{e}");
    }

    #[test]
    fn contact_problems_name_the_contact() {
        let e = err(
            r#"{"tenants":[{"tenantId":"t","users":[{"userPrincipalName":"a@b",
               "contactFolders":[{"displayName":"F","contacts":[{"displayName":"x","phones":[]}]}]}]}]}"#,
        );
        assert!(
            e.contains("tenants[0].users[0].contactFolders[0].contacts[0]"),
            "{e}"
        );
        assert!(e.contains("phones"), "{e}");
        let e = err(
            r#"{"tenants":[{"tenantId":"t","users":[{"userPrincipalName":"a@b",
               "contacts":[{"businessPhones":["1","2","3"]}]}]}]}"#,
        );
        assert!(e.contains("BusinessPhones has 3 entries"), "{e}");
    }

    #[test]
    fn group_members_must_exist_in_the_tenant() {
        let g = "6a1f5a7e-0000-4000-8000-00000000000a";
        let ok = format!(
            r#"{{"tenants":[{{"tenantId":"t","users":[{{"userPrincipalName":"a@b"}}],
               "groups":[{{"id":"{g}","displayName":"G","mail":null,"members":["A@B","{g}"]}}]}}]}}"#
        );
        Scenario::from_json(&ok).unwrap();
        let e = err(&ok.replace("A@B", "nobody@b"));
        assert!(e.contains("tenants[0].groups[0].members[0]"), "{e}");
        let e = err(&ok.replace(g, "not-a-guid"));
        assert!(e.contains("groups[0].id"), "{e}");
        let e = err(r#"{"tenants":[{"tenantId":"t","groups":[{"displayName":"G","owner":"x"}]}]}"#);
        assert!(e.contains("owner"), "{e}");
    }

    #[test]
    fn required_fields_and_uniqueness() {
        assert!(err(r#"{"tenants":[{}]}"#).contains("tenantId"));
        let e = err(
            r#"{"tenants":[{"tenantId":"t","users":[{"userPrincipalName":"a@b"},{"userPrincipalName":"A@b"}]}]}"#,
        );
        assert!(e.contains("tenants[0].users[1].userPrincipalName"), "{e}");
        let e = err(
            r#"{"tenants":[{"tenantId":"t","users":[{"userPrincipalName":"a@b","mailbox":false,
               "contacts":[{"displayName":"x"}]}]}]}"#,
        );
        assert!(e.contains("mailbox"), "{e}");
    }
}
