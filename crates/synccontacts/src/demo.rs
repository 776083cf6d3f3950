//! `synccontacts demo`: the whole job against the bundled Graph emulator, in-process, with a
//! generated sample tenant — a dry run, the real sync, a contact deleted from "All Contacts"
//! propagating to every user in the next run, and a last run that writes nothing.
//!
//! It goes through exactly the code a real tenant does (configuration from environment-style
//! variables, the Graph client over HTTP, the planner, the state file, the writes); only the
//! endpoint is the loopback emulator. It must never touch a real tenant, read the caller's
//! AUTOMATION_SYNCCONTACTS_* variables or use the caller's state file: its state lives in a
//! temporary folder, removed at the end.

use graph_emulator::{EmulatorOptions, GenerateOptions, Scenario, Stats};

use crate::cli::{DemoArgs, OutputOptions, SyncArgs};
use crate::config::{self, Env};
use crate::exit::{Exit, RunEnd, process_exit_code};
use crate::output::Out;
use crate::report::{ActionResult, Detail, RunReport, action_line};
use crate::run::RunEnv;

/// How many action lines of the dry run to show.
const SAMPLE_LINES: usize = 8;

/// The one tenant of a generated scenario, as the configuration needs it.
struct DemoTenant {
    tenant_id: String,
    client_id: String,
    secret: String,
    hub: String,
}

fn demo_tenant(s: &Scenario) -> anyhow::Result<DemoTenant> {
    let t = s
        .tenants
        .first()
        .ok_or_else(|| anyhow::anyhow!("generated scenario has no tenant"))?;
    let app = t
        .apps
        .first()
        .ok_or_else(|| anyhow::anyhow!("generated scenario has no app"))?;
    // The hub is the one unlicensed user (shared mailboxes need no licence).
    let hub = t
        .users
        .iter()
        .find(|u| u.assigned_licenses.is_empty())
        .ok_or_else(|| anyhow::anyhow!("generated scenario has no shared mailbox"))?;
    Ok(DemoTenant {
        tenant_id: t.tenant_id.clone(),
        client_id: app.client_id.clone(),
        secret: app
            .client_secret
            .clone()
            .ok_or_else(|| anyhow::anyhow!("generated app has no secret"))?,
        hub: hub.user_principal_name.clone(),
    })
}

/// The environment a CI job would set, pointing at the emulator.
fn demo_env(t: &DemoTenant, url: &str) -> Env {
    let tenants = serde_json::json!([{
        "TenantId": t.tenant_id,
        "ClientId": t.client_id,
        "ClientSecret": t.secret,
        "GlobalAddressBookUserId": t.hub,
    }]);
    [
        (config::TENANTS_JSON, tenants.to_string()),
        (config::LOGIN_URL, url.to_owned()),
        (config::GRAPH_URL, url.to_owned()),
    ]
    .into_iter()
    .collect()
}

fn writes(s: &Stats) -> u64 {
    s.by_mailbox
        .values()
        .map(|m| m.post + m.patch + m.delete)
        .sum()
}

fn stats_line(s: &Stats) -> String {
    format!(
        "emulator saw {} Graph requests ({} of them $batch, carrying {} requests), {} token requests, {} contact writes, {} throttled",
        s.requests,
        s.batches,
        s.batch_items,
        s.token_requests,
        writes(s),
        s.throttled
    )
}

/// Generates the sample tenant: users share contacts (a pool a third the size of all copies)
/// and some copies carry edits, so the run has merging, updates and creations to show.
pub fn sample_scenario(users: usize, contacts_per_user: usize) -> Scenario {
    let copies = users * contacts_per_user;
    graph_emulator::generate(&GenerateOptions {
        users,
        contacts_per_user,
        pool: Some((copies / 3).max(contacts_per_user).max(1)),
        edits: 0.15,
        seed: 2026,
    })
}

