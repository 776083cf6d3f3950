use super::*;
use crate::field::Field;
use crate::values::FieldsBuilder;

fn t(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn contact(id: &str, name: &str, modified: &str) -> Contact {
    let mut b = FieldsBuilder::new();
    b.text(Field::DisplayName, name);
    ContactParts {
        id: id.into(),
        etag: Some(format!("W/\"ck-{id}\"")),
        last_modified_date_time: Some(t(modified)),
        personal_notes: None,
        private_flag: false,
        fields: b.build(),
    }
    .into()
}

fn ids(cs: &[Contact]) -> Vec<&str> {
    cs.iter().map(Contact::id).collect()
}

fn full() -> Contact {
    let mut b = FieldsBuilder::new();
    b.text(Field::DisplayName, "Ann Émile")
        .text(Field::GivenName, "Ann")
        .list(Field::BusinessPhones, ["+1 555 0100", ""])
        .emails([("Ann", "ann@fabrikam.com"), ("", "a2@fabrikam.com")])
        .list(Field::Categories, ["Blue category"])
        .text(Field::Birthday, "1980-02-29T11:59:00Z")
        .address(Field::HomeAddress, ["1 Main St", "", "WA", "", "98052"])
        .text(Field::YomiSurname, "エミール");
    ContactParts {
        id: "AAMkADexample==".into(),
        etag: Some("W/\"EQAAABYAAAD\"".into()),
        last_modified_date_time: Some(t("2026-03-01T10:00:00.1234567Z")),
        personal_notes: Some("\r\nuser text\r\nSyncId=x;CreatedBy=y".into()),
        private_flag: true,
        fields: b.build(),
    }
    .into()
}

#[test]
fn every_supported_field_has_a_v1_index_and_names_are_unique() {
    for f in Field::SUPPORTED {
        assert!(V1_FIELDS.contains(&f.json_name()), "{f:?} has no v1 index");
    }
    let mut names = V1_FIELDS.to_vec();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), V1_FIELDS.len());
}

#[test]
fn a_contact_round_trips_exactly_with_every_kind_of_field() {
    let c = full();
    let r = encode(&c);
    assert_eq!(r.data[0], ENCODING_VERSION);
    assert_eq!(r.change_key.as_deref(), Some("EQAAABYAAAD"));
    let back = decode(&r).unwrap();
    assert_eq!(back, c, "{back:?}");
    // Sub-microsecond ticks survive although the state keeps microseconds.
    assert_eq!(back.last_modified(), c.last_modified());

    // Absent parts stay absent; an etag of another form is kept verbatim; "" notes are not None.
    let bare: Contact = ContactParts {
        id: "b".into(),
        etag: Some("\"strong\"".into()),
        personal_notes: Some(String::new()),
        ..ContactParts::default()
    }
    .into();
    let back = decode(&encode(&bare)).unwrap();
    assert_eq!(back, bare);
    let none: Contact = ContactParts {
        id: "n".into(),
        ..ContactParts::default()
    }
    .into();
    assert_eq!(decode(&encode(&none)).unwrap(), none);
}

#[test]
fn an_unknown_encoding_version_or_damaged_bytes_are_refused() {
    let mut r = encode(&full());
    r.data[0] = ENCODING_VERSION + 1;
    assert_eq!(
        decode(&r),
        Err(DecodeError::UnknownVersion(ENCODING_VERSION + 1))
    );
    assert!(decode_all(&[encode(&full()), r], &Book::default()).is_err());
    let good = encode(&full());
    for cut in 0..good.data.len() {
        let mut r = good.clone();
        r.data.truncate(cut);
        assert!(decode(&r).is_err(), "truncated at {cut} decoded");
    }
    let mut r = good.clone();
    r.data.push(0);
    assert_eq!(decode(&r), Err(DecodeError::Damaged));
    let mut r = good;
    r.data[1] |= 0x80;
    assert_eq!(decode(&r), Err(DecodeError::Damaged));
    let empty = Remembered {
        contact_id: "x".into(),
        change_key: None,
        last_modified: 0,
        data: Vec::new(),
    };
    assert_eq!(decode(&empty), Err(DecodeError::Damaged));
}

