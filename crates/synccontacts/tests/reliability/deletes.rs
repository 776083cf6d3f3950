//! Deletes through the real binary against the emulator (issue 12;
//! docs/reliability.md I11–I13, I1): a contact deleted from the hub leaves every user, only as
//! tagged copies (untagged look-alikes stay, and nothing brings it back); a run that would remove
//! many contacts holds every delete, applies the rest and exits 4 until `--allow-deletes` releases
//! them; a hub listing that fails midway or comes back emptied never yields a deletion. The
//! emulator's stats and deletion log are the oracles.

use serde_json::{Map, Value, json};

use crate::harness::{self, Emu, HUB, by_email, contact, email, s, scenario, sync, sync_id, user};
use crate::kit;
use crate::memory::{
    ADELE, MEGAN, StateDir, assert_no_duplicate, assert_quiet_run, converged, delete_from_hub,
    deletes, sid, state_word, with_state,
};

/// I11: Alex is deleted from "All Contacts". The next run deletes every copy carrying his SyncId
/// (Adele's and Megan's), keeps Megan's untagged look-alike (same email, no tag), and neither that
/// run nor two later ones bring him back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i11_a_hub_deletion_removes_every_tagged_copy_and_keeps_untagged_look_alikes() {
    let alex = |modified: &str| contact("Alex Wilber", Some("alex@fabrikam.com"), modified);
    let bianca = contact(
        "Bianca Pisani",
        Some("bianca@fabrikam.com"),
        "2026-01-01T00:00:00Z",
    );
    let emu = Emu::start(scenario(vec![
        harness::hub_with(None),
        user(ADELE, vec![alex("2026-01-02T00:00:00Z"), bianca.clone()]),
        // Megan has Alex twice: the first run stamps one and leaves the other (a duplicate).
        user(
            MEGAN,
            vec![
                alex("2026-01-01T00:00:00Z"),
                alex("2026-01-01T00:00:00Z"),
                bianca,
            ],
        ),
        user("bob@contoso.com", vec![]),
    ]))
    .await;
    let state = StateDir::new();
    let vars = with_state(&harness::one_tenant(&emu), &state.path);
    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let hub = by_email(&emu.hub_contacts().unwrap());
    let alex_id = sync_id(&hub["alex@fabrikam.com"]).unwrap();
    let megan_alexes = |emu: &Emu| -> Vec<Map<String, Value>> {
        emu.contacts(MEGAN)
            .into_iter()
            .filter(|c| email(c).as_deref() == Some("alex@fabrikam.com"))
            .collect()
    };
    let tagged = megan_alexes(&emu)
        .iter()
        .filter(|c| sync_id(c).is_some())
        .count();
    assert_eq!(
        (megan_alexes(&emu).len(), tagged),
        (2, 1),
        "one stamped, one left alone"
    );

    delete_from_hub(&emu, &["alex@fabrikam.com".into()]).await;
    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(state_word(&r), "loaded");
    // Every deleted contact carried Alex's SyncId in its own tag line; one per tagged copy.
    let deleted = emu.inner.deleted();
    let mut who: Vec<&str> = Vec::new();
    for (mailbox, items) in &deleted {
        for d in items {
            assert_eq!(
                sync_id(&d.contact).as_deref(),
                Some(alex_id.as_str()),
                "{mailbox} lost {:?}",
                d.contact
            );
            who.push(mailbox);
        }
    }
    who.sort();
    assert_eq!(who, [ADELE, "bob@contoso.com", MEGAN], "{}", r.stdout);
    assert_eq!(deletes(&emu), 3);
    let lines: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("Deleted: NotesId="))
        .collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(
        lines[0].contains("Alex Wilber (alex@fabrikam.com) | in "),
        "{lines:?}"
    );
    assert!(
        r.stdout.contains("Deleted: 3"),
        "per-step count: {}",
        r.stdout
    );
    assert_eq!(
        r.tenant(0)["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["action"] == "delete" && a["result"] == "done")
            .count(),
        3
    );
    // The untagged look-alike stays, untouched, and is not collected back into the hub.
    let left = megan_alexes(&emu);
    assert_eq!(left.len(), 1);
    assert_eq!(sync_id(&left[0]), None);
    for run in ["third", "fourth"] {
        assert_quiet_run(&emu, &vars, run).await;
        let hub = by_email(&emu.hub_contacts().unwrap());
        assert!(
            !hub.contains_key("alex@fabrikam.com"),
            "{run} run resurrected Alex"
        );
        assert_eq!(megan_alexes(&emu).len(), 1, "{run}");
        assert!(
            emu.contacts(ADELE)
                .iter()
                .all(|c| email(c).as_deref() != Some("alex@fabrikam.com"))
        );
    }
}

