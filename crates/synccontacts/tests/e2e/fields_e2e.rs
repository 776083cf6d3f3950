//! The field set (issue 13 `Fields`) end to end through the emulator: with `"all"`, every
//! supported property of the newest copy reaches every copy and the second run writes nothing
//! (the emulator keeps addresses with only their set keys, stores a date-only birthday at 11:59
//! UTC, fills an omitted email name: none of it may look like a change); a cleared address and
//! birthday propagate as clears; and without `Fields` the other properties are left alone.

use serde_json::{Map, Value, json};

use crate::harness::*;

const SID: &str = "0f0f0f0f-1111-4222-8333-444444444444";

/// Every property `Fields: "all"` syncs, set.
fn full(c: Map<String, Value>) -> Map<String, Value> {
    let mut c = c;
    for (k, v) in [
        ("assistantName", json!("Ava")),
        ("birthday", json!("1974-07-22")),
        (
            "businessAddress",
            json!({"street": "1 Main St", "city": "Redmond", "state": "WA", "postalCode": "98052"}),
        ),
        ("businessHomePage", json!("https://contoso.com")),
        ("businessPhones", json!(["+1 425 555 0100"])),
        ("categories", json!(["VIP"])),
        ("children", json!(["Ann", "Bo"])),
        ("companyName", json!("Contoso")),
        ("department", json!("Sales")),
        ("generation", json!("Jr.")),
        (
            "homeAddress",
            json!({"city": "Oslo", "countryOrRegion": "NO"}),
        ),
        ("homePhones", json!(["+47 22 00 00 00"])),
        ("imAddresses", json!(["sip:alex@contoso.com"])),
        ("initials", json!("A.W.")),
        ("jobTitle", json!("Lead")),
        ("manager", json!("Megan")),
        ("middleName", json!("Q")),
        ("mobilePhone", json!("+1 206 555 0100")),
        ("nickName", json!("Al")),
        ("officeLocation", json!("B/1")),
        ("otherAddress", json!({"countryOrRegion": "SE"})),
        ("profession", json!("Engineer")),
        ("spouseName", json!("Sam")),
        ("title", json!("Dr.")),
        ("yomiCompanyName", json!("コントソ")),
        ("yomiGivenName", json!("アレックス")),
        ("yomiSurname", json!("ウィルバー")),
    ] {
        c.insert(k.into(), v);
    }
    c
}

fn env_with_fields(emu: &Emu, fields: Value) -> EnvVars {
    let mut entry = tenant_entry(TENANT, SECRET);
    entry["Fields"] = fields;
    let mut v = endpoints(emu);
    v.push(var(
        "AUTOMATION_SYNCCONTACTS_MICROSOFT_TENANTS_JSON",
        json!([entry]).to_string(),
    ));
    v
}

/// A contact's synced data as the emulator stores it: without what the server sets and without
/// the notes (each copy keeps its own), the birthday cut to its date.
fn data(c: &Map<String, Value>) -> Map<String, Value> {
    let mut d = c.clone();
    for k in [
        "id",
        "changeKey",
        "createdDateTime",
        "lastModifiedDateTime",
        "parentFolderId",
        "personalNotes",
        "@odata.etag",
    ] {
        d.remove(k);
    }
    if let Some(Value::String(b)) = d.get_mut("birthday") {
        b.truncate(10);
    }
    d
}

