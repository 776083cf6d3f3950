//! The matching ladder (SyncId → email → displayName), the old script's tag lines, duplicates
//! and other data problems, and creates that would duplicate a key.

use super::*;

#[test]
fn old_script_stamps_produce_no_creates_and_no_writes() {
    // Exactly what the script left in real mailboxes: the old two-field line with an upper-case
    // GUID, and the four-field line, both matching the hub's lower-case SyncId.
    let two_field = format!("SyncId={GUID_A};CreatedBy=adele@contoso.com");
    let four_field = format!(
        "Call after 5\r\nSyncId={};CreatedBy=adele@contoso.com;LastUpdatedAt=2026-01-05T08:00:00.1234567Z;LastUpdatedBy=hub@contoso.com",
        GUID_A.to_lowercase()
    );
    let hub = vec![contact(
        "h1",
        "Adele",
        Some("adele@contoso.com"),
        Some(10),
        Some(&four_field),
    )];
    let users = vec![
        mbx(
            "u1@contoso.com",
            vec![contact(
                "x",
                "Adele",
                Some("adele@contoso.com"),
                Some(3),
                Some(&two_field),
            )],
        ),
        mbx(
            "u2@contoso.com",
            vec![contact(
                "y",
                "Adele",
                Some("adele@contoso.com"),
                Some(4),
                Some(&four_field),
            )],
        ),
    ];
    let p = run(hub, users, true);
    assert_eq!(p.operations, vec![]);
    assert_eq!(p.problems, vec![]);
}

#[test]
fn old_script_stamps_with_different_data_update_in_place_no_create() {
    let two_field = format!("SyncId={GUID_A};CreatedBy=adele@contoso.com");
    let hub = vec![contact(
        "h1",
        "Adele Vance",
        Some("adele@contoso.com"),
        Some(10),
        Some(&two_field),
    )];
    let users = vec![mbx(
        "u1@contoso.com",
        vec![contact(
            "x",
            "Adele V.",
            Some("other@contoso.com"),
            Some(3),
            Some(&two_field),
        )],
    )];
    let p = run(hub.clone(), users.clone(), true);
    assert_eq!(
        summary(&p),
        [(2, Action::Update, "u1@contoso.com".into(), Some("x".into()))]
    );
    let op = &p.operations[0];
    assert_eq!(op.sync_id, GUID_A.to_lowercase());
    assert_eq!(
        op.created_by, "adele@contoso.com",
        "CreatedBy kept from the copy's own tags"
    );
    assert_eq!(
        op.changes()
            .iter()
            .map(|c| c.field.json_name())
            .collect::<Vec<_>>(),
        ["displayName", "emailAddresses"]
    );
    assert_converges(hub, users, true);
}

#[test]
fn matching_ladder_email_trimmed_lowercased_name_only_without_email() {
    let hub = vec![
        contact(
            "h1",
            "Gus",
            Some("gus@contoso.com"),
            Some(1),
            Some(&format!("SyncId={GUID_A}")),
        ),
        contact(
            "h2",
            "Hal",
            None,
            Some(1),
            Some(&format!("SyncId={GUID_B}")),
        ),
    ];
    let users = vec![mbx(
        "u@c",
        vec![
            contact("u1", "Gus", Some("  GUS@Contoso.com "), Some(1), None),
            contact("u2", "hal", None, Some(1), None),
            // Has an email, so its displayName is never used to match: a new contact.
            contact("u3", "Hal", Some("hal@elsewhere.com"), Some(1), None),
        ],
    )];
    let p = run(hub.clone(), users.clone(), true);
    let stamps: Vec<_> = p
        .operations
        .iter()
        .filter(|o| o.action() != Action::Create)
        .map(|o| {
            (
                o.contact_id().map(str::to_owned).unwrap(),
                o.sync_id.clone(),
            )
        })
        .collect();
    assert!(stamps.contains(&("u1".into(), GUID_A.to_lowercase())));
    assert!(stamps.contains(&("u2".into(), GUID_B.into())));
    let creates: Vec<_> = p
        .operations
        .iter()
        .filter(|o| o.action() == Action::Create)
        .collect();
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].target, Target::Hub);
    assert_eq!(creates[0].email.as_deref(), Some("hal@elsewhere.com"));
    assert_converges(hub, users, true);
}

