//! Round trips: every field comes back as it was committed, across a reopen; the compact
//! encoding is really used.

use super::*;

#[test]
fn every_field_round_trips_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let state = full_tenant("t1");
    {
        let (mut file, status) = StateFile::open(&path, RW).unwrap();
        assert_eq!(status, OpenStatus::Created);
        assert_eq!(file.tenant("t1").unwrap(), None);
        let stats = file.commit_tenant(&state).unwrap();
        assert!(stats.inserted > 30, "{stats:?}");
        assert_eq!((stats.updated, stats.deleted), (0, 0));
        // The same StateFile reads back what it wrote.
        assert_eq!(file.tenant("t1").unwrap(), Some(normalized(state.clone())));
    }
    for mode in [RW, Mode::ReadOnly] {
        let (mut file, status) = StateFile::open(&path, mode).unwrap();
        assert_eq!(status, OpenStatus::Opened);
        assert_eq!(file.tenant_ids().unwrap(), vec!["t1".to_string()]);
        assert_eq!(file.tenant("t1").unwrap(), Some(normalized(state.clone())));
        assert_eq!(file.tenant("t2").unwrap(), None);
    }
}

#[test]
fn tenants_are_kept_apart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let mut file = rw(&path);
    let (a, mut b) = (full_tenant("a"), full_tenant("b"));
    b.folders.truncate(1);
    b.tombstones.clear();
    file.commit_tenant(&a).unwrap();
    file.commit_tenant(&b).unwrap();
    // Emptying b leaves a whole.
    let empty_b = TenantState {
        binding: binding("b"),
        ..TenantState::default()
    };
    file.commit_tenant(&empty_b).unwrap();
    drop(file);
    let mut file = rw(&path);
    assert_eq!(
        file.tenant_ids().unwrap(),
        vec!["a".to_string(), "b".to_string()]
    );
    assert_eq!(file.tenant("a").unwrap(), Some(normalized(a)));
    assert_eq!(file.tenant("b").unwrap(), Some(empty_b));
}

#[test]
fn copies_store_only_the_middle_of_ids_that_share_the_folder_affix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let state = full_tenant("t1");
    rw(&path).commit_tenant(&state).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (prefix, suffix): (String, String) = conn
        .query_row(
            "SELECT id_prefix, id_suffix FROM folder WHERE mailbox = 'hub'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    // One odd id among 20 does not cost the hub folder its prefix: it is stored whole.
    assert_eq!(prefix, "AAMkADhubAAAAAEOAAAAAABGAAAAA000000");
    assert_eq!(suffix, "AAA=");
    let odd: Vec<(String, Option<String>, i64)> = conn
        .prepare("SELECT contact_id, change_key, whole FROM copy WHERE whole != 0 ORDER BY sync_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        odd,
        vec![
            (
                "an id from elsewhere, stored whole".to_string(),
                Some("05".to_string()),
                1
            ),
            (
                "06".to_string(),
                Some("a changeKey that shares nothing".to_string()),
                2
            ),
        ]
    );
    let (prefix, suffix, ck_prefix): (String, String, String) = conn
        .query_row(
            "SELECT id_prefix, id_suffix, ck_prefix FROM folder WHERE mailbox = 'alice'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(prefix, "AAMkADaliceAAAAAEOAAAAAABGAAAAA0000000");
    assert_eq!(suffix, "AAA=");
    assert_eq!(ck_prefix, "EQAAABYAAADalice000");
    let middles: Vec<(String, i64)> = conn
        .prepare(
            "SELECT c.contact_id, c.whole FROM copy c JOIN folder f ON f.id = c.folder
             WHERE f.mailbox = 'alice' ORDER BY c.sync_id",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(middles[0], ("5".to_string(), 0));
    assert!(
        middles.iter().all(|(m, w)| m.len() == 1 && *w == 0),
        "{middles:?}"
    );
}
