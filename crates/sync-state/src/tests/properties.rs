//! Property: any sequence of states committed to one file (diffed against each other, with
//! reopens in between that drop the in-memory baseline) loads back as the last state committed,
//! and committing it again writes nothing. Copies, loose contacts and book entries evolve.

use super::*;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;

/// A copy's shape: realistic ids and changeKeys most of the time, odd ones sometimes (stored
/// whole), a missing changeKey, note text.
fn arb_copy(mailbox: u8) -> impl Strategy<Value = (u32, CopyState)> + Clone {
    (
        0..40u32,
        0..4u8,
        0..4u8,
        0..3u32,
        any::<i64>(),
        any::<u64>(),
        proptest::option::weighted(0.2, "[a-zé\r\n ]{1,12}"),
        proptest::option::weighted(0.3, (any::<bool>(), "[a-z@. ]{1,10}")),
    )
        .prop_map(
            move |(n, id_style, ck_style, generation, version, fields_hash, user_text, key)| {
                let contact_id = match id_style {
                    0 | 1 => format!("AAMkADm{mailbox}AAAAAEOAAAAAABGAAAAA{n:08x}AAA="),
                    2 => format!("AAMkNEWDB{mailbox}{n}="),
                    _ => format!("odd-{n}-é"),
                };
                let change_key = match ck_style {
                    0 => None,
                    1 | 2 => Some(format!("EQAAABYAAADm{mailbox}{n:04x}{generation}")),
                    _ => Some(format!("ck{generation}")),
                };
                (
                    n,
                    CopyState {
                        sync_id: sid(n),
                        contact_id,
                        change_key,
                        version,
                        fields_hash,
                        user_text,
                        email_key: key.clone().filter(|k| k.0).map(|k| k.1),
                        name_key: key.filter(|k| !k.0).map(|k| k.1),
                    },
                )
            },
        )
}

