//! Unit tests of `apply.rs`: how Graph's answers become outcomes and what the state remembers
//! (lost answers settled by a re-read, 412s, deletes), and that each operation is the request it
//! names.

use super::*;
use sync_engine::plan::{Action, MailboxSnapshot, PlanInput};

fn err(kind: ErrorKind, status: u16) -> GraphError {
    GraphError {
        kind,
        status: Some(status),
        code: None,
        message: "x".into(),
        request_id: Some("rid".into()),
    }
}

/// The halting of a run that was not stopped.
fn running(stop: &RunStop) -> Halting<'_> {
    Halting {
        stop,
        first: Mutex::new(None),
    }
}

#[test]
fn a_412_is_a_conflict_left_for_the_next_run_not_a_failure() {
    let stop = RunStop::new();
    let halting = running(&stop);
    let o = outcome_of_error(&err(ErrorKind::Conflict, 412), &halting);
    assert_eq!(o.result, ActionResult::Conflict);
    assert_eq!(o.request_id.as_deref(), Some("rid"));
    // A 409 (folder exists and the like) is not a user edit: a failure.
    assert_eq!(
        outcome_of_error(&err(ErrorKind::Conflict, 409), &halting).result,
        ActionResult::Failed
    );
    assert_eq!(
        outcome_of_error(&err(ErrorKind::Server, 503), &halting).result,
        ActionResult::Failed
    );
    assert!(halting.first.lock().unwrap().is_none());
}

/// Issue 16: a write the halted client did not do is `stopped`, not failed, and the first
/// halt is kept as the tenant's reason. For the state (issue 12) it is unconfirmed: a halted
/// client's `Cancelled` may follow an attempt that was applied, so `next_memory` keeps only
/// what is sure either way.
#[test]
fn a_write_the_halted_client_did_not_do_is_stopped() {
    let stop = RunStop::new();
    let halting = running(&stop);
    let gone = GraphError::new(ErrorKind::Unreachable, "Graph at x unreachable");
    let o = outcome_of_error(&gone, &halting);
    assert_eq!(o.result, ActionResult::Stopped);
    assert_eq!(refused(&gone, &o), WriteResult::Unconfirmed);
    let cancelled = GraphError::new(ErrorKind::Cancelled, "stopped before it was sent");
    let o = outcome_of_error(&cancelled, &halting);
    assert_eq!(o.result, ActionResult::Stopped);
    assert_eq!(refused(&cancelled, &o), WriteResult::Unconfirmed);
    assert_eq!(halting.first.lock().unwrap().as_ref(), Some(&gone));
}

/// A contact as read: its etag is `W/"<id>"`.
fn read_contact(id: &str, minute: i64, job: &str, notes: Option<&str>) -> sync_engine::Contact {
    use sync_engine::Field;
    let mut fields = sync_engine::FieldsBuilder::new();
    fields
        .text(Field::DisplayName, "Adele Vance")
        .text(Field::JobTitle, job)
        .emails([("", "adele@contoso.com")]);
    sync_engine::ContactParts {
        id: id.into(),
        etag: Some(format!("W/\"{id}\"")),
        last_modified_date_time: Some(jiff::Timestamp::from_second(minute * 60).unwrap()),
        personal_notes: notes.map(Into::into),
        private_flag: false,
        fields: fields.build(),
    }
    .into()
}

/// An update of a1 (stale data), a stamp of b1 (same data, no SyncId), a create in c.
fn three_writes() -> Plan {
    let tag = "SyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301;CreatedBy=hub@contoso.com";
    let snapshot = |mailbox: &str, contacts| MailboxSnapshot::complete(mailbox, contacts);
    let input = PlanInput {
        hub: snapshot(
            "hub@contoso.com",
            vec![read_contact("h1", 9, "Lead", Some(tag))],
        ),
        users: vec![
            // Stale data: an update of a1.
            snapshot(
                "a@contoso.com",
                vec![read_contact("a1", 1, "Dev", Some(tag))],
            ),
            // Same data, no SyncId yet: a stamp of b1.
            snapshot("b@contoso.com", vec![read_contact("b1", 1, "Lead", None)]),
            // Missing: a create.
            snapshot("c@contoso.com", vec![]),
        ],
        update_existing: true,
        now: jiff::Timestamp::from_second(3600).unwrap(),
        memory: None,
        options: Default::default(),
        fields: Default::default(),
        private_categories: Default::default(),
    };
    sync_engine::plan(&input, &mut || unreachable!("every contact has a SyncId"))
}

