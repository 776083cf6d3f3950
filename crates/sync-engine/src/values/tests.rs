use super::*;
use serde_json::json;

fn read(v: serde_json::Value) -> ContactFields {
    serde_json::from_value(v).unwrap()
}

#[test]
fn graph_json_reads_into_one_block_with_unset_values_left_out() {
    let f = read(json!({
        "displayName": "Adele Vance",
        "givenName": null,
        "jobTitle": "",
        "businessPhones": ["+1 425 555 0100", ""],
        "homePhones": [],
        "emailAddresses": [{"name": "Adele", "address": "adele@contoso.com"}, {"address": "a@x"}],
        "homeAddress": {"city": "Oslo", "street": null, "extra": 1},
        "otherAddress": {},
        "businessAddress": null,
        "birthday": "1974-07-22T11:59:00Z",
        "fileAs": "Vance, Adele",
        "parentFolderId": "AAA"
    }));
    assert_eq!(
        f.set_fields().iter().collect::<Vec<_>>(),
        [
            Field::DisplayName,
            Field::BusinessPhones,
            Field::EmailAddresses,
            Field::Birthday,
            Field::HomeAddress
        ]
    );
    assert_eq!(f.text(Field::DisplayName), "Adele Vance");
    assert_eq!(f.text(Field::GivenName), "");
    assert_eq!(
        f.list(Field::BusinessPhones).collect::<Vec<_>>(),
        ["+1 425 555 0100", ""]
    );
    assert_eq!(f.list(Field::HomePhones).count(), 0);
    let e: Vec<_> = f.emails().collect();
    assert_eq!(e[0].name, "Adele");
    assert_eq!(e[1].name, "");
    assert_eq!(e[1].address, "a@x");
    assert_eq!(
        f.address(Field::HomeAddress).parts,
        ["", "Oslo", "", "", ""]
    );
    assert_eq!(f.text(Field::Birthday), "1974-07-22T11:59:00Z");
}

#[test]
fn the_encoding_is_canonical_whatever_the_key_order() {
    let a = read(
        json!({"surname": "V", "displayName": "A V", "homeAddress": {"city": "Oslo", "street": "1 Main"}}),
    );
    let b = read(
        json!({"homeAddress": {"street": "1 Main", "city": "Oslo"}, "displayName": "A V", "surname": "V", "givenName": ""}),
    );
    assert_eq!(a, b);
    let mut built = FieldsBuilder::new();
    built
        .address(Field::HomeAddress, ["1 Main", "Oslo", "", "", ""])
        .text(Field::Surname, "V")
        .text(Field::DisplayName, "A V");
    assert_eq!(built.build(), a);
}

#[test]
fn set_replaces_one_field_and_only_keeps_the_others() {
    let mut f = read(json!({"displayName": "A", "categories": ["x"], "jobTitle": "Dev"}));
    let before = f.clone();
    f.set(Field::JobTitle, "Lead");
    assert_eq!(f.text(Field::JobTitle), "Lead");
    assert_eq!(
        before.text(Field::JobTitle),
        "Dev",
        "the old block is unchanged"
    );
    f.set(Field::Categories, FieldValue::Unset);
    assert!(!f.is_set(Field::Categories));
    let only = f.only(FieldSet::of([Field::DisplayName]));
    assert_eq!(only.set_fields(), FieldSet::of([Field::DisplayName]));
    assert_eq!(only.text(Field::DisplayName), "A");
}

#[test]
fn long_values_use_multi_byte_lengths() {
    let long = "x".repeat(70_000);
    let mut b = FieldsBuilder::new();
    b.text(Field::BusinessHomePage, &long)
        .list(Field::Children, std::iter::repeat_n("kid", 300));
    let f = b.build();
    assert_eq!(f.text(Field::BusinessHomePage), long);
    assert_eq!(f.list(Field::Children).count(), 300);
}

#[test]
fn wrong_types_are_errors() {
    assert!(serde_json::from_value::<ContactFields>(json!({"displayName": 3})).is_err());
    assert!(serde_json::from_value::<ContactFields>(json!({"homeAddress": "x"})).is_err());
    assert!(serde_json::from_value::<ContactFields>(json!({"categories": "x"})).is_err());
}
