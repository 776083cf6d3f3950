//! What each operation sends (`Operation::body`, exactly what production sends) and its notes.

use super::*;

#[test]
fn clears_propagate_as_explicit_null_and_empty_list() {
    let sid = format!("SyncId={GUID_B}");
    let mut old = contact("u", "Dan", Some("dan@c"), Some(1), Some(&sid));
    old.fields.mobile_phone = Some("+1 555 0100".into());
    old.fields.business_phones = vec!["+1 555 0101".into()];
    let mut newer = old.clone();
    newer.id = "h".into();
    newer.last_modified_date_time = Some(ts(50));
    newer.fields.mobile_phone = None;
    newer.fields.business_phones = vec![];
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
    assert_eq!(t.users[0].contacts[0].fields.mobile_phone, None);
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
