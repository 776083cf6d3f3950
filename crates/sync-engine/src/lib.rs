//! The pure core of synccontacts: the contact model, the `personalNotes` tag line, matching, and
//! the convergence plan.
//!
//! This crate never does I/O, never reads the clock and never draws random numbers: time and id
//! generation are passed in by the caller, so every decision is reproducible in tests.

pub mod fields;
pub mod model;
pub mod plan;
pub mod tags;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use fields::{Field, FieldChange, FieldSet, WrittenFields};
pub use model::{Contact, ContactFields, EmailAddress, SYNCED_FIELDS};
pub use plan::{
    Action, DataProblem, MailboxSnapshot, Operation, Plan, PlanInput, ProblemKind, Target, Write,
    plan,
};
pub use tags::{ParsedNotes, SyncId, Tags};
