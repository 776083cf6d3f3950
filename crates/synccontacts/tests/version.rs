//! `synccontacts --version`: the line CI jobs and bug reports quote, naming the version and the
//! commit the binary was built from (stamped by `build.rs`).

use std::process::Command;

#[test]
fn version_names_the_crate_version_and_the_commit() {
    let out = Command::new(env!("CARGO_BIN_EXE_synccontacts"))
        .arg("--version")
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    let expected = format!(
        "synccontacts {} (commit {})\n",
        env!("CARGO_PKG_VERSION"),
        synccontacts::version::COMMIT
    );
    assert_eq!(line, expected);
}

/// Built from a git checkout without an explicit `SYNCCONTACTS_COMMIT`, the commit is HEAD's.
#[test]
fn the_commit_is_heads_when_built_from_a_checkout() {
    if option_env!("SYNCCONTACTS_COMMIT").is_some_and(|s| !s.trim().is_empty()) {
        return; // an explicit override wins by design (build.rs)
    }
    let Ok(head) = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=8",
            "HEAD",
        ])
        .output()
    else {
        return; // no git here: build.rs fell back too
    };
    if !head.status.success() {
        return; // not a checkout (a source archive)
    }
    let head = String::from_utf8(head.stdout).unwrap();
    assert_eq!(synccontacts::version::COMMIT, head.trim());
}
