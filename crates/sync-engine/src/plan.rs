//! The convergence plan: from one snapshot of the hub folder and of every user's default Contacts
//! folder, the complete, sorted list of writes that makes every copy of every contact equal to its
//! newest version (SPEC §2.5–§2.8a).
//!
//! Data flow (see ARCHITECTURE.md "Plan"):
//! 1. *Read keys* of every contact once: SyncId (last tag line), primary email, displayName key.
//! 2. *Hub logical contacts*: each hub contact with a new SyncId is one logical contact; a hub
//!    contact without SyncId matching an earlier one by email/displayName is a duplicate and is
//!    left alone.
//! 3. *Link user copies* mailbox by mailbox (fixed order: sorted mailbox names) through the hub's
//!    index, ladder SyncId → email → displayName (only without email), SyncId matches first. A
//!    second copy of the same logical contact in one folder is a duplicate, left alone.
//!    Unlinked copies also try the key each hub contact will have *after* this run (its winner's),
//!    and extra copies that matched by a key about to change are released, so that the next run
//!    links exactly as this one did (I1).
//! 4. *Group the rest* across users by the same ladder into new logical contacts.
//! 5. *Decide* (phase 1) per logical contact: winner = newest `lastModifiedDateTime` (ties: hub,
//!    then mailbox order); SyncId; update every other copy that differs (rule §2.7), stamp every
//!    copy lacking the SyncId — one write per copy. Whether a copy differs is decided in one
//!    folder-ordered pass, and the writes are then built folder by folder (memory order).
//! 6. *Create* (phase 2) where the contact is missing — unless the target folder, as it will be
//!    after phase 1, already holds a contact the ladder would match, which is reported instead
//!    (never a duplicate, invariant I2).
//!
//! Decisions use only the timestamps read at the start of the run, and a copy's note text is only
//! ever its own text plus a fresh tag line (I3). This module never performs I/O, reads a clock or
//! draws random numbers: `now` and the SyncId generator come in with the input (the passes over
//! every contact use at most one scoped thread per core; the result does not depend on them). It
//! never deletes and never merges: data problems are reported, not fixed.
//!
//! Memory: an [`Operation`] holds its notes once and shares the winner's fields with the other
//! writes of its contact; its JSON body is built when sent ([`Operation::body`]).

use crate::fields::{self, Field, FieldChange};
use crate::model::{Contact, ContactFields};
use crate::tags::{self, SyncId};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::cmp::Reverse;
// FxHash (rustc's hasher): the planner hashes a few million short keys per run, and SipHash's
// flooding resistance buys nothing in a batch job over one tenant's own data.
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::HashMap;
use std::sync::Arc;

/// Every contact read from one folder (the hub's "All Contacts", or a user's default folder).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxSnapshot {
    /// UPN, or object id when the user has none (SPEC §2.2).
    pub mailbox: String,
    pub contacts: Vec<Contact>,
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
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Action {
    /// POST a new contact (body: the winner's fields and a tag line).
    Create,
    /// PATCH the winner's differing fields, `displayName`, and the copy's notes with a fresh tag line.
    Update,
    /// PATCH only the copy's notes (its own text and the SyncId tag line) and its `displayName`.
    Stamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Target {
    /// The hub's "All Contacts" folder.
    Hub,
    /// A user's default Contacts folder.
    UserDefault,
}

/// One write. Operations are independent of each other (SyncIds are chosen up front), so they
/// may run in any order or in parallel; the binary still runs step 1 before step 2.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Operation {
    /// 1 = users → hub (hub writes and stamps of user copies), 2 = hub → users (user data writes).
    pub step: u8,
    pub action: Action,
    /// Target mailbox.
    pub mailbox: String,
    pub target: Target,
    /// `None` for Create.
    pub contact_id: Option<String>,
    /// `If-Match` for Update/Stamp: the etag read at the start of the run (invariant I9).
    pub etag: Option<String>,
    pub sync_id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub created_by: String,
    /// Where the data comes from (the `LastUpdatedBy` written).
    pub source_mailbox: String,
    /// Differing fields, old → new (Update only).
    pub changes: Vec<FieldChange>,
    /// The `personalNotes` written (the body's `personalNotes`); if a created contact comes back
    /// without it, write it again (SPEC §2.7).
    pub expected_notes: String,
    /// The data written: the winner's fields, shared by every write of one logical contact
    /// (`None` for a Stamp, which writes no data). Kept instead of a JSON body because a plan
    /// holds up to a few hundred thousand operations and a body map costs ~2 KB each; the body
    /// is built when it is sent ([`Operation::body`]).
    #[serde(skip)]
    data: Option<Arc<ContactFields>>,
    /// Which of [`Field::ALL`] go in the body (bit `i` = `Field::ALL[i]`).
    #[serde(skip)]
    written: u16,
}

impl Operation {
    /// The exact JSON to POST/PATCH, including `personalNotes`: for a Create every field the
    /// winner has set; for an Update every differing field (clears as `null`/`[]`) and always
    /// `displayName` (graph-facts §1 displayName caveat); for a Stamp only the copy's own
    /// `displayName` (same caveat) and the notes.
    pub fn body(&self) -> Map<String, Value> {
        let mut m = Map::new();
        match &self.data {
            Some(f) => {
                for (bit, field) in Field::ALL.iter().enumerate() {
                    if self.written & (1 << bit) != 0 {
                        m.insert(field.json_name().into(), field.json(f));
                    }
                }
            }
            None => {
                if let Some(d) = &self.display_name {
                    m.insert("displayName".into(), Value::String(d.clone()));
                }
            }
        }
        m.insert(
            "personalNotes".into(),
            Value::String(self.expected_notes.clone()),
        );
        m
    }
}

