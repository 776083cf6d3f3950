//! Graph's error envelope (docs/graph-facts.md §7) and the constructors for the errors the emulator
//! answers with, so every surface spells a given situation the same way.
//!
//! Codes and messages are Graph's, quoted from docs/graph-facts.md §7; this module must never
//! invent a friendlier shape. The envelope's `innerError` (request-id, date, client-request-id) is
//! filled in by the dispatcher, which knows the request.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// An error answer on the Graph surface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Extra response headers (e.g. `Retry-After`, `WWW-Authenticate`).
    pub headers: Vec<(String, String)>,
}

impl GraphError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        GraphError {
            status,
            code: code.to_string(),
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The JSON body: `{"error":{"code","message","innerError":{date, request-id, client-request-id}}}`.
    pub fn envelope(&self, request_id: &str, client_request_id: Option<&str>, date: &str) -> Value {
        let mut inner = json!({"date": date, "request-id": request_id});
        if let Some(c) = client_request_id {
            inner["client-request-id"] = Value::String(c.to_string());
        }
        json!({"error": {"code": self.code, "message": self.message, "innerError": inner}})
    }

    // --- 401 (docs/graph-facts.md §7) ---

    fn unauthenticated(message: &str) -> Self {
        // The WWW-Authenticate value Graph sends with a 401 (docs/graph-facts.md §7, tdi #24).
        GraphError::new(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message).with_header(
            "www-authenticate",
            "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"",
        )
    }
    pub fn token_missing() -> Self {
        Self::unauthenticated("Access token is empty.")
    }
    pub fn token_garbage() -> Self {
        Self::unauthenticated("CompactToken parsing failed with error code: 80049217")
    }
    pub fn token_invalid() -> Self {
        Self::unauthenticated("Access token validation failure.")
    }
    pub fn token_expired() -> Self {
        Self::unauthenticated("Access token has expired or is not yet valid.")
    }

    // --- 403 ---

    pub fn exchange_access_denied() -> Self {
        GraphError::new(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access is denied. Check credentials and try again.",
        )
    }
    /// Application access policy denial (docs/graph-facts.md §10, auth-limit-mailbox-access.md).
    pub fn odata_disabled() -> Self {
        GraphError::new(
            StatusCode::FORBIDDEN,
            "ErrorAccessDenied",
            "Access to OData is disabled.",
        )
    }
    pub fn directory_denied() -> Self {
        GraphError::new(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
    }

    // --- 404 ---

    pub fn directory_not_found(what: &str) -> Self {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{what}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }
    pub fn invalid_user(what: &str) -> Self {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "ErrorInvalidUser",
            format!("The requested user '{what}' is invalid."),
        )
    }
    pub fn mailbox_not_enabled() -> Self {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
        )
    }
    pub fn item_not_found() -> Self {
        GraphError::new(
            StatusCode::NOT_FOUND,
            "ErrorItemNotFound",
            "The specified object was not found in the store.",
        )
    }

    // --- 400 / 405 / 409 / 412 ---

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        GraphError::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn unsupported_query(message: impl Into<String>) -> Self {
        Self::bad_request("Request_UnsupportedQuery", message)
    }
    pub fn invalid_filter() -> Self {
        // MGDold-issue#2933 (docs/graph-facts.md §3).
        Self::bad_request(
            "ErrorInvalidUrlQueryFilter",
            "The query filter contains one or more invalid nodes.",
        )
    }
    pub fn segment_not_found(segment: &str) -> Self {
        Self::bad_request(
            "BadRequest",
            format!("Resource not found for the segment '{segment}'."),
        )
    }
    pub fn method_not_allowed(directory: bool) -> Self {
        if directory {
            GraphError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
            )
        } else {
            // MGDold-issue#2188 (docs/graph-facts.md §1).
            GraphError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "ErrorInvalidRequest",
                "The OData request is not supported.",
            )
        }
    }
    pub fn folder_exists() -> Self {
        // Status is reported as 400 by some and 409 by others [OBS/UNCONF]
        // (docs/graph-facts.md §2); clients must branch on the code.
        GraphError::new(
            StatusCode::CONFLICT,
            "ErrorFolderExists",
            "A folder with the specified name already exists.",
        )
    }
    pub fn change_key_conflict() -> Self {
        GraphError::new(
            StatusCode::PRECONDITION_FAILED,
            "ErrorIrresolvableConflict",
            "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item.",
        )
    }
}
