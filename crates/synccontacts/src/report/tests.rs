//! The report's text and JSON, pinned.

use super::*;
use crate::report::text::totals_line;

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
            Folder::Hub
        } else {
            Folder::UserDefault
        },
        sync_id: "0b6c7f7e-0000-4000-8000-000000000001".into(),
        display_name: Some("Alex Wilber".into()),
        email: Some("alex@c.com".into()),
        changed: vec![Field::JobTitle, Field::MobilePhone],
        delta: vec![
            Delta {
                field: Field::JobTitle,
                old: "Dev".into(),
                new: "Lead".into(),
            },
            Delta {
                field: Field::MobilePhone,
                old: "+1 555".into(),
                new: "".into(),
            },
        ],
        created_by: "adele@c.com".into(),
        source_mailbox: "adele@c.com".into(),
        result,
        error: None,
        request_id: None,
        reason: None,
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
        line.ends_with("error: Access is denied (HTTP 403 ErrorAccessDenied) [request-id rid-1]"),
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
    let t1 = totals(&actions, 1, 7, 0);
    assert_eq!(
        t1,
        StepTotals {
            created: 1,
            updated: 0,
            skipped: 7,
            stamped: 1,
            deleted: 0,
            failed: 1,
            conflicts: 0,
            stopped: 0,
            repaired: 0,
        }
    );
    assert_eq!(
        totals_line(1, &t1),
        "Step1 - Created: 1, Updated: 0, Skipped: 7, Stamped: 1, Failed: 1"
    );
    let mut actions = actions;
    actions.push(action(2, ActionKind::Create, ActionResult::Stopped));
    let t2 = totals(&actions, 2, 0, 3);
    assert_eq!((t2.updated, t2.conflicts, t2.stopped), (1, 1, 1));
    assert!(
        totals_line(2, &t2)
            .ends_with(", Changed since read: 1, Not written (run stopped): 1, Repaired: 3"),
        "{}",
        totals_line(2, &t2)
    );
}

#[test]
fn one_line_per_mailbox_written_replaces_the_creation_summary() {
    let mut other = action(2, ActionKind::Create, ActionResult::Done);
    other.mailbox = "zoe@c.com".into();
    let actions = vec![
        action(2, ActionKind::Create, ActionResult::Done),
        action(2, ActionKind::Create, ActionResult::Done),
        action(2, ActionKind::Stamp, ActionResult::Done),
        action(2, ActionKind::Update, ActionResult::Conflict),
        action(2, ActionKind::Update, ActionResult::Failed),
        other,
        action(1, ActionKind::Create, ActionResult::Done),
    ];
    assert_eq!(
        mailbox_lines(&actions, false),
        [
            "Mailbox hub@c.com/All Contacts: created 1, updated 0, stamped 0, failed 0",
            "Mailbox adele@c.com/Contacts: created 2, updated 0, stamped 1, failed 1, changed since read 1",
            "Mailbox zoe@c.com/Contacts: created 1, updated 0, stamped 0, failed 0",
        ]
    );
    let planned = [action(2, ActionKind::Update, ActionResult::Planned)];
    assert_eq!(
        mailbox_lines(&planned, true),
        ["Mailbox adele@c.com/Contacts: would create 0, update 1, stamp 0"]
    );
    assert!(mailbox_lines(&[], false).is_empty());
}