/// A loose contact numbered `n`: an id like the folder's copies' most of the time, sometimes one
/// stored whole — among them short ones that read like another id's middle.
fn arb_loose(mailbox: u8) -> impl Strategy<Value = LooseContact> {
    (
        0..40u32,
        0..4u8,
        0..3u8,
        any::<i64>(),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(move |(n, id_style, ck_style, last_modified, data)| {
            let contact_id = match id_style {
                0 | 1 => format!("AAMkADm{mailbox}AAAAAEOAAAAAABGAAAAA{:08x}AAA=", 100 + n),
                2 => format!("odd-loose-{n}"),
                _ => format!("{:02x}", 100 + n),
            };
            let change_key = match ck_style {
                0 => None,
                1 => Some(format!("EQAAABYAAADm{mailbox}{n:04x}")),
                _ => Some(format!("loose-ck{n}")),
            };
            LooseContact {
                contact_id,
                change_key,
                last_modified,
                data,
            }
        })
}

fn arb_folder() -> impl Strategy<Value = FolderState> {
    (0..3u8)
        .prop_flat_map(|m| {
            (
                Just(m),
                any::<bool>(),
                proptest::option::of("[a-z]{1,6}"),
                proptest::option::of(any::<i64>()),
                btree_map(0..40u32, arb_copy(m).prop_map(|(_, c)| c), 0..30),
                vec(arb_loose(m), 0..8),
            )
        })
        .prop_map(
            |(m, complete, delta_link, read_at, copies, mut loose)| FolderState {
                mailbox: format!("m{m}"),
                folder_id: format!("AAMkF{m}="),
                complete,
                delta_link,
                read_at,
                copies: copies
                    .into_iter()
                    .map(|(n, c)| CopyState {
                        sync_id: sid(n),
                        ..c
                    })
                    .collect(),
                loose: {
                    // One per contact id.
                    loose.sort_by(|a, b| a.contact_id.cmp(&b.contact_id));
                    loose.dedup_by(|a, b| a.contact_id == b.contact_id);
                    loose
                },
            },
        )
}

fn arb_state() -> impl Strategy<Value = TenantState> {
    let opt_text = || proptest::option::of("[a-z@. ]{0,10}");
    (
        (
            0..2u8,
            proptest::option::of(any::<i64>()),
            proptest::option::of(any::<i64>()),
            btree_set(0..40u32, 0..5),
            btree_map(
                0..40u32,
                (
                    proptest::collection::vec(any::<u8>(), 0..60),
                    "[a-z@.]{0,8}",
                ),
                0..8,
            ),
        ),
        vec(arb_folder(), 0..4),
        btree_map(
            0..20u32,
            (any::<i64>(), opt_text(), opt_text(), opt_text()),
            0..5,
        ),
        btree_map((0..3u8, 0..20u32), any::<i64>(), 0..4),
        btree_map(0..20u32, (0..3u8, any::<i64>(), opt_text()), 0..3),
        btree_map(
            0..80i64,
            (
                any::<i64>(),
                any::<i32>(),
                btree_map("[a-z_]{1,8}", any::<u64>(), 0..3),
            ),
            0..60,
        ),
    )
        .prop_map(
            |((hub, plan, commit, pending, book), folders, tombs, opts, withs, runs)| {
                let mut folders = folders;
                // One folder per mailbox.
                folders.sort_by(|a, b| a.mailbox.cmp(&b.mailbox));
                folders.dedup_by(|a, b| a.mailbox == b.mailbox);
                TenantState {
                    binding: Binding {
                        hub_folder_id: format!("hub{hub}"),
                        ..binding("t")
                    },
                    last_plan_time: plan,
                    last_commit_time: commit,
                    pending_creates: pending.into_iter().map(sid).collect(),
                    book: book
                        .into_iter()
                        .map(|(n, (data, created_by))| BookEntry {
                            sync_id: sid(n),
                            data,
                            created_by,
                        })
                        .collect(),
                    folders,
                    tombstones: tombs
                        .into_iter()
                        .map(|(n, (observed_at, email_key, name_key, held))| Tombstone {
                            sync_id: sid(n),
                            observed_at,
                            email_key,
                            name_key,
                            held,
                        })
                        .collect(),
                    opt_outs: opts
                        .into_iter()
                        .map(|((m, n), since)| OptOut {
                            mailbox: format!("m{m}"),
                            sync_id: sid(n),
                            since,
                        })
                        .collect(),
                    withdrawals: withs
                        .into_iter()
                        .map(|(n, (m, since, held))| Withdrawal {
                            sync_id: sid(n),
                            owner: format!("m{m}"),
                            since,
                            held,
                        })
                        .collect(),
                    runs: runs
                        .into_iter()
                        .map(|(started, (finished, exit_code, counts))| RunRecord {
                            started,
                            finished,
                            exit_code,
                            counts,
                        })
                        .collect(),
                }
            },
        )
}

/// Evolves `s` a little, so consecutive states share most rows (the diff's real case).
fn nudge(mut s: TenantState, seed: u64) -> TenantState {
    for (i, f) in s.folders.iter_mut().enumerate() {
        for (j, c) in f.copies.iter_mut().enumerate() {
            let k = seed.wrapping_add((i * 131 + j) as u64) % 7;
            match k {
                0 => c.version = c.version.wrapping_add(1),
                1 => c.change_key = c.change_key.take().map(|ck| ck + "x"),
                2 => c.email_key = c.email_key.take().map(|e| e + "z"),
                _ => {}
            }
        }
        for (j, l) in f.loose.iter_mut().enumerate() {
            match seed.wrapping_add((i * 37 + j) as u64) % 5 {
                0 => l.last_modified = l.last_modified.wrapping_add(1),
                1 => l.change_key = l.change_key.take().map(|ck| ck + "y"),
                2 => l.data.push(j as u8),
                _ => {}
            }
        }
        if seed.is_multiple_of(2) {
            f.read_at = f.read_at.map(|t| t.wrapping_add(86_400_000_000));
        }
        if seed.is_multiple_of(3) {
            f.copies.retain(|c| c.sync_id[3] % 4 != 0);
            f.loose.retain(|l| l.contact_id.len() % 3 != 0);
        }
    }
    for (j, b) in s.book.iter_mut().enumerate() {
        if seed.wrapping_add(j as u64).is_multiple_of(4) {
            b.data.push(1);
        }
    }
    if seed.is_multiple_of(5) {
        s.book.retain(|b| b.sync_id[3] % 2 == 0);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn committed_states_load_back_as_the_last_one(
        steps in vec((arb_state(), any::<u64>(), any::<bool>(), any::<bool>()), 1..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.sqlite");
        let mut file = rw(&path);
        let mut last = None;
        for (state, seed, evolve, reopen) in steps {
            // Either a new random state or a nudge of the previous one.
            let state = match (&last, evolve) {
                (Some(prev), true) => nudge(Clone::clone(prev), seed),
                _ => state,
            };
            if reopen {
                drop(file);
                file = rw(&path);
            }
            file.commit_tenant(&state).unwrap();
            let loaded = StateFile::open(&path, Mode::ReadOnly).unwrap().0.tenant("t").unwrap();
            prop_assert_eq!(loaded, Some(normalized(state.clone())));
            last = Some(state);
        }
        let last = last.unwrap();
        prop_assert!(file.commit_tenant(&last).unwrap().is_empty());
        drop(file);
        prop_assert!(rw(&path).commit_tenant(&last).unwrap().is_empty());
    }
}
