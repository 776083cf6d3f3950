//! End-to-end tests: the real `synccontacts` binary, a cleared environment, and a fresh
//! `graph-emulator` started in-process on port 0 per test. The emulator's state and stats are the
//! oracles (docs/reliability.md); nothing here trusts the binary's own account of what it did.

mod harness;

mod classes_e2e;
mod cli_e2e;
mod config_e2e;
mod fields_e2e;
mod identity_e2e;
mod junit_e2e;
mod lost_answers_e2e;
mod pacing_e2e;
mod privacy_e2e;
mod realism_e2e;
mod scope_e2e;
mod state_e2e;
mod sync_e2e;
mod volume_e2e;
