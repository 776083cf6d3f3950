//! graph-emulator: a local stand-in for Microsoft Graph v1.0 and the identity platform's token
//! endpoint, for synccontacts' tests, benchmark and demo (contract:
//! crates/graph-emulator/README.md).
//!
//! Start one in-process with [`start`]; it listens on `127.0.0.1:0` and serves Graph at
//! `{url}/v1.0/…`, tokens at `{url}/{tenant}/oauth2/v2.0/token` and the control plane at
//! `{url}/_emulator/…`. It is judged by one thing: a client that works against it works against
//! Graph, so it must never be more lenient than Graph for our client's convenience.
//!
//! Module map: [`scenario`] (file format) → `store` (state; `groups` resolves directory
//! groups) ← `graph` (the v1.0 surface, one `dispatch` shared by HTTP and `$batch`: directory,
//! groups, mailbox, contact delta) ← `server` (axum router); `identity` (tokens), `odata` (query
//! options), `contact` and `extprops` (resource shape, extended properties), `hooks` (where
//! [`realism`] wraps every request: [`faults`], [`limits`], latency), [`batch`], [`delta`],
//! [`assertion`] (client assertions), [`tls`] (listener, HTTPS, connection drops), `control`
//! (control-plane extras), `stats` (control-plane counters), [`variants`] (alternative readings
//! of unconfirmed behaviour), [`generate`](mod@generate) (synthetic scenarios).

pub mod assertion;
pub mod batch;
mod contact;
mod control;
pub mod delta;
mod error;
mod extprops;
pub mod faults;
pub mod generate;
mod graph;
mod groups;
mod hooks;
mod identity;
pub mod limits;
mod odata;
pub mod realism;
pub mod scenario;
mod server;
mod stats;
mod store;
pub mod tls;
pub mod variants;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use delta::{DeltaConfig, ExpiredForm};
pub use faults::FaultPlan;
pub use generate::{GenerateExtras, GenerateOptions, generate, generate_with};
pub use limits::Limits;
pub use scenario::{Scenario, ScenarioError};
pub use stats::{AgentStats, MailboxStats, Stats};
pub use store::DeletedContact;
pub use variants::Variants;

/// How to run an emulator. `Default` is what tests want: a free port on 127.0.0.1, no latency,
/// plain HTTP, no faults, and Outlook's limits on (as in a real tenant).
#[derive(Debug, Clone, Default)]
pub struct EmulatorOptions {
    /// Service time added to every Graph request (`--latency-ms`).
    pub latency: Duration,
    /// Address to bind; `None` means `127.0.0.1:0`.
    pub listen: Option<SocketAddr>,
    /// Seed for server-generated ids and change keys; `None` picks a random one.
    pub seed: Option<u64>,
    /// Outlook and Graph limits (crates/graph-emulator/README.md, "Limits and faults"); on by
    /// default, `Limits::off()` to disable.
    pub limits: Limits,
    /// Fault plan (`--faults FILE`).
    pub faults: Option<FaultPlan>,
    /// Serve HTTPS with a certificate from a CA generated at start (`--tls`).
    pub tls: bool,
    /// Delta token lifetime and page sizes.
    pub delta: DeltaConfig,
    /// Alternative readings of unconfirmed Graph behaviour (`serve --variant`); all off by
    /// default, which plays the stricter reading.
    pub variants: Variants,
}

/// A running emulator. Dropping it stops the server (without waiting); [`shutdown`] waits.
///
/// [`shutdown`]: RunningEmulator::shutdown
pub struct RunningEmulator {
    url: String,
    ca_pem: Option<String>,
    addr: SocketAddr,
    shared: Arc<server::Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for RunningEmulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningEmulator")
            .field("url", &self.url)
            .finish()
    }
}

fn random_bytes() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

