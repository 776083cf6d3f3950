//! Private contacts end to end (issue 13, docs/state-and-deletes.md §4, docs/reliability.md I15):
//! the real binary against the emulator, whose state is the oracle — sampled all through every run,
//! a private contact never appears outside its owner's mailbox, except as the copies already
//! shared, while the run that withdraws them deletes them. Private by category and by Outlook's
//! flag, set before the first run or after the contact was shared (withdrawn, the owner's contact
//! byte for byte intact, not back on later runs, shared again when un-marked), in a dry run, with
//! the brake, and with a write lost mid-withdrawal. Also how the flag is read: in the same listing
//! (`$expand` with `$select` and `$top=1000`), and with one filtered request for a delta-read
//! folder.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

use graph_emulator::{EmulatorOptions, Variants};
use serde_json::{Map, Value, json};

use crate::harness::{
    self, CLIENT, Emu, EnvVars, HUB, Run, SECRET, TENANT, by_email, contact, email, s, scenario,
    sync, sync_id, tag4, user, var, with,
};

const ADELE: &str = "adele@contoso.com";
const MEGAN: &str = "megan@contoso.com";
const BOB: &str = "bob@contoso.com";
const ALEX: &str = "alex@fabrikam.com";

fn flagged(c: Map<String, Value>) -> Map<String, Value> {
    with(
        c,
        "singleValueExtendedProperties",
        json!([{"id": "Integer 0x0036", "value": "2"}]),
    )
}

/// A state file of the test's own.
struct StateDir {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl StateDir {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        Self { _dir: dir, path }
    }
}

fn vars(emu: &Emu, state: &StateDir) -> EnvVars {
    let mut v = harness::one_tenant(emu);
    v.push(var(
        "AUTOMATION_SYNCCONTACTS_STATE",
        state.path.display().to_string(),
    ));
    v
}

/// Every folder of the tenant (the hub's "All Contacts" included), by mailbox.
fn folders(emu: &Emu) -> BTreeMap<String, Vec<Map<String, Value>>> {
    let mut out = BTreeMap::new();
    for t in emu.inner.state().tenants {
        for u in t.users {
            let upn = u.user_principal_name.to_lowercase();
            if upn == HUB {
                let all = u
                    .contact_folders
                    .iter()
                    .find(|f| f.display_name == "All Contacts")
                    .map(|f| f.contacts.clone())
                    .unwrap_or_default();
                out.insert(upn, all);
            } else {
                out.insert(upn, u.contacts);
            }
        }
    }
    out
}

/// Copies of the contacts with these emails outside their owner's folder: (mailbox, id).
fn outside(emu: &Emu, owner: &str, emails: &BTreeSet<&str>) -> BTreeSet<(String, String)> {
    folders(emu)
        .into_iter()
        .filter(|(mb, _)| mb != owner)
        .flat_map(|(mb, cs)| {
            cs.into_iter()
                .filter(|c| email(c).is_some_and(|e| emails.contains(e.as_str())))
                .map(move |c| (mb.clone(), s(&c, "id").unwrap_or_default().to_owned()))
        })
        .collect()
}

/// A sync run, while the emulator's state is sampled all along: every sample's copies of the
/// private contacts outside the owner's folder must be among `allowed` (the copies already
/// shared, which only the run that withdraws them may delete). Returns the run and the samples
/// taken.
async fn watched(
    emu: &Emu,
    vars: &EnvVars,
    args: &[&str],
    owner: &str,
    emails: &[&str],
    allowed: &BTreeSet<(String, String)>,
) -> (Run, usize) {
    let emails: BTreeSet<&str> = emails.iter().copied().collect();
    let done = AtomicBool::new(false);
    let run = async {
        let r = sync(vars, args).await;
        done.store(true, Ordering::SeqCst);
        r
    };
    let watch = async {
        let mut samples = 0;
        loop {
            let last = done.load(Ordering::SeqCst);
            let seen = outside(emu, owner, &emails);
            samples += 1;
            let new: Vec<_> = seen.difference(allowed).collect();
            assert!(
                new.is_empty(),
                "I15: a private contact appeared outside {owner}: {new:?}"
            );
            if last {
                return samples;
            }
            tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        }
    };
    tokio::join!(run, watch)
}

