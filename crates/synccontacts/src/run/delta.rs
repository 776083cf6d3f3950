//! Incremental reads (docs/state-and-deletes.md §5, issue 14, docs/state-and-deletes.md
//! "Incremental reads"): which folders are read through Graph's contact delta, how a round becomes
//! the folder's snapshot, and the baseline round that gives a folder read whole its first delta
//! link.
//!
//! - **Resume** ([`resume`]): a folder is read from its stored delta link only when the tenant's
//!   memory is used (bound to this tenant and hub), the folder's row holds a link made with this
//!   run's `$select` (the field set: a link keeps the `$select` of the round that made it,
//!   docs/graph-facts.md §2 "Delta"), and every contact remembered with the link decodes
//!   (`sync_engine::remembered`; an encoding this build does not know → the folder is read
//!   whole). The link and the contacts were stored together, in one commit: the pair reproduces
//!   the folder as it was when the link was made.
//! - **A round** ([`read_any`]): the snapshot is the remembered contacts ⊕ changed − removed
//!   (`sync_engine::remembered::materialize`, idempotent). A round that fails or is cut short is a
//!   failed read of that folder (the caller's rules: no write into it, nothing deleted from it,
//!   exit 1), never part of a snapshot. An expired or rejected link (410 `SyncStateNotFound`,
//!   410 with `Location`, `resyncRequired`: docs/graph-facts.md §2, delta-query-overview.md
//!   "Synchronization reset") reads **that folder only** whole, as a first run would; the reset
//!   itself is never evidence of anything (no deletion). Users' folders: the Private flag comes
//!   with no delta row (`$expand` is refused on delta), so a round that reported changes asks
//!   for the folder's private ids (`private_flag.rs`).
//! - **Baseline** ([`baselines`]): a folder read whole in a real run that commits gets, after the
//!   run's writes, an initial delta round (`Prefer: odata.maxpagesize`, Graph's observed bound of
//!   200 per page, docs/graph-facts.md §3; `$select` the field set). Its link is kept only if the
//!   round shows exactly what the run expects the folder to hold — every contact read, with the
//!   changeKey read, or the one its write answered; the contacts it created; not the ones it
//!   deleted — so a user's edit made while the run ran is never absorbed into the baseline (the
//!   next run reads that folder whole and sees it). After the writes because the next run then
//!   starts past our own writes: a run where nothing changed downloads nothing.
//!
//! Reads only; never writes a contact, never decides a sync rule.

use std::collections::{HashMap, HashSet};

use futures::StreamExt as _;
use graph::{DELTA_PAGE_SIZE, DeltaStart, ErrorKind, FolderRef, GraphClient, GraphError, ReadSpec};
use serde_json::{Map, Value};
use sync_engine::memory::Guid;
use sync_engine::memory::change_key;
use sync_engine::plan::{Plan, PlanInput, Target, Write, WriteResult};
use sync_engine::remembered::{self, Book};
use sync_engine::{Contact, MailboxSnapshot};
use sync_state::{FolderState, TenantState};
use tracing::{info, warn};

use super::private_flag;
use super::read::{read_folder, reread_mangled_notes};
use crate::state::map::USER_FOLDER_ID;

/// Where a stored link ends and the `$select` it was made with begins (`link#select=…`). Graph's
/// links carry no fragment, and the fragment is cut off before the link is used.
const SELECT_MARK: &str = "#select=";

/// How many folders' baseline rounds run at once (as many as reads).
const PARALLEL: usize = 64;

/// A folder's stored link and the contacts remembered with it.
pub(super) struct From {
    link: String,
    contacts: Vec<Contact>,
}

/// The folders that can be read from a delta link this run.
#[derive(Default)]
pub(super) struct Resume {
    pub hub: Option<From>,
    pub users: HashMap<String, From>,
}

/// The delta links of the folders read through one this run (with `$select` mark).
#[derive(Default, Debug)]
pub struct Links {
    pub hub: Option<String>,
    pub users: HashMap<String, String>,
}

