//! Throughput benchmark of the Graph client against the in-process emulator with Graph's limits
//! on and a fixed service latency (issue 5): read M mailboxes × N contacts, and write W contacts
//! into one mailbox. Prints request counts and wall time next to the bound implied by 4 requests
//! in flight per mailbox and the latency.
//!
//! `cargo bench -p graph --bench throughput` (sizes: `BENCH_MAILBOXES`, `BENCH_CONTACTS`,
//! `BENCH_WRITES`, `BENCH_LATENCY_MS`). A measurement tool, not a test: it asserts only that the
//! work was done.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graph::{
    ClientConfig, Credential, Endpoints, FolderRef, GraphClient, Secret, SystemClock, WriteRequest,
};
use graph_emulator::{EmulatorOptions, GenerateOptions, generate};
use serde_json::json;

/// A contact as a sync reads it (the shape and `$select` of synccontacts' model), so reading and
/// parsing cost what they cost the binary. The client itself is generic over it.
#[allow(dead_code, reason = "parsed for the cost of parsing, not read")]
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct BenchContact {
    id: String,
    #[serde(default, rename = "@odata.etag")]
    etag: Option<String>,
    #[serde(default)]
    last_modified_date_time: Option<jiff::Timestamp>,
    #[serde(default)]
    personal_notes: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    #[serde(default)]
    surname: Option<String>,
    #[serde(default)]
    company_name: Option<String>,
    #[serde(default)]
    job_title: Option<String>,
    #[serde(default)]
    department: Option<String>,
    #[serde(default)]
    business_phones: Option<Vec<String>>,
    #[serde(default)]
    mobile_phone: Option<String>,
    #[serde(default)]
    home_phones: Option<Vec<String>>,
    #[serde(default)]
    email_addresses: Option<Vec<BenchEmail>>,
    #[serde(default)]
    im_addresses: Option<Vec<String>>,
    #[serde(default)]
    categories: Option<Vec<String>>,
}