/// Bit mask over [`Field::ALL`] of the fields `pick` selects.
fn field_mask(pick: impl Fn(Field) -> bool) -> u16 {
    Field::ALL
        .iter()
        .enumerate()
        .filter(|(_, f)| pick(**f))
        .fold(0, |m, (bit, _)| m | 1 << bit)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ProblemKind {
    /// Several contacts in one folder carry the same SyncId.
    DuplicateSyncId,
    /// Several contacts in one folder share a primary email.
    DuplicateEmail,
    /// Several contacts without email in one folder share a displayName.
    DuplicateDisplayName,
    /// A contact matched a logical contact that already has a copy in this folder; left alone.
    ExtraCopy,
    /// A user copy's SyncId is not in the hub (the hub copy was deleted); it is re-created in the
    /// hub, or linked by email/displayName if the ladder finds another hub contact.
    UnknownSyncId,
    /// A contact with neither email nor displayName; without a SyncId it cannot be matched and is
    /// left alone.
    NoEmailOrName,
    /// A contact was not created in a folder because the folder already holds a different contact
    /// with the same SyncId, email or displayName (it would be a duplicate).
    CreateSuppressed,
}

/// A data problem: reported, never "fixed" by deleting or merging.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataProblem {
    pub kind: ProblemKind,
    pub mailbox: String,
    pub target: Target,
    /// The contacts concerned, in folder order.
    pub contact_ids: Vec<String>,
    /// The SyncId, email or displayName concerned.
    pub key: String,
    pub detail: String,
}

/// The plan: every write of the run, sorted, and every data problem found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub operations: Vec<Operation>,
    pub problems: Vec<DataProblem>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }
}

/// What the planner reads from one contact. Kept small (one per contact, a million per run, and
/// every linking pass walks them): what is needed only for the few copies written is re-read
/// from the contact on demand ([`Seen::created_by`]).
struct Seen<'a> {
    contact: &'a Contact,
    /// `lastModifiedDateTime` at read time as (seconds, nanoseconds), `None` as the smallest
    /// value — the same order as `Option<Timestamp>` in 16 bytes instead of 24. Copied here
    /// because choosing winners looks at it often.
    modified: (i64, i32),
    sync_id: Option<SyncId>,
    email: Option<Cow<'a, str>>,
    /// displayName key; only set for contacts without email (SPEC §2.6).
    name: Option<Cow<'a, str>>,
}

impl<'a> Seen<'a> {
    fn new(contact: &'a Contact) -> Self {
        let tags = contact.personal_notes.as_deref().and_then(tags::find_tags);
        let email = fields::primary_email(&contact.fields);
        let name = if email.is_none() {
            fields::name_key(&contact.fields)
        } else {
            None
        };
        Seen {
            contact,
            modified: contact
                .last_modified_date_time
                .map_or((i64::MIN, 0), |t| (t.as_second(), t.subsec_nanosecond())),
            sync_id: tags.map(|t| t.sync_id),
            email,
            name,
        }
    }

    /// `CreatedBy` of the contact's tag line (re-read: needed only for the copies written).
    fn created_by(&self) -> Option<&'a str> {
        let notes: &'a str = self.contact.personal_notes.as_deref()?;
        tags::find_tags(notes)?.created_by
    }

    fn has_key(&self) -> bool {
        self.sync_id.is_some() || self.email.is_some() || self.name.is_some()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Link {
    Unlinked,
    To(u32),
    Extra(u32),
    NoKey,
}

/// First-wins index of a folder (or of the new logical contacts) by the three ladder keys.
#[derive(Default)]
struct Index<'b> {
    sync_id: FxHashMap<SyncId, u32>,
    email: FxHashMap<&'b str, u32>,
    name: FxHashMap<&'b str, u32>,
}

impl<'b> Index<'b> {
    fn insert(&mut self, c: &'b Seen<'_>, l: u32) {
        if let Some(s) = c.sync_id {
            self.sync_id.entry(s).or_insert(l);
        }
        if let Some(e) = c.email.as_deref() {
            self.email.entry(e).or_insert(l);
        }
        if let Some(n) = c.name.as_deref() {
            self.name.entry(n).or_insert(l);
        }
    }

    /// Email/displayName keys only (for the post-run keys of hub contacts).
    fn insert_keys(&mut self, c: &'b Seen<'_>, l: u32) {
        if let Some(e) = c.email.as_deref() {
            self.email.entry(e).or_insert(l);
        }
        if let Some(n) = c.name.as_deref() {
            self.name.entry(n).or_insert(l);
        }
    }

    fn by_sync_id(&self, c: &Seen<'_>) -> Option<u32> {
        self.sync_id.get(&c.sync_id?).copied()
    }

    /// Email, or displayName when the contact has no email (SPEC §2.6).
    fn by_email_or_name(&self, c: &Seen<'_>) -> Option<u32> {
        match (c.email.as_deref(), c.name.as_deref()) {
            (Some(e), _) => self.email.get(e).copied(),
            (None, Some(n)) => self.name.get(n).copied(),
            (None, None) => None,
        }
    }

    fn ladder(&self, c: &Seen<'_>) -> Option<u32> {
        self.by_sync_id(c).or_else(|| self.by_email_or_name(c))
    }
}

struct Logical {
    /// (mailbox index, contact index); mailbox 0 is the hub; in mailbox order.
    copies: Vec<(u32, u32)>,
}

/// Reads the keys of every contact (see [`per_folder`] for the threads), and starts each one
/// unlinked — or never linkable, without any key — in the same pass while it is in cache.
#[allow(clippy::type_complexity)]
fn read_all<'a>(snaps: &[&'a MailboxSnapshot]) -> (Vec<Vec<Seen<'a>>>, Vec<Vec<Link>>) {
    per_folder(snaps, |_, s| {
        let seen: Vec<Seen<'a>> = s.contacts.iter().map(Seen::new).collect();
        let links = seen
            .iter()
            .map(|c| {
                if c.has_key() {
                    Link::Unlinked
                } else {
                    Link::NoKey
                }
            })
            .collect();
        (seen, links)
    })
    .into_iter()
    .unzip()
}

