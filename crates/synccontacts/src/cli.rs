//! The command line (docs/sync-rules.md §6, a stable contract: CI jobs and tests script against it)
//! and the dispatch from a parsed command to the library.
//!
//! It describes how each command ended and takes the exit code from `exit::process_exit_code`;
//! it prints the configuration error text and builds the async runtime. It must never contain
//! sync logic.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

use crate::config::{self, Env};
use crate::exit::{Exit, RunEnd, process_exit_code};
use crate::logging::{self, LogFormat, LogOptions};
use crate::output::Out;
use crate::report::{self, ActionLines, Detail, RunReport};
use crate::stop::{self, StopCause};

#[derive(Debug, Parser)]
#[command(
    name = "synccontacts",
    version = crate::version::VERSION_LINE,
    disable_help_subcommand = true,
    about = "Keeps one company-wide contact book in Microsoft 365 in sync, through Microsoft Graph.",
    long_about = "Collects every licensed user's contacts into the \"All Contacts\" folder of a shared \
                  mailbox and distributes that set back to every user. Configuration comes from the \
                  AUTOMATION_SYNCCONTACTS_* environment variables (see README.md).\n\n\
                  Exit codes: 0 all tenants done; 1 some tenant or writes failed, an endpoint was \
                  unreachable, or the run stopped at its deadline (safe to rerun); 2 configuration \
                  error (the configuration, an option or an output path was refused: nothing was \
                  written, and nothing requested unless a test-user key needed a tenant's verified \
                  domains); 3 every tenant failed on its setup (credentials, permission, the hub \
                  mailbox); 4 deletes held by the brake (everything else was done; release them with \
                  --allow-deletes N); 130/143 interrupted by SIGINT/SIGTERM (what was written is \
                  recorded in the state). Precedence 2 > 130/143 > 3 > 1 > 4 > 0."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr: `text` (one line per event) or `json` (one object per event).
    #[arg(long, value_enum, value_name = "FORMAT", global = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Never draw progress bars (they are only drawn when stderr is a terminal and CI is unset).
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// More log detail on stderr: -v debug (e.g. one line per Graph response), -vv trace (also
    /// the effective configuration of each tenant). RUST_LOG, when set, takes precedence.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output: only warnings, errors, failures and totals (`check`: failed and warning
    /// items and the last line).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sync for every configured tenant (or those given with --tenant).
    #[command(
        long_about = "Run the sync for every configured tenant (or those given with --tenant): step 1 \
                      collects every user's contacts into the hub's \"All Contacts\", step 2 \
                      distributes them back. The configuration and the output paths are checked \
                      before the first request; the last line on stdout ends with the exit code."
    )]
    Sync(SyncArgs),
    /// Diagnose each tenant without writing anything: config, token, permissions, hub, users.
    #[command(
        long_about = "Diagnose each tenant without writing anything: the configuration, a token (and \
                      which credential), the directory permission, the hub mailbox and its \"All \
                      Contacts\" folder, a user's mailbox, and the user scope — one line each, with a \
                      fix for every failure. Exit codes as for sync."
    )]
    Check(CheckArgs),
    /// Run the whole job against the bundled Graph emulator with a generated sample tenant.
    // A build without the `demo` feature keeps the word so `synccontacts demo` gets a clear
    // answer instead of a usage error, but does not offer it in --help.
    #[cfg_attr(
        not(feature = "demo"),
        command(
            hide = true,
            about = "Not in this build: synccontacts was built without the `demo` feature.",
            long_about = None
        )
    )]
    Demo(DemoArgs),
    /// Print this help, or the help of one command.
    // Our own, so that `synccontacts help --help` is help and not an error (clap's built-in help
    // command takes `--help` for the name of a command).
    Help(HelpArgs),
}

