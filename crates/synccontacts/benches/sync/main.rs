//! End-to-end benchmark of `synccontacts sync` (issue 8): generates tenants with the emulator's
//! `generate`, serves them from a **separate emulator process** with latency and Graph's limits
//! on, runs the **real `synccontacts` binary** as a child process against it, and prints every
//! measurement beside the bound the data and Graph's limits allow and beside the old script's
//! cost on the same data (`model.rs`, `shape.rs`).
//!
//!     cargo bench -p synccontacts --bench sync -- [a b c d e | small | large | all | smoke]
//!         [--latency-ms 20] [--emulator-bin PATH] [--out FILE] [--keep DIR]
//!
//! The emulator process is this same binary re-executed with `--serve-emulator` (it calls the
//! library entry point `graph-emulator serve` calls, so no second binary needs building), unless
//! `--emulator-bin` names a `graph-emulator` binary. A measurement tool, not a test: it checks
//! only that each run succeeded (exit code 0) and prints what it saw; it never fails on a ratio.

mod model;
mod shape;

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use graph_emulator::{GenerateOptions, Scenario, Stats};
use model::{Bound, DataShape, Limits, OldScript};
use serde_json::Value;

#[derive(Parser, Debug)]
#[command(about = "synccontacts end-to-end benchmark against the Graph emulator")]
struct Args {
    /// Runs to measure: a b c d e (cold 50×40/1000, second run, after 5% edits; cold
    /// 1000×10/300, second run), or `small` (a b c), `large` (d e), `all`, `smoke` (a tiny chain).
    runs: Vec<String>,
    /// Service time of every Graph request in the emulator.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// A `graph-emulator` binary to serve with instead of this binary's built-in server.
    #[arg(long)]
    emulator_bin: Option<PathBuf>,
    /// Also write the results as JSON to FILE.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep scenarios, reports and logs in DIR (default: a temporary directory, removed).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Share of contact copies edited before run (c).
    #[arg(long, default_value_t = 0.05)]
    edit_share: f64,
    /// Extra environment for synccontacts, e.g. `AUTOMATION_SYNCCONTACTS_BATCH=false` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    sync_env: Vec<String>,
    /// Run synccontacts under this command (e.g. `heaptrack -o /tmp/ht`): for profiling only,
    /// its CPU and memory numbers are then the wrapper's.
    #[arg(long, value_name = "CMD")]
    wrap: Option<String>,
    /// A custom chain `x` (runs x1 cold, x2 second run): USERS,CONTACTS,POOL.
    #[arg(long, value_name = "U,C,P")]
    custom: Option<String>,
    /// `cargo bench` passes `--bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
    /// Internal: serve this scenario file and print `listening on URL` (the emulator process).
    #[arg(long, hide = true)]
    serve_emulator: Option<PathBuf>,
}

/// One chain of runs on one generated tenant.
struct Chain {
    name: &'static str,
    users: usize,
    contacts_per_user: usize,
    pool: usize,
    /// The command-line word that selects the whole chain.
    group: &'static str,
    /// Run labels in order: cold, second, and optionally edited.
    labels: &'static [&'static str],
}

const SMALL: Chain = Chain {
    name: "50 users × 40 contacts, pool 1,000",
    users: 50,
    contacts_per_user: 40,
    pool: 1000,
    group: "small",
    labels: &["a", "b", "c"],
};
const LARGE: Chain = Chain {
    name: "1,000 users × 10 contacts, pool 300",
    users: 1000,
    contacts_per_user: 10,
    pool: 300,
    group: "large",
    labels: &["d", "e"],
};
const SMOKE: Chain = Chain {
    name: "smoke: 6 users × 10 contacts, pool 30",
    users: 6,
    contacts_per_user: 10,
    pool: 30,
    group: "smoke",
    labels: &["s1", "s2", "s3"],
};