/// `f(index, folder)` for every folder, in order. Passes that touch every contact are
/// memory-bound, so big inputs are split over a few scoped threads (no more than cores: on a
/// shared 2-core machine extra threads only add contention); the result does not depend on the
/// split. Pure: no I/O.
fn per_folder<X: Folder + Sync, T: Send>(
    folders: &[X],
    f: impl Fn(usize, &X) -> T + Sync,
) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let total: usize = folders.iter().map(Folder::size).sum();
    if total < 10_000 || threads == 1 {
        return folders.iter().enumerate().map(|(i, x)| f(i, x)).collect();
    }
    let chunk = folders.len().div_ceil(threads).max(1);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = folders
            .chunks(chunk)
            .enumerate()
            .map(|(n, part)| {
                scope.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, x)| f(n * chunk + i, x))
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

/// A folder's size, to decide whether splitting a pass over threads pays.
trait Folder {
    fn size(&self) -> usize;
}

impl Folder for &MailboxSnapshot {
    fn size(&self) -> usize {
        self.contacts.len()
    }
}

impl Folder for Vec<Seen<'_>> {
    fn size(&self) -> usize {
        self.len()
    }
}

/// For every copy linked to a logical contact, whether its synced fields differ from the
/// winner's. Compared exactly, folder by folder: the copies are visited in memory order and the
/// winners (one per logical contact) stay in cache, which is what makes a million comparisons
/// cheap — visiting them contact by contact would miss the cache on every string.
fn differing(
    copies: &[Vec<Seen<'_>>],
    links: &[Vec<Link>],
    winners: &[(u32, u32)],
) -> Vec<Vec<bool>> {
    per_folder(copies, |mb, folder| {
        folder
            .iter()
            .zip(&links[mb])
            .map(|(c, link)| match *link {
                Link::To(l) => {
                    let (w_mb, w_i) = winners[l as usize];
                    let w = &copies[w_mb as usize][w_i as usize];
                    !fields::fields_equal(&c.contact.fields, &w.contact.fields)
                }
                _ => false,
            })
            .collect()
    })
}

/// Links copy `i` of mailbox `mb` to logical contact `l`, or marks it an extra copy if `l`
/// already has one in that folder. A logical contact's copies are kept in mailbox order.
fn try_link(logicals: &mut [Logical], link: &mut Link, l: u32, i: usize, mb: u32) {
    let copies = &mut logicals[l as usize].copies;
    // Usually an append: folders are linked in increasing order.
    if copies.last().is_some_and(|x| x.0 < mb) || copies.is_empty() {
        copies.push((mb, i as u32));
        *link = Link::To(l);
        return;
    }
    match copies.binary_search_by_key(&mb, |x| x.0) {
        Ok(_) => *link = Link::Extra(l),
        Err(at) => {
            copies.insert(at, (mb, i as u32));
            *link = Link::To(l);
        }
    }
}

/// Newest copy at read time; ties go to the hub, then to the earlier mailbox. A copy without a
/// timestamp is older than any with one (SPEC §2.7).
fn winner_of(copies: &[Vec<Seen<'_>>], lg: &Logical) -> (u32, u32) {
    *lg.copies
        .iter()
        .max_by_key(|&&(mb, i)| (copies[mb as usize][i as usize].modified, Reverse(mb)))
        .expect("a logical contact has at least one copy")
}

/// Links against the email/displayName each hub contact will have *after* this run (its
/// winner's, when the winner's data is written), so the next run links exactly as this one did
/// (I1):
/// - an unlinked user copy that matches only the *new* key joins that contact now (else it would
///   become a new contact now and match the hub contact next run);
/// - an extra copy that matched by an *old* key it will no longer share is released to be
///   grouped as its own contact now (next run would do so anyway).
///
/// Linking can change a winner and so a key; this repeats until nothing changes.
fn link_to_final_hub_keys(
    copies: &[Vec<Seen<'_>>],
    links: &mut [Vec<Link>],
    logicals: &mut [Logical],
    hub_logicals: usize,
    update_existing: bool,
) {
    if !update_existing {
        // Nothing is rewritten, so the keys after the run are the keys read.
        return;
    }
    // Bounded for safety; each round only adds links or releases extras, so it settles fast.
    for _ in 0..64 {
        let mut index = Index::default();
        let mut finals: Vec<(Option<&str>, Option<&str>)> = Vec::with_capacity(hub_logicals);
        for (l, lg) in logicals.iter().enumerate().take(hub_logicals) {
            let (w_mb, w_i) = winner_of(copies, lg);
            let w = &copies[w_mb as usize][w_i as usize];
            let keys = if w.contact.last_modified_date_time.is_some() {
                w
            } else {
                &copies[0][lg.copies[0].1 as usize]
            };
            index.insert_keys(keys, l as u32);
            finals.push((keys.email.as_deref(), keys.name.as_deref()));
        }
        let mut changed = false;
        for (mb, folder) in copies.iter().enumerate().skip(1) {
            for (i, c) in folder.iter().enumerate() {
                match links[mb][i] {
                    Link::Extra(l) if (l as usize) < hub_logicals => {
                        let lg = &logicals[l as usize];
                        let hub_sid = copies[0][lg.copies[0].1 as usize].sync_id;
                        let same_key = match (c.email.as_deref(), c.name.as_deref()) {
                            (Some(e), _) => finals[l as usize].0 == Some(e),
                            (None, Some(n)) => {
                                finals[l as usize].0.is_none() && finals[l as usize].1 == Some(n)
                            }
                            (None, None) => false,
                        };
                        if !same_key && (c.sync_id.is_none() || c.sync_id != hub_sid) {
                            links[mb][i] = Link::Unlinked;
                            changed = true;
                        }
                    }
                    Link::Unlinked => {
                        let Some(l) = index.by_email_or_name(c) else {
                            continue;
                        };
                        try_link(logicals, &mut links[mb][i], l, i, mb as u32);
                        changed = true;
                    }
                    _ => {}
                }
            }
        }
        if !changed {
            return;
        }
    }
}

/// Groups unlinked user copies into new logical contacts by the ladder (SPEC §2.8a), mailbox by
/// mailbox: SyncId matches with earlier groups first, then copies with a SyncId, then the others —
/// the same precedence as for the hub.
fn group_leftovers<'b>(
    copies: &'b [Vec<Seen<'_>>],
    links: &mut [Vec<Link>],
    logicals: &mut Vec<Logical>,
    new_index: &mut Index<'b>,
    released: &FxHashSet<(u32, u32)>,
) {
    for (mb, folder) in copies.iter().enumerate().skip(1) {
        let mbu = mb as u32;
        for pass in 0..3 {
            for (i, c) in folder.iter().enumerate() {
                if links[mb][i] != Link::Unlinked || c.sync_id.is_some() != (pass < 2) {
                    continue;
                }
                let found = if pass == 0 {
                    new_index.by_sync_id(c)
                } else {
                    new_index.ladder(c)
                };
                // A released copy only joins a contact it will still match next run.
                let found = found.filter(|&l| {
                    !released.contains(&(mbu, i as u32))
                        || still_matches(copies, &logicals[l as usize], c)
                });
                let l = match found {
                    Some(l) => {
                        try_link(logicals, &mut links[mb][i], l, i, mbu);
                        l
                    }
                    None if pass == 0 => continue,
                    None => {
                        let l = logicals.len() as u32;
                        logicals.push(Logical {
                            copies: vec![(mbu, i as u32)],
                        });
                        links[mb][i] = Link::To(l);
                        l
                    }
                };
                if links[mb][i] == Link::To(l) {
                    new_index.insert(c, l);
                }
            }
        }
    }
}

/// Releases extra copies of new logical contacts that share neither a SyncId with one of its
/// copies nor the key its hub copy will be created with (the winner's): next run they would not
/// match it, so they are grouped on their own now. Returns whether any was released.
fn release_stale_extras(
    copies: &[Vec<Seen<'_>>],
    links: &mut [Vec<Link>],
    logicals: &[Logical],
    hub_logicals: usize,
    released: &mut FxHashSet<(u32, u32)>,
) -> bool {
    let mut any = false;
    for (mb, folder) in copies.iter().enumerate().skip(1) {
        for (i, c) in folder.iter().enumerate() {
            let Link::Extra(l) = links[mb][i] else {
                continue;
            };
            if (l as usize) < hub_logicals {
                continue;
            }
            if !still_matches(copies, &logicals[l as usize], c) {
                links[mb][i] = Link::Unlinked;
                released.insert((mb as u32, i as u32));
                any = true;
            }
        }
    }
    any
}

/// Whether `c` will still match logical contact `lg` next run: it shares a SyncId with one of its
/// copies, or the key of its winner (which the hub copy will carry).
fn still_matches(copies: &[Vec<Seen<'_>>], lg: &Logical, c: &Seen<'_>) -> bool {
    let (w_mb, w_i) = winner_of(copies, lg);
    let w = &copies[w_mb as usize][w_i as usize];
    let same_key = match (c.email.as_deref(), c.name.as_deref()) {
        (Some(e), _) => w.email.as_deref() == Some(e),
        (None, Some(n)) => w.email.is_none() && w.name.as_deref() == Some(n),
        (None, None) => false,
    };
    same_key
        || (c.sync_id.is_some()
            && lg
                .copies
                .iter()
                .any(|&(m, j)| copies[m as usize][j as usize].sync_id == c.sync_id))
}

/// Builds the plan. `new_sync_id` is called once per logical contact that has no SyncId yet, in a
/// deterministic order; it must return a GUID (36 hex digits and dashes, e.g. a UUID v4).
///
/// # Panics
/// If `new_sync_id` returns something that is not a GUID (a caller bug).
pub fn plan(input: &PlanInput, new_sync_id: &mut dyn FnMut() -> String) -> Plan {
    // Fixed mailbox order: hub first, then users by name, so the result never depends on the
    // order Graph listed the users in.
    let mut snaps: Vec<&MailboxSnapshot> = input.users.iter().collect();
    snaps.sort_by(|a, b| {
        a.mailbox
            .to_lowercase()
            .cmp(&b.mailbox.to_lowercase())
            .then_with(|| a.mailbox.cmp(&b.mailbox))
    });
    snaps.insert(0, &input.hub);
    let (copies, mut links) = read_all(&snaps);
    let mut logicals: Vec<Logical> = Vec::new();
    let mut problems = Vec::new();

    // Hub: distinct SyncIds are distinct logical contacts; a contact without SyncId that matches
    // an earlier one by the ladder is a duplicate.
    let mut hub_index = Index::default();
    for with_sync_id in [true, false] {
        for (i, c) in copies[0].iter().enumerate() {
            if links[0][i] != Link::Unlinked || c.sync_id.is_some() != with_sync_id {
                continue;
            }
            let dup = if with_sync_id {
                hub_index.by_sync_id(c)
            } else {
                hub_index.by_email_or_name(c)
            };
            if let Some(l) = dup {
                links[0][i] = Link::Extra(l);
                continue;
            }
            let l = logicals.len() as u32;
            logicals.push(Logical {
                copies: vec![(0, i as u32)],
            });
            hub_index.insert(c, l);
            links[0][i] = Link::To(l);
        }
    }
    let hub_logicals = logicals.len();

    // Step 3: user copies through the hub's index, mailbox by mailbox; all SyncId matches of a
    // folder first, so a stamped copy is preferred to an unstamped one with the same email.
    for mb in 1..copies.len() {
        let mbu = mb as u32;
        for by_sync_id in [true, false] {
            for (i, c) in copies[mb].iter().enumerate() {
                if links[mb][i] != Link::Unlinked {
                    continue;
                }
                let found = if by_sync_id {
                    hub_index.by_sync_id(c)
                } else {
                    hub_index.by_email_or_name(c)
                };
                if let Some(l) = found {
                    try_link(&mut logicals, &mut links[mb][i], l, i, mbu);
                }
            }
        }
    }
    link_to_final_hub_keys(
        &copies,
        &mut links,
        &mut logicals,
        hub_logicals,
        input.update_existing,
    );

    // Step 4: the rest, grouped across users by the same ladder — then, as long as some extra
    // copy turns out to match only by a key its contact is about to lose, release it and group
    // again (see `link_to_final_hub_keys`).
    let mut new_index = Index::default();
    let mut released = FxHashSet::default();
    for _ in 0..64 {
        group_leftovers(
            &copies,
            &mut links,
            &mut logicals,
            &mut new_index,
            &released,
        );
        if !release_stale_extras(&copies, &mut links, &logicals, hub_logicals, &mut released) {
            break;
        }
        link_to_final_hub_keys(
            &copies,
            &mut links,
            &mut logicals,
            hub_logicals,
            input.update_existing,
        );
    }

    report_folder_problems(
        &snaps,
        &copies,
        &links,
        &hub_index,
        hub_logicals,
        &logicals,
        &mut problems,
    );

    // Keys present in each folder, so a create never adds a second contact the ladder would match.
    // Built lazily: a run without creates (the steady state) never pays for them.
    let mut present: Vec<Option<Present<'_>>> = copies.iter().map(|_| None).collect();

    let winners: Vec<(u32, u32)> = logicals.iter().map(|lg| winner_of(&copies, lg)).collect();
    let differs = differing(&copies, &links, &winners);
    let ctx = Ctx {
        snaps: &snaps,
        copies: &copies,
        differs: &differs,
        now_text: tags::format_round_trip(input.now),
    };
    // Phase 1: existing copies (updates, stamps). Phase 2: creates, checked against each
    // folder's keys as they will be after phase 1, so the next run sees the same folders.
    // Both phases only *decide* writes (small `Pending` records); every `Operation` is built
    // once, in plan order, at the end — no second copy of the operations ever exists.
    let mut rewritten: Vec<Vec<bool>> = copies.iter().map(|mb| vec![false; mb.len()]).collect();
    let mut sync_ids = SyncIdClaims {
        claimed: FxHashSet::default(),
        folders: copies.iter().map(|_| None).collect(),
    };
    let decisions: Vec<Decision> = logicals
        .iter()
        .map(|lg| {
            decide_existing(
                &ctx,
                lg,
                input.update_existing,
                new_sync_id,
                &mut sync_ids,
                &mut rewritten,
            )
        })
        .collect();
    let mut pending: Vec<Pending> = existing_writes(&ctx, &links, &rewritten, &decisions)
        .into_iter()
        .flatten()
        .collect();
    let finals = Finals {
        links: &links,
        rewritten: &rewritten,
        decisions: &decisions,
    };
    for (l, (lg, d)) in logicals.iter().zip(&decisions).enumerate() {
        create_missing(
            &ctx,
            lg,
            l as u32,
            d,
            &finals,
            &mut present,
            &mut pending,
            &mut problems,
        );
    }
    // Sorted by step, mailbox (hub first, then name order), SyncId, action, folder position.
    pending.sort_unstable_by_key(|p| p.key);
    // The winner's fields once per logical contact that writes data, shared by its writes.
    let mut shared: Vec<Option<Arc<ContactFields>>> = vec![None; decisions.len()];
    for p in pending.iter().filter(|p| p.key.3 != Action::Stamp) {
        let (w_mb, w_i) = decisions[p.l as usize].winner;
        shared[p.l as usize].get_or_insert_with(|| {
            Arc::new(copies[w_mb as usize][w_i as usize].contact.fields.clone())
        });
    }
    let operations = build_operations(&ctx, &decisions, &shared, &pending);

    let rank: HashMap<&str, usize> = snaps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.mailbox.as_str(), i))
        .collect();
    problems.sort_by(|a: &DataProblem, b: &DataProblem| {
        (rank.get(a.mailbox.as_str()), a.kind, &a.key, &a.contact_ids).cmp(&(
            rank.get(b.mailbox.as_str()),
            b.kind,
            &b.key,
            &b.contact_ids,
        ))
    });
    Plan {
        operations,
        problems,
    }
}

/// Sort key of an operation: (step, mailbox rank, SyncId, action, folder position or MAX).
type OpKey = (u8, u32, SyncId, Action, u32);

/// A write decided but not built yet: its sort key (which also names the target folder, the
/// action and the copy) and its logical contact.
struct Pending {
    key: OpKey,
    l: u32,
}

/// What phase 1 decided for one logical contact.
struct Decision {
    sync_id: SyncId,
    /// (mailbox, position) of the winning copy.
    winner: (u32, u32),
    created_by: String,
}

/// SyncIds taken by logical contacts so far, and (built on demand) each folder's SyncIds.
struct SyncIdClaims {
    claimed: FxHashSet<SyncId>,
    folders: Vec<Option<FxHashSet<SyncId>>>,
}

impl SyncIdClaims {
    fn folder(&mut self, ctx: &Ctx<'_, '_>, mb: usize) -> &FxHashSet<SyncId> {
        self.folders[mb]
            .get_or_insert_with(|| ctx.copies[mb].iter().filter_map(|c| c.sync_id).collect())
    }
}

/// The folders' state after phase 1, for phase 2's duplicate check.
struct Finals<'s> {
    links: &'s [Vec<Link>],
    rewritten: &'s [Vec<bool>],
    decisions: &'s [Decision],
}

