//! The report as the lines an administrator reads (and greps) in a CI log: the script's action
//! lines and totals (SPEC §2.9), the creation summary, each tenant's last line and the run's.
//!
//! Text only: it prints nothing itself (`output.rs` does) and decides no exit code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{
    ActionKind, ActionRecord, ActionResult, Folder, HubFolder, RunReport, StepTotals, TenantReport,
};
use crate::exit::TenantOutcome;

/// The last line of a run: how many tenants ended how, and the exit code.
pub fn run_summary(r: &RunReport) -> String {
    run_summary_noting(r, None)
}

/// [`run_summary`] with a note before the exit code (e.g. that the report could not be written).
pub fn run_summary_noting(r: &RunReport, note: Option<&str>) -> String {
    let note = note.map(|n| format!("; {n}")).unwrap_or_default();
    if r.error.is_some() && r.tenants.is_empty() {
        return format!(
            "Run refused: configuration error, nothing was written{note}; exit code {}",
            r.exit_code
        );
    }
    format!(
        "Run finished{}: {}{note}; exit code {}",
        if r.dry_run {
            " (dry run, nothing written)"
        } else {
            ""
        },
        tenant_counts(r.tenants.iter().map(|t| t.outcome)),
        r.exit_code
    )
}

/// `3 tenant(s) — 1 ok, 1 partial, 1 failed on authentication/permission`: the middle of the
/// last line of `sync` and of `check` (outcomes that no tenant had are left out, `ok` never).
pub fn tenant_counts(outcomes: impl IntoIterator<Item = TenantOutcome>) -> String {
    let outcomes: Vec<TenantOutcome> = outcomes.into_iter().collect();
    let count = |o: TenantOutcome| outcomes.iter().filter(|x| **x == o).count();
    let mut parts = vec![format!("{} ok", count(TenantOutcome::Ok))];
    for (o, word) in [
        (TenantOutcome::Partial, "partial"),
        (TenantOutcome::Failed, "failed"),
        (
            TenantOutcome::AuthFailed,
            "failed on authentication/permission",
        ),
    ] {
        if count(o) > 0 {
            parts.push(format!("{} {word}", count(o)));
        }
    }
    format!("{} tenant(s) — {}", outcomes.len(), parts.join(", "))
}

/// How much text to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    /// Totals, failures, problems only (`-q`).
    Quiet,
    /// Every action line too.
    Normal,
}

fn name_email(a: &ActionRecord) -> String {
    format!(
        "{} ({})",
        a.display_name.as_deref().unwrap_or("(no name)"),
        a.email.as_deref().unwrap_or("no email")
    )
}

fn verb(a: &ActionRecord) -> &'static str {
    match (a.result, a.action) {
        (ActionResult::Planned, ActionKind::Create) => "Would create",
        (ActionResult::Planned, ActionKind::Update) => "Would update",
        (ActionResult::Planned, ActionKind::Stamp) => "Would stamp",
        (ActionResult::Planned, ActionKind::Delete) => "Would delete",
        (ActionResult::Done, ActionKind::Create) => "Created",
        (ActionResult::Done, ActionKind::Update) => "Updated",
        (ActionResult::Done, ActionKind::Stamp) => "Stamped",
        (ActionResult::Done, ActionKind::Delete) => "Deleted",
        (ActionResult::Failed, ActionKind::Create) => "Failed to create",
        (ActionResult::Failed, ActionKind::Update) => "Failed to update",
        (ActionResult::Failed, ActionKind::Stamp) => "Failed to stamp",
        (ActionResult::Failed, ActionKind::Delete) => "Failed to delete",
        (ActionResult::Conflict, _) => "Changed since read, left for next run",
    }
}

/// One action as the script printed it (SPEC §2.9), with the target appended:
/// `Would update: NotesId=<id> | Name (email) | Changed: a, b | Delta: a: 'x' -> 'y'; b: '' -> 'z' | in user@x/Contacts`.
pub fn action_line(a: &ActionRecord) -> String {
    let mut s = format!("{}: NotesId={} | {}", verb(a), a.sync_id, name_email(a));
    if a.action == ActionKind::Update && !a.changed.is_empty() {
        let changed: Vec<&str> = a.changed.iter().map(|f| f.json_name()).collect();
        let _ = write!(s, " | Changed: {}", changed.join(", "));
        if !a.delta.is_empty() {
            let d: Vec<String> = a
                .delta
                .iter()
                .map(|d| format!("{}: '{}' -> '{}'", d.field.json_name(), d.old, d.new))
                .collect();
            let _ = write!(s, " | Delta: {}", d.join("; "));
        }
    }
    let _ = write!(s, " | in {}/{}", a.mailbox, a.folder);
    if let Some(e) = &a.error {
        let _ = write!(s, " | error: {e}");
        if let Some(id) = &a.request_id
            && !e.contains(id.as_str())
        {
            let _ = write!(s, " [request-id {id}]");
        }
    }
    s
}

