//! Field sets (issue 13 `Fields`): with any set, a converged tenant stays converged (I1); going
//! from one set to another writes each copy at most once, only copies that differ in the new
//! fields, and then nothing; a cleared address propagates. Through the in-memory Graph double,
//! which round-trips values as Graph does (a date-only birthday comes back at 11:59 UTC, an email
//! without name comes back named with its address).

use super::*;
use crate::field::Kind;
use crate::values::PhysicalAddress;
use proptest::prelude::*;
use std::collections::HashSet;

/// Values of field `f` drawn from a tiny alphabet (so copies often agree), by `pick` (0..4).
fn value(f: Field, pick: u64) -> FieldValue {
    let addr = |street: Option<&str>, city: &str| {
        FieldValue::Address(PhysicalAddress {
            street: street.map(Into::into),
            city: Some(city.into()),
            ..Default::default()
        })
    };
    match (f.kind(), pick) {
        (_, 0) => FieldValue::Unset,
        (Kind::Text, 1) => "a".into(),
        (Kind::Text, _) => "B".into(),
        (Kind::TextList, 1) => FieldValue::List(vec!["1".into()]),
        (Kind::TextList, _) => FieldValue::List(vec!["1".into(), "2".into()]),
        (Kind::Address, 1) => addr(None, "Oslo"),
        (Kind::Address, 2) => addr(Some(""), "Oslo"),
        (Kind::Address, _) => addr(Some("1 Main"), "Oslo"),
        (Kind::Date, 1) => "1974-07-22".into(),
        (Kind::Date, 2) => "1974-07-22T11:59:00Z".into(),
        (Kind::Date, _) => "1974-07-23T00:00:00Z".into(),
        (Kind::Emails, _) => unreachable!("emails are the matching key, set by `contact`"),
    }
}

/// A copy of person `p`: matched by email, its other fields from `bits` (2 bits per field).
fn copy_of(p: usize, folder: usize, time: i64, tagged: bool, bits: u64) -> Contact {
    let notes = tagged.then(|| format!("SyncId={p:08x}-4f89-11d3-9a0c-0305e82c3301"));
    let mut c = contact(
        &format!("m{folder}-p{p}"),
        &format!("Person {p}"),
        Some(&format!("p{p}@contoso.com")),
        Some(time),
        notes.as_deref(),
    );
    let mut b = FieldsBuilder::from_block(&c.fields);
    for (i, &f) in Field::SUPPORTED.iter().enumerate() {
        if !matches!(f, Field::DisplayName | Field::EmailAddresses) {
            b.value(f, &value(f, (bits >> (2 * i)) & 3));
        }
    }
    c.fields = b.build();
    c
}

/// Hub + 1..4 users, 1..5 persons; each folder holds a person's copy or not.
fn arb_tenant() -> impl Strategy<Value = Tenant> {
    (1usize..6, 2usize..6).prop_flat_map(|(persons, folders)| {
        proptest::collection::vec(
            proptest::collection::vec(
                (any::<bool>(), 0i64..4, any::<bool>(), any::<u64>()),
                persons,
            ),
            folders,
        )
        .prop_map(|grid| {
            let mut folders: Vec<MailboxSnapshot> = grid
                .into_iter()
                .enumerate()
                .map(|(folder, row)| {
                    let contacts = row
                        .into_iter()
                        .enumerate()
                        .filter(|(_, (present, ..))| *present)
                        .map(|(p, (_, time, tagged, bits))| copy_of(p, folder, time, tagged, bits))
                        .collect();
                    let name = if folder == 0 {
                        HUB.to_owned()
                    } else {
                        format!("user{folder}@contoso.com")
                    };
                    mbx(&name, contacts)
                })
                .collect();
            let hub = folders.remove(0);
            Tenant::new(hub, folders)
        })
    })
}

/// The default set and any of the other properties.
fn arb_set() -> impl Strategy<Value = FieldSet> {
    prop_oneof![
        Just(FieldSet::DEFAULT),
        Just(FieldSet::ALL),
        any::<u32>().prop_map(|bits| FieldSet::DEFAULT.union(FieldSet::of_bits(bits))),
    ]
}