struct Ctx<'s, 'a> {
    snaps: &'s [&'a MailboxSnapshot],
    copies: &'s [Vec<Seen<'a>>],
    /// Whether each linked copy's fields differ from its winner's ([`differing`]).
    differs: &'s [Vec<bool>],
    /// `now` in the tag line's round-trip form, formatted once.
    now_text: String,
}

#[derive(Default)]
struct Present<'a> {
    sync_id: FxHashSet<SyncId>,
    email: FxHashSet<Cow<'a, str>>,
    name: FxHashSet<Cow<'a, str>>,
}

impl<'a> Present<'a> {
    /// The keys of folder `mb` as they will be after phase 1: a linked copy carries its logical
    /// contact's SyncId, and a rewritten one the winner's email/displayName.
    fn of(ctx: &Ctx<'_, 'a>, finals: &Finals<'_>, mb: usize) -> Self {
        let mut p = Present::default();
        for (i, c) in ctx.copies[mb].iter().enumerate() {
            let (mut sync_id, mut keys) = (c.sync_id, c);
            if let Link::To(l) = finals.links[mb][i] {
                let d = &finals.decisions[l as usize];
                sync_id = Some(d.sync_id);
                if finals.rewritten[mb][i] {
                    keys = &ctx.copies[d.winner.0 as usize][d.winner.1 as usize];
                }
            }
            if let Some(s) = sync_id {
                p.sync_id.insert(s);
            }
            if let Some(e) = &keys.email {
                p.email.insert(e.clone());
            }
            if let Some(n) = &keys.name {
                p.name.insert(n.clone());
            }
        }
        p
    }

