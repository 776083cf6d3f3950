//! Realism over HTTP (crates/graph-emulator/README.md, "What it serves" to "Limits and faults"):
//! Outlook limits, the fault plan, `$batch`, delta, TLS, client assertions and the control-plane
//! `touch`, against an in-process emulator.

use std::time::Duration;

use graph_emulator::{EmulatorOptions, FaultPlan, Limits, Scenario};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{
    Env, GRAPH_SCOPE, TENANT, assert_graph_error, batch, by_id, fixture, fixture_json, follow_round,
};

async fn start_opts(scenario: Scenario, opts: EmulatorOptions) -> Env {
    let emu = graph_emulator::start(scenario, opts)
        .await
        .expect("emulator starts");
    Env {
        emu,
        http: reqwest::Client::new(),
    }
}

const ADELE: &str = "/v1.0/users/adele@contoso.com/contacts";

// ---------------------------------------------------------------------------------------------
// Outlook limits

#[tokio::test]
async fn five_parallel_requests_to_one_mailbox_get_429_and_max_in_flight_is_4() {
    let env = start_opts(
        fixture(),
        EmulatorOptions {
            latency: Duration::from_millis(400),
            ..EmulatorOptions::default()
        },
    )
    .await;
    let token = env.token().await;
    // Mixed addressing: the id and the UPN are the same mailbox for Outlook's limit.
    let sends = (0..6).map(|i| {
        let who = if i % 2 == 0 {
            "adele@contoso.com"
        } else {
            "11111111-1111-4111-8111-111111111111"
        };
        env.http
            .get(env.url(&format!("/v1.0/users/{who}/contacts?$top=1")))
            .bearer_auth(&token)
            .send()
    });
    let mut statuses = vec![];
    for r in futures::future::join_all(sends).await {
        let r = r.unwrap();
        let status = r.status().as_u16();
        statuses.push(status);
        if status == 429 {
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "ApplicationThrottled", "{body}");
            assert_eq!(
                body["error"]["message"],
                "Application is over its MailboxConcurrency limit."
            );
        }
    }
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 429]);
    let stats = env.emu.stats();
    let adele = &stats.by_mailbox["adele@contoso.com"];
    assert_eq!(adele.max_in_flight, 4, "{stats:?}");
    assert_eq!(adele.throttled, 2);
    assert_eq!(adele.get, 6, "refused requests still count as requests");
    assert_eq!(stats.throttled, 2);
    // Another mailbox is not affected while adele is saturated... and adele recovers.
    let (s, _) = env.get(ADELE).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn limits_can_be_turned_off_and_budgets_give_retry_after() {
    let env = start_opts(
        fixture(),
        EmulatorOptions {
            limits: Limits {
                mailbox_requests: 3,
                ..Limits::default()
            },
            ..EmulatorOptions::default()
        },
    )
    .await;
    let token = env.token().await;
    for _ in 0..3 {
        let (s, _) = env.send(Method::GET, ADELE, &token, None).await;
        assert_eq!(s, 200);
    }
    let r = env
        .http
        .get(env.url(ADELE))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=600).contains(&retry), "{retry}");
    env.emu.set_limits(Limits::off());
    let (s, _) = env.send(Method::GET, ADELE, &token, None).await;
    assert_eq!(s, 200);
}

// ---------------------------------------------------------------------------------------------
// Fault plan

async fn statuses_under_plan_sequence(plan: &FaultPlan) -> Vec<u16> {
    let opts = EmulatorOptions {
        faults: Some(plan.clone()),
        ..EmulatorOptions::default()
    };
    let env = start_opts(fixture(), opts).await;
    let token = env.token().await;
    let mut out = vec![];
    for i in 0..40 {
        let who = ["adele@contoso.com", "carol@contoso.com", "hub@contoso.com"][i % 3];
        let path = format!("/v1.0/users/{who}/contacts?$top=1");
        out.push(env.send(Method::GET, &path, &token, None).await.0);
    }
    out
}

