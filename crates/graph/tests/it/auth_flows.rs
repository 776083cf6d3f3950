//! Certificate and federated credentials end to end against the mock token endpoint.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use graph::{
    AssertionAlgorithm, AssertionSource, Credential, ErrorKind, FolderRef, GraphClient, Secret,
    VirtualClock,
};
use serde_json::json;

use crate::contact::{Contact, SELECT};

use crate::mock::{Answer, Mock, pass};
use crate::mock_client::config;

fn cert_pem() -> (String, String) {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["synccontacts".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    (
        format!("{}{}", key.serialize_pem(), cert.pem()),
        key.public_key_pem(),
    )
}

#[tokio::test]
async fn certificate_credential_sends_a_verifiable_assertion() {
    let (pem, public) = cert_pem();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pem");
    std::fs::write(&path, &pem).unwrap();
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            pass()
        } else {
            Answer::json(200, json!({"value": []}))
        }
    })
    .await;
    for alg in [AssertionAlgorithm::Ps256, AssertionAlgorithm::Rs256] {
        let mut cfg = config(
            &m.url,
            clock.clone(),
            Credential::CertificatePem(path.clone()),
        );
        cfg.assertion_algorithm = alg;
        let c = GraphClient::new(cfg).unwrap();
        c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
            .await
            .unwrap();
    }
    let toks = m.token_requests();
    assert_eq!(toks.len(), 2);
    let token_url = format!("{}/contoso.com/oauth2/v2.0/token", m.url);
    let mut jtis = Vec::new();
    for (t, alg) in toks.iter().zip([
        jsonwebtoken::Algorithm::PS256,
        jsonwebtoken::Algorithm::RS256,
    ]) {
        let f = t.form();
        assert!(!f.contains_key("client_secret"));
        assert_eq!(
            f["client_assertion_type"],
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
        );
        let jwt = &f["client_assertion"];
        let dk = jsonwebtoken::DecodingKey::from_rsa_pem(public.as_bytes()).unwrap();
        let mut v = jsonwebtoken::Validation::new(alg);
        v.set_audience(&[token_url.as_str()]);
        v.set_issuer(&["app-1"]);
        v.validate_exp = false; // virtual clock is in 2026-11; the real one may differ
        v.validate_nbf = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(jwt, &dk, &v).unwrap();
        assert_eq!(data.claims["sub"], "app-1");
        assert_eq!(
            data.claims["exp"].as_i64().unwrap() - data.claims["nbf"].as_i64().unwrap(),
            600
        );
        assert_eq!(data.claims["nbf"].as_i64().unwrap(), clock_now(&clock));
        assert!(data.header.x5t_s256.is_some());
        jtis.push(data.claims["jti"].as_str().unwrap().to_owned());
    }
    assert_ne!(jtis[0], jtis[1], "jti is unique per assertion");
}

fn clock_now(c: &VirtualClock) -> i64 {
    use graph::Clock;
    c.now().as_second()
}

#[tokio::test]
async fn unreadable_certificate_is_a_config_error_before_any_request() {
    let e = GraphClient::new(config(
        "http://127.0.0.1:9",
        Arc::new(VirtualClock::default()),
        Credential::CertificatePem("/nonexistent/app.pem".into()),
    ))
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Config);
    assert!(e.message.contains("/nonexistent/app.pem"), "{e}");
}

/// A federated credential read from a file at every token request, as a caller would build it.
pub fn from_file(path: PathBuf) -> Credential {
    Credential::Federated(AssertionSource::new(
        format!("file {}", path.display()),
        move || {
            std::fs::read_to_string(&path)
                .map(Secret::new)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        },
    ))
}

#[tokio::test]
async fn federated_assertion_is_read_fresh_at_each_token_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("id_token");
    std::fs::write(&path, "fed-token-one\n").unwrap();
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, _| {
        if s.is_token() {
            pass()
        } else if s.header("authorization") == Some("Bearer tok-1") {
            Answer::error(401, "InvalidAuthenticationToken")
        } else {
            Answer::json(200, json!({"value": []}))
        }
    })
    .await;
    let c = GraphClient::new(config(&m.url, clock.clone(), from_file(path.clone()))).unwrap();
    // The CI runner rotates the file between token requests.
    let p2 = path.clone();
    let first = c.token().await.unwrap();
    std::fs::write(&p2, "fed-token-two").unwrap();
    c.list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap();
    let toks = m.token_requests();
    assert_eq!(toks.len(), 2);
    // Trimmed before it is sent.
    assert_eq!(toks[0].form()["client_assertion"], "fed-token-one");
    assert_eq!(toks[1].form()["client_assertion"], "fed-token-two");
    assert!(first.roles.is_empty());

    // An empty token is an Auth error naming the source, and sends nothing.
    std::fs::write(&path, "  \n").unwrap();
    let c = GraphClient::new(config(&m.url, clock.clone(), from_file(path.clone()))).unwrap();
    let e = c.token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert!(e.message.contains("id_token"), "{e}");
    assert!(e.message.contains("empty"), "{e}");
    assert_eq!(m.token_requests().len(), 2);
}

#[tokio::test]
async fn an_assertion_source_that_fails_sends_nothing_and_says_why() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |_, _| pass()).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let source = AssertionSource::new("the test's source", move || {
        counted.fetch_add(1, Ordering::SeqCst);
        Err("no token here: the caller's own words".to_owned())
    });
    assert!(format!("{source:?}").contains("the test's source"));
    let c = GraphClient::new(config(&m.url, clock, Credential::Federated(source))).unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "not read before a token is needed"
    );
    for _ in 0..2 {
        let e = c.token().await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Auth);
        assert!(e.message.contains("the caller's own words"), "{e}");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "asked again at each token request"
    );
    assert!(m.seen().is_empty());
}

#[tokio::test]
async fn identity_platform_errors_say_what_to_fix() {
    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |_, _| {
        Answer::json(
            401,
            json!({"error": "invalid_client",
                   "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: tr-1\r\nCorrelation ID: co-1",
                   "error_codes": [7000215], "trace_id": "tr-1", "correlation_id": "co-1"}),
        )
    })
    .await;
    let c = GraphClient::new(config(
        &m.url,
        clock,
        Credential::Secret(graph::Secret::new(crate::mock_client::SECRET)),
    ))
    .unwrap();
    let e = c.licensed_users().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(e.code.as_deref(), Some("AADSTS7000215"));
    assert_eq!(e.request_id.as_deref(), Some("tr-1"));
    assert!(e.message.contains("Secret ID"), "{e}");
    assert_eq!(m.seen().len(), 1, "a refused credential is not retried");
}
