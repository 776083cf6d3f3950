//! The state file at scale: one tenant of 1,000 users × 300 contact copies plus a hub of 1,000
//! (301,000 copies), with (schema 2, issue 14) a book of 300 entries of ~400-byte data and 2 % of
//! each folder's contacts loose (~300-byte data) — committed fresh, reopened and loaded,
//! committed unchanged, committed with 5 % of the copies, loose contacts and book entries
//! changed. Prints file size, bytes per copy (whole file; each table alone, from SQLite's
//! `dbstat`) and the wall and CPU times (best and median of the rounds; the CPU time is this
//! thread's, so it is little disturbed by other load, and wall − CPU is mostly waiting for the
//! disk: `fsync`).
//!
//! Ids:
//! - `realistic` (default): like real Exchange ones — 152-character contact ids sharing a
//!   140-character per-folder prefix and the `AAA=` suffix, 40-character changeKeys sharing a
//!   30-character per-mailbox prefix;
//! - `random`: the emulator's ids today — `AAMkA` + 48 random base64 characters (53), changeKeys
//!   `EQAAABYAAA` + 24 random ones (34) — which share (almost) nothing to factor out.
//!
//! Every copy has a changeKey, a version, a fingerprint and no note text (issue 14's user text
//! is the exception). Loose contacts' ids and changeKeys are shaped like their folder's copies'.
//! Book and loose data are random base64 text of the given length (the engine's encoding is
//! opaque here; SQLite stores it as is). Runs in a temporary directory (page cache warm: the
//! file was just written, as in CI where the cache was just restored).
//!
//! Run: `cargo bench -p sync-state --bench state [-- random] [book=N] [loose=PERCENT]`
//! (release; `book=0 loose=0` is schema 1's load). Without `--bench` (e.g. under
//! `cargo test --all-targets`) it runs a tiny tenant once, so test runs stay fast.

use std::time::{Duration, Instant};
use sync_state::{
    Binding, BookEntry, CopyState, FolderState, LooseContact, Mode, OpenStatus, StateFile, SyncId,
    TenantState,
};

/// Bytes of a book entry's and of a loose contact's data.
const BOOK_DATA: usize = 400;
const LOOSE_DATA: usize = 300;