#[tokio::test]
async fn a_seeded_fault_plan_replays_identically() {
    let plan: FaultPlan = serde_json::from_value(json!({"seed": 42, "rules": [
        {"match": {"path": "/v1.0/users/*/contacts"}, "probability": 0.3,
         "action": {"status": 503, "retryAfter": 1}},
        {"match": {"mailbox": "carol@contoso.com"}, "nth": 2, "action": {"status": 500}},
        // adele by id, while the requests address her by UPN.
        {"match": {"mailbox": "11111111-1111-4111-8111-111111111111"}, "nth": 3, "action": {"status": 502}}
    ]}))
    .unwrap();
    let a = statuses_under_plan_sequence(&plan).await;
    let b = statuses_under_plan_sequence(&plan).await;
    assert_eq!(a, b, "same seed, same request order, same faults");
    assert!(a.contains(&503) && a.contains(&200), "{a:?}");
    assert_eq!(
        a[4], 500,
        "carol's second request (index 4) hits the nth rule"
    );
    let mut other = plan.clone();
    other.seed = 43;
    assert_ne!(statuses_under_plan_sequence(&other).await, a);
}

#[tokio::test]
async fn ambiguous_writes_are_applied_and_their_answer_lost() {
    let env = crate::common::start().await;
    let token = env.token().await;
    let put = |plan: Value| {
        let http = env.http.clone();
        let url = env.url("/_emulator/faults");
        async move {
            let r = http.put(url).json(&plan).send().await.unwrap();
            assert_eq!(r.status(), 204);
        }
    };
    put(
        json!({"rules": [{"match": {"method": "POST", "path": "/v1.0/users/*/contacts"}, "nth": 1,
                          "action": {"status": 504, "afterApply": true}}]}),
    )
    .await;
    let (s, b) = env
        .send(
            Method::POST,
            ADELE,
            &token,
            Some(json!({"givenName": "Ambiguous504", "surname": "X"})),
        )
        .await;
    assert_graph_error(s, &b, 504, "GatewayTimeout");

    put(json!({"rules": [{"match": {"method": "POST"}, "nth": 1, "action": {"drop": "after"}}]}))
        .await;
    let r = env
        .http
        .post(env.url(ADELE))
        .bearer_auth(&token)
        .json(&json!({"givenName": "DroppedAfter", "surname": "X"}))
        .send()
        .await;
    assert!(r.is_err(), "no response: {r:?}");

    put(json!({"rules": [{"match": {"method": "POST"}, "nth": 1, "action": {"drop": "before"}}]}))
        .await;
    let r = env
        .http
        .post(env.url(ADELE))
        .bearer_auth(&token)
        .json(&json!({"givenName": "DroppedBefore", "surname": "X"}))
        .send()
        .await;
    assert!(r.is_err(), "no response: {r:?}");

    let state = serde_json::to_value(env.emu.state()).unwrap().to_string();
    assert!(
        state.contains("Ambiguous504"),
        "504 afterApply: the write happened"
    );
    assert!(
        state.contains("DroppedAfter"),
        "drop after: the write happened"
    );
    assert!(
        !state.contains("DroppedBefore"),
        "drop before: nothing happened"
    );
}

