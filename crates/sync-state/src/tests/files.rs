//! The file itself: creation, unusable files moved aside (read-write) or only reported
//! (read-only), newer schemas refused untouched, forward migration, the lock.

use super::*;
use crate::open::with_suffix;
use crate::schema::{Schema, Step, V1, V2, V3};
use rusqlite::Transaction;

/// What a build that knows only version 1 (issue 12's) opens files with.
const SCHEMA_V1: Schema = Schema { steps: &[V1] };

/// What a build that knows up to version 2 opens files with.
const SCHEMA_V2: Schema = Schema { steps: &[V1, V2] };

/// A made-up version 4, to test a schema newer than this build's and the migration of a current
/// file.
fn test_v4(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "CREATE TABLE future (
            tenant INTEGER NOT NULL REFERENCES tenant(id),
            what   TEXT NOT NULL,
            PRIMARY KEY (tenant, what)
        ) STRICT, WITHOUT ROWID;",
    )
}
const SCHEMA_V4: Schema = Schema {
    steps: &[
        V1,
        V2,
        V3,
        Step {
            migrate: test_v4,
            tables: &["future"],
        },
    ],
};

/// A version 1 state file as the version 1 code left it (`fixtures/v1.sql`): tenant "t" holding
/// `v1_view(full_tenant("t"))` and an empty tenant "empty". Closed, lock file removed.
fn v1_file(dir: &Path) -> PathBuf {
    let path = dir.join("state.sqlite");
    let (file, status) = open::open(&path, RW, &SCHEMA_V1).unwrap();
    assert_eq!(status, OpenStatus::Created);
    drop(file);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(include_str!("fixtures/v1.sql")).unwrap();
    drop(conn);
    std::fs::remove_file(with_suffix(&path, ".lock")).unwrap();
    path
}

fn user_version(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn has_table(path: &Path, name: &str) -> bool {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        == 1
}

/// A state file holding `full_tenant("t")`, closed.
fn saved(dir: &Path) -> (PathBuf, TenantState) {
    let path = dir.join("state.sqlite");
    let state = full_tenant("t");
    rw(&path).commit_tenant(&state).unwrap();
    (path, state)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn the_directory_is_created_and_a_missing_file_read_only_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/state.sqlite");
    let (mut ro, status) = StateFile::open(&path, Mode::ReadOnly).unwrap();
    assert_eq!(status, OpenStatus::Missing);
    assert_eq!(ro.tenant("t").unwrap(), None);
    assert!(ro.tenant_ids().unwrap().is_empty());
    assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
    let (_file, status) = StateFile::open(&path, RW).unwrap();
    assert_eq!(status, OpenStatus::Created);
    assert_eq!(
        names(&dir.path().join("a/b")),
        ["state.sqlite", "state.sqlite.lock"]
    );
}

/// Ways a file can be unusable, each with a word its reason must contain.
fn unusable_files(path: &Path) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let good = std::fs::read(path).unwrap();
    let mut flipped = good.clone();
    // Scribble over the middle of the file (b-tree pages), keep the header.
    for b in &mut flipped[4096 + 8..4096 + 600] {
        *b = 0xff;
    }
    let other_app = {
        let p = path.with_file_name("other.sqlite");
        let c = rusqlite::Connection::open(&p).unwrap();
        c.execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY, secret TEXT);")
            .unwrap();
        drop(c);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::remove_file(&p).unwrap();
        bytes
    };
    let mut ours_unstamped = other_app.clone();
    ours_unstamped[68..72].copy_from_slice(&schema::APP_ID.to_be_bytes());
    // A version 1 file whose header claims version 2: the v2 tables are missing.
    let v2_without_its_tables = {
        let sub = path.with_file_name("v1-stamped-v2");
        std::fs::create_dir(&sub).unwrap();
        let p = v1_file(&sub);
        rusqlite::Connection::open(&p)
            .unwrap()
            .execute_batch("PRAGMA user_version = 2;")
            .unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::remove_dir_all(&sub).unwrap();
        bytes
    };
    vec![
        ("empty", Vec::new(), "empty"),
        (
            "garbage",
            b"this is not a database, just text\n".repeat(200),
            "not a SQLite",
        ),
        ("truncated header", good[..60].to_vec(), "not a SQLite"),
        ("truncated", good[..good.len() / 2].to_vec(), "damaged"),
        ("scribbled", flipped, "damaged"),
        (
            "another application's database",
            other_app,
            "not a synccontacts",
        ),
        (
            "ours but never initialised",
            ours_unstamped,
            "never initialised",
        ),
        (
            "version 2 without its tables",
            v2_without_its_tables,
            "table `book` is missing",
        ),
    ]
}

