//! Logging set-up: `tracing` to stderr as text or JSON, filtered `RUST_LOG`-style, with progress
//! bars only on a terminal (docs/sync-rules.md §6: "plain log lines in CI, no bar redraw noise").
//!
//! The filter always caps the HTTP stack's own crates (hyper, h2, rustls, reqwest) at `info`,
//! whatever `RUST_LOG` says: at trace level they log raw frames, and a frame can carry the
//! `Authorization` header or the token request's form (docs/reliability.md I7). This module must
//! never log anything itself beyond set-up problems.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::Env;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct LogOptions {
    pub format: LogFormat,
    /// -1 quiet, 0 default, 1 `-v`, 2+ `-vv`.
    pub verbosity: i8,
    pub no_progress: bool,
}

/// Crates whose trace output may contain wire data; never below `info`.
const WIRE_CRATES: [&str; 6] = ["hyper", "hyper_util", "h2", "rustls", "reqwest", "tower"];

/// The filter: `RUST_LOG` when set (plus the wire caps), otherwise from the verbosity.
pub fn filter(env: &Env, verbosity: i8) -> EnvFilter {
    let base = match env.non_blank("RUST_LOG") {
        Some(s) => s.to_owned(),
        None => match verbosity {
            i8::MIN..=-1 => "warn".to_owned(),
            0 => "info".to_owned(),
            1 => "info,synccontacts=debug,graph=debug,sync_engine=debug".to_owned(),
            _ => "debug,synccontacts=trace,graph=trace,sync_engine=trace,graph_emulator=info"
                .to_owned(),
        },
    };
    let mut f = EnvFilter::builder()
        .parse(&base)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    for c in WIRE_CRATES {
        if let Ok(d) = format!("{c}=info").parse() {
            f = f.add_directive(d);
        }
    }
    f
}

/// Installs the global subscriber (once per process; later calls are no-ops, which is what the
/// in-process tests need). Returns whether progress bars are shown.
pub fn init(env: &Env, opts: LogOptions) -> bool {
    let progress = !opts.no_progress
        && opts.format == LogFormat::Text
        && opts.verbosity >= 0
        && std::io::stderr().is_terminal()
        && env.non_blank("CI").is_none();
    let filter = filter(env, opts.verbosity);
    let ansi = std::io::stderr().is_terminal() && env.non_blank("NO_COLOR").is_none();
    let result = match (opts.format, progress) {
        (LogFormat::Json, _) => tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    // The span list carries the tenant of every line; the current span alone
                    // would only say "read" or "write".
                    .with_current_span(false)
                    .with_span_list(true)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        (LogFormat::Text, true) => {
            let bars = tracing_indicatif::IndicatifLayer::new();
            let writer = bars.get_stderr_writer();
            tracing_subscriber::registry()
                .with(filter)
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_target(false)
                        .with_ansi(ansi)
                        .with_writer(writer),
                )
                .with(tracing_subscriber::Layer::with_filter(
                    bars,
                    tracing_indicatif::filter::IndicatifFilter::new(false),
                ))
                .try_init()
        }
        (LogFormat::Text, false) => tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_target(false)
                    .with_ansi(ansi)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    result.is_ok() && progress
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_crates_are_capped_even_under_rust_log_trace() {
        let env: Env = [("RUST_LOG", "trace")].into_iter().collect();
        let f = filter(&env, 0).to_string();
        assert!(f.contains("hyper=info"), "{f}");
        assert!(f.contains("h2=info"), "{f}");
        assert!(f.contains("trace"), "{f}");
    }

    #[test]
    fn verbosity_sets_the_default_filter() {
        let env = Env::default();
        assert!(filter(&env, -1).to_string().contains("warn"));
        assert!(filter(&env, 2).to_string().contains("synccontacts=trace"));
    }
}
