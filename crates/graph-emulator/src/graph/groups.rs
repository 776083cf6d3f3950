//! Directory groups on the Graph surface: `GET /groups` (with `$filter=mail eq '…'`),
//! `GET /groups/{id}`, and a group's `members` / `transitiveMembers`, optionally cast to one
//! member type (`/microsoft.graph.user`). Sources: group-get.md, group-list.md,
//! group-list-members.md, group-list-transitivemembers.md, aad-advanced-queries.md.
//!
//! It only reads the store; the dispatcher checked the app's group permission. Members an app
//! may not read come back with "limited information", as Graph does.

use serde_json::{Map, Value, json};

use super::directory::{DirectoryPage, USER_DEFAULT_PROPS, USER_EXTRA_PROPS, user_json};
use super::{Call, GraphResponse, select_suffix};
use crate::error::GraphError;
use crate::groups::{self, GroupState, Member};
use crate::odata;
use crate::store::TenantState;

/// Roles that let an app list groups and their members (group-list-transitivemembers.md:
/// GroupMember.Read.All least privileged).
pub(super) const GROUP_ROLES: &[&str] = &[
    "GroupMember.Read.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
    "Group.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// Roles that let an app read users' properties. Without one, user members come back with only
/// `@odata.type` and `id`, their other properties null ("Limited information returned for
/// inaccessible member objects", group-list-transitivemembers.md).
const USER_READ_ROLES: &[&str] = &[
    "User.ReadBasic.All",
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// Group properties returned by default (group.md, a subset of v1.0's defaults: the ones a
/// scenario can give a value to, plus the flags derived from them).
const GROUP_PROPS: &[&str] = &[
    "id",
    "deletedDateTime",
    "classification",
    "description",
    "displayName",
    "groupTypes",
    "mail",
    "mailEnabled",
    "mailNickname",
    "proxyAddresses",
    "securityEnabled",
    "visibility",
];

/// Which part of a group's membership a request reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct MembersQuery {
    pub transitive: bool,
    /// The OData cast segment, e.g. `microsoft.graph.user`.
    pub cast: Option<String>,
}

fn group_json(g: &GroupState, select: Option<&[String]>) -> Map<String, Value> {
    let value = |p: &str| -> Value {
        match p {
            "id" => json!(g.id),
            "displayName" => json!(g.display_name),
            "mail" => json!(g.mail),
            "mailEnabled" => json!(g.mail.is_some()),
            // The mail's local part; a security group's nickname is not modelled [UNCONF].
            "mailNickname" => json!(
                g.mail
                    .as_deref()
                    .and_then(|m| m.split('@').next())
                    .unwrap_or("00000000-0000-0000-0000-000000000000")
            ),
            "proxyAddresses" => json!(
                g.mail
                    .iter()
                    .map(|m| format!("SMTP:{m}"))
                    .collect::<Vec<_>>()
            ),
            "groupTypes" => json!([]),
            "securityEnabled" => json!(true),
            _ => Value::Null,
        }
    };
    let fields: Vec<&str> = match select {
        None => GROUP_PROPS.to_vec(),
        Some(s) => s.iter().map(String::as_str).collect(),
    };
    fields
        .into_iter()
        .map(|p| (p.to_owned(), value(p)))
        .collect()
}

fn select(
    call: &Call<'_>,
    known: impl Fn(&str) -> bool,
    type_name: &str,
) -> Result<Option<Vec<String>>, GraphError> {
    odata::parse_select(call.query.get("$select"), known).map_err(|p| {
        GraphError::bad_request(
            "Request_BadRequest",
            format!("Could not find a property named '{p}' on type '{type_name}'."),
        )
    })
}

/// A group by object id. Groups are addressed by id only: anything that is not a GUID (a mail
/// address, a name) is 400 "Invalid object identifier" [OBS, the directory's answer for a
/// malformed id]; a GUID that names no group is 404 `Request_ResourceNotFound`.
fn group(tenant: &TenantState, id: &str) -> Result<usize, GraphError> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(GraphError::bad_request(
            "Request_BadRequest",
            format!("Invalid object identifier '{id}'."),
        ));
    }
    groups::find(&tenant.groups, id).ok_or_else(|| GraphError::directory_not_found(id))
}

/// `GET /groups/{id}`.
pub(super) fn get_group(
    tenant: &TenantState,
    call: &Call<'_>,
    id: &str,
) -> Result<GraphResponse, GraphError> {
    call.check_options(&["$select"], "Request_UnsupportedQuery")?;
    let select = select(
        call,
        |p| GROUP_PROPS.contains(&p),
        "Microsoft.DirectoryServices.Group",
    )?;
    let g = &tenant.groups[group(tenant, id)?];
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(call.metadata(&format!(
            "groups{}/$entity",
            select_suffix(select.as_deref())
        ))),
    );
    body.extend(group_json(g, select.as_deref()));
    Ok(GraphResponse::json(
        axum::http::StatusCode::OK,
        Value::Object(body),
    ))
}

