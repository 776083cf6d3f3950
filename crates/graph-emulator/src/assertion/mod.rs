//! Client assertions at the token endpoint (docs/graph-facts.md §8,
//! crates/graph-emulator/README.md, "What it serves"): certificate-signed JWTs checked against an
//! app's `certificatePem`, and federated (workload identity) tokens checked against an app's
//! `federated` entries. Each failure carries the AADSTS code and the OAuth `error` value the
//! identity platform answers with, so a client's error handling can be exercised without a tenant.
//!
//! It verifies, it never issues: no private key lives here, and it must never accept an
//! assertion whose signature it did not check. Time comes in as an argument (no clock reads).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A federated identity credential of an app (scenario `federated` entry).
#[derive(Debug, Clone, Copy)]
pub struct FederatedRef<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub audience: &'a str,
    /// The external IdP's signing key, `-----BEGIN PUBLIC KEY-----` (RSA or EC P-256/P-384).
    pub jwks_pem: &'a str,
}

/// What an app accepts as client assertions.
#[derive(Debug, Clone, Copy)]
pub struct AppKeys<'a> {
    pub client_id: &'a str,
    /// `-----BEGIN CERTIFICATE-----` PEM of the app's certificate credential.
    pub certificate_pem: Option<&'a str>,
    pub federated: &'a [FederatedRef<'a>],
}

/// How an accepted assertion authenticated the app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssertionKind {
    Certificate,
    /// Index into [`AppKeys::federated`] of the matching entry.
    Federated(usize),
}

/// A rejected assertion, in the identity platform's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: AADSTS{code}: {description}")]
pub struct AssertionError {
    /// HTTP status: `invalid_client` is observed as 401 (docs/graph-facts.md §8), the rest 400.
    pub status: u16,
    /// OAuth `error` value.
    pub error: &'static str,
    /// AADSTS code (for `error_codes` and the description prefix).
    pub code: u32,
    /// Text after `AADSTS{code}: `.
    pub description: String,
}

impl AssertionError {
    fn new(error: &'static str, code: u32, description: impl Into<String>) -> Self {
        let status = if error == "invalid_client" { 401 } else { 400 };
        AssertionError {
            status,
            error,
            code,
            description: description.into(),
        }
    }

    fn malformed(detail: &str) -> Self {
        // AADSTS50027 "JWT token is invalid or malformed" (reference-error-codes.md).
        AssertionError::new(
            "invalid_request",
            50027,
            format!("JWT token is invalid or malformed. {detail}"),
        )
    }

