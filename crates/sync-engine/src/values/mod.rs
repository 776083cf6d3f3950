//! One contact's field values in one allocation ([`ContactFields`]), shared behind an `Arc`.
//!
//! A million contact copies each held ~13 heap strings before; now every value of a contact's
//! fields lives in one byte block: a u32 mask of the fields that are set, then for each set field,
//! in [`Field`] order, a LEB128 length and its payload:
//!
//! - text and date: the UTF-8 bytes (a date as Graph sent it);
//! - string list: the item count, then each item as length + bytes;
//! - email list: the entry count, then per entry its address and its name, each as length + bytes;
//! - physical address: its five keys ([`crate::field::ADDRESS_KEYS`] order), each as length +
//!   bytes.
//!
//! Unset values are not stored: an empty string, `null`, a missing key, `[]` and `{}` all leave
//! the field out, and a missing address key or email name is stored as `""` — exactly the
//! equivalences Graph's round trip makes (docs/graph-facts.md §9). Nothing else is normalised here
//! (an email name equal to its address, a birthday's time of day): comparison does that (`fields`),
//! so the values written back are the values read. The encoding is canonical, so two blocks with
//! the same bytes hold the same values, and two copies that share a block (a clone of the `Arc`,
//! e.g. materialised from one book entry) compare equal by pointer.
//!
//! Blocks are made by [`FieldsBuilder`] (by hand, in tests) or straight from Graph's JSON
//! ([`ContactFields`]'s `Deserialize`, used by `Contact`'s), never through an intermediate
//! `serde_json::Value`. A block never changes: [`ContactFields::set`] builds a new one. Pure data:
//! no I/O. Files: this one (the block and reading it), `build.rs` (making one), `json.rs` (Graph's
//! JSON in and out).

use crate::field::{Field, FieldSet, Kind};
use std::sync::Arc;

mod build;
mod json;
#[cfg(test)]
mod tests;

pub use build::FieldsBuilder;
#[cfg(any(test, feature = "testkit"))]
pub(crate) use json::ValueSeed;
pub(crate) use json::{Key, read_value};

/// The values of one contact's fields (see the module note). Cheap to clone (an `Arc`).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ContactFields(Arc<[u8]>);

/// One entry of `emailAddresses` (v1.0 `emailAddress`), as given to a builder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct EmailAddress {
    pub name: Option<String>,
    pub address: Option<String>,
}

/// A `physicalAddress`, as given to a builder; `None` and `""` are the same (unset).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PhysicalAddress {
    pub street: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub country_or_region: Option<String>,
    pub postal_code: Option<String>,
}

impl PhysicalAddress {
    fn parts(&self) -> [&str; 5] {
        [
            &self.street,
            &self.city,
            &self.state,
            &self.country_or_region,
            &self.postal_code,
        ]
        .map(|p| p.as_deref().unwrap_or(""))
    }
}

/// An owned value for [`ContactFields::set`] and [`FieldsBuilder::value`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldValue {
    Unset,
    /// A text or date field.
    Text(String),
    List(Vec<String>),
    Emails(Vec<EmailAddress>),
    Address(PhysicalAddress),
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> Self {
        FieldValue::Text(s.to_owned())
    }
}
impl From<String> for FieldValue {
    fn from(s: String) -> Self {
        FieldValue::Text(s)
    }
}
impl From<Option<String>> for FieldValue {
    fn from(s: Option<String>) -> Self {
        s.map_or(FieldValue::Unset, FieldValue::Text)
    }
}
impl From<Vec<String>> for FieldValue {
    fn from(v: Vec<String>) -> Self {
        FieldValue::List(v)
    }
}
impl From<Vec<EmailAddress>> for FieldValue {
    fn from(v: Vec<EmailAddress>) -> Self {
        FieldValue::Emails(v)
    }
}
impl From<PhysicalAddress> for FieldValue {
    fn from(a: PhysicalAddress) -> Self {
        FieldValue::Address(a)
    }
}

/// An email entry in a block: address and name as read (`""` when missing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmailRef<'a> {
    pub name: &'a str,
    pub address: &'a str,
}

