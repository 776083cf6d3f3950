//! Token providers for app-only auth (client credentials, docs/graph-facts.md §8): client secret,
//! certificate (a client assertion JWT we sign, see `certificate`), or a federated assertion
//! (e.g. a CI job's OIDC token) that the caller's [`AssertionSource`] supplies fresh at every
//! token request.
//!
//! Tokens are cached and refreshed before they expire; the client invalidates a token once on a
//! 401. Token requests feed the login endpoint's circuit breaker and end their waits when the
//! client halts ([`crate::halt`]). Every secret here (client secret, private key, assertion, access token) lives in a
//! [`Secret`] or a type with a redacting `Debug`, and is registered with the [`Redactor`] the
//! moment it is read. This module must never log or format a secret, and never reads the
//! process environment: where a federated token comes from is the caller's business.

mod certificate;

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use base64::Engine as _;
use jiff::Timestamp;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};
use url::Url;

pub use certificate::{
    LoadedCertificate, build_client_assertion, install_crypto_provider, load_certificate,
};

use crate::clock::{Clock, add};
use crate::error::{ErrorKind, GraphError, from_token_response};
use crate::halt::{Endpoint, Halt, describe};
use crate::retry::{Decision, Failure, Idempotency, RetryPolicy, parse_retry_after};
use crate::secret::{Redactor, Secret};

/// How the app proves its identity (docs/sync-rules.md §6: exactly one per tenant).
#[derive(Clone)]
pub enum Credential {
    /// A client secret.
    Secret(Secret),
    /// One PEM file holding the certificate and its unencrypted RSA key, read when the client
    /// is built.
    CertificatePem(PathBuf),
    /// A federated token (client assertion), asked for at every token request.
    Federated(AssertionSource),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Secret(s) => f.debug_tuple("Secret").field(s).finish(),
            Credential::CertificatePem(p) => f.debug_tuple("CertificatePem").field(p).finish(),
            Credential::Federated(a) => f.debug_tuple("Federated").field(a).finish(),
        }
    }
}

/// Where a federated token comes from: a closure the client calls at every token request (so a
/// token the CI runner rotates is picked up), returning the token or why there is none. The
/// client trims the value, registers it with its redactor and refuses an empty one. The caller
/// decides where it reads from (a file, its own environment snapshot) and words its errors.
#[derive(Clone)]
pub struct AssertionSource {
    /// Names the source in errors and `Debug` ("file /run/id_token"); never the token.
    description: String,
    read: Arc<dyn Fn() -> Result<Secret, String> + Send + Sync>,
}

impl AssertionSource {
    pub fn new(
        description: impl Into<String>,
        read: impl Fn() -> Result<Secret, String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            description: description.into(),
            read: Arc::new(read),
        }
    }

    /// The source, as given to [`AssertionSource::new`].
    pub fn description(&self) -> &str {
        &self.description
    }

    /// Asks the source once, as the client does at each token request (untrimmed, unchecked).
    pub fn read(&self) -> Result<Secret, String> {
        (self.read)()
    }
}

impl fmt::Debug for AssertionSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("AssertionSource")
            .field(&self.description)
            .finish()
    }
}

/// Signature algorithm of a certificate client assertion. The current Entra docs use PS256 with
/// `x5t#S256`; RS256 is the older form, still accepted (docs/graph-facts.md §8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AssertionAlgorithm {
    #[default]
    Ps256,
    Rs256,
}

/// What `check` shows about a token. Never holds the token itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    pub expires_at: Timestamp,
    /// App roles (`roles` claim). Grants made through Exchange RBAC for Applications do **not**
    /// appear here (docs/graph-facts.md §10), so never refuse to run because a Contacts role is
    /// missing.
    pub roles: Vec<String>,
    /// The `tid` claim: the tenant's id (a GUID) even when the client was configured with one of
    /// its domain names, so a caller can bind what it stores to the tenant itself.
    pub tenant_id: Option<String>,
    pub app_id: Option<String>,
}

