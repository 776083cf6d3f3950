//! Issue 16: one classification of failures, shared by `check` and `sync`. Each row of the
//! README's exit-code table is driven through both commands: the same class gives the same exit
//! code and the same fix, in the same words, in both.

use serde_json::{Value, json};

use crate::harness::*;

/// One row: how to break the tenant, the exit code, and words of the fix both commands print.
struct Row {
    name: &'static str,
    code: i32,
    fix: &'static str,
}

/// The default tenant's configuration with `entry` changed, pointed at `url`.
fn env_with(url: &str, entry: Value) -> EnvVars {
    vec![
        var("AUTOMATION_SYNCCONTACTS_LOGIN_URL", url),
        var("AUTOMATION_SYNCCONTACTS_GRAPH_URL", url),
        var(
            "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
            json!([entry]).to_string(),
        ),
    ]
}

fn entry_with(key: &str, value: Value) -> Value {
    let mut e = tenant_entry(TENANT, SECRET);
    e[key] = value;
    e
}

/// Runs `sync` and `check` on `env` at once; asserts the row on both.
async fn assert_row(row: &Row, env: &EnvVars) {
    let (s, c) = tokio::join!(sync(env, &[]), run(env, &["check"]));
    for (cmd, r) in [("sync", &s), ("check", &c)] {
        assert_eq!(
            r.code, row.code,
            "{}: {cmd} exit code\n{}\n{}",
            row.name, r.stdout, r.stderr
        );
        assert!(
            r.stdout.contains(row.fix),
            "{}: {cmd} does not say `{}`:\n{}",
            row.name,
            row.fix,
            r.stdout
        );
        assert!(
            r.last_line().ends_with(&format!("exit code {}", row.code)),
            "{}: {cmd}: {}",
            row.name,
            r.stdout
        );
    }
    // `check` gives it as the item's fix.
    assert!(c.stdout.contains("fix: "), "{}", c.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_class_has_one_exit_code_and_one_fix_in_check_and_sync() {
    let emu = Emu::start(scenario(simple_users())).await;
    let url = emu.url();

    // Bad credentials: the identity platform refuses the secret (AADSTS7000215).
    let row = Row {
        name: "bad credentials",
        code: 3,
        fix: "the ClientSecret is wrong: create a new client secret",
    };
    assert_row(
        &row,
        &env_with(&url, entry_with("ClientSecret", json!("wrong-secret-1234"))),
    )
    .await;

    // Missing hub: a configuration problem of the tenant, not "safe to rerun".
    let row = Row {
        name: "missing hub",
        code: 3,
        fix: "set GlobalAddressBookUserId to the user principal name of the shared mailbox",
    };
    assert_row(
        &row,
        &env_with(
            &url,
            entry_with("GlobalAddressBookUserId", json!("nobody@contoso.com")),
        ),
    )
    .await;

    // Partial: a test user the directory does not know is a failed mailbox.
    let row = Row {
        name: "partial",
        code: 1,
        fix: "fix the user principal name in the test-user list",
    };
    assert_row(
        &row,
        &env_with(
            &url,
            entry_with(
                "TestUserList",
                json!(["ghost@contoso.com", "adele@contoso.com"]),
            ),
        ),
    )
    .await;
    assert!(emu.writes() > 0, "the partial tenant synced adele");

    // Missing permission: the app has Contacts.ReadWrite but no directory role.
    let mut s = serde_json::to_value(scenario(simple_users())).unwrap();
    s["tenants"][0]["apps"][0]["roles"] = json!(["Contacts.ReadWrite"]);
    let no_directory = Emu::start(serde_json::from_value(s).unwrap()).await;
    let row = Row {
        name: "missing permission",
        code: 3,
        fix: "grant the application permission User.Read.All",
    };
    assert_row(
        &row,
        &env_with(&no_directory.url(), tenant_entry(TENANT, SECRET)),
    )
    .await;
    assert_eq!(no_directory.writes(), 0);

    // Unreachable endpoint: nothing listens (connection refused). The client's breaker ends
    // each command in about 20 s, and the fix names the network and the URL settings (before,
    // `check` said 3 and "fix the app registration", `sync` 1 after 41 s of retries).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let row = Row {
        name: "unreachable endpoint",
        code: 1,
        fix: "check the network and any proxy between this job and",
    };
    let started = std::time::Instant::now();
    assert_row(
        &row,
        &env_with(&format!("http://{closed}"), tenant_entry(TENANT, SECRET)),
    )
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}
