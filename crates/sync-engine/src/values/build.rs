//! [`FieldsBuilder`]: how a value block is made, from values given in any order (by hand, from
//! another block, or by the JSON reader in `json`). Never reads or changes a finished block.

use super::{ContactFields, Cursor, FieldValue, len_len, push_len, put_len};
use crate::field::{Field, FieldSet, Kind};
use std::sync::Arc;

/// Makes a [`ContactFields`]: values in any order (a later value of a field replaces an earlier
/// one), unset ones ignored.
pub struct FieldsBuilder {
    pub(super) scratch: Vec<u8>,
    /// The raw parts of one object being read (an address, an email entry), in the order they
    /// came, before they are written to `scratch` in canonical order.
    pub(super) parts: Vec<u8>,
    /// Per field: (start, end, count) of its payload in `scratch`; `count` is the item count of a
    /// list (written before the items when built).
    spans: [(u32, u32, u32); 31],
    present: u32,
}

impl Default for FieldsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl FieldsBuilder {
    pub fn new() -> Self {
        FieldsBuilder {
            scratch: Vec::new(),
            parts: Vec::new(),
            spans: [(0, 0, 0); 31],
            present: 0,
        }
    }

    /// A builder holding every value of `block` (values given later replace them).
    pub(crate) fn from_block(block: &ContactFields) -> Self {
        let mut b = FieldsBuilder::new();
        for (f, payload) in block.payloads() {
            b.copy_payload(f, payload);
        }
        b
    }

    pub(super) fn mark(&self) -> u32 {
        self.scratch.len() as u32
    }

    pub(super) fn record(&mut self, f: Field, start: u32, count: u32) {
        self.spans[f as usize] = (start, self.mark(), count);
        self.present |= f.bit();
    }

    pub(super) fn drop_field(&mut self, f: Field) {
        self.present &= !f.bit();
    }

    pub(super) fn push_item(&mut self, s: &[u8]) {
        push_len(&mut self.scratch, s.len());
        self.scratch.extend_from_slice(s);
    }

    /// A text or date field; `""` leaves it unset.
    pub fn text(&mut self, f: Field, s: &str) -> &mut Self {
        debug_assert!(matches!(f.kind(), Kind::Text | Kind::Date), "{f:?}");
        self.drop_field(f);
        if !s.is_empty() {
            let start = self.mark();
            self.scratch.extend_from_slice(s.as_bytes());
            self.record(f, start, 0);
        }
        self
    }

    /// A string-list field; no item leaves it unset.
    pub fn list<'s>(&mut self, f: Field, items: impl IntoIterator<Item = &'s str>) -> &mut Self {
        debug_assert_eq!(f.kind(), Kind::TextList, "{f:?}");
        self.drop_field(f);
        let start = self.mark();
        let mut n = 0;
        for s in items {
            self.push_item(s.as_bytes());
            n += 1;
        }
        if n > 0 {
            self.record(f, start, n);
        }
        self
    }

    /// `emailAddresses` as (name, address) pairs (`""` for a missing one); none leaves it unset.
    pub fn emails<'s>(&mut self, items: impl IntoIterator<Item = (&'s str, &'s str)>) -> &mut Self {
        let f = Field::EmailAddresses;
        self.drop_field(f);
        let start = self.mark();
        let mut n = 0;
        for (name, address) in items {
            self.push_item(address.as_bytes());
            self.push_item(name.as_bytes());
            n += 1;
        }
        if n > 0 {
            self.record(f, start, n);
        }
        self
    }

    /// An address field from its keys in [`crate::field::ADDRESS_KEYS`] order; all empty leaves it unset.
    pub fn address(&mut self, f: Field, parts: [&str; 5]) -> &mut Self {
        debug_assert_eq!(f.kind(), Kind::Address, "{f:?}");
        self.drop_field(f);
        if parts.iter().any(|p| !p.is_empty()) {
            let start = self.mark();
            for p in parts {
                self.push_item(p.as_bytes());
            }
            self.record(f, start, 0);
        }
        self
    }

    /// Any field from an owned value.
    ///
    /// # Panics
    /// If the value's shape is not the field's kind (a caller bug).
    pub fn value(&mut self, f: Field, v: &FieldValue) -> &mut Self {
        match (f.kind(), v) {
            (_, FieldValue::Unset) => {
                self.drop_field(f);
                self
            }
            (Kind::Text | Kind::Date, FieldValue::Text(s)) => self.text(f, s),
            (Kind::TextList, FieldValue::List(items)) => {
                self.list(f, items.iter().map(String::as_str))
            }
            (Kind::Emails, FieldValue::Emails(items)) => self.emails(items.iter().map(|e| {
                (
                    e.name.as_deref().unwrap_or(""),
                    e.address.as_deref().unwrap_or(""),
                )
            })),
            (Kind::Address, FieldValue::Address(a)) => self.address(f, a.parts()),
            (k, v) => panic!("{} is a {k:?} field, given {v:?}", f.json_name()),
        }
    }

    /// An encoded payload taken from another block.
    pub(super) fn copy_payload(&mut self, f: Field, payload: &[u8]) {
        let start = self.mark();
        let count = match f.kind() {
            Kind::TextList | Kind::Emails => {
                let mut c = Cursor::new(payload);
                let n = c.count();
                self.scratch.extend_from_slice(&payload[c.pos..]);
                n as u32
            }
            _ => {
                self.scratch.extend_from_slice(payload);
                0
            }
        };
        self.record(f, start, count);
    }

    fn payload_len(&self, f: Field) -> usize {
        let (start, end, count) = self.spans[f as usize];
        let items = (end - start) as usize;
        match f.kind() {
            Kind::TextList | Kind::Emails => len_len(count as usize) + items,
            _ => items,
        }
    }

    /// The block, in one allocation of exactly its size.
    pub fn build(&self) -> ContactFields {
        let set = FieldSet::of_bits(self.present);
        let total: usize = 4 + set
            .iter()
            .map(|f| {
                let n = self.payload_len(f);
                len_len(n) + n
            })
            .sum::<usize>();
        // Collected from an exact-size iterator: one allocation, no copy afterwards.
        let mut block: Arc<[u8]> = std::iter::repeat_n(0u8, total).collect();
        let out = Arc::get_mut(&mut block).expect("a new Arc is unique");
        out[..4].copy_from_slice(&self.present.to_le_bytes());
        let mut at = 4;
        for f in set.iter() {
            put_len(out, &mut at, self.payload_len(f));
            let (start, end, count) = self.spans[f as usize];
            if matches!(f.kind(), Kind::TextList | Kind::Emails) {
                put_len(out, &mut at, count as usize);
            }
            let items = &self.scratch[start as usize..end as usize];
            out[at..at + items.len()].copy_from_slice(items);
            at += items.len();
        }
        debug_assert_eq!(at, total);
        ContactFields(block)
    }
}