/// Issue 16: the first N lines of each kind per step, then a count; every failure; no line
/// twice; `--actions all` prints every line once, in plan order.
#[test]
fn action_lines_are_sampled_per_kind_and_failures_always_shown() {
    let mut t = TenantReport::failed("t", "hub@c.com", TenantOutcome::Partial, String::new());
    t.error = None;
    t.hub_folder = HubFolder::Found;
    for _ in 0..5 {
        t.actions
            .push(action(2, ActionKind::Create, ActionResult::Done));
    }
    t.actions
        .push(action(2, ActionKind::Stamp, ActionResult::Done));
    for _ in 0..3 {
        t.actions
            .push(action(2, ActionKind::Update, ActionResult::Failed));
    }
    t.actions
        .push(action(2, ActionKind::Create, ActionResult::Stopped));
    let text = tenant_text(&t, false, Detail::Normal, ActionLines::First(2));
    let count = |prefix: &str| text.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(count("Created: "), 2, "{text:#?}");
    assert_eq!(count("Stamped: "), 1, "{text:#?}");
    assert_eq!(count("Failed to update: "), 3, "{text:#?}");
    assert!(
        text.contains(
            &"… and 3 more creates in step 2 (all in the report; --actions all prints every line)"
                .to_owned()
        ),
        "{text:#?}"
    );
    assert!(
        text.iter()
            .any(|l| l.starts_with("Not written: 1 writes, because the run stopped first")),
        "{text:#?}"
    );
    let mut unique = text.clone();
    unique.sort();
    unique.dedup();
    // Identical records print identical lines; apart from those no line repeats.
    assert_eq!(
        text.len() - unique.len(),
        1 + 2,
        "only the 2 equal creates and 3 equal failures repeat: {text:#?}"
    );
    let all = tenant_text(&t, false, Detail::Normal, ActionLines::All);
    assert_eq!(count("Step2 - "), 1);
    let all_count = |prefix: &str| all.iter().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(all_count("Created: "), 5);
    assert_eq!(all_count("Failed to update: "), 3);
    assert_eq!(all_count("Not written, run stopped: "), 1);
    assert!(!all.iter().any(|l| l.starts_with("… and")), "{all:#?}");
    let summary = tenant_text(&t, false, Detail::Normal, "summary".parse().unwrap());
    assert!(!summary.iter().any(|l| l.starts_with("Created: ")));
    assert!(summary.iter().any(|l| l.starts_with("Failed to update: ")));
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("Mailbox adele@c.com/"))
    );
    assert_eq!("all".parse::<ActionLines>(), Ok(ActionLines::All));
    assert_eq!("7".parse::<ActionLines>(), Ok(ActionLines::First(7)));
    assert!("some".parse::<ActionLines>().is_err());
    assert_eq!(text::thousands(1234567), "1,234,567");
    assert_eq!(text::thousands(999), "999");
}

