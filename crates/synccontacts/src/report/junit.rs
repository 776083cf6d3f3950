//! The `--junit FILE` document: the run as a JUnit XML unit test report, so GitLab shows each
//! tenant's stages in the pipeline's Tests tab (`artifacts:reports:junit`).
//!
//! What GitLab reads (docs.gitlab.com, ci/testing/unit_test_reports, "JUnit XML format
//! specification", and its parser, gitlab-org/gitlab lib/gitlab/ci/parsers/test/junit.rb):
//! - `testsuites` > `testsuite` > `testcase`. A case's `classname` is shown as its suite (the
//!   `testsuite` `name` is parsed but not shown), its `name` as the test; `file` and `time`
//!   (seconds) are optional and not written here (the report has no timings).
//! - A case's status is its child element: `failure` → failed, `error` → error, `skipped` →
//!   skipped, none → success. What GitLab shows is the element's *text*, not its `message`
//!   attribute, so both are written (other readers show the attribute). A case's `system-out`
//!   is appended to a failure's text only; a passing case's output and all `properties` are
//!   ignored.
//! - Cases are keyed by `classname` + `name`: a duplicate is dropped, so every name here is
//!   unique within its tenant. A file must stay under 30 MB (100 MB for all of a job's files);
//!   GitLab.com parses at most 500,000 cases per report.
//!
//! The shape: one `testsuite` per tenant, its `name` and every `classname` the tenant's label,
//! with the cases `configuration`, `token`, `permissions`, `hub` and one `mailbox <UPN>` per
//! user mailbox in scope: N + 4 cases for N mailboxes (a tenant that stopped before reading has
//! none). A stage after the one that stopped the tenant is `skipped` ("not reached"); a mailbox
//! without an Exchange mailbox is `skipped`; every failure carries Graph's request-id. A dry run
//! fails and passes the same cases (planned writes pass), says so in each suite's `dryRun`
//! property and in every case's `system-out` (shown beside a failure). A tenant the run's stop
//! kept from starting, or cut short while it wrote (a signal, the deadline, an endpoint gone),
//! fails one more case, `run`, with its last line's words. A configuration error
//! (exit 2) writes one suite `synccontacts` with one failing `configuration` case. Held deletes
//! (issue 12; exit 4 when the brake held them) fail one more case, `deletes held`
//! ([`deletes_held`]), which ends with the command that releases them.
//!
//! Built from the [`RunReport`] only, which holds no secret (errors arrive redacted): this
//! module never talks to Graph, never decides an exit code, and never writes anything but the
//! file it is given. Text is escaped for XML 1.0 ([`escape`]); user data (names, errors) can
//! never break the document.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::Write as _;

use super::{
    ActionKind, ActionRecord, ActionResult, Folder, HubFolder, MailboxNote, RunReport, Stage,
    TenantReport, action_line,
};
use crate::exit::TenantOutcome;

/// The suite and class of a run refused for its configuration (no tenant was selected).
const RUN_SUITE: &str = "synccontacts";
/// Failed writes listed in one case's text; the rest are counted (the `--report` file has all).
const MAX_LISTED: usize = 20;
/// Longest line kept in a failure's text (an update's delta can hold a whole notes field).
const MAX_LINE: usize = 2000;
/// Longest `message` attribute (its first line).
const MAX_MESSAGE: usize = 300;
const DRY_RUN_NOTE: &str = "dry run: nothing was written; writes are planned, not done";

/// Writes the JUnit XML of `report` to `path` (UTF-8), one tenant's suite at a time.
pub fn write_junit(report: &RunReport, path: &std::path::Path) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    write_to(report, &mut out)?;
    out.flush()
}

fn write_to(report: &RunReport, out: &mut impl std::io::Write) -> std::io::Result<()> {
    let suites: Vec<Suite> = match &report.error {
        Some(e) => vec![refused_suite(e)],
        None => report
            .tenants
            .iter()
            .map(|t| tenant_suite(t, report.dry_run))
            .collect(),
    };
    let count = |f: fn(&Case) -> bool| {
        suites
            .iter()
            .flat_map(|s| &s.cases)
            .filter(|c| f(c))
            .count()
    };
    let tests = count(|_| true);
    let failures = count(|c| matches!(c.status, Status::Failed { .. }));
    let skipped = count(|c| matches!(c.status, Status::Skipped { .. }));
    let name = if report.dry_run && report.error.is_none() {
        "synccontacts sync (dry run)"
    } else {
        "synccontacts sync"
    };
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    writeln!(
        out,
        r#"<testsuites name="{name}" tests="{tests}" failures="{failures}" errors="0" skipped="{skipped}">"#
    )?;
    for s in &suites {
        out.write_all(s.xml().as_bytes())?;
    }
    writeln!(out, "</testsuites>")
}

