//! Typed Graph resources and write requests the client exchanges with its callers.
//!
//! Plain data only: no I/O, no secrets. Contacts have no type here: the caller reads them into
//! its own model (any `DeserializeOwned`) and says which properties to `$select`, so this crate
//! knows nothing of what a sync keeps in a contact (graph-facts §1 shapes).

use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// One contact write in a mailbox. Each kind carries exactly what it needs: an update or a
/// delete cannot be written without the contact's id, and a create has none to lose.
#[derive(Clone, Debug, PartialEq)]
pub enum WriteRequest {
    /// `POST …/contacts` → 201 with the new contact. Never repeated once its outcome is unknown
    /// (a repeat could duplicate the contact, RELIABILITY I2).
    Create { folder: FolderRef, body: Value },
    /// `PATCH …/contacts/{id}` → 200 with the contact. `if_match` is the `@odata.etag` read
    /// earlier, sent as `If-Match` so a concurrent user edit gives 412 instead of being
    /// overwritten (RELIABILITY I9).
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
    /// Token endpoint requests.
    pub token_requests: u64,
}
