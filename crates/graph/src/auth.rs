//! Token providers for app-only auth (client credentials, graph-facts §8): client secret,
//! certificate (a client assertion JWT we sign), or a federated assertion (e.g. a GitLab CI
//! `id_token`) read fresh from a file or an environment variable at every token request.
//!
//! Tokens are cached and refreshed before they expire; the client invalidates a token once on a
//! 401. Every secret here (client secret, private key, assertion, access token) lives in a
//! [`Secret`] or a type with a redacting `Debug`, and is registered with the [`Redactor`] the
//! moment it is read. This module must never log or format a secret.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use jiff::Timestamp;
use rand::rngs::SmallRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::clock::{Clock, add, until};
use crate::error::{ErrorKind, GraphError, from_token_response};
use crate::retry::{Decision, Failure, Idempotency, RetryPolicy, parse_retry_after};
use crate::secret::{Redactor, Secret};

/// How the app proves its identity (SPEC §6: exactly one per tenant).
#[derive(Clone)]
pub enum Credential {
    /// `ClientSecret`.
    Secret(Secret),
    /// `ClientCertificatePath`: one PEM file holding the certificate and its unencrypted RSA key.
    CertificatePem(PathBuf),
    /// `ClientAssertionFile`: a federated token, re-read at every token request.
    AssertionFile(PathBuf),
    /// `ClientAssertionEnv`: name of an environment variable holding a federated token, re-read
    /// at every token request (GitLab CI `id_tokens`).
    AssertionEnv(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Secret(s) => f.debug_tuple("Secret").field(s).finish(),
            Credential::CertificatePem(p) => f.debug_tuple("CertificatePem").field(p).finish(),
            Credential::AssertionFile(p) => f.debug_tuple("AssertionFile").field(p).finish(),
            Credential::AssertionEnv(v) => f.debug_tuple("AssertionEnv").field(v).finish(),
        }
    }
}

/// Signature algorithm of a certificate client assertion. The current Entra docs use PS256 with
/// `x5t#S256`; RS256 is the older form, still accepted (graph-facts §8).
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
    /// appear here (graph-facts §10), so never refuse to run because a Contacts role is missing.
    pub roles: Vec<String>,
    pub tenant_id: Option<String>,
    pub app_id: Option<String>,
}

/// A certificate loaded from PEM: the key ready to sign, and the `x5t#S256` thumbprint.
pub struct LoadedCertificate {
    key: jsonwebtoken::EncodingKey,
    /// base64url(SHA-256(certificate DER)), the JWT header `x5t#S256`.
    pub x5t_s256: String,
}

impl fmt::Debug for LoadedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedCertificate")
            .field("x5t_s256", &self.x5t_s256)
            .field("key", &crate::secret::REDACTED)
            .finish()
    }
}

/// One `-----BEGIN label-----` block of a PEM file.
struct PemBlock<'a> {
    label: &'a str,
    /// The whole block text including its BEGIN/END lines.
    text: &'a str,
    base64: String,
}

fn pem_blocks(text: &str) -> Vec<PemBlock<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start + 11..];
        let Some(label_end) = after.find("-----") else {
            break;
        };
        let label = &after[..label_end];
        let end_marker = format!("-----END {label}-----");
        let body_start = start + 11 + label_end + 5;
        let Some(end_rel) = rest[body_start..].find(&end_marker) else {
            break;
        };
        let body = &rest[body_start..body_start + end_rel];
        let block_end = body_start + end_rel + end_marker.len();
        out.push(PemBlock {
            label,
            text: &rest[start..block_end],
            base64: body.chars().filter(|c| !c.is_whitespace()).collect(),
        });
        rest = &rest[block_end..];
    }
    out
}

/// Makes sure jsonwebtoken has its crypto provider. jsonwebtoken 11 picks one from its crate
/// features, but if another crate in the build enables a second backend the automatic choice is
/// a panic at first use; installing aws-lc explicitly (once per process) avoids that.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means a provider is already installed (by the emulator in the same process, say):
        // fine, any installed provider signs RS/PS256.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    });
}

