//! What a run tells its reader: the script's per-action lines, per-step totals, the creation
//! summary (SPEC §2.9), failures with Graph request-ids, data problems — and the `--report FILE`
//! JSON (SPEC §6).
//!
//! This module only turns a finished [`RunReport`] into text or JSON; it never talks to Graph,
//! never decides an exit code (see `exit.rs`) and never receives a secret (no field here can hold
//! one: errors arrive already redacted by the client).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::exit::TenantOutcome;

/// The `--report` document: `{"dryRun", "tenants": [...]}` plus a top-level `error` when the
/// configuration was refused.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    pub dry_run: bool,
    /// A configuration error (exit code 2): nothing was written (and `dry_run` is true).
    pub error: Option<String>,
    /// The process exit code of this run (SPEC §6).
    pub exit_code: u8,
    pub tenants: Vec<TenantReport>,
}

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
    let count = |o: TenantOutcome| r.tenants.iter().filter(|t| t.outcome == o).count();
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
    format!(
        "Run finished{}: {} tenant(s) — {}{note}; exit code {}",
        if r.dry_run {
            " (dry run, nothing written)"
        } else {
            ""
        },
        r.tenants.len(),
        parts.join(", "),
        r.exit_code
    )
}

/// One tenant's part of the report.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantReport {
    pub tenant_id: String,
    /// `"ok"` or `"failed"` (SPEC §6); a partial run is `"failed"` with `outcome: "partial"`.
    pub status: &'static str,
    /// Finer than `status`: `ok`, `partial`, `failed`, `auth-failed`.
    pub outcome: TenantOutcome,
    pub error: Option<String>,
    /// Users in scope (hub removed), including those skipped for having no mailbox.
    pub users: usize,
    pub hub: String,
    /// `found`, `created`, `would-create` (dry run, folder missing) or `unknown` (tenant failed early).
    pub hub_folder: &'static str,
    pub step1: StepTotals,
    pub step2: StepTotals,
    /// HTTP requests sent to Graph and the token endpoint for this tenant (the client's count).
    pub requests: u64,
    pub skipped_mailboxes: Vec<MailboxNote>,
    pub failed_mailboxes: Vec<MailboxNote>,
    /// Data problems the planner found (duplicate keys in a folder, …): reported, never "fixed".
    pub problems: Vec<String>,
    pub actions: Vec<ActionRecord>,
}

