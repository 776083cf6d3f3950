//! The fields fingerprint: 64 bits that stand for a copy's synced fields as we left them, so the
//! next run can tell a changeKey that Exchange bumped by itself (same fields) from a user's edit
//! (docs/graph-facts.md §1: "a changeKey bump without a field diff is not a user edit"; docs/state-and-deletes.md §2).
//!
//! **An on-disk format.** The state file stores these values; changing anything below (the field
//! set or order, the encoding, the normalisation, the hash) is a state schema change: every
//! remembered fingerprint then stops matching, which is safe (a copy then competes with its own
//! `lastModifiedDateTime`, as on a first run) but costs one run of lost write-vs-edit correction.
//!
//! xxh3-64 with seed 0 (a specified, platform-independent algorithm) of a canonical encoding, in
//! which a string is its u32 little-endian byte length then its UTF-8 bytes, and a collection its
//! u32 LE count then each item so encoded:
//!
//! - **Format 1**, the default field set (docs/compatibility.md §7, [`FieldSet::DEFAULT`]): one
//!   byte `0x01`, then each of the twelve fields in [`Field::DEFAULT`] order: a text as its value
//!   (`""` when unset); a string list as a collection; `emailAddresses` as a u32 LE count, then per
//!   entry its address and its normalised name (`""` when missing, empty or equal to the address).
//!   Unchanged since the state file's first version: the compact value block did not change a
//!   value.
//! - **Format 2**, any other field set (`Fields` configured): one byte `0x02`, then each field of
//!   the set in [`Field`] order: its JSON name as a string, then its value — text, lists and
//!   emails as in format 1, a physical address as its five keys (`""` when unset), a date as its
//!   UTC calendar date `YYYY-MM-DD` (its text when it does not parse). Changing the set changes
//!   every fingerprint, so a tenant whose `Fields` changed plans its next run without
//!   write-vs-edit correction, exactly as after a lost state — safe.
//!
//! The normalisation is exactly the planner's comparison ([`crate::fields::fields_equal`]), so two
//! copies equal under it always have the same fingerprint (property-tested). Pure: no I/O.

use crate::field::{Field, FieldSet, Kind};
use crate::fields::{date_of, norm_email_name};
use crate::values::{ContactFields, address_of, email_items, list_items};

/// The format byte of the default field set's encoding (see the module note).
pub const FINGERPRINT_FORMAT: u8 = 1;
/// The format byte of any other field set's encoding.
pub const FINGERPRINT_FORMAT_SET: u8 = 2;

fn push_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

fn push_value(buf: &mut Vec<u8>, f: Field, payload: &[u8]) {
    match f.kind() {
        Kind::Text => push_str(buf, std::str::from_utf8(payload).unwrap_or_default()),
        Kind::TextList => {
            let items = list_items(payload);
            buf.extend_from_slice(&(items.clone().count() as u32).to_le_bytes());
            for item in items {
                push_str(buf, item);
            }
        }
        Kind::Emails => {
            let items = email_items(payload);
            buf.extend_from_slice(&(items.clone().count() as u32).to_le_bytes());
            for e in items {
                push_str(buf, e.address);
                push_str(buf, norm_email_name(e));
            }
        }
        Kind::Address => {
            for part in address_of(payload).parts {
                push_str(buf, part);
            }
        }
        Kind::Date => {
            let text = std::str::from_utf8(payload).unwrap_or_default();
            match date_of(text) {
                Some(d) => push_str(buf, &d.to_string()),
                None => push_str(buf, text),
            }
        }
    }
}

/// The canonical encoding the fingerprint hashes (see the module note).
fn encode(f: &ContactFields, set: FieldSet, buf: &mut Vec<u8>) {
    let spans = f.spans();
    if set == FieldSet::DEFAULT {
        buf.push(FINGERPRINT_FORMAT);
        for field in Field::DEFAULT {
            push_value(buf, field, spans[field as usize]);
        }
        return;
    }
    buf.push(FINGERPRINT_FORMAT_SET);
    for field in set.iter() {
        push_str(buf, field.json_name());
        push_value(buf, field, spans[field as usize]);
    }
}

