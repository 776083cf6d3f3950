//! The Graph v1.0 surface: one [`dispatch`] function that authenticates, routes, accounts,
//! runs the per-request hooks and executes a request against the store. The HTTP handler and the
//! `$batch` executor both call it, so a batch item is counted, authorised and throttled exactly
//! like a direct request.
//!
//! Shapes, status codes and error codes follow docs/graph-facts.md, not our convenience; where
//! Graph's behaviour is unconfirmed the stricter choice is made and marked [UNCONF]. This module
//! never holds the store lock across an `.await`.
//!
//! Routing and authorisation live here; the resources are served by `directory` (users,
//! organization), `mailbox` (contacts, contact folders) and `mailbox_delta` (contact delta).

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::delta::DeltaStore;
use crate::error::GraphError;
use crate::hooks::{self, RequestContext};
use crate::identity::{self, Principal};
use crate::odata::Query;
use crate::server::Shared;
use crate::store::{Store, TenantState, UserState};

mod directory;
mod groups;
mod mailbox;
mod mailbox_delta;

use directory::{get_user, list_users, organization};
use groups::{GROUP_ROLES, MembersQuery, get_group, list_groups, list_members};
use mailbox::MailboxCall;

/// One Graph request, however it arrived.
#[derive(Debug, Clone)]
pub struct GraphRequest {
    pub method: Method,
    /// Raw (still percent-encoded) path, starting with `/v1.0/`.
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `scheme://host[:port]` as the client addressed us; links are built from it.
    pub base_url: String,
    pub in_batch: bool,
    /// Set for a `$batch` item: the batch's token, already verified once for the whole batch
    /// (every item carries that same token). The item is then re-checked with
    /// [`identity::recheck_principal`] instead of decoding the JWT again; it is still
    /// authorized, counted, throttled and fault-matched on its own.
    pub verified: Option<Principal>,
}

/// One Graph answer; `body: None` is an empty body (204).
#[derive(Debug, Clone)]
pub struct GraphResponse {
    pub status: StatusCode,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    /// The mailbox the request addressed (stats key), for `responseBytes` per mailbox.
    pub mailbox: Option<String>,
}

impl GraphResponse {
    fn json(status: StatusCode, body: Value) -> Self {
        GraphResponse {
            status,
            headers: Vec::new(),
            body: Some(body),
            mailbox: None,
        }
    }

    /// An answer without a body (204).
    fn empty(status: StatusCode) -> Self {
        GraphResponse {
            status,
            headers: Vec::new(),
            body: None,
            mailbox: None,
        }
    }
}

const DIRECTORY_ROLES: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];
const ORGANIZATION_ROLES: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
    "Organization.Read.All",
    "Organization.ReadWrite.All",
];
const CONTACTS_READ_ROLES: &[&str] = &["Contacts.Read", "Contacts.ReadWrite"];
const CONTACTS_WRITE_ROLES: &[&str] = &["Contacts.ReadWrite"];

/// Authenticates, routes, accounts, runs hooks and executes one request. Always answers: errors
/// come back in Graph's envelope with `request-id`, `date` and the echoed `client-request-id`.
pub async fn dispatch(shared: &Shared, req: GraphRequest) -> GraphResponse {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = req
        .headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut mailbox = None;
    let mut resp = match handle(shared, &req, &mut mailbox).await {
        Ok(r) => r,
        Err(e) => {
            let date = shared.clock.now().strftime("%Y-%m-%dT%H:%M:%S").to_string();
            let body = e.envelope(&request_id, client_request_id.as_deref(), &date);
            GraphResponse {
                status: e.status,
                headers: e.headers,
                body: Some(body),
                mailbox: None,
            }
        }
    };
    resp.mailbox = mailbox;
    resp.headers.push(("request-id".into(), request_id));
    // Our ids never change on a move (the control plane's `move` keeps them), so immutable ids
    // are always in effect; echo the preference as Graph does (outlook-immutable-id.md,
    // docs/graph-facts.md §1).
    let prefers_immutable = req
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("idtype=\"immutableid\""));
    if prefers_immutable {
        resp.headers
            .push(("preference-applied".into(), "IdType=\"ImmutableId\"".into()));
    }
    if let Some(c) = client_request_id {
        resp.headers.push(("client-request-id".into(), c));
    }
    resp
}

