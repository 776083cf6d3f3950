//! From a tenant's plan and the outcome of each of its writes to the report's records: one
//! [`ActionRecord`] per operation, the per-step "skipped" counts, the data problems as text and
//! the repairs apart from them.
//!
//! Pure functions of the plan; they never talk to Graph and never decide an exit code.

use sync_engine::plan::{Action, Operation, Plan, PlanInput, ProblemKind, Target, Write};

use super::{ActionKind, ActionRecord, Delta, Folder, Outcome};

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

/// The plan's data problems as text, and apart from them the repairs: a user copy whose SyncId
/// the hub does not know (`UnknownSyncId`) is what an interrupted earlier run leaves (it created
/// or stamped user copies before the hub copy), or a hub copy someone deleted; the plan links it
/// again — re-created in the hub, or linked to a hub contact by email/displayName — so it is
/// not a problem for the admin to fix (issue 16).
pub fn problems_and_repairs(plan: &Plan) -> (Vec<String>, Vec<String>) {
    let recreated: std::collections::HashSet<String> = plan
        .operations
        .iter()
        .filter(|op| op.target == Target::Hub && matches!(op.write, Write::Create { .. }))
        .map(|op| op.sync_id.to_ascii_lowercase())
        .collect();
    let mut problems = Vec::new();
    let mut repairs = Vec::new();
    for p in &plan.problems {
        if p.kind != ProblemKind::UnknownSyncId {
            problems.push(describe_problem(p));
            continue;
        }
        let how = if recreated.contains(&p.key.to_ascii_lowercase()) {
            "re-created in the hub"
        } else {
            "linked to the hub contact with the same email or name, and stamped with its SyncId"
        };
        repairs.push(format!(
            "SyncId {} in {}/{} was not in the hub: {how} (an earlier run was interrupted, or the \
             hub copy was deleted)",
            p.key,
            p.mailbox,
            Folder::from(p.target)
        ));
    }
    (problems, repairs)
}
