//! Random runs end to end (issue 12's property test): a random tenant converges with a state
//! file, then several steps, each of them random acts — an administrator deleting hub contacts,
//! users deleting, editing and re-creating their copies — a random fate of the state file
//! (kept, deleted, truncated, garbage, rolled back to an older copy), a random fault plan and
//! sometimes `--allow-deletes`, then a run; the options are random too (`Deletes`,
//! `UserDeletes`, `MaxDeletes`, `$batch`). Runs are a minute apart on both clocks (`Timeline`),
//! as scheduled jobs are, so an older copy of the state is recognisable.
//!
//! After every run, oracles that do not trust the run's account of itself (the emulator's state
//! and deletion log, the state file read as another process would, and what the test did):
//! - every DELETE was of a user's copy tagged with a SyncId the administrator had deleted from
//!   the hub and no run had put back; never an untagged contact, never a hub contact;
//! - with the state lost or not trustworthy (deleted, truncated, garbage, or an older copy that a
//!   later run's hub tag lines give away), or with `Deletes` "off": no DELETE at all (I10);
//! - the brake: no run removes more new contacts than `--allow-deletes`, `MaxDeletes` or the
//!   default (more than 10 and more than 10 % of the remembered hub) let through (I12);
//! - no folder holds more copies of a person than before the run (one where it held none), nor
//!   two copies of one SyncId (I2);
//! - with the state kept (or an older copy nothing gives away), no tombstone it held is lost
//!   unless the hub holds that contact again, and no contact it held a tombstone for is back in
//!   the hub — by SyncId, nor by email unless a user made it again (I11).
//!
//! Once the acts stop, two more runs: the first converges, the second writes nothing (I1); then
//! every copy of a contact holds the same fields, every tagged copy belongs to a hub contact (or
//! a held deletion), and with `UserDeletes` "restore" every user holds every hub contact.
//!
//! Seeded (the same cases every run; `PROPTEST_RNG_SEED` picks others);
//! `SYNCCONTACTS_PROPTEST_CASES` sets the number of cases (48 by default, for CI: a few seconds).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::{Map, Value, json};

use crate::harness::{self, EnvVars, HUB, contact, notes, scenario, sync_id};
use crate::kit::{self, SharedEmu, Timeline};
use crate::memory::{StateDir, admin, hub_folder_id, with_state};

#[derive(Clone, Debug)]
enum Act {
    /// The administrator deletes `n` hub contacts, from the `pick`-th on (sorted by email).
    AdminDelete { n: u8, pick: u8 },
    /// A user deletes their `pick`-th contact.
    UserDelete { user: u8, pick: u8 },
    /// A user edits their `pick`-th contact's job title.
    UserEdit { user: u8, pick: u8, title: u8 },
    /// A user who holds no copy of `person` makes one (untagged, as Outlook would).
    UserRecreate { user: u8, person: u8 },
}

#[derive(Clone, Copy, Debug)]
enum Loss {
    Keep,
    Delete,
    Truncate,
    Garbage,
    /// The copy the `n`-th run before the last one left (a CI cache restored from earlier).
    Rollback(u8),
}

#[derive(Clone, Debug)]
struct Step {
    acts: Vec<Act>,
    loss: Loss,
    fault: u8,
    seed: u64,
    allow_deletes: Option<usize>,
}

#[derive(Clone, Debug)]
struct Case {
    /// Per user: (person, days after 2026-01-01, job title variant) of each copy; a person may
    /// be there twice (a duplicate already in the folder).
    users: Vec<Vec<(u8, u8, Option<u8>)>>,
    deletes_off: bool,
    respect: bool,
    max_deletes: Option<usize>,
    batch: bool,
    steps: Vec<Step>,
}

fn upn(u: usize) -> String {
    format!("user{u}@contoso.com")
}

fn email_of(p: u8) -> String {
    format!("person{p}@fabrikam.com")
}

fn person(p: u8, modified: &str) -> Map<String, Value> {
    contact(&format!("Person {p}"), Some(&email_of(p)), modified)
}

fn to_scenario(case: &Case) -> graph_emulator::Scenario {
    let mut users = vec![harness::hub_with(None)];
    for (u, copies) in case.users.iter().enumerate() {
        let cs = copies
            .iter()
            .map(|&(p, day, title)| {
                let mut c = person(p, &format!("2026-01-{:02}T10:00:00Z", 1 + day % 28));
                if let Some(t) = title {
                    c.insert("jobTitle".into(), json!(format!("Title {t}")));
                }
                c
            })
            .collect();
        users.push(harness::user(&upn(u), cs));
    }
    scenario(users)
}

