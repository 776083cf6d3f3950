//! Writes whose first attempt was applied but never answered (the emulator's `afterApply` 504 and
//! `drop: after` faults, crates/graph-emulator/README.md, "Limits and faults"): the retry meets the
//! write's own effect — a PATCH's etag is stale, a DELETE's contact is gone — and the client must
//! say so ([`ErrorKind::UnconfirmedWrite`]) instead of reporting a user's conflict. Direct
//! requests, `$batch` items, and a whole `$batch` sent again after its answer was lost; deletes as
//! well.

use std::sync::Arc;

use graph::{ErrorKind, FolderRef, GraphClient, VirtualClock, WriteRequest, WriteResponse};
use graph_emulator::{EmulatorOptions, FaultPlan, GenerateOptions};
use serde_json::json;

use crate::contact::{Contact, SELECT};
use crate::emulator::Env;

fn plan(v: serde_json::Value) -> FaultPlan {
    serde_json::from_value(v).unwrap()
}

/// One user with `contacts` contacts, a client on virtual time (`batch` or direct writes), the
/// user and their contacts as read.
async fn setup(
    seed: u64,
    contacts: usize,
    batch: bool,
) -> (Env, GraphClient, String, Vec<Contact>) {
    let env = Env::start(
        GenerateOptions {
            users: 1,
            contacts_per_user: contacts,
            seed,
            ..Default::default()
        },
        EmulatorOptions::default(),
    )
    .await;
    let mut cfg = env.config();
    cfg.clock = Arc::new(VirtualClock::default());
    cfg.batch_writes = batch;
    let c = GraphClient::new(cfg).unwrap();
    let u = env.users()[0].clone();
    let listed = c
        .list_contacts::<Contact>(&u, &FolderRef::Default, SELECT)
        .await
        .unwrap();
    assert_eq!(listed.len(), contacts);
    (env, c, u, listed)
}

fn updates(contacts: &[Contact], title: &str) -> Vec<WriteRequest> {
    contacts
        .iter()
        .map(|x| {
            WriteRequest::update(
                FolderRef::Default,
                x.id.clone(),
                x.etag.clone(),
                json!({ "jobTitle": title }),
            )
        })
        .collect()
}

fn deletes(contacts: &[Contact]) -> Vec<WriteRequest> {
    contacts
        .iter()
        .map(|x| WriteRequest::delete(FolderRef::Default, x.id.clone(), x.etag.clone()))
        .collect()
}

fn assert_unconfirmed(r: &Result<WriteResponse<Contact>, graph::GraphError>, status: u16) {
    let e = r.as_ref().unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnconfirmedWrite, "{e}");
    assert_eq!(e.status, Some(status), "{e}");
    assert!(e.message.contains("re-read"), "{e}");
    assert!(!e.is_retryable());
}

async fn titles(c: &GraphClient, u: &str) -> Vec<Option<String>> {
    c.list_contacts::<Contact>(u, &FolderRef::Default, SELECT)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.job_title)
        .collect()
}

/// The regression: a PATCH applied but answered 504 (or whose connection dropped after it was
/// applied) was retried with the etag it had itself made stale, got 412 and was reported as a
/// user's conflict.
#[tokio::test]
async fn a_patch_applied_but_unanswered_then_refused_is_unconfirmed_not_a_conflict() {
    for (seed, action) in [
        (41, json!({"status": 504, "afterApply": true})),
        (42, json!({"drop": "after"})),
    ] {
        let (env, c, u, listed) = setup(seed, 1, false).await;
        env.emu.set_faults(plan(json!({"rules": [
            {"match": {"method": "PATCH"}, "nth": 1, "action": action}]})));
        let r = c
            .execute_writes::<Contact>(&u, updates(&listed, "Applied"))
            .await;
        assert_unconfirmed(&r[0], 412);
        let mb = &env.emu.stats().by_mailbox[&u.to_lowercase()];
        assert_eq!(mb.patch, 2, "the PATCH was sent again once: {action}");
        // It was applied (by the first attempt): a re-read tells the caller it is done.
        assert_eq!(titles(&c, &u).await, [Some("Applied".to_owned())]);
    }
}

