//! The `graph-emulator` binary: `serve` a scenario over HTTP(S), `generate` a deterministic
//! synthetic scenario to stdout, or print the `env` a synccontacts run needs to use it.
//!
//! stdout carries only the contract output (the one `listening on …` line, the scenario JSON,
//! or the environment lines); logs go to stderr. Nothing here implements Graph behaviour: that
//! lives in the library. The one place that knows synccontacts' variable names is
//! `synccontacts_env` (binary-only, so the library stays free of client configuration).

mod synccontacts_env;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use graph_emulator::{
    EmulatorOptions, FaultPlan, GenerateExtras, GenerateOptions, Limits, Scenario, Variants,
};

#[derive(Parser)]
#[command(
    name = "graph-emulator",
    version,
    about = "A local Microsoft Graph v1.0 and Microsoft identity platform, for testing Graph clients",
    long_about = "A local Microsoft Graph v1.0 and Microsoft identity platform (token endpoint) \
                  serving the tenants of a scenario file, for testing Graph clients such as \
                  synccontacts without a Microsoft 365 tenant. See crates/graph-emulator/README.md \
                  for the scenario and fault-plan formats and the /_emulator control plane."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a scenario; prints `listening on http://127.0.0.1:PORT` on stdout once accepting.
    Serve(ServeArgs),
    /// Write a deterministic synthetic scenario (JSON) to stdout.
    Generate(GenerateArgs),
    /// Print the AUTOMATION_SYNCCONTACTS_* variables that point synccontacts at an emulator
    /// serving this scenario (they include the scenario's client secret).
    Env(EnvArgs),
}

#[derive(clap::Args)]
#[command(after_help = variants_help())]
struct ServeArgs {
    /// Scenario file: the tenants, apps, users, mailboxes and groups to serve (JSON; unknown
    /// fields are refused with their path). `/dev/stdin` works.
    #[arg(long, value_name = "FILE")]
    scenario: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Service time added to each Graph request, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    latency_ms: u64,
    /// Seed for server-generated ids and change keys (random if absent).
    #[arg(long)]
    seed: Option<u64>,
    /// Serve HTTPS with a certificate for 127.0.0.1 and localhost from a CA generated at start.
    #[arg(long)]
    tls: bool,
    /// With --tls: write the CA certificate (PEM) here, for clients to trust; it exists before
    /// the `listening on` line is printed.
    #[arg(long, requires = "tls", value_name = "FILE")]
    ca_out: Option<PathBuf>,
    /// Fault plan: seeded rules that answer matching requests with errors, delays or dropped
    /// connections (JSON; replaceable at run time with PUT /_emulator/faults).
    #[arg(long, value_name = "FILE")]
    faults: Option<PathBuf>,
    /// Turn Outlook's limits off (concurrency and request budgets; on by default, as in Graph).
    #[arg(long)]
    no_limits: bool,
    /// Concurrent requests per (app, mailbox) before 429 (Outlook: 4).
    #[arg(long, value_name = "N")]
    mailbox_concurrency: Option<usize>,
    /// Requests per (app, mailbox) per 10 minutes before 429 (Outlook: 10000).
    #[arg(long, value_name = "N")]
    mailbox_requests: Option<u64>,
    /// Requests per app per 10 seconds before 429 (Graph: 130000).
    #[arg(long, value_name = "N")]
    app_requests: Option<u64>,
    /// Play the other reading of an unconfirmed Graph behaviour (repeatable; names below).
    #[arg(long = "variant", value_name = "NAME", value_parser = parse_variant)]
    variants: Vec<String>,
    /// With --variant change-key-bump(-modified): how long after a write the bump comes, in
    /// milliseconds of emulator time (0: before the next request to that mailbox).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    change_key_bump_delay_ms: u64,
}

fn variants_help() -> String {
    let mut s =
        String::from("Variants (--variant NAME; by default the stricter reading is played):\n");
    for (name, what) in Variants::NAMES {
        s.push_str(&format!("  {name:<31} {what}\n"));
    }
    s
}

#[derive(clap::Args)]
struct GenerateArgs {
    /// Licensed users, each with a mailbox (besides the unlicensed hub mailbox hub@contoso.com).
    #[arg(long, value_name = "N")]
    users: usize,
    /// Contacts in each user's default Contacts folder.
    #[arg(long, value_name = "M")]
    contacts_per_user: usize,
    /// Distinct people to draw contacts from (default users × contacts-per-user: no overlap;
    /// fewer means users share contacts).
    #[arg(long, value_name = "P")]
    pool: Option<usize>,
    /// Share (0 to 1) of contact copies that differ from the pool's version (another phone, a
    /// new job title) with a later lastModifiedDateTime.
    #[arg(long, default_value_t = 0.0, value_parser = parse_share, value_name = "SHARE")]
    edits: f64,
    /// Seed of the generator: the same seed and options give the same bytes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share (0 to 1) of the users' contacts marked private by their owner, alternately by the
    /// Outlook category "Private" and by the Private flag (extended property Integer 0x0036 = 2).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share, value_name = "SHARE")]
    private: f64,
}