/// I12: 12 of 80 hub contacts deleted (15 %): the run holds every delete (zero DELETE requests),
/// still applies an unrelated edit, lists what it held with the exact release command and exits
/// 4; `--allow-deletes 12` then releases them all, and the next run writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i12_the_brake_holds_every_delete_applies_the_rest_and_releases_on_request() {
    let emu = Emu::start(converged(80, &[ADELE, MEGAN])).await;
    let state = StateDir::new();
    let vars = with_state(&harness::one_tenant(&emu), &state.path);
    let r = sync(&vars, &[]).await;
    assert_eq!((r.code, emu.writes()), (0, 0), "{}", r.stderr);
    let gone: Vec<String> = (10..22)
        .map(|n| format!("person{n:03}@fabrikam.com"))
        .collect();
    delete_from_hub(&emu, &gone).await;
    // An unrelated edit, by Adele.
    let cid = crate::memory::contact_id(&emu, ADELE, "person050@fabrikam.com");
    emu.touch(ADELE, &cid, &json!({"jobTitle": "Lead"})).await;

    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(deletes(&emu), 0, "the brake let a DELETE through");
    assert!(r.last_line().ends_with("exit code 4"), "{}", r.last_line());
    for u in [HUB, MEGAN] {
        let cs = if u == HUB {
            emu.hub_contacts().unwrap()
        } else {
            emu.contacts(u)
        };
        assert_eq!(
            s(&by_email(&cs)["person050@fabrikam.com"], "jobTitle"),
            Some("Lead"),
            "{u}: the rest of the run was not applied"
        );
    }
    // Held, not re-created either.
    assert_eq!(emu.hub_contacts().unwrap().len(), 68);
    assert_eq!(emu.contacts(MEGAN).len(), 80);
    let held = r.tenant(0)["heldDeletes"].as_array().unwrap();
    assert_eq!(held.len(), 12, "{}", r.stdout);
    assert!(
        held.iter()
            .all(|h| h["reason"] == "brake" && h["copies"] == 2)
    );
    let command = format!(
        "synccontacts sync --tenant {} --allow-deletes 12",
        harness::TENANT
    );
    assert_eq!(r.tenant(0)["releaseCommand"], json!(command));
    assert_eq!(
        r.stdout
            .lines()
            .filter(|l| l.starts_with("Held delete: "))
            .count(),
        12,
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains(&format!("release them with: {command}")),
        "{}",
        r.stdout
    );
    // Held again by a run without the release (nothing else to do: it writes nothing).
    emu.reset();
    let r = sync(&vars, &[]).await;
    assert_eq!((r.code, emu.writes()), (4, 0), "{}", r.stdout);

    let release: Vec<&str> = command.split(' ').skip(2).collect();
    let r = sync(&vars, &release).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(deletes(&emu), 24, "{}", r.stdout);
    let deleted = emu.inner.deleted();
    for u in [ADELE, MEGAN] {
        let mut ids: Vec<String> = deleted[u]
            .iter()
            .map(|d| sync_id(&d.contact).unwrap())
            .collect();
        ids.sort();
        let want: Vec<String> = (10..22).map(sid).collect();
        assert_eq!(ids, want, "{u}");
        assert_eq!(emu.contacts(u).len(), 68);
    }
    assert_quiet_run(&emu, &vars, "after the release").await;
}