#[test]
fn changed_contacts_replace_or_join_and_removed_ids_leave() {
    let mem = vec![
        contact("a", "A", "2026-01-01T00:00:00Z"),
        contact("b", "B", "2026-01-01T00:00:00Z"),
        contact("c", "C", "2026-01-01T00:00:00Z"),
    ];
    let changed = vec![
        contact("b", "B2", "2026-02-01T00:00:00Z"),
        contact("d", "D", "2026-02-01T00:00:00Z"),
    ];
    let out = materialize(mem, changed, &["c".into()]);
    assert_eq!(ids(&out), ["a", "b", "d"]);
    assert_eq!(out[1].display_name(), Some("B2"));
}

#[test]
fn removals_are_idempotent_repeats_and_unknown_ids_change_nothing() {
    let mem = vec![
        contact("a", "A", "2026-01-01T00:00:00Z"),
        contact("b", "B", "2026-01-01T00:00:00Z"),
    ];
    let removed = vec!["b".to_owned(), "b".to_owned(), "never-seen".to_owned()];
    let out = materialize(mem.clone(), Vec::new(), &removed);
    assert_eq!(ids(&out), ["a"]);
    // Nothing changed: the snapshot is the memory, same blocks.
    let out = materialize(mem.clone(), Vec::new(), &[]);
    assert_eq!(out, mem);
    assert!(out[0].fields.same_block(&mem[0].fields));
}

#[test]
fn a_contact_changed_twice_keeps_its_newest_row_and_changed_and_removed_reads_present() {
    let mem = vec![contact("a", "A", "2026-01-01T00:00:00Z")];
    // Newest first, then an older replay: the newest stays.
    let changed = vec![
        contact("a", "A3", "2026-03-01T00:00:00Z"),
        contact("a", "A2", "2026-02-01T00:00:00Z"),
        contact("n", "N1", "2026-02-01T00:00:00Z"),
        contact("n", "N2", "2026-02-01T00:00:00Z"),
    ];
    let out = materialize(mem.clone(), changed, &[]);
    assert_eq!(ids(&out), ["a", "n"]);
    assert_eq!(out[0].display_name(), Some("A3"));
    // A tie: the later row.
    assert_eq!(out[1].display_name(), Some("N2"));
    // Both changed and removed in one round: kept, never read as a deletion.
    let out = materialize(
        mem,
        vec![contact("a", "A2", "2026-02-01T00:00:00Z")],
        &["a".into()],
    );
    assert_eq!(ids(&out), ["a"]);
    assert_eq!(out[0].display_name(), Some("A2"));
}

#[test]
fn a_materialised_folder_through_the_encoding_equals_the_folder() {
    // What the binary does: remember, decode, apply a round.
    let folder = vec![full(), contact("z", "Z", "2026-01-01T00:00:00Z")];
    let rows: Vec<Remembered> = folder.iter().map(encode).collect();
    let back = decode_all(&rows, &Book::default()).unwrap();
    assert_eq!(back, folder);
    let out = materialize(
        back,
        vec![contact("y", "Y", "2026-01-01T00:00:00Z")],
        &["z".into()],
    );
    assert_eq!(ids(&out), ["AAMkADexample==", "y"]);
    assert_eq!(out[0], folder[0]);
}

fn tagged(id: &str, sync: &str, title: &str) -> Contact {
    let mut b = FieldsBuilder::new();
    b.text(Field::DisplayName, "Ann Example")
        .text(Field::JobTitle, title);
    ContactParts {
        id: id.into(),
        etag: Some(format!("W/\"ck-{id}\"")),
        last_modified_date_time: Some(t("2026-01-01T00:00:00Z")),
        personal_notes: Some(format!(
            "own text\r\nSyncId={sync};CreatedBy=a@contoso.com;LastUpdatedAt=2026-01-01T00:00:00.0000000Z;LastUpdatedBy=hub"
        )),
        private_flag: false,
        fields: b.build(),
    }
    .into()
}

const S1: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
const S2: &str = "3f2504e0-4f89-11d3-9a0c-0305e82c3302";