    /// The `error_description` text: `AADSTS{code}: {description}`.
    pub fn error_description(&self) -> String {
        format!("AADSTS{}: {}", self.code, self.description)
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, want: &str) -> bool {
        match self {
            Audience::One(a) => a == want,
            Audience::Many(v) => v.iter().any(|a| a == want),
        }
    }
    fn display(&self) -> String {
        match self {
            Audience::One(a) => a.clone(),
            Audience::Many(v) => v.join(","),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Audience>,
    #[serde(default, deserialize_with = "numeric_date")]
    exp: Option<i64>,
    #[serde(default, deserialize_with = "numeric_date")]
    nbf: Option<i64>,
}

/// A JWT NumericDate: RFC 7519 §2 allows non-integer seconds, and MSAL Python sends them
/// (`"exp": 1795789292.449769`, from `time.time()`; found by tools/sdk-conformance). Truncated to
/// whole seconds, the precision of the emulator's clock: for `nbf` stamped "now" by the client,
/// rounding up would reject a fresh assertion as not yet valid.
fn numeric_date<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    match n.as_f64() {
        // Finite and well inside i64's range, so the cast cannot saturate.
        Some(f) if f.is_finite() && f.abs() < 9.0e15 => Ok(Some(f.floor() as i64)),
        _ => Err(serde::de::Error::custom(format!(
            "NumericDate out of range: {n}"
        ))),
    }
}

/// Verifies a `client_assertion` for `app` at `token_endpoint` (the token URL exactly as the
/// discovery document names it) at unix time `now`.
///
/// An assertion whose `iss` is the client id is a certificate assertion; any other issuer is
/// treated as a federated token, as the identity platform does.
pub fn verify(
    assertion: &str,
    app: &AppKeys<'_>,
    token_endpoint: &str,
    now: i64,
) -> Result<AssertionKind, AssertionError> {
    let header = jsonwebtoken::decode_header(assertion)
        .map_err(|e| AssertionError::malformed(&format!("({e})")))?;
    let claims: Claims = jsonwebtoken::dangerous::insecure_decode_claims(assertion)
        .map_err(|e| AssertionError::malformed(&format!("({e})")))?;
    if claims.iss.as_deref() == Some(app.client_id) {
        verify_certificate(assertion, &header, &claims, app, token_endpoint, now)?;
        Ok(AssertionKind::Certificate)
    } else {
        verify_federated(assertion, &header, &claims, app, now).map(AssertionKind::Federated)
    }
}

fn verify_certificate(
    assertion: &str,
    header: &jsonwebtoken::Header,
    claims: &Claims,
    app: &AppKeys<'_>,
    token_endpoint: &str,
    now: i64,
) -> Result<(), AssertionError> {
    // Current docs sign with PS256, older ones with RS256; both are accepted
    // (docs/graph-facts.md §8).
    if !matches!(header.alg, Algorithm::RS256 | Algorithm::PS256) {
        return Err(AssertionError::malformed(&format!(
            "Unsupported signing algorithm {:?}.",
            header.alg
        )));
    }
    if claims.sub.as_deref() != Some(app.client_id) {
        return Err(AssertionError::malformed(
            "The 'sub' claim must be the client id.",
        ));
    }
    match &claims.aud {
        Some(aud) if aud.contains(token_endpoint) => {}
        other => {
            let got = other.as_ref().map(Audience::display).unwrap_or_default();
            return Err(AssertionError::malformed(&format!(
                "Invalid audience '{got}'; expected '{token_endpoint}'."
            )));
        }
    }
    let presented = header
        .x5t_s256
        .clone()
        .or_else(|| header.x5t.clone())
        .unwrap_or_default();
    let key_not_found = |reason: &str| {
        AssertionError::new(
            "invalid_client",
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - {reason}, Thumbprint of key used \
                 by client: '{}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to \
                 see configured keys for app Id '{}'.]",
                thumbprint_display(&presented),
                app.client_id
            ),
        )
    };
    let Some(cert_pem) = app.certificate_pem else {
        return Err(key_not_found("The key was not found."));
    };
    let der =
        pem_der(cert_pem, "CERTIFICATE").ok_or_else(|| key_not_found("The key was not found."))?;
    // MSAL Python sends the thumbprint base64url *with* `=` padding (`urlsafe_b64encode`, found
    // by tools/sdk-conformance); other clients send it unpadded (RFC 7515 §2). Entra accepts
    // both, so the padding is not part of the comparison.
    let same = |presented: &str, digest: &[u8]| {
        presented.trim_end_matches('=') == URL_SAFE_NO_PAD.encode(digest)
    };
    let thumb_ok = match (&header.x5t_s256, &header.x5t) {
        (Some(s256), _) => same(s256, &Sha256::digest(&der)),
        (None, Some(sha1)) => same(sha1, &sha1_digest(&der)),
        (None, None) => false,
    };
    if !thumb_ok {
        return Err(key_not_found("The key was not found."));
    }
    let key = DecodingKey::from_rsa_pem(cert_pem.as_bytes()).map_err(|_| {
        key_not_found("Key was found, but use of the key to verify the signature failed.")
    })?;
    check_signature(assertion, header.alg, &key).map_err(|_| {
        key_not_found("The provided signature value did not match the expected signature value.")
    })?;
    check_time(claims, now)
}