#[derive(Debug, Default, Args)]
pub struct SyncArgs {
    /// Plan and print, write nothing (forces DryRun on; it can never force it off).
    #[arg(long)]
    pub dry_run: bool,
    /// Write the JSON run report to FILE at the end of the run (also when the configuration is
    /// refused). Its folder must exist: the path is checked before the first request.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write the run as a JUnit XML test report to FILE (GitLab: `artifacts:reports:junit`): a
    /// test suite per tenant, a test case per stage and per mailbox. Written at the end of the
    /// run (also when the configuration is refused); its folder must exist.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Only the tenants whose TenantId, PrimaryDomain or TenantDomain equals KEY (repeatable); a
    /// KEY that matches no tenant is a configuration error.
    #[arg(long = "tenant", value_name = "KEY")]
    pub tenants: Vec<String>,
    /// The state file: what the last run left (our writes, deletions from the book). Default
    /// AUTOMATION_SYNCCONTACTS_STATE, else .synccontacts/state.sqlite under the working folder
    /// (created when missing). A dry run only reads it.
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Release up to N deletes held by the brake in this run (one tenant: use with --tenant when
    /// several are configured). The run prints the exact command when it holds any.
    #[arg(long, value_name = "N")]
    pub allow_deletes: Option<usize>,
    /// Which action lines to print: `all`, `summary` (none; totals, mailbox lines and failures
    /// only), or N, the first N of each kind per step (default 20). Failures and conflicts are
    /// always printed; the report holds every action.
    #[arg(long, value_name = "all|summary|N", default_value = "20")]
    pub actions: ActionLines,
    /// Stop after DURATION (e.g. 45m, 1h30m): no new write starts, writes in flight finish, the
    /// run reports what it did and exits 1. Overrides AUTOMATION_SYNCCONTACTS_MAX_RUN_MINUTES;
    /// default 50m, under GitLab's default job timeout of 60 minutes.
    #[arg(long, value_name = "DURATION", value_parser = config::parse_duration)]
    pub max_duration: Option<std::time::Duration>,
    /// Send at most N Graph requests per 10 seconds for this app registration, `$batch` items
    /// counted (1 to 130000, Graph's documented limit per app and the default). Lower it when
    /// several jobs share the app registration. Overrides AUTOMATION_SYNCCONTACTS_APP_BUDGET.
    #[arg(long, value_name = "N", value_parser = config::parse_app_budget)]
    pub app_requests: Option<u32>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Only the tenants whose TenantId, PrimaryDomain or TenantDomain equals KEY (repeatable); a
    /// KEY that matches no tenant is a configuration error.
    #[arg(long = "tenant", value_name = "KEY")]
    pub tenants: Vec<String>,
    /// The state file to report on (read only; default as for sync).
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Licensed users in the sample tenant.
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub users: usize,
    /// Contacts in each user's default folder (drawn from a shared pool, so they overlap).
    #[arg(long, value_name = "M", default_value_t = 12)]
    pub contacts_per_user: usize,
}

#[derive(Debug, Args)]
pub struct HelpArgs {
    /// The command to explain: sync, check, demo or help.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

/// Global options that shape output.
#[derive(Clone, Copy, Debug)]
pub struct OutputOptions {
    pub detail: Detail,
    /// `sync --actions`.
    pub actions: ActionLines,
    pub progress: bool,
}

/// The binary's entry point: parse `args`, run, and return the exit code. `env` is the
/// environment to read configuration from (the process environment in `main`, a fixed map in
/// tests).
pub fn main_with(args: impl IntoIterator<Item = OsString>, env: Env) -> Exit {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => return clap_exit(&e),
    };
    if let Command::Help(help) = &cli.command {
        // Parsing `<command> --help` prints exactly what `synccontacts <command> --help` does.
        let mut argv = vec!["synccontacts"];
        argv.extend(help.command.as_deref());
        argv.push("--help");
        return match Cli::try_parse_from(argv) {
            Err(e) => clap_exit(&e),
            Ok(_) => process_exit_code(&RunEnd::default()),
        };
    }
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
        actions: match &cli.command {
            Command::Sync(args) => args.actions,
            _ => ActionLines::default(),
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
            return process_exit_code(&RunEnd::run_failed());
        }
    };
    match cli.command {
        Command::Sync(args) => runtime.block_on(sync_command(&env, &args, opts, &out)),
        Command::Check(args) => runtime.block_on(crate::check::check_command(
            &env,
            &args.tenants,
            args.state.as_deref(),
            opts.detail,
            &out,
        )),
        Command::Demo(args) => demo_command(&runtime, &args, opts, &out),
        Command::Help(_) => process_exit_code(&RunEnd::default()),
    }
}

/// What a refused command line exits with: --help and --version are successes, usage errors are
/// configuration errors (2).
fn clap_exit(e: &clap::Error) -> Exit {
    let _ = e.print();
    process_exit_code(&if e.use_stderr() {
        RunEnd::refused()
    } else {
        RunEnd::default()
    })
}

#[cfg(feature = "demo")]
fn demo_command(
    runtime: &tokio::runtime::Runtime,
    args: &DemoArgs,
    opts: OutputOptions,
    out: &Out,
) -> Exit {
    runtime.block_on(crate::demo::demo_command(args, opts, out))
}