pub async fn demo_command(args: &DemoArgs, opts: OutputOptions, out: &Out) -> Exit {
    match demo(args, opts, out).await {
        Ok(exit) => exit,
        Err(e) => {
            tracing::error!("demo failed: {e:#}");
            process_exit_code(&RunEnd::run_failed())
        }
    }
}

async fn run_once(
    env: &Env,
    state: &std::path::Path,
    dry_run: bool,
    opts: OutputOptions,
    out: &Out,
) -> (Exit, RunReport) {
    let args = SyncArgs {
        dry_run,
        state: Some(state.to_owned()),
        ..SyncArgs::default()
    };
    let (exit, report) =
        crate::cli::sync_with_report(env, &args, &RunEnv::default(), opts, out).await;
    out.line(&crate::report::run_summary(&report));
    (exit, report)
}

/// A folder of the demo's own for its state file, removed when dropped.
struct DemoDir(std::path::PathBuf);

impl DemoDir {
    fn new() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "synccontacts-demo-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An administrator deletes the first contact of "All Contacts" (by name) through Graph, as
/// Outlook would; returns its name.
async fn delete_one_hub_contact(
    emulator: &graph_emulator::RunningEmulator,
    t: &DemoTenant,
) -> anyhow::Result<String> {
    let hub = emulator
        .state()
        .tenants
        .into_iter()
        .flat_map(|t| t.users)
        .find(|u| u.user_principal_name.eq_ignore_ascii_case(&t.hub))
        .and_then(|u| {
            u.contact_folders
                .into_iter()
                .find(|f| f.display_name == crate::run::HUB_FOLDER)
        })
        .ok_or_else(|| anyhow::anyhow!("the hub has no \"All Contacts\" after the sync"))?;
    let name = |c: &serde_json::Map<String, serde_json::Value>| {
        c.get("displayName")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned()
    };
    let victim = hub
        .contacts
        .iter()
        .min_by_key(|c| name(c))
        .ok_or_else(|| anyhow::anyhow!("\"All Contacts\" is empty after the sync"))?;
    let id = victim
        .get("id")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow::anyhow!("a hub contact without id"))?;
    let endpoints = graph::Endpoints::new(&emulator.url(), &emulator.url())?;
    let client = graph::GraphClient::new(graph::ClientConfig::new(
        t.tenant_id.clone(),
        t.client_id.clone(),
        graph::Credential::Secret(graph::Secret::new(t.secret.clone())),
        endpoints,
    ))?;
    let folder = graph::FolderRef::Id(hub.id.clone().unwrap_or_default());
    let delete = graph::WriteRequest::delete(folder, id, None);
    client
        .execute_writes::<serde_json::Value>(&t.hub, vec![delete])
        .await
        .remove(0)?;
    Ok(name(victim))
}

