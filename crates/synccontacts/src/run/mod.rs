//! Orchestration of one run: every tenant's client, then the user scopes that wait on verified
//! domains, then tenant by tenant: token → user scope → hub folder → one read of every folder →
//! the engine's plan → the writes → the report (SPEC §2–§3, ARCHITECTURE "One run").
//!
//! Rules this module keeps: every tenant's client is built (certificates loaded, URLs checked)
//! before the first request of any tenant (I6); one tenant failing never stops the others; a
//! dry run writes nothing at all, not even the hub folder (SPEC §2.3 FIX), and its planned actions
//! are exactly what a real run would do with the same snapshots (I8: both come from the same
//! `plan` call on the same reads); every update carries the
//! etag read at the start (`If-Match`, I9). It never decides sync rules (that is `sync-engine`)
//! and never retries Graph calls itself (that is `graph`).
//!
//! The state file is opened once, before any request (a file this run may not use refuses it,
//! exit 2); each tenant's memory goes into its plan and what the run leaves is committed after
//! its writes (`remember.rs`, docs/state-and-deletes.md §1).
//!
//! Files: `clients.rs` (a tenant's configuration → its Graph client, credentials), `scope.rs`
//! (pending test-user scopes → verified domains, before any tenant writes), `read.rs` (token,
//! user scope, hub folder, one read of every folder), `remember.rs` (the tenant's memory: load,
//! run marker, commit), `apply.rs` (the plan's writes, mailbox by mailbox). Turning the plan and
//! the outcomes into the report is `report::build`.

mod apply;
mod clients;
mod read;
mod remember;
mod scope;

use std::sync::Arc;

use graph::{Clock, FolderRef, GraphClient, GraphError};
use sync_engine::plan::{PlanInput, WriteResult};
use tracing::{Instrument as _, info, info_span, warn};

use crate::cli::OutputOptions;
use crate::config::{Config, ConfigError, Env, TenantConfig};
use crate::exit::TenantOutcome;
use crate::output::Out;
use crate::report::{
    self, ActionRecord, ActionResult, Outcome, RunReport, TenantReport, TenantStatus,
};
use crate::state::{self as state_file, Store};

pub(crate) use clients::with_hint;
pub use clients::{build_clients, client_config};
pub use read::Snapshots;
pub use scope::{FIX_UNKNOWN_TEST_USER, NOT_IN_DIRECTORY, resolve_pending_scopes};

/// The hub folder's name (SPEC §2.3).
pub const HUB_FOLDER: &str = "All Contacts";
/// How a user's default folder is named in output.
pub const USER_FOLDER: &str = "Contacts";

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

/// Runs every tenant in turn and prints each tenant's text as it finishes. Before the first
/// request of any tenant, every client is built; before the first write of any tenant, every
/// user scope that waits on verified domains is decided — a test-user key that matches no tenant
/// refuses the whole run (`Err`, exit 2), as any configuration error does.
pub async fn sync_all(
    mut config: Config,
    vars: &Env,
    env: &RunEnv,
    opts: OutputOptions,
    out: &Out,
) -> Result<RunReport, ConfigError> {
    let clients = build_clients(&config, env, vars)?;
    // Before any request: a state file this run may not use (another run holds it, a newer
    // synccontacts wrote it) refuses the run, like any configuration error.
    let mut store = state_file::open(&config.state, config.dry_run)
        .map_err(|p| ConfigError { problems: vec![p] })?;
    let scope_errors = resolve_pending_scopes(&mut config, &clients).await?;
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
    for ((t, client), scope_error) in config.tenants.iter().zip(clients).zip(&scope_errors) {
        let span = info_span!("tenant", tenant = %t.label());
        let run = TenantRun {
            dry_run: config.dry_run,
            allow_deletes: config.allow_deletes,
            env,
        };
        let tr = sync_tenant(t, &client, scope_error.as_ref(), &run, &mut store)
            .instrument(span)
            .await;
        let lines = report::tenant_text(&tr, config.dry_run, opts.detail);
        out.lines(lines.iter().map(String::as_str));
        report.tenants.push(tr);
    }
    Ok(report)
}

/// What stopped a tenant before it could plan (no token, no hub, no users): its message and how
/// the exit code sees it. One tenant's failure never stops the others.
struct TenantFailure {
    outcome: TenantOutcome,
    message: String,
}

impl TenantFailure {
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

/// What every tenant of a run shares.
struct TenantRun<'a> {
    dry_run: bool,
    /// `--allow-deletes N`.
    allow_deletes: Option<usize>,
    env: &'a RunEnv,
}

