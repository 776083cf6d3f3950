//! Executing a plan: the hub and every user mailbox in parallel, each mailbox's writes in chunks
//! of one `$batch`, and the notes written again after a create whose mailbox dropped them.
//!
//! A write refused with 412 means the user edited that contact after we read it: we do not
//! overwrite it with stale data (I9), report it as `conflict`, and leave it to the next run, which
//! will see the newer edit and let it win. It is not a failure of the run (exit code unaffected):
//! nothing is lost and the next scheduled run converges. A refusal that follows an attempt whose
//! answer was lost (a 504, a dropped connection: the client's `UnconfirmedWrite`) may be that
//! attempt's own doing, so the contact is read again: the write is done if it holds what was
//! sent ([`Operation::is_applied`]), a conflict if it holds something else, failed if it is gone.
//! This module writes exactly the plan's operations — never one the plan does not hold, never a
//! create for an update.

use std::collections::BTreeMap;

use futures::StreamExt as _;
use graph::{ErrorKind, FolderRef, GraphClient, GraphError, WriteRequest};
use sync_engine::Contact;
use sync_engine::plan::{Operation, Plan, Target, Write};
use tracing::{Instrument as _, info, info_span, warn};
use tracing_indicatif::span_ext::IndicatifSpanExt as _;

use super::bar_style;
use crate::report::{ActionResult, Outcome};

/// Mailboxes written at once. A mailbox takes at most 4 writes at a time (a `$batch` of 20 runs
/// in 5 rounds), so reaching Graph's app budget of 130,000 requests per 10 s (graph-facts §6)
/// takes 13,000/s ÷ (4 per latency) mailboxes at once: 65 at 20 ms, more at real latencies
/// (measured in BENCHMARKS.md).
pub(super) const WRITE_PARALLELISM: usize = 256;

fn folder_of(op: &Operation, hub_folder: &FolderRef) -> FolderRef {
    match op.target {
        Target::Hub => hub_folder.clone(),
        Target::UserDefault => FolderRef::Default,
    }
}

/// The Graph write of an operation: a POST for a create, a PATCH of the copy it names (guarded by
/// the etag read at the start, I9) for an update or a stamp — never one for the other.
fn write_request(op: &Operation, hub_folder: &FolderRef) -> WriteRequest {
    let body = serde_json::Value::Object(op.body());
    let folder = folder_of(op, hub_folder);
    match &op.write {
        Write::Create { .. } => WriteRequest::create(folder, body),
        Write::Update {
            contact_id, etag, ..
        }
        | Write::Stamp { contact_id, etag } => {
            WriteRequest::update(folder, contact_id.clone(), etag.clone(), body)
        }
        Write::Delete { contact_id, etag } => {
            WriteRequest::delete(folder, contact_id.clone(), etag.clone())
        }
    }
}

/// The outcome of a write Graph refused: a 412 is a user's edit made after our read (a conflict,
/// left for the next run); anything else failed.
fn outcome_of_error(e: &GraphError) -> Outcome {
    let conflict = e.kind == ErrorKind::Conflict && e.status == Some(412);
    Outcome {
        result: if conflict {
            ActionResult::Conflict
        } else {
            ActionResult::Failed
        },
        error: Some(e.to_string()),
        request_id: e.request_id.clone(),
    }
}

