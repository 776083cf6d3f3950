//! Memory between runs through the real binary (and the library where time must be moved),
//! against the emulator (issue 12; docs/reliability.md I10, I14, I1 with a state): a state that is
//! lost, truncated, garbage, another tenant's or hub's, or an older copy of itself never deletes
//! and never duplicates, and the report says so; a dry run never changes the file; a user's edit
//! made while a run writes other copies of the same contact survives and wins the next run.
//!
//! Shared with `deletes.rs`: the converged-tenant builder and the helpers that delete hub contacts
//! as an administrator would (through Graph), count DELETE requests and read the state word.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use graph::Clock;
use serde_json::{Map, Value, json};
use synccontacts::cli::{OutputOptions, SyncArgs};
use synccontacts::report::{ActionLines, Detail};
use synccontacts::run::RunEnv;

use crate::harness::{
    self, CLIENT, Emu, EnvVars, HUB, Run, SECRET, TENANT, by_email, contact, email, s, scenario,
    sync, sync_id, tag4, user, var,
};
use crate::kit;

pub const ADELE: &str = "adele@contoso.com";
pub const MEGAN: &str = "megan@contoso.com";
pub const BOB: &str = "bob@contoso.com";

/// A state file of the test's own, removed with it.
pub struct StateDir {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl StateDir {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        Self { _dir: dir, path }
    }

    pub fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }
}

/// `vars` with the state file at `path`.
pub fn with_state(vars: &EnvVars, path: &Path) -> EnvVars {
    let mut v = vars.clone();
    v.push(var(
        "AUTOMATION_SYNCCONTACTS_STATE",
        path.display().to_string(),
    ));
    v
}

/// DELETE requests the emulator received (batch items counted one by one).
pub fn deletes(emu: &Emu) -> u64 {
    emu.stats().by_mailbox.values().map(|m| m.delete).sum()
}

/// The report's `state` of the first tenant.
pub fn state_word(r: &Run) -> String {
    r.tenant(0)["state"].as_str().unwrap_or("null").to_owned()
}

/// A deterministic SyncId.
pub fn sid(n: usize) -> String {
    format!("{n:08x}-0000-4000-8000-{n:012x}")
}

/// Contact `n` of a converged book, carrying SyncId `sid(n)`.
pub fn book_contact(n: usize) -> Map<String, Value> {
    let mut c = contact(
        &format!("Person{n:03} Example"),
        Some(&format!("person{n:03}@fabrikam.com")),
        "2026-01-01T00:00:00Z",
    );
    c.insert("jobTitle".into(), json!("Engineer"));
    c.insert("personalNotes".into(), json!(tag4(&sid(n), ADELE)));
    c
}

/// A tenant already converged: the hub's "All Contacts" and every user's Contacts hold the same
/// `n` tagged contacts. A first run writes nothing (and remembers it all).
pub fn converged(n: usize, users: &[&str]) -> graph_emulator::Scenario {
    let book: Vec<Map<String, Value>> = (0..n).map(book_contact).collect();
    let mut all = vec![harness::hub_with(Some(book.clone()))];
    all.extend(users.iter().map(|u| user(u, book.clone())));
    scenario(all)
}

/// A Graph client of the test's own (an administrator, a user in Outlook).
pub fn admin(emu: &Emu) -> graph::GraphClient {
    let endpoints = graph::Endpoints::new(&emu.url(), &emu.url()).unwrap();
    graph::GraphClient::new(graph::ClientConfig::new(
        TENANT,
        CLIENT,
        graph::Credential::Secret(graph::Secret::new(SECRET)),
        endpoints,
    ))
    .unwrap()
}

/// The hub's "All Contacts" folder id.
pub fn hub_folder_id(emu: &Emu) -> String {
    emu.inner
        .state()
        .tenants
        .into_iter()
        .flat_map(|t| t.users)
        .find(|u| u.user_principal_name.eq_ignore_ascii_case(HUB))
        .and_then(|u| {
            u.contact_folders
                .into_iter()
                .find(|f| f.display_name == "All Contacts")
        })
        .and_then(|f| f.id)
        .expect("the hub has All Contacts")
}

/// An administrator deletes the hub contacts with these emails from "All Contacts" (through
/// Graph, as Outlook would); the emulator's counters and deletion log are reset afterwards.
pub async fn delete_from_hub(emu: &Emu, emails: &[String]) {
    let folder = graph::FolderRef::Id(hub_folder_id(emu));
    let hub = by_email(&emu.hub_contacts().unwrap());
    let writes: Vec<graph::WriteRequest> = emails
        .iter()
        .map(|e| {
            let id = s(&hub[e.as_str()], "id").unwrap().to_owned();
            graph::WriteRequest::delete(folder.clone(), id, None)
        })
        .collect();
    for r in admin(emu).execute_writes::<Value>(HUB, writes).await {
        r.expect("the administrator's DELETE");
    }
    emu.reset();
}

