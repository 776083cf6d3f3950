//! Typed Graph resources and write requests the client exchanges with its callers.
//!
//! Plain data only: no I/O, no secrets. Contacts themselves are `sync_engine::Contact`, so the
//! engine and the client share one model (graph-facts §1 shapes).

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use sync_engine::model::Contact;

/// A directory user (`GET /users`, graph-facts §4).
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
    /// How SPEC §2.2 identifies a user: `userPrincipalName`, falling back to `id`.
    pub fn key(&self) -> &str {
        self.user_principal_name
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(&self.id)
    }
}

/// A verified domain of the organization (`verifiedDomains`, graph-facts §4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Domain {
    pub name: String,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub is_initial: bool,
}

/// A contact folder (graph-facts §2 contactFolders).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Folder {
    pub id: String,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub parent_folder_id: Option<String>,
}

/// Which folder of a mailbox.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FolderRef {
    /// The default Contacts folder (`/users/{u}/contacts`).
    Default,
    /// A folder by id (`/users/{u}/contactFolders/{id}/contacts`; ids are mailbox-unique, so
    /// nested folders need no childFolders chain, graph-facts §2).
    Id(String),
}

/// Kind of a contact write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WriteOp {
    /// `POST …/contacts` → 201.
    Create,
    /// `PATCH …/contacts/{id}` (with `If-Match` when given) → 200.
    Update,
    /// `DELETE …/contacts/{id}` → 204.
    Delete,
}

/// One contact write in a mailbox.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteRequest {
    pub op: WriteOp,
    pub folder: FolderRef,
    /// Required for Update and Delete.
    pub contact_id: Option<String>,
    /// `@odata.etag` read earlier; sent as `If-Match` so a concurrent user edit gives 412
    /// instead of being overwritten (RELIABILITY I9).
    pub if_match: Option<String>,
    /// JSON body for Create/Update (ignored for Delete).
    pub body: Value,
}

impl WriteRequest {
    pub fn create(folder: FolderRef, body: Value) -> Self {
        Self {
            op: WriteOp::Create,
            folder,
            contact_id: None,
            if_match: None,
            body,
        }
    }

    pub fn update(
        folder: FolderRef,
        contact_id: impl Into<String>,
        if_match: Option<String>,
        body: Value,
    ) -> Self {
        Self {
            op: WriteOp::Update,
            folder,
            contact_id: Some(contact_id.into()),
            if_match,
            body,
        }
    }

    pub fn delete(
        folder: FolderRef,
        contact_id: impl Into<String>,
        if_match: Option<String>,
    ) -> Self {
        Self {
            op: WriteOp::Delete,
            folder,
            contact_id: Some(contact_id.into()),
            if_match,
            body: Value::Null,
        }
    }
}

/// A successful write.
#[derive(Clone, Debug, PartialEq)]
pub struct WriteResponse {
    pub status: u16,
    /// The contact as Graph returned it (Create 201 and Update 200 carry it; Delete has none).
    pub body: Option<Contact>,
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
    /// Token endpoint requests.
    pub token_requests: u64,
}
