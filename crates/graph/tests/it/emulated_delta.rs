//! Delta rounds against the in-process emulator: Graph's page cap, `$select` carried in the
//! links, changes and `@removed` rows after real writes, an empty round costing one request, the
//! folder form, and an evicted sync state as a reset.

use graph::{DELTA_PAGE_SIZE, DeltaStart, ErrorKind, FolderRef, WriteRequest};
use graph_emulator::{EmulatorOptions, GenerateOptions};
use serde_json::json;

use crate::contact::Contact;
use crate::emulator::{Env, HUB};

#[tokio::test]
async fn rounds_over_the_default_folder_and_a_folder_report_what_writes_changed() {
    let env = Env::start(
        GenerateOptions {
            users: 1,
            contacts_per_user: 450,
            seed: 17,
            ..Default::default()
        },
        EmulatorOptions::default(),
    )
    .await;
    let c = env.client();
    let u = env.users()[0].clone();
    c.token().await.unwrap();
    env.emu.reset_stats();
    let initial = DeltaStart::Initial {
        select: "id,displayName".into(),
    };
    let first = c
        .contacts_delta::<Contact>(&u, &FolderRef::Default, initial.clone(), DELTA_PAGE_SIZE)
        .await
        .unwrap();
    assert_eq!(first.changed.len(), 450);
    assert!(first.removed.is_empty());
    assert_eq!(env.emu.stats().requests, 3, "pages of 200, 200 and 50");
    assert!(first.changed.iter().all(|c| c.display_name.is_some()));
    assert!(
        first.changed.iter().all(|c| c.job_title.is_none()),
        "only the selected properties"
    );

    // Three edits, two deletes, one create.
    let ids: Vec<String> = first.changed.iter().map(|c| c.id.clone()).collect();
    let mut writes: Vec<WriteRequest> = ids[..3]
        .iter()
        .map(|id| {
            WriteRequest::update(
                FolderRef::Default,
                id.clone(),
                None,
                json!({"displayName": format!("Edited {id}")}),
            )
        })
        .collect();
    writes.extend(
        ids[3..5]
            .iter()
            .map(|id| WriteRequest::delete(FolderRef::Default, id.clone(), None)),
    );
    writes.push(WriteRequest::create(
        FolderRef::Default,
        json!({"displayName": "Newcomer"}),
    ));
    let results = c.execute_writes::<Contact>(&u, writes).await;
    let created = results[5]
        .as_ref()
        .unwrap()
        .body
        .as_ref()
        .unwrap()
        .id
        .clone();
    assert!(results.iter().all(Result::is_ok));

    env.emu.reset_stats();
    let second = c
        .contacts_delta::<Contact>(
            &u,
            &FolderRef::Default,
            DeltaStart::Link(first.delta_link.clone()),
            DELTA_PAGE_SIZE,
        )
        .await
        .unwrap();
    let mut changed: Vec<String> = second.changed.iter().map(|c| c.id.clone()).collect();
    changed.sort();
    let mut want: Vec<String> = ids[..3].to_vec();
    want.push(created);
    want.sort();
    assert_eq!(changed, want);
    assert!(
        second
            .changed
            .iter()
            .filter(|c| ids[..3].contains(&c.id))
            .all(|c| c.display_name.as_deref().unwrap().starts_with("Edited")),
        "$select kept from the first request: {:?}",
        second.changed
    );
    let mut removed = second.removed.clone();
    removed.sort();
    let mut want_removed = ids[3..5].to_vec();
    want_removed.sort();
    assert_eq!(removed, want_removed);
    assert_eq!(env.emu.stats().requests, 1);

    // Nothing changed since: one request, nothing reported.
    let third = c
        .contacts_delta::<Contact>(
            &u,
            &FolderRef::Default,
            DeltaStart::Link(second.delta_link.clone()),
            DELTA_PAGE_SIZE,
        )
        .await
        .unwrap();
    assert!(third.changed.is_empty() && third.removed.is_empty());
    assert_eq!(env.emu.stats().requests, 2);

    // The folder form, in the hub.
    let folder = c.create_contact_folder(HUB, "All Contacts").await.unwrap();
    let fref = FolderRef::Id(folder.id.clone());
    c.execute_writes::<Contact>(
        HUB,
        (0..3)
            .map(|i| WriteRequest::create(fref.clone(), json!({"displayName": format!("H {i}")})))
            .collect(),
    )
    .await;
    let hub = c
        .contacts_delta::<Contact>(HUB, &fref, initial, DELTA_PAGE_SIZE)
        .await
        .unwrap();
    assert_eq!(hub.changed.len(), 3);

    // Outlook evicts sync states: every stored link becomes a reset.
    env.emu.expire_delta_tokens();
    for (mailbox, folder, link) in [
        (u.as_str(), FolderRef::Default, third.delta_link),
        (HUB, fref, hub.delta_link),
    ] {
        let e = c
            .contacts_delta::<Contact>(mailbox, &folder, DeltaStart::Link(link), 200)
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::SyncReset, "{e}");
        assert_eq!(e.status, Some(410));
    }
}
