//! Orchestration of one run: every tenant's client, then the user scopes that wait on verified
//! domains and every tenant's scope rules (groups), then tenant by tenant: token → user scope →
//! hub folder → the tenant's memory → one read of every folder (through its delta link when the
//! memory holds one) → the engine's plan → the writes → delta baselines → the report
//! (docs/compatibility.md and docs/sync-rules.md §3, ARCHITECTURE "One run").
//!
//! Rules this module keeps: every tenant's client is built (certificates loaded, URLs checked)
//! before the first request of any tenant (I6); one tenant failing never stops the others; a
//! dry run writes nothing at all, not even the hub folder (docs/compatibility.md §3 FIX), and its
//! planned actions are exactly what a real run would do with the same snapshots (I8: both come from
//! the same `plan` call on the same reads); every update carries the
//! etag read at the start (`If-Match`, I9). It never decides sync rules (that is `sync-engine`)
//! and never retries Graph calls itself (that is `graph`).
//!
//! The state file is opened once, before any request (a file this run may not use refuses it,
//! exit 2); each tenant's memory goes into its plan, the run marker is recorded before its first
//! write, and what the run leaves is committed in [`commit_written`] after its writes
//! (`remember.rs`, docs/state-and-deletes.md §1).
//!
//! Every run ends: one [`RunStop`] (SIGINT, SIGTERM, the deadline) is shared by every tenant's
//! client, so once it fires no request starts; a tenant it cuts short is `stopped`, a tenant not
//! reached yet is reported as not started, and what was written is committed all the same (a
//! stopped tenant's memory holds its done writes, its tombstones and its pending creates, so the
//! next run loads it and completes the rest). A tenant whose endpoint became unreachable (its
//! client's breaker) fails without trying the rest, and is committed too.
//!
//! Files: `clients.rs` (a tenant's configuration → its Graph client, credentials), `scope.rs`
//! (pending test-user scopes → verified domains, before any tenant writes), `groups.rs` (the
//! scope rules: IncludeGroups, ExcludeGroups, ExcludeUsers resolved before any tenant writes,
//! and applied to each tenant's users), `read.rs` (token,
//! user scope, hub folder, one read of every folder), `delta.rs` (which folders are read through
//! their delta link, a round made into a snapshot, the baseline round after the writes),
//! `remember.rs` (the tenant's memory: load,
//! run marker, commit), `apply.rs` (the plan's writes, mailbox by mailbox), `private_flag.rs`
//! (Outlook's Private flag for contacts a delta round returns without it, and what reading it
//! costs). Turning the plan and the outcomes into the report is `report::build`.

mod apply;
mod clients;
mod delta;
pub mod groups;
pub mod private_flag;
mod read;
mod remember;
mod scope;

use std::sync::Arc;

use graph::pacing::AppBudgets;
use graph::{Clock, FolderRef, GraphClient, GraphError};
use sync_engine::plan::{Plan, PlanInput, WriteResult};
use sync_state::Binding;
use tracing::{Instrument as _, info, info_span, warn};

use crate::cli::OutputOptions;
use crate::config::{Config, ConfigError, Env, TenantConfig};
use crate::exit::{RunEnd, TenantOutcome, process_exit_code};
use crate::failure::{Failure, PERM_CONTACTS, StageFailure};
use crate::output::Out;
use crate::report::{
    self, ActionRecord, ActionResult, Outcome, RunReport, StageFacts, StepTotals, TenantReport,
    TenantStatus,
};
use crate::state::{self as state_file, Store};
use crate::stop::RunStop;

pub use clients::{build_clients, client_config};
pub use read::Snapshots;
pub use scope::{FIX_UNKNOWN_TEST_USER, NOT_IN_DIRECTORY, Undecided, resolve_pending_scopes};

/// The hub folder's name (docs/compatibility.md §3).
pub const HUB_FOLDER: &str = "All Contacts";
/// How a user's default folder is named in output.
pub const USER_FOLDER: &str = "Contacts";

/// What the run needs from outside besides configuration: the clock (LastUpdatedAt), the SyncId
/// generator, the run's stop and the app's request budget — one of each per process, shared by
/// every tenant. Injected so tests can pin them.
#[derive(Clone)]
pub struct RunEnv {
    pub clock: Arc<dyn Clock>,
    pub new_sync_id: Arc<dyn Fn() -> String + Send + Sync>,
    /// SIGINT, SIGTERM or the deadline (`stop::watch_signals`, `stop::start_deadline`); a library
    /// caller may fire it itself.
    pub stop: RunStop,
    /// Graph's budget per app, shared by every tenant's client (all tenants are one app).
    pub app_budgets: AppBudgets,
}

