//! Tests of the planner, by topic: one test per rule of docs/compatibility.md §5–§8 and
//! docs/sync-rules.md §2 on small hand-written mailboxes — winners, SyncIds and which copies get a
//! write (`decide`), the matching ladder, duplicates and suppressed creates (`matching`), what each
//! write sends and how it is verified (`operations`) — property tests over random tenants for
//! invariants I1–I3 of docs/reliability.md through the in-memory Graph double in `testkit`
//! (`properties`), and inputs big enough for the threaded passes (`scale`). Memory between runs
//! (docs/state-and-deletes.md), threaded from run to run through `next_memory`: our writes are not
//! edits, the trust check, bad reads (`memory`), hub and user deletions, repairs and the brake
//! (`deletes`), and property tests over random runs with deletions, crashes and state losses
//! for I1, I2 and I10–I13 (`memory_props`). Field sets (issue 13): I1 under any set, changing the
//! set, clears of addresses (`field_sets`).

mod decide;
mod deletes;
mod field_sets;
mod matching;
mod memory;
mod memory_props;
mod operations;
mod privacy;
mod privacy_props;
mod properties;
mod scale;

use super::*;
use crate::field::{Field, FieldSet};
use crate::model::{ContactFields, ContactParts};
use crate::tags;
use crate::testkit::{Tenant, sequential_ids};
use crate::values::{FieldValue, FieldsBuilder};
use jiff::Timestamp;
use serde_json::json;

const HUB: &str = "hub@contoso.com";
const GUID_A: &str = "3F2504E0-4F89-11D3-9A0C-0305E82C3301";
const GUID_B: &str = "7c9e6679-7425-40de-944b-e07fc1f90ae7";

fn ts(secs: i64) -> Timestamp {
    Timestamp::from_second(1_790_000_000 + secs).unwrap()
}

fn now() -> Timestamp {
    ts(100_000)
}

fn contact(
    id: &str,
    name: &str,
    email: Option<&str>,
    t: Option<i64>,
    notes: Option<&str>,
) -> Contact {
    ContactParts {
        id: id.into(),
        etag: Some(format!("W/\"{id}\"")),
        last_modified_date_time: t.map(ts),
        personal_notes: notes.map(Into::into),
        private_flag: false,
        fields: {
            let mut b = FieldsBuilder::new();
            b.text(Field::DisplayName, name)
                .emails(email.map(|e| (name, e)));
            b.build()
        },
    }
    .into()
}

fn mbx(name: &str, contacts: Vec<Contact>) -> MailboxSnapshot {
    MailboxSnapshot::complete(name, contacts)
}

fn run(hub: Vec<Contact>, users: Vec<MailboxSnapshot>, update_existing: bool) -> Plan {
    let input = PlanInput {
        hub: mbx(HUB, hub),
        users,
        update_existing,
        now: now(),
        memory: None,
        options: DeleteOptions::default(),
        fields: FieldSet::DEFAULT,
        private_categories: Default::default(),
    };
    plan(&input, &mut sequential_ids(0))
}

fn summary(p: &Plan) -> Vec<(u8, Action, String, Option<String>)> {
    p.operations
        .iter()
        .map(|o| {
            (
                o.step,
                o.action(),
                o.mailbox.clone(),
                o.contact_id().map(str::to_owned),
            )
        })
        .collect()
}

fn kinds(p: &Plan) -> Vec<ProblemKind> {
    p.problems.iter().map(|x| x.kind).collect()
}

/// Applies the plan in the Graph double and checks that the next plan is empty (I1).
fn assert_converges(
    hub: Vec<Contact>,
    users: Vec<MailboxSnapshot>,
    update_existing: bool,
) -> Tenant {
    let mut t = Tenant::new(mbx(HUB, hub), users);
    let mut ids = sequential_ids(0);
    let p1 = plan(&t.input(update_existing), &mut ids);
    t.apply(&p1).unwrap();
    let p2 = plan(&t.input(update_existing), &mut ids);
    assert!(
        p2.operations.is_empty(),
        "second plan not empty: {:#?}",
        p2.operations
    );
    t
}

/// The `If-Match` of an update or a stamp.
fn if_match(op: &Operation) -> Option<&str> {
    match &op.write {
        Write::Update { etag, .. } | Write::Stamp { etag, .. } => etag.as_deref(),
        Write::Delete { etag, .. } => etag.as_deref(),
        Write::Create { .. } => panic!("a create has no etag: {op:?}"),
    }
}