/// A `$batch` item answered 504 after it was applied is retried alone; its 412 is unconfirmed,
/// its neighbours are fine.
#[tokio::test]
async fn a_batch_item_applied_but_answered_504_then_refused_is_unconfirmed() {
    let (env, c, u, listed) = setup(43, 3, true).await;
    env.emu.set_faults(plan(json!({"rules": [
        {"match": {"method": "PATCH"}, "nth": 1, "action": {"status": 504, "afterApply": true}}]})));
    let r = c
        .execute_writes::<Contact>(&u, updates(&listed, "Batched"))
        .await;
    let st = env.emu.stats();
    assert_eq!(st.batches, 2, "the second round carries the 504 item alone");
    assert_eq!(
        r.iter().filter(|x| x.is_err()).count(),
        1,
        "one item failed: {r:?}"
    );
    for x in &r {
        match x {
            Ok(ok) => assert_eq!(ok.status, 200),
            Err(_) => assert_unconfirmed(x, 412),
        }
    }
    assert!(
        titles(&c, &u)
            .await
            .iter()
            .all(|t| t.as_deref() == Some("Batched"))
    );
}

/// A whole `$batch` whose answer was lost (a gateway 504 after applying it, or an item's dropped
/// connection, which loses the one answer of the batch) is sent again by the client; every item
/// then meets its own earlier effect.
#[tokio::test]
async fn a_whole_batch_sent_again_after_its_answer_was_lost_marks_its_refusals() {
    for (seed, rule) in [
        (
            44,
            json!({"match": {"path": "/v1.0/$batch"}, "nth": 1,
                   "action": {"status": 504, "afterApply": true}}),
        ),
        (
            45,
            json!({"match": {"method": "PATCH"}, "nth": 2, "action": {"drop": "after"}}),
        ),
    ] {
        let (env, c, u, listed) = setup(seed, 3, true).await;
        env.emu.set_faults(plan(json!({ "rules": [rule] })));
        let r = c
            .execute_writes::<Contact>(&u, updates(&listed, "Whole"))
            .await;
        for x in &r {
            assert_unconfirmed(x, 412);
        }
        assert_eq!(env.emu.stats().batches, 2, "{rule}");
        assert!(
            titles(&c, &u)
                .await
                .iter()
                .all(|t| t.as_deref() == Some("Whole"))
        );
    }
}

/// DELETE with `If-Match`: 204 without a body, directly and in a `$batch`; a contact already gone
/// is `NotFound` (a caller can count it as deleted); a stale etag is a plain conflict; a retry
/// after an applied but unanswered delete meets 404 and is marked.
#[tokio::test]
async fn deletes_with_if_match_direct_and_batched() {
    let (env, c, u, listed) = setup(46, 6, true).await;
    // One direct delete (a single write goes without $batch), then two in a batch.
    let one = c.execute_writes::<Contact>(&u, deletes(&listed[..1])).await;
    let ok = one[0].as_ref().unwrap();
    assert_eq!((ok.status, ok.body.is_none()), (204, true));
    let two = c
        .execute_writes::<Contact>(&u, deletes(&listed[1..3]))
        .await;
    assert!(
        two.iter().all(|r| r
            .as_ref()
            .is_ok_and(|w| w.status == 204 && w.body.is_none())),
        "{two:?}"
    );
    let st = env.emu.stats();
    assert_eq!((st.batches, st.batch_items), (1, 2));
    assert_eq!(st.by_mailbox[&u.to_lowercase()].delete, 3);
    // Gone already: NotFound, not retried.
    let again = c.execute_writes::<Contact>(&u, deletes(&listed[..1])).await;
    assert_eq!(again[0].as_ref().unwrap_err().kind, ErrorKind::NotFound);
    // A stale etag: the user changed the contact since it was read.
    let mut stale = listed[3].clone();
    stale.etag = Some("W/\"not-the-current-change-key\"".into());
    let e = c
        .execute_writes::<Contact>(&u, deletes(&[stale]))
        .await
        .remove(0)
        .unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Conflict, Some(412)), "{e}");
    assert_eq!(
        c.list_contacts::<Contact>(&u, &FolderRef::Default, SELECT)
            .await
            .unwrap()
            .len(),
        3
    );

    // Applied, then the connection dropped: the retry finds nothing (404) — marked, directly
    // and for a whole batch sent again.
    env.emu.set_faults(plan(json!({"rules": [
        {"match": {"method": "DELETE"}, "nth": 1, "action": {"drop": "after"}}]})));
    let r = c
        .execute_writes::<Contact>(&u, deletes(&listed[3..4]))
        .await;
    assert_unconfirmed(&r[0], 404);
    env.emu.set_faults(plan(json!({"rules": [
        {"match": {"method": "DELETE"}, "nth": 1, "action": {"drop": "after"}}]})));
    let r = c
        .execute_writes::<Contact>(&u, deletes(&listed[4..6]))
        .await;
    for x in &r {
        assert_unconfirmed(x, 404);
    }
    assert!(
        c.list_contacts::<Contact>(&u, &FolderRef::Default, SELECT)
            .await
            .unwrap()
            .is_empty()
    );
}
