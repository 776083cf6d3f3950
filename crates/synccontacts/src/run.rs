//! Orchestration of one run, tenant by tenant: token → user scope → hub folder → one read of
//! every folder → the engine's plan → the writes → the report (SPEC §2–§3, ARCHITECTURE "One run").
//!
//! Rules this module keeps: every tenant's client is built (certificates loaded, URLs checked)
//! before the first request of any tenant (I6); one tenant failing never stops the others; a
//! dry run writes nothing at all, not even the hub folder (SPEC §2.3 FIX), and its planned actions
//! are exactly what a real run would do with the same snapshots (I8: both come from the same
//! `plan` call on the same reads); every update carries the
//! etag read at the start (`If-Match`, I9). It never decides sync rules (that is `sync-engine`)
//! and never retries Graph calls itself (that is `graph`).
//!
//! A write refused with 412 means the user edited that contact after we read it: we do not
//! overwrite it with stale data (I9), report it as `conflict`, and leave it to the next run, which
//! will see the newer edit and let it win. It is not a failure of the run (exit code unaffected):
//! nothing is lost and the next scheduled run converges.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt as _;
use graph::{
    AssertionSource, ClientConfig, Clock, ErrorKind, FolderRef, GraphClient, GraphError, Secret,
    WriteRequest,
};
use sync_engine::Contact;
use sync_engine::plan::{
    Action, MailboxSnapshot, Operation, Plan, PlanInput, ReadStatus, Target, Write,
};
use tracing::{Instrument as _, info, info_span, warn};
use tracing_indicatif::span_ext::IndicatifSpanExt as _;

use crate::cli::OutputOptions;
use crate::config::{Config, ConfigError, CredentialConfig, Env, Problem, TenantConfig, UserScope};
use crate::exit::TenantOutcome;
use crate::output::Out;
use crate::report::{
    self, ActionKind, ActionRecord, ActionResult, Delta, MailboxNote, RunReport, TenantReport,
};

/// The hub folder's name (SPEC §2.3).
pub const HUB_FOLDER: &str = "All Contacts";
/// How a user's default folder is named in output.
pub const USER_FOLDER: &str = "Contacts";
/// Mailboxes read at once. The client enforces 4 requests per mailbox and a global cap; a read
/// is sequential paging, so this is roughly the number of requests in flight.
const MAILBOX_PARALLELISM: usize = 64;
/// Mailboxes written at once. A mailbox takes at most 4 writes at a time (a `$batch` of 20 runs
/// in 5 rounds), so reaching Graph's app budget of 130,000 requests per 10 s (graph-facts §6)
/// takes 13,000/s ÷ (4 per latency) mailboxes at once: 65 at 20 ms, more at real latencies.
/// With 32, a 1,000-user tenant ran at a third of that budget (issue 8, BENCHMARKS.md).
const WRITE_PARALLELISM: usize = 256;
/// HTTP requests in flight across all mailboxes (a `$batch` counts once): enough for
/// `WRITE_PARALLELISM` mailboxes with one batch each.
const GLOBAL_CONCURRENCY: usize = 256;

/// What the run needs from outside besides configuration: the clock (LastUpdatedAt) and the
/// SyncId generator. Injected so tests can pin them.
#[derive(Clone)]
pub struct RunEnv {
    pub clock: Arc<dyn Clock>,
    pub new_sync_id: Arc<dyn Fn() -> String + Send + Sync>,
}

impl Default for RunEnv {
    fn default() -> Self {
        Self {
            clock: Arc::new(graph::SystemClock),
            new_sync_id: Arc::new(|| uuid::Uuid::new_v4().to_string()),
        }
    }
}

/// Builds a client configuration from a validated tenant (the seam between our config types and
/// the client's). `vars` is the environment snapshot the configuration was read from: a
/// `ClientAssertionEnv` token is read from it, never from the process.
pub fn client_config(
    config: &Config,
    t: &TenantConfig,
    env: &RunEnv,
    vars: &Env,
) -> Result<ClientConfig, GraphError> {
    let endpoints = graph::Endpoints::new(t.endpoints.login.as_str(), t.endpoints.graph.as_str())?;
    let mut cc = ClientConfig::new(
        &t.tenant_id,
        &t.client_id,
        credential(&t.credential, vars),
        endpoints,
    );
    cc.extra_ca_pem = config.extra_ca_pem.clone();
    cc.clock = env.clock.clone();
    cc.batch_writes = config.batch_writes;
    cc.global_concurrency = GLOBAL_CONCURRENCY;
    cc.user_agent = concat!("synccontacts/", env!("CARGO_PKG_VERSION")).to_owned();
    Ok(cc)
}

/// The client's credential. A federated token is asked for at every token request: a
/// `ClientAssertionFile` is read again each time (the CI runner may rotate it), a
/// `ClientAssertionEnv` comes from the environment snapshot `vars`.
fn credential(c: &CredentialConfig, vars: &Env) -> graph::Credential {
    match c {
        CredentialConfig::Secret(s) => graph::Credential::Secret(s.clone()),
        CredentialConfig::CertificatePath(p) => graph::Credential::CertificatePem(p.clone()),
        CredentialConfig::AssertionFile(p) => {
            let path = p.clone();
            federated(format!("file {}", p.display()), move || {
                std::fs::read_to_string(&path).map_err(|e| {
                    format!(
                        "cannot read the federated token file {}: {e}",
                        path.display()
                    )
                })
            })
        }
        CredentialConfig::AssertionEnv(name) => {
            let value = vars.get(name).map(Secret::new);
            federated(format!("environment variable {name}"), move || {
                Ok(value
                    .as_ref()
                    .map(|v| v.expose().to_owned())
                    .unwrap_or_default())
            })
        }
    }
}