    /// Claims the keys of a contact about to be created; false if one is already taken.
    fn claim(
        &mut self,
        sync_id: SyncId,
        email: Option<&Cow<'a, str>>,
        name: Option<&Cow<'a, str>>,
    ) -> bool {
        if self.sync_id.contains(&sync_id)
            || email.is_some_and(|e| self.email.contains(e))
            || name.is_some_and(|n| self.name.contains(n))
        {
            return false;
        }
        self.sync_id.insert(sync_id);
        if let Some(e) = email {
            self.email.insert(e.clone());
        }
        if let Some(n) = name {
            self.name.insert(n.clone());
        }
        true
    }
}

fn target_of(mb: u32) -> Target {
    if mb == 0 {
        Target::Hub
    } else {
        Target::UserDefault
    }
}

#[allow(clippy::too_many_arguments)]
fn decide_existing(
    ctx: &Ctx<'_, '_>,
    lg: &Logical,
    update_existing: bool,
    new_sync_id: &mut dyn FnMut() -> String,
    sync_ids: &mut SyncIdClaims,
    rewritten: &mut [Vec<bool>],
) -> Decision {
    let copy = |&(mb, i): &(u32, u32)| &ctx.copies[mb as usize][i as usize];
    let mailbox = |mb: u32| ctx.snaps[mb as usize].mailbox.as_str();

    let (w_mb, w_i) = winner_of(ctx.copies, lg);
    let winner = &ctx.copies[w_mb as usize][w_i as usize];

    // SyncId (SPEC §2.5 "kept if present"): the hub copy's (unique among hub logical contacts);
    // else the first user copy's that is safe to spread — no earlier logical contact uses it, and
    // no folder that gets it stamped already holds another contact with it (I2, and the next run
    // must link exactly as this one did, I1); else a new one.
    let hub_sync_id = lg
        .copies
        .first()
        .filter(|c| c.0 == 0)
        .and_then(|c| copy(c).sync_id);
    let sync_id = match hub_sync_id {
        Some(s) => s,
        None => {
            let candidates: Vec<SyncId> =
                lg.copies.iter().filter_map(|c| copy(c).sync_id).collect();
            let mut chosen = None;
            for s in candidates {
                if sync_ids.claimed.contains(&s) {
                    continue;
                }
                let clash = lg.copies.iter().any(|&(mb, i)| {
                    ctx.copies[mb as usize][i as usize].sync_id != Some(s)
                        && sync_ids.folder(ctx, mb as usize).contains(&s)
                });
                if !clash {
                    chosen = Some(s);
                    break;
                }
            }
            chosen.unwrap_or_else(|| {
                let s = new_sync_id();
                SyncId::parse(s.trim())
                    .unwrap_or_else(|| panic!("SyncId generator returned {s:?}, not a GUID"))
            })
        }
    };
    sync_ids.claimed.insert(sync_id);
    // CreatedBy (SPEC §2.5): kept from a copy's own tags, else the hub's, else the winning
    // source's, else any copy's, else the mailbox the contact first reaches the hub from.
    let hub_copy = lg.copies.first().filter(|c| c.0 == 0).map(copy);
    let created_by: String = hub_copy
        .and_then(|c| c.created_by())
        .or_else(|| winner.created_by())
        .or_else(|| lg.copies.iter().find_map(|c| copy(c).created_by()))
        .unwrap_or(mailbox(w_mb))
        .to_owned();

    // Existing copies: at most one write each, combining data and stamp (SPEC §2.8a). Here only
    // *whether* a copy gets its data rewritten; the writes themselves are built folder by folder
    // afterwards ([`existing_writes`]), which reads the copies in memory order.
    for &(mb, i) in &lg.copies {
        let is_winner = (mb, i) == (w_mb, w_i);
        // The winner is newer than every other copy in the (timestamp, tie-break) order, so
        // "target older than source" holds for all of them; a winner without a timestamp never
        // overwrites (SPEC §2.7).
        let needs_data = !is_winner
            && update_existing
            && winner.contact.last_modified_date_time.is_some()
            && ctx.differs[mb as usize][i as usize];
        rewritten[mb as usize][i as usize] = needs_data;
    }

    Decision {
        sync_id,
        winner: (w_mb, w_i),
        created_by,
    }
}

