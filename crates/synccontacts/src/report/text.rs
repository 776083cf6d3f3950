//! The report as the lines an administrator reads (and greps) in a CI log: the script's action
//! lines and totals (docs/compatibility.md §9), each tenant's last line and the run's.
//!
//! Readable at scale (issue 16): a first run of 1,000 users makes millions of writes, and GitLab
//! truncates a job log at 4 MB. So by default each step shows the first [`ActionLines`] lines of
//! each kind (create, update, stamp, delete) and says how many more there are — the book's
//! lines too (repairs, opt-outs, report-only and held deletes; only the command that releases
//! held deletes is always printed, and held deletes also with `-q`); each mailbox written gets
//! one summary line (which replaces the script's creation summary: the report keeps each
//! action's `createdBy`); failures and conflicts — what the admin must act on — are always
//! printed, up to [`MUST_READ_LINES`] per tenant and then counted. `--actions all` prints every
//! action line instead, in plan order. No line is printed twice.
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
    let how = match r.stopped_by {
        Some(cause) => format!(
            "Run {}{}",
            cause.describe(),
            if r.dry_run { " (dry run)" } else { "" }
        ),
        None if r.dry_run => "Run finished (dry run, nothing written)".to_owned(),
        None => "Run finished".to_owned(),
    };
    format!(
        "{how}: {}{note}; exit code {}",
        tenant_counts(r.tenants.iter().map(|t| t.outcome)),
        r.exit_code
    )
}

/// The one line a stopped run prints before its last line:
/// `interrupted by SIGTERM: stopped after 120 of 4,000 writes; the next run completes the rest`.
pub fn stop_line(r: &RunReport) -> Option<String> {
    let cause = r.stopped_by?;
    let (done, planned) = r.writes_done_of_planned();
    if r.dry_run {
        return Some(format!(
            "{}: the dry run had planned {} writes; nothing was written",
            cause.describe(),
            thousands(planned)
        ));
    }
    Some(format!(
        "{}: stopped after {} of {} writes; the next run completes the rest",
        cause.describe(),
        thousands(done),
        thousands(planned)
    ))
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
        (TenantOutcome::ConfigFailed, "failed on configuration"),
        (TenantOutcome::Stopped, "stopped"),
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
    /// Action lines (as [`ActionLines`] says) and mailbox summaries too.
    Normal,
}

/// Which action lines to print (`--actions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionLines {
    /// Every action line, in plan order (`--actions all`).
    All,
    /// The first N lines of each kind per step (`--actions N`; `summary` is 0).
    First(usize),
}

impl Default for ActionLines {
    /// 20 of each kind per step: enough to see what a run does, a few KB even for 1,000 users.
    fn default() -> Self {
        ActionLines::First(20)
    }
}

impl std::str::FromStr for ActionLines {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all" => Ok(ActionLines::All),
            "summary" => Ok(ActionLines::First(0)),
            n => n
                .parse()
                .map(ActionLines::First)
                .map_err(|_| format!("`{s}` is not all, summary or a number of lines per kind")),
        }
    }
}

/// Failed and conflicting writes, failed mailboxes and data problems printed per tenant before
/// they are only counted: each is something to act on, but ten thousand of them are one cause,
/// and the report holds them all.
pub const MUST_READ_LINES: usize = 1_000;
/// Mailbox summary lines per tenant before they are only counted.
pub const MAILBOX_LINES: usize = 2_000;

/// `12345` → `12,345`.
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
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
        (ActionResult::Stopped, _) => "Not written, run stopped",
    }
}

/// `creates`, `updates`, `stamps`: how the "… and N more" line names a kind.
fn kind_plural(k: ActionKind) -> &'static str {
    match k {
        ActionKind::Create => "creates",
        ActionKind::Update => "updates",
        ActionKind::Stamp => "stamps",
        ActionKind::Delete => "deletes",
    }
}

/// One action as the script printed it (docs/compatibility.md §9), with the target appended:
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
    if a.reason == Some(super::DeleteReason::Withdrawn) {
        s.push_str(" (withdrawn: marked private by its owner)");
    }
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
/// stamps and failures; conflicts, writes not done for a stop, and repairs when there are any).
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
    if t.stopped > 0 {
        let _ = write!(s, ", Not written (run stopped): {}", t.stopped);
    }
    if t.repaired > 0 {
        let _ = write!(s, ", Repaired: {}", t.repaired);
    }
    s
}

