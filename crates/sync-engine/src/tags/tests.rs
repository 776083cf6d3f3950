use super::*;
use proptest::prelude::*;

fn sid(s: &str) -> SyncId {
    SyncId::parse(s).unwrap()
}

#[test]
fn notes_differing_only_in_line_endings_or_trailing_space_are_the_same() {
    assert!(same_notes("a\r\nSyncId=x", "a\nSyncId=x"));
    assert!(same_notes("a\n", "a"));
    assert!(same_notes("a \r\n", "a"));
    assert!(!same_notes("", "SyncId=x"));
    assert!(
        !same_notes("a\nb", "ab"),
        "a lost line break is a difference"
    );
}

#[test]
fn reads_old_two_field_line_with_upper_case_guid() {
    let p = parse("SyncId=3F2504E0-4F89-11D3-9A0C-0305E82C3301;CreatedBy=adele@contoso.com");
    assert_eq!(p.text, "");
    let t = p.tags.unwrap();
    assert_eq!(t.sync_id.as_str(), "3f2504e0-4f89-11d3-9a0c-0305e82c3301");
    assert_eq!(t.created_by.as_deref(), Some("adele@contoso.com"));
    assert_eq!(t.last_updated_at, None);
}

#[test]
fn reads_four_field_line_after_text_with_crlf() {
    let notes = "Met at Ignite\r\nSyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301;CreatedBy=adele@contoso.com;LastUpdatedAt=2026-11-27T12:00:00.1234567Z;LastUpdatedBy=hub@contoso.com";
    let p = parse(notes);
    assert_eq!(p.text, "Met at Ignite");
    let t = p.tags.unwrap();
    assert_eq!(t.last_updated_by.as_deref(), Some("hub@contoso.com"));
    assert_eq!(
        t.last_updated_at.unwrap(),
        "2026-11-27T12:00:00.1234567Z".parse::<Timestamp>().unwrap()
    );
}

#[test]
fn keys_case_insensitive_spaces_allowed_lf_and_cr() {
    for notes in [
        "a\nsyncid = 3F2504E0-4F89-11D3-9A0C-0305E82C3301 ; createdby= x@y ;",
        "a\rSYNCID=3F2504E0-4F89-11D3-9A0C-0305E82C3301;CREATEDBY =x@y",
    ] {
        let p = parse(notes);
        assert_eq!(p.text, "a", "{notes:?}");
        let t = p.tags.unwrap();
        assert_eq!(t.sync_id, sid("3f2504e0-4f89-11d3-9a0c-0305e82c3301"));
        assert_eq!(t.created_by.as_deref(), Some("x@y"));
    }
}

#[test]
fn inline_mentions_and_partial_lines_are_user_text() {
    for line in [
        "Remember: SyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301 is the old id",
        "SyncId=not-a-guid",
        "CreatedBy=me",
        "SyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301;Owner=me",
        "SyncId 3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    ] {
        let p = parse(line);
        assert_eq!(p.text, line);
        assert_eq!(p.tags, None);
    }
}

#[test]
fn reads_offsets_and_unspecified_kind_timestamps() {
    let want = "2026-11-27T12:00:00Z".parse::<Timestamp>().unwrap();
    assert_eq!(parse_timestamp("2026-11-27T13:00:00+01:00"), Some(want));
    assert_eq!(parse_timestamp("2026-11-27T12:00:00.0000000"), Some(want));
    assert_eq!(parse_timestamp("yesterday"), None);
}

#[test]
fn writes_dotnet_round_trip_form() {
    let ts: Timestamp = "2026-11-27T12:00:00.123456789Z".parse().unwrap();
    assert_eq!(format_round_trip(ts), "2026-11-27T12:00:00.1234567Z");
    let ts: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
    assert_eq!(format_round_trip(ts), "2026-01-02T03:04:05.0000000Z");
}

