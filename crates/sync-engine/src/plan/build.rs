//! The plan's operations, built once, in plan order, from the writes both phases (and the deletes
//! step) recorded: each with exactly the data of its kind ([`Write`]), its notes rebuilt from the
//! copy's own text and a fresh tag line (I3), and the winner's fields shared by every write of its
//! logical contact. A delete writes nothing: it names the copy as read.

use super::decide::{PendingWrite, PhaseOne};
use super::keys::CopyRef;
use super::{Action, DeleteCause, MailboxSnapshot, Operation, Write, target_of};
use crate::field::FieldSet;
use crate::fields::{self, WrittenFields};
use crate::model::Contact;
use crate::tags;
use jiff::Timestamp;

/// What making the operations needs once every write is decided: the folders read and the field
/// set — not the planner's per-contact key records, which are freed first.
pub(super) struct Builder<'s, 'a> {
    snapshots: &'s [&'a MailboxSnapshot],
    fields: FieldSet,
}

/// The primary email a report line shows (the ladder's key, docs/compatibility.md §6).
fn email_of(c: &Contact) -> Option<String> {
    fields::primary_email(&c.fields).map(std::borrow::Cow::into_owned)
}

impl<'s, 'a> Builder<'s, 'a> {
    pub(super) fn new(snapshots: &'s [&'a MailboxSnapshot], fields: FieldSet) -> Self {
        Builder { snapshots, fields }
    }

    fn copy(&self, at: CopyRef) -> &'a Contact {
        &self.snapshots[at.folder as usize].contacts[at.pos as usize]
    }

    fn mailbox(&self, folder: u32) -> &'a str {
        &self.snapshots[folder as usize].mailbox
    }

    /// Builds the operations of the pending writes (already sorted), in their order, straight
    /// into the result (the operations are never copied): big plans on every core, each thread
    /// filling its own run of placeholders in place. Their strings land in other malloc arenas;
    /// with the compact input that no longer shows at the peak (BENCHMARKS.md, "Planner").
    pub(super) fn build_operations(
        &self,
        phase_one: &PhaseOne,
        pending: &[PendingWrite],
        now: Timestamp,
    ) -> Vec<Operation> {
        // `LastUpdatedAt` in the tag line's round-trip form, formatted once.
        let now_text = tags::format_round_trip(now);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
        if pending.len() < 10_000 || threads == 1 {
            return pending
                .iter()
                .map(|p| self.build_operation(phase_one, p, &now_text))
                .collect();
        }
        let mut ops: Vec<Operation> = Vec::with_capacity(pending.len());
        ops.resize_with(pending.len(), Operation::placeholder);
        let chunk = pending.len().div_ceil(threads);
        let now_text = now_text.as_str();
        std::thread::scope(|scope| {
            let mut parts = ops.chunks_mut(chunk).zip(pending.chunks(chunk));
            let mine = parts.next();
            for (out, todo) in parts {
                scope.spawn(move || {
                    for (o, p) in out.iter_mut().zip(todo) {
                        *o = self.build_operation(phase_one, p, now_text);
                    }
                });
            }
            if let Some((out, todo)) = mine {
                for (o, p) in out.iter_mut().zip(todo) {
                    *o = self.build_operation(phase_one, p, now_text);
                }
            }
        });
        ops
    }

    fn build_operation(&self, phase_one: &PhaseOne, p: &PendingWrite, now_text: &str) -> Operation {
        let key = p.key;
        if key.action == Action::Delete {
            return self.build_delete(p);
        }
        let decision = &phase_one.decisions[p.logical_id.ix()];
        let winner = self.copy(decision.winner);
        let winner_fields = &winner.fields;
        // The winner's value block, shared (not copied) by every data write of its contact.
        let data = || winner_fields.clone();
        // The write, and the existing copy it changes (none for a create).
        let (write, copy) = match key.action {
            Action::Create => (
                Write::Create {
                    fields: WrittenFields::create(data(), self.fields),
                },
                None,
            ),
            Action::Update => {
                let copy = self.copy(key.copy());
                let changes = fields::diff(&copy.fields, winner_fields, self.fields);
                let write = Write::Update {
                    contact_id: copy.id().to_owned(),
                    etag: copy.etag().map(str::to_owned),
                    fields: WrittenFields::update(data(), &changes),
                    changes,
                };
                (write, Some(copy))
            }
            Action::Stamp => {
                let copy = self.copy(key.copy());
                let write = Write::Stamp {
                    contact_id: copy.id().to_owned(),
                    etag: copy.etag().map(str::to_owned),
                };
                (write, Some(copy))
            }
            Action::Delete => unreachable!("built by build_delete"),
        };
        // Data comes from the winner: to the hub from the winner's mailbox, to users from the
        // hub. A stamp carries no data; its tag line names the winner's mailbox.
        let source = if key.folder == 0 || key.action == Action::Stamp {
            self.mailbox(decision.winner.folder)
        } else {
            self.mailbox(0)
        };
        // A stamp shows (and keeps) the copy's own name and email; a data write the winner's.
        let shown = match (key.action, copy) {
            (Action::Stamp, Some(c)) => c,
            _ => winner,
        };
        // A copy's notes: its own text kept exactly, then the fresh tag line (I3) with its own
        // `CreatedBy` if it has one, else the contact's (one reading of the notes for both).
        let (expected_notes, created_by) = tags::rebuild_keeping_created_by(
            copy.and_then(Contact::personal_notes),
            key.sync_id,
            &decision.created_by,
            Some(now_text),
            Some(source),
        );
        Operation {
            step: key.step,
            mailbox: self.mailbox(key.folder).to_owned(),
            target: target_of(key.folder),
            sync_id: key.sync_id.as_str().to_owned(),
            display_name: shown.display_name().map(str::to_owned),
            email: email_of(shown),
            created_by: created_by.to_owned(),
            source_mailbox: source.to_owned(),
            expected_notes,
            write,
        }
    }

    /// A Delete of a tagged copy of a tombstoned contact (`deletes`) or of a withdrawn one
    /// (`privacy`, whose Deletes carry [`super::privacy::WITHDRAWN`]): it writes nothing, so its
    /// notes are empty; it names the copy as read (its own name, email and `CreatedBy`) and the
    /// hub as the source of the decision.
    fn build_delete(&self, p: &PendingWrite) -> Operation {
        let copy = self.copy(p.key.copy());
        let cause = if p.logical_id == super::privacy::WITHDRAWN {
            DeleteCause::Withdrawn
        } else {
            DeleteCause::DeletedFromHub
        };
        Operation {
            step: p.key.step,
            mailbox: self.mailbox(p.key.folder).to_owned(),
            target: target_of(p.key.folder),
            sync_id: p.key.sync_id.as_str().to_owned(),
            display_name: copy.display_name().map(str::to_owned),
            email: email_of(copy),
            created_by: copy
                .personal_notes()
                .and_then(tags::find_tags)
                .and_then(|t| t.created_by)
                .unwrap_or_default()
                .to_owned(),
            source_mailbox: self.mailbox(0).to_owned(),
            expected_notes: String::new(),
            write: Write::Delete {
                contact_id: copy.id().to_owned(),
                etag: copy.etag().map(str::to_owned),
                cause,
            },
        }
    }
}
