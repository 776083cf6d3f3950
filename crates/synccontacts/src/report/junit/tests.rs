//! The `--junit` document, read back the way GitLab reads it: parsed by a strict XML 1.0 reader
//! (roxmltree), a case's status taken from its child element, its text from that element's text.

use std::collections::BTreeMap;

use super::*;
use crate::report::{Delta, StageFacts, TenantStatus, totals};
use sync_engine::Field;

/// A `testcase` as GitLab sees it.
#[derive(Debug)]
struct SeenCase {
    classname: String,
    name: String,
    /// `failed`, `error`, `skipped` or `success` (GitLab's statuses).
    status: &'static str,
    /// The text of the `failure`/`error`/`skipped` element.
    text: String,
    message: Option<String>,
    system_out: Option<String>,
}

#[derive(Debug)]
struct SeenSuite {
    name: String,
    attrs: BTreeMap<String, String>,
    properties: BTreeMap<String, String>,
    cases: Vec<SeenCase>,
}

impl SeenSuite {
    fn case(&self, name: &str) -> &SeenCase {
        self.cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no case {name} in {:?}", self.cases))
    }
    fn names(&self) -> Vec<&str> {
        self.cases.iter().map(|c| c.name.as_str()).collect()
    }
    fn count(&self, status: &str) -> usize {
        self.cases.iter().filter(|c| c.status == status).count()
    }
}

fn xml_of(r: &RunReport) -> String {
    let mut out = Vec::new();
    write_to(r, &mut out).unwrap();
    String::from_utf8(out).expect("UTF-8")
}

/// Parses the document and checks what holds for every file: one `testsuites` root of
/// `testsuite`s of `testcase`s, each case at most one status element, the counts in the
/// attributes equal to the cases, every classname its suite's name, no duplicate case.
fn read(xml: &str) -> Vec<SeenSuite> {
    let doc = roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let mut suites = Vec::new();
    for s in root.children().filter(roxmltree::Node::is_element) {
        assert_eq!(s.tag_name().name(), "testsuite");
        let attrs: BTreeMap<String, String> = s
            .attributes()
            .map(|a| (a.name().to_owned(), a.value().to_owned()))
            .collect();
        let mut properties = BTreeMap::new();
        let mut cases = Vec::new();
        for c in s.children().filter(roxmltree::Node::is_element) {
            match c.tag_name().name() {
                "properties" => {
                    for p in c.children().filter(roxmltree::Node::is_element) {
                        assert_eq!(p.tag_name().name(), "property");
                        properties.insert(
                            p.attribute("name").unwrap().to_owned(),
                            p.attribute("value").unwrap().to_owned(),
                        );
                    }
                }
                "testcase" => {
                    let mut case = SeenCase {
                        classname: c.attribute("classname").expect("classname").to_owned(),
                        name: c.attribute("name").expect("name").to_owned(),
                        status: "success",
                        text: String::new(),
                        message: None,
                        system_out: None,
                    };
                    for e in c.children().filter(roxmltree::Node::is_element) {
                        let text = e.text().unwrap_or("").to_owned();
                        match e.tag_name().name() {
                            n @ ("failure" | "error" | "skipped") => {
                                assert_eq!(case.status, "success", "two statuses: {xml}");
                                case.status = match n {
                                    "failure" => "failed",
                                    "error" => "error",
                                    _ => "skipped",
                                };
                                assert!(!text.is_empty(), "GitLab shows the text: {xml}");
                                case.text = text;
                                case.message = e.attribute("message").map(str::to_owned);
                            }
                            "system-out" => case.system_out = Some(text),
                            other => panic!("unexpected <{other}> in a testcase"),
                        }
                    }
                    cases.push(case);
                }
                other => panic!("unexpected <{other}> in a testsuite"),
            }
        }
        let suite = SeenSuite {
            name: attrs["name"].clone(),
            attrs,
            properties,
            cases,
        };
        assert_eq!(suite.attrs["tests"], suite.cases.len().to_string());
        assert_eq!(suite.attrs["failures"], suite.count("failed").to_string());
        assert_eq!(suite.attrs["skipped"], suite.count("skipped").to_string());
        assert_eq!(suite.attrs["errors"], "0");
        let mut keys = std::collections::HashSet::new();
        for c in &suite.cases {
            assert_eq!(
                c.classname, suite.name,
                "GitLab shows classname as the suite"
            );
            assert!(
                keys.insert(&c.name),
                "duplicate case {} (GitLab drops it)",
                c.name
            );
        }
        suites.push(suite);
    }
    let total = |f: fn(&SeenSuite) -> usize| suites.iter().map(f).sum::<usize>().to_string();
    assert_eq!(root.attribute("tests").unwrap(), total(|s| s.cases.len()));
    assert_eq!(
        root.attribute("failures").unwrap(),
        total(|s| s.count("failed"))
    );
    assert_eq!(
        root.attribute("skipped").unwrap(),
        total(|s| s.count("skipped"))
    );
    suites
}

