//! Against the emulator's realism layer: certificate and federated credentials, TLS with an extra
//! CA, throttling and server faults, an ambiguous write, and a user's edit racing our write.

use std::time::Duration;

use graph_emulator::{EmulatorOptions, FaultPlan};
use serde_json::json;

use crate::harness::*;

fn converged_simple(emu: &Emu) {
    for cs in [
        emu.hub_contacts().unwrap(),
        emu.contacts("adele@contoso.com"),
        emu.contacts("megan@contoso.com"),
    ] {
        let by = by_email(&cs);
        assert_eq!(by.len(), 2, "{cs:?}");
        assert!(cs.iter().all(|c| sync_id(c).is_some()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_credential() {
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["synccontacts-e2e".into()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    let mut t = tenant_json(TENANT, simple_users());
    t["apps"][0]["clientSecret"] = serde_json::Value::Null;
    t["apps"][0]["certificatePem"] = json!(cert.pem());
    let emu = Emu::start(scenario_of(vec![t])).await;
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("app.pem");
    let key_pem = kp.serialize_pem();
    std::fs::write(&pem, format!("{}{}", cert.pem(), key_pem)).unwrap();
    let mut env = endpoints(&emu);
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([{"TenantId": TENANT, "ClientId": CLIENT, "ClientCertificatePath": pem, "GlobalAddressBookUserId": HUB}]).to_string(),
    ));
    let r = sync(&env, &["-vv"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    converged_simple(&emu);
    // The private key's body never shows up, in any form the test can think of.
    let body_line = key_pem.lines().nth(1).unwrap();
    assert!(
        !r.all_output().contains(body_line),
        "private key material printed"
    );
    assert!(
        !r.all_output().contains("eyJ"),
        "a JWT (assertion or token) printed"
    );
    let c = run(&env, &["check"]).await;
    assert_eq!(c.code, 0, "{}", c.stdout);
    assert!(
        c.stdout.contains("token obtained with the certificate"),
        "{}",
        c.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn federated_credential_from_a_ci_variable() {
    graph::auth::install_crypto_provider();
    let kp = rcgen::KeyPair::generate().unwrap(); // P-256, ES256
    let issuer = "https://gitlab.example.com";
    let subject = "project_path:grp/proj:ref_type:branch:ref:main";
    let mut t = tenant_json(TENANT, simple_users());
    t["apps"][0]["clientSecret"] = serde_json::Value::Null;
    t["apps"][0]["federated"] = json!([{
        "issuer": issuer, "subject": subject, "audience": "api://AzureADTokenExchange",
        "jwksPem": kp.public_key_pem(),
    }]);
    let emu = Emu::start(scenario_of(vec![t])).await;
    #[allow(
        clippy::disallowed_methods,
        reason = "a real token needs the real time"
    )]
    let iat = jiff::Timestamp::now().as_second();
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &json!({"iss": issuer, "sub": subject, "aud": "api://AzureADTokenExchange",
                "iat": iat, "nbf": iat - 5, "exp": iat + 600}),
        &jsonwebtoken::EncodingKey::from_ec_pem(kp.serialize_pem().as_bytes()).unwrap(),
    )
    .unwrap();
    let mut env = endpoints(&emu);
    env.push(var("AZURE_JWT", jwt.clone()));
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([{"TenantId": TENANT, "ClientId": CLIENT, "ClientAssertionEnv": "AZURE_JWT", "GlobalAddressBookUserId": HUB}]).to_string(),
    ));
    let r = sync(&env, &["-vv"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    converged_simple(&emu);
    assert!(!r.all_output().contains(&jwt), "federated token printed");
    assert!(!r.all_output().contains("eyJ"), "a JWT printed");
}

async fn tls_emulator() -> (Emu, tempfile::TempDir, std::path::PathBuf) {
    let emu = Emu::start_with(
        scenario(simple_users()),
        EmulatorOptions {
            tls: true,
            seed: Some(3),
            ..EmulatorOptions::default()
        },
    )
    .await;
    assert!(emu.url().starts_with("https://"), "{}", emu.url());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, emu.inner.ca_pem().unwrap()).unwrap();
    (emu, dir, ca)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_endpoint_with_the_ca_file() {
    let (emu, _dir, ca) = tls_emulator().await;
    let mut env = one_tenant(&emu);
    env.push(var("AUTOMATION_SYNCCONTACTS_CA_FILE", ca.to_str().unwrap()));
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    converged_simple(&emu);
}

/// An untrusted certificate fails the tenant at once with what to do (no retry can fix it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_endpoint_without_the_ca_file_fails_the_tenant() {
    let (emu, _dir, _ca) = tls_emulator().await;
    let r = sync(&one_tenant(&emu), &[]).await;
    assert_eq!(
        r.code, 1,
        "an untrusted certificate must fail the tenant\n{}",
        r.stderr
    );
    assert_eq!(emu.writes(), 0);
    assert!(
        r.stderr.contains("AUTOMATION_SYNCCONTACTS_CA_FILE")
            || r.stdout.contains("AUTOMATION_SYNCCONTACTS_CA_FILE"),
        "the error must say how to trust the certificate\n{}\n{}",
        r.stdout,
        r.stderr
    );
}

fn plan(v: serde_json::Value) -> FaultPlan {
    serde_json::from_value(v).expect("fault plan")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_survived() {
    let s = graph_emulator::generate(&graph_emulator::GenerateOptions {
        users: 4,
        contacts_per_user: 6,
        pool: Some(10),
        edits: 0.2,
        seed: 5,
    });
    let emu = Emu::start(s.clone()).await;
    emu.inner.set_faults(plan(json!({"seed": 9, "rules": [
        {"match": {"path": "/v1.0/users/**"}, "probability": 0.2, "times": 3, "action": {"status": 429, "retryAfter": 1}},
        {"match": {"path": "/v1.0/users/**"}, "probability": 0.2, "times": 3, "action": {"status": 503}},
    ]})));
    let t = &s.tenants[0];
    let mut env = endpoints(&emu);
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([{"TenantId": t.tenant_id, "ClientId": t.apps[0].client_id, "ClientSecret": t.apps[0].client_secret, "GlobalAddressBookUserId": "hub@contoso.com"}]).to_string(),
    ));
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(emu.stats().throttled > 0, "the fault plan did not fire");
    for (mb, m) in &emu.stats().by_mailbox {
        assert!(m.max_in_flight <= 4, "{mb}: {} in flight", m.max_in_flight);
    }
    emu.inner.set_faults(FaultPlan::default());
    emu.reset();
    assert_eq!(sync(&env, &[]).await.code, 0);
    assert_eq!(emu.writes(), 0, "not converged after the storm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ambiguous_create_is_partial_and_the_rerun_repairs_it_without_duplicates() {
    let emu = Emu::start(scenario(simple_users())).await;
    // The second create in the hub is applied, but the answer is lost (504 after apply).
    emu.inner.set_faults(plan(json!({"rules": [
        {"match": {"method": "POST", "path": "/v1.0/users/*/contactFolders/*/contacts", "mailbox": HUB}, "nth": 2,
         "action": {"status": 504, "afterApply": true}},
        {"match": {"method": "POST", "path": "/v1.0/users/*/contactFolders/*/contacts"}, "nth": 2,
         "action": {"status": 504, "afterApply": true}},
    ]})));
    let env = one_tenant(&emu);
    let r = sync(&env, &[]).await;
    assert_eq!(
        r.code, 1,
        "an unknown outcome is a partial run\n{}\n{}",
        r.stdout, r.stderr
    );
    assert!(r.stdout.contains("Failed to create:"), "{}", r.stdout);
    emu.inner.set_faults(FaultPlan::default());
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    converged_simple(&emu);
    emu.reset();
    assert_eq!(sync(&env, &[]).await.code, 0);
    assert_eq!(emu.writes(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_edited_between_our_read_and_our_write_is_not_overwritten() {
    let hub_a = with(
        with(
            contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-03-01T00:00:00Z",
            ),
            "jobTitle",
            json!("Lead"),
        ),
        "personalNotes",
        json!(tag4(
            "0a0a0a0a-1111-4222-8333-444444444444",
            "adele@contoso.com"
        )),
    );
    let adele_a = with(
        with(
            contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-01-01T00:00:00Z",
            ),
            "jobTitle",
            json!("Developer"),
        ),
        "personalNotes",
        json!(tag4(
            "0a0a0a0a-1111-4222-8333-444444444444",
            "adele@contoso.com"
        )),
    );
    let emu = Emu::start(scenario(vec![
        hub_with(Some(vec![hub_a])),
        user("adele@contoso.com", vec![adele_a]),
    ]))
    .await;
    let cid = s(&emu.contacts("adele@contoso.com")[0], "id")
        .unwrap()
        .to_owned();
    // Our PATCH of Adele's copy is held for a while; Adele edits the contact meanwhile.
    emu.inner.set_faults(plan(json!({"rules": [
        {"match": {"method": "PATCH", "mailbox": "adele@contoso.com"}, "nth": 1, "action": {"delayMs": 1500}},
    ]})));
    let env = one_tenant(&emu);
    let running = tokio::spawn({
        let env = env.clone();
        async move { sync(&env, &[]).await }
    });
    // Wait until the PATCH has arrived, then edit.
    let mut waited = 0;
    while emu
        .stats()
        .by_mailbox
        .get("adele@contoso.com")
        .map_or(0, |m| m.patch)
        == 0
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 20;
        assert!(waited < 20_000, "the PATCH never came");
    }
    emu.touch(
        "adele@contoso.com",
        &cid,
        &json!({"jobTitle": "Edited by Adele"}),
    )
    .await;
    let r = running.await.unwrap();
    assert_eq!(
        r.code, 0,
        "a refused stale write is not a failure\n{}\n{}",
        r.stdout, r.stderr
    );
    assert_eq!(r.results(), vec!["conflict"], "{}", r.stdout);
    assert!(r.stdout.contains("Changed since read"), "{}", r.stdout);
    assert_eq!(
        s(&emu.contacts("adele@contoso.com")[0], "jobTitle"),
        Some("Edited by Adele")
    );
    // The next run lets Adele's newer edit win everywhere.
    emu.inner.set_faults(FaultPlan::default());
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        s(&emu.hub_contacts().unwrap()[0], "jobTitle"),
        Some("Edited by Adele")
    );
}