#[test]
fn an_unusable_file_is_moved_aside_with_its_journal_and_a_fresh_one_started() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = saved(dir.path());
    for (case, bytes, why_word) in unusable_files(&path) {
        let sub = dir.path().join(case.replace(' ', "_"));
        std::fs::create_dir(&sub).unwrap();
        let p = sub.join("state.sqlite");
        std::fs::write(&p, &bytes).unwrap();
        std::fs::write(with_suffix(&p, "-journal"), b"a journal that belongs to it").unwrap();
        let (mut file, status) = StateFile::open(&p, RW).unwrap();
        let OpenStatus::MovedAside { to, why } = status else {
            panic!("{case}: {status:?}");
        };
        assert!(why.contains(why_word), "{case}: {why}");
        let to_name = to.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            to_name.starts_with("state.sqlite.corrupt-"),
            "{case}: {to_name}"
        );
        assert_eq!(
            std::fs::read(&to).unwrap(),
            bytes,
            "{case}: moved, not rewritten"
        );
        // The journal goes with its file — unless the file's header was ours and SQLite judged
        // it (damaged, a table missing): SQLite plays a valid hot journal back and drops an
        // invalid one (this one).
        let journal = std::fs::read(with_suffix(&to, "-journal")).ok();
        if !why.contains("damaged") && !why.contains("is missing") {
            assert_eq!(
                journal.as_deref(),
                Some(&b"a journal that belongs to it"[..]),
                "{case}"
            );
        }
        assert!(!with_suffix(&p, "-journal").exists(), "{case}");
        // A fresh, working file in its place.
        assert_eq!(file.tenant("t").unwrap(), None, "{case}");
        file.commit_tenant(&full_tenant("t")).unwrap();
        assert_eq!(
            file.tenant("t").unwrap(),
            Some(normalized(full_tenant("t")))
        );
        drop(file);
        assert_eq!(
            StateFile::open(&p, RW).unwrap().1,
            OpenStatus::Opened,
            "{case}"
        );
    }
}

#[test]
fn read_only_reports_an_unusable_file_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = saved(dir.path());
    for (case, bytes, _) in unusable_files(&path) {
        let sub = dir.path().join(case.replace(' ', "_"));
        std::fs::create_dir(&sub).unwrap();
        let p = sub.join("state.sqlite");
        std::fs::write(&p, &bytes).unwrap();
        let before = snapshot(&sub);
        let (mut file, status) = StateFile::open(&p, Mode::ReadOnly).unwrap();
        assert!(
            matches!(status, OpenStatus::Unusable { .. }),
            "{case}: {status:?}"
        );
        assert_eq!(file.tenant("t").unwrap(), None);
        drop(file);
        assert_eq!(snapshot(&sub), before, "{case}");
    }
}

