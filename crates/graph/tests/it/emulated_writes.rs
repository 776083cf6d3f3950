//! Contact writes against the emulator beyond creates and updates: deletes with `If-Match`,
//! directly and in a `$batch`.

use std::sync::Arc;

use graph::{ErrorKind, FolderRef, GraphClient, VirtualClock, WriteRequest};
use graph_emulator::{EmulatorOptions, GenerateOptions};

use crate::contact::{Contact, SELECT};
use crate::emulator::Env;

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

fn deletes(contacts: &[Contact]) -> Vec<WriteRequest> {
    contacts
        .iter()
        .map(|x| WriteRequest::delete(FolderRef::Default, x.id.clone(), x.etag.clone()))
        .collect()
}

/// DELETE with `If-Match`: 204 without a body, directly and in a `$batch`; a contact already gone
/// is `NotFound` (a caller can count it as deleted); a stale etag is a plain conflict.
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
}
