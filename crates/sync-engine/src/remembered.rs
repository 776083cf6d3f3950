//! A folder's contacts as the last run left them (docs/state-and-deletes.md §5, issue 14): the
//! compact, versioned encoding one contact is remembered in between runs ([`encode`], [`decode`]),
//! and the snapshot of a folder read through Graph's contact delta ([`materialize`]): the
//! remembered contacts with the round's changed contacts put in and its removed ids taken out.
//!
//! The planner keeps one code path: it plans from whole folder snapshots, however they were read.
//! A materialised snapshot is only as good as the pair it is made of — the contacts remembered
//! and the delta link stored *with them* in one commit — so the binary stores the two together
//! or neither.
//!
//! The encoding (the state file holds it as opaque bytes, `sync_state::LooseContact::data`):
//! a version byte ([`ENCODING_VERSION`]) first; a contact in a version this build does not know
//! is a [`DecodeError`], and the caller must then read that folder whole (never infer anything,
//! least of all a deletion, from a folder it cannot reproduce). This build writes version 2 and
//! still reads version 1 (the same layout without flag bit 5), so rows written before it are used
//! as they are and rewritten in version 2 by the next commit. After the byte:
//! - flags: bit 0 notes present, bit 1 Outlook's Private flag, bit 2 `lastModifiedDateTime`
//!   present, bit 3 the etag is kept verbatim (not `W/"<changeKey>"`, see [`Remembered`]), bit 4
//!   the field values are the [`Book`] entry of the SyncId of the contact's tag line (no field
//!   section follows; the book is stored in the same commit), bit 5 (version 2) the notes end in
//!   our tag line, stored as its values (`tag_line`: about 20 bytes instead of 160);
//! - with bit 2: the time's nanoseconds below the microsecond (LEB128; the state keeps
//!   microseconds, so the time comes back exact);
//! - with bit 0: the notes (LEB128 length, UTF-8); with bits 0 and 5, the text before the tag
//!   line that way, then the line's values (see `tag_line`);
//! - the *field section* (also a book entry's, after its version byte; in version 2 an entry
//!   may end in its hub line's `LastUpdatedAt` / `LastUpdatedBy`, see `tag_line`): the number
//!   of set fields, then per field its index in [`V1_FIELDS`] (one byte) and its value:
//!   a text or date as one string; a string list as a count then strings; email addresses as a
//!   count then (address, name) pairs; a physical address as its five keys
//!   ([`crate::field::ADDRESS_KEYS`] order). Strings are LEB128 length + UTF-8.
//!
//! Field indexes are the v1 table's, not [`Field`]'s discriminants, so reordering `Field` never
//! changes what a stored contact means (a test pins that every supported field has an index).
//!
//! Pure: no I/O, no clock.

use crate::field::{Field, Kind};
use crate::memory::{Guid, change_key};
use crate::model::{Contact, ContactParts};
use crate::tags;
use crate::values::{ContactFields, FieldsBuilder};
use rustc_hash::FxHashMap;

/// The encoding's version byte (see the module note).
pub const ENCODING_VERSION: u8 = 2;

/// The older version this build still reads (see the module note).
const V1: u8 = 1;

/// Version 1's field indexes: a stored field's index is its position here. Append only.
pub const V1_FIELDS: [&str; 31] = [
    "displayName",
    "givenName",
    "surname",
    "companyName",
    "jobTitle",
    "department",
    "businessPhones",
    "mobilePhone",
    "homePhones",
    "emailAddresses",
    "imAddresses",
    "categories",
    "assistantName",
    "birthday",
    "businessAddress",
    "businessHomePage",
    "children",
    "generation",
    "homeAddress",
    "initials",
    "manager",
    "middleName",
    "nickName",
    "officeLocation",
    "otherAddress",
    "profession",
    "spouseName",
    "title",
    "yomiCompanyName",
    "yomiGivenName",
    "yomiSurname",
];

const NOTES: u8 = 1;
const PRIVATE: u8 = 2;
const MODIFIED: u8 = 4;
const RAW_ETAG: u8 = 8;
const FROM_BOOK: u8 = 16;
const TAG_LINE: u8 = 32;

mod tag_line;

