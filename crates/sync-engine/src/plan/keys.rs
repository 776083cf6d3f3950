//! Step 1 of the plan: read the matching keys of every contact once, make the hub's logical
//! contacts, and link the user copies to them through the hub's index.
//!
//! The ladder (docs/compatibility.md §6): SyncId, then primary email, then displayName — the last
//! only for a contact without email. [`same_key`] is the one place the email/displayName rung is
//! compared. Nothing here decides a write.

use super::Planner;
use crate::field::FieldSet;
use crate::fields;
use crate::memory::FolderMemory;
use crate::model::Contact;
use crate::plan::MailboxSnapshot;
use crate::privacy::{PrivateCategories, is_private};
use crate::tags::{self, SyncId};
use rustc_hash::FxHashMap;
use std::borrow::Cow;

/// What the planner reads from one contact. Kept small (one per contact, a million per run, and
/// every linking pass walks them): what is needed only for the few copies written is re-read
/// from the contact on demand ([`KeyedContact::created_by`]).
pub(super) struct KeyedContact<'a> {
    pub(super) contact: &'a Contact,
    /// The version it competes with: `lastModifiedDateTime` at read time as (seconds,
    /// nanoseconds), `None` as the smallest value — the same order as `Option<Timestamp>` in 16
    /// bytes instead of 24 — or, for a copy as we left it, the version remembered for it
    /// (`memory::apply_versions`). Copied here because choosing winners looks at it often.
    pub(super) modified: (i64, i32),
    pub(super) sync_id: Option<SyncId>,
    /// The ladder's key below SyncId: the primary email, or — only for a contact without email
    /// (docs/compatibility.md §6) — the displayName key; which one `by_email` says. One slot
    /// instead of two: a million of these are alive during the plan (88 bytes each).
    key: Option<Cow<'a, str>>,
    by_email: bool,
}

impl<'a> KeyedContact<'a> {
    pub(super) fn new(contact: &'a Contact) -> Self {
        let tags = contact.personal_notes().and_then(tags::find_tags);
        let email = fields::primary_email(&contact.fields);
        let by_email = email.is_some();
        let key = email.or_else(|| fields::name_key(&contact.fields));
        KeyedContact {
            contact,
            modified: contact.modified_pair(),
            sync_id: tags.map(|t| t.sync_id),
            key,
            by_email,
        }
    }

    /// `CreatedBy` of the contact's tag line (re-read: needed only for the copies written).
    pub(super) fn created_by(&self) -> Option<&'a str> {
        let notes: &'a str = self.contact.personal_notes()?;
        tags::find_tags(notes)?.created_by
    }

    pub(super) fn has_key(&self) -> bool {
        self.sync_id.is_some() || self.key.is_some()
    }

    /// The primary email (trimmed, lower-cased).
    pub(super) fn email(&self) -> Option<&str> {
        self.key.as_deref().filter(|_| self.by_email)
    }

    /// The displayName key, only for a contact without email.
    pub(super) fn name(&self) -> Option<&str> {
        self.key.as_deref().filter(|_| !self.by_email)
    }

    /// The ladder's rung below SyncId: the email, or the displayName when there is no email.
    pub(super) fn email_or_name(&self) -> Option<EmailOrName<'_>> {
        let key = self.key.as_deref()?;
        Some(if self.by_email {
            EmailOrName::Email(key)
        } else {
            EmailOrName::Name(key)
        })
    }
}

/// A contact's key below SyncId on the ladder (docs/compatibility.md §6). An email never equals a
/// name: a contact with an email is never matched by its displayName.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum EmailOrName<'k> {
    Email(&'k str),
    Name(&'k str),
}

/// The matching rule below SyncId: `a` and `b` share an email, or — both without email — a
/// displayName. A contact with neither matches nothing.
pub(super) fn same_key(a: &KeyedContact<'_>, b: &KeyedContact<'_>) -> bool {
    a.email_or_name()
        .is_some_and(|key| b.email_or_name() == Some(key))
}

/// Index of a logical contact (in [`Planner::logicals`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LogicalId(pub(super) u32);

impl LogicalId {
    pub(super) fn ix(self) -> usize {
        self.0 as usize
    }
}

/// Where a copy is: `copies[folder][pos]`; folder 0 is the hub.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct CopyRef {
    pub(super) folder: u32,
    pub(super) pos: u32,
}

impl CopyRef {
    pub(super) fn new(folder: usize, pos: usize) -> Self {
        CopyRef {
            folder: folder as u32,
            pos: pos as u32,
        }
    }
}