/// Runs one request; `mailbox_out` receives the addressed mailbox's stats key as soon as it is
/// known (an error answer after that point is still that mailbox's).
async fn handle(
    shared: &Shared,
    req: &GraphRequest,
    mailbox_out: &mut Option<String>,
) -> Result<GraphResponse, GraphError> {
    let verified_here;
    let principal: &Principal = match &req.verified {
        Some(p) => {
            identity::recheck_principal(shared, p)?;
            p
        }
        None => {
            verified_here = identity::verify_access_token(shared, &req.headers, &req.base_url)?;
            &verified_here
        }
    };
    let segments = split_path(&req.path)?;
    let route = parse_route(&segments)?;

    let mailbox = match &route {
        Route::Mailbox { user, .. } => {
            let store = shared.store.lock().unwrap();
            Some(mailbox_key(&store, &principal.tenant_id, user))
        }
        _ => None,
    };
    mailbox_out.clone_from(&mailbox);
    let ctx = RequestContext {
        method: req.method.to_string(),
        path: req.path.clone(),
        tenant_id: principal.tenant_id.clone(),
        client_id: principal.client_id.clone(),
        token_id: principal.token_id.clone(),
        mailbox,
        in_batch: req.in_batch,
        fingerprint: hooks::fingerprint(
            req.method.as_str(),
            &req.path,
            req.query.as_deref(),
            &req.body,
        ),
    };
    // Faults and limits decide before the request counts as in flight, so a refused request
    // never shows in maxInFlight (it still counts as a request to its mailbox).
    let admission = match hooks::before_execute(shared, &ctx) {
        Ok(a) => a,
        Err(e) => {
            if let Some(m) = ctx.mailbox.as_deref() {
                shared.stats.mailbox_request(m, req.method.as_str());
            }
            return Err(e);
        }
    };
    let guard = ctx
        .mailbox
        .as_deref()
        .map(|m| shared.stats.enter_mailbox(m, req.method.as_str()));
    admission.service_time().await;

    let call = Call {
        req,
        principal,
        query: Query::parse(req.query.as_deref()),
        now: shared.clock.now(),
        delta: &shared.delta,
        variants: &shared.variants,
    };
    // The lock lives only in this block, never across an await.
    let result = {
        let mut store = shared.store.lock().unwrap();
        execute(&mut store, &call, &route)
    };
    let result = hooks::after_execute(shared, &ctx, admission, result);
    drop(guard);
    tracing::debug!(method = %req.method, path = %req.path, ok = result.is_ok(), "graph request");
    result
}

/// The stats/limits key of a mailbox: the stored UPN when the user exists.
pub(crate) fn mailbox_key(store: &Store, tenant_id: &str, user: &str) -> String {
    store
        .tenant_index(tenant_id)
        .and_then(|t| {
            let tenant = &store.tenants[t];
            tenant.user_index(user).map(|u| tenant.users[u].upn.clone())
        })
        .unwrap_or_else(|| user.to_lowercase())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Decoded path segments after `/v1.0`.
fn split_path(path: &str) -> Result<Vec<String>, GraphError> {
    let mut parts = path.trim_start_matches('/').split('/');
    match parts.next() {
        Some("v1.0") => {}
        Some(other) => {
            return Err(GraphError::bad_request(
                "BadRequest",
                format!("Invalid version: {other}"),
            ));
        }
        None => return Err(GraphError::segment_not_found("")),
    }
    parts
        .filter(|p| !p.is_empty())
        .map(|p| {
            percent_decode(p).ok_or_else(|| {
                GraphError::bad_request("BadRequest", format!("Invalid URL segment '{p}'."))
            })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Users,
    User(String),
    Organization,
    OrganizationItem(String),
    Mailbox { user: String, target: Target },
    Groups,
    Group(String),
    GroupMembers { group: String, query: MembersQuery },
}

/// What under `/users/{user}/` a request addresses. Folder paths are the chain of folder ids as
/// written (`contactFolders/{a}/childFolders/{b}` → `[a, b]`); each must be the child of the
/// previous one.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `contacts` (empty path = default folder) or `…/{folder}/contacts`, optionally one item.
    Contacts {
        folders: Vec<String>,
        item: Option<String>,
    },
    /// `contactFolders` (empty path = children of the default folder) or `…/childFolders`.
    Folders { folders: Vec<String> },
    /// `contactFolders/{id}` (or a childFolders chain).
    Folder { folders: Vec<String> },
    /// `contacts/delta` (default folder) or `…/{folder}/contacts/delta` (docs/graph-facts.md §2).
    Delta { folders: Vec<String> },
}

fn is(seg: &str, name: &str) -> bool {
    seg.eq_ignore_ascii_case(name)
}

/// `delta`, its full name `microsoft.graph.delta` (or with the namespace alias, `graph.delta`),
/// each with or without `()` (the SDKs send `delta()`; delta-query-overview.md: "/delta is a
/// shortcut for … /microsoft.graph.delta").
fn is_delta(seg: &str) -> bool {
    let name = seg.strip_suffix("()").unwrap_or(seg);
    is(name, "delta") || is(name, "microsoft.graph.delta") || is(name, "graph.delta")
}

fn parse_route(segs: &[String]) -> Result<Route, GraphError> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        [] => Err(GraphError::segment_not_found("v1.0")),
        // App-only tokens have no signed-in user (docs/graph-facts.md §8: client credentials).
        [m, ..] if is(m, "me") => Err(GraphError::bad_request(
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        )),
        [u] if is(u, "users") => Ok(Route::Users),
        [o] if is(o, "organization") => Ok(Route::Organization),
        [u, id] if is(u, "users") => Ok(Route::User(id.to_string())),
        [o, id] if is(o, "organization") => Ok(Route::OrganizationItem(id.to_string())),
        [g] if is(g, "groups") => Ok(Route::Groups),
        [g, id] if is(g, "groups") => Ok(Route::Group(id.to_string())),
        [g, id, m, cast @ ..]
            if is(g, "groups")
                && (is(m, "members") || is(m, "transitiveMembers"))
                && cast.len() <= 1 =>
        {
            Ok(Route::GroupMembers {
                group: id.to_string(),
                query: MembersQuery {
                    transitive: is(m, "transitiveMembers"),
                    cast: cast.first().map(|c| c.to_string()),
                },
            })
        }
        [u, id, rest @ ..] if is(u, "users") => Ok(Route::Mailbox {
            user: id.to_string(),
            target: parse_target(rest)?,
        }),
        [first, ..] => Err(GraphError::segment_not_found(first)),
    }
}

