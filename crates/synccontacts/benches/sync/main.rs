//! End-to-end benchmark of `synccontacts sync` (issues 8, 14, 16): generates tenants with the
//! emulator's `generate`, serves them from a **separate emulator process** with latency and
//! Graph's limits on, runs the **real `synccontacts` binary** as a child process against it, and
//! prints every measurement beside the bound the data and Graph's limits allow, the old script's
//! cost on the same data (`model.rs`, `shape.rs`) and the issues' targets (`targets.rs`).
//!
//!     cargo bench -p synccontacts --bench sync -- [a … h | small | large | all | smoke]
//!         [--latency-ms 20] [--emulator-bin PATH] [--out FILE] [--keep DIR]
//!         [--assert-stdout-max BYTES]
//!
//! A chain's runs share one tenant, one emulator process and one state file (`--state`, passed
//! only when this synccontacts build lists it in `sync --help`); the runs "without state" get a
//! fresh, empty state path of their own. The emulator process is this same binary re-executed
//! with `--serve-emulator` (it calls the library entry point `graph-emulator serve` calls, so no
//! second binary needs building), unless `--emulator-bin` names a `graph-emulator` binary.
//!
//! A measurement tool, not a test: it fails only when a run does not exit 0 or, with
//! `--assert-stdout-max`, when a run's stdout is larger; every other target is printed as met or
//! not met.

mod model;
mod output;
mod process;
mod shape;
mod targets;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use graph_emulator::{GenerateOptions, Scenario, Stats};
use model::{Bound, DataShape, FolderRead, Limits, OldScript};
use process::{HUB, ProcessMeasure, RunFiles, SyncEnv};
use serde_json::Value;
use targets::{Baseline, RunKind, RunNumbers, Target};

#[derive(Parser, Debug)]
#[command(about = "synccontacts end-to-end benchmark against the Graph emulator")]
struct Args {
    /// Runs to measure: a b c (cold 50×40/1000, second run, after 5% edits); d e f g h (cold
    /// 1000×10/300, second run, second run with state, with state after 5% edits, with state
    /// after the hub's delta links expired); `small` (a b c), `large` (d–h), `all`, `smoke` (a
    /// tiny chain of every kind).
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
    /// Keep scenarios, reports, stdout, logs and state files in DIR (default: a temporary
    /// directory, removed).
    #[arg(long)]
    keep: Option<PathBuf>,
    /// Share of contact copies edited before runs (c) and (g).
    #[arg(long, default_value_t = 0.05)]
    edit_share: f64,
    /// Fail the benchmark if any run writes more than BYTES to stdout (issue 16: a 1,000-user
    /// first run must stay well under GitLab's 4 MiB job log limit).
    #[arg(long, value_name = "BYTES")]
    assert_stdout_max: Option<u64>,
    /// Extra environment for synccontacts, e.g. `AUTOMATION_SYNCCONTACTS_BATCH=false` (repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    sync_env: Vec<String>,
    /// Run synccontacts under this command (e.g. `heaptrack -o /tmp/ht`): for profiling only,
    /// its CPU and memory numbers are then the wrapper's.
    #[arg(long, value_name = "CMD")]
    wrap: Option<String>,
    /// A custom chain `x` (x1 cold, x2 second run, x3 with state, x4 with state after edits, x5
    /// with state after the hub's links expired): USERS,CONTACTS,POOL.
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
    /// Runs in order, each on the tenant (and state) the one before left.
    runs: &'static [(&'static str, RunKind)],
}

