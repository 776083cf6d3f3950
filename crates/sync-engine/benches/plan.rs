//! Micro-benchmark of the planner: 1,000 users × 1,000 contact copies (targets and results:
//! BENCHMARKS.md, "Planner"). Prints the input's size per contact (the `Contact` struct, its
//! id/etag/notes string, its value block), the wall and CPU time of `plan` and the process's peak
//! RSS (`VmHWM`) before planning (the input alone) and after.
//!
//! The tenant: the hub holds 1,000 stamped contacts and every user holds a copy of each (1,001,000
//! contacts, nine fields set, up to ~170 bytes of notes and an id of Graph's real length, ~150
//! characters, each; every contact is its own allocations, exactly sized, as a read from Graph
//! leaves it — no value block is shared). Copies are stamped in the old script's formats: 40%
//! with the two-field line and an upper-case GUID, the rest with the four-field line after user
//! text. The field set is the default one.
//!
//! - `churn` (default): 30% of the copies need a write — per user, 10% are unstamped (matched by
//!   email: stamp), 10% carry stale data (update), and for one contact in ten the hub cleared
//!   `jobTitle` (update with an explicit null) — and the first 50 users each hold one newer edit
//!   of a different contact, which must reach the hub and every other copy.
//! - `steady`: only the 50 newer edits; everything else is in sync.
//! - `memory` (with either): the planner also gets the memory of a previous run that left every
//!   copy as it is now (one remembered copy per tagged contact: id, changeKey, version,
//!   fingerprint), so every copy is looked up, and `next_memory` is timed after the plan (every
//!   write answered `Done`).
//!
//! Run: `cargo bench -p sync-engine --bench plan [-- steady] [memory]` (release). Without
//! `--bench` (e.g. under `cargo test --all-targets`) it runs a tiny size so test runs stay fast.

use std::time::Instant;
use sync_engine::fingerprint::fields_fingerprint;
use sync_engine::{
    ContactFields, ContactKey, ContactParts, CopyMemory, DeleteOptions, Field, FieldSet,
    FieldsBuilder, FolderMemory, Guid, MailboxSnapshot, Memory, PlanInput, ReadStatus, Version,
    WriteResult, next_memory, plan,
};

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU time (user + system, all threads) of this process so far, in seconds. On a shared machine
/// the wall time depends on the neighbours' load; the CPU time much less.
fn cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

/// A contact id of Graph's real shape and length: base64 of the mailbox and item keys, about 150
/// characters (e.g. `AAMkAGI2…AAA=`), unique per `(mailbox, item)`.
fn graph_id(mailbox: usize, item: usize) -> String {
    let mut s = String::with_capacity(152);
    s.push_str("AAMkAGI2NGVhZTVlLWI0ZjQtNDRjMC04NTU0LTEwOTA5ZTJhYmRlZQBGAAAAAAC7Hs4yoNvdQZ");
    s.push_str(&format!(
        "{mailbox:08x}BwCxK4vQz0yzQYmRvUsY3pXZAAAAAAEOAAC{item:08x}"
    ));
    while s.len() < 148 {
        s.push('A');
    }
    s.push_str("AAA=");
    s
}

fn guid(i: usize) -> String {
    format!("{i:08x}-4f89-41d3-9a0c-0305e82c3301")
}

/// The nine fields every contact has, with its variations: no `jobTitle` (cleared in the hub),
/// another `department` (stale), another `mobilePhone` (a newer user edit).
fn fields(
    i: usize,
    job_title: bool,
    department: Option<&str>,
    mobile: Option<&str>,
) -> ContactFields {
    let name = format!("Person {i}");
    let mut b = FieldsBuilder::new();
    b.text(Field::DisplayName, &name)
        .text(Field::GivenName, "Person")
        .text(Field::Surname, &format!("{i}"))
        .text(Field::CompanyName, "Contoso")
        .text(Field::JobTitle, if job_title { "Engineer" } else { "" })
        .text(Field::Department, department.unwrap_or(""))
        .list(
            Field::BusinessPhones,
            [format!("+1 425 555 {i:04}").as_str()],
        )
        .text(
            Field::MobilePhone,
            mobile.unwrap_or(&format!("+1 206 555 {i:04}")),
        )
        .emails([(name.as_str(), format!("person{i}@contoso.com").as_str())]);
    b.build()
}