/// splitmix64: a fixed, dependency-free stream, so every run builds the same tenant.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn b64(&mut self, n: usize) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..n)
            .map(|_| A[(self.next() % 64) as usize] as char)
            .collect()
    }
    fn sync_id(&mut self) -> SyncId {
        let mut s = [0u8; 16];
        s[..8].copy_from_slice(&self.next().to_le_bytes());
        s[8..].copy_from_slice(&self.next().to_le_bytes());
        s
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Ids {
    Realistic,
    Random,
}

struct Shape {
    ids: Ids,
    id_prefix: String,
    ck_prefix: String,
}

impl Shape {
    fn new(ids: Ids, rng: &mut Rng) -> Shape {
        Shape {
            ids,
            id_prefix: format!("AAMkA{}", rng.b64(135)),
            ck_prefix: format!("EQAAABYAAAA{}", rng.b64(19)),
        }
    }
    fn contact_id(&self, rng: &mut Rng) -> String {
        match self.ids {
            Ids::Realistic => format!("{}{}AAA=", self.id_prefix, rng.b64(8)),
            Ids::Random => format!("AAMkA{}", rng.b64(48)),
        }
    }
    fn change_key(&self, rng: &mut Rng) -> String {
        match self.ids {
            Ids::Realistic => format!("{}{}", self.ck_prefix, rng.b64(10)),
            Ids::Random => format!("EQAAABYAAA{}", rng.b64(24)),
        }
    }
}

/// The tenant's shape: `hub` contacts in the hub (and SyncIds), `book_entries` book entries,
/// `loose_pct` % of each folder's contacts loose.
struct Size {
    users: usize,
    per_user: usize,
    hub: usize,
    book_entries: usize,
    loose_pct: f64,
}

fn tenant(size: &Size, ids: Ids) -> TenantState {
    let Size {
        users,
        per_user,
        hub: book,
        ..
    } = *size;
    let mut rng = Rng(12);
    let sync_ids: Vec<SyncId> = (0..book).map(|_| rng.sync_id()).collect();
    let mut folders = Vec::with_capacity(users + 1);
    for u in 0..=users {
        let shape = Shape::new(ids, &mut rng);
        let n = if u == 0 { book } else { per_user };
        let start = (u * 7) % book;
        let copies = (0..n)
            .map(|i| CopyState {
                sync_id: sync_ids[(start + i) % book],
                contact_id: shape.contact_id(&mut rng),
                change_key: Some(shape.change_key(&mut rng)),
                version: 1_780_000_000_000_000 + (rng.next() % 10_000_000_000) as i64,
                fields_hash: rng.next(),
                user_text: None,
                // The binary keeps the matching key of hub copies only.
                email_key: (u == 0).then(|| format!("contact{i:05}@fabrikam.com")),
                name_key: None,
            })
            .collect();
        let loose = (0..(n as f64 * size.loose_pct / 100.0).round() as usize)
            .map(|_| LooseContact {
                contact_id: shape.contact_id(&mut rng),
                change_key: Some(shape.change_key(&mut rng)),
                last_modified: 1_780_000_000_000_000 + (rng.next() % 10_000_000_000) as i64,
                data: rng.b64(LOOSE_DATA).into_bytes(),
            })
            .collect();
        folders.push(FolderState {
            mailbox: if u == 0 {
                "allcontacts@contoso.com".into()
            } else {
                format!("user{u:04}@contoso.com")
            },
            folder_id: format!("AAMkA{}AAA=", rng.b64(140)),
            complete: true,
            delta_link: None,
            read_at: Some(1_780_000_000_000_000),
            copies,
            loose,
        });
    }
    let book = (0..size.book_entries)
        .map(|i| BookEntry {
            sync_id: sync_ids[i % book],
            data: rng.b64(BOOK_DATA).into_bytes(),
            created_by: format!("user{:04}@contoso.com", 1 + i % users),
        })
        .collect();
    TenantState {
        binding: Binding {
            tenant_id: "9188040d-6c67-4c5b-b112-36a304b66dad".into(),
            hub_mailbox_id: "2c7e5b0a-8d1e-4b0e-9f0e-2f3d4c5b6a79".into(),
            hub_folder_id: folders[0].folder_id.clone(),
        },
        last_plan_time: Some(1_790_000_000_000_000),
        last_commit_time: Some(1_790_000_060_000_000),
        book,
        folders,
        ..TenantState::default()
    }
}

/// 5 % of the copies get a new changeKey and version (what a run that wrote them records), 5 %
/// of the loose contacts a new changeKey, time and data (a user edited them), 5 % of the book
/// entries new data.
fn change_five_percent(state: &mut TenantState, seed: u64) -> usize {
    fn new_ck(ck: &mut Option<String>, rng: &mut Rng) {
        let ck = ck.as_mut().unwrap();
        let keep = ck.len() - 10;
        ck.truncate(keep);
        ck.push_str(&rng.b64(10));
    }
    let mut rng = Rng(seed);
    let mut changed = 0;
    for f in &mut state.folders {
        for c in &mut f.copies {
            if rng.next().is_multiple_of(20) {
                new_ck(&mut c.change_key, &mut rng);
                c.version += 1_000_000;
                changed += 1;
            }
        }
        for l in &mut f.loose {
            if rng.next().is_multiple_of(20) {
                new_ck(&mut l.change_key, &mut rng);
                l.last_modified += 1_000_000;
                l.data = rng.b64(LOOSE_DATA).into_bytes();
                changed += 1;
            }
        }
    }
    for b in &mut state.book {
        if rng.next().is_multiple_of(20) {
            b.data = rng.b64(BOOK_DATA).into_bytes();
            changed += 1;
        }
    }
    changed
}

/// This thread's CPU time so far (Linux `schedstat`, nanoseconds); zero elsewhere.
fn cpu() -> Duration {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .map_or(Duration::ZERO, Duration::from_nanos)
}

/// Wall and CPU time of one step.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Took {
    wall: Duration,
    cpu: Duration,
}