#[test]
fn json_report_has_the_spec_keys() {
    let mut t = TenantReport::failed("t", "hub@c.com", TenantOutcome::Ok, String::new());
    t.status = TenantStatus::Ok;
    t.error = None;
    t.actions = vec![action(1, ActionKind::Create, ActionResult::Planned)];
    let r = RunReport {
        dry_run: true,
        tenants: vec![t],
        ..RunReport::default()
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

/// A report with every field set, in both tenant states (planned, and stopped before planning).
pub(super) fn full_report() -> RunReport {
    let mut ok = TenantReport::failed("t1", "hub@c.com", TenantOutcome::Ok, String::new());
    ok.status = TenantStatus::Ok;
    ok.error = None;
    ok.hub_folder = HubFolder::Created;
    ok.users = 2;
    ok.requests = 9;
    let mut failed_write = action(2, ActionKind::Stamp, ActionResult::Failed);
    failed_write.error = Some("Access is denied (HTTP 403 ErrorAccessDenied)".into());
    failed_write.request_id = Some("rid-1".into());
    let mut withdrawn = action(1, ActionKind::Delete, ActionResult::Done);
    (withdrawn.changed, withdrawn.delta) = (Vec::new(), Vec::new());
    withdrawn.reason = Some(DeleteReason::Withdrawn);
    ok.actions = vec![
        action(1, ActionKind::Create, ActionResult::Done),
        withdrawn,
        action(2, ActionKind::Update, ActionResult::Conflict),
        failed_write,
    ];
    ok.step1 = totals(&ok.actions, 1, 3, 1);
    ok.step2 = totals(&ok.actions, 2, 4, 0);
    ok.skipped_mailboxes.push(MailboxNote {
        mailbox: "room@c.com".into(),
        reason: "no Exchange Online mailbox (MailboxNotEnabledForRESTAPI)".into(),
        request_id: Some("rid-2".into()),
    });
    ok.problems
        .push("DuplicateEmail in a@c.com/Contacts (x@c.com): two [contacts: c1, c2]".into());
    ok.state = Some("loaded".into());
    let record = |mailbox: &str, folder| BookRecord {
        sync_id: "0b6c7f7e-0000-4000-8000-000000000002".into(),
        display_name: Some("Bianca Pisani".into()),
        email: Some("bianca@c.com".into()),
        mailbox: mailbox.into(),
        folder,
    };
    // Both kinds of repair in one list: the planner's (with a state) and the first-run mode's.
    ok.repairs = vec![
        RepairRecord {
            contact: record("hub@c.com", Folder::Hub),
            reason: RepairCause::InterruptedRun,
            found_in: "adele@c.com".into(),
            write: None,
        },
        RepairRecord {
            contact: record("a@c.com", Folder::UserDefault),
            reason: RepairCause::InterruptedOrDeleted,
            found_in: "a@c.com".into(),
            write: None,
        },
    ];
    ok.book = BookReport {
        held_deletes: vec![
            HeldDelete {
                contact: record("hub@c.com", Folder::Hub),
                reason: sync_engine::HoldReason::Brake,
                observed_at: "2026-03-01T10:00:00Z".parse().unwrap(),
                copies: 2,
                withdrawn_by: None,
            },
            HeldDelete {
                contact: record("hub@c.com", Folder::Hub),
                reason: sync_engine::HoldReason::NoState,
                observed_at: "2026-03-01T10:00:00Z".parse().unwrap(),
                copies: 3,
                withdrawn_by: Some("adele@c.com".into()),
            },
        ],
        release_command: Some("synccontacts sync --tenant t1 --allow-deletes 1".into()),
        would_delete: vec![record("adele@c.com", Folder::UserDefault)],
        opt_outs: vec![record("adele@c.com", Folder::UserDefault)],
        withdrawals: vec![WithdrawalRecord {
            contact: record("hub@c.com", Folder::Hub),
            owner: "adele@c.com".into(),
            since: "2026-03-01T10:00:00Z".parse().unwrap(),
            copies: 3,
            released: false,
        }],
        withdrawals_ended: vec![record("hub@c.com", Folder::Hub)],
        would_withdraw: vec![record("megan@c.com", Folder::UserDefault)],
    };
    let stopped = TenantReport::failed(
        "t2",
        "hub@d.com",
        TenantOutcome::AuthFailed,
        "cannot get a token".into(),
    );
    RunReport {
        dry_run: false,
        error: None,
        exit_code: 143,
        interrupted: true,
        stopped_by: Some(crate::stop::StopCause::Signal(crate::stop::Signal::Term)),
        tenants: vec![ok, stopped],
    }
}

/// The `--report` document is a contract CI jobs parse: its keys, their order and every value's
/// spelling are pinned here, byte for byte.
#[test]
fn the_json_report_is_pinned_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.json");
    write_json(&full_report(), &path).unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    assert_eq!(written, FULL_REPORT_JSON, "{written}");
}

const FULL_REPORT_JSON: &str = r#"{
  "dryRun": false,
  "error": null,
  "exitCode": 143,
  "interrupted": true,
  "stoppedBy": "SIGTERM",
  "tenants": [
    {
      "tenantId": "t1",
      "status": "ok",
      "outcome": "ok",
      "error": null,
      "users": 2,
      "hub": "hub@c.com",
      "hubFolder": "created",
      "step1": {
        "created": 1,
        "updated": 0,
        "skipped": 3,
        "stamped": 0,
        "deleted": 1,
        "failed": 0,
        "conflicts": 0,
        "stopped": 0,
        "repaired": 1
      },
      "step2": {
        "created": 0,
        "updated": 0,
        "skipped": 4,
        "stamped": 0,
        "deleted": 0,
        "failed": 1,
        "conflicts": 1,
        "stopped": 0,
        "repaired": 0
      },
      "requests": 9,
      "skippedMailboxes": [
        {
          "mailbox": "room@c.com",
          "reason": "no Exchange Online mailbox (MailboxNotEnabledForRESTAPI)",
          "requestId": "rid-2"
        }
      ],
      "failedMailboxes": [],
      "problems": [
        "DuplicateEmail in a@c.com/Contacts (x@c.com): two [contacts: c1, c2]"
      ],
      "repairs": [
        {
          "syncId": "0b6c7f7e-0000-4000-8000-000000000002",
          "displayName": "Bianca Pisani",
          "email": "bianca@c.com",
          "mailbox": "hub@c.com",
          "folder": "All Contacts",
          "reason": "interruptedRun",
          "foundIn": "adele@c.com"
        },
        {
          "syncId": "0b6c7f7e-0000-4000-8000-000000000002",
          "displayName": "Bianca Pisani",
          "email": "bianca@c.com",
          "mailbox": "a@c.com",
          "folder": "Contacts",
          "reason": "interruptedOrDeleted",
          "foundIn": "a@c.com"
        }
      ],
      "actions": [
        {
          "step": 1,
          "action": "create",
          "mailbox": "hub@c.com",
          "folder": "All Contacts",
          "syncId": "0b6c7f7e-0000-4000-8000-000000000001",
          "displayName": "Alex Wilber",
          "email": "alex@c.com",
          "changed": [
            "jobTitle",
            "mobilePhone"
          ],
          "delta": [
            {
              "field": "jobTitle",
              "old": "Dev",
              "new": "Lead"
            },
            {
              "field": "mobilePhone",
              "old": "+1 555",
              "new": ""
            }
          ],
          "createdBy": "adele@c.com",
          "sourceMailbox": "adele@c.com",
          "result": "done",
          "error": null,
          "requestId": null
        },
        {
          "step": 1,
          "action": "delete",
          "mailbox": "hub@c.com",
          "folder": "All Contacts",
          "syncId": "0b6c7f7e-0000-4000-8000-000000000001",
          "displayName": "Alex Wilber",
          "email": "alex@c.com",
          "changed": [],
          "delta": [],
          "createdBy": "adele@c.com",
          "sourceMailbox": "adele@c.com",
          "result": "done",
          "error": null,
          "requestId": null,
          "reason": "withdrawn"
        },
        {
          "step": 2,
          "action": "update",
          "mailbox": "adele@c.com",
          "folder": "Contacts",
          "syncId": "0b6c7f7e-0000-4000-8000-000000000001",
          "displayName": "Alex Wilber",
          "email": "alex@c.com",
          "changed": [
            "jobTitle",
            "mobilePhone"
          ],
          "delta": [
            {
              "field": "jobTitle",
              "old": "Dev",
              "new": "Lead"
            },
            {
              "field": "mobilePhone",
              "old": "+1 555",
              "new": ""
            }
          ],
          "createdBy": "adele@c.com",
          "sourceMailbox": "adele@c.com",
          "result": "conflict",
          "error": null,
          "requestId": null
        },
        {
          "step": 2,
          "action": "stamp",
          "mailbox": "adele@c.com",
          "folder": "Contacts",
          "syncId": "0b6c7f7e-0000-4000-8000-000000000001",
          "displayName": "Alex Wilber",
          "email": "alex@c.com",
          "changed": [
            "jobTitle",
            "mobilePhone"
          ],
          "delta": [
            {
              "field": "jobTitle",
              "old": "Dev",
              "new": "Lead"
            },
            {
              "field": "mobilePhone",
              "old": "+1 555",
              "new": ""
            }
          ],
          "createdBy": "adele@c.com",
          "sourceMailbox": "adele@c.com",
          "result": "failed",
          "error": "Access is denied (HTTP 403 ErrorAccessDenied)",
          "requestId": "rid-1"
        }
      ],
      "state": "loaded",
      "heldDeletes": [
        {
          "syncId": "0b6c7f7e-0000-4000-8000-000000000002",
          "displayName": "Bianca Pisani",
          "email": "bianca@c.com",
          "mailbox": "hub@c.com",
          "folder": "All Contacts",
          "reason": "brake",
          "observedAt": "2026-03-01T10:00:00Z",
          "copies": 2
        },
        {
          "syncId": "0b6c7f7e-0000-4000-8000-000000000002",
          "displayName": "Bianca Pisani",
          "email": "bianca@c.com",
          "mailbox": "hub@c.com",
          "folder": "All Contacts",
          "reason": "noState",
          "observedAt": "2026-03-01T10:00:00Z",
          "copies": 3,
          "withdrawnBy": "adele@c.com"
        }
      ],
      "releaseCommand": "synccontacts sync --tenant t1 --allow-deletes 1",
      "wouldDelete": [
        {
          "syncId": "0b6c7f7e-0000-4000-8000-000000000002",
          "displayName": "Bianca Pisani",
          "email": "bianca@c.com",
          "mailbox": "adele@c.com",
          "folder": "Contacts"
        }
      ],
      "optOuts": [
        {
          "syncId": "0b6c7f7e-0000-4000-8000-000000000002",
          "displayName": "Bianca Pisani",
          "email": "bianca@c.com",
          "mailbox": "adele@c.com",
          "folder": "Contacts"
        }
      ],
      "withdrawals": [
        {
          "syncId": "0b6c7f7e-0000-4000-8000-000000000002",
          "displayName": "Bianca Pisani",
          "email": "bianca@c.com",
          "mailbox": "hub@c.com",
          "folder": "All Contacts",
          "owner": "adele@c.com",
          "since": "2026-03-01T10:00:00Z",
          "copies": 3,
          "released": false
        }
      ],
      "withdrawalsEnded": [
        {
          "syncId": "0b6c7f7e-0000-4000-8000-000000000002",
          "displayName": "Bianca Pisani",
          "email": "bianca@c.com",
          "mailbox": "hub@c.com",
          "folder": "All Contacts"
        }
      ],
      "wouldWithdraw": [
        {
          "syncId": "0b6c7f7e-0000-4000-8000-000000000002",
          "displayName": "Bianca Pisani",
          "email": "bianca@c.com",
          "mailbox": "megan@c.com",
          "folder": "Contacts"
        }
      ]
    },
    {
      "tenantId": "t2",
      "status": "failed",
      "outcome": "auth-failed",
      "error": "cannot get a token",
      "users": 0,
      "hub": "hub@d.com",
      "hubFolder": "unknown",
      "step1": {
        "created": 0,
        "updated": 0,
        "skipped": 0,
        "stamped": 0,
        "deleted": 0,
        "failed": 0,
        "conflicts": 0,
        "stopped": 0,
        "repaired": 0
      },
      "step2": {
        "created": 0,
        "updated": 0,
        "skipped": 0,
        "stamped": 0,
        "deleted": 0,
        "failed": 0,
        "conflicts": 0,
        "stopped": 0,
        "repaired": 0
      },
      "requests": 0,
      "skippedMailboxes": [],
      "failedMailboxes": [],
      "problems": [],
      "repairs": [],
      "actions": [],
      "state": null,
      "heldDeletes": [],
      "releaseCommand": null,
      "wouldDelete": [],
      "optOuts": [],
      "withdrawals": [],
      "withdrawalsEnded": [],
      "wouldWithdraw": []
    }
  ]
}"#;

