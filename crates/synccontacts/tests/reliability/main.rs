//! The reliability suite (issue 7, docs/reliability.md I1–I9): the synccontacts library entry point
//! and the real binary, driven against a fresh in-process `graph-emulator` per case through
//! crash points, throttling and server-fault storms, expiring tokens and concurrent user edits.
//!
//! The oracles are the emulator's `/_emulator/state` and `/_emulator/stats` (never the run's own
//! account of itself). Runs that must wait (backoff, `Retry-After`) use a virtual clock that also
//! moves the emulator's clock, so a storm of 5-second `Retry-After`s costs no wall time while the
//! emulator still sees the waits. Heavier variants are `#[ignore]`d (run them with
//! `cargo test -p synccontacts --test reliability -- --ignored`); `SYNCCONTACTS_PROPTEST_CASES`
//! scales the random-scenario tests.
//!
//! State (issue 12, I10–I14): `memory.rs` and `deletes.rs` run with a state file; `crash.rs` and
//! `storms.rs` carry one state file across a run and its repair runs (one variant of each keeps
//! a fresh state per run, first-run mode only); `crash_deletes.rs` crashes a run that deletes at
//! every write (dropped before, applied then dropped, the real binary killed before its commit)
//! and repairs it from the state the crash left; `random_runs.rs` drives random tenants through
//! several runs with random deletions by the hub's administrator and by users, random losses of
//! the state file and random faults. Other runs get a fresh state of their own.

#[path = "../e2e/harness.rs"]
mod harness;
mod kit;

mod canaries;
mod concurrent;
mod crash;
mod crash_deletes;
mod deletes;
mod delta;
mod memory;
mod random;
mod random_runs;
mod stops;
mod storms;
