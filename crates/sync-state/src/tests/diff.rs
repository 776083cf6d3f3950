//! The diff-commit: only what changed is written (and counted right) — copies, loose contacts and
//! the book alike —, re-encoding is rare and correct, the run marker, the run log's length,
//! refused data, atomicity under an injected failure.

use super::*;

fn file_with(state: &TenantState) -> (tempfile::TempDir, PathBuf, StateFile) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let mut file = rw(&path);
    file.commit_tenant(state).unwrap();
    (dir, path, file)
}

fn reloaded(path: &Path, tenant: &str) -> Option<TenantState> {
    StateFile::open(path, Mode::ReadOnly)
        .unwrap()
        .0
        .tenant(tenant)
        .unwrap()
}

#[test]
fn an_unchanged_state_writes_nothing() {
    let state = full_tenant("t");
    let (_dir, path, mut file) = file_with(&state);
    assert!(file.commit_tenant(&state).unwrap().is_empty());
    // Also from a fresh StateFile (baseline from a load, or built by the commit itself).
    let mut file = {
        drop(file);
        rw(&path)
    };
    let loaded = file.tenant("t").unwrap().unwrap();
    assert!(file.commit_tenant(&loaded).unwrap().is_empty());
    let mut file = {
        drop(file);
        rw(&path)
    };
    assert!(file.commit_tenant(&state).unwrap().is_empty());
}

#[test]
fn counts_inserts_updates_and_deletes_row_by_row() {
    let state = full_tenant("t");
    let (_dir, path, mut file) = file_with(&state);
    let mut next = state.clone();
    next.last_commit_time = Some(1_790_000_000_000_000); // tenant row: updated
    let hub = &mut next.folders[0];
    hub.copies.remove(0); // deleted
    hub.copies[0].change_key = Some("EQAAABYAAADhub9999".into()); // updated
    hub.copies[1].user_text = Some("note".into()); // updated
    hub.copies[2].name_key = Some("alex wilber".into()); // updated (schema 3)
    hub.copies.push(copy("hub", 500)); // inserted
    hub.read_at = Some(1_790_000_000_000_000); // folder row: updated (schema 3)
    next.folders[1].complete = true; // folder row: updated
    next.tombstones[1].held = None; // updated
    next.opt_outs.clear(); // deleted
    next.pending_creates = vec![sid(901), sid(902)]; // one deleted, one inserted
    let stats = file.commit_tenant(&next).unwrap();
    assert_eq!(
        stats,
        CommitStats {
            inserted: 2,
            updated: 7,
            deleted: 3,
            reencoded: 0
        }
    );
    assert_eq!(reloaded(&path, "t"), Some(normalized(next)));
}

#[test]
fn book_entries_and_loose_contacts_are_written_row_by_row() {
    let state = full_tenant("t");
    let (_dir, path, mut file) = file_with(&state);
    let mut next = state.clone();
    next.book[0].data.push(7); // updated
    next.book[1].created_by = "someone.else@contoso.com".into(); // updated
    next.book.remove(2); // deleted
    next.book.push(book_entry(50)); // inserted
    let hub = &mut next.folders[0];
    hub.loose[0].change_key = Some("EQAAABYAAADhub9998".into()); // updated
    hub.loose[3].last_modified += 1; // updated
    hub.loose.remove(1); // deleted
    hub.loose.push(loose("hub", 34)); // inserted
    next.folders[1].loose[0].data = b"edited".to_vec(); // updated
    let stats = file.commit_tenant(&next).unwrap();
    assert_eq!(
        stats,
        CommitStats {
            inserted: 2,
            updated: 5,
            deleted: 2,
            reencoded: 0
        }
    );
    assert_eq!(reloaded(&path, "t"), Some(normalized(next.clone())));
    assert!(file.commit_tenant(&next).unwrap().is_empty());
}

