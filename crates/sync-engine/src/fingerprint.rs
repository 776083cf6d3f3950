//! The fields fingerprint: 64 bits that stand for a copy's synced fields as we left them, so the
//! next run can tell a changeKey that Exchange bumped by itself (same fields) from a user's edit
//! (graph-facts §1: "a changeKey bump without a field diff is not a user edit"; design §3).
//!
//! **An on-disk format.** The state file stores these values; changing anything below (the field
//! set or order, the encoding, the normalisation, the hash) is a state schema change: every
//! remembered fingerprint then stops matching, which is safe (a copy then competes with its own
//! `lastModifiedDateTime`, as on a first run) but costs one run of lost write-vs-edit correction.
//!
//! Format 1: xxh3-64 with seed 0 (a specified, platform-independent algorithm) of
//! - one byte `0x01` (the format);
//! - then each synced field in [`Field::ALL`] order: a string as its normalised value (`""` when
//!   unset) — u32 little-endian byte length, then its UTF-8 bytes; a collection as a u32 LE count,
//!   then each item so encoded; `emailAddresses` as a u32 LE count, then per entry its address and
//!   its normalised name (`""` when missing, empty or equal to the address), each so encoded.
//!
//! The normalisation is exactly the planner's comparison ([`Field::equal`]), so two field sets
//! equal under it always have the same fingerprint (property-tested). Pure: no I/O.

use crate::fields::{Field, norm_email_name, norm_str};
use crate::model::ContactFields;

/// The format byte that starts the encoding (see the module note).
pub const FINGERPRINT_FORMAT: u8 = 1;

fn push_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

/// The canonical encoding the fingerprint hashes (see the module note).
fn encode(f: &ContactFields, buf: &mut Vec<u8>) {
    buf.push(FINGERPRINT_FORMAT);
    for field in Field::ALL {
        if let Some(s) = field.string(f) {
            push_str(buf, norm_str(s));
        } else if let Some(list) = field.list(f) {
            buf.extend_from_slice(&(list.len() as u32).to_le_bytes());
            for item in list {
                push_str(buf, item);
            }
        } else {
            buf.extend_from_slice(&(f.email_addresses.len() as u32).to_le_bytes());
            for e in &f.email_addresses {
                push_str(buf, norm_str(&e.address));
                push_str(buf, norm_email_name(e));
            }
        }
    }
}

/// The fingerprint of a copy's synced fields (format 1, see the module note).
pub fn fields_fingerprint(f: &ContactFields) -> u64 {
    let mut buf = Vec::with_capacity(256);
    encode(f, &mut buf);
    xxhash_rust::xxh3::xxh3_64(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::fields_equal;
    use crate::model::EmailAddress;
    use proptest::prelude::*;

    fn adele() -> ContactFields {
        ContactFields {
            display_name: Some("Adele Vance".into()),
            job_title: Some("Retail Manager".into()),
            business_phones: vec!["+1 425 555 0109".into()],
            email_addresses: vec![EmailAddress {
                name: Some("Adele Vance".into()),
                address: Some("AdeleV@contoso.com".into()),
            }],
            categories: vec!["VIP".into()],
            ..Default::default()
        }
    }

    /// The on-disk value is pinned: if this fails, the format changed — a state schema change
    /// (bump FINGERPRINT_FORMAT and say so), never a silent one. Both values were computed
    /// independently from the format description with the reference xxHash implementation
    /// (the C library through PyPI's `xxhash` package, `xxh3_64_intdigest`).
    #[test]
    fn format_1_is_pinned() {
        assert_eq!(fields_fingerprint(&adele()), 0x3820_2759_0e5e_774e);
        assert_eq!(
            fields_fingerprint(&ContactFields::default()),
            0x813b_10b9_75b1_88fa
        );
    }

    #[test]
    fn field_boundaries_are_encoded() {
        // Moving text from one field to the next must change the fingerprint.
        let a = ContactFields {
            given_name: Some("ab".into()),
            surname: Some("c".into()),
            ..Default::default()
        };
        let b = ContactFields {
            given_name: Some("a".into()),
            surname: Some("bc".into()),
            ..Default::default()
        };
        assert_ne!(fields_fingerprint(&a), fields_fingerprint(&b));
        let one = ContactFields {
            business_phones: vec!["1, 2".into()],
            ..Default::default()
        };
        let two = ContactFields {
            business_phones: vec!["1".into(), " 2".into()],
            ..Default::default()
        };
        assert_ne!(fields_fingerprint(&one), fields_fingerprint(&two));
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

    fn arb_fields() -> impl Strategy<Value = ContactFields> {
        let list = proptest::collection::vec(
            prop_oneof![
                Just("1".to_owned()),
                Just("2".to_owned()),
                Just(String::new())
            ],
            0..3,
        );
        let emails = proptest::collection::vec(
            (arb_string(), arb_string()).prop_map(|(name, address)| EmailAddress { name, address }),
            0..3,
        );
        (
            (arb_string(), arb_string(), arb_string(), arb_string()),
            (arb_string(), arb_string(), arb_string()),
            (list.clone(), list.clone(), list.clone(), list),
            emails,
        )
            .prop_map(
                |((dn, gn, sn, cn), (jt, dp, mp), (bp, hp, im, cat), emails)| ContactFields {
                    display_name: dn,
                    given_name: gn,
                    surname: sn,
                    company_name: cn,
                    job_title: jt,
                    department: dp,
                    mobile_phone: mp,
                    business_phones: bp,
                    home_phones: hp,
                    im_addresses: im,
                    categories: cat,
                    email_addresses: emails,
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Equal under the planner's comparison ⇒ equal fingerprints; and (over this small
        /// alphabet, where collisions would show) different ⇒ different.
        #[test]
        fn fingerprint_agrees_with_the_planners_comparison(a in arb_fields(), b in arb_fields()) {
            let same = fields_equal(&a, &b);
            prop_assert_eq!(same, fields_fingerprint(&a) == fields_fingerprint(&b), "{:?} vs {:?}", a, b);
        }
    }
}