fn contact_of(emu: &Emu, mailbox: &str, mail: &str) -> Map<String, Value> {
    folders(emu)[mailbox]
        .iter()
        .find(|c| email(c).as_deref() == Some(mail))
        .unwrap_or_else(|| panic!("{mailbox} has no {mail}"))
        .clone()
}

fn deletes(emu: &Emu) -> u64 {
    emu.stats().by_mailbox.values().map(|m| m.delete).sum()
}

fn lines<'r>(r: &'r Run, prefix: &str) -> Vec<&'r str> {
    r.stdout.lines().filter(|l| l.starts_with(prefix)).collect()
}

async fn quiet_run(emu: &Emu, vars: &EnvVars, owner: &str, emails: &[&str], context: &str) {
    emu.reset();
    let (r, _) = watched(emu, vars, &[], owner, emails, &BTreeSet::new()).await;
    assert_eq!(r.code, 0, "{context}: {}\n{}", r.stdout, r.stderr);
    assert_eq!(emu.writes(), 0, "{context}: wrote {:?}", r.action_keys());
}

/// I15, set before the first run: Adele's doctor filed under "Private" and her dentist with
/// Outlook's Private flag never leave her mailbox — not in a dry run, not in the first run (its
/// state sampled throughout), not after — and are never written; everything else is shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i15_private_by_category_or_flag_is_never_collected() {
    let doctor = with(
        contact(
            "Dr Who",
            Some("doctor@clinic.example"),
            "2026-01-01T00:00:00Z",
        ),
        "categories",
        json!(["VIP", "private"]),
    );
    let dentist = flagged(contact(
        "Dent Ist",
        Some("dentist@clinic.example"),
        "2026-01-01T00:00:00Z",
    ));
    let emu = Emu::start(scenario(vec![
        harness::hub_with(Some(vec![])),
        user(
            ADELE,
            vec![
                doctor,
                dentist,
                contact("Alex Wilber", Some(ALEX), "2026-01-01T00:00:00Z"),
            ],
        ),
        user(MEGAN, vec![]),
    ]))
    .await;
    let state = StateDir::new();
    let vars = vars(&emu, &state);
    let private = ["doctor@clinic.example", "dentist@clinic.example"];
    let before = folders(&emu)[ADELE].clone();

    let (r, _) = watched(
        &emu,
        &vars,
        &["--dry-run"],
        ADELE,
        &private,
        &BTreeSet::new(),
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(emu.writes(), 0);
    assert!(!r.stdout.contains("clinic.example"), "{}", r.stdout);

    let (r, samples) = watched(&emu, &vars, &[], ADELE, &private, &BTreeSet::new()).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(samples > 1, "the run was watched");
    assert!(!r.all_output().contains("clinic.example"), "{}", r.stdout);
    assert_eq!(by_email(&emu.hub_contacts().unwrap()).len(), 1);
    assert!(by_email(&emu.contacts(MEGAN)).contains_key(ALEX));
    // The private contacts are exactly as they were (id, changeKey, times, everything).
    let after = folders(&emu)[ADELE].clone();
    for mail in private {
        let find = |cs: &[Map<String, Value>]| {
            cs.iter()
                .find(|c| email(c).as_deref() == Some(mail))
                .cloned()
                .unwrap()
        };
        assert_eq!(find(&after), find(&before), "{mail} was written");
    }
    quiet_run(&emu, &vars, ADELE, &private, "second run").await;
}

