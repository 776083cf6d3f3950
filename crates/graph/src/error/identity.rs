//! Errors of the identity platform's token endpoint (docs/graph-facts.md §8): the AADSTS code, what
//! it means ([`TokenProblem`]) and the advice in the error message.
//!
//! The code → meaning table lives here and only here; a caller that words its own fix (naming
//! its settings) branches on [`TokenProblem`], never on codes. Advice names the tenant and the
//! app (not secrets), never a caller's setting. This module must never format a secret.

use serde_json::Value;

use super::{ErrorKind, GraphError};
use crate::text::truncate;

/// What an identity-platform refusal means, from its AADSTS code (ENTRA
/// `reference-error-codes.md`, docs/graph-facts.md §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenProblem {
    /// AADSTS7000215: the client secret is wrong (often its Secret ID instead of its Value).
    WrongSecret,
    /// AADSTS7000222: the client secret has expired.
    ExpiredSecret,
    /// AADSTS700016: no such application in the tenant.
    UnknownApp,
    /// AADSTS90002: no such tenant (or it is in another cloud).
    UnknownTenant,
    /// AADSTS900023: the tenant is not a GUID or a domain name.
    InvalidTenant,
    /// AADSTS90038: the tenant lives in a national cloud.
    NationalCloudTenant,
    /// AADSTS70021: no federated identity credential matches the presented token.
    NoMatchingFederatedCredential,
    /// AADSTS700027: the certificate assertion's signature did not validate.
    AssertionSignatureInvalid,
    /// AADSTS50027: the assertion is not a valid JWT (audience, issuer or time range).
    InvalidAssertion,
    /// AADSTS700024: the assertion is outside its valid time range.
    AssertionExpired,
    /// AADSTS7000218: the request carried no credential.
    NoCredential,
    /// AADSTS70011, AADSTS700022: the scope is invalid.
    InvalidScope,
    /// AADSTS500011: Graph is not available in this tenant for this cloud.
    GraphUnavailable,
    /// AADSTS53003: a Conditional Access policy blocked the sign-in.
    ConditionalAccess,
    /// AADSTS7000112, AADSTS7000113: the app is disabled in the tenant.
    AppDisabled,
    /// AADSTS65001, AADSTS501051: admin consent is missing.
    NoAdminConsent,
    /// Any other code.
    Other(u64),
}

impl TokenProblem {
    pub fn from_aadsts(code: u64) -> Self {
        match code {
            7000215 => Self::WrongSecret,
            7000222 => Self::ExpiredSecret,
            700016 => Self::UnknownApp,
            90002 => Self::UnknownTenant,
            900023 => Self::InvalidTenant,
            90038 => Self::NationalCloudTenant,
            70021 => Self::NoMatchingFederatedCredential,
            700027 => Self::AssertionSignatureInvalid,
            50027 => Self::InvalidAssertion,
            700024 => Self::AssertionExpired,
            7000218 => Self::NoCredential,
            70011 | 700022 => Self::InvalidScope,
            500011 => Self::GraphUnavailable,
            53003 => Self::ConditionalAccess,
            7000112 | 7000113 => Self::AppDisabled,
            65001 | 501051 => Self::NoAdminConsent,
            other => Self::Other(other),
        }
    }

