//! graph-emulator: a local stand-in for Microsoft Graph v1.0 and the identity platform's token
//! endpoint (EMULATOR.md). It must never talk to a real tenant.

pub mod assertion;
pub mod batch;
pub mod delta;
pub mod faults;
pub mod limits;
pub mod realism;
pub mod tls;
