//! Reads: licensed users, one user, contact folders (find and create), and contacts.
//!
//! Contacts are read into the caller's type `T` with the caller's `$select`: this module knows
//! Graph's URLs and paging, not what a contact means to the caller. Every read goes through the
//! one request path; nothing here retries or sleeps by itself.

use reqwest::Method;
use serde::de::DeserializeOwned;

use super::GraphClient;
use super::request::{Call, parse_body};
use crate::error::GraphError;
use crate::path;
use crate::retry::Idempotency;
use crate::types::{Folder, FolderRef, User};

impl GraphClient {
    /// All licensed users: `GET /users` with the documented filter `assignedLicenses/$count ne 0`,
    /// which is an advanced query: `ConsistencyLevel: eventual` and `$count=true` on every page
    /// (graph-facts §4), `$top=999` (the maximum, graph-facts §3).
    pub async fn licensed_users(&self) -> Result<Vec<User>, GraphError> {
        let q = path::query(&[
            ("$select", "id,userPrincipalName,mail"),
            ("$filter", "assignedLicenses/$count ne 0"),
            ("$count", "true"),
            ("$top", "999"),
        ]);
        let url = self.url(&format!("/users{q}"))?;
        self.get_all_pages(
            url,
            None,
            vec![("consistencylevel", "eventual".to_owned())],
            "listing licensed users",
        )
        .await
    }

    /// One user by id or UPN (`GET /users/{x}`); the hub mailbox check uses it.
    pub async fn user(&self, id_or_upn: &str) -> Result<User, GraphError> {
        let q = path::query(&[("$select", "id,userPrincipalName,mail")]);
        let url = self.url(&format!("{}{q}", path::user(id_or_upn)))?;
        self.get_json(url, None, vec![], format!("reading user {id_or_upn}"))
            .await
    }

    /// The organization's verified domain names (`GET /organization` is a one-element
    /// collection whose `verifiedDomains` lists them, graph-facts §4), e.g. to match a
    /// test-user key that names a domain to a tenant configured by its GUID.
    pub async fn verified_domains(&self) -> Result<Vec<String>, GraphError> {
        #[derive(serde::Deserialize)]
        struct Org {
            #[serde(default, rename = "verifiedDomains")]
            verified_domains: Vec<Domain>,
        }
        #[derive(serde::Deserialize)]
        struct Domain {
            name: String,
        }
        let url = self.url(&format!(
            "/organization{}",
            path::query(&[("$select", "id,verifiedDomains")])
        ))?;
        let orgs: Vec<Org> = self
            .get_all_pages(
                url,
                None,
                vec![],
                "reading the organization's verified domains",
            )
            .await?;
        Ok(orgs
            .into_iter()
            .flat_map(|o| o.verified_domains)
            .map(|d| d.name)
            .collect())
    }

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
        self.get_all_pages(url, Some(mailbox), vec![], &ctx).await
    }

    /// Finds a contact folder by exact `displayName` anywhere in the mailbox's folder tree
    /// (SPEC §2.3): top level first, then nested levels breadth-first, so the shallowest match
    /// wins. Each level's folders are listed concurrently (within the mailbox limit).
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
    /// a lost response to an earlier create, graph-facts §2), the existing one is returned.
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
    /// `$select` (comma-separated property names; select exactly what `T` reads, graph-facts §3),
    /// following nextLinks verbatim. Each page is parsed straight into `T`. A short page with a
    /// nextLink is normal (contact groups take `$skip` slots, graph-facts §3).
    pub async fn list_contacts<T: DeserializeOwned>(
        &self,
        mailbox: &str,
        folder: &FolderRef,
        select: &str,
    ) -> Result<Vec<T>, GraphError> {
        let q = path::query(&[("$top", "1000"), ("$select", select)]);
        let url = self.url(&format!("{}{q}", path::contacts(mailbox, folder)))?;
        let ctx = format!("listing contacts of {mailbox}");
        self.get_all_pages(url, Some(mailbox), vec![], &ctx).await
    }

    /// Reads one contact by id into `T` with the caller's `$select` (`GET …/contacts/{id}`
    /// resolves anywhere in the mailbox, graph-facts §2). Useful where list output is known to be
    /// lossy (graph-facts §9 notes). A contact deleted meanwhile is [`ErrorKind::NotFound`].
    ///
    /// [`ErrorKind::NotFound`]: crate::ErrorKind::NotFound
    pub async fn get_contact<T: DeserializeOwned>(
        &self,
        mailbox: &str,
        contact_id: &str,
        select: &str,
    ) -> Result<T, GraphError> {
        let q = path::query(&[("$select", select)]);
        let url = self.url(&format!(
            "{}{q}",
            path::contact(mailbox, &FolderRef::Default, contact_id)
        ))?;
        self.get_json(
            url,
            Some(mailbox),
            vec![],
            format!("reading contact in {mailbox}"),
        )
        .await
    }
}
