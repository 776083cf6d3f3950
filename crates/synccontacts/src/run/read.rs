//! The reads of one tenant, before anything is planned: token → user scope (and its rules,
//! `groups.rs`) → the hub's "All Contacts" folder (found anywhere in the tree, created only in
//! a real run) → one paged read of the hub folder and of every user's default Contacts folder
//! (users' with Outlook's Private flag in the same listing), with notes that a list response
//! mangled read again by id — or, for a folder the memory holds a delta link for, a delta round
//! (`delta.rs`).
//!
//! A tenant-level problem (no token, no hub, no users) stops the tenant (a [`Failure`], worded
//! as `check` words it); a mailbox that cannot be read is noted and the others go on — unless the
//! client halted (an unreachable endpoint, the run's stop), which stops the tenant: nothing is
//! planned from half a tenant. A contact deleted between the listing and its re-read is left out. This module never writes anything but the hub folder,
//! and that only in a real run (docs/compatibility.md §3 FIX).

use futures::StreamExt as _;
use graph::{ErrorKind, FolderRef, GraphClient, GraphError, ReadSpec, SENSITIVITY_PROPERTY};
use sync_engine::Contact;
use sync_engine::plan::MailboxSnapshot;
use tracing::{Instrument as _, info, info_span, warn};
use tracing_indicatif::span_ext::IndicatifSpanExt as _;

use super::delta::{FolderRead, Links, Resume, read_any};
use super::groups::{self, Candidate};
use super::scope::{FIX_UNKNOWN_TEST_USER, NOT_IN_DIRECTORY};
use super::{HUB_FOLDER, TenantScope, bar_style};
use crate::config::{TenantConfig, UserScope};
use crate::failure::{Class, Failure, PERM_CONTACTS, PERM_USERS, StageFailure};
use crate::report::{HubFolder, MailboxNote, Stage};

/// Mailboxes read at once. The client enforces 4 requests per mailbox and a global cap; a read
/// is sequential paging, so this is roughly the number of requests in flight.
const MAILBOX_PARALLELISM: usize = 64;

/// Everything read at the start of the run.
pub struct Snapshots {
    /// The token's `tid` (the tenant's GUID), when the token carries one: the state's binding.
    pub tenant_guid: Option<String>,
    /// The hub's directory object id, when its entry could be read: the state's binding.
    pub hub_object_id: Option<String>,
    pub hub: MailboxSnapshot,
    pub hub_folder: Option<graph::Folder>,
    /// Whether "All Contacts" was found, created, or would be created (dry run).
    pub hub_folder_state: HubFolder,
    pub users: Vec<MailboxSnapshot>,
    pub users_in_scope: usize,
    pub skipped: Vec<MailboxNote>,
    pub failed: Vec<MailboxNote>,
    /// The delta links of the folders read through one (the others were listed whole).
    pub links: Links,
}

/// What is known before any folder is read: enough to bind and load the tenant's memory, which
/// decides how each folder is read (`delta.rs`).
pub(super) struct Prepared {
    tenant_guid: Option<String>,
    pub hub_object_id: Option<String>,
    pub hub_folder: Option<graph::Folder>,
    hub_folder_state: HubFolder,
    users: Vec<String>,
}

impl Prepared {
    /// The token's `tid` (the tenant's GUID), when the token carries one.
    pub fn tenant_guid(&self) -> Option<&str> {
        self.tenant_guid.as_deref()
    }
}

