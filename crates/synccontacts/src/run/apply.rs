//! Executing a plan: the hub and every user mailbox in parallel, each mailbox's writes in chunks
//! of one `$batch`, and the notes written again after a create whose mailbox dropped them.
//!
//! A write refused with 412 means the user edited that contact after we read it: we do not
//! overwrite it with stale data (I9), report it as `conflict`, and leave it to the next run, which
//! will see the newer edit and let it win. It is not a failure of the run (exit code unaffected):
//! nothing is lost and the next scheduled run converges. This module writes exactly the plan's
//! operations — never one the plan does not hold, never a create for an update.

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

/// Some writes of one mailbox, then the notes re-write for creates whose notes did not stick
/// (SPEC §2.7: some mailboxes ignore `personalNotes` on create).
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
    let mut rewrites: Vec<(usize, WriteRequest)> = Vec::new();
    for (&i, r) in idx.iter().zip(responses) {
        let op = &ops[i];
        match r {
            Ok(resp) => {
                if matches!(op.write, Write::Create { .. })
                    && let Some(created) = &resp.body
                    && !sync_engine::tags::same_notes(
                        created.personal_notes.as_deref().unwrap_or(""),
                        &op.expected_notes,
                    )
                {
                    tracing::debug!(
                        "notes not kept on create in {mailbox} ({}); writing them again",
                        op.sync_id
                    );
                    let mut body = serde_json::Map::new();
                    body.insert(
                        "personalNotes".into(),
                        serde_json::Value::String(op.expected_notes.clone()),
                    );
                    rewrites.push((
                        i,
                        WriteRequest::Update {
                            folder: folder_of(op, hub_folder),
                            contact_id: created.id.clone(),
                            if_match: created.etag.clone(),
                            body: serde_json::Value::Object(body),
                        },
                    ));
                }
                out.push((i, Outcome::done(resp.request_id)));
            }
            Err(e) => {
                let o = outcome_of_error(&e);
                if o.result == ActionResult::Conflict {
                    warn!(
                        "{mailbox}: contact {} changed after it was read; left for the next run",
                        op.sync_id
                    );
                } else {
                    warn!("{mailbox}: {:?} {} failed: {e}", op.action(), op.sync_id);
                }
                out.push((i, o));
            }
        }
    }
    if !rewrites.is_empty() {
        let (who, reqs): (Vec<usize>, Vec<WriteRequest>) = rewrites.into_iter().unzip();
        let responses = client.execute_writes::<Contact>(mailbox, reqs).await;
        for (i, r) in who.into_iter().zip(responses) {
            if let Err(e) = r {
                // The contact exists without its tag line; the next run matches it by email
                // and stamps it, so no duplicate follows — but this run did not finish it.
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
    }
    out
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
        sync_engine::Contact {
            id: id.into(),
            etag: Some(format!("W/\"{id}\"")),
            last_modified_date_time: Some(jiff::Timestamp::from_second(minute * 60).unwrap()),
            personal_notes: notes.map(Into::into),
            fields: sync_engine::ContactFields {
                display_name: Some("Adele Vance".into()),
                job_title: Some(job.into()),
                email_addresses: vec![sync_engine::EmailAddress {
                    name: None,
                    address: Some("adele@contoso.com".into()),
                }],
                ..Default::default()
            },
        }
    }

    /// Issue 11, bug 2: an update or a stamp is a PATCH of exactly the copy it names, with that
    /// copy's etag, and only a create is a POST. (Before, an operation without a contact id fell
    /// back to a POST, so a planner bug would have duplicated a contact; the operation types now
    /// make that case unwritable, and this pins the mapping.)
    #[test]
    fn update_and_stamp_patch_their_own_contact_and_only_create_posts() {
        let tag = "SyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301;CreatedBy=hub@contoso.com";
        let snapshot = |mailbox: &str, contacts| MailboxSnapshot {
            mailbox: mailbox.into(),
            contacts,
        };
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
        };
        let plan = sync_engine::plan(&input, &mut || unreachable!("every contact has a SyncId"));
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