fn all_copies(emu: &Emu) -> Vec<(String, Map<String, Value>)> {
    let mut out = Vec::new();
    for c in emu.hub_contacts().unwrap_or_default() {
        out.push(("hub".to_owned(), c));
    }
    for u in [
        "adele@contoso.com",
        "megan@contoso.com",
        "nestor@contoso.com",
    ] {
        for c in emu.contacts(u) {
            out.push((u.to_owned(), c));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_fields_reach_every_copy_and_the_second_run_writes_nothing() {
    // Adele's copy is the newest and holds every property; Megan's is older and different.
    let adele = full(contact(
        "Alex Wilber",
        Some("alex@fabrikam.com"),
        "2026-03-01T00:00:00Z",
    ));
    // Megan's birthday is the same day at another time (as Outlook may store it): not a change.
    let megan = with(
        with(
            with(
                contact(
                    "Alex Wilber",
                    Some("alex@fabrikam.com"),
                    "2026-01-01T00:00:00Z",
                ),
                "businessAddress",
                json!({"city": "Seattle"}),
            ),
            "nickName",
            json!("Lex"),
        ),
        "birthday",
        json!("1974-07-22T00:00:00Z"),
    );
    let emu = Emu::start(scenario(vec![
        hub_with(None),
        user("adele@contoso.com", vec![adele]),
        user("megan@contoso.com", vec![megan]),
        user("nestor@contoso.com", vec![]),
    ]))
    .await;
    let env = env_with_fields(&emu, json!("all"));
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let copies = all_copies(&emu);
    assert_eq!(copies.len(), 4, "{copies:#?}");
    let winner = data(
        &copies
            .iter()
            .find(|(w, _)| w == "adele@contoso.com")
            .unwrap()
            .1,
    );
    assert_eq!(
        winner["homeAddress"],
        json!({"city": "Oslo", "countryOrRegion": "NO"})
    );
    assert_eq!(winner["birthday"], json!("1974-07-22"));
    for (who, c) in &copies {
        assert_eq!(data(c), winner, "{who} holds the newest copy's data");
    }
    let megan = &copies
        .iter()
        .find(|(w, _)| w == "megan@contoso.com")
        .unwrap()
        .1;
    assert_eq!(
        megan["birthday"],
        json!("1974-07-22T00:00:00Z"),
        "a birthday on the same date is not rewritten\n{}",
        r.stdout
    );
    assert!(!r.stdout.contains("birthday"), "{}", r.stdout);
    emu.reset();
    let r2 = sync(&env, &[]).await;
    assert_eq!(r2.code, 0, "{}\n{}", r2.stdout, r2.stderr);
    assert_eq!(emu.writes(), 0, "second run wrote:\n{}", r2.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleared_address_and_birthday_propagate_as_clears() {
    let tagged =
        |c: Map<String, Value>| with(c, "personalNotes", json!(tag4(SID, "hub@contoso.com")));
    let old = |t: &str| {
        tagged(with(
            with(
                contact("Alex Wilber", Some("alex@fabrikam.com"), t),
                "businessAddress",
                json!({"street": "1 Main St", "city": "Redmond"}),
            ),
            "birthday",
            json!("1974-07-22T11:59:00Z"),
        ))
    };
    // The hub copy is the newest: its address and birthday were cleared.
    let hub = tagged(with(
        with(
            contact(
                "Alex Wilber",
                Some("alex@fabrikam.com"),
                "2026-03-01T00:00:00Z",
            ),
            "businessAddress",
            json!({}),
        ),
        "birthday",
        Value::Null,
    ));
    let emu = Emu::start(scenario(vec![
        hub_with(Some(vec![hub])),
        user("adele@contoso.com", vec![old("2026-01-01T00:00:00Z")]),
        user("megan@contoso.com", vec![old("2026-02-01T00:00:00Z")]),
    ]))
    .await;
    let env = env_with_fields(&emu, json!(["businessAddress", "birthday"]));
    let r = sync(&env, &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("businessAddress"), "{}", r.stdout);
    for u in ["adele@contoso.com", "megan@contoso.com"] {
        let c = &emu.contacts(u)[0];
        assert_eq!(c["businessAddress"], json!({}), "{u}: {c:?}");
        assert_eq!(c["birthday"], Value::Null, "{u}: {c:?}");
    }
    emu.reset();
    assert_eq!(sync(&env, &[]).await.code, 0);
    assert_eq!(emu.writes(), 0, "second run wrote");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_fields_other_properties_are_left_alone_and_unknown_names_refused() {
    let adele = full(contact(
        "Alex Wilber",
        Some("alex@fabrikam.com"),
        "2026-03-01T00:00:00Z",
    ));
    let emu = Emu::start(scenario(vec![
        hub_with(None),
        user("adele@contoso.com", vec![adele]),
        user("megan@contoso.com", vec![]),
    ]))
    .await;
    let r = sync(&one_tenant(&emu), &[]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    let megan = &emu.contacts("megan@contoso.com")[0];
    assert_eq!(
        megan["jobTitle"],
        json!("Lead"),
        "a default field is synced"
    );
    assert_eq!(
        megan["nickName"],
        Value::Null,
        "nickName is not in the default set"
    );
    assert_eq!(megan["homeAddress"], json!({}));

    emu.reset();
    let r = sync(&env_with_fields(&emu, json!(["nickname", "phones"])), &[]).await;
    assert_eq!(r.code, 2, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.all_output()
            .contains("`phones` is not a contact property"),
        "{}",
        r.all_output()
    );
    assert_eq!(emu.any_requests(), 0, "a configuration error sends nothing");
}