fn write(step: u8, kind: ActionKind, result: ActionResult, mailbox: &str) -> ActionRecord {
    ActionRecord {
        step,
        action: kind,
        mailbox: mailbox.into(),
        folder: if step == 1 {
            Folder::Hub
        } else {
            Folder::UserDefault
        },
        sync_id: "0b6c7f7e-0000-4000-8000-000000000001".into(),
        display_name: Some("Alex Wilber".into()),
        email: Some("alex@c.com".into()),
        changed: vec![Field::JobTitle],
        delta: vec![Delta {
            field: Field::JobTitle,
            old: "Dev".into(),
            new: "Lead".into(),
        }],
        created_by: "adele@c.com".into(),
        source_mailbox: "adele@c.com".into(),
        result,
        error: None,
        request_id: None,
        reason: None,
    }
}

fn failing(mut a: ActionRecord, error: &str, rid: &str) -> ActionRecord {
    a.error = Some(error.into());
    a.request_id = Some(rid.into());
    a
}

/// A tenant that planned: 3 mailboxes read (one with a failed write, one with a conflict),
/// one skipped for having no mailbox, one that could not be read.
fn ran() -> TenantReport {
    let mut t = TenantReport::failed("t1", "hub@c.com", TenantOutcome::Partial, String::new());
    t.status = TenantStatus::Failed;
    t.error = Some("1 mailbox(es) could not be read and 1 write(s) failed".into());
    t.hub_folder = HubFolder::Found;
    t.users = 5;
    t.actions = vec![
        write(1, ActionKind::Create, ActionResult::Done, "hub@c.com"),
        write(2, ActionKind::Create, ActionResult::Done, "adele@c.com"),
        failing(
            write(2, ActionKind::Update, ActionResult::Failed, "Bob@c.com"),
            "Access is denied (HTTP 403 ErrorAccessDenied)",
            "rid-write",
        ),
        write(2, ActionKind::Update, ActionResult::Conflict, "carla@c.com"),
    ];
    t.step1 = totals(&t.actions, 1, 0, 0);
    t.step2 = totals(&t.actions, 2, 0, 0);
    t.skipped_mailboxes.push(MailboxNote {
        mailbox: "room@c.com".into(),
        reason: "no Exchange Online mailbox (MailboxNotEnabledForRESTAPI)".into(),
        request_id: Some("rid-room".into()),
    });
    t.failed_mailboxes.push(MailboxNote {
        mailbox: "dan@c.com".into(),
        reason: "Access to OData is disabled. (HTTP 403 ErrorAccessDenied)".into(),
        request_id: Some("rid-dan".into()),
    });
    t.stages = StageFacts {
        label: "t1 (c.com)".into(),
        stopped_at: None,
        read: vec![
            "adele@c.com".into(),
            "Bob@c.com".into(),
            "carla@c.com".into(),
        ],
    };
    t
}

fn stopped_at(stage: Option<Stage>, outcome: TenantOutcome, error: &str) -> TenantReport {
    let mut t = TenantReport::failed("t2", "hub@d.com", outcome, error.into());
    t.stages.stopped_at = stage;
    t
}

fn run_of(dry_run: bool, tenants: Vec<TenantReport>) -> RunReport {
    RunReport {
        dry_run,
        error: None,
        exit_code: 1,
        interrupted: false,
        stopped_by: None,
        tenants,
    }
}

