//! Contact delta on the Graph surface (`…/contacts/delta`, graph-facts §2): query options,
//! `Prefer: odata.maxpagesize`, and the answer's links; the sync states themselves live in
//! [`crate::delta`].
//!
//! It never changes the mailbox: a delta request only reads the folder's current contents.

use axum::http::StatusCode;
use serde_json::Value;

use super::GraphResponse;
use super::mailbox::MailboxCall;
use crate::contact;
use crate::delta::{DeltaItem, DeltaScope, DeltaToken, prefer_max_page_size};
use crate::error::GraphError;

impl MailboxCall<'_, '_> {
    /// A page of a delta round (graph-facts §2; state and tokens in `delta.rs`). `$select`
    /// counts only on the first request: later ones carry it in their token.
    pub(super) fn delta(&self, folders: &[String]) -> Result<GraphResponse, GraphError> {
        self.call.check_options(
            &["$select", "$skiptoken", "$deltatoken"],
            "ErrorInvalidUrlQuery",
        )?;
        let folder = self.resolve_folders(folders)?;
        let q = &self.call.query;
        let token = match (q.get("$skiptoken"), q.get("$deltatoken")) {
            (None, None) => None,
            (Some(t), None) => Some(DeltaToken::Skip(t)),
            (None, Some(t)) => Some(DeltaToken::Delta(t)),
            (Some(_), Some(_)) => {
                return Err(GraphError::bad_request(
                    "ErrorInvalidUrlQuery",
                    "$skiptoken and $deltatoken cannot be combined.",
                ));
            }
        };
        let select = if token.is_none() {
            self.select()?
        } else {
            None
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
        let page = self
            .call
            .delta
            .request(&scope, token, select, page_size, self.call.now, || {
                mailbox
                    .contacts_in(&folder)
                    .map(|c| DeltaItem {
                        id: c
                            .data
                            .get("id")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        change_key: c.change_key().to_owned(),
                        json: contact::render(&c.data, None),
                    })
                    .collect()
            })
            .map_err(|e| GraphError::new(StatusCode::GONE, e.code(), e.to_string()))?;
        let link_base = format!("{}{}", self.call.req.base_url, self.call.req.path);
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
}
