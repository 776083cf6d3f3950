//! The contact as the engine reads it from Graph v1.0: what matching and conflict handling need
//! (`id`, `@odata.etag`, `lastModifiedDateTime`, `personalNotes`), whether Outlook's Private flag
//! is set (`singleValueExtendedProperties`, when the read asked for PidTagSensitivity, see
//! `privacy`) and one value block with the contact's fields ([`ContactFields`], `values`).
//!
//! A contact is compact: see [`Contact`]. Graph's JSON is read straight into that shape by a hand-written `Deserialize` (no intermediate
//! `serde_json::Value`, no key allocated): supported fields go into the block (see `values` for
//! how unset values read), everything else is skipped. Which properties arrive is the `$select`'s
//! business ([`crate::FieldSet::select_list`]). `Serialize` writes Graph's shape back (tests and
//! snapshots); request bodies are made by `fields::WrittenFields`, never from here.

use crate::field::Field;
use crate::values::{FieldsBuilder, Key, read_value};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use std::fmt;

pub use crate::values::{ContactFields, EmailAddress, PhysicalAddress};

/// A contact as read from one folder of one mailbox.
///
/// Compact (56 bytes and two allocations, a million of them per run): `id`, the etag and
/// `personalNotes` share one string, `lastModifiedDateTime` is kept as seconds and nanoseconds,
/// and the fields are one shared value block. Read it through the accessors; make one from
/// [`ContactParts`] (`ContactParts { .. }.into()`).
#[derive(Clone, PartialEq, Eq)]
pub struct Contact {
    /// `id`, then the etag, then the notes.
    text: Box<str>,
    etag_at: u32,
    notes_at: u32,
    /// `lastModifiedDateTime` as seconds and nanoseconds since the Unix epoch; [`NO_TIME`] when
    /// absent (two fields, not a tuple: the struct packs to 56 bytes).
    secs: i64,
    nanos: i32,
    /// Bit 0: an etag is present; bit 1: notes are present (`Some("")` is not `None`); bit 2:
    /// Outlook's Private flag is set ([`Contact::private_flag`]).
    present: u8,
    pub fields: ContactFields,
}

/// The `modified` of a contact without `lastModifiedDateTime`: older than any time.
const NO_TIME: (i64, i32) = (i64::MIN, 0);

/// [`Contact::present`]'s bit for the Private flag.
const PRIVATE_FLAG: u8 = 4;

/// The JSON key Graph returns single-value extended properties under.
const EXTENDED: &str = "singleValueExtendedProperties";

/// A contact's parts, as plain data: to make a [`Contact`] and to take one apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContactParts {
    pub id: String,
    /// `W/"<changeKey>"`.
    pub etag: Option<String>,
    pub last_modified_date_time: Option<jiff::Timestamp>,
    pub personal_notes: Option<String>,
    /// Outlook's Private flag: PidTagSensitivity (`Integer 0x0036`) = 2 ([`Contact::private_flag`]).
    pub private_flag: bool,
    pub fields: ContactFields,
}

impl From<ContactParts> for Contact {
    fn from(p: ContactParts) -> Contact {
        let mut c = Contact::packed(
            &p.id,
            p.etag.as_deref(),
            p.personal_notes.as_deref(),
            p.fields,
        );
        c.set_last_modified(p.last_modified_date_time);
        c.set_private_flag(p.private_flag);
        c
    }
}

impl Default for Contact {
    fn default() -> Self {
        ContactParts::default().into()
    }
}

impl Contact {
    fn packed(id: &str, etag: Option<&str>, notes: Option<&str>, fields: ContactFields) -> Contact {
        let (e, n) = (etag.unwrap_or(""), notes.unwrap_or(""));
        let mut text = String::with_capacity(id.len() + e.len() + n.len());
        text.push_str(id);
        text.push_str(e);
        text.push_str(n);
        Contact {
            text: text.into_boxed_str(),
            etag_at: id.len() as u32,
            notes_at: (id.len() + e.len()) as u32,
            secs: NO_TIME.0,
            nanos: NO_TIME.1,
            present: u8::from(etag.is_some()) | (u8::from(notes.is_some()) << 1),
            fields,
        }
    }