/// A folder's link and contacts as the commit stores them.
pub(super) struct Kept<'a> {
    pub link: String,
    /// Borrowed from the run's snapshot when the folder was read through its link (no copy of
    /// every contact of the tenant), owned when a baseline round read it.
    pub contacts: std::borrow::Cow<'a, [Contact]>,
}

/// What the commit stores per folder read this run: the hub's and users' (by mailbox), and the
/// book their contacts are encoded against (the hub as kept, see `book_of`: a copy holding
/// exactly its hub copy's values is stored without them).
#[derive(Default)]
pub(super) struct KeptFolders<'a> {
    pub hub: Option<Kept<'a>>,
    pub users: HashMap<String, Kept<'a>>,
    pub book: Book,
}

impl KeptFolders<'_> {
    /// The state's book rows.
    pub(super) fn book_rows(&self) -> Vec<sync_state::BookEntry> {
        if self.hub.is_none() && self.users.is_empty() {
            return Vec::new();
        }
        self.book
            .entries()
            .into_iter()
            .map(|(g, data, created_by)| sync_state::BookEntry {
                sync_id: g.0,
                data,
                created_by,
            })
            .collect()
    }

    /// The state's loose rows of a folder's remembered contacts.
    pub(super) fn loose_rows(&self, contacts: &[Contact]) -> Vec<sync_state::LooseContact> {
        contacts
            .iter()
            .map(|c| {
                let r = remembered::encode_with(c, &self.book);
                sync_state::LooseContact {
                    contact_id: r.contact_id,
                    change_key: r.change_key,
                    last_modified: r.last_modified,
                    data: r.data,
                }
            })
            .collect()
    }
}

/// A folder's contacts and, when it was read through a delta round, that round's link.
#[derive(Default)]
pub(super) struct FolderRead {
    pub contacts: Vec<Contact>,
    pub delta_link: Option<String>,
}

/// A link as stored: with the `$select` it was made with.
fn marked(link: &str, select: &str) -> String {
    format!("{link}{SELECT_MARK}{select}")
}

/// A stored link, if it was made with `select`.
fn unmarked<'a>(stored: &'a str, select: &str) -> Option<&'a str> {
    let (link, made_with) = stored.rsplit_once(SELECT_MARK)?;
    (made_with == select).then_some(link)
}

/// The folders of `state` this run can resume from their delta link (see the module note).
/// `state` is `None` when the memory is not used.
pub(super) fn resume(state: Option<&TenantState>, select: &str) -> Resume {
    let mut out = Resume::default();
    let Some(s) = state else {
        return out;
    };
    let book = Book::from_entries(
        s.book
            .iter()
            .map(|e| (Guid(e.sync_id), e.data.as_slice(), e.created_by.as_str())),
    );
    let usable = |f: &FolderState| -> Option<From> {
        let link = unmarked(f.delta_link.as_deref()?, select)?;
        let decoded: Result<Vec<Contact>, _> = f
            .loose
            .iter()
            .map(|l| {
                remembered::decode_parts(
                    &l.contact_id,
                    l.change_key.as_deref(),
                    l.last_modified,
                    &l.data,
                    &book,
                )
            })
            .collect();
        match decoded {
            Ok(contacts) => Some(From {
                link: link.to_owned(),
                contacts,
            }),
            Err(e) => {
                warn!(
                    "{}: {e}; its folder is read whole this run",
                    f.mailbox.as_str()
                );
                None
            }
        }
    };
    for f in &s.folders {
        if f.folder_id == s.binding.hub_folder_id {
            out.hub = usable(f);
        } else if f.folder_id == USER_FOLDER_ID
            && let Some(r) = usable(f)
        {
            out.users.insert(f.mailbox.clone(), r);
        }
    }
    out
}

