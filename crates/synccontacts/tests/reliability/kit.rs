//! The reliability suite's own helpers on top of the e2e harness (scenario builders, the binary
//! runner): the in-process library runner with a virtual clock linked to the emulator's clock,
//! captured logs at the most verbose level, fault-plan builders, the normalised final state that
//! crash and storm runs are compared on, and the I1–I3 checks.
//!
//! Nothing here may trust synccontacts' report for a verdict on the data: state and stats come
//! from the emulator.

#![allow(dead_code, reason = "each test module uses a different subset")]

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph::clock::SleepFuture;
use graph::{Clock, VirtualClock};
use graph_emulator::FaultPlan;
use serde_json::{Map, Value, json};
use synccontacts::cli::{OutputOptions, SyncArgs};
use synccontacts::config::Env;
use synccontacts::exit::Exit;
use synccontacts::report::{self, ActionLines, Detail};
use synccontacts::run::RunEnv;

use crate::harness::{self, EnvVars, HUB, Run};

/// The emulator, shared with the clock that moves its time.
pub type SharedEmu = Arc<harness::Emu>;

pub async fn start(s: graph_emulator::Scenario) -> SharedEmu {
    Arc::new(harness::Emu::start(s).await)
}

/// The client's clock in these tests: virtual time (sleeps return at once) that moves the
/// emulator's clock along, so the emulator judges `Retry-After` and token expiry on the same
/// timeline the client waited on.
pub struct LinkedClock {
    virt: VirtualClock,
    start: jiff::Timestamp,
    emu: SharedEmu,
    synced: Mutex<Duration>,
}

impl LinkedClock {
    pub fn new(emu: SharedEmu) -> Arc<Self> {
        Self::ahead(emu, Duration::ZERO)
    }

    /// A clock that starts `ahead` of the real one: the emulator's clock must have been moved
    /// as far ([`Timeline`]), so both agree.
    pub fn ahead(emu: SharedEmu, ahead: Duration) -> Arc<Self> {
        #[allow(
            clippy::disallowed_methods,
            reason = "the virtual timeline starts at the emulator's real now, so tokens it issues are valid on it"
        )]
        let start = graph::clock::add(jiff::Timestamp::now(), ahead);
        Arc::new(Self {
            virt: VirtualClock::new(start),
            start,
            emu,
            synced: Mutex::new(Duration::ZERO),
        })
    }

    /// How far this clock has moved the emulator's (the sleeps of the run).
    pub fn elapsed(&self) -> Duration {
        *self.synced.lock().unwrap()
    }

    /// Every sleep the client asked for, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.virt.sleeps()
    }

    fn sync(&self) {
        let elapsed = graph::clock::until(self.start, self.virt.now());
        let mut synced = self.synced.lock().unwrap();
        if elapsed > *synced {
            self.emu.inner.advance_clock(elapsed - *synced);
            *synced = elapsed;
        }
    }
}

impl Clock for LinkedClock {
    fn now(&self) -> jiff::Timestamp {
        self.virt.now()
    }

    fn sleep(&self, d: Duration) -> SleepFuture<'_> {
        Box::pin(async move {
            self.virt.sleep(d).await;
            self.sync();
        })
    }
}

/// A shared in-memory log sink.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One library run: what the binary would have printed, logged and reported.
pub struct LibRun {
    pub exit: Exit,
    pub report: Value,
    /// The text the binary prints on stdout (per-action lines, totals, summary).
    pub stdout: String,
    /// Every log event of synccontacts, graph and sync-engine at TRACE level.
    pub logs: String,
    pub sleeps: Vec<Duration>,
}

impl LibRun {
    pub fn code(&self) -> u8 {
        self.exit.code()
    }

    pub fn all_output(&self) -> String {
        format!("{}\n{}\n{}", self.stdout, self.logs, self.report)
    }

    pub fn results(&self) -> Vec<String> {
        self.actions()
            .iter()
            .map(|a| a["result"].as_str().unwrap().to_owned())
            .collect()
    }

    pub fn actions(&self) -> Vec<Value> {
        self.report["tenants"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|t| t["actions"].as_array().unwrap().clone())
            .collect()
    }

    /// Actions as comparable keys (SyncIds of creates are fresh per run, so they are left out).
    pub fn action_keys(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .actions()
            .iter()
            .map(|a| {
                format!(
                    "{}|{}|{}|{}|{}|{}|{}",
                    a["step"],
                    a["action"],
                    a["mailbox"],
                    a["folder"],
                    a["displayName"],
                    a["email"],
                    a["changed"]
                )
            })
            .collect();
        v.sort();
        v
    }
}