/// Without the emulator in the binary there is nothing to run against: say so (exit 2, like any
/// request the binary cannot honour before doing anything).
#[cfg(not(feature = "demo"))]
fn demo_command(
    _runtime: &tokio::runtime::Runtime,
    _args: &DemoArgs,
    _opts: OutputOptions,
    _out: &Out,
) -> Exit {
    eprintln!("{NO_DEMO}");
    process_exit_code(&RunEnd::refused())
}

/// What `synccontacts demo` prints in a build without the `demo` feature.
pub const NO_DEMO: &str = "error: this synccontacts was built without the demo (cargo feature `demo`, \
     on by default); build it with the default features to run `synccontacts demo`";

/// `synccontacts sync`: configuration, both stages, and the output paths (exit 2 on any problem,
/// before any request), then every tenant in turn — until SIGINT or SIGTERM, which stop the run
/// cleanly (exit 130/143). The last line on stdout is printed after the report is written, so
/// the exit code it names is the one returned.
pub async fn sync_command(env: &Env, args: &SyncArgs, opts: OutputOptions, out: &Out) -> Exit {
    let run_env = crate::run::RunEnv::default();
    stop::watch_signals(&run_env.stop);
    let (mut exit, mut report) = sync_with_report(env, args, &run_env, opts, out).await;
    let mut note = None;
    // The JUnit file first: it holds no exit code, so the JSON report written after it can
    // still say that the JUnit file failed (exit 1).
    if let Some(path) = &args.junit
        && let Err(e) = report::write_junit(&report, path)
    {
        tracing::error!("cannot write the JUnit report to {}: {e}", path.display());
        let mut end = end_of(&report);
        end.run_failed = true;
        exit = process_exit_code(&end);
        report.exit_code = exit.code();
        note = Some("the JUnit report could not be written");
    }
    if let Some(path) = &args.report
        && let Err(e) = report::write_json(&report, path)
    {
        tracing::error!("cannot write the report to {}: {e}", path.display());
        let mut end = end_of(&report);
        end.run_failed = true;
        exit = process_exit_code(&end);
        report.exit_code = exit.code();
        note = Some("the report could not be written");
    }
    out.line(&report::run_summary_noting(&report, note));
    exit
}

/// The sync as a library call: the exit code and the report (also when the configuration is
/// refused). Prints each tenant's text as it finishes, and the line saying why a stopped run
/// stopped, but not the last line ([`report::run_summary`]): the caller prints it once the exit
/// code is final. The run stops at `--max-duration` (or its variable, or the default) after the
/// configuration is loaded, or when `run_env.stop` fires.
pub async fn sync_with_report(
    env: &Env,
    args: &SyncArgs,
    run_env: &crate::run::RunEnv,
    opts: OutputOptions,
    out: &Out,
) -> (Exit, RunReport) {
    let loaded = config::load(env).and_then(|mut c| {
        c.select_tenants(&args.tenants)?;
        if let Some(path) = &args.state {
            c.state = config::StatePath::option(path.clone());
        }
        c.allow_deletes = args.allow_deletes;
        Ok(c)
    });
    // A refused configuration runs nothing: its state path is only checked, not prepared.
    let dry_run = args.dry_run || loaded.as_ref().map_or(true, |c| c.dry_run);
    let state = match &loaded {
        Ok(c) => c.state.clone(),
        Err(_) => args.state.clone().map_or_else(
            || config::StatePath::from_env(env),
            config::StatePath::option,
        ),
    };
    let mut outputs = output_problems(args, &state, dry_run);
    if let (Some(n), Ok(c)) = (args.allow_deletes, &loaded)
        && c.tenants.len() > 1
    {
        outputs.push(config::Problem {
            variable: "--allow-deletes".into(),
            tenant: None,
            field: None,
            problem: format!(
                "releases held deletes of one tenant, but {} tenants would run",
                c.tenants.len()
            ),
            fix: format!(
                "add --tenant KEY for the tenant whose deletes to release (the run that held them printed the command: synccontacts sync --tenant KEY --allow-deletes {n})"
            ),
        });
    }
    let mut config = match (loaded, outputs) {
        (Ok(c), outputs) if outputs.is_empty() => c,
        (Ok(_), problems) => {
            return refused(&config::ConfigError {
                problems,
                read_directory: false,
            });
        }
        (Err(mut e), outputs) => {
            e.problems.extend(outputs);
            return refused(&e);
        }
    };
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    if args.dry_run && !config.dry_run {
        config.dry_run = true;
        config.dry_run_origin = Some("--dry-run".into());
    }
    if let Some(n) = args.app_requests {
        config.app_budget = Some(n);
    }
    trace_effective_config(&config);
    let max_duration = args
        .max_duration
        .or(config.max_run)
        .unwrap_or(stop::DEFAULT_MAX_DURATION);
    stop::start_deadline(&run_env.stop, max_duration);
    match crate::run::sync_all(config, env, run_env, opts, out).await {
        Ok(mut report) => {
            let exit = process_exit_code(&end_of(&report));
            report.exit_code = exit.code();
            if let Some(line) = report::stop_line(&report) {
                out.line(&line);
            }
            (exit, report)
        }
        Err(e) => refused(&e),
    }
}