/// What a copy belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Link {
    /// Not matched yet.
    Unlinked,
    /// A copy of this logical contact.
    To(LogicalId),
    /// It matches this logical contact, which already has a copy in the folder: left alone.
    Extra(LogicalId),
    /// Neither SyncId, email nor displayName: never linkable.
    NoKey,
    /// A tagged user copy of a contact deleted from the hub: gets a Delete, takes part in nothing
    /// else.
    Deleted,
    /// A tagged user copy of a deletion that is held (or cannot proceed this run): left alone —
    /// neither deleted nor collected.
    Withheld,
    /// An untagged copy that looks like a tombstoned contact and is older than its deletion: not
    /// collected (it would resurrect it), left alone, reported.
    LookAlike,
    /// A user's private contact (docs/state-and-deletes.md §4, `crate::privacy`): never a source —
    /// not linked, not grouped, never written or stamped, and nothing is created next to it.
    /// Deleted only as a tagged copy of a contact leaving the book that is not that user's own
    /// (`privacy`).
    Private,
}

/// One contact as it exists across folders.
pub(super) struct LogicalContact {
    /// At most one per folder, in folder order.
    pub(super) copies: Vec<CopyRef>,
}

/// First-wins index of a folder (or of the new logical contacts) by the three ladder keys.
#[derive(Default)]
pub(super) struct KeyIndex<'k> {
    sync_id: FxHashMap<SyncId, LogicalId>,
    email: FxHashMap<&'k str, LogicalId>,
    name: FxHashMap<&'k str, LogicalId>,
}

impl<'k> KeyIndex<'k> {
    pub(super) fn insert(&mut self, c: &'k KeyedContact<'_>, id: LogicalId) {
        if let Some(s) = c.sync_id {
            self.sync_id.entry(s).or_insert(id);
        }
        self.insert_email_or_name(c, id);
    }

    /// Email/displayName only (for the keys hub contacts will have after the run).
    pub(super) fn insert_email_or_name(&mut self, c: &'k KeyedContact<'_>, id: LogicalId) {
        match c.email_or_name() {
            Some(EmailOrName::Email(e)) => self.email.entry(e).or_insert(id),
            Some(EmailOrName::Name(n)) => self.name.entry(n).or_insert(id),
            None => return,
        };
    }

    pub(super) fn has_sync_id(&self, s: SyncId) -> bool {
        self.sync_id.contains_key(&s)
    }

    /// The logical contact indexed under SyncId `s`.
    pub(super) fn of_sync_id(&self, s: SyncId) -> Option<LogicalId> {
        self.sync_id.get(&s).copied()
    }

    pub(super) fn by_sync_id(&self, c: &KeyedContact<'_>) -> Option<LogicalId> {
        self.sync_id.get(&c.sync_id?).copied()
    }

    /// Email, or displayName when the contact has no email (docs/compatibility.md §6).
    pub(super) fn by_email_or_name(&self, c: &KeyedContact<'_>) -> Option<LogicalId> {
        match c.email_or_name()? {
            EmailOrName::Email(e) => self.email.get(e).copied(),
            EmailOrName::Name(n) => self.name.get(n).copied(),
        }
    }

    pub(super) fn ladder(&self, c: &KeyedContact<'_>) -> Option<LogicalId> {
        self.by_sync_id(c).or_else(|| self.by_email_or_name(c))
    }
}

/// Reads the keys of every contact (see [`per_folder`] for the threads), and starts each one
/// unlinked — or never linkable, without any key; or private, for a user's contact that is
/// ([`crate::privacy::is_private`]) — in the same pass while it is in cache.
///
/// With a folder's memory (`memories[folder]`, trusted memory only), a copy as we left it
/// competes with its remembered version instead of its own time ([`super::memory::remembered`],
/// docs/state-and-deletes.md §2), and the third result lists, per folder, the remembered copies
/// (indexes into its `copies`) that no contact read carries any more.
#[allow(clippy::type_complexity)]
pub(super) fn read_all<'a>(
    snapshots: &[&'a MailboxSnapshot],
    total: usize,
    memories: &[Option<&FolderMemory>],
    set: FieldSet,
    private: &PrivateCategories,
) -> (Vec<Vec<KeyedContact<'a>>>, Vec<Vec<Link>>, Vec<Vec<u32>>) {
    let mut copies = Vec::with_capacity(snapshots.len());
    let mut links = Vec::with_capacity(snapshots.len());
    let mut missing = Vec::with_capacity(snapshots.len());
    for (c, l, m) in per_folder(snapshots, total, |folder, s| {
        let mut keyed: Vec<KeyedContact<'a>> = s.contacts.iter().map(KeyedContact::new).collect();
        let missing = match memories.get(folder).copied().flatten() {
            Some(memory) => super::memory::apply_versions(&mut keyed, memory, set),
            None => Vec::new(),
        };
        let links = keyed
            .iter()
            .map(|c| {
                if folder > 0 && is_private(c.contact, private) {
                    Link::Private
                } else if c.has_key() {
                    Link::Unlinked
                } else {
                    Link::NoKey
                }
            })
            .collect();
        (keyed, links, missing)
    }) {
        copies.push(c);
        links.push(l);
        missing.push(m);
    }
    (copies, links, missing)
}