/// Env vars for the default test tenant, `$batch` on or off.
pub fn tenant_env(emu: &harness::Emu, batch: bool) -> EnvVars {
    let mut v = harness::one_tenant(emu);
    v.retain(|(k, _)| k != "AUTOMATION_SYNCCONTACTS_BATCH");
    v.push(harness::var(
        "AUTOMATION_SYNCCONTACTS_BATCH",
        if batch { "true" } else { "false" },
    ));
    v
}

/// Runs `sync` through the library entry point with a [`LinkedClock`], capturing logs at TRACE.
/// The test must run on a current-thread runtime (the default `#[tokio::test]`), so the log
/// subscriber set here sees every task of the run.
pub async fn sync_lib(emu: &SharedEmu, vars: &EnvVars, dry_run: bool) -> LibRun {
    let clock = LinkedClock::new(emu.clone());
    run_with_clock(vars, dry_run, None, clock.clone(), move || clock.sleeps()).await
}

/// [`sync_lib`] on the real clock (for the few cases virtual time cannot model: it completes
/// a sleep at once even while other requests are still on the wire).
pub async fn sync_lib_real_time(_emu: &SharedEmu, vars: &EnvVars) -> LibRun {
    run_with_clock(vars, false, None, Arc::new(graph::SystemClock), Vec::new).await
}

/// Time between runs of one test, moved on by a minute before each run: the emulator's clock and
/// the run's clock jump together, so runs are as far apart as scheduled jobs would be. Needed
/// where a rule compares a run's time with an earlier one's beyond a slack (an older copy of the
/// state is recognised by tag lines more than 10 s newer than its last run).
#[derive(Default)]
pub struct Timeline {
    ahead: Duration,
}

impl Timeline {
    /// Between two runs.
    pub const GAP: Duration = Duration::from_secs(60);

    /// One library run a [`Timeline::GAP`] after the previous one (virtual sleeps included),
    /// with `--allow-deletes` when given.
    pub async fn sync(
        &mut self,
        emu: &SharedEmu,
        vars: &EnvVars,
        allow_deletes: Option<usize>,
    ) -> LibRun {
        emu.inner.advance_clock(Self::GAP);
        self.ahead += Self::GAP;
        let clock = LinkedClock::ahead(emu.clone(), self.ahead);
        let r = run_with_clock(vars, false, allow_deletes, clock.clone(), || clock.sleeps()).await;
        self.ahead += clock.elapsed();
        r
    }
}

async fn run_with_clock(
    vars: &EnvVars,
    dry_run: bool,
    allow_deletes: Option<usize>,
    clock: Arc<dyn Clock>,
    sleeps: impl FnOnce() -> Vec<Duration>,
) -> LibRun {
    let env: Env = vars.iter().cloned().collect();
    // A run keeps its state only where the test says (AUTOMATION_SYNCCONTACTS_STATE); otherwise a
    // fresh file of its own, never the working folder's (tests run in parallel).
    let fresh_state = tempfile::tempdir().unwrap();
    let args = SyncArgs {
        dry_run,
        allow_deletes,
        state: env
            .non_blank(synccontacts::config::STATE)
            .is_none()
            .then(|| fresh_state.path().join("state.sqlite")),
        ..SyncArgs::default()
    };
    let run_env = RunEnv {
        clock,
        ..RunEnv::default()
    };
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "synccontacts=trace,graph=trace,sync_engine=trace",
        ))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let guard = tracing::subscriber::set_default(subscriber);
    let opts = OutputOptions {
        detail: Detail::Normal,
        actions: ActionLines::All,
        progress: false,
    };
    let (exit, rep) = synccontacts::cli::sync_with_report(
        &env,
        &args,
        &run_env,
        opts,
        // The text is rebuilt from the report below; printing it would flood the test log.
        &synccontacts::output::Out::discard(),
    )
    .await;
    drop(guard);
    let mut stdout: Vec<String> = Vec::new();
    for t in &rep.tenants {
        stdout.extend(report::tenant_text(
            t,
            rep.dry_run,
            Detail::Normal,
            ActionLines::All,
        ));
    }
    stdout.extend(report::stop_line(&rep));
    stdout.push(report::run_summary(&rep));
    let logs = String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned();
    LibRun {
        exit,
        report: serde_json::to_value(&rep).unwrap(),
        stdout: stdout.join("\n"),
        logs,
        sleeps: sleeps(),
    }
}

