//! The book's lines and records (`book.rs`) and the repairs (`build::problems_and_repairs`), pinned:
//! one wording for every repair, held deletes that always say how to release them, and the
//! `--actions` caps over the book's lines and deletes.

use super::super::tests::full_report;
use super::super::*;
use crate::report::text::totals_line;

/// An action record of the tests' one contact (as `report::tests` builds them).
fn action(step: u8, kind: ActionKind, result: ActionResult) -> ActionRecord {
    let mut a = full_report().tenants[0].actions[0].clone();
    a.step = step;
    a.action = kind;
    a.result = result;
    a.mailbox = if step == 1 {
        "hub@c.com"
    } else {
        "adele@c.com"
    }
    .into();
    a.folder = if step == 1 {
        Folder::Hub
    } else {
        Folder::UserDefault
    };
    a
}

/// Held deletes need a decision: their lines and the exact release command are printed even with
/// `-q`; repairs, opt-outs and report-only deletes only in normal output.
#[test]
fn held_deletes_print_the_release_command_even_when_quiet() {
    let r = full_report();
    let t = &r.tenants[0];
    let quiet = tenant_text(t, false, Detail::Quiet, ActionLines::default());
    let normal = tenant_text(t, false, Detail::Normal, ActionLines::default());
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
        tenant_text(&reset, false, Detail::Quiet, ActionLines::default())
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

/// The merge of issues 12 and 16: `Deleted:` lines are sampled per step like the other kinds;
/// `Would delete:`, `Held delete:` (and `Repaired:`, `Opted out:`) lines obey `--actions` too,
/// each kind counted past the cap; the line with the release command is always printed, with
/// `-q` and with `--actions summary`.
#[test]
fn book_and_delete_lines_obey_the_action_caps_but_the_release_command_always_prints() {
    let mut t = full_report().tenants.remove(0);
    // Without the privacy withdrawals (their lines are counted in their own test).
    t.actions.retain(|a| a.reason.is_none());
    t.book.would_withdraw.clear();
    t.book.held_deletes.retain(|h| h.withdrawn_by.is_none());
    for _ in 0..4 {
        t.actions
            .push(action(2, ActionKind::Delete, ActionResult::Done));
    }
    let held = t.book.held_deletes[0].clone();
    t.book.held_deletes = vec![held; 3];
    let would = t.book.would_delete[0].clone();
    t.book.would_delete = vec![would; 3];
    let text = tenant_text(&t, false, Detail::Normal, ActionLines::First(2));
    let count =
        |text: &[String], prefix: &str| text.iter().filter(|l| l.starts_with(prefix)).count();
    let has = |text: &[String], line: &str| text.iter().any(|l| l == line);
    assert_eq!(count(&text, "Deleted: "), 2, "{text:#?}");
    assert!(has(
        &text,
        "… and 2 more deletes in step 2 (all in the report; --actions all prints every line)"
    ));
    assert_eq!(count(&text, "Held delete: "), 2, "{text:#?}");
    assert!(has(
        &text,
        "… and 1 more held deletes (all in the report; --actions all prints every line)"
    ));
    assert_eq!(count(&text, "Would delete: "), 2, "{text:#?}");
    assert!(has(
        &text,
        "… and 1 more report-only deletes (all in the report; --actions all prints every line)"
    ));
    assert_eq!(count(&text, "Repaired: "), 2, "{text:#?}");
    let release = |text: &[String]| {
        text.iter()
            .filter(|l| l.starts_with("Held 3 deletion(s) from the company book"))
            .count()
    };
    assert_eq!(release(&text), 1, "{text:#?}");
    for (detail, lines) in [
        (Detail::Normal, ActionLines::First(0)),
        (Detail::Quiet, ActionLines::First(0)),
        (Detail::Quiet, ActionLines::default()),
    ] {
        let text = tenant_text(&t, false, detail, lines);
        assert_eq!(release(&text), 1, "{detail:?} {lines:?}: {text:#?}");
        assert_eq!(count(&text, "Deleted: "), 0, "{detail:?} {lines:?}");
    }
    let quiet = tenant_text(&t, false, Detail::Quiet, ActionLines::default());
    assert_eq!(
        count(&quiet, "Held delete: "),
        3,
        "held deletes need a decision: {quiet:#?}"
    );
    assert_eq!(count(&quiet, "Would delete: "), 0);
    let all = tenant_text(&t, false, Detail::Normal, ActionLines::All);
    assert_eq!(count(&all, "Deleted: "), 4);
    assert_eq!(count(&all, "Held delete: "), 3);
    assert_eq!(count(&all, "Would delete: "), 3);
    assert!(!all.iter().any(|l| l.starts_with("… and")), "{all:#?}");
}

/// One wording for every repair, the planner's (with a state) and the first-run mode's.
#[test]
fn every_repair_has_the_book_lines_wording() {
    let record = |mailbox: &str, folder| BookRecord {
        sync_id: "5a1e0c3b-0000-4000-8000-00000000c0de".into(),
        display_name: Some("Alex Wilber".into()),
        email: Some("alex@c.com".into()),
        mailbox: mailbox.into(),
        folder,
    };
    let repair = |reason, mailbox: &str, folder| RepairRecord {
        contact: record(mailbox, folder),
        reason,
        found_in: "adele@c.com".into(),
        write: None,
    };
    let part =
        "Repaired: NotesId=5a1e0c3b-0000-4000-8000-00000000c0de | Alex Wilber (alex@c.com) | in";
    assert_eq!(
        repair_line(&repair(
            RepairCause::InterruptedRun,
            "hub@c.com",
            Folder::Hub
        )),
        format!("{part} hub@c.com/All Contacts (an earlier run was interrupted)")
    );
    assert_eq!(
        repair_line(&repair(RepairCause::NotInHub, "hub@c.com", Folder::Hub)),
        format!(
            "{part} hub@c.com/All Contacts (adele@c.com's copy carries a SyncId the hub never \
             held; not a deletion)"
        )
    );
    assert_eq!(
        repair_line(&repair(
            RepairCause::InterruptedOrDeleted,
            "hub@c.com",
            Folder::Hub
        )),
        format!(
            "{part} hub@c.com/All Contacts (re-created from adele@c.com's copy, whose SyncId was \
             not in the hub: an earlier run was interrupted, or the hub copy was deleted)"
        )
    );
    assert_eq!(
        repair_line(&repair(
            RepairCause::InterruptedOrDeleted,
            "adele@c.com",
            Folder::UserDefault
        )),
        format!(
            "{part} adele@c.com/Contacts (its SyncId was not in the hub: linked to the hub \
             contact with the same email or name, and stamped with its SyncId; an earlier run was \
             interrupted, or the hub copy was deleted)"
        )
    );
}

/// First-run mode (no memory): every user copy whose SyncId the hub lacks is an `UnknownSyncId`
/// problem. A contact re-created in the hub from two users' copies is one repair (not two), a
/// copy linked to a hub contact by email is one more, none is a data problem, and `repaired`
/// counts those whose write was done.
#[test]
fn first_run_mode_repairs_are_one_per_hub_re_create_and_counted_when_done() {
    use sync_engine::plan::{MailboxSnapshot, PlanInput};
    let tag = |sid: &str| format!("SyncId={sid};CreatedBy=adele@c.com");
    let contact = |id: &str, name: &str, mail: &str, notes: Option<String>| {
        let mut fields = sync_engine::FieldsBuilder::new();
        fields
            .text(sync_engine::Field::DisplayName, name)
            .emails([("", mail)]);
        sync_engine::Contact::from(sync_engine::ContactParts {
            id: id.into(),
            etag: Some(format!("W/\"{id}\"")),
            last_modified_date_time: Some(jiff::Timestamp::from_second(60).unwrap()),
            personal_notes: notes,
            private_flag: false,
            fields: fields.build(),
        })
    };
    let lost = "5a1e0c3b-0000-4000-8000-00000000c0de";
    let hubs = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    let other = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
    let input = PlanInput {
        hub: MailboxSnapshot::complete(
            "hub@c.com",
            vec![contact(
                "h1",
                "Bianca Pisani",
                "bianca@c.com",
                Some(tag(hubs)),
            )],
        ),
        users: vec![
            MailboxSnapshot::complete(
                "adele@c.com",
                vec![
                    contact("a1", "Alex Wilber", "alex@c.com", Some(tag(lost))),
                    contact("a2", "Bianca Pisani", "bianca@c.com", Some(tag(hubs))),
                ],
            ),
            MailboxSnapshot::complete(
                "megan@c.com",
                vec![
                    contact("m1", "Alex Wilber", "alex@c.com", Some(tag(lost))),
                    // Bianca's copy carries a SyncId the hub never had: linked by email.
                    contact("m2", "Bianca Pisani", "bianca@c.com", Some(tag(other))),
                ],
            ),
        ],
        update_existing: true,
        now: jiff::Timestamp::from_second(3600).unwrap(),
        memory: None,
        options: Default::default(),
        fields: Default::default(),
        private_categories: Default::default(),
    };
    let plan = sync_engine::plan(&input, &mut || unreachable!("every contact has a SyncId"));
    let (problems, repairs) = build::problems_and_repairs(&plan);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(repairs.len(), 2, "{repairs:#?}");
    let hub = repairs
        .iter()
        .find(|r| r.recreated())
        .expect("Alex re-created");
    assert_eq!(hub.contact.sync_id, lost);
    assert_eq!(hub.contact.mailbox, "hub@c.com");
    assert_eq!(hub.contact.display_name.as_deref(), Some("Alex Wilber"));
    assert_eq!(hub.reason, RepairCause::InterruptedOrDeleted);
    let linked = repairs
        .iter()
        .find(|r| !r.recreated())
        .expect("Bianca linked");
    assert_eq!(
        (
            linked.contact.sync_id.as_str(),
            linked.contact.mailbox.as_str()
        ),
        (other, "megan@c.com")
    );
    assert!(linked.write.is_some(), "its copy is written: {plan:#?}");

    let outcome = |i: usize, result| {
        let mut a = build::record(&plan.operations[i], Outcome::planned());
        a.result = result;
        a
    };
    let planned: Vec<ActionRecord> = (0..plan.operations.len())
        .map(|i| outcome(i, ActionResult::Planned))
        .collect();
    assert_eq!(build::repaired(&repairs, &planned), 2);
    let mut stopped = planned.clone();
    stopped[hub.write.unwrap()].result = ActionResult::Stopped;
    assert_eq!(
        build::repaired(&repairs, &stopped),
        1,
        "a repair whose write did not happen is not counted"
    );
}

/// Privacy withdrawals (docs/state-and-deletes.md §4) read like deletes: each copy's `Deleted:`
/// line says it was withdrawn (`Would delete:` in a dry run), a `Withdrawn:` line names the owner
/// and the copies, a held one says why it waits, and an ended one says it is shared again.
#[test]
fn withdrawal_lines_say_the_owner_marked_the_contact_private() {
    let t = full_report().tenants.remove(0);
    let text = tenant_text(&t, false, Detail::Normal, ActionLines::All);
    let has = |prefix: &str, needle: &str| {
        text.iter()
            .any(|l| l.starts_with(prefix) && l.contains(needle))
    };
    assert!(
        text.iter().any(|l| l
            == "Deleted: NotesId=0b6c7f7e-0000-4000-8000-000000000001 | Alex Wilber (alex@c.com) \
                | in hub@c.com/All Contacts (withdrawn: marked private by its owner)"),
        "{text:#?}"
    );
    assert!(has(
        "Withdrawn: NotesId=0b6c7f7e-0000-4000-8000-000000000002 | Bianca Pisani",
        "(marked private by its owner adele@c.com; 3 copies deleted, the owner's contact is kept"
    ));
    assert!(has(
        "Held delete: ",
        "withdrawn since 2026-03-01T10:00:00Z: marked private by its owner adele@c.com (held: \
         without a trusted state nothing is deleted"
    ));
    assert!(has("Withdrawal ended: ", "shared again from their copy"));
    assert!(has(
        "Would delete: ",
        "in megan@c.com/Contacts (withdrawn: marked private by its owner; Deletes is \"off\""
    ));
    // A dry run's lines.
    let mut dry = t.clone();
    for a in &mut dry.actions {
        a.result = ActionResult::Planned;
    }
    let text = tenant_text(&dry, true, Detail::Normal, ActionLines::All);
    assert!(
        text.iter().any(|l| l
            .starts_with("Would delete: NotesId=0b6c7f7e-0000-4000-8000-000000000001")
            && l.ends_with("(withdrawn: marked private by its owner)")),
        "{text:#?}"
    );
    assert!(
        text.iter().any(|l| l.starts_with("Would withdraw: ")
            && l.contains("3 copies to be deleted, the owner's contact is kept")),
        "{text:#?}"
    );
    assert!(!text.iter().any(|l| l.starts_with("Withdrawn: ")));
    // Only the brake's holds are released by the command: one here.
    assert!(
        text.iter()
            .any(|l| l.starts_with("Held 1 deletion(s) from the company book"))
    );
}
