//! Integration tests of the Graph client: against a scripted mock server (exact responses) and
//! against the in-process Graph emulator (realistic behaviour and limits).

mod auth_flows;
mod contact;
mod emulated_writes;
mod emulator;
mod mock;
mod mock_client;
mod realism;
mod retry_rules;
mod secrets;