#[derive(clap::Args)]
struct EnvArgs {
    /// The scenario the emulator serves.
    #[arg(long, value_name = "FILE")]
    scenario: PathBuf,
    /// The emulator's root URL, as `serve` printed it (http://127.0.0.1:PORT or https://…).
    #[arg(long)]
    url: String,
    /// With an https URL: the CA file written by `serve --tls --ca-out`, for synccontacts to trust.
    #[arg(long, value_name = "FILE")]
    ca_file: Option<PathBuf>,
    /// Tenant id or domain (default: the scenario's first tenant).
    #[arg(long)]
    tenant: Option<String>,
    /// The app's client id (default: the tenant's first app with a client secret).
    #[arg(long)]
    client_id: Option<String>,
    /// The hub mailbox's userPrincipalName (default: the user named hub@…, else the first
    /// unlicensed user with a mailbox).
    #[arg(long)]
    hub: Option<String>,
}

fn parse_variant(s: &str) -> Result<String, String> {
    graph_emulator::Variants::default()
        .enable(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.to_string())
}

fn parse_share(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err("must be between 0 and 1".into())
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match cli.command {
        Command::Generate(args) => {
            let scenario = graph_emulator::generate_with(
                &GenerateOptions {
                    users: args.users,
                    contacts_per_user: args.contacts_per_user,
                    pool: args.pool,
                    edits: args.edits,
                    seed: args.seed,
                },
                &GenerateExtras {
                    private: args.private,
                },
            );
            let mut out = std::io::stdout().lock();
            let written = writeln!(out, "{}", scenario.to_json_pretty()).and_then(|()| out.flush());
            match written {
                // A closed pipe (`generate | head`) is a normal end, not an error.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => other.context("writing the scenario to stdout"),
            }
        }
        Command::Serve(args) => {
            let scenario = Scenario::from_file(&args.scenario)?;
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(serve(scenario, args))
        }
        Command::Env(args) => {
            let scenario = Scenario::from_file(&args.scenario)?;
            let lines = synccontacts_env::lines(
                &scenario,
                &synccontacts_env::Target {
                    url: &args.url,
                    ca_file: args.ca_file.as_deref(),
                    tenant: args.tenant.as_deref(),
                    client_id: args.client_id.as_deref(),
                    hub: args.hub.as_deref(),
                },
            )?;
            let mut out = std::io::stdout().lock();
            for line in lines {
                writeln!(out, "{line}")?;
            }
            Ok(out.flush()?)
        }
    }
}

fn limits(args: &ServeArgs) -> Limits {
    let d = Limits::default();
    Limits {
        enabled: !args.no_limits,
        mailbox_concurrency: args.mailbox_concurrency.unwrap_or(d.mailbox_concurrency),
        mailbox_requests: args.mailbox_requests.unwrap_or(d.mailbox_requests),
        app_requests: args.app_requests.unwrap_or(d.app_requests),
        ..d
    }
}

async fn serve(scenario: Scenario, args: ServeArgs) -> anyhow::Result<()> {
    // Handlers go in before the listening line: a supervisor may signal as soon as it reads it.
    let signalled = shutdown_signal()?;
    let faults = match &args.faults {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the fault plan {}", path.display()))?;
            Some(
                serde_json::from_str::<FaultPlan>(&text)
                    .with_context(|| format!("parsing the fault plan {}", path.display()))?,
            )
        }
    };
    let mut variants = Variants {
        change_key_bump_delay: Duration::from_millis(args.change_key_bump_delay_ms),
        ..Variants::default()
    };
    for name in &args.variants {
        variants.enable(name)?;
    }
    let emulator = graph_emulator::start(
        scenario,
        EmulatorOptions {
            latency: Duration::from_millis(args.latency_ms),
            listen: Some(args.listen),
            seed: args.seed,
            faults,
            tls: args.tls,
            limits: limits(&args),
            variants,
            ..EmulatorOptions::default()
        },
    )
    .await?;
    // The CA file exists before the `listening on` line, so a script may use it right away.
    if let (Some(path), Some(pem)) = (&args.ca_out, emulator.ca_pem()) {
        std::fs::write(path, pem)
            .with_context(|| format!("writing the CA to {}", path.display()))?;
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {}", emulator.url())?;
        out.flush()?;
    }
    signalled.await?;
    tracing::info!("shutting down");
    emulator.shutdown().await;
    Ok(())
}

/// A future that completes on SIGINT or SIGTERM; the handlers are installed when this returns.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = anyhow::Result<()>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            Ok(())
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async { Ok(tokio::signal::ctrl_c().await?) })
    }
}