/// One folder's read: a delta round from `from` when given (falling back to a whole read of
/// this folder when Graph resets the link), else a paged list. `private`: a user's folder (its
/// contacts carry the Private flag).
pub(super) async fn read_any(
    client: &GraphClient,
    mailbox: &str,
    folder: &FolderRef,
    spec: &ReadSpec,
    from: Option<From>,
    private: bool,
) -> Result<FolderRead, GraphError> {
    let Some(from) = from else {
        let contacts = read_folder(client, mailbox, folder, spec).await?;
        return Ok(FolderRead {
            contacts,
            delta_link: None,
        });
    };
    let start = DeltaStart::Link(from.link);
    let round = match client
        .contacts_delta::<Map<String, Value>>(mailbox, folder, start, DELTA_PAGE_SIZE)
        .await
    {
        Ok(r) => r,
        Err(e) if e.kind == ErrorKind::SyncReset => {
            // docs/graph-facts.md §2: an expired link is 410 SyncStateNotFound, or a reset with a
            // Location; either way a full read of this folder, and nothing inferred from it.
            warn!(
                "{mailbox}: the stored delta link was not accepted ({e}); reading the folder whole"
            );
            let contacts = read_folder(client, mailbox, folder, spec).await?;
            return Ok(FolderRead {
                contacts,
                delta_link: None,
            });
        }
        Err(e) => return Err(e),
    };
    let mut removed = round.removed;
    let (mut changed, partial) = whole_rows(round.changed, &spec.select)?;
    // Rows without every property asked for are read again by id (see `whole_rows`).
    let reread: Vec<(String, Result<Contact, GraphError>)> = futures::stream::iter(partial)
        .map(|id| async move {
            let r = client.get_contact(mailbox, &id, spec).await;
            (id, r)
        })
        .buffer_unordered(4)
        .collect()
        .await;
    for (id, r) in reread {
        match r {
            Ok(c) => changed.push(c),
            // Gone since the round: as a whole read would not list it.
            Err(e) if e.kind == ErrorKind::NotFound => removed.push(id),
            Err(e) => return Err(e),
        }
    }
    // Rows of a delta response may carry notes mangled like a list's (docs/graph-facts.md §9 names
    // list responses; whether delta pages share the quirk is not documented: the safe reading).
    let before: Vec<String> = changed.iter().map(|c| c.id().to_owned()).collect();
    reread_mangled_notes(client, mailbox, spec, &mut changed).await?;
    if changed.len() != before.len() {
        let still: HashSet<&str> = changed.iter().map(Contact::id).collect();
        removed.extend(
            before
                .iter()
                .filter(|id| !still.contains(id.as_str()))
                .cloned(),
        );
    }
    let reported = !changed.is_empty();
    let mut contacts = remembered::materialize(from.contacts, changed, &removed);
    if private && reported {
        let ids = private_flag::private_contact_ids(client, mailbox, folder).await?;
        private_flag::apply_private_flags(&mut contacts, &ids);
    }
    Ok(FolderRead {
        contacts,
        delta_link: Some(round.delta_link),
    })
}

/// The round's changed rows as contacts, and the ids of rows that lack a property the round's
/// `$select` asked for. Graph documents a changed row as "at least the properties that have been
/// updated" (delta-query-overview.md), so a row may in principle be partial; Outlook's contact
/// rows are observed whole (every `$select`ed property, `null` when unset, as the emulator
/// plays it), and a partial row cannot tell "unchanged" from "unset" — so it is never taken for
/// the whole contact, but read again by id.
fn whole_rows(
    rows: Vec<Map<String, Value>>,
    select: &str,
) -> Result<(Vec<Contact>, Vec<String>), GraphError> {
    let wanted: Vec<&str> = select.split(',').filter(|k| !k.is_empty()).collect();
    let mut whole = Vec::with_capacity(rows.len());
    let mut partial = Vec::new();
    for row in rows {
        let complete = wanted.iter().all(|k| row.contains_key(*k));
        let c: Contact = serde_json::from_value(Value::Object(row)).map_err(|e| {
            GraphError::new(
                ErrorKind::Server,
                format!("a contact delta row has an unexpected shape: {e}"),
            )
        })?;
        if complete {
            whole.push(c);
        } else {
            partial.push(c.id().to_owned());
        }
    }
    Ok((whole, partial))
}