/// The id of `mailbox`'s (default folder) contact with this email.
pub fn contact_id(emu: &Emu, mailbox: &str, mail: &str) -> String {
    let cs = if mailbox == HUB {
        emu.hub_contacts().unwrap()
    } else {
        emu.contacts(mailbox)
    };
    cs.iter()
        .find(|c| email(c).as_deref() == Some(mail))
        .and_then(|c| s(c, "id"))
        .unwrap_or_else(|| panic!("{mailbox} has no {mail}"))
        .to_owned()
}

/// Every folder holds at most one contact per email (I2).
pub fn assert_no_duplicate(emu: &Emu) {
    by_email(&emu.hub_contacts().unwrap_or_default());
    for t in emu.inner.state().tenants {
        for u in t.users {
            by_email(&u.contacts);
        }
    }
}

/// A run that must write nothing and delete nothing (I1).
pub async fn assert_quiet_run(emu: &Emu, vars: &EnvVars, context: &str) {
    emu.reset();
    let r = sync(vars, &[]).await;
    assert_eq!(r.code, 0, "{context}: {}\n{}", r.stdout, r.stderr);
    assert_eq!(emu.writes(), 0, "{context}: wrote {:?}", r.action_keys());
    assert_eq!(state_word(&r), "loaded", "{context}");
}

