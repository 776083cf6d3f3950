//! Contact delta rounds and read specs against the scripted mock: the exact wire (first URL,
//! `$select` only on the first request, `Prefer` on every page, links followed verbatim),
//! `@removed` rows, resets (410 with or without `Location`, `resyncRequired`) and incomplete rounds
//! as errors, never as partial success.

use std::sync::{Arc, Mutex};

use graph::{
    DELTA_PAGE_SIZE, DeltaStart, ErrorKind, FolderRef, GraphClient, ReadSpec, SENSITIVITY_PROPERTY,
    Secret, VirtualClock,
};
use serde_json::{Value, json};

use crate::contact::Contact;
use crate::mock::{Answer, Mock, Seen, pass};
use crate::mock_client::{SECRET, config};

const SELECT: &str = "id,displayName";

fn client(mock: &Mock, clock: &Arc<VirtualClock>) -> GraphClient {
    GraphClient::new(config(
        &mock.url,
        clock.clone(),
        graph::Credential::Secret(Secret::new(SECRET)),
    ))
    .unwrap()
}

/// A mock whose script can name its own URL in absolute links.
async fn mock_with_base(
    clock: &Arc<VirtualClock>,
    script: impl Fn(&Seen, &str) -> Answer + Send + Sync + 'static,
) -> Mock {
    let base = Arc::new(Mutex::new(String::new()));
    let b = base.clone();
    let m = Mock::start(clock.clone(), 3599, move |s, _| {
        if s.is_token() {
            pass()
        } else {
            script(s, &b.lock().unwrap())
        }
    })
    .await;
    *base.lock().unwrap() = m.url.clone();
    m
}

fn contact(id: &str) -> Value {
    json!({"@odata.type": "#microsoft.graph.contact", "@odata.etag": format!("W/\"ck-{id}\""),
           "id": id, "displayName": format!("N {id}")})
}

fn removed(id: &str) -> Value {
    json!({"@odata.type": "#microsoft.graph.contact", "id": id, "@removed": {"reason": "deleted"}})
}

fn page(rows: Vec<Value>, next: Option<String>, delta: Option<String>) -> Answer {
    let mut body = json!({"@odata.context": "https://graph/v1.0/$metadata#Collection(contact)",
                          "value": rows});
    if let Some(n) = next {
        body["@odata.nextLink"] = json!(n);
    }
    if let Some(d) = delta {
        body["@odata.deltaLink"] = json!(d);
    }
    Answer::json(200, body)
}

#[tokio::test]
async fn an_initial_round_follows_next_links_to_the_delta_link() {
    let clock = Arc::new(VirtualClock::default());
    let m = mock_with_base(&clock, |s, base| {
        let link = |q: &str| format!("{base}/v1.0/users/a@x/contacts/delta?{q}");
        if s.uri.contains("$skiptoken=p2") {
            // An empty page with a nextLink is legal (docs/graph-facts.md §2).
            page(vec![], Some(link("$skiptoken=p3")), None)
        } else if s.uri.contains("$skiptoken=p3") {
            page(vec![contact("c")], None, Some(link("$deltatoken=d1")))
        } else {
            page(
                vec![contact("a"), contact("b")],
                Some(link("$skiptoken=p2")),
                None,
            )
        }
    })
    .await;
    let c = client(&m, &clock);
    let round = c
        .contacts_delta::<Contact>(
            "a@x",
            &FolderRef::Default,
            DeltaStart::Initial {
                select: SELECT.into(),
            },
            DELTA_PAGE_SIZE,
        )
        .await
        .unwrap();
    let ids: Vec<_> = round.changed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);
    assert_eq!(round.changed[0].etag.as_deref(), Some("W/\"ck-a\""));
    assert!(round.removed.is_empty());
    assert_eq!(
        round.delta_link,
        format!("{}/v1.0/users/a@x/contacts/delta?$deltatoken=d1", m.url)
    );
    let g = m.graph_requests();
    let uris: Vec<_> = g.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "/v1.0/users/a@x/contacts/delta?$select=id,displayName",
            // Links verbatim: the $select lives in the token, we add nothing.
            "/v1.0/users/a@x/contacts/delta?$skiptoken=p2",
            "/v1.0/users/a@x/contacts/delta?$skiptoken=p3",
        ]
    );
    for s in &g {
        assert_eq!(
            s.header("prefer"),
            Some("odata.maxpagesize=200"),
            "{}",
            s.uri
        );
    }
}