#[test]
fn build_appends_after_crlf_or_alone() {
    let tags = Tags {
        sync_id: sid("3F2504E0-4F89-11D3-9A0C-0305E82C3301"),
        created_by: Some("adele@contoso.com".into()),
        last_updated_at: Some("2026-11-27T12:00:00.1234567Z".parse().unwrap()),
        last_updated_by: Some("hub@contoso.com".into()),
    };
    let line = "SyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301;CreatedBy=adele@contoso.com;LastUpdatedAt=2026-11-27T12:00:00.1234567Z;LastUpdatedBy=hub@contoso.com";
    assert_eq!(build("", &tags), line);
    assert_eq!(build("hi\n", &tags), format!("hi\n\r\n{line}"));
}

#[test]
fn restamping_replaces_old_line_and_keeps_text() {
    let old = "Line 1\r\n\r\nLine 3\r\nSyncId=3F2504E0-4F89-11D3-9A0C-0305E82C3301;CreatedBy=adele@contoso.com";
    let p = parse(old);
    assert_eq!(p.text, "Line 1\r\n\r\nLine 3");
    let tags = p.tags.unwrap();
    let rebuilt = build(&p.text, &tags);
    assert_eq!(
        rebuilt,
        "Line 1\r\n\r\nLine 3\r\nSyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301;CreatedBy=adele@contoso.com"
    );
    assert_eq!(parse(&rebuilt).text, p.text);
}

#[test]
fn several_tag_lines_last_wins_and_all_are_stripped() {
    let notes = "SyncId=11111111-1111-1111-1111-111111111111\r\nhello\r\nSyncId=22222222-2222-2222-2222-222222222222";
    let p = parse(notes);
    assert_eq!(p.text, "hello");
    assert_eq!(
        p.tags.unwrap().sync_id,
        sid("22222222-2222-2222-2222-222222222222")
    );
    assert_eq!(
        find_tags(notes).unwrap().sync_id,
        sid("22222222-2222-2222-2222-222222222222")
    );
}

fn arb_tags() -> impl Strategy<Value = Tags> {
    (
        "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        proptest::option::of("[a-zA-Z0-9._@-]{1,20}"),
        proptest::option::of(0i64..4_000_000_000),
        proptest::option::of(0i32..10_000_000),
        proptest::option::of("[a-zA-Z0-9._@-]{1,20}"),
    )
        .prop_map(|(id, cb, secs, ticks, lb)| Tags {
            sync_id: SyncId::parse(&id).unwrap(),
            created_by: cb,
            last_updated_at: secs.map(|s| Timestamp::new(s, ticks.unwrap_or(0) * 100).unwrap()),
            last_updated_by: lb,
        })
}

/// Arbitrary Unicode text, biased towards line breaks, blank lines and tag-like fragments.
fn arb_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => any::<String>(),
        2 => Just("\r\n".to_owned()),
        2 => Just("\n".to_owned()),
        1 => Just("\r".to_owned()),
        1 => Just("SyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301".to_owned()),
        1 => Just(" SyncId = 3F2504E0-4F89-11D3-9A0C-0305E82C3301 ; CreatedBy=x".to_owned()),
        1 => Just("see SyncId=abc; CreatedBy=me".to_owned()),
        1 => Just("héllo wörld ✓ 日本".to_owned()),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// The tag-line parser as it was written with `str::split` (before the byte scans): the
/// reference the fast one must agree with.
fn parse_tag_line_by_split(line: &str) -> Option<TagsRef<'_>> {
    let (mut sync_id, mut created_by, mut last_updated_at, mut last_updated_by) =
        (None, None, None, None);
    for part in line.split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (key, value) = part.split_once('=')?;
        let (key, value) = (key.trim(), value.trim());
        let value = (!value.is_empty()).then_some(value);
        if key.eq_ignore_ascii_case("SyncId") {
            let id = SyncId::parse(value?)?;
            sync_id.get_or_insert(id);
        } else if key.eq_ignore_ascii_case("CreatedBy") {
            created_by = created_by.or(value);
        } else if key.eq_ignore_ascii_case("LastUpdatedAt") {
            last_updated_at = last_updated_at.or(value);
        } else if key.eq_ignore_ascii_case("LastUpdatedBy") {
            last_updated_by = last_updated_by.or(value);
        } else {
            return None;
        }
    }
    Some(TagsRef {
        sync_id: sync_id?,
        created_by,
        last_updated_at,
        last_updated_by,
    })
}