fn vars(emu: &harness::Emu, case: &Case, state: &StateDir) -> EnvVars {
    let mut tenant = harness::tenant_entry(harness::TENANT, harness::SECRET);
    tenant["Deletes"] = json!(if case.deletes_off { "off" } else { "hub" });
    tenant["UserDeletes"] = json!(if case.respect { "respect" } else { "restore" });
    if let Some(n) = case.max_deletes {
        tenant["MaxDeletes"] = json!(n);
    }
    let mut v = harness::endpoints(emu);
    v.push(harness::var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([tenant]).to_string(),
    ));
    v.push(harness::var(
        "AUTOMATION_SYNCCONTACTS_BATCH",
        if case.batch { "true" } else { "false" },
    ));
    with_state(&v, &state.path)
}

fn fault_rules(f: u8) -> Vec<Value> {
    let writes = kit::writes_match();
    let all = json!({"path": "/v1.0/users/**"});
    match f {
        1 => vec![json!({"match": all, "probability": 0.2,
                          "action": {"status": 429, "retryAfter": 1}})],
        2 => vec![json!({"match": writes, "probability": 0.15,
                          "action": {"status": 504, "afterApply": true}})],
        3 => vec![json!({"match": writes, "probability": 0.15, "action": {"drop": "before"}})],
        4 => vec![json!({"match": writes, "probability": 0.15, "action": {"drop": "after"}})],
        5 => vec![json!({"match": all, "probability": 0.2, "action": {"status": 503}})],
        // A folder that cannot be read this run: a user's, or the hub's (never a deletion).
        6 => vec![
            json!({"match": {"method": "GET", "path": "/v1.0/users/*/contacts",
                                    "mailbox": upn(0)},
                          "probability": 1.0, "action": {"status": 503}}),
        ],
        7 => vec![
            json!({"match": {"method": "GET", "path": "/v1.0/users/*/contactFolders/*/contacts",
                                    "mailbox": HUB},
                          "probability": 1.0, "action": {"status": 503}}),
        ],
        _ => vec![],
    }
}

fn folder(emu: &harness::Emu, mailbox: &str) -> Vec<Map<String, Value>> {
    if mailbox == HUB {
        emu.hub_contacts().unwrap_or_default()
    } else {
        emu.contacts(mailbox)
    }
}

fn lower_sync_id(c: &Map<String, Value>) -> Option<String> {
    sync_id(c).map(|s| s.to_lowercase())
}

/// What the test did and saw, the oracles' memory.
#[derive(Default)]
struct World {
    /// Every SyncId the administrator deleted from the hub: its email and the step.
    admin_deleted: BTreeMap<String, (String, usize)>,
    /// Emails a user made (or edited) an untagged contact of, and the last step they did.
    renewed: BTreeMap<String, usize>,
    /// The state file's bytes after each run (`None`: no file).
    saved: Vec<Option<Vec<u8>>>,
}

fn sorted_by_email(cs: Vec<Map<String, Value>>) -> Vec<Map<String, Value>> {
    let mut cs = cs;
    cs.sort_by_key(|c| (harness::email(c), harness::s(c, "id").map(str::to_owned)));
    cs
}

