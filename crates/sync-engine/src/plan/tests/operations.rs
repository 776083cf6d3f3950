//! What each operation sends (`Operation::body`, exactly what production sends), its notes, and
//! when a contact read back holds it (`Operation::is_applied`).

use super::*;

#[test]
fn clears_propagate_as_explicit_null_and_empty_list() {
    let sid = format!("SyncId={GUID_B}");
    let mut old = contact("u", "Dan", Some("dan@c"), Some(1), Some(&sid));
    old.fields.set(Field::MobilePhone, "+1 555 0100");
    old.fields
        .set(Field::BusinessPhones, vec!["+1 555 0101".to_owned()]);
    let mut newer = old.clone();
    newer.set_id("h");
    newer.set_last_modified(Some(ts(50)));
    newer.fields.set(Field::MobilePhone, FieldValue::Unset);
    newer.fields.set(Field::BusinessPhones, FieldValue::Unset);
    let p = run(
        vec![newer.clone()],
        vec![mbx("u@c", vec![old.clone()])],
        true,
    );
    assert_eq!(p.operations.len(), 1);
    let b = p.operations[0].body();
    assert_eq!(b["mobilePhone"], Value::Null);
    assert_eq!(b["businessPhones"], json!([]));
    assert_eq!(b["displayName"], json!("Dan"), "displayName in every PATCH");
    let t = assert_converges(vec![newer], vec![mbx("u@c", vec![old])], true);
    assert_eq!(t.users[0].contacts[0].fields.text(Field::MobilePhone), "");
}

#[test]
fn data_and_stamp_are_one_write() {
    let h = contact(
        "h",
        "Lea",
        Some("lea@c"),
        Some(10),
        Some(&format!("SyncId={GUID_B}")),
    );
    let u = contact("u", "Lea Old", Some("lea@c"), Some(1), Some("keep me\n"));
    let p = run(vec![h], vec![mbx("u@c", vec![u])], true);
    assert_eq!(
        summary(&p),
        [(2, Action::Update, "u@c".into(), Some("u".into()))]
    );
    let body = p.operations[0].body();
    let notes = body["personalNotes"].as_str().unwrap();
    assert!(notes.starts_with(&format!("keep me\n\r\nSyncId={GUID_B};")));
    assert_eq!(tags::parse(notes).text, "keep me\n");
}

#[test]
fn inline_sync_id_sentence_is_user_text() {
    let text = "Old id was SyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301; ask Adele";
    let u = contact("u", "Max", Some("max@c"), Some(1), Some(text));
    let p = run(vec![], vec![mbx("u@c", vec![u])], true);
    let stamp = p
        .operations
        .iter()
        .find(|o| o.action() == Action::Stamp)
        .unwrap();
    assert!(
        stamp
            .expected_notes
            .starts_with(&format!("{text}\r\nSyncId=00000000-"))
    );
}

#[test]
fn stamp_body_is_notes_and_display_name_only() {
    let u = contact("u", "Uma", Some("uma@c"), Some(1), None);
    let p = run(vec![], vec![mbx("u@c", vec![u])], true);
    let stamp = p
        .operations
        .iter()
        .find(|o| o.action() == Action::Stamp)
        .unwrap();
    assert_eq!(
        stamp.body().keys().map(String::as_str).collect::<Vec<_>>(),
        ["displayName", "personalNotes"]
    );
    assert_eq!(stamp.body()["personalNotes"], json!(stamp.expected_notes));
}