#[test]
fn a_tenant_that_ran_has_its_stages_and_one_case_per_mailbox() {
    let suites = read(&xml_of(&run_of(false, vec![ran()])));
    assert_eq!(suites.len(), 1);
    let s = &suites[0];
    assert_eq!(s.name, "t1 (c.com)");
    // N + 4 for N = 5 mailboxes, sorted case-insensitively as the run reads them.
    assert_eq!(
        s.names(),
        [
            "configuration",
            "token",
            "permissions",
            "hub",
            "mailbox adele@c.com",
            "mailbox Bob@c.com",
            "mailbox carla@c.com",
            "mailbox dan@c.com",
            "mailbox room@c.com",
        ]
    );
    for passed in [
        "configuration",
        "token",
        "permissions",
        "hub",
        "mailbox adele@c.com",
        "mailbox carla@c.com",
    ] {
        assert_eq!(s.case(passed).status, "success", "{passed}");
    }
    let bob = s.case("mailbox Bob@c.com");
    assert_eq!(bob.status, "failed");
    assert!(bob.text.starts_with("1 write(s) failed"), "{}", bob.text);
    assert!(
        bob.text.contains("Failed to update:")
            && bob
                .text
                .contains("Access is denied (HTTP 403 ErrorAccessDenied) [request-id rid-write]"),
        "{}",
        bob.text
    );
    assert_eq!(
        bob.message.as_deref(),
        Some("1 write(s) failed; the run is safe to repeat")
    );
    let dan = s.case("mailbox dan@c.com");
    assert_eq!(dan.status, "failed");
    assert_eq!(
        dan.text,
        "Access to OData is disabled. (HTTP 403 ErrorAccessDenied) [request-id rid-dan]"
    );
    let room = s.case("mailbox room@c.com");
    assert_eq!(room.status, "skipped");
    assert!(room.text.contains("no Exchange Online mailbox") && room.text.contains("rid-room"));
    assert!(
        s.case("mailbox carla@c.com")
            .system_out
            .as_deref()
            .is_some_and(|o| o.contains("refused with 412")),
        "a conflict is noted, not failed"
    );
    assert_eq!(s.properties["dryRun"], "false");
    assert_eq!(s.properties["tenantId"], "t1");
    assert_eq!(s.properties["outcome"], "partial");
    assert_eq!(s.properties["hub"], "hub@c.com");
}

#[test]
fn a_failed_write_into_all_contacts_fails_the_hub_case() {
    let mut t = ran();
    t.actions.push(failing(
        write(1, ActionKind::Create, ActionResult::Failed, "hub@c.com"),
        "The server is busy (HTTP 503)",
        "rid-hub",
    ));
    let suites = read(&xml_of(&run_of(false, vec![t])));
    let hub = suites[0].case("hub");
    assert_eq!(hub.status, "failed");
    assert!(
        hub.text.contains("Failed to create:") && hub.text.contains("rid-hub"),
        "{}",
        hub.text
    );
    assert!(
        hub.system_out
            .as_deref()
            .is_some_and(|o| o.contains("All Contacts in hub@c.com: found")),
        "{:?}",
        hub.system_out
    );
}

#[test]
fn a_stopped_tenant_fails_its_stage_and_skips_the_later_ones() {
    let cases = [
        (Stage::Token, ["failed", "skipped", "skipped"]),
        (Stage::Permissions, ["success", "failed", "skipped"]),
        (Stage::Hub, ["success", "success", "failed"]),
    ];
    for (stage, want) in cases {
        let t = stopped_at(
            Some(stage),
            TenantOutcome::AuthFailed,
            "cannot get a token: AADSTS7000215 (HTTP 401) [request-id rid-tok]",
        );
        let suites = read(&xml_of(&run_of(false, vec![t])));
        let s = &suites[0];
        assert_eq!(s.name, "t2", "no label: the tenant id");
        assert_eq!(
            s.names(),
            ["configuration", "token", "permissions", "hub"],
            "{stage:?}"
        );
        assert_eq!(s.case("configuration").status, "success");
        let got: Vec<&str> = ["token", "permissions", "hub"]
            .iter()
            .map(|n| s.case(n).status)
            .collect();
        assert_eq!(got, want, "{stage:?}");
        let failed = s.cases.iter().find(|c| c.status == "failed").unwrap();
        assert!(
            failed.text.contains("[request-id rid-tok]"),
            "{}",
            failed.text
        );
        for skipped in s.cases.iter().filter(|c| c.status == "skipped") {
            assert!(skipped.text.starts_with("not reached"), "{}", skipped.text);
        }
    }
}

