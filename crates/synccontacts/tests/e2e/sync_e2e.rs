//! The sync against the emulator: convergence, no duplicates, newest edit wins, clears and notes,
//! dry-run prediction, scope, a failing tenant, skipped mailboxes, secrets, check and demo.

use std::collections::BTreeSet;

use serde_json::json;

use crate::harness::*;

const SID_A: &str = "0a0a0a0a-1111-4222-8333-444444444444";
const SID_B: &str = "0b0b0b0b-1111-4222-8333-444444444444";
const SID_C: &str = "0c0c0c0c-1111-4222-8333-444444444444";

fn generated(users: usize, per_user: usize, pool: usize) -> graph_emulator::Scenario {
    graph_emulator::generate(&graph_emulator::GenerateOptions {
        users,
        contacts_per_user: per_user,
        pool: Some(pool),
        edits: 0.2,
        seed: 11,
    })
}

fn gen_env(emu: &Emu, s: &graph_emulator::Scenario) -> EnvVars {
    let t = &s.tenants[0];
    let app = &t.apps[0];
    let hub = t
        .users
        .iter()
        .find(|u| u.assigned_licenses.is_empty())
        .unwrap();
    let mut env = endpoints(emu);
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([{
            "TenantId": t.tenant_id, "ClientId": app.client_id,
            "ClientSecret": app.client_secret, "GlobalAddressBookUserId": hub.user_principal_name,
        }])
        .to_string(),
    ));
    env
}

