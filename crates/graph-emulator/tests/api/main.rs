//! Integration tests of graph-emulator over HTTP (one test binary, shared harness in `common`).
//! Each test pins one behaviour of crates/graph-emulator/README.md / docs/graph-facts.md against an
//! in-process emulator.

mod common;

mod binary;
mod contacts;
mod control;
mod deletes;
mod delta;
mod directory;
mod extprops;
mod groups;
mod identity;
mod ids;
mod library;
mod oracles;
mod properties;
mod realism;
