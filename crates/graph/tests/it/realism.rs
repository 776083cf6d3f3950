//! The client against the emulator with Graph's limits and fault plans on (issue 5 §7): at most
//! 4 in flight per mailbox, 429 storms with and without Retry-After, per-item 429 in a batch,
//! 503 bursts and dropped connections, no retry of 4xx, ambiguous creates, TLS with an extra CA,
//! certificate and federated credentials verified by the emulator.

use std::sync::Arc;
use std::time::Duration;

use graph::{Credential, ErrorKind, FolderRef, GraphClient, VirtualClock, WriteRequest};
use graph_emulator::{EmulatorOptions, FaultPlan, GenerateOptions};
use serde_json::json;

use crate::contact::{Contact, SELECT};

use crate::emulator::{Env, HUB};

fn plan(v: serde_json::Value) -> FaultPlan {
    serde_json::from_value(v).unwrap()
}

fn small(seed: u64, users: usize, contacts: usize) -> GenerateOptions {
    GenerateOptions {
        users,
        contacts_per_user: contacts,
        seed,
        ..Default::default()
    }
}

/// A client on virtual time: Retry-After and backoff waits cost nothing.
fn virtual_client(env: &Env) -> (GraphClient, Arc<VirtualClock>) {
    let clock = Arc::new(VirtualClock::default());
    let mut cfg = env.config();
    cfg.clock = clock.clone();
    (GraphClient::new(cfg).unwrap(), clock)
}

