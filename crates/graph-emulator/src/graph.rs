//! The Graph v1.0 surface: one [`dispatch`] function that authenticates, routes, accounts,
//! runs the per-request hooks and executes a request against the store. The HTTP handler and the
//! `$batch` executor both call it, so a batch item is counted, authorised and throttled exactly
//! like a direct request.
//!
//! Shapes, status codes and error codes follow graph-facts.md, not our convenience; where Graph's
//! behaviour is unconfirmed the stricter choice is made and marked [UNCONF]. This module never
//! holds the store lock across an `.await`.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::contact;
use crate::delta::{DeltaItem, DeltaScope, DeltaStore, DeltaToken, prefer_max_page_size};
use crate::error::GraphError;
use crate::hooks::{self, RequestContext};
use crate::identity::{self, Principal};
use crate::odata::{self, Query, UserFilter, UserFilterError};
use crate::server::Shared;
use crate::store::{Mailbox, Store, TenantState, UserState};

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
}

impl GraphResponse {
    fn json(status: StatusCode, body: Value) -> Self {
        GraphResponse {
            status,
            headers: Vec::new(),
            body: Some(body),
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
    let mut resp = match handle(shared, &req).await {
        Ok(r) => r,
        Err(e) => {
            let date = shared.clock.now().strftime("%Y-%m-%dT%H:%M:%S").to_string();
            let body = e.envelope(&request_id, client_request_id.as_deref(), &date);
            GraphResponse {
                status: e.status,
                headers: e.headers,
                body: Some(body),
            }
        }
    };
    resp.headers.push(("request-id".into(), request_id));
    // Our ids never change on a move (there are no moves), so immutable ids are always in
    // effect; echo the preference as Graph does (outlook-immutable-id.md, graph-facts §1).
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

async fn handle(shared: &Shared, req: &GraphRequest) -> Result<GraphResponse, GraphError> {
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
    /// `contacts/delta` (default folder) or `…/{folder}/contacts/delta` (graph-facts §2).
    Delta { folders: Vec<String> },
}

fn is(seg: &str, name: &str) -> bool {
    seg.eq_ignore_ascii_case(name)
}

fn is_delta(seg: &str) -> bool {
    is(seg, "delta") || is(seg, "microsoft.graph.delta") || is(seg, "delta()")
}

fn parse_route(segs: &[String]) -> Result<Route, GraphError> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        [] => Err(GraphError::segment_not_found("v1.0")),
        // App-only tokens have no signed-in user (graph-facts §8: client credentials).
        [m, ..] if is(m, "me") => Err(GraphError::bad_request(
            "BadRequest",
            "/me request is only valid with delegated authentication flow.",
        )),
        [u] if is(u, "users") => Ok(Route::Users),
        [o] if is(o, "organization") => Ok(Route::Organization),
        [u, id] if is(u, "users") => Ok(Route::User(id.to_string())),
        [o, id] if is(o, "organization") => Ok(Route::OrganizationItem(id.to_string())),
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
        Route::Mailbox { user, target } => {
            let write = *method != Method::GET;
            let needed = if write {
                CONTACTS_WRITE_ROLES
            } else {
                CONTACTS_READ_ROLES
            };
            // Exchange codes on mailbox paths (graph-facts §7); with RBAC for Applications the
            // role may be absent from the token yet granted, which the emulator does not model.
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

fn tenant<'s>(store: &'s Store, call: &Call<'_>) -> Result<&'s TenantState, GraphError> {
    store
        .tenant_index(&call.principal.tenant_id)
        .map(|t| &store.tenants[t])
        .ok_or_else(GraphError::token_invalid)
}

/// Application access policy (graph-facts §10): with a `mailboxScope`, other mailboxes are denied.
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

// ---------------------------------------------------------------------------------------------
// Directory: /users, /users/{id}, /organization

/// Properties `/users` returns without `$select` (user-list.md, graph-facts §3).
const USER_DEFAULT_PROPS: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];
/// Further properties that may be `$select`ed (returned only when selected).
const USER_EXTRA_PROPS: &[&str] = &[
    "accountEnabled",
    "assignedLicenses",
    "userType",
    "department",
    "companyName",
    "usageLocation",
    "otherMails",
    "proxyAddresses",
];

fn user_json(u: &UserState, select: Option<&[String]>) -> Map<String, Value> {
    let value = |p: &str| -> Value {
        match p {
            "id" => json!(u.id),
            "userPrincipalName" => json!(u.upn),
            "displayName" => json!(u.display_name),
            "mail" => json!(u.mail),
            "accountEnabled" => json!(u.account_enabled.unwrap_or(true)),
            "assignedLicenses" => Value::Array(
                u.licenses
                    .iter()
                    .map(|l| json!({"disabledPlans": l.disabled_plans, "skuId": l.sku_id}))
                    .collect(),
            ),
            "userType" => json!("Member"),
            "businessPhones" | "otherMails" | "proxyAddresses" => json!([]),
            _ => Value::Null,
        }
    };
    let mut out = Map::new();
    match select {
        None => {
            for p in USER_DEFAULT_PROPS {
                out.insert((*p).to_string(), value(p));
            }
        }
        Some(fields) => {
            for p in fields {
                out.insert(p.clone(), value(p));
            }
        }
    }
    out
}

fn user_select(call: &Call<'_>) -> Result<Option<Vec<String>>, GraphError> {
    odata::parse_select(call.query.get("$select"), |p| {
        USER_DEFAULT_PROPS.contains(&p) || USER_EXTRA_PROPS.contains(&p)
    })
    .map_err(|p| {
        GraphError::bad_request(
            "Request_BadRequest",
            format!(
                "Could not find a property named '{p}' on type 'Microsoft.DirectoryServices.User'."
            ),
        )
    })
}

fn select_suffix(select: Option<&[String]>) -> String {
    select
        .map(|s| format!("({})", s.join(",")))
        .unwrap_or_default()
}

const USERS_SKIPTOKEN_PREFIX: &str = "emu-users:";

fn list_users(tenant: &TenantState, call: &Call<'_>) -> Result<GraphResponse, GraphError> {
    call.check_options(
        &["$select", "$top", "$skiptoken", "$filter", "$count"],
        "Request_UnsupportedQuery",
    )?;
    let select = user_select(call)?;
    let top = match call.query.get("$top") {
        None => 100,
        Some(raw) => match odata::parse_usize(raw) {
            Some(n) if (1..=999).contains(&n) => n,
            _ => {
                return Err(GraphError::bad_request(
                    "Request_BadRequest",
                    format!(
                        "Invalid page size specified: '{raw}'. Must be between 1 and 999 inclusive."
                    ),
                ));
            }
        },
    };
    // Advanced query = ConsistencyLevel: eventual AND $count=true (aad-advanced-queries.md).
    // The header is not carried by nextLinks, so each page must resend it (graph-facts §3).
    let eventual = call
        .req
        .headers
        .get("consistencylevel")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
    let advanced = eventual && call.query.count_requested();
    let filter = match call.query.get("$filter") {
        None => None,
        Some(f) => {
            let parsed = odata::parse_user_filter(f).map_err(|e| match e {
                UserFilterError::Unsupported(m) => GraphError::unsupported_query(m),
                UserFilterError::BadRequest(m) => GraphError::bad_request("Request_BadRequest", m),
            })?;
            if parsed.needs_advanced() && !advanced {
                return Err(GraphError::unsupported_query("Unsupported Query."));
            }
            Some(parsed)
        }
    };
    let offset = match call.query.get("$skiptoken") {
        None => 0,
        Some(tok) => decode_skiptoken(tok)
            .ok_or_else(|| GraphError::bad_request("Request_BadRequest", "Invalid page token."))?,
    };
    let matching: Vec<&UserState> = tenant
        .users
        .iter()
        .filter(|u| filter.as_ref().is_none_or(|f| user_matches(u, f)))
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(top)
        .map(|u| Value::Object(user_json(u, select.as_deref())))
        .collect();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(call.metadata(&format!("users{}", select_suffix(select.as_deref())))),
    );
    // @odata.count only on the first page of an advanced query; `$count=true` without the header
    // is silently ignored (aad-advanced-queries.md, paging.md).
    if advanced && offset == 0 {
        body.insert("@odata.count".into(), json!(matching.len()));
    }
    if offset + top < matching.len() {
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{USERS_SKIPTOKEN_PREFIX}{}", offset + top));
        body.insert(
            "@odata.nextLink".into(),
            json!(
                call.query
                    .next_link(&call.req.base_url, &call.req.path, "$skiptoken", &token)
            ),
        );
    }
    body.insert("value".into(), Value::Array(page));
    Ok(GraphResponse::json(StatusCode::OK, Value::Object(body)))
}

fn decode_skiptoken(tok: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.strip_prefix(USERS_SKIPTOKEN_PREFIX)?.parse().ok()
}

fn user_matches(u: &UserState, f: &UserFilter) -> bool {
    let has = |sku: &str| {
        u.licenses
            .iter()
            .any(|l| l.sku_id.eq_ignore_ascii_case(sku))
    };
    match f {
        UserFilter::HasSku(s) => has(s),
        UserFilter::LacksSku(s) => !has(s),
        UserFilter::Licensed => !u.licenses.is_empty(),
        UserFilter::Unlicensed => u.licenses.is_empty(),
    }
}

fn get_user(tenant: &TenantState, call: &Call<'_>, id: &str) -> Result<GraphResponse, GraphError> {
    call.check_options(&["$select"], "Request_UnsupportedQuery")?;
    let select = user_select(call)?;
    let u = tenant
        .user_index(id)
        .map(|i| &tenant.users[i])
        .ok_or_else(|| GraphError::directory_not_found(id))?;
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(call.metadata(&format!(
            "users{}/$entity",
            select_suffix(select.as_deref())
        ))),
    );
    body.extend(user_json(u, select.as_deref()));
    Ok(GraphResponse::json(StatusCode::OK, Value::Object(body)))
}

fn organization(tenant: &TenantState, call: &Call<'_>) -> Result<GraphResponse, GraphError> {
    call.check_options(&["$select"], "Request_UnsupportedQuery")?;
    // verifiedDomains shape from verifieddomain.md (graph-facts §4).
    let domains: Vec<Value> = tenant
        .domains
        .iter()
        .map(|d| {
            json!({
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": d.is_default,
                "isInitial": d.is_initial,
                "name": d.id,
                "type": "Managed"
            })
        })
        .collect();
    let org = json!({
        "id": tenant.tenant_id,
        "displayName": tenant.display_name,
        "tenantType": "AAD",
        "verifiedDomains": domains,
    });
    let org = match odata::parse_select(call.query.get("$select"), |p| {
        matches!(p, "id" | "displayName" | "tenantType" | "verifiedDomains")
    }) {
        Ok(None) => org,
        Ok(Some(fields)) => {
            let mut m = Map::new();
            for f in fields {
                m.insert(f.clone(), org[&f].clone());
            }
            Value::Object(m)
        }
        Err(p) => {
            return Err(GraphError::bad_request(
                "Request_BadRequest",
                format!(
                    "Could not find a property named '{p}' on type 'Microsoft.DirectoryServices.Organization'."
                ),
            ));
        }
    };
    Ok(GraphResponse::json(
        StatusCode::OK,
        json!({"@odata.context": call.metadata("organization"), "value": [org]}),
    ))
}

// ---------------------------------------------------------------------------------------------
// Mailbox: contacts and contact folders

struct MailboxCall<'a, 'c> {
    call: &'a Call<'c>,
    /// The user segment as the client wrote it (echoed in @odata.context).
    user: &'a str,
    mailbox: &'a mut Mailbox,
    ids: &'a mut crate::store::IdGen,
    ignore_notes: bool,
}

/// Contacts: `$top` ≤ 1000, default 10; `$skip` paging (graph-facts §3).
const CONTACTS_DEFAULT_TOP: usize = 10;
const CONTACTS_MAX_TOP: usize = 1000;

impl MailboxCall<'_, '_> {
    fn run(&mut self, target: &Target) -> Result<GraphResponse, GraphError> {
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
    /// mailbox-unique, so `contactFolders/{nested}` works directly (graph-facts §2); a
    /// `childFolders` step must really be a child of the previous folder.
    fn resolve_folders(&self, chain: &[String]) -> Result<String, GraphError> {
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
    /// have been an Exchange id (graph-facts §7).
    fn missing_item(&self, id: &str) -> GraphError {
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

    fn select(&self) -> Result<Option<Vec<String>>, GraphError> {
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
            &["$select", "$top", "$skip", "$filter", "$count"],
            "ErrorInvalidUrlQuery",
        )?;
        let select = self.select()?;
        let (top, skip) = self.paging()?;
        let address = match self.call.query.get("$filter") {
            None => None,
            Some(f) => Some(odata::parse_email_filter(f).ok_or_else(GraphError::invalid_filter)?),
        };
        // Exact address match; case-insensitive as SMTP addresses are in Exchange [UNCONF,
        // graph-facts §3]. Contact groups never match a filter; without one they take paging
        // slots and count, but are not returned, so a page can be short while a nextLink is
        // still present (graph-facts §3, MGD-issue#8153).
        let all: Vec<&crate::store::StoredContact> = match &address {
            None => self.mailbox.items_in(folder).collect(),
            Some(a) => self
                .mailbox
                .contacts_in(folder)
                .filter(|c| {
                    c.data["emailAddresses"].as_array().is_some_and(|emails| {
                        emails.iter().any(|e| {
                            e["address"]
                                .as_str()
                                .is_some_and(|x| x.eq_ignore_ascii_case(a))
                        })
                    })
                })
                .collect(),
        };
        let page: Vec<Value> = all
            .iter()
            .skip(skip)
            .take(top)
            .filter(|c| !c.is_group)
            .map(|c| {
                let mut r = contact::render(&c.data, select.as_deref());
                contact::list_notes_quirk(&mut r);
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
        Ok(GraphResponse::json(
            StatusCode::CREATED,
            entity_body(context, stored, None),
        ))
    }

    /// The contact with this id; with a folder in the URL it must be in that folder [UNCONF],
    /// without one it is found anywhere in the mailbox (graph-facts §2, docs PR #12673).
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
            .check_options(&["$select"], "ErrorInvalidUrlQuery")?;
        let select = self.select()?;
        self.find(folder, id)?;
        let data = &self.mailbox.contact(id).expect("found above").data;
        Ok(GraphResponse::json(
            StatusCode::OK,
            self.entity(folders, data, select.as_deref()),
        ))
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
        Ok(GraphResponse::json(
            StatusCode::OK,
            entity_body(context, data, None),
        ))
    }

    fn delete_contact(
        &mut self,
        folder: Option<&str>,
        id: &str,
    ) -> Result<GraphResponse, GraphError> {
        self.find(folder, id)?;
        self.check_if_match(id)?;
        self.mailbox.delete_contact(id);
        Ok(GraphResponse {
            status: StatusCode::NO_CONTENT,
            headers: Vec::new(),
            body: None,
        })
    }

    /// A page of a delta round (graph-facts §2; state and tokens in `delta.rs`). `$select`
    /// counts only on the first request: later ones carry it in their token.
    fn delta(&self, folders: &[String]) -> Result<GraphResponse, GraphError> {
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
            // Folder names compare case-insensitively in Exchange [UNCONF] (graph-facts §2).
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

    /// One page of an Outlook collection: Outlook pages with `$skip` (graph-facts §3), the
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

/// One contact's answer: its `@odata.context` and the contact rendered from the stored data.
fn entity_body(context: String, data: &Map<String, Value>, select: Option<&[String]>) -> Value {
    let mut body = contact::render(data, select);
    // A stored field of that name (never expected) wins, as it did when the context went first.
    body.entry("@odata.context")
        .or_insert(Value::String(context));
    Value::Object(body)
}
