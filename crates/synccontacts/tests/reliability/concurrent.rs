//! I9: a contact a user edits between our read and our write is not overwritten blindly. The
//! write to it is slowed down by a fault (`delayMs`), the emulator's `touch` edits the contact
//! as its owner would while our request waits, our `If-Match` (the etag read at the start) no
//! longer matches and Graph answers 412: the user's edit survives, the run reports a conflict
//! (not a failure), and the next run lets the newer edit win everywhere, then goes quiet.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::harness::{self, contact, hub_with, scenario, tag4, user, with};
use crate::kit::{self, SharedEmu};

const S_BOB: &str = "5b0b0000-0000-4000-8000-00000000b0b0";

/// Bob's newer copy must reach alice's stale one (an update), and alice's unstamped Ann must be
/// stamped (a notes-only write): two kinds of PATCH to alice, each guarded by If-Match.
fn scenario_for_edits() -> graph_emulator::Scenario {
    let tagged = |c: Map<String, Value>, by: &str| with(c, "personalNotes", json!(tag4(S_BOB, by)));
    let bob_old = contact("Bob Ray", Some("bob@fabrikam.com"), "2026-03-01T10:00:00Z");
    let bob_new = with(
        contact("Bob Ray", Some("bob@fabrikam.com"), "2026-04-01T10:00:00Z"),
        "mobilePhone",
        json!("+1 555 0100"),
    );
    let ann = with(
        contact("Ann Lee", Some("ann@fabrikam.com"), "2026-02-01T10:00:00Z"),
        "personalNotes",
        json!("first note"),
    );
    scenario(vec![
        hub_with(Some(vec![tagged(bob_old.clone(), "bob@contoso.com")])),
        user(
            "alice@contoso.com",
            vec![tagged(bob_old, "bob@contoso.com"), ann],
        ),
        user("bob@contoso.com", vec![tagged(bob_new, "bob@contoso.com")]),
    ])
}

fn id_of(emu: &harness::Emu, upn: &str, email: &str) -> String {
    let cs = emu.contacts(upn);
    harness::s(&harness::by_email(&cs)[email], "id")
        .unwrap()
        .to_owned()
}

/// Waits until the emulator has seen a PATCH to `upn` (our delayed write is then in its
/// window), then edits the contact as its owner.
async fn touch_during_write(emu: SharedEmu, upn: &str, id: &str, edit: Value) {
    let http = reqwest::Client::new();
    for _ in 0..2_000 {
        let patching = emu
            .stats()
            .by_mailbox
            .get(upn)
            .is_some_and(|m| m.patch >= 1);
        if patching {
            // Graph's lastModifiedDateTime has whole seconds and a tie goes to the hub's copy
            // (docs/sync-rules.md §2), so an edit in the very second of our hub write would lose
            // next run; the user edits a couple of seconds later here.
            emu.inner.advance_clock(Duration::from_secs(2));
            let r = http
                .post(format!(
                    "{}/_emulator/users/{upn}/contacts/{id}/touch",
                    emu.url()
                ))
                .json(&edit)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "touch: {}", r.status());
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("our write to {upn} never came");
}

async fn edited_mid_write(email: &str, edit: Value) -> (SharedEmu, kit::LibRun) {
    let emu = kit::start(scenario_for_edits()).await;
    let vars = kit::tenant_env(&emu, false);
    let alice = "alice@contoso.com";
    let id = id_of(&emu, alice, email);
    emu.inner.set_faults(kit::plan(
        1,
        vec![
            // Every write to alice waits 300 ms: the window in which she edits.
            json!({"match": {"method": "PATCH", "mailbox": alice},
                     "action": {"delayMs": 300}}),
        ],
    ));
    let (run, ()) = tokio::join!(
        kit::sync_lib(&emu, &vars, false),
        touch_during_write(emu.clone(), alice, &id, edit)
    );
    (emu, run)
}

fn result_for(run: &kit::LibRun, mailbox: &str, email: &str) -> String {
    run.actions()
        .iter()
        .find(|a| a["mailbox"] == mailbox && a["email"] == email)
        .map(|a| a["result"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| panic!("no action for {email} in {mailbox}: {}", run.report))
}

#[tokio::test]
async fn an_update_racing_a_user_edit_gets_412_and_the_edit_wins() {
    let (emu, run) =
        edited_mid_write("bob@fabrikam.com", json!({"jobTitle": "Edited by Alice"})).await;
    let alice = "alice@contoso.com";
    assert_eq!(result_for(&run, alice, "bob@fabrikam.com"), "conflict");
    assert_eq!(
        run.code(),
        0,
        "a conflict is left for the next run, not a failure"
    );
    assert_eq!(
        emu.stats().by_mailbox[alice].patch,
        2,
        "the 412 was not retried (one update, one stamp of Ann)"
    );
    let bob_at_alice = &harness::by_email(&emu.contacts(alice))["bob@fabrikam.com"];
    assert_eq!(
        harness::s(bob_at_alice, "jobTitle"),
        Some("Edited by Alice")
    );
    assert_eq!(
        harness::s(bob_at_alice, "mobilePhone"),
        None,
        "our stale write did not land on top of the edit"
    );

    // The next run sees alice's edit as the newest copy: it wins everywhere (docs/sync-rules.md §2.2: newest wins).
    emu.inner.set_faults(kit::plan(0, vec![]));
    let vars = kit::tenant_env(&emu, false);
    kit::converge(&emu, &vars, 2).await;
    for (mailbox, cs) in kit::folders(&emu) {
        let bob = &harness::by_email(&cs)["bob@fabrikam.com"];
        assert_eq!(
            harness::s(bob, "jobTitle"),
            Some("Edited by Alice"),
            "{mailbox}"
        );
    }
    kit::assert_no_duplicates(&emu, "I9 update");
    kit::assert_second_run_writes_nothing(&emu, &vars, "I9 update").await;
}

#[tokio::test]
async fn a_stamp_racing_a_note_edit_gets_412_and_the_note_survives() {
    let (emu, run) = edited_mid_write(
        "ann@fabrikam.com",
        json!({"personalNotes": "first note\nsecond note, typed during the run"}),
    )
    .await;
    let alice = "alice@contoso.com";
    assert_eq!(result_for(&run, alice, "ann@fabrikam.com"), "conflict");
    assert_eq!(run.code(), 0);
    let text = |emu: &harness::Emu, upn: &str| {
        harness::user_text(&harness::by_email(&emu.contacts(upn))["ann@fabrikam.com"])
    };
    assert_eq!(
        text(&emu, alice),
        "first note\nsecond note, typed during the run"
    );

    emu.inner.set_faults(kit::plan(0, vec![]));
    let vars = kit::tenant_env(&emu, false);
    kit::converge(&emu, &vars, 2).await;
    // Stamped now, and the note text is the user's, whole (I3).
    let ann = &harness::by_email(&emu.contacts(alice))["ann@fabrikam.com"];
    assert!(harness::sync_id(ann).is_some());
    assert_eq!(
        text(&emu, alice),
        "first note\nsecond note, typed during the run"
    );
    assert!(harness::by_email(&emu.hub_contacts().unwrap()).contains_key("ann@fabrikam.com"));
    kit::assert_no_duplicates(&emu, "I9 stamp");
    kit::assert_second_run_writes_nothing(&emu, &vars, "I9 stamp").await;
}