    /// Graph's contact id (case-sensitive).
    pub fn id(&self) -> &str {
        &self.text[..self.etag_at as usize]
    }

    /// `W/"<changeKey>"`; sent back as `If-Match` so a concurrent user edit is not clobbered.
    pub fn etag(&self) -> Option<&str> {
        (self.present & 1 != 0).then(|| &self.text[self.etag_at as usize..self.notes_at as usize])
    }

    pub fn personal_notes(&self) -> Option<&str> {
        (self.present & 2 != 0).then(|| &self.text[self.notes_at as usize..])
    }

    pub fn last_modified(&self) -> Option<jiff::Timestamp> {
        (self.modified_pair() != NO_TIME)
            .then(|| jiff::Timestamp::new(self.secs, self.nanos).ok())
            .flatten()
    }

    /// `lastModifiedDateTime` as (seconds, nanoseconds), `(i64::MIN, 0)` when absent: the order
    /// of `Option<Timestamp>`, cheap to compare.
    pub(crate) fn modified_pair(&self) -> (i64, i32) {
        (self.secs, self.nanos)
    }

    /// The contact's displayName, if it has one (`""` is none).
    pub fn display_name(&self) -> Option<&str> {
        Some(self.fields.text(Field::DisplayName)).filter(|s| !s.is_empty())
    }

    /// Outlook's Private flag: the read returned PidTagSensitivity (`Integer 0x0036`, however
    /// Graph spells the id, `privacy::is_sensitivity_id`) with the value 2. False when the read
    /// did not ask for it (the hub's, a listing without the `$expand`).
    pub fn private_flag(&self) -> bool {
        self.present & PRIVATE_FLAG != 0
    }

    pub fn set_private_flag(&mut self, private: bool) {
        if private {
            self.present |= PRIVATE_FLAG;
        } else {
            self.present &= !PRIVATE_FLAG;
        }
    }

    /// Rebuilds the text with new parts, keeping the time and the flag.
    fn repacked(&self, id: &str, etag: Option<&str>, notes: Option<&str>) -> Contact {
        let mut c = Contact {
            secs: self.secs,
            nanos: self.nanos,
            ..Contact::packed(id, etag, notes, self.fields.clone())
        };
        c.set_private_flag(self.private_flag());
        c
    }

    pub fn set_id(&mut self, id: &str) {
        *self = self.repacked(id, self.etag(), self.personal_notes());
    }

    pub fn set_etag(&mut self, etag: Option<&str>) {
        *self = self.repacked(self.id(), etag, self.personal_notes());
    }

    pub fn set_personal_notes(&mut self, notes: Option<&str>) {
        *self = self.repacked(self.id(), self.etag(), notes);
    }

    pub fn set_last_modified(&mut self, t: Option<jiff::Timestamp>) {
        (self.secs, self.nanos) = t.map_or(NO_TIME, |t| (t.as_second(), t.subsec_nanosecond()));
    }

    /// Its parts as plain data.
    pub fn to_parts(&self) -> ContactParts {
        ContactParts {
            id: self.id().to_owned(),
            etag: self.etag().map(str::to_owned),
            last_modified_date_time: self.last_modified(),
            personal_notes: self.personal_notes().map(str::to_owned),
            private_flag: self.private_flag(),
            fields: self.fields.clone(),
        }
    }
}

impl fmt::Debug for Contact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contact")
            .field("id", &self.id())
            .field("etag", &self.etag())
            .field("last_modified_date_time", &self.last_modified())
            .field("personal_notes", &self.personal_notes())
            .field("private_flag", &self.private_flag())
            .field("fields", &self.fields)
            .finish()
    }
}

/// What a key of a contact object is.
enum Top {
    Id,
    Etag,
    Modified,
    Notes,
    Extended,
    Field(Option<Field>),
}

fn top(key: &str) -> Top {
    match key {
        "id" => Top::Id,
        "@odata.etag" => Top::Etag,
        "lastModifiedDateTime" => Top::Modified,
        "personalNotes" => Top::Notes,
        EXTENDED => Top::Extended,
        other => Top::Field(Field::from_json_name(other)),
    }
}

