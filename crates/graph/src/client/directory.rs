//! Directory reads: licensed users, one user, the tenant's verified domains, groups and their
//! transitive user members.
//!
//! Directory endpoints answer directory error codes (`Request_ResourceNotFound`,
//! `Authorization_RequestDenied`, docs/graph-facts.md §7); a missing permission is reported with
//! the permission the endpoint needs. Every read goes through the one request path; nothing here
//! retries or sleeps by itself.

use serde::de::DeserializeOwned;

use super::GraphClient;
use crate::error::{ErrorKind, GraphError};
use crate::path;
use crate::types::{Group, User, VerifiedDomain};

/// What a 403 from a group endpoint means (group-get.md, group-list-transitivemembers.md:
/// application permission GroupMember.Read.All, or a higher one such as Directory.Read.All).
const GROUP_PERMISSION: &str = "grant the app the application permission GroupMember.Read.All (or Directory.Read.All) and give admin consent";

/// What a 403 from `/organization` means (organization-get.md: Organization.Read.All, or
/// Directory.Read.All).
const ORGANIZATION_PERMISSION: &str = "grant the app the application permission Organization.Read.All (or Directory.Read.All) and give admin consent";

impl GraphClient {
    /// All licensed users: `GET /users` with the documented filter `assignedLicenses/$count ne 0`,
    /// which is an advanced query: `ConsistencyLevel: eventual` and `$count=true` on every page
    /// (docs/graph-facts.md §4), `$top=999` (the maximum, docs/graph-facts.md §3).
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
            None,
        )
        .await
    }

    /// One user by id or UPN (`GET /users/{x}`); the hub mailbox check uses it.
    pub async fn user(&self, id_or_upn: &str) -> Result<User, GraphError> {
        let q = path::query(&[("$select", "id,userPrincipalName,mail")]);
        let url = self.url(&format!("{}{q}", path::user(id_or_upn)))?;
        self.get_json(url, None, vec![], format!("reading user {id_or_upn}"), None)
            .await
    }

    /// The tenant's verified domains (`GET /organization?$select=verifiedDomains`; the collection
    /// holds the one organization, docs/graph-facts.md §4). The primary domain is the one with
    /// `is_default`, the `*.onmicrosoft.com` one has `is_initial`.
    pub async fn verified_domains(&self) -> Result<Vec<VerifiedDomain>, GraphError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Org {
            #[serde(default)]
            verified_domains: Vec<VerifiedDomain>,
        }
        let q = path::query(&[("$select", "verifiedDomains")]);
        let url = self.url(&format!("/organization{q}"))?;
        let orgs: Vec<Org> = self
            .get_all_pages(
                url,
                None,
                vec![],
                "reading the organization's verified domains",
                Some(ORGANIZATION_PERMISSION),
            )
            .await?;
        Ok(orgs.into_iter().flat_map(|o| o.verified_domains).collect())
    }

    /// A group by object id (`GET /groups/{id}`) or, when `id_or_mail` holds an `@`, by mail
    /// address (`GET /groups?$filter=mail eq '…'`). An unknown group is
    /// [`ErrorKind::NotFound`], and so is, without a request, a name that is neither a GUID (all
    /// directory object ids are) nor a mail address; a missing GroupMember.Read.All (or
    /// Directory.Read.All) is [`ErrorKind::Permission`], saying so.
    pub async fn group_by_id_or_mail(&self, id_or_mail: &str) -> Result<Group, GraphError> {
        let select = "id,displayName,mail";
        if !id_or_mail.contains('@') {
            if uuid::Uuid::try_parse(id_or_mail).is_err() {
                return Err(GraphError::new(
                    ErrorKind::NotFound,
                    format!(
                        "group '{id_or_mail}': neither a group object id (a GUID) nor a mail address"
                    ),
                ));
            }
            let q = path::query(&[("$select", select)]);
            let url = self.url(&format!("/groups/{}{q}", path::encode_segment(id_or_mail)))?;
            return self
                .get_json(
                    url,
                    None,
                    vec![],
                    format!("reading group {id_or_mail}"),
                    Some(GROUP_PERMISSION),
                )
                .await;
        }
        let filter = format!("mail eq {}", path::odata_string(id_or_mail));
        let q = path::query(&[("$filter", &filter), ("$select", select)]);
        let url = self.url(&format!("/groups{q}"))?;
        let context = format!("looking up the group with mail address {id_or_mail}");
        let mut found: Vec<Group> = self
            .get_all_pages(url, None, vec![], &context, Some(GROUP_PERMISSION))
            .await?;
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(GraphError::new(
                ErrorKind::NotFound,
                format!("{context}: no group has this mail address"),
            )),
            // Mail addresses are unique in a tenant; two answers mean a directory in a state we
            // do not guess about.
            n => Err(GraphError::new(
                ErrorKind::BadRequest,
                format!("{context}: {n} groups have this mail address; name the group by its id"),
            )),
        }
    }

    /// Every user in a group, directly or through nested groups, read into `T` with the caller's
    /// `$select`: `GET /groups/{id}/transitiveMembers/microsoft.graph.user`, `$top=999` (the
    /// maximum page size of directory member lists), following nextLinks. The OData cast to
    /// `microsoft.graph.user` is an advanced query: `ConsistencyLevel: eventual` and
    /// `$count=true` are required (group-list-transitivemembers.md; aad-advanced-queries.md lists
    /// "OData cast with transitive members list" as advanced-only), and the header goes on every
    /// page (docs/graph-facts.md §3). The directory index behind advanced queries can lag recent
    /// membership changes slightly.
    pub async fn group_transitive_users<T: DeserializeOwned>(
        &self,
        group_id: &str,
        select: &str,
    ) -> Result<Vec<T>, GraphError> {
        let q = path::query(&[("$select", select), ("$count", "true"), ("$top", "999")]);
        let url = self.url(&format!(
            "/groups/{}/transitiveMembers/microsoft.graph.user{q}",
            path::encode_segment(group_id)
        ))?;
        self.get_all_pages(
            url,
            None,
            vec![("consistencylevel", "eventual".to_owned())],
            &format!("listing the users of group {group_id}"),
            Some(GROUP_PERMISSION),
        )
        .await
    }
}
