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
//! Files: `clients.rs` (a tenant's configuration → its Graph client, credentials), `scope.rs`
//! (pending test-user scopes → verified domains, before any tenant writes), `read.rs` (token,
//! user scope, hub folder, one read of every folder), `apply.rs` (the plan's writes, mailbox by
//! mailbox). Turning the plan and the outcomes into the report is `report::build`.

mod apply;
mod clients;
mod read;
mod scope;

use std::sync::Arc;

use graph::{Clock, FolderRef, GraphClient, GraphError};
use sync_engine::plan::PlanInput;
use tracing::{Instrument as _, info, info_span};

use crate::cli::OutputOptions;
use crate::config::{Config, ConfigError, Env, TenantConfig};
use crate::exit::TenantOutcome;
use crate::output::Out;
use crate::report::{
    self, ActionRecord, ActionResult, Outcome, RunReport, TenantReport, TenantStatus,
};

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
        let tr = sync_tenant(t, &client, scope_error.as_ref(), config.dry_run, env)
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

/// One tenant, start to end. Never panics on Graph trouble; every failure ends up in the report.
/// `scope_error` is why the tenant's verified domains could not be read, when its user scope
/// needed them.
async fn sync_tenant(
    t: &TenantConfig,
    client: &GraphClient,
    scope_error: Option<&GraphError>,
    dry_run: bool,
    env: &RunEnv,
) -> TenantReport {
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

    let input = PlanInput {
        hub: std::mem::take(&mut snaps.hub),
        users: std::mem::take(&mut snaps.users),
        update_existing: t.options.update_existing,
        now: env.clock.now(),
        // First-run mode until the state store is wired in (issue 12).
        memory: None,
        options: Default::default(),
        fields: t.options.fields,
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
        apply::apply(client, &plan, &t.hub, &hub_folder).await
    };

    let actions: Vec<ActionRecord> = plan
        .operations
        .iter()
        .zip(results)
        .map(|(op, r)| report::build::record(op, r))
        .collect();
    let (skip1, skip2) = report::build::skipped_counts(&input, &plan);
    let problems = plan
        .problems
        .iter()
        .map(report::build::describe_problem)
        .collect();
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
            TenantStatus::Ok
        } else {
            TenantStatus::Failed
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

/// The progress bar of a phase (only drawn on a terminal; see `logging.rs`).
fn bar_style() -> indicatif::ProgressStyle {
    indicatif::ProgressStyle::with_template("{spinner} {msg:18} [{bar:40}] {pos}/{len} ({elapsed})")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> ")
}