/// A contact as the state stores it: its id, the changeKey column, its time in microseconds
/// and the encoded rest ([`encode`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remembered {
    pub contact_id: String,
    /// The changeKey of its `W/"<changeKey>"` etag; an etag of another form is kept verbatim
    /// (flag bit 3 says which).
    pub change_key: Option<String>,
    /// `lastModifiedDateTime` in microseconds since the Unix epoch (0 when absent; flag bit 2).
    pub last_modified: i64,
    pub data: Vec<u8>,
}

/// Why a remembered contact cannot be reproduced: the folder must be read whole.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "a remembered contact is in encoding version {0}, which this synccontacts does not read"
    )]
    UnknownVersion(u8),
    #[error("a remembered contact's data is damaged")]
    Damaged,
}

fn push_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn push_str(out: &mut Vec<u8>, s: &str) {
    push_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn v1_index(f: Field) -> u8 {
    V1_FIELDS
        .iter()
        .position(|n| *n == f.json_name())
        .expect("every supported field has a v1 index (tested)") as u8
}

/// The SyncId of a contact's own tag line, when it is one the book can key (a canonical GUID).
fn book_key(c: &Contact) -> Option<Guid> {
    let tags = c.personal_notes().and_then(tags::find_tags)?;
    Guid::from_sync_id(tags.sync_id)
}

/// The field values every copy of a logical contact converged to, keyed by SyncId: a remembered
/// copy whose values are exactly its book entry's is stored without them (flag bit 4) and shares
/// the entry's block when decoded (one allocation for every such copy, compared by pointer).
#[derive(Clone, Debug, Default)]
pub struct Book {
    entries: FxHashMap<Guid, Entry>,
}

/// One SyncId's entry: the values and the hub copy's tag line values — `CreatedBy` (`""` when
/// the line has none) and `LastUpdatedAt` (in ticks) / `LastUpdatedBy`, which a copy's tag
/// line usually repeats (then left to the entry, `tag_line`).
#[derive(Clone, Debug)]
struct Entry {
    fields: ContactFields,
    created_by: Box<str>,
    updated_at: Option<i64>,
    updated_by: Option<Box<str>>,
}

impl Book {
    /// The book of a folder's contacts (the hub's, as read): each tagged contact's values under
    /// its SyncId; of two contacts with one SyncId (a data problem) the first.
    pub fn of(contacts: &[Contact]) -> Book {
        let mut entries = FxHashMap::default();
        for c in contacts {
            let Some(tags) = c.personal_notes().and_then(tags::find_tags) else {
                continue;
            };
            if let Some(g) = Guid::from_sync_id(tags.sync_id) {
                entries.entry(g).or_insert_with(|| Entry {
                    fields: c.fields.clone(),
                    created_by: tags.created_by.unwrap_or("").into(),
                    updated_at: tags
                        .last_updated_at
                        .and_then(tags::parse_timestamp)
                        .and_then(tag_line::ticks),
                    updated_by: tags.last_updated_by.map(Into::into),
                });
            }
        }
        Book { entries }
    }

    /// A book read back from its stored entries ([`Book::entries`]); an entry that does not
    /// decode is left out (a copy stored against it then fails to decode: its folder is read
    /// whole).
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = (Guid, &'a [u8], &'a str)>) -> Book {
        let entries = entries
            .into_iter()
            .filter_map(|(g, data, by)| {
                let (fields, updated_at, updated_by) = decode_entry(data).ok()?;
                let e = Entry {
                    fields,
                    created_by: by.into(),
                    updated_at,
                    updated_by: updated_by.map(Into::into),
                };
                Some((g, e))
            })
            .collect();
        Book { entries }
    }

    /// Every entry — SyncId, data (the values as [`encode_fields`] writes them, then version 2's
    /// `LastUpdatedAt` / `LastUpdatedBy` when the line has either), `CreatedBy` — sorted by
    /// SyncId.
    pub fn entries(&self) -> Vec<(Guid, Vec<u8>, String)> {
        let mut out: Vec<(Guid, Vec<u8>, String)> = self
            .entries
            .iter()
            .map(|(g, e)| {
                let mut data = encode_fields(&e.fields);
                tag_line::push_entry(&mut data, e.updated_at, e.updated_by.as_deref());
                (*g, data, e.created_by.to_string())
            })
            .collect();
        out.sort_by_key(|(g, _, _)| *g);
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn get(&self, g: Guid) -> Option<&ContactFields> {
        self.entries.get(&g).map(|e| &e.fields)
    }

    /// The entry's `CreatedBy`, when it has one.
    fn created_by(&self, g: Guid) -> Option<&str> {
        self.entries
            .get(&g)
            .map(|e| &*e.created_by)
            .filter(|by| !by.is_empty())
    }

    /// The entry's `LastUpdatedAt` (ticks) and `LastUpdatedBy`.
    fn updated(&self, g: Guid) -> (Option<i64>, Option<&str>) {
        self.entries
            .get(&g)
            .map_or((None, None), |e| (e.updated_at, e.updated_by.as_deref()))
    }
}

fn push_fields(data: &mut Vec<u8>, fields: &ContactFields) {
    let set = fields.set_fields();
    push_len(data, set.len());
    for f in set.iter() {
        data.push(v1_index(f));
        match f.kind() {
            Kind::Text | Kind::Date => push_str(data, fields.text(f)),
            Kind::TextList => {
                push_len(data, fields.list(f).count());
                for s in fields.list(f) {
                    push_str(data, s);
                }
            }
            Kind::Emails => {
                push_len(data, fields.emails().count());
                for e in fields.emails() {
                    push_str(data, e.address);
                    push_str(data, e.name);
                }
            }
            Kind::Address => {
                for p in fields.address(f).parts {
                    push_str(data, p);
                }
            }
        }
    }
}

/// A block of field values on its own (a book entry): the version byte, then the field section
/// of the module note.
pub fn encode_fields(fields: &ContactFields) -> Vec<u8> {
    let mut data = vec![ENCODING_VERSION];
    push_fields(&mut data, fields);
    data
}

/// A stored book entry's data: the values, then (version 2) the hub line's `LastUpdatedAt` /
/// `LastUpdatedBy` when it has either.
fn decode_entry(data: &[u8]) -> Result<(ContactFields, Option<i64>, Option<&str>), DecodeError> {
    let mut rd = Reader { b: data, at: 0 };
    let version = rd.byte()?;
    if version != ENCODING_VERSION && version != V1 {
        return Err(DecodeError::UnknownVersion(version));
    }
    let fields = read_fields(&mut rd)?;
    let (at, by) = if version == ENCODING_VERSION && rd.at < rd.b.len() {
        tag_line::read_entry(&mut rd)?
    } else {
        (None, None)
    };
    if rd.at != rd.b.len() {
        return Err(DecodeError::Damaged);
    }
    Ok((fields, at, by))
}

/// The values [`encode_fields`] made `data` from.
pub fn decode_fields(data: &[u8]) -> Result<ContactFields, DecodeError> {
    let mut rd = Reader { b: data, at: 0 };
    match rd.byte()? {
        ENCODING_VERSION | V1 => {}
        v => return Err(DecodeError::UnknownVersion(v)),
    }
    let fields = read_fields(&mut rd)?;
    if rd.at != rd.b.len() {
        return Err(DecodeError::Damaged);
    }
    Ok(fields)
}

/// A contact in the state's form (see the module note), without a book.
pub fn encode(c: &Contact) -> Remembered {
    encode_with(c, &Book::default())
}

/// A contact in the state's form; its field values are left to `book` when they are exactly
/// the book entry of its SyncId.
pub fn encode_with(c: &Contact, book: &Book) -> Remembered {
    let mut data = vec![ENCODING_VERSION, 0];
    let mut flags = 0u8;
    let (change_key_col, raw) = match c.etag() {
        Some(e) if change_key(e) != e => (Some(change_key(e).to_owned()), false),
        Some(e) => (Some(e.to_owned()), true),
        None => (None, false),
    };
    if raw {
        flags |= RAW_ETAG;
    }
    if c.private_flag() {
        flags |= PRIVATE;
    }
    let mut last_modified = 0;
    let mut base = 0;
    if let Some(t) = c.last_modified() {
        flags |= MODIFIED;
        // Floored (not `as_microsecond`, which truncates towards 0): a time before 1970 with
        // sub-microsecond ticks must come back exact too (found by `notes_round_trip_exactly`).
        let ns = t.as_nanosecond();
        last_modified = i64::try_from(ns.div_euclid(1000)).unwrap_or(0);
        base = tag_line::ticks(t).unwrap_or(0);
        push_len(&mut data, ns.rem_euclid(1000) as usize);
    }
    let mut tagged = None;
    if let Some(n) = c.personal_notes() {
        flags |= NOTES;
        tagged = tag_line::push(&mut data, n, base, book);
        if tagged.is_some() {
            flags |= TAG_LINE;
        } else {
            push_str(&mut data, n);
        }
    }
    // A structured last line is the one `book_key` would find: no second parse.
    let shared = tagged
        .or_else(|| book_key(c))
        .and_then(|g| book.get(g))
        .is_some_and(|f| f.same_block(&c.fields) || *f == c.fields);
    if shared {
        flags |= FROM_BOOK;
    } else {
        push_fields(&mut data, &c.fields);
    }
    data[1] = flags;
    Remembered {
        contact_id: c.id().to_owned(),
        change_key: change_key_col,
        last_modified,
        data,
    }
}

/// A fallible reader over the encoded bytes.
struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let v = *self.b.get(self.at).ok_or(DecodeError::Damaged)?;
        self.at += 1;
        Ok(v)
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        let mut n = 0usize;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            n |= usize::from(byte & 0x7f)
                .checked_shl(shift)
                .ok_or(DecodeError::Damaged)?;
            if byte < 0x80 {
                return Ok(n);
            }
        }
        Err(DecodeError::Damaged)
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let n = self.len()?;
        let end = self.at.checked_add(n).ok_or(DecodeError::Damaged)?;
        let s = self.b.get(self.at..end).ok_or(DecodeError::Damaged)?;
        self.at = end;
        std::str::from_utf8(s).map_err(|_| DecodeError::Damaged)
    }

    /// A count of items that each take at least one byte: never more than the bytes left.
    fn count(&mut self) -> Result<usize, DecodeError> {
        let n = self.len()?;
        if n > self.b.len() - self.at {
            return Err(DecodeError::Damaged);
        }
        Ok(n)
    }
}

