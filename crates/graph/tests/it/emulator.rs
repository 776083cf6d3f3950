//! The client against the in-process Graph emulator: real token endpoint, real paging, real
//! resource shapes and error codes. Requests are counted on both sides (client stats and the
//! emulator's `/_emulator/stats`), so a hidden retry or an extra page shows up as a mismatch.

use std::sync::Arc;
use std::time::Duration;

use graph::{
    ClientConfig, Credential, Endpoints, ErrorKind, FolderRef, GraphClient, Secret, SystemClock,
    WriteRequest,
};
use graph_emulator::{EmulatorOptions, GenerateOptions, RunningEmulator, Scenario, generate};
use serde_json::json;

use crate::contact::{Contact, SELECT};

pub struct Env {
    pub emu: RunningEmulator,
    pub scenario: Scenario,
}

impl Env {
    pub async fn start(options: GenerateOptions, opts: EmulatorOptions) -> Self {
        let scenario = generate(&options);
        let emu = graph_emulator::start(scenario.clone(), opts).await.unwrap();
        Self { emu, scenario }
    }

    pub fn config(&self) -> ClientConfig {
        let t = &self.scenario.tenants[0];
        let app = &t.apps[0];
        let url = self.emu.url();
        let mut cfg = ClientConfig::new(
            t.tenant_id.clone(),
            app.client_id.clone(),
            Credential::Secret(Secret::new(app.client_secret.clone().unwrap())),
            Endpoints::new(&url, &url).unwrap(),
        );
        cfg.clock = Arc::new(SystemClock);
        cfg.seed = 7;
        cfg
    }

    pub fn client(&self) -> GraphClient {
        GraphClient::new(self.config()).unwrap()
    }

    pub fn users(&self) -> Vec<String> {
        self.scenario.tenants[0]
            .users
            .iter()
            .filter(|u| !u.assigned_licenses.is_empty())
            .map(|u| u.user_principal_name.clone())
            .collect()
    }
}

pub const HUB: &str = "hub@contoso.com";

#[tokio::test]
async fn users_and_contacts_read_with_exact_request_counts() {
    let env = Env::start(
        GenerateOptions {
            users: 4,
            contacts_per_user: 30,
            seed: 3,
            ..Default::default()
        },
        EmulatorOptions::default(),
    )
    .await;
    let c = env.client();
    let users = c.licensed_users().await.unwrap();
    let mut got: Vec<String> = users.iter().map(|u| u.key().to_owned()).collect();
    got.sort();
    let mut want = env.users();
    want.sort();
    assert_eq!(got, want, "licensed users only (the hub is unlicensed)");
    assert!(!got.iter().any(|u| u == HUB));

    let hub = c.user(HUB).await.unwrap();
    assert_eq!(hub.user_principal_name.as_deref(), Some(HUB));

    for u in &want {
        let contacts = c
            .list_contacts::<Contact>(u, &FolderRef::Default, SELECT)
            .await
            .unwrap();
        assert_eq!(contacts.len(), 30, "{u}");
        assert!(
            contacts
                .iter()
                .all(|c| c.etag.is_some() && c.last_modified_date_time.is_some())
        );
    }
    let st = env.emu.stats();
    assert_eq!(st.requests, c.stats().requests, "no hidden requests");
    assert_eq!(st.requests, 1 + 1 + 4, "one page each");
    assert_eq!(st.token_requests, 1);
}

#[tokio::test]
async fn contacts_paging_across_pages_of_1000() {
    let env = Env::start(
        GenerateOptions {
            users: 1,
            contacts_per_user: 2_150,
            seed: 5,
            ..Default::default()
        },
        EmulatorOptions::default(),
    )
    .await;
    let c = env.client();
    let u = &env.users()[0];
    let contacts = c
        .list_contacts::<Contact>(u, &FolderRef::Default, SELECT)
        .await
        .unwrap();
    assert_eq!(contacts.len(), 2_150);
    let mut ids: Vec<_> = contacts.iter().map(|c| c.id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 2_150, "no duplicates across pages");
    assert_eq!(env.emu.stats().requests, 3);
}

#[tokio::test]
async fn hub_folder_create_find_and_writes_with_if_match() {
    let env = Env::start(
        GenerateOptions {
            users: 1,
            contacts_per_user: 1,
            seed: 9,
            ..Default::default()
        },
        EmulatorOptions::default(),
    )
    .await;
    // Direct requests here; the $batch path is covered with the emulator's limits on.
    let mut cfg = env.config();
    cfg.batch_writes = false;
    let c = GraphClient::new(cfg).unwrap();
    assert!(
        c.find_contact_folder(HUB, "All Contacts")
            .await
            .unwrap()
            .is_none()
    );
    let f = c.create_contact_folder(HUB, "All Contacts").await.unwrap();
    assert_eq!(f.display_name.as_deref(), Some("All Contacts"));
    let found = c
        .find_contact_folder(HUB, "All Contacts")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, f.id);
    // A repeated create (e.g. after a lost response) yields the same folder, not an error.
    assert_eq!(
        c.create_contact_folder(HUB, "All Contacts")
            .await
            .unwrap()
            .id,
        f.id
    );

    let folder = FolderRef::Id(f.id.clone());
    let writes: Vec<_> = (0..7)
        .map(|i| {
            WriteRequest::create(
                folder.clone(),
                json!({"displayName": format!("Person {i}"), "emailAddresses": [{"name": "P", "address": format!("p{i}@example.com")}],
                       "personalNotes": format!("SyncId=00000000-0000-4000-8000-00000000000{i};CreatedBy=x")}),
            )
        })
        .collect();
    let res = c.execute_writes::<Contact>(HUB, writes).await;
    let created: Vec<_> = res.into_iter().map(|r| r.unwrap()).collect();
    assert!(created.iter().all(|w| w.status == 201));
    let listed = c
        .list_contacts::<Contact>(HUB, &folder, SELECT)
        .await
        .unwrap();
    assert_eq!(listed.len(), 7);

    let first = created[0].body.clone().unwrap();
    let upd = WriteRequest::update(
        folder.clone(),
        first.id.clone(),
        first.etag.clone(),
        json!({"jobTitle": "Chief"}),
    );
    let ok = c
        .execute_writes::<Contact>(HUB, vec![upd.clone()])
        .await
        .remove(0)
        .unwrap();
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body.unwrap().job_title.as_deref(), Some("Chief"));
    // The same etag is stale now: 412, classified Conflict, not retried.
    let before = env.emu.stats().requests;
    let e = c
        .execute_writes::<Contact>(HUB, vec![upd])
        .await
        .remove(0)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Conflict, "{e}");
    assert_eq!(e.status, Some(412));
    assert_eq!(env.emu.stats().requests, before + 1);
}

