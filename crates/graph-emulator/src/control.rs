//! Control-plane endpoints for the realism features (EMULATOR.md §4): replace the fault plan,
//! expire delta tokens, and edit a contact as its owner would mid-run (`touch`), for tests of a
//! client's concurrency handling.
//!
//! These are test instruments, never part of the Graph surface: no auth, plain JSON errors, and
//! they must never be reachable under `/v1.0`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::contact;
use crate::faults::FaultPlan;
use crate::server::Shared;
use crate::store::Store;

fn problem(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({"error": {"code": "BadRequest", "message": message.into()}})),
    )
        .into_response()
}

/// `GET /_emulator/faults`: the current plan.
pub async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.realism.faults.plan()).into_response()
}

/// `PUT /_emulator/faults`: replace the plan (same format as `--faults`); counters restart.
pub async fn put_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultPlan>(&body) {
        Ok(plan) => {
            shared.realism.faults.replace(plan);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => problem(StatusCode::BAD_REQUEST, format!("invalid fault plan: {e}")),
    }
}

/// `POST /_emulator/delta/expire`: every delta token is forgotten (next use: 410).
pub async fn expire_delta(State(shared): State<Arc<Shared>>) -> Response {
    shared.delta.expire_all();
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /_emulator/users/{upn}/contacts/{cid}/touch`: apply the body's fields to the contact
/// as an Outlook edit would (new changeKey and lastModifiedDateTime, so a client's stale
/// `If-Match` gets 412). An empty body only bumps the version.
pub async fn touch(
    State(shared): State<Arc<Shared>>,
    Path((upn, cid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let patch: Map<String, Value> = if body.is_empty() {
        Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => m,
            _ => return problem(StatusCode::BAD_REQUEST, "the body must be a JSON object"),
        }
    };
    let patch = match contact::validate_write(&patch) {
        Ok(p) => p,
        Err(e) => return problem(StatusCode::BAD_REQUEST, e.message),
    };
    let now = shared.clock.now();
    let mut guard = shared.store.lock().unwrap_or_else(|e| e.into_inner());
    let Store { tenants, ids, .. } = &mut *guard;
    for tenant in tenants.iter_mut() {
        let Some(u) = tenant.user_index(&upn) else {
            continue;
        };
        let Some(mailbox) = tenant.users[u].mailbox.as_mut() else {
            return problem(
                StatusCode::NOT_FOUND,
                format!("user '{upn}' has no mailbox"),
            );
        };
        return match mailbox.patch_contact(&cid, patch, ids, now) {
            Some(c) => Json(Value::Object(contact::render(&c.data, None))).into_response(),
            None => problem(
                StatusCode::NOT_FOUND,
                format!("no contact '{cid}' in '{upn}'"),
            ),
        };
    }
    problem(StatusCode::NOT_FOUND, format!("no user '{upn}'"))
}