struct Timer(Instant, Duration);
impl Timer {
    fn start() -> Timer {
        Timer(Instant::now(), cpu())
    }
    fn took(&self) -> Took {
        Took {
            wall: self.0.elapsed(),
            cpu: cpu().saturating_sub(self.1),
        }
    }
}

struct Round {
    fresh: Took,
    open: Took,
    open_load: Took,
    open_ro_load: Took,
    unchanged: Took,
    markers: Took,
    five: Took,
    /// Rows the "5 %" step changed.
    changed: usize,
}

fn round(state: &TenantState, dir: &std::path::Path, seed: u64) -> (Round, u64, Tables) {
    let path = dir.join(format!("state-{seed}.sqlite"));
    let rw = Mode::ReadWrite {
        lock_wait: Duration::from_secs(10),
    };
    let tid = state.binding.tenant_id.clone();

    let t = Timer::start();
    let (mut file, status) = StateFile::open(&path, rw).unwrap();
    assert_eq!(status, OpenStatus::Created);
    let stats = file.commit_tenant(state).unwrap();
    let fresh = t.took();
    assert_eq!(
        stats.inserted as usize,
        copies(state) + loose(state) + state.book.len() + state.folders.len() + 1
    );
    drop(file);
    let size = std::fs::metadata(&path).unwrap().len();
    let tables = table_bytes(&path);

    let t = Timer::start();
    let (mut ro, _) = StateFile::open(&path, Mode::ReadOnly).unwrap();
    let loaded = ro.tenant(&tid).unwrap().unwrap();
    let open_ro_load = t.took();
    drop(ro);
    drop(loaded);

    let t = Timer::start();
    let (mut file, status) = StateFile::open(&path, rw).unwrap();
    assert_eq!(status, OpenStatus::Opened);
    let open = t.took();
    let mut loaded = file.tenant(&tid).unwrap().unwrap();
    let open_load = t.took();
    assert_eq!(copies(&loaded), copies(state));
    assert_eq!(loose(&loaded), loose(state));
    assert_eq!(loaded.book.len(), state.book.len());

    let t = Timer::start();
    let stats = file.commit_tenant(&loaded).unwrap();
    let unchanged = t.took();
    assert!(stats.is_empty(), "{stats:?}");

    // A run that changed no contact still moves its markers (plan and commit times).
    loaded.last_plan_time = Some(1_790_000_100_000_000);
    loaded.last_commit_time = Some(1_790_000_160_000_000);
    let t = Timer::start();
    let stats = file.commit_tenant(&loaded).unwrap();
    let markers = t.took();
    assert_eq!((stats.updated, stats.inserted, stats.deleted), (1, 0, 0));

    let changed = change_five_percent(&mut loaded, seed);
    let t = Timer::start();
    let stats = file.commit_tenant(&loaded).unwrap();
    let five = t.took();
    assert_eq!(stats.updated as usize, changed, "{stats:?}");
    drop(file);
    let size_after = std::fs::metadata(&path).unwrap().len();
    std::fs::remove_file(&path).unwrap();
    (
        Round {
            fresh,
            open,
            open_load,
            open_ro_load,
            unchanged,
            markers,
            five,
            changed,
        },
        size.max(size_after),
        tables,
    )
}

fn copies(s: &TenantState) -> usize {
    s.folders.iter().map(|f| f.copies.len()).sum()
}