/// Phase 1's writes to existing copies, folder by folder (memory order, split over threads like
/// [`read_all`]): a copy linked to a logical contact gets one write if its data is rewritten
/// (Update) or it lacks the contact's SyncId (Stamp).
fn existing_writes(
    ctx: &Ctx<'_, '_>,
    links: &[Vec<Link>],
    rewritten: &[Vec<bool>],
    decisions: &[Decision],
) -> Vec<Vec<Pending>> {
    per_folder(ctx.copies, |mb, folder| {
        let mbu = mb as u32;
        let mut out = Vec::new();
        for (i, c) in folder.iter().enumerate() {
            let Link::To(l) = links[mb][i] else {
                continue;
            };
            let sync_id = decisions[l as usize].sync_id;
            let key = if rewritten[mb][i] {
                let step = if mb == 0 { 1 } else { 2 };
                (step, mbu, sync_id, Action::Update, i as u32)
            } else if c.sync_id != Some(sync_id) {
                (1, mbu, sync_id, Action::Stamp, i as u32)
            } else {
                continue;
            };
            out.push(Pending { key, l });
        }
        out
    })
}

/// Builds the operations of the pending writes, in their order, straight into the result (the
/// operations are never copied). Deliberately on one thread: the strings of operations built on
/// other threads land in other malloc arenas, which cost ~60 MiB more peak RSS on the 1,000 × 1,000
/// benchmark for no measurable wall-time gain on the shared 2-core machine.
fn build_operations(
    ctx: &Ctx<'_, '_>,
    decisions: &[Decision],
    shared: &[Option<Arc<ContactFields>>],
    pending: &[Pending],
) -> Vec<Operation> {
    pending
        .iter()
        .map(|p| build_operation(ctx, decisions, shared, p))
        .collect()
}

