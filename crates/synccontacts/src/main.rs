//! The `synccontacts` binary: a thin shell over the library (see `cli.rs`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let env = synccontacts::config::Env::from_process();
    synccontacts::cli::main_with(std::env::args_os(), env).into()
}
