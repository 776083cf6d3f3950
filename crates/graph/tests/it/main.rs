//! Integration tests of the Graph client: against a scripted mock server (exact responses) and
//! against the in-process Graph emulator (realistic behaviour and limits).

mod auth_flows;
mod contact;
mod delta;
mod directory;
mod emulated_delta;
mod emulated_writes;
mod emulator;
mod halt;
mod mock;
mod mock_client;
mod pacing;
mod realism;
mod retry_rules;
