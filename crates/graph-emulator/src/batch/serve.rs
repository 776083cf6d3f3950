//! Glue between the batch machinery and the emulator core: `POST /v1.0/$batch` authenticated
//! once, admitted by the fault plan, its items dispatched through [`graph::dispatch`] like direct
//! requests, and the answer assembled.
//!
//! It never handles an item itself.

use std::sync::Arc;

use super::{
    Dispatch, InnerRequest, InnerResponse, ParsedBatch, execute, mailbox_segment, parse,
    responses_body,
};

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
