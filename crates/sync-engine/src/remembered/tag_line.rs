//! A remembered contact's notes when their last line is our tag line in the form we write it
//! (encoding version 2, flag bit 5; docs/state-and-deletes.md "What a copy costs"): the text
//! before the line as it is, and the line as its values — SyncId in 16 bytes, `CreatedBy` left to
//! the book entry when it is the entry's, `LastUpdatedAt` as 100-ns ticks relative to the
//! contact's `lastModifiedDateTime`, `LastUpdatedBy` left to `CreatedBy` when it is the same;
//! `LastUpdatedAt` and `LastUpdatedBy` left to the book entry when they are the hub line's (a
//! converged copy's usually are). About 160 bytes of text become about 20.
//!
//! Only a line that [`line_of`] rebuilds byte for byte from its values is stored this way (the
//! rebuild is checked when encoding), so decoding gives back exactly the notes read; any other
//! line — the script's forms, other spacing or case, a `LastUpdatedAt` not in .NET's seven-digit
//! round-trip form, a line break after it — is kept as text (version 1's way).
//!
//! Pure: no I/O, no clock.

use super::{Book, DecodeError, Reader, push_len, push_str};
use crate::memory::Guid;
use crate::tags;
use jiff::Timestamp;

/// Presence bits of a structured tag line.
const CREATED_BY: u8 = 1;
const CREATED_BY_FROM_BOOK: u8 = 2;
const UPDATED_AT: u8 = 4;
const UPDATED_BY: u8 = 8;
const UPDATED_BY_IS_CREATED_BY: u8 = 16;
const UPDATED_AT_FROM_BOOK: u8 = 32;
const UPDATED_BY_FROM_BOOK: u8 = 64;

/// Presence bits of a book entry's tag values.
const ENTRY_AT: u8 = 1;
const ENTRY_BY: u8 = 2;

fn push_zigzag(out: &mut Vec<u8>, d: i64) {
    push_len(out, ((d << 1) ^ (d >> 63)) as u64 as usize);
}

fn read_zigzag(rd: &mut Reader<'_>) -> Result<i64, DecodeError> {
    let z = u64::try_from(rd.len()?).map_err(|_| DecodeError::Damaged)?;
    Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
}

/// Appends a book entry's `LastUpdatedAt` / `LastUpdatedBy` (nothing when it has neither).
pub(super) fn push_entry(out: &mut Vec<u8>, at: Option<i64>, by: Option<&str>) {
    let bits = if at.is_some() { ENTRY_AT } else { 0 } | if by.is_some() { ENTRY_BY } else { 0 };
    if bits == 0 {
        return;
    }
    out.push(bits);
    if let Some(t) = at {
        push_zigzag(out, t);
    }
    if let Some(b) = by {
        push_str(out, b);
    }
}

/// What [`push_entry`] appended.
pub(super) fn read_entry<'a>(
    rd: &mut Reader<'a>,
) -> Result<(Option<i64>, Option<&'a str>), DecodeError> {
    let bits = rd.byte()?;
    if bits == 0 || bits & !(ENTRY_AT | ENTRY_BY) != 0 {
        return Err(DecodeError::Damaged);
    }
    let at = if bits & ENTRY_AT != 0 {
        Some(read_zigzag(rd)?)
    } else {
        None
    };
    let by = if bits & ENTRY_BY != 0 {
        Some(rd.str()?)
    } else {
        None
    };
    Ok((at, by))
}

/// A tag line's values, as stored.
struct Line<'a> {
    guid: Guid,
    created_by: Option<&'a str>,
    /// `LastUpdatedAt` in 100-ns ticks since the Unix epoch.
    updated_at: Option<i64>,
    updated_by: Option<&'a str>,
}

/// 100-ns ticks of `t` (floored, as .NET's ticks and [`tags::format_round_trip`] are).
pub(super) fn ticks(t: Timestamp) -> Option<i64> {
    i64::try_from(t.as_nanosecond().div_euclid(100)).ok()
}

fn time_of(ticks: i64) -> Option<Timestamp> {
    Timestamp::from_nanosecond(i128::from(ticks) * 100).ok()
}

/// The tag line with these values, as `tags` writes it.
fn line_of(l: &Line<'_>) -> Option<String> {
    let at = match l.updated_at {
        Some(t) => Some(tags::format_round_trip(time_of(t)?)),
        None => None,
    };
    Some(tags::tag_line_parts(
        l.guid.sync_id(),
        l.created_by,
        at.as_deref(),
        l.updated_by,
    ))
}

