//! Runs the real `synccontacts sync` binary as a child process against the emulator and measures
//! it from outside: wall time, CPU time, peak RSS, the emulator's CPU over the same span, and the
//! sizes of what it left behind (stdout, the JSON report, the state file).
//!
//! It never reads synccontacts' internals and never changes the tenant; what the run did to the
//! tenant is read from the emulator's stats by the caller.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

/// The hub mailbox of every generated tenant.
pub const HUB: &str = "hub@contoso.com";

fn exe() -> &'static str {
    env!("CARGO_BIN_EXE_synccontacts")
}

/// Whether this synccontacts build takes `sync --state PATH` (probed once from its help, so the
/// benchmark runs before and after the state store is wired in).
pub fn supports_state() -> bool {
    Command::new(exe())
        .args(["sync", "--help"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("--state"))
        .unwrap_or(false)
}

/// How to reach the tenant, and what else to give synccontacts.
pub struct SyncEnv {
    pub url: String,
    pub wrap: Option<String>,
    pub extra: Vec<(String, String)>,
    pub tenant: String,
    pub client_id: String,
    pub secret: String,
    /// `--state PATH`, when the build supports it.
    pub state: Option<PathBuf>,
    /// The child's working directory (the bench's own directory, so nothing the binary writes by
    /// default lands in the repository).
    pub cwd: PathBuf,
}

/// Where one run's files go.
pub struct RunFiles {
    pub report: PathBuf,
    pub stdout: PathBuf,
    /// stderr (logs).
    pub log: PathBuf,
}

/// What the process measurement saw.
pub struct ProcessMeasure {
    pub exit_code: Option<i32>,
    pub wall_s: f64,
    pub cpu_s: f64,
    pub peak_rss_kib: u64,
    pub emulator_cpu_s: f64,
    pub stdout_bytes: u64,
    pub report_bytes: Option<u64>,
    /// The state file and its SQLite companions (`-wal`, `-shm`, `-journal`), if any.
    pub state_bytes: Option<u64>,
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Fields of `/proc/<pid>/stat` after the command name (field 3 onwards, 0-based here).
fn proc_stat(pid: &str) -> Option<Vec<u64>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// utime + stime of a live process, and cutime + cstime (its reaped children), in ticks.
fn cpu_ticks(pid: &str) -> (u64, u64) {
    // After the name: state(0) ppid … utime(11) stime(12) cutime(13) cstime(14).
    match proc_stat(pid) {
        Some(f) if f.len() > 14 => (f[11] + f[12], f[13] + f[14]),
        _ => (0, 0),
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn file_len(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.len())
}

/// Bytes of a SQLite database with its companion files; `None` if there is no database.
pub fn state_bytes(path: &Path) -> Option<u64> {
    let main = file_len(path)?;
    let companions: u64 = ["-wal", "-shm", "-journal"]
        .iter()
        .filter_map(|suffix| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            file_len(Path::new(&p))
        })
        .sum();
    Some(main + companions)
}

/// Removes a state file and its companions (a fresh state for a run, or a chain's leftover in a
/// `--keep` directory).
pub fn remove_state(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(Path::new(&p));
    }
}

/// Runs `synccontacts sync` and measures it: wall time around the child, CPU time as the growth
/// of this process's reaped-children time across its wait (only this child is reaped in between),
/// peak RSS by sampling `VmHWM` (a high-water mark, so sampling loses at most the last interval's
/// growth), the emulator's CPU over the same span, and the bytes it wrote to stdout (a file, so
/// the count is exact), to its report and to its state.
pub fn measure(
    env: &SyncEnv,
    files: &RunFiles,
    emulator_pid: u32,
) -> anyhow::Result<ProcessMeasure> {
    let ticks = clock_ticks();
    let emu_pid = emulator_pid.to_string();
    let mut cmd = match &env.wrap {
        Some(w) => {
            let mut parts = w.split_whitespace();
            let mut c = Command::new(parts.next().unwrap_or("env"));
            c.args(parts).arg(exe());
            c
        }
        None => Command::new(exe()),
    };
    for (k, _) in std::env::vars() {
        if k.starts_with("AUTOMATION_SYNCCONTACTS_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(["sync", "--no-progress", "--report"])
        .arg(&files.report);
    if let Some(state) = &env.state {
        cmd.arg("--state").arg(state);
    }
    cmd.current_dir(&env.cwd)
        .env("AUTOMATION_SYNCCONTACTS_TENANT_ID", &env.tenant)
        .env("AUTOMATION_SYNCCONTACTS_CLIENT_ID", &env.client_id)
        .env("AUTOMATION_SYNCCONTACTS_CLIENT_SECRET", &env.secret)
        .env("AUTOMATION_SYNCCONTACTS_GLOBAL_ADDRESS_BOOK_USER_ID", HUB)
        .env("AUTOMATION_SYNCCONTACTS_LOGIN_URL", &env.url)
        .env("AUTOMATION_SYNCCONTACTS_GRAPH_URL", &env.url)
        .envs(env.extra.iter().map(|(k, v)| (k, v)))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::fs::File::create(&files.stdout)?))
        .stderr(Stdio::from(std::fs::File::create(&files.log)?));
    let (_, children_before) = cpu_ticks("self");
    let (emu_before, _) = cpu_ticks(&emu_pid);
    let started = Instant::now();
    let mut child = cmd.spawn().context("starting synccontacts")?;
    let pid = child.id();
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(v) = vm_hwm_kib(pid) {
                    peak.fetch_max(v, Ordering::Relaxed);
                }
                #[allow(
                    clippy::disallowed_methods,
                    reason = "a real-time sampler of a real process"
                )]
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let status = child.wait()?;
    let wall_s = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let (_, children_after) = cpu_ticks("self");
    let (emu_after, _) = cpu_ticks(&emu_pid);
    Ok(ProcessMeasure {
        exit_code: status.code(),
        wall_s,
        cpu_s: children_after.saturating_sub(children_before) as f64 / ticks,
        peak_rss_kib: peak.load(Ordering::Relaxed),
        emulator_cpu_s: emu_after.saturating_sub(emu_before) as f64 / ticks,
        stdout_bytes: file_len(&files.stdout).unwrap_or(0),
        report_bytes: file_len(&files.report),
        state_bytes: env.state.as_deref().and_then(state_bytes),
    })
}
