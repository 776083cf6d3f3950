//! The pure core of synccontacts: the contact model, the `personalNotes` tag line, matching, and
//! the convergence plan.
//!
//! This crate never does I/O, never reads the clock and never draws random numbers: time, id
//! generation and the memory of earlier runs (`memory`) are passed in by the caller, so every
//! decision is reproducible in tests.

pub mod fields;
pub mod fingerprint;
pub mod memory;
pub mod model;
pub mod plan;
pub mod tags;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use fields::{Field, FieldChange, FieldSet, WrittenFields};
pub use memory::{
    ContactKey, CopyMemory, FolderMemory, Guid, HoldReason, Memory, OptOut, Tombstone,
    TombstoneStatus, Version,
};
pub use model::{Contact, ContactFields, EmailAddress, SYNCED_FIELDS};
pub use plan::{
    Action, BrakeLimit, DataProblem, DeleteOptions, Deletes, MailboxSnapshot, Operation, Plan,
    PlanInput, ProblemKind, ReadStatus, Target, UserDeletes, Write, WriteResult, next_memory, plan,
};
pub use tags::{ParsedNotes, SyncId, Tags};