/// I13 (a): the hub's listing fails on its second page (more than 1,000 contacts, paged by
/// `$top=1000`; the hub's delta link expired, so the hub is listed whole): the tenant fails (exit 1) and nothing is written or deleted — a cut-short
/// listing is never read as "the rest was deleted". A good read afterwards carries out the one
/// real deletion, and no more.
#[tokio::test]
async fn i13_a_hub_listing_cut_short_never_yields_deletes() {
    let emu = kit::start(converged(1003, &[ADELE])).await;
    let state = StateDir::new();
    let vars = with_state(&harness::one_tenant(&emu), &state.path);
    let r = kit::sync_lib(&emu, &vars, false).await;
    assert_eq!((r.code(), emu.writes()), (0, 0), "{}", r.stdout);
    delete_from_hub(&emu, &["person007@fabrikam.com".into()]).await;
    // With a state the hub is read through its delta link (issue 14); expired links make the
    // run list the hub whole again (docs/graph-facts.md §2), which is the listing this test cuts
    // short.
    emu.inner.expire_delta_tokens();
    let listing = "/v1.0/users/*/contactFolders/*/contacts";
    emu.inner.set_faults(kit::plan(
        3,
        vec![
            // The first page as usual, every later one a server error (retried, then given up).
            json!({"match": {"method": "GET", "path": listing, "mailbox": HUB}, "nth": 1,
                   "action": {"delayMs": 0}}),
            json!({"match": {"method": "GET", "path": listing, "mailbox": HUB},
                   "probability": 1.0, "times": 1000, "action": {"status": 503}}),
        ],
    ));
    let r = kit::sync_lib(&emu, &vars, false).await;
    assert_eq!(r.code(), 1, "{}", r.stdout);
    assert_eq!((deletes(&emu), emu.writes()), (0, 0), "{}", r.stdout);
    assert_eq!(emu.contacts(ADELE).len(), 1003);

    emu.inner.set_faults(graph_emulator::FaultPlan::default());
    emu.reset();
    let r = kit::sync_lib(&emu, &vars, false).await;
    assert_eq!(r.code(), 0, "{}", r.stdout);
    assert_eq!(deletes(&emu), 1, "{}", r.stdout);
    assert_eq!(emu.contacts(ADELE).len(), 1002);
    emu.reset();
    let r = kit::sync_lib(&emu, &vars, false).await;
    assert_eq!((r.code(), emu.writes()), (0, 0), "{}", r.stdout);
}

/// I13 (b): the hub held 12 of our contacts and now lists none: a bad read, not 12 deletions —
/// no DELETE, nothing written to the hub or re-created there, the users' copies left alone, a
/// `Failed mailbox:` line that says why, exit 1. The same on the next run (I1: it writes nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i13_an_emptied_hub_listing_is_a_bad_read_not_a_mass_deletion() {
    let emu = Emu::start(converged(12, &[ADELE, MEGAN])).await;
    let state = StateDir::new();
    let vars = with_state(&harness::one_tenant(&emu), &state.path);
    assert_eq!(sync(&vars, &[]).await.code, 0);
    let all: Vec<String> = (0..12)
        .map(|n| format!("person{n:03}@fabrikam.com"))
        .collect();
    delete_from_hub(&emu, &all).await;
    for run in ["first", "second"] {
        emu.reset();
        let r = sync(&vars, &[]).await;
        assert_eq!(r.code, 1, "{run}: {}\n{}", r.stdout, r.stderr);
        assert_eq!((deletes(&emu), emu.writes()), (0, 0), "{run}: {}", r.stdout);
        assert!(
            r.stdout
                .lines()
                .any(|l| l.starts_with(&format!("Failed mailbox: {HUB} — "))
                    && l.contains("held 12 of our contacts")
                    && l.contains("now lists none")),
            "{run}: {}",
            r.stdout
        );
        let held = r.tenant(0)["heldDeletes"].as_array().unwrap();
        assert!(held.iter().all(|h| h["reason"] == "badRead"), "{held:?}");
        assert!(r.tenant(0)["releaseCommand"].is_null());
        assert!(emu.hub_contacts().unwrap().is_empty());
        for u in [ADELE, MEGAN] {
            assert_eq!(emu.contacts(u).len(), 12, "{run}: {u}");
        }
    }
}