#[test]
fn read_only_reads_a_good_file_and_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (path, state) = saved(dir.path());
    std::fs::remove_file(with_suffix(&path, ".lock")).unwrap();
    let before = snapshot(dir.path());
    let (mut file, status) = StateFile::open(&path, Mode::ReadOnly).unwrap();
    assert_eq!(status, OpenStatus::Opened);
    assert_eq!(file.tenant("t").unwrap(), Some(normalized(state)));
    drop(file);
    // Same files (no lock file, no journal), same bytes, same mtimes.
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn a_newer_schema_is_refused_in_both_modes_and_left_untouched() {
    // (this build, a version 4 file) and (a version-1-only build, a file this build wrote).
    for (writer, reader, found, known) in [
        (SCHEMA_V4, schema::SCHEMA, 4, 3),
        (schema::SCHEMA, SCHEMA_V1, 3, 1),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        {
            let (mut f, status) = open::open(&path, RW, &writer).unwrap();
            assert_eq!(status, OpenStatus::Created);
            f.commit_tenant(&full_tenant("t")).unwrap();
        }
        // Even a hot journal beside it is not rolled back by the older build.
        std::fs::write(with_suffix(&path, "-journal"), b"not ours to play back").unwrap();
        let before = snapshot(dir.path());
        for mode in [RW, Mode::ReadOnly] {
            let err = open::open(&path, mode, &reader).unwrap_err();
            assert!(
                matches!(err, StateError::NewerSchema { found: f, known: k, .. } if (f, k) == (found, known)),
                "{err}"
            );
            assert!(err.to_string().contains("newer synccontacts"), "{err}");
            assert_eq!(snapshot(dir.path()), before);
        }
    }
}

#[test]
fn a_v1_file_written_by_the_v1_code_is_migrated_to_the_current_version_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = v1_file(dir.path());
    let v1_t = normalized(v1_view(full_tenant("t")));
    let empty = TenantState {
        binding: binding("empty"),
        ..TenantState::default()
    };
    assert_eq!(user_version(&path), 1);
    // Read-only: migrated in memory, the file stays at version 1.
    let before = snapshot(dir.path());
    let (mut ro, status) = StateFile::open(&path, Mode::ReadOnly).unwrap();
    assert_eq!(status, OpenStatus::Migrated { from: 1 });
    assert_eq!(ro.tenant_ids().unwrap(), ["empty", "t"]);
    assert_eq!(ro.tenant("t").unwrap(), Some(v1_t.clone()));
    assert_eq!(ro.tenant("empty").unwrap(), Some(empty.clone()));
    drop(ro);
    assert_eq!(snapshot(dir.path()), before);
    assert!(!has_table(&path, "book"));

    // Read-write: migrated on disk, once; the v1 rows mean what they meant (no book, no loose
    // contacts) and a commit of them as loaded writes nothing.
    let (mut f, status) = StateFile::open(&path, RW).unwrap();
    assert_eq!(status, OpenStatus::Migrated { from: 1 });
    let loaded = f.tenant("t").unwrap();
    assert_eq!(loaded, Some(v1_t.clone()));
    assert!(f.commit_tenant(&loaded.unwrap()).unwrap().is_empty());
    assert_eq!(f.tenant("empty").unwrap(), Some(empty));
    assert_eq!(user_version(&path), 3);
    assert!(has_table(&path, "book") && has_table(&path, "loose"));

    // The v2 and v3 data go in beside the migrated rows: only the book and the loose rows are
    // new; two hub copies gain their keys and the hub folder its read time.
    let full = full_tenant("t");
    let added = full.book.len() + full.folders.iter().map(|f| f.loose.len()).sum::<usize>();
    let stats = f.commit_tenant(&full).unwrap();
    assert_eq!(stats.inserted, added as u64, "{stats:?}");
    assert_eq!((stats.updated, stats.deleted), (3, 0), "{stats:?}");
    drop(f);
    let (mut f, status) = StateFile::open(&path, RW).unwrap();
    assert_eq!(status, OpenStatus::Opened);
    assert_eq!(f.tenant("t").unwrap(), Some(normalized(full.clone())));
    assert!(f.commit_tenant(&full).unwrap().is_empty());
}