impl Default for RunEnv {
    fn default() -> Self {
        Self {
            clock: Arc::new(graph::SystemClock),
            new_sync_id: Arc::new(|| uuid::Uuid::new_v4().to_string()),
            stop: RunStop::new(),
            app_budgets: AppBudgets::new(),
        }
    }
}

/// Runs every tenant in turn and prints each tenant's text as it finishes. Before the first
/// request of any tenant, every client is built; before the first write of any tenant, every
/// user scope that waits on verified domains is decided and every tenant's scope rules are
/// resolved — a test-user key that matches no tenant, or a named group that is not there,
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
    let mut store = state_file::open(&config.state, config.dry_run).map_err(|p| ConfigError {
        problems: vec![p],
        read_directory: false,
    })?;
    let undecided = resolve_pending_scopes(&mut config, &clients).await?;
    // Still before the first write of any tenant: a named group that is not there refuses the
    // run (exit 2), so no tenant is synced with a scope its configuration did not mean.
    let rules = groups::resolve_scope_rules(&config, &clients).await;
    if let Some(e) = groups::refusal(&rules) {
        return Err(e);
    }
    if config.dry_run {
        info!(
            "dry run ({}): nothing will be written",
            config.dry_run_origin.as_deref().unwrap_or("DryRun")
        );
    }
    let mut report = RunReport {
        dry_run: config.dry_run,
        ..RunReport::default()
    };
    let scopes = undecided.iter().zip(&rules);
    for ((t, client), (undecided, rules)) in config.tenants.iter().zip(clients).zip(scopes) {
        let tr = match env.stop.cause() {
            // Stopped before this tenant: it starts nothing, and says so.
            Some(cause) => TenantReport::failed(
                &t.tenant_id,
                &t.hub,
                TenantOutcome::Stopped,
                format!("not started: the run was {}", cause.describe()),
            ),
            None => {
                let span = info_span!("tenant", tenant = %t.label());
                let run = TenantRun {
                    dry_run: config.dry_run,
                    allow_deletes: config.allow_deletes,
                    env,
                };
                let scope = TenantScope {
                    undecided: undecided.as_ref(),
                    rules,
                };
                sync_tenant(t, &client, scope, &run, &mut store)
                    .instrument(span)
                    .await
            }
        };
        let lines = report::tenant_text(&tr, config.dry_run, opts.detail, opts.actions);
        out.lines(lines.iter().map(String::as_str));
        report.tenants.push(tr);
    }
    report.stopped_by = env.stop.cause();
    report.interrupted = env.stop.interrupted().is_some();
    Ok(report)
}

/// What every tenant of a run shares.
struct TenantRun<'a> {
    dry_run: bool,
    /// `--allow-deletes N`.
    allow_deletes: Option<usize>,
    env: &'a RunEnv,
}

/// What was decided about a tenant's users before the first write of any tenant.
#[derive(Clone, Copy)]
pub struct TenantScope<'a> {
    /// Why its test-user scope is still undecided, when it is.
    pub undecided: Option<&'a Undecided>,
    /// Its scope rules, resolved (`groups.rs`).
    pub rules: &'a groups::Resolution,
}

