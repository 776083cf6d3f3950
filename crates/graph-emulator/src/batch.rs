//! JSON batching, `POST /v1.0/$batch` (graph-facts §5): parse and validate the batch, run its
//! items through the same dispatch path as direct requests (so each is authorized, counted,
//! throttled and fault-matched on its own), and assemble the `responses` document.
//!
//! Scheduling follows Graph's Outlook behaviour: without `dependsOn`, items run in parallel but at
//! most 4 at a time per mailbox; with `dependsOn`, the batch runs one item at a time in
//! dependency order, and dependants of a failed item get 424 without running.
//!
//! This module never handles an item itself; it must never bypass the dispatcher it is given.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

/// Graph's cap on requests per batch (graph-facts §5).
pub const MAX_ITEMS: usize = 20;
/// Items forwarded to one mailbox at a time (graph-facts §5, Outlook include).
pub const PER_MAILBOX_PARALLEL: usize = 4;

/// A batch refused as a whole: outer 400 in Graph's envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct BatchError {
    pub code: &'static str,
    pub message: String,
}

fn bad(message: impl Into<String>) -> BatchError {
    // Codes/messages for batch validation are not documented verbatim [UNCONF]; the status
    // (400 for the whole batch) is (json-batching.md).
    BatchError {
        code: "BadRequest",
        message: message.into(),
    }
}

#[derive(Debug, Deserialize)]
struct BatchJson {
    requests: Vec<ItemJson>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemJson {
    id: String,
    method: String,
    url: String,
    #[serde(default)]
    headers: Option<Map<String, Value>>,
    /// Kept as its JSON text: a JSON body is handed to the item's dispatch as these bytes (no
    /// parse into a `Value` and serialize back per item; issue 8).
    #[serde(default)]
    body: Option<Box<RawValue>>,
    #[serde(default)]
    depends_on: Option<Vec<String>>,
}

/// One item, ready to dispatch like a direct request.
#[derive(Debug, Clone, PartialEq)]
pub struct InnerRequest {
    pub id: String,
    pub method: String,
    /// `/v1.0/...` path plus query, as a direct request would have it.
    pub path_and_query: String,
    /// The item's own headers (the caller adds the outer request's `Authorization`).
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub depends_on: Vec<String>,
}

/// What the dispatcher answered for an item.
#[derive(Debug, Clone, PartialEq)]
pub struct InnerResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A parsed batch, or per-item problems that answer without dispatch.
#[derive(Debug)]
pub struct ParsedBatch {
    pub items: Vec<Result<InnerRequest, (String, InnerResponse)>>,
    pub sequential: bool,
}

/// Parses and validates a batch body.
pub fn parse(body: &[u8]) -> Result<ParsedBatch, BatchError> {
    let parsed: BatchJson = serde_json::from_slice(body)
        .map_err(|e| bad(format!("Invalid batch payload format: {e}")))?;
    if parsed.requests.is_empty() {
        return Err(bad("Invalid batch payload format: no requests."));
    }
    if parsed.requests.len() > MAX_ITEMS {
        return Err(bad(format!(
            "The number of requests in the batch ({}) exceeds the limit of {MAX_ITEMS}.",
            parsed.requests.len()
        )));
    }
    // Ids are unique case-insensitively (json-batching.md).
    let mut seen = HashSet::new();
    for r in &parsed.requests {
        if r.id.is_empty() {
            return Err(bad("Every request in a batch needs an id."));
        }
        if !seen.insert(r.id.to_lowercase()) {
            return Err(bad(format!("Batch request id '{}' is duplicated.", r.id)));
        }
    }
    for r in &parsed.requests {
        for d in r.depends_on.iter().flatten() {
            if !seen.contains(&d.to_lowercase()) || d.eq_ignore_ascii_case(&r.id) {
                return Err(bad(format!(
                    "Request '{}' depends on unknown request '{d}'.",
                    r.id
                )));
            }
        }
    }
    let sequential = parsed
        .requests
        .iter()
        .any(|r| r.depends_on.as_ref().is_some_and(|d| !d.is_empty()));
    let items = parsed.requests.into_iter().map(item).collect::<Vec<_>>();
    let batch = ParsedBatch { items, sequential };
    if batch.sequential {
        order(&batch)?;
    }
    Ok(batch)
}

fn item_error(status: u16, code: &str, message: &str) -> InnerResponse {
    InnerResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: serde_json::to_vec(&json!({"error": {"code": code, "message": message}}))
            .unwrap_or_default(),
    }
}