/// Loads a PEM with a certificate and its RSA private key (PKCS#8 `PRIVATE KEY` or PKCS#1
/// `RSA PRIVATE KEY`), in any order. `what` names the file in errors (never its content).
pub fn load_certificate(pem: &[u8], what: &str) -> Result<LoadedCertificate, GraphError> {
    install_crypto_provider();
    let text = std::str::from_utf8(pem)
        .map_err(|_| GraphError::config(format!("{what} is not a PEM text file")))?;
    let blocks = pem_blocks(text);
    let cert = blocks
        .iter()
        .find(|b| b.label == "CERTIFICATE")
        .ok_or_else(|| {
            GraphError::config(format!(
                "{what} holds no CERTIFICATE block; it must contain the certificate and its private key in PEM"
            ))
        })?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(&cert.base64)
        .map_err(|_| {
            GraphError::config(format!("{what}: the CERTIFICATE block is not valid base64"))
        })?;
    let x5t_s256 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&der));
    if blocks.iter().any(|b| b.label == "ENCRYPTED PRIVATE KEY") {
        return Err(GraphError::config(format!(
            "{what} holds an encrypted private key; export it without a passphrase (e.g. openssl pkcs8 -nocrypt) and keep the file in a masked CI variable"
        )));
    }
    let key_block = blocks
        .iter()
        .find(|b| b.label == "PRIVATE KEY" || b.label == "RSA PRIVATE KEY")
        .ok_or_else(|| {
            GraphError::config(format!(
                "{what} holds no private key; it must contain the certificate and its unencrypted RSA private key in PEM"
            ))
        })?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(key_block.text.as_bytes()).map_err(|_| {
        GraphError::config(format!(
            "{what}: the private key is not a usable RSA key (client assertions need RSA, 2048 bits or more)"
        ))
    })?;
    Ok(LoadedCertificate { key, x5t_s256 })
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
struct AssertionClaims {
    aud: String,
    iss: String,
    sub: String,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

/// How long a client assertion is valid: graph-facts §8 "exp short (5–10 min after nbf)".
const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

/// Builds and signs a client assertion (graph-facts §8): header `alg` PS256 (or RS256), `typ`
/// JWT, `x5t#S256`; claims `aud` = token endpoint URL, `iss` = `sub` = client id, `jti` unique,
/// `nbf`/`iat` = now, `exp` = now + 10 min.
pub fn build_client_assertion(
    cert: &LoadedCertificate,
    alg: AssertionAlgorithm,
    token_url: &Url,
    client_id: &str,
    now: Timestamp,
    jti: uuid::Uuid,
) -> Result<Secret, GraphError> {
    install_crypto_provider();
    let mut header = jsonwebtoken::Header::new(match alg {
        AssertionAlgorithm::Ps256 => jsonwebtoken::Algorithm::PS256,
        AssertionAlgorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
    });
    header.typ = Some("JWT".to_owned());
    header.x5t_s256 = Some(cert.x5t_s256.clone());
    let nbf = now.as_second();
    let claims = AssertionClaims {
        aud: token_url.as_str().to_owned(),
        iss: client_id.to_owned(),
        sub: client_id.to_owned(),
        jti: jti.to_string(),
        nbf,
        iat: nbf,
        exp: nbf + ASSERTION_LIFETIME.as_secs() as i64,
    };
    jsonwebtoken::encode(&header, &claims, &cert.key)
        .map(Secret::new)
        .map_err(|e| GraphError::config(format!("could not sign the client assertion: {e}")))
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
/// before any request (RELIABILITY I6).
enum ResolvedCredential {
    Secret(Secret),
    Certificate(LoadedCertificate),
    AssertionFile(PathBuf),
    AssertionEnv(String),
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
                    for b in pem_blocks(text)
                        .iter()
                        .filter(|b| b.label.contains("PRIVATE KEY"))
                    {
                        redactor.add(&Secret::new(b.base64.clone()));
                    }
                }
                ResolvedCredential::Certificate(load_certificate(&bytes, &what)?)
            }
            Credential::AssertionFile(p) => ResolvedCredential::AssertionFile(p.clone()),
            Credential::AssertionEnv(v) => {
                if v.trim().is_empty() {
                    return Err(GraphError::config("ClientAssertionEnv names no variable"));
                }
                ResolvedCredential::AssertionEnv(v.clone())
            }
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

