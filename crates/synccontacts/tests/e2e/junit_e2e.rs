//! `--junit FILE` through the real binary, read back as GitLab reads it (parsed by a strict XML
//! reader; a case's status from its child element): one suite per tenant, N + 4 cases for N
//! mailboxes, failures with Graph's request-id, skipped mailboxes, dry runs, a refused
//! configuration, and the path checked before the first request.

use std::collections::BTreeMap;

use serde_json::json;

use crate::harness::*;

/// A testcase as GitLab sees it: name → (status, text of the status element, system-out).
type Cases = BTreeMap<String, (&'static str, String, String)>;

/// Suite name → its cases, in file order, after checking what GitLab relies on: the root is
/// `testsuites`, every `classname` is its suite's name, no case name repeats, the counts in the
/// attributes match the cases.
fn read_junit(path: &std::path::Path) -> Vec<(String, Vec<String>, Cases)> {
    let xml = std::fs::read_to_string(path).expect("the JUnit file was written");
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites", "{xml}");
    let mut out = Vec::new();
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    for s in root.children().filter(|n| n.is_element()) {
        assert_eq!(s.tag_name().name(), "testsuite", "{xml}");
        let name = s.attribute("name").expect("suite name").to_owned();
        let mut order = Vec::new();
        let mut cases = Cases::new();
        for c in s
            .children()
            .filter(|n| n.is_element() && n.has_tag_name("testcase"))
        {
            assert_eq!(c.attribute("classname"), Some(name.as_str()), "{xml}");
            let case = c.attribute("name").expect("case name").to_owned();
            let mut status = "success";
            let mut text = String::new();
            let mut system_out = String::new();
            for e in c.children().filter(|n| n.is_element()) {
                let t = e.text().unwrap_or("").to_owned();
                match e.tag_name().name() {
                    "failure" => (status, text) = ("failed", t),
                    "skipped" => (status, text) = ("skipped", t),
                    "system-out" => system_out = t,
                    other => panic!("<{other}> in a testcase: {xml}"),
                }
            }
            order.push(case.clone());
            assert!(
                cases.insert(case, (status, text, system_out)).is_none(),
                "duplicate case: {xml}"
            );
        }
        let count = |st: &str| cases.values().filter(|c| c.0 == st).count().to_string();
        assert_eq!(s.attribute("tests"), Some(cases.len().to_string().as_str()));
        assert_eq!(s.attribute("failures"), Some(count("failed").as_str()));
        assert_eq!(s.attribute("skipped"), Some(count("skipped").as_str()));
        tests += cases.len();
        failures += cases.values().filter(|c| c.0 == "failed").count();
        skipped += cases.values().filter(|c| c.0 == "skipped").count();
        out.push((name, order, cases));
    }
    assert_eq!(root.attribute("tests"), Some(tests.to_string().as_str()));
    assert_eq!(
        root.attribute("failures"),
        Some(failures.to_string().as_str())
    );
    assert_eq!(
        root.attribute("skipped"),
        Some(skipped.to_string().as_str())
    );
    out
}

/// Tenant A: the hub and four users — adele and nestor fine, megan outside the app's mailbox
/// access policy (403, a failed mailbox), room licensed but without a mailbox (skipped).
/// Tenant B: exists, but the run is configured with a wrong secret (no token). Tenant C: the app
/// lacks `User.Read.All` (the directory reads are refused).
fn two_tenants() -> graph_emulator::Scenario {
    let mut users = simple_users();
    users.push(user("nestor@contoso.com", vec![]));
    let mut room = user("room@contoso.com", vec![]);
    room["mailbox"] = json!(false);
    room.as_object_mut().unwrap().remove("contacts");
    users.push(room);
    let mut a = tenant_json(TENANT, users);
    a["apps"][0]["mailboxScope"] = json!([
        HUB,
        "adele@contoso.com",
        "nestor@contoso.com",
        "room@contoso.com"
    ]);
    let mut b = tenant_json(TENANT_B, simple_users());
    b["domains"] = json!([
        {"id": "fabrikam.onmicrosoft.com", "isInitial": true, "isDefault": true}
    ]);
    let mut c = tenant_json(TENANT_C, simple_users());
    c["domains"] = json!([
        {"id": "northwind.onmicrosoft.com", "isInitial": true, "isDefault": true}
    ]);
    c["apps"][0]["roles"] = json!(["Contacts.ReadWrite"]);
    scenario_of(vec![a, b, c])
}

const TENANT_C: &str = "b0d5e3c2-0000-4000-8000-00000000000c";

fn env_for(emu: &Emu) -> EnvVars {
    let mut v = endpoints(emu);
    v.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([
            tenant_entry(TENANT, SECRET),
            tenant_entry(TENANT_B, "not-the-secret"),
            tenant_entry(TENANT_C, SECRET)
        ])
        .to_string(),
    ));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_junit_file_has_a_suite_per_tenant_and_a_case_per_stage_and_mailbox() {
    let emu = Emu::start(two_tenants()).await;
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let mut statuses_of = BTreeMap::new();
    for dry in [true, false] {
        let mut args = vec!["--junit", junit.to_str().unwrap()];
        if dry {
            args.push("--dry-run");
        }
        let r = sync(&env_for(&emu), &args).await;
        assert_eq!(
            r.code, 1,
            "a partial tenant and one without a token\n{}\n{}",
            r.stdout, r.stderr
        );
        let suites = read_junit(&junit);
        assert_eq!(suites.len(), 3, "one suite per tenant");

        let (name, order, cases) = &suites[0];
        assert_eq!(name, TENANT);
        // N + 4 for the N = 4 users in scope (the hub is not a user mailbox).
        assert_eq!(
            order,
            &[
                "configuration",
                "token",
                "permissions",
                "hub",
                "mailbox adele@contoso.com",
                "mailbox megan@contoso.com",
                "mailbox nestor@contoso.com",
                "mailbox room@contoso.com",
            ]
        );
        let (status, text, _) = &cases["mailbox megan@contoso.com"];
        assert_eq!(*status, "failed");
        let rid = r.tenant(0)["failedMailboxes"][0]["requestId"]
            .as_str()
            .expect("a request-id")
            .to_owned();
        assert!(text.contains(&format!("[request-id {rid}]")), "{text}");
        let (status, text, _) = &cases["mailbox room@contoso.com"];
        assert_eq!(*status, "skipped");
        assert!(text.contains("no Exchange Online mailbox"), "{text}");
        for ok in [
            "configuration",
            "token",
            "permissions",
            "hub",
            "mailbox adele@contoso.com",
        ] {
            assert_eq!(cases[ok].0, "success", "{ok}: {:?}", cases[ok]);
        }
        for (case, (_, _, out)) in cases {
            assert_eq!(
                out.starts_with("dry run: nothing was written"),
                dry,
                "{case}: {out:?}"
            );
        }

        let (name, order, cases) = &suites[1];
        assert_eq!(name, TENANT_B);
        assert_eq!(order, &["configuration", "token", "permissions", "hub"]);
        assert_eq!(cases["token"].0, "failed");
        assert!(
            cases["token"].1.contains("token with the client secret"),
            "{:?}",
            cases["token"]
        );
        assert_eq!(cases["permissions"].0, "skipped");
        assert_eq!(cases["hub"].0, "skipped");

        let (name, order, cases) = &suites[2];
        assert_eq!(name, TENANT_C);
        assert_eq!(order, &["configuration", "token", "permissions", "hub"]);
        assert_eq!(cases["token"].0, "success");
        let (status, text, _) = &cases["permissions"];
        assert_eq!(*status, "failed");
        assert!(
            text.contains("HTTP 403") && text.contains("[request-id "),
            "{text}"
        );
        assert_eq!(cases["hub"].0, "skipped");

        let statuses: Vec<Vec<(String, &str)>> = suites
            .iter()
            .map(|(_, _, c)| c.iter().map(|(k, v)| (k.clone(), v.0)).collect())
            .collect();
        statuses_of.insert(dry, statuses);
    }
    assert_eq!(
        statuses_of[&true], statuses_of[&false],
        "a dry run passes and fails the same cases as the real run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_configuration_still_writes_a_junit_file_with_one_failing_case() {
    let emu = Emu::start(scenario(simple_users())).await;
    let dir = tempfile::tempdir().unwrap();
    let junit = dir.path().join("junit.xml");
    let mut env = one_tenant(&emu);
    env.push(var("AUTOMATION_SYNCCONTACTS_DRY_RUN", "ture"));
    let r = sync(&env, &["--junit", junit.to_str().unwrap()]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(emu.any_requests(), 0);
    let suites = read_junit(&junit);
    assert_eq!(suites.len(), 1);
    let (name, order, cases) = &suites[0];
    assert_eq!(name, "synccontacts");
    assert_eq!(order, &["configuration"]);
    assert_eq!(cases["configuration"].0, "failed");
    assert!(
        cases["configuration"].1.contains("ture"),
        "{:?}",
        cases["configuration"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_junit_path_that_cannot_be_written_refuses_the_run_before_any_request() {
    let emu = Emu::start(scenario(simple_users())).await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder").join("junit.xml");
    let r = sync(&one_tenant(&emu), &["--junit", missing.to_str().unwrap()]).await;
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("--junit") && r.stderr.contains("does not exist"),
        "{}",
        r.stderr
    );
    assert_eq!(emu.any_requests(), 0, "requests were made");
    assert!(!dir.path().join("no-such-folder").exists());
    // The JSON report of the refused run says so too.
    assert_eq!(r.report.as_ref().unwrap()["exitCode"], 2);

    // A file that cannot be written at the end (/dev/full passes the check): the run says so,
    // exits 1, and the JSON report written after it carries that exit code.
    if std::path::Path::new("/dev/full").exists() {
        let r = sync(&one_tenant(&emu), &["--junit", "/dev/full"]).await;
        assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
        assert!(
            r.last_line()
                .contains("the JUnit report could not be written")
                && r.last_line().ends_with("exit code 1"),
            "{}",
            r.stdout
        );
        assert_eq!(r.report.as_ref().unwrap()["exitCode"], 1);
    }
}
