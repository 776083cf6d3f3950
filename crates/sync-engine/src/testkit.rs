//! An in-memory tenant that applies a [`Plan`] the way Graph would, for tests (feature `testkit`).
//!
//! Writes behave as docs/graph-facts.md §1 and §9 describe: a create gets a new server id,
//! `changeKey` (etag) and `lastModifiedDateTime`; an update replaces exactly the properties in the
//! body (collections wholesale), checks `If-Match` against the current etag (412 otherwise), bumps
//! the etag and the timestamp, and keeps `personalNotes` exactly as sent. Round-trip normalisation
//! is applied on purpose, and a little adversarially: empty strings come back as `null`, and an
//! email entry without `name` comes back with `name` equal to its address (what UI-made contacts
//! look like). A delete removes the contact (`If-Match` checked the same way); a write never
//! touches a contact's Private flag (Graph keeps extended properties a PATCH does not name). Every
//! write answers with its new changeKey ([`WriteResult`]), so tests can thread the memory from run
//! to run ([`crate::plan::next_memory`]); and the world can move between runs: user edits, user and
//! admin deletes, Exchange's spontaneous changeKey bumps ([`Tenant::edit`], [`Tenant::delete`],
//! [`Tenant::bump_change_key`]). This is a test double, never a second source of truth: the
//! emulator is the real oracle.

use crate::field::{Field, FieldSet};
use crate::memory::{Memory, change_key};
use crate::model::{Contact, ContactFields, ContactParts, EmailAddress};
use crate::plan::{DeleteOptions, MailboxSnapshot, Plan, PlanInput, Target, Write, WriteResult};
use crate::privacy::PrivateCategories;
use crate::values::FieldsBuilder;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value};

/// Why an operation could not be applied (each one is a planner bug in a test).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ApplyError {
    #[error("unknown mailbox {0}")]
    UnknownMailbox(String),
    #[error("contact {0} not found in {1}")]
    NotFound(String, String),
    #[error("412 precondition failed for {0}: If-Match {1:?}, current {2:?}")]
    EtagMismatch(String, Option<String>, Option<String>),
    #[error("bad operation: {0}")]
    Bad(String),
    #[error("body does not deserialise as contact fields: {0}")]
    Body(String),
}

/// A tenant held in memory: the hub folder and every user's default folder.
#[derive(Clone, Debug)]
pub struct Tenant {
    pub hub: MailboxSnapshot,
    pub users: Vec<MailboxSnapshot>,
    /// The server clock: every write happens after everything already in the tenant.
    pub clock: Timestamp,
    /// The field set runs are planned with ([`PlanInput::fields`]); the default set unless a test
    /// changes it.
    pub fields: FieldSet,
    /// `PrivateCategories` runs are planned with (default `["Private"]`).
    pub private_categories: PrivateCategories,
    next_id: u64,
}

impl Tenant {
    pub fn new(hub: MailboxSnapshot, users: Vec<MailboxSnapshot>) -> Self {
        let latest = hub
            .contacts
            .iter()
            .chain(users.iter().flat_map(|u| u.contacts.iter()))
            .filter_map(Contact::last_modified)
            .max()
            .unwrap_or(Timestamp::UNIX_EPOCH);
        Tenant {
            hub,
            users,
            clock: latest + SignedDuration::from_secs(60),
            fields: FieldSet::DEFAULT,
            private_categories: PrivateCategories::default(),
            next_id: 1,
        }
    }

    /// The planner's input for a run starting now, without memory (first-run mode).
    pub fn input(&self, update_existing: bool) -> PlanInput {
        self.input_with(update_existing, None, DeleteOptions::default())
    }

    /// The planner's input for a run starting now, with `memory` and `options`.
    pub fn input_with(
        &self,
        update_existing: bool,
        memory: Option<Memory>,
        options: DeleteOptions,
    ) -> PlanInput {
        PlanInput {
            hub: self.hub.clone(),
            users: self.users.clone(),
            update_existing,
            now: self.clock,
            memory,
            options,
            fields: self.fields,
            private_categories: self.private_categories.clone(),
        }
    }

    /// A folder by mailbox (the hub's or a user's).
    pub fn folder(&self, mailbox: &str) -> Option<&MailboxSnapshot> {
        self.folders().find(|f| f.mailbox == mailbox)
    }

    fn any_folder_mut(&mut self, mailbox: &str) -> Option<&mut MailboxSnapshot> {
        std::iter::once(&mut self.hub)
            .chain(self.users.iter_mut())
            .find(|f| f.mailbox == mailbox)
    }