/// Runs until a run exits 0, at most `max` runs; returns every run.
pub async fn converge(emu: &SharedEmu, vars: &EnvVars, max: usize) -> Vec<LibRun> {
    let mut runs = Vec::new();
    for _ in 0..max {
        let r = sync_lib(emu, vars, false).await;
        let ok = r.exit == Exit::Ok;
        runs.push(r);
        if ok {
            return runs;
        }
    }
    let last = runs.last().unwrap();
    panic!(
        "no clean run in {max} runs; last exit {} report {}",
        last.code(),
        last.report
    );
}

// ----- the binary as a process -----

/// The binary, started on `env` with `sync --no-progress --report <dir>/report.json`.
pub struct Child {
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Child {
    pub fn start(env: &EnvVars, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_synccontacts"));
        // The default state file (.synccontacts/state.sqlite) lands in this run's own folder, as
        // in the e2e harness: a test that keeps state between runs names it
        // (AUTOMATION_SYNCCONTACTS_STATE).
        cmd.current_dir(dir.path());
        cmd.env_clear()
            .envs(env.iter().cloned())
            .args(["sync", "--no-progress", "--report"])
            .arg(dir.path().join("report.json"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        Self {
            child: cmd.spawn().expect("the binary starts"),
            dir,
        }
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("still running").to_string();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{name} {pid}");
    }

    /// Whether the process has ended by itself.
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().expect("the child's status").is_some()
    }

    /// SIGKILL: the process dies on the spot, with nothing run after (no commit, no report).
    pub fn kill(&mut self) {
        self.child.start_kill().expect("SIGKILL");
    }

    /// Waits for the exit (at most `bound`: a hang fails the test instead of the suite).
    pub async fn finish(self, bound: Duration) -> Run {
        let out = tokio::time::timeout(bound, self.child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("the run did not end within {bound:?}"))
            .unwrap();
        let report = std::fs::read(self.dir.path().join("report.json"))
            .ok()
            .map(|b| serde_json::from_slice(&b).expect("report is JSON"));
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            report,
        }
    }
}

// ----- fault plans -----

/// Writes to mailbox data (creates, updates, deletes, folder creation; `$batch` items included).
pub fn writes_match() -> Value {
    json!({"method": "POST|PATCH|DELETE", "path": "/v1.0/users/**"})
}

pub fn plan(seed: u64, rules: Vec<Value>) -> FaultPlan {
    serde_json::from_value(json!({"seed": seed, "rules": rules})).expect("valid fault plan")
}

// ----- the normalised state -----

/// Keys of a contact that differ between equivalent runs (server-assigned or time-dependent).
const VOLATILE: [&str; 7] = [
    "id",
    "changeKey",
    "@odata.etag",
    "createdDateTime",
    "lastModifiedDateTime",
    "parentFolderId",
    "personalNotes",
];

/// A contact as the comparison sees it: its fields without volatile keys, its user note text,
/// and its tag's CreatedBy (SyncId and LastUpdatedAt/By are run-specific).
fn describe(mailbox: &str, c: &Map<String, Value>, created_by: bool) -> String {
    let fields: BTreeMap<&str, &Value> = c
        .iter()
        .filter(|(k, _)| !VOLATILE.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tags = harness::notes(c).and_then(|n| sync_engine::tags::parse(n).tags);
    format!(
        "{mailbox} {} notes={:?} createdBy={:?}",
        serde_json::to_string(&fields).unwrap(),
        harness::user_text(c),
        tags.filter(|_| created_by).map(|t| t.created_by)
    )
}

/// Every contact of the tenant's hub folder and users' default folders, by mailbox.
pub fn folders(emu: &harness::Emu) -> Vec<(String, Vec<Map<String, Value>>)> {
    let mut out = vec![(
        format!("{HUB}/All Contacts"),
        emu.hub_contacts().unwrap_or_default(),
    )];
    for t in emu.inner.state().tenants {
        for u in t.users {
            if u.user_principal_name.eq_ignore_ascii_case(HUB) {
                continue;
            }
            out.push((u.user_principal_name.clone(), u.contacts.clone()));
        }
    }
    out
}

/// The state modulo ids, etags, timestamps and SyncId values: a sorted list of SyncId groups,
/// each the sorted descriptions of its members across mailboxes, plus untagged contacts as
/// groups of one. Two runs that end in the same contacts, linked the same way, compare equal.
pub fn normalised(emu: &harness::Emu) -> Vec<Vec<String>> {
    normalised_with(emu, true)
}

/// [`normalised`], optionally without the tags' CreatedBy.
pub fn normalised_with(emu: &harness::Emu, created_by: bool) -> Vec<Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut out = Vec::new();
    for (mailbox, contacts) in folders(emu) {
        for c in &contacts {
            let d = describe(&mailbox, c, created_by);
            match harness::sync_id(c) {
                Some(id) => groups.entry(id.to_lowercase()).or_default().push(d),
                None => out.push(vec![format!("untagged {d}")]),
            }
        }
    }
    for (_, mut g) in groups {
        g.sort();
        out.push(g);
    }
    out.sort();
    out
}

// ----- the state file -----

/// What a state file remembers of the one test tenant, read as another process would (read-only,
/// nothing created or moved); `None` when the file is missing, unusable or holds no tenant.
pub fn remembered(path: &std::path::Path) -> Option<sync_state::TenantState> {
    let (mut file, _) = sync_state::StateFile::open(path, sync_state::Mode::ReadOnly).ok()?;
    let tenant = file.tenant_ids().ok()?.pop()?;
    file.tenant(&tenant).ok()?
}

/// [`remembered`] of a state file's bytes (a copy kept aside).
pub fn remembered_bytes(bytes: &[u8]) -> Option<sync_state::TenantState> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    std::fs::write(&path, bytes).unwrap();
    remembered(&path)
}

