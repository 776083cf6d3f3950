//! Typed, classified errors from Graph and the identity platform.
//!
//! Callers branch on [`ErrorKind`] (and, for a refused token, [`GraphError::token_problem`]) and
//! ask [`GraphError::is_retryable`]; they never parse messages. Every error keeps Graph's
//! `request-id` (or the identity platform's trace id) for support tickets, and every message says
//! what to fix in neutral words: it names the tenant, the app and Graph's permissions, never a
//! caller's setting or variable (the caller adds those). Messages built from server text pass
//! through the client's [`crate::secret::Redactor`]; this module must never format a secret.

mod identity;

use std::fmt;

use std::time::Duration;

use serde_json::Value;

pub use identity::{TokenProblem, from_token_response};

use crate::retry::Retryability;
use crate::text::truncate;

/// What went wrong, as far as the caller needs to decide what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Token could not be obtained or was refused (identity platform error, 401).
    Auth,
    /// 403: missing permission/consent, Exchange access policy or RBAC scope.
    Permission,
    /// 404 for an object (user, folder, contact).
    NotFound,
    /// 404 `MailboxNotEnabledForRESTAPI`: the user has no Exchange Online mailbox
    /// (docs/sync-rules.md §3: skip it).
    MailboxNotEnabled,
    /// 404 `ErrorInvalidUser` on a mailbox path.
    InvalidUser,
    /// 429 after the attempt budget was spent.
    Throttled,
    /// 5xx after the attempt budget was spent.
    Server,
    /// Connection/TLS/timeout after the attempt budget was spent.
    Transport,
    /// 409, 412 (`If-Match` change-key mismatch, docs/graph-facts.md §7), `ErrorFolderExists`.
    Conflict,
    /// Other 4xx: the request itself is wrong; retrying cannot help.
    BadRequest,
    /// A create whose outcome is unknown (504 or a connection lost after sending): it was not
    /// retried because a retry could create a duplicate (docs/reliability.md I2); a later run
    /// repairs it.
    AmbiguousWrite,
    /// An update or delete refused with 412 (a delete also with 404) after an earlier attempt of
    /// the same write whose outcome was unknown (answered 500/502/504 or lost): the refusal may be
    /// that attempt's own doing (it changed the etag, or removed the contact). The status is the
    /// final one. Re-read the contact: if it holds what was sent (or is gone, for a delete) the
    /// write is done; otherwise someone else changed it, a conflict.
    UnconfirmedWrite,
    /// The server's TLS certificate is not trusted (a TLS-intercepting proxy, a test endpoint, a
    /// wrong host). No retry can fix it; trusting its CA (`ClientConfig::extra_ca_pem`) can.
    UntrustedCertificate,
    /// Configuration problem found before any request (bad URL, unreadable certificate …).
    Config,
    /// A delta link (or a nextLink inside a round) that Graph no longer honours: 410 Gone (with
    /// or without a `Location` header, the documented "synchronization reset"), or the codes
    /// `syncStateNotFound` / `resyncRequired` (docs/graph-facts.md §2). Read the folder whole, and
    /// start a new delta round for the next time; nothing may be inferred from the broken round.
    SyncReset,
    /// The client's circuit breaker opened: Graph or the login endpoint failed at the transport
    /// level (connection refused, DNS, TLS, timeouts) several times in a row over a while, with
    /// no answer in between. Every later call of this client fails at once with this kind; the
    /// message names the endpoint and what was seen.
    Unreachable,
    /// The caller's [`StopSignal`](crate::StopSignal) was triggered before this request was sent
    /// (it was never sent, unless the message says an earlier attempt may have been applied).
    Cancelled,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::Permission => "permission",
            ErrorKind::NotFound => "not-found",
            ErrorKind::MailboxNotEnabled => "mailbox-not-enabled",
            ErrorKind::InvalidUser => "invalid-user",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Server => "server",
            ErrorKind::Transport => "transport",
            ErrorKind::Conflict => "conflict",
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::AmbiguousWrite => "ambiguous-write",
            ErrorKind::UnconfirmedWrite => "unconfirmed-write",
            ErrorKind::UntrustedCertificate => "untrusted-certificate",
            ErrorKind::Config => "config",
            ErrorKind::SyncReset => "sync-reset",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error from the Graph client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct GraphError {
    pub kind: ErrorKind,
    /// HTTP status, when a response was received.
    pub status: Option<u16>,
    /// Graph `error.code` (e.g. `ErrorAccessDenied`) or `AADSTS7000215`.
    pub code: Option<String>,
    /// What happened and what to do about it.
    pub message: String,
    /// Graph `request-id` (or identity platform `trace_id`), for a support ticket.
    pub request_id: Option<String>,
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        match (self.status, &self.code) {
            (Some(s), Some(c)) => write!(f, " (HTTP {s} {c})")?,
            (Some(s), None) => write!(f, " (HTTP {s})")?,
            (None, Some(c)) => write!(f, " ({c})")?,
            (None, None) => {}
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request-id {id}]")?;
        }
        Ok(())
    }
}