/// Executes the plan: the hub and the user mailboxes in parallel, each at the client's 4 in flight.
pub(super) async fn apply(
    client: &GraphClient,
    plan: &Plan,
    hub: &str,
    hub_folder: &FolderRef,
) -> Vec<Outcome> {
    let ops = &plan.operations;
    let mut results: Vec<Option<Outcome>> = vec![None; ops.len()];
    let write_span = info_span!("write", "indicatif.pb_show" = tracing::field::Empty);
    write_span.pb_set_style(&bar_style());
    write_span.pb_set_length(ops.len() as u64);
    write_span.pb_set_message("applying writes");

    // The hub is one more mailbox in the same stream, queued first. Its writes need not finish
    // before the users' start: every operation is independent (SyncIds are chosen up front), and
    // a crash in between leaves user copies whose SyncId the next run groups and creates in the
    // hub (I4). Waiting for the hub would add its whole write time to every cold run.
    let mut by_mailbox: Vec<(&str, Vec<usize>)> = Vec::new();
    let hub_idx: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].target == Target::Hub)
        .collect();
    if !hub_idx.is_empty() {
        by_mailbox.push((hub, hub_idx));
    }
    let mut users: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if op.target != Target::Hub {
            users.entry(op.mailbox.as_str()).or_default().push(i);
        }
    }
    by_mailbox.extend(users);
    // In CI there are no bars: a log line at every quarter says the run is alive.
    let total = ops.len();
    let applied = std::sync::atomic::AtomicUsize::new(0);
    let applied = &applied;
    let done: Vec<Vec<(usize, Outcome)>> = futures::stream::iter(by_mailbox)
        .map(|(mailbox, idx)| {
            let span = write_span.clone();
            async move {
                let r = apply_mailbox(client, ops, mailbox, &idx, hub_folder).await;
                span.pb_inc(idx.len() as u64);
                let before = applied.fetch_add(idx.len(), std::sync::atomic::Ordering::Relaxed);
                let after = before + idx.len();
                if total >= 100 && after * 4 / total > before * 4 / total && after < total {
                    info!("applied {after} of {total} writes");
                }
                r
            }
        })
        .buffer_unordered(WRITE_PARALLELISM)
        .collect()
        .instrument(write_span.clone())
        .await;
    for (i, o) in done.into_iter().flatten() {
        results[i] = Some(o);
    }
    results
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| Outcome {
                result: ActionResult::Failed,
                error: Some("not executed".into()),
                request_id: None,
            })
        })
        .collect()
}

/// Writes handed to the client at once per mailbox: one `$batch`. A mailbox runs one batch at a
/// time anyway (its 20 items 4 at a time fill the mailbox's 4 slots), so more buys no speed, and
/// each write in flight holds its request body and response in memory (~7 KB): handing over all
/// of a mailbox's writes at once would hold every mailbox's together (BENCHMARKS.md).
const WRITE_CHUNK: usize = 20;

/// The writes of one mailbox, a chunk at a time.
async fn apply_mailbox(
    client: &GraphClient,
    ops: &[Operation],
    mailbox: &str,
    idx: &[usize],
    hub_folder: &FolderRef,
) -> Vec<(usize, Outcome)> {
    let mut out = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(WRITE_CHUNK) {
        out.extend(apply_chunk(client, ops, mailbox, chunk, hub_folder).await);
    }
    out
}

/// Some writes of one mailbox; then the writes whose outcome is unconfirmed are settled by
/// re-reading their contacts, and the notes are written again for creates whose notes did not
/// stick (SPEC §2.7: some mailboxes ignore `personalNotes` on create).
async fn apply_chunk(
    client: &GraphClient,
    ops: &[Operation],
    mailbox: &str,
    idx: &[usize],
    hub_folder: &FolderRef,
) -> Vec<(usize, Outcome)> {
    let writes: Vec<WriteRequest> = idx
        .iter()
        .map(|&i| write_request(&ops[i], hub_folder))
        .collect();
    let responses = client.execute_writes::<Contact>(mailbox, writes).await;
    let mut out = Vec::with_capacity(idx.len());
    let mut rewrites: Vec<(usize, String, WriteRequest)> = Vec::new();
    let mut unconfirmed: Vec<(usize, String, GraphError)> = Vec::new();
    for (&i, r) in idx.iter().zip(responses) {
        let op = &ops[i];
        match r {
            Ok(resp) => {
                if let Some((id, rewrite)) = notes_rewrite(op, resp.body.as_ref(), hub_folder) {
                    tracing::debug!(
                        "notes not kept on create in {mailbox} ({}); writing them again",
                        op.sync_id
                    );
                    rewrites.push((i, id, rewrite));
                }
                out.push((i, Outcome::done(resp.request_id)));
            }
            Err(e) => match (e.kind, op.contact_id()) {
                (ErrorKind::UnconfirmedWrite, Some(id)) => {
                    unconfirmed.push((i, id.to_owned(), e));
                }
                _ => {
                    let o = outcome_of_error(&e);
                    log_outcome(mailbox, op, &o);
                    out.push((i, o));
                }
            },
        }
    }
    if !unconfirmed.is_empty() {
        let ids = unconfirmed
            .iter()
            .map(|(i, id, _)| (*i, id.clone()))
            .collect();
        let mut reads = reread(client, ops, mailbox, ids).await;
        for (i, _, e) in unconfirmed {
            let o = settle_unconfirmed(&ops[i], &e, take_read(&mut reads, i));
            log_outcome(mailbox, &ops[i], &o);
            out.push((i, o));
        }
    }
    if !rewrites.is_empty() {
        rewrite_notes(client, ops, mailbox, rewrites, &mut out).await;
    }
    out
}