/// The field section (see the module note) as a block.
fn read_fields(rd: &mut Reader<'_>) -> Result<ContactFields, DecodeError> {
    let mut b = FieldsBuilder::new();
    let n = rd.count()?;
    let mut seen = 0u64;
    for _ in 0..n {
        let i = usize::from(rd.byte()?);
        let name = V1_FIELDS.get(i).ok_or(DecodeError::Damaged)?;
        let f = Field::from_json_name(name).ok_or(DecodeError::Damaged)?;
        if seen & (1 << i) != 0 {
            return Err(DecodeError::Damaged);
        }
        seen |= 1 << i;
        match f.kind() {
            Kind::Text | Kind::Date => {
                b.text(f, rd.str()?);
            }
            Kind::TextList => {
                let k = rd.count()?;
                let items = (0..k).map(|_| rd.str()).collect::<Result<Vec<_>, _>>()?;
                b.list(f, items);
            }
            Kind::Emails => {
                let k = rd.count()?;
                let mut items = Vec::with_capacity(k);
                for _ in 0..k {
                    let address = rd.str()?;
                    let name = rd.str()?;
                    items.push((name, address));
                }
                b.emails(items);
            }
            Kind::Address => {
                let mut parts = [""; 5];
                for p in &mut parts {
                    *p = rd.str()?;
                }
                b.address(f, parts);
            }
        }
    }
    Ok(b.build())
}