#[test]
fn a_stopped_tenant_that_does_not_say_where_still_shows_a_failure() {
    let t = stopped_at(None, TenantOutcome::Failed, "interrupted");
    let suites = read(&xml_of(&run_of(false, vec![t])));
    let s = &suites[0];
    assert_eq!(s.case("run").status, "failed");
    assert_eq!(s.case("run").text, "interrupted");
    assert_eq!(s.count("failed"), 1);
}

#[test]
fn a_refused_configuration_is_one_failing_configuration_case() {
    let r = RunReport {
        dry_run: true,
        error: Some(
            "configuration error: 2 problems\n  AUTOMATION_SYNCCONTACTS_DRY_RUN: `ture` is not a boolean\n    fix: use true or false\n"
                .into(),
        ),
        exit_code: 2,
        interrupted: false,
        stopped_by: None,
        tenants: Vec::new(),
    };
    let suites = read(&xml_of(&r));
    assert_eq!(suites.len(), 1);
    let s = &suites[0];
    assert_eq!(s.name, "synccontacts");
    assert_eq!(s.names(), ["configuration"]);
    let c = s.case("configuration");
    assert_eq!(c.status, "failed");
    assert!(c.text.contains("`ture` is not a boolean") && c.text.contains("fix: use true"));
    assert_eq!(
        c.message.as_deref(),
        Some("configuration error: 2 problems")
    );
}