#[tokio::test]
async fn a_round_from_a_link_reports_removed_rows_repeats_and_unknown_ids() {
    let clock = Arc::new(VirtualClock::default());
    let m = mock_with_base(&clock, |s, base| {
        let link =
            |q: &str| format!("{base}/v1.0/users/a@x/contactFolders/F%3D1/contacts/delta?{q}");
        if s.uri.contains("$deltatoken=d1") {
            page(
                vec![contact("a"), removed("gone"), contact("a")],
                Some(link("$skiptoken=s1")),
                None,
            )
        } else {
            // A removal of an id never seen, and a contact whose name is "@removed" (a value,
            // not the key): a change, not a removal.
            let mut odd = contact("z");
            odd["displayName"] = json!("@removed");
            page(
                vec![removed("never-seen"), odd],
                None,
                Some(link("$deltatoken=d2")),
            )
        }
    })
    .await;
    let c = client(&m, &clock);
    let folder = FolderRef::Id("F=1".into());
    let start = format!(
        "{}/v1.0/users/a@x/contactFolders/F%3D1/contacts/delta?$deltatoken=d1",
        m.url
    );
    let round = c
        .contacts_delta::<Contact>("a@x", &folder, DeltaStart::Link(start), 50)
        .await
        .unwrap();
    let ids: Vec<_> = round.changed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["a", "a", "z"], "repeats pass through");
    assert_eq!(round.changed[2].display_name.as_deref(), Some("@removed"));
    assert_eq!(round.removed, ["gone", "never-seen"]);
    assert!(round.delta_link.ends_with("$deltatoken=d2"));
    let g = m.graph_requests();
    assert_eq!(
        g[0].uri,
        "/v1.0/users/a@x/contactFolders/F%3D1/contacts/delta?$deltatoken=d1"
    );
    assert!(
        g.iter()
            .all(|s| s.header("prefer") == Some("odata.maxpagesize=50"))
    );
}

#[tokio::test]
async fn an_expired_or_rejected_link_is_a_sync_reset_wherever_it_happens() {
    let answers: Vec<(&str, Answer)> = vec![
        (
            "410 SyncStateNotFound",
            Answer::json(
                410,
                json!({"error": {"code": "SyncStateNotFound", "message":
                    "The sync state generation is not found; generation=149;[highest=157][157][155][156]."}}),
            ),
        ),
        (
            "410 with Location, no body",
            Answer {
                delay_ms: 0,
                status: 410,
                headers: vec![(
                    "location".into(),
                    "https://graph.microsoft.com/v1.0/users/a@x/contacts/delta".into(),
                )],
                body: String::new(),
            },
        ),
        ("400 resyncRequired", Answer::error(400, "resyncRequired")),
        (
            "410 syncStateNotFound",
            Answer::error(410, "syncStateNotFound"),
        ),
    ];
    for (what, refusal) in answers {
        for mid_round in [false, true] {
            let clock = Arc::new(VirtualClock::default());
            let r = refusal.clone();
            let m = mock_with_base(&clock, move |s, base| {
                if mid_round && s.uri.contains("$deltatoken") {
                    page(
                        vec![contact("a"), removed("b")],
                        Some(format!(
                            "{base}/v1.0/users/a@x/contacts/delta?$skiptoken=s1"
                        )),
                        None,
                    )
                } else {
                    r.clone()
                }
            })
            .await;
            let c = client(&m, &clock);
            let link = format!("{}/v1.0/users/a@x/contacts/delta?$deltatoken=d1", m.url);
            let e = c
                .contacts_delta::<Contact>(
                    "a@x",
                    &FolderRef::Default,
                    DeltaStart::Link(link),
                    DELTA_PAGE_SIZE,
                )
                .await
                .unwrap_err();
            assert_eq!(
                e.kind,
                ErrorKind::SyncReset,
                "{what} (mid-round {mid_round}): {e}"
            );
            assert!(!e.is_retryable());
            assert!(e.message.contains("read the folder whole"), "{e}");
            // Not retried: Graph will not take that link again.
            assert_eq!(
                m.graph_requests().len(),
                1 + usize::from(mid_round),
                "{what}"
            );
            assert!(clock.sleeps().is_empty());
        }
    }
}