    /// Lets the clock pass (scheduled runs are minutes or days apart).
    pub fn advance(&mut self, by: SignedDuration) {
        self.clock += by;
    }

    /// A user (or an admin, in the hub) edits a contact: `f` changes its fields; Exchange gives it
    /// a new changeKey and `lastModifiedDateTime`. Returns false if there is no such contact.
    pub fn edit(&mut self, mailbox: &str, id: &str, f: impl FnOnce(&mut ContactFields)) -> bool {
        let (now, etag) = self.tick();
        let Some(c) = self.contact_mut(mailbox, id) else {
            return false;
        };
        f(&mut c.fields);
        c.set_etag(Some(&etag));
        c.set_last_modified(Some(now));
        true
    }

    /// The owner ticks (or clears) Outlook's Private flag on a contact: an edit like any other
    /// (new changeKey and `lastModifiedDateTime`). Returns false if there is no such contact.
    pub fn set_private_flag(&mut self, mailbox: &str, id: &str, private: bool) -> bool {
        let (now, etag) = self.tick();
        let Some(c) = self.contact_mut(mailbox, id) else {
            return false;
        };
        c.set_private_flag(private);
        c.set_etag(Some(&etag));
        c.set_last_modified(Some(now));
        true
    }

    /// Exchange changes a contact's changeKey by itself, no field changed (docs/graph-facts.md §1);
    /// its `lastModifiedDateTime` moves too (the worst case for telling it from an edit).
    pub fn bump_change_key(&mut self, mailbox: &str, id: &str) -> bool {
        self.edit(mailbox, id, |_| {})
    }

    /// A user deletes their copy, or an admin a hub contact. Returns the contact removed.
    pub fn delete(&mut self, mailbox: &str, id: &str) -> Option<Contact> {
        let folder = self.any_folder_mut(mailbox)?;
        let i = folder.contacts.iter().position(|c| c.id() == id)?;
        Some(folder.contacts.remove(i))
    }

    fn contact_mut(&mut self, mailbox: &str, id: &str) -> Option<&mut Contact> {
        self.any_folder_mut(mailbox)?
            .contacts
            .iter_mut()
            .find(|c| c.id() == id)
    }

    /// All folders, hub first.
    pub fn folders(&self) -> impl Iterator<Item = &MailboxSnapshot> {
        std::iter::once(&self.hub).chain(self.users.iter())
    }

    fn folder_mut(
        &mut self,
        mailbox: &str,
        target: Target,
    ) -> Result<&mut MailboxSnapshot, ApplyError> {
        match target {
            Target::Hub if self.hub.mailbox == mailbox => Ok(&mut self.hub),
            Target::UserDefault => self
                .users
                .iter_mut()
                .find(|u| u.mailbox == mailbox)
                .ok_or_else(|| ApplyError::UnknownMailbox(mailbox.to_owned())),
            Target::Hub => Err(ApplyError::UnknownMailbox(mailbox.to_owned())),
        }
    }

    fn tick(&mut self) -> (Timestamp, String) {
        self.clock += SignedDuration::from_millis(1);
        self.next_id += 1;
        (self.clock, format!("W/\"ck{}\"", self.next_id))
    }

    /// Applies every operation in plan order, stopping at the first failure (in these tests a
    /// refused write is a planner bug). Returns what each write answered.
    pub fn apply(&mut self, plan: &Plan) -> Result<Vec<WriteResult>, ApplyError> {
        plan.operations
            .iter()
            .map(|op| self.apply_one(op))
            .collect()
    }

    /// Applies every operation as Graph answers it, going on after a refusal: 412 → `Conflict`, a
    /// missing contact → `Failed` (404 on a DELETE → `Done`, as the binary maps it).
    pub fn apply_lenient(&mut self, plan: &Plan) -> Vec<WriteResult> {
        plan.operations
            .iter()
            .map(|op| match self.apply_one(op) {
                Ok(r) => r,
                Err(ApplyError::EtagMismatch(..)) => WriteResult::Conflict,
                Err(ApplyError::NotFound(..)) if matches!(op.write, Write::Delete { .. }) => {
                    WriteResult::Done { change_key: None }
                }
                Err(_) => WriteResult::Failed,
            })
            .collect()
    }

