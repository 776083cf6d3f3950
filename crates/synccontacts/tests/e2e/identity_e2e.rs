//! Identity on the wire: every request the binary sends — to Graph, `$batch` included, and to
//! the token endpoint — carries `synccontacts::version::user_agent()`, as the emulator's
//! per-User-Agent counts prove (their sums equal the request counts, so no request went
//! without it).

use crate::harness::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_sync_and_check_carries_the_synccontacts_user_agent() {
    let emu = Emu::start(scenario(simple_users())).await;
    let ua = synccontacts::version::user_agent();
    let mut batches = 0;
    // A real run (creates a folder and batches writes), a second run (reads only), a dry run
    // and `check`: every kind of request the binary sends.
    for args in [
        vec!["sync", "--no-progress"],
        vec!["sync", "--no-progress"],
        vec!["sync", "--no-progress", "--dry-run"],
        vec!["check"],
    ] {
        emu.reset();
        let r = run(&one_tenant(&emu), &args).await;
        assert_eq!(r.code, 0, "{args:?}: {}\n{}", r.stdout, r.stderr);
        let s = emu.stats();
        assert!(s.requests > 0 && s.token_requests > 0, "{args:?}: {s:?}");
        assert_eq!(
            s.user_agents.keys().collect::<Vec<_>>(),
            [&ua],
            "{args:?}: one User-Agent, ours"
        );
        assert_eq!(s.user_agents[&ua].requests, s.requests, "{args:?}");
        assert_eq!(
            s.user_agents[&ua].token_requests, s.token_requests,
            "{args:?}"
        );
        batches += s.batches;
    }
    assert!(batches > 0, "the first run wrote through `$batch`");
    assert!(
        emu.hub_contacts().is_some_and(|c| c.len() == 2),
        "the first run synced"
    );
    assert!(ua.starts_with("ISV|synccontacts|synccontacts/"), "{ua}");
}