/// Builds the operation of one pending write; `shared` holds each writing logical contact's
/// winning fields once.
fn build_operation(
    ctx: &Ctx<'_, '_>,
    decisions: &[Decision],
    shared: &[Option<Arc<ContactFields>>],
    p: &Pending,
) -> Operation {
    let mailbox = |mb: u32| ctx.snaps[mb as usize].mailbox.as_str();
    let (step, mb, sync_id, action, i) = p.key;
    let d = &decisions[p.l as usize];
    let (w_mb, w_i) = d.winner;
    let winner = &ctx.copies[w_mb as usize][w_i as usize];
    let w_fields = &winner.contact.fields;
    let data = || {
        let data = shared[p.l as usize].clone();
        debug_assert!(
            data.is_some(),
            "shared fields prepared for every data write"
        );
        data
    };
    // Data comes from the winner: to the hub from the winner's mailbox, to users from the hub.
    let data_source = if mb == 0 { mailbox(w_mb) } else { mailbox(0) };
    let w_display = || w_fields.display_name.clone().filter(|s| !s.is_empty());
    let w_email = || winner.email.as_deref().map(str::to_owned);
    let (contact, created_by, source, data, written, changes, display, email) = match action {
        Action::Create => (
            None,
            d.created_by.clone(),
            data_source,
            data(),
            field_mask(|f| f.is_set(w_fields)),
            Vec::new(),
            w_display(),
            w_email(),
        ),
        Action::Update | Action::Stamp => {
            let c = &ctx.copies[mb as usize][i as usize];
            let created_by = c.created_by().unwrap_or(&d.created_by).to_owned();
            if action == Action::Update {
                let changes = fields::diff(&c.contact.fields, w_fields);
                // displayName in every PATCH (graph-facts §1 displayName caveat).
                let written = field_mask(|f| {
                    f == Field::DisplayName || changes.iter().any(|x| x.field == f.json_name())
                });
                (
                    Some(c),
                    created_by,
                    data_source,
                    data(),
                    written,
                    changes,
                    w_display(),
                    w_email(),
                )
            } else {
                (
                    Some(c),
                    created_by,
                    mailbox(w_mb),
                    None,
                    0,
                    Vec::new(),
                    c.contact
                        .fields
                        .display_name
                        .clone()
                        .filter(|s| !s.is_empty()),
                    c.email.as_deref().map(str::to_owned),
                )
            }
        }
    };
    // A copy's notes: its own text kept exactly, then the fresh tag line (I3).
    let expected_notes = tags::rebuild(
        contact.and_then(|c| c.contact.personal_notes.as_deref()),
        sync_id,
        Some(&created_by),
        Some(&ctx.now_text),
        Some(source),
    );
    Operation {
        step,
        action,
        mailbox: mailbox(mb).to_owned(),
        target: target_of(mb),
        contact_id: contact.map(|c| c.contact.id.clone()),
        etag: contact.and_then(|c| c.contact.etag.clone()),
        sync_id: sync_id.as_str().to_owned(),
        display_name: display,
        email,
        created_by,
        source_mailbox: source.to_owned(),
        changes,
        expected_notes,
        data,
        written,
    }
}

/// Phase 2 for one logical contact: create it, from the winner, in every folder that lacks it —
/// unless the folder would then hold two contacts the ladder matches to each other.
#[allow(clippy::too_many_arguments)]
fn create_missing<'a>(
    ctx: &Ctx<'_, 'a>,
    lg: &Logical,
    l: u32,
    d: &Decision,
    finals: &Finals<'_>,
    present: &mut [Option<Present<'a>>],
    pending: &mut Vec<Pending>,
    problems: &mut Vec<DataProblem>,
) {
    let mailbox = |mb: u32| ctx.snaps[mb as usize].mailbox.as_str();
    let winner = &ctx.copies[d.winner.0 as usize][d.winner.1 as usize];
    let sync_id = d.sync_id;
    let w_email = winner.email.clone();
    let w_name = winner.name.clone();
    // Missing copies: created from the winner, in the hub (step 1) and in every user (step 2).
    let mut next = lg.copies.iter().map(|c| c.0).peekable();
    for mb in 0..ctx.copies.len() as u32 {
        if next.peek() == Some(&mb) {
            next.next();
            continue;
        }
        let folder =
            present[mb as usize].get_or_insert_with(|| Present::of(ctx, finals, mb as usize));
        if !folder.claim(sync_id, w_email.as_ref(), w_name.as_ref()) {
            problems.push(DataProblem {
                kind: ProblemKind::CreateSuppressed,
                mailbox: mailbox(mb).to_owned(),
                target: target_of(mb),
                contact_ids: Vec::new(),
                key: sync_id.to_string(),
                detail: format!(
                    "not created: the folder already holds another contact with SyncId {sync_id}{}",
                    match (&w_email, &w_name) {
                        (Some(e), _) => format!(" or email {e}"),
                        (None, Some(n)) => format!(" or displayName {n}"),
                        _ => String::new(),
                    }
                ),
            });
            continue;
        }
        let step = if mb == 0 { 1 } else { 2 };
        pending.push(Pending {
            key: (step, mb, sync_id, Action::Create, u32::MAX),
            l,
        });
    }
}

