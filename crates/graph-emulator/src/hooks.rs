//! The points where per-request policies wrap every Graph request, direct or inside a `$batch`:
//! the fault plan, the Outlook limits and the service latency ([`crate::realism`]), so batch
//! items are faulted, throttled and delayed exactly like direct requests.
//!
//! A hook sees the request after authentication and routing (it knows the app and the mailbox)
//! and before (or after) the store is touched. It must never touch the store itself: it may only
//! delay the request, answer it with an error, or have its connection dropped.

use axum::http::StatusCode;

use crate::error::GraphError;
use crate::graph::GraphResponse;
use crate::realism::{Admitted, Ctx, MailboxName, Refused};
use crate::server::Shared;

/// Internal response header asking the HTTP layer to close the connection without answering
/// (fault `drop`). Never sent to a client: the connection dies before anything is written.
pub const DROP_MARKER: &str = "x-graph-emulator-drop";

/// What a hook knows about one Graph request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub method: String,
    /// The path as sent, starting with `/v1.0/`.
    pub path: String,
    pub tenant_id: String,
    pub client_id: String,
    /// The access token's id (`uti`), for the `expireToken` fault.
    pub token_id: String,
    /// The mailbox key (UPN as stored, or the lower-cased segment when the user is unknown) for
    /// requests under `/users/{user}/` that reach mailbox data; `None` for directory requests.
    pub mailbox: Option<String>,
    /// Whether the request is an item of a `$batch`.
    #[allow(
        dead_code,
        reason = "kept for hooks that treat batch items differently"
    )]
    pub in_batch: bool,
    /// Hash of method, path, query and body: identifies a repeat of the same request (for the
    /// `earlyRetries` stat).
    pub fingerprint: u64,
}

/// The [`RequestContext::fingerprint`] of a request.
pub fn fingerprint(method: &str, path: &str, query: Option<&str>, body: &[u8]) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (method, path, query, body).hash(&mut h);
    h.finish()
}

/// A request the hooks let through; it holds its concurrency slot. Spend its
/// [`Admission::service_time`] while counted in flight, then hand it to [`after_execute`].
#[derive(Debug)]
pub struct Admission(Admitted);

impl Admission {
    /// Fault delay plus `--latency-ms`.
    pub async fn service_time(&self) {
        self.0.service_time().await;
    }
}

/// Runs before a Graph request executes: faults, then limits. `Err` answers the request without
/// executing it.
pub fn before_execute(shared: &Shared, ctx: &RequestContext) -> Result<Admission, GraphError> {
    if let Some(m) = &ctx.mailbox {
        shared.stats.arrived(m, ctx.fingerprint, shared.clock.now());
    }
    // Limits are keyed by the user id (the UPN for an unknown user); fault rules may name the
    // mailbox by UPN or id whichever form the client used.
    let mailbox = ctx.mailbox.as_ref().map(|upn| MailboxName {
        key: user_id(shared, &ctx.tenant_id, upn).unwrap_or_else(|| upn.clone()),
        upn: upn.clone(),
    });
    let rctx = Ctx {
        method: &ctx.method,
        path: &ctx.path,
        app: Some(&ctx.client_id),
        mailbox: mailbox.as_ref(),
    };
    shared
        .realism
        .admit(&rctx)
        .map(Admission)
        .map_err(|r| refused(shared, ctx, r))
}

/// Runs after a request executed (its effects are in the store). The fault plan's "apply, then
/// answer 504 / drop the connection" (the ambiguous write, crates/graph-emulator/README.md,
/// "Limits and faults") replaces the answer.
pub fn after_execute(
    shared: &Shared,
    ctx: &RequestContext,
    admission: Admission,
    result: Result<GraphResponse, GraphError>,
) -> Result<GraphResponse, GraphError> {
    match admission.0.finish() {
        Ok(()) => result,
        Err(r) => Err(refused(shared, ctx, r)),
    }
}

fn user_id(shared: &Shared, tenant_id: &str, upn: &str) -> Option<String> {
    let store = shared.store.lock().unwrap_or_else(|e| e.into_inner());
    let tenant = &store.tenants[store.tenant_index(tenant_id)?];
    tenant.user_index(upn).map(|u| tenant.users[u].id.clone())
}

fn refused(shared: &Shared, ctx: &RequestContext, r: Refused) -> GraphError {
    match r {
        Refused::Respond(x) => {
            if x.is_throttle() {
                shared.stats.throttled(ctx.mailbox.as_deref());
                let secs = x
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
                    .and_then(|(_, v)| v.parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s > 0.0);
                if let (Some(m), Some(secs)) = (ctx.mailbox.as_deref(), secs) {
                    let until = shared.clock.now() + jiff::SignedDuration::from_secs_f64(secs);
                    shared.stats.retry_after_sent(m, ctx.fingerprint, until);
                }
            }
            let status =
                StatusCode::from_u16(x.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            x.headers
                .into_iter()
                .fold(GraphError::new(status, x.code, x.message), |e, (k, v)| {
                    e.with_header(&k, v)
                })
        }
        Refused::Drop => GraphError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            "Connection dropped.",
        )
        .with_header(DROP_MARKER, "1"),
        Refused::ExpireToken => {
            shared
                .revoked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(ctx.token_id.clone());
            GraphError::token_expired()
        }
    }
}
