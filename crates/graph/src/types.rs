//! Typed Graph resources and write requests the client exchanges with its callers.
//!
//! Plain data only: no I/O, no secrets. Contacts have no type here: the caller reads them into
//! its own model (any `DeserializeOwned`) and says which properties to `$select`, so this crate
//! knows nothing of what a sync keeps in a contact (docs/graph-facts.md §1 shapes).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A directory user (`GET /users`, docs/graph-facts.md §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub user_principal_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
}

impl User {
    /// How docs/compatibility.md §2 identifies a user: `userPrincipalName`, falling back to `id`.
    pub fn key(&self) -> &str {
        self.user_principal_name
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.id)
    }
}

/// A contact folder (docs/graph-facts.md §2 contactFolders).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Folder {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
}

/// Which contact properties a read returns: `$select` (comma-separated property names; select
/// exactly what the caller's type reads, docs/graph-facts.md §3), and optionally `$expand` (e.g. a
/// single-value extended property, see [`ReadSpec::with_extended_property`]) and, for lists only,
/// `$filter`. Built from a `&str`/`String` holding just the `$select`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadSpec {
    pub select: String,
    pub expand: Option<String>,
    pub filter: Option<String>,
}

/// The MAPI property PidTagSensitivity (0x0036) as Graph names a single-value extended property;
/// its value 2 marks a contact private in Outlook.
pub const SENSITIVITY_PROPERTY: &str = "Integer 0x0036";

impl ReadSpec {
    pub fn new(select: impl Into<String>) -> Self {
        Self {
            select: select.into(),
            expand: None,
            filter: None,
        }
    }

    /// Also returns the single-value extended property `id` (e.g. [`SENSITIVITY_PROPERTY`]) of
    /// each contact, in `singleValueExtendedProperties` (absent when the contact does not have it):
    /// `$expand=singleValueExtendedProperties($filter=id eq '…')`, as documented for contact
    /// lists and gets (`singlevaluelegacyextendedproperty-get.md`). Contact delta does not take
    /// `$expand` (see [`crate::GraphClient::contacts_delta`]).
    pub fn with_extended_property(mut self, id: &str) -> Self {
        self.expand = Some(format!(
            "singleValueExtendedProperties($filter=id eq {})",
            crate::path::odata_string(id)
        ));
        self
    }

    /// Lists only the contacts whose single-value extended property `id` is an integer equal to
    /// `value` (`$filter=singleValueExtendedProperties/any(ep:ep/id eq '…' and cast(ep/value,
    /// Edm.Int32) eq N)`, the documented form for numeric properties,
    /// `singlevaluelegacyextendedproperty-get.md`). With `select = "id"` this is the cheap way
    /// to learn which contacts of a folder are private: one small page per folder.
    pub fn where_int_property(mut self, id: &str, value: i32) -> Self {
        self.filter = Some(format!(
            "singleValueExtendedProperties/any(ep:ep/id eq {} and cast(ep/value, Edm.Int32) eq {value})",
            crate::path::odata_string(id)
        ));
        self
    }
}

impl From<&str> for ReadSpec {
    fn from(select: &str) -> Self {
        Self::new(select)
    }
}

impl From<&String> for ReadSpec {
    fn from(select: &String) -> Self {
        Self::new(select.as_str())
    }
}

impl From<String> for ReadSpec {
    fn from(select: String) -> Self {
        Self::new(select)
    }
}

impl From<&ReadSpec> for ReadSpec {
    fn from(spec: &ReadSpec) -> Self {
        spec.clone()
    }
}

/// The page size to ask contact delta for: Graph caps its pages at about 200 contacts whatever
/// `Prefer: odata.maxpagesize` asks (observed; Microsoft Q&A 2276060, docs/graph-facts.md §3), so
/// asking for more only hides the real page size.
pub const DELTA_PAGE_SIZE: u32 = 200;

/// Where a contact delta round starts (docs/graph-facts.md §2 "Delta").
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeltaStart {
    /// A first round: every contact of the folder, with this `$select` (it is encoded into the
    /// round's links by Graph, so later rounds keep it).
    Initial { select: String },
    /// The `@odata.deltaLink` a previous round ended with, used verbatim.
    Link(String),
}

