//! Contact delta rounds (docs/graph-facts.md §2 "Delta"): what changed in a folder since a stored
//! `@odata.deltaLink`, or, for an initial round, everything in it plus the link for next time.
//!
//! A round follows `@odata.nextLink` verbatim until a page carries `@odata.deltaLink`, through the
//! same paging loop as every collection read, with `Prefer: odata.maxpagesize` on every page (the
//! header is not carried into the links) and `$select` only on the initial request (Graph encodes
//! it into the links). A round is all or nothing: a failed page, or a page that ends with neither
//! link, fails the round, so a caller can never take part of a round for all of it (a delete may
//! only follow a complete round). An expired or rejected link is [`ErrorKind::SyncReset`], whether
//! Graph says so at the first page or in the middle of a round.
//!
//! What Graph supports, looked up (contact-delta.md, v1.0):
//! - The reference documents only the folder form, `/users/{u}/contactFolders/{id}/contacts/delta`.
//!   The default-folder form `/users/{u}/contacts/delta` is part of v1.0's published API surface
//!   (Microsoft's v1.0 SDKs generate `users/{id}/contacts/delta` request builders from it) and
//!   answers like the folder form (Microsoft Q&A 1634378: "/me/contacts/delta … does not appear to
//!   require a contact folder, but this endpoint is not yet documented"). It is used for
//!   [`FolderRef::Default`] because it costs no extra request and works for an empty mailbox,
//!   whose default folder id cannot be learned. Should Graph ever refuse it (400/404/405/501), the
//!   initial round is repeated once in the documented folder form with the default folder's id,
//!   learned from the `parentFolderId` of one contact, or of one top-level folder
//!   (docs/graph-facts.md §2); the links of that round then carry the folder form.
//! - Query options: only `$select` is documented for contact delta; `$expand` is not, and it is
//!   observed to fail on Outlook delta functions (500 "Value cannot be null. Parameter name:
//!   type" for `$expand=singleValueExtendedProperties(…)` on event and message delta,
//!   microsoft-graph-docs issues #2270 and #1993). So a round takes no [`ReadSpec`]: a caller that
//!   needs an extended property of the changed contacts (PidTagSensitivity, the private flag)
//!   lists the folder's contacts having it with the documented `$filter` instead
//!   ([`ReadSpec::where_int_property`], one small request per folder; a change of the flag
//!   changes the contact, so it only needs asking when a round reported changes).
//! - Page size: at most about 200 contacts per page whatever `odata.maxpagesize` asks (Microsoft
//!   Q&A 2276060, docs/graph-facts.md §3), hence [`DELTA_PAGE_SIZE`](crate::DELTA_PAGE_SIZE).
//!
//! [`ErrorKind::SyncReset`]: crate::ErrorKind::SyncReset
//! [`ReadSpec`]: crate::ReadSpec
//! [`ReadSpec::where_int_property`]: crate::ReadSpec::where_int_property

use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::value::RawValue;
use url::Url;

use super::GraphClient;
use crate::error::{ErrorKind, GraphError};
use crate::path;
use crate::types::{DeltaRound, DeltaStart, FolderRef};

/// One page of a round; rows stay raw until told apart (a removal is not a `T`).
#[derive(Deserialize)]
struct Page<'a> {
    #[serde(default, borrow)]
    value: Vec<&'a RawValue>,
    #[serde(default, rename = "@odata.nextLink")]
    next_link: Option<String>,
    #[serde(default, rename = "@odata.deltaLink")]
    delta_link: Option<String>,
}

/// What a removed row holds: `{"id": …, "@removed": {"reason": "deleted"}}`
/// (docs/graph-facts.md §2).
#[derive(Deserialize)]
struct Removal {
    id: String,
    #[serde(rename = "@removed")]
    removed: Option<IgnoredAny>,
}

impl GraphClient {
    /// One complete delta round over a folder's contacts, read into `T`. `page_size` goes in
    /// `Prefer: odata.maxpagesize` on every page ([`DELTA_PAGE_SIZE`](crate::DELTA_PAGE_SIZE)
    /// is Graph's observed maximum). See the module documentation for what a round guarantees,
    /// and [`DeltaRound`] for how its rows read. An expired, rejected or foreign link is
    /// [`ErrorKind::SyncReset`]: read the folder whole, then start over with
    /// [`DeltaStart::Initial`].
    pub async fn contacts_delta<T: DeserializeOwned>(
        &self,
        mailbox: &str,
        folder: &FolderRef,
        start: DeltaStart,
        page_size: u32,
    ) -> Result<DeltaRound<T>, GraphError> {
        let select = match start {
            DeltaStart::Link(link) => {
                let context = format!("reading the contact changes of {mailbox}");
                let url = self.stored_link(&link, &context)?;
                return self.delta_round(mailbox, url, page_size, &context).await;
            }
            DeltaStart::Initial { select } => select,
        };
        let context = format!("reading the contacts of {mailbox} (initial delta round)");
        let first = self.initial_url(mailbox, folder, &select)?;
        let result = self.delta_round(mailbox, first, page_size, &context).await;
        match result {
            Err(e) if *folder == FolderRef::Default && default_form_refused(&e) => {
                tracing::warn!(
                    mailbox,
                    "the default-folder delta form was refused; using the folder id form: {}",
                    self.redact(&e.to_string())
                );
                let Some(id) = self.default_folder_id(mailbox).await? else {
                    let mut e = e;
                    e.message.push_str(
                        " — and the default folder's id cannot be learned (it holds no contact and no folder); read it whole instead",
                    );
                    return Err(e);
                };
                let first = self.initial_url(mailbox, &FolderRef::Id(id), &select)?;
                self.delta_round(mailbox, first, page_size, &context).await
            }
            r => r,
        }
    }