/// Writes per target mailbox and folder, in the order the plan holds them.
#[derive(Default)]
struct MailboxCounts {
    created: usize,
    updated: usize,
    stamped: usize,
    deleted: usize,
    failed: usize,
    conflicts: usize,
    stopped: usize,
}

/// One line per mailbox and folder written (or planned): `Mailbox adele@c.com/Contacts:
/// created 40, updated 2, stamped 1, failed 0` — `would create …` in a dry run. Mailboxes
/// without a write print nothing, so a run in steady state prints none.
pub fn mailbox_lines(actions: &[ActionRecord], dry_run: bool) -> Vec<String> {
    let mut by: BTreeMap<(Folder, &str), MailboxCounts> = BTreeMap::new();
    for a in actions {
        let c = by.entry((a.folder, a.mailbox.as_str())).or_default();
        match (a.result, a.action) {
            (ActionResult::Done | ActionResult::Planned, ActionKind::Create) => c.created += 1,
            (ActionResult::Done | ActionResult::Planned, ActionKind::Update) => c.updated += 1,
            (ActionResult::Done | ActionResult::Planned, ActionKind::Stamp) => c.stamped += 1,
            (ActionResult::Done | ActionResult::Planned, ActionKind::Delete) => c.deleted += 1,
            (ActionResult::Failed, _) => c.failed += 1,
            (ActionResult::Conflict, _) => c.conflicts += 1,
            (ActionResult::Stopped, _) => c.stopped += 1,
        }
    }
    by.into_iter()
        .map(|((folder, mailbox), c)| {
            let mut s = if dry_run {
                format!(
                    "Mailbox {mailbox}/{folder}: would create {}, update {}, stamp {}",
                    c.created, c.updated, c.stamped
                )
            } else {
                format!(
                    "Mailbox {mailbox}/{folder}: created {}, updated {}, stamped {}, failed {}",
                    c.created, c.updated, c.stamped, c.failed
                )
            };
            if c.deleted > 0 {
                let verb = if dry_run { "delete" } else { "deleted" };
                let _ = write!(s, ", {verb} {}", c.deleted);
            }
            if c.conflicts > 0 {
                let _ = write!(s, ", changed since read {}", c.conflicts);
            }
            if c.stopped > 0 {
                let _ = write!(s, ", not written (run stopped) {}", c.stopped);
            }
            s
        })
        .collect()
}

/// Appends at most `cap` of `lines`, then `… and N more {what} (all in the report{hint})`.
fn capped(out: &mut Vec<String>, lines: Vec<String>, cap: usize, what: &str, hint: &str) {
    let n = lines.len();
    out.extend(lines.into_iter().take(cap));
    if n > cap {
        out.push(format!(
            "… and {} more {what} (all in the report{hint})",
            thousands(n - cap)
        ));
    }
}

const ALL_HINT: &str = "; --actions all prints every line";

/// The action lines of one tenant: every line in plan order with [`ActionLines::All`];
/// otherwise, per step and kind, the first lines of the writes done (or planned) and a count of
/// the rest, then every failed or conflicting write (up to [`MUST_READ_LINES`]), then one line for
/// the writes a stop left undone.
fn action_lines(out: &mut Vec<String>, actions: &[ActionRecord], lines: ActionLines, quiet: bool) {
    let must_read =
        |a: &&ActionRecord| matches!(a.result, ActionResult::Failed | ActionResult::Conflict);
    if lines == ActionLines::All && !quiet {
        out.extend(actions.iter().map(action_line));
        return;
    }
    let per_kind = match lines {
        ActionLines::First(n) if !quiet => n,
        _ => 0,
    };
    for step in [1u8, 2] {
        for kind in [
            ActionKind::Create,
            ActionKind::Update,
            ActionKind::Stamp,
            ActionKind::Delete,
        ] {
            let of_kind: Vec<&ActionRecord> = actions
                .iter()
                .filter(|a| a.step == step && a.action == kind)
                .filter(|a| matches!(a.result, ActionResult::Done | ActionResult::Planned))
                .collect();
            if per_kind == 0 || of_kind.is_empty() {
                continue;
            }
            out.extend(of_kind.iter().take(per_kind).map(|a| action_line(a)));
            if of_kind.len() > per_kind {
                out.push(format!(
                    "… and {} more {} in step {step} (all in the report{ALL_HINT})",
                    thousands(of_kind.len() - per_kind),
                    kind_plural(kind)
                ));
            }
        }
    }
    let failed: Vec<String> = actions.iter().filter(must_read).map(action_line).collect();
    capped(
        out,
        failed,
        MUST_READ_LINES,
        "failed or conflicting writes",
        "",
    );
    let stopped = actions
        .iter()
        .filter(|a| a.result == ActionResult::Stopped)
        .count();
    if stopped > 0 {
        out.push(format!(
            "Not written: {} writes, because the run stopped first; the next run completes them",
            thousands(stopped)
        ));
    }
}