/// A federated credential whose missing or empty token is explained in CI terms.
fn federated(
    source: String,
    read: impl Fn() -> Result<String, String> + Send + Sync + 'static,
) -> graph::Credential {
    let what = source.clone();
    graph::Credential::Federated(AssertionSource::new(source, move || {
        let token = read()?;
        if token.trim().is_empty() {
            return Err(format!(
                "the federated token {what} is empty or missing; in GitLab CI declare it under id_tokens with aud api://AzureADTokenExchange"
            ));
        }
        Ok(Secret::new(token))
    }))
}

/// An error with what to do about it in our own terms, where the client leaves that to us.
pub(crate) fn with_hint(mut e: GraphError) -> GraphError {
    if e.kind == ErrorKind::UntrustedCertificate {
        e.message.push_str(
            " — if a TLS-intercepting proxy or a test endpoint is in the way, set \
             AUTOMATION_SYNCCONTACTS_CA_FILE to its CA certificate (PEM)",
        );
    }
    e
}

/// Builds every tenant's client up front: a certificate that does not load is a configuration
/// error of that tenant, found before anything is requested from any tenant (I6).
pub fn build_clients(
    config: &Config,
    env: &RunEnv,
    vars: &Env,
) -> Result<Vec<GraphClient>, ConfigError> {
    let mut problems = Vec::new();
    let mut clients = Vec::new();
    for t in &config.tenants {
        match client_config(config, t, env, vars).and_then(GraphClient::new) {
            Ok(c) => clients.push(c),
            Err(e) => problems.push(Problem {
                variable: t.origin.clone(),
                tenant: Some(format!("tenant {}", t.label())),
                field: Some(t.credential.field().to_owned()),
                problem: e.message.clone(),
                fix: "fix the credential or URL named above".into(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(clients)
    } else {
        Err(ConfigError { problems })
    }
}

/// Runs every tenant in turn and prints each tenant's text as it finishes.
pub async fn sync_all(
    config: &Config,
    vars: &Env,
    env: &RunEnv,
    opts: OutputOptions,
    out: &Out,
) -> Result<RunReport, ConfigError> {
    let clients = build_clients(config, env, vars)?;
    if config.dry_run {
        info!(
            "dry run ({}): nothing will be written",
            config.dry_run_origin.as_deref().unwrap_or("DryRun")
        );
    }
    let mut report = RunReport {
        dry_run: config.dry_run,
        error: None,
        exit_code: 0,
        tenants: Vec::new(),
    };
    for (t, client) in config.tenants.iter().zip(clients) {
        let span = info_span!("tenant", tenant = %t.label());
        let tr = sync_tenant(t, &client, config.dry_run, env)
            .instrument(span)
            .await;
        let lines = report::tenant_text(&tr, config.dry_run, opts.detail);
        out.lines(lines.iter().map(String::as_str));
        report.tenants.push(tr);
    }
    Ok(report)
}

/// A tenant-level failure: what stopped it and how the exit code sees it.
struct Stop {
    outcome: TenantOutcome,
    message: String,
}

impl Stop {
    fn from_graph(context: &str, e: &GraphError) -> Self {
        Self {
            outcome: if e.is_auth_or_permission() {
                TenantOutcome::AuthFailed
            } else {
                TenantOutcome::Failed
            },
            message: format!("{context}: {}", with_hint(e.clone())),
        }
    }
}

/// Everything read at the start of the run.
pub struct Snapshots {
    pub hub: MailboxSnapshot,
    pub hub_folder: Option<graph::Folder>,
    /// `found`, `created` or `would-create` (dry run).
    pub hub_folder_state: &'static str,
    pub users: Vec<MailboxSnapshot>,
    pub users_in_scope: usize,
    pub skipped: Vec<MailboxNote>,
    pub failed: Vec<MailboxNote>,
}

/// One tenant, start to end. Never panics on Graph trouble; every failure ends up in the report.
pub async fn sync_tenant(
    t: &TenantConfig,
    client: &GraphClient,
    dry_run: bool,
    env: &RunEnv,
) -> TenantReport {
    let mut snaps = match read_tenant(t, client, dry_run).await {
        Ok(s) => s,
        Err(stop) => {
            tracing::error!("{}", stop.message);
            let mut r = TenantReport::failed(&t.tenant_id, &t.hub, stop.outcome, stop.message);
            r.requests = requests(client);
            return r;
        }
    };
    let hub_folder_state = snaps.hub_folder_state;

    let input = PlanInput {
        hub: std::mem::take(&mut snaps.hub),
        users: std::mem::take(&mut snaps.users),
        update_existing: t.options.update_existing,
        now: env.clock.now(),
        // First-run mode until the state store is wired in (issue 12).
        memory: None,
        options: Default::default(),
    };
    let gen_id = env.new_sync_id.clone();
    let plan = sync_engine::plan::plan(&input, &mut || gen_id());
    info!(
        "planned {} writes ({} data problems)",
        plan.operations.len(),
        plan.problems.len()
    );

    let hub_folder = match &snaps.hub_folder {
        Some(f) => FolderRef::Id(f.id.clone()),
        None => FolderRef::Default, // dry run only: nothing is written
    };
    let results = if dry_run {
        vec![Outcome::planned(); plan.operations.len()]
    } else {
        apply(client, &plan, &t.hub, &hub_folder).await
    };

    let actions: Vec<ActionRecord> = plan
        .operations
        .iter()
        .zip(results)
        .map(|(op, r)| record(op, r))
        .collect();
    let (skip1, skip2) = skipped_counts(&input, &plan);
    let problems = plan.problems.iter().map(describe_problem).collect();
    let failed_writes = actions.iter().any(|a| a.result == ActionResult::Failed);
    let outcome = if failed_writes || !snaps.failed.is_empty() {
        TenantOutcome::Partial
    } else {
        TenantOutcome::Ok
    };
    let error = (outcome == TenantOutcome::Partial).then(|| {
        let n = actions
            .iter()
            .filter(|a| a.result == ActionResult::Failed)
            .count();
        format!(
            "{} mailbox(es) could not be read and {n} write(s) failed; the run is safe to repeat",
            snaps.failed.len()
        )
    });
    TenantReport {
        tenant_id: t.tenant_id.clone(),
        status: if outcome == TenantOutcome::Ok {
            "ok"
        } else {
            "failed"
        },
        outcome,
        error,
        users: snaps.users_in_scope,
        hub: t.hub.clone(),
        hub_folder: hub_folder_state,
        step1: report::totals(&actions, 1, skip1),
        step2: report::totals(&actions, 2, skip2),
        requests: requests(client),
        skipped_mailboxes: snaps.skipped,
        failed_mailboxes: snaps.failed,
        problems,
        actions,
    }
}

fn requests(client: &GraphClient) -> u64 {
    let s = client.stats();
    s.requests + s.token_requests
}

/// Token, user scope, hub folder and one read of every folder.
async fn read_tenant(
    t: &TenantConfig,
    client: &GraphClient,
    dry_run: bool,
) -> Result<Snapshots, Stop> {
    let token = client.token().await.map_err(|e| {
        Stop::from_graph(
            &format!("cannot get a token with the {}", t.credential.describe()),
            &e,
        )
    })?;
    tracing::debug!(roles = ?token.roles, "token obtained");

    // The hub's directory entry: its id and UPN are both ways a licensed-user list may name it.
    // Without User.Read.All (test-user scope needs none) fall back to the configured value.
    let mut hub_names = vec![t.hub.clone()];
    match client.user(&t.hub).await {
        Ok(u) => {
            hub_names.push(u.id.clone());
            hub_names.extend(u.user_principal_name.clone());
            hub_names.extend(u.mail.clone());
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Err(Stop {
                outcome: TenantOutcome::Failed,
                message: format!(
                    "shared mailbox not found: GlobalAddressBookUserId \"{}\" is not a user of tenant {} — \
                     set it to the UPN of the shared mailbox that holds \"{HUB_FOLDER}\" ({e})",
                    t.hub, t.tenant_id
                ),
            });
        }
        Err(e) if e.kind == ErrorKind::Permission && t.scope.test_users().is_some() => {
            tracing::debug!("cannot read the hub's directory entry (no User.Read.All?): {e}");
        }
        Err(e) => return Err(Stop::from_graph("reading the shared mailbox's user", &e)),
    }
    let is_hub = |u: &str| hub_names.iter().any(|h| h.eq_ignore_ascii_case(u));

    let mut users: Vec<String> = match &t.scope {
        UserScope::TestUsers { users, origin } => {
            info!("test-user scope: {} users from {origin}", users.len());
            users.clone()
        }
        // Fails closed: a scope still pending (its verified domains were not resolved) is never
        // read as "every user".
        UserScope::PendingVerifiedDomains => {
            return Err(Stop {
                outcome: TenantOutcome::Failed,
                message: "test-user scope not decided: a test-user key may name one of this \
                          tenant's verified domains, which were not resolved"
                    .into(),
            });
        }
        UserScope::AllLicensedUsers => client
            .licensed_users()
            .await
            .map_err(|e| Stop::from_graph("listing licensed users", &e))?
            .iter()
            .map(|u| u.key().to_owned())
            .collect(),
    };
    users.retain(|u| !is_hub(u));
    let mut seen = std::collections::HashSet::new();
    users.retain(|u| seen.insert(u.to_ascii_lowercase()));
    users.sort_by_key(|u| u.to_ascii_lowercase());
    if users.is_empty() {
        return Err(Stop {
            outcome: TenantOutcome::Failed,
            message: if t.scope.test_users().is_some() {
                "no users in scope: the test-user list holds only the shared mailbox — add test users".into()
            } else {
                "no licensed users found: no user of the tenant has a licence (the shared mailbox is \
                 excluded) — assign licences, or configure TestUserList"
                    .into()
            },
        });
    }
    info!("{} users in scope", users.len());

    // The hub folder, anywhere in the tree; created only in a real run (SPEC §2.3 FIX).
    let hub_err = |e: &GraphError| {
        if e.is_missing_mailbox() {
            Stop {
                outcome: TenantOutcome::Failed,
                message: format!(
                    "shared mailbox not found: \"{}\" has no Exchange Online mailbox — check \
                     GlobalAddressBookUserId ({e})",
                    t.hub
                ),
            }
        } else {
            Stop::from_graph(&format!("reading the contact folders of {}", t.hub), e)
        }
    };
    let mut hub_folder = client
        .find_contact_folder(&t.hub, HUB_FOLDER)
        .await
        .map_err(|e| hub_err(&e))?;
    let mut hub_folder_state = "found";
    if hub_folder.is_none() {
        hub_folder_state = if dry_run { "would-create" } else { "created" };
        if dry_run {
            info!(
                "\"{HUB_FOLDER}\" does not exist in {} (a real run creates it)",
                t.hub
            );
        } else {
            let f = client
                .create_contact_folder(&t.hub, HUB_FOLDER)
                .await
                .map_err(|e| {
                    Stop::from_graph(&format!("creating \"{HUB_FOLDER}\" in {}", t.hub), &e)
                })?;
            info!("created \"{HUB_FOLDER}\" in {}", t.hub);
            hub_folder = Some(f);
        }
    }

    // One read of the hub and of every user's default folder.
    let read_span = info_span!("read", "indicatif.pb_show" = tracing::field::Empty);
    read_span.pb_set_style(&bar_style());
    read_span.pb_set_length(users.len() as u64 + 1);
    read_span.pb_set_message("reading mailboxes");
    let hub_contacts = match &hub_folder {
        Some(f) => read_folder(client, &t.hub, &FolderRef::Id(f.id.clone()))
            .instrument(read_span.clone())
            .await
            .map_err(|e| hub_err(&e))?,
        None => Vec::new(),
    };
    read_span.pb_inc(1);
    let hub = MailboxSnapshot {
        mailbox: t.hub.clone(),
        contacts: hub_contacts,
        read: ReadStatus::Complete,
    };
    let users_in_scope = users.len();
    let mut reads: Vec<(String, Result<Vec<Contact>, GraphError>)> = futures::stream::iter(users)
        .map(|u| {
            let span = read_span.clone();
            async move {
                let r = read_folder(client, &u, &FolderRef::Default).await;
                span.pb_inc(1);
                (u, r)
            }
        })
        .buffer_unordered(MAILBOX_PARALLELISM)
        .collect()
        .instrument(read_span.clone())
        .await;
    drop(read_span);
    reads.sort_by(|a, b| a.0.cmp(&b.0));

    let mut snaps = Snapshots {
        hub,
        hub_folder,
        hub_folder_state,
        users: Vec::new(),
        users_in_scope,
        skipped: Vec::new(),
        failed: Vec::new(),
    };
    for (u, r) in reads {
        match r {
            Ok(contacts) => snaps.users.push(MailboxSnapshot {
                mailbox: u,
                contacts,
                read: ReadStatus::Complete,
            }),
            Err(e) if e.is_missing_mailbox() => {
                let reason = format!(
                    "no Exchange Online mailbox ({})",
                    e.code.as_deref().unwrap_or(e.kind.as_str())
                );
                warn!("skipping {u}: {reason}");
                snaps.skipped.push(MailboxNote {
                    mailbox: u,
                    reason,
                    request_id: e.request_id.clone(),
                });
            }
            Err(e) => {
                warn!("cannot read {u}: {e}");
                snaps.failed.push(MailboxNote {
                    mailbox: u,
                    reason: e.to_string(),
                    request_id: e.request_id.clone(),
                });
            }
        }
    }
    if snaps.users.is_empty() && !snaps.failed.is_empty() {
        let all_denied = snaps.failed.len() + snaps.skipped.len() == users_in_scope;
        warn!(
            "no user mailbox could be read{}",
            if all_denied {
                ""
            } else {
                " (some were skipped)"
            }
        );
    }
    Ok(snaps)
}

/// One folder's contacts, with notes that a list response may have mangled read again by id.
///
/// Graph's list responses return `personalNotes` that start with a line break with every line
/// break removed and cut to 256 characters, while GET by id returns them intact (graph-facts §9,
/// MGDold-issue#17598). Notes rebuilt from such a value and written back would destroy the user's
/// text for good (RELIABILITY I3). A mangled value has no line break left, so every contact whose
/// listed notes hold none — and are not just our tag line, which never needs the user's text — is
/// read again by id. Once stamped, a contact with user text carries a line break (before its tag
/// line), so in steady state this reads nothing extra.
async fn read_folder(
    client: &GraphClient,
    mailbox: &str,
    folder: &FolderRef,
) -> Result<Vec<Contact>, GraphError> {
    let select = Contact::select_list();
    let mut contacts: Vec<Contact> = client.list_contacts(mailbox, folder, &select).await?;
    let suspect: Vec<usize> = contacts
        .iter()
        .enumerate()
        .filter(|(_, c)| c.personal_notes.as_deref().is_some_and(may_be_mangled))
        .map(|(i, _)| i)
        .collect();
    let fetched: Vec<(usize, Result<Contact, GraphError>)> = futures::stream::iter(suspect)
        .map(|i| {
            let id = contacts[i].id.clone();
            let select = &select;
            async move { (i, client.get_contact(mailbox, &id, select).await) }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    for (i, r) in fetched {
        contacts[i].personal_notes = r?.personal_notes;
    }
    Ok(contacts)
}

/// Listed notes that may have lost line breaks to the list-response quirk (see [`read_folder`]).
fn may_be_mangled(notes: &str) -> bool {
    if notes.is_empty() || notes.contains(['\n', '\r']) {
        return false;
    }
    let bare_tag_line = sync_engine::tags::parse(notes).tags.is_some()
        && sync_engine::tags::user_text(Some(notes)).is_empty();
    !bare_tag_line
}

/// The progress bar of a phase (only drawn on a terminal; see `logging.rs`).
fn bar_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template("{spinner} {msg:18} [{bar:40}] {pos}/{len} ({elapsed})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// The result of one operation.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub result: ActionResult,
    pub error: Option<String>,
    pub request_id: Option<String>,
}

impl Outcome {
    fn planned() -> Self {
        Self {
            result: ActionResult::Planned,
            error: None,
            request_id: None,
        }
    }
    fn done(request_id: Option<String>) -> Self {
        Self {
            result: ActionResult::Done,
            error: None,
            request_id,
        }
    }
    fn from_error(e: &GraphError) -> Self {
        let conflict = e.kind == ErrorKind::Conflict && e.status == Some(412);
        Self {
            result: if conflict {
                ActionResult::Conflict
            } else {
                ActionResult::Failed
            },
            error: Some(e.to_string()),
            request_id: e.request_id.clone(),
        }
    }
}

fn folder_of(op: &Operation, hub_folder: &FolderRef) -> FolderRef {
    match op.target {
        Target::Hub => hub_folder.clone(),
        Target::UserDefault => FolderRef::Default,
    }
}

/// The Graph write of an operation: a POST for a create, a PATCH of the copy it names (guarded by
/// the etag read at the start, I9) for an update or a stamp — never one for the other.
fn write_request(op: &Operation, hub_folder: &FolderRef) -> WriteRequest {
    let body = serde_json::Value::Object(op.body());
    let folder = folder_of(op, hub_folder);
    match &op.write {
        Write::Create { .. } => WriteRequest::create(folder, body),
        Write::Update {
            contact_id, etag, ..
        }
        | Write::Stamp { contact_id, etag } => {
            WriteRequest::update(folder, contact_id.clone(), etag.clone(), body)
        }
        Write::Delete { contact_id, etag } => {
            WriteRequest::delete(folder, contact_id.clone(), etag.clone())
        }
    }
}

/// Executes the plan: the hub and the user mailboxes in parallel, each at the client's 4 in flight.
async fn apply(
    client: &GraphClient,
    plan: &Plan,
    hub: &str,
    hub_folder: &FolderRef,
) -> Vec<Outcome> {
    let ops = &plan.operations;
    let mut results: Vec<Option<Outcome>> = vec![None; ops.len()];
    let write_span = info_span!("write", "indicatif.pb_show" = tracing::field::Empty);
    write_span.pb_set_style(&bar_style());
    write_span.pb_set_length(ops.len() as u64);
    write_span.pb_set_message("applying writes");

    // The hub is one more mailbox in the same stream, queued first. Its writes need not finish
    // before the users' start: every operation is independent (SyncIds are chosen up front), and
    // a crash in between leaves user copies whose SyncId the next run groups and creates in the
    // hub (I4). Waiting for the hub would add its whole write time to every run (issue 8:
    // 1,000 hub creates at 4 in flight are 5 s of a 50-user cold run).
    let mut by_mailbox: Vec<(&str, Vec<usize>)> = Vec::new();
    let hub_idx: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].target == Target::Hub)
        .collect();
    if !hub_idx.is_empty() {
        by_mailbox.push((hub, hub_idx));
    }
    let mut users: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if op.target != Target::Hub {
            users.entry(op.mailbox.as_str()).or_default().push(i);
        }
    }
    by_mailbox.extend(users);
    // In CI there are no bars: a log line at every quarter says the run is alive.
    let total = ops.len();
    let applied = std::sync::atomic::AtomicUsize::new(0);
    let applied = &applied;
    let done: Vec<Vec<(usize, Outcome)>> = futures::stream::iter(by_mailbox)
        .map(|(mailbox, idx)| {
            let span = write_span.clone();
            async move {
                let r = apply_mailbox(client, ops, mailbox, &idx, hub_folder).await;
                span.pb_inc(idx.len() as u64);
                let before = applied.fetch_add(idx.len(), std::sync::atomic::Ordering::Relaxed);
                let after = before + idx.len();
                if total >= 100 && after * 4 / total > before * 4 / total && after < total {
                    info!("applied {after} of {total} writes");
                }
                r
            }
        })
        .buffer_unordered(WRITE_PARALLELISM)
        .collect()
        .instrument(write_span.clone())
        .await;
    for (i, o) in done.into_iter().flatten() {
        results[i] = Some(o);
    }
    results
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| Outcome {
                result: ActionResult::Failed,
                error: Some("not executed".into()),
                request_id: None,
            })
        })
        .collect()
}

