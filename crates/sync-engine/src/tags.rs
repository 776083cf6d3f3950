//! The sync tag line kept as the last line of `personalNotes` (SPEC §2.5).
//!
//! The old PowerShell script wrote `SyncId=<guid>;CreatedBy=<upn>` (first version) and later
//! `SyncId=<guid>;CreatedBy=<upn>;LastUpdatedAt=<utc>;LastUpdatedBy=<upn>`; both must be read so a
//! tenant can switch from the script without duplicates. This module parses and rebuilds that
//! line. It must never drop or alter a single character of the user's own note text (invariant
//! I3): only *whole* tag lines are ours — the script's habit of dropping any line that merely
//! mentions `SyncId=` is a FIX in the spec — and stripping must be idempotent, so that
//! `strip(build(strip(notes)))` is `strip(notes)` and a second run never sees a change.
//!
//! Deliberate choice beyond the spec's wording: a line counts as a tag line only if it carries a
//! well-formed `SyncId` (36 hex digits and dashes). Every line the script ever wrote does; a user's
//! own line like `CreatedBy=me` or `SyncId=todo` stays user text.

use jiff::Timestamp;
use std::fmt;

/// A SyncId: 36 characters of hex digits and dashes, stored lower-case (SPEC §2.5: compare
/// case-insensitively, write lower-case). Fixed-size so a million of them index without allocating.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SyncId([u8; 36]);

impl SyncId {
    /// Parses a SyncId value (already trimmed); `None` unless exactly 36 hex digits and dashes.
    pub fn parse(s: &str) -> Option<SyncId> {
        let b = s.as_bytes();
        if b.len() != 36 || !b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-') {
            return None;
        }
        let mut out = [0u8; 36];
        for (o, c) in out.iter_mut().zip(b) {
            *o = c.to_ascii_lowercase();
        }
        Some(SyncId(out))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits and dashes are ever stored (see `parse`).
        std::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl fmt::Display for SyncId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SyncId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SyncId({})", self.as_str())
    }
}

/// The values of one tag line. `SyncId` is mandatory (see the module note); the other three are
/// optional because the script's first version wrote only `CreatedBy`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tags {
    pub sync_id: SyncId,
    pub created_by: Option<String>,
    /// Parsed from any ISO-8601 form; `None` if absent or unreadable (it decides nothing: the
    /// planner uses `lastModifiedDateTime`).
    pub last_updated_at: Option<Timestamp>,
    pub last_updated_by: Option<String>,
}

/// Notes split into the user's text and the tags of the last tag line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedNotes {
    /// The notes with every tag line removed (and the line break the tag line was appended
    /// after, see [`parse`]). Exactly what [`build`] must be given to rebuild the notes.
    pub text: String,
    pub tags: Option<Tags>,
}

/// Borrowed view of a tag line, for the planner's hot path (no allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TagsRef<'a> {
    pub sync_id: SyncId,
    pub created_by: Option<&'a str>,
    pub last_updated_at: Option<&'a str>,
    pub last_updated_by: Option<&'a str>,
}

impl TagsRef<'_> {
    pub fn into_tags(self) -> Tags {
        Tags {
            sync_id: self.sync_id,
            created_by: self.created_by.map(str::to_owned),
            last_updated_at: self.last_updated_at.and_then(parse_timestamp),
            last_updated_by: self.last_updated_by.map(str::to_owned),
        }
    }
}

/// One line: its content and its terminator (`""` for the last line, else `\r\n`, `\n` or `\r`).
fn lines(s: &str) -> impl Iterator<Item = (&str, &str)> {
    let b = s.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= b.len() {
            return None;
        }
        let start = pos;
        let mut i = pos;
        while i < b.len() && b[i] != b'\n' && b[i] != b'\r' {
            i += 1;
        }
        let term_len = match (b.get(i), b.get(i + 1)) {
            (Some(b'\r'), Some(b'\n')) => 2,
            (Some(_), _) => 1,
            (None, _) => 0,
        };
        pos = i + term_len;
        Some((&s[start..i], &s[i..i + term_len]))
    })
}

/// `str::trim`, with the usual case — nothing to trim, the ends are ASCII graphic — decided from
/// two bytes.
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        _ => s.trim(),
    }
}

