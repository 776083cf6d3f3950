//! The sync tag line kept as the last line of `personalNotes` (docs/compatibility.md §5).
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

/// A SyncId: 36 characters of hex digits and dashes, stored lower-case (docs/compatibility.md §5:
/// compare case-insensitively, write lower-case). Fixed-size so a million of them index without
/// allocating.
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
/// tag line alone if there is no text (docs/compatibility.md §5).
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
mod tests;
