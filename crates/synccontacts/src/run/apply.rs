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
//! A delete answered 404 — at once, or after an attempt whose answer was lost — is done: the
//! contact it removes is gone (docs/state-and-deletes.md §3.6).
//! Each operation's result also says what the state must remember of it ([`WriteResult`]: the
//! changeKey Graph answered with, the id of a created contact), for `next_memory`.
//! Once the client halts — the run's stop (a signal, the deadline) or an endpoint gone (its
//! breaker) — no write starts: the client refuses them without a request, and they are reported
//! as `stopped`, not as failures, with one line for all of them instead of one each. Writes on
//! the wire when the run stopped may finish during the stop's grace; after it they are abandoned
//! (their outcome unknown: `stopped`, saying so, and unconfirmed for the state, which then keeps
//! only what is sure either way).
//!
//! This module writes exactly the plan's operations — never one the plan does not hold, never a
//! create for an update.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::StreamExt as _;
use graph::{ErrorKind, FolderRef, GraphClient, GraphError, WriteRequest};
use sync_engine::Contact;
use sync_engine::plan::{Operation, Plan, Target, Write, WriteResult};
use tracing::{Instrument as _, info, info_span, warn};
use tracing_indicatif::span_ext::IndicatifSpanExt as _;

use super::bar_style;
use super::read::halted;
use crate::report::{ActionResult, Outcome};
use crate::stop::RunStop;

/// Mailboxes written at once. A mailbox takes at most 4 writes at a time (a `$batch` of 20 runs
/// in 5 rounds), so reaching Graph's app budget of 130,000 requests per 10 s
/// (docs/graph-facts.md §6) takes 13,000/s ÷ (4 per latency) mailboxes at once: 65 at 20 ms, more
/// at real latencies (measured in BENCHMARKS.md).
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
        Write::Delete {
            contact_id, etag, ..
        } => WriteRequest::delete(folder, contact_id.clone(), etag.clone()),
    }
}

/// What became of one operation: the report's outcome and what the state remembers of it.
#[derive(Clone, Debug)]
pub(super) struct Applied {
    pub outcome: Outcome,
    pub result: WriteResult,
}

impl Applied {
    fn new(outcome: Outcome, result: WriteResult) -> Self {
        Self { outcome, result }
    }
}

/// The run's stop, and the first error that halted the client (the tenant's failure when it is
/// not the stop): shared by every mailbox's writes.
pub(super) struct Halting<'a> {
    stop: &'a RunStop,
    first: Mutex<Option<GraphError>>,
}

impl Halting<'_> {
    /// A `stopped` outcome for a write the halted client did not do, or `None` if `e` is not
    /// such an error.
    fn outcome(&self, e: &GraphError) -> Option<Outcome> {
        if !halted(e) {
            return None;
        }
        self.first.lock().unwrap().get_or_insert_with(|| e.clone());
        Some(Outcome::stopped(e.to_string()))
    }
}

/// What [`apply`] did: what became of each operation, and the error that halted the client, if
/// one did.
pub(super) struct Writes {
    pub applied: Vec<Applied>,
    pub halt: Option<GraphError>,
}

/// What the state remembers of a write Graph answered: the changeKey (as the `@odata.etag` it
/// came in, `next_memory` takes the changeKey out of it), and a created contact's id.
fn written(op: &Operation, answer: Option<&Contact>) -> WriteResult {
    match (&op.write, answer) {
        (Write::Create { .. }, Some(c)) => WriteResult::Created {
            contact_id: c.id().to_owned(),
            change_key: c.etag().map(str::to_owned),
        },
        _ => WriteResult::Done {
            change_key: answer.and_then(|c| c.etag().map(str::to_owned)),
        },
    }
}

/// What the state remembers of a write Graph refused (`outcome` from [`outcome_of_error`]): a
/// 412 is a conflict; an error after which the write may have been applied (an answer lost, a
/// server error after sending, a create not repeated, a halted client: `Cancelled` may follow an
/// attempt that was applied) is unconfirmed — `next_memory` then keeps only what is sure either
/// way —; anything else did not apply.
fn refused(e: &GraphError, outcome: &Outcome) -> WriteResult {
    match (outcome.result, e.kind) {
        (ActionResult::Conflict, _) => WriteResult::Conflict,
        (
            _,
            ErrorKind::AmbiguousWrite
            | ErrorKind::Server
            | ErrorKind::Transport
            | ErrorKind::Unreachable
            | ErrorKind::Cancelled,
        ) => WriteResult::Unconfirmed,
        _ => WriteResult::Failed,
    }
}

