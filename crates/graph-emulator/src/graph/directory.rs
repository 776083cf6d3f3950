//! The directory half of the Graph surface: `/users`, `/users/{id}` and `/organization`
//! (docs/graph-facts.md §3, §4), with the directory's own paging (`$skiptoken`) and error codes.
//!
//! It only reads the store; permissions were checked by the dispatcher.

use axum::http::StatusCode;
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::{Call, GraphResponse, select_suffix};
use crate::error::GraphError;
use crate::odata::{self, UserFilter, UserFilterError};
use crate::store::{TenantState, UserState};

/// Properties `/users` returns without `$select` (user-list.md, docs/graph-facts.md §3).
pub(super) const USER_DEFAULT_PROPS: &[&str] = &[
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
pub(super) const USER_EXTRA_PROPS: &[&str] = &[
    "accountEnabled",
    "assignedLicenses",
    "userType",
    "department",
    "companyName",
    "usageLocation",
    "otherMails",
    "proxyAddresses",
];

pub(super) fn user_json(u: &UserState, select: Option<&[String]>) -> Map<String, Value> {
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

pub(super) fn user_select(call: &Call<'_>) -> Result<Option<Vec<String>>, GraphError> {
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

/// Paging of a directory collection (users, groups, members): `$top` 1–999, default 100, and
/// an opaque `$skiptoken` (docs/graph-facts.md §3, paging.md).
pub(super) struct DirectoryPage {
    pub top: usize,
    pub offset: usize,
    /// `ConsistencyLevel: eventual` and `$count=true` both present: an advanced query
    /// (aad-advanced-queries.md). The header is not carried by nextLinks, so each page must
    /// resend it (docs/graph-facts.md §3).
    pub advanced: bool,
}

const SKIPTOKEN_PREFIX: &str = "emu-dir:";

impl DirectoryPage {
    pub(super) fn parse(call: &Call<'_>) -> Result<DirectoryPage, GraphError> {
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
        let offset = match call.query.get("$skiptoken") {
            None => 0,
            Some(tok) => decode_skiptoken(tok).ok_or_else(|| {
                GraphError::bad_request("Request_BadRequest", "Invalid page token.")
            })?,
        };
        let eventual = call
            .req
            .headers
            .get("consistencylevel")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("eventual"));
        Ok(DirectoryPage {
            top,
            offset,
            advanced: eventual && call.query.count_requested(),
        })
    }

    /// The answer: this page of `rows` (all matching rows, rendered lazily), `@odata.count`
    /// only on the first page of an advanced query (`$count=true` without the header is
    /// silently ignored, aad-advanced-queries.md), and a `$skiptoken` nextLink while more rows
    /// remain.
    pub(super) fn answer<T>(
        &self,
        call: &Call<'_>,
        context: &str,
        rows: &[T],
        render: impl Fn(&T) -> Value,
    ) -> GraphResponse {
        let page: Vec<Value> = rows
            .iter()
            .skip(self.offset)
            .take(self.top)
            .map(render)
            .collect();
        let mut body = Map::new();
        body.insert("@odata.context".into(), json!(call.metadata(context)));
        if self.advanced && self.offset == 0 {
            body.insert("@odata.count".into(), json!(rows.len()));
        }
        if self.offset + self.top < rows.len() {
            let token = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!("{SKIPTOKEN_PREFIX}{}", self.offset + self.top));
            body.insert(
                "@odata.nextLink".into(),
                json!(call.query.next_link(
                    &call.req.base_url,
                    &call.req.path,
                    "$skiptoken",
                    &token
                )),
            );
        }
        body.insert("value".into(), Value::Array(page));
        GraphResponse::json(StatusCode::OK, Value::Object(body))
    }
}

pub(super) fn list_users(
    tenant: &TenantState,
    call: &Call<'_>,
) -> Result<GraphResponse, GraphError> {
    call.check_options(
        &["$select", "$top", "$skiptoken", "$filter", "$count"],
        "Request_UnsupportedQuery",
    )?;
    let select = user_select(call)?;
    let paging = DirectoryPage::parse(call)?;
    let filter = match call.query.get("$filter") {
        None => None,
        Some(f) => {
            let parsed = odata::parse_user_filter(f).map_err(|e| match e {
                UserFilterError::Unsupported(m) => GraphError::unsupported_query(m),
                UserFilterError::BadRequest(m) => GraphError::bad_request("Request_BadRequest", m),
            })?;
            if parsed.needs_advanced() && !paging.advanced {
                return Err(GraphError::unsupported_query("Unsupported Query."));
            }
            Some(parsed)
        }
    };
    let matching: Vec<&UserState> = tenant
        .users
        .iter()
        .filter(|u| filter.as_ref().is_none_or(|f| user_matches(u, f)))
        .collect();
    let context = format!("users{}", select_suffix(select.as_deref()));
    Ok(paging.answer(call, &context, &matching, |u| {
        Value::Object(user_json(u, select.as_deref()))
    }))
}

fn decode_skiptoken(tok: &str) -> Option<usize> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(tok)
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    text.strip_prefix(SKIPTOKEN_PREFIX)?.parse().ok()
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

pub(super) fn get_user(
    tenant: &TenantState,
    call: &Call<'_>,
    id: &str,
) -> Result<GraphResponse, GraphError> {
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

pub(super) fn organization(
    tenant: &TenantState,
    call: &Call<'_>,
) -> Result<GraphResponse, GraphError> {
    call.check_options(&["$select"], "Request_UnsupportedQuery")?;
    // verifiedDomains shape from verifieddomain.md (docs/graph-facts.md §4).
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