    fn apply_one(&mut self, op: &crate::plan::Operation) -> Result<WriteResult, ApplyError> {
        let (now, etag) = self.tick();
        let id = format!("id-{}", self.next_id);
        let answered = Some(change_key(&etag).to_owned());
        let folder = self.folder_mut(&op.mailbox, op.target)?;
        // The body production sends (`Operation::body`), applied as Graph would.
        let body = op.body();
        match &op.write {
            Write::Create { .. } => {
                let mut c: Contact = ContactParts {
                    id: id.clone(),
                    etag: Some(etag),
                    last_modified_date_time: Some(now),
                    ..Default::default()
                }
                .into();
                write_body(&mut c, &body)?;
                folder.contacts.push(c);
                Ok(WriteResult::Created {
                    contact_id: id,
                    change_key: answered,
                })
            }
            Write::Delete {
                contact_id,
                etag: if_match,
                ..
            } => {
                let i = folder
                    .contacts
                    .iter()
                    .position(|c| c.id() == contact_id)
                    .ok_or_else(|| ApplyError::NotFound(contact_id.clone(), op.mailbox.clone()))?;
                let c = &folder.contacts[i];
                if if_match.is_some() && if_match.as_deref() != c.etag() {
                    return Err(ApplyError::EtagMismatch(
                        contact_id.clone(),
                        if_match.clone(),
                        c.etag().map(str::to_owned),
                    ));
                }
                folder.contacts.remove(i);
                Ok(WriteResult::Done { change_key: None })
            }
            Write::Update {
                contact_id,
                etag: if_match,
                ..
            }
            | Write::Stamp {
                contact_id,
                etag: if_match,
            } => {
                let c = folder
                    .contacts
                    .iter_mut()
                    .find(|c| c.id() == contact_id)
                    .ok_or_else(|| ApplyError::NotFound(contact_id.clone(), op.mailbox.clone()))?;
                if if_match.is_some() && if_match.as_deref() != c.etag() {
                    return Err(ApplyError::EtagMismatch(
                        contact_id.clone(),
                        if_match.clone(),
                        c.etag().map(str::to_owned),
                    ));
                }
                if matches!(op.write, Write::Stamp { .. })
                    && body
                        .keys()
                        .any(|k| k != "personalNotes" && k != "displayName")
                {
                    return Err(ApplyError::Bad(format!("stamp writes data: {body:?}")));
                }
                write_body(c, &body)?;
                c.set_etag(Some(&etag));
                c.set_last_modified(Some(now));
                Ok(WriteResult::Done {
                    change_key: answered,
                })
            }
        }
    }
}

/// Overlays a PATCH/POST body on a contact and normalises like Graph's read-back (and the
/// emulator): a property sent replaces the stored one (a collection or an address wholesale), an
/// email entry without `name` comes back named with its address, a date-only `birthday` comes
/// back at 11:59 UTC of that day. Any supported field is accepted: which ones a plan may send is
/// for the tests to check.
pub fn write_body(c: &mut Contact, body: &Map<String, Value>) -> Result<(), ApplyError> {
    use serde::de::DeserializeSeed;
    let mut b = FieldsBuilder::from_block(&c.fields);
    for (k, v) in body {
        if k == "personalNotes" {
            match v {
                Value::String(s) => c.set_personal_notes(Some(s)),
                Value::Null => c.set_personal_notes(None),
                other => return Err(ApplyError::Body(format!("personalNotes {other}"))),
            }
            continue;
        }
        let field = Field::from_json_name(k)
            .ok_or_else(|| ApplyError::Body(format!("unexpected property {k}")))?;
        crate::values::ValueSeed {
            field,
            builder: &mut b,
        }
        .deserialize(v)
        .map_err(|e| ApplyError::Body(e.to_string()))?;
    }
    let mut fields = b.build();
    let emails: Vec<EmailAddress> = fields
        .emails()
        .map(|e| EmailAddress {
            address: Some(e.address.to_owned()),
            name: Some(if e.name.is_empty() { e.address } else { e.name }.to_owned()),
        })
        .collect();
    fields.set(Field::EmailAddresses, emails);
    let birthday = fields.text(Field::Birthday);
    if birthday.len() == 10 {
        let at_noon = format!("{birthday}T11:59:00Z");
        fields.set(Field::Birthday, at_noon);
    }
    c.fields = fields;
    Ok(())
}

/// A deterministic SyncId generator for tests: `00000000-0000-4000-8000-000000000001`, …
pub fn sequential_ids(prefix: u32) -> impl FnMut() -> String {
    let mut n: u64 = 0;
    move || {
        n += 1;
        format!("{prefix:08x}-0000-4000-8000-{n:012x}")
    }
}