#[tokio::test]
async fn a_link_outside_the_graph_root_is_a_reset_and_is_not_sent() {
    let clock = Arc::new(VirtualClock::default());
    let m = mock_with_base(&clock, |_, _| Answer::json(200, json!({}))).await;
    let c = client(&m, &clock);
    for link in [
        "https://graph.microsoft.com/v1.0/users/a@x/contacts/delta?$deltatoken=d1".to_owned(),
        "not a link".to_owned(),
    ] {
        let e = c
            .contacts_delta::<Contact>(
                "a@x",
                &FolderRef::Default,
                DeltaStart::Link(link),
                DELTA_PAGE_SIZE,
            )
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::SyncReset, "{e}");
    }
    assert!(
        m.seen().is_empty(),
        "nothing sent, not even a token request"
    );
}

#[tokio::test]
async fn a_round_cut_short_or_failing_midway_is_an_error_not_a_partial_round() {
    // A last page without a deltaLink.
    let clock = Arc::new(VirtualClock::default());
    let m = mock_with_base(&clock, |s, base| {
        if s.uri.contains("$skiptoken") {
            page(vec![contact("b")], None, None)
        } else {
            page(
                vec![contact("a")],
                Some(format!(
                    "{base}/v1.0/users/a@x/contacts/delta?$skiptoken=s1"
                )),
                None,
            )
        }
    })
    .await;
    let c = client(&m, &clock);
    let e = c
        .contacts_delta::<Contact>(
            "a@x",
            &FolderRef::Default,
            DeltaStart::Initial {
                select: SELECT.into(),
            },
            DELTA_PAGE_SIZE,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Server);
    assert!(
        e.message
            .contains("neither @odata.nextLink nor @odata.deltaLink"),
        "{e}"
    );
    assert!(e.message.contains("(page 2)"), "{e}");

    // A page that keeps failing after the first succeeded: the round fails with that error.
    let clock = Arc::new(VirtualClock::default());
    let m = mock_with_base(&clock, |s, base| {
        if s.uri.contains("$skiptoken") {
            Answer::error(403, "ErrorAccessDenied")
        } else {
            page(
                vec![contact("a")],
                Some(format!(
                    "{base}/v1.0/users/a@x/contacts/delta?$skiptoken=s1"
                )),
                None,
            )
        }
    })
    .await;
    let c = client(&m, &clock);
    let e = c
        .contacts_delta::<Contact>(
            "a@x",
            &FolderRef::Id("f".into()),
            DeltaStart::Initial {
                select: SELECT.into(),
            },
            DELTA_PAGE_SIZE,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permission);

    // A malformed row fails the round too.
    let clock = Arc::new(VirtualClock::default());
    let m = mock_with_base(&clock, |_, _| {
        page(vec![json!({"@removed": {}})], None, Some("x".into()))
    })
    .await;
    let c = client(&m, &clock);
    let e = c
        .contacts_delta::<Contact>(
            "a@x",
            &FolderRef::Default,
            DeltaStart::Initial {
                select: SELECT.into(),
            },
            DELTA_PAGE_SIZE,
        )
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Server);
    assert!(e.message.contains("unexpected response shape"), "{e}");
}

