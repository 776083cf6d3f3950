//! The pure core of synccontacts: the contact model, the `personalNotes` tag line, matching, and
//! the convergence plan.
//!
//! This crate never does I/O, never reads the clock and never draws random numbers: time and id
//! generation are passed in by the caller, so every decision is reproducible in tests.

pub mod fields;
pub mod model;
pub mod tags;

pub use model::{Contact, ContactFields, EmailAddress, SYNCED_FIELDS};
pub use tags::{ParsedNotes, SyncId, Tags};
