//! Build script: stamps the commit the binary was built from into `SYNCCONTACTS_COMMIT_ID`, read
//! by `src/version.rs` (`synccontacts --version`, the User-Agent).
//!
//! Order: an explicit `SYNCCONTACTS_COMMIT` (a packager who knows better), then `git rev-parse`
//! of the checkout being built, then GitLab's `CI_COMMIT_SHORT_SHA` (a build from a source archive
//! inside a pipeline), else `unknown`. It must never fail the build: no git, no repository, a
//! detached or shallow clone all end in a value.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=SYNCCONTACTS_COMMIT");
    println!("cargo:rerun-if-env-changed=CI_COMMIT_SHORT_SHA");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());

    let commit = non_empty(std::env::var("SYNCCONTACTS_COMMIT").ok())
        .or_else(|| git_commit(&manifest_dir))
        .or_else(|| non_empty(std::env::var("CI_COMMIT_SHORT_SHA").ok()))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SYNCCONTACTS_COMMIT_ID={commit}");
}

fn non_empty(s: Option<String>) -> Option<String> {
    let s = s?.trim().to_owned();
    // Only what can safely sit in a header value and a version line.
    (!s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c)))
    .then_some(s)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The short hash of HEAD, and rerun-if-changed on the files that move when HEAD moves (HEAD
/// itself, the branch's ref, packed-refs), resolved through `git rev-parse --git-path` so that
/// worktrees (whose `.git` is a file) work too. Only existing paths are registered: cargo treats a
/// missing one as always stale and would rebuild this crate on every build.
fn git_commit(dir: &Path) -> Option<String> {
    let commit = non_empty(git(dir, &["rev-parse", "--short=8", "HEAD"]))?;
    let mut watch = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(r) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(r);
    }
    for p in watch {
        if let Some(path) = git(
            dir,
            &["rev-parse", "--path-format=absolute", "--git-path", &p],
        ) && Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    Some(commit)
}