/// Writes handed to the client at once per mailbox: one `$batch`. A mailbox runs one batch at a
/// time anyway (its 20 items 4 at a time fill the mailbox's 4 slots), so more buys no speed;
/// handing the client all of a mailbox's writes at once held every request body and response of
/// every mailbox in flight in memory together (issue 8: 2.1 GB peak for 1,000 users × 300
/// writes). Each write in flight costs ~7 KB (its body copied into request, batch item and JSON,
/// and its response).
const WRITE_CHUNK: usize = 20;

/// The writes of one mailbox, a chunk at a time.
async fn apply_mailbox(
    client: &GraphClient,
    ops: &[Operation],
    mailbox: &str,
    idx: &[usize],
    hub_folder: &FolderRef,
) -> Vec<(usize, Outcome)> {
    let mut out = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(WRITE_CHUNK) {
        out.extend(apply_chunk(client, ops, mailbox, chunk, hub_folder).await);
    }
    out
}

/// Some writes of one mailbox, then the notes re-write for creates whose notes did not stick
/// (SPEC §2.7: some mailboxes ignore `personalNotes` on create).
async fn apply_chunk(
    client: &GraphClient,
    ops: &[Operation],
    mailbox: &str,
    idx: &[usize],
    hub_folder: &FolderRef,
) -> Vec<(usize, Outcome)> {
    let writes: Vec<WriteRequest> = idx
        .iter()
        .map(|&i| write_request(&ops[i], hub_folder))
        .collect();
    let responses = client.execute_writes::<Contact>(mailbox, writes).await;
    let mut out = Vec::with_capacity(idx.len());
    let mut rewrites: Vec<(usize, WriteRequest)> = Vec::new();
    for (&i, r) in idx.iter().zip(responses) {
        let op = &ops[i];
        match r {
            Ok(resp) => {
                if matches!(op.write, Write::Create { .. })
                    && let Some(created) = &resp.body
                    && !sync_engine::tags::same_notes(
                        created.personal_notes.as_deref().unwrap_or(""),
                        &op.expected_notes,
                    )
                {
                    tracing::debug!(
                        "notes not kept on create in {mailbox} ({}); writing them again",
                        op.sync_id
                    );
                    let mut body = serde_json::Map::new();
                    body.insert(
                        "personalNotes".into(),
                        serde_json::Value::String(op.expected_notes.clone()),
                    );
                    rewrites.push((
                        i,
                        WriteRequest::Update {
                            folder: folder_of(op, hub_folder),
                            contact_id: created.id.clone(),
                            if_match: created.etag.clone(),
                            body: serde_json::Value::Object(body),
                        },
                    ));
                }
                out.push((i, Outcome::done(resp.request_id)));
            }
            Err(e) => {
                let o = Outcome::from_error(&e);
                if o.result == ActionResult::Conflict {
                    warn!(
                        "{mailbox}: contact {} changed after it was read; left for the next run",
                        op.sync_id
                    );
                } else {
                    warn!("{mailbox}: {:?} {} failed: {e}", op.action(), op.sync_id);
                }
                out.push((i, o));
            }
        }
    }
    if !rewrites.is_empty() {
        let (who, reqs): (Vec<usize>, Vec<WriteRequest>) = rewrites.into_iter().unzip();
        let responses = client.execute_writes::<Contact>(mailbox, reqs).await;
        for (i, r) in who.into_iter().zip(responses) {
            if let Err(e) = r {
                // The contact exists without its tag line; the next run matches it by email
                // and stamps it, so no duplicate follows — but this run did not finish it.
                if let Some(slot) = out.iter_mut().find(|(j, _)| *j == i) {
                    slot.1 = Outcome {
                        result: ActionResult::Failed,
                        error: Some(format!(
                            "created, but its personalNotes could not be written: {e}"
                        )),
                        request_id: e.request_id.clone(),
                    };
                }
            }
        }
    }
    out
}