#[test]
fn a_dry_run_passes_and_fails_the_same_cases_and_says_it_is_one() {
    let mut planned = ran();
    for a in &mut planned.actions {
        if a.result == ActionResult::Done {
            a.result = ActionResult::Planned;
        }
    }
    let real = read(&xml_of(&run_of(false, vec![ran()])));
    let dry_xml = xml_of(&run_of(true, vec![planned]));
    assert!(dry_xml.contains(r#"<testsuites name="synccontacts sync (dry run)""#));
    let dry = read(&dry_xml);
    let statuses = |s: &SeenSuite| -> Vec<(String, &'static str)> {
        s.cases.iter().map(|c| (c.name.clone(), c.status)).collect()
    };
    assert_eq!(statuses(&dry[0]), statuses(&real[0]));
    assert_eq!(dry[0].properties["dryRun"], "true");
    for c in &dry[0].cases {
        assert!(
            c.system_out
                .as_deref()
                .is_some_and(|o| o.starts_with("dry run: nothing was written")),
            "{}: {:?}",
            c.name,
            c.system_out
        );
    }
    assert!(
        dry[0]
            .case("mailbox adele@c.com")
            .system_out
            .as_deref()
            .unwrap()
            .contains("planned: 1 created")
    );
    assert!(real[0].case("configuration").system_out.is_none());
}

#[test]
fn several_tenants_are_several_suites() {
    let t = stopped_at(Some(Stage::Token), TenantOutcome::AuthFailed, "no token");
    let suites = read(&xml_of(&run_of(false, vec![ran(), t])));
    assert_eq!(suites.len(), 2);
    assert_eq!(suites[0].cases.len(), 5 + 4);
    assert_eq!(suites[1].cases.len(), 4);
}

#[test]
fn many_failed_writes_are_listed_up_to_a_cap_and_counted() {
    let mut t = ran();
    for i in 0..(MAX_LISTED + 5) {
        t.actions.push(failing(
            write(2, ActionKind::Create, ActionResult::Failed, "adele@c.com"),
            "busy",
            &format!("rid-{i}"),
        ));
    }
    let suites = read(&xml_of(&run_of(false, vec![t])));
    let adele = suites[0].case("mailbox adele@c.com");
    assert_eq!(adele.status, "failed");
    assert_eq!(
        adele.text.lines().count(),
        1 + MAX_LISTED + 1,
        "{}",
        adele.text
    );
    assert!(
        adele
            .text
            .ends_with("… and 5 more (the --report file lists every write)")
    );
    assert!(adele.text.contains("rid-0") && !adele.text.contains("rid-24"));
}

/// User data reaches the file as text: names, mailboxes and errors with XML's special
/// characters, line breaks, tabs and control characters must come back as they were (or, for
/// characters XML 1.0 cannot hold at all, as U+FFFD) and never change the document's structure.
#[test]
fn user_data_is_escaped_and_reads_back_as_it_was() {
    let nasty = "A&B <C> \"D\" 'E' ]]> </failure><x/>&amp; \t tab\r\nCRLF\n\u{1b}[31m\u{0}\u{7f}\u{85}\u{fffe}é☃𝄞";
    let read_back = "A&B <C> \"D\" 'E' ]]> </failure><x/>&amp; \t tab\r\nCRLF\n\u{fffd}[31m\u{fffd}\u{7f}\u{85}\u{fffd}é☃𝄞";
    let mut t = ran();
    t.stages.label = format!("t1 {nasty}");
    let mailbox = "o'neil&<x>@c.com";
    t.stages.read.push(mailbox.into());
    let mut a = failing(
        write(2, ActionKind::Create, ActionResult::Failed, mailbox),
        nasty,
        "rid-\"x\"",
    );
    a.display_name = Some(nasty.into());
    t.actions.push(a);
    t.failed_mailboxes[0].reason = nasty.into();
    let xml = xml_of(&run_of(false, vec![t]));
    let suites = read(&xml);
    let s = &suites[0];
    assert_eq!(
        s.name,
        format!("t1 {read_back}"),
        "attributes keep tabs and line breaks"
    );
    let c = s.case(&format!("mailbox {mailbox}"));
    assert_eq!(c.status, "failed");
    assert!(
        c.text.contains(&format!(
            "Failed to create: NotesId=0b6c7f7e-0000-4000-8000-000000000001 | {read_back}"
        )),
        "{}",
        c.text
    );
    assert!(c.text.contains("[request-id rid-\"x\"]"), "{}", c.text);
    let dan = s.case("mailbox dan@c.com");
    assert_eq!(dan.text, format!("{read_back} [request-id rid-dan]"));
    assert_eq!(
        dan.message.as_deref(),
        read_back.lines().next(),
        "the message is the first line"
    );
    assert_eq!(s.cases.len(), 6 + 4, "no case was injected");
}

#[test]
fn escape_is_exact() {
    assert_eq!(escape("a&b<c>d\"e'f", false), "a&amp;b&lt;c&gt;d\"e'f");
    assert_eq!(escape("a&b<c>d\"e'f", true), "a&amp;b&lt;c&gt;d&quot;e'f");
    assert_eq!(escape("x\ty\nz\r", false), "x\ty\nz&#13;");
    assert_eq!(escape("x\ty\nz\r", true), "x&#9;y&#10;z&#13;");
    assert_eq!(
        escape("\u{0}\u{8}\u{b}\u{c}\u{1f}", false),
        "\u{fffd}".repeat(5)
    );
    assert_eq!(
        escape("\u{7f}\u{80}\u{9f}\u{a0}", false),
        "&#x7F;&#x80;&#x9F;\u{a0}"
    );
    assert_eq!(
        escape("\u{fffe}\u{ffff}\u{fffd}", true),
        "\u{fffd}\u{fffd}\u{fffd}"
    );
}

#[test]
fn long_lines_and_messages_are_capped_on_character_boundaries() {
    let long = "é".repeat(MAX_LINE + 10);
    assert_eq!(capped_line(&long).chars().count(), MAX_LINE + 1);
    assert!(capped_line(&long).ends_with('…'));
    assert_eq!(capped_line("short"), "short");
    assert_eq!(
        message_of(&format!("{}\nsecond", "x".repeat(400)))
            .chars()
            .count(),
        MAX_MESSAGE + 1
    );
}

#[test]
fn the_file_is_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    let r = run_of(false, vec![ran()]);
    write_junit(&r, &path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), xml_of(&r));
    assert!(write_junit(&r, &dir.path().join("missing").join("junit.xml")).is_err());
}

