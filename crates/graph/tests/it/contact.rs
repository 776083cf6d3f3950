//! The contact shape these tests read: the client is generic over it, as over any caller's model.

/// What the tests select: enough to see ids, etags, notes and a changed field.
pub const SELECT: &str =
    "id,lastModifiedDateTime,personalNotes,displayName,jobTitle,emailAddresses";

#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    pub id: String,
    #[serde(default, rename = "@odata.etag")]
    pub etag: Option<String>,
    #[serde(default)]
    pub last_modified_date_time: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub job_title: Option<String>,
    #[serde(default)]
    pub personal_notes: Option<String>,
}
