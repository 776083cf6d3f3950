//! What test oracles of the client's invariants read from the control plane: a user's edit
//! mid-run through `touch` (mark a contact private by category or by the Private flag, clear
//! fields), the state snapshot that shows it (I15: a private contact never leaves its owner's
//! mailbox), and `GET /_emulator/deleted`, which says *which* contacts the client deleted (I11).

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::*;

const ADELE: &str = "/v1.0/users/adele@contoso.com";
const SENSITIVITY: &str = "singleValueExtendedProperties($filter=id eq 'Integer 0x0036')";

async fn touch(env: &Env, id: &str, body: Value) -> (u16, Value) {
    let r = env
        .http
        .post(env.url(&format!(
            "/_emulator/users/adele@contoso.com/contacts/{id}/touch"
        )))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn control(env: &Env, path: &str) -> Value {
    let r = env.http.get(env.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn stored<'a>(state: &'a Value, upn: &str, id: &str) -> Option<&'a Value> {
    state["tenants"][0]["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["userPrincipalName"] == upn)?["contacts"]
        .as_array()?
        .iter()
        .find(|c| c["id"] == id)
}

#[tokio::test]
async fn touch_marks_private_by_category_and_flag_and_clears_fields_and_the_state_shows_it() {
    let env = start().await;
    let token = env.token().await;
    let (_, b) = env.get(&format!("{ADELE}/contacts?$top=2")).await;
    let a = b["value"][0].clone();
    let id = a["id"].as_str().unwrap();
    let other = b["value"][1]["id"].as_str().unwrap();

    // Private by category and by the Private flag, a field cleared, in one user edit.
    let (s, touched) = touch(
        &env,
        id,
        json!({"categories": ["Private", "Blue"],
               "singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": "2"}],
               "companyName": null, "businessPhones": null}),
    )
    .await;
    assert_eq!(s, 200, "{touched}");
    assert_eq!(touched["categories"], json!(["Private", "Blue"]));
    assert_eq!(touched["companyName"], Value::Null);
    assert_eq!(touched["businessPhones"], json!([]));
    assert_ne!(touched["changeKey"], a["changeKey"]);
    assert!(
        touched.get("singleValueExtendedProperties").is_none(),
        "never rendered unless expanded"
    );
    let (_, got) = env
        .send(
            Method::GET,
            &format!("{ADELE}/contacts/{id}?$expand={SENSITIVITY}"),
            &token,
            None,
        )
        .await;
    assert_eq!(got["singleValueExtendedProperties"][0]["value"], "2");
    assert_eq!(got["categories"], json!(["Private", "Blue"]));

    // The snapshot an oracle reads carries both markers.
    let state = control(&env, "/_emulator/state").await;
    let c = stored(&state, "adele@contoso.com", id).unwrap();
    assert_eq!(c["categories"], json!(["Private", "Blue"]));
    assert_eq!(
        c["singleValueExtendedProperties"],
        json!([{"id": "Integer 0x0036", "value": "2"}])
    );

    // Made normal again: the flag removed (value null), the category cleared.
    let (s, _) = touch(
        &env,
        id,
        json!({"categories": null,
               "singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": null}]}),
    )
    .await;
    assert_eq!(s, 200);
    let state = control(&env, "/_emulator/state").await;
    let c = stored(&state, "adele@contoso.com", id).unwrap();
    assert_eq!(c["categories"], json!([]));
    assert!(c.get("singleValueExtendedProperties").is_none(), "{c}");
    // The other contact was not touched.
    let o = stored(&state, "adele@contoso.com", other).unwrap();
    assert_eq!(o["companyName"], "Fabrikam");

    // A touch that Graph would refuse is refused (unknown property, over a cap).
    let (s, _) = touch(&env, id, json!({"sensitivity": "private"})).await;
    assert_eq!(s, 400);
    let (s, _) = touch(&env, id, json!({"businessPhones": ["1", "2", "3"]})).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn deleted_lists_which_contacts_were_deleted_per_mailbox_until_a_stats_reset() {
    let env = start().await;
    let token = env.token().await;
    assert_eq!(
        control(&env, "/_emulator/deleted").await,
        json!({"byMailbox": {}})
    );
    let (_, b) = env.get(&format!("{ADELE}/contacts?$top=3")).await;
    let rows = b["value"].as_array().unwrap().clone();
    let id0 = rows[0]["id"].as_str().unwrap();
    let id1 = rows[1]["id"].as_str().unwrap();
    // Mark one private first: the log keeps the contact as it was, extended properties too.
    let (s, _) = touch(
        &env,
        id0,
        json!({"singleValueExtendedProperties": [{"id": "Integer 0x0036", "value": "2"}]}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = env
        .send(
            Method::DELETE,
            &format!("{ADELE}/contacts/{id0}"),
            &token,
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, body) = batch(
        &env,
        &token,
        json!({"requests": [
            {"id": "1", "method": "DELETE", "url": format!("/users/adele@contoso.com/contacts/{id1}")},
            {"id": "2", "method": "DELETE", "url": format!("/users/adele@contoso.com/contacts/{id1}")}
        ]}),
    )
    .await;
    assert_eq!(s, 200);
    let statuses: Vec<u64> = {
        let m = by_id(&body);
        vec![
            m["1"]["status"].as_u64().unwrap(),
            m["2"]["status"].as_u64().unwrap(),
        ]
    };
    assert!(
        statuses.contains(&204) && statuses.contains(&404),
        "{statuses:?}"
    );

    let log = control(&env, "/_emulator/deleted").await;
    let adele = log["byMailbox"]["adele@contoso.com"].as_array().unwrap();
    let ids: Vec<&str> = adele.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec![id0, id1],
        "once each, in order; the 404 is no deletion"
    );
    assert_eq!(adele[0]["parentFolderId"], rows[0]["parentFolderId"]);
    assert!(adele[0]["deletedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(adele[0]["contact"]["displayName"], rows[0]["displayName"]);
    assert_eq!(
        adele[0]["contact"]["singleValueExtendedProperties"],
        json!([{"id": "Integer 0x0036", "value": "2"}])
    );
    assert_eq!(log["byMailbox"].as_object().unwrap().len(), 1);
    assert_eq!(env.emu.deleted()["adele@contoso.com"].len(), 2);

    // The stats reset starts a new log.
    let r = env
        .http
        .post(env.url("/_emulator/stats/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        control(&env, "/_emulator/deleted").await,
        json!({"byMailbox": {}})
    );
}