/// The PATCH that writes a created contact's notes again when the create's answer shows they
/// were dropped, with the created contact's id; `None` when nothing needs writing.
fn notes_rewrite(
    op: &Operation,
    created: Option<&Contact>,
    hub_folder: &FolderRef,
) -> Option<(String, WriteRequest)> {
    let created = created.filter(|_| matches!(op.write, Write::Create { .. }))?;
    let kept =
        sync_engine::tags::same_notes(created.personal_notes().unwrap_or(""), &op.expected_notes);
    if kept {
        return None;
    }
    let mut body = serde_json::Map::new();
    body.insert(
        "personalNotes".into(),
        serde_json::Value::String(op.expected_notes.clone()),
    );
    let request = WriteRequest::Update {
        folder: folder_of(op, hub_folder),
        contact_id: created.id().to_owned(),
        if_match: created.etag().map(str::to_owned),
        body: serde_json::Value::Object(body),
    };
    Some((created.id().to_owned(), request))
}

/// Writes the notes of created contacts again; a rewrite that fails turns its create's outcome
/// into a failure (an unconfirmed one is settled by a re-read first).
async fn rewrite_notes(
    client: &GraphClient,
    ops: &[Operation],
    mailbox: &str,
    rewrites: Vec<(usize, String, WriteRequest)>,
    out: &mut [(usize, Outcome)],
) {
    let mut who = Vec::with_capacity(rewrites.len());
    let mut requests = Vec::with_capacity(rewrites.len());
    for (i, id, request) in rewrites {
        who.push((i, id));
        requests.push(request);
    }
    let responses = client.execute_writes::<Contact>(mailbox, requests).await;
    let mut failed: Vec<(usize, String, GraphError)> = Vec::new();
    for ((i, id), r) in who.into_iter().zip(responses) {
        if let Err(e) = r {
            failed.push((i, id, e));
        }
    }
    let unsure = failed
        .iter()
        .filter(|(_, _, e)| e.kind == ErrorKind::UnconfirmedWrite)
        .map(|(i, id, _)| (*i, id.clone()))
        .collect();
    let mut reads = reread(client, ops, mailbox, unsure).await;
    for (i, _, e) in failed {
        let written = take_read(&mut reads, i).is_some_and(|c| {
            c.is_ok_and(|c| {
                sync_engine::tags::same_notes(
                    c.personal_notes().unwrap_or(""),
                    &ops[i].expected_notes,
                )
            })
        });
        if written {
            continue;
        }
        // The contact exists without its tag line; the next run matches it by email and stamps
        // it, so no duplicate follows — but this run did not finish it.
        if let Some(slot) = out.iter_mut().find(|(j, _)| *j == i) {
            slot.1 = Outcome {
                result: ActionResult::Failed,
                error: Some(format!(
                    "created, but its personalNotes could not be written: {e}"
                )),
                request_id: e.request_id.clone(),
            };
        }
    }
}

/// Re-reads contacts by id (`(operation index, contact id)`), each with what its operation wrote
/// (`Operation::read_back_select`), 4 at a time — the client's limit per mailbox anyway.
async fn reread(
    client: &GraphClient,
    ops: &[Operation],
    mailbox: &str,
    ids: Vec<(usize, String)>,
) -> Vec<(usize, Result<Contact, GraphError>)> {
    if ids.is_empty() {
        return Vec::new();
    }
    futures::stream::iter(ids)
        .map(|(i, id)| {
            let select = ops[i].read_back_select();
            async move { (i, client.get_contact(mailbox, &id, &select).await) }
        })
        .buffer_unordered(4)
        .collect()
        .await
}

fn take_read(
    reads: &mut Vec<(usize, Result<Contact, GraphError>)>,
    i: usize,
) -> Option<Result<Contact, GraphError>> {
    let at = reads.iter().position(|(j, _)| *j == i)?;
    Some(reads.swap_remove(at).1)
}

