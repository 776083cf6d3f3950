//! `synccontacts demo` — placeholder until the emulator lands.

use crate::cli::{DemoArgs, OutputOptions};
use crate::exit::Exit;
use crate::output::Out;

pub async fn demo_command(_args: &DemoArgs, _opts: OutputOptions, out: &Out) -> Exit {
    out.line("demo needs the Graph emulator (not merged yet)");
    Exit::Partial
}
