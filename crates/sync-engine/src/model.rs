//! The contact model: exactly the Graph v1.0 shapes synccontacts reads and writes.
//!
//! Only the synced fields of SPEC §2.7 plus what matching and conflict handling need (`id`,
//! `@odata.etag`, `lastModifiedDateTime`, `personalNotes`). Graph returns unset collections as
//! `[]` and unset strings as `null` (graph-facts §9), so both `null` and a missing key read as
//! "unset" here.

use serde::{Deserialize, Deserializer, Serialize};

/// One entry of `emailAddresses` (v1.0 `emailAddress`: `{"name", "address"}`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EmailAddress {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

/// The synced fields of a contact (SPEC §2.7), in Graph's JSON names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactFields {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub given_name: Option<String>,
    #[serde(default)]
    pub surname: Option<String>,
    #[serde(default)]
    pub company_name: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub department: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub business_phones: Vec<String>,
    #[serde(default)]
    pub mobile_phone: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub home_phones: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub email_addresses: Vec<EmailAddress>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub im_addresses: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub categories: Vec<String>,
}

/// The Graph property names of the synced fields, in SPEC §2.7 order. Also the `$select` list
/// (together with [`Contact::SELECT_EXTRA`]).
pub const SYNCED_FIELDS: [&str; 12] = [
    "displayName",
    "givenName",
    "surname",
    "companyName",
    "jobTitle",
    "department",
    "businessPhones",
    "mobilePhone",
    "homePhones",
    "emailAddresses",
    "imAddresses",
    "categories",
];

/// A contact as read from one folder of one mailbox.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: String,
    /// `W/"<changeKey>"`; sent back as `If-Match` so a concurrent user edit is not clobbered.
    #[serde(
        default,
        rename = "@odata.etag",
        skip_serializing_if = "Option::is_none"
    )]
    pub etag: Option<String>,
    #[serde(default)]
    pub last_modified_date_time: Option<jiff::Timestamp>,
    #[serde(default)]
    pub personal_notes: Option<String>,
    #[serde(flatten)]
    pub fields: ContactFields,
}

impl Contact {
    /// Properties selected besides [`SYNCED_FIELDS`] when listing a folder.
    pub const SELECT_EXTRA: [&str; 3] = ["id", "lastModifiedDateTime", "personalNotes"];

    /// The `$select` value for listing contacts: everything the engine reads, nothing more.
    pub fn select_list() -> String {
        Self::SELECT_EXTRA
            .iter()
            .chain(SYNCED_FIELDS.iter())
            .copied()
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
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
            "fileAs": "Vance, Adele"
        }"#;
        let c: Contact = serde_json::from_str(json).unwrap();
        assert_eq!(c.etag.as_deref(), Some("W/\"EQAAABYAAAA\""));
        assert_eq!(c.fields.display_name.as_deref(), Some("Adele Vance"));
        assert_eq!(c.fields.given_name, None);
        assert!(c.fields.im_addresses.is_empty());
        assert_eq!(
            c.fields.email_addresses[0].address.as_deref(),
            Some("adele@contoso.com")
        );
        assert_eq!(
            c.last_modified_date_time.unwrap().to_string(),
            "2026-11-27T12:00:00Z"
        );
    }

    #[test]
    fn select_list_names_every_synced_field() {
        let s = Contact::select_list();
        for f in SYNCED_FIELDS {
            assert!(s.split(',').any(|x| x == f), "{f} missing from {s}");
        }
        assert!(s.starts_with("id,"));
    }
}