/// Carries out `acts` through Graph (and the emulator's `touch`), as the administrator and users
/// would between two runs; the emulator's counters and deletion log are reset afterwards.
async fn act(emu: &SharedEmu, case: &Case, acts: &[Act], step: usize, world: &mut World) {
    let client = admin(emu);
    let run = |mailbox: String, w: graph::WriteRequest| {
        let client = &client;
        async move {
            for r in client.execute_writes::<Value>(&mailbox, vec![w]).await {
                r.expect("an act between runs");
            }
        }
    };
    let users = case.users.len();
    for a in acts {
        match *a {
            Act::AdminDelete { n, pick } => {
                let hub = sorted_by_email(folder(emu, HUB));
                if hub.is_empty() {
                    continue;
                }
                let hub_folder = graph::FolderRef::Id(hub_folder_id(emu));
                for i in 0..usize::from(n).min(hub.len()) {
                    let c = &hub[(usize::from(pick) + i) % hub.len()];
                    if let Some(id) = lower_sync_id(c) {
                        world
                            .admin_deleted
                            .insert(id, (harness::email(c).unwrap(), step));
                    }
                    let cid = harness::s(c, "id").unwrap().to_owned();
                    run(
                        HUB.to_owned(),
                        graph::WriteRequest::delete(hub_folder.clone(), cid, None),
                    )
                    .await;
                }
            }
            Act::UserDelete { user, pick } => {
                let u = upn(usize::from(user) % users);
                let cs = sorted_by_email(folder(emu, &u));
                if cs.is_empty() {
                    continue;
                }
                let cid = harness::s(&cs[usize::from(pick) % cs.len()], "id").unwrap();
                run(
                    u.clone(),
                    graph::WriteRequest::delete(graph::FolderRef::Default, cid, None),
                )
                .await;
            }
            Act::UserEdit { user, pick, title } => {
                let u = upn(usize::from(user) % users);
                let cs = sorted_by_email(folder(emu, &u));
                if cs.is_empty() {
                    continue;
                }
                let c = &cs[usize::from(pick) % cs.len()];
                if sync_id(c).is_none() {
                    world.renewed.insert(harness::email(c).unwrap(), step);
                }
                let body = json!({"jobTitle": format!("Edit {title}")});
                emu.touch(&u, harness::s(c, "id").unwrap(), &body).await;
            }
            Act::UserRecreate { user, person: p } => {
                let u = upn(usize::from(user) % users);
                let e = email_of(p);
                if folder(emu, &u)
                    .iter()
                    .any(|c| harness::email(c).as_deref() == Some(e.as_str()))
                {
                    continue;
                }
                world.renewed.insert(e, step);
                let mut c = person(p, "2026-01-01T00:00:00Z");
                c.remove("lastModifiedDateTime");
                run(
                    u,
                    graph::WriteRequest::create(graph::FolderRef::Default, Value::Object(c)),
                )
                .await;
            }
        }
    }
    emu.reset();
}

/// Applies `loss` to the state file; returns whether the memory the next run loads is lost or
/// must not be trusted ([`untrusted`]).
fn lose(state: &StateDir, loss: Loss, emu: &harness::Emu, world: &World) -> bool {
    let p = &state.path;
    match loss {
        Loss::Keep => {}
        Loss::Delete => {
            if p.exists() {
                std::fs::remove_file(p).unwrap();
            }
        }
        Loss::Truncate => {
            let b = std::fs::read(p).unwrap_or_default();
            std::fs::write(p, &b[..b.len() / 2]).unwrap();
        }
        Loss::Garbage => {
            let n = std::fs::metadata(p).map_or(4096, |m| m.len() as usize);
            let garbage: Vec<u8> = (0..n).map(|i| (i * 7919 % 251) as u8).collect();
            std::fs::write(p, garbage).unwrap();
        }
        Loss::Rollback(n) => {
            // An older copy: any run's but the last.
            let older = world.saved.len().saturating_sub(1);
            if older > 0 {
                match &world.saved[usize::from(n) % older] {
                    Some(bytes) => std::fs::write(p, bytes).unwrap(),
                    None if p.exists() => std::fs::remove_file(p).unwrap(),
                    None => {}
                }
            }
        }
    }
    untrusted(state, emu)
}

/// Whether the state file holds no usable memory of the tenant, or memory a run must not trust:
/// the hub carries a tag line written more than 10 s after the memory's last run
/// (docs/state-and-deletes.md §1.2) — an older copy, which only the test's rollbacks make (or a
/// run that failed before its first write left in place). Judged from the file and the hub's
/// tag lines, not by the run.
fn untrusted(state: &StateDir, emu: &harness::Emu) -> bool {
    let Some(last) = kit::remembered(&state.path).and_then(|s| s.last_plan_time) else {
        return true;
    };
    let last = jiff::Timestamp::from_microsecond(last).unwrap();
    let slack = graph::clock::add(last, Duration::from_secs(10));
    folder(emu, HUB).iter().any(|c| {
        notes(c)
            .and_then(|n| sync_engine::tags::parse(n).tags)
            .and_then(|t| t.last_updated_at)
            .is_some_and(|t| t > slack)
    })
}

/// Copies per (folder, email), and every folder's SyncIds.
fn counts(emu: &harness::Emu) -> BTreeMap<(String, String), usize> {
    let mut out = BTreeMap::new();
    for (f, cs) in kit::folders(emu) {
        for c in &cs {
            *out.entry((f.clone(), harness::email(c).unwrap()))
                .or_default() += 1;
        }
    }
    out
}