impl Chain {
    /// Whether the command line asks to report run `label` of this chain (earlier runs of a
    /// chain always run, unreported, to produce the state a later one starts from).
    fn wants(&self, wanted: &[String], label: &str) -> bool {
        wanted
            .iter()
            .any(|w| w == label || w == self.group || (w == "all" && self.group != "smoke"))
    }
}

fn describe(label: &str) -> &'static str {
    match label {
        "a" | "d" | "s1" | "x1" => "cold",
        "b" | "e" | "s2" | "x2" => "second run",
        _ => "after edits",
    }
}

const HUB: &str = "hub@contoso.com";

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
struct Measured {
    label: String,
    chain: String,
    exit_code: Option<i32>,
    /// Graph-counted: HTTP requests − batches + batch items, plus token requests.
    requests: u64,
    http_requests: u64,
    token_requests: u64,
    hub_requests: u64,
    mailbox_reads: u64,
    mailbox_writes: u64,
    batches: u64,
    batch_items: u64,
    throttled: u64,
    max_in_flight: u64,
    wall_s: f64,
    cpu_s: f64,
    peak_rss_mib: f64,
    emulator_cpu_s: f64,
    /// What the run printed on stdout (GitLab truncates a job log at 4 MB) and the report's size.
    stdout_bytes: u64,
    report_bytes: u64,
    /// The `requests` the binary's own report counts.
    report_requests: Option<u64>,
    report_summary: String,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    measured: Measured,
    bound_requests: u64,
    bound_hub_requests: u64,
    bound_mailbox_reads: u64,
    bound_mailbox_writes: u64,
    bound_wall_s: f64,
    bound_wall_hub_first_s: f64,
    old_requests: u64,
    old_hub_requests: u64,
    old_wall_s: f64,
    old_hub_throttled: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(file) = &args.serve_emulator {
        return serve_emulator(file, args.latency_ms);
    }
    let wanted: Vec<String> = if args.runs.is_empty() {
        vec!["all".into()]
    } else {
        args.runs.clone()
    };
    let mut chains: Vec<(&Chain, usize)> = Vec::new();
    let custom = match &args.custom {
        Some(spec) => {
            let n: Vec<usize> = spec
                .split(',')
                .map(|v| v.trim().parse())
                .collect::<Result<_, _>>()
                .context("--custom USERS,CONTACTS,POOL")?;
            let [users, contacts_per_user, pool] = n[..] else {
                bail!("--custom takes USERS,CONTACTS,POOL");
            };
            Some(Chain {
                name: "custom",
                users,
                contacts_per_user,
                pool,
                group: "x",
                labels: &["x1", "x2"],
            })
        }
        None => None,
    };
    for chain in [&SMALL, &LARGE, &SMOKE].into_iter().chain(custom.as_ref()) {
        if let Some(i) = chain.labels.iter().rposition(|l| chain.wants(&wanted, l)) {
            chains.push((chain, i));
        }
    }
    if chains.is_empty() {
        bail!("nothing to run: give a b c d e, small, large, all or smoke");
    }