/// Adele shares Alex, then marks him private (by flag, or by category). A dry run says what the
/// real run will delete and writes nothing; the real run deletes the hub copy and Megan's and
/// Bob's — nothing else, and nothing new appears meanwhile — leaves Adele's contact byte for byte
/// as she left it, and two more runs bring nothing back. Un-marked, Alex is shared again under
/// his SyncId.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i15_marked_private_after_sharing_is_withdrawn_and_shared_again_when_unmarked() {
    for by_flag in [true, false] {
        let ctx = if by_flag { "flag" } else { "category" };
        let emu = Emu::start(scenario(vec![
            harness::hub_with(None),
            user(
                ADELE,
                vec![
                    contact("Alex Wilber", Some(ALEX), "2026-01-01T00:00:00Z"),
                    contact(
                        "Bianca Pisani",
                        Some("bianca@fabrikam.com"),
                        "2026-01-01T00:00:00Z",
                    ),
                ],
            ),
            user(MEGAN, vec![]),
            user(BOB, vec![]),
        ]))
        .await;
        let state = StateDir::new();
        let vars = vars(&emu, &state);
        let r = sync(&vars, &[]).await;
        assert_eq!(r.code, 0, "{ctx}: {}", r.stderr);
        let sid = sync_id(&contact_of(&emu, HUB, ALEX)).unwrap();
        let shared = outside(&emu, ADELE, &[ALEX].into());
        assert_eq!(shared.len(), 3, "{ctx}: hub, Megan, Bob");

        let alex_id = s(&contact_of(&emu, ADELE, ALEX), "id").unwrap().to_owned();
        let mark = if by_flag {
            json!({"singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": "2"}]})
        } else {
            json!({"categories": ["Private"]})
        };
        emu.touch(ADELE, &alex_id, &mark).await;
        let marked = contact_of(&emu, ADELE, ALEX);

        // The dry run: what the real run will delete, nothing written, the state untouched.
        let saved = std::fs::read(&state.path).unwrap();
        emu.reset();
        let (r, _) = watched(&emu, &vars, &["--dry-run"], ADELE, &[ALEX], &shared).await;
        assert_eq!(r.code, 0, "{ctx}: {}\n{}", r.stdout, r.stderr);
        assert_eq!(emu.writes(), 0, "{ctx}");
        let would = lines(&r, "Would delete: ");
        assert_eq!(would.len(), 3, "{ctx}: {}", r.stdout);
        assert!(
            would.iter().all(
                |l| l.contains(&sid) && l.ends_with("(withdrawn: marked private by its owner)")
            ),
            "{would:#?}"
        );
        assert_eq!(
            std::fs::read(&state.path).unwrap(),
            saved,
            "{ctx}: a dry run wrote the state"
        );

        // The withdrawal.
        emu.reset();
        let (r, _) = watched(&emu, &vars, &[], ADELE, &[ALEX], &shared).await;
        assert_eq!(r.code, 0, "{ctx}: {}\n{}", r.stdout, r.stderr);
        assert_eq!(
            (deletes(&emu), emu.writes()),
            (3, 3),
            "{ctx}: {:?}",
            r.action_keys()
        );
        let mut gone: Vec<(String, String)> = Vec::new();
        for (mailbox, items) in emu.inner.deleted() {
            for d in items {
                assert_eq!(sync_id(&d.contact).as_deref(), Some(sid.as_str()), "{ctx}");
                gone.push((mailbox.to_lowercase(), d.id));
            }
        }
        gone.sort();
        assert_eq!(gone, shared.iter().cloned().collect::<Vec<_>>(), "{ctx}");
        let deleted = lines(&r, "Deleted: ");
        assert_eq!(deleted.len(), 3, "{ctx}: {}", r.stdout);
        assert!(
            deleted
                .iter()
                .all(|l| l.ends_with("(withdrawn: marked private by its owner)")),
            "{deleted:#?}"
        );
        let withdrawn = lines(&r, "Withdrawn: ");
        assert_eq!(withdrawn.len(), 1, "{ctx}: {}", r.stdout);
        assert!(
            withdrawn[0]
                .contains("marked private by its owner adele@contoso.com; 3 copies deleted")
        );
        let t = r.tenant(0);
        assert_eq!(t["withdrawals"][0]["owner"], ADELE, "{t}");
        assert_eq!(t["withdrawals"][0]["copies"], 3);
        let reasons: Vec<&Value> = t["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["reason"])
            .collect();
        assert!(reasons.iter().all(|r| *r == "withdrawn"), "{reasons:?}");
        assert_eq!(t["step1"]["deleted"], 1);
        assert_eq!(t["step2"]["deleted"], 2);
        assert_eq!(
            contact_of(&emu, ADELE, ALEX),
            marked,
            "{ctx}: the owner's contact changed"
        );
        assert!(outside(&emu, ADELE, &[ALEX].into()).is_empty());

        for n in ["third", "fourth"] {
            quiet_run(&emu, &vars, ADELE, &[ALEX], &format!("{ctx}: {n} run")).await;
            assert_eq!(contact_of(&emu, ADELE, ALEX), marked, "{ctx}: {n}");
        }

        // Un-marked: shared again from Adele's copy, under the same SyncId; then quiet.
        let unmark = if by_flag {
            json!({"singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": null}]})
        } else {
            json!({"categories": null})
        };
        emu.touch(ADELE, &alex_id, &unmark).await;
        emu.reset();
        let r = sync(&vars, &[]).await;
        assert_eq!(r.code, 0, "{ctx}: {}\n{}", r.stdout, r.stderr);
        assert_eq!(
            lines(&r, "Withdrawal ended: ").len(),
            1,
            "{ctx}: {}",
            r.stdout
        );
        assert!(lines(&r, "Repaired: ").is_empty(), "{ctx}: {}", r.stdout);
        for mb in [HUB, MEGAN, BOB] {
            assert_eq!(
                sync_id(&contact_of(&emu, mb, ALEX)).as_deref(),
                Some(sid.as_str()),
                "{ctx}: {mb}"
            );
        }
        let r = sync(&vars, &[]).await;
        assert_eq!(r.code, 0, "{ctx}");
        emu.reset();
        let r = sync(&vars, &[]).await;
        assert_eq!(
            (r.code, emu.writes()),
            (0, 0),
            "{ctx}: {:?}",
            r.action_keys()
        );
    }
}