/// Token, user scope and hub folder.
pub(super) async fn prepare(
    t: &TenantConfig,
    client: &GraphClient,
    scope: TenantScope<'_>,
    dry_run: bool,
) -> Result<Prepared, StageFailure> {
    let token = client
        .token()
        .await
        .map_err(|e| Failure::token(t, &e).at(Stage::Token))?;
    tracing::debug!(roles = ?token.roles, "token obtained");

    // The hub's directory entry: its id and UPN are both ways a licensed-user list may name it.
    // Without User.Read.All (test-user scope needs none) fall back to the configured value.
    let mut hub_names = vec![t.hub.clone()];
    let mut hub_object_id = None;
    match client.user(&t.hub).await {
        Ok(u) => {
            hub_object_id = Some(u.id.clone());
            hub_names.push(u.id.clone());
            hub_names.extend(u.user_principal_name.clone());
            hub_names.extend(u.mail.clone());
        }
        Err(e) if e.kind == ErrorKind::NotFound => {
            return Err(Failure::hub_not_a_user(t, &e).at(Stage::Hub));
        }
        Err(e) if e.kind == ErrorKind::Permission && t.scope.test_users().is_some() => {
            tracing::debug!("cannot read the hub's directory entry (no User.Read.All?): {e}");
        }
        Err(e) => {
            return Err(
                Failure::graph(t, "reading the shared mailbox's user", &e, PERM_USERS)
                    .at(Stage::Permissions),
            );
        }
    }
    let is_hub = |u: &str| hub_names.iter().any(|h| h.eq_ignore_ascii_case(u));

    // The scope rules (groups.rs): a failure to resolve them stops the tenant before any list.
    let rules = scope
        .rules
        .rules_for(t)
        .map_err(|f| f.at(Stage::Permissions))?;
    let (base, candidates): (&str, Vec<Candidate>) = match &t.scope {
        UserScope::TestUsers { users, origin } => {
            info!("test-user scope: {} users from {origin}", users.len());
            let named = users.iter().map(|u| Candidate::test_user(u, rules));
            ("test users", named.collect())
        }
        // Fails closed: a scope still pending (its verified domains could not be read) is never
        // read as "every user".
        UserScope::PendingVerifiedDomains => {
            return Err(match scope.undecided {
                Some(u) => u.failure(t),
                None => Failure {
                    class: Class::Configuration,
                    what: "test-user scope undecided: a test-user key may name one of this \
                           tenant's verified domains, which were not resolved"
                        .into(),
                    fix: "key the test-user map by this tenant's TenantId, PrimaryDomain or \
                          TenantDomain"
                        .into(),
                },
            }
            .at(Stage::Permissions));
        }
        UserScope::AllLicensedUsers => {
            let licensed = client.licensed_users().await.map_err(|e| {
                Failure::graph(t, "listing licensed users", &e, PERM_USERS).at(Stage::Permissions)
            })?;
            (
                "licensed users",
                licensed.iter().map(Candidate::licensed).collect(),
            )
        }
    };
    let scoped = groups::apply(base, candidates, rules, is_hub);
    if rules.is_some() {
        info!(
            "{}",
            scoped.summary().map_err(|f| f.at(Stage::Permissions))?
        );
    }
    let users = scoped.users;
    if users.is_empty() {
        return Err(Failure::no_users(t.scope.test_users().is_some()).at(Stage::Permissions));
    }
    info!("{} users in scope", users.len());

    // The hub folder, anywhere in the tree; created only in a real run (docs/compatibility.md §3
    // FIX).
    let hub_err = |e: &GraphError| hub_failure(t, e);
    let mut hub_folder = client
        .find_contact_folder(&t.hub, HUB_FOLDER)
        .await
        .map_err(|e| hub_err(&e))?;
    let mut hub_folder_state = HubFolder::Found;
    if hub_folder.is_none() {
        hub_folder_state = if dry_run {
            HubFolder::WouldCreate
        } else {
            HubFolder::Created
        };
        if dry_run {
            info!(
                "\"{HUB_FOLDER}\" does not exist in {} (a real run creates it)",
                t.hub
            );
        } else {
            let f = client
                .create_contact_folder(&t.hub, HUB_FOLDER)
                .await
                .map_err(|e| {
                    Failure::graph(
                        t,
                        &format!("creating \"{HUB_FOLDER}\" in {}", t.hub),
                        &e,
                        PERM_CONTACTS,
                    )
                    .at(Stage::Hub)
                })?;
            info!("created \"{HUB_FOLDER}\" in {}", t.hub);
            hub_folder = Some(f);
        }
    }

    Ok(Prepared {
        tenant_guid: token.tenant_id.clone(),
        hub_object_id,
        hub_folder,
        hub_folder_state,
        users,
    })
}

