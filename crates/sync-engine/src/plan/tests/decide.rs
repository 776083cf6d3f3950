//! Phase 1 and the plan as a whole: the winner, the SyncId and CreatedBy, which copies get an
//! update, a stamp or a create, and a deterministic order.

use super::*;

#[test]
fn empty_tenant_plans_nothing() {
    let p = run(vec![], vec![mbx("a@contoso.com", vec![])], true);
    assert_eq!(p, Plan::default());
}

#[test]
fn user_contact_reaches_hub_and_other_users_and_source_is_stamped() {
    let users = vec![
        mbx("b@contoso.com", vec![]),
        mbx(
            "a@contoso.com",
            vec![contact(
                "a1",
                "Adele",
                Some("adele@contoso.com"),
                Some(5),
                Some("my text"),
            )],
        ),
    ];
    let p = run(vec![], users.clone(), true);
    assert_eq!(
        summary(&p),
        [
            (1, Action::Create, HUB.into(), None),
            (1, Action::Stamp, "a@contoso.com".into(), Some("a1".into())),
            (2, Action::Create, "b@contoso.com".into(), None),
        ]
    );
    let sid = "00000000-0000-4000-8000-000000000001";
    assert!(p.operations.iter().all(|o| o.sync_id == sid));
    let hub_create = &p.operations[0];
    assert_eq!(hub_create.created_by, "a@contoso.com");
    assert_eq!(hub_create.source_mailbox, "a@contoso.com");
    assert_eq!(
        hub_create.expected_notes,
        format!(
            "SyncId={sid};CreatedBy=a@contoso.com;LastUpdatedAt={};LastUpdatedBy=a@contoso.com",
            tags::format_round_trip(now())
        )
    );
    assert_eq!(hub_create.body()["displayName"], json!("Adele"));
    // The source keeps its own text; only the tag line is added (docs/compatibility.md §5 FIX).
    let stamp = &p.operations[1];
    assert!(stamp.expected_notes.starts_with("my text\r\nSyncId="));
    assert_eq!(if_match(stamp), Some("W/\"a1\""));
    // Step 2 writes come from the hub.
    assert_eq!(p.operations[2].source_mailbox, HUB);
    assert_converges(vec![], users, true);
}

#[test]
fn newest_edit_wins_across_users_regardless_of_order() {
    let sid = format!("SyncId={GUID_B};CreatedBy=x");
    let mut hub_c = contact("h", "Bob", Some("bob@contoso.com"), Some(1), Some(&sid));
    hub_c.fields.set(Field::JobTitle, "Dev");
    let mut u1 = hub_c.clone();
    u1.set_id("u1c");
    u1.set_last_modified(Some(ts(9)));
    u1.fields.set(Field::JobTitle, "Lead");
    let mut u2 = hub_c.clone();
    u2.set_id("u2c");
    u2.set_last_modified(Some(ts(5)));
    u2.fields.set(Field::JobTitle, "Manager");
    for users in [
        vec![mbx("u1@c", vec![u1.clone()]), mbx("u2@c", vec![u2.clone()])],
        vec![mbx("u2@c", vec![u2.clone()]), mbx("u1@c", vec![u1.clone()])],
    ] {
        let p = run(vec![hub_c.clone()], users.clone(), true);
        assert_eq!(
            summary(&p),
            [
                (1, Action::Update, HUB.into(), Some("h".into())),
                (2, Action::Update, "u2@c".into(), Some("u2c".into())),
            ]
        );
        assert_eq!(p.operations[0].body()["jobTitle"], json!("Lead"));
        assert_eq!(p.operations[0].source_mailbox, "u1@c");
        assert_eq!(p.operations[1].body()["jobTitle"], json!("Lead"));
        assert_eq!(p.operations[1].changes()[0].old, "Manager");
        assert_converges(vec![hub_c.clone()], users, true);
    }
}

#[test]
fn ties_go_to_the_hub_then_mailbox_order_and_still_converge() {
    let mut h = contact("h", "Cara", Some("cara@c"), Some(7), None);
    h.fields.set(Field::CompanyName, "Hub Co");
    let mut a = contact("a", "Cara", Some("cara@c"), Some(7), None);
    a.fields.set(Field::CompanyName, "A Co");
    let p = run(vec![h.clone()], vec![mbx("a@c", vec![a.clone()])], true);
    let upd: Vec<_> = p
        .operations
        .iter()
        .filter(|o| o.action() == Action::Update)
        .collect();
    assert_eq!(upd.len(), 1);
    assert_eq!(upd[0].mailbox, "a@c");
    assert_eq!(upd[0].body()["companyName"], json!("Hub Co"));
    // Between users: the earlier mailbox in name order wins a tie.
    let mut b = a.clone();
    b.set_id("b");
    b.fields.set(Field::CompanyName, "B Co");
    let p = run(
        vec![],
        vec![mbx("b@c", vec![b.clone()]), mbx("a@c", vec![a.clone()])],
        true,
    );
    let hub_create = p
        .operations
        .iter()
        .find(|o| o.target == Target::Hub)
        .unwrap();
    assert_eq!(hub_create.body()["companyName"], json!("A Co"));
    assert_converges(vec![h], vec![mbx("a@c", vec![a.clone()])], true);
    assert_converges(vec![], vec![mbx("b@c", vec![b]), mbx("a@c", vec![a])], true);
}