/// Issue 12's hook: deletes the brake held fail one more case, `deletes held`, after the
/// mailboxes (N + 5), listing them and ending with the exact command that releases them.
#[test]
fn held_deletes_fail_their_own_case_that_ends_with_the_release_command() {
    use crate::report::{BookRecord, BookReport, HeldDelete};
    let mut t = ran();
    let held = |n: usize| HeldDelete {
        contact: BookRecord {
            sync_id: format!("0b6c7f7e-0000-4000-8000-{n:012}"),
            display_name: Some(format!("Person {n} <&>")),
            email: Some(format!("p{n}@c.com")),
            mailbox: "hub@c.com".into(),
            folder: Folder::Hub,
        },
        reason: sync_engine::HoldReason::Brake,
        observed_at: "2026-03-01T10:00:00Z".parse().unwrap(),
        copies: 3,
        withdrawn_by: None,
    };
    t.book = BookReport {
        held_deletes: (0..MAX_LISTED + 2).map(held).collect(),
        release_command: Some("synccontacts sync --tenant t1 --allow-deletes 22".into()),
        ..BookReport::default()
    };
    let suites = read(&xml_of(&run_of(false, vec![t])));
    let s = &suites[0];
    assert_eq!(s.names().len(), 5 + 5);
    assert_eq!(s.names().last(), Some(&"deletes held"));
    let c = s.case("deletes held");
    assert_eq!(c.status, "failed");
    assert!(c.text.starts_with("22 deletion(s)"), "{}", c.text);
    assert!(
        c.text
            .contains("Held delete: NotesId=0b6c7f7e-0000-4000-8000-000000000000 | Person 0 <&>"),
        "escaped and read back: {}",
        c.text
    );
    assert!(c.text.contains("… and 2 more"), "{}", c.text);
    assert!(
        c.text
            .ends_with("release them with: synccontacts sync --tenant t1 --allow-deletes 22"),
        "{}",
        c.text
    );
    // Without held deletes there is no such case (N + 4).
    let suites = read(&xml_of(&run_of(false, vec![ran()])));
    assert!(!suites[0].names().contains(&"deletes held"));
}

/// Issue 16's outcomes fail their JUnit case too: a missing hub (`config-failed`) fails the hub
/// stage, a tenant the stop kept from starting fails `run`, and a tenant cut short while it
/// wrote passes its stages and fails `run` with its last line's words.
#[test]
fn config_failed_and_stopped_tenants_are_failures() {
    let hub = stopped_at(
        Some(Stage::Hub),
        TenantOutcome::ConfigFailed,
        "the shared mailbox hub@d.com is not a user of this tenant",
    );
    let suites = read(&xml_of(&run_of(false, vec![hub])));
    let got: Vec<&str> = ["token", "permissions", "hub"]
        .iter()
        .map(|n| suites[0].case(n).status)
        .collect();
    assert_eq!(got, ["success", "success", "failed"]);

    let not_started = stopped_at(
        None,
        TenantOutcome::Stopped,
        "not started: the run was interrupted by SIGTERM",
    );
    let suites = read(&xml_of(&run_of(false, vec![not_started])));
    assert_eq!(suites[0].case("run").status, "failed");
    assert_eq!(suites[0].count("failed"), 1);

    let mut cut = ran();
    cut.failed_mailboxes.clear();
    cut.actions.retain(|a| a.result != ActionResult::Failed);
    cut.actions.push(write(
        2,
        ActionKind::Create,
        ActionResult::Stopped,
        "carla@c.com",
    ));
    cut.outcome = TenantOutcome::Stopped;
    cut.error =
        Some("interrupted by SIGTERM after 2 of 4 writes; the next run completes the rest".into());
    let suites = read(&xml_of(&run_of(false, vec![cut])));
    let s = &suites[0];
    for stage in ["token", "permissions", "hub"] {
        assert_eq!(s.case(stage).status, "success", "{stage}");
    }
    assert_eq!(s.case("run").status, "failed");
    assert!(s.case("run").text.starts_with("interrupted by SIGTERM"));
}