/// The lines of a tenant's book changes after its action lines: opt-outs, report-only deletes and
/// privacy withdrawals (not with `-q`), then held deletes (also with `-q`: they need a decision) — each kind capped
/// at `per_kind` like the action lines — and last the line with the command that releases what
/// the brake held, always.
fn book_lines(
    out: &mut Vec<String>,
    b: &super::BookReport,
    per_kind: usize,
    quiet: bool,
    dry_run: bool,
) {
    if !quiet {
        let opt_outs = b.opt_outs.iter().map(super::opt_out_line).collect();
        capped(out, opt_outs, per_kind, "opt-outs", ALL_HINT);
        let would = b
            .would_delete
            .iter()
            .map(super::would_delete_line)
            .collect();
        capped(out, would, per_kind, "report-only deletes", ALL_HINT);
        let withdrawn = b
            .withdrawals
            .iter()
            .map(|w| super::withdrawn_line(w, dry_run))
            .collect();
        capped(out, withdrawn, per_kind, "withdrawals", ALL_HINT);
        let ended = b
            .withdrawals_ended
            .iter()
            .map(super::withdrawal_ended_line)
            .collect();
        capped(out, ended, per_kind, "withdrawals ended", ALL_HINT);
        let would = b
            .would_withdraw
            .iter()
            .map(super::would_withdraw_line)
            .collect();
        capped(out, would, per_kind, "report-only withdrawals", ALL_HINT);
    }
    let held = b.held_deletes.iter().map(super::held_line).collect();
    capped(out, held, per_kind, "held deletes", ALL_HINT);
    out.extend(super::release_line(b));
}

/// The human text for one tenant, in reading order.
pub fn tenant_text(
    t: &TenantReport,
    dry_run: bool,
    detail: Detail,
    lines: ActionLines,
) -> Vec<String> {
    let quiet = detail == Detail::Quiet;
    let mut out = Vec::new();
    out.push(format!(
        "== Tenant {}{} — hub {} ==",
        t.tenant_id,
        if dry_run { " (dry run)" } else { "" },
        t.hub
    ));
    let skipped = t
        .skipped_mailboxes
        .iter()
        .map(|m| format!("Skipped mailbox: {} — {}", m.mailbox, m.reason))
        .collect();
    capped(&mut out, skipped, MUST_READ_LINES, "skipped mailboxes", "");
    let failed = t
        .failed_mailboxes
        .iter()
        .map(|m| {
            let mut s = format!("Failed mailbox: {} — {}", m.mailbox, m.reason);
            if let Some(id) = &m.request_id
                && !m.reason.contains(id.as_str())
            {
                let _ = write!(s, " [request-id {id}]");
            }
            s
        })
        .collect();
    capped(&mut out, failed, MUST_READ_LINES, "failed mailboxes", "");
    if let Some(state) = t.state.as_deref().filter(|s| *s != "loaded") {
        out.push(format!(
            "State: {state} — first-run mode: nothing is deleted this run"
        ));
    }
    let problems = t
        .problems
        .iter()
        .map(|p| format!("Data problem: {p}"))
        .collect();
    capped(&mut out, problems, MUST_READ_LINES, "data problems", "");
    // Book lines are capped like action lines: the first N of each kind, or all.
    let per_kind = match lines {
        ActionLines::All => usize::MAX,
        ActionLines::First(n) => n,
    };
    if !quiet {
        let repairs = t.repairs.iter().map(super::repair_line).collect();
        capped(&mut out, repairs, per_kind, "repairs", ALL_HINT);
    }
    action_lines(&mut out, &t.actions, lines, quiet);
    book_lines(&mut out, &t.book, per_kind, quiet, dry_run);
    // A tenant that stopped before planning has no totals worth printing.
    let planned = t.hub_folder != HubFolder::Unknown;
    if planned && !quiet {
        let mailboxes = mailbox_lines(&t.actions, dry_run);
        capped(&mut out, mailboxes, MAILBOX_LINES, "mailboxes written", "");
    }
    if planned {
        out.push(totals_line(1, &t.step1));
        out.push(totals_line(2, &t.step2));
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
        TenantOutcome::ConfigFailed => "failed (configuration)",
        TenantOutcome::Stopped => "stopped",
    }
}