async fn demo(args: &DemoArgs, opts: OutputOptions, out: &Out) -> anyhow::Result<Exit> {
    let started = std::time::Instant::now();
    let scenario = sample_scenario(args.users, args.contacts_per_user);
    let tenant = demo_tenant(&scenario)?;
    let emulator = graph_emulator::start(scenario, EmulatorOptions::default()).await?;
    let env = demo_env(&tenant, &emulator.url());
    let dir = DemoDir::new()?;
    let state = dir.0.join("state.sqlite");
    out.line(&format!(
        "synccontacts demo: a sample tenant with {} users × {} contacts (overlapping), hub {}, served by the bundled Graph emulator at {}",
        args.users,
        args.contacts_per_user,
        tenant.hub,
        emulator.url()
    ));
    // The runs print their totals; the demo adds a sample of the action lines.
    let quiet = OutputOptions {
        detail: Detail::Quiet,
        ..opts
    };

    out.line("");
    out.line("1) Dry run — plans everything, writes nothing:");
    let (exit, report) = run_once(&env, &state, true, quiet, out).await;
    if exit != Exit::Ok {
        anyhow::bail!("the dry run ended with exit code {}", exit.code());
    }
    let actions: Vec<_> = report.tenants.iter().flat_map(|t| &t.actions).collect();
    for a in actions.iter().take(SAMPLE_LINES) {
        out.line(&format!("   {}", action_line(a)));
    }
    if actions.len() > SAMPLE_LINES {
        out.line(&format!(
            "   … and {} more planned actions",
            actions.len() - SAMPLE_LINES
        ));
    }
    let s = emulator.stats();
    out.line(&format!("   {}", stats_line(&s)));
    let planned = actions.len();
    emulator.reset_stats();

    out.line("");
    out.line("2) The real sync — executes exactly that plan:");
    let (exit, report) = run_once(&env, &state, false, quiet, out).await;
    let done = report
        .tenants
        .iter()
        .flat_map(|t| &t.actions)
        .filter(|a| a.result == ActionResult::Done)
        .count();
    let s = emulator.stats();
    out.line(&format!("   {} of {planned} planned actions done", done));
    out.line(&format!("   {}", stats_line(&s)));
    if exit != Exit::Ok {
        anyhow::bail!("the sync ended with exit code {}", exit.code());
    }
    emulator.reset_stats();

    out.line("");
    let deleted = delete_one_hub_contact(&emulator, &tenant).await?;
    emulator.reset_stats();
    out.line(&format!(
        "3) An administrator deletes \"{deleted}\" from \"All Contacts\"; the next run deletes every user's copy:"
    ));
    let (exit, report) = run_once(&env, &state, false, quiet, out).await;
    let deletes: Vec<_> = report
        .tenants
        .iter()
        .flat_map(|t| &t.actions)
        .filter(|a| a.action == crate::report::ActionKind::Delete)
        .collect();
    for a in deletes.iter().take(SAMPLE_LINES / 2) {
        out.line(&format!("   {}", action_line(a)));
    }
    if deletes.len() > SAMPLE_LINES / 2 {
        out.line(&format!(
            "   … and {} more deleted copies",
            deletes.len() - SAMPLE_LINES / 2
        ));
    }
    let s = emulator.stats();
    out.line(&format!("   {}", stats_line(&s)));
    if exit != Exit::Ok {
        anyhow::bail!(
            "the run after the deletion ended with exit code {}",
            exit.code()
        );
    }
    let deleted_copies = deletes
        .iter()
        .filter(|a| a.result == ActionResult::Done)
        .count();
    emulator.reset_stats();

    out.line("");
    out.line("4) One more run — everything converged, so it only reads:");
    let (exit, _) = run_once(&env, &state, false, quiet, out).await;
    let s = emulator.stats();
    out.line(&format!("   {}", stats_line(&s)));
    let second_writes = writes(&s);

    let state = emulator.state();
    let hub_count = state
        .tenants
        .iter()
        .flat_map(|t| &t.users)
        .filter(|u| u.user_principal_name.eq_ignore_ascii_case(&tenant.hub))
        .flat_map(|u| &u.contact_folders)
        .find(|f| f.display_name == crate::run::HUB_FOLDER)
        .map_or(0, |f| f.contacts.len());
    let user_counts: Vec<usize> = state
        .tenants
        .iter()
        .flat_map(|t| &t.users)
        .filter(|u| !u.assigned_licenses.is_empty())
        .map(|u| u.contacts.len())
        .collect();
    out.line("");
    out.line(&format!(
        "Result: \"All Contacts\" holds {hub_count} contacts; every user's Contacts folder holds {}; \"{deleted}\" was deleted from {deleted_copies} users; the last run wrote {second_writes} times. ({:.1} s)",
        match (user_counts.iter().min(), user_counts.iter().max()) {
            (Some(a), Some(b)) if a == b => format!("{a}"),
            (Some(a), Some(b)) => format!("{a}–{b}"),
            _ => "nothing".into(),
        },
        started.elapsed().as_secs_f64()
    ));
    emulator.shutdown().await;
    if second_writes != 0 {
        anyhow::bail!("the last run wrote {second_writes} times; it should write nothing");
    }
    if deleted_copies == 0 {
        anyhow::bail!("the deletion from \"All Contacts\" reached no user");
    }
    Ok(exit)
}
