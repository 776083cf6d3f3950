//! Contact delta on the Graph surface (`…/contacts/delta`, docs/graph-facts.md §2): query options,
//! `Prefer: odata.maxpagesize`, and the answer's links and 410s; the sync states themselves
//! live in [`crate::delta`].
//!
//! It never changes the mailbox: a delta request only reads the folder's current contents.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::GraphResponse;
use super::mailbox::MailboxCall;
use crate::contact;
use crate::delta::{DeltaItem, DeltaQuery, DeltaScope, DeltaToken, prefer_max_page_size};
use crate::error::GraphError;
use crate::extprops;

impl MailboxCall<'_, '_> {
    /// A page of a delta round (docs/graph-facts.md §2; state and tokens in `delta.rs`). Query
    /// options count only on the first request: later ones carry them in their token
    /// (contact-delta.md).
    ///
    /// Two forms: `contactFolders/{id}/contacts/delta` (contact-delta.md) and
    /// `contacts/delta` for the default folder, which the reference page does not document but
    /// which the v1.0 surface has (`Get-MgUserContactDelta -UserId` in the generated PowerShell
    /// SDK) and which was observed to work without a folder id (Microsoft Q&A 1634378) [OBS];
    /// `--variant no-default-folder-delta` refuses it.
    pub(super) fn delta(&self, folders: &[String]) -> Result<GraphResponse, GraphError> {
        if folders.is_empty() && self.call.variants.no_default_folder_delta {
            // Without the function, `delta` reads as a contact id.
            return Err(GraphError::bad_request(
                "ErrorInvalidIdMalformed",
                "Id is malformed.",
            ));
        }
        self.call.check_options(
            &["$select", "$expand", "$skiptoken", "$deltatoken"],
            "ErrorInvalidUrlQuery",
        )?;
        let folder = self.resolve_folders(folders)?;
        let q = &self.call.query;
        let token = match (q.get("$skiptoken"), q.get("$deltatoken")) {
            // An empty `$deltatoken` is "the initial query": what a reset's `Location` names
            // (delta-query-overview.md, "Synchronization reset").
            (None, None) | (None, Some("")) => None,
            (Some(t), None) => Some(DeltaToken::Skip(t)),
            (None, Some(t)) => Some(DeltaToken::Delta(t)),
            (Some(_), Some(_)) => {
                return Err(GraphError::bad_request(
                    "ErrorInvalidUrlQuery",
                    "$skiptoken and $deltatoken cannot be combined.",
                ));
            }
        };
        let query = if token.is_none() {
            DeltaQuery {
                select: self.select()?,
                expand: self.delta_expand()?,
            }
        } else {
            DeltaQuery::default()
        };
        let prefer = self
            .call
            .req
            .headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| prefer_max_page_size(Some(v)));
        let page_size = self.call.delta.page_size(prefer);
        // The default folder's id is unique to the mailbox, so it keys the mailbox.
        let scope = DeltaScope {
            mailbox: self.mailbox.default_folder_id.clone(),
            folder: folder.clone(),
        };
        let mailbox = &*self.mailbox;
        let ids_as_sent = self.call.variants.extended_property_ids_as_sent;
        let link_base = format!("{}{}", self.call.req.base_url, self.call.req.path);
        let page = self
            .call
            .delta
            .request_rendering(
                &scope,
                token,
                query,
                page_size,
                self.call.now,
                |q, changed| {
                    // Parsed when the round was started; it cannot fail here.
                    let expand = q
                        .expand
                        .as_deref()
                        .and_then(|e| extprops::parse_expand(e).ok());
                    mailbox
                        .contacts_in(&folder)
                        .map(|c| {
                            let id = c.data.get("id").and_then(Value::as_str).unwrap_or_default();
                            let mut json = Map::new();
                            if changed(id, c.change_key()) {
                                json = contact::render(&c.data, None);
                                if let Some(x) = &expand {
                                    x.apply(&c.data, &mut json, None, ids_as_sent);
                                }
                            }
                            DeltaItem {
                                id: id.to_owned(),
                                change_key: c.change_key().to_owned(),
                                json,
                            }
                        })
                        .collect()
                },
            )
            .map_err(|e| {
                let err = GraphError::new(StatusCode::GONE, e.code(), e.to_string());
                match e.location(&link_base) {
                    Some(url) => err.with_header("location", url),
                    None => err,
                }
            })?;
        let body = page.body(&link_base, &self.call.metadata("Collection(contact)"));
        let mut resp = GraphResponse::json(StatusCode::OK, body);
        if prefer.is_some() {
            resp.headers.push((
                "preference-applied".into(),
                format!("odata.maxpagesize={}", page.page_size),
            ));
        }
        Ok(resp)
    }

    /// `$expand` on contact delta. contact-delta.md documents only `$select`, and `$expand` with
    /// a nested `$filter` on Outlook delta functions was observed to fail with "Parsing OData
    /// Select and Expand failed: Value cannot be null. (Parameter 'initialState')" (calendarView
    /// delta, msgraph-sdk-dotnet#2678, 2024; messages delta, OData/odata.net#1667) [OBS, not
    /// seen for contacts specifically]: refused the same way unless `--variant delta-expand`.
    fn delta_expand(&self) -> Result<Option<String>, GraphError> {
        let Some(raw) = self.call.query.get("$expand") else {
            return Ok(None);
        };
        if !self.call.variants.delta_expand {
            return Err(GraphError::bad_request(
                "BadRequest",
                "Parsing OData Select and Expand failed: Value cannot be null. (Parameter 'initialState')",
            ));
        }
        extprops::parse_expand(raw).map_err(|e| GraphError::bad_request(e.code, e.message))?;
        Ok(Some(raw.to_owned()))
    }
}
