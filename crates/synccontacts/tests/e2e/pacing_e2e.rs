//! App-wide pacing through the real binary (issue 14): with `AUTOMATION_SYNCCONTACTS_APP_BUDGET`
//! or `--app-requests` set to the emulator's app limit (its stand-in for Graph's 130,000 requests per 10 s,
//! docs/graph-facts.md §6), a run that needs several windows' worth of requests waits for budget
//! instead of being answered 429.

use std::time::Duration;

use graph_emulator::{EmulatorOptions, Limits};

use crate::harness::{Emu, hub_with, one_tenant, scenario, sync, user, var};

/// The same run with the budget given by the variable and by the flag (which wins over it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lowered_app_budget_keeps_a_run_under_the_app_limit_without_a_429() {
    const LIMIT: u64 = 30;
    for by_flag in [false, true] {
        let mut users = vec![hub_with(None)];
        users.extend((0..30).map(|n| user(&format!("user{n:02}@contoso.com"), vec![])));
        let emu = Emu::start_with(
            scenario(users),
            EmulatorOptions {
                seed: Some(7),
                limits: Limits {
                    app_requests: LIMIT,
                    app_window: Duration::from_secs(10),
                    ..Limits::default()
                },
                ..EmulatorOptions::default()
            },
        )
        .await;
        let mut vars = one_tenant(&emu);
        let limit = LIMIT.to_string();
        let r = if by_flag {
            // The variable says Graph's full budget; the flag wins.
            vars.push(var("AUTOMATION_SYNCCONTACTS_APP_BUDGET", "130000"));
            sync(&vars, &["--app-requests", &limit]).await
        } else {
            vars.push(var("AUTOMATION_SYNCCONTACTS_APP_BUDGET", limit.as_str()));
            sync(&vars, &[]).await
        };
        assert_eq!(r.code, 0, "by_flag={by_flag}\n{}\n{}", r.stdout, r.stderr);
        let stats = emu.stats();
        // Worth testing: the run needed more than one window of the app's budget.
        assert!(stats.requests > LIMIT, "only {} requests", stats.requests);
        assert_eq!(stats.throttled, 0, "by_flag={by_flag}: {stats:?}");
    }
}

/// A budget out of range is refused before any request (exit 2), with the valid range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_budget_out_of_range_is_refused_before_any_request() {
    let emu = Emu::start(scenario(vec![hub_with(None)])).await;
    for bad in ["0", "130001", "lots"] {
        let r = sync(&one_tenant(&emu), &["--app-requests", bad]).await;
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(r.stderr.contains("from 1 to 130000"), "{bad}: {}", r.stderr);
    }
    assert_eq!(emu.any_requests(), 0);
}
