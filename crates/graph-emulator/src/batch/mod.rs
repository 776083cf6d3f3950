//! JSON batching, `POST /v1.0/$batch` (docs/graph-facts.md §5): parse and validate the batch, run
//! its items through the same dispatch path as direct requests (so each is authorized, counted,
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

/// Graph's cap on requests per batch (docs/graph-facts.md §5).
pub const MAX_ITEMS: usize = 20;
/// Items forwarded to one mailbox at a time (docs/graph-facts.md §5, Outlook include).
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
/// request order either, docs/graph-facts.md §5).
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

mod serve;

pub(crate) use serve::{Served, serve};

#[cfg(test)]
mod tests;