const SMALL: Chain = Chain {
    name: "50 users × 40 contacts, pool 1,000",
    users: 50,
    contacts_per_user: 40,
    pool: 1000,
    group: "small",
    runs: &[
        ("a", RunKind::Cold),
        ("b", RunKind::Second),
        ("c", RunKind::Edited),
    ],
};
const LARGE: Chain = Chain {
    name: "1,000 users × 10 contacts, pool 300",
    users: 1000,
    contacts_per_user: 10,
    pool: 300,
    group: "large",
    runs: &[
        ("d", RunKind::Cold),
        ("e", RunKind::Second),
        ("f", RunKind::StateSecond),
        ("g", RunKind::StateEdited),
        ("h", RunKind::StateHubExpired),
    ],
};
/// Every kind of run on a tiny tenant; the restart-edited run last, since a restart forgets the
/// delta links the state runs need.
const SMOKE: Chain = Chain {
    name: "smoke: 6 users × 10 contacts, pool 30",
    users: 6,
    contacts_per_user: 10,
    pool: 30,
    group: "smoke",
    runs: &[
        ("s1", RunKind::Cold),
        ("s2", RunKind::Second),
        ("s3", RunKind::StateSecond),
        ("s4", RunKind::StateEdited),
        ("s5", RunKind::StateHubExpired),
        ("s6", RunKind::Edited),
    ],
};
const CUSTOM_RUNS: &[(&str, RunKind)] = &[
    ("x1", RunKind::Cold),
    ("x2", RunKind::Second),
    ("x3", RunKind::StateSecond),
    ("x4", RunKind::StateEdited),
    ("x5", RunKind::StateHubExpired),
];

impl Chain {
    /// Whether the command line asks to report run `label` of this chain (earlier runs of a
    /// chain always run, unreported, to produce the state a later one starts from).
    fn wants(&self, wanted: &[String], label: &str) -> bool {
        wanted
            .iter()
            .any(|w| w == label || w == self.group || (w == "all" && self.group != "smoke"))
    }
}

/// What one run measured.
#[derive(Debug, Clone, serde::Serialize)]
struct Measured {
    label: String,
    kind: RunKind,
    chain: String,
    exit_code: Option<i32>,
    /// Graph-counted: HTTP requests − batches + batch items, plus token requests.
    requests: u64,
    http_requests: u64,
    token_requests: u64,
    hub_requests: u64,
    hub_reads: u64,
    mailbox_reads: u64,
    mailbox_writes: u64,
    deletes: u64,
    batches: u64,
    batch_items: u64,
    throttled: u64,
    max_in_flight: u64,
    /// Bytes of Graph response bodies (the emulator's `responseBytes`), total and the hub's.
    response_bytes: u64,
    hub_response_bytes: u64,
    wall_s: f64,
    cpu_s: f64,
    peak_rss_mib: f64,
    emulator_cpu_s: f64,
    stdout_bytes: u64,
    report_bytes: Option<u64>,
    /// The state file after the run (`None`: no state file, e.g. a build without `--state`).
    state_bytes: Option<u64>,
    /// Whether `--state` was passed.
    with_state: bool,
    /// The `requests` the binary's own report counts.
    report_requests: Option<u64>,
    report_summary: String,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    measured: Measured,
    /// "full" (every folder read whole) or "delta" (every folder through its stored link).
    bound_reads: &'static str,
    bound_requests: u64,
    bound_hub_requests: u64,
    bound_hub_reads: u64,
    bound_mailbox_reads: u64,
    bound_mailbox_writes: u64,
    bound_wall_s: f64,
    bound_wall_hub_first_s: f64,
    old_requests: u64,
    old_hub_requests: u64,
    old_wall_s: f64,
    old_hub_throttled: bool,
    targets: Vec<Target>,
}