fn record(op: &Operation, o: Outcome) -> ActionRecord {
    ActionRecord {
        step: op.step,
        action: match op.action() {
            Action::Create => ActionKind::Create,
            Action::Update => ActionKind::Update,
            Action::Stamp => ActionKind::Stamp,
            // The planner only deletes with trusted memory, and this binary plans without
            // memory until the state store is wired in (issue 12).
            Action::Delete => unreachable!("a delete planned without memory"),
        },
        mailbox: op.mailbox.clone(),
        folder: match op.target {
            Target::Hub => HUB_FOLDER,
            Target::UserDefault => USER_FOLDER,
        }
        .to_owned(),
        sync_id: op.sync_id.clone(),
        display_name: op.display_name.clone(),
        email: op.email.clone(),
        changed: op
            .changes()
            .iter()
            .map(|c| c.field.json_name().to_owned())
            .collect(),
        delta: op
            .changes()
            .iter()
            .map(|c| Delta {
                field: c.field.json_name().to_owned(),
                old: c.old.clone(),
                new: c.new.clone(),
            })
            .collect(),
        created_by: op.created_by.clone(),
        source_mailbox: op.source_mailbox.clone(),
        result: o.result,
        error: o.error,
        request_id: o.request_id,
    }
}

/// "Skipped" per step: existing contacts in the step's target folders that needed no write
/// (step 1: the hub folder; step 2: the users' default folders).
fn skipped_counts(input: &PlanInput, plan: &Plan) -> (usize, usize) {
    let mut hub_written = std::collections::HashSet::new();
    let mut user_written = std::collections::HashSet::new();
    for op in &plan.operations {
        let id = match &op.write {
            Write::Update { contact_id, .. }
            | Write::Stamp { contact_id, .. }
            | Write::Delete { contact_id, .. } => contact_id,
            // A create writes no existing contact.
            Write::Create { .. } => continue,
        };
        match op.target {
            Target::Hub => {
                hub_written.insert(id.as_str());
            }
            Target::UserDefault => {
                user_written.insert((op.mailbox.as_str(), id.as_str()));
            }
        }
    }
    let hub_total = input.hub.contacts.len();
    let user_total: usize = input.users.iter().map(|u| u.contacts.len()).sum();
    (
        hub_total.saturating_sub(hub_written.len()),
        user_total.saturating_sub(user_written.len()),
    )
}

