//! Comparing synced fields the way Graph returns them, and building the JSON bodies that write them.
//!
//! A contact we just wrote must never look changed on the next read, or every run rewrites the
//! tenant (invariant I1). So comparison normalises exactly what Graph normalises on a round trip
//! and nothing more (a real edit must still be seen):
//!
//! - unset strings: Graph returns `null`; an empty string we send may come back as `null` or `""`,
//!   so `null`, a missing key and `""` are the same value (graph-facts §9 "Empty vs null").
//! - unset collections come back as `[]`; the model already reads `null`/missing as empty.
//! - `emailAddresses[].name`: contacts made in some UIs come back with `name` equal to the address,
//!   and what the service does with an omitted name is unconfirmed (graph-facts §9, "normalise
//!   `name` on compare"). We treat a name that is missing, empty, or equal to the address
//!   (trimmed, case-insensitive) as "no name". A genuinely different name still counts as a change.
//!   An empty address equals a missing one, like any string.
//!
//! Nothing else is normalised: order inside collections, case and spaces are user data.
//!
//! Bodies ([`WrittenFields`], the only place a request body's fields are made): an update sends
//! every field that differs, with `null`/`[]` for a field the winner cleared (SPEC §2.7 FIX: the
//! script omitted empty fields, so clears never propagated), and always `displayName`, because
//! Graph may regenerate a custom displayName when other name fields change (graph-facts §1
//! "displayName caveat", contact-update.md); a create sends every field that is set. This module
//! never decides *whether* to write; that is the planner's job.

use crate::model::{ContactFields, EmailAddress};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::sync::Arc;

/// One field that differs between a target copy and the winning version, for the report
/// (`Changed: <fields> | Delta: field: 'old' -> 'new'`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// Serialised as its Graph JSON name, e.g. `mobilePhone` ([`Field::json_name`]).
    pub field: Field,
    pub old: String,
    pub new: String,
}

pub(crate) fn norm_str(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("")
}

/// Two optional strings are equal as Graph returns them: `None` and `""` are the same value.
pub(crate) fn strings_equal(a: Option<&str>, b: Option<&str>) -> bool {
    a.unwrap_or("") == b.unwrap_or("")
}

/// The name of an email entry as Graph round-trips it: `""` when missing, empty or the address.
pub(crate) fn norm_email_name(e: &EmailAddress) -> &str {
    let name = norm_str(&e.name);
    let (n, a) = (name.trim(), norm_str(&e.address).trim());
    if n.is_empty()
        || n.eq_ignore_ascii_case(a)
        || (!n.is_ascii() && n.to_lowercase() == a.to_lowercase())
    {
        ""
    } else {
        name
    }
}

fn emails_equal(a: &[EmailAddress], b: &[EmailAddress]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            norm_str(&x.address) == norm_str(&y.address) && norm_email_name(x) == norm_email_name(y)
        })
}

/// A synced field, to iterate the twelve of SPEC §2.7 uniformly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    DisplayName,
    GivenName,
    Surname,
    CompanyName,
    JobTitle,
    Department,
    BusinessPhones,
    MobilePhone,
    HomePhones,
    EmailAddresses,
    ImAddresses,
    Categories,
}

impl Field {
    /// In SPEC §2.7 order (the same as [`crate::SYNCED_FIELDS`]).
    pub const ALL: [Field; 12] = [
        Field::DisplayName,
        Field::GivenName,
        Field::Surname,
        Field::CompanyName,
        Field::JobTitle,
        Field::Department,
        Field::BusinessPhones,
        Field::MobilePhone,
        Field::HomePhones,
        Field::EmailAddresses,
        Field::ImAddresses,
        Field::Categories,
    ];