/// A physical address in a block: its five keys as read (`""` when missing).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AddressRef<'a> {
    /// In [`crate::field::ADDRESS_KEYS`] order.
    pub parts: [&'a str; 5],
}

pub(super) fn put_len(out: &mut [u8], at: &mut usize, mut n: usize) {
    while n >= 0x80 {
        out[*at] = (n as u8) | 0x80;
        n >>= 7;
        *at += 1;
    }
    out[*at] = n as u8;
    *at += 1;
}

pub(super) fn push_len(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

pub(super) fn len_len(mut n: usize) -> usize {
    let mut k = 1;
    while n >= 0x80 {
        n >>= 7;
        k += 1;
    }
    k
}

/// Reads items (length + bytes) one after the other.
#[derive(Clone)]
pub(crate) struct Cursor<'a> {
    b: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(b: &'a [u8]) -> Self {
        Cursor { b, pos: 0 }
    }

    fn len(&mut self) -> usize {
        let mut n = 0usize;
        let mut shift = 0;
        loop {
            let byte = self.b[self.pos];
            self.pos += 1;
            n |= usize::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return n;
            }
            shift += 7;
        }
    }

    pub(crate) fn item(&mut self) -> &'a [u8] {
        let n = self.len();
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        s
    }

    pub(crate) fn str(&mut self) -> &'a str {
        as_str(self.item())
    }

    /// A list payload: its count, leaving the cursor at the first item.
    pub(crate) fn count(&mut self) -> usize {
        self.len()
    }
}

/// Blocks hold only UTF-8 the builder copied from `&str`.
fn as_str(b: &[u8]) -> &str {
    std::str::from_utf8(b).expect("a value block holds UTF-8 text")
}

impl Default for ContactFields {
    fn default() -> Self {
        FieldsBuilder::new().build()
    }
}

impl ContactFields {
    pub fn builder() -> FieldsBuilder {
        FieldsBuilder::new()
    }

    /// The fields that hold a value.
    pub fn set_fields(&self) -> FieldSet {
        FieldSet::of_bits(self.mask())
    }

    pub(super) fn mask(&self) -> u32 {
        u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    pub fn is_set(&self, f: Field) -> bool {
        self.mask() & f.bit() != 0
    }

    /// Whether both are the same block (one `Arc`): then they are certainly equal.
    pub fn same_block(&self, other: &ContactFields) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The encoded block (see the module note): equal bytes, equal values.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Heap bytes this block takes (its allocation, without the allocator's own overhead).
    pub fn heap_size(&self) -> usize {
        // Arc's two counters, then the bytes.
        2 * std::mem::size_of::<usize>() + self.0.len()
    }

    /// Every set field with its payload, in [`Field`] order.
    pub(crate) fn payloads(&self) -> impl Iterator<Item = (Field, &[u8])> + '_ {
        let mut left = self.mask();
        let mut c = Cursor::new(&self.0[4..]);
        std::iter::from_fn(move || {
            if left == 0 {
                return None;
            }
            let i = left.trailing_zeros() as usize;
            left &= left - 1;
            Some((Field::SUPPORTED[i], c.item()))
        })
    }

    /// The fields set in `self` or `other` that are in `set`, as bits.
    pub(crate) fn either(&self, other: &ContactFields, set: FieldSet) -> u32 {
        (self.mask() | other.mask()) & set.bits()
    }

    /// Every field's payload (empty when unset), indexed by field: one pass over the block.
    pub(crate) fn spans(&self) -> [&[u8]; 31] {
        let mut out: [&[u8]; 31] = [&[]; 31];
        for (f, p) in self.payloads() {
            out[f as usize] = p;
        }
        out
    }

    /// The payload of `f` (empty when unset).
    pub(crate) fn payload(&self, f: Field) -> &[u8] {
        let mask = self.mask();
        if mask & f.bit() == 0 {
            return &[];
        }
        let mut c = Cursor::new(&self.0[4..]);
        for _ in 0..(mask & (f.bit() - 1)).count_ones() {
            c.item();
        }
        c.item()
    }

    /// A text or date field's value, `""` when unset.
    pub fn text(&self, f: Field) -> &str {
        debug_assert!(matches!(f.kind(), Kind::Text | Kind::Date), "{f:?}");
        as_str(self.payload(f))
    }

    /// A string-list field's items.
    pub fn list(&self, f: Field) -> impl Iterator<Item = &str> + Clone + '_ {
        debug_assert_eq!(f.kind(), Kind::TextList, "{f:?}");
        list_items(self.payload(f))
    }

