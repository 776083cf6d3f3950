//! Every configuration shape runs; every configuration error exits 2 having requested nothing —
//! not even a token (docs/reliability.md I6).

use serde_json::json;

use crate::harness::*;

const TEST_USERS: &str = "AUTOMATION_SYNCCONTACTS_TEST_USER_LIST_BY_TENANT_JSON";

fn with_field(
    entry: &serde_json::Value,
    field: &str,
    value: serde_json::Value,
) -> serde_json::Value {
    let mut e = entry.clone();
    e[field] = value;
    e
}

fn small() -> graph_emulator::Scenario {
    scenario(vec![
        hub_with(None),
        user(
            "adele@contoso.com",
            vec![contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-01-01T00:00:00Z",
            )],
        ),
        user("megan@contoso.com", vec![]),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_configuration_shape_runs() {
    let emu = Emu::start(small()).await;
    let entry = tenant_entry(TENANT, SECRET);
    let shapes: Vec<(&str, EnvVars)> = vec![
        (
            "config JSON with MicrosoftTenants and DryRun",
            vec![var(
                "AUTOMATION_SYNCCONTACTS_CONFIG_JSON",
                json!({"MicrosoftTenants": [entry], "DryRun": "true"}).to_string(),
            )],
        ),
        (
            "config JSON, older top-level shape",
            vec![var("AUTOMATION_SYNCCONTACTS_CONFIG_JSON", {
                let mut o = entry.clone();
                o["DryRun"] = json!(true);
                o.to_string()
            })],
        ),
        (
            "tenants JSON + DRY_RUN",
            vec![
                var(
                    "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
                    json!([entry]).to_string(),
                ),
                var("AUTOMATION_SYNCCONTACTS_DRY_RUN", " Yes "),
            ],
        ),
        (
            "single-tenant variables + DRY_RUN",
            vec![
                var("AUTOMATION_SYNCCONTACTS_TENANT_ID", TENANT),
                var("AUTOMATION_SYNCCONTACTS_CLIENT_ID", CLIENT),
                var("AUTOMATION_SYNCCONTACTS_CLIENT_SECRET", SECRET),
                var("AUTOMATION_SYNCCONTACTS_GLOBAL_ADDRESS_BOOK_USER_ID", HUB),
                var("AUTOMATION_SYNCCONTACTS_DRY_RUN", "1"),
            ],
        ),
    ];
    for (name, mut env) in shapes {
        env.extend(endpoints(&emu));
        emu.reset();
        let r = sync(&env, &[]).await;
        assert_eq!(r.code, 0, "{name}: {}\n{}", r.stdout, r.stderr);
        let rep = r.report.as_ref().unwrap();
        assert_eq!(rep["dryRun"], true, "{name}");
        assert_eq!(r.tenant(0)["tenantId"], TENANT, "{name}");
        assert_eq!(r.tenant(0)["status"], "ok", "{name}");
        assert_eq!(r.tenant(0)["users"], 2, "{name}");
        assert!(
            r.stdout.contains("Would create: NotesId="),
            "{name}: {}",
            r.stdout
        );
        assert_eq!(emu.writes(), 0, "{name}: a dry run wrote");
        assert!(
            emu.hub_contacts().is_none(),
            "{name}: a dry run created the hub folder"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_tenant_urls_and_test_user_map_variable() {
    let emu = Emu::start(small()).await;
    let mut entry = tenant_entry(TENANT, SECRET);
    entry["PrimaryDomain"] = json!("contoso.com");
    entry["LoginUrl"] = json!(emu.url());
    entry["GraphUrl"] = json!(emu.url());
    let env = vec![
        var(
            "AUTOMATION_SYNCCONTACTS_CONFIG_JSON",
            json!({"MicrosoftTenants": [entry], "TestUserListByTenant": {"contoso.com": ["megan@contoso.com", "adele@contoso.com"]}}).to_string(),
        ),
        // The variable overrides the map inside the config JSON; the key matches PrimaryDomain.
        var(
            "AUTOMATION_SYNCCONTACTS_TEST_USER_LIST_BY_TENANT_JSON",
            json!({"CONTOSO.COM": ["megan@contoso.com"]}).to_string(),
        ),
    ];
    let r = sync(&env, &["--dry-run"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.tenant(0)["users"], 1);
    let stats = emu.stats();
    assert!(
        !stats
            .by_mailbox
            .keys()
            .any(|m| m.to_lowercase().contains("adele")),
        "adele is outside the test scope but was read: {:?}",
        stats.by_mailbox.keys()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_configuration_error_exits_2_without_any_request() {
    let emu = Emu::start(small()).await;
    let good = tenant_entry(TENANT, SECRET);
    let dir = tempfile::tempdir().unwrap();
    let bad_pem = dir.path().join("bad.pem");
    std::fs::write(
        &bad_pem,
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let tj = "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON";
    let cases: Vec<(&str, EnvVars, Vec<&str>, &str)> = vec![
        ("nothing configured", vec![], vec![], "no tenants configured"),
        (
            "DryRun typo",
            vec![var(tj, json!([good]).to_string()), var("AUTOMATION_SYNCCONTACTS_DRY_RUN", "ture")],
            vec![],
            "AUTOMATION_SYNCCONTACTS_DRY_RUN",
        ),
        (
            "JSON syntax error",
            vec![var("AUTOMATION_SYNCCONTACTS_CONFIG_JSON", "{\"MicrosoftTenants\": [\n  {\"TenantId\": \"x\",,}\n]}")],
            vec![],
            "line 2",
        ),
        (
            "missing field in the second tenant (the first is valid and must not be contacted)",
            vec![var(tj, json!([good, {"TenantId": "t2", "ClientSecret": "x", "GlobalAddressBookUserId": HUB}]).to_string())],
            vec![],
            "tenant #2",
        ),
        (
            "two credentials",
            vec![var(tj, json!([{"TenantId": TENANT, "ClientId": CLIENT, "ClientSecret": SECRET, "ClientAssertionFile": "/x", "GlobalAddressBookUserId": HUB}]).to_string())],
            vec![],
            "more than one credential",
        ),
        (
            "federated token variable not set",
            vec![var(tj, json!([{"TenantId": TENANT, "ClientId": CLIENT, "ClientAssertionEnv": "AZURE_JWT", "GlobalAddressBookUserId": HUB}]).to_string())],
            vec![],
            "AZURE_JWT",
        ),
        (
            "certificate that does not load",
            vec![var(tj, json!([{"TenantId": TENANT, "ClientId": CLIENT, "ClientCertificatePath": bad_pem, "GlobalAddressBookUserId": HUB}]).to_string())],
            vec![],
            "ClientCertificatePath",
        ),
        (
            "plain http to a non-loopback host",
            vec![var(tj, json!([good]).to_string()), var("AUTOMATION_SYNCCONTACTS_GRAPH_URL", "http://graph.example.com")],
            vec![],
            "loopback",
        ),
        ("unknown --tenant", vec![var(tj, json!([good]).to_string())], vec!["--tenant", "fabrikam.com"], "fabrikam.com"),
        (
            "empty TestUserList (the script read it as every user)",
            vec![var(tj, json!([with_field(&good, "TestUserList", json!([]))]).to_string())],
            vec![],
            "TestUserList",
        ),
        (
            "test-user key that lists no users",
            vec![var(tj, json!([good]).to_string()), var(TEST_USERS, json!({TENANT: []}).to_string())],
            vec![],
            "lists no users",
        ),
        (
            "test-user key no tenant can take (the tenant is keyed by its TenantId)",
            vec![
                var(tj, json!([good]).to_string()),
                var(TEST_USERS, json!({TENANT: ["adele@contoso.com"], "contso.com": ["adele@contoso.com"]}).to_string()),
            ],
            vec![],
            "contso.com",
        ),
        (
            "Graph root with /v1.0",
            vec![var(tj, json!([good]).to_string()), var("AUTOMATION_SYNCCONTACTS_GRAPH_URL", format!("{}/v1.0", emu.url()))],
            vec![],
            "synccontacts appends /v1.0",
        ),
        (
            "LoginUrl with a path",
            vec![var(tj, json!([with_field(&good, "LoginUrl", json!(format!("{}/common", emu.url())))]).to_string())],
            vec![],
            "LoginUrl",
        ),
    ];
    for (name, mut env, extra, needle) in cases {
        // Endpoints go first so a case may override them.
        let mut full = endpoints(&emu);
        full.append(&mut env);
        emu.reset();
        let r = sync(&full, &extra).await;
        assert_eq!(r.code, 2, "{name}: exit code\n{}\n{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(needle),
            "{name}: stderr lacks {needle:?}:\n{}",
            r.stderr
        );
        assert!(
            r.stderr.contains("fix"),
            "{name}: no fix given:\n{}",
            r.stderr
        );
        assert_eq!(emu.any_requests(), 0, "{name}: requests were made");
        assert!(!r.all_output().contains(SECRET), "{name}: secret printed");
        let rep = r.report.as_ref().expect("a report even on a config error");
        assert!(rep["error"].is_string(), "{name}: report lacks the error");
        assert_eq!(
            rep["dryRun"], true,
            "{name}: a run refused for its configuration wrote nothing"
        );
        assert!(
            r.last_line().ends_with("exit code 2"),
            "{name}: last line {:?}",
            r.last_line()
        );
        // check refuses the same way.
        if extra.is_empty() {
            let c = run(&full, &["check"]).await;
            assert_eq!(c.code, 2, "{name}: check exit code\n{}", c.stderr);
            assert_eq!(emu.any_requests(), 0, "{name}: check made requests");
            assert!(
                c.last_line().ends_with("exit code 2"),
                "{name}: {}",
                c.stdout
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_are_exit_2_and_help_is_0() {
    let r = run(&vec![], &["sync", "--bogus"]).await;
    assert_eq!(r.code, 2);
    let r = run(&vec![], &["--help"]).await;
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("sync"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_cloud_as_the_configuration_spells_it() {
    let emu = Emu::start(small()).await;
    let mut entry = tenant_entry(TENANT, SECRET);
    entry["Cloud"] = json!("usgovdod");
    let mut env = endpoints(&emu);
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([entry]).to_string(),
    ));
    let c = run(&env, &["check"]).await;
    assert!(c.stdout.contains("USGovDoD cloud"), "{}", c.stdout);
}

/// The emulator's tenant is configured by its GUID; the test-user map names it by a verified
/// domain (`contoso.onmicrosoft.com`, from `GET /organization`).
fn guid_tenant_with_map(emu: &Emu, key: &str) -> EnvVars {
    let mut env = one_tenant(emu);
    env.push(var(
        TEST_USERS,
        json!({ key: ["megan@contoso.com"] }).to_string(),
    ));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_resolves_a_test_user_key_by_the_tenants_verified_domains() {
    let emu = Emu::start(small()).await;
    let c = run(
        &guid_tenant_with_map(&emu, "Contoso.onmicrosoft.com"),
        &["check", "-v"],
    )
    .await;
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    assert!(
        c.stdout.contains("1 test users resolved")
            && c.stdout
                .contains("key \"Contoso.onmicrosoft.com\" (a verified domain of the tenant)"),
        "{}",
        c.stdout
    );
    assert!(c.stderr.contains("/organization"), "{}", c.stderr);
    assert_eq!(emu.writes(), 0);
    // A key that is the TenantId needs no verified domains: no extra request.
    let c = run(&guid_tenant_with_map(&emu, TENANT), &["check", "-v"]).await;
    assert_eq!(c.code, 0, "{}\n{}", c.stdout, c.stderr);
    assert!(c.stdout.contains("1 test users resolved"), "{}", c.stdout);
    assert!(!c.stderr.contains("/organization"), "{}", c.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_user_key_matching_no_verified_domain_fails_closed() {
    let emu = Emu::start(small()).await;
    let env = guid_tenant_with_map(&emu, "contso.onmicrosoft.com");
    let c = run(&env, &["check"]).await;
    assert_eq!(c.code, 2, "{}\n{}", c.stdout, c.stderr);
    assert!(
        c.stderr.contains("\"contso.onmicrosoft.com\"") && c.stderr.contains("matches no tenant"),
        "{}",
        c.stderr
    );
    // The fix lists the tenant's verified domains, where the typo shows.
    assert!(c.stderr.contains("contoso.onmicrosoft.com"), "{}", c.stderr);
    assert!(c.last_line().ends_with("exit code 2"), "{}", c.stdout);
    // The sync resolves the key before its first write and refuses the run the same way: exit 2,
    // a report that says why, nothing written — the tenant is never treated as "every user".
    emu.reset();
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("\"contso.onmicrosoft.com\"") && r.stderr.contains("matches no tenant"),
        "{}",
        r.stderr
    );
    let rep = r.report.as_ref().expect("a report");
    assert!(
        rep["error"].as_str().unwrap().contains("matches no tenant"),
        "{rep}"
    );
    assert_eq!(rep["exitCode"], 2);
    assert!(r.last_line().ends_with("exit code 2"), "{}", r.stdout);
    assert_eq!(emu.writes(), 0, "a test-mode mistake wrote");
    assert!(
        !emu.stats()
            .by_mailbox
            .keys()
            .any(|m| m.to_lowercase().contains("adele")),
        "a mailbox outside any test list was read: {:?}",
        emu.stats().by_mailbox.keys()
    );
}

/// Issue 16: the tenant is configured by its GUID and the test-user map names it by a verified
/// domain. The sync resolves the key before its first write and touches only the test user: the
/// other user's mailbox is never requested, and the test user's contact reaches the hub.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_domain_key_with_a_guid_tenant_id_touches_only_the_test_users() {
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
        user(
            "megan@contoso.com",
            vec![contact(
                "Bianca Pisani",
                Some("bianca@fabrikam.com"),
                "2026-01-01T00:00:00Z",
            )],
        ),
    ]))
    .await;
    let env = guid_tenant_with_map(&emu, "Contoso.onmicrosoft.com");
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert_eq!(r.tenant(0)["users"], 1);
    let stats = emu.stats();
    assert!(
        !stats.by_mailbox.contains_key("adele@contoso.com"),
        "adele is outside the test scope but was requested: {:?}",
        stats.by_mailbox.keys()
    );
    assert!(emu.writes() > 0, "nothing was synced");
    let hub: Vec<String> = emu
        .hub_contacts()
        .unwrap()
        .iter()
        .filter_map(email)
        .collect();
    assert_eq!(hub, vec!["bianca@fabrikam.com"]);
    let adele = emu.contacts("adele@contoso.com");
    assert_eq!(adele.len(), 1);
    assert_eq!(sync_id(&adele[0]), None, "adele's contact was written");
}

/// Issue 16: two tenants configured by GUID, one test-user key with a typo. Each tenant's
/// verified domains are read before any tenant writes; the key matches none, so the whole run is
/// refused (exit 2) and no mailbox of either tenant is requested, let alone written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_user_key_typo_in_a_two_tenant_run_refuses_both_tenants() {
    let users = || {
        vec![
            hub_with(None),
            user(
                "adele@contoso.com",
                vec![contact(
                    "Alex Wilber",
                    Some("alex@fabrikam.com"),
                    "2026-01-01T00:00:00Z",
                )],
            ),
        ]
    };
    let mut b = tenant_json(TENANT_B, users());
    b["domains"] = json!([
        {"id": "fabrikam.onmicrosoft.com", "isInitial": true, "isDefault": true}
    ]);
    let emu = Emu::start(scenario_of(vec![tenant_json(TENANT, users()), b])).await;
    let mut env = endpoints(&emu);
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([tenant_entry(TENANT, SECRET), tenant_entry(TENANT_B, SECRET)]).to_string(),
    ));
    env.push(var(
        TEST_USERS,
        json!({"contso.onmicrosoft.com": ["adele@contoso.com"]}).to_string(),
    ));
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("\"contso.onmicrosoft.com\"")
            && r.stderr.contains("contoso.onmicrosoft.com")
            && r.stderr.contains("fabrikam.onmicrosoft.com"),
        "the refusal lists both tenants' verified domains: {}",
        r.stderr
    );
    assert!(r.last_line().ends_with("exit code 2"), "{}", r.stdout);
    assert_eq!(r.report.as_ref().unwrap()["tenants"], json!([]));
    assert_eq!(emu.writes(), 0, "a test-mode mistake wrote");
    assert!(
        emu.stats().by_mailbox.is_empty(),
        "a mailbox was requested: {:?}",
        emu.stats().by_mailbox.keys()
    );
}

/// Issue 16: a test user the directory does not know is a failed mailbox "not in the directory"
/// in `sync` (exit 1; the other test user syncs) and the same words in `check`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_test_user_is_not_in_the_directory_in_sync_and_check() {
    let emu = Emu::start(small()).await;
    let entry = with_field(
        &tenant_entry(TENANT, SECRET),
        "TestUserList",
        json!(["ghost@contoso.com", "adele@contoso.com"]),
    );
    let mut env = endpoints(&emu);
    env.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([entry]).to_string(),
    ));
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let failed = &r.tenant(0)["failedMailboxes"];
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(failed[0]["mailbox"], "ghost@contoso.com");
    assert!(
        failed[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("not in the directory"),
        "{failed}"
    );
    assert_eq!(r.tenant(0)["skippedMailboxes"], json!([]));
    assert!(
        r.stdout
            .contains("Failed mailbox: ghost@contoso.com — not in the directory"),
        "{}",
        r.stdout
    );
    // adele still synced: her contact reached the hub.
    let hub: Vec<String> = emu
        .hub_contacts()
        .unwrap()
        .iter()
        .filter_map(email)
        .collect();
    assert_eq!(hub, vec!["alex@fabrikam.com"]);
    let c = run(&env, &["check"]).await;
    assert_eq!(c.code, 1, "{}\n{}", c.stdout, c.stderr);
    assert!(
        c.stdout
            .contains("test users not in the directory: ghost@contoso.com"),
        "{}",
        c.stdout
    );
}