#[allow(dead_code, reason = "parsed for the cost of parsing, not read")]
#[derive(serde::Deserialize)]
struct BenchEmail {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

const SELECT: &str = "id,lastModifiedDateTime,personalNotes,displayName,givenName,surname,companyName,jobTitle,department,businessPhones,mobilePhone,homePhones,emailAddresses,imAddresses,categories";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn client(url: &str, scenario: &graph_emulator::Scenario) -> GraphClient {
    let t = &scenario.tenants[0];
    let app = &t.apps[0];
    let mut cfg = ClientConfig::new(
        t.tenant_id.clone(),
        app.client_id.clone(),
        Credential::Secret(Secret::new(app.client_secret.clone().unwrap())),
        Endpoints::new(url, url).unwrap(),
    );
    cfg.clock = Arc::new(SystemClock);
    cfg.global_concurrency = 256;
    GraphClient::new(cfg).unwrap()
}

#[tokio::main]
async fn main() {
    let mailboxes = env_usize("BENCH_MAILBOXES", 200);
    let contacts = env_usize("BENCH_CONTACTS", 1_000);
    let writes = env_usize("BENCH_WRITES", 2_000);
    let latency = Duration::from_millis(env_usize("BENCH_LATENCY_MS", 20) as u64);
    let lat_ms = latency.as_secs_f64() * 1000.0;

    // --- read M mailboxes × N contacts
    let scenario = generate(&GenerateOptions {
        users: mailboxes,
        contacts_per_user: contacts,
        seed: 1,
        ..Default::default()
    });
    let opts = EmulatorOptions {
        latency,
        ..Default::default()
    };
    let emu = graph_emulator::start(scenario.clone(), opts.clone())
        .await
        .unwrap();
    let c = client(&emu.url(), &scenario);
    c.token().await.unwrap();
    emu.reset_stats();
    let users: Vec<String> = scenario.tenants[0]
        .users
        .iter()
        .filter(|u| !u.assigned_licenses.is_empty())
        .map(|u| u.user_principal_name.clone())
        .collect();
    let t0 = Instant::now();
    let results = futures::future::join_all(
        users
            .iter()
            .map(|u| c.list_contacts::<BenchContact>(u, &FolderRef::Default, SELECT)),
    )
    .await;
    let read_wall = t0.elapsed();
    let total: usize = results.into_iter().map(|r| r.unwrap().len()).sum();
    assert_eq!(total, mailboxes * contacts);
    let st = emu.stats();
    let pages_per_mailbox = contacts.div_ceil(1000).max(1);
    let min_requests = mailboxes * pages_per_mailbox;
    // Pages of one mailbox are sequential (each nextLink comes from the previous page), so the
    // latency bound is pages × latency; mailboxes run in parallel.
    let bound_ms = pages_per_mailbox as f64 * lat_ms;
    println!(
        "read  {mailboxes} mailboxes x {contacts} contacts: {total} contacts, {} requests (minimum {min_requests}), throttled {}, wall {:.0} ms; latency bound {:.0} ms ({pages_per_mailbox} sequential page(s) x {lat_ms:.0} ms, mailboxes in parallel)",
        st.requests,
        st.throttled,
        read_wall.as_secs_f64() * 1000.0,
        bound_ms
    );
    emu.shutdown().await;

    // How much of that is the client's own CPU: parse the same pages (as JSON text) into
    // contacts without any network or emulator work.
    let pages: Vec<Vec<u8>> = scenario.tenants[0]
        .users
        .iter()
        .filter(|u| !u.contacts.is_empty())
        .map(|u| serde_json::to_vec(&json!({ "value": u.contacts })).unwrap())
        .collect();
    let t0 = Instant::now();
    let mut parsed = 0usize;
    for p in &pages {
        #[derive(serde::Deserialize)]
        struct Page {
            value: Vec<BenchContact>,
        }
        parsed += serde_json::from_slice::<Page>(p).unwrap().value.len();
    }
    println!(
        "      client-side JSON parsing of the same {parsed} contacts alone: {:.0} ms (single thread)",
        t0.elapsed().as_secs_f64() * 1000.0
    );

    // --- write W contacts into one mailbox
    let scenario = generate(&GenerateOptions {
        users: 1,
        contacts_per_user: 0,
        seed: 2,
        ..Default::default()
    });
    let emu = graph_emulator::start(scenario.clone(), opts).await.unwrap();
    let c = client(&emu.url(), &scenario);
    let hub = "hub@contoso.com";
    let folder = c.create_contact_folder(hub, "All Contacts").await.unwrap();
    emu.reset_stats();
    let reqs: Vec<_> = (0..writes)
        .map(|i| {
            WriteRequest::create(
                FolderRef::Id(folder.id.clone()),
                json!({"displayName": format!("Bench Person {i}"),
                       "emailAddresses": [{"name": format!("Bench Person {i}"), "address": format!("bench{i}@example.com")}],
                       "personalNotes": format!("SyncId={};CreatedBy=bench", uuid_like(i))}),
            )
        })
        .collect();
    let t0 = Instant::now();
    let res = c.execute_writes::<BenchContact>(hub, reqs).await;
    let write_wall = t0.elapsed();
    let failed = res.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = res.iter().find(|r| r.is_err()) {
        eprintln!("first failure: {e}");
    }
    let st = emu.stats();
    let min_batches = writes.div_ceil(20);
    // Outlook runs at most 4 requests per mailbox at once (batch items included), so W writes
    // need at least W/4 latency periods.
    let bound_ms = (writes as f64 / 4.0).ceil() * lat_ms;
    println!(
        "write {writes} contacts into one mailbox: {} ok, {failed} failed, {} HTTP requests ({} batches, {} items; minimum {min_batches} batches), throttled {}, wall {:.0} ms; 4-in-flight bound {:.0} ms ({writes}/4 x {lat_ms:.0} ms)",
        writes - failed,
        st.requests,
        st.batches,
        st.batch_items,
        st.throttled,
        write_wall.as_secs_f64() * 1000.0,
        bound_ms
    );
    println!("client stats: {:?}", c.stats());
    emu.shutdown().await;
}

fn uuid_like(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}