/// `Deletes: "off"`: a hub deletion is only reported (`Would delete:` per tagged copy, in the
/// report's `wouldDelete`); the contact is re-created in the hub from the users' copies, as the
/// script did, and nothing is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_off_reports_and_restores_instead_of_deleting() {
    let emu = Emu::start(converged(3, &[ADELE, MEGAN])).await;
    let state = StateDir::new();
    let mut vars = harness::endpoints(&emu);
    let mut tenant = harness::tenant_entry(harness::TENANT, harness::SECRET);
    tenant["Deletes"] = json!("off");
    vars.push(harness::var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([tenant]).to_string(),
    ));
    let vars = with_state(&vars, &state.path);
    assert_eq!(sync(&vars, &[]).await.code, 0);
    delete_from_hub(&emu, &["person002@fabrikam.com".into()]).await;
    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(deletes(&emu), 0);
    let would: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("Would delete: NotesId=") && l.contains("Deletes is \"off\""))
        .collect();
    assert_eq!(would.len(), 2, "{}", r.stdout);
    assert_eq!(r.tenant(0)["wouldDelete"].as_array().unwrap().len(), 2);
    assert!(by_email(&emu.hub_contacts().unwrap()).contains_key("person002@fabrikam.com"));
    assert_no_duplicate(&emu);
    assert_quiet_run(&emu, &vars, "after the restore").await;
}

/// Repair is not deletion (docs/state-and-deletes.md §3.3): a run whose hub create was lost (a
/// 500 on the POST, never repeated) leaves users' copies carrying a SyncId the hub lacks. The next
/// run finds it among the pending creates, re-creates it in the hub (`Repaired:`, counted as
/// `repaired`) and deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_hub_create_is_repaired_not_taken_for_a_deletion() {
    let emu = Emu::start(converged(2, &[ADELE, MEGAN])).await;
    let state = StateDir::new();
    let vars = with_state(&harness::one_tenant(&emu), &state.path);
    assert_eq!(sync(&vars, &[]).await.code, 0);
    // Adele adds a contact (through Graph, as Outlook would); the hub's create of it will fail.
    let mut new = contact(
        "Dee Ramos",
        Some("dee@fabrikam.com"),
        "2026-02-01T00:00:00Z",
    );
    new.remove("lastModifiedDateTime"); // Graph sets it
    let post = graph::WriteRequest::create(graph::FolderRef::Default, Value::Object(new));
    for r in crate::memory::admin(&emu)
        .execute_writes::<Value>(ADELE, vec![post])
        .await
    {
        r.expect("Adele's new contact");
    }
    emu.inner.set_faults(kit::plan(
        5,
        vec![json!({"match": {"method": "POST", "mailbox": HUB}, "action": {"status": 500}})],
    ));
    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let dee = |u: &str| {
        let cs = if u == HUB {
            emu.hub_contacts().unwrap()
        } else {
            emu.contacts(u)
        };
        by_email(&cs).get("dee@fabrikam.com").and_then(sync_id)
    };
    let s_id = dee(ADELE).expect("Adele's copy was stamped");
    assert_eq!(dee(MEGAN).as_deref(), Some(s_id.as_str()));
    assert_eq!(dee(HUB), None, "the hub create failed");

    emu.inner.set_faults(graph_emulator::FaultPlan::default());
    emu.reset();
    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(deletes(&emu), 0);
    assert_eq!(dee(HUB).as_deref(), Some(s_id.as_str()), "{}", r.stdout);
    assert!(
        r.stdout.lines().any(|l| l.starts_with("Repaired: NotesId=")
            && l.contains("Dee Ramos")
            && l.ends_with("(an earlier run was interrupted)")),
        "{}",
        r.stdout
    );
    assert_eq!(r.tenant(0)["step1"]["repaired"], 1);
    assert!(r.stdout.contains("Repaired: 1"), "{}", r.stdout);
    assert!(
        !r.stdout.contains("Data problem"),
        "a repair is not a data problem: {}",
        r.stdout
    );
    assert_quiet_run(&emu, &vars, "after the repair").await;
}