    fn read_assertion(&self, ctx: &TokenCtx<'_>) -> Result<Secret, GraphError> {
        let (value, source) = match &self.credential {
            ResolvedCredential::AssertionFile(p) => (
                std::fs::read_to_string(p).map_err(|e| {
                    GraphError::new(
                        ErrorKind::Auth,
                        format!("cannot read the federated token file {}: {e}", p.display()),
                    )
                })?,
                format!("file {}", p.display()),
            ),
            ResolvedCredential::AssertionEnv(var) => (
                std::env::var(var).unwrap_or_default(),
                format!("environment variable {var}"),
            ),
            _ => unreachable!("only called for federated credentials"),
        };
        let value = Secret::new(value.trim());
        if value.is_empty() {
            return Err(GraphError::new(
                ErrorKind::Auth,
                format!(
                    "the federated token {source} is empty or missing; in GitLab CI declare it under id_tokens with aud api://AzureADTokenExchange"
                ),
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
            ResolvedCredential::AssertionFile(_) | ResolvedCredential::AssertionEnv(_) => {
                let a = self.read_assertion(ctx)?;
                form.append_pair("client_assertion_type", JWT_BEARER)
                    .append_pair("client_assertion", a.expose());
            }
        }
        Ok(form.finish())
    }

    async fn fetch(&self, ctx: &TokenCtx<'_>) -> Result<CachedToken, GraphError> {
        let mut attempt = 0u32;
        loop {
            attempt += 1;
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
            let failure = match sent {
                Ok(resp) => {
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
                    if !matches!(status, 429 | 500..=599) {
                        return Err(scrubbed(err, ctx.redactor));
                    }
                    (
                        Failure::Status {
                            status,
                            retry_after,
                        },
                        err,
                    )
                }
                Err(e) => {
                    let context = format!("requesting a token from {}", self.token_url);
                    if let Some(err) = crate::client::untrusted_certificate(&e, &context) {
                        return Err(scrubbed(err, ctx.redactor));
                    }
                    let err = GraphError::new(
                        ErrorKind::Transport,
                        format!(
                            "cannot reach the token endpoint {}: {}",
                            self.token_url,
                            crate::client::error_chain(&e)
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
                    ctx.clock.sleep(after).await;
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

/// Seconds left on a token (for diagnostics).
pub fn remaining(expires_at: Timestamp, now: Timestamp) -> Duration {
    until(now, expires_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_pem() -> (String, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["synccontacts-test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (format!("{}\n{}", cert.pem(), key.serialize_pem()), key)
    }

    #[test]
    fn credential_debug_redacts_the_secret() {
        let c = Credential::Secret(Secret::new("canary-client-secret-xyz"));
        let s = format!("{c:?}");
        assert!(!s.contains("canary"), "{s}");
        let c = Credential::AssertionEnv("AZURE_JWT".into());
        assert!(format!("{c:?}").contains("AZURE_JWT"));
    }

    #[test]
    fn pem_blocks_are_split_in_any_order() {
        let text = "junk\n-----BEGIN PRIVATE KEY-----\nQUJD\nREVG\n-----END PRIVATE KEY-----\n-----BEGIN CERTIFICATE-----\nWFla\n-----END CERTIFICATE-----\n";
        let b = pem_blocks(text);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].label, "PRIVATE KEY");
        assert_eq!(b[0].base64, "QUJDREVG");
        assert!(b[0].text.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(b[0].text.ends_with("-----END PRIVATE KEY-----"));
        assert_eq!(b[1].label, "CERTIFICATE");
    }

    #[test]
    fn client_assertion_has_the_documented_header_and_claims() {
        let (pem, key) = test_pem();
        let cert = load_certificate(pem.as_bytes(), "test.pem").unwrap();
        // x5t#S256 = base64url(SHA-256(cert DER)), computed independently here.
        let der_b64: String = pem_blocks(&pem)
            .into_iter()
            .find(|b| b.label == "CERTIFICATE")
            .unwrap()
            .base64;
        let der = base64::engine::general_purpose::STANDARD
            .decode(der_b64)
            .unwrap();
        let expected =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&der));
        assert_eq!(cert.x5t_s256, expected);
        assert!(!format!("{cert:?}").contains("PRIVATE"));

        let url =
            Url::parse("https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token").unwrap();
        let now = Timestamp::from_second(1_800_000_000).unwrap();
        let jti = uuid::Uuid::from_u128(42);
        for (alg, jalg) in [
            (AssertionAlgorithm::Ps256, jsonwebtoken::Algorithm::PS256),
            (AssertionAlgorithm::Rs256, jsonwebtoken::Algorithm::RS256),
        ] {
            let jwt = build_client_assertion(&cert, alg, &url, "app-123", now, jti).unwrap();
            let header = jsonwebtoken::decode_header(jwt.expose()).unwrap();
            assert_eq!(header.alg, jalg);
            assert_eq!(header.typ.as_deref(), Some("JWT"));
            assert_eq!(header.x5t_s256.as_deref(), Some(expected.as_str()));
            // The raw header JSON uses the registered name `x5t#S256`.
            let raw_header = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwt.expose().split('.').next().unwrap())
                .unwrap();
            assert!(
                String::from_utf8(raw_header)
                    .unwrap()
                    .contains("\"x5t#S256\"")
            );
            // The signature verifies with the certificate's public key.
            let dk =
                jsonwebtoken::DecodingKey::from_rsa_pem(key.public_key_pem().as_bytes()).unwrap();
            let mut v = jsonwebtoken::Validation::new(jalg);
            v.set_audience(&[url.as_str()]);
            v.validate_exp = false;
            v.validate_nbf = false;
            let data = jsonwebtoken::decode::<AssertionClaims>(jwt.expose(), &dk, &v).unwrap();
            assert_eq!(
                data.claims,
                AssertionClaims {
                    aud: url.to_string(),
                    iss: "app-123".into(),
                    sub: "app-123".into(),
                    jti: jti.to_string(),
                    nbf: 1_800_000_000,
                    iat: 1_800_000_000,
                    exp: 1_800_000_600,
                }
            );
        }
    }

    #[test]
    fn bad_certificate_files_are_config_errors_without_content() {
        let (pem, _) = test_pem();
        let only_cert: String = pem
            .split("-----BEGIN PRIVATE KEY")
            .next()
            .unwrap()
            .to_owned();
        let e = load_certificate(only_cert.as_bytes(), "c.pem").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert!(e.message.contains("no private key"), "{}", e.message);
        let key_only = pem.split("-----END CERTIFICATE-----").nth(1).unwrap();
        let e = load_certificate(key_only.as_bytes(), "c.pem").unwrap_err();
        assert!(e.message.contains("no CERTIFICATE"), "{}", e.message);
        let enc = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n-----BEGIN ENCRYPTED PRIVATE KEY-----\nQUJD\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = load_certificate(enc.as_bytes(), "c.pem").unwrap_err();
        assert!(e.message.contains("passphrase"), "{}", e.message);
        let garbage_key = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nQUJD\n-----END PRIVATE KEY-----\n";
        let e = load_certificate(garbage_key.as_bytes(), "c.pem").unwrap_err();
        assert!(!e.message.contains("QUJD"), "{}", e.message);
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