/// The files the run names, checked before the first request: `--report`, `--junit`, and the
/// state file (a real run may create its folder; a dry run only reads it).
fn output_problems(
    args: &SyncArgs,
    state: &config::StatePath,
    dry_run: bool,
) -> Vec<config::Problem> {
    let mut problems = Vec::new();
    for (option, path) in [("--report", &args.report), ("--junit", &args.junit)] {
        if let Some(path) = path
            && let Err(p) = config::check_output_path(option, path, config::MissingFolder::Refuse)
        {
            problems.push(p);
        }
    }
    if let Err(p) = state.check(!dry_run) {
        problems.push(p);
    }
    problems
}

/// A run refused for its configuration: exit 2 and a report saying so. Such a run wrote nothing,
/// so its report says `"dryRun": true` whatever DryRun was (or failed to parse as).
fn refused(e: &config::ConfigError) -> (Exit, RunReport) {
    eprint!("{e}");
    let exit = process_exit_code(&RunEnd::refused());
    let report = RunReport {
        dry_run: true,
        error: Some(e.to_string()),
        exit_code: exit.code(),
        ..RunReport::default()
    };
    (exit, report)
}

/// How a sync ended, from its report: refused when it carries a configuration error, else its
/// tenants' outcomes, the signal that interrupted it and whether the brake held deletes.
fn end_of(report: &RunReport) -> RunEnd {
    RunEnd {
        refused: report.error.is_some(),
        interrupted: match report.stopped_by {
            Some(StopCause::Signal(s)) => Some(s),
            _ => None,
        },
        deletes_held: report.tenants.iter().any(|t| t.book.brake_held()),
        ..RunEnd::of_tenants(report.tenants.iter().map(|t| t.outcome))
    }
}

/// `-vv`: each tenant's effective configuration, as trace events (no secret: a credential is
/// described by its kind and the file or variable it names).
pub fn trace_effective_config(config: &config::Config) {
    tracing::trace!(
        source = config.source.variable(),
        dry_run = config.dry_run,
        batch_writes = config.batch_writes,
        max_run_minutes = config.max_run.map(|d| d.as_secs() / 60),
        app_budget = config.app_budget,
        tenants = config.tenants.len(),
        "effective configuration"
    );
    for t in &config.tenants {
        tracing::trace!(
            tenant = %t.label(),
            origin = %t.origin,
            client_id = %t.client_id,
            credential = %t.credential.describe(),
            hub = %t.hub,
            scope = %t.scope.describe(),
            rules = ?t.rules,
            cloud = %t.cloud,
            login = %t.endpoints.login,
            login_from = t.endpoint_origins.login.unwrap_or("Cloud"),
            graph = %t.endpoints.graph,
            graph_from = t.endpoint_origins.graph.unwrap_or("Cloud"),
            options = ?t.options,
            "effective tenant configuration"
        );
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn every_command_and_option_has_a_description() {
        fn walk(cmd: &clap::Command, path: &str) {
            for arg in cmd.get_arguments() {
                assert!(
                    arg.get_help()
                        .is_some_and(|h| !h.to_string().trim().is_empty()),
                    "{path}: option {} has no description",
                    arg.get_id()
                );
            }
            for sub in cmd.get_subcommands() {
                assert!(
                    sub.get_about()
                        .is_some_and(|h| !h.to_string().trim().is_empty()),
                    "{path} {}: no description",
                    sub.get_name()
                );
                walk(sub, &format!("{path} {}", sub.get_name()));
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        walk(&cmd, "synccontacts");
    }
}