fn parse_target(rest: &[&str]) -> Result<Target, GraphError> {
    match rest {
        [c] if is(c, "contacts") => Ok(Target::Contacts {
            folders: vec![],
            item: None,
        }),
        // `delta` (also `microsoft.graph.delta`, the function's full name) is the function, not an
        // item id: Exchange ids are base64 and never spell it.
        [c, d] if is(c, "contacts") && is_delta(d) => Ok(Target::Delta { folders: vec![] }),
        [c, id] if is(c, "contacts") => Ok(Target::Contacts {
            folders: vec![],
            item: Some(id.to_string()),
        }),
        [f] if is(f, "contactFolders") => Ok(Target::Folders { folders: vec![] }),
        [f, id, tail @ ..] if is(f, "contactFolders") => {
            let mut folders = vec![id.to_string()];
            let mut tail = tail;
            loop {
                match tail {
                    [] => return Ok(Target::Folder { folders }),
                    [c] if is(c, "childFolders") => return Ok(Target::Folders { folders }),
                    [c, id, more @ ..] if is(c, "childFolders") => {
                        folders.push(id.to_string());
                        tail = more;
                    }
                    [c] if is(c, "contacts") => {
                        return Ok(Target::Contacts {
                            folders,
                            item: None,
                        });
                    }
                    [c, d] if is(c, "contacts") && is_delta(d) => {
                        return Ok(Target::Delta { folders });
                    }
                    [c, id] if is(c, "contacts") => {
                        return Ok(Target::Contacts {
                            folders,
                            item: Some(id.to_string()),
                        });
                    }
                    [other, ..] => return Err(GraphError::segment_not_found(other)),
                }
            }
        }
        [other, ..] => Err(GraphError::segment_not_found(other)),
        [] => Err(GraphError::segment_not_found("users")),
    }
}

/// Per-request inputs of the executor.
struct Call<'a> {
    req: &'a GraphRequest,
    principal: &'a Principal,
    query: Query,
    now: jiff::Timestamp,
    delta: &'a DeltaStore,
    variants: &'a crate::variants::Variants,
}

impl Call<'_> {
    fn metadata(&self, fragment: &str) -> String {
        format!("{}/v1.0/$metadata#{fragment}", self.req.base_url)
    }

    fn body_object(&self) -> Result<Map<String, Value>, GraphError> {
        if self.req.body.is_empty() {
            return Err(GraphError::bad_request(
                "RequestBodyRead",
                "Empty Payload. JSON content expected.",
            ));
        }
        match serde_json::from_slice::<Value>(&self.req.body) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err(GraphError::bad_request(
                "RequestBodyRead",
                "A JSON object was expected as the request body.",
            )),
            Err(e) => Err(GraphError::bad_request(
                "RequestBodyRead",
                format!("Invalid JSON. {e}"),
            )),
        }
    }

    fn if_match(&self) -> Option<&str> {
        self.req
            .headers
            .get("if-match")
            .and_then(|v| v.to_str().ok())
    }

    fn check_options(&self, allowed: &[&str], code: &str) -> Result<(), GraphError> {
        match self.query.unsupported_option(allowed) {
            Some(opt) => Err(GraphError::bad_request(
                code,
                format!("Query option '{opt}' is not supported on this resource."),
            )),
            None => Ok(()),
        }
    }
}