/// `GET /groups`, optionally `$filter=mail eq '…'` or `displayName eq '…'` (both default
/// queries, filter-directory-objects.md); other filters are `Request_UnsupportedQuery`.
pub(super) fn list_groups(
    tenant: &TenantState,
    call: &Call<'_>,
) -> Result<GraphResponse, GraphError> {
    call.check_options(
        &["$select", "$top", "$skiptoken", "$filter", "$count"],
        "Request_UnsupportedQuery",
    )?;
    let select = select(
        call,
        |p| GROUP_PROPS.contains(&p),
        "Microsoft.DirectoryServices.Group",
    )?;
    let paging = DirectoryPage::parse(call)?;
    let filter = match call.query.get("$filter") {
        None => None,
        Some(f) => match odata::parse_eq_filter(f) {
            Some((prop, value)) if matches!(prop.as_str(), "mail" | "displayName") => {
                Some((prop, value))
            }
            _ => return Err(GraphError::unsupported_query("Unsupported Query.")),
        },
    };
    let matching: Vec<&GroupState> = tenant
        .groups
        .iter()
        .filter(|g| match &filter {
            None => true,
            // Directory string comparisons are case-insensitive.
            Some((p, v)) if p == "mail" => {
                g.mail.as_deref().is_some_and(|m| m.eq_ignore_ascii_case(v))
            }
            Some((_, v)) => g.display_name.eq_ignore_ascii_case(v),
        })
        .collect();
    let context = format!("groups{}", select_suffix(select.as_deref()));
    Ok(paging.answer(call, &context, &matching, |g| {
        Value::Object(group_json(g, select.as_deref()))
    }))
}

/// `GET /groups/{id}/members` and `…/transitiveMembers`, optionally with an OData cast.
///
/// A cast needs the advanced query parameters, `ConsistencyLevel: eventual` and `$count=true`
/// ("This header and `$count` are required when using the `$search`, `$filter`, `$orderby`, or
/// OData cast query parameters", group-list-transitivemembers.md; aad-advanced-queries.md lists
/// "OData cast with transitive members list" as advanced-only; Microsoft Q&A 447359 reports
/// the same). Without them: 400 `Request_UnsupportedQuery` [UNCONF message]. `--variant
/// lenient-group-cast` plays a Graph that accepts the cast alone.
pub(super) fn list_members(
    tenant: &TenantState,
    call: &Call<'_>,
    id: &str,
    q: &MembersQuery,
) -> Result<GraphResponse, GraphError> {
    call.check_options(
        &["$select", "$top", "$skiptoken", "$count"],
        "Request_UnsupportedQuery",
    )?;
    let paging = DirectoryPage::parse(call)?;
    let cast = match q.cast.as_deref() {
        None => None,
        Some(c) => Some(Cast::parse(c)?),
    };
    if cast.is_some() && !paging.advanced && !call.variants.lenient_group_cast {
        return Err(GraphError::unsupported_query("Unsupported Query."));
    }
    let select = select(
        call,
        |p| match cast {
            Some(Cast::User) => USER_DEFAULT_PROPS.contains(&p) || USER_EXTRA_PROPS.contains(&p),
            Some(Cast::Group) => GROUP_PROPS.contains(&p),
            _ => {
                USER_DEFAULT_PROPS.contains(&p)
                    || USER_EXTRA_PROPS.contains(&p)
                    || GROUP_PROPS.contains(&p)
            }
        },
        match cast {
            Some(Cast::Group) => "Microsoft.DirectoryServices.Group",
            Some(Cast::User) => "Microsoft.DirectoryServices.User",
            _ => "Microsoft.DirectoryServices.DirectoryObject",
        },
    )?;
    let g = group(tenant, id)?;
    let all = if q.transitive {
        groups::transitive(&tenant.groups, g)
    } else {
        tenant.groups[g].members.clone()
    };
    let members: Vec<Member> = all
        .into_iter()
        .filter(|m| {
            matches!(
                (cast, m),
                (None, _)
                    | (Some(Cast::User), Member::User(_))
                    | (Some(Cast::Group), Member::Group(_))
            )
        })
        .collect();
    let users_readable = call.principal.has_any_role(USER_READ_ROLES);
    let context = match cast {
        None => "directoryObjects".to_owned(),
        Some(Cast::User) => format!("users{}", select_suffix(select.as_deref())),
        Some(Cast::Group) => format!("groups{}", select_suffix(select.as_deref())),
        Some(Cast::Other) => "directoryObjects".to_owned(),
    };
    Ok(paging.answer(call, &context, &members, |m| {
        let (kind, mut row) = match *m {
            Member::User(u) => {
                let u = &tenant.users[u];
                let mut row = user_json(u, select.as_deref());
                if !users_readable {
                    limit(&mut row);
                }
                ("#microsoft.graph.user", row)
            }
            Member::Group(i) => (
                "#microsoft.graph.group",
                group_json(&tenant.groups[i], select.as_deref()),
            ),
        };
        // A directoryObject collection names each row's type; a cast collection is one type.
        if cast.is_none() {
            let mut typed = Map::new();
            typed.insert("@odata.type".into(), json!(kind));
            typed.append(&mut row);
            row = typed;
        }
        Value::Object(row)
    }))
}

/// "Limited information": the id stays, every other property is null.
fn limit(row: &mut Map<String, Value>) {
    for (k, v) in row.iter_mut() {
        if k != "id" {
            *v = Value::Null;
        }
    }
}

/// An OData cast on a members collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cast {
    User,
    Group,
    /// A member type the emulator has no objects of (devices, org contacts, service
    /// principals): an empty collection.
    Other,
}

impl Cast {
    /// `microsoft.graph.user`, or with the namespace's alias `graph.user` (what msgraph-sdk
    /// sends: Graph's $metadata declares `Alias="graph"` for `microsoft.graph`; found by
    /// tools/sdk-conformance).
    fn parse(segment: &str) -> Result<Cast, GraphError> {
        let name = segment
            .strip_prefix("microsoft.graph.")
            .or_else(|| segment.strip_prefix("graph."))
            .unwrap_or_default();
        match name {
            "user" => Ok(Cast::User),
            "group" => Ok(Cast::Group),
            "device" | "orgContact" | "servicePrincipal" => Ok(Cast::Other),
            _ => Err(GraphError::bad_request(
                "Request_BadRequest",
                format!("Resource not found for the segment '{segment}'."),
            )),
        }
    }
}
