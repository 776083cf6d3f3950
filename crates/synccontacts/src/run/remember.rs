//! One tenant's memory around its plan and writes (docs/state-and-deletes.md §1, §3): which
//! memory the planner gets and with which delete settings, the run marker recorded before the
//! first write, and the memory committed after the writes (`next_memory` over what each write
//! came to). The file itself is `crate::state`; the rules are the planner's.
//!
//! Order of a real run, per tenant: read → load (judged by its binding) → plan → record the run
//! start (the plan's `now`, its hub creates; the stored memory forgotten when not used) → apply →
//! commit (`run::commit_written`, also after an apply the run's stop cut short: what was written
//! is remembered). A dry run loads and plans only. A tenant whose run start cannot be recorded writes
//! nothing (its next run could otherwise take its writes for someone else's); a commit that fails
//! leaves the run's writes unremembered, which the next run handles like an interrupted run.

use jiff::Timestamp;
use sync_engine::plan::{
    BadReadKind, BrakeLimit, DeleteOptions, Plan, PlanInput, Target, WriteResult,
};
use sync_state::{Binding, RunRecord};
use tracing::{info, warn};

use super::USER_FOLDER;
use crate::config::TenantConfig;
use crate::report::{BookReport, MailboxNote, StepTotals};
use crate::state::{self, Loaded, StateWord, Store};

/// The tenant's delete settings, with `--allow-deletes` over `MaxDeletes` over the default brake.
pub(super) fn delete_options(t: &TenantConfig, allow_deletes: Option<usize>) -> DeleteOptions {
    DeleteOptions {
        deletes: t.options.deletes,
        user_deletes: t.options.user_deletes,
        limit: match (allow_deletes, t.options.max_deletes) {
            (Some(n), _) => BrakeLimit::AllowDeletes(n),
            (None, Some(n)) => BrakeLimit::MaxDeletes(n),
            (None, None) => BrakeLimit::Default,
        },
    }
}

/// The memory of the tenant bound to `binding` (`None`: the hub folder does not exist yet, so
/// there is nothing to remember it by), announced in one warning when it is not used.
pub(super) fn load(store: &mut Store, binding: Option<&Binding>, hub: &str) -> Loaded {
    let loaded = match binding {
        Some(b) => store.load(b, hub),
        None => Loaded {
            memory: None,
            word: StateWord::New,
            state: None,
        },
    };
    if loaded.word != StateWord::Loaded {
        announce(&loaded.word);
    }
    loaded
}

/// The one warning of a tenant in first-run mode.
pub(super) fn announce(word: &StateWord) {
    warn!("state {word}: first-run mode, nothing is deleted this run");
}

/// A plan time the state stores exactly (it keeps microseconds).
pub(super) fn plan_time(now: Timestamp) -> Timestamp {
    Timestamp::from_microsecond(now.as_microsecond()).unwrap_or(now)
}

/// Records the run start before the first write; `Err` is why the tenant must not write.
pub(super) fn record_start(
    store: &mut Store,
    binding: Option<&Binding>,
    input: &PlanInput,
    plan: &Plan,
) -> Result<(), String> {
    let Some(b) = binding else {
        // A real run always has the hub folder (it creates it first).
        return Err("the hub folder is unknown, so the run cannot be bound to it".into());
    };
    store
        .record_start(
            b,
            input.now,
            &plan.pending_creates(),
            plan.memory_verdict.is_trusted(),
        )
        .map_err(|e| format!("cannot record the run start in the state file: {e}"))
}

/// What a run reports about its book changes, with the exact command that releases held deletes
/// (a real run's, also when a dry run prints it; `--state` only when the path came from it).
pub(super) fn book_report(plan: &Plan, t: &TenantConfig, store: &Store) -> BookReport {
    BookReport::of(&plan.book, |n| {
        let mut cmd = format!("synccontacts sync --tenant {} ", t.tenant_id);
        if store.path().origin == "--state" {
            cmd.push_str(&format!("--state {} ", store.path().path.display()));
        }
        cmd.push_str(&format!("--allow-deletes {n}"));
        cmd
    })
}

