//! Typed, classified errors from Graph and the identity platform.
//!
//! Callers branch on [`ErrorKind`] and ask [`GraphError::is_retryable`]; they never parse messages.
//! Every error keeps Graph's `request-id` (or the identity platform's trace id) for support
//! tickets, and every message says what to fix. Messages built from server text pass through
//! the client's [`crate::secret::Redactor`]; this module must never format a secret.

use std::fmt;

use serde_json::Value;

/// What went wrong, as far as the caller needs to decide what to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Token could not be obtained or was refused (identity platform error, 401).
    Auth,
    /// 403: missing permission/consent, Exchange access policy or RBAC scope.
    Permission,
    /// 404 for an object (user, folder, contact).
    NotFound,
    /// 404 `MailboxNotEnabledForRESTAPI`: the user has no Exchange Online mailbox (SPEC §3: skip it).
    MailboxNotEnabled,
    /// 404 `ErrorInvalidUser` on a mailbox path.
    InvalidUser,
    /// 429 after the attempt budget was spent.
    Throttled,
    /// 5xx after the attempt budget was spent.
    Server,
    /// Connection/TLS/timeout after the attempt budget was spent.
    Transport,
    /// 409, 412 (`If-Match` change-key mismatch, graph-facts §7), `ErrorFolderExists`.
    Conflict,
    /// Other 4xx: the request itself is wrong; retrying cannot help.
    BadRequest,
    /// A create whose outcome is unknown (504 or a connection lost after sending): it was not
    /// retried because a retry could create a duplicate (RELIABILITY I2); a later run repairs it.
    AmbiguousWrite,
    /// Configuration problem found before any request (bad URL, unreadable certificate …).
    Config,
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
            ErrorKind::Config => "config",
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
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Throttled | ErrorKind::Server | ErrorKind::Transport
        )
    }

    /// Whether this is an authentication or permission problem (SPEC §6 exit code 3).
    pub fn is_auth_or_permission(&self) -> bool {
        matches!(self.kind, ErrorKind::Auth | ErrorKind::Permission)
    }

    /// A mailbox that is simply not there to sync (SPEC §3: skip with one warning).
    pub fn is_missing_mailbox(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::MailboxNotEnabled | ErrorKind::InvalidUser
        )
    }

    /// Builds the error for a Graph response with a non-success status. `body` is the raw body
    /// (Graph's envelope `{"error":{"code","message","innerError":{"request-id"}}}`, graph-facts §7),
    /// `header_request_id` the `request-id` response header, `context` says what we were doing.
    pub fn from_graph_response(
        status: u16,
        body: &[u8],
        header_request_id: Option<String>,
        context: &str,
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
        let advice = advice(kind, code.as_deref(), &server_message);
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

/// Status + Graph code → kind (graph-facts §7 table).
pub fn classify(status: u16, code: Option<&str>, message: &str) -> ErrorKind {
    let code_l = code.unwrap_or("").to_ascii_lowercase();
    match status {
        401 => ErrorKind::Auth,
        403 => ErrorKind::Permission,
        404 => match code_l.as_str() {
            "mailboxnotenabledforrestapi" => ErrorKind::MailboxNotEnabled,
            "errorinvaliduser" => ErrorKind::InvalidUser,
            // Same situation as MailboxNotEnabledForRESTAPI reported with a generic code
            // (graph-facts §7, MGDold-issue#10481).
            "resourcenotfound" if message.contains("could not be discovered") => {
                ErrorKind::MailboxNotEnabled
            }
            _ => ErrorKind::NotFound,
        },
        409 | 412 => ErrorKind::Conflict,
        // Duplicate folder name is reported as 400 by some and 409 by others (graph-facts §2).
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
        _ => return None,
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// Builds the error for an identity-platform token response (graph-facts §8 error body
/// `{"error","error_description":"AADSTSnnn: …","error_codes":[n],"trace_id",…}`), with a message
/// that says what to fix. `tenant`/`client_id` are not secrets and are named in the advice.
pub fn from_token_response(status: u16, body: &[u8], tenant: &str, client_id: &str) -> GraphError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let oauth_error = v.get("error").and_then(Value::as_str).unwrap_or("");
    let description = v
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or("");
    // The description carries "\r\nTrace ID: …" lines; the first line is the useful part.
    let first_line = description.lines().next().unwrap_or("").trim();
    let aadsts = v
        .get("error_codes")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_u64)
        .or_else(|| parse_aadsts(first_line));
    let trace_id = v.get("trace_id").and_then(Value::as_str).map(str::to_owned);
    let fix = aadsts.map(|c| aadsts_advice(c, tenant, client_id));
    let mut message = format!("token request for tenant '{tenant}' failed");
    if let Some(fix) = &fix {
        message.push_str(": ");
        message.push_str(fix);
    }
    if !first_line.is_empty() {
        message.push_str(" (server said: ");
        message.push_str(&truncate(first_line, 300));
        message.push(')');
    } else if !oauth_error.is_empty() {
        message.push_str(" (");
        message.push_str(oauth_error);
        message.push(')');
    }
    let kind = match status {
        429 => ErrorKind::Throttled,
        500..=599 => ErrorKind::Server,
        _ => ErrorKind::Auth,
    };
    GraphError {
        kind,
        status: Some(status),
        code: aadsts
            .map(|c| format!("AADSTS{c}"))
            .or_else(|| (!oauth_error.is_empty()).then(|| oauth_error.to_owned())),
        message,
        request_id: trace_id,
    }
}

fn parse_aadsts(s: &str) -> Option<u64> {
    let rest = &s[s.find("AADSTS")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// AADSTS code → what to fix (ENTRA `reference-error-codes.md`, graph-facts §8).
pub fn aadsts_advice(code: u64, tenant: &str, client_id: &str) -> String {
    match code {
        7000215 => format!(
            "the client secret of app {client_id} is wrong; use the secret's Value (not its Secret ID) from the app registration's \"Certificates & secrets\" page"
        ),
        7000222 => format!(
            "the client secret of app {client_id} has expired; create a new client secret in the app registration and update ClientSecret"
        ),
        700016 => format!(
            "no application with ClientId {client_id} exists in tenant '{tenant}'; check ClientId, and that the app is registered in (or consented to by) this tenant"
        ),
        90002 => format!(
            "tenant '{tenant}' was not found; check TenantId, and Cloud (a national-cloud tenant is unknown to the global login endpoint)"
        ),
        900023 => format!("'{tenant}' is not a valid tenant id; use the tenant's GUID or a verified domain name"),
        90038 => "this tenant lives in a national cloud; set Cloud (USGov, USGovDoD or China)".to_owned(),
        70021 => format!(
            "no federated identity credential of app {client_id} matches the presented token; add one whose issuer, subject and audience exactly equal the token's (one per branch for GitLab CI)"
        ),
        700027 => format!(
            "the client assertion's signature did not validate; upload the certificate whose private key is in ClientCertificatePath to app {client_id} (\"Certificates & secrets\" → Certificates)"
        ),
        50027 => "the client assertion is not a valid JWT (audience, issuer or time range); check the machine clock, the certificate file, and Cloud/LoginUrl".to_owned(),
        700024 => "the client assertion is outside its valid time range; check the machine clock, or that the federated token (e.g. the CI id_token) has not expired".to_owned(),
        7000218 => "the token request carried no credential; configure ClientSecret, ClientCertificatePath, ClientAssertionFile or ClientAssertionEnv".to_owned(),
        70011 | 700022 => "the requested scope is invalid; check GraphUrl/Cloud (the scope is <GraphUrl>/.default)".to_owned(),
        500011 => format!(
            "Microsoft Graph is not available in tenant '{tenant}' for this cloud; check Cloud/GraphUrl"
        ),
        53003 => "a Conditional Access policy blocked the app's sign-in; exclude the app's service principal or allow this location".to_owned(),
        7000112 | 7000113 => format!("app {client_id} is disabled in tenant '{tenant}'; enable its service principal"),
        65001 | 501051 => "the app lacks admin consent; grant admin consent for its application permissions".to_owned(),
        _ => format!("identity platform error AADSTS{code}; see https://login.microsoftonline.com/error?code={code}"),
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
            (410, "SyncStateNotFound", "gone", ErrorKind::BadRequest),
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
    fn aadsts_errors_say_what_to_fix() {
        let cases = [
            (401, 7000215, "Secret ID"),
            (401, 7000222, "expired"),
            (400, 700016, "ClientId"),
            (400, 90002, "TenantId"),
            (400, 70021, "federated identity credential"),
            (401, 700027, "upload the certificate"),
            (400, 50027, "machine clock"),
        ];
        for (status, code, needle) in cases {
            let body = serde_json::json!({
                "error": "invalid_client",
                "error_description": format!("AADSTS{code}: Something.\r\nTrace ID: t\r\nCorrelation ID: c\r\nTimestamp: x"),
                "error_codes": [code], "trace_id": "trace-9", "correlation_id": "c"});
            let e =
                from_token_response(status, body.to_string().as_bytes(), "contoso.com", "app-1");
            assert_eq!(e.kind, ErrorKind::Auth);
            assert_eq!(e.code.as_deref(), Some(format!("AADSTS{code}").as_str()));
            assert_eq!(e.request_id.as_deref(), Some("trace-9"));
            assert!(e.message.contains(needle), "{code}: {}", e.message);
            assert!(!e.message.contains("Correlation ID"), "{}", e.message);
            assert!(!e.is_retryable());
        }
    }

    #[test]
    fn aadsts_code_is_read_from_the_description_when_error_codes_is_missing() {
        let body = br#"{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found."}"#;
        let e = from_token_response(400, body, "x", "app");
        assert_eq!(e.code.as_deref(), Some("AADSTS90002"));
        assert!(e.message.contains("TenantId"));
    }

    #[test]
    fn token_endpoint_throttling_is_retryable() {
        let e = from_token_response(503, b"", "t", "c");
        assert!(e.is_retryable());
    }
}