/// Reads `roles`, `tid`, `appid`/`azp` from an access token's payload without verifying it
/// (it is Graph's job to verify; we only display). Opaque tokens give empty info.
pub fn token_info(access_token: &Secret, expires_at: Timestamp) -> TokenInfo {
    let claims: serde_json::Value = access_token
        .expose()
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p.trim_end_matches('='))
                .ok()
        })
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(serde_json::Value::Null);
    let s = |k: &str| claims.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    TokenInfo {
        expires_at,
        roles: claims
            .get("roles")
            .and_then(|r| r.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        tenant_id: s("tid"),
        app_id: s("appid").or_else(|| s("azp")),
    }
}

/// The credential, resolved at construction so a bad certificate file is a configuration error
/// before any request (docs/reliability.md I6).
enum ResolvedCredential {
    Secret(Secret),
    Certificate(LoadedCertificate),
    Federated(AssertionSource),
}

#[derive(Clone)]
struct CachedToken {
    token: Secret,
    expires_at: Timestamp,
    refresh_at: Timestamp,
}

/// Obtains, caches and refreshes access tokens.
pub(crate) struct TokenSource {
    tenant: String,
    client_id: String,
    token_url: Url,
    scope: String,
    credential: ResolvedCredential,
    alg: AssertionAlgorithm,
    cache: tokio::sync::Mutex<Option<CachedToken>>,
    pub(crate) requests: AtomicU64,
}

impl fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSource")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

/// Context the token source borrows from the client for one refresh.
pub(crate) struct TokenCtx<'a> {
    pub http: &'a reqwest::Client,
    pub clock: &'a dyn Clock,
    pub redactor: &'a Redactor,
    pub policy: &'a RetryPolicy,
    pub rng: &'a StdMutex<SmallRng>,
    pub halt: &'a Halt,
}

impl TokenSource {
    pub(crate) fn new(
        tenant: &str,
        client_id: &str,
        token_url: Url,
        scope: String,
        credential: &Credential,
        alg: AssertionAlgorithm,
        redactor: &Redactor,
    ) -> Result<Self, GraphError> {
        let credential = match credential {
            Credential::Secret(s) => {
                if s.is_empty() {
                    return Err(GraphError::config("the client secret is empty"));
                }
                redactor.add(s);
                ResolvedCredential::Secret(s.clone())
            }
            Credential::CertificatePem(path) => {
                let what = format!("certificate file {}", path.display());
                let bytes = std::fs::read(path)
                    .map_err(|e| GraphError::config(format!("cannot read {what}: {e}")))?;
                // The key text is a secret too: scrub it should it ever appear in server text.
                if let Ok(text) = std::str::from_utf8(&bytes) {
                    for b in certificate::pem_blocks(text)
                        .iter()
                        .filter(|b| b.label.contains("PRIVATE KEY"))
                    {
                        redactor.add(&Secret::new(b.base64.clone()));
                    }
                }
                ResolvedCredential::Certificate(load_certificate(&bytes, &what)?)
            }
            Credential::Federated(source) => ResolvedCredential::Federated(source.clone()),
        };
        Ok(Self {
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            token_url,
            scope,
            credential,
            alg,
            cache: tokio::sync::Mutex::new(None),
            requests: AtomicU64::new(0),
        })
    }

    /// A valid token (cached, or fetched when missing or due for refresh) and its expiry.
    pub(crate) async fn token(
        &self,
        ctx: &TokenCtx<'_>,
    ) -> Result<(Secret, Timestamp), GraphError> {
        // Holding the lock across the fetch makes refreshes single-flight: concurrent callers
        // wait for the one refresh instead of each asking the identity platform.
        let mut cache = self.cache.lock().await;
        let now = ctx.clock.now();
        if let Some(c) = cache.as_ref().filter(|c| now < c.refresh_at) {
            return Ok((c.token.clone(), c.expires_at));
        }
        let fresh = self.fetch(ctx).await?;
        let out = (fresh.token.clone(), fresh.expires_at);
        *cache = Some(fresh);
        Ok(out)
    }