/// One tenant, start to end. Never panics on Graph trouble; every failure ends up in the report.
async fn sync_tenant(
    t: &TenantConfig,
    client: &GraphClient,
    scope: TenantScope<'_>,
    run: &TenantRun<'_>,
    store: &mut Store,
) -> TenantReport {
    let (dry_run, env) = (run.dry_run, run.env);
    let read_failed = |StageFailure { stage, failure: f }: StageFailure| {
        let message = stopped_words(&f, env);
        tracing::error!("{message}");
        let mut r = TenantReport::failed(&t.tenant_id, &t.hub, f.outcome(), message);
        r.requests = requests(client);
        r.stages = StageFacts {
            label: t.label(),
            stopped_at: Some(stage),
            read: Vec::new(),
        };
        r
    };
    let prepared = match read::prepare(t, client, scope, dry_run).await {
        Ok(p) => p,
        Err(e) => return read_failed(e),
    };
    let binding = prepared.hub_folder.as_ref().map(|f| {
        state_file::binding(
            prepared.tenant_guid(),
            &t.tenant_id,
            prepared.hub_object_id.as_deref(),
            &t.hub,
            &f.id,
        )
    });
    // The memory first: with it, folders are read through their delta links (`delta.rs`).
    let loaded = remember::load(store, binding.as_ref(), &t.hub);
    let select = t.options.fields.select_list();
    let resume = delta::resume(
        loaded.state.as_ref().filter(|_| loaded.memory.is_some()),
        &select,
    );
    let mut snaps = match read::read_folders(t, client, prepared, resume).await {
        Ok(s) => s,
        Err(e) => return read_failed(e),
    };
    let hub_folder_state = snaps.hub_folder_state;

    let read: Vec<String> = snaps.users.iter().map(|u| u.mailbox.clone()).collect();
    let input = PlanInput {
        hub: std::mem::take(&mut snaps.hub),
        users: std::mem::take(&mut snaps.users),
        update_existing: t.options.update_existing,
        now: remember::plan_time(env.clock.now()),
        memory: loaded.memory,
        options: remember::delete_options(t, run.allow_deletes),
        fields: t.options.fields,
        private_categories: t.options.private_categories.clone(),
    };
    let gen_id = env.new_sync_id.clone();
    let plan = sync_engine::plan::plan(&input, &mut || gen_id());
    let (problems, repairs) = report::build::problems_and_repairs(&plan);
    info!(
        "planned {} writes ({} data problems, {} repairs of an earlier run's work)",
        plan.operations.len(),
        problems.len(),
        repairs.len()
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
    let (applied, halt): (Vec<(Outcome, WriteResult)>, _) = if dry_run {
        let planned = (Outcome::planned(), WriteResult::NotRun);
        (vec![planned; plan.operations.len()], None)
    } else if let Err(e) = remember::record_start(store, binding.as_ref(), &input, &plan) {
        warn!("{e}; nothing is written for this tenant");
        let not_sent = Outcome {
            result: ActionResult::Failed,
            error: Some(format!("not sent: {e}")),
            request_id: None,
        };
        state_error = Some(e);
        (
            vec![(not_sent, WriteResult::NotRun); plan.operations.len()],
            None,
        )
    } else {
        let w = apply::apply(client, &plan, &t.hub, &hub_folder, &env.stop).await;
        let applied = w.applied.into_iter().map(|a| (a.outcome, a.result));
        (applied.collect(), w.halt)
    };
    let (outcomes, results): (Vec<Outcome>, Vec<WriteResult>) = applied.into_iter().unzip();

    let actions: Vec<ActionRecord> = plan
        .operations
        .iter()
        .zip(outcomes)
        .map(|(op, r)| report::build::record(op, r))
        .collect();
    let (skip1, skip2) = report::build::skipped_counts(&input, &plan);
    let book = remember::book_report(&plan, t, store);
    let mut failed_mailboxes = snaps.failed;
    failed_mailboxes.extend(remember::bad_read_notes(&plan));
    let repaired = report::build::repaired(&repairs, &actions);
    let step1 = report::totals(&actions, 1, skip1, repaired);
    let step2 = report::totals(&actions, 2, skip2, 0);
    let end = |state_error: Option<&str>| {
        tenant_end(
            t,
            env,
            halt.as_ref(),
            &actions,
            failed_mailboxes.len(),
            state_error,
        )
    };
    let (mut outcome, mut error) = end(state_error.as_deref());
    if !dry_run
        && state_error.is_none()
        && let Some(b) = &binding
    {
        // Baselines only after writes that all ran: a run cut short reads its folders whole
        // next time.
        let take_baselines = halt.is_none() && env.stop.cause().is_none();
        let kept = delta::kept_folders(
            client,
            delta::RunDone {
                input: &input,
                plan: &plan,
                results: &results,
            },
            &snaps.links,
            &b.hub_folder_id,
            &select,
            take_baselines,
        )
        .await;
        let written = Written {
            kept: &kept,
            binding: b,
            loaded: loaded.state.as_ref(),
            input: &input,
            plan: &plan,
            results: &results,
            totals: [&step1, &step2],
            exit_code: tenant_exit_code(outcome, env, book.brake_held()),
        };
        if let Err(e) = commit_written(store, &written, env) {
            warn!("{e}");
            (outcome, error) = end(Some(&e));
        }
    }
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
        repairs,
        actions,
        state: Some(word.to_string()),
        book,
        stages: StageFacts {
            label: t.label(),
            stopped_at: None,
            read,
        },
    }
}