/// One read of every folder: through its delta link where `resume` holds one (`delta.rs`),
/// else a paged list.
pub(super) async fn read_folders(
    t: &TenantConfig,
    client: &GraphClient,
    prep: Prepared,
    mut resume: Resume,
) -> Result<Snapshots, StageFailure> {
    let Prepared {
        tenant_guid,
        hub_object_id,
        hub_folder,
        hub_folder_state,
        users,
    } = prep;
    let hub_err = |e: &GraphError| hub_failure(t, e);
    // One read of the hub and of every user's default folder, of the tenant's fields (with
    // `categories` always, for the privacy rules). Users' folders also return Outlook's Private
    // flag in the same listing (`$expand` of PidTagSensitivity, docs/state-and-deletes.md §4): no
    // extra request. The hub's copies are ours, never private, so its read asks for nothing more.
    let select = t.options.fields.select_list();
    let hub_spec = ReadSpec::new(select.as_str());
    let user_spec = ReadSpec::new(select.as_str()).with_extended_property(SENSITIVITY_PROPERTY);
    let read_span = info_span!("read", "indicatif.pb_show" = tracing::field::Empty);
    read_span.pb_set_style(&bar_style());
    read_span.pb_set_length(users.len() as u64 + 1);
    read_span.pb_set_message("reading mailboxes");
    let hub_read = match &hub_folder {
        Some(f) => {
            let folder = FolderRef::Id(f.id.clone());
            let from = resume.hub.take();
            read_any(client, &t.hub, &folder, &hub_spec, from, false)
                .instrument(read_span.clone())
                .await
                .map_err(|e| hub_err(&e))?
        }
        None => FolderRead::default(),
    };
    read_span.pb_inc(1);
    let hub = MailboxSnapshot::complete(t.hub.clone(), hub_read.contacts);
    let users_in_scope = users.len();
    let mut reads: Vec<(String, Result<FolderRead, GraphError>)> = futures::stream::iter(users)
        .map(|u| {
            let span = read_span.clone();
            let spec = &user_spec;
            let from = resume.users.remove(&u);
            async move {
                let r = read_any(client, &u, &FolderRef::Default, spec, from, true).await;
                span.pb_inc(1);
                (u, r)
            }
        })
        .buffer_unordered(MAILBOX_PARALLELISM)
        .collect()
        .instrument(read_span.clone())
        .await;
    drop(read_span);
    reads.sort_by(|a, b| a.0.cmp(&b.0));
    // A halted client read nothing more: the tenant stops here, rather than planning (and
    // writing) from the mailboxes that happened to be read before.
    if let Some((u, Err(e))) = reads.iter().find(|(_, r)| r.as_ref().is_err_and(halted)) {
        // Reported at the hub stage: the tenant stopped while reading its folders.
        return Err(
            Failure::graph(t, &format!("reading the contacts of {u}"), e, PERM_CONTACTS)
                .at(Stage::Hub),
        );
    }

    let mut snaps = Snapshots {
        tenant_guid,
        hub_object_id,
        hub,
        hub_folder,
        hub_folder_state,
        users: Vec::new(),
        users_in_scope,
        skipped: Vec::new(),
        failed: Vec::new(),
        links: Links {
            hub: hub_read.delta_link,
            users: Default::default(),
        },
    };
    for (u, r) in reads {
        match r {
            Ok(read) => {
                if let Some(link) = read.delta_link {
                    snaps.links.users.insert(u.clone(), link);
                }
                snaps
                    .users
                    .push(MailboxSnapshot::complete(u, read.contacts));
            }
            // A test user the directory does not know is a mistake in the list (ErrorInvalidUser,
            // docs/graph-facts.md §7), not a user without a mailbox: it fails, so the run says so
            // (exit 1).
            Err(e) if e.kind == ErrorKind::InvalidUser && t.scope.test_users().is_some() => {
                let reason = format!("{NOT_IN_DIRECTORY} — {FIX_UNKNOWN_TEST_USER} ({e})");
                warn!("cannot read {u}: {reason}");
                snaps.failed.push(MailboxNote {
                    mailbox: u,
                    reason,
                    request_id: e.request_id.clone(),
                });
            }
            Err(e) if e.is_missing_mailbox() => {
                let reason = format!(
                    "no Exchange Online mailbox ({})",
                    e.code.as_deref().unwrap_or(e.kind.as_str())
                );
                warn!("skipping {u}: {reason}");
                snaps.skipped.push(MailboxNote {
                    mailbox: u,
                    reason,
                    request_id: e.request_id.clone(),
                });
            }
            Err(e) => {
                warn!("cannot read {u}: {e}");
                snaps.failed.push(MailboxNote {
                    mailbox: u,
                    reason: e.to_string(),
                    request_id: e.request_id.clone(),
                });
            }
        }
    }
    if snaps.users.is_empty() && !snaps.failed.is_empty() {
        let all_denied = snaps.failed.len() + snaps.skipped.len() == users_in_scope;
        warn!(
            "no user mailbox could be read{}",
            if all_denied {
                ""
            } else {
                " (some were skipped)"
            }
        );
    }
    Ok(snaps)
}