    let tmp;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let limits = Limits {
        latency_s: args.latency_ms as f64 / 1000.0,
        ..Limits::default()
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let http = reqwest::Client::new();
    let mut rows = Vec::new();
    for (chain, upto) in chains {
        eprintln!("== {}", chain.name);
        let scenario = graph_emulator::generate(&GenerateOptions {
            users: chain.users,
            contacts_per_user: chain.contacts_per_user,
            pool: Some(chain.pool),
            edits: 0.0,
            seed: 1,
        });
        let file = dir.join(format!("{}-0.json", chain.labels[0]));
        std::fs::write(&file, scenario.to_json_pretty())?;
        let mut emu = Emulator::start(
            &args,
            &file,
            &dir.join(format!("{}-emu.log", chain.labels[0])),
        )?;
        for label in chain.labels.iter().take(upto + 1) {
            if describe(label) == "after edits" {
                // Edit a share of the copies, as users would between runs, by restarting the
                // emulator with a modified export of its state (EMULATOR.md §4).
                let state = runtime.block_on(get_state(&http, &emu.url))?;
                let edited = edit_copies(state, args.edit_share, 7);
                let f = dir.join(format!("{label}-edited.json"));
                std::fs::write(&f, edited.to_json_pretty())?;
                emu.stop();
                emu = Emulator::start(&args, &f, &dir.join(format!("{label}-emu.log")))?;
            }
            eprintln!("-- ({label}) {}", describe(label));
            let state = runtime.block_on(get_state(&http, &emu.url))?;
            let shape = shape::shape_of(&state, HUB);
            let app = &state.tenants[0].apps[0];
            let env = SyncEnv {
                url: emu.url.clone(),
                wrap: args.wrap.clone(),
                extra: args
                    .sync_env
                    .iter()
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
                tenant: state.tenants[0].tenant_id.clone(),
                client_id: app.client_id.clone(),
                secret: app.client_secret.clone().unwrap_or_default(),
            };
            drop(state);
            runtime.block_on(reset_stats(&http, &emu.url))?;
            let report = dir.join(format!("{label}-report.json"));
            let log = dir.join(format!("{label}-sync.log"));
            let m = measure(&env, &report, &log, emu.pid())?;
            let stats = runtime.block_on(get_stats(&http, &emu.url))?;
            let mut measured = combine(label, chain.name, m, &stats, &report);
            measured.stdout_bytes = std::fs::metadata(log.with_extension("stdout"))
                .map(|m| m.len())
                .unwrap_or(0);
            let row = row(measured, &shape, &limits);
            print_row(&row, &shape);
            if measured_failed(&row) {
                eprintln!("   !! the run did not exit 0; see {}", log.display());
            }
            if chain.wants(&wanted, label) {
                rows.push(row);
            }
        }
        emu.stop();
    }
    println!();
    println!("{}", table(&rows, &limits));
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&rows)?)?;
    }
    if rows.iter().any(measured_failed) {
        bail!("some runs did not exit 0");
    }
    Ok(())
}

fn measured_failed(r: &Row) -> bool {
    r.measured.exit_code != Some(0)
}

/// The emulator process.
struct Emulator {
    child: Child,
    url: String,
}

impl Emulator {
    fn start(args: &Args, scenario: &Path, log: &Path) -> anyhow::Result<Self> {
        let exe = match &args.emulator_bin {
            Some(b) => b.clone(),
            None => std::env::current_exe()?,
        };
        let mut cmd = Command::new(exe);
        if args.emulator_bin.is_some() {
            cmd.arg("serve").arg("--scenario").arg(scenario);
        } else {
            cmd.arg("--serve-emulator").arg(scenario);
        }
        cmd.arg("--latency-ms")
            .arg(args.latency_ms.to_string())
            // Per-request logs would cost the emulator CPU the benchmark wants for serving.
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(log)?));
        let mut child = cmd.spawn().with_context(|| {
            format!(
                "starting the emulator {:?} (cargo bench runs in crates/synccontacts: give \
                 --emulator-bin as an absolute path)",
                cmd.get_program()
            )
        })?;
        let stdout = child.stdout.take().context("emulator stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            bail!(
                "the emulator did not start (see {}): {line:?}",
                log.display()
            );
        };
        Ok(Emulator {
            url: url.to_owned(),
            child,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `--serve-emulator`: what `graph-emulator serve --scenario FILE --latency-ms N` does.
fn serve_emulator(file: &Path, latency_ms: u64) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let scenario = Scenario::from_file(file)?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let emu = graph_emulator::start(
            scenario,
            graph_emulator::EmulatorOptions {
                latency: Duration::from_millis(latency_ms),
                ..Default::default()
            },
        )
        .await?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {}", emu.url())?;
            out.flush()?;
        }
        // Runs until the benchmark kills this process.
        std::future::pending::<()>().await;
        Ok(())
    })
}