    pub fn json_name(self) -> &'static str {
        crate::SYNCED_FIELDS[self as usize]
    }

    /// Its bit in a [`FieldSet`] (its place in [`Field::ALL`]).
    fn bit(self) -> u16 {
        1 << self as u16
    }

    pub(crate) fn string(self, f: &ContactFields) -> Option<&Option<String>> {
        Some(match self {
            Field::DisplayName => &f.display_name,
            Field::GivenName => &f.given_name,
            Field::Surname => &f.surname,
            Field::CompanyName => &f.company_name,
            Field::JobTitle => &f.job_title,
            Field::Department => &f.department,
            Field::MobilePhone => &f.mobile_phone,
            _ => return None,
        })
    }

    pub(crate) fn list(self, f: &ContactFields) -> Option<&Vec<String>> {
        Some(match self {
            Field::BusinessPhones => &f.business_phones,
            Field::HomePhones => &f.home_phones,
            Field::ImAddresses => &f.im_addresses,
            Field::Categories => &f.categories,
            _ => return None,
        })
    }

    /// Equal as Graph would return them (see the module note).
    pub fn equal(self, a: &ContactFields, b: &ContactFields) -> bool {
        if let (Some(x), Some(y)) = (self.string(a), self.string(b)) {
            return strings_equal(x.as_deref(), y.as_deref());
        }
        if let (Some(x), Some(y)) = (self.list(a), self.list(b)) {
            return x == y;
        }
        emails_equal(&a.email_addresses, &b.email_addresses)
    }

    /// Human-readable value for the report.
    pub fn display(self, f: &ContactFields) -> String {
        if let Some(s) = self.string(f) {
            return norm_str(s).to_owned();
        }
        if let Some(list) = self.list(f) {
            return list.join("; ");
        }
        f.email_addresses
            .iter()
            .map(|e| match norm_email_name(e) {
                "" => norm_str(&e.address).to_owned(),
                n => format!("{n} <{}>", norm_str(&e.address)),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The JSON value to send: `null` for an unset string, `[]` for an empty collection, so a
    /// clear is written explicitly.
    pub fn json(self, f: &ContactFields) -> Value {
        if let Some(s) = self.string(f) {
            return match s.as_deref() {
                Some(v) if !v.is_empty() => Value::String(v.to_owned()),
                _ => Value::Null,
            };
        }
        if let Some(list) = self.list(f) {
            return Value::Array(list.iter().cloned().map(Value::String).collect());
        }
        Value::Array(
            f.email_addresses
                .iter()
                .map(|e| {
                    let mut m = Map::new();
                    // Name omitted when unset: Graph may fill it from the address (graph-facts §9);
                    // either way it compares equal.
                    if let Some(n) = e.name.as_deref().filter(|n| !n.is_empty()) {
                        m.insert("name".into(), Value::String(n.to_owned()));
                    }
                    m.insert(
                        "address".into(),
                        Value::String(norm_str(&e.address).to_owned()),
                    );
                    Value::Object(m)
                })
                .collect(),
        )
    }

    fn is_set(self, f: &ContactFields) -> bool {
        if let Some(s) = self.string(f) {
            return !norm_str(s).is_empty();
        }
        if let Some(list) = self.list(f) {
            return !list.is_empty();
        }
        !f.email_addresses.is_empty()
    }
}

impl Serialize for Field {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.json_name())
    }
}

/// Some of the synced fields (a bit per [`Field::ALL`] entry): which fields a write sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FieldSet(u16);

impl FieldSet {
    pub fn contains(self, f: Field) -> bool {
        self.0 & f.bit() != 0
    }

    /// The fields of the set, in [`Field::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(move |f| self.contains(*f))
    }

    fn of(fields: impl IntoIterator<Item = Field>) -> Self {
        FieldSet(fields.into_iter().fold(0, |m, f| m | f.bit()))
    }
}

/// The synced fields one write sends and their values: the single builder of request bodies'
/// fields, for production and tests alike.
///
/// The values are the winner's fields, shared by every write of one logical contact: a plan holds
/// up to a few hundred thousand writes and a JSON body map costs ~2 KB each, so the JSON is only
/// made when the write is sent ([`WrittenFields::write_json`]).
#[derive(Clone, Debug, PartialEq)]
pub struct WrittenFields {
    values: Arc<ContactFields>,
    sent: FieldSet,
}

impl WrittenFields {
    /// A new contact: every field `values` has set (unset ones are simply absent on a new item).
    pub fn create(values: Arc<ContactFields>) -> Self {
        let sent = FieldSet::of(Field::ALL.into_iter().filter(|f| f.is_set(&values)));
        WrittenFields { values, sent }
    }

    /// An update to `values` of a copy that differs by `changes` ([`diff`]): every changed field
    /// (clears as `null`/`[]`) and always `displayName` (graph-facts §1 displayName caveat).
    pub fn update(values: Arc<ContactFields>, changes: &[FieldChange]) -> Self {
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

    /// Adds every sent field to a request body, as [`Field::json`] writes it.
    pub fn write_json(&self, body: &mut Map<String, Value>) {
        for f in self.sent.iter() {
            body.insert(f.json_name().into(), f.json(&self.values));
        }
    }

    /// Whether `fields` (a contact as read back) hold every sent value, compared as Graph
    /// round-trips them ([`Field::equal`], the planner's comparison).
    pub fn held_by(&self, fields: &ContactFields) -> bool {
        self.sent.iter().all(|f| f.equal(&self.values, fields))
    }
}

/// True when every synced field is equal as Graph would return it.
pub fn fields_equal(a: &ContactFields, b: &ContactFields) -> bool {
    Field::ALL.iter().all(|f| f.equal(a, b))
}

/// The fields that differ between `old` (the target copy) and `new` (the winner), old → new.
pub fn diff(old: &ContactFields, new: &ContactFields) -> Vec<FieldChange> {
    let mut changes: Vec<FieldChange> = Field::ALL
        .iter()
        .filter(|f| !f.equal(old, new))
        .map(|f| FieldChange {
            field: *f,
            old: f.display(old),
            new: f.display(new),
        })
        .collect();
    // A filtered collect starts at room for four; a plan keeps one of these per update (hundreds
    // of thousands), usually with one or two changes.
    changes.shrink_to_fit();
    changes
}

/// Primary email (SPEC §2.6): the first non-empty `emailAddresses[].address`, trimmed and
/// lower-cased. Borrowed when already lower-case, so indexing a million contacts stays cheap.
pub fn primary_email(f: &ContactFields) -> Option<std::borrow::Cow<'_, str>> {
    let a = f
        .email_addresses
        .iter()
        .filter_map(|e| e.address.as_deref().map(str::trim))
        .find(|a| !a.is_empty())?;
    Some(if has_upper(a) {
        std::borrow::Cow::Owned(a.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(a)
    })
}

/// Whether `s` has an upper-case letter (a byte scan for the usual ASCII key).
fn has_upper(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes().any(|b| b.is_ascii_uppercase())
    } else {
        s.chars().any(char::is_uppercase)
    }
}

