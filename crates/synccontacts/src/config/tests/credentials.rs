//! Credentials: exactly one, the files and variables they name, secrets never printed.

use super::*;

#[test]
fn exactly_one_credential() {
    let none = r#"[{"TenantId":"t","ClientId":"c","GlobalAddressBookUserId":"h"}]"#;
    let e = err(&[(TENANTS_JSON, none)]);
    assert_has(&e, TENANTS_JSON, Some("ClientSecret"), "no credential");
    let two = r#"[{"TenantId":"t","ClientId":"c","ClientSecret":"s","ClientAssertionEnv":"TOK","GlobalAddressBookUserId":"h"}]"#;
    let e = err(&[(TENANTS_JSON, two), ("TOK", "jwt")]);
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientSecret, ClientAssertionEnv"),
        "more than one",
    );
}

#[test]
fn federated_credential_from_env() {
    let t = r#"[{"TenantId":"t","ClientId":"c","ClientAssertionEnv":"AZURE_JWT","GlobalAddressBookUserId":"h"}]"#;
    let c = ok(&[(TENANTS_JSON, t), ("AZURE_JWT", "eyJ.x.y")]);
    assert_eq!(
        c.tenants[0].credential,
        CredentialConfig::AssertionEnv("AZURE_JWT".into())
    );
    let e = err(&[(TENANTS_JSON, t)]);
    assert_has(&e, TENANTS_JSON, Some("ClientAssertionEnv"), "id_tokens");
}

#[test]
fn certificate_and_assertion_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("app.pem");
    std::fs::write(
        &good,
        "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\ny\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let cert_only = dir.path().join("cert.pem");
    std::fs::write(&cert_only, "-----BEGIN CERTIFICATE-----\nx\n").unwrap();
    let tenant = |field: &str, path: &std::path::Path| {
        format!(
            r#"[{{"TenantId":"t","ClientId":"c","{field}":{},"GlobalAddressBookUserId":"h"}}]"#,
            serde_json::to_string(&path.display().to_string()).unwrap()
        )
    };
    let c = ok(&[(TENANTS_JSON, &tenant("ClientCertificatePath", &good))]);
    assert_eq!(
        c.tenants[0].credential,
        CredentialConfig::CertificatePath(good.clone())
    );
    let e = err(&[(TENANTS_JSON, &tenant("ClientCertificatePath", &cert_only))]);
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientCertificatePath"),
        "private key",
    );
    let missing = dir.path().join("nope.pem");
    let e = err(&[(TENANTS_JSON, &tenant("ClientCertificatePath", &missing))]);
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientCertificatePath"),
        "cannot read",
    );
    let c = ok(&[(TENANTS_JSON, &tenant("ClientAssertionFile", &good))]);
    assert_eq!(
        c.tenants[0].credential,
        CredentialConfig::AssertionFile(good)
    );
    let e = err(&[(TENANTS_JSON, &tenant("ClientAssertionFile", &missing))]);
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientAssertionFile"),
        "does not exist",
    );
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let c = ok(&[(TENANTS_JSON, T1), ("OTHER", "s3cret-canary")]);
    let dbg = format!("{c:?} {:?}", env(&[(CLIENT_SECRET, "s3cret-canary")]));
    assert!(!dbg.contains("s3cret-canary"), "{dbg}");
    assert!(dbg.contains(graph::secret::REDACTED), "{dbg}");
    assert_eq!(
        Secret::new("s3cret-canary").to_string(),
        graph::secret::REDACTED
    );
}
