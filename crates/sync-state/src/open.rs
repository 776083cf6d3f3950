//! Opening a state file: lock (read-write only), recognise what is at the path, then create,
//! migrate, move aside or refuse it.
//!
//! What is at the path is judged in two steps. First its 100-byte header is read as plain bytes
//! (no SQLite): not SQLite, not ours, or ours with a *newer* schema — refused before SQLite could
//! touch the file (opening it could roll back a journal). Then SQLite opens it and runs
//! `PRAGMA quick_check` and checks the tables. Only corruption (`SQLITE_CORRUPT`,
//! `SQLITE_NOTADB`, a failed check) makes a file unusable; any other failure (permissions, I/O,
//! a busy lock) is an error and the file is left where it is — a file is never moved aside
//! because we could not read it.
//!
//! Read-only (a dry run) never creates, renames, migrates on disk or writes: an unusable file is
//! reported as such, and an older schema is migrated in an in-memory copy.

use crate::schema::{self, Header, Schema};
use crate::{Mode, OpenStatus, StateError, StateFile};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long a statement waits for SQLite's own file lock, held briefly by a concurrent dry run's
/// read (or by our writer while a dry run reads).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// `path` + `suffix`, as a sibling file name (`state.sqlite` → `state.sqlite.lock`).
pub(crate) fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(suffix);
    PathBuf::from(s)
}

pub(crate) fn open(
    path: &Path,
    mode: Mode,
    schema: &Schema,
) -> Result<(StateFile, OpenStatus), StateError> {
    match mode {
        Mode::ReadWrite { lock_wait } => open_read_write(path, lock_wait, schema),
        Mode::ReadOnly => open_read_only(path, schema),
    }
}

/// What is at the path.
enum Found {
    Missing,
    Newer(u32),
    Unusable(String),
    Usable { conn: Connection, version: u32 },
}

fn open_read_write(
    path: &Path,
    lock_wait: Duration,
    schema: &Schema,
) -> Result<(StateFile, OpenStatus), StateError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| StateError::io(dir, "create the state file's directory", e))?;
    }
    let lock = crate::lock::acquire(&with_suffix(path, ".lock"), path, lock_wait)?;
    let (conn, status) = match examine(path, false, schema)? {
        Found::Newer(found) => return Err(newer(path, found, schema)),
        Found::Missing => {
            create_fresh(path, schema)?;
            (connect(path, false)?, OpenStatus::Created)
        }
        Found::Unusable(why) => {
            let to = move_aside(path)?;
            create_fresh(path, schema)?;
            (connect(path, false)?, OpenStatus::MovedAside { to, why })
        }
        Found::Usable { mut conn, version } => {
            if version < schema.version() {
                migrate_in_place(&mut conn, schema, version)
                    .map_err(|e| StateError::db(path, "migrate the schema", e))?;
                (conn, OpenStatus::Migrated { from: version })
            } else {
                (conn, OpenStatus::Opened)
            }
        }
    };
    // Rollback journal, fully synchronous: see the crate doc ("Journal mode"). Both are the
    // defaults; set so a file someone switched to WAL comes back to one file at rest.
    conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL;")
        .map_err(|e| StateError::db(path, "set the journal mode", e))?;
    Ok((StateFile::new(path, Some(conn), Some(lock)), status))
}

fn open_read_only(path: &Path, schema: &Schema) -> Result<(StateFile, OpenStatus), StateError> {
    let (conn, status) = match examine(path, true, schema)? {
        Found::Missing => (None, OpenStatus::Missing),
        Found::Newer(found) => return Err(newer(path, found, schema)),
        Found::Unusable(why) => (None, OpenStatus::Unusable { why }),
        Found::Usable { conn, version } if version < schema.version() => {
            let mem = migrate_in_memory(&conn, schema, version)
                .map_err(|e| StateError::db(path, "migrate a copy of the schema in memory", e))?;
            (Some(mem), OpenStatus::Migrated { from: version })
        }
        Found::Usable { conn, .. } => (Some(conn), OpenStatus::Opened),
    };
    Ok((StateFile::new(path, conn, None), status))
}

fn newer(path: &Path, found: u32, schema: &Schema) -> StateError {
    StateError::NewerSchema {
        path: path.to_owned(),
        found,
        known: schema.version(),
    }
}

fn examine(path: &Path, read_only: bool, schema: &Schema) -> Result<Found, StateError> {
    let mut header = Vec::with_capacity(100);
    match std::fs::File::open(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Missing),
        Err(e) => return Err(StateError::io(path, "open the state file", e)),
        Ok(f) => f
            .take(100)
            .read_to_end(&mut header)
            .map_err(|e| StateError::io(path, "read the state file", e))?,
    };
    match schema::read_header(&header) {
        Header::Foreign(why) => return Ok(Found::Unusable(why.to_owned())),
        Header::Ours { version } if version > schema.version() => return Ok(Found::Newer(version)),
        Header::Ours { version: 0 } => {
            return Ok(Found::Unusable(
                "a state file that was never initialised".into(),
            ));
        }
        Header::Ours { .. } => {}
    }
    let conn = match connect(path, read_only) {
        Ok(c) => c,
        Err(StateError::Database { source, .. }) if is_corruption(&*source) => {
            return Ok(Found::Unusable(format!("it is damaged (SQLite: {source})")));
        }
        Err(e) => return Err(e),
    };
    match check(&conn, schema) {
        Ok(Checked::Fine { version }) if version > schema.version() => Ok(Found::Newer(version)),
        Ok(Checked::Fine { version }) => Ok(Found::Usable { conn, version }),
        Ok(Checked::Bad(why)) => Ok(Found::Unusable(why)),
        Err(e) if is_corruption(&e) => Ok(Found::Unusable(format!("it is damaged (SQLite: {e})"))),
        Err(e) if read_only && is_hot_journal(&e) => Ok(Found::Unusable(
            "a real run was interrupted while committing; the next real run rolls that back".into(),
        )),
        Err(e) => Err(StateError::db(path, "check the state file", e)),
    }
}