fn item(r: ItemJson) -> Result<InnerRequest, (String, InnerResponse)> {
    let fail = |msg: &str| Err((r.id.clone(), item_error(400, "BadRequest", msg)));
    let method = r.method.to_ascii_uppercase();
    if !matches!(method.as_str(), "GET" | "POST" | "PATCH" | "PUT" | "DELETE") {
        return fail("Invalid method.");
    }
    let Some(path_and_query) = normalize_url(&r.url) else {
        return fail("Invalid request URL.");
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for (k, v) in r.headers.iter().flatten() {
        match v {
            Value::String(s) => headers.push((k.clone(), s.clone())),
            other => headers.push((k.clone(), other.to_string())),
        }
    }
    let content_type = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.clone());
    // `"body": null` is no body, like an absent one.
    let raw = r
        .body
        .as_deref()
        .map(RawValue::get)
        .filter(|b| *b != "null");
    let body = match (raw, &content_type) {
        (None, _) => None,
        // A body needs its Content-Type (json-batching.md).
        (Some(_), None) => return fail("Content-Type header is required when a body is present."),
        (Some(b), Some(ct)) if ct.to_ascii_lowercase().contains("json") => {
            Some(b.as_bytes().to_vec())
        }
        // Non-JSON bodies travel base64-encoded (json-batching.md).
        (Some(b), Some(_)) => match serde_json::from_str::<String>(b) {
            Ok(s) => match STANDARD.decode(s) {
                Ok(b) => Some(b),
                Err(_) => return fail("A non-JSON body must be base64-encoded."),
            },
            Err(_) => return fail("A non-JSON body must be base64-encoded."),
        },
    };
    Ok(InnerRequest {
        id: r.id,
        method,
        path_and_query,
        headers,
        body,
        depends_on: r.depends_on.unwrap_or_default(),
    })
}

/// Turns an item URL into a `/v1.0/...` path+query. Relative URLs are relative to the version
/// root (`/users/x` and `users/x`); absolute URLs (some SDKs send them) keep their path, which
/// must be under `/v1.0/`.
pub fn normalize_url(u: &str) -> Option<String> {
    if u.starts_with("http://") || u.starts_with("https://") {
        let parsed = url::Url::parse(u).ok()?;
        let path = parsed.path();
        if !path.starts_with("/v1.0/") {
            return None;
        }
        return Some(match parsed.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        });
    }
    if u.is_empty() {
        return None;
    }
    Some(format!("/v1.0/{}", u.trim_start_matches('/')))
}

/// Execution order for a sequential batch: dependencies first, otherwise request order.
fn order(batch: &ParsedBatch) -> Result<Vec<usize>, BatchError> {
    let ids: Vec<String> = batch
        .items
        .iter()
        .map(|i| match i {
            Ok(r) => r.id.to_lowercase(),
            Err((id, _)) => id.to_lowercase(),
        })
        .collect();
    let deps: Vec<Vec<usize>> = batch
        .items
        .iter()
        .map(|i| match i {
            Ok(r) => r
                .depends_on
                .iter()
                .filter_map(|d| ids.iter().position(|x| *x == d.to_lowercase()))
                .collect(),
            Err(_) => vec![],
        })
        .collect();
    let mut done = vec![false; ids.len()];
    let mut out = Vec::with_capacity(ids.len());
    while out.len() < ids.len() {
        let next = (0..ids.len()).find(|&i| !done[i] && deps[i].iter().all(|&d| done[d]));
        let Some(i) = next else {
            return Err(bad("The dependsOn references form a cycle."));
        };
        done[i] = true;
        out.push(i);
    }
    Ok(out)
}

/// The dispatcher: runs one item exactly like a direct request.
pub type Dispatch =
    Arc<dyn Fn(InnerRequest) -> Pin<Box<dyn Future<Output = InnerResponse> + Send>> + Send + Sync>;