/// A tenant whose plan has one update (`a1`: stale job title), one stamp (`b1`: same data, no
/// SyncId) and one create (in `c`), all in user folders.
fn update_stamp_create() -> (Tenant, Plan) {
    let tag = format!("SyncId={GUID_B};CreatedBy={HUB}");
    let with_job = |mut c: Contact, job: &str| {
        c.fields.set(Field::JobTitle, job);
        c
    };
    let hub_notes = format!("hub note\r\n{tag}");
    let a_notes = format!("my text\nline two\r\n{tag}");
    let hub = contact("h1", "Adele", Some("adele@c"), Some(9), Some(&hub_notes));
    let a1 = contact("a1", "Adele", Some("adele@c"), Some(1), Some(&a_notes));
    let b1 = contact("b1", "Adele", Some("adele@c"), Some(1), Some("b's text"));
    let t = Tenant::new(
        mbx(HUB, vec![with_job(hub, "Lead")]),
        vec![
            mbx("a@c", vec![with_job(a1, "Dev")]),
            mbx("b@c", vec![with_job(b1, "Lead")]),
            mbx("c@c", vec![]),
        ],
    );
    let p = plan(&t.input(true), &mut sequential_ids(0));
    let actions: Vec<_> = p
        .operations
        .iter()
        .map(|o| (o.action(), o.mailbox.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            (Action::Stamp, "b@c"),
            (Action::Update, "a@c"),
            (Action::Create, "c@c"),
        ]
    );
    (t, p)
}

/// The contact `op` writes in `t`: the copy it names, or the one contact of a folder that was
/// empty before the plan was applied.
fn written<'t>(t: &'t Tenant, op: &Operation) -> &'t Contact {
    let folder = t.folders().find(|f| f.mailbox == op.mailbox).unwrap();
    match op.contact_id() {
        Some(id) => folder.contacts.iter().find(|c| c.id() == id).unwrap(),
        None => {
            assert_eq!(folder.contacts.len(), 1);
            &folder.contacts[0]
        }
    }
}

#[test]
fn every_operation_is_applied_to_the_contact_it_wrote_as_graph_returns_it() {
    let (mut t, p) = update_stamp_create();
    let before = t.clone();
    for op in p.operations.iter().filter(|o| o.contact_id().is_some()) {
        assert!(!op.is_applied(written(&before, op)), "not yet: {op:?}");
    }
    // The Graph double normalises as Graph does (empty strings come back null, an email without
    // a name comes back named after its address) and bumps etags and timestamps.
    t.apply(&p).unwrap();
    for op in &p.operations {
        assert!(op.is_applied(written(&t, op)), "{op:?}");
    }
}

#[test]
fn a_contact_holding_other_data_or_other_notes_is_not_applied() {
    let (mut t, p) = update_stamp_create();
    t.apply(&p).unwrap();
    let [stamp, update, create] = [0, 1, 2].map(|i| &p.operations[i]);

    // A written field that differs: someone else's edit, not ours.
    for op in [update, create] {
        let mut c = written(&t, op).clone();
        c.fields.set(Field::JobTitle, "Intern");
        assert!(!op.is_applied(&c), "{op:?}");
    }
    let mut c = written(&t, stamp).clone();
    c.fields.set(Field::DisplayName, "Adele V.");
    assert!(!stamp.is_applied(&c));
    // A stamp writes only the notes and displayName: another field is not its business.
    let mut c = written(&t, stamp).clone();
    c.fields.set(Field::JobTitle, "Intern");
    assert!(stamp.is_applied(&c));

    // Other notes: the user's text changed, or an older tag line.
    for op in [stamp, update, create] {
        let mut c = written(&t, op).clone();
        c.set_personal_notes(Some(
            &(op.expected_notes.replace("my text", "my edit") + "!"),
        ));
        assert!(!op.is_applied(&c), "{op:?}");
        c.set_personal_notes(None);
        assert!(!op.is_applied(&c), "{op:?}");
    }

    // The same data in another contact is not the copy an update or a stamp wrote.
    for op in [stamp, update] {
        let mut c = written(&t, op).clone();
        c.set_id("someone-else");
        assert!(!op.is_applied(&c), "{op:?}");
    }
}

#[test]
fn notes_differing_only_in_line_endings_or_trailing_whitespace_are_applied() {
    let (mut t, p) = update_stamp_create();
    t.apply(&p).unwrap();
    for op in &p.operations {
        let mut c = written(&t, op).clone();
        let notes = c.personal_notes().unwrap();
        // A created contact's notes are the tag line alone; the others keep their text before it.
        assert_eq!(
            notes.contains("\r\n"),
            op.action() != Action::Create,
            "{notes:?}"
        );
        c.set_personal_notes(Some(&(notes.replace("\r\n", "\n") + " \r\n")));
        assert!(op.is_applied(&c), "{op:?}");
    }
}