/// A withdrawal cut short: the k-th DELETE dropped before it applies, or applied with its answer
/// lost — alone (the client's repeat settles it: a 404 is done), or with every later write
/// dropped too, as if the process died (the client's breaker stops the run after 20 s, so twice
/// only): the run exits 1, the next run finishes the withdrawal, and no run — those or the one
/// after — brings the contact back anywhere (the state sampled all along).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i15_a_withdrawal_cut_short_is_finished_and_nothing_comes_back() {
    let mut cases: Vec<(u64, &str, bool)> = Vec::new();
    for k in 1..=3u64 {
        for drop in ["before", "after"] {
            cases.push((k, drop, false));
        }
    }
    cases.push((1, "after", true));
    cases.push((2, "before", true));
    for (k, drop, crash) in cases {
        let ctx = format!("DELETE #{k} dropped {drop}, crash {crash}");
        let emu = Emu::start(scenario(vec![
            harness::hub_with(None),
            user(
                ADELE,
                vec![contact("Alex Wilber", Some(ALEX), "2026-01-01T00:00:00Z")],
            ),
            user(MEGAN, vec![]),
            user(BOB, vec![]),
        ]))
        .await;
        let state = StateDir::new();
        let mut vars = vars(&emu, &state);
        // Direct requests, so each DELETE is one request a rule can count.
        vars.push(var("AUTOMATION_SYNCCONTACTS_BATCH", "false"));
        assert_eq!(sync(&vars, &[]).await.code, 0, "{ctx}");
        let shared = outside(&emu, ADELE, &[ALEX].into());
        let alex_id = s(&contact_of(&emu, ADELE, ALEX), "id").unwrap().to_owned();
        emu.touch(ADELE, &alex_id, &json!({"categories": ["Private"]}))
            .await;
        let marked = contact_of(&emu, ADELE, ALEX);

        let mut rules =
            vec![json!({"match": {"method": "DELETE"}, "nth": k, "action": {"drop": drop}})];
        if crash {
            for i in 1..=30 {
                rules.push(json!({"match": {"method": "DELETE"}, "nth": k + i,
                                   "action": {"drop": "before"}}));
            }
        }
        emu.inner
            .set_faults(serde_json::from_value(json!({"seed": k, "rules": rules})).unwrap());
        let (r, _) = watched(&emu, &vars, &[], ADELE, &[ALEX], &shared).await;
        let want = if crash { 1 } else { 0 };
        assert_eq!(r.code, want, "{ctx}: {}\n{}", r.stdout, r.stderr);
        emu.inner
            .set_faults(serde_json::from_value(json!({"seed": 0, "rules": []})).unwrap());
        let left = outside(&emu, ADELE, &[ALEX].into());
        assert!(left.is_subset(&shared), "{ctx}");
        assert_eq!(left.is_empty(), !crash, "{ctx}: {left:?}");

        let (r, _) = watched(&emu, &vars, &[], ADELE, &[ALEX], &left).await;
        assert_eq!(r.code, 0, "{ctx}: {}\n{}", r.stdout, r.stderr);
        assert!(
            outside(&emu, ADELE, &[ALEX].into()).is_empty(),
            "{ctx}: {}",
            r.stdout
        );
        quiet_run(&emu, &vars, ADELE, &[ALEX], &format!("{ctx}: third run")).await;
        assert_eq!(contact_of(&emu, ADELE, ALEX), marked, "{ctx}");
    }
}