#[test]
fn a_v2_file_is_migrated_to_v3_and_its_rows_read_without_keys_or_read_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let full = full_tenant("t");
    {
        let (mut f, status) = StateFile::open(&path, RW).unwrap();
        assert_eq!(status, OpenStatus::Created);
        f.commit_tenant(&v2_view(full.clone())).unwrap();
    }
    std::fs::remove_file(with_suffix(&path, ".lock")).unwrap();
    // Back to the tables the version 2 code made (version 3 only added these columns), and
    // proof that a version 2 build opens the result.
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(
            "ALTER TABLE copy DROP COLUMN email_key; ALTER TABLE copy DROP COLUMN name_key;
             ALTER TABLE folder DROP COLUMN read_at; PRAGMA user_version = 2;",
        )
        .unwrap();
    assert_eq!(
        open::open(&path, Mode::ReadOnly, &SCHEMA_V2).unwrap().1,
        OpenStatus::Opened
    );
    assert_eq!(user_version(&path), 2);
    let v2_t = normalized(v2_view(full.clone()));
    // Read-only: migrated in memory, the file stays at version 2.
    let before = snapshot(dir.path());
    let (mut ro, status) = StateFile::open(&path, Mode::ReadOnly).unwrap();
    assert_eq!(status, OpenStatus::Migrated { from: 2 });
    assert_eq!(ro.tenant("t").unwrap(), Some(v2_t.clone()));
    drop(ro);
    assert_eq!(snapshot(dir.path()), before);
    // Read-write: migrated on disk; a commit of the loaded state writes nothing, the v3 data
    // updates exactly the rows that carry it.
    let (mut f, status) = StateFile::open(&path, RW).unwrap();
    assert_eq!(status, OpenStatus::Migrated { from: 2 });
    let loaded = f.tenant("t").unwrap();
    assert_eq!(loaded, Some(v2_t));
    assert!(f.commit_tenant(&loaded.unwrap()).unwrap().is_empty());
    assert_eq!(user_version(&path), 3);
    let stats = f.commit_tenant(&full).unwrap();
    assert_eq!(
        (stats.inserted, stats.updated, stats.deleted),
        (0, 3, 0),
        "{stats:?}"
    );
    drop(f);
    let (mut f, _) = StateFile::open(&path, RW).unwrap();
    assert_eq!(f.tenant("t").unwrap(), Some(normalized(full)));
}

#[test]
fn a_current_file_is_migrated_forward_keeping_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let (path, state) = saved(dir.path());
    // Read-only: migrated in memory, the file stays at version 3.
    std::fs::remove_file(with_suffix(&path, ".lock")).unwrap();
    let before = snapshot(dir.path());
    let (mut ro, status) = open::open(&path, Mode::ReadOnly, &SCHEMA_V4).unwrap();
    assert_eq!(status, OpenStatus::Migrated { from: 3 });
    assert_eq!(ro.tenant("t").unwrap(), Some(normalized(state.clone())));
    drop(ro);
    assert_eq!(snapshot(dir.path()), before);
    // Read-write: migrated on disk, once.
    let (mut f, status) = open::open(&path, RW, &SCHEMA_V4).unwrap();
    assert_eq!(status, OpenStatus::Migrated { from: 3 });
    assert_eq!(f.tenant("t").unwrap(), Some(normalized(state.clone())));
    drop(f);
    let (_, status) = open::open(&path, RW, &SCHEMA_V4).unwrap();
    assert_eq!(status, OpenStatus::Opened);
    assert_eq!(user_version(&path), 4);
    assert!(has_table(&path, "future"));
}

#[test]
fn a_fresh_file_runs_every_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    // A leftover of a creation that was interrupted.
    std::fs::write(with_suffix(&path, ".new"), b"half a database").unwrap();
    let (_, status) = open::open(&path, RW, &SCHEMA_V4).unwrap();
    assert_eq!(status, OpenStatus::Created);
    assert_eq!(user_version(&path), 4);
    assert!(has_table(&path, "book") && has_table(&path, "loose") && has_table(&path, "future"));
    // No leftover of the creation.
    assert_eq!(names(dir.path()), ["state.sqlite", "state.sqlite.lock"]);
    // This build creates version 3.
    let other = dir.path().join("current.sqlite");
    assert_eq!(StateFile::open(&other, RW).unwrap().1, OpenStatus::Created);
    assert_eq!(user_version(&other), 3);
}