/// `f(index, folder)` for every folder, in order; `total` is the number of contacts in all of
/// them. Passes that touch every contact are memory-bound, so big inputs are split over a few
/// scoped threads (no more than cores: on a shared 2-core machine extra threads only add
/// contention); the result does not depend on the split. Pure: no I/O.
pub(super) fn per_folder<X: Sync, T: Send>(
    folders: &[X],
    total: usize,
    f: impl Fn(usize, &X) -> T + Sync,
) -> Vec<T> {
    per_folder_with(folders, total, || (), |_, i, x| f(i, x))
}

/// [`per_folder`] with scratch state made once per thread by `state` and lent to every call on
/// that thread (hash tables reused from folder to folder instead of grown again for each).
pub(super) fn per_folder_with<X: Sync, T: Send, S>(
    folders: &[X],
    total: usize,
    state: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, usize, &X) -> T + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    if total < 10_000 || threads == 1 {
        let mut s = state();
        return folders
            .iter()
            .enumerate()
            .map(|(i, x)| f(&mut s, i, x))
            .collect();
    }
    let chunk = folders.len().div_ceil(threads).max(1);
    let (f, state) = (&f, &state);
    std::thread::scope(|scope| {
        let handles: Vec<_> = folders
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                scope.spawn(move || {
                    let mut s = state();
                    part.iter()
                        .enumerate()
                        .map(|(i, x)| f(&mut s, n * chunk + i, x))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("reading contacts does not panic"))
            .collect()
    })
}

impl<'s> Planner<'s, '_> {
    /// A new logical contact whose first copy is `at`.
    pub(super) fn new_logical(&mut self, at: CopyRef) -> LogicalId {
        let id = LogicalId(self.logicals.len() as u32);
        self.logicals.push(LogicalContact { copies: vec![at] });
        self.links[at.folder as usize][at.pos as usize] = Link::To(id);
        id
    }

    /// Links the copy `at` to logical contact `id`, or marks it an extra copy if `id` already has
    /// one in that folder. A logical contact's copies are kept in folder order.
    pub(super) fn link(&mut self, at: CopyRef, id: LogicalId) {
        let copies = &mut self.logicals[id.ix()].copies;
        let link = &mut self.links[at.folder as usize][at.pos as usize];
        // Usually an append: folders are linked in increasing order.
        if copies.last().is_some_and(|x| x.folder < at.folder) || copies.is_empty() {
            copies.push(at);
            *link = Link::To(id);
            return;
        }
        match copies.binary_search_by_key(&at.folder, |x| x.folder) {
            Ok(_) => *link = Link::Extra(id),
            Err(i) => {
                copies.insert(i, at);
                *link = Link::To(id);
            }
        }
    }

    /// The hub's logical contacts: distinct SyncIds are distinct logical contacts; a contact
    /// without SyncId that matches an earlier one by the ladder is a duplicate. Returns the hub's
    /// index.
    pub(super) fn link_hub(&mut self) -> KeyIndex<'s> {
        let copies = self.copies;
        let mut hub_index = KeyIndex::default();
        for with_sync_id in [true, false] {
            for (pos, c) in copies[0].iter().enumerate() {
                if self.links[0][pos] != Link::Unlinked || c.sync_id.is_some() != with_sync_id {
                    continue;
                }
                let duplicate_of = if with_sync_id {
                    hub_index.by_sync_id(c)
                } else {
                    hub_index.by_email_or_name(c)
                };
                if let Some(id) = duplicate_of {
                    self.links[0][pos] = Link::Extra(id);
                    continue;
                }
                let id = self.new_logical(CopyRef::new(0, pos));
                hub_index.insert(c, id);
            }
        }
        self.hub_logicals = self.logicals.len();
        hub_index
    }

    /// User copies through the hub's index, mailbox by mailbox; all SyncId matches of a folder
    /// first, so a stamped copy is preferred to an unstamped one with the same email.
    pub(super) fn link_users(&mut self, hub_index: &KeyIndex<'_>) {
        let copies = self.copies;
        for (folder, folder_copies) in copies.iter().enumerate().skip(1) {
            for by_sync_id in [true, false] {
                for (pos, c) in folder_copies.iter().enumerate() {
                    if self.links[folder][pos] != Link::Unlinked {
                        continue;
                    }
                    let found = if by_sync_id {
                        hub_index.by_sync_id(c)
                    } else {
                        hub_index.by_email_or_name(c)
                    };
                    if let Some(id) = found {
                        self.link(CopyRef::new(folder, pos), id);
                    }
                }
            }
        }
    }
}