#[test]
fn update_existing_off_only_creates_and_stamps() {
    let mut h = contact(
        "h",
        "Eve",
        Some("eve@c"),
        Some(50),
        Some(&format!("SyncId={GUID_B}")),
    );
    h.fields.set(Field::JobTitle, "New");
    let u = contact("u", "Eve", Some("eve@c"), Some(1), Some("text"));
    let p = run(
        vec![h.clone()],
        vec![mbx("u@c", vec![u.clone()]), mbx("v@c", vec![])],
        false,
    );
    assert_eq!(
        summary(&p),
        [
            (1, Action::Stamp, "u@c".into(), Some("u".into())),
            (2, Action::Create, "v@c".into(), None),
        ]
    );
    assert_converges(
        vec![h],
        vec![mbx("u@c", vec![u]), mbx("v@c", vec![])],
        false,
    );
}

#[test]
fn timestamps_missing_source_never_overwrites_target_without_is_older() {
    let sid = format!("SyncId={GUID_B}");
    let mut h = contact("h", "Fay", Some("fay@c"), None, Some(&sid));
    h.fields.set(Field::Surname, "Hub");
    let mut u = contact("u", "Fay", Some("fay@c"), None, Some(&sid));
    u.fields.set(Field::Surname, "User");
    assert_eq!(
        run(vec![h.clone()], vec![mbx("u@c", vec![u.clone()])], true).operations,
        vec![]
    );
    h.set_last_modified(Some(ts(1)));
    let p = run(vec![h], vec![mbx("u@c", vec![u])], true);
    assert_eq!(
        summary(&p),
        [(2, Action::Update, "u@c".into(), Some("u".into()))]
    );
}

#[test]
fn tag_differences_alone_are_not_a_change() {
    // Same SyncId, different CreatedBy / missing LastUpdatedAt: nothing to do.
    let h = contact(
        "h",
        "Ned",
        Some("ned@c"),
        Some(1),
        Some(&format!(
            "SyncId={GUID_B};CreatedBy=a;LastUpdatedAt=2026-01-01T00:00:00Z;LastUpdatedBy=b"
        )),
    );
    let u = contact(
        "u",
        "Ned",
        Some("ned@c"),
        Some(9),
        Some(&format!(
            "note\nsyncid = {};createdby=zz",
            GUID_B.to_uppercase()
        )),
    );
    assert_eq!(
        run(vec![h], vec![mbx("u@c", vec![u])], true).operations,
        vec![]
    );
}

#[test]
fn created_by_comes_from_tags_before_mailboxes() {
    // A user copy carrying the old script's CreatedBy (hub copy deleted): the re-created hub
    // contact and the copies created in other users keep that CreatedBy.
    let tagged = format!("SyncId={GUID_A};CreatedBy=adele@contoso.com");
    let users = vec![
        mbx(
            "u@c",
            vec![contact("u1", "Sam", Some("sam@c"), Some(3), Some(&tagged))],
        ),
        mbx("v@c", vec![]),
    ];
    let p = run(vec![], users, true);
    assert_eq!(p.operations.len(), 2, "{:?}", summary(&p));
    for op in &p.operations {
        assert_eq!(op.action(), Action::Create);
        assert_eq!(op.created_by, "adele@contoso.com");
        assert_eq!(op.sync_id, GUID_A.to_lowercase());
        assert!(op.expected_notes.contains(";CreatedBy=adele@contoso.com;"));
    }
    // The source copy already carries the SyncId (case-insensitively): no stamp.
    assert!(p.operations.iter().all(|o| o.contact_id().is_none()));
}

#[test]
fn unstamped_hub_contact_gets_a_sync_id_and_reaches_users() {
    let hub = vec![contact(
        "h",
        "Tia",
        Some("tia@c"),
        Some(1),
        Some("admin note"),
    )];
    let users = vec![mbx(
        "u@c",
        vec![contact("u", "Tia", Some("tia@c"), Some(1), None)],
    )];
    let p = run(hub.clone(), users.clone(), true);
    assert_eq!(
        summary(&p),
        [
            (1, Action::Stamp, HUB.into(), Some("h".into())),
            (1, Action::Stamp, "u@c".into(), Some("u".into())),
        ]
    );
    assert!(p.operations[0].expected_notes.starts_with(
        "admin note\r\nSyncId=00000000-0000-4000-8000-000000000001;CreatedBy=hub@contoso.com;"
    ));
    assert_converges(hub, users, true);
}

#[test]
fn plan_is_deterministic_and_independent_of_user_order() {
    let users = vec![
        mbx(
            "z@c",
            vec![contact("z1", "Oli", Some("oli@c"), Some(3), None)],
        ),
        mbx(
            "a@c",
            vec![
                contact("a1", "Pia", Some("pia@c"), Some(4), None),
                contact("a2", "Oli", Some("oli@c"), Some(2), None),
            ],
        ),
        mbx("m@c", vec![]),
    ];
    let p1 = run(vec![], users.clone(), true);
    let mut rev = users.clone();
    rev.reverse();
    let p2 = run(vec![], rev, true);
    assert_eq!(p1, p2);
    assert_eq!(
        serde_json::to_string(&p1).unwrap(),
        serde_json::to_string(&run(vec![], users, true)).unwrap()
    );
    // Sorted: step, then mailbox (hub first), then SyncId.
    let keys: Vec<_> = p1
        .operations
        .iter()
        .map(|o| {
            (
                o.step,
                o.target != Target::Hub,
                o.mailbox.clone(),
                o.sync_id.clone(),
            )
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}