fn loose(s: &TenantState) -> usize {
    s.folders.iter().map(|f| f.loose.len()).sum()
}

/// Bytes of the pages of the copy, loose and book tables.
#[derive(Clone, Copy, Default)]
struct Tables {
    copy: u64,
    loose: u64,
    book: u64,
}

/// [`Tables`] from SQLite's `dbstat` (compiled into the bundled SQLite).
fn table_bytes(path: &std::path::Path) -> Tables {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let of = |name: &str| {
        conn.query_row(
            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .unwrap_or(0)
    };
    Tables {
        copy: of("copy"),
        loose: of("loose"),
        book: of("book"),
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let ids = if std::env::args().any(|a| a == "random") {
        Ids::Random
    } else {
        Ids::Realistic
    };
    let arg = |name: &str| {
        std::env::args().find_map(|a| a.strip_prefix(&format!("{name}="))?.parse::<f64>().ok())
    };
    let (mut size, rounds) = if full {
        let size = Size {
            users: 1000,
            per_user: 300,
            hub: 1000,
            book_entries: 300,
            loose_pct: 2.0,
        };
        (size, 3)
    } else {
        let size = Size {
            users: 10,
            per_user: 30,
            hub: 60,
            book_entries: 20,
            loose_pct: 10.0,
        };
        (size, 1)
    };
    if let Some(b) = arg("book") {
        size.book_entries = b as usize;
    }
    if let Some(p) = arg("loose") {
        size.loose_pct = p;
    }
    let state = tenant(&size, ids);
    let n = copies(&state);
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    let (mut bytes, mut tables) = (0, Tables::default());
    for r in 0..rounds {
        let (round, b, t) = round(&state, dir.path(), 100 + r);
        (bytes, tables) = (b, t);
        results.push(round);
    }
    println!(
        "{} ids: {} folders, {n} copies, {} loose contacts ({} B data), {} book entries ({} B data)",
        if ids == Ids::Realistic {
            "realistic"
        } else {
            "random"
        },
        state.folders.len(),
        loose(&state),
        LOOSE_DATA,
        state.book.len(),
        BOOK_DATA,
    );
    let per = |b: u64, k: usize| if k == 0 { 0.0 } else { b as f64 / k as f64 };
    println!(
        "file: {:.1} MiB, {:.1} bytes per copy (copy table alone: {:.1} per copy; loose table: \
         {:.1} per copy, {:.1} per loose contact; book table: {:.1} per copy, {:.1} per entry)",
        bytes as f64 / 1_048_576.0,
        per(bytes, n),
        per(tables.copy, n),
        per(tables.loose, n),
        per(tables.loose, loose(&state)),
        per(tables.book, n),
        per(tables.book, state.book.len()),
    );
    println!(
        "{:<34} {:>21} {:>21}",
        "", "wall ms: best median", "CPU ms: best median"
    );
    let show = |name: &str, pick: fn(&Round) -> Took| {
        let mut wall: Vec<Duration> = results.iter().map(|r| pick(r).wall).collect();
        let mut cpu: Vec<Duration> = results.iter().map(|r| pick(r).cpu).collect();
        wall.sort();
        cpu.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{name:<34} {:>10.1} {:>10.1} {:>10.1} {:>10.1}",
            ms(wall[0]),
            ms(wall[wall.len() / 2]),
            ms(cpu[0]),
            ms(cpu[cpu.len() / 2])
        );
    };
    show("commit fresh (create + insert all)", |r| r.fresh);
    show("open read-write (lock, quick_check)", |r| r.open);
    show("open read-write + load tenant", |r| r.open_load);
    show("open read-only + load tenant", |r| r.open_ro_load);
    show("commit unchanged", |r| r.unchanged);
    show("commit unchanged but run markers", |r| r.markers);
    show("commit with 5 % of rows changed", |r| r.five);
    println!("(the 5 % step changed {} rows)", results[0].changed);
}