#[test]
#[allow(
    clippy::disallowed_methods,
    reason = "lets the waiting thread start waiting before the holder lets go"
)]
fn a_second_read_write_open_waits_then_gives_up_and_read_only_needs_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (path, state) = saved(dir.path());
    let first = rw(&path);
    let wait = Duration::from_millis(300);
    let start = std::time::Instant::now();
    let err = StateFile::open(&path, Mode::ReadWrite { lock_wait: wait }).unwrap_err();
    assert!(
        start.elapsed() >= wait,
        "gave up after {:?}",
        start.elapsed()
    );
    assert!(matches!(err, StateError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("resource_group"), "{err}");
    // A dry run reads while the real run holds the lock.
    let (mut ro, _) = StateFile::open(&path, Mode::ReadOnly).unwrap();
    assert_eq!(ro.tenant("t").unwrap(), Some(normalized(state)));
    // Released when the holder is dropped; a waiting opener gets it.
    let waiter = {
        let path = path.clone();
        std::thread::spawn(move || {
            StateFile::open(
                &path,
                Mode::ReadWrite {
                    lock_wait: Duration::from_secs(10),
                },
            )
            .map(|(_, s)| s)
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    drop(first);
    assert_eq!(waiter.join().unwrap().unwrap(), OpenStatus::Opened);
}

#[test]
fn the_moved_aside_name_is_a_utc_timestamp() {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(1_796_342_400 + 3_723);
    assert_eq!(open::utc_stamp(t), "20261204T010203Z");
    assert_eq!(open::utc_stamp(std::time::UNIX_EPOCH), "19700101T000000Z");
    let leap = std::time::UNIX_EPOCH + Duration::from_secs(951_782_400);
    assert_eq!(open::utc_stamp(leap), "20000229T000000Z");
}

#[test]
fn a_commit_cut_by_a_crash_is_rolled_back_by_the_next_real_run_and_reported_by_a_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    let mut state = full_tenant("t");
    state.folders.push(folder("big", 0..3000));
    rw(&path).commit_tenant(&state).unwrap();
    // A writer that spills pages into the file mid-transaction; copy the file and its journal
    // at that moment: what a crash leaves behind.
    let crashed = dir.path().join("crashed");
    std::fs::create_dir(&crashed).unwrap();
    let p = crashed.join("state.sqlite");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA cache_size = 2; BEGIN; UPDATE copy SET version = version + 1;")
            .unwrap();
        std::fs::copy(&path, &p).unwrap();
        std::fs::copy(with_suffix(&path, "-journal"), with_suffix(&p, "-journal")).unwrap();
        conn.execute_batch("ROLLBACK").unwrap();
    }
    assert_ne!(
        std::fs::read(&p).unwrap(),
        std::fs::read(&path).unwrap(),
        "no page spilled"
    );
    let before = snapshot(&crashed);
    let (mut ro, status) = StateFile::open(&p, Mode::ReadOnly).unwrap();
    let OpenStatus::Unusable { why } = status else {
        panic!("{status:?}");
    };
    assert!(why.contains("interrupted"), "{why}");
    assert_eq!(ro.tenant("t").unwrap(), None);
    drop(ro);
    assert_eq!(snapshot(&crashed), before);
    // The real run rolls the journal back: the last committed state, not moved aside.
    let (mut file, status) = StateFile::open(&p, RW).unwrap();
    assert_eq!(status, OpenStatus::Opened);
    assert_eq!(file.tenant("t").unwrap(), Some(normalized(state)));
}

#[test]
fn a_path_that_cannot_be_read_is_an_error_not_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.sqlite");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("inside"), b"kept").unwrap();
    for mode in [RW, Mode::ReadOnly] {
        let err = StateFile::open(&path, mode).unwrap_err();
        assert!(matches!(err, StateError::Io { .. }), "{err}");
        assert!(err.to_string().contains("state.sqlite"), "{err}");
    }
    assert!(path.join("inside").exists());
    assert_eq!(names(dir.path()), ["state.sqlite", "state.sqlite.lock"]);
}