    fn initial_url(
        &self,
        mailbox: &str,
        folder: &FolderRef,
        select: &str,
    ) -> Result<Url, GraphError> {
        let q = path::query(&[("$select", select)]);
        self.url(&format!("{}/delta{q}", path::contacts(mailbox, folder)))
    }

    /// A stored delta link, checked: it must be a URL on the configured Graph root (a state kept
    /// from another endpoint cannot be resumed here).
    fn stored_link(&self, link: &str, context: &str) -> Result<Url, GraphError> {
        match Url::parse(link) {
            Ok(u) if self.inner.endpoints.is_graph_origin(&u) => Ok(u),
            _ => Err(GraphError::new(
                ErrorKind::SyncReset,
                format!(
                    "{context}: the stored delta link is not a link of the configured Graph root; read the folder whole and start a new delta round"
                ),
            )),
        }
    }

    async fn delta_round<T: DeserializeOwned>(
        &self,
        mailbox: &str,
        first: Url,
        page_size: u32,
        context: &str,
    ) -> Result<DeltaRound<T>, GraphError> {
        let headers = [("prefer", format!("odata.maxpagesize={}", page_size.max(1)))];
        let mut changed = Vec::new();
        let mut removed = Vec::new();
        let mut delta_link = None;
        self.each_page(first, Some(mailbox), &headers, context, None, |body, ctx| {
            let page: Page<'_> = serde_json::from_slice(body).map_err(|e| shape(ctx, &e))?;
            for raw in page.value {
                let text = raw.get();
                // A changed contact cannot hold the key `"@removed"` unescaped, except as a
                // whole string value; so a plain search spares parsing every row twice.
                if text.contains("\"@removed\"") {
                    let r: Removal = serde_json::from_str(text).map_err(|e| shape(ctx, &e))?;
                    if r.removed.is_some() {
                        removed.push(r.id);
                        continue;
                    }
                }
                changed.push(serde_json::from_str::<T>(text).map_err(|e| shape(ctx, &e))?);
            }
            match (page.next_link, page.delta_link) {
                (Some(next), _) => Ok(Some(next)),
                (None, Some(link)) => {
                    delta_link = Some(link);
                    Ok(None)
                }
                (None, None) => Err(GraphError::new(
                    ErrorKind::Server,
                    format!(
                        "{ctx}: the page ends with neither @odata.nextLink nor @odata.deltaLink; the round is incomplete"
                    ),
                )),
            }
        })
        .await?;
        Ok(DeltaRound {
            changed,
            removed,
            // each_page only returns Ok after a page without nextLink, which set it.
            delta_link: delta_link.unwrap_or_default(),
        })
    }

    /// The default contacts folder's id: the `parentFolderId` of one of its contacts, or of one
    /// of the folders directly under it (docs/graph-facts.md §2); `None` when it has neither.
    async fn default_folder_id(&self, mailbox: &str) -> Result<Option<String>, GraphError> {
        #[derive(Deserialize)]
        struct Item {
            #[serde(rename = "parentFolderId")]
            parent_folder_id: Option<String>,
        }
        #[derive(Deserialize)]
        struct One {
            #[serde(default)]
            value: Vec<Item>,
        }
        let q = path::query(&[("$top", "1"), ("$select", "parentFolderId")]);
        for what in ["contacts", "contactFolders"] {
            let url = self.url(&format!("{}/{what}{q}", path::user(mailbox)))?;
            let one: One = self
                .get_json(
                    url,
                    Some(mailbox),
                    vec![],
                    format!("learning the default contacts folder of {mailbox}"),
                    None,
                )
                .await?;
            if let Some(id) = one.value.into_iter().find_map(|i| i.parent_folder_id) {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }
}

/// Graph refusing the default-folder form itself (not the mailbox, not the app).
fn default_form_refused(e: &GraphError) -> bool {
    matches!(e.kind, ErrorKind::BadRequest | ErrorKind::NotFound) || e.status == Some(501)
}

fn shape(context: &str, e: &serde_json::Error) -> GraphError {
    GraphError::new(
        ErrorKind::Server,
        format!("{context}: unexpected response shape: {e}"),
    )
}
