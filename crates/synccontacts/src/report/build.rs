//! From a tenant's plan and the outcome of each of its writes to the report's records: one
//! [`ActionRecord`] per operation, the per-step "skipped" counts, the data problems as text and
//! the repairs apart from them (one list, whether the state told them or first-run mode did).
//!
//! Pure functions of the plan; they never talk to Graph and never decide an exit code.

use sync_engine::plan::{
    Action, DeleteCause, Operation, Plan, PlanInput, ProblemKind, Target, Write,
};

use std::collections::{HashMap, HashSet};

use super::{
    ActionKind, ActionRecord, ActionResult, BookRecord, DeleteReason, Delta, Folder, Outcome,
    RepairCause, RepairRecord,
};

pub fn record(op: &Operation, o: Outcome) -> ActionRecord {
    ActionRecord {
        step: op.step,
        action: match op.action() {
            Action::Create => ActionKind::Create,
            Action::Update => ActionKind::Update,
            Action::Stamp => ActionKind::Stamp,
            Action::Delete => ActionKind::Delete,
        },
        mailbox: op.mailbox.clone(),
        folder: op.target.into(),
        sync_id: op.sync_id.clone(),
        display_name: op.display_name.clone(),
        email: op.email.clone(),
        changed: op.changes().iter().map(|c| c.field).collect(),
        delta: op
            .changes()
            .iter()
            .map(|c| Delta {
                field: c.field,
                old: c.old.clone(),
                new: c.new.clone(),
            })
            .collect(),
        created_by: op.created_by.clone(),
        source_mailbox: op.source_mailbox.clone(),
        result: o.result,
        error: o.error,
        request_id: o.request_id,
        reason: match op.write {
            Write::Delete {
                cause: DeleteCause::Withdrawn,
                ..
            } => Some(DeleteReason::Withdrawn),
            _ => None,
        },
    }
}

/// "Skipped" per step: existing contacts in the step's target folders that needed no write
/// (step 1: the hub folder; step 2: the users' default folders).
pub fn skipped_counts(input: &PlanInput, plan: &Plan) -> (usize, usize) {
    let mut hub_written = std::collections::HashSet::new();
    let mut user_written = std::collections::HashSet::new();
    for op in &plan.operations {
        let id = match &op.write {
            Write::Update { contact_id, .. }
            | Write::Stamp { contact_id, .. }
            | Write::Delete { contact_id, .. } => contact_id,
            // A create writes no existing contact.
            Write::Create { .. } => continue,
        };
        match op.target {
            Target::Hub => {
                hub_written.insert(id.as_str());
            }
            Target::UserDefault => {
                user_written.insert((op.mailbox.as_str(), id.as_str()));
            }
        }
    }
    let hub_total = input.hub.contacts.len();
    let user_total: usize = input.users.iter().map(|u| u.contacts.len()).sum();
    (
        hub_total.saturating_sub(hub_written.len()),
        user_total.saturating_sub(user_written.len()),
    )
}

pub fn describe_problem(p: &sync_engine::plan::DataProblem) -> String {
    let folder = Folder::from(p.target);
    format!(
        "{:?} in {}/{folder} ({}): {} [contacts: {}]",
        p.kind,
        p.mailbox,
        p.key,
        p.detail,
        p.contact_ids.join(", ")
    )
}

/// The plan's data problems as text, and apart from them the repairs, each once: a contact whose
/// SyncId the hub does not know is what an interrupted earlier run leaves (it created or stamped
/// user copies before the hub copy), or a hub copy someone deleted; the plan links it again —
/// re-created in the hub, or a user copy linked to a hub contact by email/displayName — so it
/// is not a problem for the admin to fix (issue 16). With trusted memory the planner tells the
/// hub re-creates itself (`book.repairs`, issue 12: interrupted run or never in the hub) and
/// leaves only the linked copies as `UnknownSyncId` problems; in first-run mode every such copy
/// is an `UnknownSyncId` problem, one per user copy, and a contact re-created in the hub from
/// several copies is still one repair.
pub fn problems_and_repairs(plan: &Plan) -> (Vec<String>, Vec<RepairRecord>) {
    // The hub create of each SyncId, and the operation on each existing copy.
    let mut hub_creates: HashMap<String, usize> = HashMap::new();
    let mut on_copy: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, op) in plan.operations.iter().enumerate() {
        match (&op.write, op.contact_id()) {
            (Write::Create { .. }, _) if op.target == Target::Hub => {
                hub_creates.insert(op.sync_id.to_ascii_lowercase(), i);
            }
            (_, Some(id)) => {
                on_copy.insert((op.mailbox.as_str(), id), i);
            }
            _ => {}
        }
    }
    let mut repairs: Vec<RepairRecord> = Vec::new();
    let mut recreated: HashSet<String> = HashSet::new();
    for r in &plan.book.repairs {
        let key = r.entry.sync_id.to_ascii_lowercase();
        if !recreated.insert(key.clone()) {
            continue;
        }
        repairs.push(RepairRecord {
            contact: (&r.entry).into(),
            reason: r.reason.into(),
            found_in: r.found_in.clone(),
            write: hub_creates.get(&key).copied(),
        });
    }
    let mut problems = Vec::new();
    for p in &plan.problems {
        if p.kind != ProblemKind::UnknownSyncId {
            problems.push(describe_problem(p));
            continue;
        }
        let key = p.key.to_ascii_lowercase();
        if let Some(&i) = hub_creates.get(&key) {
            // Re-created in the hub: one repair however many copies carried the SyncId.
            if recreated.insert(key) {
                let op = &plan.operations[i];
                repairs.push(RepairRecord {
                    contact: BookRecord {
                        sync_id: op.sync_id.clone(),
                        display_name: op.display_name.clone(),
                        email: op.email.clone(),
                        mailbox: op.mailbox.clone(),
                        folder: Folder::Hub,
                    },
                    reason: RepairCause::InterruptedOrDeleted,
                    found_in: p.mailbox.clone(),
                    write: Some(i),
                });
            }
            continue;
        }
        // Linked to a hub contact by email or name: its copy is stamped (or updated) with the
        // hub contact's SyncId.
        let write = p
            .contact_ids
            .first()
            .and_then(|id| on_copy.get(&(p.mailbox.as_str(), id.as_str())).copied());
        let op = write.map(|i| &plan.operations[i]);
        repairs.push(RepairRecord {
            contact: BookRecord {
                sync_id: p.key.clone(),
                display_name: op.and_then(|op| op.display_name.clone()),
                email: op.and_then(|op| op.email.clone()),
                mailbox: p.mailbox.clone(),
                folder: p.target.into(),
            },
            reason: RepairCause::InterruptedOrDeleted,
            found_in: p.mailbox.clone(),
            write,
        });
    }
    (problems, repairs)
}

/// The repairs whose write was done (or planned, in a dry run): `step1.repaired`. A repair
/// whose write failed or was stopped is repaired by a later run, and counted then.
pub fn repaired(repairs: &[RepairRecord], actions: &[ActionRecord]) -> usize {
    repairs
        .iter()
        .filter_map(|r| r.write.and_then(|i| actions.get(i)))
        .filter(|a| matches!(a.result, ActionResult::Done | ActionResult::Planned))
        .count()
}
