//! Scope by group (issue 13): IncludeGroups, ExcludeGroups and ExcludeUsers through the real
//! binary against the emulator's directory groups — nested groups, a user both included and
//! excluded, test mode that groups never widen, an unknown group (exit 2, no mailbox touched), a
//! missing group permission (exit 3, `failure.rs`'s words), a group of 2,000 members (paging),
//! `check`'s count per rule, and a user leaving the scope between runs (never a deletion). The
//! emulator's stats and state are the oracles: which mailboxes were read or written at all.

use serde_json::{Map, Value, json};

use crate::harness::*;

const SALES: &str = "6a1f5a7e-0000-4000-8000-00000000000a";
const EMEA: &str = "6a1f5a7e-0000-4000-8000-00000000000b";
const BOARD: &str = "6a1f5a7e-0000-4000-8000-00000000000c";
const ADELE_ID: &str = "11111111-1111-4111-8111-111111111111";
const GROUP_ROLES: [&str; 3] = [
    "Contacts.ReadWrite",
    "User.Read.All",
    "GroupMember.Read.All",
];

fn person(upn: &str, id: &str) -> Value {
    let name = upn.split('@').next().unwrap();
    let mut u = user(
        upn,
        vec![contact(
            &format!("Friend Of{name}"),
            Some(&format!("friend-of-{name}@fabrikam.com")),
            "2026-01-01T00:00:00Z",
        )],
    );
    u["id"] = json!(id);
    u
}

/// Hub, and six licensed users with one contact each. Sales (mail) holds Adele and, nested, EMEA
/// (Megan, Carol, Frank); Board (mail) holds Carol. Dave and Erin are in no group.
fn org_users() -> Vec<Value> {
    vec![
        hub_with(None),
        person("adele@contoso.com", ADELE_ID),
        person("megan@contoso.com", "22222222-2222-4222-8222-222222222222"),
        person("carol@contoso.com", "33333333-3333-4333-8333-333333333333"),
        person("dave@contoso.com", "44444444-4444-4444-8444-444444444444"),
        person("erin@contoso.com", "55555555-5555-4555-8555-555555555555"),
        person("frank@contoso.com", "66666666-6666-4666-8666-666666666666"),
    ]
}

fn org_groups() -> Value {
    json!([
        {"id": SALES, "displayName": "Sales", "mail": "sales@contoso.com",
         "members": [ADELE_ID, EMEA]},
        {"id": EMEA, "displayName": "EMEA", "mail": null,
         "members": ["megan@contoso.com", "carol@contoso.com", "frank@contoso.com"]},
        {"id": BOARD, "displayName": "Board", "mail": "board@contoso.com",
         "members": ["carol@contoso.com"]},
    ])
}

fn with_groups(users: Vec<Value>, groups: Value, roles: &[&str]) -> graph_emulator::Scenario {
    let mut t = tenant_json(TENANT, users);
    t["groups"] = groups;
    t["apps"][0]["roles"] = json!(roles);
    scenario_of(vec![t])
}

/// The default tenant, with `fields` added to its entry.
fn env_with(emu: &Emu, fields: Value) -> EnvVars {
    let mut entry = tenant_entry(TENANT, SECRET);
    for (k, v) in fields.as_object().unwrap() {
        entry[k] = v.clone();
    }
    let mut vars = endpoints(emu);
    vars.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([entry]).to_string(),
    ));
    vars
}

/// The mailboxes any request reached (directory lookups of a user are not mailbox requests).
fn touched(emu: &Emu) -> Vec<String> {
    emu.stats()
        .by_mailbox
        .into_iter()
        .filter(|(_, m)| m.get + m.post + m.patch + m.delete > 0)
        .map(|(k, _)| k.to_lowercase())
        .collect()
}

fn deletes(emu: &Emu) -> u64 {
    emu.stats().by_mailbox.values().map(|m| m.delete).sum()
}

fn emails(cs: &[Map<String, Value>]) -> Vec<String> {
    let mut v: Vec<String> = cs.iter().filter_map(email).collect();
    v.sort();
    v
}