impl GraphError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            code: None,
            message: message.into(),
            request_id: None,
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// Whether running the same request again later may succeed (throttling, server or network
    /// trouble). The client has already spent its attempt budget when it returns such an error.
    /// A response's status is judged by [`Retryability::of_status`], the rule the retry loop
    /// follows too; the kind only speaks where there is no status. [`ErrorKind::Unreachable`]
    /// and [`ErrorKind::Cancelled`] are not retryable: this client sends nothing more.
    pub fn is_retryable(&self) -> bool {
        match (self.kind, self.status) {
            (ErrorKind::Transport, _) => true,
            (ErrorKind::Throttled | ErrorKind::Server, Some(status)) => {
                Retryability::of_status(status) != Retryability::Permanent
            }
            // A malformed answer or an item missing from a `$batch` answer.
            (ErrorKind::Throttled | ErrorKind::Server, None) => true,
            _ => false,
        }
    }

    /// The identity platform's verdict on a refused token request, from its AADSTS code.
    pub fn token_problem(&self) -> Option<TokenProblem> {
        identity::parse_aadsts(self.code.as_deref()?).map(TokenProblem::from_aadsts)
    }

    /// The error for a request that gave up because Graph asked for a longer wait than the
    /// policy allows (see [`crate::retry`]).
    pub(crate) fn waited_too_long(mut self, asked: Duration, cap: Duration) -> Self {
        self.message.push_str(&format!(
            " — Graph asked to wait {} before trying again, longer than this client waits ({}); \
             waiting less than asked is against Graph's guidance, so try again later",
            seconds(asked),
            seconds(cap)
        ));
        self
    }

    /// Marks a final refusal as possibly caused by an earlier attempt of the same write (see
    /// [`ErrorKind::UnconfirmedWrite`]).
    pub(crate) fn after_unknown_attempt(mut self) -> Self {
        self.kind = ErrorKind::UnconfirmedWrite;
        self.message.push_str(
            " — an earlier attempt of this write may have been applied (its answer was lost), so \
             this refusal may be its own doing; re-read the contact to tell",
        );
        self
    }

    /// Whether this is an authentication or permission problem (docs/sync-rules.md §6 exit code 3).
    pub fn is_auth_or_permission(&self) -> bool {
        matches!(self.kind, ErrorKind::Auth | ErrorKind::Permission)
    }

    /// A mailbox that is simply not there to sync (docs/sync-rules.md §3: skip with one warning).
    pub fn is_missing_mailbox(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::MailboxNotEnabled | ErrorKind::InvalidUser
        )
    }

    /// Builds the error for a Graph response with a non-success status. `body` is the raw body
    /// (Graph's envelope `{"error":{"code","message","innerError":{"request-id"}}}`,
    /// docs/graph-facts.md §7), `header_request_id` the `request-id` response header, `context`
    /// says what we were doing.
    pub fn from_graph_response(
        status: u16,
        body: &[u8],
        header_request_id: Option<String>,
        context: &str,
    ) -> Self {
        Self::from_graph_response_with(status, body, header_request_id, context, None)
    }

    /// [`Self::from_graph_response`], with the advice for a permission error replaced by
    /// `permission_advice` (an endpoint that needs other permissions than the usual ones, e.g.
    /// group membership).
    pub(crate) fn from_graph_response_with(
        status: u16,
        body: &[u8],
        header_request_id: Option<String>,
        context: &str,
        permission_advice: Option<&'static str>,
    ) -> Self {
        let parsed: Option<Value> = serde_json::from_slice(body).ok();
        let err = parsed.as_ref().and_then(|v| v.get("error"));
        let code = err
            .and_then(|e| e.get("code"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let server_message = err
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let request_id = header_request_id.or_else(|| {
            err.and_then(|e| e.get("innerError"))
                .and_then(|i| i.get("request-id"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        let kind = classify(status, code.as_deref(), &server_message);
        let advice = match permission_advice {
            Some(a) if kind == ErrorKind::Permission => Some(a),
            _ => advice(kind, code.as_deref(), &server_message),
        };
        let mut message = context.to_owned();
        if !server_message.is_empty() {
            message.push_str(": ");
            message.push_str(&truncate(&server_message, 400));
        } else if parsed.is_none() && !body.is_empty() {
            message.push_str(": ");
            message.push_str(&truncate(&String::from_utf8_lossy(body), 200));
        }
        if let Some(a) = advice {
            message.push_str(" — ");
            message.push_str(a);
        }
        Self {
            kind,
            status: Some(status),
            code,
            message,
            request_id,
        }
    }
}

/// Status + Graph code → kind (docs/graph-facts.md §7 table).
pub fn classify(status: u16, code: Option<&str>, message: &str) -> ErrorKind {
    let code_l = code.unwrap_or("").to_ascii_lowercase();
    match status {
        401 => ErrorKind::Auth,
        403 => ErrorKind::Permission,
        404 => match code_l.as_str() {
            "mailboxnotenabledforrestapi" => ErrorKind::MailboxNotEnabled,
            "errorinvaliduser" => ErrorKind::InvalidUser,
            // Same situation as MailboxNotEnabledForRESTAPI reported with a generic code
            // (docs/graph-facts.md §7, MGDold-issue#10481).
            "resourcenotfound" if message.contains("could not be discovered") => {
                ErrorKind::MailboxNotEnabled
            }
            _ => ErrorKind::NotFound,
        },
        // An expired or rejected delta token: 410 Gone (`SyncStateNotFound`, or the documented
        // "synchronization reset" with a `Location` header), and the generic codes for the same
        // (docs/graph-facts.md §2, §7: `syncStateNotFound`, `resyncRequired`) whatever 4xx carries
        // them.
        410 => ErrorKind::SyncReset,
        400..=499 if matches!(code_l.as_str(), "syncstatenotfound" | "resyncrequired") => {
            ErrorKind::SyncReset
        }
        409 | 412 => ErrorKind::Conflict,
        // Duplicate folder name is reported as 400 by some and 409 by others
        // (docs/graph-facts.md §2).
        400 if code_l == "errorfolderexists" => ErrorKind::Conflict,
        429 => ErrorKind::Throttled,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::BadRequest,
    }
}

fn advice(kind: ErrorKind, code: Option<&str>, message: &str) -> Option<&'static str> {
    let code = code.unwrap_or("");
    Some(match kind {
        ErrorKind::Permission if code.eq_ignore_ascii_case("Authorization_RequestDenied") => {
            "grant the app the application permission User.Read.All (or Directory.Read.All) and give admin consent"
        }
        ErrorKind::Permission if message.contains("Access to OData is disabled") => {
            "an Exchange application access policy or RBAC scope excludes this mailbox; add the mailbox to the app's scope (Test-ApplicationAccessPolicy / Test-ServicePrincipalAuthorization)"
        }
        ErrorKind::Permission => {
            "grant the app the application permission Contacts.ReadWrite with admin consent, and check Exchange RBAC scopes for this mailbox"
        }
        ErrorKind::MailboxNotEnabled => {
            "the user has no Exchange Online mailbox (no Exchange licence, not provisioned yet, or on-premises)"
        }
        ErrorKind::InvalidUser => "no such mailbox; check the user principal name",
        ErrorKind::Auth => {
            "the access token was refused; check the tenant and the app's credentials"
        }
        ErrorKind::SyncReset => {
            "Graph no longer honours this delta link; read the folder whole and start a new delta round"
        }
        _ => return None,
    })
}

/// `12 s`, `2.128 s`.
fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s:.3} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph_err(status: u16, code: &str, msg: &str) -> GraphError {
        let body = serde_json::json!({"error": {"code": code, "message": msg,
            "innerError": {"request-id": "rid-inner", "date": "2026-11-27T12:00:00"}}});
        GraphError::from_graph_response(
            status,
            body.to_string().as_bytes(),
            None,
            "reading contacts of a@b.c",
        )
    }

    #[test]
    fn classifies_the_graph_facts_error_table() {
        let cases = [
            (
                401,
                "InvalidAuthenticationToken",
                "Access token has expired or is not yet valid.",
                ErrorKind::Auth,
            ),
            (
                403,
                "ErrorAccessDenied",
                "Access is denied. Check credentials and try again.",
                ErrorKind::Permission,
            ),
            (
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
                ErrorKind::Permission,
            ),
            (
                404,
                "Request_ResourceNotFound",
                "Resource 'x' does not exist",
                ErrorKind::NotFound,
            ),
            (
                404,
                "ErrorInvalidUser",
                "The requested user 'x' is invalid.",
                ErrorKind::InvalidUser,
            ),
            (
                404,
                "MailboxNotEnabledForRESTAPI",
                "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
                ErrorKind::MailboxNotEnabled,
            ),
            (
                404,
                "ResourceNotFound",
                "Resource could not be discovered.",
                ErrorKind::MailboxNotEnabled,
            ),
            (
                404,
                "ErrorItemNotFound",
                "The specified object was not found in the store.",
                ErrorKind::NotFound,
            ),
            (
                400,
                "ErrorInvalidIdMalformed",
                "Id is malformed.",
                ErrorKind::BadRequest,
            ),
            (
                412,
                "ErrorIrresolvableConflict",
                "change key mismatch",
                ErrorKind::Conflict,
            ),
            (
                409,
                "ErrorFolderExists",
                "A folder with the specified name already exists.",
                ErrorKind::Conflict,
            ),
            (
                400,
                "ErrorFolderExists",
                "A folder with the specified name already exists.",
                ErrorKind::Conflict,
            ),
            (
                400,
                "Request_UnsupportedQuery",
                "Unsupported Query.",
                ErrorKind::BadRequest,
            ),
            (
                429,
                "ApplicationThrottled",
                "Application is over its MailboxConcurrency limit.",
                ErrorKind::Throttled,
            ),
            (503, "serviceNotAvailable", "", ErrorKind::Server),
            (504, "", "", ErrorKind::Server),
            (410, "SyncStateNotFound", "gone", ErrorKind::SyncReset),
            (410, "", "", ErrorKind::SyncReset),
            (400, "resyncRequired", "", ErrorKind::SyncReset),
            (400, "syncStateNotFound", "", ErrorKind::SyncReset),
        ];
        for (status, code, msg, kind) in cases {
            let e = graph_err(status, code, msg);
            assert_eq!(e.kind, kind, "{status} {code}");
            assert_eq!(e.status, Some(status));
            assert_eq!(e.request_id.as_deref(), Some("rid-inner"));
            assert_eq!(
                e.is_retryable(),
                matches!(kind, ErrorKind::Throttled | ErrorKind::Server)
            );
        }
    }

    #[test]
    fn header_request_id_wins_and_is_shown() {
        let body = br#"{"error":{"code":"ErrorAccessDenied","message":"Access to OData is disabled.","innerError":{"request-id":"inner"}}}"#;
        let e = GraphError::from_graph_response(
            403,
            body,
            Some("hdr-1".into()),
            "listing folders of hub@contoso.com",
        );
        assert_eq!(e.request_id.as_deref(), Some("hdr-1"));
        let shown = e.to_string();
        assert!(shown.contains("hdr-1"), "{shown}");
        assert!(shown.contains("hub@contoso.com"), "{shown}");
        assert!(shown.contains("access policy"), "{shown}");
        assert!(shown.contains("ErrorAccessDenied"), "{shown}");
    }

    #[test]
    fn non_json_bodies_are_kept_short() {
        let body = "x".repeat(5000);
        let e = GraphError::from_graph_response(502, body.as_bytes(), None, "ctx");
        assert_eq!(e.kind, ErrorKind::Server);
        assert!(e.message.len() < 300);
    }

    #[test]
    fn retryable_errors_follow_the_retry_rule() {
        for (status, code, retryable) in [
            (429, "TooManyRequests", true),
            (503, "serviceNotAvailable", true),
            (504, "", true),
            (500, "", true),
            // 501 is a server error no retry can fix: the retry loop gives up on it at once,
            // and the error agrees.
            (501, "notImplemented", false),
            (400, "ErrorInvalidRequest", false),
        ] {
            let e = graph_err(status, code, "m");
            assert_eq!(e.is_retryable(), retryable, "{status}");
            assert_eq!(
                e.is_retryable(),
                Retryability::of_status(status) != Retryability::Permanent
            );
        }
        assert!(GraphError::new(ErrorKind::Transport, "reset").is_retryable());
        let mut amb = graph_err(504, "", "m");
        amb.kind = ErrorKind::AmbiguousWrite;
        assert!(!amb.is_retryable());
        let unconfirmed = graph_err(412, "ErrorIrresolvableConflict", "m").after_unknown_attempt();
        assert_eq!(unconfirmed.kind, ErrorKind::UnconfirmedWrite);
        assert_eq!(unconfirmed.status, Some(412));
        assert!(!unconfirmed.is_retryable());
        assert!(unconfirmed.message.contains("re-read"), "{unconfirmed}");
    }

    #[test]
    fn a_refused_long_wait_says_how_long_and_the_cap() {
        let e = graph_err(503, "serviceNotAvailable", "busy")
            .waited_too_long(Duration::from_secs(3600), Duration::from_millis(600_500));
        assert!(e.message.contains("3600 s"), "{e}");
        assert!(e.message.contains("600.500 s"), "{e}");
        assert!(e.is_retryable());
    }
}
