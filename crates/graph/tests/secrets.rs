//! docs/reliability.md I7: secrets never appear in logs, errors or Debug output. A canary client
//! secret and canary access tokens go through 401s, 429s and errors whose server text echoes the
//! token; every captured byte is scanned for them raw, URL-encoded and base64-encoded.
//!
//! A test binary of its own with a *global* subscriber: with a thread-scoped one (in the shared
//! `it` binary) this test lost its own log lines now and then while other tests ran on other
//! threads, so "no canary in the logs" was sometimes checked against nearly empty logs.

use std::io::Write;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use graph::{Credential, FolderRef, GraphClient, Secret, VirtualClock, WriteRequest};
use serde_json::json;

#[path = "it/contact.rs"]
#[allow(dead_code)] // shared with the `it` binary, which uses all of it
mod contact;
#[path = "it/mock.rs"]
#[allow(dead_code)]
mod mock;

use graph::{ClientConfig, Endpoints};

use contact::{Contact, SELECT};
use mock::{Answer, Mock};

const SECRET: &str = "canary-secret-7f3a9c2e1b";

fn config(url: &str, clock: Arc<VirtualClock>, cred: Credential) -> ClientConfig {
    let ep = Endpoints::new(url, url).unwrap();
    let mut cfg = ClientConfig::new("contoso.com", "app-1", cred, ep);
    cfg.clock = clock;
    cfg.seed = 1;
    cfg
}

/// A federated credential read from a file at each token request.
fn from_file(path: std::path::PathBuf) -> Credential {
    Credential::Federated(graph::AssertionSource::new(
        format!("file {}", path.display()),
        move || {
            std::fs::read_to_string(&path)
                .map(Secret::new)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        },
    ))
}

const ACCESS: &str = "canary-access-token-55e1d0";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn forms(s: &str) -> Vec<String> {
    vec![
        s.to_owned(),
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect(),
        base64::engine::general_purpose::STANDARD.encode(s),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s),
    ]
}

fn assert_no_canary(haystack: &str, canaries: &[&str]) {
    for c in canaries {
        for f in forms(c) {
            assert!(
                !haystack.contains(&f),
                "secret {c:?} leaked as {f:?}:\n{haystack}"
            );
        }
    }
}

#[tokio::test]
async fn no_secret_in_logs_errors_or_debug() {
    let cap = Capture::default();
    let cap2 = cap.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || cap2.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");

    let clock = Arc::new(VirtualClock::default());
    let m = Mock::start(clock.clone(), 3599, |s, seen| {
        let n = seen.iter().filter(|x| x.is_token()).count();
        if s.is_token() {
            return Answer::json(200, json!({"token_type": "Bearer", "expires_in": 3599,
                "access_token": format!("{ACCESS}-{n}")}));
        }
        let auth = s.header("authorization").unwrap_or("").to_owned();
        let graph_n = seen.iter().filter(|x| !x.is_token()).count();
        match graph_n {
            1 => Answer::error(401, "InvalidAuthenticationToken"),
            2 | 3 => Answer::error(429, "ApplicationThrottled").with_header("Retry-After", "1"),
            // A hostile/buggy server echoing the bearer token and the secret in its message.
            _ => Answer::json(403, json!({"error": {"code": "ErrorAccessDenied",
                "message": format!("denied for {auth} secret={SECRET} {}", url::form_urlencoded::byte_serialize(SECRET.as_bytes()).collect::<String>())}})),
        }
    })
    .await;
    let cfg = config(&m.url, clock, Credential::Secret(Secret::new(SECRET)));
    let cfg_debug = format!("{cfg:?}");
    let c = GraphClient::new(cfg).unwrap();
    let e = c
        .list_contacts::<Contact>("a@x", &FolderRef::Default, SELECT)
        .await
        .unwrap_err();
    let writes = c
        .execute_writes::<Contact>(
            "a@x",
            vec![WriteRequest::create(
                FolderRef::Default,
                json!({"displayName": "x"}),
            )],
        )
        .await;
    let info = c.token().await.unwrap();

    // Certificate and federated credentials through the same capture.
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["canary".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let key_pem = key.serialize_pem();
    let key_body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("app.pem");
    std::fs::write(&pem_path, format!("{}{key_pem}", cert.pem())).unwrap();
    let fed_path = dir.path().join("id_token");
    const FED: &str = "canary-federated-token-0c9d8e";
    std::fs::write(&fed_path, FED).unwrap();
    let clock2 = Arc::new(VirtualClock::default());
    // This server echoes the bearer token (the only secret these clients send to Graph).
    let m2 = Mock::start(clock2.clone(), 3599, |s, seen| {
        let n = seen.iter().filter(|x| x.is_token()).count();
        if s.is_token() {
            return Answer::json(200, json!({"token_type": "Bearer", "expires_in": 3599,
                "access_token": format!("{ACCESS}-c{n}")}));
        }
        let auth = s.header("authorization").unwrap_or("").to_owned();
        Answer::json(403, json!({"error": {"code": "ErrorAccessDenied", "message": format!("denied for {auth}")}}))
    })
    .await;
    let mut assertions = Vec::new();
    for cred in [Credential::CertificatePem(pem_path), from_file(fed_path)] {
        let cfg = config(&m2.url, clock2.clone(), cred);
        all_debug_push(&mut assertions, format!("{cfg:?}"));
        let c = GraphClient::new(cfg).unwrap();
        let e = c
            .list_contacts::<Contact>("b@x", &FolderRef::Default, SELECT)
            .await
            .unwrap_err();
        all_debug_push(&mut assertions, format!("{c:?} {e:?} {e}"));
    }
    let signed: Vec<String> = m2
        .token_requests()
        .iter()
        .filter_map(|t| t.form().get("client_assertion").cloned())
        .collect();
    assert_eq!(signed.len(), 2, "both credentials were used");

    let mut all = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    all.push_str(&assertions.join("\n"));
    all.push_str(&cfg_debug);
    all.push_str(&format!("{c:?} {e:?} {e} {writes:?} {info:?}"));
    assert!(all.contains("retrying"), "logs were captured: {all}");
    assert!(all.contains("ErrorAccessDenied"));
    assert!(e.message.contains("[REDACTED]"), "{e}");
    let t1 = format!("{ACCESS}-1");
    let t2 = format!("{ACCESS}-2");
    let first_key_line = key_pem.lines().nth(1).unwrap().to_owned();
    assert_no_canary(
        &all,
        &[
            SECRET,
            &t1,
            &t2,
            &format!("{ACCESS}-c1"),
            &format!("{ACCESS}-c2"),
            FED,
            &signed[0],
            &key_body,
            &first_key_line,
        ],
    );
}

fn all_debug_push(v: &mut Vec<String>, s: String) {
    v.push(s);
}
