//! Comparing fields the way Graph returns them, and building the JSON bodies that write them.
//!
//! A contact we just wrote must never look changed on the next read, or every run rewrites the
//! tenant (invariant I1). So comparison normalises exactly what Graph normalises on a round trip
//! and nothing more (a real edit must still be seen), per [`Kind`]:
//!
//! - text: `null`, a missing key and `""` are the same value (docs/graph-facts.md §9 "Empty vs
//!   null"); the value block already stores all three as "unset".
//! - string lists: unset reads `[]`; order inside, case and spaces are user data.
//! - `emailAddresses[].name`: contacts made in some UIs come back with `name` equal to the
//!   address, and Graph (the emulator too) fills an omitted name with the address
//!   (docs/graph-facts.md §9, "normalise `name` on compare"). A name that is missing, empty, or
//!   equal to the address (trimmed, case-insensitive) is "no name"; a genuinely different name is a
//!   change.
//! - physical addresses: an object holds only its set keys and unset reads `{}`
//!   (docs/graph-facts.md §9); a missing key, `null` and `""` are the same, so an address is
//!   compared key by key.
//! - `birthday`: compared by its UTC calendar date (docs/graph-facts.md §1, §9); the emulator
//!   stores a date-only value at 11:59 UTC. A value that does not parse is compared as text.
//!
//! Only the fields of the configured set ([`FieldSet`]) are compared, diffed and written.
//!
//! Bodies ([`WrittenFields`], the only place a request body's fields are made): an update sends
//! every field that differs, with `null`/`[]` for a field the winner cleared
//! (docs/compatibility.md §7 FIX: the script omitted empty fields, so clears never propagated), and
//! always `displayName`, because Graph may regenerate a custom displayName when other name fields
//! change (docs/graph-facts.md §1 "displayName caveat", contact-update.md); a create sends every
//! field of the set that is set. An address is always sent with all five keys, `null` for the unset
//! ones, so a PATCH clears a key whether Graph replaces the object or merges it key by key
//! (undocumented; both are safe this way). A birthday is sent as it was read (a full timestamp
//! keeps its instant on any mailbox). This module never decides *whether* to write; that is the
//! planner's job.

use crate::field::{ADDRESS_KEYS, Field, FieldSet, Kind};
use crate::values::{ContactFields, EmailRef, Walk, address_of, email_items, list_items};
use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// One field that differs between a target copy and the winning version, for the report
/// (`Changed: <fields> | Delta: field: 'old' -> 'new'`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// Serialised as its Graph JSON name, e.g. `mobilePhone` ([`Field::json_name`]).
    pub field: Field,
    pub old: String,
    pub new: String,
}

/// Two optional strings are equal as Graph returns them: `None` and `""` are the same value.
pub(crate) fn strings_equal(a: Option<&str>, b: Option<&str>) -> bool {
    a.unwrap_or("") == b.unwrap_or("")
}

/// The name of an email entry as Graph round-trips it: `""` when missing, empty or the address.
pub(crate) fn norm_email_name(e: EmailRef<'_>) -> &str {
    let (n, a) = (e.name.trim(), e.address.trim());
    if n.is_empty()
        || n.eq_ignore_ascii_case(a)
        || (!n.is_ascii() && n.to_lowercase() == a.to_lowercase())
    {
        ""
    } else {
        e.name
    }
}

fn emails_equal(a: &[u8], b: &[u8]) -> bool {
    let (x, y) = (email_items(a), email_items(b));
    x.clone().count() == y.clone().count()
        && x.zip(y)
            .all(|(x, y)| x.address == y.address && norm_email_name(x) == norm_email_name(y))
}

/// The UTC calendar date of a `DateTimeOffset` (or of a date-only value).
pub(crate) fn date_of(s: &str) -> Option<jiff::civil::Date> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t.to_zoned(jiff::tz::TimeZone::UTC).date());
    }
    s.parse::<jiff::civil::Date>()
        .ok()
        .filter(|_| s.len() == 10)
}