/// How a tenant that planned ended, and what its last line says: the client's halt (the run's
/// stop, or an endpoint gone) decides first; failed writes, failed mailboxes or a state file that
/// could not record the run make it partial. `state_error` is said after the rest.
fn tenant_end(
    t: &TenantConfig,
    env: &RunEnv,
    halt: Option<&GraphError>,
    actions: &[ActionRecord],
    failed_mailboxes: usize,
    state_error: Option<&str>,
) -> (TenantOutcome, Option<String>) {
    let count = |r: ActionResult| actions.iter().filter(|a| a.result == r).count();
    let failed_writes = count(ActionResult::Failed);
    let (outcome, mut message) = match halt {
        // The client halted: the run's stop, or an endpoint gone (its breaker).
        Some(e) => {
            let f = Failure::graph(t, "writing", e, PERM_CONTACTS);
            let done = report::thousands(count(ActionResult::Done));
            let total = report::thousands(actions.len());
            let message = match env
                .stop
                .cause()
                .filter(|_| f.outcome() == TenantOutcome::Stopped)
            {
                Some(cause) => format!(
                    "{} after {done} of {total} writes; the next run completes the rest",
                    cause.describe(),
                ),
                None => format!("{}; {done} of {total} writes done", f.message()),
            };
            (f.outcome(), message)
        }
        None if failed_writes > 0 || failed_mailboxes > 0 || state_error.is_some() => (
            TenantOutcome::Partial,
            format!(
                "{failed_mailboxes} mailbox(es) could not be read and {failed_writes} write(s) \
                 failed; the run is safe to repeat"
            ),
        ),
        None => return (TenantOutcome::Ok, None),
    };
    if let Some(s) = state_error {
        message.push_str("; ");
        message.push_str(s);
    }
    (outcome, Some(message))
}

/// What a tenant's writes came to, for the state's commit.
struct Written<'a> {
    binding: &'a Binding,
    /// The folders' delta links and the contacts remembered with them.
    kept: &'a delta::KeptFolders<'a>,
    /// The records the memory was loaded from (carried into the commit when it was used).
    loaded: Option<&'a sync_state::TenantState>,
    input: &'a PlanInput,
    plan: &'a Plan,
    /// One per operation: what became of it (done, unconfirmed, not run, …).
    results: &'a [WriteResult],
    totals: [&'a StepTotals; 2],
    /// The code this tenant alone would exit with (the run log's).
    exit_code: i32,
}

/// The state store's commit point (issue 12): what this tenant's writes did, recorded as soon
/// as they are over — after a complete apply, one the run's stop cut short (SIGINT, SIGTERM, the
/// deadline, an endpoint gone), and one with failed writes alike; never in a dry run, which
/// writes nothing, nor when the run start could not be recorded (nothing was written then).
/// The one transaction per tenant, with the plan and each write's result (`next_memory`);
/// `Err` says what the next run does about a commit that failed.
fn commit_written(store: &mut Store, w: &Written<'_>, env: &RunEnv) -> Result<(), String> {
    remember::commit(
        store,
        w.binding,
        w.kept,
        w.loaded,
        w.input,
        w.plan,
        w.results,
        w.totals,
        w.exit_code,
        env.clock.now(),
    )
}

/// The exit code of a run of this tenant alone (`exit::process_exit_code`, the one place that
/// decides codes): the state's run log keeps it.
fn tenant_exit_code(outcome: TenantOutcome, env: &RunEnv, deletes_held: bool) -> i32 {
    let end = RunEnd {
        interrupted: env.stop.interrupted(),
        deletes_held,
        ..RunEnd::of_tenants([outcome])
    };
    i32::from(process_exit_code(&end).code())
}

/// A tenant's failure in words: a stop says what stopped the run.
fn stopped_words(f: &Failure, env: &RunEnv) -> String {
    match env.stop.cause() {
        Some(cause) if f.outcome() == TenantOutcome::Stopped => {
            format!("{} while reading: no contact was written", cause.describe())
        }
        _ => f.message(),
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