/// 12 of 80 shared contacts (15 %) marked private by their owner: the run holds every withdrawal
/// — no DELETE — lists them with the release command and exits 4; `--allow-deletes 12` withdraws
/// them all; the next run writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn i15_the_brake_holds_withdrawals_and_releases_them_on_request() {
    let book: Vec<Map<String, Value>> = (0..80)
        .map(|n| {
            let mut c = contact(
                &format!("Person{n:03} Example"),
                Some(&format!("person{n:03}@fabrikam.com")),
                "2026-01-01T00:00:00Z",
            );
            let sid = format!("{n:08x}-0000-4000-8000-{n:012x}");
            c.insert("personalNotes".into(), json!(tag4(&sid, ADELE)));
            c
        })
        .collect();
    let emu = Emu::start(scenario(vec![
        harness::hub_with(Some(book.clone())),
        user(ADELE, book.clone()),
        user(MEGAN, book),
    ]))
    .await;
    let state = StateDir::new();
    let vars = vars(&emu, &state);
    let r = sync(&vars, &[]).await;
    assert_eq!((r.code, emu.writes()), (0, 0), "{}", r.stderr);
    let private: Vec<String> = (10..22)
        .map(|n| format!("person{n:03}@fabrikam.com"))
        .collect();
    for mail in &private {
        let id = s(&contact_of(&emu, ADELE, mail), "id").unwrap().to_owned();
        emu.touch(ADELE, &id, &json!({"categories": ["Private"]}))
            .await;
    }
    let emails: Vec<&str> = private.iter().map(String::as_str).collect();
    let shared = outside(&emu, ADELE, &emails.iter().copied().collect());
    assert_eq!(shared.len(), 24);

    emu.reset();
    let (r, _) = watched(&emu, &vars, &[], ADELE, &emails, &shared).await;
    assert_eq!(r.code, 4, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(deletes(&emu), 0, "{:?}", r.action_keys());
    let held = lines(&r, "Held delete: ");
    assert_eq!(held.len(), 12, "{}", r.stdout);
    assert!(
        held[0].contains("marked private by its owner adele@contoso.com (held by the brake)"),
        "{held:#?}"
    );
    assert_eq!(r.tenant(0)["heldDeletes"].as_array().unwrap().len(), 12);
    assert!(r.stdout.contains("--allow-deletes 12"), "{}", r.stdout);

    emu.reset();
    let (r, _) = watched(
        &emu,
        &vars,
        &["--allow-deletes", "12"],
        ADELE,
        &emails,
        &shared,
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(deletes(&emu), 24);
    assert!(outside(&emu, ADELE, &emails.iter().copied().collect()).is_empty());
    quiet_run(&emu, &vars, ADELE, &emails, "after the release").await;
}

fn admin(emu: &Emu) -> graph::GraphClient {
    let endpoints = graph::Endpoints::new(&emu.url(), &emu.url()).unwrap();
    graph::GraphClient::new(graph::ClientConfig::new(
        TENANT,
        CLIENT,
        graph::Credential::Secret(graph::Secret::new(SECRET)),
        endpoints,
    ))
    .unwrap()
}

/// How the flag is read (`run::private_flag`'s note): a full read gets it in the same listing —
/// `$select`, `$expand` and `$top=1000`, two pages for 1,200 contacts, whichever way Graph spells
/// the property's id — and a delta-read folder asks one filtered request for the ids of its
/// private contacts (a category alone is not the flag).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flag_is_read_in_the_same_listing_or_with_one_filtered_request() {
    let many: Vec<Map<String, Value>> = (0..1200)
        .map(|n| {
            let c = contact(
                &format!("Person{n:04} Example"),
                Some(&format!("p{n}@fabrikam.com")),
                "2026-01-01T00:00:00Z",
            );
            match n % 100 {
                7 => flagged(c),
                8 => with(
                    c,
                    "singleValueExtendedProperties",
                    json!([{"id": "Integer 0x0036", "value": "0"}]),
                ),
                9 => with(c, "categories", json!(["Private"])),
                _ => c,
            }
        })
        .collect();
    for as_sent in [false, true] {
        let emu = Emu::start_with(
            scenario(vec![harness::hub_with(None), user(ADELE, many.clone())]),
            EmulatorOptions {
                seed: Some(7),
                variants: Variants {
                    extended_property_ids_as_sent: as_sent,
                    ..Variants::default()
                },
                ..EmulatorOptions::default()
            },
        )
        .await;
        let client = admin(&emu);
        let _ = client.token().await.unwrap();
        emu.reset();
        let spec = graph::ReadSpec::new(sync_engine::FieldSet::DEFAULT.select_list())
            .with_extended_property(graph::SENSITIVITY_PROPERTY);
        let listed: Vec<sync_engine::Contact> = client
            .list_contacts(ADELE, &graph::FolderRef::Default, &spec)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1200);
        assert_eq!(emu.stats().requests, 2, "$top=1000: two pages");
        let flagged_names: Vec<&str> = listed
            .iter()
            .filter(|c| c.private_flag())
            .filter_map(|c| c.display_name())
            .collect();
        assert_eq!(flagged_names.len(), 12, "as sent: {as_sent}");
        assert!(flagged_names.iter().all(|n| n.ends_with("07 Example")));

        emu.reset();
        let ids = synccontacts::run::private_flag::private_contact_ids(
            &client,
            ADELE,
            &graph::FolderRef::Default,
        )
        .await
        .unwrap();
        assert_eq!(emu.stats().requests, 1, "one request for the folder");
        let want: std::collections::HashSet<String> = listed
            .iter()
            .filter(|c| c.private_flag())
            .map(|c| c.id().to_owned())
            .collect();
        assert_eq!(ids, want);
        let mut plain = listed.clone();
        for c in &mut plain {
            c.set_private_flag(false);
        }
        synccontacts::run::private_flag::apply_private_flags(&mut plain, &ids);
        assert_eq!(plain, listed);
    }
}
