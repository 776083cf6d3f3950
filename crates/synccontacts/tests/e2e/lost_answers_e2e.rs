//! Answers that never came or came too late: an update applied whose answer was lost (issue 11,
//! bug 1) and a contact deleted between the folder listing and its re-read by id (bug 3).

use graph_emulator::FaultPlan;
use serde_json::{Value, json};

use crate::harness::*;

const SYNC_A: &str = "0a0a0a0a-1111-4222-8333-444444444444";
const SYNC_B: &str = "0b0b0b0b-1111-4222-8333-444444444444";
const ADELE: &str = "adele@contoso.com";

/// The hub holds two contacts newer than Adele's copies of them: the run updates both of
/// Adele's copies (two PATCHes, so a batched run sends them in one `$batch`).
fn two_stale_copies() -> graph_emulator::Scenario {
    let copy = |name: &str, email: &str, modified: &str, job: &str, sync_id: &str| {
        with(
            with(contact(name, Some(email), modified), "jobTitle", json!(job)),
            "personalNotes",
            json!(tag4(sync_id, ADELE)),
        )
    };
    scenario(vec![
        hub_with(Some(vec![
            copy(
                "Alex Wilber",
                "alex@fabrikam.com",
                "2026-03-01T00:00:00Z",
                "Lead",
                SYNC_A,
            ),
            copy(
                "Bianca Pisani",
                "bianca@fabrikam.com",
                "2026-03-01T00:00:00Z",
                "Director",
                SYNC_B,
            ),
        ])),
        user(
            ADELE,
            vec![
                copy(
                    "Alex Wilber",
                    "alex@fabrikam.com",
                    "2026-01-01T00:00:00Z",
                    "Developer",
                    SYNC_A,
                ),
                copy(
                    "Bianca Pisani",
                    "bianca@fabrikam.com",
                    "2026-01-01T00:00:00Z",
                    "Manager",
                    SYNC_B,
                ),
            ],
        ),
    ])
}

/// Waits until `mailbox` has seen two GETs: its folder listing and a re-read by id (counted
/// when it arrives, so a delay fault still holds it).
async fn wait_for_reread(emu: &Emu, mailbox: &str) {
    let mut waited = 0;
    while emu.stats().by_mailbox.get(mailbox).map_or(0, |m| m.get) < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        waited += 5;
        assert!(waited < 60_000, "the re-read never came");
    }
}

fn plan(rules: Vec<Value>) -> FaultPlan {
    serde_json::from_value(json!({ "rules": rules })).expect("fault plan")
}

/// Issue 11, bug 1: Adele's first PATCH is applied but its answer is lost (a 504 after applying,
/// or the connection dropped after applying). The client repeats it with the etag read at the
/// start, which the applied attempt changed: 412, an unconfirmed write. Re-reading the contact
/// shows it holds what was sent, so the update is done — not a conflict, not a failure — the run
/// exits 0, and the next run writes nothing. Direct and batched (where a dropped connection
/// loses the whole `$batch`'s answer, so both updates come back 412).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_applied_whose_answer_was_lost_is_done_not_a_conflict() {
    for batch in [false, true] {
        for fault in [
            json!({"status": 504, "afterApply": true}),
            json!({"drop": "after"}),
        ] {
            let name = format!("batch={batch} fault={fault}");
            let emu = Emu::start(two_stale_copies()).await;
            let mut env = one_tenant(&emu);
            env.push(var("AUTOMATION_SYNCCONTACTS_BATCH", batch.to_string()));
            emu.inner.set_faults(plan(vec![
                json!({"match": {"method": "PATCH", "mailbox": ADELE}, "nth": 1, "action": fault}),
            ]));
            let r = sync(&env, &[]).await;
            assert_eq!(r.code, 0, "{name}\n{}\n{}", r.stdout, r.stderr);
            assert_eq!(r.results(), vec!["done", "done"], "{name}\n{}", r.stdout);
            assert_eq!(r.tenant(0)["step2"]["updated"], 2, "{name}");
            assert_eq!(r.tenant(0)["step2"]["conflicts"], 0, "{name}");
            assert!(
                r.stderr.contains("applied by an earlier attempt"),
                "{name}: the fault did not fire\n{}",
                r.stderr
            );
            let jobs: Vec<Option<String>> = emu
                .contacts(ADELE)
                .iter()
                .map(|c| s(c, "jobTitle").map(str::to_owned))
                .collect();
            assert_eq!(
                jobs,
                vec![Some("Lead".into()), Some("Director".into())],
                "{name}"
            );
            emu.inner.set_faults(FaultPlan::default());
            emu.reset();
            let r = sync(&env, &[]).await;
            assert_eq!(r.code, 0, "{name}: second run\n{}", r.stderr);
            assert_eq!(emu.writes(), 0, "{name}: the second run wrote");
        }
    }
}