    /// Drops the cached token if it is still `rejected` (a 401 said so), so the next call
    /// fetches a new one. A token refreshed meanwhile by another task is kept.
    pub(crate) async fn invalidate(&self, rejected: &Secret) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| &c.token == rejected) {
            *cache = None;
        }
    }

    /// The federated token, asked for now: trimmed, registered with the redactor, never empty.
    fn read_assertion(source: &AssertionSource, ctx: &TokenCtx<'_>) -> Result<Secret, GraphError> {
        let value = source
            .read()
            .map_err(|why| GraphError::new(ErrorKind::Auth, why))?;
        let value = Secret::new(value.expose().trim());
        if value.is_empty() {
            return Err(GraphError::new(
                ErrorKind::Auth,
                format!("the federated token from {} is empty", source.description()),
            ));
        }
        ctx.redactor.add(&value);
        Ok(value)
    }

    fn form(&self, ctx: &TokenCtx<'_>) -> Result<String, GraphError> {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials")
            .append_pair("client_id", &self.client_id)
            .append_pair("scope", &self.scope);
        const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
        match &self.credential {
            ResolvedCredential::Secret(s) => {
                form.append_pair("client_secret", s.expose());
            }
            ResolvedCredential::Certificate(cert) => {
                let a = build_client_assertion(
                    cert,
                    self.alg,
                    &self.token_url,
                    &self.client_id,
                    ctx.clock.now(),
                    uuid::Uuid::new_v4(),
                )?;
                ctx.redactor.add(&a);
                form.append_pair("client_assertion_type", JWT_BEARER)
                    .append_pair("client_assertion", a.expose());
            }
            ResolvedCredential::Federated(source) => {
                let a = Self::read_assertion(source, ctx)?;
                form.append_pair("client_assertion_type", JWT_BEARER)
                    .append_pair("client_assertion", a.expose());
            }
        }
        Ok(form.finish())
    }

    async fn fetch(&self, ctx: &TokenCtx<'_>) -> Result<CachedToken, GraphError> {
        let mut attempt = 0u32;
        let context = format!("requesting a token from {}", self.token_url);
        loop {
            attempt += 1;
            ctx.halt.check(&context)?;
            // Rebuilt per attempt: a fresh jti, a fresh federated token.
            let body = self.form(ctx)?;
            self.requests.fetch_add(1, Ordering::Relaxed);
            let sent = ctx
                .http
                .post(self.token_url.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await;
            // Which failures are worth another request is the retry policy's one rule: a
            // refused credential (4xx) is final at once, throttling and 5xx back off.
            let failure = match sent {
                Ok(resp) => {
                    ctx.halt.answered(Endpoint::Login);
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, ctx.clock.now()));
                    let bytes = resp.bytes().await.unwrap_or_default();
                    if (200..300).contains(&status) {
                        return self.parse_success(&bytes, ctx);
                    }
                    let err = from_token_response(status, &bytes, &self.tenant, &self.client_id);
                    (
                        Failure::Status {
                            status,
                            retry_after,
                        },
                        err,
                    )
                }
                Err(e) => {
                    if let Some(err) = crate::client::request::untrusted_certificate(&e, &context) {
                        return Err(scrubbed(err, ctx.redactor));
                    }
                    let chain = crate::client::request::error_chain(&e);
                    ctx.halt.transport_failure(
                        Endpoint::Login,
                        ctx.clock.now(),
                        describe(&e),
                        &chain,
                    );
                    if let Err(stop) = ctx.halt.check(&context) {
                        return Err(scrubbed(stop, ctx.redactor));
                    }
                    let err = GraphError::new(
                        ErrorKind::Transport,
                        format!(
                            "cannot reach the token endpoint {}: {chain}",
                            self.token_url
                        ),
                    );
                    (
                        Failure::Transport {
                            maybe_sent: !e.is_connect(),
                        },
                        err,
                    )
                }
            };
            let decision = {
                let mut rng = ctx.rng.lock().unwrap();
                ctx.policy
                    .decide(attempt, &failure.0, Idempotency::Repeatable, &mut *rng)
            };
            match decision {
                Decision::Retry { after, .. } => {
                    tracing::warn!(
                        attempt,
                        wait_ms = after.as_millis() as u64,
                        "token request failed, retrying: {}",
                        ctx.redactor.scrub(&failure.1.message)
                    );
                    ctx.halt
                        .pause(ctx.clock, after, &context)
                        .await
                        .map_err(|e| scrubbed(e, ctx.redactor))?;
                }
                Decision::WaitTooLong { asked, cap } => {
                    return Err(scrubbed(
                        failure.1.waited_too_long(asked, cap),
                        ctx.redactor,
                    ));
                }
                Decision::GiveUp | Decision::Ambiguous => {
                    return Err(scrubbed(failure.1, ctx.redactor));
                }
            }
        }
    }

    fn parse_success(&self, bytes: &[u8], ctx: &TokenCtx<'_>) -> Result<CachedToken, GraphError> {
        #[derive(Deserialize)]
        struct Resp {
            access_token: String,
            #[serde(default)]
            expires_in: Option<serde_json::Value>,
        }
        let r: Resp = serde_json::from_slice(bytes).map_err(|_| {
            GraphError::new(
                ErrorKind::Auth,
                format!(
                    "the token endpoint {} returned no access_token",
                    self.token_url
                ),
            )
        })?;
        let token = Secret::new(r.access_token);
        ctx.redactor.add(&token);
        // expires_in is a number, though some servers send it as a string.
        let secs = match r.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_u64(),
            Some(serde_json::Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .unwrap_or(3599);
        let now = ctx.clock.now();
        let expires_at = add(now, Duration::from_secs(secs));
        // Refresh 5 minutes early, or at 3/4 of the lifetime for short-lived tokens.
        let early = secs.saturating_sub(300).max(secs * 3 / 4);
        let refresh_at = add(now, Duration::from_secs(early));
        tracing::debug!(expires_in = secs, "obtained access token");
        Ok(CachedToken {
            token,
            expires_at,
            refresh_at,
        })
    }
}