/// The contact [`encode`] made `r` from; an unknown version or damaged bytes are an error (read
/// the folder whole).
pub fn decode(r: &Remembered) -> Result<Contact, DecodeError> {
    decode_with(r, &Book::default())
}

/// The contact [`encode_with`] made `r` from with `book` (the book stored in the same commit);
/// a contact whose values were left to a book entry that is not there is damaged.
pub fn decode_with(r: &Remembered, book: &Book) -> Result<Contact, DecodeError> {
    decode_parts(
        &r.contact_id,
        r.change_key.as_deref(),
        r.last_modified,
        &r.data,
        book,
    )
}

/// [`decode_with`] from a stored row's parts, borrowed (no copy of the row first: an unchanged
/// run decodes every remembered contact of the tenant).
pub fn decode_parts(
    contact_id: &str,
    change_key: Option<&str>,
    last_modified_micros: i64,
    data: &[u8],
    book: &Book,
) -> Result<Contact, DecodeError> {
    let mut rd = Reader { b: data, at: 0 };
    let known = match rd.byte()? {
        ENCODING_VERSION => NOTES | PRIVATE | MODIFIED | RAW_ETAG | FROM_BOOK | TAG_LINE,
        V1 => NOTES | PRIVATE | MODIFIED | RAW_ETAG | FROM_BOOK,
        v => return Err(DecodeError::UnknownVersion(v)),
    };
    let flags = rd.byte()?;
    if flags & !known != 0 || flags & (NOTES | TAG_LINE) == TAG_LINE {
        return Err(DecodeError::Damaged);
    }
    let mut last_modified = None;
    if flags & MODIFIED != 0 {
        let sub = rd.len()?;
        if sub >= 1000 {
            return Err(DecodeError::Damaged);
        }
        let micros = jiff::Timestamp::from_microsecond(last_modified_micros)
            .map_err(|_| DecodeError::Damaged)?;
        let t = micros
            .checked_add(jiff::SignedDuration::from_nanos(sub as i64))
            .map_err(|_| DecodeError::Damaged)?;
        last_modified = Some(t);
    }
    let mut tagged = None;
    let notes = if flags & TAG_LINE != 0 {
        let base = last_modified.and_then(tag_line::ticks).unwrap_or(0);
        let (notes, g) = tag_line::read(&mut rd, base, book)?;
        tagged = Some(g);
        Some(notes)
    } else if flags & NOTES != 0 {
        Some(rd.str()?.to_owned())
    } else {
        None
    };
    let fields = if flags & FROM_BOOK != 0 {
        let g = tagged
            .or_else(|| {
                notes
                    .as_deref()
                    .and_then(tags::find_tags)
                    .and_then(|t| Guid::from_sync_id(t.sync_id))
            })
            .ok_or(DecodeError::Damaged)?;
        book.get(g).ok_or(DecodeError::Damaged)?.clone()
    } else {
        read_fields(&mut rd)?
    };
    if rd.at != rd.b.len() {
        return Err(DecodeError::Damaged);
    }
    let etag = change_key.map(|k| {
        if flags & RAW_ETAG != 0 {
            k.to_owned()
        } else {
            format!("W/\"{k}\"")
        }
    });
    Ok(ContactParts {
        id: contact_id.to_owned(),
        etag,
        last_modified_date_time: last_modified,
        personal_notes: notes,
        private_flag: flags & PRIVATE != 0,
        fields,
    }
    .into())
}

