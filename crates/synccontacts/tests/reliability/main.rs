//! The reliability suite (issue 7, RELIABILITY.md I1–I9): the synccontacts library entry point
//! and the real binary, driven against a fresh in-process `graph-emulator` per case through
//! crash points, throttling and server-fault storms, expiring tokens and concurrent user edits.
//!
//! The oracles are the emulator's `/_emulator/state` and `/_emulator/stats` (never the run's own
//! account of itself). Runs that must wait (backoff, `Retry-After`) use a virtual clock that also
//! moves the emulator's clock, so a storm of 5-second `Retry-After`s costs no wall time while the
//! emulator still sees the waits. Heavier variants are `#[ignore]`d (run them with
//! `cargo test -p synccontacts --test reliability -- --ignored`); `SYNCCONTACTS_PROPTEST_CASES`
//! scales the random-scenario test. `memory.rs` and `deletes.rs` run with a state file (issue 12,
//! I10–I14); every other run gets a fresh state of its own (first-run mode, as before the state).

#[path = "../e2e/harness.rs"]
mod harness;
mod kit;

mod canaries;
mod concurrent;
mod crash;
mod deletes;
mod delta;
mod memory;
mod random;
mod stops;
mod storms;