/// How a write refused after an earlier attempt whose answer was lost
/// ([`ErrorKind::UnconfirmedWrite`]) ends, from a re-read of its contact: done when the contact
/// holds what the operation writes ([`Operation::is_applied`]: the refusal was that attempt's own
/// doing), a conflict when it holds something else (someone changed it after our read), failed
/// when it is gone or cannot be read. `reread` is `None` when no re-read was made.
fn settle_unconfirmed(
    op: &Operation,
    refusal: &GraphError,
    reread: Option<Result<Contact, GraphError>>,
) -> Outcome {
    let request_id = refusal.request_id.clone();
    let failed = |error: String| Outcome {
        result: ActionResult::Failed,
        error: Some(error),
        request_id: request_id.clone(),
    };
    match reread {
        Some(Ok(contact)) if op.is_applied(&contact) => Outcome::done(request_id.clone()),
        Some(Ok(_)) => Outcome {
            result: ActionResult::Conflict,
            error: Some(format!(
                "changed after it was read: refused (HTTP {}) after an attempt whose answer was \
                 lost, and a re-read shows the contact does not hold what was sent",
                refusal.status.unwrap_or_default()
            )),
            request_id,
        },
        // A future delete would be done here: the contact it removes is gone.
        Some(Err(e)) if e.kind == ErrorKind::NotFound => failed(format!(
            "the contact is gone: it was deleted after this run read it (refused after an \
             attempt whose answer was lost, then not found on re-reading it: {e})"
        )),
        Some(Err(e)) => failed(format!(
            "{refusal}; re-reading the contact to tell whether the earlier attempt was applied \
             failed too: {e}"
        )),
        None => failed(refusal.to_string()),
    }
}