/// Every remembered contact of a folder, or the first reason one cannot be reproduced.
pub fn decode_all(rows: &[Remembered], book: &Book) -> Result<Vec<Contact>, DecodeError> {
    rows.iter().map(|r| decode_with(r, book)).collect()
}

/// A folder's snapshot from the contacts remembered with a delta link and the round read from
/// that link: every remembered contact, a `changed` one replacing the contact of its id (or
/// added, after the others, in the round's order), and the contacts of the `removed` ids taken
/// out.
///
/// Idempotent, as Graph's rounds require (docs/graph-facts.md §2: an item may repeat, replays
/// happen, no order is guaranteed): a removed id never seen, or removed twice, changes nothing; a
/// contact changed twice keeps the row with the later `lastModifiedDateTime` (the later row on a
/// tie); an id both changed and removed cannot be ordered and is kept **present** — the safe
/// reading, since an absence can become a deletion and a presence never does.
pub fn materialize(
    remembered: Vec<Contact>,
    changed: Vec<Contact>,
    removed: &[String],
) -> Vec<Contact> {
    let mut latest: FxHashMap<String, Contact> = FxHashMap::default();
    let mut new_order: Vec<String> = Vec::new();
    for c in changed {
        match latest.get(c.id()) {
            Some(old) if old.modified_pair() > c.modified_pair() => {}
            Some(_) => {
                latest.insert(c.id().to_owned(), c);
            }
            None => {
                new_order.push(c.id().to_owned());
                latest.insert(c.id().to_owned(), c);
            }
        }
    }
    let gone: rustc_hash::FxHashSet<&str> = removed
        .iter()
        .map(String::as_str)
        .filter(|id| !latest.contains_key(*id))
        .collect();
    let mut out = Vec::with_capacity(remembered.len() + new_order.len());
    for c in remembered {
        if gone.contains(c.id()) {
            continue;
        }
        match latest.remove(c.id()) {
            Some(newer) => out.push(newer),
            None => out.push(c),
        }
    }
    out.extend(new_order.iter().filter_map(|id| latest.remove(id)));
    out
}

#[cfg(test)]
mod tests;