#[tokio::test]
async fn missing_mailboxes_are_classified() {
    let mut scenario = generate(&GenerateOptions {
        users: 2,
        contacts_per_user: 1,
        seed: 11,
        ..Default::default()
    });
    scenario.tenants[0].users[1].mailbox = Some(false);
    scenario.tenants[0].users[1].contacts.clear();
    let no_mailbox = scenario.tenants[0].users[1].user_principal_name.clone();
    let emu = graph_emulator::start(scenario.clone(), EmulatorOptions::default())
        .await
        .unwrap();
    let env = Env { emu, scenario };
    let c = env.client();
    let e = c
        .list_contacts::<Contact>(&no_mailbox, &FolderRef::Default, SELECT)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::MailboxNotEnabled, "{e}");
    assert!(e.is_missing_mailbox());
    assert!(e.request_id.is_some());
    let e = c
        .list_contacts::<Contact>("nobody@contoso.com", &FolderRef::Default, SELECT)
        .await
        .unwrap_err();
    assert!(
        e.is_missing_mailbox() || e.kind == ErrorKind::NotFound,
        "{e}"
    );
    let e = c.user("nobody@contoso.com").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert_eq!(env.emu.stats().requests, 3, "404s are not retried");
}

#[tokio::test]
async fn wrong_secret_and_unknown_tenant_say_what_to_fix() {
    let env = Env::start(
        GenerateOptions {
            users: 1,
            contacts_per_user: 1,
            seed: 2,
            ..Default::default()
        },
        EmulatorOptions::default(),
    )
    .await;
    let mut cfg = env.config();
    cfg.credential = Credential::Secret(Secret::new("definitely-not-the-secret"));
    let e = GraphClient::new(cfg).unwrap().token().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Auth);
    assert_eq!(e.code.as_deref(), Some("AADSTS7000215"), "{e}");
    let mut cfg = env.config();
    cfg.tenant = "00000000-0000-4000-8000-0000000000ff".into();
    let e = GraphClient::new(cfg).unwrap().token().await.unwrap_err();
    assert_eq!(e.code.as_deref(), Some("AADSTS90002"), "{e}");
    assert!(e.message.contains("check the tenant id"), "{e}");
    assert_eq!(e.token_problem(), Some(graph::TokenProblem::UnknownTenant));
    let mut cfg = env.config();
    cfg.client_id = "11111111-0000-4000-8000-000000000000".into();
    let e = GraphClient::new(cfg).unwrap().token().await.unwrap_err();
    assert_eq!(e.code.as_deref(), Some("AADSTS700016"), "{e}");
    assert_eq!(
        env.emu.stats().token_requests,
        3,
        "auth errors are not retried"
    );
}

#[tokio::test]
async fn token_expiry_mid_run_costs_one_refresh() {
    let env = Env::start(
        GenerateOptions {
            users: 1,
            contacts_per_user: 3,
            seed: 4,
            ..Default::default()
        },
        EmulatorOptions::default(),
    )
    .await;
    let c = env.client();
    let u = env.users()[0].clone();
    c.list_contacts::<Contact>(&u, &FolderRef::Default, SELECT)
        .await
        .unwrap();
    // The emulator's clock jumps two hours: our cached token is now expired server-side while
    // the client's (real) clock still thinks it is fresh, exactly the case 401 handling is for.
    env.emu.advance_clock(Duration::from_secs(7200));
    c.list_contacts::<Contact>(&u, &FolderRef::Default, SELECT)
        .await
        .unwrap();
    let st = env.emu.stats();
    assert_eq!(st.token_requests, 2);
    assert_eq!(st.requests, 3, "first read, the 401, the retried read");
}

#[tokio::test]
async fn verified_domains_of_the_emulated_tenant() {
    let env = Env::start(GenerateOptions::default(), EmulatorOptions::default()).await;
    let c = env.client();
    let domains = c.verified_domains().await.unwrap();
    let want: Vec<_> = env.scenario.tenants[0]
        .domains
        .iter()
        .map(|d| d.id.clone())
        .collect();
    let got: Vec<_> = domains.iter().map(|d| d.name.clone()).collect();
    assert_eq!(got, want);
    assert_eq!(domains.iter().filter(|d| d.is_default).count(), 1);
    assert!(
        domains
            .iter()
            .any(|d| d.is_initial && d.name.ends_with(".onmicrosoft.com"))
    );
}