/// One tenant, start to end. Never panics on Graph trouble; every failure ends up in the report.
/// `scope_error` is why the tenant's verified domains could not be read, when its user scope
/// needed them.
async fn sync_tenant(
    t: &TenantConfig,
    client: &GraphClient,
    scope_error: Option<&GraphError>,
    run: &TenantRun<'_>,
    store: &mut Store,
) -> TenantReport {
    let dry_run = run.dry_run;
    let mut snaps = match read::read_tenant(t, client, scope_error, dry_run).await {
        Ok(s) => s,
        Err(stop) => {
            tracing::error!("{}", stop.message);
            let mut r = TenantReport::failed(&t.tenant_id, &t.hub, stop.outcome, stop.message);
            r.requests = requests(client);
            return r;
        }
    };
    let hub_folder_state = snaps.hub_folder_state;
    let binding = snaps.hub_folder.as_ref().map(|f| {
        state_file::binding(
            snaps.tenant_guid.as_deref(),
            &t.tenant_id,
            snaps.hub_object_id.as_deref(),
            &t.hub,
            &f.id,
        )
    });
    let loaded = remember::load(store, binding.as_ref(), &t.hub);

    let input = PlanInput {
        hub: std::mem::take(&mut snaps.hub),
        users: std::mem::take(&mut snaps.users),
        update_existing: t.options.update_existing,
        now: remember::plan_time(run.env.clock.now()),
        memory: loaded.memory,
        options: remember::delete_options(t, run.allow_deletes),
    };
    let gen_id = run.env.new_sync_id.clone();
    let plan = sync_engine::plan::plan(&input, &mut || gen_id());
    info!(
        "planned {} writes ({} data problems)",
        plan.operations.len(),
        plan.problems.len()
    );
    let word = loaded.word.clone().after(&plan.memory_verdict);
    if word != loaded.word {
        remember::announce(&word);
    }

    let hub_folder = match &snaps.hub_folder {
        Some(f) => FolderRef::Id(f.id.clone()),
        None => FolderRef::Default, // dry run only: nothing is written
    };
    let mut state_error = None;
    let applied: Vec<(Outcome, WriteResult)> = if dry_run {
        vec![(Outcome::planned(), WriteResult::NotRun); plan.operations.len()]
    } else if let Err(e) = remember::record_start(store, binding.as_ref(), &input, &plan) {
        warn!("{e}; nothing is written for this tenant");
        let not_sent = Outcome {
            result: ActionResult::Failed,
            error: Some(format!("not sent: {e}")),
            request_id: None,
        };
        state_error = Some(e);
        vec![(not_sent, WriteResult::NotRun); plan.operations.len()]
    } else {
        apply::apply(client, &plan, &t.hub, &hub_folder)
            .await
            .into_iter()
            .map(|a| (a.outcome, a.result))
            .collect()
    };
    let (outcomes, results): (Vec<Outcome>, Vec<WriteResult>) = applied.into_iter().unzip();

    let actions: Vec<ActionRecord> = plan
        .operations
        .iter()
        .zip(outcomes)
        .map(|(op, r)| report::build::record(op, r))
        .collect();
    let (skip1, skip2) = report::build::skipped_counts(&input, &plan);
    let problems = plan
        .problems
        .iter()
        .map(report::build::describe_problem)
        .collect();
    let book = remember::book_report(&plan, t, store);
    let mut failed_mailboxes = snaps.failed;
    failed_mailboxes.extend(remember::bad_read_notes(&plan));
    let mut step1 = report::totals(&actions, 1, skip1);
    let step2 = report::totals(&actions, 2, skip2);
    step1.repaired = remember::repaired(&book, &actions);

    let failed_writes = actions
        .iter()
        .filter(|a| a.result == ActionResult::Failed)
        .count();
    let partial = |state_error: &Option<String>| {
        failed_writes > 0 || !failed_mailboxes.is_empty() || state_error.is_some()
    };
    if !dry_run
        && state_error.is_none()
        && let Some(b) = &binding
    {
        let code = if partial(&state_error) {
            1
        } else if book.brake_held() {
            4
        } else {
            0
        };
        let committed = remember::commit(
            store,
            b,
            loaded.state.as_ref(),
            &input,
            &plan,
            &results,
            [&step1, &step2],
            code,
            run.env.clock.now(),
        );
        if let Err(e) = committed {
            warn!("{e}");
            state_error = Some(e);
        }
    }
    let outcome = if partial(&state_error) {
        TenantOutcome::Partial
    } else {
        TenantOutcome::Ok
    };
    let error = (outcome == TenantOutcome::Partial).then(|| {
        let mut e = format!(
            "{} mailbox(es) could not be read and {failed_writes} write(s) failed; the run is safe to repeat",
            failed_mailboxes.len()
        );
        if let Some(s) = &state_error {
            e.push_str("; ");
            e.push_str(s);
        }
        e
    });
    TenantReport {
        tenant_id: t.tenant_id.clone(),
        status: if outcome == TenantOutcome::Ok {
            TenantStatus::Ok
        } else {
            TenantStatus::Failed
        },
        outcome,
        error,
        users: snaps.users_in_scope,
        hub: t.hub.clone(),
        hub_folder: hub_folder_state,
        step1,
        step2,
        requests: requests(client),
        skipped_mailboxes: snaps.skipped,
        failed_mailboxes,
        problems,
        actions,
        state: Some(word.to_string()),
        book,
    }
}

fn requests(client: &GraphClient) -> u64 {
    let s = client.stats();
    s.requests + s.token_requests
}

/// The progress bar of a phase (only drawn on a terminal; see `logging.rs`).
fn bar_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template("{spinner} {msg:18} [{bar:40}] {pos}/{len} ({elapsed})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ")
}