/// I10: whatever happened to the state file, a run after a hub deletion deletes nothing (zero
/// DELETE requests), duplicates nothing, says what it made of the state — and the deleted contact
/// comes back once (the price of a lost memory), after which runs write nothing.
async fn lost_state_deletes_nothing(
    context: &str,
    damage: impl FnOnce(&StateDir),
    expect_word: &str,
) {
    let emu = Emu::start(converged(4, &[ADELE, MEGAN])).await;
    let state = StateDir::new();
    let vars = with_state(&harness::one_tenant(&emu), &state.path);
    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 0, "{context}: {}", r.stderr);
    assert_eq!(state_word(&r), "new", "{context}");
    assert_eq!(emu.writes(), 0, "{context}: the tenant was converged");
    delete_from_hub(&emu, &["person001@fabrikam.com".into()]).await;
    damage(&state);

    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 0, "{context}: {}\n{}", r.stdout, r.stderr);
    assert_eq!(
        deletes(&emu),
        0,
        "{context}: DELETE sent: {:?}",
        r.action_keys()
    );
    let word = state_word(&r);
    assert!(word.starts_with(expect_word), "{context}: state {word}");
    assert!(
        r.stdout
            .contains(&format!("State: {word} — first-run mode")),
        "{context}: {}",
        r.stdout
    );
    assert!(
        r.stderr.contains("first-run mode"),
        "{context}: {}",
        r.stderr
    );
    assert_no_duplicate(&emu);
    // The memory was lost, so the users' copies bring the contact back to the hub — once.
    let hub = by_email(&emu.hub_contacts().unwrap());
    assert!(hub.contains_key("person001@fabrikam.com"), "{context}");
    for u in [ADELE, MEGAN] {
        assert_eq!(emu.contacts(u).len(), 4, "{context}: {u} lost a contact");
    }
    assert_quiet_run(&emu, &vars, context).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i10_a_deleted_state_file_deletes_nothing() {
    lost_state_deletes_nothing("deleted", |s| std::fs::remove_file(&s.path).unwrap(), "new").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i10_a_truncated_state_file_deletes_nothing_and_is_moved_aside() {
    lost_state_deletes_nothing(
        "truncated",
        |s| {
            let b = s.bytes();
            std::fs::write(&s.path, &b[..b.len() / 2]).unwrap();
        },
        "reset: the state file was corrupt",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i10_a_state_file_of_garbage_bytes_deletes_nothing() {
    lost_state_deletes_nothing(
        "garbage",
        |s| {
            let garbage: Vec<u8> = (0..s.bytes().len())
                .map(|i| (i * 7919 % 251) as u8)
                .collect();
            std::fs::write(&s.path, garbage).unwrap();
            // It is kept, beside: never overwritten.
        },
        "reset: the state file was corrupt",
    )
    .await;
}

/// The state file of another scenario: another tenant (the file holds no memory of this one),
/// and the same tenant with another hub folder (the binding does not match).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i10_a_state_file_of_another_tenant_or_hub_deletes_nothing() {
    // Another tenant's file.
    let other = Emu::start(harness::scenario_of(vec![harness::tenant_json(
        harness::TENANT_B,
        vec![harness::hub_with(None), user(ADELE, vec![book_contact(1)])],
    )]))
    .await;
    let foreign = StateDir::new();
    let mut vars_b = harness::endpoints(&other);
    vars_b.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([harness::tenant_entry(harness::TENANT_B, SECRET)]).to_string(),
    ));
    let r = sync(&with_state(&vars_b, &foreign.path), &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    lost_state_deletes_nothing(
        "another tenant",
        |s| {
            std::fs::copy(&foreign.path, &s.path).unwrap();
        },
        "new",
    )
    .await;

    // The same tenant, another hub folder: a scenario whose "All Contacts" has an id of its own.
    let mut hub = harness::hub_with(Some(vec![book_contact(1)]));
    hub["contactFolders"][0]["id"] = json!("AAMkAnotherHubFolder=");
    let other = Emu::start(scenario(vec![hub, user(ADELE, vec![book_contact(1)])])).await;
    let foreign = StateDir::new();
    let r = sync(
        &with_state(&harness::one_tenant(&other), &foreign.path),
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    lost_state_deletes_nothing(
        "another hub folder",
        |s| {
            std::fs::copy(&foreign.path, &s.path).unwrap();
        },
        "reset: the hub folder is not the one this state was made for",
    )
    .await;
}

/// A clock `offset` ahead of the real one (tokens stay valid: an hour's lifetime).
struct Ahead(Duration);

impl Clock for Ahead {
    fn now(&self) -> jiff::Timestamp {
        graph::clock::add(graph::SystemClock.now(), self.0)
    }
    fn sleep(&self, d: Duration) -> graph::clock::SleepFuture<'_> {
        graph::SystemClock.sleep(d)
    }
}

/// One library run with the clock `offset` ahead: its plan time, so its tag lines, move too.
async fn sync_at(vars: &EnvVars, offset: Duration) -> Value {
    let env: synccontacts::config::Env = vars.iter().cloned().collect();
    let args = SyncArgs::default();
    let run_env = RunEnv {
        clock: Arc::new(Ahead(offset)),
        ..RunEnv::default()
    };
    let opts = OutputOptions {
        detail: Detail::Normal,
        actions: ActionLines::All,
        progress: false,
    };
    let (exit, report) = synccontacts::cli::sync_with_report(
        &env,
        &args,
        &run_env,
        opts,
        &synccontacts::output::Out::discard(),
    )
    .await;
    let report = serde_json::to_value(&report).unwrap();
    assert!(exit.code() == 0, "exit {} {report}", exit.code());
    report
}

/// An older copy of the state (a CI cache restored from before the last run): the hub carries tag
/// lines written after that copy was saved, so the memory is not trusted — the deletion the admin
/// made meanwhile is not carried out (the contact comes back once), nothing is duplicated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i10_an_older_copy_of_the_state_is_not_trusted() {
    let emu = Emu::start(converged(4, &[ADELE, MEGAN])).await;
    let state = StateDir::new();
    let vars = with_state(&harness::one_tenant(&emu), &state.path);
    let r = sync_at(&vars, Duration::ZERO).await;
    assert_eq!(r["tenants"][0]["state"], "new");
    let aside = state.path.with_extension("aside");
    std::fs::copy(&state.path, &aside).unwrap();

    // Run 2, a minute later: Adele's edit propagates, so the hub is written with run 2's time.
    let cid = contact_id(&emu, ADELE, "person002@fabrikam.com");
    emu.touch(ADELE, &cid, &json!({"jobTitle": "Lead"})).await;
    let r = sync_at(&vars, Duration::from_secs(60)).await;
    assert_eq!(r["tenants"][0]["state"], "loaded");
    let hub = by_email(&emu.hub_contacts().unwrap());
    assert_eq!(s(&hub["person002@fabrikam.com"], "jobTitle"), Some("Lead"));

    // The cache brings back the state of run 1; an administrator deletes a contact.
    std::fs::copy(&aside, &state.path).unwrap();
    delete_from_hub(&emu, &["person001@fabrikam.com".into()]).await;
    let r = sync_at(&vars, Duration::from_secs(120)).await;
    let word = r["tenants"][0]["state"].as_str().unwrap();
    assert!(
        word.starts_with("reset: the hub was written by another run after this state was saved"),
        "{word}"
    );
    assert_eq!(deletes(&emu), 0, "{r}");
    assert_no_duplicate(&emu);
    let hub = by_email(&emu.hub_contacts().unwrap());
    assert!(
        hub.contains_key("person001@fabrikam.com"),
        "re-created once"
    );
    assert_eq!(emu.contacts(MEGAN).len(), 4);
    // Then the memory is this run's: the next run writes nothing.
    emu.reset();
    let r = sync_at(&vars, Duration::from_secs(180)).await;
    assert_eq!(r["tenants"][0]["state"], "loaded");
    assert_eq!(emu.writes(), 0, "{r}");
}

