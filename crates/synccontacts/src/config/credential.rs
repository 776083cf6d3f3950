//! How a tenant authenticates, and stage two's check that what a credential names is usable: the
//! certificate file holds a certificate and a key, the assertion file exists, the assertion
//! variable is set. It must never print a secret (the client secret, a key, a token): messages
//! name files and variables only.

use std::fmt;
use std::path::{Path, PathBuf};

use graph::Secret;

use super::env::Env;
use super::problem::Findings;
use super::tenant_fields::Place;

/// How a tenant authenticates (docs/sync-rules.md §6: exactly one per tenant).
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialConfig {
    /// `ClientSecret`.
    Secret(Secret),
    /// `ClientCertificatePath`: PEM with the certificate and its private key.
    CertificatePath(PathBuf),
    /// `ClientAssertionFile`: a federated token read fresh at each token request.
    AssertionFile(PathBuf),
    /// `ClientAssertionEnv`: the name of a variable holding a federated token (GitLab `id_tokens`).
    AssertionEnv(String),
}

impl CredentialConfig {
    /// The JSON field this credential came from, for messages and `check`.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Secret(_) => "ClientSecret",
            Self::CertificatePath(_) => "ClientCertificatePath",
            Self::AssertionFile(_) => "ClientAssertionFile",
            Self::AssertionEnv(_) => "ClientAssertionEnv",
        }
    }

    /// A human description that never includes the secret.
    pub fn describe(&self) -> String {
        match self {
            Self::Secret(_) => "client secret".into(),
            Self::CertificatePath(p) => format!("certificate {}", p.display()),
            Self::AssertionFile(p) => format!("federated token from file {}", p.display()),
            Self::AssertionEnv(v) => format!("federated token from variable {v}"),
        }
    }

    /// Stage two: checks that the file or variable this credential names is usable, reporting
    /// what is not (a secret needs nothing).
    pub(super) fn check_references(&self, found: &mut Findings, at: Place<'_>, env: &Env) {
        match self {
            Self::Secret(_) => {}
            Self::CertificatePath(path) => check_certificate_file(found, at, path),
            Self::AssertionFile(path) => {
                if !path.is_file() {
                    found.problem(
                        at.variable,
                        at.tenant,
                        Some(self.field()),
                        format!("{} does not exist or is not a file", path.display()),
                        "point it at the file holding the federated token (or use ClientAssertionEnv with a GitLab id_tokens variable)",
                    );
                }
            }
            Self::AssertionEnv(name) => {
                if env.non_blank(name).is_none() {
                    found.problem(
                        at.variable,
                        at.tenant,
                        Some(self.field()),
                        format!("names the variable {name}, which is not set"),
                        format!(
                            "in .gitlab-ci.yml add `id_tokens: {{ {name}: {{ aud: \"api://AzureADTokenExchange\" }} }}` to the job (or fix the name)"
                        ),
                    );
                }
            }
        }
    }
}

impl fmt::Debug for CredentialConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(s) => write!(f, "Secret({s:?})"),
            other => f.write_str(&other.describe()),
        }
    }
}

/// The certificate PEM must hold a certificate and a private key. Whether they parse and match is
/// the Graph client's to say when it loads them (still before any request).
fn check_certificate_file(found: &mut Findings, at: Place<'_>, path: &Path) {
    let field = Some("ClientCertificatePath");
    match std::fs::read_to_string(path) {
        Err(e) => found.problem(
            at.variable,
            at.tenant,
            field,
            format!("cannot read {}: {e}", path.display()),
            "point it at a PEM file holding the certificate and its private key (in CI, a File-type variable)",
        ),
        Ok(pem) => {
            let has_cert = pem.contains("-----BEGIN CERTIFICATE-----");
            let has_key = pem.contains("PRIVATE KEY-----");
            if !has_cert || !has_key {
                found.problem(
                    at.variable,
                    at.tenant,
                    field,
                    format!(
                        "{} does not hold {}",
                        path.display(),
                        match (has_cert, has_key) {
                            (false, false) => "a PEM certificate nor a private key",
                            (false, true) => "a PEM certificate",
                            _ => "a PEM private key",
                        }
                    ),
                    "concatenate the certificate and its unencrypted private key into one PEM file",
                );
            }
        }
    }
}