/// Nested groups, a user in both an included and an excluded group, ExcludeUsers in another
/// case: only Megan and Frank are synced, every other mailbox is never touched; `check` shows
/// each rule's count. In test mode the same groups only narrow the list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_narrow_the_scope_in_the_documented_order() {
    let emu = Emu::start(with_groups(org_users(), org_groups(), &GROUP_ROLES)).await;
    let vars = env_with(
        &emu,
        json!({
            "IncludeGroups": ["SALES@contoso.com", SALES],
            "ExcludeGroups": [BOARD],
            "ExcludeUsers": ["Adele@Contoso.COM"],
        }),
    );
    let c = run(&vars, &["check"]).await;
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    assert!(
        c.stdout.contains(
            "2 users in scope: licensed users 6; ∩ IncludeGroups (1 group, 4 users) → 4; \
             − ExcludeGroups (1 group, 1 user) → 3; − ExcludeUsers (1) → 2"
        ),
        "{}",
        c.stdout
    );
    assert_eq!(emu.writes(), 0, "check wrote");

    emu.reset();
    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.tenant(0)["users"], 2);
    // Frank is in EMEA, nested in Sales: included. Carol is in EMEA and in Board: excluded.
    assert_eq!(
        touched(&emu),
        vec!["frank@contoso.com", "hub@contoso.com", "megan@contoso.com"]
    );
    assert_eq!(
        emails(&emu.hub_contacts().unwrap()),
        vec![
            "friend-of-frank@fabrikam.com",
            "friend-of-megan@fabrikam.com"
        ]
    );
    assert_eq!(
        emails(&emu.contacts("megan@contoso.com")),
        vec![
            "friend-of-frank@fabrikam.com",
            "friend-of-megan@fabrikam.com"
        ]
    );
    for out in ["adele", "carol", "dave", "erin"] {
        let cs = emu.contacts(&format!("{out}@contoso.com"));
        assert_eq!(emails(&cs), vec![format!("friend-of-{out}@fabrikam.com")]);
    }

    // Test mode wins: the groups narrow the list (Dave is in no included group) and never add
    // anyone to it (Frank stays out); the test users are named by UPN and by object id.
    let emu = Emu::start(with_groups(org_users(), org_groups(), &GROUP_ROLES)).await;
    let vars = env_with(
        &emu,
        json!({
            "TestUserList": [ADELE_ID, "megan@contoso.com", "dave@contoso.com", "carol@contoso.com"],
            "IncludeGroups": [SALES],
            "ExcludeGroups": ["board@contoso.com"],
        }),
    );
    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.tenant(0)["users"], 2);
    let mut seen = touched(&emu);
    seen.retain(|m| m != "hub@contoso.com");
    // Adele, named by her id, is matched to Sales (which names her by id too) and read.
    assert_eq!(seen, vec!["adele@contoso.com", "megan@contoso.com"]);
}