/// Parses one line as a tag line: only `;`-separated `Key=value` pairs with keys among the four
/// (case-insensitive, spaces around `=` and `;` allowed), including a well-formed SyncId.
pub fn parse_tag_line(line: &str) -> Option<TagsRef<'_>> {
    let mut sync_id = None;
    let mut created_by = None;
    let mut last_updated_at = None;
    let mut last_updated_by = None;
    // `split(';')` and `split_once('=')` by byte scans: the parts are short, and this runs for
    // every contact of a run. Both are ASCII, so every cut is on a char boundary.
    let b = line.as_bytes();
    let mut start = 0;
    while start <= b.len() {
        let end = b[start..]
            .iter()
            .position(|&c| c == b';')
            .map_or(b.len(), |i| start + i);
        let part = trim(&line[start..end]);
        start = end + 1;
        if part.is_empty() {
            // `SyncId=…;` with a trailing `;` (or doubled separators) is still the script's line.
            continue;
        }
        let eq = part.bytes().position(|c| c == b'=')?;
        let key = trim(&part[..eq]);
        let value = trim(&part[eq + 1..]);
        let value = (!value.is_empty()).then_some(value);
        // The first occurrence of a key wins; a repeated key does not disqualify the line.
        if key.eq_ignore_ascii_case("SyncId") {
            let id = SyncId::parse(value?)?;
            sync_id.get_or_insert(id);
        } else if key.eq_ignore_ascii_case("CreatedBy") {
            if created_by.is_none() {
                created_by = value;
            }
        } else if key.eq_ignore_ascii_case("LastUpdatedAt") {
            if last_updated_at.is_none() {
                last_updated_at = value;
            }
        } else if key.eq_ignore_ascii_case("LastUpdatedBy") {
            if last_updated_by.is_none() {
                last_updated_by = value;
            }
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

/// The tags of the last tag line in `notes`, without copying the text (planner hot path).
pub fn find_tags(notes: &str) -> Option<TagsRef<'_>> {
    // From the end: the tag line is normally the last line, so one line is parsed. Splitting on
    // CR and LF separately yields the same line contents as `lines` (plus empty ones, which are
    // never tag lines).
    // Fast path for that normal case: one scan for the last line break, no char searcher.
    let last = last_line_break(notes.as_bytes()).map_or(0, |i| i + 1);
    parse_tag_line(&notes[last..])
        .or_else(|| notes[..last].rsplit(['\r', '\n']).find_map(parse_tag_line))
}

/// The position of the last CR or LF, looking at 8 bytes at a time (a word holds one iff
/// `(x - 0x01…) & !x & 0x80…` is non-zero for `x` = the word XOR the byte repeated).
fn last_line_break(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let holds = |w: u64, c: u8| {
        let x = w ^ (ONES * u64::from(c));
        x.wrapping_sub(ONES) & !x & HIGH != 0
    };
    let mut end = b.len();
    while end >= 8 {
        let mut word = [0u8; 8];
        word.copy_from_slice(&b[end - 8..end]);
        let w = u64::from_le_bytes(word);
        if holds(w, b'\r') || holds(w, b'\n') {
            break;
        }
        end -= 8;
    }
    b[..end].iter().rposition(|&c| c == b'\r' || c == b'\n')
}

/// Splits notes into the user's text and the tags of the last tag line.
///
/// Every tag line is removed together with its own line break. When the removed tag line is the
/// final line (no line break after it), the line break *before* it is removed too if the line
/// before was kept: that is the separator [`build`] appends, so `parse(build(t, _)).text == t`
/// for every text `t` that holds no tag line — including texts that end in line breaks.
pub fn parse(notes: &str) -> ParsedNotes {
    let mut text = String::with_capacity(notes.len());
    let tags = strip_into(notes, &mut text);
    ParsedNotes {
        text,
        tags: tags.map(TagsRef::into_tags),
    }
}

/// Appends the user's text of `notes` to `out` (see [`parse`]); returns the last tag line's tags.
fn strip_into<'a>(notes: &'a str, out: &mut String) -> Option<TagsRef<'a>> {
    let start = out.len();
    let mut tags = None;
    // Length of the terminator of the last line copied to `out`, if the previous line was kept.
    let mut prev_kept_term: Option<usize> = None;
    for (content, term) in lines(notes) {
        if let Some(t) = parse_tag_line(content) {
            tags = Some(t);
            if let (true, Some(n)) = (term.is_empty(), prev_kept_term) {
                out.truncate((out.len() - n).max(start));
            }
            prev_kept_term = None;
        } else {
            out.push_str(content);
            out.push_str(term);
            prev_kept_term = Some(term.len());
        }
    }
    tags
}

/// The notes to write for a contact whose current notes are `notes`: its own text kept exactly,
/// then the fresh tag line — [`build`]`(parse(notes).text, tags)` in a single allocation.
pub fn rebuild(
    notes: Option<&str>,
    sync_id: SyncId,
    created_by: Option<&str>,
    last_updated_at: Option<&str>,
    last_updated_by: Option<&str>,
) -> String {
    let notes = notes.unwrap_or("");
    let mut s = String::with_capacity(notes.len() + 180);
    strip_into(notes, &mut s);
    if !s.is_empty() {
        s.push_str("\r\n");
    }
    push_tag_line(
        &mut s,
        sync_id,
        created_by,
        last_updated_at,
        last_updated_by,
    );
    // The capacity above counted the old tag line too; a plan holds hundreds of thousands of
    // these notes, so give the excess back (an in-place shrink).
    s.shrink_to_fit();
    s
}

