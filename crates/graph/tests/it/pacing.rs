//! App-wide pacing against the in-process emulator with its app budget lowered: two clients of
//! one app (two tenants of a run, sharing one `AppBudgets`) bursting reads and `$batch` writes
//! over many mailboxes get no 429, and the emulator counts exactly what the clients sent. The
//! same burst without pacing is throttled, so the test can tell. Real time: the emulator's
//! windows are real (a 2 s window keeps it short).

use std::time::Duration;

use graph::{AppBudgets, ClientStats, FolderRef, GraphClient, RequestBudget, WriteRequest};
use graph_emulator::{EmulatorOptions, GenerateOptions, Limits};
use serde_json::json;

use crate::contact::{Contact, SELECT};
use crate::emulator::Env;

const BUDGET: RequestBudget = RequestBudget {
    requests: 30,
    per: Duration::from_secs(2),
};

async fn env() -> Env {
    Env::start(
        GenerateOptions {
            users: 8,
            contacts_per_user: 3,
            seed: 41,
            ..Default::default()
        },
        EmulatorOptions {
            limits: Limits {
                app_requests: u64::from(BUDGET.requests),
                app_window: BUDGET.per,
                ..Limits::default()
            },
            ..Default::default()
        },
    )
    .await
}

/// Per user: a read, a `$batch` of 6 creates, a read again, from two clients at once: 8 × (1 +
/// 6 + 1) = 64 requests as Graph counts them (plus the 8 batch envelopes the pacer also counts),
/// more than twice the budget of one window.
async fn burst(env: &Env, a: &GraphClient, b: &GraphClient) {
    let users = env.users();
    let work = users.iter().enumerate().map(|(i, u)| async move {
        let (reader, writer) = if i % 2 == 0 { (a, b) } else { (b, a) };
        reader
            .list_contacts::<Contact>(u, &FolderRef::Default, SELECT)
            .await
            .unwrap();
        let writes = (0..6)
            .map(|k| {
                WriteRequest::create(
                    FolderRef::Default,
                    json!({"displayName": format!("Paced {i}-{k}")}),
                )
            })
            .collect();
        for r in writer.execute_writes::<Contact>(u, writes).await {
            r.unwrap();
        }
        reader
            .list_contacts::<Contact>(u, &FolderRef::Default, SELECT)
            .await
            .unwrap();
    });
    futures::future::join_all(work).await;
}

fn sum(a: ClientStats, b: ClientStats) -> ClientStats {
    ClientStats {
        requests: a.requests + b.requests,
        retries: a.retries + b.retries,
        throttled: a.throttled + b.throttled,
        batches: a.batches + b.batches,
        batch_items: a.batch_items + b.batch_items,
        paced: a.paced + b.paced,
        token_requests: a.token_requests + b.token_requests,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_many_mailboxes_stays_under_the_app_budget_with_zero_429() {
    let env = env().await;
    let budgets = AppBudgets::new();
    let client = || {
        let mut cfg = env.config();
        cfg.app_budget = BUDGET;
        cfg.app_budgets = budgets.clone();
        GraphClient::new(cfg).unwrap()
    };
    let (a, b) = (client(), client());
    // Tokens first, so the burst is all Graph requests.
    a.token().await.unwrap();
    b.token().await.unwrap();
    let started = std::time::Instant::now();
    burst(&env, &a, &b).await;
    let took = started.elapsed();
    let emu = env.emu.stats();
    let st = sum(a.stats(), b.stats());
    assert_eq!(emu.throttled, 0, "{emu:?}");
    assert_eq!((st.throttled, st.retries), (0, 0), "{st:?}");
    // The emulator saw exactly what the clients sent.
    assert_eq!(emu.requests, st.requests);
    assert_eq!((emu.batches, emu.batch_items), (st.batches, st.batch_items));
    assert_eq!((emu.batches, emu.batch_items), (8, 48));
    assert_eq!(emu.requests, 8 + 8 + 8);
    // 72 units at 30 per 2.2 s: the third window is needed, so the pacer did wait.
    assert!(st.paced > 0, "{st:?}");
    assert!(took >= Duration::from_millis(4_400), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_burst_without_pacing_is_throttled() {
    let env = env().await;
    let a = env.client();
    let b = env.client();
    a.token().await.unwrap();
    b.token().await.unwrap();
    burst(&env, &a, &b).await;
    let emu = env.emu.stats();
    assert!(emu.throttled > 0, "the lowered budget bites: {emu:?}");
    assert_eq!(emu.throttled, a.stats().throttled + b.stats().throttled);
}