fn creates(folder: &FolderRef, n: usize, tag: &str) -> Vec<WriteRequest> {
    (0..n)
        .map(|i| {
            WriteRequest::create(
                folder.clone(),
                json!({"displayName": format!("{tag} {i}"),
                       "emailAddresses": [{"name": format!("{tag} {i}"), "address": format!("{tag}{i}@example.com")}]}),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_more_than_four_in_flight_per_mailbox_with_many_callers() {
    let env = Env::start(
        small(21, 2, 5),
        EmulatorOptions {
            latency: Duration::from_millis(25),
            ..Default::default()
        },
    )
    .await;
    let c = env.client();
    let users = env.users();
    let target = users[0].clone();
    let folder = c.create_contact_folder(&target, "Sync").await.unwrap();
    env.emu.reset_stats();
    // 30 concurrent readers of one mailbox, two batched writers to it, and readers of another.
    let reads = futures::future::join_all(
        (0..30).map(|_| c.list_contacts::<Contact>(&target, &FolderRef::Default, SELECT)),
    );
    let fref = FolderRef::Id(folder.id.clone());
    let writes = futures::future::join(
        c.execute_writes::<Contact>(&target, creates(&fref, 26, "w")),
        c.execute_writes::<Contact>(&target, creates(&fref, 7, "v")),
    );
    let other = futures::future::join_all(
        (0..10).map(|_| c.list_contacts::<Contact>(&users[1], &FolderRef::Default, SELECT)),
    );
    let (reads, (w1, w2), other) = tokio::join!(reads, writes, other);
    assert!(reads.iter().chain(other.iter()).all(Result::is_ok));
    assert!(w1.iter().chain(w2.iter()).all(Result::is_ok), "{w1:?}");
    let st = env.emu.stats();
    let mb = &st.by_mailbox[&target.to_lowercase()];
    assert!(mb.max_in_flight <= 4, "{st:?}");
    assert_eq!(
        mb.max_in_flight, 4,
        "the mailbox was used to its limit: {st:?}"
    );
    assert_eq!(st.throttled, 0, "{st:?}");
    assert_eq!(c.stats().retries, 0);
    assert_eq!(
        c.list_contacts::<Contact>(&target, &fref, SELECT)
            .await
            .unwrap()
            .len(),
        33
    );

    // Control: the same load with our per-mailbox limit raised to 8 is throttled by the
    // emulator — so the zero above is our limit's doing — and still completes through retries.
    let mut cfg = env.config();
    cfg.per_mailbox_concurrency = 8;
    let greedy = GraphClient::new(cfg).unwrap();
    env.emu.reset_stats();
    let reads = futures::future::join_all(
        (0..8).map(|_| greedy.list_contacts::<Contact>(&target, &FolderRef::Default, SELECT)),
    )
    .await;
    assert!(reads.iter().all(Result::is_ok));
    assert!(env.emu.stats().throttled > 0);
    assert_eq!(greedy.stats().throttled, env.emu.stats().throttled);
}

#[tokio::test]
async fn storm_of_429_with_retry_after_is_survived() {
    let env = Env::start(
        small(22, 4, 3),
        EmulatorOptions {
            faults: Some(plan(json!({"seed": 5, "rules": [
                {"match": {"path": "/v1.0/users/**"}, "probability": 0.5, "times": 12,
                 "action": {"status": 429, "retryAfter": 2}}]}))),
            ..Default::default()
        },
    )
    .await;
    let (c, clock) = virtual_client(&env);
    for u in env.users() {
        assert_eq!(
            c.list_contacts::<Contact>(&u, &FolderRef::Default, SELECT)
                .await
                .unwrap()
                .len(),
            3
        );
    }
    let st = env.emu.stats();
    assert!(st.throttled > 0, "the plan fired");
    assert_eq!(c.stats().throttled, st.throttled);
    assert_eq!(st.requests, 4 + st.throttled, "exactly one retry per 429");
    // Every 429 cost its full Retry-After of virtual time, and nothing else slept.
    assert!(
        clock.sleeps().iter().all(|d| *d >= Duration::from_secs(2)),
        "{:?}",
        clock.sleeps()
    );
}

#[tokio::test]
async fn storm_of_429_without_retry_after_backs_off() {
    let env = Env::start(
        small(23, 2, 2),
        EmulatorOptions {
            faults: Some(plan(json!({"seed": 9, "rules": [
                {"match": {"method": "GET", "path": "/v1.0/users/*/contacts"}, "probability": 0.6, "times": 8,
                 "action": {"status": 429}}]}))),
            ..Default::default()
        },
    )
    .await;
    let (c, clock) = virtual_client(&env);
    for u in env.users() {
        c.list_contacts::<Contact>(&u, &FolderRef::Default, SELECT)
            .await
            .unwrap();
    }
    let st = env.emu.stats();
    assert!(st.throttled > 0);
    assert_eq!(st.requests, 2 + st.throttled);
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len() as u64, st.throttled);
    assert!(
        sleeps.iter().all(|d| *d >= Duration::from_millis(250)),
        "{sleeps:?}"
    );
}

#[tokio::test]
async fn per_item_429_and_503_in_a_batch_are_retried_alone_without_duplicates() {
    let env = Env::start(
        small(24, 1, 1),
        EmulatorOptions {
            faults: Some(plan(json!({"rules": [
                {"match": {"method": "POST", "path": "/v1.0/users/*/contactFolders/*/contacts"}, "nth": 3,
                 "action": {"status": 429, "retryAfter": 3}},
                {"match": {"method": "POST", "path": "/v1.0/users/*/contactFolders/*/contacts"}, "nth": 7,
                 "action": {"status": 503}}]}))),
            ..Default::default()
        },
    )
    .await;
    let (c, clock) = virtual_client(&env);
    let folder = c.create_contact_folder(HUB, "All Contacts").await.unwrap();
    env.emu.reset_stats();
    let t0 = graph::Clock::now(&*clock);
    let fref = FolderRef::Id(folder.id.clone());
    let res = c
        .execute_writes::<Contact>(HUB, creates(&fref, 25, "b"))
        .await;
    assert!(
        res.iter()
            .all(|r| r.as_ref().is_ok_and(|w| w.status == 201)),
        "{res:?}"
    );
    let st = env.emu.stats();
    assert_eq!(
        st.batches, 3,
        "20 + 5, then one batch with the two failed items: {st:?}"
    );
    assert_eq!(st.batch_items, 27);
    assert_eq!(c.stats().throttled, 1);
    // The retry round waited out the item's Retry-After (3 s of virtual time).
    let waited = graph::clock::until(t0, graph::Clock::now(&*clock));
    assert!(
        waited >= Duration::from_secs(3),
        "{waited:?} {:?}",
        clock.sleeps()
    );
    let listed = c
        .list_contacts::<Contact>(HUB, &fref, SELECT)
        .await
        .unwrap();
    assert_eq!(listed.len(), 25, "no duplicates, none missing");
}

#[tokio::test]
async fn bursts_of_503_and_dropped_connections_are_retried() {
    let env = Env::start(
        small(25, 1, 4),
        EmulatorOptions {
            faults: Some(plan(json!({"rules": [
                {"match": {"method": "GET", "path": "/v1.0/users/*/contacts"}, "probability": 1.0, "times": 3,
                 "action": {"status": 503}},
                {"match": {"method": "GET", "path": "/v1.0/users/*/contactFolders"}, "nth": 1,
                 "action": {"drop": "before"}}]}))),
            ..Default::default()
        },
    )
    .await;
    let (c, _clock) = virtual_client(&env);
    let u = env.users()[0].clone();
    assert_eq!(
        c.list_contacts::<Contact>(&u, &FolderRef::Default, SELECT)
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(env.emu.stats().requests, 4, "three 503s, then success");
    assert!(c.find_contact_folder(&u, "Nope").await.unwrap().is_none());
    assert_eq!(c.stats().retries, 4);
}

#[tokio::test]
async fn client_errors_are_not_retried_against_the_emulator() {
    let mut scenario = graph_emulator::generate(&small(26, 2, 1));
    let denied = scenario.tenants[0].users[2].user_principal_name.clone();
    scenario.tenants[0].apps[0].mailbox_scope = Some(vec![
        HUB.to_owned(),
        scenario.tenants[0].users[1].user_principal_name.clone(),
    ]);
    let emu = graph_emulator::start(scenario.clone(), EmulatorOptions::default())
        .await
        .unwrap();
    let env = Env { emu, scenario };
    let (c, clock) = virtual_client(&env);
    let e = c
        .list_contacts::<Contact>(&denied, &FolderRef::Default, SELECT)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permission, "{e}");
    assert!(e.message.contains("access policy"), "{e}");
    // Four email addresses: Graph caps them at 3 (docs/graph-facts.md §9) → 400.
    let too_many = WriteRequest::create(
        FolderRef::Default,
        json!({"displayName": "X", "emailAddresses": [
            {"address": "a@x.com"}, {"address": "b@x.com"}, {"address": "c@x.com"}, {"address": "d@x.com"}]}),
    );
    let e = c
        .execute_writes::<Contact>(HUB, vec![too_many])
        .await
        .remove(0)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest, "{e}");
    assert_eq!(env.emu.stats().requests, 2, "one request each");
    assert!(clock.sleeps().is_empty());
}

#[tokio::test]
async fn a_create_answered_504_after_apply_is_not_repeated() {
    let env = Env::start(
        small(27, 1, 0),
        EmulatorOptions {
            faults: Some(plan(json!({"rules": [
                {"match": {"method": "POST", "path": "/v1.0/users/*/contacts"}, "nth": 1,
                 "action": {"status": 504, "afterApply": true}}]}))),
            ..Default::default()
        },
    )
    .await;
    let (c, _clock) = virtual_client(&env);
    let u = env.users()[0].clone();
    let mut w = creates(&FolderRef::Default, 1, "amb");
    let e = c
        .execute_writes::<Contact>(&u, w.clone())
        .await
        .remove(0)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::AmbiguousWrite, "{e}");
    assert_eq!(env.emu.stats().by_mailbox[&u.to_lowercase()].post, 1);
    // It was applied once, and only once.
    assert_eq!(
        c.list_contacts::<Contact>(&u, &FolderRef::Default, SELECT)
            .await
            .unwrap()
            .len(),
        1
    );
    // The same inside a batch: the item's 504 is not repeated either.
    env.emu.set_faults(plan(json!({"rules": [
        {"match": {"method": "POST", "path": "/v1.0/users/*/contacts"}, "nth": 2,
         "action": {"status": 504, "afterApply": true}}]})));
    w = creates(&FolderRef::Default, 3, "amb2");
    let res = c.execute_writes::<Contact>(&u, w).await;
    assert_eq!(
        res.iter()
            .filter(|r| r
                .as_ref()
                .is_err_and(|e| e.kind == ErrorKind::AmbiguousWrite))
            .count(),
        1,
        "{res:?}"
    );
    assert_eq!(
        c.list_contacts::<Contact>(&u, &FolderRef::Default, SELECT)
            .await
            .unwrap()
            .len(),
        4
    );
}

#[tokio::test]
async fn tls_with_the_extra_ca_and_refused_without_it() {
    let env = Env::start(
        small(28, 1, 2),
        EmulatorOptions {
            tls: true,
            ..Default::default()
        },
    )
    .await;
    assert!(env.emu.url().starts_with("https://"));
    let mut cfg = env.config();
    cfg.extra_ca_pem = Some(env.emu.ca_pem().unwrap().into_bytes());
    let c = GraphClient::new(cfg).unwrap();
    let u = env.users()[0].clone();
    assert_eq!(
        c.list_contacts::<Contact>(&u, &FolderRef::Default, SELECT)
            .await
            .unwrap()
            .len(),
        2
    );

    let mut cfg = env.config();
    cfg.clock = Arc::new(VirtualClock::default());
    let untrusting = GraphClient::new(cfg).unwrap();
    let e = untrusting.token().await.unwrap_err();
    // Not retried: no retry can make an untrusted certificate trusted. The caller says how to
    // trust it (it knows its own settings), so the kind is what tells.
    assert_eq!(e.kind, ErrorKind::UntrustedCertificate, "{e}");
    assert!(e.message.to_lowercase().contains("certificate"), "{e}");
    assert!(!e.is_retryable());
    assert_eq!(untrusting.stats().token_requests, 1);

    let mut cfg = env.config();
    cfg.extra_ca_pem = Some(b"not a pem".to_vec());
    assert_eq!(GraphClient::new(cfg).unwrap_err().kind, ErrorKind::Config);
}

fn rsa_cert() -> (String, String, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["synccontacts-app".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (cert.pem(), key.serialize_pem(), key)
}

#[tokio::test]
async fn certificate_credential_is_accepted_by_the_emulator() {
    let (cert, key, _) = rsa_cert();
    let mut scenario = graph_emulator::generate(&small(29, 1, 1));
    scenario.tenants[0].apps[0].certificate_pem = Some(cert.clone());
    let emu = graph_emulator::start(scenario.clone(), EmulatorOptions::default())
        .await
        .unwrap();
    let env = Env { emu, scenario };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pem");
    std::fs::write(&path, format!("{cert}{key}")).unwrap();
    for alg in [
        graph::AssertionAlgorithm::Ps256,
        graph::AssertionAlgorithm::Rs256,
    ] {
        let mut cfg = env.config();
        cfg.credential = Credential::CertificatePem(path.clone());
        cfg.assertion_algorithm = alg;
        let c = GraphClient::new(cfg).unwrap();
        let info = c.token().await.unwrap();
        assert!(
            info.roles.iter().any(|r| r == "Contacts.ReadWrite"),
            "{info:?}"
        );
        c.list_contacts::<Contact>(&env.users()[0], &FolderRef::Default, SELECT)
            .await
            .unwrap();
    }
    // A certificate the app does not know: the emulator rejects the signature.
    let (other_cert, other_key, _) = rsa_cert();
    std::fs::write(&path, format!("{other_cert}{other_key}")).unwrap();
    let mut cfg = env.config();
    cfg.credential = Credential::CertificatePem(path.clone());
    let e = GraphClient::new(cfg).unwrap().token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth, "{e}");
    assert!(
        e.code.as_deref().is_some_and(|c| c.starts_with("AADSTS")),
        "{e}"
    );
}

#[tokio::test]
async fn federated_credential_is_accepted_and_a_subject_mismatch_explained() {
    let (_, _, key) = rsa_cert();
    let issuer = "https://gitlab.example.com";
    let subject = "project_path:grp/proj:ref_type:branch:ref:main";
    let mut scenario = graph_emulator::generate(&small(30, 1, 1));
    scenario.tenants[0].apps[0].federated = vec![graph_emulator::scenario::Federated {
        issuer: issuer.into(),
        subject: subject.into(),
        audience: "api://AzureADTokenExchange".into(),
        jwks_pem: key.public_key_pem(),
    }];
    let emu = graph_emulator::start(scenario.clone(), EmulatorOptions::default())
        .await
        .unwrap();
    let env = Env { emu, scenario };
    let sign = |sub: &str| {
        #[allow(
            clippy::disallowed_methods,
            reason = "the emulator checks exp against real time"
        )]
        let now = jiff::Timestamp::now().as_second();
        let claims = json!({"iss": issuer, "sub": sub, "aud": "api://AzureADTokenExchange",
                            "nbf": now - 10, "iat": now - 10, "exp": now + 600});
        let ek = jsonwebtoken::EncodingKey::from_rsa_pem(key.serialize_pem().as_bytes()).unwrap();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &ek,
        )
        .unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id_token");
    std::fs::write(&path, sign(subject)).unwrap();
    let mut cfg = env.config();
    cfg.credential = crate::auth_flows::from_file(path.clone());
    let c = GraphClient::new(cfg).unwrap();
    c.list_contacts::<Contact>(&env.users()[0], &FolderRef::Default, SELECT)
        .await
        .unwrap();

    std::fs::write(
        &path,
        sign("project_path:grp/proj:ref_type:branch:ref:feature"),
    )
    .unwrap();
    let mut cfg = env.config();
    cfg.credential = crate::auth_flows::from_file(path);
    let e = GraphClient::new(cfg).unwrap().token().await.unwrap_err();
    assert_eq!(e.code.as_deref(), Some("AADSTS70021"), "{e}");
    assert!(e.message.contains("federated identity credential"), "{e}");
}