/// A complete delta round: what changed in the folder since the link it started from (or, for
/// an initial round, everything in it), and the link to start the next round from.
///
/// Rows come as Graph sent them (docs/graph-facts.md §2: an item may appear more than once, replays
/// happen, rows have no guaranteed order): an id may repeat in `changed`, `removed` may name a
/// contact the caller never saw, and an id may even be in both lists. Callers stay idempotent;
/// an id in both lists cannot be ordered, so the safe reading is "present" (never infer a delete
/// from it).
#[derive(Clone, Debug, PartialEq)]
pub struct DeltaRound<T> {
    /// Contacts added or changed, read into the caller's type.
    pub changed: Vec<T>,
    /// Ids of contacts removed from the folder (`@removed` rows: deleted, or moved out).
    pub removed: Vec<String>,
    /// The `@odata.deltaLink`, to store for the next round.
    pub delta_link: String,
}

/// A group (`GET /groups/{id}`), as far as scoping by group needs it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub mail: Option<String>,
}

/// A verified domain of the tenant (`GET /organization`, docs/graph-facts.md §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedDomain {
    pub name: String,
    /// The primary domain.
    #[serde(default)]
    pub is_default: bool,
    /// The initial `*.onmicrosoft.com` domain.
    #[serde(default)]
    pub is_initial: bool,
    #[serde(default)]
    pub capabilities: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

/// Which folder of a mailbox.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FolderRef {
    /// The default Contacts folder (`/users/{u}/contacts`).
    Default,
    /// A folder by id (`/users/{u}/contactFolders/{id}/contacts`; ids are mailbox-unique, so
    /// nested folders need no childFolders chain, docs/graph-facts.md §2).
    Id(String),
}

/// One contact write in a mailbox. Each kind carries exactly what it needs: an update or a
/// delete cannot be written without the contact's id, and a create has none to lose.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteRequest {
    /// `POST …/contacts` → 201 with the new contact. Never repeated once its outcome is unknown
    /// (a repeat could duplicate the contact, docs/reliability.md I2).
    Create { folder: FolderRef, body: Value },
    /// `PATCH …/contacts/{id}` → 200 with the contact. `if_match` is the `@odata.etag` read
    /// earlier, sent as `If-Match` so a concurrent user edit gives 412 instead of being
    /// overwritten (docs/reliability.md I9).
    Update {
        folder: FolderRef,
        contact_id: String,
        if_match: Option<String>,
        body: Value,
    },
    /// `DELETE …/contacts/{id}` → 204 without a body; `If-Match` as for an update.
    Delete {
        folder: FolderRef,
        contact_id: String,
        if_match: Option<String>,
    },
}

impl WriteRequest {
    pub fn create(folder: FolderRef, body: Value) -> Self {
        Self::Create { folder, body }
    }

    pub fn update(
        folder: FolderRef,
        contact_id: impl Into<String>,
        if_match: Option<String>,
        body: Value,
    ) -> Self {
        Self::Update {
            folder,
            contact_id: contact_id.into(),
            if_match,
            body,
        }
    }

    pub fn delete(
        folder: FolderRef,
        contact_id: impl Into<String>,
        if_match: Option<String>,
    ) -> Self {
        Self::Delete {
            folder,
            contact_id: contact_id.into(),
            if_match,
        }
    }
}

/// A successful write. `T` is the contact type the caller reads responses into.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteResponse<T> {
    pub status: u16,
    /// The contact as Graph returned it (a create's 201 and an update's 200 carry it; a delete's
    /// 204 has none).
    pub body: Option<T>,
    pub request_id: Option<String>,
}

/// Counters for the run report and the benchmark.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientStats {
    /// HTTP requests sent to Graph (a `$batch` counts once; retries count).
    pub requests: u64,
    /// Requests (or batch items) sent again after a failure.
    pub retries: u64,
    /// 429 responses received (including batch items).
    pub throttled: u64,
    /// `$batch` requests sent.
    pub batches: u64,
    /// Items carried inside `$batch` requests.
    pub batch_items: u64,
    /// Requests that waited for the app-wide budget before being sent (see [`crate::pacing`]).
    pub paced: u64,
    /// Token endpoint requests.
    pub token_requests: u64,
}
