//! The state file at scale: one tenant of 1,000 users × 300 contact copies plus a hub of 1,000
//! (301,000 copies), committed fresh, reopened and loaded, committed unchanged, committed with
//! 5 % of the copies changed. Prints file size, bytes per copy (whole file and the copy table
//! alone, from SQLite's `dbstat`) and the wall and CPU times (best and median of the rounds; the
//! CPU time is this thread's, so it is little disturbed by other load, and wall − CPU is mostly
//! waiting for the disk: `fsync`).
//!
//! Ids:
//! - `realistic` (default): like real Exchange ones — 152-character contact ids sharing a
//!   140-character per-folder prefix and the `AAA=` suffix, 40-character changeKeys sharing a
//!   30-character per-mailbox prefix;
//! - `random`: the emulator's ids today — `AAMkA` + 48 random base64 characters (53), changeKeys
//!   `EQAAABYAAA` + 24 random ones (34) — which share (almost) nothing to factor out.
//!
//! Every copy has a changeKey, a version, a fingerprint and no note text (issue 14's user text
//! is the exception). Runs in a temporary directory (page cache warm: the file was just
//! written, as in CI where the cache was just restored).
//!
//! Run: `cargo bench -p sync-state --bench state [-- random]` (release). Without `--bench`
//! (e.g. under `cargo test --all-targets`) it runs a tiny tenant once, so test runs stay fast.

use std::time::{Duration, Instant};
use sync_state::{
    Binding, CopyState, FolderState, Mode, OpenStatus, StateFile, SyncId, TenantState,
};

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

fn tenant(users: usize, per_user: usize, book: usize, ids: Ids) -> TenantState {
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
            copies,
        });
    }
    TenantState {
        binding: Binding {
            tenant_id: "9188040d-6c67-4c5b-b112-36a304b66dad".into(),
            hub_mailbox_id: "2c7e5b0a-8d1e-4b0e-9f0e-2f3d4c5b6a79".into(),
            hub_folder_id: folders[0].folder_id.clone(),
        },
        last_plan_time: Some(1_790_000_000_000_000),
        last_commit_time: Some(1_790_000_060_000_000),
        folders,
        ..TenantState::default()
    }
}

/// 5 % of the copies get a new changeKey and version (what a run that wrote them records).
fn change_five_percent(state: &mut TenantState, seed: u64) -> usize {
    let mut rng = Rng(seed);
    let mut changed = 0;
    for f in &mut state.folders {
        for c in &mut f.copies {
            if rng.next().is_multiple_of(20) {
                let ck = c.change_key.as_mut().unwrap();
                let keep = ck.len() - 10;
                ck.truncate(keep);
                ck.push_str(&rng.b64(10));
                c.version += 1_000_000;
                changed += 1;
            }
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
}

fn round(state: &TenantState, dir: &std::path::Path, seed: u64) -> (Round, u64, u64) {
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
        copies(state) + state.folders.len() + 1
    );
    drop(file);
    let size = std::fs::metadata(&path).unwrap().len();
    let copy_bytes = copy_table_bytes(&path);

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
        },
        size.max(size_after),
        copy_bytes,
    )
}

fn copies(s: &TenantState) -> usize {
    s.folders.iter().map(|f| f.copies.len()).sum()
}

/// Bytes of the copy table's pages (SQLite's `dbstat`, compiled into the bundled SQLite).
fn copy_table_bytes(path: &std::path::Path) -> u64 {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row(
        "SELECT sum(pgsize) FROM dbstat WHERE name = 'copy'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
    .unwrap_or(0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let ids = if std::env::args().any(|a| a == "random") {
        Ids::Random
    } else {
        Ids::Realistic
    };
    let (users, per_user, book, rounds) = if full {
        (1000, 300, 1000, 3)
    } else {
        (10, 30, 60, 1)
    };
    let state = tenant(users, per_user, book, ids);
    let n = copies(&state);
    let dir = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    let (mut size, mut copy_bytes) = (0, 0);
    for r in 0..rounds {
        let (round, s, c) = round(&state, dir.path(), 100 + r);
        (size, copy_bytes) = (s, c);
        results.push(round);
    }
    println!(
        "{} ids: {} folders, {n} copies",
        if ids == Ids::Realistic {
            "realistic"
        } else {
            "random"
        },
        state.folders.len()
    );
    println!(
        "file: {:.1} MiB, {:.1} bytes per copy (copy table alone: {:.1})",
        size as f64 / 1_048_576.0,
        size as f64 / n as f64,
        copy_bytes as f64 / n as f64
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
    show("commit with 5 % of copies changed", |r| r.five);
}