#[tokio::test]
async fn retry_after_is_honoured_in_real_time_per_the_emulator_clock() {
    // Real clock here: the emulator's `earlyRetries` counts repeats sent before Retry-After
    // passed on its own clock, which virtual time would (rightly) trip.
    let env = Env::start(
        small(31, 1, 2),
        EmulatorOptions {
            faults: Some(plan(json!({"rules": [
                {"match": {"method": "GET", "path": "/v1.0/users/*/contacts"}, "nth": 1,
                 "action": {"status": 429, "retryAfter": 1}},
                {"match": {"method": "POST", "path": "/v1.0/users/*/contactFolders/*/contacts"}, "nth": 2,
                 "action": {"status": 429, "retryAfter": 1}}]}))),
            ..Default::default()
        },
    )
    .await;
    let c = env.client();
    let u = env.users()[0].clone();
    let f = FolderRef::Id(c.create_contact_folder(&u, "Other").await.unwrap().id);
    let (read, writes) = tokio::join!(
        c.list_contacts::<Contact>(&u, &FolderRef::Default, SELECT),
        c.execute_writes::<Contact>(&u, creates(&f, 3, "rt"))
    );
    assert_eq!(read.unwrap().len(), 2);
    assert!(writes.iter().all(Result::is_ok), "{writes:?}");
    let st = env.emu.stats();
    let mb = &st.by_mailbox[&u.to_lowercase()];
    assert_eq!(st.throttled, 2, "{st:?} {:?}", c.stats());
    assert_eq!(mb.early_retries, 0, "{st:?}");
}
