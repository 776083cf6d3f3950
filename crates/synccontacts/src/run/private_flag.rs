//! Outlook's Private flag (PidTagSensitivity = 2, docs/state-and-deletes.md §4) for contacts read
//! without it: the rows of a contact delta round (docs/state-and-deletes.md §5, issue 14), for
//! which `delta.rs` calls it.
//!
//! How the flag is read, and what it costs in requests:
//! - **Full reads** (`read.rs`): in the same listing, with
//!   `$expand=singleValueExtendedProperties($filter=id eq 'Integer 0x0036')`
//!   (graph's `ReadSpec::with_extended_property`), also on the by-id re-read of mangled notes —
//!   **no extra request**. Graph documents that `$expand` for one contact
//!   (singlevaluelegacyextendedproperty-get.md: "currently the only way" to read the property)
//!   and `singleValueExtendedProperties` is a navigation property of `contact`
//!   (contact.md, Relationships), so a list expands it per item; the `$expand` caps Graph
//!   documents (20 or 100 expanded items, no `$expand` in advanced queries; query-parameters.md)
//!   are directory objects', not Outlook's, and one relationship is expanded, the documented
//!   limit. The emulator answers it on every page, with `$select` and `$top=1000`.
//! - **Delta rounds** cannot: `$expand` is not documented on contact delta and Outlook delta
//!   functions answer it with 500/400 ("Parsing OData Select and Expand failed",
//!   docs/graph-facts.md §2: MGDold-issues #2270 and #1993, msgraph-sdk-dotnet #2678); the emulator
//!   refuses it the same way (400). So a folder read by delta asks, **when its round reported
//!   changes**, for the ids of its contacts that have the flag, with the documented `$filter`
//!   `singleValueExtendedProperties/any(ep:ep/id eq 'Integer 0x0036' and cast(ep/value,
//!   Edm.Int32) eq 2)` and `$select=id` ([`private_contact_ids`]): **one small request per
//!   changed folder** (one page of ids unless the folder holds more than 1,000 private contacts).
//!   A folder whose round reported nothing needs none: ticking or clearing the flag is an edit of
//!   the contact (a new changeKey), which the round reports.
//!
//! Reads only; never writes, never decides what a private contact means (the planner does).

use std::collections::HashSet;

use graph::{FolderRef, GraphClient, GraphError, ReadSpec, SENSITIVITY_PROPERTY};
use serde::Deserialize;
use sync_engine::Contact;

/// Only the id of a listed contact.
#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

/// The ids of the contacts of `folder` in `mailbox` that have Outlook's Private flag: one list
/// request (`$select=id`, the documented `$filter` on PidTagSensitivity = 2, `$top=1000`,
/// following nextLinks). Ids compare case-sensitively (docs/graph-facts.md §1).
pub async fn private_contact_ids(
    client: &GraphClient,
    mailbox: &str,
    folder: &FolderRef,
) -> Result<HashSet<String>, GraphError> {
    let spec = ReadSpec::new("id").where_int_property(
        SENSITIVITY_PROPERTY,
        sync_engine::privacy::SENSITIVITY_PRIVATE as i32,
    );
    let rows: Vec<IdOnly> = client.list_contacts(mailbox, folder, spec).await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Sets each contact's Private flag from `private_ids` ([`private_contact_ids`] of its folder):
/// on, for the ids listed; off for every other.
pub fn apply_private_flags(contacts: &mut [Contact], private_ids: &HashSet<String>) {
    for c in contacts {
        let private = private_ids.contains(c.id());
        c.set_private_flag(private);
    }
}