/// The mailbox an item addresses (`/v1.0/users/{x}/...`), lower-cased, for the per-mailbox
/// parallelism cap. Callers may canonicalize further (id vs UPN) via `mailbox_key`.
pub fn mailbox_segment(path_and_query: &str) -> Option<String> {
    let path = path_and_query.split('?').next()?;
    let mut segs = path.trim_start_matches('/').split('/');
    let (_, users, who, rest) = (segs.next()?, segs.next()?, segs.next()?, segs.next());
    (users.eq_ignore_ascii_case("users") && rest.is_some() && !who.is_empty())
        .then(|| who.to_lowercase())
}

/// Runs a parsed batch; returns `(id, response)` in completion order (Graph's order is not the
/// request order either, graph-facts §5).
pub async fn execute(
    batch: ParsedBatch,
    mailbox_key: impl Fn(&str) -> Option<String>,
    dispatch: Dispatch,
) -> Vec<(String, InnerResponse)> {
    if batch.sequential {
        return execute_sequential(batch, dispatch).await;
    }
    let mut out = Vec::new();
    let mut sems: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let mut set = tokio::task::JoinSet::new();
    for it in batch.items {
        let req = match it {
            Ok(r) => r,
            Err(done) => {
                out.push(done);
                continue;
            }
        };
        let sem = mailbox_key(&req.path_and_query).map(|k| {
            sems.entry(k)
                .or_insert_with(|| Arc::new(Semaphore::new(PER_MAILBOX_PARALLEL)))
                .clone()
        });
        let dispatch = dispatch.clone();
        set.spawn(async move {
            let _permit = match &sem {
                Some(s) => s.clone().acquire_owned().await.ok(),
                None => None,
            };
            let id = req.id.clone();
            (id, dispatch(req).await)
        });
    }
    while let Some(r) = set.join_next().await {
        match r {
            Ok(x) => out.push(x),
            Err(e) => tracing::error!(error = %e, "batch item task failed"),
        }
    }
    out
}

async fn execute_sequential(
    batch: ParsedBatch,
    dispatch: Dispatch,
) -> Vec<(String, InnerResponse)> {
    let order = order(&batch).unwrap_or_else(|_| (0..batch.items.len()).collect());
    let mut items: Vec<Option<Result<InnerRequest, (String, InnerResponse)>>> =
        batch.items.into_iter().map(Some).collect();
    let mut ok: HashMap<String, bool> = HashMap::new();
    let mut out = Vec::new();
    for i in order {
        let Some(it) = items[i].take() else { continue };
        let (id, resp) = match it {
            Err((id, resp)) => (id, resp),
            Ok(req) => {
                let failed_dep = req
                    .depends_on
                    .iter()
                    .any(|d| !ok.get(&d.to_lowercase()).copied().unwrap_or(false));
                if failed_dep {
                    // Dependants of a failed request are not run (json-batching.md).
                    (
                        req.id.clone(),
                        item_error(
                            424,
                            "FailedDependency",
                            "Request failed due to a failed dependency.",
                        ),
                    )
                } else {
                    let id = req.id.clone();
                    (id, dispatch(req).await)
                }
            }
        };
        ok.insert(id.to_lowercase(), (200..300).contains(&resp.status));
        out.push((id, resp));
    }
    out
}

/// Response headers copied into an item's `headers` (the rest are transport details).
const ITEM_HEADERS: [&str; 7] = [
    "content-type",
    "retry-after",
    "location",
    "etag",
    "preference-applied",
    "odata-version",
    "cache-control",
];