/// Issue 11, bug 1: a write refused after an attempt whose answer was lost is settled by what
/// the contact holds when read again.
#[test]
fn an_unconfirmed_write_is_settled_by_a_re_read_of_its_contact() {
    let plan = three_writes();
    let update = plan
        .operations
        .iter()
        .find(|op| op.action() == Action::Update)
        .unwrap();
    let notes = Some(update.expected_notes.as_str());
    let refusal = err(ErrorKind::UnconfirmedWrite, 412);
    let settle = |reread| settle_unconfirmed(update, &refusal, Some(reread));
    // It holds what was sent (a later lastModifiedDateTime and etag do not matter): done,
    // and the state remembers the changeKey the re-read shows.
    let a = settle(Ok(read_contact("a1", 70, "Lead", notes)));
    assert_eq!(a.outcome.result, ActionResult::Done, "{a:?}");
    assert_eq!(a.outcome.request_id.as_deref(), Some("rid"));
    assert_eq!(
        a.result,
        WriteResult::Done {
            change_key: Some("W/\"a1\"".into())
        }
    );
    // Someone changed a field, or the notes, after our attempt: a conflict.
    for changed in [
        read_contact("a1", 70, "Edited by Adele", notes),
        read_contact("a1", 70, "Lead", Some("her own text")),
    ] {
        let a = settle(Ok(changed));
        assert_eq!(a.outcome.result, ActionResult::Conflict, "{a:?}");
        assert_eq!(a.result, WriteResult::Conflict);
    }
    // Gone meanwhile, or unreadable: failed, saying which.
    let a = settle(Err(err(ErrorKind::NotFound, 404)));
    assert_eq!(a.outcome.result, ActionResult::Failed);
    assert!(
        a.outcome.error.as_deref().unwrap().contains("gone"),
        "{a:?}"
    );
    assert_eq!(a.result, WriteResult::Failed);
    let a = settle(Err(err(ErrorKind::Server, 503)));
    assert_eq!(a.outcome.result, ActionResult::Failed);
    assert!(
        a.outcome.error.as_deref().unwrap().contains("re-reading"),
        "{a:?}"
    );
    assert_eq!(
        settle_unconfirmed(update, &refusal, None).outcome.result,
        ActionResult::Failed
    );
}

/// A DELETE of a tagged user copy, as the planner makes it for a tombstone.
fn a_delete() -> Operation {
    Operation {
        step: 2,
        mailbox: "a@contoso.com".into(),
        target: Target::UserDefault,
        sync_id: "3f2504e0-4f89-11d3-9a0c-0305e82c3301".into(),
        display_name: Some("Adele Vance".into()),
        email: Some("adele@contoso.com".into()),
        created_by: "hub@contoso.com".into(),
        source_mailbox: "hub@contoso.com".into(),
        expected_notes: String::new(),
        write: Write::Delete {
            contact_id: "a1".into(),
            etag: Some("W/\"a1\"".into()),
            cause: sync_engine::DeleteCause::DeletedFromHub,
        },
    }
}

