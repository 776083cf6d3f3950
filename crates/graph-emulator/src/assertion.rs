//! Client assertions at the token endpoint (graph-facts §8, EMULATOR.md §3): certificate-signed
//! JWTs checked against an app's `certificatePem`, and federated (workload identity) tokens
//! checked against an app's `federated` entries. Each failure carries the AADSTS code and the
//! OAuth `error` value the identity platform answers with, so a client's error handling can be
//! exercised without a tenant.
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
    /// HTTP status: `invalid_client` is observed as 401 (graph-facts §8), the rest 400.
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
    // Current docs sign with PS256, older ones with RS256; both are accepted (graph-facts §8).
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
    // Issuer, subject and audience must match exactly; no wildcards (graph-facts §8).
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
        // Text as observed (Azure/azure-workload-identity troubleshooting.md, graph-facts §8).
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
        // Text as observed (MSAL issues #4951, #984; graph-facts §8 lists 700024 as [OBS]).
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
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use rcgen::{CertificateParams, KeyPair, PKCS_RSA_SHA256, RsaKeySize};
    use std::sync::OnceLock;

    const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
    const TOKEN_URL: &str = "http://127.0.0.1:4000/tenant-1/oauth2/v2.0/token";
    const NOW: i64 = 1_800_000_000;

    struct Keys {
        key_pem: String,
        cert_pem: String,
        cert_der: Vec<u8>,
        other_key_pem: String,
        other_cert_pem: String,
        public_pem: String,
    }

    /// RSA keys are slow to generate in a debug build, so the tests share two.
    fn keys() -> &'static Keys {
        static KEYS: OnceLock<Keys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let make = || {
                let kp = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap();
                let cert = CertificateParams::new(vec!["synccontacts-test".into()])
                    .unwrap()
                    .self_signed(&kp)
                    .unwrap();
                (kp, cert)
            };
            let (kp, cert) = make();
            let (kp2, cert2) = make();
            Keys {
                key_pem: kp.serialize_pem(),
                cert_pem: cert.pem(),
                cert_der: cert.der().to_vec(),
                other_key_pem: kp2.serialize_pem(),
                other_cert_pem: cert2.pem(),
                public_pem: kp.public_key_pem(),
            }
        })
    }

    fn cert_assertion(
        alg: Algorithm,
        thumb: Thumb,
        claims: serde_json::Value,
        key_pem: &str,
    ) -> String {
        let k = keys();
        let mut h = Header::new(alg);
        match thumb {
            Thumb::S256 => h.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(Sha256::digest(&k.cert_der))),
            Thumb::Sha1 => h.x5t = Some(URL_SAFE_NO_PAD.encode(sha1_digest(&k.cert_der))),
            Thumb::Wrong => h.x5t_s256 = Some(URL_SAFE_NO_PAD.encode([7u8; 32])),
            Thumb::None => {}
        }
        jsonwebtoken::encode(
            &h,
            &claims,
            &EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    #[derive(Clone, Copy)]
    enum Thumb {
        S256,
        Sha1,
        Wrong,
        None,
    }

    fn good_claims() -> serde_json::Value {
        serde_json::json!({"aud": TOKEN_URL, "iss": CLIENT, "sub": CLIENT, "jti": "j1",
                           "nbf": NOW - 10, "exp": NOW + 600})
    }

    fn app<'a>(cert: Option<&'a str>, fed: &'a [FederatedRef<'a>]) -> AppKeys<'a> {
        AppKeys {
            client_id: CLIENT,
            certificate_pem: cert,
            federated: fed,
        }
    }

    #[test]
    fn sha1_known_vectors() {
        let hex = |d: [u8; 20]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(sha1_digest(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(sha1_digest(b"")),
            "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        );
        assert_eq!(
            hex(sha1_digest(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
    }

    #[test]
    fn accepts_ps256_with_s256_thumbprint_and_rs256_with_sha1_thumbprint() {
        let k = keys();
        let a = app(Some(&k.cert_pem), &[]);
        let ps = cert_assertion(Algorithm::PS256, Thumb::S256, good_claims(), &k.key_pem);
        assert_eq!(
            verify(&ps, &a, TOKEN_URL, NOW),
            Ok(AssertionKind::Certificate)
        );
        let rs = cert_assertion(Algorithm::RS256, Thumb::Sha1, good_claims(), &k.key_pem);
        assert_eq!(
            verify(&rs, &a, TOKEN_URL, NOW),
            Ok(AssertionKind::Certificate)
        );
    }

    #[test]
    fn accepts_fractional_numeric_dates_as_msal_python_sends_them() {
        // MSAL Python stamps `nbf`/`exp` from time.time(): non-integer NumericDates (RFC 7519 §2).
        let k = keys();
        let a = app(Some(&k.cert_pem), &[]);
        let mut c = good_claims();
        c["nbf"] = serde_json::json!(NOW as f64 + 0.449_769);
        c["exp"] = serde_json::json!(NOW as f64 + 600.5);
        let token = cert_assertion(Algorithm::PS256, Thumb::S256, c.clone(), &k.key_pem);
        assert_eq!(
            verify(&token, &a, TOKEN_URL, NOW),
            Ok(AssertionKind::Certificate)
        );
        // Still time-checked: a fractional exp in the past is AADSTS700024.
        c["exp"] = serde_json::json!(NOW as f64 - 0.5);
        let expired = cert_assertion(Algorithm::PS256, Thumb::S256, c, &k.key_pem);
        assert_eq!(
            verify(&expired, &a, TOKEN_URL, NOW).unwrap_err().code,
            700024
        );
    }

    #[test]
    fn accepts_padded_base64url_thumbprints_as_msal_python_sends_them() {
        let k = keys();
        let a = app(Some(&k.cert_pem), &[]);
        let padded = |digest: &[u8]| base64::engine::general_purpose::URL_SAFE.encode(digest);
        let mut h = Header::new(Algorithm::PS256);
        h.x5t_s256 = Some(padded(&Sha256::digest(&k.cert_der)));
        assert!(h.x5t_s256.as_deref().unwrap().ends_with('='));
        let enc = EncodingKey::from_rsa_pem(k.key_pem.as_bytes()).unwrap();
        let ps = jsonwebtoken::encode(&h, &good_claims(), &enc).unwrap();
        assert_eq!(
            verify(&ps, &a, TOKEN_URL, NOW),
            Ok(AssertionKind::Certificate)
        );
        let mut h = Header::new(Algorithm::RS256);
        h.x5t = Some(padded(&sha1_digest(&k.cert_der)));
        let rs = jsonwebtoken::encode(&h, &good_claims(), &enc).unwrap();
        assert_eq!(
            verify(&rs, &a, TOKEN_URL, NOW),
            Ok(AssertionKind::Certificate)
        );
        // Padding is ignored, the digest is not: another certificate's thumbprint is 700027.
        let mut h = Header::new(Algorithm::PS256);
        h.x5t_s256 = Some(padded(&[9u8; 32]));
        let wrong = jsonwebtoken::encode(&h, &good_claims(), &enc).unwrap();
        assert_eq!(verify(&wrong, &a, TOKEN_URL, NOW).unwrap_err().code, 700027);
    }

    #[test]
    fn rejects_certificate_assertions_with_their_codes() {
        let k = keys();
        let a = app(Some(&k.cert_pem), &[]);
        let code = |token: &str| verify(token, &a, TOKEN_URL, NOW).unwrap_err().code;

        // Signed by another key: signature check fails.
        let forged = cert_assertion(
            Algorithm::PS256,
            Thumb::S256,
            good_claims(),
            &k.other_key_pem,
        );
        let err = verify(&forged, &a, TOKEN_URL, NOW).unwrap_err();
        assert_eq!(
            (err.code, err.error, err.status),
            (700027, "invalid_client", 401)
        );
        assert!(
            err.description
                .contains("did not match the expected signature"),
            "{}",
            err.description
        );

        // Thumbprint of another certificate, or none at all.
        assert_eq!(
            code(&cert_assertion(
                Algorithm::PS256,
                Thumb::Wrong,
                good_claims(),
                &k.key_pem
            )),
            700027
        );
        assert_eq!(
            code(&cert_assertion(
                Algorithm::PS256,
                Thumb::None,
                good_claims(),
                &k.key_pem
            )),
            700027
        );

        // The app has another certificate.
        let other = app(Some(&k.other_cert_pem), &[]);
        let t = cert_assertion(Algorithm::PS256, Thumb::S256, good_claims(), &k.key_pem);
        assert_eq!(verify(&t, &other, TOKEN_URL, NOW).unwrap_err().code, 700027);
        // The app has no certificate at all.
        assert_eq!(
            verify(&t, &app(None, &[]), TOKEN_URL, NOW)
                .unwrap_err()
                .code,
            700027
        );

        // Wrong audience (e.g. the public cloud's URL instead of the discovery one).
        let mut c = good_claims();
        c["aud"] = "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token".into();
        let err = verify(
            &cert_assertion(Algorithm::PS256, Thumb::S256, c, &k.key_pem),
            &a,
            TOKEN_URL,
            NOW,
        )
        .unwrap_err();
        assert_eq!((err.code, err.error), (50027, "invalid_request"));

        // sub differs from the client id.
        let mut c = good_claims();
        c["sub"] = "someone-else".into();
        assert_eq!(
            code(&cert_assertion(
                Algorithm::PS256,
                Thumb::S256,
                c,
                &k.key_pem
            )),
            50027
        );

        // Expired, not yet valid, no exp.
        let mut c = good_claims();
        c["exp"] = (NOW - 1).into();
        let err = verify(
            &cert_assertion(Algorithm::PS256, Thumb::S256, c, &k.key_pem),
            &a,
            TOKEN_URL,
            NOW,
        )
        .unwrap_err();
        assert_eq!((err.code, err.error), (700024, "invalid_client"));
        assert!(
            err.error_description()
                .starts_with("AADSTS700024: Client assertion is not within its valid time range.")
        );
        let mut c = good_claims();
        c["nbf"] = (NOW + 60).into();
        assert_eq!(
            code(&cert_assertion(
                Algorithm::PS256,
                Thumb::S256,
                c,
                &k.key_pem
            )),
            700024
        );
        let mut c = good_claims();
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(
            code(&cert_assertion(
                Algorithm::PS256,
                Thumb::S256,
                c,
                &k.key_pem
            )),
            50027
        );

        // HS256 (a shared secret) is not a certificate assertion.
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &good_claims(),
            &EncodingKey::from_secret(b"s"),
        )
        .unwrap();
        assert_eq!(code(&hs), 50027);

        // Garbage.
        assert_eq!(code("not-a-jwt"), 50027);
    }

    fn federated_token(claims: serde_json::Value, key_pem: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn federated_tokens_match_exactly_and_are_signature_checked() {
        let k = keys();
        let fed = [
            FederatedRef {
                issuer: "https://gitlab.example.com",
                subject: "project_path:grp/proj:ref_type:branch:ref:other",
                audience: "api://AzureADTokenExchange",
                jwks_pem: &k.public_pem,
            },
            FederatedRef {
                issuer: "https://gitlab.example.com",
                subject: "project_path:grp/proj:ref_type:branch:ref:main",
                audience: "api://AzureADTokenExchange",
                jwks_pem: &k.public_pem,
            },
        ];
        let a = app(None, &fed);
        let claims = serde_json::json!({"iss": "https://gitlab.example.com",
            "sub": "project_path:grp/proj:ref_type:branch:ref:main",
            "aud": ["api://AzureADTokenExchange"], "nbf": NOW - 5, "exp": NOW + 300});
        let ok = federated_token(claims.clone(), &k.key_pem);
        assert_eq!(
            verify(&ok, &a, TOKEN_URL, NOW),
            Ok(AssertionKind::Federated(1))
        );

        // Subject of another branch: no wildcard matching.
        let mut c = claims.clone();
        c["sub"] = "project_path:grp/proj:ref_type:branch:ref:feature".into();
        let err = verify(&federated_token(c, &k.key_pem), &a, TOKEN_URL, NOW).unwrap_err();
        assert_eq!(
            (err.code, err.error, err.status),
            (70021, "invalid_request", 400)
        );
        assert!(
            err.description
                .contains("Assertion Subject: 'project_path:grp/proj:ref_type:branch:ref:feature'"),
            "{}",
            err.description
        );
        assert!(
            err.description
                .contains("Assertion Issuer: 'https://gitlab.example.com'")
        );
        assert!(
            err.description
                .contains("Assertion Audience: 'api://AzureADTokenExchange'")
        );

        // Wrong audience.
        let mut c = claims.clone();
        c["aud"] = "api://something-else".into();
        assert_eq!(
            verify(&federated_token(c, &k.key_pem), &a, TOKEN_URL, NOW)
                .unwrap_err()
                .code,
            70021
        );

        // Signed by a key that is not the IdP's.
        let forged = federated_token(claims.clone(), &k.other_key_pem);
        assert_eq!(
            verify(&forged, &a, TOKEN_URL, NOW).unwrap_err().code,
            700027
        );

        // Expired.
        let mut c = claims;
        c["exp"] = (NOW - 100).into();
        assert_eq!(
            verify(&federated_token(c, &k.key_pem), &a, TOKEN_URL, NOW)
                .unwrap_err()
                .code,
            700024
        );
    }

    #[test]
    fn pem_der_reads_the_labelled_block() {
        let k = keys();
        assert_eq!(pem_der(&k.cert_pem, "CERTIFICATE").unwrap(), k.cert_der);
        assert!(pem_der(&k.cert_pem, "PUBLIC KEY").is_none());
    }
}