/// A SyncId as its tag line writes it (lower case).
pub fn sync_id_text(id: &sync_state::SyncId) -> String {
    uuid::Uuid::from_bytes(*id).to_string()
}

// ----- invariant checks -----

/// I2: no folder holds two contacts of one SyncId, nor two untagged contacts of one email, nor
/// more contacts of a key than `before` allowed (pre-existing duplicates are never multiplied).
pub fn assert_no_duplicates(emu: &harness::Emu, context: &str) {
    for (mailbox, contacts) in folders(emu) {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for c in &contacts {
            let key = match harness::sync_id(c) {
                Some(id) => format!("syncid:{}", id.to_lowercase()),
                None => format!(
                    "email:{}",
                    harness::email(c).unwrap_or_else(|| format!(
                        "name:{}",
                        harness::s(c, "displayName").unwrap_or("")
                    ))
                ),
            };
            *seen.entry(key).or_default() += 1;
        }
        for (k, n) in seen {
            assert!(
                n == 1,
                "{context}: {n} contacts of {k} in {mailbox}:\n{}",
                serde_json::to_string_pretty(&contacts).unwrap()
            );
        }
    }
}

/// The user note text of every contact, keyed by (mailbox, email): for I3.
pub fn user_texts(emu: &harness::Emu) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for (mailbox, contacts) in folders(emu) {
        for c in &contacts {
            if let Some(e) = harness::email(c) {
                out.insert((mailbox.clone(), e), harness::user_text(c));
            }
        }
    }
    out
}

/// I1: a further run writes nothing and reads each folder once.
pub async fn assert_second_run_writes_nothing(emu: &SharedEmu, vars: &EnvVars, context: &str) {
    emu.reset();
    let r = sync_lib(emu, vars, false).await;
    assert_eq!(r.code(), 0, "{context}: second run {}", r.report);
    assert_eq!(
        emu.writes(),
        0,
        "{context}: second run wrote: {:?}",
        r.action_keys()
    );
    assert!(
        r.actions().is_empty(),
        "{context}: second run planned {:?}",
        r.action_keys()
    );
}

/// I7: none of `canaries`, raw, URL-encoded or base64-encoded, occurs in `text`.
pub fn assert_no_canary(text: &str, canaries: &[&str], context: &str) {
    use base64::Engine as _;
    for c in canaries {
        let forms = [
            (*c).to_owned(),
            url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>(),
            base64::engine::general_purpose::STANDARD.encode(c),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c),
        ];
        for f in forms {
            assert!(
                !text.contains(&f),
                "{context}: secret canary {f:?} found in output"
            );
        }
    }
}

/// Asserts two [`normalised`] states are equal, showing only the groups that differ.
pub fn assert_same_state(got: &[Vec<String>], want: &[Vec<String>], context: &str) {
    if got == want {
        return;
    }
    let only = |a: &[Vec<String>], b: &[Vec<String>]| -> Vec<Vec<String>> {
        let mut b = b.to_vec();
        a.iter()
            .filter(|g| match b.iter().position(|x| x == *g) {
                Some(i) => {
                    b.remove(i);
                    false
                }
                None => true,
            })
            .cloned()
            .collect()
    };
    panic!(
        "{context}: final state differs from the reference\nonly in this run: {:#?}\nonly in the reference: {:#?}",
        only(got, want),
        only(want, got)
    );
}