/// docs/state-and-deletes.md §3.6: a DELETE whose contact is gone is done — also when its
/// first attempt's answer was lost and the repeat found nothing (404) or a changed etag (412)
/// that the re-read explains; a contact still there after a 412 was edited: a conflict.
#[test]
fn a_delete_is_done_when_its_contact_is_gone_and_a_conflict_when_it_was_edited() {
    let op = a_delete();
    for status in [404, 412] {
        let refusal = err(ErrorKind::UnconfirmedWrite, status);
        let a = settle_unconfirmed(&op, &refusal, Some(Err(err(ErrorKind::NotFound, 404))));
        assert_eq!(a.outcome.result, ActionResult::Done, "{a:?}");
        assert_eq!(a.result, WriteResult::Done { change_key: None });
    }
    let refusal = err(ErrorKind::UnconfirmedWrite, 412);
    let edited = read_contact("a1", 70, "Edited by Adele", None);
    let a = settle_unconfirmed(&op, &refusal, Some(Ok(edited)));
    assert_eq!(a.outcome.result, ActionResult::Conflict, "{a:?}");
    assert!(
        a.outcome.error.as_deref().unwrap().contains("still there"),
        "{a:?}"
    );
    assert_eq!(a.result, WriteResult::Conflict);
    // A plain 412 is a conflict, a lost answer unconfirmed, a refusal that cannot have
    // applied a failure.
    let stop = RunStop::new();
    let halting = running(&stop);
    let o = outcome_of_error(&err(ErrorKind::Conflict, 412), &halting);
    assert_eq!(
        refused(&err(ErrorKind::Conflict, 412), &o),
        WriteResult::Conflict
    );
    let e = err(ErrorKind::Server, 504);
    assert_eq!(
        refused(&e, &outcome_of_error(&e, &halting)),
        WriteResult::Unconfirmed
    );
    let e = err(ErrorKind::Permission, 403);
    assert_eq!(
        refused(&e, &outcome_of_error(&e, &halting)),
        WriteResult::Failed
    );
    // A DELETE is sent with the etag read (If-Match), in the user's default folder.
    assert_eq!(
        write_request(&op, &FolderRef::Id("hub".into())),
        WriteRequest::delete(FolderRef::Default, "a1", Some("W/\"a1\"".into()))
    );
}

/// Issue 11, bug 2: an update or a stamp is a PATCH of exactly the copy it names, with that
/// copy's etag, and only a create is a POST. (Before, an operation without a contact id fell
/// back to a POST, so a planner bug would have duplicated a contact; the operation types now
/// make that case unwritable, and this pins the mapping.)
#[test]
fn update_and_stamp_patch_their_own_contact_and_only_create_posts() {
    let plan = three_writes();
    let hub_folder = FolderRef::Id("hub-folder".into());
    // (method, contact id, If-Match, folder, body): everything a request says.
    let parts = |r: &WriteRequest| match r.clone() {
        WriteRequest::Create { folder, body } => ("POST", None, None, folder, body),
        WriteRequest::Update {
            folder,
            contact_id,
            if_match,
            body,
        } => ("PATCH", Some(contact_id), if_match, folder, body),
        WriteRequest::Delete {
            folder,
            contact_id,
            if_match,
        } => (
            "DELETE",
            Some(contact_id),
            if_match,
            folder,
            serde_json::Value::Null,
        ),
    };
    assert_eq!(plan.operations.len(), 3, "{:?}", plan.operations);
    for op in &plan.operations {
        let (method, id, etag, folder, body) = parts(&write_request(op, &hub_folder));
        let expected = match (op.action(), op.mailbox.as_str()) {
            (Action::Update, "a@contoso.com") => ("PATCH", Some("a1")),
            (Action::Stamp, "b@contoso.com") => ("PATCH", Some("b1")),
            (Action::Create, "c@contoso.com") => ("POST", None),
            other => panic!("unexpected operation {other:?}"),
        };
        assert_eq!((method, id.as_deref()), expected, "{op:?}");
        assert_eq!(
            etag,
            id.map(|id| format!("W/\"{id}\"")),
            "the copy's own etag"
        );
        assert_eq!(folder, FolderRef::Default, "all three are user folders");
        // The body sent is the operation's own (`Operation::body`, what the planner tested).
        assert_eq!(body, serde_json::Value::Object(op.body()));
    }
}