/// [`rebuild`] for a copy whose `CreatedBy` is kept from its own last tag line, else `fallback`:
/// the notes are read once for both. Returns the notes and the `CreatedBy` written.
pub fn rebuild_keeping_created_by<'a>(
    notes: Option<&'a str>,
    sync_id: SyncId,
    fallback: &'a str,
    last_updated_at: Option<&str>,
    last_updated_by: Option<&str>,
) -> (String, &'a str) {
    let notes = notes.unwrap_or("");
    let mut s = String::with_capacity(notes.len() + 180);
    let own = strip_into(notes, &mut s).and_then(|t| t.created_by);
    let created_by = own.unwrap_or(fallback);
    if !s.is_empty() {
        s.push_str("\r\n");
    }
    push_tag_line(
        &mut s,
        sync_id,
        Some(created_by),
        last_updated_at,
        last_updated_by,
    );
    s.shrink_to_fit();
    (s, created_by)
}

/// Whether notes read back are the notes written: equal up to line endings (CRLF/LF) and trailing
/// whitespace, which Exchange may normalise; a re-write for that would be noise.
pub fn same_notes(read: &str, written: &str) -> bool {
    let norm = |s: &str| s.replace("\r\n", "\n").trim_end().to_owned();
    norm(read) == norm(written)
}

/// The user's text of `notes` (tag lines stripped); `None` notes have empty text.
pub fn user_text(notes: Option<&str>) -> String {
    notes.map(|n| parse(n).text).unwrap_or_default()
}

/// Rebuilds notes: the user's `text` exactly as given, then CRLF and the fresh tag line — or the
/// tag line alone if there is no text (SPEC §2.5).
pub fn build(text: &str, tags: &Tags) -> String {
    build_with_line(text, &tag_line(tags))
}

/// [`build`] with a tag line made already (see [`tag_line_parts`]).
pub fn build_with_line(text: &str, line: &str) -> String {
    if text.is_empty() {
        line.to_owned()
    } else {
        let mut s = String::with_capacity(text.len() + 2 + line.len());
        s.push_str(text);
        s.push_str("\r\n");
        s.push_str(line);
        s
    }
}

/// `SyncId=…;CreatedBy=…;LastUpdatedAt=…;LastUpdatedBy=…`, omitting absent values. Values lose
/// `;` and line breaks (they would end the pair or the line) and surrounding spaces (trimmed on
/// read); UPNs and object ids never contain them.
pub fn tag_line(tags: &Tags) -> String {
    let at = tags.last_updated_at.map(format_round_trip);
    tag_line_parts(
        tags.sync_id,
        tags.created_by.as_deref(),
        at.as_deref(),
        tags.last_updated_by.as_deref(),
    )
}

/// [`tag_line`] from parts, with `LastUpdatedAt` already formatted (see [`format_round_trip`]).
pub fn tag_line_parts(
    sync_id: SyncId,
    created_by: Option<&str>,
    last_updated_at: Option<&str>,
    last_updated_by: Option<&str>,
) -> String {
    let mut s = String::with_capacity(160);
    push_tag_line(
        &mut s,
        sync_id,
        created_by,
        last_updated_at,
        last_updated_by,
    );
    s
}

fn push_tag_line(
    s: &mut String,
    sync_id: SyncId,
    created_by: Option<&str>,
    last_updated_at: Option<&str>,
    last_updated_by: Option<&str>,
) {
    s.push_str("SyncId=");
    s.push_str(sync_id.as_str());
    for (key, value) in [
        ("CreatedBy", created_by),
        ("LastUpdatedAt", last_updated_at),
        ("LastUpdatedBy", last_updated_by),
    ] {
        let Some(value) = value else { continue };
        // The usual value (a UPN, a time) is plain ASCII: nothing to trim or drop.
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
            s.push(';');
            s.push_str(key);
            s.push('=');
            s.push_str(value);
            continue;
        }
        let clean =
            value.trim_matches(|c: char| c.is_whitespace() || matches!(c, ';' | '\r' | '\n'));
        if clean.is_empty() {
            continue;
        }
        s.push(';');
        s.push_str(key);
        s.push('=');
        if clean.contains([';', '\r', '\n']) {
            s.extend(clean.chars().filter(|c| !matches!(c, ';' | '\r' | '\n')));
        } else {
            s.push_str(clean);
        }
    }
}

/// .NET round-trip ("o") form of a UTC instant: `2026-11-27T12:00:00.1234567Z`, always seven
/// fractional digits (100 ns ticks; finer precision is truncated, as .NET's ticks are).
pub fn format_round_trip(ts: Timestamp) -> String {
    let dt = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:07}Z",
        dt.year(),
        dt.month(),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.subsec_nanosecond() / 100
    )
}

/// Reads any ISO-8601 / RFC 3339 instant; a value without offset (PowerShell `Get-Date -Format o`
/// on a `DateTimeKind.Unspecified` value) is taken as UTC.
pub fn parse_timestamp(s: &str) -> Option<Timestamp> {
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    let dt = s.parse::<jiff::civil::DateTime>().ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp())
}

#[cfg(test)]
mod tests {
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
}
