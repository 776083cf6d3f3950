//! Unit tests of client-assertion verification (certificate and federated tokens).

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