enum Checked {
    Fine { version: u32 },
    Bad(String),
}

fn check(conn: &Connection, schema: &Schema) -> rusqlite::Result<Checked> {
    // quick_check: every page and record well-formed (O(file size), no index cross-check).
    let first: String = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))?;
    if first != "ok" {
        return Ok(Checked::Bad(format!(
            "it is damaged (SQLite's integrity check: {first})"
        )));
    }
    // The header again, through SQLite this time (it may have rolled a journal back).
    let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if app != i64::from(schema::APP_ID) || version <= 0 {
        return Ok(Checked::Bad("not a synccontacts state file".into()));
    }
    let version = u32::try_from(version).unwrap_or(u32::MAX);
    if version <= schema.version() {
        let mut stmt =
            conn.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1")?;
        for t in schema.tables(version) {
            if !stmt.exists([t])? {
                return Ok(Checked::Bad(format!("its table `{t}` is missing")));
            }
        }
    }
    Ok(Checked::Fine { version })
}

fn sqlite_code(e: &(dyn std::error::Error + 'static)) -> Option<(ErrorCode, i32)> {
    match e.downcast_ref::<rusqlite::Error>()? {
        rusqlite::Error::SqliteFailure(f, _) => Some((f.code, f.extended_code)),
        _ => None,
    }
}

fn is_corruption(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        sqlite_code(e),
        Some((ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase, _))
    )
}

fn is_hot_journal(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(sqlite_code(e), Some((ErrorCode::ReadOnly, _)))
}

fn connect(path: &Path, read_only: bool) -> Result<Connection, StateError> {
    let access = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| StateError::db(path, "open", e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| StateError::db(path, "open", e))?;
    Ok(conn)
}

fn migrate_in_place(conn: &mut Connection, schema: &Schema, from: u32) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    schema::migrate(&tx, schema, from)?;
    tx.commit()
}

/// A read-only run sees an older file as a real run would after migrating it, without writing:
/// the file is copied page by page into memory (SQLite's backup API, a read) and migrated there.
fn migrate_in_memory(
    file: &Connection,
    schema: &Schema,
    from: u32,
) -> rusqlite::Result<Connection> {
    let mut mem = Connection::open_in_memory()?;
    rusqlite::backup::Backup::new(file, &mut mem)?.run_to_completion(
        i32::MAX,
        Duration::ZERO,
        None,
    )?;
    migrate_in_place(&mut mem, schema, from)?;
    Ok(mem)
}

/// Builds a fresh file next to `path` and renames it into place, so a crash mid-creation leaves
/// either no file or a complete one (never a half-made file a later run would move aside).
fn create_fresh(path: &Path, schema: &Schema) -> Result<(), StateError> {
    let tmp = with_suffix(path, ".new");
    // Leftovers of an interrupted creation, and a journal whose database is gone: SQLite would
    // play an orphan journal back into the new file ("hot journal"), so it must not stay. Neither
    // holds anything of value (the fresh file is empty; the orphan's database no longer exists).
    for leftover in [
        tmp.clone(),
        with_suffix(&tmp, "-journal"),
        with_suffix(path, "-journal"),
    ] {
        match std::fs::remove_file(&leftover) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(StateError::io(&leftover, "remove the leftover", e));
            }
            _ => {}
        }
    }
    let made = (|| {
        let mut conn = Connection::open_with_flags(
            &tmp,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.execute_batch("PRAGMA journal_mode = DELETE;")?;
        let tx = conn.transaction()?;
        schema::migrate(&tx, schema, 0)?;
        tx.commit()
    })();
    made.map_err(|e| StateError::db(&tmp, "create a fresh state file", e))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| StateError::io(path, "put the fresh state file in place", e))?;
    sync_dir(path);
    Ok(())
}

/// Renames an unusable file (and its journal, which belongs to it) to
/// `<path>.corrupt-<UTC timestamp>`.
fn move_aside(path: &Path) -> Result<PathBuf, StateError> {
    let stamp = utc_stamp(wall_clock());
    let mut to = with_suffix(path, &format!(".corrupt-{stamp}"));
    let mut n = 2;
    while std::fs::symlink_metadata(&to).is_ok() {
        to = with_suffix(path, &format!(".corrupt-{stamp}-{n}"));
        n += 1;
    }
    std::fs::rename(path, &to)
        .map_err(|e| StateError::io(path, "move the unusable state file aside", e))?;
    for side in ["-journal", "-wal", "-shm"] {
        let from = with_suffix(path, side);
        if std::fs::symlink_metadata(&from).is_ok() {
            std::fs::rename(&from, with_suffix(&to, side)).map_err(|e| {
                StateError::io(&from, "move the unusable state file's journal aside", e)
            })?;
        }
    }
    sync_dir(path);
    Ok(to)
}

/// Makes a rename durable (best effort: not every platform or filesystem can sync a directory,
/// and a lost rename only means the next run redoes it).
fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "only names a moved-aside file; no decision depends on it"
)]
fn wall_clock() -> SystemTime {
    SystemTime::now()
}

/// `YYYYMMDDTHHMMSSZ` (UTC) — sortable and free of characters file systems dislike.
pub(crate) fn utc_stamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's `civil_from_days`, proleptic Gregorian).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
