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
    let t1 = totals(&actions, 1, 7);
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
            repaired: 0
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
    t.hub_folder = HubFolder::Found;
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
    assert!(quiet.iter().any(
        |l| l == "Failed mailbox: bob@c.com — Access to OData is disabled. [request-id rid-9]"
    ));
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
    t.status = TenantStatus::Ok;
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

/// A report with every field set, in both tenant states (planned, and stopped before planning).
fn full_report() -> RunReport {
    let mut ok = TenantReport::failed("t1", "hub@c.com", TenantOutcome::Ok, String::new());
    ok.status = TenantStatus::Ok;
    ok.error = None;
    ok.hub_folder = HubFolder::Created;
    ok.users = 2;
    ok.requests = 9;
    let mut failed_write = action(2, ActionKind::Stamp, ActionResult::Failed);
    failed_write.error = Some("Access is denied (HTTP 403 ErrorAccessDenied)".into());
    failed_write.request_id = Some("rid-1".into());
    ok.actions = vec![
        action(1, ActionKind::Create, ActionResult::Done),
        action(2, ActionKind::Update, ActionResult::Conflict),
        failed_write,
    ];
    ok.step1 = totals(&ok.actions, 1, 3);
    ok.step2 = totals(&ok.actions, 2, 4);
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
    ok.book = BookReport {
        held_deletes: vec![HeldDelete {
            contact: record("hub@c.com", Folder::Hub),
            reason: sync_engine::HoldReason::Brake,
            observed_at: "2026-03-01T10:00:00Z".parse().unwrap(),
            copies: 2,
        }],
        release_command: Some("synccontacts sync --tenant t1 --allow-deletes 1".into()),
        would_delete: vec![record("adele@c.com", Folder::UserDefault)],
        repairs: vec![RepairRecord {
            contact: record("hub@c.com", Folder::Hub),
            reason: sync_engine::plan::RepairReason::InterruptedRun,
            found_in: "adele@c.com".into(),
        }],
        opt_outs: vec![record("adele@c.com", Folder::UserDefault)],
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
        exit_code: 1,
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
  "exitCode": 1,
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
        "deleted": 0,
        "failed": 0,
        "conflicts": 0,
        "repaired": 0
      },
      "step2": {
        "created": 0,
        "updated": 0,
        "skipped": 4,
        "stamped": 0,
        "deleted": 0,
        "failed": 1,
        "conflicts": 1,
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
      "repairs": [
        {
          "syncId": "0b6c7f7e-0000-4000-8000-000000000002",
          "displayName": "Bianca Pisani",
          "email": "bianca@c.com",
          "mailbox": "hub@c.com",
          "folder": "All Contacts",
          "reason": "interruptedRun",
          "foundIn": "adele@c.com"
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
        "repaired": 0
      },
      "requests": 0,
      "skippedMailboxes": [],
      "failedMailboxes": [],
      "problems": [],
      "actions": [],
      "state": null,
      "heldDeletes": [],
      "releaseCommand": null,
      "wouldDelete": [],
      "repairs": [],
      "optOuts": []
    }
  ]
}"#;

/// Held deletes need a decision: their lines and the exact release command are printed even with
/// `-q`; repairs, opt-outs and report-only deletes only in normal output.
#[test]
fn held_deletes_print_the_release_command_even_when_quiet() {
    let r = full_report();
    let t = &r.tenants[0];
    let quiet = tenant_text(t, false, Detail::Quiet);
    let normal = tenant_text(t, false, Detail::Normal);
    for text in [&quiet, &normal] {
        assert!(
            text.iter().any(|l| l.starts_with(
                "Held delete: NotesId=0b6c7f7e-0000-4000-8000-000000000002 | Bianca Pisani (bianca@c.com) | in hub@c.com/All Contacts | 2 tagged copies"
            )),
            "{text:#?}"
        );
        assert!(
            text.iter().any(|l| l
                .ends_with("release them with: synccontacts sync --tenant t1 --allow-deletes 1")),
            "{text:#?}"
        );
    }
    for prefix in ["Repaired: ", "Would delete: ", "Opted out: "] {
        assert!(!quiet.iter().any(|l| l.starts_with(prefix)), "{quiet:#?}");
        assert!(normal.iter().any(|l| l.starts_with(prefix)), "{normal:#?}");
    }
    assert!(
        normal
            .iter()
            .any(|l| l.starts_with("Repaired: ") && l.contains("an earlier run was interrupted")),
        "{normal:#?}"
    );
    // A loaded state says nothing; another says it once.
    assert!(!normal.iter().any(|l| l.starts_with("State: ")));
    let mut reset = t.clone();
    reset.state = Some("reset: the state file was corrupt".into());
    assert!(
        tenant_text(&reset, false, Detail::Quiet)
            .iter()
            .any(|l| l.starts_with("State: reset: the state file was corrupt"))
    );
    let mut deleted = t.step2;
    deleted.deleted = 3;
    deleted.repaired = 1;
    assert!(
        totals_line(2, &deleted).ends_with(", Deleted: 3, Changed since read: 1, Repaired: 1"),
        "{}",
        totals_line(2, &deleted)
    );
}