/// A named group that is not there refuses the run before any mailbox is read — every unknown
/// group at once, by id and by mail — in `sync` and in `check`, with exit 2 and what to do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_group_refuses_the_run_before_any_mailbox_is_touched() {
    let emu = Emu::start(with_groups(org_users(), org_groups(), &GROUP_ROLES)).await;
    let missing = "6a1f5a7e-0000-4000-8000-0000000000ff";
    let vars = env_with(
        &emu,
        json!({
            "IncludeGroups": ["sales@contoso.com", "salse@contoso.com"],
            "ExcludeGroups": [missing],
        }),
    );
    for dry in [false, true] {
        let args: &[&str] = if dry { &["--dry-run"] } else { &[] };
        let r = sync(&vars, args).await;
        assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
        for needle in [
            "field IncludeGroups: \"salse@contoso.com\" is not a group of this tenant",
            &format!("field ExcludeGroups: \"{missing}\" is not a group of this tenant"),
            "correct the group's object id or mail address",
            "GroupMember.Read.All",
            "nothing was written (only the directory was read",
        ] {
            assert!(r.stderr.contains(needle), "{needle}:\n{}", r.stderr);
        }
        assert!(
            !r.stderr.contains("\"sales@contoso.com\" is not"),
            "{}",
            r.stderr
        );
        assert_eq!(r.report.as_ref().unwrap()["exitCode"], 2);
        assert!(r.last_line().ends_with("exit code 2"), "{}", r.stdout);
    }
    let c = run(&vars, &["check"]).await;
    assert_eq!(c.code, 2, "{}\n{}", c.stdout, c.stderr);
    assert!(
        c.stdout
            .contains("[FAIL] IncludeGroups: \"salse@contoso.com\" is not a group of this tenant"),
        "{}",
        c.stdout
    );
    assert!(
        c.stdout.contains("fix: correct the group's object id"),
        "{}",
        c.stdout
    );
    assert!(c.last_line().ends_with("exit code 2"), "{}", c.stdout);
    // `check` reads the hub (its checklist goes on) but no user, since who is in scope is not
    // known; `sync` read no mailbox at all.
    assert_eq!(touched(&emu), vec!["hub@contoso.com"]);
    assert_eq!(emu.writes(), 0);
    assert!(emu.hub_contacts().is_none(), "the hub folder was created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_refused_for_an_unknown_group_reads_no_mailbox() {
    let emu = Emu::start(with_groups(org_users(), org_groups(), &GROUP_ROLES)).await;
    let vars = env_with(&emu, json!({"ExcludeGroups": ["nobody@contoso.com"]}));
    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(touched(&emu), Vec::<String>::new());
    assert!(emu.stats().requests > 0, "the group was looked up");
}

/// Without GroupMember.Read.All the group cannot be read: a missing permission (exit 3), in the
/// words `failure.rs` gives, in `sync` and `check` alike; no mailbox is touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_group_permission_is_exit_3_with_the_permission_to_grant() {
    let emu = Emu::start(with_groups(
        org_users(),
        org_groups(),
        &["Contacts.ReadWrite", "User.Read.All"],
    ))
    .await;
    let vars = env_with(&emu, json!({"IncludeGroups": ["sales@contoso.com"]}));
    let (s, c) = tokio::join!(sync(&vars, &[]), run(&vars, &["check"]));
    for (cmd, r) in [("sync", &s), ("check", &c)] {
        assert_eq!(r.code, 3, "{cmd}\n{}\n{}", r.stdout, r.stderr);
        assert!(
            r.stdout
                .contains("reading group \"sales@contoso.com\" (IncludeGroups)"),
            "{cmd}: {}",
            r.stdout
        );
        assert!(
            r.stdout.contains(synccontacts::failure::PERM_GROUPS),
            "{cmd}: {}",
            r.stdout
        );
        assert!(
            r.last_line().ends_with("exit code 3"),
            "{cmd}: {}",
            r.stdout
        );
    }
    assert_eq!(s.tenant(0)["outcome"], "auth-failed");
    assert_eq!(touched(&emu), Vec::<String>::new());
    assert_eq!(emu.writes(), 0);
}

/// A group of 2,000 members: three pages of 999. The three licensed users sit on the first, the
/// second and the last page of the member list; only all three pages bring all three in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_two_thousand_members_is_read_across_its_pages() {
    let mut users = vec![hub_with(None)];
    let mut members = Vec::new();
    for i in 0..2000 {
        let upn = format!("u{i:04}@contoso.com");
        let licensed = matches!(i, 0 | 1500 | 1999);
        let mut u = user(&upn, Vec::new());
        if !licensed {
            u["assignedLicenses"] = json!([]);
            u["mailbox"] = json!(false);
        }
        users.push(u);
        members.push(upn);
    }
    // A licensed user outside the group: left out.
    users.push(user("outside@contoso.com", Vec::new()));
    let groups = json!([{"id": SALES, "displayName": "Everyone", "mail": "all@contoso.com",
                         "members": members}]);
    let emu = Emu::start(with_groups(users, groups, &GROUP_ROLES)).await;
    let vars = env_with(&emu, json!({"IncludeGroups": ["all@contoso.com"]}));
    let c = run(&vars, &["check"]).await;
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    assert!(
        c.stdout.contains(
            "3 users in scope: licensed users 4; ∩ IncludeGroups (1 group, 2,000 users) → 3"
        ),
        "{}",
        c.stdout
    );
    emu.reset();
    let r = sync(&vars, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.tenant(0)["users"], 3);
    assert_eq!(
        touched(&emu),
        vec![
            "hub@contoso.com",
            "u0000@contoso.com",
            "u1500@contoso.com",
            "u1999@contoso.com"
        ]
    );
}