/// One folder's contacts, with notes that a list response may have mangled read again by id.
/// `spec` is the listing's `$select` (and, for users' folders, the `$expand` that returns the
/// Private flag); a re-read by id asks the same.
///
/// Graph's list responses return `personalNotes` that start with a line break with every line
/// break removed and cut to 256 characters, while GET by id returns them intact
/// (docs/graph-facts.md §9, MGDold-issue#17598). Notes rebuilt from such a value and written back
/// would destroy the user's text for good (docs/reliability.md I3). A mangled value has no line
/// break left, so every contact whose listed notes hold none — and are not just our tag line, which
/// never needs the user's text — is read again by id. Once stamped, a contact with user text
/// carries a line break (before its tag line), so in steady state this reads nothing extra. A
/// contact whose re-read finds it gone (404: deleted since the listing) is left out of the
/// snapshot, with one warning.
pub(super) async fn read_folder(
    client: &GraphClient,
    mailbox: &str,
    folder: &FolderRef,
    spec: &ReadSpec,
) -> Result<Vec<Contact>, GraphError> {
    let mut contacts: Vec<Contact> = client.list_contacts(mailbox, folder, spec).await?;
    reread_mangled_notes(client, mailbox, spec, &mut contacts).await?;
    Ok(contacts)
}

/// Reads again by id every contact of `contacts` whose notes may have been mangled by the
/// response they came in (see [`read_folder`]), and leaves out the ones deleted since.
pub(super) async fn reread_mangled_notes(
    client: &GraphClient,
    mailbox: &str,
    spec: &ReadSpec,
    contacts: &mut Vec<Contact>,
) -> Result<(), GraphError> {
    let suspect: Vec<usize> = contacts
        .iter()
        .enumerate()
        .filter(|(_, c)| c.personal_notes().is_some_and(may_be_mangled))
        .map(|(i, _)| i)
        .collect();
    let fetched: Vec<(usize, Result<Contact, GraphError>)> = futures::stream::iter(suspect)
        .map(|i| {
            let id = contacts[i].id().to_owned();
            async move { (i, client.get_contact(mailbox, &id, spec).await) }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let mut gone = Vec::new();
    for (i, r) in fetched {
        match r {
            Ok(c) => contacts[i].set_personal_notes(c.personal_notes()),
            // Deleted between the listing and the re-read: it is no longer in the folder, so it
            // is not in the snapshot either (the next run sees the folder without it).
            Err(e) if e.kind == ErrorKind::NotFound => {
                warn!(
                    "{mailbox}: contact {} was deleted while this run read the folder; left out \
                     of this run",
                    contacts[i].id()
                );
                gone.push(i);
            }
            Err(e) => return Err(e),
        }
    }
    gone.sort_unstable();
    for i in gone.into_iter().rev() {
        contacts.remove(i);
    }
    Ok(())
}

/// Whether the client stopped sending: an endpoint is gone, or the run was stopped.
pub(super) fn halted(e: &GraphError) -> bool {
    matches!(e.kind, ErrorKind::Unreachable | ErrorKind::Cancelled)
}

/// Listed notes that may have lost line breaks to the list-response quirk (see [`read_folder`]).
pub(super) fn may_be_mangled(notes: &str) -> bool {
    if notes.is_empty() || notes.contains(['\n', '\r']) {
        return false;
    }
    let bare_tag_line = sync_engine::tags::parse(notes).tags.is_some()
        && sync_engine::tags::user_text(Some(notes)).is_empty();
    !bare_tag_line
}

/// A failed read of the hub's folders or contacts, in `check`'s words: no mailbox, or Graph's
/// error with the permission it needs.
fn hub_failure(t: &TenantConfig, e: &GraphError) -> StageFailure {
    if e.is_missing_mailbox() {
        Failure::hub_without_mailbox(t, e)
    } else {
        Failure::graph(
            t,
            &format!("reading the contact folders of {}", t.hub),
            e,
            PERM_CONTACTS,
        )
    }
    .at(Stage::Hub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_notes_without_any_line_break_that_are_not_a_bare_tag_line_are_re_read() {
        assert!(may_be_mangled("blank lines aroundSyncId=x"));
        assert!(may_be_mangled("a single line of user text"));
        assert!(!may_be_mangled(""));
        assert!(!may_be_mangled(
            "text\r\nSyncId=0a9b8c7d-0000-4000-8000-0000000000de;CreatedBy=a"
        ));
        assert!(!may_be_mangled(
            "SyncId=0a9b8c7d-0000-4000-8000-0000000000de;CreatedBy=a;LastUpdatedAt=2026-01-01T00:00:00.0000000Z;LastUpdatedBy=a"
        ));
    }
}