/// A dry run reads the state (it plans the deletion a real run would make) and never writes it:
/// the file's bytes are the same after it; the real run that follows then deletes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_with_a_state_plans_deletes_and_leaves_the_file_as_it_was() {
    let emu = Emu::start(converged(4, &[ADELE, MEGAN])).await;
    let state = StateDir::new();
    let vars = with_state(&harness::one_tenant(&emu), &state.path);
    assert_eq!(sync(&vars, &[]).await.code, 0);
    delete_from_hub(&emu, &["person003@fabrikam.com".into()]).await;
    let before = state.bytes();
    let files = |dir: &Path| std::fs::read_dir(dir).unwrap().count();
    let n_files = files(state.path.parent().unwrap());
    let r = sync(&vars, &["--dry-run"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(state_word(&r), "loaded");
    assert_eq!(emu.writes(), 0);
    let would: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("Would delete: NotesId="))
        .collect();
    assert_eq!(would.len(), 2, "{}", r.stdout);
    assert!(would.iter().all(|l| l.contains(&sid(3))), "{would:?}");
    assert_eq!(state.bytes(), before, "a dry run changed the state file");
    assert_eq!(
        files(state.path.parent().unwrap()),
        n_files,
        "a dry run left a file"
    );

    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(deletes(&emu), 2, "{}", r.stdout);
    assert_quiet_run(&emu, &vars, "after the deletion").await;
}

/// I14: Megan edits her copy after the run read it, while the run writes the hub's newer version
/// into the other users' copies — Bob's after her edit. Her copy refuses the write (412) and keeps
/// her edit; the next run lets it win, although Bob's copy was modified later (by our own write),
/// and propagates it everywhere. Then runs write nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i14_an_edit_made_while_a_run_writes_other_copies_survives_and_wins_next_run() {
    let emu = Emu::start(converged(2, &[ADELE, MEGAN, BOB])).await;
    let state = StateDir::new();
    let vars = with_state(&harness::one_tenant(&emu), &state.path);
    assert_eq!(sync(&vars, &[]).await.code, 0);
    let mail = "person001@fabrikam.com";
    // The administrator edits the hub copy: the run will write it into every user's copy.
    let hub_cid = contact_id(&emu, HUB, mail);
    emu.touch(HUB, &hub_cid, &json!({"jobTitle": "Director"}))
        .await;
    // The emulator's lastModifiedDateTime has whole seconds: Megan's edit must come in a later
    // second than the administrator's, or the two tie (and the hub wins ties).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    emu.inner.set_faults(kit::plan(
        1,
        vec![
            json!({"match": {"method": "PATCH", "mailbox": MEGAN}, "action": {"delayMs": 2000}}),
            json!({"match": {"method": "PATCH", "mailbox": BOB}, "action": {"delayMs": 5000}}),
        ],
    ));
    let running = tokio::spawn({
        let vars = vars.clone();
        async move { sync(&vars, &[]).await }
    });
    // Megan's write has arrived (held by its delay): she edits her copy now, in Outlook.
    for _ in 0..600 {
        if emu
            .stats()
            .by_mailbox
            .get(MEGAN)
            .is_some_and(|m| m.patch > 0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let megan_cid = contact_id(&emu, MEGAN, mail);
    emu.touch(MEGAN, &megan_cid, &json!({"jobTitle": "Megan's title"}))
        .await;
    let r = running.await.unwrap();
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let title = |u: &str| {
        let cs = if u == HUB {
            emu.hub_contacts().unwrap()
        } else {
            emu.contacts(u)
        };
        s(&by_email(&cs)[mail], "jobTitle").map(str::to_owned)
    };
    assert_eq!(
        title(MEGAN).as_deref(),
        Some("Megan's title"),
        "412 kept it"
    );
    assert_eq!(title(BOB).as_deref(), Some("Director"));
    let modified = |u: &str| {
        s(&by_email(&emu.contacts(u))[mail], "lastModifiedDateTime")
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    assert!(
        modified(BOB) > modified(MEGAN),
        "Bob's copy must be written after Megan's edit for this test to mean anything"
    );
    emu.inner.set_faults(graph_emulator::FaultPlan::default());

    // Next run: Megan's edit is the newest *edit*; Bob's later time is only our write's.
    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(state_word(&r), "loaded");
    for u in [HUB, ADELE, MEGAN, BOB] {
        assert_eq!(
            title(u).as_deref(),
            Some("Megan's title"),
            "{u}: {}",
            r.stdout
        );
    }
    assert_quiet_run(&emu, &vars, "after the edit propagated").await;
    assert_eq!(sync_id(&by_email(&emu.contacts(MEGAN))[mail]), Some(sid(1)));
}