/// What a folder is expected to hold after the run's writes: contact id → changeKey (`None`:
/// the folder's outcome is not known exactly, so no baseline is taken).
fn expected(
    snapshot: &MailboxSnapshot,
    target: Target,
    plan: &Plan,
    results: &[WriteResult],
) -> Option<HashMap<String, Option<String>>> {
    let mut want: HashMap<String, Option<String>> = snapshot
        .contacts
        .iter()
        .map(|c| {
            (
                c.id().to_owned(),
                c.etag().map(|e| change_key(e).to_owned()),
            )
        })
        .collect();
    for (i, op) in plan.operations.iter().enumerate() {
        if op.target != target || op.mailbox != snapshot.mailbox {
            continue;
        }
        let result = results.get(i).unwrap_or(&WriteResult::NotRun);
        match (&op.write, result) {
            (_, WriteResult::NotRun | WriteResult::Failed) => {}
            (
                Write::Create { .. },
                WriteResult::Created {
                    contact_id,
                    change_key: Some(ck),
                },
            ) => {
                want.insert(contact_id.clone(), Some(change_key(ck).to_owned()));
            }
            (
                Write::Update { contact_id, .. } | Write::Stamp { contact_id, .. },
                WriteResult::Done {
                    change_key: Some(ck),
                },
            ) => {
                want.insert(contact_id.clone(), Some(change_key(ck).to_owned()));
            }
            (Write::Delete { contact_id, .. }, WriteResult::Done { .. }) => {
                want.remove(contact_id);
            }
            // A conflict (a user edit), an answer lost, a changeKey not answered: not known.
            _ => return None,
        }
    }
    Some(want)
}

/// The folder's baseline round, kept only if it shows exactly `want` (see the module note).
async fn baseline(
    client: &GraphClient,
    snapshot: &MailboxSnapshot,
    folder: FolderRef,
    want: HashMap<String, Option<String>>,
    select: &str,
) -> Option<Kept<'static>> {
    let mailbox = snapshot.mailbox.as_str();
    let start = DeltaStart::Initial {
        select: select.to_owned(),
    };
    let round = match client
        .contacts_delta::<Contact>(mailbox, &folder, start, DELTA_PAGE_SIZE)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            warn!("{mailbox}: no delta baseline ({e}); the next run reads this folder whole");
            return None;
        }
    };
    let read: HashMap<&str, &Contact> = snapshot.contacts.iter().map(|c| (c.id(), c)).collect();
    let mut seen = HashSet::new();
    let mut contacts = Vec::with_capacity(round.changed.len());
    for mut c in round.changed {
        let ck = c.etag().map(|e| change_key(e).to_owned());
        let matches = want.get(c.id()).is_some_and(|w| w.is_some() && *w == ck);
        if !matches || !seen.insert(c.id().to_owned()) {
            info!(
                "{mailbox}: the folder changed while this run ran (contact {}); the next run \
                 reads it whole",
                c.id()
            );
            return None;
        }
        match read.get(c.id()) {
            // Not written by this run: the contact as read (its notes re-read when mangled,
            // its Private flag), the same version as the round's.
            Some(r) if r.etag().map(change_key) == ck.as_deref() => contacts.push((*r).clone()),
            r => {
                // Written by this run: our notes always hold a line break or are a bare tag
                // line, so a mangled-looking value means something else wrote it.
                if c.personal_notes().is_some_and(super::read::may_be_mangled) {
                    return None;
                }
                c.set_private_flag(r.is_some_and(|r| r.private_flag()));
                contacts.push(c);
            }
        }
    }
    if seen.len() != want.len() {
        info!(
            "{mailbox}: a contact left the folder while this run ran; the next run reads it whole"
        );
        return None;
    }
    Some(Kept {
        link: marked(&round.delta_link, select),
        contacts: contacts.into(),
    })
}

/// What a tenant's run read, planned and did.
#[derive(Clone, Copy)]
pub(super) struct RunDone<'a> {
    pub input: &'a PlanInput,
    pub plan: &'a Plan,
    /// One per operation of the plan.
    pub results: &'a [WriteResult],
}