fn tombstones(s: Option<&sync_state::TenantState>) -> BTreeMap<String, Option<String>> {
    s.map(|s| {
        s.tombstones
            .iter()
            .map(|t| (kit::sync_id_text(&t.sync_id), t.held.clone()))
            .collect()
    })
    .unwrap_or_default()
}

/// What the oracles of one run need from before it.
struct Before {
    hub_ids: BTreeSet<String>,
    /// Every SyncId in any folder.
    all_ids: BTreeSet<String>,
    counts: BTreeMap<(String, String), usize>,
    /// The memory the run loads, when it is trusted.
    trusted: Option<sync_state::TenantState>,
    lost: bool,
    allow_deletes: Option<usize>,
}

fn before(emu: &harness::Emu, state: &StateDir, lost: bool, allow: Option<usize>) -> Before {
    Before {
        hub_ids: folder(emu, HUB).iter().filter_map(lower_sync_id).collect(),
        all_ids: kit::folders(emu)
            .iter()
            .flat_map(|(_, cs)| cs.iter().filter_map(lower_sync_id))
            .collect(),
        counts: counts(emu),
        trusted: if lost {
            None
        } else {
            kit::remembered(&state.path)
        },
        lost,
        allow_deletes: allow,
    }
}

/// The oracles after one run (see the module note).
fn after(emu: &harness::Emu, case: &Case, b: &Before, state: &StateDir, world: &World, ctx: &str) {
    // Every DELETE: a user's copy, tagged with a SyncId the administrator deleted and that was
    // not back in the hub.
    let mut deleted_ids = BTreeSet::new();
    for (mailbox, items) in emu.inner.deleted() {
        assert_ne!(mailbox, HUB, "{ctx}: a hub contact was deleted");
        for d in items {
            let id = lower_sync_id(&d.contact);
            let ok = id
                .as_ref()
                .is_some_and(|i| world.admin_deleted.contains_key(i) && !b.hub_ids.contains(i));
            assert!(
                ok,
                "{ctx}: {mailbox} lost a contact no deletion asked for: {:?}",
                d.contact
            );
            deleted_ids.insert(id.unwrap());
        }
    }
    let delete_requests: u64 = emu.stats().by_mailbox.values().map(|m| m.delete).sum();
    if b.lost {
        assert_eq!(
            delete_requests, 0,
            "{ctx}: DELETE with a lost or stale state (I10)"
        );
    }
    if case.deletes_off {
        assert_eq!(delete_requests, 0, "{ctx}: DELETE with Deletes off");
    }
    // The brake: contacts whose removal this run decided (not earlier runs' applied ones).
    if let Some(mem) = &b.trusted {
        let applied: BTreeSet<String> = tombstones(Some(mem))
            .into_iter()
            .filter(|(_, held)| held.is_none())
            .map(|(id, _)| id)
            .collect();
        let fresh = deleted_ids.difference(&applied).count();
        let hub_folder = &mem.binding.hub_folder_id;
        let book = mem
            .folders
            .iter()
            .find(|f| &f.folder_id == hub_folder)
            .map_or(0, |f| f.copies.len());
        let within = match (b.allow_deletes, case.max_deletes) {
            (Some(n), _) | (None, Some(n)) => fresh <= n,
            (None, None) => fresh <= 10 || fresh * 10 <= book,
        };
        assert!(
            within,
            "{ctx}: the brake let {fresh} removals through (allow {:?}, max {:?}, book {book})",
            b.allow_deletes, case.max_deletes
        );
    }
    // I2: no folder grows a person's copies (one where it had none), no SyncId twice.
    for (key, n) in counts(emu) {
        let had = b.counts.get(&key).copied().unwrap_or(0);
        assert!(
            n <= had.max(1),
            "{ctx}: {n} copies of {} in {} (had {had})",
            key.1,
            key.0
        );
    }
    for (f, cs) in kit::folders(emu) {
        let mut seen = BTreeSet::new();
        for id in cs.iter().filter_map(lower_sync_id) {
            assert!(seen.insert(id.clone()), "{ctx}: {id} twice in {f}");
        }
    }
    // I11 with a trusted memory: its tombstones kept (unless the hub holds the contact again),
    // and none of them back in the hub: not by SyncId, nor as a new contact of its email (an
    // untagged look-alike collected) unless a user made that contact again since. A contact of
    // that email the tenant already held under another SyncId may come back: it is another
    // contact (made after the deletion by a run that had lost the state, say), repaired.
    if let Some(mem) = &b.trusted {
        let now = kit::remembered(&state.path);
        let kept = tombstones(now.as_ref());
        let hub = folder(emu, HUB);
        let hub_ids: BTreeSet<String> = hub.iter().filter_map(lower_sync_id).collect();
        let hub_emails: BTreeSet<String> = hub.iter().filter_map(harness::email).collect();
        let new_in_hub: BTreeSet<String> = hub
            .iter()
            .filter(|c| lower_sync_id(c).is_none_or(|id| !b.all_ids.contains(&id)))
            .filter_map(harness::email)
            .collect();
        for t in &mem.tombstones {
            let id = kit::sync_id_text(&t.sync_id);
            let email = t.email_key.clone();
            let renewed = email.as_ref().is_some_and(|e| {
                let deleted_at = world.admin_deleted.get(&id).map_or(0, |d| d.1);
                world.renewed.get(e).is_some_and(|&s| s >= deleted_at)
            });
            assert!(
                !hub_ids.contains(&id),
                "{ctx}: tombstoned {id} is back in the hub"
            );
            if let Some(e) = &email {
                assert!(
                    renewed || !new_in_hub.contains(e),
                    "{ctx}: tombstoned {id} is back in the hub as a new contact of {e}"
                );
            }
            let holds_again = email.as_ref().is_some_and(|e| hub_emails.contains(e));
            assert!(
                kept.contains_key(&id) || holds_again,
                "{ctx}: the tombstone of {id} ({email:?}) was lost; the state now holds {:?}",
                kept.keys().collect::<Vec<_>>()
            );
        }
    }
}