/// Why an emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The scenario is invalid (the message names the offending field).
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// `--tls`: the certificates or the TLS configuration could not be made.
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Validates `scenario`, loads it and starts serving. Returns once the socket accepts connections.
pub async fn start(
    scenario: Scenario,
    opts: EmulatorOptions,
) -> Result<RunningEmulator, StartError> {
    scenario.validate()?;
    let seed = opts
        .seed
        .unwrap_or_else(|| u64::from_le_bytes(random_bytes()[..8].try_into().unwrap_or_default()));
    let clock = store::Clock::default();
    let store = store::Store::from_scenario(&scenario, seed, clock.now());
    let mut jwt_key = random_bytes().to_vec();
    jwt_key.extend_from_slice(&random_bytes());
    let tls = if opts.tls {
        Some(tls::generate()?)
    } else {
        None
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shared = Arc::new(server::Shared {
        store: Mutex::new(store),
        stats: stats::StatsRecorder::default(),
        clock,
        jwt_key,
        realism: realism::Realism::new(opts.limits, opts.faults, opts.latency),
        delta: delta::DeltaStore::new(DeltaConfig {
            replays: opts.delta.replays || opts.variants.delta_replays,
            ..opts.delta
        }),
        variants: opts.variants,
        revoked: Mutex::default(),
        scheme,
    });
    let listen = opts
        .listen
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listen_error = |source| StartError::Listen {
        addr: listen,
        source,
    };
    let tcp = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(listen_error)?;
    let addr = tcp.local_addr().map_err(listen_error)?;
    let listener = tls::EmuListener::from_tcp(tcp, tls.as_ref().map(|t| t.server_config.clone()));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    // ConnectInfo carries each connection's kill switch, for the fault plan's `drop` actions.
    let app = server::router(shared.clone()).into_make_service_with_connect_info::<tls::ConnInfo>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .await
    });
    tracing::info!(%addr, "graph-emulator listening");
    Ok(RunningEmulator {
        url: format!("{scheme}://{addr}"),
        ca_pem: tls.map(|t| t.ca_pem),
        addr,
        shared,
        stop: Some(stop_tx),
        task: Some(task),
    })
}

impl RunningEmulator {
    /// `http://127.0.0.1:PORT` (`https://` with TLS; no trailing slash).
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// With TLS: the PEM of the CA that signed the server certificate (what a client trusts).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Replaces the fault plan (same as `PUT /_emulator/faults`); its counters start over.
    pub fn set_faults(&self, plan: FaultPlan) {
        self.shared.realism.faults.replace(plan);
    }

    /// Replaces the limits configuration; in-flight requests and windows carry on.
    pub fn set_limits(&self, limits: Limits) {
        self.shared.realism.limits.set_limits(limits);
    }

    /// Forgets every delta token, as Outlook does when it evicts sync states: their next use
    /// gets 410 `SyncStateNotFound` (same as `POST /_emulator/delta/expire`).
    pub fn expire_delta_tokens(&self) {
        self.shared.delta.expire_all(ExpiredForm::SyncStateNotFound);
    }

    /// Forgets every delta token; their next use gets 410 in the given form (`Reset`: with a
    /// `Location` header naming a fresh initial delta request).
    pub fn expire_delta_tokens_as(&self, form: ExpiredForm) {
        self.shared.delta.expire_all(form);
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current state in scenario format (same as `GET /_emulator/state`).
    pub fn state(&self) -> Scenario {
        let now = self.shared.clock.now();
        let mut store = self.shared.store.lock().unwrap();
        store.settle_all(now);
        store.export()
    }

    pub fn stats(&self) -> Stats {
        self.shared.stats.snapshot()
    }

    /// Contacts deleted through the Graph API since the last stats reset, by mailbox UPN, oldest
    /// first (same as `GET /_emulator/deleted`).
    pub fn deleted(&self) -> BTreeMap<String, Vec<DeletedContact>> {
        self.shared.store.lock().unwrap().deleted_by_mailbox()
    }

    /// Resets the stats and the deletion log (same as `POST /_emulator/stats/reset`).
    pub fn reset_stats(&self) {
        self.shared.stats.reset();
        self.shared.store.lock().unwrap().clear_deleted();
    }

    /// Moves the emulator's clock forward (token expiry and other time rules) without sleeping.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.clock.advance(by);
    }

    /// Stops accepting, lets in-flight requests finish (at most 5 s), and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for RunningEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            // Keep-alive connections would otherwise hold a graceful shutdown open forever.
            task.abort();
        }
    }
}
