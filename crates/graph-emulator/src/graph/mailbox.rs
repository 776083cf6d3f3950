//! The mailbox half of the Graph surface: contacts and contact folders under `/users/{user}/`
//! (docs/graph-facts.md §1–§3), for one user's mailbox already resolved and authorised by the
//! dispatcher.
//!
//! It reads and writes the store through [`Mailbox`] and shapes answers with `contact`; it never
//! checks tokens, roles or limits (the dispatcher did) and never holds anything across an await.

use axum::http::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::{Call, GraphResponse, Target, select_suffix};
use crate::contact;
use crate::error::GraphError;
use crate::extprops;
use crate::odata;
use crate::store::Mailbox;

pub(super) struct MailboxCall<'a, 'c> {
    pub(super) call: &'a Call<'c>,
    /// The user segment as the client wrote it (echoed in @odata.context).
    pub(super) user: &'a str,
    pub(super) mailbox: &'a mut Mailbox,
    pub(super) ids: &'a mut crate::store::IdGen,
    pub(super) ignore_notes: bool,
}

/// Contacts: `$top` ≤ 1000, default 10; `$skip` paging (docs/graph-facts.md §3).
const CONTACTS_DEFAULT_TOP: usize = 10;
const CONTACTS_MAX_TOP: usize = 1000;

impl MailboxCall<'_, '_> {
    pub(super) fn run(&mut self, target: &Target) -> Result<GraphResponse, GraphError> {
        // Background change key bumps that came due happened before this request arrived.
        self.mailbox.settle(self.call.now, self.ids);
        let method = self.call.req.method.clone();
        match target {
            Target::Contacts {
                folders,
                item: None,
            } => {
                let folder = self.resolve_folders(folders)?;
                match method {
                    Method::GET => self.list_contacts(&folder, folders),
                    Method::POST => self.create_contact(&folder, folders),
                    _ => Err(GraphError::method_not_allowed(false)),
                }
            }
            Target::Contacts {
                folders,
                item: Some(id),
            } => {
                let folder = if folders.is_empty() {
                    None
                } else {
                    Some(self.resolve_folders(folders)?)
                };
                match method {
                    Method::GET => self.get_contact(folder.as_deref(), id, folders),
                    Method::PATCH => self.update_contact(folder.as_deref(), id, folders),
                    Method::DELETE => self.delete_contact(folder.as_deref(), id),
                    _ => Err(GraphError::method_not_allowed(false)),
                }
            }
            Target::Folders { folders } => {
                let parent = self.resolve_folders(folders)?;
                match method {
                    Method::GET => self.list_folders(&parent, folders),
                    Method::POST => self.create_folder(&parent, folders),
                    _ => Err(GraphError::method_not_allowed(false)),
                }
            }
            Target::Delta { folders } => match method {
                Method::GET => self.delta(folders),
                _ => Err(GraphError::method_not_allowed(false)),
            },
            Target::Folder { folders } => {
                let id = self.resolve_folders(folders)?;
                match method {
                    Method::GET => {
                        self.call
                            .check_options(&["$select"], "ErrorInvalidUrlQuery")?;
                        let mut body = Map::new();
                        body.insert(
                            "@odata.context".into(),
                            json!(self.call.metadata(&format!(
                                "users('{}')/contactFolders/$entity",
                                self.user
                            ))),
                        );
                        body.extend(self.mailbox.folder_json(&id).unwrap_or_default());
                        Ok(GraphResponse::json(StatusCode::OK, Value::Object(body)))
                    }
                    _ => Err(GraphError::method_not_allowed(false)),
                }
            }
        }
    }

    /// The folder a chain of ids names: the default folder for an empty chain. Folder ids are
    /// mailbox-unique, so `contactFolders/{nested}` works directly (docs/graph-facts.md §2); a
    /// `childFolders` step must really be a child of the previous folder.
    pub(super) fn resolve_folders(&self, chain: &[String]) -> Result<String, GraphError> {
        let Some(first) = chain.first() else {
            return Ok(self.mailbox.default_folder_id.clone());
        };
        if !self.mailbox.folder_exists(first) {
            return Err(self.missing_item(first));
        }
        let mut current = first.clone();
        for next in &chain[1..] {
            let is_child = self.mailbox.child_folders(&current).any(|f| &f.id == next);
            if !is_child {
                return Err(self.missing_item(next));
            }
            current = next.clone();
        }
        Ok(current)
    }