/// A 412 after a lost answer whose contact does not hold what we sent stays a conflict: Adele's
/// first PATCH is applied and answered 504, its repeat gets 412, and while the client's re-read
/// is held up (a fault delays it 5 s after it arrived: room for a loaded CI machine) Adele edits the contact. The re-read sees her
/// edit, not our write: a conflict, exit 0, and the next run lets her newer edit win.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_then_a_users_edit_is_still_a_conflict() {
    let emu = Emu::start(two_stale_copies()).await;
    let cid = s(&emu.contacts(ADELE)[0], "id").unwrap().to_owned();
    let mut env = one_tenant(&emu);
    env.push(var("AUTOMATION_SYNCCONTACTS_BATCH", "false"));
    // The rules name Adele's contact by id: her two PATCHes may reach the emulator in either
    // order, so "her first PATCH" could be the other contact's (CI saw exactly that once).
    let by_id = format!(
        "/v1.0/users/*/contacts/{}",
        graph::path::encode_segment(&cid)
    );
    emu.inner.set_faults(plan(vec![
        json!({"match": {"method": "PATCH", "path": by_id, "mailbox": ADELE}, "nth": 1,
               "action": {"status": 504, "afterApply": true}}),
        // Only the re-read by id has this shape (the folder listing has no id segment).
        json!({"match": {"method": "GET", "path": by_id, "mailbox": ADELE},
               "action": {"delayMs": 5000}}),
    ]));
    let running = tokio::spawn({
        let env = env.clone();
        async move { sync(&env, &[]).await }
    });
    // The listing is Adele's first GET; the re-read her second, counted when it arrives.
    wait_for_reread(&emu, ADELE).await;
    emu.touch(ADELE, &cid, &json!({"jobTitle": "Edited by Adele"}))
        .await;
    let r = running.await.unwrap();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.results(), vec!["conflict", "done"], "{}", r.stdout);
    assert!(r.stdout.contains("Changed since read"), "{}", r.stdout);
    assert_eq!(
        s(&emu.contacts(ADELE)[0], "jobTitle"),
        Some("Edited by Adele")
    );
    emu.inner.set_faults(FaultPlan::default());
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let hub = emu.hub_contacts().unwrap();
    assert_eq!(s(&hub[0], "jobTitle"), Some("Edited by Adele"));
}

/// Adele deletes a contact as Outlook would, through Graph (the test's own client).
async fn delete_as_graph(emu: &Emu, mailbox: &str, contact_id: &str) {
    let endpoints = graph::Endpoints::new(&emu.url(), &emu.url()).unwrap();
    let config = graph::ClientConfig::new(
        TENANT,
        CLIENT,
        graph::Credential::Secret(graph::Secret::new(SECRET)),
        endpoints,
    );
    let client = graph::GraphClient::new(config).unwrap();
    let delete = graph::WriteRequest::delete(graph::FolderRef::Default, contact_id, None);
    let r = client
        .execute_writes::<Value>(mailbox, vec![delete])
        .await
        .remove(0);
    assert!(r.is_ok(), "the test's DELETE failed: {r:?}");
}

/// Issue 11, bug 3: a contact whose listed notes may be mangled is read again by id; when it was
/// deleted between the folder listing and that re-read, the 404 drops it from the snapshot (one
/// warning line) instead of failing the whole mailbox. The rest of the mailbox syncs, exit 0, and
/// the deleted contact is not written anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_deleted_before_its_re_read_is_left_out_not_a_failed_mailbox() {
    let emu = Emu::start(scenario(vec![
        hub_with(None),
        user(
            ADELE,
            vec![
                // One line of user text, no line break: the listing may have mangled it.
                with(
                    contact(
                        "Alex Wilber",
                        Some("alex@fabrikam.com"),
                        "2026-01-01T00:00:00Z",
                    ),
                    "personalNotes",
                    json!("met at the fair"),
                ),
                contact(
                    "Bianca Pisani",
                    Some("bianca@fabrikam.com"),
                    "2026-01-01T00:00:00Z",
                ),
            ],
        ),
        user("megan@contoso.com", vec![]),
    ]))
    .await;
    let alex = s(&emu.contacts(ADELE)[0], "id").unwrap().to_owned();
    emu.inner.set_faults(plan(vec![
        json!({"match": {"method": "GET", "path": "/v1.0/users/*/contacts/*", "mailbox": ADELE},
               "action": {"delayMs": 5000}}),
    ]));
    let env = one_tenant(&emu);
    let running = tokio::spawn({
        let env = env.clone();
        async move { sync(&env, &[]).await }
    });
    // Adele's listing, then the re-read (counted when it arrives, held by the delay).
    wait_for_reread(&emu, ADELE).await;
    delete_as_graph(&emu, ADELE, &alex).await;
    let r = running.await.unwrap();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.tenant(0)["failedMailboxes"], json!([]), "{}", r.stdout);
    let warnings: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| l.contains(&alex) && l.contains("deleted"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", r.stderr);
    let emails = |cs: Vec<serde_json::Map<String, Value>>| -> Vec<String> {
        cs.iter().filter_map(email).collect()
    };
    assert_eq!(emails(emu.contacts(ADELE)), vec!["bianca@fabrikam.com"]);
    assert_eq!(
        emails(emu.hub_contacts().unwrap()),
        vec!["bianca@fabrikam.com"]
    );
    assert_eq!(
        emails(emu.contacts("megan@contoso.com")),
        vec!["bianca@fabrikam.com"]
    );
}
