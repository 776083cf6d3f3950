//! Unit tests of the delta sync states: rounds, tokens, expiry and page sizes.

use super::*;

fn item(id: &str, ck: &str, name: &str) -> DeltaItem {
    let json = json!({"id": id, "@odata.etag": format!("W/\"{ck}\""), "changeKey": ck,
                      "displayName": name, "jobTitle": "x"});
    DeltaItem {
        id: id.into(),
        change_key: ck.into(),
        json: json.as_object().unwrap().clone(),
    }
}

fn q(select: Option<Vec<String>>) -> DeltaQuery {
    DeltaQuery {
        select,
        expand: None,
    }
}

const T0: jiff::Timestamp = jiff::Timestamp::constant(1_800_000_000, 0);

fn scope() -> DeltaScope {
    DeltaScope {
        mailbox: "u1".into(),
        folder: "f1".into(),
    }
}

/// Follows a round to its deltaLink; returns all rows and the delta token.
fn round(
    s: &DeltaStore,
    start: Option<DeltaToken<'_>>,
    select: Option<Vec<String>>,
    page: usize,
    now: jiff::Timestamp,
    items: Vec<DeltaItem>,
) -> (Vec<Value>, String, usize) {
    let mut rows = vec![];
    let mut pages = 1;
    let mut p = s
        .request(&scope(), start, q(select), page, now, |_| items)
        .unwrap();
    loop {
        rows.extend(p.value.clone());
        match p.next {
            DeltaNext::Delta(t) => return (rows, t, pages),
            DeltaNext::Skip(t) => {
                pages += 1;
                p = s
                    .request(
                        &scope(),
                        Some(DeltaToken::Skip(&t)),
                        q(None),
                        page,
                        now,
                        |_| panic!("mid-round"),
                    )
                    .unwrap();
            }
        }
    }
}

#[test]
fn initial_round_then_update_delete_and_add() {
    let s = DeltaStore::new(DeltaConfig::default());
    let t0 = T0;
    let sel = parse_select(Some("displayName"));
    let items = vec![
        item("a", "1", "A"),
        item("b", "1", "B"),
        item("c", "1", "C"),
    ];
    let (rows, delta, pages) = round(&s, None, sel, 2, t0, items);
    assert_eq!(pages, 2);
    assert_eq!(rows.len(), 3);
    // $select applied: id, etag, type and displayName only.
    assert_eq!(
        rows[0],
        json!({"@odata.type": "#microsoft.graph.contact", "id": "a", "@odata.etag": "W/\"1\"", "displayName": "A"})
    );

    // b updated, c deleted, d added.
    let now = vec![
        item("a", "1", "A"),
        item("b", "2", "B2"),
        item("d", "1", "D"),
    ];
    let (rows, delta2, _) = round(
        &s,
        Some(DeltaToken::Delta(&delta)),
        None,
        10,
        t0,
        now.clone(),
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["id"], "b");
    assert_eq!(rows[0]["displayName"], "B2");
    assert!(
        rows[0].get("jobTitle").is_none(),
        "$select carried in the token"
    );
    assert_eq!(rows[1]["id"], "d");
    assert_eq!(
        rows[2],
        json!({"@odata.type": "#microsoft.graph.contact", "id": "c", "@removed": {"reason": "deleted"}})
    );

    // Nothing changed: an empty page with a deltaLink.
    let (rows, _, _) = round(&s, Some(DeltaToken::Delta(&delta2)), None, 10, t0, now);
    assert!(rows.is_empty());
}

#[test]
fn skip_tokens_are_idempotent() {
    let s = DeltaStore::new(DeltaConfig::default());
    let t0 = T0;
    let items: Vec<_> = (0..5).map(|i| item(&format!("i{i}"), "1", "n")).collect();
    let p1 = s
        .request(&scope(), None, q(None), 2, t0, |_| items)
        .unwrap();
    let DeltaNext::Skip(t) = p1.next else {
        panic!("expected a nextLink")
    };
    let a = s
        .request(&scope(), Some(DeltaToken::Skip(&t)), q(None), 2, t0, |_| {
            Vec::new()
        })
        .unwrap();
    let b = s
        .request(&scope(), Some(DeltaToken::Skip(&t)), q(None), 2, t0, |_| {
            Vec::new()
        })
        .unwrap();
    assert_eq!(a.value, b.value);
    assert_eq!(a.value[0]["id"], "i2");
}