/// Every folder of the tenant: no SyncId twice, no email twice (I2), every contact stamped.
fn assert_converged(emu: &Emu, s: &graph_emulator::Scenario) -> usize {
    let t = &s.tenants[0];
    let hub_upn = &t
        .users
        .iter()
        .find(|u| u.assigned_licenses.is_empty())
        .unwrap()
        .user_principal_name;
    let state = emu.inner.state();
    let st = &state.tenants[0];
    let hub = st
        .users
        .iter()
        .find(|u| &u.user_principal_name == hub_upn)
        .unwrap();
    let all = &hub
        .contact_folders
        .iter()
        .find(|f| f.display_name == "All Contacts")
        .unwrap()
        .contacts;
    let hub_ids: BTreeSet<String> = all
        .iter()
        .map(|c| sync_id(c).expect("hub contact stamped"))
        .collect();
    assert_eq!(hub_ids.len(), all.len(), "duplicate SyncId in the hub");
    let hub_emails: BTreeSet<String> = all.iter().filter_map(email).collect();
    assert_eq!(hub_emails.len(), all.len(), "duplicate email in the hub");
    for u in st.users.iter().filter(|u| !u.assigned_licenses.is_empty()) {
        let ids: BTreeSet<String> = u
            .contacts
            .iter()
            .map(|c| sync_id(c).expect("user contact stamped"))
            .collect();
        assert_eq!(
            ids.len(),
            u.contacts.len(),
            "duplicate SyncId in {}",
            u.user_principal_name
        );
        assert_eq!(
            ids, hub_ids,
            "{} does not hold exactly the hub's contacts",
            u.user_principal_name
        );
    }
    all.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_tenant_converges_in_one_run_and_the_second_run_writes_nothing() {
    let s = generated(6, 5, 12);
    let emu = Emu::start(s.clone()).await;
    let env = gen_env(&emu, &s);
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.results().iter().all(|x| x == "done"), "{:?}", r.results());
    assert_eq!(r.tenant(0)["hubFolder"], "created");
    let n = assert_converged(&emu, &s);
    assert!(n <= 12 && n > 5, "hub holds {n} contacts from a pool of 12");
    assert!(r.stdout.contains("Step1 - Created: "), "{}", r.stdout);
    assert!(r.stdout.contains("Step2 - Created: "), "{}", r.stdout);
    assert!(r.stdout.contains("Created: NotesId="), "{}", r.stdout);

    emu.reset();
    let r2 = sync(&env, &[]).await;
    assert_eq!(r2.code, 0, "{}", r2.stderr);
    assert_eq!(
        emu.writes(),
        0,
        "second run wrote: {:?}",
        emu.stats().by_mailbox
    );
    assert!(r2.action_keys().is_empty(), "{:?}", r2.action_keys());
    assert_eq!(r2.tenant(0)["hubFolder"], "found");
    assert_eq!(
        r2.tenant(0)["step1"]["skipped"],
        n,
        "every hub contact was skipped"
    );
    // One pass over each folder: users + hub, and at most a folder lookup besides.
    let stats = emu.stats();
    assert!(stats.batches == 0, "no batches without writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_writes_nothing_and_predicts_the_real_run() {
    let s = generated(5, 4, 9);
    let emu = Emu::start(s.clone()).await;
    let env = gen_env(&emu, &s);
    let dry = sync(&env, &["--dry-run"]).await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert_eq!(emu.writes(), 0, "dry run wrote");
    assert!(dry.results().iter().all(|x| x == "planned"));
    assert_eq!(dry.tenant(0)["hubFolder"], "would-create");
    assert!(
        emu.hub_contacts().is_none(),
        "the dry run created the hub folder"
    );
    assert!(!dry.action_keys().is_empty());
    assert!(dry.stdout.contains("Would create: NotesId="));
    let real = sync(&env, &[]).await;
    assert_eq!(real.code, 0, "{}", real.stderr);
    assert_eq!(
        dry.action_keys(),
        real.action_keys(),
        "planned ≠ performed (I8)"
    );
    assert!(real.results().iter().all(|x| x == "done"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mailboxes_stamped_by_the_script_in_both_tag_formats_get_no_duplicates() {
    // The hub holds A and B (4-key tags); users hold copies with the 2-key tags of the older
    // script, one of them under a changed email (matched by SyncId), plus an untagged copy of C
    // that the hub knows by email only.
    let hub_a = with(
        contact(
            "Alex Wilber",
            Some("alex@fabrikam.com"),
            "2026-01-01T00:00:00Z",
        ),
        "personalNotes",
        json!(tag4(SID_A, "adele@contoso.com")),
    );
    let hub_b = with(
        contact(
            "Bianca Pisani",
            Some("bianca@fabrikam.com"),
            "2026-01-01T00:00:00Z",
        ),
        "personalNotes",
        json!(tag4(SID_B, "megan@contoso.com")),
    );
    let hub_c = with(
        contact(
            "Cameron White",
            Some("cameron@fabrikam.com"),
            "2026-01-01T00:00:00Z",
        ),
        "personalNotes",
        json!(tag4(SID_C, "megan@contoso.com")),
    );
    let adele = vec![
        with(
            contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-01-01T00:00:00Z",
            ),
            "personalNotes",
            json!(format!(
                "Golf on Fridays\r\n{}",
                tag2(SID_A, "adele@contoso.com")
            )),
        ),
        with(
            contact(
                "Bianca Pisani",
                Some("bianca.new@fabrikam.com"),
                "2025-12-01T00:00:00Z",
            ),
            "personalNotes",
            json!(tag2(SID_B, "megan@contoso.com")),
        ),
        contact(
            "Cameron White",
            Some("Cameron@Fabrikam.com"),
            "2025-12-01T00:00:00Z",
        ),
    ];
    let megan = vec![with(
        contact(
            "Bianca Pisani",
            Some("bianca@fabrikam.com"),
            "2026-01-01T00:00:00Z",
        ),
        "personalNotes",
        json!(tag4(SID_B, "megan@contoso.com")),
    )];
    let emu = Emu::start(scenario(vec![
        hub_with(Some(vec![hub_a, hub_b, hub_c])),
        user("adele@contoso.com", adele),
        user("megan@contoso.com", megan),
    ]))
    .await;
    let env = one_tenant(&emu);
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let hub = emu.hub_contacts().unwrap();
    assert_eq!(hub.len(), 3, "the hub grew: {hub:?}");
    for upn in ["adele@contoso.com", "megan@contoso.com"] {
        let cs = emu.contacts(upn);
        let ids: Vec<String> = cs.iter().map(|c| sync_id(c).expect("stamped")).collect();
        let set: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(set.len(), ids.len(), "duplicate SyncId in {upn}: {ids:?}");
        assert_eq!(
            set.len(),
            3,
            "{upn} should hold A, B, C exactly once: {ids:?}"
        );
    }
    // Adele's untagged Cameron was linked by email and stamped with the hub's SyncId.
    let adele = emu.contacts("adele@contoso.com");
    assert!(adele.iter().any(|c| sync_id(c).as_deref() == Some(SID_C)));
    let alex = adele
        .iter()
        .find(|c| sync_id(c).as_deref() == Some(SID_A))
        .unwrap();
    assert_eq!(user_text(alex), "Golf on Fridays", "note text kept");
    emu.reset();
    let r2 = sync(&env, &[]).await;
    assert_eq!(r2.code, 0);
    assert_eq!(emu.writes(), 0, "second run wrote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_edit_wins_clears_propagate_and_notes_are_kept() {
    let base = |t: &str| contact("Alex Wilber", Some("alex@fabrikam.com"), t);
    let notes_hub = format!("Hub remark\n{}", tag4(SID_A, "adele@contoso.com"));
    let notes_adele = format!(
        "Met at Ignite 2025\r\nSays SyncId=abc is his locker code\r\n\r\nÜnïcødé ✓\r\n{}",
        tag4(SID_A, "adele@contoso.com")
    );
    let hub_a = with(
        with(
            with(base("2026-01-01T00:00:00Z"), "jobTitle", json!("Developer")),
            "mobilePhone",
            json!("+1 425 555 0100"),
        ),
        "personalNotes",
        json!(notes_hub),
    );
    // Megan edited last: new title and cleared the mobile number.
    let megan_a = with(
        with(
            base("2026-03-01T00:00:00Z"),
            "jobTitle",
            json!("Lead Developer"),
        ),
        "personalNotes",
        json!(tag4(SID_A, "adele@contoso.com")),
    );
    // Adele edited before Megan: her title must not win.
    let adele_a = with(
        with(
            with(
                base("2026-02-01T00:00:00Z"),
                "jobTitle",
                json!("Senior Developer"),
            ),
            "mobilePhone",
            json!("+1 425 555 0100"),
        ),
        "personalNotes",
        json!(notes_adele.clone()),
    );
    let emu = Emu::start(scenario(vec![
        hub_with(Some(vec![hub_a])),
        user("adele@contoso.com", vec![adele_a]),
        user("megan@contoso.com", vec![megan_a]),
        user("nestor@contoso.com", vec![]),
    ]))
    .await;
    let env = one_tenant(&emu);
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Changed: "), "{}", r.stdout);
    let mut copies = vec![("hub", emu.hub_contacts().unwrap())];
    for u in [
        "adele@contoso.com",
        "megan@contoso.com",
        "nestor@contoso.com",
    ] {
        copies.push((u, emu.contacts(u)));
    }
    for (who, cs) in &copies {
        assert_eq!(cs.len(), 1, "{who}: {cs:?}");
        let c = &cs[0];
        assert_eq!(
            s(c, "jobTitle"),
            Some("Lead Developer"),
            "{who}: newest edit must win"
        );
        assert_eq!(
            s(c, "mobilePhone"),
            None,
            "{who}: the cleared phone must propagate"
        );
        assert_eq!(sync_id(c).as_deref(), Some(SID_A), "{who}");
    }
    let text = |who: &str| user_text(&copies.iter().find(|(w, _)| *w == who).unwrap().1[0]);
    assert_eq!(text("hub"), "Hub remark");
    assert_eq!(
        text("adele@contoso.com"),
        sync_engine::tags::user_text(Some(&notes_adele)),
        "Adele's own text (with its inline SyncId= sentence) is kept"
    );
    assert!(text("adele@contoso.com").contains("locker code"));
    assert_eq!(text("megan@contoso.com"), "");
    assert_eq!(
        text("nestor@contoso.com"),
        "",
        "no one else's note text is copied"
    );
    emu.reset();
    assert_eq!(sync(&env, &[]).await.code, 0);
    assert_eq!(emu.writes(), 0, "second run wrote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_user_scope_touches_only_the_test_users() {
    let emu = Emu::start(scenario(
        [
            simple_users(),
            vec![user(
                "nestor@contoso.com",
                vec![contact(
                    "Cameron White",
                    Some("cameron@fabrikam.com"),
                    "2026-01-01T00:00:00Z",
                )],
            )],
        ]
        .concat(),
    ))
    .await;
    let mut entry = tenant_entry(TENANT, SECRET);
    entry["TestUserList"] = json!(["adele@contoso.com", "Megan@Contoso.com", HUB]);
    let mut env = endpoints(&emu);
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([entry]).to_string(),
    ));
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(
        r.tenant(0)["users"],
        2,
        "the hub is removed from the test users"
    );
    let touched: Vec<String> = emu
        .stats()
        .by_mailbox
        .keys()
        .map(|k| k.to_lowercase())
        .collect();
    assert!(
        !touched.iter().any(|k| k.contains("nestor")),
        "nestor is out of scope: {touched:?}"
    );
    assert_eq!(emu.contacts("nestor@contoso.com").len(), 1);
    assert_eq!(emu.contacts("adele@contoso.com").len(), 2);
    assert_eq!(emu.hub_contacts().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_mailbox_is_skipped_with_one_warning() {
    let mut ghost = user("ghost@contoso.com", vec![]);
    ghost["mailbox"] = json!(false);
    let emu = Emu::start(scenario(vec![
        hub_with(None),
        user(
            "adele@contoso.com",
            vec![contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-01-01T00:00:00Z",
            )],
        ),
        ghost,
    ]))
    .await;
    let r = sync(&one_tenant(&emu), &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let t = r.tenant(0);
    assert_eq!(t["skippedMailboxes"].as_array().unwrap().len(), 1, "{t}");
    assert_eq!(t["skippedMailboxes"][0]["mailbox"], "ghost@contoso.com");
    let lines = r
        .stderr
        .lines()
        .filter(|l| l.contains("ghost@contoso.com"))
        .count();
    assert_eq!(lines, 1, "one warning line: {}", r.stderr);
    assert!(
        r.stdout.contains("Skipped mailbox: ghost@contoso.com"),
        "{}",
        r.stdout
    );
    assert_eq!(emu.hub_contacts().unwrap().len(), 1);
}

fn two_tenants() -> graph_emulator::Scenario {
    let users = |upn: &str| {
        vec![
            hub_with(None),
            user(
                upn,
                vec![contact(
                    "Alex Wilber",
                    Some("alex@fabrikam.com"),
                    "2026-01-01T00:00:00Z",
                )],
            ),
        ]
    };
    let mut b = tenant_json(TENANT_B, users("lee@contoso.com"));
    b["domains"] =
        json!([{"id": "fabrikam.onmicrosoft.com", "isInitial": true, "isDefault": true}]);
    scenario_of(vec![tenant_json(TENANT, users("adele@contoso.com")), b])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_with_a_wrong_secret_fails_alone() {
    let emu = Emu::start(two_tenants()).await;
    let mut env = endpoints(&emu);
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([
            tenant_entry(TENANT_B, "wrong-secret-value-123"),
            tenant_entry(TENANT, SECRET)
        ])
        .to_string(),
    ));
    let r = sync(&env, &[]).await;
    assert_eq!(
        r.code, 1,
        "mixed: one tenant synced, one failed\n{}\n{}",
        r.stdout, r.stderr
    );
    assert_eq!(r.report.as_ref().unwrap()["exitCode"], 1);
    assert!(
        r.stdout
            .contains("2 tenant(s) — 1 ok, 1 failed on authentication/permission; exit code 1"),
        "{}",
        r.stdout
    );
    assert_eq!(r.tenant(0)["status"], "failed");
    assert_eq!(r.tenant(0)["outcome"], "auth-failed");
    assert!(
        r.tenant(0)["error"].as_str().unwrap().contains("token"),
        "{}",
        r.tenant(0)
    );
    assert_eq!(r.tenant(1)["status"], "ok");
    assert_eq!(emu.contacts("adele@contoso.com").len(), 1);
    let state = emu.inner.state();
    let b = state
        .tenants
        .iter()
        .find(|t| t.tenant_id == TENANT_B)
        .unwrap();
    assert!(
        b.users.iter().all(|u| u.contact_folders.is_empty()),
        "tenant B was written"
    );

    // Every tenant failing on auth is exit 3.
    let mut env = endpoints(&emu);
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([tenant_entry(TENANT_B, "wrong-secret-value-123")]).to_string(),
    ));
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 3, "{}\n{}", r.stdout, r.stderr);
    let c = run(&env, &["check"]).await;
    assert_eq!(c.code, 3, "{}\n{}", c.stdout, c.stderr);
    assert!(
        c.stdout.contains("[FAIL]") && c.stdout.contains("fix:"),
        "{}",
        c.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_a_healthy_tenant_without_writing() {
    let emu = Emu::start(scenario(vec![
        hub_with(None),
        user(
            "adele@contoso.com",
            vec![contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-01-01T00:00:00Z",
            )],
        ),
    ]))
    .await;
    let c = run(&one_tenant(&emu), &["check"]).await;
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    assert!(
        c.stdout.contains("token obtained with the client secret"),
        "{}",
        c.stdout
    );
    assert!(c.stdout.contains("1 licensed users"), "{}", c.stdout);
    assert!(
        c.stdout.contains("first real sync creates it"),
        "{}",
        c.stdout
    );
    assert!(!c.stdout.contains("[FAIL]"), "{}", c.stdout);
    assert_eq!(emu.writes(), 0);
    assert!(emu.hub_contacts().is_none(), "check created the folder");
}

fn encodings(secret: &str) -> Vec<String> {
    use base64::Engine as _;
    vec![
        secret.to_owned(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
        base64::engine::general_purpose::STANDARD.encode(secret),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_any_output_at_the_most_verbose_level() {
    let emu = Emu::start(two_tenants()).await;
    let mut env = endpoints(&emu);
    // One tenant with the right secret (tokens flow), one with a wrong canary (error paths).
    let wrong = "wrong-Canary-0123456789abcdef";
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([tenant_entry(TENANT, SECRET), tenant_entry(TENANT_B, wrong)]).to_string(),
    ));
    let mut outputs = Vec::new();
    outputs.push(sync(&env, &["-vv"]).await.all_output());
    let mut traced = env.clone();
    traced.push(var("RUST_LOG", "trace"));
    outputs.push(sync(&traced, &["--log-format", "json"]).await.all_output());
    outputs.push(run(&traced, &["check"]).await.all_output());
    for out in &outputs {
        for canary in [SECRET, wrong] {
            for form in encodings(canary) {
                assert!(!out.contains(&form), "secret form {form:?} found in output");
            }
        }
        // No access token (a JWT) either.
        assert!(!out.contains("eyJ"), "a JWT-looking string in the output");
    }
    assert!(
        outputs[0].contains("DEBUG") || outputs[0].contains("TRACE"),
        "-vv was not verbose"
    );
}

#[cfg(feature = "demo")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_and_its_second_run_writes_nothing() {
    let r = run(
        &vec![],
        &["demo", "--users", "6", "--contacts-per-user", "4"],
    )
    .await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("the last run wrote 0 times"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Would create: NotesId="), "{}", r.stdout);
    // The deletion from "All Contacts" reached every user (6 users, each held a tagged copy).
    assert!(
        r.stdout.contains("was deleted from 6 users"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("   Deleted: NotesId="), "{}", r.stdout);
    // Its state lived in a temporary folder, not in the working folder.
    assert!(
        r.stdout.lines().last().unwrap().starts_with("Result: "),
        "{}",
        r.stdout
    );
}

/// `cargo test -p synccontacts --no-default-features`: the lean binary says why there is no demo.
#[cfg(not(feature = "demo"))]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_without_the_feature_says_so_and_exits_2() {
    let r = run(&vec![], &["demo"]).await;
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(synccontacts::cli::NO_DEMO),
        "{}",
        r.stderr
    );
    let help = run(&vec![], &["--help"]).await;
    assert!(!help.stdout.contains("demo"), "{}", help.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_dropped_on_create_are_written_again() {
    // Some mailboxes ignore personalNotes on create (docs/compatibility.md §7); the emulator's
    // quirk does that.
    let mut s = scenario(simple_users());
    s.quirks = Some(graph_emulator::scenario::Quirks {
        ignore_notes_on_create: true,
    });
    let emu = Emu::start(s).await;
    let env = one_tenant(&emu);
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    for cs in [
        emu.hub_contacts().unwrap(),
        emu.contacts("adele@contoso.com"),
        emu.contacts("megan@contoso.com"),
    ] {
        assert_eq!(cs.len(), 2);
        for c in &cs {
            assert!(
                sync_id(c).is_some(),
                "created contact without its tag line: {c:?}"
            );
        }
    }
    emu.reset();
    assert_eq!(sync(&env, &[]).await.code, 0);
    assert_eq!(emu.writes(), 0, "second run wrote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mailbox_outside_the_access_policy_fails_alone_and_the_run_is_partial() {
    let mut t = tenant_json(
        TENANT,
        [simple_users(), vec![user("nestor@contoso.com", vec![])]].concat(),
    );
    t["apps"][0]["mailboxScope"] = json!([HUB, "adele@contoso.com", "nestor@contoso.com"]);
    let emu = Emu::start(scenario_of(vec![t])).await;
    let r = sync(&one_tenant(&emu), &[]).await;
    assert_eq!(r.code, 1, "partial run\n{}\n{}", r.stdout, r.stderr);
    let t = r.tenant(0);
    assert_eq!(t["status"], "failed");
    assert_eq!(t["outcome"], "partial");
    let failed = t["failedMailboxes"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{t}");
    assert_eq!(failed[0]["mailbox"], "megan@contoso.com");
    assert!(failed[0]["requestId"].is_string(), "request-id kept: {t}");
    assert!(
        r.stdout.contains("Failed mailbox: megan@contoso.com"),
        "{}",
        r.stdout
    );
    // The rest converged, and Megan's mailbox was not touched.
    assert_eq!(emu.hub_contacts().unwrap().len(), 1);
    assert_eq!(emu.contacts("nestor@contoso.com").len(), 1);
    assert_eq!(emu.contacts("megan@contoso.com").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let emu = Emu::start(scenario(vec![
        hub_with(None),
        user(
            "adele@contoso.com",
            vec![contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-01-01T00:00:00Z",
            )],
        ),
    ]))
    .await;
    let r = sync(&one_tenant(&emu), &["--log-format", "json", "-v"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty());
    let mut saw_tenant_line = false;
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.get("level").is_some(), "{l}");
        if l.contains("users in scope") {
            assert_eq!(v["spans"][0]["tenant"], TENANT, "tenant missing: {l}");
            saw_tenant_line = true;
        }
    }
    assert!(saw_tenant_line, "no per-tenant log line: {}", r.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stdout_is_not_a_crash() {
    let emu = Emu::start(scenario(vec![
        hub_with(None),
        user(
            "adele@contoso.com",
            vec![contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-01-01T00:00:00Z",
            )],
        ),
    ]))
    .await;
    let env = one_tenant(&emu);
    let out = tokio::task::spawn_blocking(move || {
        let bin = assert_cmd::cargo::cargo_bin("synccontacts");
        let mut child = std::process::Command::new(bin)
            .env_clear()
            .envs(env)
            .args(["sync", "--dry-run"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader goes away, like `| head -0`
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_all_contacts_folder_is_found_not_duplicated() {
    let mut hub = hub_with(None);
    hub["contactFolders"] = json!([{
        "displayName": "Shared",
        "childFolders": [{"displayName": "All Contacts", "contacts": [
            with(contact("Alex Wilber", Some("alex@fabrikam.com"), "2026-01-01T00:00:00Z"), "personalNotes", json!(tag4(SID_A, "adele@contoso.com")))
        ]}]
    }]);
    let emu = Emu::start(scenario(vec![hub, user("adele@contoso.com", vec![])])).await;
    let r = sync(&one_tenant(&emu), &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.tenant(0)["hubFolder"], "found");
    let state = emu.inner.state();
    let hub = state.tenants[0]
        .users
        .iter()
        .find(|u| u.user_principal_name == HUB)
        .unwrap();
    assert_eq!(
        hub.contact_folders.len(),
        1,
        "a second All Contacts was created at the top"
    );
    assert_eq!(
        emu.contacts("adele@contoso.com").len(),
        1,
        "the nested hub folder's contact reached the user"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_existing_false_creates_and_stamps_but_never_updates() {
    let hub_a = with(
        with(
            contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-01-01T00:00:00Z",
            ),
            "jobTitle",
            json!("Developer"),
        ),
        "personalNotes",
        json!(tag4(SID_A, "adele@contoso.com")),
    );
    let adele_a = with(
        with(
            contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-02-01T00:00:00Z",
            ),
            "jobTitle",
            json!("Lead"),
        ),
        "personalNotes",
        json!(tag4(SID_A, "adele@contoso.com")),
    );
    let emu = Emu::start(scenario(vec![
        hub_with(Some(vec![hub_a])),
        user(
            "adele@contoso.com",
            vec![
                adele_a,
                contact(
                    "Bianca Pisani",
                    Some("bianca@fabrikam.com"),
                    "2026-01-01T00:00:00Z",
                ),
            ],
        ),
    ]))
    .await;
    let mut entry = tenant_entry(TENANT, SECRET);
    entry["UpdateExisting"] = json!("false");
    let mut env = endpoints(&emu);
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([entry]).to_string(),
    ));
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let hub = by_email(&emu.hub_contacts().unwrap());
    assert_eq!(
        s(&hub["alex@fabrikam.com"], "jobTitle"),
        Some("Developer"),
        "updated despite UpdateExisting=false"
    );
    assert!(
        hub.contains_key("bianca@fabrikam.com"),
        "creation still happens"
    );
    assert!(
        !r.action_keys().iter().any(|k| k.contains("\"update\"")),
        "{:?}",
        r.action_keys()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_selects_one_of_several_tenants() {
    let emu = Emu::start(two_tenants()).await;
    let mut env = endpoints(&emu);
    let mut b = tenant_entry(TENANT_B, SECRET);
    b["PrimaryDomain"] = json!("fabrikam.com");
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([tenant_entry(TENANT, SECRET), b]).to_string(),
    ));
    let r = sync(&env, &["--tenant", "FABRIKAM.com", "--dry-run"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let tenants = r.report.as_ref().unwrap()["tenants"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0]["tenantId"], TENANT_B);
}