fn dates_equal(a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let (x, y) = (
        std::str::from_utf8(a).ok().and_then(date_of),
        std::str::from_utf8(b).ok().and_then(date_of),
    );
    x.is_some() && x == y
}

/// Whether two payloads of field `f` (see `values`) hold the same value as Graph round-trips it.
pub(crate) fn payload_equal(f: Field, a: &[u8], b: &[u8]) -> bool {
    match f.kind() {
        Kind::Emails => emails_equal(a, b),
        Kind::Date => dates_equal(a, b),
        // Canonical encodings: equal bytes are equal values, and unset is empty.
        Kind::Text | Kind::TextList | Kind::Address => a == b,
    }
}

impl Field {
    /// Equal as Graph would return them (see the module note).
    pub fn equal(self, a: &ContactFields, b: &ContactFields) -> bool {
        payload_equal(self, a.payload(self), b.payload(self))
    }

    /// Human-readable value for the report.
    pub fn display(self, f: &ContactFields) -> String {
        display(self, f.payload(self))
    }
}

fn display(f: Field, payload: &[u8]) -> String {
    let text = || String::from_utf8_lossy(payload).into_owned();
    match f.kind() {
        Kind::Text => text(),
        Kind::Date => std::str::from_utf8(payload)
            .ok()
            .and_then(date_of)
            .map_or_else(text, |d| d.to_string()),
        Kind::TextList => list_items(payload).collect::<Vec<_>>().join("; "),
        Kind::Emails => email_items(payload)
            .map(|e| match norm_email_name(e) {
                "" => e.address.to_owned(),
                n => format!("{n} <{}>", e.address),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Kind::Address => address_of(payload)
            .parts
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// The JSON value a write sends for `f` (see the module note): `null` for an unset text or date,
/// `[]` for an empty collection, an address with all five keys — so a clear is written
/// explicitly.
pub fn json(f: Field, values: &ContactFields) -> Value {
    let payload = values.payload(f);
    match f.kind() {
        Kind::Text | Kind::Date => match std::str::from_utf8(payload) {
            Ok(s) if !s.is_empty() => Value::String(s.to_owned()),
            _ => Value::Null,
        },
        Kind::TextList => Value::Array(
            list_items(payload)
                .map(|s| Value::String(s.to_owned()))
                .collect(),
        ),
        Kind::Emails => Value::Array(
            email_items(payload)
                .map(|e| {
                    let mut m = Map::new();
                    // Name omitted when unset: Graph may fill it from the address
                    // (docs/graph-facts.md §9); either way it compares equal.
                    if !e.name.is_empty() {
                        m.insert("name".into(), Value::String(e.name.to_owned()));
                    }
                    m.insert("address".into(), Value::String(e.address.to_owned()));
                    Value::Object(m)
                })
                .collect(),
        ),
        Kind::Address => Value::Object(
            ADDRESS_KEYS
                .iter()
                .zip(address_of(payload).parts)
                .map(|(k, v)| {
                    let v = if v.is_empty() {
                        Value::Null
                    } else {
                        Value::String(v.to_owned())
                    };
                    ((*k).to_owned(), v)
                })
                .collect(),
        ),
    }
}

/// The fields of `set` one write sends and their values: the single builder of request bodies'
/// fields, for production and tests alike.
///
/// The values are the winner's block, shared by every write of one logical contact (an `Arc`
/// clone); the JSON is only made when the write is sent ([`WrittenFields::write_json`]).
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenFields {
    values: ContactFields,
    sent: FieldSet,
}

impl WrittenFields {
    /// A new contact: every field of `set` that `values` has set (unset ones are simply absent on
    /// a new item).
    pub fn create(values: ContactFields, set: FieldSet) -> Self {
        let sent = values.set_fields().intersection(set);
        WrittenFields { values, sent }
    }

    /// An update to `values` of a copy that differs by `changes` ([`diff`]): every changed field
    /// (clears as `null`/`[]`/an address of nulls) and always `displayName` (docs/graph-facts.md §1
    /// displayName caveat).
    pub fn update(values: ContactFields, changes: &[FieldChange]) -> Self {
        let changed = changes.iter().map(|c| c.field);
        let sent = FieldSet::of(std::iter::once(Field::DisplayName).chain(changed));
        WrittenFields { values, sent }
    }

    /// Which fields are sent.
    pub fn sent(&self) -> FieldSet {
        self.sent
    }

    /// The values written (for the sent fields; the others are not written).
    pub fn values(&self) -> &ContactFields {
        &self.values
    }

    /// Adds every sent field to a request body, as [`json`] writes it.
    pub fn write_json(&self, body: &mut Map<String, Value>) {
        for f in self.sent.iter() {
            body.insert(f.json_name().into(), json(f, &self.values));
        }
    }

    /// Whether `fields` (a contact as read back) hold every sent value, compared as Graph
    /// round-trips them ([`Field::equal`], the planner's comparison).
    pub fn held_by(&self, fields: &ContactFields) -> bool {
        self.sent.iter().all(|f| f.equal(&self.values, fields))
    }
}

/// True when every field of `set` is equal as Graph would return it. Two copies sharing one block,
/// or whose blocks are byte-identical, are equal without looking at a field.
pub fn fields_equal(a: &ContactFields, b: &ContactFields, set: FieldSet) -> bool {
    if a.same_block(b) || a.bytes() == b.bytes() {
        return true;
    }
    let (mut x, mut y) = (Walk::new(a), Walk::new(b));
    // Fields unset on both sides are equal: only the others are looked at.
    let mut todo = a.either(b, set);
    while todo != 0 {
        let i = todo.trailing_zeros();
        todo &= todo - 1;
        if !payload_equal(Field::SUPPORTED[i as usize], x.at(i), y.at(i)) {
            return false;
        }
    }
    true
}

/// The fields of `set` that differ between `old` (the target copy) and `new` (the winner),
/// old → new.
pub fn diff(old: &ContactFields, new: &ContactFields, set: FieldSet) -> Vec<FieldChange> {
    let (mut x, mut y) = (Walk::new(old), Walk::new(new));
    let mut todo = old.either(new, set);
    // Sized exactly: a plan keeps one of these per update (hundreds of thousands), usually with
    // one or two changes.
    let mut changes: Vec<FieldChange> = Vec::new();
    while todo != 0 {
        let i = todo.trailing_zeros();
        todo &= todo - 1;
        let f = Field::SUPPORTED[i as usize];
        let (a, b) = (x.at(i), y.at(i));
        if !payload_equal(f, a, b) {
            changes.reserve_exact(1);
            changes.push(FieldChange {
                field: f,
                old: display(f, a),
                new: display(f, b),
            });
        }
    }
    changes
}

/// Primary email (docs/compatibility.md §6): the first non-empty `emailAddresses[].address`,
/// trimmed and lower-cased. Borrowed when already lower-case, so indexing a million contacts stays
/// cheap.
pub fn primary_email(f: &ContactFields) -> Option<Cow<'_, str>> {
    let a = f
        .emails()
        .map(|e| e.address.trim())
        .find(|a| !a.is_empty())?;
    Some(lower(a))
}

fn lower(s: &str) -> Cow<'_, str> {
    if has_upper(s) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Whether `s` has an upper-case letter (a byte scan for the usual ASCII key).
fn has_upper(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        s.chars().any(char::is_uppercase)
    }
}

/// The displayName key for contacts without email (docs/compatibility.md §6): trimmed and compared
/// case-insensitively, as the script's PowerShell hashtables do (their keys are case-insensitive).
pub fn name_key(f: &ContactFields) -> Option<Cow<'_, str>> {
    let n = f.text(Field::DisplayName).trim();
    (!n.is_empty()).then(|| lower(n))
}

#[cfg(test)]
mod tests;
