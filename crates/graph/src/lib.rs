//! Microsoft Graph client for synccontacts: token providers, retry and throttling, concurrency
//! limits, paging, `$batch`, typed resources and classified errors.
//!
//! The binary builds a [`GraphClient`] from a [`ClientConfig`] and calls typed operations; the
//! client decides how to stay within Graph's limits (4 in flight per mailbox, `Retry-After`,
//! backoff) and how to fail (a [`GraphError`] with an [`ErrorKind`] and Graph's request-id).
//! This crate never reads the wall clock or sleeps except through the injected [`Clock`], never
//! prints a secret, and knows nothing about sync rules (those live in `sync-engine`).
//!
//! ```no_run
//! use graph::{ClientConfig, Cloud, Credential, Endpoints, FolderRef, GraphClient, Secret, WriteRequest};
//! # async fn run() -> Result<(), graph::GraphError> {
//! let endpoints = Endpoints::resolve(Cloud::Global, None, None)?;
//! let cfg = ClientConfig::new("contoso.onmicrosoft.com", "app-id",
//!                             Credential::Secret(Secret::new("…")), endpoints);
//! let client = GraphClient::new(cfg)?;              // no network yet
//! let users = client.licensed_users().await?;
//! let hub = match client.find_contact_folder("hub@contoso.com", "All Contacts").await? {
//!     Some(f) => f,
//!     None => client.create_contact_folder("hub@contoso.com", "All Contacts").await?,
//! };
//! let contacts = client.list_contacts("hub@contoso.com", &FolderRef::Id(hub.id.clone())).await?;
//! let results = client
//!     .execute_writes("hub@contoso.com", vec![WriteRequest::create(FolderRef::Id(hub.id),
//!         serde_json::json!({"displayName": "Adele Vance"}))])
//!     .await;                                       // one Result per write, in order
//! # let _ = (users, contacts, results); Ok(()) }
//! ```
//!
//! Immutable ids: we do **not** send `Prefer: IdType="ImmutableId"` (graph-facts §1). Contact ids
//! are only used within one run, right after being read, and never move folders through us (we
//! create in the target folder and PATCH in place); the durable identity is the SyncId tag in
//! `personalNotes`. Sending it would make ids differ in format from ids the old script or other
//! tools logged, for no benefit to this sync.

pub mod auth;
pub mod batch;
pub mod client;
pub mod clock;
pub mod endpoints;
pub mod error;
mod limits;
pub mod path;
pub mod retry;
pub mod secret;
pub mod types;

pub use auth::{AssertionAlgorithm, Credential, TokenInfo};
pub use client::{ClientConfig, GraphClient};
pub use clock::{Clock, SystemClock, VirtualClock};
pub use endpoints::{Cloud, Endpoints};
pub use error::{ErrorKind, GraphError};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use types::{
    ClientStats, Contact, Domain, Folder, FolderRef, User, WriteOp, WriteRequest, WriteResponse,
};