/// Folders whose read is no evidence (docs/state-and-deletes.md §3): each a failed-mailbox note that says why and
/// what the run did about it (exit code 1).
pub(super) fn bad_read_notes(plan: &Plan) -> Vec<MailboxNote> {
    plan.book
        .bad_reads
        .iter()
        .map(|b| {
            let what = match b.kind {
                BadReadKind::Incomplete => "its listing was cut short".to_owned(),
                BadReadKind::Emptied { remembered } => format!(
                    "it held {remembered} of our contacts at the last run and now lists none of them"
                ),
                BadReadKind::LostMost { remembered, found } => format!(
                    "it held {remembered} of our contacts at the last run and now lists only {found}"
                ),
            };
            let folder = match b.target {
                Target::Hub => super::HUB_FOLDER,
                Target::UserDefault => USER_FOLDER,
            };
            MailboxNote {
                mailbox: b.mailbox.clone(),
                reason: format!(
                    "the listing of {folder} looks broken: {what}. Nothing was deleted because of \
                     it and nothing was written to it this run; the next run reads it again \
                     (if the contacts really were removed, the next good read confirms it)"
                ),
                request_id: None,
            }
        })
        .collect()
}

/// Commits the memory the tenant's run leaves; `Err` says what the next run will do about it.
#[allow(
    clippy::too_many_arguments,
    reason = "one call site, every value a distinct input"
)]
pub(super) fn commit(
    store: &mut Store,
    binding: &Binding,
    kept: &super::delta::KeptFolders<'_>,
    loaded: Option<&sync_state::TenantState>,
    input: &PlanInput,
    plan: &Plan,
    results: &[WriteResult],
    totals: [&StepTotals; 2],
    exit_code: i32,
    finished: Timestamp,
) -> Result<(), String> {
    let next = sync_engine::next_memory(input, plan, results);
    let mut counts = std::collections::BTreeMap::new();
    for (name, n) in [
        ("created", totals[0].created + totals[1].created),
        ("updated", totals[0].updated + totals[1].updated),
        ("stamped", totals[0].stamped + totals[1].stamped),
        ("deleted", totals[0].deleted + totals[1].deleted),
        ("failed", totals[0].failed + totals[1].failed),
        ("conflicts", totals[0].conflicts + totals[1].conflicts),
        ("stopped", totals[0].stopped + totals[1].stopped),
        ("repaired", totals[0].repaired + totals[1].repaired),
        ("held", plan.book.held.len()),
        ("withdrawn", plan.book.withdrawn.len()),
    ] {
        counts.insert(name.to_owned(), n as u64);
    }
    let mut record = state::map::to_state(
        &next,
        binding,
        state::map::CommitExtras {
            loaded: loaded.filter(|_| plan.memory_verdict.is_trusted()),
            committed_at: finished,
            run: RunRecord {
                started: input.now.as_microsecond(),
                finished: finished.as_microsecond(),
                exit_code,
                counts,
            },
        },
    );
    attach_kept(&mut record, kept);
    let stats = store.commit(&record).map_err(|e| {
        format!(
            "the state could not be saved ({e}); what this run wrote stays in the mailboxes and \
             the next run treats it like an interrupted run (nothing is lost or duplicated)"
        )
    })?;
    info!(
        "state saved: {} row(s) inserted, {} updated, {} deleted",
        stats.inserted, stats.updated, stats.deleted
    );
    Ok(())
}

/// Puts each folder's delta link and remembered contacts, and the book they are encoded against,
/// into the records (issue 14): only for the folders this run read (the others are read whole
/// next time). A user folder the memory has
/// no row for gets one without copies.
fn attach_kept(record: &mut sync_state::TenantState, kept: &super::delta::KeptFolders<'_>) {
    record.book = kept.book_rows();
    let hub_id = record.binding.hub_folder_id.clone();
    let mut users: std::collections::HashMap<&str, &super::delta::Kept<'_>> =
        kept.users.iter().map(|(m, k)| (m.as_str(), k)).collect();
    for f in &mut record.folders {
        let k = if f.folder_id == hub_id {
            kept.hub.as_ref()
        } else if f.folder_id == state::map::USER_FOLDER_ID {
            users.remove(f.mailbox.as_str())
        } else {
            None
        };
        if let Some(k) = k {
            f.delta_link = Some(k.link.clone());
            f.loose = kept.loose_rows(&k.contacts);
        }
    }
    let mut rest: Vec<_> = users.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(b.0));
    for (mailbox, k) in rest {
        record.folders.push(sync_state::FolderState {
            mailbox: mailbox.to_owned(),
            folder_id: state::map::USER_FOLDER_ID.to_owned(),
            complete: true,
            delta_link: Some(k.link.clone()),
            read_at: None,
            copies: Vec::new(),
            loose: kept.loose_rows(&k.contacts),
        });
    }
}