/// Should Graph refuse the default-folder form, the round is made once more in the documented
/// folder form, with the default folder's id learned from a contact's `parentFolderId` (or, for a
/// folder without contacts, a top-level folder's).
#[tokio::test]
async fn a_refused_default_folder_form_falls_back_to_the_folder_id_form() {
    for has_contact in [true, false] {
        let clock = Arc::new(VirtualClock::default());
        let m = mock_with_base(&clock, move |s, base| {
            let p = s.path();
            if p == "/v1.0/users/a@x/contacts/delta" {
                Answer::error(400, "BadRequest")
            } else if p == "/v1.0/users/a@x/contacts" {
                let rows = if has_contact {
                    vec![json!({"id": "c1", "parentFolderId": "DEF"})]
                } else {
                    vec![]
                };
                Answer::json(200, json!({ "value": rows }))
            } else if p == "/v1.0/users/a@x/contactFolders" {
                Answer::json(
                    200,
                    json!({"value": [{"id": "sub", "parentFolderId": "DEF"}]}),
                )
            } else {
                page(
                    vec![contact("c1")],
                    None,
                    Some(format!(
                        "{base}/v1.0/users/a@x/contactFolders/DEF/contacts/delta?$deltatoken=d"
                    )),
                )
            }
        })
        .await;
        let c = client(&m, &clock);
        let round = c
            .contacts_delta::<Contact>(
                "a@x",
                &FolderRef::Default,
                DeltaStart::Initial {
                    select: SELECT.into(),
                },
                DELTA_PAGE_SIZE,
            )
            .await
            .unwrap();
        assert_eq!(round.changed.len(), 1);
        let mut want = vec![
            "/v1.0/users/a@x/contacts/delta?$select=id,displayName",
            "/v1.0/users/a@x/contacts?$top=1&$select=parentFolderId",
        ];
        if !has_contact {
            want.push("/v1.0/users/a@x/contactFolders?$top=1&$select=parentFolderId");
        }
        want.push("/v1.0/users/a@x/contactFolders/DEF/contacts/delta?$select=id,displayName");
        let got: Vec<_> = m.graph_requests().into_iter().map(|s| s.uri).collect();
        assert_eq!(got, want);
    }
}

#[tokio::test]
async fn read_specs_put_select_expand_and_filter_on_lists_and_gets() {
    let clock = Arc::new(VirtualClock::default());
    let m = mock_with_base(&clock, |s, _| {
        if s.path().ends_with("/contacts") {
            Answer::json(200, json!({"value": [contact("a")]}))
        } else {
            Answer::json(
                200,
                json!({"id": "a", "singleValueExtendedProperties":
                    [{"id": "Integer 0x36", "value": "2"}]}),
            )
        }
    })
    .await;
    let c = client(&m, &clock);
    let spec = ReadSpec::new(SELECT).with_extended_property(SENSITIVITY_PROPERTY);
    c.list_contacts::<Contact>("a@x", &FolderRef::Default, &spec)
        .await
        .unwrap();
    let one: Value = c.get_contact("a@x", "a", &spec).await.unwrap();
    assert_eq!(one["singleValueExtendedProperties"][0]["value"], "2");
    let private = ReadSpec::new("id").where_int_property(SENSITIVITY_PROPERTY, 2);
    c.list_contacts::<Contact>("a@x", &FolderRef::Id("f".into()), private.clone())
        .await
        .unwrap();
    let e = c
        .get_contact::<Value>("a@x", "a", private)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
    let uris: Vec<_> = m.graph_requests().into_iter().map(|s| s.uri).collect();
    // (The URL parser encodes `'` in a query as %27, as WHATWG URLs do.)
    let expand =
        "$expand=singleValueExtendedProperties($filter%3Did%20eq%20%27Integer%200x0036%27)";
    assert_eq!(
        uris,
        [
            format!("/v1.0/users/a@x/contacts?$top=1000&$select=id,displayName&{expand}"),
            format!("/v1.0/users/a@x/contacts/a?$select=id,displayName&{expand}"),
            "/v1.0/users/a@x/contactFolders/f/contacts?$top=1000&$select=id&$filter=\
             singleValueExtendedProperties/any(ep:ep/id%20eq%20%27Integer%200x0036%27%20and%20\
             cast(ep/value,%20Edm.Int32)%20eq%202)"
                .to_owned(),
        ]
    );
}