impl TenantReport {
    /// A tenant that stopped before planning (token, user scope, hub).
    pub fn failed(tenant_id: &str, hub: &str, outcome: TenantOutcome, error: String) -> Self {
        Self {
            tenant_id: tenant_id.to_owned(),
            status: "failed",
            outcome,
            error: Some(error),
            users: 0,
            hub: hub.to_owned(),
            hub_folder: "unknown",
            step1: StepTotals::default(),
            step2: StepTotals::default(),
            requests: 0,
            skipped_mailboxes: Vec::new(),
            failed_mailboxes: Vec::new(),
            problems: Vec::new(),
            actions: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StepTotals {
    pub created: usize,
    pub updated: usize,
    /// Contact copies that were already up to date (or newer than the source).
    pub skipped: usize,
    pub stamped: usize,
    pub failed: usize,
    /// Writes refused with 412 because the contact changed after it was read (RELIABILITY I9);
    /// the next run syncs the newer version. Not a failure.
    pub conflicts: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MailboxNote {
    pub mailbox: String,
    pub reason: String,
    pub request_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Create,
    Update,
    Stamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionResult {
    Done,
    Planned,
    Failed,
    /// Refused with 412 (the contact changed after we read it); left for the next run.
    Conflict,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delta {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// One planned or performed write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRecord {
    pub step: u8,
    pub action: ActionKind,
    pub mailbox: String,
    /// `All Contacts` (the hub folder) or `Contacts` (a user's default folder).
    pub folder: String,
    pub sync_id: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub changed: Vec<String>,
    pub delta: Vec<Delta>,
    pub created_by: String,
    pub source_mailbox: String,
    pub result: ActionResult,
    pub error: Option<String>,
    pub request_id: Option<String>,
}

/// Totals of one step from its actions, plus the skipped count the planner reports.
pub fn totals(actions: &[ActionRecord], step: u8, skipped: usize) -> StepTotals {
    let mut t = StepTotals {
        skipped,
        ..StepTotals::default()
    };
    for a in actions.iter().filter(|a| a.step == step) {
        match a.result {
            ActionResult::Done | ActionResult::Planned => match a.action {
                ActionKind::Create => t.created += 1,
                ActionKind::Update => t.updated += 1,
                ActionKind::Stamp => t.stamped += 1,
            },
            ActionResult::Failed => t.failed += 1,
            ActionResult::Conflict => t.conflicts += 1,
        }
    }
    t
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
        (ActionResult::Done, ActionKind::Create) => "Created",
        (ActionResult::Done, ActionKind::Update) => "Updated",
        (ActionResult::Done, ActionKind::Stamp) => "Stamped",
        (ActionResult::Failed, ActionKind::Create) => "Failed to create",
        (ActionResult::Failed, ActionKind::Update) => "Failed to update",
        (ActionResult::Failed, ActionKind::Stamp) => "Failed to stamp",
        (ActionResult::Conflict, _) => "Changed since read, left for next run",
    }
}

/// One action as the script printed it (SPEC §2.9), with the target appended:
/// `Would update: NotesId=<id> | Name (email) | Changed: a, b | Delta: a: 'x' -> 'y'; b: '' -> 'z' | in user@x/Contacts`.
pub fn action_line(a: &ActionRecord) -> String {
    let mut s = format!("{}: NotesId={} | {}", verb(a), a.sync_id, name_email(a));
    if a.action == ActionKind::Update && !a.changed.is_empty() {
        let _ = write!(s, " | Changed: {}", a.changed.join(", "));
        if !a.delta.is_empty() {
            let d: Vec<String> = a
                .delta
                .iter()
                .map(|d| format!("{}: '{}' -> '{}'", d.field, d.old, d.new))
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
    if t.conflicts > 0 {
        let _ = write!(s, ", Changed since read: {}", t.conflicts);
    }
    s
}

/// The creation summary of one step: actions grouped by (CreatedBy, target mailbox, folder),
/// each listed as `[Action] name <email> | SyncId: id`. Stamps are left out (they change no data).
pub fn creation_summary(actions: &[ActionRecord], step: u8) -> Vec<String> {
    let mut groups: BTreeMap<(String, String, String), Vec<&ActionRecord>> = BTreeMap::new();
    for a in actions
        .iter()
        .filter(|a| a.step == step && a.action != ActionKind::Stamp)
    {
        groups
            .entry((a.created_by.clone(), a.mailbox.clone(), a.folder.clone()))
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
    for p in &t.problems {
        out.push(format!("Data problem: {p}"));
    }
    for a in &t.actions {
        let always = matches!(a.result, ActionResult::Failed | ActionResult::Conflict);
        if always || detail == Detail::Normal {
            out.push(action_line(a));
        }
    }
    // A tenant that stopped before planning has no totals worth printing.
    let planned = t.hub_folder != "unknown";
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
            "Tenant {}: {} ({} users, {} skipped without mailbox, {} requests)",
            t.tenant_id,
            outcome_word(o),
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

/// Writes the JSON report to `path` (pretty, UTF-8), streamed: a 1,000-user cold run reports
/// 300,000 actions, 170 MB of JSON that as one buffer was the run's peak memory (issue 8).
pub fn write_json(report: &RunReport, path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(&mut out, report).map_err(std::io::Error::other)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(step: u8, kind: ActionKind, result: ActionResult) -> ActionRecord {
        ActionRecord {
            step,
            action: kind,
            mailbox: if step == 1 {
                "hub@c.com"
            } else {
                "adele@c.com"
            }
            .into(),
            folder: if step == 1 {
                "All Contacts"
            } else {
                "Contacts"
            }
            .into(),
            sync_id: "0b6c7f7e-0000-4000-8000-000000000001".into(),
            display_name: Some("Alex Wilber".into()),
            email: Some("alex@c.com".into()),
            changed: vec!["jobTitle".into(), "mobilePhone".into()],
            delta: vec![
                Delta {
                    field: "jobTitle".into(),
                    old: "Dev".into(),
                    new: "Lead".into(),
                },
                Delta {
                    field: "mobilePhone".into(),
                    old: "+1 555".into(),
                    new: "".into(),
                },
            ],
            created_by: "adele@c.com".into(),
            source_mailbox: "adele@c.com".into(),
            result,
            error: None,
            request_id: None,
        }
    }

    #[test]
    fn script_lines_keep_their_greppable_prefixes() {
        let c = action(1, ActionKind::Create, ActionResult::Planned);
        assert_eq!(
            action_line(&c),
            "Would create: NotesId=0b6c7f7e-0000-4000-8000-000000000001 | Alex Wilber (alex@c.com) | in hub@c.com/All Contacts"
        );
        let u = action(2, ActionKind::Update, ActionResult::Done);
        assert_eq!(
            action_line(&u),
            "Updated: NotesId=0b6c7f7e-0000-4000-8000-000000000001 | Alex Wilber (alex@c.com) | Changed: jobTitle, mobilePhone | Delta: jobTitle: 'Dev' -> 'Lead'; mobilePhone: '+1 555' -> '' | in adele@c.com/Contacts"
        );
        let mut f = action(2, ActionKind::Stamp, ActionResult::Failed);
        f.error = Some("Access is denied (HTTP 403 ErrorAccessDenied)".into());
        f.request_id = Some("rid-1".into());
        let line = action_line(&f);
        assert!(line.starts_with("Failed to stamp: NotesId="), "{line}");
        assert!(
            line.ends_with(
                "error: Access is denied (HTTP 403 ErrorAccessDenied) [request-id rid-1]"
            ),
            "{line}"
        );
    }

    #[test]
    fn totals_count_by_result_and_kind() {
        let actions = vec![
            action(1, ActionKind::Create, ActionResult::Done),
            action(1, ActionKind::Create, ActionResult::Failed),
            action(1, ActionKind::Stamp, ActionResult::Done),
            action(2, ActionKind::Update, ActionResult::Planned),
            action(2, ActionKind::Update, ActionResult::Conflict),
        ];
        let t1 = totals(&actions, 1, 7);
        assert_eq!(
            t1,
            StepTotals {
                created: 1,
                updated: 0,
                skipped: 7,
                stamped: 1,
                failed: 1,
                conflicts: 0
            }
        );
        assert_eq!(
            totals_line(1, &t1),
            "Step1 - Created: 1, Updated: 0, Skipped: 7, Stamped: 1, Failed: 1"
        );
        let t2 = totals(&actions, 2, 0);
        assert_eq!((t2.updated, t2.conflicts), (1, 1));
        assert!(totals_line(2, &t2).ends_with(", Changed since read: 1"));
    }

    #[test]
    fn creation_summary_groups_by_creator_mailbox_and_folder() {
        let mut a = action(2, ActionKind::Create, ActionResult::Done);
        let mut b = action(2, ActionKind::Create, ActionResult::Done);
        b.created_by = "zoe@c.com".into();
        let stamp = action(2, ActionKind::Stamp, ActionResult::Done);
        a.display_name = Some("Ann".into());
        let lines = creation_summary(&[b, a, stamp], 2);
        assert_eq!(lines[0], "Step2 summary:");
        assert_eq!(
            lines[1],
            "  CreatedBy adele@c.com -> adele@c.com / Contacts (1)"
        );
        assert_eq!(
            lines[2],
            "    [Created] Ann <alex@c.com> | SyncId: 0b6c7f7e-0000-4000-8000-000000000001"
        );
        assert_eq!(
            lines[3],
            "  CreatedBy zoe@c.com -> adele@c.com / Contacts (1)"
        );
        assert_eq!(
            lines.len(),
            5,
            "stamps are not in the creation summary: {lines:?}"
        );
        assert!(creation_summary(&[], 1).is_empty());
    }

    #[test]
    fn quiet_text_keeps_failures_and_totals_only() {
        let mut t = TenantReport::failed("t", "hub@c.com", TenantOutcome::Partial, String::new());
        t.error = None;
        t.hub_folder = "found";
        t.actions = vec![
            action(1, ActionKind::Create, ActionResult::Done),
            action(1, ActionKind::Create, ActionResult::Failed),
        ];
        t.failed_mailboxes.push(MailboxNote {
            mailbox: "bob@c.com".into(),
            reason: "Access to OData is disabled.".into(),
            request_id: Some("rid-9".into()),
        });
        let quiet = tenant_text(&t, false, Detail::Quiet);
        assert!(quiet.iter().any(|l| l.starts_with("Failed to create:")));
        assert!(!quiet.iter().any(|l| l.starts_with("Created:")));
        assert!(
            quiet.iter().any(|l| l
                == "Failed mailbox: bob@c.com — Access to OData is disabled. [request-id rid-9]")
        );
        let normal = tenant_text(&t, false, Detail::Normal);
        assert!(normal.iter().any(|l| l.starts_with("Created:")));
        assert!(normal.iter().any(|l| l == "Step1 summary:"));
        let failed = TenantReport::failed("t", "h", TenantOutcome::AuthFailed, "no token".into());
        let text = tenant_text(&failed, false, Detail::Normal);
        assert!(!text.iter().any(|l| l.starts_with("Step1")), "{text:?}");
        assert!(text.last().unwrap().ends_with("— no token"), "{text:?}");
    }

    #[test]
    fn json_report_has_the_spec_keys() {
        let mut t = TenantReport::failed("t", "hub@c.com", TenantOutcome::Ok, String::new());
        t.status = "ok";
        t.error = None;
        t.actions = vec![action(1, ActionKind::Create, ActionResult::Planned)];
        let r = RunReport {
            dry_run: true,
            error: None,
            exit_code: 0,
            tenants: vec![t],
        };
        assert_eq!(
            run_summary(&r),
            "Run finished (dry run, nothing written): 1 tenant(s) — 1 ok; exit code 0"
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["dryRun"], true);
        assert_eq!(v["exitCode"], 0);
        let t = &v["tenants"][0];
        for k in [
            "tenantId", "status", "error", "users", "step1", "step2", "requests", "actions",
        ] {
            assert!(t.get(k).is_some(), "{k} missing in {t}");
        }
        for k in ["created", "updated", "skipped", "stamped", "failed"] {
            assert!(t["step1"].get(k).is_some(), "step1.{k}");
        }
        let a = &t["actions"][0];
        assert_eq!(a["step"], 1);
        assert_eq!(a["action"], "create");
        assert_eq!(a["result"], "planned");
        for k in ["mailbox", "syncId", "displayName", "email", "changed"] {
            assert!(a.get(k).is_some(), "action.{k}");
        }
    }
}