/// A user who leaves the scope between runs (a state file kept): nothing is deleted — not in their
/// mailbox, not in the hub, not in anyone's — their mailbox is not touched, and when they come
/// back the run has nothing to write: the state kept its memory of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaving_the_scope_is_never_a_deletion() {
    let emu = Emu::start(with_groups(org_users(), org_groups(), &GROUP_ROLES)).await;
    let dir = tempfile::tempdir().unwrap();
    let state = var(
        "AUTOMATION_SYNCCONTACTS_STATE",
        dir.path().join("state.sqlite").display().to_string(),
    );
    let mut all = env_with(&emu, json!({"IncludeGroups": [SALES]}));
    all.push(state.clone());
    let r = sync(&all, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.tenant(0)["users"], 4);
    let carol_before = emu.contacts("carol@contoso.com");
    let hub_before = emu.hub_contacts().unwrap();
    assert_eq!(emails(&carol_before).len(), 4, "Carol has the book");

    // Carol is now excluded (Board), Megan too (by id): the contacts they brought stay everywhere.
    emu.reset();
    let mut fewer = env_with(
        &emu,
        json!({"IncludeGroups": [SALES], "ExcludeGroups": ["board@contoso.com"],
               "ExcludeUsers": ["22222222-2222-4222-8222-222222222222"]}),
    );
    fewer.push(state.clone());
    for dry in [true, false] {
        let args: &[&str] = if dry { &["--dry-run"] } else { &[] };
        let r = sync(&fewer, args).await;
        assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
        assert_eq!(r.tenant(0)["users"], 2);
        assert!(!r.stdout.contains("Would delete"), "{}", r.stdout);
        assert!(!r.stdout.contains("Held delete"), "{}", r.stdout);
    }
    assert_eq!(deletes(&emu), 0, "a delete was sent");
    assert_eq!(emu.writes(), 0, "a converged book was written");
    let seen = touched(&emu);
    assert!(!seen.contains(&"carol@contoso.com".to_owned()), "{seen:?}");
    assert!(!seen.contains(&"megan@contoso.com".to_owned()), "{seen:?}");
    assert_eq!(emu.contacts("carol@contoso.com"), carol_before);
    assert_eq!(emu.hub_contacts().unwrap(), hub_before);
    assert_eq!(
        emails(&emu.contacts("adele@contoso.com")),
        emails(&hub_before),
        "Adele keeps Carol's and Megan's contacts"
    );

    // Back in scope: nothing to write, nothing deleted.
    emu.reset();
    let r = sync(&all, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(emu.writes(), 0, "{}", r.stdout);
}

/// Rules that leave nobody (Board is included and excluded) fail the tenant as its configuration
/// (exit 3 when alone), with each rule's count, in `sync` and `check`; no user mailbox is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_that_leave_nobody_fail_the_tenant_with_the_counts() {
    let emu = Emu::start(with_groups(org_users(), org_groups(), &GROUP_ROLES)).await;
    let vars = env_with(
        &emu,
        json!({"IncludeGroups": ["board@contoso.com"], "ExcludeGroups": [EMEA]}),
    );
    let (s, c) = tokio::join!(sync(&vars, &[]), run(&vars, &["check"]));
    for (cmd, r) in [("sync", &s), ("check", &c)] {
        assert_eq!(r.code, 3, "{cmd}\n{}\n{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains(
                "no users in scope: the scope rules leave none (licensed users 6; ∩ IncludeGroups \
                 (1 group, 1 user) → 1; − ExcludeGroups (1 group, 3 users) → 0)"
            ),
            "{cmd}: {}",
            r.stdout
        );
    }
    assert_eq!(s.tenant(0)["outcome"], "config-failed");
    let mut seen = touched(&emu);
    seen.retain(|m| m != "hub@contoso.com");
    assert_eq!(seen, Vec::<String>::new());
}