fn verify_federated(
    assertion: &str,
    header: &jsonwebtoken::Header,
    claims: &Claims,
    app: &AppKeys<'_>,
    now: i64,
) -> Result<usize, AssertionError> {
    let iss = claims.iss.as_deref().unwrap_or_default();
    let sub = claims.sub.as_deref().unwrap_or_default();
    // Issuer, subject and audience must match exactly; no wildcards (docs/graph-facts.md §8).
    let found = app.federated.iter().position(|f| {
        f.issuer == iss
            && f.subject == sub
            && claims.aud.as_ref().is_some_and(|a| a.contains(f.audience))
    });
    let Some(idx) = found else {
        let aud = claims
            .aud
            .as_ref()
            .map(Audience::display)
            .unwrap_or_default();
        // Text as observed (Azure/azure-workload-identity troubleshooting.md,
        // docs/graph-facts.md §8).
        return Err(AssertionError::new(
            "invalid_request",
            70021,
            format!(
                "No matching federated identity record found for presented assertion. Assertion Issuer: \
                 '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{aud}'."
            ),
        ));
    };
    let fed = &app.federated[idx];
    let bad_sig = || {
        AssertionError::new(
            "invalid_client",
            700027,
            format!(
                "Client assertion contains an invalid signature. [Reason - The provided signature value did \
                 not match the expected signature value., Issuer: '{iss}']"
            ),
        )
    };
    let key = match header.alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => DecodingKey::from_rsa_pem(fed.jwks_pem.as_bytes()),
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(fed.jwks_pem.as_bytes()),
        other => {
            return Err(AssertionError::malformed(&format!(
                "Unsupported signing algorithm {other:?}."
            )));
        }
    }
    .map_err(|_| bad_sig())?;
    check_signature(assertion, header.alg, &key).map_err(|_| bad_sig())?;
    check_time(claims, now)?;
    Ok(idx)
}

fn check_signature(
    token: &str,
    alg: Algorithm,
    key: &DecodingKey,
) -> Result<(), jsonwebtoken::errors::Error> {
    // Claims are checked by hand (for the exact AADSTS codes), so the library only verifies the
    // signature here.
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<serde_json::Value>(token, key, &v).map(|_| ())
}

fn check_time(claims: &Claims, now: i64) -> Result<(), AssertionError> {
    let Some(exp) = claims.exp else {
        return Err(AssertionError::malformed("The 'exp' claim is missing."));
    };
    let nbf = claims.nbf.unwrap_or(0);
    if now >= exp || now < nbf {
        // Text as observed (MSAL issues #4951, #984; docs/graph-facts.md §8 lists 700024 as [OBS]).
        return Err(AssertionError::new(
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from \
                 {}, expiry time of assertion {}. Review the documentation at \
                 https://learn.microsoft.com/entra/identity-platform/certificate-credentials .",
                fmt_time(now),
                fmt_time(nbf),
                fmt_time(exp)
            ),
        ));
    }
    Ok(())
}

fn fmt_time(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| unix.to_string())
}

fn thumbprint_display(b64url: &str) -> String {
    match URL_SAFE_NO_PAD.decode(b64url.trim_end_matches('=')) {
        Ok(bytes) => bytes.iter().map(|b| format!("{b:02X}")).collect(),
        Err(_) => b64url.to_owned(),
    }
}

/// DER bytes of the first PEM block with `label` in `pem`.
pub fn pem_der(pem: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let b64: String = pem[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD.decode(b64).ok()
}

/// SHA-1, only for the legacy `x5t` certificate thumbprint (not for anything security-relevant:
/// the signature is verified with the certificate's key either way). The workspace has no SHA-1
/// crate and this is small enough not to warrant one.
pub fn sha1_digest(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bit_len = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bit_len.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (hv, v) in h.iter_mut().zip([a, b, c, d, e]) {
            *hv = hv.wrapping_add(v);
        }
    }
    let mut out = [0u8; 20];
    for (i, v) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    out
}

#[cfg(test)]
mod tests;
