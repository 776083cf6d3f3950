//! The command line (SPEC §6, a stable contract: CI jobs and tests script against it) and the
//! dispatch from a parsed command to the library.
//!
//! This is the only place that turns results into an exit code (through `exit.rs`), prints the
//! configuration error text, and builds the async runtime. It must never contain sync logic.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::config::{self, Env};
use crate::exit::Exit;
use crate::logging::{self, LogFormat, LogOptions};
use crate::output::Out;
use crate::report::{self, Detail, RunReport};

#[derive(Debug, Parser)]
#[command(
    name = "synccontacts",
    version = crate::version::VERSION_LINE,
    about = "Keeps one company-wide contact book in Microsoft 365 in sync, through Microsoft Graph.",
    long_about = "Collects every licensed user's contacts into the \"All Contacts\" folder of a shared \
                  mailbox and distributes that set back to every user. Configuration comes from the \
                  AUTOMATION_SYNCCONTACTS_* environment variables (see README.md).\n\n\
                  Exit codes: 0 all tenants done; 1 some tenant or writes failed (safe to rerun); \
                  2 configuration error (nothing was requested); 3 authentication or permission error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Never draw progress bars (they are only drawn on a terminal anyway).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// More log detail (-v debug, -vv trace). RUST_LOG, when set, takes precedence.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Only warnings, errors, failures and totals.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sync for every configured tenant (or those given with --tenant).
    Sync(SyncArgs),
    /// Diagnose each tenant without writing anything: config, token, permissions, hub, users.
    Check(CheckArgs),
    /// Run the whole job against the bundled Graph emulator with a generated sample tenant.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Plan and print, write nothing (forces DryRun on; it can never force it off).
    #[arg(long)]
    pub dry_run: bool,
    /// Write the JSON run report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Only the tenants whose TenantId, PrimaryDomain or TenantDomain equals KEY (repeatable).
    #[arg(long = "tenant", value_name = "KEY")]
    pub tenants: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only the tenants whose TenantId, PrimaryDomain or TenantDomain equals KEY (repeatable).
    #[arg(long = "tenant", value_name = "KEY")]
    pub tenants: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Licensed users in the sample tenant.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// Contacts in each user's default folder (drawn from a shared pool, so they overlap).
    #[arg(long, default_value_t = 12)]
    pub contacts_per_user: usize,
}

/// Global options that shape output.
#[derive(Clone, Copy, Debug)]
pub struct OutputOptions {
    pub detail: Detail,
    pub progress: bool,
}

/// The binary's entry point: parse `args`, run, and return the exit code. `env` is the
/// environment to read configuration from (the process environment in `main`, a fixed map in
/// tests).
pub fn main_with(args: impl IntoIterator<Item = OsString>, env: Env) -> Exit {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are successes; usage errors are configuration errors (2).
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Config
            } else {
                Exit::Ok
            };
        }
    };
    let verbosity = if cli.quiet {
        -1
    } else if matches!(cli.command, Command::Demo(_)) && cli.verbose == 0 {
        // The demo tells its own story on stdout; info logs of three runs would bury it.
        -1
    } else {
        cli.verbose.min(3) as i8
    };
    let progress = logging::init(
        &env,
        LogOptions {
            format: cli.log_format,
            verbosity,
            no_progress: cli.no_progress,
        },
    );
    let opts = OutputOptions {
        detail: if cli.quiet {
            Detail::Quiet
        } else {
            Detail::Normal
        },
        progress,
    };
    let out = Out::new();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return Exit::Partial;
        }
    };
    match cli.command {
        Command::Sync(args) => runtime.block_on(sync_command(&env, &args, opts, &out)),
        Command::Check(args) => {
            runtime.block_on(crate::check::check_command(&env, &args.tenants, &out))
        }
        Command::Demo(args) => runtime.block_on(crate::demo::demo_command(&args, opts, &out)),
    }
}

/// `synccontacts sync`: stage-one config (exit 2 on any problem, before any request), then every
/// tenant in turn.
pub async fn sync_command(env: &Env, args: &SyncArgs, opts: OutputOptions, out: &Out) -> Exit {
    let (exit, report) =
        sync_with_report(env, args, &crate::run::RunEnv::default(), opts, out).await;
    if let Some(path) = &args.report
        && let Err(e) = report::write_json(&report, path)
    {
        tracing::error!("cannot write the report to {}: {e}", path.display());
        return exit.max_with(Exit::Partial);
    }
    exit
}

/// The sync as a library call: the exit code and the report (also when the config is refused).
pub async fn sync_with_report(
    env: &Env,
    args: &SyncArgs,
    run_env: &crate::run::RunEnv,
    opts: OutputOptions,
    out: &Out,
) -> (Exit, RunReport) {
    let mut config = match config::load(env).and_then(|mut c| {
        c.select_tenants(&args.tenants)?;
        Ok(c)
    }) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            let report = RunReport {
                dry_run: args.dry_run,
                error: Some(e.to_string()),
                exit_code: Exit::Config.code(),
                tenants: Vec::new(),
            };
            return (Exit::Config, report);
        }
    };
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    if args.dry_run && !config.dry_run {
        config.dry_run = true;
        config.dry_run_origin = Some("--dry-run".into());
    }
    match crate::run::sync_all(&config, run_env, opts, out).await {
        Ok(mut report) => {
            let outcomes: Vec<_> = report.tenants.iter().map(|t| t.outcome).collect();
            let exit = Exit::for_tenants(&outcomes);
            report.exit_code = exit.code();
            out.line(&report::run_summary(&report));
            (exit, report)
        }
        Err(e) => {
            eprint!("{e}");
            let report = RunReport {
                dry_run: config.dry_run,
                error: Some(e.to_string()),
                exit_code: Exit::Config.code(),
                tenants: Vec::new(),
            };
            (Exit::Config, report)
        }
    }
}

impl Exit {
    /// The more severe of two codes for the report-writing failure path (never hides 2 or 3).
    fn max_with(self, other: Exit) -> Exit {
        if self == Exit::Ok { other } else { self }
    }
}