/// The outcome of a write Graph refused: a 412 is a user's edit made after our read (a conflict,
/// left for the next run); a write the halted client did not do was stopped; anything else
/// failed.
fn outcome_of_error(e: &GraphError, halting: &Halting<'_>) -> Outcome {
    if let Some(o) = halting.outcome(e) {
        return o;
    }
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
    stop: &RunStop,
) -> Writes {
    let halting = &Halting {
        stop,
        first: Mutex::new(None),
    };
    let ops = &plan.operations;
    let mut results: Vec<Option<Applied>> = vec![None; ops.len()];
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
    let done: Vec<Vec<(usize, Applied)>> = futures::stream::iter(by_mailbox)
        .map(|(mailbox, idx)| {
            let span = write_span.clone();
            async move {
                let r = apply_mailbox(client, ops, mailbox, &idx, hub_folder, halting).await;
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
    let applied = results
        .into_iter()
        .map(|o| {
            o.unwrap_or_else(|| {
                Applied::new(
                    Outcome {
                        result: ActionResult::Failed,
                        error: Some("not executed".into()),
                        request_id: None,
                    },
                    WriteResult::NotRun,
                )
            })
        })
        .collect();
    let halt = halting.first.lock().unwrap().take();
    if let Some(e) = &halt {
        warn!("writes stopped: {e}");
    }
    Writes { applied, halt }
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
    halting: &Halting<'_>,
) -> Vec<(usize, Applied)> {
    let mut out = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(WRITE_CHUNK) {
        out.extend(apply_chunk(client, ops, mailbox, chunk, hub_folder, halting).await);
    }
    out
}

/// Some writes of one mailbox; then the writes whose outcome is unconfirmed are settled by
/// re-reading their contacts, and the notes are written again for creates whose notes did not
/// stick (docs/compatibility.md §7: some mailboxes ignore `personalNotes` on create).
async fn apply_chunk(
    client: &GraphClient,
    ops: &[Operation],
    mailbox: &str,
    idx: &[usize],
    hub_folder: &FolderRef,
    halting: &Halting<'_>,
) -> Vec<(usize, Applied)> {
    let writes: Vec<WriteRequest> = idx
        .iter()
        .map(|&i| write_request(&ops[i], hub_folder))
        .collect();
    // Dropping the writes' future at the end of the stop's grace closes their connections; what
    // Graph did with them is unknown, and the next run reads the folders to find out.
    let responses = tokio::select! {
        biased;
        r = client.execute_writes::<Contact>(mailbox, writes) => r,
        () = halting.stop.abandoned() => {
            halting.first.lock().unwrap().get_or_insert_with(|| {
                GraphError::new(
                    ErrorKind::Cancelled,
                    "writes in flight abandoned at the end of the stop's grace",
                )
            });
            return idx
                .iter()
                .map(|&i| {
                    (i, Applied::new(
                        Outcome::stopped(
                            "in flight when the run stopped, and not finished within its grace: \
                             its outcome is unknown; the next run reads the folder and completes \
                             or repairs it".into(),
                        ),
                        WriteResult::Unconfirmed,
                    ))
                })
                .collect();
        }
    };
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
                let result = written(op, resp.body.as_ref());
                out.push((i, Applied::new(Outcome::done(resp.request_id), result)));
            }
            Err(e) => match (e.kind, op.contact_id()) {
                (ErrorKind::UnconfirmedWrite, Some(id)) => {
                    unconfirmed.push((i, id.to_owned(), e));
                }
                // A delete whose contact is already gone has nothing left to do.
                (ErrorKind::NotFound, _) if op.action() == sync_engine::plan::Action::Delete => {
                    let o = Outcome::done(e.request_id.clone());
                    out.push((i, Applied::new(o, WriteResult::Done { change_key: None })));
                }
                _ => {
                    let o = outcome_of_error(&e, halting);
                    log_outcome(mailbox, op, &o);
                    let result = refused(&e, &o);
                    out.push((i, Applied::new(o, result)));
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
            let reread = take_read(&mut reads, i);
            // A halted client could not re-read: whether the earlier attempt applied is
            // unknown, and the next run reads the folder to find out.
            let a = match &reread {
                Some(Err(halt)) => halting
                    .outcome(halt)
                    .map(|o| Applied::new(o, WriteResult::Unconfirmed)),
                _ => None,
            }
            .unwrap_or_else(|| settle_unconfirmed(&ops[i], &e, reread));
            log_outcome(mailbox, &ops[i], &a.outcome);
            out.push((i, a));
        }
    }
    if !rewrites.is_empty() {
        rewrite_notes(client, ops, mailbox, rewrites, &mut out, halting).await;
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
/// into a failure (an unconfirmed one is settled by a re-read first). The changeKey the state
/// remembers for the created contact is the rewrite's (or the re-read's).
async fn rewrite_notes(
    client: &GraphClient,
    ops: &[Operation],
    mailbox: &str,
    rewrites: Vec<(usize, String, WriteRequest)>,
    out: &mut [(usize, Applied)],
    halting: &Halting<'_>,
) {
    let mut who = Vec::with_capacity(rewrites.len());
    let mut requests = Vec::with_capacity(rewrites.len());
    for (i, id, request) in rewrites {
        who.push((i, id));
        requests.push(request);
    }
    let responses = client.execute_writes::<Contact>(mailbox, requests).await;
    let mut failed: Vec<(usize, String, GraphError)> = Vec::new();
    let set_change_key = |out: &mut [(usize, Applied)], i: usize, etag: Option<String>| {
        if let Some((_, a)) = out.iter_mut().find(|(j, _)| *j == i)
            && let WriteResult::Created { change_key, .. } = &mut a.result
        {
            *change_key = etag;
        }
    };
    for ((i, id), r) in who.into_iter().zip(responses) {
        match r {
            Ok(resp) => set_change_key(out, i, resp.body.and_then(|c| c.etag().map(str::to_owned))),
            Err(e) => failed.push((i, id, e)),
        }
    }
    let unsure = failed
        .iter()
        .filter(|(_, _, e)| e.kind == ErrorKind::UnconfirmedWrite)
        .map(|(i, id, _)| (*i, id.clone()))
        .collect();
    let mut reads = reread(client, ops, mailbox, unsure).await;
    for (i, _, e) in failed {
        let reread = take_read(&mut reads, i).and_then(Result::ok);
        if let Some(c) = reread.filter(|c| {
            sync_engine::tags::same_notes(c.personal_notes().unwrap_or(""), &ops[i].expected_notes)
        }) {
            set_change_key(out, i, c.etag().map(str::to_owned));
            continue;
        }
        // The contact exists without its tag line; the next run matches it by email and stamps
        // it, so no duplicate follows — but this run did not finish it, and the state must not
        // remember it as a copy carrying the SyncId.
        if let Some(slot) = out.iter_mut().find(|(j, _)| *j == i) {
            let error = format!("created, but its personalNotes could not be written: {e}");
            let outcome = match halting.outcome(&e) {
                Some(_) => Outcome::stopped(error),
                None => Outcome {
                    result: ActionResult::Failed,
                    error: Some(error),
                    request_id: e.request_id.clone(),
                },
            };
            slot.1 = Applied::new(outcome, WriteResult::Failed);
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
/// doing) — for a delete, when the contact is gone —, a conflict when it holds something else
/// (someone changed it after our read), failed when it is gone (an update or stamp) or cannot be
/// read. `reread` is `None` when no re-read was made.
fn settle_unconfirmed(
    op: &Operation,
    refusal: &GraphError,
    reread: Option<Result<Contact, GraphError>>,
) -> Applied {
    let request_id = refusal.request_id.clone();
    let failed = |error: String| {
        Applied::new(
            Outcome {
                result: ActionResult::Failed,
                error: Some(error),
                request_id: request_id.clone(),
            },
            WriteResult::Failed,
        )
    };
    let delete = op.action() == sync_engine::plan::Action::Delete;
    match reread {
        Some(Ok(contact)) if !delete && op.is_applied(&contact) => Applied::new(
            Outcome::done(request_id.clone()),
            WriteResult::Done {
                change_key: contact.etag().map(str::to_owned),
            },
        ),
        Some(Ok(_)) => Applied::new(
            Outcome {
                result: ActionResult::Conflict,
                error: Some(format!(
                    "changed after it was read: refused (HTTP {}) after an attempt whose answer \
                     was lost, and a re-read shows the contact {}",
                    refusal.status.unwrap_or_default(),
                    if delete {
                        "is still there"
                    } else {
                        "does not hold what was sent"
                    }
                )),
                request_id,
            },
            WriteResult::Conflict,
        ),
        // The contact a delete removes is gone: done, whichever attempt removed it.
        Some(Err(e)) if e.kind == ErrorKind::NotFound && delete => Applied::new(
            Outcome::done(request_id.clone()),
            WriteResult::Done { change_key: None },
        ),
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

/// One log line for a write that did not simply succeed (a write the halted client did not do
/// is said once for all, by [`apply`]).
fn log_outcome(mailbox: &str, op: &Operation, o: &Outcome) {
    match o.result {
        ActionResult::Stopped => {}
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
#[path = "apply_tests.rs"]
mod tests;
