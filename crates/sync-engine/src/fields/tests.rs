use super::*;
use crate::values::{EmailAddress, FieldValue, PhysicalAddress};
use serde_json::json;

const SET: FieldSet = FieldSet::DEFAULT;

fn email(name: Option<&str>, address: &str) -> EmailAddress {
    EmailAddress {
        name: name.map(Into::into),
        address: Some(address.into()),
    }
}

fn with(pairs: &[(Field, FieldValue)]) -> ContactFields {
    let mut b = ContactFields::builder();
    for (f, v) in pairs {
        b.value(*f, v);
    }
    b.build()
}

fn text(f: Field, s: &str) -> (Field, FieldValue) {
    (f, FieldValue::Text(s.into()))
}

#[test]
fn unset_and_empty_strings_are_equal_real_edits_are_not() {
    let a = with(&[text(Field::JobTitle, "")]);
    let b = ContactFields::default();
    assert!(fields_equal(&a, &b, SET));
    let c = with(&[text(Field::JobTitle, "CEO")]);
    assert!(!fields_equal(&a, &c, SET));
    let d = with(&[text(Field::JobTitle, "ceo")]);
    assert!(!fields_equal(&c, &d, SET), "case is user data");
}

#[test]
fn email_name_missing_empty_or_address_is_no_name() {
    let base = |e| with(&[(Field::EmailAddresses, FieldValue::Emails(vec![e]))]);
    let none = base(email(None, "adele@contoso.com"));
    assert!(fields_equal(
        &none,
        &base(email(Some(""), "adele@contoso.com")),
        SET
    ));
    assert!(fields_equal(
        &none,
        &base(email(Some("Adele@Contoso.com"), "adele@contoso.com")),
        SET
    ));
    assert!(!fields_equal(
        &none,
        &base(email(Some("Adele Vance"), "adele@contoso.com")),
        SET
    ));
    assert!(!fields_equal(
        &none,
        &base(email(None, "adele@fabrikam.com")),
        SET
    ));
}

#[test]
fn collection_order_matters() {
    let list = |v: &[&str]| {
        with(&[(
            Field::BusinessPhones,
            FieldValue::List(v.iter().map(|s| (*s).to_owned()).collect()),
        )])
    };
    let (a, b) = (list(&["1", "2"]), list(&["2", "1"]));
    assert!(!fields_equal(&a, &b, SET));
    assert_eq!(diff(&a, &b, SET)[0].field, Field::BusinessPhones);
    assert_eq!(diff(&a, &b, SET)[0].old, "1; 2");
}

#[test]
fn only_the_set_is_compared() {
    let a = with(&[text(Field::NickName, "Ad")]);
    let b = ContactFields::default();
    assert!(
        fields_equal(&a, &b, SET),
        "nickName is not in the default set"
    );
    let with_nick = SET.with(Field::NickName);
    assert!(!fields_equal(&a, &b, with_nick));
    assert_eq!(diff(&b, &a, with_nick)[0].field, Field::NickName);
}

#[test]
fn addresses_compare_key_by_key_and_birthdays_by_date() {
    let set = FieldSet::ALL;
    let addr = |street: Option<&str>, city: &str| PhysicalAddress {
        street: street.map(Into::into),
        city: Some(city.into()),
        ..Default::default()
    };
    let a = with(&[(Field::HomeAddress, addr(None, "Oslo").into())]);
    let b = with(&[(Field::HomeAddress, addr(Some(""), "Oslo").into())]);
    assert!(fields_equal(&a, &b, set));
    let c = with(&[(Field::HomeAddress, addr(Some("1 Main"), "Oslo").into())]);
    assert!(!fields_equal(&a, &c, set));
    assert_eq!(Field::HomeAddress.display(&c), "1 Main, Oslo");

    let day = |s: &str| with(&[text(Field::Birthday, s)]);
    assert!(fields_equal(
        &day("1974-07-22"),
        &day("1974-07-22T11:59:00Z"),
        set
    ));
    assert!(fields_equal(
        &day("1974-07-22T00:00:00Z"),
        &day("1974-07-22T23:59:59Z"),
        set
    ));
    assert!(!fields_equal(
        &day("1974-07-22T11:59:00Z"),
        &day("1974-07-23T11:59:00Z"),
        set
    ));
    assert!(!fields_equal(
        &day("1974-07-22"),
        &ContactFields::default(),
        set
    ));
    assert!(!fields_equal(&day("garbage"), &day("garbage!"), set));
    assert!(fields_equal(&day("garbage"), &day("garbage"), set));
    assert_eq!(
        Field::Birthday.display(&day("1974-07-22T11:59:00Z")),
        "1974-07-22"
    );
}

#[test]
fn update_sends_changes_clears_and_always_display_name() {
    let old = with(&[
        text(Field::DisplayName, "Adele Vance"),
        text(Field::MobilePhone, "+1 555"),
        (Field::Categories, FieldValue::List(vec!["VIP".into()])),
        text(Field::CompanyName, "Contoso"),
    ]);
    let new = with(&[
        text(Field::DisplayName, "Adele Vance"),
        text(Field::CompanyName, "Contoso"),
    ]);
    let changes = diff(&old, &new, SET);
    assert_eq!(
        changes.iter().map(|c| c.field).collect::<Vec<_>>(),
        [Field::MobilePhone, Field::Categories]
    );
    let mut body = Map::new();
    WrittenFields::update(new, &changes).write_json(&mut body);
    assert_eq!(
        Value::Object(body),
        json!({"displayName": "Adele Vance", "mobilePhone": null, "categories": []})
    );
}

#[test]
fn a_cleared_address_is_sent_with_every_key_null() {
    let set = SET.with(Field::BusinessAddress);
    let old = with(&[(
        Field::BusinessAddress,
        PhysicalAddress {
            city: Some("Oslo".into()),
            ..Default::default()
        }
        .into(),
    )]);
    let new = ContactFields::default();
    let changes = diff(&old, &new, set);
    let mut body = Map::new();
    WrittenFields::update(new, &changes).write_json(&mut body);
    assert_eq!(
        body["businessAddress"],
        json!({"street": null, "city": null, "state": null, "countryOrRegion": null, "postalCode": null})
    );
}

#[test]
fn create_sends_only_set_fields_of_the_set() {
    let new = with(&[
        text(Field::DisplayName, "Adele"),
        text(Field::JobTitle, ""),
        text(Field::NickName, "Ad"),
        (
            Field::EmailAddresses,
            FieldValue::Emails(vec![email(None, "adele@contoso.com")]),
        ),
    ]);
    let mut body = Map::new();
    WrittenFields::create(new, SET).write_json(&mut body);
    assert_eq!(
        Value::Object(body),
        json!({"displayName": "Adele", "emailAddresses": [{"address": "adele@contoso.com"}]})
    );
}

#[test]
fn primary_email_is_first_non_empty_trimmed_lowercase() {
    let f = with(&[(
        Field::EmailAddresses,
        FieldValue::Emails(vec![email(None, "  "), email(None, " Adele@Contoso.COM ")]),
    )]);
    assert_eq!(primary_email(&f).as_deref(), Some("adele@contoso.com"));
    assert_eq!(primary_email(&ContactFields::default()), None);
}