async fn check_case(case: Case) {
    let emu = kit::start(to_scenario(&case)).await;
    let state = StateDir::new();
    let v = vars(&emu, &case, &state);
    let mut time = Timeline::default();
    let mut world = World::default();

    let r = time.sync(&emu, &v, None).await;
    assert_eq!(r.code(), 0, "first run: {}", r.report);
    world.saved.push(std::fs::read(&state.path).ok());

    for (i, step) in case.steps.iter().enumerate() {
        let step_no = i + 1;
        act(&emu, &case, &step.acts, step_no, &mut world).await;
        let lost = lose(&state, step.loss, &emu, &world);
        let b = before(&emu, &state, lost, step.allow_deletes);
        emu.inner
            .set_faults(kit::plan(step.seed, fault_rules(step.fault)));
        let r = time.sync(&emu, &v, step.allow_deletes).await;
        emu.inner.set_faults(kit::plan(0, vec![]));
        let ctx = format!(
            "step {step_no} ({:?}, fault {}, allow {:?})",
            step.loss, step.fault, step.allow_deletes
        );
        assert!(
            [0, 1, 4].contains(&r.code()),
            "{ctx}: exit {} {}",
            r.code(),
            r.report
        );
        after(&emu, &case, &b, &state, &world, &ctx);
        kit::assert_no_canary(&r.all_output(), &[harness::SECRET], &ctx);
        world.saved.push(std::fs::read(&state.path).ok());
        emu.reset();
    }

    // The acts stop: one run converges, the next writes nothing.
    for (last, ctx) in [(false, "converging run"), (true, "quiet run")] {
        // The last step's run may have left no memory, or an older copy (it failed before its
        // first write, after the state was lost).
        let lost = untrusted(&state, &emu);
        let b = before(&emu, &state, lost, None);
        let r = time.sync(&emu, &v, None).await;
        assert!(
            [0, 4].contains(&r.code()),
            "{ctx}: exit {} {}",
            r.code(),
            r.report
        );
        if !lost {
            assert_eq!(r.report["tenants"][0]["state"], "loaded", "{ctx}");
        }
        after(&emu, &case, &b, &state, &world, ctx);
        if last {
            assert_eq!(emu.writes(), 0, "{ctx} wrote: {:?}", r.action_keys());
        }
        emu.reset();
    }

    // Converged: one version per contact, every tagged copy a hub contact's (or a held
    // deletion's), and with "restore" every user holding every hub contact. A person a folder
    // holds twice (a duplicate there from the start) is left alone by design, whatever its tag
    // says: reported, never multiplied, never deleted (I2).
    let mem = kit::remembered(&state.path).expect("the state");
    let held: BTreeSet<String> = tombstones(Some(&mem))
        .into_iter()
        .filter(|(_, h)| h.is_some())
        .map(|(id, _)| id)
        .collect();
    let hub_ids: BTreeSet<String> = folder(&emu, HUB).iter().filter_map(lower_sync_id).collect();
    let mut versions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (f, cs) in kit::folders(&emu) {
        let ids: BTreeSet<String> = cs.iter().filter_map(lower_sync_id).collect();
        let mut per_email: BTreeMap<String, usize> = BTreeMap::new();
        for c in &cs {
            *per_email.entry(harness::email(c).unwrap()).or_default() += 1;
        }
        for c in &cs {
            let Some(id) = lower_sync_id(c) else { continue };
            if per_email[&harness::email(c).unwrap()] > 1 {
                continue;
            }
            assert!(
                hub_ids.contains(&id) || held.contains(&id),
                "{f} holds {id}, which is neither in the hub nor a held deletion"
            );
            if held.contains(&id) {
                // Withheld until the brake's release: neither deleted nor kept up to date.
                continue;
            }
            let fields = json!([
                c.get("displayName"),
                c.get("jobTitle"),
                c.get("emailAddresses")
            ]);
            versions.entry(id).or_default().insert(fields.to_string());
        }
        if !case.respect && f != format!("{HUB}/All Contacts") {
            for id in &hub_ids {
                assert!(
                    ids.contains(id),
                    "{f} lacks hub contact {id} (UserDeletes restore)"
                );
            }
        }
    }
    for (id, v) in versions {
        assert_eq!(v.len(), 1, "copies of {id} did not converge: {v:#?}");
    }
}