#[test]
fn a_copy_with_its_book_entry_s_values_is_stored_without_them_and_shares_the_entry() {
    let hub = vec![tagged("h1", S1, "Engineer"), tagged("h2", S2, "Lead")];
    let book = Book::of(&hub);
    assert_eq!(book.len(), 2);
    let same = tagged("u1", S1, "Engineer");
    let other = tagged("u2", S2, "Not the book's");
    let (r_same, r_other) = (encode_with(&same, &book), encode_with(&other, &book));
    assert!(r_same.data.len() + 10 < r_other.data.len(), "{r_same:?}");
    assert_eq!(r_same.data[1] & 16, 16);
    assert_eq!(r_other.data[1] & 16, 0);

    // Through the stored entries, as the next run loads them.
    let stored = book.entries();
    assert_eq!(stored[0].2, "a@contoso.com");
    let loaded = Book::from_entries(
        stored
            .iter()
            .map(|(g, d, b)| (*g, d.as_slice(), b.as_str())),
    );
    let back = decode_all(&[r_same.clone(), r_other], &loaded).unwrap();
    assert_eq!(back, vec![same, other]);
    // Every copy decoded from one entry holds the entry's one block.
    let again = decode_with(&r_same, &loaded).unwrap();
    assert!(again.fields.same_block(&back[0].fields));

    // Without its entry (another book, or an entry that did not decode) it cannot be reproduced.
    assert_eq!(decode(&r_same), Err(DecodeError::Damaged));
    let mut bad = stored.clone();
    bad[0].1[0] = ENCODING_VERSION + 1;
    let partial = Book::from_entries(bad.iter().map(|(g, d, b)| (*g, d.as_slice(), b.as_str())));
    assert_eq!(partial.len(), 1);
    assert_eq!(decode_with(&r_same, &partial), Err(DecodeError::Damaged));
}

#[test]
fn a_book_entry_round_trips_and_refuses_an_unknown_version() {
    let f = full().fields;
    let data = encode_fields(&f);
    assert_eq!(decode_fields(&data).unwrap(), f);
    let mut v = data.clone();
    v[0] = 9;
    assert_eq!(decode_fields(&v), Err(DecodeError::UnknownVersion(9)));
    let mut v = data;
    v.push(1);
    assert_eq!(decode_fields(&v), Err(DecodeError::Damaged));
}

/// A contact with these notes, tagged under `S1` by the book's entry when `sync` is `S1`.
fn with_notes(notes: &str, modified: Option<&str>) -> Contact {
    let mut c = tagged("u1", S1, "Engineer");
    c.set_personal_notes(Some(notes));
    c.set_last_modified(modified.map(t));
    c
}

/// `c` through the encoding and back with `book` (as stored and loaded); also whether its notes
/// were stored as a tag line's values, and the encoded size.
fn round_trip(c: &Contact, book: &Book) -> (Contact, bool, usize) {
    let r = encode_with(c, book);
    let stored = book.entries();
    let loaded = Book::from_entries(
        stored
            .iter()
            .map(|(g, d, b)| (*g, d.as_slice(), b.as_str())),
    );
    let back = decode_with(&r, &loaded).unwrap_or_else(|e| panic!("{e}: {c:?}"));
    (back, r.data[1] & TAG_LINE != 0, r.data.len())
}

const LINE: &str = "SyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301;CreatedBy=a@contoso.com;LastUpdatedAt=2026-12-04T21:59:09.6495910Z;LastUpdatedBy=johanna.bowen@contoso.com";

#[test]
fn our_tag_line_is_stored_as_its_values_and_comes_back_byte_for_byte() {
    let hub = vec![tagged("h1", S1, "Engineer")];
    let book = Book::of(&hub);
    let modified = Some("2026-12-04T21:59:10.1234567Z");
    for before in [
        "",
        "own text\r\n",
        "own\ntext\n",
        "\r\n",
        "a\r",
        "ünïcode ✓\r\n\r\n",
    ] {
        let c = with_notes(&format!("{before}{LINE}"), modified);
        for b in [&book, &Book::default()] {
            let (back, structured, len) = round_trip(&c, b);
            assert_eq!(back, c, "{before:?}");
            assert!(structured, "{before:?}");
            // Fields from the book or not, the 160-byte line costs about 30 bytes.
            assert!(
                len < before.len() + 60 + if b.is_empty() { 40 } else { 0 },
                "{len}"
            );
        }
    }
    // Every optional part absent or present; LastUpdatedBy equal to CreatedBy; no
    // lastModifiedDateTime to count ticks from; a time before 1970.
    for line in [
        format!("SyncId={S1}"),
        format!("SyncId={S1};CreatedBy=a@contoso.com"),
        format!("SyncId={S1};LastUpdatedAt=1969-07-20T20:17:40.0000001Z"),
        format!(
            "SyncId={S1};CreatedBy=x@y;LastUpdatedAt=2026-01-01T00:00:00.0000000Z;LastUpdatedBy=x@y"
        ),
        format!("SyncId={S1};LastUpdatedBy=hub"),
    ] {
        for modified in [None, modified, Some("1601-01-01T00:00:00Z")] {
            let c = with_notes(&line, modified);
            let (back, structured, _) = round_trip(&c, &book);
            assert_eq!(back, c);
            assert!(structured, "{line}");
        }
    }
}