    /// `emailAddresses`, in order.
    pub fn emails(&self) -> impl Iterator<Item = EmailRef<'_>> + Clone + '_ {
        email_items(self.payload(Field::EmailAddresses))
    }

    /// An address field's keys (all `""` when unset).
    pub fn address(&self, f: Field) -> AddressRef<'_> {
        debug_assert_eq!(f.kind(), Kind::Address, "{f:?}");
        address_of(self.payload(f))
    }

    /// `f`'s value as an owned [`FieldValue`].
    pub fn value(&self, f: Field) -> FieldValue {
        if !self.is_set(f) {
            return FieldValue::Unset;
        }
        match f.kind() {
            Kind::Text | Kind::Date => FieldValue::Text(self.text(f).to_owned()),
            Kind::TextList => FieldValue::List(self.list(f).map(str::to_owned).collect()),
            Kind::Emails => FieldValue::Emails(
                self.emails()
                    .map(|e| EmailAddress {
                        name: Some(e.name.to_owned()),
                        address: Some(e.address.to_owned()),
                    })
                    .collect(),
            ),
            Kind::Address => {
                let [street, city, state, country, postal] =
                    self.address(f).parts.map(|p| Some(p.to_owned()));
                FieldValue::Address(PhysicalAddress {
                    street,
                    city,
                    state,
                    country_or_region: country,
                    postal_code: postal,
                })
            }
        }
    }

    /// Replaces `f`'s value (a new block; others sharing the old one keep it). For tests and the
    /// test double; the planner never changes a contact.
    pub fn set(&mut self, f: Field, value: impl Into<FieldValue>) {
        let mut b = FieldsBuilder::from_block(self);
        b.value(f, &value.into());
        *self = b.build();
    }

    /// A block with only the fields of `set` (the others dropped).
    pub fn only(&self, set: FieldSet) -> ContactFields {
        if self.mask() & !set.bits() == 0 {
            return self.clone();
        }
        let mut b = FieldsBuilder::new();
        for (g, payload) in self.payloads().filter(|(g, _)| set.contains(*g)) {
            b.copy_payload(g, payload);
        }
        b.build()
    }
}

pub(crate) fn list_items(payload: &[u8]) -> impl Iterator<Item = &str> + Clone + '_ {
    let mut c = Cursor::new(payload);
    let n = if payload.is_empty() { 0 } else { c.count() };
    (0..n).map(move |_| c.str())
}

pub(crate) fn email_items(payload: &[u8]) -> impl Iterator<Item = EmailRef<'_>> + Clone + '_ {
    let mut c = Cursor::new(payload);
    let n = if payload.is_empty() { 0 } else { c.count() };
    (0..n).map(move |_| {
        let address = c.str();
        let name = c.str();
        EmailRef { name, address }
    })
}

pub(crate) fn address_of(payload: &[u8]) -> AddressRef<'_> {
    if payload.is_empty() {
        return AddressRef::default();
    }
    let mut c = Cursor::new(payload);
    AddressRef {
        parts: [(); 5].map(|_| c.str()),
    }
}

/// Reads a block's payloads by field, in increasing field order only (one pass over the block
/// however many fields are asked).
pub(crate) struct Walk<'a> {
    left: u32,
    cur: Cursor<'a>,
}

impl<'a> Walk<'a> {
    pub(crate) fn new(b: &'a ContactFields) -> Self {
        Walk {
            left: b.mask(),
            cur: Cursor::new(&b.0[4..]),
        }
    }

    /// The payload of the field with discriminant `i` (empty when unset); `i` must grow from call
    /// to call.
    pub(crate) fn at(&mut self, i: u32) -> &'a [u8] {
        while self.left != 0 && self.left.trailing_zeros() < i {
            self.cur.item();
            self.left &= self.left - 1;
        }
        let bit = 1u32 << i;
        if self.left & bit == 0 {
            return &[];
        }
        self.left &= !bit;
        self.cur.item()
    }
}