/// `Step1 - Created: n, Updated: n, Skipped: n, Stamped: n, Failed: n` (the script's line, plus
/// stamps, failures and conflicts).
pub fn totals_line(step: u8, t: &StepTotals) -> String {
    let mut s = format!(
        "Step{step} - Created: {}, Updated: {}, Skipped: {}, Stamped: {}, Failed: {}",
        t.created, t.updated, t.skipped, t.stamped, t.failed
    );
    if t.deleted > 0 {
        let _ = write!(s, ", Deleted: {}", t.deleted);
    }
    if t.conflicts > 0 {
        let _ = write!(s, ", Changed since read: {}", t.conflicts);
    }
    if t.repaired > 0 {
        let _ = write!(s, ", Repaired: {}", t.repaired);
    }
    s
}

/// The creation summary of one step: actions grouped by (CreatedBy, target mailbox, folder),
/// each listed as `[Action] name <email> | SyncId: id`. Stamps are left out (they change no data).
pub fn creation_summary(actions: &[ActionRecord], step: u8) -> Vec<String> {
    let mut groups: BTreeMap<(String, String, Folder), Vec<&ActionRecord>> = BTreeMap::new();
    for a in actions
        .iter()
        .filter(|a| a.step == step && a.action != ActionKind::Stamp)
    {
        groups
            .entry((a.created_by.clone(), a.mailbox.clone(), a.folder))
            .or_default()
            .push(a);
    }
    let mut out = Vec::new();
    if groups.is_empty() {
        return out;
    }
    out.push(format!("Step{step} summary:"));
    for ((by, mailbox, folder), items) in groups {
        out.push(format!(
            "  CreatedBy {by} -> {mailbox} / {folder} ({})",
            items.len()
        ));
        for a in items {
            out.push(format!(
                "    [{}] {} <{}> | SyncId: {}",
                verb(a),
                a.display_name.as_deref().unwrap_or("(no name)"),
                a.email.as_deref().unwrap_or(""),
                a.sync_id
            ));
        }
    }
    out
}

/// The human text for one tenant, in reading order.
pub fn tenant_text(t: &TenantReport, dry_run: bool, detail: Detail) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!(
        "== Tenant {}{} — hub {} ==",
        t.tenant_id,
        if dry_run { " (dry run)" } else { "" },
        t.hub
    ));
    for m in &t.skipped_mailboxes {
        out.push(format!("Skipped mailbox: {} — {}", m.mailbox, m.reason));
    }
    for m in &t.failed_mailboxes {
        let mut s = format!("Failed mailbox: {} — {}", m.mailbox, m.reason);
        if let Some(id) = &m.request_id
            && !m.reason.contains(id.as_str())
        {
            let _ = write!(s, " [request-id {id}]");
        }
        out.push(s);
    }
    if let Some(state) = t.state.as_deref().filter(|s| *s != "loaded") {
        out.push(format!(
            "State: {state} — first-run mode: nothing is deleted this run"
        ));
    }
    for p in &t.problems {
        out.push(format!("Data problem: {p}"));
    }
    for a in &t.actions {
        let always = matches!(a.result, ActionResult::Failed | ActionResult::Conflict);
        if always || detail == Detail::Normal {
            out.push(action_line(a));
        }
    }
    out.extend(super::book_lines(&t.book, detail == Detail::Normal));
    // A tenant that stopped before planning has no totals worth printing.
    let planned = t.hub_folder != HubFolder::Unknown;
    if planned {
        out.push(totals_line(1, &t.step1));
        out.push(totals_line(2, &t.step2));
    }
    if planned && detail == Detail::Normal {
        out.extend(creation_summary(&t.actions, 1));
        out.extend(creation_summary(&t.actions, 2));
    }
    match (&t.error, t.outcome) {
        (Some(e), _) => out.push(format!(
            "Tenant {}: {} — {e}",
            t.tenant_id,
            outcome_word(t.outcome)
        )),
        (None, o) => out.push(format!(
            "Tenant {}: {}{} ({} users, {} skipped without mailbox, {} requests)",
            t.tenant_id,
            outcome_word(o),
            if t.book.brake_held() {
                ", deletes held"
            } else {
                ""
            },
            t.users,
            t.skipped_mailboxes.len(),
            t.requests
        )),
    }
    out
}

fn outcome_word(o: TenantOutcome) -> &'static str {
    match o {
        TenantOutcome::Ok => "ok",
        TenantOutcome::Partial => "partial (some mailboxes or writes failed; safe to rerun)",
        TenantOutcome::Failed => "failed",
        TenantOutcome::AuthFailed => "failed (authentication or permission)",
    }
}
