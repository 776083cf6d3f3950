//! Mailbox reads: contact folders (find and create) and contacts, whole or one by one.
//!
//! Contacts are read into the caller's type `T` with the caller's [`ReadSpec`]: this module knows
//! Graph's URLs and paging, not what a contact means to the caller. Every read goes through the
//! one request path; nothing here retries or sleeps by itself.

use reqwest::Method;
use serde::de::DeserializeOwned;

use super::GraphClient;
use super::request::{Call, parse_body};
use crate::error::GraphError;
use crate::path;
use crate::retry::Idempotency;
use crate::types::{Folder, FolderRef, ReadSpec};

impl GraphClient {
    async fn list_folders(
        &self,
        mailbox: &str,
        parent: Option<&str>,
    ) -> Result<Vec<Folder>, GraphError> {
        let base = match parent {
            None => format!("{}/contactFolders", path::user(mailbox)),
            Some(p) => format!(
                "{}/contactFolders/{}/childFolders",
                path::user(mailbox),
                path::encode_segment(p)
            ),
        };
        let q = path::query(&[
            ("$select", "id,displayName,parentFolderId"),
            ("$top", "1000"),
        ]);
        let url = self.url(&format!("{base}{q}"))?;
        let ctx = format!("listing contact folders of {mailbox}");
        self.get_all_pages(url, Some(mailbox), vec![], &ctx, None)
            .await
    }

    /// Finds a contact folder by exact `displayName` anywhere in the mailbox's folder tree
    /// (docs/compatibility.md §3): top level first, then nested levels breadth-first, so the
    /// shallowest match wins. Each level's folders are listed concurrently (within the mailbox
    /// limit).
    pub async fn find_contact_folder(
        &self,
        mailbox: &str,
        display_name: &str,
    ) -> Result<Option<Folder>, GraphError> {
        let mut level = self.list_folders(mailbox, None).await?;
        // Folder trees are small; the bound guards against a server that reports a cycle.
        let mut seen = std::collections::HashSet::new();
        for _depth in 0..64 {
            if let Some(f) = level
                .iter()
                .find(|f| f.display_name.as_deref() == Some(display_name))
            {
                return Ok(Some(f.clone()));
            }
            let parents: Vec<String> = level
                .iter()
                .filter(|f| seen.insert(f.id.clone()))
                .map(|f| f.id.clone())
                .collect();
            if parents.is_empty() {
                return Ok(None);
            }
            let children = futures::future::join_all(
                parents.iter().map(|p| self.list_folders(mailbox, Some(p))),
            )
            .await;
            level = Vec::new();
            for c in children {
                level.extend(c?);
            }
        }
        Ok(None)
    }

    /// Creates a top-level contact folder. If Graph says it already exists (`ErrorFolderExists`,
    /// a lost response to an earlier create, docs/graph-facts.md §2), the existing one is returned.
    pub async fn create_contact_folder(
        &self,
        mailbox: &str,
        display_name: &str,
    ) -> Result<Folder, GraphError> {
        let url = self.url(&format!("{}/contactFolders", path::user(mailbox)))?;
        let call = Call {
            method: Method::POST,
            url,
            mailbox: Some(mailbox.to_owned()),
            weight: 1,
            units: 1,
            permission_advice: None,
            headers: vec![],
            body: Some(
                serde_json::to_vec(&serde_json::json!({ "displayName": display_name }))
                    .unwrap_or_default(),
            ),
            idempotency: Idempotency::Create,
            echo_statuses: &[],
            context: format!("creating contact folder '{display_name}' in {mailbox}"),
        };
        match self.call(&call).await {
            Ok(r) => parse_body(&r.body, &call.context),
            Err(e)
                if e.code
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case("ErrorFolderExists")) =>
            {
                match self.find_contact_folder(mailbox, display_name).await? {
                    Some(f) => Ok(f),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Every contact of a folder, read into `T`: `$top=1000` (the maximum) and the caller's
    /// [`ReadSpec`] (`$select`, and `$expand`/`$filter` when given), following nextLinks
    /// verbatim. Each page is parsed straight into `T`. A short page with a nextLink is normal
    /// (contact groups take `$skip` slots, docs/graph-facts.md §3). A bare `&str` is a `$select`.
    pub async fn list_contacts<T: DeserializeOwned>(
        &self,
        mailbox: &str,
        folder: &FolderRef,
        spec: impl Into<ReadSpec>,
    ) -> Result<Vec<T>, GraphError> {
        let spec = spec.into();
        let mut q = vec![("$top", "1000"), ("$select", spec.select.as_str())];
        if let Some(e) = &spec.expand {
            q.push(("$expand", e));
        }
        if let Some(f) = &spec.filter {
            q.push(("$filter", f));
        }
        let url = self.url(&format!(
            "{}{}",
            path::contacts(mailbox, folder),
            path::query(&q)
        ))?;
        let ctx = format!("listing contacts of {mailbox}");
        self.get_all_pages(url, Some(mailbox), vec![], &ctx, None)
            .await
    }

    /// Reads one contact by id into `T` with the caller's `$select` (and `$expand`, e.g. an
    /// extended property; a `$filter` has no meaning here and is refused) — `GET …/contacts/{id}`
    /// resolves anywhere in the mailbox, docs/graph-facts.md §2. Useful where list output is known
    /// to be lossy (docs/graph-facts.md §9 notes). A contact deleted meanwhile is
    /// [`ErrorKind::NotFound`].
    ///
    /// [`ErrorKind::NotFound`]: crate::ErrorKind::NotFound
    pub async fn get_contact<T: DeserializeOwned>(
        &self,
        mailbox: &str,
        contact_id: &str,
        spec: impl Into<ReadSpec>,
    ) -> Result<T, GraphError> {
        let spec = spec.into();
        if spec.filter.is_some() {
            return Err(GraphError::new(
                crate::ErrorKind::BadRequest,
                "reading one contact: a $filter applies to lists, not to one contact",
            ));
        }
        let mut q = vec![("$select", spec.select.as_str())];
        if let Some(e) = &spec.expand {
            q.push(("$expand", e));
        }
        let url = self.url(&format!(
            "{}{}",
            path::contact(mailbox, &FolderRef::Default, contact_id),
            path::query(&q)
        ))?;
        self.get_json(
            url,
            Some(mailbox),
            vec![],
            format!("reading contact in {mailbox}"),
            None,
        )
        .await
    }
}