/// The displayName key for contacts without email (SPEC §2.6): trimmed and compared
/// case-insensitively, as the script's PowerShell hashtables do (their keys are case-insensitive).
pub fn name_key(f: &ContactFields) -> Option<std::borrow::Cow<'_, str>> {
    let n = f.display_name.as_deref()?.trim();
    if n.is_empty() {
        return None;
    }
    Some(if has_upper(n) {
        std::borrow::Cow::Owned(n.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn email(name: Option<&str>, address: &str) -> EmailAddress {
        EmailAddress {
            name: name.map(Into::into),
            address: Some(address.into()),
        }
    }

    #[test]
    fn unset_and_empty_strings_are_equal_real_edits_are_not() {
        let a = ContactFields {
            job_title: Some(String::new()),
            ..Default::default()
        };
        let b = ContactFields::default();
        assert!(fields_equal(&a, &b));
        let c = ContactFields {
            job_title: Some("CEO".into()),
            ..Default::default()
        };
        assert!(!fields_equal(&a, &c));
        let d = ContactFields {
            job_title: Some("ceo".into()),
            ..Default::default()
        };
        assert!(!fields_equal(&c, &d), "case is user data");
    }

    #[test]
    fn email_name_missing_empty_or_address_is_no_name() {
        let base = |e| ContactFields {
            email_addresses: vec![e],
            ..Default::default()
        };
        let none = base(email(None, "adele@contoso.com"));
        assert!(fields_equal(
            &none,
            &base(email(Some(""), "adele@contoso.com"))
        ));
        assert!(fields_equal(
            &none,
            &base(email(Some("Adele@Contoso.com"), "adele@contoso.com"))
        ));
        assert!(!fields_equal(
            &none,
            &base(email(Some("Adele Vance"), "adele@contoso.com"))
        ));
        assert!(!fields_equal(
            &none,
            &base(email(None, "adele@fabrikam.com"))
        ));
    }

    #[test]
    fn collection_order_matters() {
        let a = ContactFields {
            business_phones: vec!["1".into(), "2".into()],
            ..Default::default()
        };
        let b = ContactFields {
            business_phones: vec!["2".into(), "1".into()],
            ..Default::default()
        };
        assert!(!fields_equal(&a, &b));
        assert_eq!(diff(&a, &b)[0].field, Field::BusinessPhones);
        assert_eq!(diff(&a, &b)[0].old, "1; 2");
    }

    #[test]
    fn update_sends_changes_clears_and_always_display_name() {
        let old = ContactFields {
            display_name: Some("Adele Vance".into()),
            mobile_phone: Some("+1 555".into()),
            categories: vec!["VIP".into()],
            company_name: Some("Contoso".into()),
            ..Default::default()
        };
        let new = ContactFields {
            display_name: Some("Adele Vance".into()),
            company_name: Some("Contoso".into()),
            ..Default::default()
        };
        let changes = diff(&old, &new);
        assert_eq!(
            changes.iter().map(|c| c.field).collect::<Vec<_>>(),
            [Field::MobilePhone, Field::Categories]
        );
        let mut body = Map::new();
        WrittenFields::update(Arc::new(new), &changes).write_json(&mut body);
        assert_eq!(
            Value::Object(body),
            json!({"displayName": "Adele Vance", "mobilePhone": null, "categories": []})
        );
    }

    #[test]
    fn create_sends_only_set_fields() {
        let new = ContactFields {
            display_name: Some("Adele".into()),
            job_title: Some(String::new()),
            email_addresses: vec![email(None, "adele@contoso.com")],
            ..Default::default()
        };
        let mut body = Map::new();
        WrittenFields::create(Arc::new(new)).write_json(&mut body);
        assert_eq!(
            Value::Object(body),
            json!({"displayName": "Adele", "emailAddresses": [{"address": "adele@contoso.com"}]})
        );
    }

    #[test]
    fn primary_email_is_first_non_empty_trimmed_lowercase() {
        let f = ContactFields {
            email_addresses: vec![email(None, "  "), email(None, " Adele@Contoso.COM ")],
            ..Default::default()
        };
        assert_eq!(primary_email(&f).as_deref(), Some("adele@contoso.com"));
        assert_eq!(primary_email(&ContactFields::default()), None);
    }
}