/// The outer 200 body, `{"responses":[{"id","status","headers","body"}]}`, written straight as
/// bytes: each item's JSON body is already serialized, so it is checked and copied in rather
/// than parsed into a `Value` and serialized again (that round trip was ~20% of the emulator's
/// CPU on a large sync). The document is the one a `Value` would give: `headers` keeps the last
/// of repeated names, sorted by name (`serde_json::Map` order); a body that is not JSON, or not
/// labelled JSON, travels base64-encoded.
pub fn responses_body(results: &[(String, InnerResponse)]) -> Vec<u8> {
    let capacity = results
        .iter()
        .map(|(_, r)| r.body.len() + 160)
        .sum::<usize>()
        + 16;
    let mut out = Vec::with_capacity(capacity);
    out.extend_from_slice(b"{\"responses\":[");
    for (n, (id, r)) in results.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let mut headers: Vec<(String, &str)> = Vec::new();
        for (k, v) in &r.headers {
            let lk = k.to_ascii_lowercase();
            if ITEM_HEADERS.contains(&lk.as_str()) {
                // Graph spells them like HTTP does (e.g. "Retry-After", "Content-Type").
                let name = canonical_header(&lk);
                headers.retain(|(h, _)| *h != name);
                headers.push((name, v.as_str()));
            }
        }
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        out.extend_from_slice(b"{\"id\":");
        write_json_str(&mut out, id);
        out.extend_from_slice(b",\"status\":");
        out.extend_from_slice(r.status.to_string().as_bytes());
        out.extend_from_slice(b",\"headers\":{");
        for (i, (k, v)) in headers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_str(&mut out, k);
            out.push(b':');
            write_json_str(&mut out, v);
        }
        out.push(b'}');
        if !r.body.is_empty() {
            let is_json = r
                .headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v.contains("json"));
            out.extend_from_slice(b",\"body\":");
            if is_json && serde_json::from_slice::<serde::de::IgnoredAny>(&r.body).is_ok() {
                out.extend_from_slice(&r.body);
            } else {
                write_json_str(&mut out, &STANDARD.encode(&r.body));
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

/// Appends `s` as a JSON string literal (serde_json's escaping).
fn write_json_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn canonical_header(lower: &str) -> String {
    match lower {
        "odata-version" => "OData-Version".into(),
        "etag" => "ETag".into(),
        _ => lower
            .split('-')
            .map(|p| {
                let mut c = p.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

// ---------------------------------------------------------------------------------------------
// Glue to the emulator core: `POST /v1.0/$batch`.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::error::GraphError;
use crate::graph::{self, GraphRequest, GraphResponse};
use crate::hooks::DROP_MARKER;
use crate::identity::Principal;
use crate::realism::{Ctx, Refused};
use crate::server::{GRAPH_JSON, Shared};

/// Serves one `$batch` request. The batch itself counts once (`requests`, `batches`); its items
/// go through [`graph::dispatch`] like direct requests (`batchItems`, `byMailbox`, limits,
/// faults). Faults may also match the batch's own path, `/v1.0/$batch`.
///
/// A batch that ran answers [`Served::Responses`] (200, the document already as bytes); one
/// refused as a whole answers a [`Served::Refused`] error in Graph's envelope.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    base_url: String,
) -> Served {
    match serve_batch(shared, method, headers, body, base_url).await {
        Ok((headers, body, mailbox)) => Served::Responses {
            headers,
            body,
            mailbox,
        },
        Err(refused) => Served::Refused(refused),
    }
}

/// What [`serve`] answers.
pub(crate) enum Served {
    /// 200 with `{"responses":[…]}` ([`responses_body`]); the headers may carry `DROP_MARKER`.
    Responses {
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        /// The one mailbox every item addresses, if they all address the same one (the batch's
        /// `responseBytes` are attributed to it; otherwise they count in the total only).
        mailbox: Option<String>,
    },
    /// The batch as a whole failed.
    Refused(GraphResponse),
}

/// A batch that ran: the outer response headers, the `responses` document and the mailbox all
/// its items address (if one).
type Answered = (Vec<(String, String)>, Vec<u8>, Option<String>);

async fn serve_batch(
    shared: Arc<Shared>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
    base_url: String,
) -> Result<Answered, GraphResponse> {
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let fail = |e: GraphError| -> Result<Answered, GraphResponse> {
        Err(error_response(&shared, e, client_request_id.as_deref()))
    };
    if method != Method::POST {
        return fail(GraphError::method_not_allowed(false));
    }
    let principal = match crate::identity::verify_access_token(&shared, &headers, &base_url) {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    // The batch request as a whole can be faulted (a gateway failure loses every item); it is not
    // itself a mailbox request, so only its items meet the Outlook limits.
    let admitted = shared.realism.admit(&Ctx {
        method: "POST",
        path: "/v1.0/$batch",
        app: None,
        mailbox: None,
    });
    let admitted = match admitted {
        Ok(a) => a,
        Err(Refused::Respond(x)) => {
            if x.is_throttle() {
                shared.stats.throttled(None);
            }
            let status =
                StatusCode::from_u16(x.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let e = x
                .headers
                .into_iter()
                .fold(GraphError::new(status, x.code, x.message), |e, (k, v)| {
                    e.with_header(&k, v)
                });
            return fail(e);
        }
        Err(Refused::Drop) => {
            return fail(
                GraphError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "generalException",
                    "Connection dropped.",
                )
                .with_header(DROP_MARKER, "1"),
            );
        }
        Err(Refused::ExpireToken) => {
            shared
                .revoked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(principal.token_id.clone());
            return fail(GraphError::token_expired());
        }
    };
    admitted.fault_delay().await;
    let parsed = match parse(&body) {
        Ok(p) => p,
        Err(e) => return fail(GraphError::bad_request(e.code, e.message)),
    };
    shared.stats.batch(parsed.items.len() as u64);
    let authorization = headers.get("authorization").cloned();
    let dispatch_shared = shared.clone();
    // Every item carries the batch's token, verified just above: items re-check it cheaply
    // (`identity::recheck_principal`) instead of decoding the JWT again.
    let verified = principal.clone();
    let dispatch: Dispatch = Arc::new(move |item: InnerRequest| {
        let shared = dispatch_shared.clone();
        let authorization = authorization.clone();
        let base_url = base_url.clone();
        let verified = verified.clone();
        Box::pin(async move {
            let req = inner_graph_request(item, authorization, base_url, verified);
            let resp = match req {
                Ok(r) => graph::dispatch(&shared, r).await,
                Err(e) => error_response(&shared, e, None),
            };
            inner_response(resp)
        })
    });
    let tenant_id = principal.tenant_id.clone();
    let key_shared = shared.clone();
    let mailbox_key = move |path: &str| -> Option<String> {
        let who = mailbox_segment(path)?;
        let store = key_shared.store.lock().unwrap_or_else(|e| e.into_inner());
        Some(graph::mailbox_key(
            &store,
            &tenant_id,
            &crate::realism::percent_decode(&who),
        ))
    };
    let one_mailbox = single_mailbox(&parsed, &mailbox_key);
    let results = execute(parsed, &mailbox_key, dispatch).await;
    let dropped = results
        .iter()
        .any(|(_, r)| r.headers.iter().any(|(k, _)| k == DROP_MARKER));
    let body = responses_body(&results);
    let mut resp_headers: Vec<(String, String)> = Vec::new();
    if let Err(r) = admitted.finish() {
        return match r {
            Refused::Respond(x) => {
                let status =
                    StatusCode::from_u16(x.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                fail(GraphError::new(status, x.code, x.message))
            }
            _ => fail(
                GraphError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "generalException",
                    "Connection dropped.",
                )
                .with_header(DROP_MARKER, "1"),
            ),
        };
    }
    // An item's `drop` fault loses the whole batch's answer: there is one connection.
    if dropped {
        resp_headers.push((DROP_MARKER.to_owned(), "1".to_owned()));
    }
    resp_headers.push(("request-id".into(), uuid::Uuid::new_v4().to_string()));
    if let Some(c) = client_request_id {
        resp_headers.push(("client-request-id".into(), c));
    }
    Ok((resp_headers, body, one_mailbox))
}

/// The mailbox every item of the batch addresses, if they all address one and the same (an item
/// refused at parse time, or addressing the directory, makes it `None`).
fn single_mailbox(
    parsed: &ParsedBatch,
    mailbox_key: impl Fn(&str) -> Option<String>,
) -> Option<String> {
    let mut keys = parsed.items.iter().map(|item| match item {
        Ok(req) => mailbox_key(&req.path_and_query),
        Err(_) => None,
    });
    let first = keys.next()??;
    keys.all(|k| k.as_deref() == Some(first.as_str()))
        .then_some(first)
}

fn error_response(
    shared: &Shared,
    e: GraphError,
    client_request_id: Option<&str>,
) -> GraphResponse {
    let request_id = uuid::Uuid::new_v4().to_string();
    let date = shared.clock.now().strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let body = e.envelope(&request_id, client_request_id, &date);
    let mut headers = e.headers;
    headers.push(("request-id".into(), request_id));
    if let Some(c) = client_request_id {
        headers.push(("client-request-id".into(), c.to_owned()));
    }
    GraphResponse {
        status: e.status,
        headers,
        body: Some(body),
        mailbox: None,
    }
}

fn inner_graph_request(
    item: InnerRequest,
    authorization: Option<HeaderValue>,
    base_url: String,
    verified: Principal,
) -> Result<GraphRequest, GraphError> {
    let method = Method::from_bytes(item.method.as_bytes())
        .map_err(|_| GraphError::bad_request("BadRequest", "Invalid method."))?;
    let mut headers = HeaderMap::new();
    for (k, v) in &item.headers {
        let name = HeaderName::try_from(k.as_str()).map_err(|_| {
            GraphError::bad_request("BadRequest", format!("Invalid header name '{k}'."))
        })?;
        let value = HeaderValue::try_from(v.as_str()).map_err(|_| {
            GraphError::bad_request("BadRequest", format!("Invalid value of header '{k}'."))
        })?;
        headers.append(name, value);
    }
    // Items are authorized with the batch's token (json-batching.md: one auth for the batch).
    if let Some(a) = authorization {
        headers.insert(axum::http::header::AUTHORIZATION, a);
    }
    let (path, query) = match item.path_and_query.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (item.path_and_query.clone(), None),
    };
    Ok(GraphRequest {
        method,
        path,
        query,
        headers,
        body: Bytes::from(item.body.unwrap_or_default()),
        base_url,
        in_batch: true,
        verified: Some(verified),
    })
}

fn inner_response(resp: GraphResponse) -> InnerResponse {
    let mut headers = resp.headers;
    let body = match resp.body {
        Some(v) => {
            headers.push(("Content-Type".into(), GRAPH_JSON.into()));
            serde_json::to_vec(&v).unwrap_or_default()
        }
        None => Vec::new(),
    };
    InnerResponse {
        status: resp.status.as_u16(),
        headers,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn ok_json(status: u16, v: Value) -> InnerResponse {
        InnerResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&v).unwrap(),
        }
    }

    #[test]
    fn validates_the_batch() {
        let many: Vec<Value> = (0..21)
            .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
            .collect();
        assert!(parse(&serde_json::to_vec(&json!({"requests": many})).unwrap()).is_err());
        let twenty: Vec<Value> = (0..20)
            .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users"}))
            .collect();
        assert_eq!(
            parse(&serde_json::to_vec(&json!({"requests": twenty})).unwrap())
                .unwrap()
                .items
                .len(),
            20
        );

        let dup = json!({"requests": [{"id": "a", "method": "GET", "url": "/users"},
                                      {"id": "A", "method": "GET", "url": "/users"}]});
        assert!(
            parse(&serde_json::to_vec(&dup).unwrap())
                .unwrap_err()
                .message
                .contains("duplicated")
        );
        let unknown_dep = json!({"requests": [{"id": "a", "method": "GET", "url": "/users", "dependsOn": ["z"]}]});
        assert!(parse(&serde_json::to_vec(&unknown_dep).unwrap()).is_err());
        let cycle = json!({"requests": [{"id": "a", "method": "GET", "url": "/users", "dependsOn": ["b"]},
                                        {"id": "b", "method": "GET", "url": "/users", "dependsOn": ["a"]}]});
        assert!(
            parse(&serde_json::to_vec(&cycle).unwrap())
                .unwrap_err()
                .message
                .contains("cycle")
        );
        assert!(parse(b"not json").is_err());
        assert!(parse(br#"{"requests": []}"#).is_err());
    }

    #[test]
    fn urls_relative_and_absolute() {
        assert_eq!(
            normalize_url("/users/a/contacts?$top=5").unwrap(),
            "/v1.0/users/a/contacts?$top=5"
        );
        assert_eq!(normalize_url("users/a").unwrap(), "/v1.0/users/a");
        assert_eq!(
            normalize_url("https://graph.microsoft.com/v1.0/users/a/contacts?$skip=10").unwrap(),
            "/v1.0/users/a/contacts?$skip=10"
        );
        assert_eq!(
            normalize_url("http://127.0.0.1:5/v1.0/users").unwrap(),
            "/v1.0/users"
        );
        assert!(normalize_url("https://graph.microsoft.com/beta/users").is_none());
        assert_eq!(
            mailbox_segment("/v1.0/users/Adele@X.com/contacts?$top=1").as_deref(),
            Some("adele@x.com")
        );
        assert_eq!(
            mailbox_segment("/v1.0/users/adele@x.com"),
            None,
            "the user object is not mailbox data"
        );
        assert_eq!(mailbox_segment("/v1.0/users?$top=1"), None);
    }

    #[test]
    fn item_bodies_need_content_type() {
        let b = json!({"requests": [
            {"id": "1", "method": "POST", "url": "/users/a/contacts", "body": {"givenName": "X"}},
            {"id": "2", "method": "POST", "url": "/users/a/contacts", "body": {"givenName": "Y"},
             "headers": {"Content-Type": "application/json"}}]});
        let p = parse(&serde_json::to_vec(&b).unwrap()).unwrap();
        assert_eq!(p.items[0].as_ref().unwrap_err().1.status, 400);
        let ok = p.items[1].as_ref().unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(ok.body.as_ref().unwrap()).unwrap(),
            json!({"givenName": "Y"})
        );
    }

    #[test]
    fn item_bodies_keep_their_json_text_null_is_none_and_non_json_is_base64() {
        let b = br#"{"requests": [
            {"id": "1", "method": "POST", "url": "/users/a/contacts",
             "headers": {"Content-Type": "application/json"}, "body": {"givenName": "\u00e9 \"q\"", "n": [1, 2]}},
            {"id": "2", "method": "POST", "url": "/users/a/contacts",
             "headers": {"Content-Type": "application/json"}, "body": null},
            {"id": "3", "method": "PUT", "url": "/users/a/photo/$value",
             "headers": {"Content-Type": "image/png"}, "body": "aGVsbG8="},
            {"id": "4", "method": "PUT", "url": "/users/a/photo/$value",
             "headers": {"Content-Type": "image/png"}, "body": {"not": "base64"}},
            {"id": "5", "method": "PUT", "url": "/users/a/photo/$value",
             "headers": {"Content-Type": "image/png"}, "body": "%%%"}]}"#;
        let p = parse(b).unwrap();
        let one = p.items[0].as_ref().unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(one.body.as_ref().unwrap()).unwrap(),
            json!({"givenName": "é \"q\"", "n": [1, 2]})
        );
        assert_eq!(p.items[1].as_ref().unwrap().body, None);
        assert_eq!(
            p.items[2].as_ref().unwrap().body.as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(p.items[3].as_ref().unwrap_err().1.status, 400);
        assert_eq!(p.items[4].as_ref().unwrap_err().1.status, 400);
    }

    #[test]
    fn responses_body_escapes_ids_dedupes_headers_and_base64s_what_is_not_json() {
        let labelled_but_broken = InnerResponse {
            status: 200,
            headers: vec![
                ("Content-Type".into(), "text/plain".into()),
                ("content-type".into(), "application/json".into()),
            ],
            body: b"{not json".to_vec(),
        };
        let binary = InnerResponse {
            status: 200,
            headers: vec![("ETag".into(), "W/\"x\"".into())],
            body: vec![0, 159, 146, 150],
        };
        let bytes = responses_body(&[("a\"b".into(), labelled_but_broken), ("c".into(), binary)]);
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body,
            json!({"responses": [
                {"id": "a\"b", "status": 200, "headers": {"Content-Type": "application/json"},
                 "body": STANDARD.encode(b"{not json")},
                {"id": "c", "status": 200, "headers": {"ETag": "W/\"x\""},
                 "body": STANDARD.encode([0u8, 159, 146, 150])}]})
        );
    }

    #[tokio::test]
    async fn parallel_items_to_one_mailbox_run_at_most_four_at_a_time() {
        let reqs: Vec<Value> = (0..20)
            .map(|i| {
                let who = if i < 12 { "a@x" } else { "b@x" };
                json!({"id": i.to_string(), "method": "GET", "url": format!("/users/{who}/contacts")})
            })
            .collect();
        let batch = parse(&serde_json::to_vec(&json!({"requests": reqs})).unwrap()).unwrap();
        let now: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let peak: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (n2, p2) = (now.clone(), peak.clone());
        let dispatch: Dispatch = Arc::new(move |r: InnerRequest| {
            let (now, peak) = (n2.clone(), p2.clone());
            Box::pin(async move {
                let m = mailbox_segment(&r.path_and_query).unwrap();
                {
                    let mut g = now.lock().unwrap();
                    let c = g.entry(m.clone()).or_default();
                    *c += 1;
                    let mut p = peak.lock().unwrap();
                    let e = p.entry(m.clone()).or_default();
                    *e = (*e).max(*c);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                *now.lock().unwrap().get_mut(&m).unwrap() -= 1;
                ok_json(200, json!({"value": []}))
            })
        });
        let out = execute(batch, mailbox_segment, dispatch).await;
        assert_eq!(out.len(), 20);
        let peak = peak.lock().unwrap();
        assert_eq!(peak["a@x"], 4, "{peak:?}");
        assert_eq!(peak["b@x"], 4, "{peak:?}");
    }

    #[tokio::test]
    async fn depends_on_runs_in_order_and_failures_cascade_424() {
        let b = json!({"requests": [
            {"id": "3", "method": "GET", "url": "/users/a/contacts/3", "dependsOn": ["2"]},
            {"id": "1", "method": "GET", "url": "/users/a/contacts/1"},
            {"id": "2", "method": "GET", "url": "/users/a/contacts/missing", "dependsOn": ["1"]},
            {"id": "4", "method": "GET", "url": "/users/a/contacts/4", "dependsOn": ["1"]}]});
        let batch = parse(&serde_json::to_vec(&b).unwrap()).unwrap();
        assert!(batch.sequential);
        let calls = Arc::new(AtomicUsize::new(0));
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let (c2, s2) = (calls.clone(), seen.clone());
        let dispatch: Dispatch = Arc::new(move |r: InnerRequest| {
            c2.fetch_add(1, Ordering::SeqCst);
            s2.lock().unwrap().push(r.id.clone());
            Box::pin(async move {
                if r.path_and_query.ends_with("missing") {
                    ok_json(
                        404,
                        json!({"error": {"code": "ErrorItemNotFound", "message": "nope"}}),
                    )
                } else {
                    ok_json(200, json!({"id": r.id}))
                }
            })
        });
        let out = execute(batch, mailbox_segment, dispatch).await;
        let status: HashMap<&str, u16> =
            out.iter().map(|(id, r)| (id.as_str(), r.status)).collect();
        assert_eq!(status["1"], 200);
        assert_eq!(status["2"], 404);
        assert_eq!(status["3"], 424, "dependant of a failure is not run");
        assert_eq!(status["4"], 200);
        assert_eq!(*seen.lock().unwrap(), vec!["1", "2", "4"]);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn responses_carry_status_headers_and_json_or_absent_body() {
        let throttled = InnerResponse {
            status: 429,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("retry-after".into(), "3".into()),
                ("request-id".into(), "x".into()),
            ],
            body: br#"{"error":{"code":"ApplicationThrottled"}}"#.to_vec(),
        };
        let deleted = InnerResponse {
            status: 204,
            headers: vec![],
            body: vec![],
        };
        let bytes = responses_body(&[("1".into(), throttled), ("2".into(), deleted)]);
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            body,
            json!({"responses": [
                {"id": "1", "status": 429, "headers": {"Content-Type": "application/json", "Retry-After": "3"},
                 "body": {"error": {"code": "ApplicationThrottled"}}},
                {"id": "2", "status": 204, "headers": {}}]})
        );
    }
}