fn execute(store: &mut Store, call: &Call<'_>, route: &Route) -> Result<GraphResponse, GraphError> {
    let method = &call.req.method;
    match route {
        Route::Users | Route::User(_) | Route::Organization | Route::OrganizationItem(_) => {
            if method != Method::GET {
                return Err(GraphError::method_not_allowed(true));
            }
            let roles = if matches!(route, Route::Organization | Route::OrganizationItem(_)) {
                ORGANIZATION_ROLES
            } else {
                DIRECTORY_ROLES
            };
            if !call.principal.has_any_role(roles) {
                return Err(GraphError::directory_denied());
            }
            let tenant = tenant(store, call)?;
            match route {
                Route::Users => list_users(tenant, call),
                Route::User(id) => get_user(tenant, call, id),
                Route::OrganizationItem(id) => {
                    if !id.eq_ignore_ascii_case(&tenant.tenant_id) {
                        return Err(GraphError::directory_not_found(id));
                    }
                    let mut body = match organization(tenant, call)?.body {
                        Some(Value::Object(mut m)) => match m.remove("value") {
                            Some(Value::Array(mut v)) if !v.is_empty() => v.remove(0),
                            _ => Value::Null,
                        },
                        _ => Value::Null,
                    };
                    body["@odata.context"] = json!(call.metadata("organization/$entity"));
                    Ok(GraphResponse::json(StatusCode::OK, body))
                }
                _ => organization(tenant, call),
            }
        }
        Route::Groups => list_groups(group_tenant(store, call)?, call),
        Route::Group(id) => get_group(group_tenant(store, call)?, call, id),
        Route::GroupMembers { group, query } => {
            list_members(group_tenant(store, call)?, call, group, query)
        }
        Route::Mailbox { user, target } => {
            let write = *method != Method::GET;
            let needed = if write {
                CONTACTS_WRITE_ROLES
            } else {
                CONTACTS_READ_ROLES
            };
            // Exchange codes on mailbox paths (docs/graph-facts.md §7); with RBAC for Applications
            // the role may be absent from the token yet granted, which the emulator does not model.
            if !call.principal.has_any_role(needed) {
                return Err(GraphError::exchange_access_denied());
            }
            let t = store
                .tenant_index(&call.principal.tenant_id)
                .ok_or_else(GraphError::token_invalid)?;
            let ignore_notes = store.ignore_notes_on_create();
            let Store { tenants, ids, .. } = store;
            let tenant = &mut tenants[t];
            let u = tenant
                .user_index(user)
                .ok_or_else(|| GraphError::invalid_user(user))?;
            let scope_ok = mailbox_in_scope(tenant, &call.principal.client_id, &tenant.users[u]);
            let user_state = &mut tenant.users[u];
            let mailbox = user_state
                .mailbox
                .as_mut()
                .ok_or_else(GraphError::mailbox_not_enabled)?;
            if !scope_ok {
                return Err(GraphError::odata_disabled());
            }
            let mut mb_call = MailboxCall {
                call,
                user,
                mailbox,
                ids,
                ignore_notes,
            };
            mb_call.run(target)
        }
    }
}

/// The tenant of a `/groups` request: GET only, and the app needs a group-reading role.
fn group_tenant<'s>(store: &'s Store, call: &Call<'_>) -> Result<&'s TenantState, GraphError> {
    if call.req.method != Method::GET {
        return Err(GraphError::method_not_allowed(true));
    }
    if !call.principal.has_any_role(GROUP_ROLES) {
        return Err(GraphError::directory_denied());
    }
    tenant(store, call)
}

fn tenant<'s>(store: &'s Store, call: &Call<'_>) -> Result<&'s TenantState, GraphError> {
    store
        .tenant_index(&call.principal.tenant_id)
        .map(|t| &store.tenants[t])
        .ok_or_else(GraphError::token_invalid)
}

/// Application access policy (docs/graph-facts.md §10): with a `mailboxScope`, other mailboxes are
/// denied.
fn mailbox_in_scope(tenant: &TenantState, client_id: &str, user: &UserState) -> bool {
    let Some(app) = tenant.app(client_id) else {
        return true;
    };
    let Some(scope) = &app.mailbox_scope else {
        return true;
    };
    scope.iter().any(|s| {
        s.eq_ignore_ascii_case(&user.upn)
            || s.eq_ignore_ascii_case(&user.id)
            || user
                .mail
                .as_deref()
                .is_some_and(|m| s.eq_ignore_ascii_case(m))
    })
}

/// `($select list)` suffix of an `@odata.context` fragment.
pub(super) fn select_suffix(select: Option<&[String]>) -> String {
    select
        .map(|s| format!("({})", s.join(",")))
        .unwrap_or_default()
}
