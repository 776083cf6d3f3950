//! Microsoft Graph client: token providers, retry and throttling, concurrency limits, paging,
//! `$batch`, typed resources and classified errors.
//!
//! A caller builds a [`GraphClient`] from a [`ClientConfig`] and calls typed operations; the
//! client decides how to stay within Graph's limits (4 in flight per mailbox, `Retry-After`,
//! backoff, the app-wide budget shared through [`AppBudgets`]) and how to fail (a [`GraphError`]
//! with an [`ErrorKind`] and Graph's request-id; [`ErrorKind::Unreachable`] once an endpoint is
//! gone, [`ErrorKind::Cancelled`] once the caller's [`StopSignal`] fired). Contacts are read into
//! the caller's own type with the caller's [`ReadSpec`] (`$select`, and `$expand`/`$filter` for
//! extended properties), whole or as delta rounds ([`GraphClient::contacts_delta`]).
//!
//! This crate takes no ambient input: it never reads the process environment or the wall clock
//! and never sleeps except through the injected [`Clock`]; a federated token comes from the
//! caller's [`AssertionSource`]. It never prints a secret, names none of its callers' settings in
//! a message, and knows nothing about sync rules (those are the caller's).
//!
//! ```no_run
//! use graph::{ClientConfig, Cloud, Credential, Endpoints, FolderRef, GraphClient, Secret, WriteRequest, WriteResponse};
//! # #[derive(serde::Deserialize)] struct MyContact { id: String }
//! # async fn run() -> Result<(), graph::GraphError> {
//! let cfg = ClientConfig::new("contoso.onmicrosoft.com", "app-id",
//!                             Credential::Secret(Secret::new("…")),
//!                             Endpoints::for_cloud(Cloud::Global));
//! let client = GraphClient::new(cfg)?;              // no network yet
//! let users = client.licensed_users().await?;
//! let hub = match client.find_contact_folder("hub@contoso.com", "All Contacts").await? {
//!     Some(f) => f,
//!     None => client.create_contact_folder("hub@contoso.com", "All Contacts").await?,
//! };
//! let folder = FolderRef::Id(hub.id);
//! let contacts: Vec<MyContact> =
//!     client.list_contacts("hub@contoso.com", &folder, "id,displayName").await?;
//! let results: Vec<Result<WriteResponse<MyContact>, _>> = client
//!     .execute_writes("hub@contoso.com", vec![WriteRequest::Create { folder,
//!         body: serde_json::json!({"displayName": "Adele Vance"}) }])
//!     .await;                                       // one Result per write, in order
//! # let _ = (users, contacts, results); Ok(()) }
//! ```
//!
//! Immutable ids: we do **not** send `Prefer: IdType="ImmutableId"` (docs/graph-facts.md §1).
//! Contact ids are only used within one run, right after being read, and never move folders through
//! us (we create in the target folder and PATCH in place); the durable identity is the SyncId tag
//! in `personalNotes`. Sending it would make ids differ in format from ids the old script or other
//! tools logged, for no benefit to this sync.

pub mod auth;
pub mod batch;
pub mod client;
pub mod clock;
pub mod endpoints;
pub mod error;
pub mod halt;
mod limits;
pub mod pacing;
pub mod path;
pub mod retry;
pub mod secret;
pub mod text;
pub mod types;

pub use auth::{AssertionAlgorithm, AssertionSource, Credential, TokenInfo};
pub use client::{ClientConfig, GraphClient};
pub use clock::{Clock, SystemClock, VirtualClock};
pub use endpoints::{Cloud, Endpoints};
pub use error::{ErrorKind, GraphError, TokenProblem};
pub use halt::{BreakerPolicy, StopSignal};
pub use pacing::{AppBudgets, RequestBudget};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use types::{
    ClientStats, DELTA_PAGE_SIZE, DeltaRound, DeltaStart, Folder, FolderRef, Group, ReadSpec,
    SENSITIVITY_PROPERTY, User, VerifiedDomain, WriteRequest, WriteResponse,
};
