//! The pure core of synccontacts: the contact model (the synced fields as data, `field`; one value
//! block per contact, `values`), the `personalNotes` tag line, which contacts are private
//! (`privacy`), matching, and the convergence plan.
//!
//! This crate never does I/O, never reads the clock and never draws random numbers: time, id
//! generation and the memory of earlier runs (`memory`) are passed in by the caller, so every
//! decision is reproducible in tests.

pub mod field;
pub mod fields;
pub mod fingerprint;
pub mod memory;
pub mod model;
pub mod plan;
pub mod privacy;
pub mod remembered;
pub mod tags;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;
pub mod values;

pub use field::{Field, FieldSet, Kind};
pub use fields::{FieldChange, WrittenFields};
pub use memory::{
    ContactKey, CopyMemory, FolderMemory, Guid, HoldReason, Memory, OptOut, Tombstone,
    TombstoneStatus, Version, Withdrawal,
};
pub use model::{Contact, ContactParts};
pub use plan::{
    Action, BrakeLimit, DataProblem, DeleteCause, DeleteOptions, Deletes, MailboxSnapshot,
    Operation, Plan, PlanInput, ProblemKind, ReadStatus, Target, UserDeletes, Write, WriteResult,
    next_memory, plan,
};
pub use privacy::PrivateCategories;
pub use tags::{ParsedNotes, SyncId, Tags};
pub use values::{ContactFields, EmailAddress, FieldValue, FieldsBuilder, PhysicalAddress};