/// `notes` split at its last line when that line is a tag line [`line_of`] rebuilds exactly:
/// the text before it (with its line break) and its values.
fn split(notes: &str) -> Option<(&str, Line<'_>)> {
    let at = notes.rfind(['\r', '\n']).map_or(0, |i| i + 1);
    let (before, line) = notes.split_at(at);
    let t = tags::parse_tag_line(line)?;
    let updated_at = match t.last_updated_at {
        Some(s) => Some(ticks(tags::parse_timestamp(s)?)?),
        None => None,
    };
    let l = Line {
        guid: Guid::from_sync_id(t.sync_id)?,
        created_by: t.created_by,
        updated_at,
        updated_by: t.last_updated_by,
    };
    (line_of(&l)? == line).then_some((before, l))
}

/// Writes `notes` structured when their last line allows it (see the module note) and returns
/// its SyncId; `None`: nothing was written, store them as text. `base`: the contact's
/// `lastModifiedDateTime` in ticks (0 without one).
pub(super) fn push(out: &mut Vec<u8>, notes: &str, base: i64, book: &Book) -> Option<Guid> {
    let (before, l) = split(notes)?;
    let mut bits = 0u8;
    let from_book = l
        .created_by
        .is_some_and(|by| book.created_by(l.guid) == Some(by));
    if from_book {
        bits |= CREATED_BY_FROM_BOOK;
    } else if l.created_by.is_some() {
        bits |= CREATED_BY;
    }
    let (book_at, book_by) = book.updated(l.guid);
    if l.updated_at.is_some() && l.updated_at == book_at {
        bits |= UPDATED_AT_FROM_BOOK;
    } else if l.updated_at.is_some() {
        bits |= UPDATED_AT;
    }
    if l.updated_by.is_some() && l.updated_by == l.created_by {
        bits |= UPDATED_BY_IS_CREATED_BY;
    } else if l.updated_by.is_some() && l.updated_by == book_by {
        bits |= UPDATED_BY_FROM_BOOK;
    } else if l.updated_by.is_some() {
        bits |= UPDATED_BY;
    }
    push_str(out, before);
    out.extend_from_slice(&l.guid.0);
    out.push(bits);
    if let (false, Some(by)) = (from_book, l.created_by) {
        push_str(out, by);
    }
    if let (true, Some(t)) = (bits & UPDATED_AT != 0, l.updated_at) {
        // Zigzag: the difference is small and of either sign.
        push_zigzag(out, t.wrapping_sub(base));
    }
    if bits & UPDATED_BY != 0 {
        push_str(out, l.updated_by.unwrap_or_default());
    }
    Some(l.guid)
}

/// The notes [`push`] wrote, and the SyncId of their tag line.
pub(super) fn read(
    rd: &mut Reader<'_>,
    base: i64,
    book: &Book,
) -> Result<(String, Guid), DecodeError> {
    let before = rd.str()?;
    let mut g = [0u8; 16];
    for b in &mut g {
        *b = rd.byte()?;
    }
    let guid = Guid(g);
    let bits = rd.byte()?;
    let at_bits = bits & (UPDATED_AT | UPDATED_AT_FROM_BOOK);
    let by_bits = bits & (UPDATED_BY | UPDATED_BY_IS_CREATED_BY | UPDATED_BY_FROM_BOOK);
    if bits & 0x80 != 0
        || bits & (CREATED_BY | CREATED_BY_FROM_BOOK) == CREATED_BY | CREATED_BY_FROM_BOOK
        || at_bits.count_ones() > 1
        || by_bits.count_ones() > 1
    {
        return Err(DecodeError::Damaged);
    }
    let (book_at, book_by) = book.updated(guid);
    let created_by = if bits & CREATED_BY_FROM_BOOK != 0 {
        Some(book.created_by(guid).ok_or(DecodeError::Damaged)?)
    } else if bits & CREATED_BY != 0 {
        Some(rd.str()?)
    } else {
        None
    };
    let updated_at = if bits & UPDATED_AT != 0 {
        Some(base.wrapping_add(read_zigzag(rd)?))
    } else if bits & UPDATED_AT_FROM_BOOK != 0 {
        Some(book_at.ok_or(DecodeError::Damaged)?)
    } else {
        None
    };
    let updated_by = if bits & UPDATED_BY_IS_CREATED_BY != 0 {
        Some(created_by.ok_or(DecodeError::Damaged)?)
    } else if bits & UPDATED_BY_FROM_BOOK != 0 {
        Some(book_by.ok_or(DecodeError::Damaged)?)
    } else if bits & UPDATED_BY != 0 {
        Some(rd.str()?)
    } else {
        None
    };
    let line = line_of(&Line {
        guid,
        created_by,
        updated_at,
        updated_by,
    })
    .ok_or(DecodeError::Damaged)?;
    let mut notes = String::with_capacity(before.len() + line.len());
    notes.push_str(before);
    notes.push_str(&line);
    Ok((notes, guid))
}