impl<'de> serde::Deserialize<'de> for Contact {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Contact;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a contact object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Contact, A::Error> {
                let mut id: Option<String> = None;
                let mut c = ContactParts::default();
                let mut b = FieldsBuilder::new();
                while let Some(key) = map.next_key_seed(Key(top))? {
                    match key {
                        Top::Id => id = Some(map.next_value()?),
                        Top::Etag => c.etag = map.next_value()?,
                        Top::Modified => c.last_modified_date_time = map.next_value()?,
                        Top::Notes => c.personal_notes = map.next_value()?,
                        Top::Extended => {
                            let props: Option<Vec<ExtendedProperty>> = map.next_value()?;
                            c.private_flag = props.unwrap_or_default().iter().any(|p| {
                                crate::privacy::is_sensitivity_id(&p.id)
                                    && p.value.as_ref().and_then(ExtendedValue::as_int)
                                        == Some(crate::privacy::SENSITIVITY_PRIVATE)
                            });
                        }
                        Top::Field(f) => read_value(&mut map, f, &mut b)?,
                    }
                }
                c.id = id.ok_or_else(|| de::Error::missing_field("id"))?;
                c.fields = b.build();
                Ok(c.into())
            }
        }
        d.deserialize_map(V)
    }
}

/// One `singleValueExtendedProperties` item: `{"id": "Integer 0x36", "value": "2"}`. Graph's
/// `value` is a string (singlevaluelegacyextendedproperty.md); a number is read too.
#[derive(serde::Deserialize)]
struct ExtendedProperty {
    id: String,
    #[serde(default)]
    value: Option<ExtendedValue>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum ExtendedValue {
    Text(String),
    Number(i64),
    Other(serde::de::IgnoredAny),
}

impl ExtendedValue {
    fn as_int(&self) -> Option<i64> {
        match self {
            ExtendedValue::Text(s) => s.trim().parse().ok(),
            ExtendedValue::Number(n) => Some(*n),
            ExtendedValue::Other(_) => None,
        }
    }
}

impl serde::Serialize for Contact {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let set = self.fields.set_fields();
        let mut m = s.serialize_map(Some(5 + set.len()))?;
        m.serialize_entry("id", self.id())?;
        if let Some(e) = self.etag() {
            m.serialize_entry("@odata.etag", e)?;
        }
        if let Some(t) = self.last_modified() {
            m.serialize_entry("lastModifiedDateTime", &t)?;
        }
        if let Some(n) = self.personal_notes() {
            m.serialize_entry("personalNotes", n)?;
        }
        for f in set.iter() {
            m.serialize_entry(f.json_name(), &crate::fields::json(f, &self.fields))?;
        }
        if self.private_flag() {
            // As Graph echoes it (see `privacy::is_sensitivity_id`).
            m.serialize_entry(
                EXTENDED,
                &[serde_json::json!({"id": "Integer 0x36", "value": "2"})],
            )?;
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_graph_v1_shape_with_nulls_and_etag() {
        let json = r#"{
            "@odata.etag": "W/\"EQAAABYAAAA\"",
            "id": "AAMkAD=",
            "lastModifiedDateTime": "2026-11-27T12:00:00Z",
            "displayName": "Adele Vance",
            "givenName": null,
            "businessPhones": ["+1 425 555 0100"],
            "homePhones": [],
            "imAddresses": null,
            "emailAddresses": [{"name": "Adele", "address": "adele@contoso.com"}],
            "personalNotes": null,
            "categories": [],
            "fileAs": "Vance, Adele",
            "singleValueExtendedProperties": [{"id": "Integer 0x36", "value": "2"}]
        }"#;
        let c: Contact = serde_json::from_str(json).unwrap();
        assert_eq!(c.etag(), Some("W/\"EQAAABYAAAA\""));
        assert_eq!(c.display_name(), Some("Adele Vance"));
        assert_eq!(c.fields.text(Field::GivenName), "");
        assert_eq!(c.fields.list(Field::ImAddresses).count(), 0);
        assert_eq!(
            c.fields.emails().next().unwrap().address,
            "adele@contoso.com"
        );
        assert_eq!(
            c.last_modified().unwrap().to_string(),
            "2026-11-27T12:00:00Z"
        );
        assert_eq!(c.personal_notes(), None);
        assert_eq!(c.id(), "AAMkAD=");
        assert!(
            c.private_flag(),
            "PidTagSensitivity 2, echoed as Integer 0x36"
        );
    }