/// One run: plan with `memory` (threaded) or without, apply as Graph would.
fn run(
    t: &mut Tenant,
    memory: &mut Option<Option<Memory>>,
    ids: &mut dyn FnMut() -> String,
) -> Plan {
    let given = memory.clone().flatten();
    let input = t.input_with(true, given, DeleteOptions::default());
    let p = plan(&input, ids);
    let results = t.apply(&p).expect("the double accepts every planned write");
    if let Some(m) = memory {
        *m = Some(next_memory(&input, &p, &results));
    }
    t.advance(jiff::SignedDuration::from_secs(3600));
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// I1 for every field set, with and without memory: after one run the tenant is converged
    /// and the second run writes nothing.
    #[test]
    fn with_any_field_set_the_second_run_writes_nothing(
        tenant in arb_tenant(), set in arb_set(), with_memory in any::<bool>()
    ) {
        let mut t = tenant;
        t.fields = set;
        let mut memory = with_memory.then_some(None);
        let mut ids = sequential_ids(0);
        run(&mut t, &mut memory, &mut ids);
        let second = run(&mut t, &mut memory, &mut ids);
        prop_assert!(second.operations.is_empty(), "second run under {:?}: {:#?}", set, second.operations);
    }

    /// Changing the set: the first run under the new set writes only copies that differ in the
    /// fields it adds, each at most once (an update of those fields), and the next writes nothing.
    #[test]
    fn changing_the_field_set_writes_each_differing_copy_once_then_nothing(
        tenant in arb_tenant(), a in arb_set(), b in arb_set(), with_memory in any::<bool>()
    ) {
        let mut t = tenant;
        t.fields = a;
        let mut memory = with_memory.then_some(None);
        let mut ids = sequential_ids(0);
        run(&mut t, &mut memory, &mut ids);
        prop_assert!(run(&mut t, &mut memory, &mut ids).is_empty(), "converged under {:?}", a);
        t.fields = b;
        let first = run(&mut t, &mut memory, &mut ids);
        let mut written = HashSet::new();
        for op in &first.operations {
            prop_assert_eq!(op.action(), Action::Update, "{:?} -> {:?}: {:#?}", a, b, op);
            prop_assert!(written.insert((op.mailbox.clone(), op.contact_id().map(str::to_owned))));
            for c in op.changes() {
                prop_assert!(b.contains(c.field) && !a.contains(c.field), "{:?} changed under {:?} -> {:?}", c, a, b);
            }
        }
        if b.intersection(a) == b {
            prop_assert!(first.is_empty(), "a set that adds nothing writes nothing");
        }
        let second = run(&mut t, &mut memory, &mut ids);
        prop_assert!(second.operations.is_empty(), "{:?} -> {:?}: {:#?}", a, b, second.operations);
    }
}

/// A cleared address (and birthday) in the newest copy reaches every other copy as a clear —
/// an address of nulls, a null birthday — and the tenant is converged after.
#[test]
fn a_cleared_address_propagates() {
    let set = FieldSet::DEFAULT
        .with(Field::BusinessAddress)
        .with(Field::Birthday);
    let with_address = |id: &str, t: i64| {
        let mut c = contact(id, "Adele", Some("adele@contoso.com"), Some(t), None);
        c.fields.set(
            Field::BusinessAddress,
            PhysicalAddress {
                street: Some("1 Main".into()),
                city: Some("Oslo".into()),
                ..Default::default()
            },
        );
        c.fields.set(Field::Birthday, "1974-07-22T11:59:00Z");
        c
    };
    let hub = with_address("h", 1);
    let mut cleared = with_address("u", 5);
    cleared
        .fields
        .set(Field::BusinessAddress, FieldValue::Unset);
    cleared.fields.set(Field::Birthday, FieldValue::Unset);
    let mut t = Tenant::new(
        mbx(HUB, vec![hub]),
        vec![
            mbx("u1@c", vec![cleared]),
            mbx("u2@c", vec![with_address("v", 2)]),
        ],
    );
    t.fields = set;
    let p = plan(&t.input(true), &mut sequential_ids(0));
    let updates: Vec<&Operation> = p
        .operations
        .iter()
        .filter(|o| o.action() == Action::Update)
        .collect();
    assert_eq!(updates.len(), 2, "{:#?}", p.operations);
    for op in &updates {
        let body = op.body();
        assert_eq!(
            body["businessAddress"],
            json!({"street": null, "city": null, "state": null, "countryOrRegion": null, "postalCode": null})
        );
        assert_eq!(body["birthday"], json!(null));
    }
    t.apply(&p).unwrap();
    for f in t.folders() {
        assert!(
            !f.contacts[0].fields.is_set(Field::BusinessAddress),
            "{}",
            f.mailbox
        );
        assert!(
            !f.contacts[0].fields.is_set(Field::Birthday),
            "{}",
            f.mailbox
        );
    }
    assert!(plan(&t.input(true), &mut sequential_ids(9)).is_empty());
}
