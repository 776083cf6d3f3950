//! synccontacts as a library: everything the binary does, callable from tests and benchmarks.
//!
//! The binary (`main.rs`) only parses the command line and calls [`cli::main_with`]. This crate
//! owns configuration, orchestration (read → plan → apply), reporting and exit codes; it must never
//! put Graph or planning logic here that belongs in `graph` or `sync-engine`.

pub mod check;
pub mod cli;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod exit;
pub mod failure;
pub mod logging;
pub mod output;
pub mod report;
pub mod run;
pub mod state;
pub mod stop;
pub mod version;