fn act_strategy() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => (1u8..=3, any::<u8>()).prop_map(|(n, pick)| Act::AdminDelete { n, pick }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(user, pick)| Act::UserDelete { user, pick }),
        2 => (any::<u8>(), any::<u8>(), 0u8..3)
            .prop_map(|(user, pick, title)| Act::UserEdit { user, pick, title }),
        2 => (any::<u8>(), 0u8..6).prop_map(|(user, person)| Act::UserRecreate { user, person }),
    ]
}

fn loss_strategy() -> impl Strategy<Value = Loss> {
    prop_oneof![
        6 => Just(Loss::Keep),
        1 => Just(Loss::Delete),
        1 => Just(Loss::Truncate),
        1 => Just(Loss::Garbage),
        2 => any::<u8>().prop_map(Loss::Rollback),
    ]
}

fn step_strategy() -> impl Strategy<Value = Step> {
    (
        prop::collection::vec(act_strategy(), 0..=3),
        loss_strategy(),
        prop_oneof![4 => Just(0u8), 5 => 1u8..=7],
        any::<u64>(),
        prop::option::weighted(0.25, 0usize..=3),
    )
        .prop_map(|(acts, loss, fault, seed, allow_deletes)| Step {
            acts,
            loss,
            fault,
            seed,
            allow_deletes,
        })
}

fn case_strategy() -> impl Strategy<Value = Case> {
    (3u8..=6, 2usize..=3).prop_flat_map(|(people, users)| {
        let copy = (0..people, any::<u8>(), prop::option::of(0u8..3));
        (
            prop::collection::vec(prop::collection::vec(copy, 1..=people as usize + 1), users),
            prop::bool::weighted(0.15),
            any::<bool>(),
            prop::option::weighted(0.3, 0usize..=2),
            any::<bool>(),
            prop::collection::vec(step_strategy(), 2..=4),
        )
            .prop_map(
                |(users, deletes_off, respect, max_deletes, batch, steps)| Case {
                    users,
                    deletes_off,
                    respect,
                    max_deletes,
                    batch,
                    steps,
                },
            )
    })
}

fn cases() -> u32 {
    std::env::var("SYNCCONTACTS_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

/// A fixed seed, so CI runs the same cases every time and a failure there replays anywhere;
/// `PROPTEST_RNG_SEED=N` explores others.
fn seed() -> RngSeed {
    match std::env::var("PROPTEST_RNG_SEED") {
        Ok(_) => ProptestConfig::default().rng_seed,
        Err(_) => RngSeed::Fixed(12),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 200,
        rng_seed: seed(),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_runs_never_delete_untagged_never_lose_a_kept_tombstone_and_converge(case in case_strategy()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(check_case(case));
    }
}