    /// 404 for an id of ours that is gone; 400 ErrorInvalidIdMalformed for one that never could
    /// have been an Exchange id (docs/graph-facts.md §7).
    pub(super) fn missing_item(&self, id: &str) -> GraphError {
        let plausible = id.len() >= 16
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '=' | '+' | '/'));
        if plausible {
            GraphError::item_not_found()
        } else {
            GraphError::bad_request("ErrorInvalidIdMalformed", "Id is malformed.")
        }
    }

    fn context_path(&self, folders: &[String]) -> String {
        match folders.last() {
            None => format!("users('{}')/contacts", self.user),
            Some(f) => format!("users('{}')/contactFolders('{f}')/contacts", self.user),
        }
    }

    pub(super) fn select(&self) -> Result<Option<Vec<String>>, GraphError> {
        odata::parse_select(self.call.query.get("$select"), contact::is_known_property).map_err(
            |p| {
                GraphError::bad_request(
                    "RequestBroker--ParseUri",
                    format!(
                        "Could not find a property named '{p}' on type 'microsoft.graph.contact'."
                    ),
                )
            },
        )
    }

    fn paging(&self) -> Result<(usize, usize), GraphError> {
        let top = match self.call.query.get("$top") {
            None => CONTACTS_DEFAULT_TOP,
            Some(raw) => match odata::parse_usize(raw) {
                Some(n) if (1..=CONTACTS_MAX_TOP).contains(&n) => n,
                _ => {
                    return Err(GraphError::bad_request(
                        "ErrorInvalidUrlQuery",
                        format!(
                            "The value '{raw}' of $top is not valid; it must be between 1 and {CONTACTS_MAX_TOP}."
                        ),
                    ));
                }
            },
        };
        let skip = match self.call.query.get("$skip") {
            None => 0,
            Some(raw) => odata::parse_usize(raw).ok_or_else(|| {
                GraphError::bad_request(
                    "ErrorInvalidUrlQuery",
                    format!("The value '{raw}' of $skip is not valid."),
                )
            })?,
        };
        Ok((top, skip))
    }

    fn list_contacts(&self, folder: &str, folders: &[String]) -> Result<GraphResponse, GraphError> {
        self.call.check_options(
            &["$select", "$top", "$skip", "$filter", "$count", "$expand"],
            "ErrorInvalidUrlQuery",
        )?;
        let select = self.select()?;
        let (top, skip) = self.paging()?;
        let filter = match self.call.query.get("$filter") {
            None => None,
            Some(f) => Some(self.contact_filter(f)?),
        };
        let expand = self.expand()?;
        // Contact groups never match a filter; without one they take paging slots and count,
        // but are not returned, so a page can be short while a nextLink is still present
        // (docs/graph-facts.md §3, MGD-issue#8153).
        let all: Vec<&crate::store::StoredContact> = match &filter {
            None => self.mailbox.items_in(folder).collect(),
            Some(f) => self
                .mailbox
                .contacts_in(folder)
                .filter(|c| f.matches(&c.data))
                .collect(),
        };
        let ids_as_sent = self.call.variants.extended_property_ids_as_sent;
        let page: Vec<Value> = all
            .iter()
            .skip(skip)
            .take(top)
            .filter(|c| !c.is_group)
            .map(|c| {
                let mut r = contact::render(&c.data, select.as_deref());
                contact::list_notes_quirk(&mut r);
                if let Some(x) = &expand {
                    x.apply(
                        &c.data,
                        &mut r,
                        Some(self.expand_context(&c.data)),
                        ids_as_sent,
                    );
                }
                Value::Object(r)
            })
            .collect();
        let context = format!(
            "{}{}",
            self.context_path(folders),
            select_suffix(select.as_deref())
        );
        Ok(self.skip_page(&context, all.len(), page, skip, top))
    }

    fn entity(
        &self,
        folders: &[String],
        data: &Map<String, Value>,
        select: Option<&[String]>,
    ) -> Value {
        entity_body(self.entity_context(folders), data, select)
    }

    /// `@odata.context` of one contact in these folders.
    fn entity_context(&self, folders: &[String]) -> String {
        self.call
            .metadata(&format!("{}/$entity", self.context_path(folders)))
    }

    fn create_contact(
        &mut self,
        folder: &str,
        folders: &[String],
    ) -> Result<GraphResponse, GraphError> {
        let body = self.call.body_object()?;
        let mut data = contact::validate_write(&body)
            .map_err(|e| GraphError::bad_request(e.code, e.message))?;
        if self.ignore_notes {
            data.remove("personalNotes");
        }
        for k in ["id", "createdDateTime", "lastModifiedDateTime", "changeKey"] {
            data.remove(k);
        }
        // The context is computed first so the answer can render straight from the stored
        // contact (no copy of it; issue 8).
        let context = self.entity_context(folders);
        let stored = self
            .mailbox
            .create_contact(self.ids, folder, data, self.call.now);
        let body = entity_body(context, stored, None);
        self.bump_later(&body);
        Ok(GraphResponse::json(StatusCode::CREATED, body))
    }

    /// The contact with this id; with a folder in the URL it must be in that folder [UNCONF],
    /// without one it is found anywhere in the mailbox (docs/graph-facts.md §2, docs PR #12673).
    fn find(&self, folder: Option<&str>, id: &str) -> Result<(), GraphError> {
        match self.mailbox.contact(id) {
            Some(c) if folder.is_none_or(|f| c.folder_id == f) => Ok(()),
            Some(_) => Err(GraphError::item_not_found()),
            None => Err(self.missing_item(id)),
        }
    }

    fn get_contact(
        &self,
        folder: Option<&str>,
        id: &str,
        folders: &[String],
    ) -> Result<GraphResponse, GraphError> {
        self.call
            .check_options(&["$select", "$expand"], "ErrorInvalidUrlQuery")?;
        let select = self.select()?;
        let expand = self.expand()?;
        self.find(folder, id)?;
        let data = &self.mailbox.contact(id).expect("found above").data;
        let mut body = self.entity(folders, data, select.as_deref());
        if let (Some(x), Value::Object(m)) = (&expand, &mut body) {
            let ids_as_sent = self.call.variants.extended_property_ids_as_sent;
            x.apply(data, m, Some(self.expand_context(data)), ids_as_sent);
        }
        Ok(GraphResponse::json(StatusCode::OK, body))
    }

    /// `$expand`: only `singleValueExtendedProperties($filter=id eq '…')` exists on contacts
    /// here (singlevaluelegacyextendedproperty-get.md documents it on a contact by id; on lists
    /// it was observed to work, msgraph-sdk-dotnet#179).
    fn expand(&self) -> Result<Option<extprops::Expand>, GraphError> {
        self.call
            .query
            .get("$expand")
            .map(|raw| {
                extprops::parse_expand(raw).map_err(|e| GraphError::bad_request(e.code, e.message))
            })
            .transpose()
    }

    /// The `@odata.context` annotation of a contact's expanded extended properties.
    fn expand_context(&self, data: &Map<String, Value>) -> String {
        let id = data.get("id").and_then(Value::as_str).unwrap_or_default();
        self.call.metadata(&format!(
            "users('{}')/contacts('{id}')/singleValueExtendedProperties",
            self.user
        ))
    }

    /// A contacts `$filter`: the documented `emailAddresses/any(a:a/address eq '…')`
    /// (user-list-contacts.md) or `singleValueExtendedProperties/Any(ep: ep/id eq '…' and …)`
    /// (singlevaluelegacyextendedproperty-get.md); anything else is 400
    /// `ErrorInvalidUrlQueryFilter` (docs/graph-facts.md §3).
    fn contact_filter(&self, f: &str) -> Result<ContactFilter, GraphError> {
        if let Some(address) = odata::parse_email_filter(f) {
            return Ok(ContactFilter::Email(address));
        }
        match extprops::parse_list_filter(f) {
            Ok(Some(x)) => Ok(ContactFilter::Extended(x)),
            Ok(None) => Err(GraphError::invalid_filter()),
            Err(e) => Err(GraphError::bad_request(e.code, e.message)),
        }
    }

    fn check_if_match(&self, id: &str) -> Result<(), GraphError> {
        if let Some(tag) = self.call.if_match() {
            let current = self
                .mailbox
                .contact(id)
                .map(|c| c.change_key())
                .unwrap_or("");
            if !contact::if_match_ok(tag, current) {
                return Err(GraphError::change_key_conflict());
            }
        }
        Ok(())
    }

    fn update_contact(
        &mut self,
        folder: Option<&str>,
        id: &str,
        folders: &[String],
    ) -> Result<GraphResponse, GraphError> {
        self.find(folder, id)?;
        self.check_if_match(id)?;
        let body = self.call.body_object()?;
        let patch = contact::validate_write(&body)
            .map_err(|e| GraphError::bad_request(e.code, e.message))?;
        let context = self.entity_context(folders);
        let data = &self
            .mailbox
            .patch_contact(id, patch, self.ids, self.call.now)
            .expect("found above")
            .data;
        let body = entity_body(context, data, None);
        self.bump_later(&body);
        Ok(GraphResponse::json(StatusCode::OK, body))
    }

    /// `--variant change-key-bump`: the contact just written (its answer is `body`) gets a new
    /// change key shortly after, by itself (`store::ChangeKeyBump` for the sources).
    fn bump_later(&mut self, body: &Value) {
        if let (Some(how), Some(id)) = (self.call.variants.change_key_bump(), body["id"].as_str()) {
            self.mailbox.schedule_bump(id, self.call.now, how);
        }
    }

    /// `DELETE …/contacts/{id}` (contact-delete.md): 204, empty body. Graph moves the contact to
    /// Deleted Items, where it keeps no id the client knows (ids change on a move without
    /// `IdType="ImmutableId"`, docs/graph-facts.md §1): it leaves its folder's listing, its delta
    /// reports it as `@removed` (the snapshot diff in `delta.rs`), and a second DELETE is 404
    /// `ErrorItemNotFound`. The emulator does not model Deleted Items, so the contact is dropped.
    fn delete_contact(
        &mut self,
        folder: Option<&str>,
        id: &str,
    ) -> Result<GraphResponse, GraphError> {
        self.find(folder, id)?;
        self.check_if_match(id)?;
        self.mailbox.delete_contact(id, self.call.now);
        Ok(GraphResponse::empty(StatusCode::NO_CONTENT))
    }

    fn folder_context(&self, folders: &[String]) -> String {
        match folders.last() {
            None => format!("users('{}')/contactFolders", self.user),
            Some(f) => format!("users('{}')/contactFolders('{f}')/childFolders", self.user),
        }
    }

    fn list_folders(&self, parent: &str, folders: &[String]) -> Result<GraphResponse, GraphError> {
        self.call.check_options(
            &["$select", "$top", "$skip", "$filter", "$count"],
            "ErrorInvalidUrlQuery",
        )?;
        let select = odata::parse_select(self.call.query.get("$select"), |p| {
            matches!(p, "id" | "displayName" | "parentFolderId")
        })
        .map_err(|p| {
            GraphError::bad_request(
                "RequestBroker--ParseUri",
                format!(
                    "Could not find a property named '{p}' on type 'microsoft.graph.contactFolder'."
                ),
            )
        })?;
        let (top, skip) = self.paging()?;
        let name = match self.call.query.get("$filter") {
            None => None,
            Some(f) => Some(odata::parse_folder_filter(f).ok_or_else(GraphError::invalid_filter)?),
        };
        let all: Vec<Map<String, Value>> = self
            .mailbox
            .child_folders(parent)
            // Folder names compare case-insensitively in Exchange [UNCONF]
            // (docs/graph-facts.md §2).
            .filter(|f| {
                name.as_ref()
                    .is_none_or(|n| f.display_name.to_lowercase() == n.to_lowercase())
            })
            .filter_map(|f| self.mailbox.folder_json(&f.id))
            .collect();
        let page: Vec<Value> = all
            .iter()
            .skip(skip)
            .take(top)
            .map(|f| match &select {
                None => Value::Object(f.clone()),
                Some(fields) => {
                    let mut m = Map::new();
                    m.insert("id".into(), f["id"].clone());
                    for p in fields {
                        m.insert(p.clone(), f[p].clone());
                    }
                    Value::Object(m)
                }
            })
            .collect();
        let context = format!(
            "{}{}",
            self.folder_context(folders),
            select_suffix(select.as_deref())
        );
        Ok(self.skip_page(&context, all.len(), page, skip, top))
    }

    /// One page of an Outlook collection: Outlook pages with `$skip` (docs/graph-facts.md §3), the
    /// nextLink absolute and built from the host the client used, `@odata.count` when asked.
    fn skip_page(
        &self,
        context: &str,
        total: usize,
        page: Vec<Value>,
        skip: usize,
        top: usize,
    ) -> GraphResponse {
        let mut body = Map::new();
        body.insert("@odata.context".into(), json!(self.call.metadata(context)));
        if self.call.query.count_requested() {
            body.insert("@odata.count".into(), json!(total));
        }
        body.insert("value".into(), Value::Array(page));
        if skip + top < total {
            body.insert(
                "@odata.nextLink".into(),
                json!(self.call.query.next_link(
                    &self.call.req.base_url,
                    &self.call.req.path,
                    "$skip",
                    &(skip + top).to_string()
                )),
            );
        }
        GraphResponse::json(StatusCode::OK, Value::Object(body))
    }

    fn create_folder(
        &mut self,
        parent: &str,
        folders: &[String],
    ) -> Result<GraphResponse, GraphError> {
        let body = self.call.body_object()?;
        let mut name = None;
        for (k, v) in &body {
            match (k.as_str(), v) {
                ("displayName", Value::String(s)) => name = Some(s.clone()),
                ("@odata.type", _) | ("parentFolderId", Value::String(_) | Value::Null) => {}
                _ => {
                    return Err(GraphError::bad_request(
                        "RequestBodyRead",
                        format!(
                            "The property '{k}' does not exist on type 'microsoft.graph.contactFolder' or has the wrong type."
                        ),
                    ));
                }
            }
        }
        let name = name.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
            GraphError::bad_request(
                "ErrorInvalidRequest",
                "The folder's displayName must be set.",
            )
        })?;
        let id = self
            .mailbox
            .create_folder(self.ids, parent, &name, None)
            .map_err(|_| GraphError::folder_exists())?;
        let mut out = Map::new();
        out.insert(
            "@odata.context".into(),
            json!(
                self.call
                    .metadata(&format!("{}/$entity", self.folder_context(folders)))
            ),
        );
        out.extend(self.mailbox.folder_json(&id).unwrap_or_default());
        Ok(GraphResponse::json(StatusCode::CREATED, Value::Object(out)))
    }
}

/// A supported contacts `$filter`.
enum ContactFilter {
    Email(String),
    Extended(extprops::ListFilter),
}

impl ContactFilter {
    fn matches(&self, data: &Map<String, Value>) -> bool {
        match self {
            // Exact address match; case-insensitive as SMTP addresses are in Exchange [UNCONF,
            // docs/graph-facts.md §3].
            ContactFilter::Email(a) => data["emailAddresses"].as_array().is_some_and(|emails| {
                emails.iter().any(|e| {
                    e["address"]
                        .as_str()
                        .is_some_and(|x| x.eq_ignore_ascii_case(a))
                })
            }),
            ContactFilter::Extended(x) => x.matches(data),
        }
    }
}

/// One contact's answer: its `@odata.context` and the contact rendered from the stored data.
fn entity_body(context: String, data: &Map<String, Value>, select: Option<&[String]>) -> Value {
    let mut body = contact::render(data, select);
    // A stored field of that name (never expected) wins, as it did when the context went first.
    body.entry("@odata.context")
        .or_insert(Value::String(context));
    Value::Object(body)
}
