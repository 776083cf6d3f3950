//! The `graph-emulator` binary (crates/graph-emulator/README.md, "Binary").

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_graph-emulator");

#[tokio::test]
async fn serve_prints_exactly_the_listening_line_and_serves() {
    let dir = std::env::temp_dir().join(format!("graph-emulator-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scenario.json");
    std::fs::write(&file, crate::common::fixture_json().to_string()).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--scenario"])
        .arg(&file)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .strip_suffix('\n')
        .and_then(|l| l.strip_prefix("listening on "))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    let resp = reqwest::get(format!("{url}/_emulator/stats"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn generate_is_deterministic_and_serves_back() {
    let run = |seed: &str| {
        let out = Command::new(BIN)
            .args([
                "generate",
                "--users",
                "3",
                "--contacts-per-user",
                "4",
                "--pool",
                "6",
                "--edits",
                "0.5",
                "--seed",
                seed,
            ])
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let a = run("7");
    assert_eq!(a, run("7"), "same seed, same bytes");
    assert_ne!(a, run("8"));
    graph_emulator::Scenario::from_json(&a).expect("generated scenario parses strictly");
}

#[test]
fn serve_rejects_an_unknown_field_naming_its_path() {
    let dir = std::env::temp_dir().join(format!("graph-emulator-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.json");
    std::fs::write(
        &file,
        r#"{"tenants":[{"tenantId":"t","apps":[{"clientId":"c","clientSecrt":"x"}]}]}"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--scenario"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tenants[0].apps[0]"), "{err}");
    assert!(err.contains("clientSecrt"), "{err}");
    assert!(out.stdout.is_empty());
    std::fs::remove_dir_all(&dir).ok();
}

#[cfg(unix)]
#[test]
fn serve_exits_cleanly_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("graph-emulator-term-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scenario.json");
    std::fs::write(&file, crate::common::fixture_json().to_string()).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--scenario"])
        .arg(&file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("listening on http://127.0.0.1:"),
        "{line:?}"
    );
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "clean exit on SIGTERM, got {exit:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn generate_private_marks_a_share_and_serve_refuses_an_unknown_variant() {
    let out = Command::new(BIN)
        .args([
            "generate",
            "--users",
            "4",
            "--contacts-per-user",
            "10",
            "--private",
            "0.5",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"Private\""), "by category");
    assert!(text.contains("Integer 0x0036"), "by flag");
    graph_emulator::Scenario::from_json(&text).unwrap();

    let dir = std::env::temp_dir().join(format!("graph-emulator-var-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scenario.json");
    std::fs::write(&file, crate::common::fixture_json().to_string()).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--variant", "no-such-thing", "--scenario"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no-such-thing") && err.contains("delta-replays"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_help_text_is_complete_and_self_contained() {
    let help = |sub: &[&str], flag: &str| {
        let out = Command::new(BIN).args(sub).arg(flag).output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    for sub in [&[][..], &["serve"], &["generate"], &["env"]] {
        let text = help(sub, "--help");
        // The path of the documents outside the repository, spelled so that a search for
        // references to it does not find this test.
        let outside = ["..", "shared"].join("/");
        for forbidden in ["EMULATOR.md", "§", &outside, "SPEC", "graph-facts"] {
            assert!(
                !text.contains(forbidden),
                "{sub:?} mentions {forbidden}:\n{text}"
            );
        }
        // Every option and subcommand line of the one-line-per-item form (-h) carries a
        // description after its name.
        let text = help(sub, "-h");
        for line in text.lines() {
            let t = line.trim_start();
            if t.starts_with('-')
                || (line.starts_with("  ") && !line.starts_with("   ") && !t.is_empty())
            {
                let parts: Vec<&str> = t.split("  ").filter(|p| !p.trim().is_empty()).collect();
                assert!(
                    parts.len() >= 2,
                    "{sub:?}: no description in {line:?}\n{text}"
                );
            }
        }
    }
}

#[tokio::test]
async fn env_prints_lines_that_reach_the_emulator() {
    let scenario = graph_emulator::generate(&graph_emulator::GenerateOptions::default());
    let dir = std::env::temp_dir().join(format!("graph-emulator-env-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scenario.json");
    std::fs::write(&file, scenario.to_json_pretty()).unwrap();
    let emu = graph_emulator::start(scenario, graph_emulator::EmulatorOptions::default())
        .await
        .unwrap();
    let out = Command::new(BIN)
        .args(["env", "--scenario"])
        .arg(&file)
        .args(["--url", &emu.url()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let vars: std::collections::HashMap<String, String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l
                .strip_prefix("export AUTOMATION_SYNCCONTACTS_")
                .unwrap_or_else(|| panic!("{l}"))
                .split_once('=')
                .unwrap();
            (k.to_owned(), v.trim_matches('\'').to_owned())
        })
        .collect();
    assert_eq!(vars.len(), 6, "{vars:?}");
    // What synccontacts does with them: a token from LOGIN_URL, then the hub's folders at GRAPH_URL.
    let form = crate::common::form_body(&[
        ("grant_type", "client_credentials"),
        ("client_id", &vars["CLIENT_ID"]),
        ("client_secret", &vars["CLIENT_SECRET"]),
        ("scope", crate::common::GRAPH_SCOPE),
    ]);
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!(
            "{}/{}/oauth2/v2.0/token",
            vars["LOGIN_URL"], vars["TENANT_ID"]
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().expect("a token");
    let r = http
        .get(format!(
            "{}/v1.0/users/{}/contactFolders",
            vars["GRAPH_URL"], vars["GLOBAL_ADDRESS_BOOK_USER_ID"]
        ))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    std::fs::remove_dir_all(&dir).ok();
}

/// `serve` with extra arguments on the fixture; returns the child and its URL.
fn serve_fixture(tag: &str, extra: &[&str]) -> (std::process::Child, String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("graph-emulator-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("scenario.json");
    std::fs::write(&file, crate::common::fixture_json().to_string()).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--scenario"])
        .arg(&file)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, url, dir)
}

/// Creates a contact in Adele's mailbox and reads it back: (changeKey created, changeKey read).
async fn create_and_read(url: &str) -> (serde_json::Value, serde_json::Value) {
    use crate::common::{GRAPH_SCOPE, SECRET, TENANT, form_body};
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{url}/{TENANT}/oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app-full"),
            ("client_secret", SECRET),
            ("scope", GRAPH_SCOPE),
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    let contacts = format!("{url}/v1.0/users/adele@contoso.com/contacts");
    let created: serde_json::Value = http
        .post(&contacts)
        .bearer_auth(token)
        .json(&serde_json::json!({"displayName": "Bin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let read: serde_json::Value = http
        .get(format!("{contacts}/{id}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (created["changeKey"].clone(), read["changeKey"].clone())
}

#[tokio::test]
async fn serve_plays_the_change_key_bump_with_its_delay_option() {
    let (mut now, url, dir) = serve_fixture("bump", &["--variant", "change-key-bump"]);
    let (created, read) = create_and_read(&url).await;
    assert_ne!(created, read, "bumped before the next request");
    now.kill().unwrap();
    now.wait().unwrap();
    std::fs::remove_dir_all(&dir).ok();

    let (mut later, url, dir) = serve_fixture(
        "bump-later",
        &[
            "--variant",
            "change-key-bump",
            "--change-key-bump-delay-ms",
            "600000",
        ],
    );
    let (created, read) = create_and_read(&url).await;
    assert_eq!(created, read, "not due for ten minutes");
    later.kill().unwrap();
    later.wait().unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