/// Issue 16: a stopped run says why, in one line before the last, and its last line too.
#[test]
fn a_stopped_run_says_why_and_how_far_it_got() {
    use crate::stop::{Signal, StopCause};
    let mut t = TenantReport::failed("t", "hub@c.com", TenantOutcome::Stopped, "x".into());
    t.actions = vec![
        action(1, ActionKind::Create, ActionResult::Done),
        action(2, ActionKind::Create, ActionResult::Stopped),
    ];
    let mut r = RunReport {
        exit_code: 143,
        interrupted: true,
        stopped_by: Some(StopCause::Signal(Signal::Term)),
        tenants: vec![t],
        ..RunReport::default()
    };
    assert_eq!(
        stop_line(&r).unwrap(),
        "interrupted by SIGTERM: stopped after 1 of 2 writes; the next run completes the rest"
    );
    assert_eq!(
        run_summary(&r),
        "Run interrupted by SIGTERM: 1 tenant(s) — 0 ok, 1 stopped; exit code 143"
    );
    r.dry_run = true;
    r.stopped_by = Some(StopCause::Deadline(std::time::Duration::from_secs(45 * 60)));
    assert_eq!(
        stop_line(&r).unwrap(),
        "stopped at the deadline (45 min): the dry run had planned 2 writes; nothing was written"
    );
    r.stopped_by = None;
    assert_eq!(stop_line(&r), None);
}