#[test]
fn any_other_notes_are_kept_as_text_and_come_back_byte_for_byte() {
    let book = Book::of(&[tagged("h1", S1, "Engineer")]);
    let at = "LastUpdatedAt";
    for notes in [
        // .NET's form only: fewer fraction digits, none, an offset, a local time.
        format!("SyncId={S1};{at}=2026-12-04T21:59:09.64Z"),
        format!("SyncId={S1};{at}=2026-12-04T21:59:09Z"),
        format!("SyncId={S1};{at}=2026-12-04T21:59:09.6495910+00:00"),
        format!("SyncId={S1};{at}=2026-12-04T21:59:09.6495910"),
        format!("SyncId={S1};{at}=not a time"),
        // Spacing, case, order, a trailing `;`, a repeated key, an upper-case SyncId.
        format!("SyncId = {S1};CreatedBy=a"),
        format!("syncid={S1};CreatedBy=a"),
        format!("CreatedBy=a;SyncId={S1}"),
        format!("SyncId={S1};"),
        format!("SyncId={S1};CreatedBy=a;CreatedBy=b"),
        format!("SyncId={}", S1.to_uppercase()),
        // Not the last line, or not a tag line at all.
        format!("{LINE}\r\n"),
        format!("{LINE}\r\nafter"),
        "SyncId=3f2504e0-4f89-11d3-9a0c-0305e82c33;CreatedBy=a".to_owned(),
        "SyncId=3f2504e04f8911d39a0c0305e82c3301----;CreatedBy=a".to_owned(),
        "just text".to_owned(),
        String::new(),
    ] {
        let c = with_notes(&notes, Some("2026-12-04T21:59:10Z"));
        let (back, structured, _) = round_trip(&c, &book);
        assert_eq!(back, c, "{notes:?}");
        assert!(!structured, "{notes:?}");
    }
}

#[test]
fn a_created_by_left_to_the_book_needs_the_book_and_version_1_rows_still_decode() {
    let book = Book::of(&[tagged("h1", S1, "Engineer")]);
    // The hub's entry has CreatedBy=a@contoso.com, as LINE does: left to the book.
    let c = with_notes(LINE, None);
    let (with, without) = (encode_with(&c, &book), encode_with(&c, &Book::default()));
    assert!(with.data.len() + 10 < without.data.len());
    assert_eq!(decode(&with), Err(DecodeError::Damaged));
    assert_eq!(decode(&without).unwrap(), c);

    // A version 1 row (notes as text) decodes as it did; version 1 knows no flag bit 5.
    let mut v1 = encode(&with_notes("SyncId=x;CreatedBy=y", None));
    assert_eq!(v1.data[1] & TAG_LINE, 0);
    v1.data[0] = 1;
    assert_eq!(
        decode(&v1).unwrap().personal_notes(),
        Some("SyncId=x;CreatedBy=y")
    );
    let mut v1 = without.clone();
    v1.data[0] = 1;
    assert_eq!(decode(&v1), Err(DecodeError::Damaged));
    // A structured line cut anywhere is refused.
    for cut in 2..without.data.len() {
        let mut r = without.clone();
        r.data.truncate(cut);
        assert!(decode(&r).is_err(), "truncated at {cut} decoded");
    }
}

