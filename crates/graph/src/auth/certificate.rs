//! Certificates for client assertions (docs/graph-facts.md §8): loading a PEM with the certificate
//! and its RSA key, the `x5t#S256` thumbprint, and signing the assertion JWT.
//!
//! Never formats the private key: [`LoadedCertificate`]'s `Debug` redacts it, and errors name the
//! file (`what`), never its content.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use super::AssertionAlgorithm;
use crate::error::GraphError;
use crate::secret::Secret;

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
pub(super) struct PemBlock<'a> {
    pub(super) label: &'a str,
    /// The whole block text including its BEGIN/END lines.
    text: &'a str,
    pub(super) base64: String,
}

pub(super) fn pem_blocks(text: &str) -> Vec<PemBlock<'_>> {
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

/// How long a client assertion is valid: docs/graph-facts.md §8 "exp short (5–10 min after nbf)".
const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);

/// Builds and signs a client assertion (docs/graph-facts.md §8): header `alg` PS256 (or RS256),
/// `typ` JWT, `x5t#S256`; claims `aud` = token endpoint URL, `iss` = `sub` = client id, `jti`
/// unique, `nbf`/`iat` = now, `exp` = now + 10 min.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn test_pem() -> (String, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["synccontacts-test".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (format!("{}\n{}", cert.pem(), key.serialize_pem()), key)
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
}