    #[test]
    fn the_private_flag_is_sensitivity_two_in_any_spelling_and_nothing_else() {
        let flag = |props: serde_json::Value| -> bool {
            let c: Contact = serde_json::from_value(
                serde_json::json!({"id": "a", "singleValueExtendedProperties": props}),
            )
            .unwrap();
            c.private_flag()
        };
        assert!(flag(
            serde_json::json!([{"id": "Integer 0x0036", "value": "2"}])
        ));
        assert!(flag(
            serde_json::json!([{"id": "integer 0x36", "value": 2}])
        ));
        assert!(flag(serde_json::json!([
            {"id": "String 0x3a45", "value": "Dr."},
            {"id": "Integer 0x36", "value": " 2 "}
        ])));
        // Normal, personal and confidential are not Outlook's Private flag.
        for v in ["0", "1", "3", "", "two"] {
            assert!(
                !flag(serde_json::json!([{"id": "Integer 0x36", "value": v}])),
                "{v}"
            );
        }
        assert!(!flag(
            serde_json::json!([{"id": "Integer 0x37", "value": "2"}])
        ));
        assert!(!flag(
            serde_json::json!([{"id": "Integer 0x36", "value": null}])
        ));
        assert!(!flag(
            serde_json::json!([{"id": "Integer 0x36", "value": [2]}])
        ));
        assert!(!flag(serde_json::json!(null)));
        assert!(!flag(serde_json::json!([])));
        // Kept through the setters, and written back as Graph echoes it.
        let mut c: Contact = serde_json::from_value(serde_json::json!({"id": "a",
            "singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": "2"}]}))
        .unwrap();
        c.set_personal_notes(Some("n"));
        c.set_etag(Some("W/\"x\""));
        c.set_id("b");
        assert!(c.private_flag());
        assert!(c.to_parts().private_flag);
        let again: Contact = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(again, c);
        c.set_private_flag(false);
        assert!(!c.private_flag());
        assert_eq!(c.personal_notes(), Some("n"));
    }

    #[test]
    fn a_contact_without_id_is_refused_and_serialisation_round_trips() {
        assert!(serde_json::from_str::<Contact>(r#"{"displayName": "x"}"#).is_err());
        let c: Contact = serde_json::from_str(
            r#"{"id": "a", "personalNotes": "n", "homeAddress": {"city": "Oslo"},
                "birthday": "1974-07-22T11:59:00Z", "emailAddresses": [{"address": "a@x"}]}"#,
        )
        .unwrap();
        let again: Contact = serde_json::from_value(serde_json::to_value(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn a_contact_is_compact_and_its_parts_round_trip() {
        assert_eq!(std::mem::size_of::<Contact>(), 56);
        let t: jiff::Timestamp = "2026-11-27T12:00:00.1234567Z".parse().unwrap();
        let p = ContactParts {
            id: "AAMk=".into(),
            etag: Some(String::new()),
            last_modified_date_time: Some(t),
            personal_notes: Some("héllo".into()),
            private_flag: true,
            fields: ContactFields::default(),
        };
        let mut c: Contact = p.clone().into();
        assert_eq!(c.to_parts(), p);
        assert_eq!(c.etag(), Some(""), "an empty etag is not a missing one");
        c.set_personal_notes(None);
        c.set_etag(Some("W/\"x\""));
        c.set_id("B");
        assert_eq!(
            (c.id(), c.etag(), c.personal_notes(), c.last_modified()),
            ("B", Some("W/\"x\""), None, Some(t))
        );
        c.set_last_modified(None);
        assert_eq!(c.last_modified(), None);
        assert_eq!(c.modified_pair(), (i64::MIN, 0));
    }
}