#[tokio::test]
async fn expire_token_fault_expires_exactly_that_token() {
    let env = crate::common::start().await;
    let r = env
        .http
        .put(env.url("/_emulator/faults"))
        .json(&json!({"rules": [{"nth": 2, "action": {"expireToken": true}}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let token = env.token().await;
    assert_eq!(env.send(Method::GET, ADELE, &token, None).await.0, 200);
    let (s, b) = env.send(Method::GET, ADELE, &token, None).await;
    assert_graph_error(s, &b, 401, "InvalidAuthenticationToken");
    let (s, _) = env.send(Method::GET, ADELE, &token, None).await;
    assert_eq!(s, 401, "the token stays expired");
    let fresh = env.token().await;
    assert_eq!(env.send(Method::GET, ADELE, &fresh, None).await.0, 200);
    // A bad plan is refused with 400 and leaves the old plan alone.
    let r = env
        .http
        .put(env.url("/_emulator/faults"))
        .body("{\"rules\":[{\"bogus\":1}]}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

// ---------------------------------------------------------------------------------------------
// $batch

#[tokio::test]
async fn batch_items_run_individually_with_their_own_status_and_retry_after() {
    let env = crate::common::start().await;
    let token = env.token().await;
    env.emu.set_faults(
        serde_json::from_value(json!({"rules": [
            {"match": {"method": "GET", "mailbox": "carol@contoso.com"}, "nth": 1,
             "action": {"status": 429, "retryAfter": 7}}]}))
        .unwrap(),
    );
    env.emu.reset_stats();
    let (s, b) = batch(
        &env,
        &token,
        json!({"requests": [
            {"id": "1", "method": "GET", "url": "/users/adele@contoso.com/contacts?$top=2"},
            {"id": "2", "method": "GET", "url": "/users/carol@contoso.com/contacts"},
            {"id": "3", "method": "POST", "url": "users/adele@contoso.com/contacts",
             "headers": {"Content-Type": "application/json"}, "body": {"givenName": "Batched", "surname": "Item"}},
            {"id": "4", "method": "GET", "url": format!("{}/v1.0/users/nobody@contoso.com/contacts", env.emu.url())},
            {"id": "5", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users/carol@contoso.com/contacts"}
        ]}),
    )
    .await;
    assert_eq!(s, 200, "outer status is 200 whatever the items: {b}");
    let r = by_id(&b);
    assert_eq!(r["1"]["status"], 200);
    assert_eq!(r["1"]["body"]["value"].as_array().unwrap().len(), 2);
    assert!(
        r["1"]["body"]["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with(&env.emu.url())
    );
    assert_eq!(r["2"]["status"], 429, "{b}");
    assert_eq!(r["2"]["headers"]["Retry-After"], "7");
    assert_eq!(r["2"]["body"]["error"]["code"], "TooManyRequests");
    assert_eq!(r["3"]["status"], 201);
    assert_eq!(r["3"]["body"]["givenName"], "Batched");
    assert_eq!(r["4"]["status"], 404);
    assert_eq!(r["4"]["body"]["error"]["code"], "ErrorInvalidUser");
    assert_eq!(r["5"]["status"], 200, "absolute item URLs are accepted");
    let stats = env.emu.stats();
    assert_eq!(
        (stats.requests, stats.batches, stats.batch_items),
        (1, 1, 5),
        "{stats:?}"
    );
    assert_eq!(stats.by_mailbox["adele@contoso.com"].post, 1);
    assert_eq!(stats.by_mailbox["carol@contoso.com"].throttled, 1);
}

#[tokio::test]
async fn batch_items_share_the_batch_token_and_see_it_expire_mid_batch() {
    // Items are verified once with the batch (no JWT decode per item) but must still see the
    // token expire while the batch runs: item 2 expires it (fault), item 3 runs after it
    // (dependsOn orders the batch) and must be refused the same way.
    let env = crate::common::start().await;
    let token = env.token().await;
    env.emu.set_faults(
        serde_json::from_value(json!({"rules": [
            {"match": {"method": "GET", "mailbox": "adele@contoso.com"}, "nth": 2,
             "action": {"expireToken": true}}]}))
        .unwrap(),
    );
    let url = "/users/adele@contoso.com/contacts?$top=1";
    let (s, b) = batch(
        &env,
        &token,
        json!({"requests": [
            {"id": "1", "method": "GET", "url": url},
            {"id": "2", "method": "GET", "url": url, "dependsOn": ["1"]},
            {"id": "3", "method": "GET", "url": url, "dependsOn": ["1"]}
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let r = by_id(&b);
    assert_eq!(r["1"]["status"], 200, "{b}");
    assert_eq!(r["2"]["status"], 401, "{b}");
    assert_eq!(
        r["2"]["body"]["error"]["code"],
        "InvalidAuthenticationToken"
    );
    assert_eq!(
        r["3"]["status"], 401,
        "the expired token is seen by later items: {b}"
    );
    assert_eq!(
        r["3"]["body"]["error"]["code"],
        "InvalidAuthenticationToken"
    );
    let (s, _) = batch(
        &env,
        &token,
        json!({"requests": [{"id": "1", "method": "GET", "url": url}]}),
    )
    .await;
    assert_eq!(s, 401, "the batch's token stays expired");
}

#[tokio::test]
async fn batch_validation_and_depends_on() {
    let env = crate::common::start().await;
    let token = env.token().await;
    let items: Vec<Value> =
        (0..21).map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users/adele@contoso.com/contacts"})).collect();
    let (s, b) = batch(&env, &token, json!({"requests": items})).await;
    assert_graph_error(s, &b, 400, "BadRequest");
    let (s, b) = batch(
        &env,
        &token,
        json!({"requests": [{"id": "a", "method": "GET", "url": "/users"}, {"id": "A", "method": "GET", "url": "/users"}]}),
    )
    .await;
    assert_graph_error(s, &b, 400, "BadRequest");

    let (s, b) = batch(
        &env,
        &token,
        json!({"requests": [
            {"id": "1", "method": "GET", "url": "/users/adele@contoso.com/contacts/AAMkAnonexistentnonexistent"},
            {"id": "2", "method": "GET", "url": "/users/adele@contoso.com/contacts", "dependsOn": ["1"]},
            {"id": "3", "method": "GET", "url": "/users/carol@contoso.com/contacts"}
        ]}),
    )
    .await;
    assert_eq!(s, 200);
    let r = by_id(&b);
    assert_eq!(r["1"]["status"], 404);
    assert_eq!(r["2"]["status"], 424, "dependant of a failure: {b}");
    assert_eq!(r["3"]["status"], 200);

    // Without a valid token the batch itself is refused.
    let (s, b) = batch(
        &env,
        "garbage",
        json!({"requests": [{"id": "1", "method": "GET", "url": "/users"}]}),
    )
    .await;
    assert_graph_error(s, &b, 401, "InvalidAuthenticationToken");
}

#[tokio::test]
async fn batch_items_to_one_mailbox_run_at_most_four_at_a_time() {
    let env = start_opts(
        fixture(),
        EmulatorOptions {
            latency: Duration::from_millis(100),
            ..EmulatorOptions::default()
        },
    )
    .await;
    let token = env.token().await;
    let items: Vec<Value> = (0..12)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": format!("/users/adele@contoso.com/contacts?$top=1&$skip={i}")}))
        .collect();
    let started = std::time::Instant::now();
    let (s, b) = batch(&env, &token, json!({"requests": items})).await;
    assert_eq!(s, 200);
    assert!(
        by_id(&b).values().all(|r| r["status"] == 200),
        "none throttled: {b}"
    );
    assert_eq!(
        env.emu.stats().by_mailbox["adele@contoso.com"].max_in_flight,
        4
    );
    // 12 items, 4 at a time, 100 ms each: at least three rounds.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Delta

#[tokio::test]
async fn delta_round_update_delete_touch_and_expired_tokens() {
    let env = crate::common::start().await;
    let token = env.token().await;
    let first = env.url(&format!("{ADELE}/delta?$select=displayName,companyName"));
    let (rows, delta, pages) =
        follow_round(&env, &token, &first, Some("odata.maxpagesize=10")).await;
    assert_eq!(rows.len(), 25);
    assert_eq!(pages, 3);
    let keys: Vec<&String> = rows[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        5,
        "@odata.type, @odata.etag, id + the two selected: {:?}",
        rows[0]
    );
    let ids: Vec<String> = rows
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();

    // An update, a delete, a user's edit via the control plane, and a new contact.
    let (s, _) = env
        .send(
            Method::PATCH,
            &format!("{ADELE}/{}", ids[0]),
            &token,
            Some(json!({"companyName": "NewCo"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = env
        .send(Method::DELETE, &format!("{ADELE}/{}", ids[1]), &token, None)
        .await;
    assert_eq!(s, 204);
    let r = env
        .http
        .post(env.url(&format!(
            "/_emulator/users/adele@contoso.com/contacts/{}/touch",
            ids[2]
        )))
        .json(&json!({"jobTitle": "Edited in Outlook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (s, _) = env
        .send(
            Method::POST,
            ADELE,
            &token,
            Some(json!({"givenName": "Newbie"})),
        )
        .await;
    assert_eq!(s, 201);

    let (rows, delta2, _) = follow_round(&env, &token, &delta, None).await;
    assert_eq!(rows.len(), 4, "{rows:#?}");
    let find = |id: &str| rows.iter().find(|r| r["id"] == id).cloned().unwrap();
    assert_eq!(find(&ids[0])["companyName"], "NewCo");
    assert!(
        find(&ids[0]).get("jobTitle").is_none(),
        "$select is carried in the token"
    );
    assert_eq!(
        find(&ids[1]),
        json!({"@odata.type": "#microsoft.graph.contact", "id": ids[1], "@removed": {"reason": "deleted"}})
    );
    assert!(find(&ids[2])["@odata.etag"].is_string());

    // Nothing changed since: an empty round.
    let (rows, delta3, _) = follow_round(&env, &token, &delta2, None).await;
    assert!(rows.is_empty(), "{rows:?}");

    // Unknown and expired tokens: 410 SyncStateNotFound.
    let (s, b) = env
        .send(
            Method::GET,
            &format!("{ADELE}/delta?$deltatoken=nope"),
            &token,
            None,
        )
        .await;
    assert_graph_error(s, &b, 410, "SyncStateNotFound");
    env.emu.advance_clock(Duration::from_secs(25 * 3600));
    let token = env.token().await;
    let (s, b) = env.send(Method::GET, &delta3, &token, None).await;
    assert_graph_error(s, &b, 410, "SyncStateNotFound");
    // Control-plane expiry too.
    let (_, fresh, _) = follow_round(&env, &token, &env.url(&format!("{ADELE}/delta")), None).await;
    let r = env
        .http
        .post(env.url("/_emulator/delta/expire"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (s, _) = env.send(Method::GET, &fresh, &token, None).await;
    assert_eq!(s, 410);
}

#[tokio::test]
async fn delta_of_a_named_folder() {
    let env = crate::common::start().await;
    let token = env.token().await;
    let (_, b) = env
        .send(
            Method::GET,
            "/v1.0/users/hub@contoso.com/contactFolders?$filter=displayName eq 'Bob''s Folder'",
            &token,
            None,
        )
        .await;
    let fid = b["value"][0]["id"].as_str().unwrap().to_owned();
    let first = env.url(&format!(
        "/v1.0/users/hub@contoso.com/contactFolders/{fid}/contacts/delta"
    ));
    let (rows, _, _) = follow_round(&env, &token, &first, None).await;
    assert_eq!(rows.len(), 12, "contacts only, not the contact groups");
}

// ---------------------------------------------------------------------------------------------
// touch and If-Match

#[tokio::test]
async fn a_users_edit_makes_the_old_etag_stale() {
    let env = crate::common::start().await;
    let token = env.token().await;
    let (_, b) = env
        .send(Method::GET, &format!("{ADELE}?$top=1"), &token, None)
        .await;
    let c = &b["value"][0];
    let (id, etag) = (
        c["id"].as_str().unwrap(),
        c["@odata.etag"].as_str().unwrap(),
    );
    // Timestamps have one-second resolution; the edit happens a minute later.
    env.emu.advance_clock(Duration::from_secs(60));
    let r = env
        .http
        .post(env.url(&format!(
            "/_emulator/users/adele@contoso.com/contacts/{id}/touch"
        )))
        .json(&json!({"jobTitle": "Changed by Adele"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let touched: Value = r.json().await.unwrap();
    assert_ne!(touched["@odata.etag"], etag);
    assert_eq!(touched["jobTitle"], "Changed by Adele");
    assert_ne!(touched["lastModifiedDateTime"], c["lastModifiedDateTime"]);
    let r = env
        .http
        .patch(env.url(&format!("{ADELE}/{id}")))
        .bearer_auth(&token)
        .header("if-match", etag)
        .json(&json!({"jobTitle": "Sync"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    let r = env
        .http
        .post(env.url("/_emulator/users/adele@contoso.com/contacts/AAMkAmissing/touch"))
        .send()
        .await;
    assert_eq!(r.unwrap().status(), 404);
}

// ---------------------------------------------------------------------------------------------
// TLS

#[tokio::test]
async fn tls_round_trip_trusting_the_exported_ca() {
    let env = start_opts(
        fixture(),
        EmulatorOptions {
            tls: true,
            ..EmulatorOptions::default()
        },
    )
    .await;
    assert!(env.emu.url().starts_with("https://127.0.0.1:"));
    let ca = reqwest::Certificate::from_pem(env.emu.ca_pem().unwrap().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let env = Env { emu: env.emu, http };
    let token = env.token().await;
    let (s, b) = env
        .send(Method::GET, &format!("{ADELE}?$top=2"), &token, None)
        .await;
    assert_eq!(s, 200);
    assert!(
        b["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with("https://"),
        "links keep the scheme"
    );
    // Without trusting the CA, a client refuses the server.
    assert!(
        reqwest::Client::new()
            .get(env.url("/_emulator/stats"))
            .send()
            .await
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// Client assertions at the token endpoint

mod assertions {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use rcgen::{CertificateParams, KeyPair, PKCS_RSA_SHA256, RsaKeySize};
    use sha2::Digest as _;

    const FED_ISS: &str = "https://gitlab.example.com";
    const FED_SUB: &str = "project_path:grp/proj:ref_type:branch:ref:main";
    const FED_AUD: &str = "api://AzureADTokenExchange";

    struct Keys {
        key_pem: String,
        cert_pem: String,
        cert_der: Vec<u8>,
        public_pem: String,
    }

    fn keys() -> Keys {
        let kp = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048).unwrap();
        let cert = CertificateParams::new(vec!["synccontacts".into()])
            .unwrap()
            .self_signed(&kp)
            .unwrap();
        Keys {
            key_pem: kp.serialize_pem(),
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            public_pem: kp.public_key_pem(),
        }
    }

    fn scenario(k: &Keys) -> Scenario {
        let mut v = fixture_json();
        v["tenants"][0]["apps"].as_array_mut().unwrap().push(json!({
            "clientId": "app-cert", "certificatePem": k.cert_pem,
            "federated": [{"issuer": FED_ISS, "subject": FED_SUB, "audience": FED_AUD, "jwksPem": k.public_pem}],
            "roles": ["Contacts.ReadWrite", "User.Read.All"]}));
        Scenario::from_json(&v.to_string()).unwrap()
    }

    fn now() -> i64 {
        #[allow(clippy::disallowed_methods)] // the emulator checks against real time
        jiff::Timestamp::now().as_second()
    }

    async fn token_with(env: &Env, assertion: &str) -> (u16, Value) {
        let r = env
            .token_request(
                TENANT,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", "app-cert"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", assertion),
                    ("scope", GRAPH_SCOPE),
                ],
            )
            .await;
        (r.status().as_u16(), r.json().await.unwrap())
    }

    #[tokio::test]
    async fn certificate_and_federated_assertions_accepted_and_rejected() {
        let k = keys();
        let env = start_opts(scenario(&k), EmulatorOptions::default()).await;
        let token_url = format!("{}/{TENANT}/oauth2/v2.0/token", env.emu.url());
        let sign = |aud: &str, key_pem: &str| {
            let mut h = Header::new(Algorithm::PS256);
            h.x5t_s256 = Some(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&k.cert_der)));
            let claims = json!({"aud": aud, "iss": "app-cert", "sub": "app-cert", "jti": "1",
                                "nbf": now() - 5, "exp": now() + 300});
            jsonwebtoken::encode(
                &h,
                &claims,
                &EncodingKey::from_rsa_pem(key_pem.as_bytes()).unwrap(),
            )
            .unwrap()
        };
        let (s, b) = token_with(&env, &sign(&token_url, &k.key_pem)).await;
        assert_eq!(s, 200, "{b}");
        let access = b["access_token"].as_str().unwrap();
        assert_eq!(env.send(Method::GET, ADELE, access, None).await.0, 200);

        let (s, b) = token_with(
            &env,
            &sign(
                "https://login.microsoftonline.com/x/oauth2/v2.0/token",
                &k.key_pem,
            ),
        )
        .await;
        assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(50027)), "{b}");

        let other = KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048)
            .unwrap()
            .serialize_pem();
        let (s, b) = token_with(&env, &sign(&token_url, &other)).await;
        assert_eq!(
            (s, b["error"].as_str(), b["error_codes"][0].as_u64()),
            (401, Some("invalid_client"), Some(700027))
        );

        let fed = |sub: &str| {
            let claims = json!({"iss": FED_ISS, "sub": sub, "aud": FED_AUD, "nbf": now() - 5, "exp": now() + 300});
            jsonwebtoken::encode(
                &Header::new(Algorithm::RS256),
                &claims,
                &EncodingKey::from_rsa_pem(k.key_pem.as_bytes()).unwrap(),
            )
            .unwrap()
        };
        let (s, b) = token_with(&env, &fed(FED_SUB)).await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = token_with(&env, &fed("project_path:grp/proj:ref_type:branch:ref:dev")).await;
        assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(70021)), "{b}");
        assert!(
            b["error_description"]
                .as_str()
                .unwrap()
                .contains("Assertion Subject: 'project_path:grp/proj:ref_type:branch:ref:dev'")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The binary: `serve --tls --ca-out --faults --mailbox-requests`

#[tokio::test]
async fn binary_serves_https_with_exported_ca_and_a_fault_plan() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = std::env::temp_dir().join(format!("graph-emulator-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (scenario, faults, ca) = (
        dir.join("scenario.json"),
        dir.join("faults.json"),
        dir.join("ca.pem"),
    );
    std::fs::write(&scenario, fixture_json().to_string()).unwrap();
    let plan = json!({"seed": 1, "rules": [{"match": {"path": "/v1.0/users/**"}, "nth": 1,
                                            "action": {"status": 503, "retryAfter": 2}}]});
    std::fs::write(&faults, plan.to_string()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_graph-emulator"))
        .args(["serve", "--tls", "--scenario"])
        .arg(&scenario)
        .arg("--faults")
        .arg(&faults)
        .arg("--ca-out")
        .arg(&ca)
        .args(["--mailbox-requests", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .to_owned();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let pem = std::fs::read(&ca).expect("the CA is written before the listening line");
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem).unwrap()])
        .build()
        .unwrap();
    let token: Value = http
        .post(format!("{url}/{TENANT}/oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(crate::common::form_body(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app-full"),
            ("client_secret", crate::common::SECRET),
            ("scope", GRAPH_SCOPE),
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    let get = || http.get(format!("{url}{ADELE}")).bearer_auth(token).send();
    let first = get().await.unwrap();
    assert_eq!(first.status(), 503, "the plan's first match");
    assert_eq!(first.headers()["retry-after"], "2");
    // A request refused by a fault never reached Outlook: two more fit the budget of 2.
    assert_eq!(get().await.unwrap().status(), 200);
    assert_eq!(get().await.unwrap().status(), 200);
    let over = get().await.unwrap();
    assert_eq!(over.status(), 429, "--mailbox-requests 2");
    assert!(over.headers().contains_key("retry-after"));
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn batch_items_meet_the_mailbox_budget_and_drop_faults_individually() {
    let env = start_opts(
        fixture(),
        EmulatorOptions {
            limits: Limits {
                mailbox_requests: 2,
                ..Limits::default()
            },
            ..EmulatorOptions::default()
        },
    )
    .await;
    let token = env.token().await;
    let items: Vec<Value> = (0..3)
        .map(|i| json!({"id": i.to_string(), "method": "GET", "url": "/users/carol@contoso.com/contacts"}))
        .collect();
    let (s, b) = batch(&env, &token, json!({"requests": items})).await;
    assert_eq!(s, 200);
    let throttled: Vec<&Value> = b["responses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 429)
        .collect();
    assert_eq!(throttled.len(), 1, "a budget of 2, three items: {b}");
    assert_eq!(
        throttled[0]["body"]["error"]["code"],
        "ApplicationThrottled"
    );
    let retry: u64 = throttled[0]["headers"]["Retry-After"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "{b}");

    // An item whose connection is dropped after applying loses the whole batch's answer.
    env.emu.set_limits(Limits::default());
    env.emu.set_faults(
        serde_json::from_value(json!({"rules": [{"match": {"method": "POST"}, "nth": 1, "action": {"drop": "after"}}]}))
            .unwrap(),
    );
    let r = env
        .http
        .post(env.url("/v1.0/$batch"))
        .bearer_auth(&token)
        .json(&json!({"requests": [{"id": "1", "method": "POST", "url": "/users/carol@contoso.com/contacts",
            "headers": {"Content-Type": "application/json"}, "body": {"givenName": "InLostBatch"}}]}))
        .send()
        .await;
    assert!(r.is_err(), "{r:?}");
    let state = serde_json::to_value(env.emu.state()).unwrap().to_string();
    assert!(state.contains("InLostBatch"));
}

// ---------------------------------------------------------------------------------------------
// Retry-After compliance (docs/reliability.md I5: no request repeated before its Retry-After
// passed)

#[tokio::test]
async fn a_repeat_before_retry_after_counts_as_an_early_retry_and_one_after_does_not() {
    let plan: FaultPlan = serde_json::from_value(json!({
        "rules": [{"match": {"method": "GET", "path": "/v1.0/users/*/contacts"}, "nth": 1,
                   "action": {"status": 429, "retryAfter": 5}}]
    }))
    .unwrap();
    let env = start_opts(
        fixture(),
        EmulatorOptions {
            faults: Some(plan),
            ..EmulatorOptions::default()
        },
    )
    .await;
    let (s, _) = env.get(ADELE).await;
    assert_eq!(s, 429);
    // Another request to the same mailbox is not a repeat of the throttled one.
    let (s, _) = env.get(&format!("{ADELE}?$top=1")).await;
    assert_eq!(s, 200);
    let early = |env: &Env| env.emu.stats().by_mailbox["adele@contoso.com"].early_retries;
    assert_eq!(early(&env), 0);
    // The same request again at once: too early.
    let (s, _) = env.get(ADELE).await;
    assert_eq!(s, 200);
    assert_eq!(early(&env), 1);
    // After the Retry-After (on the emulator clock) it is fine.
    env.emu.advance_clock(Duration::from_secs(6));
    let (s, _) = env.get(ADELE).await;
    assert_eq!(s, 200);
    assert_eq!(early(&env), 1);
}
