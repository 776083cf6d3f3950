//! Control-plane endpoints for the realism features (crates/graph-emulator/README.md,
//! "Control plane"): replace the fault plan, expire delta tokens, and edit or move a contact as its
//! owner would mid-run (`touch`, `move`), for tests of a client's concurrency and delta handling.
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
use crate::delta::ExpiredForm;
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

/// `POST /_emulator/delta/expire`: every delta token is forgotten. The optional body
/// `{"form": "syncStateNotFound" | "reset"}` chooses how their next use is answered: 410
/// `SyncStateNotFound` (the default, as observed) or 410 with a `Location` header naming a fresh
/// initial delta request (the documented "synchronization reset"). With `"mailbox": "<upn or
/// id>"` only that mailbox's tokens are forgotten (Outlook keeps sync states per mailbox, so one
/// mailbox's can be evicted while the others' live on, docs/graph-facts.md §2) and the answer is
/// 200 `{"expired": N}`, the number of tokens (skip and delta) forgotten; an unknown user or one
/// without a mailbox is 404.
pub async fn expire_delta(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Expire {
        #[serde(default)]
        form: ExpiredForm,
        #[serde(default)]
        mailbox: Option<String>,
    }
    let expire = if body.iter().all(u8::is_ascii_whitespace) {
        Expire {
            form: ExpiredForm::default(),
            mailbox: None,
        }
    } else {
        match serde_json::from_slice::<Expire>(&body) {
            Ok(e) => e,
            Err(e) => {
                return problem(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "expected {{\"form\": \"syncStateNotFound\" | \"reset\", \"mailbox\": \"<upn>\"}} (both optional): {e}"
                    ),
                );
            }
        }
    };
    let Some(upn) = expire.mailbox else {
        shared.delta.expire_all(expire.form);
        return StatusCode::NO_CONTENT.into_response();
    };
    // Tokens are scoped by the mailbox's default folder id (graph::mailbox_delta).
    let key = {
        let guard = shared.store.lock().unwrap_or_else(|e| e.into_inner());
        let found = guard.tenants.iter().find_map(|t| {
            let u = t.user_index(&upn)?;
            Some(
                t.users[u]
                    .mailbox
                    .as_ref()
                    .map(|m| m.default_folder_id.clone()),
            )
        });
        match found {
            Some(Some(key)) => key,
            Some(None) => {
                return problem(
                    StatusCode::NOT_FOUND,
                    format!("user '{upn}' has no mailbox"),
                );
            }
            None => return problem(StatusCode::NOT_FOUND, format!("no user '{upn}'")),
        }
    };
    let expired = shared.delta.expire_mailbox(&key, expire.form);
    Json(json!({ "expired": expired })).into_response()
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
        mailbox.settle(now, ids);
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

/// `POST /_emulator/users/{upn}/contacts/{cid}/move` with `{"destinationId": "<folder id>"}`:
/// moves the contact to another folder of its mailbox as a user dragging it in Outlook would.
/// The source folder's delta then reports it `@removed` and the destination's as new
/// (docs/graph-facts.md §2 [UNCONF] for the reason). Its id is kept, as with `Prefer:
/// IdType="ImmutableId"` (docs/graph-facts.md §1); its version moves.
pub async fn move_contact(
    State(shared): State<Arc<Shared>>,
    Path((upn, cid)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Move {
        destination_id: String,
    }
    let dest = match serde_json::from_slice::<Move>(&body) {
        Ok(m) => m.destination_id,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"destinationId\": \"<folder id>\"}}: {e}"),
            );
        }
    };
    let now = shared.clock.now();
    let mut guard = shared.store.lock().unwrap_or_else(|e| e.into_inner());
    let Store { tenants, ids, .. } = &mut *guard;
    let Some(user) = tenants
        .iter_mut()
        .find_map(|t| t.user_index(&upn).map(|u| &mut t.users[u]))
    else {
        return problem(StatusCode::NOT_FOUND, format!("no user '{upn}'"));
    };
    let Some(mailbox) = user.mailbox.as_mut() else {
        return problem(
            StatusCode::NOT_FOUND,
            format!("user '{upn}' has no mailbox"),
        );
    };
    mailbox.settle(now, ids);
    if !mailbox.folder_exists(&dest) {
        return problem(
            StatusCode::NOT_FOUND,
            format!("no folder '{dest}' in '{upn}'"),
        );
    }
    match mailbox.move_contact(&cid, &dest, ids, now) {
        Some(c) => Json(Value::Object(contact::render(&c.data, None))).into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            format!("no contact '{cid}' in '{upn}'"),
        ),
    }
}
