//! The HTTP layer: the axum router that maps the identity platform, the Graph surface and the
//! control plane onto their modules, and the state they share.
//!
//! Handlers here only translate between HTTP and the modules' types (base URL from the `Host`
//! header, body bytes, response headers); they never decide Graph behaviour themselves. Graph
//! requests all go through [`crate::graph::dispatch`].

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{Extensions, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use crate::delta::DeltaStore;
use crate::graph::{self, GraphRequest, GraphResponse};
use crate::hooks::DROP_MARKER;
use crate::identity;
use crate::realism::Realism;
use crate::stats::StatsRecorder;
use crate::store::{Clock, Store};
use crate::tls::ConnInfo;

/// State shared by every handler.
pub struct Shared {
    pub store: Mutex<Store>,
    pub stats: StatsRecorder,
    pub clock: Clock,
    /// HS256 key for access tokens; random per emulator, so another instance's tokens are foreign.
    pub jwt_key: Vec<u8>,
    /// Fault plan, Outlook limits and service time (crates/graph-emulator/README.md,
    /// "Limits and faults").
    pub realism: Realism,
    /// Delta sync states (docs/graph-facts.md §2).
    pub delta: DeltaStore,
    /// Access tokens (`uti`) expired early by the fault plan.
    pub revoked: Mutex<HashSet<String>>,
    /// `http` or `https`, for links built from the Host header.
    pub scheme: &'static str,
    /// Alternative readings of unconfirmed Graph behaviour.
    pub variants: crate::variants::Variants,
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_emulator/state", get(control_state))
        .route("/_emulator/stats", get(control_stats))
        .route("/_emulator/stats/reset", post(control_reset))
        .route("/_emulator/deleted", get(control_deleted))
        .route(
            "/_emulator/faults",
            get(crate::control::get_faults).put(crate::control::put_faults),
        )
        .route(
            "/_emulator/delta/expire",
            post(crate::control::expire_delta),
        )
        .route(
            "/_emulator/users/{upn}/contacts/{cid}/touch",
            post(crate::control::touch),
        )
        .route(
            "/_emulator/users/{upn}/contacts/{cid}/move",
            post(crate::control::move_contact),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/{tenant}/discovery/instance", get(instance_discovery))
        .route("/v1.0", any(graph_surface))
        .route("/v1.0/{*rest}", any(graph_surface))
        .fallback(not_found)
        .with_state(shared)
}

/// `scheme://host` as the client addressed us (paging links must use it, docs/graph-facts.md §3).
pub fn base_url(shared: &Shared, headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| uri.authority().map(|a| a.to_string()))
        .unwrap_or_else(|| "127.0.0.1".to_string());
    format!("{}://{host}", shared.scheme)
}

async fn graph_surface(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    extensions: Extensions,
    body: Bytes,
) -> Response {
    shared
        .stats
        .graph_request(crate::stats::user_agent_of(&headers).as_deref());
    let conn = extensions
        .get::<ConnectInfo<ConnInfo>>()
        .map(|c| c.0.clone());
    if uri.path().eq_ignore_ascii_case("/v1.0/$batch") {
        let base = base_url(&shared, &headers, &uri);
        return match crate::batch::serve(shared.clone(), method, headers, body, base).await {
            crate::batch::Served::Refused(resp) => drop_or_answer(&shared, resp, conn.as_ref()),
            crate::batch::Served::Responses {
                headers,
                body,
                mailbox,
            } => {
                if !drop_if_marked(&headers, conn.as_ref()) {
                    shared.stats.response_sent(mailbox.as_deref(), body.len());
                }
                http_response(StatusCode::OK, &headers, Some(body))
            }
        };
    }
    let req = GraphRequest {
        method,
        path: uri.path().to_string(),
        query: uri.query().map(str::to_string),
        base_url: base_url(&shared, &headers, &uri),
        headers,
        body,
        in_batch: false,
        verified: None,
    };
    drop_or_answer(&shared, graph::dispatch(&shared, req).await, conn.as_ref())
}

/// Answers, unless a fault asked to drop the connection (`DROP_MARKER`): then the connection is
/// killed and nothing reaches the client. A body that is sent counts in `responseBytes`.
fn drop_or_answer(shared: &Shared, resp: GraphResponse, conn: Option<&ConnInfo>) -> Response {
    let dropped = drop_if_marked(&resp.headers, conn);
    let body = resp
        .body
        .map(|v| serde_json::to_vec(&v).unwrap_or_default());
    if !dropped {
        let bytes = body.as_ref().map_or(0, Vec::len);
        shared.stats.response_sent(resp.mailbox.as_deref(), bytes);
    }
    http_response(resp.status, &resp.headers, body)
}

/// Kills the connection if a fault asked for it; returns whether it did (nothing is sent then).
fn drop_if_marked(headers: &[(String, String)], conn: Option<&ConnInfo>) -> bool {
    if !headers.iter().any(|(k, _)| k == DROP_MARKER) {
        return false;
    }
    match conn {
        Some(c) => {
            c.kill.kill();
            true
        }
        None => {
            tracing::error!("drop fault without a connection handle; answering instead");
            false
        }
    }
}

/// Graph's JSON content type (what the service sends on v1.0 responses).
pub const GRAPH_JSON: &str = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8";

/// An HTTP response from a status, headers (minus `DROP_MARKER`) and an already-serialized JSON
/// body (`None`: empty).
fn http_response(
    status: StatusCode,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
) -> Response {
    let mut builder = Response::builder().status(status);
    for (k, v) in headers.iter().filter(|(k, _)| k != DROP_MARKER) {
        if let (Ok(k), Ok(v)) = (
            HeaderName::try_from(k.as_str()),
            HeaderValue::try_from(v.as_str()),
        ) {
            builder = builder.header(k, v);
        }
    }
    let body = match body {
        Some(bytes) => {
            builder = builder.header(header::CONTENT_TYPE, GRAPH_JSON);
            Body::from(bytes)
        }
        None => Body::empty(),
    };
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let base = base_url(&shared, &headers, &uri);
    identity::token(&shared, &tenant, &headers, &body, &base)
}

async fn openid_configuration(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let base = base_url(&shared, &headers, &uri);
    identity::openid_configuration(&shared, &tenant, &base)
}

async fn instance_discovery(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let base = base_url(&shared, &headers, &uri);
    identity::instance_discovery(uri.query(), &base)
}

async fn control_state(State(shared): State<Arc<Shared>>) -> Response {
    let now = shared.clock.now();
    let scenario = {
        let mut store = shared.store.lock().unwrap();
        store.settle_all(now);
        store.export()
    };
    axum::Json(scenario).into_response()
}

/// `GET /_emulator/deleted`: `{"byMailbox": {"<upn>": [{"id", "parentFolderId", "deletedAt",
/// "contact"}]}}`, every contact deleted through the Graph API since the last stats reset, in
/// order, so test oracles can say *which* contacts were deleted.
async fn control_deleted(State(shared): State<Arc<Shared>>) -> Response {
    let by_mailbox = shared.store.lock().unwrap().deleted_by_mailbox();
    axum::Json(serde_json::json!({ "byMailbox": by_mailbox })).into_response()
}

async fn control_stats(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.stats.snapshot()).into_response()
}

async fn control_reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.stats.reset();
    shared.store.lock().unwrap().clear_deleted();
    StatusCode::NO_CONTENT.into_response()
}

async fn not_found(uri: Uri) -> Response {
    let body = serde_json::json!({"error": {
        "code": "NotFound",
        "message": format!("graph-emulator serves no resource at '{}'.", uri.path()),
    }});
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}
