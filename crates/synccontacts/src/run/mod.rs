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
//! Every run ends: one [`RunStop`] (SIGINT, SIGTERM, the deadline) is shared by every tenant's
//! client, so once it fires no request starts; a tenant it cuts short is `stopped`, a tenant not
//! reached yet is reported as not started, and what was written is committed all the same. A
//! tenant whose endpoint became unreachable (its client's breaker) fails without trying the rest.
//!
//! Files: `clients.rs` (a tenant's configuration → its Graph client, credentials), `scope.rs`
//! (pending test-user scopes → verified domains, before any tenant writes), `read.rs` (token,
//! user scope, hub folder, one read of every folder), `apply.rs` (the plan's writes, mailbox by
//! mailbox). Turning the plan and the outcomes into the report is `report::build`.

mod apply;
mod clients;
mod read;
mod scope;

use std::sync::Arc;

use graph::pacing::AppBudgets;
use graph::{Clock, FolderRef, GraphClient};
use sync_engine::plan::{Plan, PlanInput};
use tracing::{Instrument as _, info, info_span};

use crate::cli::OutputOptions;
use crate::config::{Config, ConfigError, Env, TenantConfig};
use crate::exit::TenantOutcome;
use crate::failure::{Failure, PERM_CONTACTS, StageFailure};
use crate::output::Out;
use crate::report::{
    self, ActionRecord, ActionResult, Outcome, RunReport, StageFacts, TenantReport, TenantStatus,
};
use crate::stop::RunStop;

pub use clients::{build_clients, client_config};
pub use read::Snapshots;
pub use scope::{FIX_UNKNOWN_TEST_USER, NOT_IN_DIRECTORY, Undecided, resolve_pending_scopes};

/// The hub folder's name (SPEC §2.3).
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
    let undecided = resolve_pending_scopes(&mut config, &clients).await?;
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
    for ((t, client), undecided) in config.tenants.iter().zip(clients).zip(&undecided) {
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
                sync_tenant(t, &client, undecided.as_ref(), config.dry_run, env)
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

/// One tenant, start to end. Never panics on Graph trouble; every failure ends up in the report.
/// `undecided` is why the tenant's user scope is still undecided, when it is.
async fn sync_tenant(
    t: &TenantConfig,
    client: &GraphClient,
    undecided: Option<&Undecided>,
    dry_run: bool,
    env: &RunEnv,
) -> TenantReport {
    let mut snaps = match read::read_tenant(t, client, undecided, dry_run).await {
        Ok(s) => s,
        Err(StageFailure { stage, failure: f }) => {
            let message = stopped_words(&f, env);
            tracing::error!("{message}");
            let mut r = TenantReport::failed(&t.tenant_id, &t.hub, f.outcome(), message);
            r.requests = requests(client);
            r.stages = StageFacts {
                label: t.label(),
                stopped_at: Some(stage),
                read: Vec::new(),
            };
            return r;
        }
    };
    let hub_folder_state = snaps.hub_folder_state;

    let read: Vec<String> = snaps.users.iter().map(|u| u.mailbox.clone()).collect();
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
    let (problems, repairs) = report::build::problems_and_repairs(&plan);
    info!(
        "planned {} writes ({} data problems, {} repairs of an earlier run's work)",
        plan.operations.len(),
        problems.len(),
        repairs.len()
    );

    let hub_folder = match &snaps.hub_folder {
        Some(f) => FolderRef::Id(f.id.clone()),
        None => FolderRef::Default, // dry run only: nothing is written
    };
    let (results, halt) = if dry_run {
        (vec![Outcome::planned(); plan.operations.len()], None)
    } else {
        let applied = apply::apply(client, &plan, &t.hub, &hub_folder, &env.stop).await;
        commit_written(t, &plan, &applied.outcomes);
        (applied.outcomes, applied.halt)
    };

    let actions: Vec<ActionRecord> = plan
        .operations
        .iter()
        .zip(results)
        .map(|(op, r)| report::build::record(op, r))
        .collect();
    let (skip1, skip2) = report::build::skipped_counts(&input, &plan);
    let failed_writes = actions.iter().any(|a| a.result == ActionResult::Failed);
    let count = |r: ActionResult| actions.iter().filter(|a| a.result == r).count();
    let (outcome, error) = match halt {
        // The client halted: the run's stop, or an endpoint gone (its breaker).
        Some(e) => {
            let f = Failure::graph(t, "writing", &e, PERM_CONTACTS);
            let done = count(ActionResult::Done);
            let total = actions.len();
            let message = match env
                .stop
                .cause()
                .filter(|_| f.outcome() == TenantOutcome::Stopped)
            {
                Some(cause) => format!(
                    "{} after {} of {} writes; the next run completes the rest",
                    cause.describe(),
                    report::thousands(done),
                    report::thousands(total)
                ),
                None => format!(
                    "{}; {} of {} writes done",
                    f.message(),
                    report::thousands(done),
                    report::thousands(total)
                ),
            };
            (f.outcome(), Some(message))
        }
        None if failed_writes || !snaps.failed.is_empty() => (
            TenantOutcome::Partial,
            Some(format!(
                "{} mailbox(es) could not be read and {} write(s) failed; the run is safe to repeat",
                snaps.failed.len(),
                count(ActionResult::Failed)
            )),
        ),
        None => (TenantOutcome::Ok, None),
    };
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
        step1: report::totals(&actions, 1, skip1, 0),
        step2: report::totals(&actions, 2, skip2, repairs.len()),
        requests: requests(client),
        skipped_mailboxes: snaps.skipped,
        failed_mailboxes: snaps.failed,
        problems,
        repairs,
        actions,
        stages: StageFacts {
            label: t.label(),
            stopped_at: None,
            read,
        },
    }
}

/// The state store's commit point (issue 12): what this tenant's writes did, recorded as soon
/// as they are over — after a complete apply, one the run's stop cut short, and one with failed
/// writes alike (never in a dry run, which writes nothing). A no-op until the state is wired; it
/// is the one place that will open a transaction with `plan` and `outcomes`.
fn commit_written(_t: &TenantConfig, _plan: &Plan, _outcomes: &[Outcome]) {}

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