/// One log line for a write that did not simply succeed.
fn log_outcome(mailbox: &str, op: &Operation, o: &Outcome) {
    match o.result {
        ActionResult::Done => info!(
            "{mailbox}: {:?} {} was applied by an earlier attempt whose answer was lost (a \
             re-read shows it)",
            op.action(),
            op.sync_id
        ),
        ActionResult::Conflict => warn!(
            "{mailbox}: contact {} changed after it was read; left for the next run",
            op.sync_id
        ),
        ActionResult::Failed | ActionResult::Planned => warn!(
            "{mailbox}: {:?} {} failed: {}",
            op.action(),
            op.sync_id,
            o.error.as_deref().unwrap_or("")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_engine::plan::{Action, MailboxSnapshot, PlanInput};

    fn err(kind: ErrorKind, status: u16) -> GraphError {
        GraphError {
            kind,
            status: Some(status),
            code: None,
            message: "x".into(),
            request_id: Some("rid".into()),
        }
    }

    #[test]
    fn a_412_is_a_conflict_left_for_the_next_run_not_a_failure() {
        let o = outcome_of_error(&err(ErrorKind::Conflict, 412));
        assert_eq!(o.result, ActionResult::Conflict);
        assert_eq!(o.request_id.as_deref(), Some("rid"));
        // A 409 (folder exists and the like) is not a user edit: a failure.
        assert_eq!(
            outcome_of_error(&err(ErrorKind::Conflict, 409)).result,
            ActionResult::Failed
        );
        assert_eq!(
            outcome_of_error(&err(ErrorKind::Server, 503)).result,
            ActionResult::Failed
        );
    }

    /// A contact as read: its etag is `W/"<id>"`.
    fn read_contact(id: &str, minute: i64, job: &str, notes: Option<&str>) -> sync_engine::Contact {
        use sync_engine::Field;
        let mut fields = sync_engine::FieldsBuilder::new();
        fields
            .text(Field::DisplayName, "Adele Vance")
            .text(Field::JobTitle, job)
            .emails([("", "adele@contoso.com")]);
        sync_engine::ContactParts {
            id: id.into(),
            etag: Some(format!("W/\"{id}\"")),
            last_modified_date_time: Some(jiff::Timestamp::from_second(minute * 60).unwrap()),
            personal_notes: notes.map(Into::into),
            fields: fields.build(),
        }
        .into()
    }

    /// An update of a1 (stale data), a stamp of b1 (same data, no SyncId), a create in c.
    fn three_writes() -> Plan {
        let tag = "SyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301;CreatedBy=hub@contoso.com";
        let snapshot = |mailbox: &str, contacts| MailboxSnapshot::complete(mailbox, contacts);
        let input = PlanInput {
            hub: snapshot(
                "hub@contoso.com",
                vec![read_contact("h1", 9, "Lead", Some(tag))],
            ),
            users: vec![
                // Stale data: an update of a1.
                snapshot(
                    "a@contoso.com",
                    vec![read_contact("a1", 1, "Dev", Some(tag))],
                ),
                // Same data, no SyncId yet: a stamp of b1.
                snapshot("b@contoso.com", vec![read_contact("b1", 1, "Lead", None)]),
                // Missing: a create.
                snapshot("c@contoso.com", vec![]),
            ],
            update_existing: true,
            now: jiff::Timestamp::from_second(3600).unwrap(),
            memory: None,
            options: Default::default(),
            fields: Default::default(),
        };
        sync_engine::plan(&input, &mut || unreachable!("every contact has a SyncId"))
    }

    /// Issue 11, bug 1: a write refused after an attempt whose answer was lost is settled by what
    /// the contact holds when read again.
    #[test]
    fn an_unconfirmed_write_is_settled_by_a_re_read_of_its_contact() {
        let plan = three_writes();
        let update = plan
            .operations
            .iter()
            .find(|op| op.action() == Action::Update)
            .unwrap();
        let notes = Some(update.expected_notes.as_str());
        let refusal = err(ErrorKind::UnconfirmedWrite, 412);
        let settle = |reread| settle_unconfirmed(update, &refusal, Some(reread));
        // It holds what was sent (a later lastModifiedDateTime and etag do not matter): done.
        let o = settle(Ok(read_contact("a1", 70, "Lead", notes)));
        assert_eq!(o.result, ActionResult::Done, "{o:?}");
        assert_eq!(o.request_id.as_deref(), Some("rid"));
        // Someone changed a field, or the notes, after our attempt: a conflict.
        for changed in [
            read_contact("a1", 70, "Edited by Adele", notes),
            read_contact("a1", 70, "Lead", Some("her own text")),
        ] {
            let o = settle(Ok(changed));
            assert_eq!(o.result, ActionResult::Conflict, "{o:?}");
        }
        // Gone meanwhile, or unreadable: failed, saying which.
        let o = settle(Err(err(ErrorKind::NotFound, 404)));
        assert_eq!(o.result, ActionResult::Failed);
        assert!(o.error.as_deref().unwrap().contains("gone"), "{o:?}");
        let o = settle(Err(err(ErrorKind::Server, 503)));
        assert_eq!(o.result, ActionResult::Failed);
        assert!(o.error.as_deref().unwrap().contains("re-reading"), "{o:?}");
        assert_eq!(
            settle_unconfirmed(update, &refusal, None).result,
            ActionResult::Failed
        );
    }

    /// Issue 11, bug 2: an update or a stamp is a PATCH of exactly the copy it names, with that
    /// copy's etag, and only a create is a POST. (Before, an operation without a contact id fell
    /// back to a POST, so a planner bug would have duplicated a contact; the operation types now
    /// make that case unwritable, and this pins the mapping.)
    #[test]
    fn update_and_stamp_patch_their_own_contact_and_only_create_posts() {
        let plan = three_writes();
        let hub_folder = FolderRef::Id("hub-folder".into());
        // (method, contact id, If-Match, folder, body): everything a request says.
        let parts = |r: &WriteRequest| match r.clone() {
            WriteRequest::Create { folder, body } => ("POST", None, None, folder, body),
            WriteRequest::Update {
                folder,
                contact_id,
                if_match,
                body,
            } => ("PATCH", Some(contact_id), if_match, folder, body),
            WriteRequest::Delete {
                folder,
                contact_id,
                if_match,
            } => (
                "DELETE",
                Some(contact_id),
                if_match,
                folder,
                serde_json::Value::Null,
            ),
        };
        assert_eq!(plan.operations.len(), 3, "{:?}", plan.operations);
        for op in &plan.operations {
            let (method, id, etag, folder, body) = parts(&write_request(op, &hub_folder));
            let expected = match (op.action(), op.mailbox.as_str()) {
                (Action::Update, "a@contoso.com") => ("PATCH", Some("a1")),
                (Action::Stamp, "b@contoso.com") => ("PATCH", Some("b1")),
                (Action::Create, "c@contoso.com") => ("POST", None),
                other => panic!("unexpected operation {other:?}"),
            };
            assert_eq!((method, id.as_deref()), expected, "{op:?}");
            assert_eq!(
                etag,
                id.map(|id| format!("W/\"{id}\"")),
                "the copy's own etag"
            );
            assert_eq!(folder, FolderRef::Default, "all three are user folders");
            // The body sent is the operation's own (`Operation::body`, what the planner tested).
            assert_eq!(body, serde_json::Value::Object(op.body()));
        }
    }
}