async fn get_state(http: &reqwest::Client, url: &str) -> anyhow::Result<Scenario> {
    let text = http
        .get(format!("{url}/_emulator/state"))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(Scenario::from_json(&text)?)
}

async fn get_stats(http: &reqwest::Client, url: &str) -> anyhow::Result<Stats> {
    Ok(http
        .get(format!("{url}/_emulator/stats"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

async fn reset_stats(http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    http.post(format!("{url}/_emulator/stats/reset"))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// Edits `share` of the user contact copies as a user would in Outlook: a new job title and a
/// `lastModifiedDateTime` newer than anything in the tenant. Deterministic in `seed`.
fn edit_copies(mut s: Scenario, share: f64, seed: u64) -> Scenario {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let newest = s.tenants[0]
        .users
        .iter()
        .flat_map(|u| u.contacts.iter())
        .filter_map(|c| {
            c.get("lastModifiedDateTime")?
                .as_str()?
                .parse::<jiff::Timestamp>()
                .ok()
        })
        .max()
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let mut n = 0i64;
    for u in s.tenants[0].users.iter_mut() {
        if u.assigned_licenses.is_empty() {
            continue;
        }
        for c in u.contacts.iter_mut() {
            if rng.random_bool(share) {
                n += 1;
                let at = newest + jiff::SignedDuration::from_secs(60 + n);
                c.insert(
                    "jobTitle".into(),
                    Value::String(format!("Edited title {n}")),
                );
                c.insert("lastModifiedDateTime".into(), Value::String(at.to_string()));
                // A user edit changes the change key; the emulator makes a new one when absent.
                c.remove("changeKey");
                c.remove("@odata.etag");
            }
        }
    }
    eprintln!("   edited {n} contact copies");
    s
}

struct SyncEnv {
    url: String,
    wrap: Option<String>,
    extra: Vec<(String, String)>,
    tenant: String,
    client_id: String,
    secret: String,
}

/// What the process measurement saw.
struct ProcessMeasure {
    exit_code: Option<i32>,
    wall_s: f64,
    cpu_s: f64,
    peak_rss_kib: u64,
    emulator_cpu_s: f64,
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

/// Runs `synccontacts sync` and measures it: wall time around the child, CPU time as the growth
/// of this process's reaped-children time across its wait (only this child is reaped in between),
/// peak RSS by sampling `VmHWM` (a high-water mark, so sampling loses at most the last interval's
/// growth), and the emulator's CPU over the same span.
fn measure(
    env: &SyncEnv,
    report: &Path,
    log: &Path,
    emulator_pid: u32,
) -> anyhow::Result<ProcessMeasure> {
    let ticks = clock_ticks();
    let emu_pid = emulator_pid.to_string();
    let exe = env!("CARGO_BIN_EXE_synccontacts");
    let mut cmd = match &env.wrap {
        Some(w) => {
            let mut parts = w.split_whitespace();
            let mut c = Command::new(parts.next().unwrap_or("env"));
            c.args(parts).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    for (k, _) in std::env::vars() {
        if k.starts_with("AUTOMATION_SYNCCONTACTS_") {
            cmd.env_remove(k);
        }
    }
    let stdout = std::fs::File::create(log.with_extension("stdout"))?;
    let log = std::fs::File::create(log)?;
    cmd.args(["sync", "--no-progress", "--report"])
        .arg(report)
        .env("AUTOMATION_SYNCCONTACTS_TENANT_ID", &env.tenant)
        .env("AUTOMATION_SYNCCONTACTS_CLIENT_ID", &env.client_id)
        .env("AUTOMATION_SYNCCONTACTS_CLIENT_SECRET", &env.secret)
        .env("AUTOMATION_SYNCCONTACTS_GLOBAL_ADDRESS_BOOK_USER_ID", HUB)
        .env("AUTOMATION_SYNCCONTACTS_LOGIN_URL", &env.url)
        .env("AUTOMATION_SYNCCONTACTS_GRAPH_URL", &env.url)
        .envs(env.extra.iter().map(|(k, v)| (k, v)))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(log));
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
    })
}

fn combine(label: &str, chain: &str, p: ProcessMeasure, s: &Stats, report: &Path) -> Measured {
    let report_bytes = std::fs::metadata(report).map(|m| m.len()).unwrap_or(0);
    let hub_requests = s
        .by_mailbox
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(HUB))
        .map(|(_, m)| m.get + m.post + m.patch + m.delete)
        .sum();
    let mailbox_reads = s.by_mailbox.values().map(|m| m.get).sum();
    let mailbox_writes = s
        .by_mailbox
        .values()
        .map(|m| m.post + m.patch + m.delete)
        .sum();
    let max_in_flight = s
        .by_mailbox
        .values()
        .map(|m| m.max_in_flight)
        .max()
        .unwrap_or(0);
    let report: Option<Value> = std::fs::read_to_string(report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let tenant = report.as_ref().and_then(|r| r["tenants"].get(0).cloned());
    let summary = tenant
        .as_ref()
        .map(|t| {
            let step = |k: &str| {
                format!(
                    "{k}: +{} ~{} stamp {} fail {}",
                    t[k]["created"], t[k]["updated"], t[k]["stamped"], t[k]["failed"]
                )
            };
            format!(
                "status {} | {} | {}",
                t["status"],
                step("step1"),
                step("step2")
            )
        })
        .unwrap_or_else(|| "no report".into());
    Measured {
        label: label.to_owned(),
        chain: chain.to_owned(),
        exit_code: p.exit_code,
        requests: s.requests - s.batches + s.batch_items + s.token_requests,
        http_requests: s.requests,
        token_requests: s.token_requests,
        hub_requests,
        mailbox_reads,
        mailbox_writes,
        batches: s.batches,
        batch_items: s.batch_items,
        throttled: s.throttled,
        max_in_flight,
        wall_s: p.wall_s,
        cpu_s: p.cpu_s,
        peak_rss_mib: p.peak_rss_kib as f64 / 1024.0,
        emulator_cpu_s: p.emulator_cpu_s,
        stdout_bytes: 0,
        report_bytes,
        report_requests: tenant.and_then(|t| t["requests"].as_u64()),
        report_summary: summary,
    }
}

fn row(measured: Measured, shape: &DataShape, limits: &Limits) -> Row {
    let b: Bound = model::bound(shape, limits);
    let o: OldScript = model::old_script(shape, limits);
    Row {
        measured,
        bound_requests: b.requests,
        bound_hub_requests: b.hub_requests,
        bound_mailbox_reads: b.mailbox_reads,
        bound_mailbox_writes: b.mailbox_writes,
        bound_wall_s: b.wall_s,
        bound_wall_hub_first_s: b.wall_hub_first_s,
        old_requests: o.requests,
        old_hub_requests: o.hub_requests,
        old_wall_s: o.wall_s,
        old_hub_throttled: o.hub_throttled,
    }
}

fn ratio(m: f64, b: f64) -> String {
    if b == 0.0 {
        if m == 0.0 {
            "1.00".into()
        } else {
            "∞".into()
        }
    } else {
        format!("{:.2}", m / b)
    }
}

fn print_row(r: &Row, d: &DataShape) {
    let m = &r.measured;
    eprintln!(
        "   data: {} users, hub {} contacts, {} copies in users; needs {} writes ({} in the hub)",
        d.users,
        d.hub_contacts,
        d.user_contacts.iter().sum::<u64>(),
        d.total_writes(),
        d.hub_writes
    );
    eprintln!(
        "   exit {:?} | {} | report requests {:?}",
        m.exit_code, m.report_summary, m.report_requests
    );
    eprintln!(
        "   requests {} (bound {}, ×{}), hub {} (bound {}), wall {:.2}s (bound {:.2}s, ×{}), cpu {:.2}s, rss {:.0} MiB, emulator cpu {:.2}s, throttled {}, stdout {} B, report {} B",
        m.requests,
        r.bound_requests,
        ratio(m.requests as f64, r.bound_requests as f64),
        m.hub_requests,
        r.bound_hub_requests,
        m.wall_s,
        r.bound_wall_s,
        ratio(m.wall_s, r.bound_wall_s),
        m.cpu_s,
        m.peak_rss_mib,
        m.emulator_cpu_s,
        m.throttled,
        m.stdout_bytes,
        m.report_bytes
    );
}

/// The Markdown table BENCHMARKS.md carries.
fn table(rows: &[Row], l: &Limits) -> String {
    let mut t = String::new();
    t.push_str(&format!(
        "Latency {} ms per Graph request; limits: {} in flight per mailbox, {} requests / {} s per app.\n\n",
        l.latency_s * 1000.0,
        l.per_mailbox,
        l.app_requests,
        l.app_window_s
    ));
    t.push_str(
        "| run | metric | measured | bound | ratio | old script |\n|---|---|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let m = &r.measured;
        let name = format!("({}) {}", m.label, describe(&m.label));
        let mut line = |metric: &str, meas: String, bound: String, rat: String, old: String| {
            t.push_str(&format!(
                "| {name} | {metric} | {meas} | {bound} | {rat} | {old} |\n"
            ));
        };
        line(
            "requests (Graph-counted)",
            m.requests.to_string(),
            r.bound_requests.to_string(),
            ratio(m.requests as f64, r.bound_requests as f64),
            r.old_requests.to_string(),
        );
        line(
            "hub mailbox requests",
            m.hub_requests.to_string(),
            r.bound_hub_requests.to_string(),
            ratio(m.hub_requests as f64, r.bound_hub_requests as f64),
            format!(
                "{}{}",
                r.old_hub_requests,
                if r.old_hub_throttled {
                    " (over 10,000/10 min: 429, script aborts)"
                } else {
                    ""
                }
            ),
        );
        line(
            "mailbox reads / writes",
            format!("{} / {}", m.mailbox_reads, m.mailbox_writes),
            format!("{} / {}", r.bound_mailbox_reads, r.bound_mailbox_writes),
            format!(
                "{} / {}",
                ratio(m.mailbox_reads as f64, r.bound_mailbox_reads as f64),
                ratio(m.mailbox_writes as f64, r.bound_mailbox_writes as f64)
            ),
            String::new(),
        );
        line(
            "HTTP requests / batches / items",
            format!("{} / {} / {}", m.http_requests, m.batches, m.batch_items),
            String::new(),
            String::new(),
            String::new(),
        );
        line(
            "throttled (429)",
            m.throttled.to_string(),
            "0".into(),
            String::new(),
            String::new(),
        );
        line(
            "wall time (s)",
            format!("{:.2}", m.wall_s),
            format!(
                "{:.2} (hub first {:.2})",
                r.bound_wall_s, r.bound_wall_hub_first_s
            ),
            ratio(m.wall_s, r.bound_wall_s),
            format!("{:.0} ({:.0}× ours)", r.old_wall_s, r.old_wall_s / m.wall_s),
        );
        line(
            "CPU (s) synccontacts / emulator",
            format!("{:.2} / {:.2}", m.cpu_s, m.emulator_cpu_s),
            String::new(),
            String::new(),
            String::new(),
        );
        line(
            "peak RSS (MiB)",
            format!("{:.0}", m.peak_rss_mib),
            String::new(),
            String::new(),
            String::new(),
        );
        line(
            "stdout / report (bytes)",
            format!("{} / {}", m.stdout_bytes, m.report_bytes),
            "stdout < 4,000,000".into(),
            String::new(),
            String::new(),
        );
    }
    t
}
