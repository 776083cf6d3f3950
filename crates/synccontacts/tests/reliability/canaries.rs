//! I7 over the real binary: the client secret and every access token the emulator issued never
//! appear — raw, URL-encoded or base64 — in stdout, stderr at the most verbose level (text and
//! JSON logs), the JSON report or the JUnit file, on a run that goes through the error paths (a revoked token's
//! 401, throttling, an ambiguous create, a dropped update, a 412). The access tokens are learnt
//! by a recording TCP proxy between the binary and the emulator, so the test knows exactly what
//! the binary held. I8 rides along: the dry run writes nothing and predicts the real run.

use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::harness::{self, SECRET, TENANT};
use crate::kit;

/// A TCP proxy to `target` that records everything the server sent.
struct Recorder {
    url: String,
    from_server: Arc<Mutex<Vec<u8>>>,
}

impl Recorder {
    async fn start(target: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let from_server = Arc::new(Mutex::new(Vec::new()));
        let rec = from_server.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let rec = rec.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let _ = tokio::io::copy(&mut cr, &mut sw).await;
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            match sr.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    rec.lock().unwrap().extend_from_slice(&buf[..n]);
                                    if cw.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Self { url, from_server }
    }

    /// Every `access_token` the server handed out.
    fn access_tokens(&self) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.from_server.lock().unwrap()).into_owned();
        text.split("\"access_token\":\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_or_access_token_in_any_output_of_a_faulty_run_at_trace_level() {
    let emu = kit::start(crate::crash::crash_scenario()).await;
    let proxy = Recorder::start(emu.inner.addr()).await;
    let vars = |batch: bool| {
        vec![
            harness::var("AUTOMATION_SYNCCONTACTS_LOGIN_URL", proxy.url.clone()),
            harness::var("AUTOMATION_SYNCCONTACTS_GRAPH_URL", proxy.url.clone()),
            harness::var("AUTOMATION_SYNCCONTACTS_BATCH", batch.to_string()),
            harness::var(
                "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
                json!([harness::tenant_entry(TENANT, SECRET)]).to_string(),
            ),
        ]
    };

    let dir = tempfile::tempdir().unwrap();
    let junit_dry = dir.path().join("dry.xml");
    let junit_real = dir.path().join("real.xml");
    // I8: the dry run writes nothing; its plan is what the real run does.
    let dry = harness::sync(
        &vars(false),
        &["--dry-run", "-vvv", "--junit", junit_dry.to_str().unwrap()],
    )
    .await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(emu.writes(), 0, "the dry run wrote");

    emu.inner.set_faults(kit::plan(
        3,
        vec![
            json!({"match": {"path": "/v1.0/users/**"}, "nth": 6, "action": {"expireToken": true}}),
            json!({"match": {"path": "/v1.0/users/**"}, "nth": 8,
                   "action": {"status": 429, "retryAfter": 0.2}}),
            json!({"match": {"method": "POST", "path": "/v1.0/users/*/contacts"}, "nth": 2,
                   "action": {"status": 504, "afterApply": true}}),
            json!({"match": {"method": "PATCH"}, "nth": 1, "action": {"drop": "after"}}),
        ],
    ));
    let real = harness::sync(
        &vars(false),
        &["-vvv", "--junit", junit_real.to_str().unwrap()],
    )
    .await;
    assert_eq!(
        real.code, 1,
        "the ambiguous create makes it partial: {}",
        real.stderr
    );
    assert_eq!(
        dry.action_keys(),
        real.action_keys(),
        "the dry run did not predict the real run"
    );
    emu.inner.set_faults(kit::plan(0, vec![]));
    let json_logs = harness::sync(&vars(true), &["-vvv", "--log-format", "json"]).await;
    assert_eq!(json_logs.code, 0, "{}", json_logs.stderr);
    let check = harness::run(&vars(false), &["-vvv", "check"]).await;

    let tokens = proxy.access_tokens();
    assert!(
        tokens.len() >= 4,
        "each run gets a token, the 401 one more: {tokens:?}"
    );
    assert!(
        real.stderr.contains("TRACE") || real.stderr.contains("DEBUG"),
        "not the most verbose level: {}",
        &real.stderr[..real.stderr.len().min(500)]
    );
    let mut canaries: Vec<&str> = tokens.iter().map(String::as_str).collect();
    canaries.push(SECRET);
    for (name, r) in [
        ("dry", &dry),
        ("faulty", &real),
        ("json logs", &json_logs),
        ("check", &check),
    ] {
        kit::assert_no_canary(&r.all_output(), &canaries, name);
    }
    for path in [&junit_dry, &junit_real] {
        let xml = std::fs::read_to_string(path).expect("the JUnit file was written");
        assert!(xml.contains("<testcase"), "{xml}");
        kit::assert_no_canary(&xml, &canaries, &path.display().to_string());
    }
    kit::assert_no_duplicates(&emu, "canary runs");
}