#[test]
fn duplicates_in_a_folder_are_reported_never_multiplied_never_written() {
    let sid = format!("SyncId={GUID_A}");
    let hub = vec![contact("h1", "Ivy", Some("ivy@c"), Some(1), Some(&sid))];
    let users = vec![mbx(
        "u@c",
        vec![
            contact("d1", "Ivy", Some("ivy@c"), Some(9), None),
            contact("d2", "Ivy Two", Some("IVY@c"), Some(9), None),
        ],
    )];
    let p = run(hub.clone(), users.clone(), true);
    // d1 is the copy (first wins); d2 is left alone.
    assert!(p.operations.iter().all(|o| o.contact_id() != Some("d2")));
    assert!(p.operations.iter().all(|o| o.action() != Action::Create));
    assert!(kinds(&p).contains(&ProblemKind::DuplicateEmail));
    assert!(kinds(&p).contains(&ProblemKind::ExtraCopy));
    let t = assert_converges(hub, users, true);
    assert_eq!(t.users[0].contacts.len(), 2);
    assert_eq!(t.hub.contacts.len(), 1);
}

#[test]
fn duplicate_sync_ids_in_hub_second_left_alone() {
    let sid = format!("SyncId={GUID_A}");
    let hub = vec![
        contact("h1", "Jo", Some("jo@c"), Some(1), Some(&sid)),
        contact("h2", "Jo", Some("jo@c"), Some(2), Some(&sid)),
    ];
    let p = run(hub.clone(), vec![mbx("u@c", vec![])], true);
    assert_eq!(summary(&p), [(2, Action::Create, "u@c".into(), None)]);
    assert!(kinds(&p).contains(&ProblemKind::DuplicateSyncId));
    assert_converges(hub, vec![mbx("u@c", vec![])], true);
}

#[test]
fn unknown_sync_id_is_recreated_in_hub_with_the_same_id() {
    let users = vec![
        mbx(
            "u@c",
            vec![contact(
                "u1",
                "Kim",
                Some("kim@c"),
                Some(1),
                Some(&format!("SyncId={GUID_B}")),
            )],
        ),
        mbx(
            "v@c",
            vec![contact("v1", "Kim", Some("kim@c"), Some(2), None)],
        ),
    ];
    let p = run(vec![], users.clone(), true);
    let hub_create = &p.operations[0];
    assert_eq!(
        (hub_create.action(), hub_create.target),
        (Action::Create, Target::Hub)
    );
    assert_eq!(hub_create.sync_id, GUID_B);
    assert!(kinds(&p).contains(&ProblemKind::UnknownSyncId));
    // v1 is the same logical contact (by email): stamped, not duplicated in v.
    assert!(p.operations.iter().any(|o| o.contact_id() == Some("v1")));
    assert!(
        !p.operations
            .iter()
            .any(|o| o.mailbox == "v@c" && o.action() == Action::Create)
    );
    assert_converges(vec![], users, true);
}

#[test]
fn contact_without_email_or_name_is_reported_and_left_alone() {
    let users = vec![mbx(
        "u@c",
        vec![contact("n", "", None, Some(1), Some("phone only"))],
    )];
    let p = run(vec![], users, true);
    assert_eq!(p.operations, vec![]);
    assert_eq!(kinds(&p), [ProblemKind::NoEmailOrName]);
}

#[test]
fn create_never_duplicates_an_existing_key_in_the_target() {
    // Two hub contacts with different SyncIds but one email; a user holding one unstamped copy
    // must not receive a second contact with that email.
    let hub = vec![
        contact(
            "h1",
            "Quinn",
            Some("q@c"),
            Some(1),
            Some(&format!("SyncId={GUID_A}")),
        ),
        contact(
            "h2",
            "Quinn 2",
            Some("q@c"),
            Some(1),
            Some(&format!("SyncId={GUID_B}")),
        ),
    ];
    let users = vec![
        mbx(
            "u@c",
            vec![contact("u1", "Quinn", Some("q@c"), Some(1), None)],
        ),
        mbx("v@c", vec![]),
    ];
    let p = run(hub.clone(), users.clone(), true);
    assert!(
        !p.operations
            .iter()
            .any(|o| o.mailbox == "u@c" && o.action() == Action::Create)
    );
    assert_eq!(
        p.operations.iter().filter(|o| o.mailbox == "v@c").count(),
        1
    );
    assert!(kinds(&p).contains(&ProblemKind::CreateSuppressed));
    assert_converges(hub, users, true);
}