    /// What to fix, in neutral words (the tenant and the app by name, no caller settings).
    pub fn advice(self, tenant: &str, client_id: &str) -> String {
        match self {
            Self::WrongSecret => format!(
                "the client secret of app {client_id} is wrong; use the secret's Value (not its Secret ID) from the app registration's \"Certificates & secrets\" page"
            ),
            Self::ExpiredSecret => format!(
                "the client secret of app {client_id} has expired; create a new client secret in the app registration and use it instead"
            ),
            Self::UnknownApp => format!(
                "no application with client id {client_id} exists in tenant '{tenant}'; check the client id, and that the app is registered in (or consented to by) this tenant"
            ),
            Self::UnknownTenant => format!(
                "tenant '{tenant}' was not found; check the tenant id, and the cloud (a national-cloud tenant is unknown to the global login endpoint)"
            ),
            Self::InvalidTenant => format!(
                "'{tenant}' is not a valid tenant id; use the tenant's GUID or a verified domain name"
            ),
            Self::NationalCloudTenant => {
                "this tenant lives in a national cloud; use that cloud's endpoints (USGov, USGovDoD or China)".to_owned()
            }
            Self::NoMatchingFederatedCredential => format!(
                "no federated identity credential of app {client_id} matches the presented token; add one whose issuer, subject and audience exactly equal the token's (a CI token's subject usually names the branch, so each branch needs its own)"
            ),
            Self::AssertionSignatureInvalid => format!(
                "the client assertion's signature did not validate; upload the certificate whose private key signs the assertion to app {client_id} (\"Certificates & secrets\" → Certificates)"
            ),
            Self::InvalidAssertion => {
                "the client assertion is not a valid JWT (audience, issuer or time range); check the machine clock, the certificate, and the cloud or login endpoint".to_owned()
            }
            Self::AssertionExpired => {
                "the client assertion is outside its valid time range; check the machine clock, or that the federated token (e.g. a CI job's id token) has not expired".to_owned()
            }
            Self::NoCredential => {
                "the token request carried no credential; configure a client secret, a certificate or a federated token".to_owned()
            }
            Self::InvalidScope => {
                "the requested scope is invalid; check the Graph endpoint and the cloud (the scope is <Graph root>/.default)".to_owned()
            }
            Self::GraphUnavailable => format!(
                "Microsoft Graph is not available in tenant '{tenant}' for this cloud; check the cloud and the Graph endpoint"
            ),
            Self::ConditionalAccess => {
                "a Conditional Access policy blocked the app's sign-in; exclude the app's service principal or allow this location".to_owned()
            }
            Self::AppDisabled => {
                format!("app {client_id} is disabled in tenant '{tenant}'; enable its service principal")
            }
            Self::NoAdminConsent => {
                "the app lacks admin consent; grant admin consent for its application permissions".to_owned()
            }
            Self::Other(code) => format!(
                "identity platform error AADSTS{code}; see https://login.microsoftonline.com/error?code={code}"
            ),
        }
    }
}

/// Builds the error for an identity-platform token response (docs/graph-facts.md §8 error body
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
    let fix = aadsts.map(|c| TokenProblem::from_aadsts(c).advice(tenant, client_id));
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

/// The number after the first `AADSTS` in `s`.
pub(super) fn parse_aadsts(s: &str) -> Option<u64> {
    let rest = &s[s.find("AADSTS")? + 6..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_errors_say_what_to_fix() {
        let cases = [
            (401, 7000215, "Secret ID"),
            (401, 7000222, "expired"),
            (400, 700016, "check the client id"),
            (400, 90002, "check the tenant id"),
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
        assert!(e.message.contains("check the tenant id"), "{e}");
        assert_eq!(e.token_problem(), Some(TokenProblem::UnknownTenant));
    }

    #[test]
    fn token_endpoint_throttling_is_retryable() {
        let e = from_token_response(503, b"", "t", "c");
        assert!(e.is_retryable());
    }

    #[test]
    fn the_problem_is_read_from_the_code_exactly() {
        let problem = |code: &str| {
            GraphError {
                code: Some(code.to_owned()),
                ..GraphError::new(ErrorKind::Auth, "x")
            }
            .token_problem()
        };
        assert_eq!(problem("AADSTS7000215"), Some(TokenProblem::WrongSecret));
        // Not a prefix match: 900023 is not 90002.
        assert_eq!(problem("AADSTS900023"), Some(TokenProblem::InvalidTenant));
        assert_eq!(problem("AADSTS90002"), Some(TokenProblem::UnknownTenant));
        assert_eq!(problem("AADSTS12345"), Some(TokenProblem::Other(12345)));
        assert_eq!(problem("invalid_client"), None);
        assert_eq!(GraphError::new(ErrorKind::Auth, "x").token_problem(), None);
    }

    /// The advice is the library's and neutral: the settings a caller names belong to the caller.
    #[test]
    fn advice_names_no_caller_setting() {
        let codes = [
            7000215, 7000222, 700016, 90002, 900023, 90038, 70021, 700027, 50027, 700024, 7000218,
            70011, 500011, 53003, 7000112, 65001, 1,
        ];
        for code in codes {
            let a = TokenProblem::from_aadsts(code).advice("contoso.com", "app-1");
            for setting in [
                "ClientSecret",
                "ClientId",
                "TenantId",
                "ClientCertificate",
                "ClientAssertion",
                "GraphUrl",
                "LoginUrl",
                "Cloud",
                "GitLab",
                "AUTOMATION_",
            ] {
                assert!(!a.contains(setting), "{code}: {a}");
            }
        }
    }
}