#[test]
fn a_whole_loose_id_and_another_ids_middle_may_be_the_same_text() {
    let mut state = TenantState {
        binding: binding("t"),
        folders: vec![folder("kim", 0..8)],
        ..TenantState::default()
    };
    let fits = loose("kim", 0x10);
    let mut whole = loose("kim", 0x11);
    whole.contact_id = "10".into();
    state.folders[0].loose = vec![fits.clone(), whole];
    let (_dir, path, mut file) = file_with(&state);
    assert_eq!(reloaded(&path, "t"), Some(normalized(state.clone())));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT id_whole, contact_id FROM loose ORDER BY id_whole")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, [(0, "10".to_string()), (1, "10".to_string())]);
    // Dropping one leaves the other.
    state.folders[0].loose = vec![fits];
    let stats = file.commit_tenant(&state).unwrap();
    assert_eq!((stats.deleted, stats.inserted, stats.updated), (1, 0, 0));
    assert_eq!(reloaded(&path, "t"), Some(normalized(state)));
}

#[test]
fn loose_ids_share_the_folder_affixes_and_a_reencode_keeps_every_value() {
    // A folder of loose contacts only (untagged contacts, say): they alone choose its affixes.
    let mut state = TenantState {
        binding: binding("t"),
        folders: vec![folder("lee", [])],
        ..TenantState::default()
    };
    state.folders[0].loose = (0..8).map(|n| loose("lee", n)).collect();
    let (_dir, path, mut file) = file_with(&state);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (prefix, suffix, ck_prefix): (String, String, String) = conn
        .query_row(
            "SELECT id_prefix, id_suffix, ck_prefix FROM folder",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(
        (prefix.as_str(), suffix.as_str(), ck_prefix.as_str()),
        (
            "AAMkADleeAAAAAEOAAAAAABGAAAAA0000000",
            "AAA=",
            "EQAAABYAAADlee000"
        )
    );
    let middles: Vec<(String, i64)> = conn
        .prepare("SELECT contact_id, id_whole FROM loose ORDER BY contact_id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(middles[3], ("3".to_string(), 0));
    // Three contacts replaced by ones from another database: 3 of 8 ids no longer fit.
    for (i, l) in state.folders[0].loose.iter_mut().enumerate().take(3) {
        l.contact_id = format!("AAMkNEWDB{i}=");
        l.change_key = Some(format!("CQNEW{i}"));
    }
    let stats = file.commit_tenant(&state).unwrap();
    assert_eq!(
        stats,
        CommitStats {
            inserted: 3,
            updated: 1, // the folder row
            deleted: 3,
            reencoded: 5
        }
    );
    assert_eq!(reloaded(&path, "t"), Some(normalized(state.clone())));
    assert!(file.commit_tenant(&state).unwrap().is_empty());
}

#[test]
fn dropping_a_folder_deletes_its_copies_and_loose_contacts() {
    let state = full_tenant("t");
    let (_dir, path, mut file) = file_with(&state);
    let mut next = state.clone();
    let alice = next.folders.remove(1);
    assert!(!alice.loose.is_empty());
    let stats = file.commit_tenant(&next).unwrap();
    assert_eq!(
        stats.deleted,
        (alice.copies.len() + alice.loose.len()) as u64 + 1
    );
    assert_eq!(reloaded(&path, "t"), Some(normalized(next)));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let orphans: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM copy WHERE folder NOT IN (SELECT id FROM folder))
                  + (SELECT count(*) FROM loose WHERE folder NOT IN (SELECT id FROM folder))",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(orphans, 0);
}

#[test]
fn a_growing_folder_is_reencoded_rarely_and_reads_back_exactly() {
    // Starts with one copy (no affix to learn), grows one copy per commit to 40.
    let mut state = TenantState {
        binding: binding("t"),
        folders: vec![folder("carol", [0])],
        ..TenantState::default()
    };
    let (_dir, path, mut file) = file_with(&state);
    let mut reencodes = 0;
    for n in 1..40 {
        state.folders[0].copies.push(copy("carol", n));
        let stats = file.commit_tenant(&state).unwrap();
        assert_eq!(stats.inserted, 1, "commit {n}: {stats:?}");
        if stats.reencoded > 0 {
            reencodes += 1;
            assert_eq!(stats.updated, 1, "the folder row only: {stats:?}");
        }
        // A commit of the same state right after never re-encodes.
        assert!(
            file.commit_tenant(&state).unwrap().is_empty(),
            "after commit {n}"
        );
    }
    assert!((2..=5).contains(&reencodes), "{reencodes} re-encodes");
    assert_eq!(reloaded(&path, "t"), Some(normalized(state)));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (prefix, whole): (String, i64) = conn
        .query_row(
            "SELECT f.id_prefix, (SELECT count(*) FROM copy WHERE whole != 0) FROM folder f",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(prefix, "AAMkADcarolAAAAAEOAAAAAABGAAAAA000000");
    assert!(whole * 4 <= 40, "{whole} rows stored whole");
}

#[test]
fn ids_that_stop_fitting_trigger_a_reencode_that_keeps_every_value() {
    let mut state = TenantState {
        binding: binding("t"),
        folders: vec![folder("dave", 0..8)],
        ..TenantState::default()
    };
    let (_dir, path, mut file) = file_with(&state);
    // The mailbox moved databases: every new id and changeKey has another prefix.
    for (i, c) in state.folders[0].copies.iter_mut().enumerate().take(3) {
        c.contact_id = format!("AAMkNEWDB{i}=");
        c.change_key = Some(format!("CQNEW{i}"));
    }
    let stats = file.commit_tenant(&state).unwrap();
    assert_eq!((stats.updated, stats.reencoded), (3 + 1, 5), "{stats:?}");
    assert_eq!(reloaded(&path, "t"), Some(normalized(state)));
}

#[test]
fn the_run_log_keeps_the_newest_fifty() {
    let mut state = TenantState {
        binding: binding("t"),
        ..TenantState::default()
    };
    let (_dir, path, mut file) = file_with(&state);
    for i in 0..60 {
        state.runs.push(RunRecord {
            started: 1_000 + i,
            finished: 2_000 + i,
            exit_code: (i % 5) as i32,
            counts: BTreeMap::from([("updated".to_string(), i as u64)]),
        });
        file.commit_tenant(&state).unwrap();
    }
    let runs = reloaded(&path, "t").unwrap().runs;
    assert_eq!(runs.len(), RUN_LOG_LEN);
    assert_eq!(runs.first().unwrap().started, 1_010);
    assert_eq!(runs.last().unwrap().started, 1_059);
    assert_eq!(runs.last().unwrap().counts["updated"], 59);
    // Committing the caller's longer list again writes nothing: the cut is stable.
    assert!(file.commit_tenant(&state).unwrap().is_empty());
}

#[test]
fn the_run_marker_is_recorded_and_forgetting_clears_the_memory() {
    let state = full_tenant("t");
    let (_dir, path, mut file) = file_with(&state);
    file.record_run_start(&state.binding, 42, &[sid(1), sid(2)], PriorMemory::Keep)
        .unwrap();
    let mut expected = normalized(state.clone());
    expected.last_plan_time = Some(42);
    expected.pending_creates = vec![sid(1), sid(2)];
    assert_eq!(reloaded(&path, "t"), Some(expected.clone()));
    // A commit of the loaded-then-updated state after the marker writes only what differs.
    let mut next = expected.clone();
    next.last_commit_time = Some(43);
    let stats = file.commit_tenant(&next).unwrap();
    assert_eq!((stats.inserted, stats.updated, stats.deleted), (0, 1, 0));

    file.record_run_start(&state.binding, 44, &[], PriorMemory::Forget)
        .unwrap();
    let forgotten = reloaded(&path, "t").unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let left: i64 = conn
        .query_row(
            "SELECT (SELECT count(*) FROM copy) + (SELECT count(*) FROM loose)
                  + (SELECT count(*) FROM book)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(left, 0);
    assert_eq!(
        forgotten,
        TenantState {
            binding: state.binding.clone(),
            last_plan_time: Some(44),
            last_commit_time: Some(43),
            runs: expected.runs.clone(),
            ..TenantState::default()
        }
    );
}

#[test]
fn memory_of_another_hub_is_forgotten_by_the_run_marker() {
    let state = full_tenant("t");
    let (_dir, path, mut file) = file_with(&state);
    let other = Binding {
        hub_folder_id: "AAMkAnotherFolder=".into(),
        ..state.binding.clone()
    };
    file.record_run_start(&other, 50, &[sid(3)], PriorMemory::Keep)
        .unwrap();
    let now = reloaded(&path, "t").unwrap();
    assert_eq!(now.binding, other);
    assert!(now.folders.is_empty() && now.tombstones.is_empty());
    assert!(now.opt_outs.is_empty() && now.withdrawals.is_empty());
    assert_eq!(now.pending_creates, vec![sid(3)]);
}

#[test]
fn the_run_marker_creates_a_tenant_the_file_did_not_hold() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let mut file = rw(&path);
    file.record_run_start(&binding("new"), 7, &[sid(5)], PriorMemory::Keep)
        .unwrap();
    let t = reloaded(&path, "new").unwrap();
    assert_eq!(
        (t.last_plan_time, t.pending_creates),
        (Some(7), vec![sid(5)])
    );
}

#[test]
fn duplicate_keys_are_refused_and_nothing_is_written() {
    let state = full_tenant("t");
    let (dir, path, mut file) = file_with(&state);
    let before = snapshot(dir.path());
    let mut cases = Vec::new();
    let mut s = state.clone();
    s.folders[0].copies.push(copy("hub", 1));
    cases.push(s);
    let mut s = state.clone();
    s.folders.push(folder("alice", []));
    cases.push(s);
    let mut s = state.clone();
    s.tombstones.push(s.tombstones[0].clone());
    cases.push(s);
    let mut s = state.clone();
    s.runs[0].counts.insert("a=b".into(), 1);
    cases.push(s);
    let mut s = state.clone();
    s.book.push(book_entry(0));
    cases.push(s);
    let mut s = state.clone();
    let mut twin = loose("hub", 99);
    twin.contact_id = s.folders[0].loose[0].contact_id.clone();
    s.folders[0].loose.push(twin);
    cases.push(s);
    for bad in cases {
        let err = file.commit_tenant(&bad).unwrap_err();
        assert!(matches!(err, StateError::InvalidData { .. }), "{err}");
    }
    let err = file
        .record_run_start(&state.binding, 1, &[sid(1), sid(1)], PriorMemory::Keep)
        .unwrap_err();
    assert!(matches!(err, StateError::InvalidData { .. }), "{err}");
    assert_eq!(snapshot(dir.path()), before);
    assert_eq!(reloaded(&path, "t"), Some(normalized(state)));
}

#[test]
fn a_failure_mid_commit_leaves_the_previous_state() {
    let state = full_tenant("t");
    let mut next = state.clone();
    next.folders.remove(2);
    next.folders[0].copies.truncate(10);
    next.folders[0].copies.push(copy("hub", 77));
    next.folders[1]
        .copies
        .iter_mut()
        .for_each(|c| c.version += 1);
    next.folders.push(folder("erin", 0..30));
    next.tombstones.clear();
    next.runs.push(RunRecord {
        started: 9,
        ..RunRecord::default()
    });
    let (_dir, path, mut file) = file_with(&state);
    // Fail after 0, 1, 2, … row writes until the commit gets through whole.
    let mut k = 0;
    loop {
        file.fail_after_writes = Some(k);
        let result = file.commit_tenant(&next);
        file.fail_after_writes = None;
        match result {
            Err(err) => {
                assert!(err.to_string().contains("failure injected"), "{err}");
                let now = reloaded(&path, "t");
                assert_eq!(
                    now,
                    Some(normalized(state.clone())),
                    "after failing at write {k}"
                );
            }
            Ok(stats) => {
                assert!(k > 40, "only {k} writes: {stats:?}");
                break;
            }
        }
        k += 1;
    }
    // Each failed attempt dropped the baseline; the successful one was judged against the file.
    assert_eq!(reloaded(&path, "t"), Some(normalized(next)));
}

#[test]
fn a_read_only_file_refuses_writes() {
    let state = full_tenant("t");
    let (dir, path, file) = file_with(&state);
    drop(file);
    let before = snapshot(dir.path());
    let (mut ro, _) = StateFile::open(&path, Mode::ReadOnly).unwrap();
    assert!(ro.is_read_only());
    let loaded = ro.tenant("t").unwrap().unwrap();
    assert!(matches!(
        ro.commit_tenant(&loaded),
        Err(StateError::ReadOnly { .. })
    ));
    let err = ro
        .record_run_start(&state.binding, 1, &[], PriorMemory::Keep)
        .unwrap_err();
    assert!(matches!(err, StateError::ReadOnly { .. }), "{err}");
    drop(ro);
    assert_eq!(snapshot(dir.path()), before);
}