/// Groups of positions sharing a key, only for keys seen more than once (no allocation per key).
/// `first` is scratch space, kept by the caller so its table is allocated once, not per folder.
fn duplicates<K: std::hash::Hash + Eq + Copy>(
    first: &mut FxHashMap<K, usize>,
    items: impl Iterator<Item = (K, usize)>,
) -> FxHashMap<K, Vec<usize>> {
    first.clear();
    let mut dups: FxHashMap<K, Vec<usize>> = FxHashMap::default();
    for (k, i) in items {
        match first.entry(k) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(o) => {
                let f = *o.get();
                dups.entry(*o.key()).or_insert_with(|| vec![f]).push(i);
            }
        }
    }
    dups
}

fn report_folder_problems(
    snaps: &[&MailboxSnapshot],
    copies: &[Vec<Seen<'_>>],
    links: &[Vec<Link>],
    hub_index: &Index<'_>,
    hub_logicals: usize,
    logicals: &[Logical],
    problems: &mut Vec<DataProblem>,
) {
    let (mut first_sid, mut first_email, mut first_name) = Default::default();
    for (mb, folder) in copies.iter().enumerate() {
        let mailbox = &snaps[mb].mailbox;
        let target = target_of(mb as u32);
        let push = |problems: &mut Vec<DataProblem>,
                    kind,
                    ids: Vec<String>,
                    key: String,
                    detail: String| {
            problems.push(DataProblem {
                kind,
                mailbox: mailbox.clone(),
                target,
                contact_ids: ids,
                key,
                detail,
            })
        };
        // Duplicate keys inside the folder (folder order kept within a group).
        let by_sid = duplicates(
            &mut first_sid,
            folder
                .iter()
                .enumerate()
                .filter_map(|(i, c)| Some((c.sync_id?, i))),
        );
        let by_email = duplicates(
            &mut first_email,
            folder
                .iter()
                .enumerate()
                .filter_map(|(i, c)| Some((c.email.as_deref()?, i))),
        );
        let by_name = duplicates(
            &mut first_name,
            folder
                .iter()
                .enumerate()
                .filter_map(|(i, c)| Some((c.name.as_deref()?, i))),
        );
        let ids = |v: &[usize]| {
            v.iter()
                .map(|&i| folder[i].contact.id.clone())
                .collect::<Vec<_>>()
        };
        for (s, v) in by_sid.iter().filter(|(_, v)| v.len() > 1) {
            push(
                problems,
                ProblemKind::DuplicateSyncId,
                ids(v),
                s.to_string(),
                format!("{} contacts share this SyncId", v.len()),
            );
        }
        for (e, v) in by_email.iter().filter(|(_, v)| v.len() > 1) {
            push(
                problems,
                ProblemKind::DuplicateEmail,
                ids(v),
                (*e).to_owned(),
                format!("{} contacts share this email", v.len()),
            );
        }
        for (n, v) in by_name.iter().filter(|(_, v)| v.len() > 1) {
            push(
                problems,
                ProblemKind::DuplicateDisplayName,
                ids(v),
                (*n).to_owned(),
                format!("{} contacts without email share this displayName", v.len()),
            );
        }
        for (i, c) in folder.iter().enumerate() {
            match links[mb][i] {
                Link::Extra(l) => push(
                    problems,
                    ProblemKind::ExtraCopy,
                    vec![c.contact.id.clone()],
                    c.sync_id
                        .map(|s| s.to_string())
                        .or_else(|| c.email.as_deref().map(str::to_owned))
                        .or_else(|| c.name.as_deref().map(str::to_owned))
                        .unwrap_or_default(),
                    format!(
                        "matches a contact that already has a copy in this folder ({}); left alone",
                        folder[logicals[l as usize]
                            .copies
                            .iter()
                            .find(|x| x.0 == mb as u32)
                            .map(|x| x.1 as usize)
                            .unwrap_or(i)]
                        .contact
                        .id
                    ),
                ),
                Link::NoKey => push(
                    problems,
                    ProblemKind::NoEmailOrName,
                    vec![c.contact.id.clone()],
                    String::new(),
                    "neither email nor displayName nor SyncId: cannot be matched, left alone"
                        .into(),
                ),
                Link::To(l) => {
                    if c.email.is_none() && c.name.is_none() {
                        push(
                            problems,
                            ProblemKind::NoEmailOrName,
                            vec![c.contact.id.clone()],
                            c.sync_id.map(|s| s.to_string()).unwrap_or_default(),
                            "neither email nor displayName; matched by SyncId only".into(),
                        );
                    }
                    if let Some(s) = c
                        .sync_id
                        .filter(|s| mb > 0 && !hub_index.sync_id.contains_key(s))
                    {
                        let detail = if (l as usize) < hub_logicals {
                            "SyncId unknown to the hub; linked to a hub contact by email/displayName and re-stamped"
                        } else {
                            "SyncId unknown to the hub (hub copy deleted?); the contact is re-created in the hub"
                        };
                        push(
                            problems,
                            ProblemKind::UnknownSyncId,
                            vec![c.contact.id.clone()],
                            s.to_string(),
                            detail.into(),
                        );
                    }
                }
                Link::Unlinked => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