fn ts(secs: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_second(1_790_000_000 + secs).unwrap()
}

fn tenant(users: usize, per_user: usize, churn: bool) -> PlanInput {
    let four = |i: usize| {
        format!(
            "Met at Ignite\r\nSyncId={};CreatedBy=admin@contoso.com;LastUpdatedAt=2026-01-05T08:00:00.1234567Z;LastUpdatedBy=hub@contoso.com",
            guid(i)
        )
    };
    let hub = MailboxSnapshot {
        mailbox: "hub@contoso.com".into(),
        contacts: (0..per_user)
            .map(|i| {
                // In churn, one contact in ten lost its jobTitle in the hub.
                let f = fields(i, !(churn && i % 10 == 9), None, None);
                ContactParts {
                    id: graph_id(0, i),
                    etag: Some(format!("W/\"h{i}\"")),
                    last_modified_date_time: Some(ts(1000)),
                    personal_notes: Some(four(i)),
                    private_flag: false,
                    fields: f,
                }
                .into()
            })
            .collect(),
        read: ReadStatus::Complete,
    };
    let users = (0..users)
        .map(|u| MailboxSnapshot {
            mailbox: format!("user{u:04}@contoso.com"),
            contacts: (0..per_user)
                .map(|i| {
                    let slot = match (i + u) % 10 {
                        7 | 8 if !churn => 4, // steady: no unstamped or stale copies
                        s => s,
                    };
                    let mut t = ts(500);
                    let notes = match slot {
                        0..=3 => Some(format!(
                            "SyncId={};CreatedBy=admin@contoso.com",
                            guid(i).to_uppercase()
                        )),
                        4..=6 => Some(four(i)),
                        7 => Some("private note".to_owned()), // unstamped
                        _ => Some(four(i)),
                    };
                    // Slot 8: stale data. The first 50 users: one newer edit each.
                    let stale = (slot == 8).then_some("Old department");
                    let edited = u < 50 && i == u * 7 % per_user;
                    if edited {
                        t = ts(2000 + u as i64);
                    }
                    let f = fields(i, true, stale, edited.then_some("+1 000 000 0000"));
                    ContactParts {
                        id: graph_id(u + 1, i),
                        etag: Some(format!("W/\"u{u}-{i}\"")),
                        last_modified_date_time: Some(t),
                        personal_notes: notes,
                        private_flag: false,
                        fields: f,
                    }
                    .into()
                })
                .collect(),
            read: ReadStatus::Complete,
        })
        .collect();
    // A contact keeps its strings in one exactly sized allocation (`Contact`), as a read from
    // Graph leaves it: `format!`'s over-allocation does not reach the input.
    PlanInput {
        hub,
        users,
        update_existing: true,
        now: ts(10_000),
        memory: None,
        options: DeleteOptions::default(),
        fields: FieldSet::DEFAULT,
        private_categories: Default::default(),
    }
}

