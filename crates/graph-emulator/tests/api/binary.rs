//! The `graph-emulator` binary (EMULATOR.md §1).

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
