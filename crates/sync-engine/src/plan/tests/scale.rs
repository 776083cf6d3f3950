//! Inputs big enough to take the threaded passes (more than 10,000 contacts).

use super::*;
use crate::plan::keys::read_all;

#[test]
fn threaded_read_matches_sequential_read() {
    let snapshots: Vec<MailboxSnapshot> = (0..7)
        .map(|u| {
            mbx(
                &format!("u{u}@c"),
                (0..2_000)
                    .map(|i| {
                        contact(
                            &format!("{u}-{i}"),
                            &format!("P {i}"),
                            Some(&format!("P{i}@C")),
                            Some(i),
                            None,
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let refs: Vec<&MailboxSnapshot> = snapshots.iter().collect();
    let (threaded, links, missing) = read_all(
        &refs,
        7 * 2_000,
        &[None; 7],
        FieldSet::DEFAULT,
        &Default::default(),
    );
    assert!(missing.iter().all(Vec::is_empty));
    assert_eq!(links.len(), 7);
    assert_eq!(threaded.len(), 7);
    for (folder, s) in snapshots.iter().enumerate() {
        assert_eq!(threaded[folder].len(), s.contacts.len());
        for (i, c) in s.contacts.iter().enumerate() {
            let one = KeyedContact::new(c);
            let t = &threaded[folder][i];
            assert!(std::ptr::eq(t.contact, c));
            let expected = if one.has_key() {
                Link::Unlinked
            } else {
                Link::NoKey
            };
            assert!(links[folder][i] == expected);
            assert_eq!(
                (t.email(), t.name(), t.sync_id, t.modified),
                (one.email(), one.name(), one.sync_id, one.modified)
            );
        }
    }
}

/// A big plan (> 10,000 writes, decided folder by folder on several threads, then built from
/// pending records): every operation belongs to its own copy (id, mailbox, etag, the copy's own
/// note text), the list is in plan order, and applying it converges (I1).
#[test]
fn big_plan_keeps_each_write_with_its_copy() {
    let users: Vec<MailboxSnapshot> = (0..11)
        .map(|u| {
            mbx(
                &format!("u{u:02}@c"),
                (0..1_000)
                    .map(|i| {
                        let note = format!("note {u}-{i}");
                        let mut c = contact(
                            &format!("u{u}-{i}"),
                            &format!("P{i}"),
                            Some(&format!("p{i}@c")),
                            Some(i + u),
                            Some(&note),
                        );
                        // Copies differ (updates) except in every third user (stamps only).
                        if u % 3 != 0 {
                            c.fields.set(Field::MobilePhone, format!("+1 {u}"));
                        }
                        c
                    })
                    .collect(),
            )
        })
        .collect();
    let mut t = Tenant::new(mbx(HUB, vec![]), users);
    let mut ids = sequential_ids(0);
    let p = plan(&t.input(true), &mut ids);
    assert!(p.operations.len() > 10_000, "{}", p.operations.len());
    let mut last = (0, String::new());
    for op in &p.operations {
        let pos = (op.step, op.mailbox.clone());
        assert!(pos >= last, "out of order: {pos:?} after {last:?}");
        last = pos;
        if let Some(id) = op.contact_id() {
            let (u, i) = id[1..].split_once('-').unwrap();
            let u: usize = u.parse().unwrap();
            assert_eq!(op.mailbox, format!("u{u:02}@c"));
            assert!(
                op.expected_notes
                    .starts_with(&format!("note {u}-{i}\r\nSyncId="))
            );
            assert_eq!(if_match(op), Some(format!("W/\"{id}\"").as_str()));
            assert_eq!(
                op.action() == Action::Update,
                u != 10 && op.body().contains_key("mobilePhone")
            );
        }
    }
    t.apply(&p).unwrap();
    let again = plan(&t.input(true), &mut ids);
    assert!(again.operations.is_empty(), "{:?}", again.operations.len());
}