/// The memory a previous run would have left if every copy is as it is now.
fn memory_of(input: &PlanInput) -> Memory {
    let folder = |s: &MailboxSnapshot, hub: bool| {
        let mut copies: Vec<CopyMemory> = s
            .contacts
            .iter()
            .filter_map(|c| {
                let tags = sync_engine::tags::find_tags(c.personal_notes()?)?;
                Some(CopyMemory {
                    sync_id: Guid::from_sync_id(tags.sync_id)?,
                    contact_id: c.id().into(),
                    change_key: c.etag().map(|e| sync_engine::memory::change_key(e).into()),
                    version: Version::of(c.last_modified()),
                    fields_hash: fields_fingerprint(&c.fields),
                    key: if hub { ContactKey::of(&c.fields) } else { None },
                })
            })
            .collect();
        copies.sort_by_key(|c| c.sync_id);
        copies.dedup_by_key(|c| c.sync_id);
        FolderMemory {
            mailbox: s.mailbox.clone(),
            read_at: ts(9000),
            copies,
        }
    };
    let mut m = Memory {
        last_plan_time: ts(9000),
        hub: folder(&input.hub, true),
        users: input.users.iter().map(|u| folder(u, false)).collect(),
        pending_creates: Vec::new(),
        tombstones: Vec::new(),
        opt_outs: Vec::new(),
        withdrawals: Vec::new(),
    };
    m.normalise();
    m
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let churn = !std::env::args().any(|a| a == "steady");
    let with_memory = std::env::args().any(|a| a == "memory");
    let (users, per_user) = if full { (1000, 1000) } else { (20, 50) };
    let mut input = tenant(users, per_user, churn);
    if with_memory {
        input.memory = Some(memory_of(&input));
    }
    // The input's own size per contact, before the allocator's rounding: the struct, its one
    // string (id, etag, notes) and its value block.
    // (Iterated twice rather than collected: a million references would raise the peak measured.)
    let contacts = || {
        std::iter::once(&input.hub)
            .chain(&input.users)
            .flat_map(|m| &m.contacts)
    };
    let n = contacts().count();
    let text: usize = contacts()
        .map(|c| {
            c.id().len() + c.etag().map_or(0, str::len) + c.personal_notes().map_or(0, str::len)
        })
        .sum();
    let blocks: usize = contacts().map(|c| c.fields.heap_size()).sum();
    println!(
        "input: {n} contacts; per contact {} B struct + {:.0} B id/etag/notes + {:.0} B value block",
        std::mem::size_of::<sync_engine::Contact>(),
        text as f64 / n as f64,
        blocks as f64 / n as f64,
    );
    // glibc settles the small chunks freed while the input was made (the `format!` temporaries)
    // on the next large allocation; that is the input's cost, not the plan's, so it is paid here.
    drop(std::hint::black_box(Vec::<u8>::with_capacity(64 << 10)));
    let before = vm_hwm_kib();
    let mut n = 0u64;
    let mut ids = move || {
        n += 1;
        format!("00000000-0000-4000-8000-{n:012x}")
    };
    let (start, cpu) = (Instant::now(), cpu_secs());
    let p = plan(&input, &mut ids);
    let elapsed = start.elapsed();
    let cpu = cpu_secs() - cpu;
    let after = vm_hwm_kib();
    let count = |a| p.operations.iter().filter(|o| o.action() == a).count();
    println!(
        "plan ({}{}): {users} users x {per_user} copies ({} contacts): {:.3} s (CPU {:.2} s); operations {} (create {}, update {}, stamp {}), problems {}; peak RSS {:.0} MiB (input alone {:.0} MiB)",
        if churn { "churn" } else { "steady" },
        if with_memory { ", memory" } else { "" },
        users * per_user + per_user,
        elapsed.as_secs_f64(),
        cpu,
        p.operations.len(),
        count(sync_engine::Action::Create),
        count(sync_engine::Action::Update),
        count(sync_engine::Action::Stamp),
        p.problems.len(),
        after as f64 / 1024.0,
        before as f64 / 1024.0,
    );
    assert!(!p.operations.is_empty());
    if with_memory {
        assert!(p.memory_verdict.is_trusted());
        let results = vec![
            WriteResult::Done {
                change_key: Some("ck".into())
            };
            p.operations.len()
        ];
        let (start, cpu) = (Instant::now(), cpu_secs());
        let next = next_memory(&input, &p, &results);
        println!(
            "next_memory: {:.3} s (CPU {:.2} s); {} copies remembered; peak RSS {:.0} MiB",
            start.elapsed().as_secs_f64(),
            cpu_secs() - cpu,
            next.hub.copies.len() + next.users.iter().map(|u| u.copies.len()).sum::<usize>(),
            vm_hwm_kib() as f64 / 1024.0,
        );
    }
}