/// What the commit stores for the folders read this run: a folder read through its link keeps
/// the round's link and the snapshot it made (the next round reports our writes, recognised as
/// ours by their changeKey); a folder read whole gets a baseline when `take_baselines` (a real
/// run that commits, not stopped), else nothing (it is read whole again).
pub(super) async fn kept_folders<'a>(
    client: &GraphClient,
    run: RunDone<'a>,
    links: &Links,
    hub_folder_id: &str,
    select: &str,
    take_baselines: bool,
) -> KeptFolders<'a> {
    let RunDone {
        input,
        plan,
        results,
    } = run;
    let mut out = KeptFolders::default();
    let kept_round = |link: &String, snap: &'a MailboxSnapshot| Kept {
        link: marked(link, select),
        contacts: snap.contacts.as_slice().into(),
    };
    if let Some(l) = &links.hub {
        out.hub = Some(kept_round(l, &input.hub));
    }
    let mut todo: Vec<(&MailboxSnapshot, FolderRef, Target)> = Vec::new();
    if links.hub.is_none() {
        todo.push((&input.hub, FolderRef::Id(hub_folder_id.into()), Target::Hub));
    }
    for u in &input.users {
        match links.users.get(&u.mailbox) {
            Some(l) => {
                out.users.insert(u.mailbox.clone(), kept_round(l, u));
            }
            None => todo.push((u, FolderRef::Default, Target::UserDefault)),
        }
    }
    if !take_baselines {
        out.book = book_of(&out, input);
        return out;
    }
    let done: Vec<(Target, String, Option<Kept<'static>>)> = futures::stream::iter(todo)
        .map(|(snap, folder, target)| async move {
            let kept = match expected(snap, target, plan, results) {
                Some(want) => baseline(client, snap, folder, want, select).await,
                None => None,
            };
            (target, snap.mailbox.clone(), kept)
        })
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    for (target, mailbox, kept) in done {
        match (target, kept) {
            (Target::Hub, k) => out.hub = k,
            (Target::UserDefault, Some(k)) => {
                out.users.insert(mailbox, k);
            }
            (Target::UserDefault, None) => {}
        }
    }
    out.book = book_of(&out, input);
    out
}

/// The book the kept folders are encoded against: the hub as kept (after the run's writes when
/// its baseline was taken), else the hub as read. The next run rebuilds its book from the hub it
/// materialises from that same kept state, so an unchanged run encodes every contact as this
/// one did and rewrites no row — a book made from the hub as read would be empty after a cold
/// run that filled the hub, and the next run would re-encode every copy against the new one.
fn book_of(kept: &KeptFolders<'_>, input: &PlanInput) -> Book {
    Book::of(
        kept.hub
            .as_ref()
            .map_or(&input.hub.contacts, |k| &k.contacts),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_without_every_selected_property_is_not_taken_for_the_whole_contact() {
        let row = |v: Value| v.as_object().unwrap().clone();
        let rows = vec![
            row(serde_json::json!({"id": "a", "displayName": "A", "jobTitle": null})),
            row(serde_json::json!({"id": "b", "displayName": "B"})),
        ];
        let (whole, partial) = whole_rows(rows, "id,displayName,jobTitle").unwrap();
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].id(), "a");
        assert_eq!(partial, ["b"]);
    }

    #[test]
    fn a_stored_link_is_used_only_with_the_select_it_was_made_with() {
        let s = marked(
            "https://graph.microsoft.com/v1.0/x/delta?$deltatoken=a#b",
            "id,a",
        );
        assert_eq!(
            unmarked(&s, "id,a"),
            Some("https://graph.microsoft.com/v1.0/x/delta?$deltatoken=a#b")
        );
        assert_eq!(unmarked(&s, "id,a,b"), None);
        assert_eq!(
            unmarked("https://graph.microsoft.com/v1.0/x/delta", "id"),
            None
        );
    }
}