#[test]
fn unknown_expired_foreign_and_evicted_tokens_get_410() {
    let cfg = DeltaConfig {
        ttl: Duration::from_secs(60),
        max_states: 3,
        ..DeltaConfig::default()
    };
    let s = DeltaStore::new(cfg);
    let t0 = T0;
    let err = s
        .request(
            &scope(),
            Some(DeltaToken::Delta("nope")),
            q(None),
            10,
            t0,
            |_| Vec::new(),
        )
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (410, "SyncStateNotFound"));

    let (_, delta, _) = round(&s, None, None, 10, t0, vec![item("a", "1", "A")]);
    // Another folder's token.
    let other = DeltaScope {
        mailbox: "u1".into(),
        folder: "f2".into(),
    };
    assert!(
        s.request(
            &other,
            Some(DeltaToken::Delta(&delta)),
            q(None),
            10,
            t0,
            |_| Vec::new()
        )
        .is_err()
    );
    // A delta token used as a skip token.
    assert!(
        s.request(
            &scope(),
            Some(DeltaToken::Skip(&delta)),
            q(None),
            10,
            t0,
            |_| Vec::new()
        )
        .is_err()
    );
    // Still fine before the TTL, gone after.
    assert!(
        s.request(
            &scope(),
            Some(DeltaToken::Delta(&delta)),
            q(None),
            10,
            t0 + jiff::SignedDuration::from_secs(59),
            |_| Vec::new()
        )
        .is_ok()
    );
    let late = t0 + jiff::SignedDuration::from_secs(60);
    assert_eq!(
        s.request(
            &scope(),
            Some(DeltaToken::Delta(&delta)),
            q(None),
            10,
            late,
            |_| Vec::new()
        ),
        Err(DeltaError::SyncStateNotFound)
    );

    // Eviction of the oldest when over max_states.
    let (_, first, _) = round(&s, None, None, 10, t0, vec![]);
    for _ in 0..3 {
        round(&s, None, None, 10, t0, vec![]);
    }
    assert!(
        s.request(
            &scope(),
            Some(DeltaToken::Delta(&first)),
            q(None),
            10,
            t0,
            |_| Vec::new()
        )
        .is_err()
    );

    // expire_all.
    let (_, fresh, _) = round(&s, None, None, 10, t0, vec![]);
    s.expire_all(ExpiredForm::SyncStateNotFound);
    assert!(
        s.request(
            &scope(),
            Some(DeltaToken::Delta(&fresh)),
            q(None),
            10,
            t0,
            |_| Vec::new()
        )
        .is_err()
    );
}

#[test]
fn body_has_absolute_links_and_page_sizes_are_capped() {
    let s = DeltaStore::new(DeltaConfig::default());
    assert_eq!(s.page_size(None), 10);
    assert_eq!(s.page_size(Some(5000)), 200);
    assert_eq!(
        prefer_max_page_size(Some("odata.track-changes, odata.maxpagesize=50")),
        Some(50)
    );
    assert_eq!(prefer_max_page_size(Some("IdType=\"ImmutableId\"")), None);
    let p = s
        .request(&scope(), None, q(None), 10, T0, |_| Vec::new())
        .unwrap();
    let base = "http://127.0.0.1:9/v1.0/users/u1/contactFolders/f1/contacts/delta";
    let body = p.body(
        base,
        "http://127.0.0.1:9/v1.0/$metadata#Collection(contact)",
    );
    let link = body["@odata.deltaLink"].as_str().unwrap();
    assert!(link.starts_with(&format!("{base}?$deltatoken=")), "{link}");
    assert_eq!(body["value"], json!([]));
}

#[test]
fn expiring_one_mailbox_keeps_the_other_mailboxes_tokens() {
    let s = DeltaStore::new(DeltaConfig::default());
    let other = DeltaScope {
        mailbox: "u2".into(),
        folder: "f1".into(),
    };
    let items = || vec![item("a", "1", "A"), item("b", "1", "B")];
    let (_, mine, _) = round(&s, None, None, 10, T0, items());
    // A round left in the middle: its skip token belongs to the mailbox too.
    let skip = match s.request(&scope(), None, q(None), 1, T0, |_| items()) {
        Ok(DeltaPage {
            next: DeltaNext::Skip(t),
            ..
        }) => t,
        other => panic!("{other:?}"),
    };
    let theirs = match s.request(&other, None, q(None), 10, T0, |_| items()) {
        Ok(DeltaPage {
            next: DeltaNext::Delta(t),
            ..
        }) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(s.expire_mailbox("u1", ExpiredForm::Reset), 2);
    for t in [DeltaToken::Delta(&mine), DeltaToken::Skip(&skip)] {
        let err = s
            .request(&scope(), Some(t), q(None), 10, T0, |_| items())
            .unwrap_err();
        assert!(matches!(err, DeltaError::Reset { .. }), "{err:?}");
    }
    let page = s
        .request(
            &other,
            Some(DeltaToken::Delta(&theirs)),
            q(None),
            10,
            T0,
            |_| items(),
        )
        .unwrap();
    assert!(page.value.is_empty(), "unchanged since the round");
    // The default form supersedes the reset form; nothing is left to expire.
    assert_eq!(s.expire_mailbox("u1", ExpiredForm::SyncStateNotFound), 0);
    let err = s
        .request(
            &scope(),
            Some(DeltaToken::Delta(&mine)),
            q(None),
            10,
            T0,
            |_| items(),
        )
        .unwrap_err();
    assert_eq!(err, DeltaError::SyncStateNotFound);
    assert_eq!(s.expire_mailbox("nobody", ExpiredForm::Reset), 0);
}

/// A round from a delta link asks the caller to render only the contacts it reports: the others
/// may come back unrendered and the round is the same.
#[test]
fn a_round_renders_only_what_it_reports() {
    let s = DeltaStore::new(DeltaConfig::default());
    let (_, t, _) = round(
        &s,
        None,
        None,
        10,
        T0,
        vec![item("a", "1", "A"), item("b", "1", "B")],
    );
    let p = s
        .request_rendering(
            &scope(),
            Some(DeltaToken::Delta(&t)),
            q(None),
            10,
            T0,
            |_, changed| {
                assert!(!changed("a", "1"));
                assert!(changed("b", "2"));
                assert!(changed("c", "1"));
                let mut a = item("a", "1", "A");
                a.json = Map::new();
                vec![a, item("b", "2", "B2")]
            },
        )
        .unwrap();
    assert_eq!(p.value.len(), 1);
    assert_eq!(p.value[0]["id"], "b");
    assert_eq!(p.value[0]["displayName"], "B2");
}
