//! The `graph-emulator` binary (EMULATOR.md §1): `serve` a scenario over HTTP, or `generate` a
//! deterministic synthetic scenario to stdout.
//!
//! stdout carries only the contract output (the one `listening on …` line, or the scenario
//! JSON); logs go to stderr. Nothing here implements Graph behaviour: that lives in the library.

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
    about = "Local Microsoft Graph v1.0 + identity platform emulator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve a scenario; prints `listening on http://127.0.0.1:PORT` once accepting.
    Serve(ServeArgs),
    /// Write a deterministic synthetic scenario to stdout.
    Generate(GenerateArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Scenario file (JSON, EMULATOR.md §2); `/dev/stdin` works.
    #[arg(long)]
    scenario: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Service time added to each Graph request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Seed for server-generated ids.
    #[arg(long)]
    seed: Option<u64>,
    /// Serve HTTPS with a certificate for 127.0.0.1 and localhost from a CA generated at start.
    #[arg(long)]
    tls: bool,
    /// With --tls: write the CA certificate (PEM) here, for clients to trust.
    #[arg(long, requires = "tls")]
    ca_out: Option<PathBuf>,
    /// Fault plan (JSON, EMULATOR.md §5).
    #[arg(long)]
    faults: Option<PathBuf>,
    /// Turn Outlook's limits off (concurrency and request budgets; on by default, as in Graph).
    #[arg(long)]
    no_limits: bool,
    /// Concurrent requests per (app, mailbox) before 429 (Outlook: 4).
    #[arg(long)]
    mailbox_concurrency: Option<usize>,
    /// Requests per (app, mailbox) per 10 minutes before 429 (Outlook: 10000).
    #[arg(long)]
    mailbox_requests: Option<u64>,
    /// Requests per app per 10 seconds before 429 (Graph: 130000).
    #[arg(long)]
    app_requests: Option<u64>,
    /// Play the other reading of an unconfirmed Graph behaviour (repeatable); see the list
    /// below.
    #[arg(long = "variant", value_name = "NAME", value_parser = parse_variant)]
    variants: Vec<String>,
}

fn parse_variant(s: &str) -> Result<String, String> {
    graph_emulator::Variants::default()
        .enable(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.to_string())
}

#[derive(clap::Args)]
struct GenerateArgs {
    #[arg(long)]
    users: usize,
    #[arg(long)]
    contacts_per_user: usize,
    /// Distinct people to draw contacts from (default users × contacts-per-user: no overlap).
    #[arg(long)]
    pool: Option<usize>,
    /// Share of contact copies that differ from the pool's version.
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    edits: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share (0 to 1) of the users' contacts marked private by their owner, alternately by the
    /// Outlook category "Private" and by the Private flag (extended property Integer 0x0036 = 2).
    #[arg(long, default_value_t = 0.0, value_parser = parse_share)]
    private: f64,
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
    let mut variants = Variants::default();
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
