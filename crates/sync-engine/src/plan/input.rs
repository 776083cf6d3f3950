//! The planner's input: the folders read ([`MailboxSnapshot`], with whether each read was
//! complete), the memory of the previous run, and the tenant's delete and privacy settings. Plain
//! data; the binary builds it, nothing here decides anything.

use crate::field::FieldSet;
use crate::memory::Memory;
use crate::model::Contact;
use crate::privacy::PrivateCategories;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Every contact read from one folder (the hub's "All Contacts", or a user's default folder).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxSnapshot {
    /// UPN, or object id when the user has none (docs/compatibility.md §2).
    pub mailbox: String,
    pub contacts: Vec<Contact>,
    /// Whether every page was read. A folder whose read failed outright is left out of the input
    /// altogether.
    #[serde(default)]
    pub read: ReadStatus,
}

impl MailboxSnapshot {
    /// A folder read completely.
    pub fn complete(mailbox: impl Into<String>, contacts: Vec<Contact>) -> Self {
        MailboxSnapshot {
            mailbox: mailbox.into(),
            contacts,
            read: ReadStatus::Complete,
        }
    }
}

/// Whether a folder's listing is the whole folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReadStatus {
    /// Every page read without error (and, with delta reads, a round that ended in a deltaLink).
    /// The default because that is what a snapshot has always meant.
    #[default]
    Complete,
    /// Cut short: the contacts listed are real, but the folder may hold more, so absence proves
    /// nothing. An incomplete user folder is planned as if its read had failed (no write into it,
    /// no deletion or opt-out from it); an incomplete hub folder stops the plan (nothing is
    /// written: every decision depends on the hub).
    Incomplete,
}

/// Everything the planner decides from. Nothing else is consulted.
#[derive(Clone, Debug)]
pub struct PlanInput {
    pub hub: MailboxSnapshot,
    pub users: Vec<MailboxSnapshot>,
    /// `UpdateExisting` (default on): whether differing older copies are overwritten.
    pub update_existing: bool,
    /// `LastUpdatedAt` of every write of this run.
    pub now: Timestamp,
    /// What the previous run left (docs/state-and-deletes.md §1). `None`: first-run mode — no
    /// deletion, no opt-out, no write-vs-edit correction, exactly the plan without memory. Given
    /// memory is checked first ([`Plan::memory_verdict`]); distrusted memory plans as `None`.
    pub memory: Option<Memory>,
    pub options: DeleteOptions,
    /// The fields synced (`Fields`; [`FieldSet::default`] is docs/compatibility.md §7's twelve):
    /// the only ones compared, written and fingerprinted. The snapshots' contacts may hold more
    /// (e.g. `categories` read for the privacy rules); those are ignored.
    pub fields: FieldSet,
    /// `PrivateCategories` (default `["Private"]`): a user's contact carrying one, or with
    /// Outlook's Private flag ([`Contact::private_flag`]), is private
    /// (docs/state-and-deletes.md §4, I15); these categories are never written to another copy nor
    /// compared.
    pub private_categories: PrivateCategories,
}

/// The delete settings of a tenant (docs/state-and-deletes.md §3).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeleteOptions {
    pub deletes: Deletes,
    pub user_deletes: UserDeletes,
    pub limit: BrakeLimit,
}

/// `Deletes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Deletes {
    /// A contact deleted from the hub is deleted from every user (tagged copies only).
    #[default]
    Hub,
    /// Nothing is deleted: the deletes are only reported ([`Book::would_delete`]) and the hub copy
    /// is re-created from the users' copies, as the script did.
    Off,
}

/// `UserDeletes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UserDeletes {
    /// A copy a user deleted comes back (the book stays complete).
    #[default]
    Restore,
    /// The user is opted out of that contact; it is not re-created in their folder until their
    /// folder holds it again.
    Respect,
}

/// How many contacts one run may remove from the book (docs/state-and-deletes.md §3.4).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BrakeLimit {
    /// Hold every delete when more than 10 **and** more than 10 % of the hub's contacts (as
    /// remembered) would go.
    #[default]
    Default,
    /// Tenant `MaxDeletes`: hold every delete when more than N would go.
    MaxDeletes(usize),
    /// `--allow-deletes N`: release up to N (oldest tombstone first, then SyncId), hold the rest.
    AllowDeletes(usize),
}
