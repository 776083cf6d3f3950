//! The points where per-request policies wrap every Graph request, direct or inside a `$batch`:
//! service latency now; the Outlook limits (`limits.rs`) and the fault plan (`faults.rs`) plug in
//! here, in that order, so batch items are throttled exactly like direct requests.
//!
//! A hook sees the request after authentication and routing (it knows the app and the mailbox)
//! and before (or after) the store is touched. It must never touch the store itself: it may only
//! delay the request or answer it with an error.

use crate::error::GraphError;
use crate::graph::GraphResponse;
use crate::server::Shared;

/// What a hook knows about one Graph request.
#[allow(dead_code, reason = "read by the limits and faults hooks")]
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub method: String,
    /// The path as sent, starting with `/v1.0/`.
    pub path: String,
    pub tenant_id: String,
    pub client_id: String,
    /// The mailbox key (UPN as stored, or the lower-cased segment when the user is unknown) for
    /// requests under `/users/{user}/` that reach mailbox data; `None` for directory requests.
    pub mailbox: Option<String>,
    /// How many requests to this mailbox were in flight when this one entered (itself included).
    pub in_flight: u64,
    /// Whether the request is an item of a `$batch`.
    pub in_batch: bool,
}

/// Runs before a Graph request executes. `Err` answers the request without executing it.
pub async fn before_execute(shared: &Shared, _ctx: &RequestContext) -> Result<(), GraphError> {
    if !shared.latency.is_zero() {
        tokio::time::sleep(shared.latency).await;
    }
    Ok(())
}

/// Runs after a request executed (its effects are in the store). A hook may replace the answer:
/// the fault plan's "apply, then answer 504" (the ambiguous write, EMULATOR.md §5) lives here.
/// Today nothing replaces it.
pub async fn after_execute(
    _shared: &Shared,
    _ctx: &RequestContext,
    result: Result<GraphResponse, GraphError>,
) -> Result<GraphResponse, GraphError> {
    result
}