/// What the harness did to the tenant before a run, for the bound and the log.
#[derive(Default)]
struct Prepared {
    /// Contacts edited in place (`touch`) per user UPN.
    touched: HashMap<String, u64>,
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
                runs: CUSTOM_RUNS,
            })
        }
        None => None,
    };
    let mut chains: Vec<(&Chain, usize)> = Vec::new();
    for chain in [&SMALL, &LARGE, &SMOKE].into_iter().chain(custom.as_ref()) {
        if let Some(i) = chain
            .runs
            .iter()
            .rposition(|(l, _)| chain.wants(&wanted, l))
        {
            chains.push((chain, i));
        }
    }
    if chains.is_empty() {
        bail!("nothing to run: give a … h, small, large, all or smoke");
    }

    let tmp;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.canonicalize()?
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
    let stdout_max = args.assert_stdout_max.unwrap_or(targets::GITLAB_LOG_LIMIT);
    let with_state = process::supports_state();
    eprintln!(
        "synccontacts {} `sync --state`{}",
        if with_state { "takes" } else { "does not take" },
        if with_state {
            ""
        } else {
            ": the runs \"with state\" read like the others"
        }
    );
    let runtime = tokio::runtime::Runtime::new()?;
    let http = reqwest::Client::new();
    let mut rows = Vec::new();
    let mut over_stdout = Vec::new();
    for (chain, upto) in chains {
        eprintln!("== {}", chain.name);
        let scenario = graph_emulator::generate(&GenerateOptions {
            users: chain.users,
            contacts_per_user: chain.contacts_per_user,
            pool: Some(chain.pool),
            edits: 0.0,
            seed: 1,
        });
        let first = chain.runs[0].0;
        let file = dir.join(format!("{first}-0.json"));
        std::fs::write(&file, scenario.to_json_pretty())?;
        drop(scenario);
        let mut emu = Emulator::start(&args, &file, &dir.join(format!("{first}-emu.log")))?;
        let chain_state = dir.join(format!("{}-state.sqlite", chain.group));
        process::remove_state(&chain_state);
        let mut baseline: Option<Baseline> = None;
        for &(label, kind) in chain.runs.iter().take(upto + 1) {
            let prepared = match kind {
                RunKind::Edited => {
                    // Edit a share of the copies, as users would between runs, by restarting the
                    // emulator with a modified export of its state
                    // (crates/graph-emulator/README.md, "Control plane"). The restart forgets every
                    // delta link (the emulator keeps sync states in memory only).
                    let state = runtime.block_on(get_state(&http, &emu.url))?;
                    let edited = edit_copies(state, args.edit_share, 7);
                    let f = dir.join(format!("{label}-edited.json"));
                    std::fs::write(&f, edited.to_json_pretty())?;
                    emu.stop();
                    emu = Emulator::start(&args, &f, &dir.join(format!("{label}-emu.log")))?;
                    Prepared::default()
                }
                RunKind::StateEdited => {
                    // The same edits made in place, so the delta links of the state stay valid.
                    let state = runtime.block_on(get_state(&http, &emu.url))?;
                    let touched = runtime.block_on(touch_copies(
                        &http,
                        &emu.url,
                        &state,
                        args.edit_share,
                        7,
                    ))?;
                    Prepared { touched }
                }
                RunKind::StateHubExpired => {
                    let n = runtime.block_on(expire_mailbox_delta(&http, &emu.url, HUB))?;
                    eprintln!("   expired {n} delta tokens of {HUB}");
                    Prepared::default()
                }
                _ => Prepared::default(),
            };
            eprintln!("-- ({label}) {}", kind.describe());
            let state = runtime.block_on(get_state(&http, &emu.url))?;
            let shape = shape::shape_of(&state, HUB);
            let user_reads: Vec<FolderRead> = shape::user_mailboxes(&state, HUB)
                .iter()
                .map(|upn| FolderRead::Delta {
                    changed: prepared.touched.get(upn).copied().unwrap_or(0),
                })
                .collect();
            let app = &state.tenants[0].apps[0];
            let state_path = if kind.uses_state() {
                chain_state.clone()
            } else {
                // A run without state: a path of its own that does not exist yet.
                let p = dir.join(format!("{label}-nostate.sqlite"));
                process::remove_state(&p);
                p
            };
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
                state: with_state.then_some(state_path),
                cwd: dir.clone(),
            };
            drop(state);
            runtime.block_on(reset_stats(&http, &emu.url))?;
            let files = RunFiles {
                report: dir.join(format!("{label}-report.json")),
                stdout: dir.join(format!("{label}-stdout.txt")),
                log: dir.join(format!("{label}-sync.log")),
            };
            let m = process::measure(&env, &files, emu.pid())?;
            let stats = runtime.block_on(get_stats(&http, &emu.url))?;
            let measured = combine(
                label,
                kind,
                chain.name,
                m,
                &stats,
                &files.report,
                with_state,
            );
            let bound = if kind.reads_delta() {
                let hub = if kind == RunKind::StateHubExpired {
                    FolderRead::Fallback
                } else {
                    FolderRead::Delta { changed: 0 }
                };
                model::delta_bound(&shape, hub, &user_reads, &limits)
            } else {
                model::bound(&shape, &limits)
            };
            let row = row(measured, kind, &shape, bound, &limits, baseline, stdout_max);
            output::print_row(&row, &shape);
            if measured_failed(&row) {
                eprintln!("   !! the run did not exit 0; see {}", files.log.display());
            }
            // Every run counts for the assertion, reported or not.
            if args.assert_stdout_max.is_some() && row.measured.stdout_bytes > stdout_max {
                over_stdout.push(format!("({label}) {} bytes", row.measured.stdout_bytes));
            }
            if kind == RunKind::Second {
                baseline = Some(Baseline {
                    response_bytes: row.measured.response_bytes,
                    hub_response_bytes: row.measured.hub_response_bytes,
                });
            }
            if chain.wants(&wanted, label) {
                rows.push(row);
            }
        }
        emu.stop();
    }
    println!();
    println!("{}", output::table(&rows, &limits));
    println!("{}", output::targets_table(&rows));
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&rows)?)?;
    }
    if rows.iter().any(measured_failed) {
        bail!("some runs did not exit 0");
    }
    if !over_stdout.is_empty() {
        bail!(
            "stdout over --assert-stdout-max {stdout_max}: {}",
            over_stdout.join(", ")
        );
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

/// Which user contact copies to edit: each with probability `share`, deterministic in `seed`
/// and in the data (a user's copies are taken in the order of their name and address, not in
/// the order the previous run happened to create them), as (user index, contact index) in
/// `s.tenants[0]`.
fn choose_copies(s: &Scenario, share: f64, seed: u64) -> Vec<(usize, usize)> {
    use rand::{Rng as _, SeedableRng as _};
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let text = |c: &serde_json::Map<String, Value>, k: &str| {
        c.get(k).and_then(Value::as_str).unwrap_or("").to_owned()
    };
    let mut chosen = Vec::new();
    for (ui, u) in s.tenants[0].users.iter().enumerate() {
        if u.assigned_licenses.is_empty() {
            continue;
        }
        let mut order: Vec<(String, String, String, usize)> = u
            .contacts
            .iter()
            .enumerate()
            .map(|(ci, c)| {
                let email = c
                    .get("emailAddresses")
                    .and_then(|e| e.get(0))
                    .and_then(|e| e.get("address"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                (text(c, "displayName"), email, text(c, "id"), ci)
            })
            .collect();
        order.sort();
        for (.., ci) in order {
            if rng.random_bool(share) {
                chosen.push((ui, ci));
            }
        }
    }
    chosen
}

/// Edits `share` of the user contact copies as a user would in Outlook: a new job title and a
/// `lastModifiedDateTime` newer than anything in the tenant. Deterministic in `seed`.
fn edit_copies(mut s: Scenario, share: f64, seed: u64) -> Scenario {
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
    let chosen = choose_copies(&s, share, seed);
    for (n, &(ui, ci)) in chosen.iter().enumerate() {
        let n = n as i64 + 1;
        let c = &mut s.tenants[0].users[ui].contacts[ci];
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
    eprintln!("   edited {} contact copies", chosen.len());
    s
}

/// Edits like [`edit_copies`] (a seeded choice of copies, a new job title: callers pass another
/// seed, and the titles differ, so a chain with both kinds of edits changes something each
/// time), made in place through the control plane's `touch`, which gives each copy a new change
/// key and `lastModifiedDateTime` as an Outlook edit would, so the delta links of a state see
/// them. Sequential, so every edit gets its own timestamp and the newest copy is unambiguous.
/// Returns how many copies it edited per user.
async fn touch_copies(
    http: &reqwest::Client,
    url: &str,
    s: &Scenario,
    share: f64,
    seed: u64,
) -> anyhow::Result<HashMap<String, u64>> {
    // The emulator's timestamps have whole seconds: an edit in the same second as the previous
    // run's last write would tie with it and lose to the hub's copy (docs/sync-rules.md §2.2).
    #[allow(
        clippy::disallowed_methods,
        reason = "waits for the real emulator's clock to move on"
    )]
    std::thread::sleep(Duration::from_millis(1100));
    let mut touched: HashMap<String, u64> = HashMap::new();
    let chosen = choose_copies(s, share, seed);
    for (n, &(ui, ci)) in chosen.iter().enumerate() {
        let u = &s.tenants[0].users[ui];
        let id = u.contacts[ci]
            .get("id")
            .and_then(Value::as_str)
            .context("an exported contact without id")?;
        let mut target = reqwest::Url::parse(url)?;
        target
            .path_segments_mut()
            .map_err(|()| anyhow::anyhow!("emulator URL cannot take a path: {url}"))?
            .extend([
                "_emulator",
                "users",
                &u.user_principal_name,
                "contacts",
                id,
                "touch",
            ]);
        http.post(target)
            .json(&serde_json::json!({ "jobTitle": format!("Edited in place {}", n + 1) }))
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("touching a contact of {}", u.user_principal_name))?;
        *touched.entry(u.user_principal_name.clone()).or_default() += 1;
    }
    eprintln!("   edited {} contact copies in place", chosen.len());
    Ok(touched)
}

/// Expires the delta links of one mailbox only (the emulator's `POST /_emulator/delta/expire`
/// with a `mailbox`), in the form Graph was observed to answer (410 `SyncStateNotFound`).
/// Returns how many tokens the emulator forgot: 0 means the client held no link for it.
async fn expire_mailbox_delta(http: &reqwest::Client, url: &str, upn: &str) -> anyhow::Result<u64> {
    let answer: Value = http
        .post(format!("{url}/_emulator/delta/expire"))
        .json(&serde_json::json!({ "mailbox": upn }))
        .send()
        .await?
        .error_for_status()
        .context("this emulator cannot expire one mailbox's delta links")?
        .json()
        .await?;
    answer["expired"]
        .as_u64()
        .context("the emulator's expire answer has no count")
}

fn combine(
    label: &str,
    kind: RunKind,
    chain: &str,
    p: ProcessMeasure,
    s: &Stats,
    report: &Path,
    with_state: bool,
) -> Measured {
    let hub = s
        .by_mailbox
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(HUB))
        .map(|(_, m)| m);
    let hub_requests = hub
        .clone()
        .map(|m| m.get + m.post + m.patch + m.delete)
        .sum();
    let hub_reads = hub.clone().map(|m| m.get).sum();
    let hub_response_bytes = hub.map(|m| m.response_bytes).sum();
    let mailbox_reads = s.by_mailbox.values().map(|m| m.get).sum();
    let mailbox_writes = s
        .by_mailbox
        .values()
        .map(|m| m.post + m.patch + m.delete)
        .sum();
    let deletes = s.by_mailbox.values().map(|m| m.delete).sum();
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
        kind,
        chain: chain.to_owned(),
        exit_code: p.exit_code,
        requests: s.requests - s.batches + s.batch_items + s.token_requests,
        http_requests: s.requests,
        token_requests: s.token_requests,
        hub_requests,
        hub_reads,
        mailbox_reads,
        mailbox_writes,
        deletes,
        batches: s.batches,
        batch_items: s.batch_items,
        throttled: s.throttled,
        max_in_flight,
        response_bytes: s.response_bytes,
        hub_response_bytes,
        wall_s: p.wall_s,
        cpu_s: p.cpu_s,
        peak_rss_mib: p.peak_rss_kib as f64 / 1024.0,
        emulator_cpu_s: p.emulator_cpu_s,
        stdout_bytes: p.stdout_bytes,
        report_bytes: p.report_bytes,
        state_bytes: p.state_bytes,
        with_state: with_state && kind.uses_state(),
        report_requests: tenant.and_then(|t| t["requests"].as_u64()),
        report_summary: summary,
    }
}

fn row(
    measured: Measured,
    kind: RunKind,
    shape: &DataShape,
    b: Bound,
    limits: &Limits,
    baseline: Option<Baseline>,
    stdout_max: u64,
) -> Row {
    let o: OldScript = model::old_script(shape, limits);
    let numbers = RunNumbers {
        requests: measured.requests,
        mailbox_reads: measured.mailbox_reads,
        hub_reads: measured.hub_reads,
        mailbox_writes: measured.mailbox_writes,
        deletes: measured.deletes,
        throttled: measured.throttled,
        wall_s: measured.wall_s,
        response_bytes: measured.response_bytes,
        hub_response_bytes: measured.hub_response_bytes,
        stdout_bytes: measured.stdout_bytes,
    };
    Row {
        targets: targets::targets(kind, &numbers, &b, baseline, stdout_max),
        measured,
        bound_reads: if kind.reads_delta() { "delta" } else { "full" },
        bound_requests: b.requests,
        bound_hub_requests: b.hub_requests,
        bound_hub_reads: b.hub_reads,
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