fn describe_problem(p: &sync_engine::plan::DataProblem) -> String {
    let folder = match p.target {
        Target::Hub => HUB_FOLDER,
        Target::UserDefault => USER_FOLDER,
    };
    format!(
        "{:?} in {}/{folder} ({}): {} [contacts: {}]",
        p.kind,
        p.mailbox,
        p.key,
        p.detail,
        p.contact_ids.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn federated_source(c: graph::Credential) -> AssertionSource {
        match c {
            graph::Credential::Federated(source) => source,
            other => panic!("not federated: {other:?}"),
        }
    }

    /// The token of `ClientAssertionEnv` comes from the injected snapshot, not the process
    /// environment (hermetic), and a missing one is explained in CI terms.
    #[test]
    fn an_assertion_variable_is_read_from_the_environment_snapshot() {
        let name = "SYNCCONTACTS_TEST_SNAPSHOT_ONLY_JWT";
        let vars: Env = [(name, "header.payload.sig")].into_iter().collect();
        let c = credential(&CredentialConfig::AssertionEnv(name.into()), &vars);
        assert!(format!("{c:?}").contains(name));
        assert_eq!(
            federated_source(c).read().unwrap().expose(),
            "header.payload.sig"
        );

        for vars in [Env::default(), [(name, " \n")].into_iter().collect()] {
            let source = federated_source(credential(
                &CredentialConfig::AssertionEnv(name.into()),
                &vars,
            ));
            let e = source.read().unwrap_err();
            assert!(e.contains(name), "{e}");
            assert!(e.contains("id_tokens"), "{e}");
        }
    }

    #[tokio::test]
    async fn a_missing_assertion_variable_fails_the_token_without_a_request() {
        let name = "SYNCCONTACTS_TEST_SURELY_UNSET_VAR";
        // Port 9 (discard) on loopback: a request would be a transport error, not an auth one.
        let endpoints = graph::Endpoints::new("http://127.0.0.1:9", "http://127.0.0.1:9").unwrap();
        let cfg = ClientConfig::new(
            "contoso.com",
            "app-1",
            credential(
                &CredentialConfig::AssertionEnv(name.into()),
                &Env::default(),
            ),
            endpoints,
        );
        let client = GraphClient::new(cfg).unwrap();
        let e = client.token().await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Auth, "{e}");
        assert!(e.message.contains(name), "{e}");
        assert_eq!(client.stats().token_requests, 0);
    }

    #[test]
    fn an_assertion_file_is_read_again_at_each_token_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_token");
        std::fs::write(&path, "token-one").unwrap();
        let source = federated_source(credential(
            &CredentialConfig::AssertionFile(path.clone()),
            &Env::default(),
        ));
        assert_eq!(source.read().unwrap().expose(), "token-one");
        std::fs::write(&path, "token-two").unwrap();
        assert_eq!(source.read().unwrap().expose(), "token-two");
        std::fs::write(&path, "").unwrap();
        let e = source.read().unwrap_err();
        assert!(e.contains("id_token") && e.contains("empty"), "{e}");
        std::fs::remove_file(&path).unwrap();
        let e = source.read().unwrap_err();
        assert!(e.contains("cannot read the federated token file"), "{e}");
    }

    #[test]
    fn an_untrusted_certificate_says_which_setting_trusts_it() {
        let e = with_hint(GraphError::new(
            ErrorKind::UntrustedCertificate,
            "requesting a token: the server's TLS certificate is not trusted (invalid peer certificate)",
        ));
        assert!(
            e.message.ends_with(
                "— if a TLS-intercepting proxy or a test endpoint is in the way, set \
                 AUTOMATION_SYNCCONTACTS_CA_FILE to its CA certificate (PEM)"
            ),
            "{e}"
        );
        let other = GraphError::new(ErrorKind::Transport, "reset");
        assert_eq!(with_hint(other.clone()), other);
    }

    fn err(kind: ErrorKind, status: u16) -> GraphError {
        GraphError {
            kind,
            status: Some(status),
            code: None,
            message: "x".into(),
            request_id: Some("rid".into()),
        }
    }

    #[test]
    fn a_412_is_a_conflict_left_for_the_next_run_not_a_failure() {
        let o = Outcome::from_error(&err(ErrorKind::Conflict, 412));
        assert_eq!(o.result, ActionResult::Conflict);
        assert_eq!(o.request_id.as_deref(), Some("rid"));
        // A 409 (folder exists and the like) is not a user edit: a failure.
        assert_eq!(
            Outcome::from_error(&err(ErrorKind::Conflict, 409)).result,
            ActionResult::Failed
        );
        assert_eq!(
            Outcome::from_error(&err(ErrorKind::Server, 503)).result,
            ActionResult::Failed
        );
    }

    #[test]
    fn only_notes_without_any_line_break_that_are_not_a_bare_tag_line_are_re_read() {
        assert!(may_be_mangled("blank lines aroundSyncId=x"));
        assert!(may_be_mangled("a single line of user text"));
        assert!(!may_be_mangled(""));
        assert!(!may_be_mangled(
            "text\r\nSyncId=0a9b8c7d-0000-4000-8000-0000000000de;CreatedBy=a"
        ));
        assert!(!may_be_mangled(
            "SyncId=0a9b8c7d-0000-4000-8000-0000000000de;CreatedBy=a;LastUpdatedAt=2026-01-01T00:00:00.0000000Z;LastUpdatedBy=a"
        ));
    }

    /// A contact as read: its etag is `W/"<id>"`.
    fn read_contact(id: &str, minute: i64, job: &str, notes: Option<&str>) -> sync_engine::Contact {
        sync_engine::Contact {
            id: id.into(),
            etag: Some(format!("W/\"{id}\"")),
            last_modified_date_time: Some(jiff::Timestamp::from_second(minute * 60).unwrap()),
            personal_notes: notes.map(Into::into),
            fields: sync_engine::ContactFields {
                display_name: Some("Adele Vance".into()),
                job_title: Some(job.into()),
                email_addresses: vec![sync_engine::EmailAddress {
                    name: None,
                    address: Some("adele@contoso.com".into()),
                }],
                ..Default::default()
            },
        }
    }

    /// Issue 11, bug 2: an update or a stamp is a PATCH of exactly the copy it names, with that
    /// copy's etag, and only a create is a POST. (Before, an operation without a contact id fell
    /// back to a POST, so a planner bug would have duplicated a contact; the operation types now
    /// make that case unwritable, and this pins the mapping.)
    #[test]
    fn update_and_stamp_patch_their_own_contact_and_only_create_posts() {
        let tag = "SyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301;CreatedBy=hub@contoso.com";
        let snapshot = |mailbox: &str, contacts| MailboxSnapshot {
            mailbox: mailbox.into(),
            contacts,
            read: ReadStatus::Complete,
        };
        let input = PlanInput {
            hub: snapshot(
                "hub@contoso.com",
                vec![read_contact("h1", 9, "Lead", Some(tag))],
            ),
            users: vec![
                // Stale data: an update of a1.
                snapshot(
                    "a@contoso.com",
                    vec![read_contact("a1", 1, "Dev", Some(tag))],
                ),
                // Same data, no SyncId yet: a stamp of b1.
                snapshot("b@contoso.com", vec![read_contact("b1", 1, "Lead", None)]),
                // Missing: a create.
                snapshot("c@contoso.com", vec![]),
            ],
            update_existing: true,
            now: jiff::Timestamp::from_second(3600).unwrap(),
            memory: None,
            options: Default::default(),
        };
        let plan = sync_engine::plan(&input, &mut || unreachable!("every contact has a SyncId"));
        let hub_folder = FolderRef::Id("hub-folder".into());
        // (method, contact id, If-Match, folder, body): everything a request says.
        let parts = |r: &WriteRequest| match r.clone() {
            WriteRequest::Create { folder, body } => ("POST", None, None, folder, body),
            WriteRequest::Update {
                folder,
                contact_id,
                if_match,
                body,
            } => ("PATCH", Some(contact_id), if_match, folder, body),
            WriteRequest::Delete {
                folder,
                contact_id,
                if_match,
            } => (
                "DELETE",
                Some(contact_id),
                if_match,
                folder,
                serde_json::Value::Null,
            ),
        };
        assert_eq!(plan.operations.len(), 3, "{:?}", plan.operations);
        for op in &plan.operations {
            let (method, id, etag, folder, body) = parts(&write_request(op, &hub_folder));
            let expected = match (op.action(), op.mailbox.as_str()) {
                (Action::Update, "a@contoso.com") => ("PATCH", Some("a1")),
                (Action::Stamp, "b@contoso.com") => ("PATCH", Some("b1")),
                (Action::Create, "c@contoso.com") => ("POST", None),
                other => panic!("unexpected operation {other:?}"),
            };
            assert_eq!((method, id.as_deref()), expected, "{op:?}");
            assert_eq!(
                etag,
                id.map(|id| format!("W/\"{id}\"")),
                "the copy's own etag"
            );
            assert_eq!(folder, FolderRef::Default, "all three are user folders");
            // The body sent is the operation's own (`Operation::body`, what the planner tested).
            assert_eq!(body, serde_json::Value::Object(op.body()));
        }
    }
}