/// The fingerprint of a copy's fields of `set` (format 1 for the default set, 2 for any other;
/// see the module note).
pub fn fingerprint(f: &ContactFields, set: FieldSet) -> u64 {
    let mut buf = Vec::with_capacity(256);
    encode(f, set, &mut buf);
    xxhash_rust::xxh3::xxh3_64(&buf)
}

/// The fingerprint of a copy's fields of the default set (format 1): the value state files
/// written before field sets existed hold.
pub fn fields_fingerprint(f: &ContactFields) -> u64 {
    fingerprint(f, FieldSet::DEFAULT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::fields_equal;
    use crate::values::{EmailAddress, FieldValue, FieldsBuilder, PhysicalAddress};
    use proptest::prelude::*;

    fn adele() -> ContactFields {
        let mut b = FieldsBuilder::new();
        b.text(Field::DisplayName, "Adele Vance")
            .text(Field::JobTitle, "Retail Manager")
            .list(Field::BusinessPhones, ["+1 425 555 0109"])
            .emails([("Adele Vance", "AdeleV@contoso.com")])
            .list(Field::Categories, ["VIP"]);
        b.build()
    }

    /// The on-disk value is pinned: if this fails, the format changed — a state schema change
    /// (bump FINGERPRINT_FORMAT and say so), never a silent one. Both values were computed
    /// independently from the format description with the reference xxHash implementation
    /// (the C library through PyPI's `xxhash` package, `xxh3_64_intdigest`), before the compact
    /// value block existed: the same values still give the same fingerprints.
    #[test]
    fn format_1_is_pinned() {
        assert_eq!(fields_fingerprint(&adele()), 0x3820_2759_0e5e_774e);
        assert_eq!(
            fields_fingerprint(&ContactFields::default()),
            0x813b_10b9_75b1_88fa
        );
    }

    /// Format 2 pinned the same way (computed with PyPI's `xxhash` from the module note):
    /// Adele with a birthday and a home address, `Fields: ["birthday", "homeAddress"]`.
    #[test]
    fn format_2_is_pinned() {
        let set = FieldSet::DEFAULT
            .with(Field::Birthday)
            .with(Field::HomeAddress);
        let mut f = adele();
        f.set(Field::Birthday, "1974-07-22T11:59:00Z");
        f.set(
            Field::HomeAddress,
            PhysicalAddress {
                city: Some("Oslo".into()),
                ..Default::default()
            },
        );
        assert_eq!(fingerprint(&f, set), FORMAT_2_ADELE);
        // The default set's fingerprint of the same contact is format 1's (extra fields ignored).
        assert_eq!(fields_fingerprint(&f), 0x3820_2759_0e5e_774e);
    }

    const FORMAT_2_ADELE: u64 = 0x45fb_3103_c765_ae2c;

    #[test]
    fn field_boundaries_are_encoded() {
        // Moving text from one field to the next must change the fingerprint.
        let mut a = ContactFields::default();
        a.set(Field::GivenName, "ab");
        a.set(Field::Surname, "c");
        let mut b = ContactFields::default();
        b.set(Field::GivenName, "a");
        b.set(Field::Surname, "bc");
        assert_ne!(fields_fingerprint(&a), fields_fingerprint(&b));
        let mut one = ContactFields::default();
        one.set(Field::BusinessPhones, vec!["1, 2".to_owned()]);
        let mut two = ContactFields::default();
        two.set(Field::BusinessPhones, vec!["1".to_owned(), " 2".to_owned()]);
        assert_ne!(fields_fingerprint(&one), fields_fingerprint(&two));
    }

    #[test]
    fn a_changed_set_changes_the_fingerprint() {
        let f = adele();
        let fp = |set| fingerprint(&f, set);
        assert_ne!(
            fp(FieldSet::DEFAULT),
            fp(FieldSet::DEFAULT.with(Field::NickName))
        );
        assert_ne!(
            fp(FieldSet::DEFAULT.with(Field::Title)),
            fp(FieldSet::DEFAULT.with(Field::NickName))
        );
    }

    fn arb_string() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            Just(Some(String::new())),
            Just(Some("a".into())),
            Just(Some("A".into())),
            Just(Some(" a".into())),
            Just(Some("x@contoso.com".into())),
            Just(Some("X@Contoso.com ".into())),
            Just(Some("héllo ✓".into())),
        ]
    }

    fn arb_date() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            Just(Some(String::new())),
            Just(Some("1974-07-22".into())),
            Just(Some("1974-07-22T11:59:00Z".into())),
            Just(Some("1974-07-22T00:00:00Z".into())),
            Just(Some("1974-07-23T11:59:00Z".into())),
            Just(Some("not a date".into())),
        ]
    }

    /// A value of `f`'s kind, drawn from a small alphabet so that equal values are frequent.
    fn arb_value(f: Field) -> BoxedStrategy<FieldValue> {
        let list = proptest::collection::vec(
            prop_oneof![
                Just("1".to_owned()),
                Just("2".to_owned()),
                Just(String::new())
            ],
            0..3,
        );
        match f.kind() {
            Kind::Text => arb_string().prop_map(FieldValue::from).boxed(),
            Kind::Date => arb_date().prop_map(FieldValue::from).boxed(),
            Kind::TextList => list.prop_map(FieldValue::List).boxed(),
            Kind::Emails => proptest::collection::vec(
                (arb_string(), arb_string())
                    .prop_map(|(name, address)| EmailAddress { name, address }),
                0..3,
            )
            .prop_map(FieldValue::Emails)
            .boxed(),
            Kind::Address => (
                arb_string(),
                arb_string(),
                prop_oneof![Just(None), Just(Some("NO".to_owned()))],
            )
                .prop_map(|(street, city, country)| {
                    FieldValue::Address(PhysicalAddress {
                        street,
                        city,
                        country_or_region: country,
                        ..Default::default()
                    })
                })
                .boxed(),
        }
    }

    /// Values for every supported field (each may still come out unset).
    pub(crate) fn arb_fields() -> impl Strategy<Value = ContactFields> {
        Field::SUPPORTED
            .iter()
            .map(|&f| arb_value(f).prop_map(move |v| (f, v)))
            .collect::<Vec<_>>()
            .prop_map(|pairs| {
                let mut b = FieldsBuilder::new();
                for (f, v) in &pairs {
                    b.value(*f, v);
                }
                b.build()
            })
    }

    fn arb_set() -> impl Strategy<Value = FieldSet> {
        prop_oneof![
            Just(FieldSet::DEFAULT),
            Just(FieldSet::ALL),
            any::<u32>().prop_map(|bits| FieldSet::DEFAULT.union(FieldSet::of_bits(bits))),
        ]
    }

    /// Two contacts that differ in at most a few fields (so that equality is common).
    fn arb_pair() -> impl Strategy<Value = (ContactFields, ContactFields)> {
        (
            arb_fields(),
            proptest::collection::vec(0..Field::SUPPORTED.len(), 0..3),
        )
            .prop_flat_map(|(a, changed)| {
                let edits: Vec<_> = changed
                    .into_iter()
                    .map(|i| {
                        let f = Field::SUPPORTED[i];
                        arb_value(f).prop_map(move |v| (f, v))
                    })
                    .collect();
                (Just(a), edits)
            })
            .prop_map(|(a, edits)| {
                let mut b = a.clone();
                for (f, v) in edits {
                    b.set(f, v);
                }
                (a, b)
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Equal under the planner's comparison ⇒ equal fingerprints; and (over this small
        /// alphabet, where collisions would show) different ⇒ different. For every field set.
        #[test]
        fn fingerprint_agrees_with_the_planners_comparison((a, b) in arb_pair(), set in arb_set()) {
            let same = fields_equal(&a, &b, set);
            prop_assert_eq!(same, fingerprint(&a, set) == fingerprint(&b, set), "{:?} vs {:?} in {:?}", a, b, set);
        }
    }
}