proptest::proptest! {
    /// Notes built from tag-line-like pieces — canonical or not — come back byte for byte, with
    /// or without the book, with or without a `lastModifiedDateTime`.
    #[test]
    fn notes_round_trip_exactly(
        before in "(([a-z ;=]{0,6})(\r\n|\n|\r)){0,2}",
        upper in proptest::bool::ANY,
        created in proptest::option::of("(a@contoso\\.com|b@x|[a-z ]{0,3})"),
        secs in -5_000_000_000i64..5_000_000_000,
        nanos in 0u32..1_000_000_000,
        digits in 0usize..10,
        at in proptest::bool::ANY,
        by in proptest::option::of("(a@contoso\\.com|hub|[a-z;]{0,2})"),
        sep in "(;| ;|; )",
        after in "(|\r\n|\n| )",
        modified in proptest::option::of(-5_000_000_000i64..5_000_000_000),
        sub in 0i64..10_000_000,
    ) {
        let sync = if upper { S1.to_uppercase() } else { S1.to_owned() };
        let mut line = format!("SyncId={sync}");
        if let Some(c) = &created {
            line.push_str(&format!("{sep}CreatedBy={c}"));
        }
        if at {
            let ts = jiff::Timestamp::new(secs, nanos as i32).unwrap();
            let full = crate::tags::format_round_trip(ts);
            // `…:SS.fffffffZ` with `digits` fraction digits (0: no fraction at all).
            let (head, frac) = full.split_at(full.len() - 9);
            let frac = &frac[1..8];
            let shown = if digits == 0 { String::new() } else { format!(".{}", &frac[..digits.min(7)]) };
            line.push_str(&format!("{sep}LastUpdatedAt={head}{shown}Z"));
        }
        if let Some(b) = &by {
            line.push_str(&format!(";LastUpdatedBy={b}"));
        }
        let notes = format!("{before}{line}{after}");
        let mut c = with_notes(&notes, None);
        if let Some(m) = modified {
            c.set_last_modified(Some(jiff::Timestamp::new(m, 0).unwrap()
                .checked_add(jiff::SignedDuration::from_nanos(sub * 100)).unwrap()));
        }
        let book = Book::of(&[tagged("h1", S1, "Engineer")]);
        for b in [&book, &Book::default()] {
            let (back, _, _) = round_trip(&c, b);
            proptest::prop_assert_eq!(back, c.clone());
        }
    }
}

#[test]
fn a_copy_repeating_its_hub_line_leaves_the_line_to_the_book_entry() {
    let hub = vec![tagged("h1", S1, "Engineer")];
    let book = Book::of(&hub);
    // The copy repeats the hub's line: only the text before it and the SyncId are stored.
    let copy = tagged("u1", S1, "Engineer");
    let r = encode_with(&copy, &book);
    assert_eq!(r.data[1] & (TAG_LINE | FROM_BOOK), TAG_LINE | FROM_BOOK);
    assert!(
        r.data.len() <= 3 + "own text\r\n".len() + 1 + 16 + 1,
        "{:?}",
        r.data
    );
    let (back, structured, _) = round_trip(&copy, &book);
    assert!(structured);
    assert_eq!(back, copy);
    assert_eq!(decode(&r), Err(DecodeError::Damaged));

    // The entry keeps the line's LastUpdatedAt / LastUpdatedBy through its stored data; an entry
    // stored by version 1 (values only) still loads, and then the values come from the copy.
    let stored = book.entries();
    let mut v1 = stored.clone();
    v1[0].1 = encode_fields(&hub[0].fields);
    v1[0].1[0] = 1;
    let old = Book::from_entries(v1.iter().map(|(g, d, b)| (*g, d.as_slice(), b.as_str())));
    assert_eq!(old.len(), 1);
    assert_eq!(decode_with(&r, &old), Err(DecodeError::Damaged));
    let back = decode_with(&encode_with(&copy, &old), &old).unwrap();
    assert_eq!(back, copy);
    // Version 1 data with anything after the values is damaged: the entry is left out.
    let mut bad = stored.clone();
    bad[0].1[0] = 1;
    let none = Book::from_entries(bad.iter().map(|(g, d, b)| (*g, d.as_slice(), b.as_str())));
    assert!(none.is_empty());
    // Two sources for one value are refused.
    let mut r2 = r.clone();
    let bits_at = r2.data.len() - 1;
    r2.data[bits_at] |= 4 | 8;
    let loaded = Book::from_entries(
        stored
            .iter()
            .map(|(g, d, b)| (*g, d.as_slice(), b.as_str())),
    );
    assert_eq!(decode_with(&r2, &loaded), Err(DecodeError::Damaged));
}