/// One `testsuite`: a tenant, or the refused run.
struct Suite {
    /// The `name` and every case's `classname`.
    name: String,
    properties: Vec<(&'static str, String)>,
    cases: Vec<Case>,
}

struct Case {
    name: String,
    status: Status,
    /// The case's `system-out` lines (GitLab shows them after a failure's text).
    out: Vec<String>,
}

enum Status {
    Passed,
    Failed { text: String },
    Skipped { text: String },
}

impl Case {
    fn new(name: impl Into<String>, status: Status) -> Self {
        Self {
            name: name.into(),
            status,
            out: Vec::new(),
        }
    }
    fn passed(name: impl Into<String>) -> Self {
        Self::new(name, Status::Passed)
    }
    fn failed(name: impl Into<String>, text: String) -> Self {
        Self::new(name, Status::Failed { text })
    }
    fn skipped(name: impl Into<String>, text: String) -> Self {
        Self::new(name, Status::Skipped { text })
    }
}

impl Suite {
    fn xml(&self) -> String {
        let count = |f: fn(&Status) -> bool| self.cases.iter().filter(|c| f(&c.status)).count();
        let mut x = String::new();
        let _ = writeln!(
            x,
            r#"  <testsuite name="{}" tests="{}" failures="{}" errors="0" skipped="{}">"#,
            attr(&self.name),
            self.cases.len(),
            count(|s| matches!(s, Status::Failed { .. })),
            count(|s| matches!(s, Status::Skipped { .. })),
        );
        if !self.properties.is_empty() {
            x.push_str("    <properties>\n");
            for (k, v) in &self.properties {
                let _ = writeln!(x, r#"      <property name="{k}" value="{}"/>"#, attr(v));
            }
            x.push_str("    </properties>\n");
        }
        for c in &self.cases {
            let _ = write!(
                x,
                r#"    <testcase classname="{}" name="{}""#,
                attr(&self.name),
                attr(&c.name)
            );
            if matches!(c.status, Status::Passed) && c.out.is_empty() {
                x.push_str("/>\n");
                continue;
            }
            x.push_str(">\n");
            match &c.status {
                Status::Passed => {}
                Status::Failed { text } => {
                    let _ = writeln!(
                        x,
                        r#"      <failure message="{}">{}</failure>"#,
                        attr(&message_of(text)),
                        escape(text, false)
                    );
                }
                Status::Skipped { text } => {
                    let _ = writeln!(
                        x,
                        r#"      <skipped message="{}">{}</skipped>"#,
                        attr(&message_of(text)),
                        escape(text, false)
                    );
                }
            }
            if !c.out.is_empty() {
                let _ = writeln!(
                    x,
                    "      <system-out>{}</system-out>",
                    escape(&c.out.join("\n"), false)
                );
            }
            x.push_str("    </testcase>\n");
        }
        x.push_str("  </testsuite>\n");
        x
    }
}

/// The run refused for its configuration (exit 2): nothing ran, so one failing case says why.
fn refused_suite(error: &str) -> Suite {
    Suite {
        name: RUN_SUITE.into(),
        properties: vec![("dryRun", "true".into())],
        cases: vec![Case::failed("configuration", capped_text(error))],
    }
}

fn tenant_suite(t: &TenantReport, dry_run: bool) -> Suite {
    let name = if t.stages.label.is_empty() {
        t.tenant_id.clone()
    } else {
        t.stages.label.clone()
    };
    let mut cases = vec![Case::passed("configuration")];
    cases.extend(stage_cases(t));
    cases.push(hub_case(t));
    cases.extend(mailbox_cases(t));
    cases.extend(deletes_held(t));
    if dry_run {
        for c in &mut cases {
            c.out.insert(0, DRY_RUN_NOTE.into());
        }
    }
    Suite {
        name,
        properties: vec![
            ("dryRun", dry_run.to_string()),
            ("tenantId", t.tenant_id.clone()),
            ("outcome", outcome_name(t.outcome)),
            ("hub", t.hub.clone()),
            ("hubFolder", hub_folder_name(t.hub_folder).into()),
            ("users", t.users.to_string()),
            ("requests", t.requests.to_string()),
        ],
        cases,
    }
}

/// Whether the tenant stopped before planning (as opposed to ran, fully or partly): it never
/// learnt its hub folder, and did not end ok — whatever the outcome's class (a credential, a
/// missing hub, the run's stop; issue 16's `config-failed` and `stopped` too).
fn stopped(t: &TenantReport) -> bool {
    t.hub_folder == HubFolder::Unknown && t.outcome != TenantOutcome::Ok
}

/// Whether a tenant that planned was cut short while writing (the run's stop, an endpoint gone):
/// its stages passed and its writes not done are `stopped`, not failed, so only a `run` case
/// can show it.
fn cut_short(t: &TenantReport) -> bool {
    !stopped(t) && matches!(t.outcome, TenantOutcome::Stopped | TenantOutcome::Failed)
}

/// `token` and `permissions`, plus a failing `run` when a stopped tenant does not say where it
/// stopped (a tenant the run's stop kept from starting) or when its writes were cut short.
fn stage_cases(t: &TenantReport) -> Vec<Case> {
    let error = t.error.clone().unwrap_or_default();
    let mut cases = Vec::new();
    for (stage, name) in [(Stage::Token, "token"), (Stage::Permissions, "permissions")] {
        cases.push(stage_case(t, stage, name, &error));
    }
    if (stopped(t) && t.stages.stopped_at.is_none()) || cut_short(t) {
        cases.push(Case::failed("run", capped_text(&error)));
    }
    cases
}

/// A stage's case: failed when the tenant stopped there, skipped when it stopped earlier (or at
/// an unknown stage), passed when it got past it.
fn stage_case(t: &TenantReport, stage: Stage, name: &str, error: &str) -> Case {
    if !stopped(t) {
        return Case::passed(name);
    }
    match t.stages.stopped_at {
        Some(at) if at == stage => Case::failed(name, capped_text(error)),
        Some(at) if at < stage => Case::skipped(
            name,
            format!("not reached: the tenant stopped at its {}", stage_name(at)),
        ),
        Some(_) => Case::passed(name),
        None => Case::skipped(
            name,
            "not reached: the tenant stopped (see the run case)".into(),
        ),
    }
}

fn stage_name(s: Stage) -> &'static str {
    match s {
        Stage::Token => "token",
        Stage::Permissions => "permissions",
        Stage::Hub => "hub",
    }
}

/// `hub`: the shared mailbox, its "All Contacts" (found or created) and its read, then the
/// step 1 writes into it.
fn hub_case(t: &TenantReport) -> Case {
    let error = t.error.clone().unwrap_or_default();
    let mut case = stage_case(t, Stage::Hub, "hub", &error);
    if stopped(t) {
        return case;
    }
    let writes: Vec<&ActionRecord> = t
        .actions
        .iter()
        .filter(|a| a.folder == Folder::Hub)
        .collect();
    if let Some(text) = failed_writes(&writes) {
        case.status = Status::Failed { text };
    }
    case.out.push(format!(
        "{} in {}: {}",
        Folder::Hub,
        t.hub,
        hub_folder_name(t.hub_folder)
    ));
    case.out.extend(write_counts(&writes));
    case
}

/// One case per user mailbox in scope, sorted as the run reads them (case-insensitively).
fn mailbox_cases(t: &TenantReport) -> Vec<Case> {
    let mut writes: HashMap<&str, Vec<&ActionRecord>> = HashMap::new();
    for a in t.actions.iter().filter(|a| a.folder == Folder::UserDefault) {
        writes.entry(a.mailbox.as_str()).or_default().push(a);
    }
    let mut notes: HashMap<&str, (&MailboxNote, bool)> = HashMap::new();
    for m in &t.skipped_mailboxes {
        notes.insert(m.mailbox.as_str(), (m, true));
    }
    for m in &t.failed_mailboxes {
        notes.insert(m.mailbox.as_str(), (m, false));
    }
    let mut names: BTreeSet<(String, &str)> = BTreeSet::new();
    let all = t
        .stages
        .read
        .iter()
        .map(String::as_str)
        .chain(notes.keys().copied())
        .chain(writes.keys().copied());
    for m in all {
        names.insert((m.to_lowercase(), m));
    }
    names
        .into_iter()
        .map(|(_, m)| {
            let name = format!("mailbox {m}");
            let mine = writes.get(m).map(Vec::as_slice).unwrap_or_default();
            let mut case = match notes.get(m) {
                Some((note, true)) => Case::skipped(name, note_text(note)),
                Some((note, false)) => Case::failed(name, note_text(note)),
                None => match failed_writes(mine) {
                    Some(text) => Case::failed(name, text),
                    None => Case::passed(name),
                },
            };
            case.out.extend(write_counts(mine));
            case
        })
        .collect()
}

/// Issue 12's held deletes: a failing `deletes held` case after the mailboxes (then a tenant
/// has N + 5 cases) when the tenant held any — by the brake (exit code 4: its text ends with
/// the command that releases them) or after a bad read of the hub — listing what was held, at
/// most [`MAX_LISTED`].
fn deletes_held(t: &TenantReport) -> Option<Case> {
    let held = &t.book.held_deletes;
    if held.is_empty() {
        return None;
    }
    let mut text = format!(
        "{} deletion(s) from the company book held: nothing of them was deleted this run",
        held.len()
    );
    for h in held.iter().take(MAX_LISTED) {
        text.push('\n');
        text.push_str(&capped_line(&super::held_line(h)));
    }
    if held.len() > MAX_LISTED {
        let _ = write!(
            text,
            "\n… and {} more (the --report file lists every held delete)",
            held.len() - MAX_LISTED
        );
    }
    if let Some(line) = super::release_line(&t.book) {
        text.push('\n');
        text.push_str(&line);
    }
    Some(Case::failed("deletes held", text))
}

/// A failure's text for the failed writes among `writes`, `None` when none failed: one line per
/// write (its action line, with the error and request-id), at most [`MAX_LISTED`].
fn failed_writes(writes: &[&ActionRecord]) -> Option<String> {
    let failed: Vec<&&ActionRecord> = writes
        .iter()
        .filter(|a| a.result == ActionResult::Failed)
        .collect();
    if failed.is_empty() {
        return None;
    }
    let mut text = format!(
        "{} write(s) failed; the run is safe to repeat",
        failed.len()
    );
    for a in failed.iter().take(MAX_LISTED) {
        text.push('\n');
        text.push_str(&capped_line(&action_line(a)));
    }
    if failed.len() > MAX_LISTED {
        let _ = write!(
            text,
            "\n… and {} more (the --report file lists every write)",
            failed.len() - MAX_LISTED
        );
    }
    Some(text)
}

/// `written: 2 created, 1 updated` (or `planned:` in a dry run), and the 412 conflicts.
fn write_counts(writes: &[&ActionRecord]) -> Vec<String> {
    let mut out = Vec::new();
    let count = |r: ActionResult, k: ActionKind| {
        writes
            .iter()
            .filter(|a| a.result == r && a.action == k)
            .count()
    };
    for (r, label) in [
        (ActionResult::Done, "written"),
        (ActionResult::Planned, "planned"),
    ] {
        let parts: Vec<String> = [
            (ActionKind::Create, "created"),
            (ActionKind::Update, "updated"),
            (ActionKind::Stamp, "stamped"),
            (ActionKind::Delete, "deleted"),
        ]
        .into_iter()
        .map(|(k, word)| (count(r, k), word))
        .filter(|(n, _)| *n > 0)
        .map(|(n, word)| format!("{n} {word}"))
        .collect();
        if !parts.is_empty() {
            out.push(format!("{label}: {}", parts.join(", ")));
        }
    }
    let conflicts = writes
        .iter()
        .filter(|a| a.result == ActionResult::Conflict)
        .count();
    if conflicts > 0 {
        out.push(format!(
            "{conflicts} write(s) refused with 412: the contact changed after it was read; the \
             next run syncs the newer version"
        ));
    }
    out
}

/// A mailbox note's reason, with its request-id when the reason does not name it already.
fn note_text(m: &MailboxNote) -> String {
    match &m.request_id {
        Some(id) if !m.reason.contains(id.as_str()) => {
            capped_line(&format!("{} [request-id {id}]", m.reason))
        }
        _ => capped_line(&m.reason),
    }
}

fn outcome_name(o: TenantOutcome) -> String {
    serde_json::to_value(o)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn hub_folder_name(f: HubFolder) -> &'static str {
    match f {
        HubFolder::Found => "found",
        HubFolder::Created => "created",
        HubFolder::WouldCreate => "would be created",
        HubFolder::Unknown => "not looked up",
    }
}

/// A failure text with every line capped (a configuration error lists every problem).
fn capped_text(s: &str) -> String {
    s.lines().map(capped_line).collect::<Vec<_>>().join("\n")
}

fn capped_line(s: &str) -> String {
    cap(s, MAX_LINE)
}

/// The `message` attribute: the text's first line, capped.
fn message_of(text: &str) -> String {
    cap(text.lines().next().unwrap_or(""), MAX_MESSAGE)
}

/// At most `max` characters, with `…` when cut.
fn cap(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn attr(s: &str) -> String {
    escape(s, true)
}

/// `s` as XML 1.0 character data (`attr`: inside a double-quoted attribute value).
///
/// `&`, `<`, `>` become entities; in attributes also `"` and tab, line feed and carriage return
/// (as character references, which attribute-value normalisation keeps). A carriage return in
/// text is a reference too (a parser turns a literal CR LF into LF). Characters XML 1.0 cannot
/// carry in any form — C0 controls other than tab, LF, CR, and U+FFFE/U+FFFF — become U+FFFD;
/// DEL and the C1 controls, allowed but invisible, become character references.
fn escape(s: &str, attr: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if attr => out.push_str("&quot;"),
            '\t' | '\n' if attr => {
                let _ = write!(out, "&#{};", u32::from(c));
            }
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            '\u{7f}'..='\u{9f}' => {
                let _ = write!(out, "&#x{:X};", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests;