/// Lines made of tag-line pieces, separators and odd whitespace (Unicode included).
fn arb_line() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("SyncId=3f2504e0-4f89-11d3-9a0c-0305e82c3301".to_owned()),
        Just(" syncid = 3F2504E0-4F89-11D3-9A0C-0305E82C3301 ".to_owned()),
        Just("SyncId=".to_owned()),
        Just("CreatedBy=a@b".to_owned()),
        Just("LastUpdatedAt = 2026-01-05T08:00:00Z".to_owned()),
        Just("lastupdatedby=\u{a0}x\u{a0}".to_owned()),
        Just("Other=1".to_owned()),
        Just(";".to_owned()),
        Just(" ; ".to_owned()),
        Just("=".to_owned()),
        Just("\u{2003}".to_owned()),
        Just("é=✓".to_owned()),
        "[a-zA-Z=; ]{0,6}",
    ];
    proptest::collection::vec(piece, 0..7).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A tag line's values are cleaned as they always were (trimmed of whitespace, `;` and
    /// line breaks; inner `;` and line breaks dropped; empty ones left out), with or without
    /// the fast path for plain ASCII values.
    #[test]
    fn tag_line_values_are_cleaned_like_the_reference(
        a in "[ a-z;\r\n\u{a0}é.@]{0,8}", b in "[!-~]{0,8}"
    ) {
        let reference = |v: &str| {
            let clean = v.trim_matches(|c: char| c.is_whitespace() || matches!(c, ';' | '\r' | '\n'));
            clean.chars().filter(|c| !matches!(c, ';' | '\r' | '\n')).collect::<String>()
        };
        let sid = SyncId::parse("3f2504e0-4f89-11d3-9a0c-0305e82c3301").unwrap();
        let line = tag_line_parts(sid, Some(&a), None, Some(&b));
        let mut want = format!("SyncId={sid}");
        for (k, v) in [("CreatedBy", &a), ("LastUpdatedBy", &b)] {
            let v = reference(v);
            if !v.is_empty() {
                want.push_str(&format!(";{k}={v}"));
            }
        }
        prop_assert_eq!(line, want);
    }

    /// The word-at-a-time scan finds the last line break a byte scan finds.
    #[test]
    fn last_line_break_agrees_with_a_byte_scan(notes in arb_text()) {
        let b = notes.as_bytes();
        prop_assert_eq!(
            last_line_break(b),
            b.iter().rposition(|&c| c == b'\r' || c == b'\n')
        );
    }

    /// The byte-scanning parser reads every line exactly as the `split` one did.
    #[test]
    fn tag_line_parser_agrees_with_the_split_reference(line in arb_line()) {
        prop_assert_eq!(parse_tag_line(&line), parse_tag_line_by_split(&line));
    }

    /// I3 core: the text of any notes survives a rebuild, and stripping is idempotent, so a
    /// rebuilt contact parses back to the very same text and tags.
    #[test]
    fn build_then_parse_round_trips(notes in arb_text(), tags in arb_tags()) {
        let text = parse(&notes).text;
        let rebuilt = build(&text, &tags);
        let again = parse(&rebuilt);
        prop_assert_eq!(&again.text, &text);
        prop_assert_eq!(again.tags.as_ref(), Some(&tags));
        prop_assert_eq!(find_tags(&rebuilt).map(TagsRef::into_tags), Some(tags.clone()));
        // And once more: a second run rebuilding the same notes writes the same bytes.
        prop_assert_eq!(build(&again.text, &tags), rebuilt.clone());
        let at = tags.last_updated_at.map(format_round_trip);
        prop_assert_eq!(
            rebuild(Some(&notes), tags.sync_id, tags.created_by.as_deref(), at.as_deref(), tags.last_updated_by.as_deref()),
            rebuilt
        );
    }

    /// Text that holds no whole tag line is returned exactly.
    #[test]
    fn text_without_tag_lines_is_kept_exactly(text in arb_text(), tags in arb_tags()) {
        prop_assume!(lines(&text).all(|(l, _)| parse_tag_line(l).is_none()));
        prop_assert_eq!(parse(&text).text, text.clone());
        prop_assert_eq!(parse(&build(&text, &tags)).text, text);
    }
}