fn scrubbed(mut e: GraphError, r: &Redactor) -> GraphError {
    e.message = r.scrub(&e.message);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_debug_redacts_the_secret() {
        let c = Credential::Secret(Secret::new("canary-client-secret-xyz"));
        let s = format!("{c:?}");
        assert!(!s.contains("canary"), "{s}");
        let c = Credential::Federated(AssertionSource::new("variable AZURE_JWT", || {
            Ok(Secret::new("canary-federated-token-xyz"))
        }));
        let s = format!("{c:?}");
        assert!(s.contains("AZURE_JWT"), "{s}");
        assert!(!s.contains("canary"), "{s}");
    }

    #[test]
    fn token_info_reads_roles_without_verifying() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
            br#"{"roles":["Contacts.ReadWrite","User.Read.All"],"tid":"t-1","appid":"a-1"}"#,
        );
        let tok = Secret::new(format!("eyJhbGciOiJub25lIn0.{payload}.sig"));
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        let info = token_info(&tok, at);
        assert_eq!(info.roles, vec!["Contacts.ReadWrite", "User.Read.All"]);
        assert_eq!(info.tenant_id.as_deref(), Some("t-1"));
        assert_eq!(info.app_id.as_deref(), Some("a-1"));
        assert!(token_info(&Secret::new("opaque"), at).roles.is_empty());
    }
}
