//! [`GraphClient`]: every Graph call a caller makes, with auth, retries, throttling, app-wide
//! pacing, concurrency limits, a circuit breaker, cancellation, paging and `$batch`.
//!
//! The client is split by what a call does: `request` is the one request path every call goes
//! through (wait for the mailbox's pause and a concurrency slot, attach a cached token, wait for
//! the app budget, send, classify, retry per [`RetryPolicy`] through the injected [`Clock`]) and
//! paging; `directory` holds users, the organization's domains and groups; `reads` holds contact
//! folders and contacts; `delta` holds contact delta rounds; `writes` holds contact writes, one by
//! one or in `$batch`es. This file holds the configuration and the shared state. The client must
//! never log a secret (only method, path and status are logged), never send the bearer token to a
//! host other than the configured Graph root, never repeat a create whose outcome is unknown,
//! never start a request after its [`StopSignal`] or an open breaker said stop, and never read the
//! process environment (everything comes in through [`ClientConfig`]).

mod delta;
mod directory;
mod reads;
pub(crate) mod request;
mod writes;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use url::Url;

use crate::auth::{AssertionAlgorithm, Credential, TokenCtx, TokenInfo, TokenSource, token_info};
use crate::clock::{Clock, SystemClock};
use crate::endpoints::Endpoints;
use crate::error::GraphError;
use crate::halt::{BreakerPolicy, Halt, StopSignal};
use crate::limits::Limits;
use crate::pacing::{AppBudgets, Pacer, RequestBudget};
use crate::retry::{Decision, Failure, Idempotency, RetryPolicy};
use crate::secret::{Redactor, Secret};
use crate::types::ClientStats;

/// Everything a [`GraphClient`] needs. Build with [`ClientConfig::new`] and adjust fields.
#[derive(Clone)]
pub struct ClientConfig {
    /// Tenant id (GUID) or a verified domain name.
    pub tenant: String,
    pub client_id: String,
    pub credential: Credential,
    pub endpoints: Endpoints,
    /// Extra CA certificate(s) in PEM to trust besides the system roots (a TLS-intercepting
    /// proxy, a test endpoint).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Requests in flight per mailbox; Outlook's limit is 4 (docs/graph-facts.md §6).
    pub per_mailbox_concurrency: usize,
    /// Requests in flight in total.
    pub global_concurrency: usize,
    pub clock: Arc<dyn Clock>,
    /// Seed of the backoff jitter RNG (fixed seed → reproducible waits in tests).
    pub seed: u64,
    pub retry: RetryPolicy,
    pub assertion_algorithm: AssertionAlgorithm,
    /// Group writes into `$batch` requests (default). Off: one request per write.
    pub batch_writes: bool,
    /// Per-HTTP-request timeout.
    pub request_timeout: Duration,
    /// Time to establish a connection (TCP and TLS). A healthy Graph front door connects in well
    /// under a second; 10 s leaves room for a slow proxy while a black-holed endpoint costs the
    /// circuit breaker 10 s per attempt, not 30.
    pub connect_timeout: Duration,
    /// The app-wide request budget (Graph: 130,000 per 10 s per app, docs/graph-facts.md §6),
    /// applied before sending so Graph never has to answer 429 for it. See [`crate::pacing`].
    pub app_budget: RequestBudget,
    /// Where the app budget is kept: give every client of the process a clone of one value, so
    /// all clients with the same client id (all tenants of a run) share one budget. The default
    /// is a fresh, unshared one.
    pub app_budgets: AppBudgets,
    /// When Graph or the login endpoint counts as unreachable (see [`crate::halt`]).
    pub breaker: BreakerPolicy,
    /// The caller's stop: once triggered, waits end and calls not yet sent fail with
    /// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled). Share one signal across clients.
    pub stop: StopSignal,
    /// The `User-Agent` header of every request (Graph's guidance asks callers to identify
    /// themselves; the application using this client names itself here).
    pub user_agent: String,
}

impl ClientConfig {
    /// Defaults: 4 per mailbox, 64 in total, real clock, default retry policy, PS256, batching on,
    /// `User-Agent: graph-client/<version>`, 100 s per request, 10 s to connect, Graph's app
    /// budget in a fresh [`AppBudgets`], the default breaker, a fresh [`StopSignal`].
    pub fn new(
        tenant: impl Into<String>,
        client_id: impl Into<String>,
        credential: Credential,
        endpoints: Endpoints,
    ) -> Self {
        Self {
            tenant: tenant.into(),
            client_id: client_id.into(),
            credential,
            endpoints,
            extra_ca_pem: None,
            per_mailbox_concurrency: 4,
            global_concurrency: 64,
            clock: Arc::new(SystemClock),
            seed: 0x5eed,
            retry: RetryPolicy::default(),
            assertion_algorithm: AssertionAlgorithm::default(),
            batch_writes: true,
            request_timeout: Duration::from_secs(100),
            connect_timeout: Duration::from_secs(10),
            app_budget: RequestBudget::default(),
            app_budgets: AppBudgets::new(),
            breaker: BreakerPolicy::default(),
            stop: StopSignal::new(),
            user_agent: concat!("graph-client/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("credential", &self.credential)
            .field("endpoints", &self.endpoints)
            .field("extra_ca_pem", &self.extra_ca_pem.as_ref().map(Vec::len))
            .field("per_mailbox_concurrency", &self.per_mailbox_concurrency)
            .field("global_concurrency", &self.global_concurrency)
            .field("retry", &self.retry)
            .field("batch_writes", &self.batch_writes)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("app_budget", &self.app_budget)
            .field("breaker", &self.breaker)
            .field("stop", &self.stop)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    throttled: AtomicU64,
    batches: AtomicU64,
    batch_items: AtomicU64,
    paced: AtomicU64,
}

struct Inner {
    http: reqwest::Client,
    endpoints: Endpoints,
    tenant: String,
    clock: Arc<dyn Clock>,
    policy: RetryPolicy,
    rng: Mutex<SmallRng>,
    redactor: Redactor,
    tokens: TokenSource,
    limits: Limits,
    pacer: Arc<Pacer>,
    halt: Halt,
    counters: Counters,
    batch_writes: bool,
}

/// The Graph client. Cheap to clone (shared state inside).
#[derive(Clone)]
pub struct GraphClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("tenant", &self.inner.tenant)
            .field("graph", &self.inner.endpoints.graph.as_str())
            .finish_non_exhaustive()
    }
}

impl GraphClient {
    /// Validates the configuration and loads the credential (reads the certificate file), without
    /// any network request (docs/reliability.md I6).
    pub fn new(cfg: ClientConfig) -> Result<Self, GraphError> {
        crate::auth::install_crypto_provider();
        if cfg.tenant.trim().is_empty() {
            return Err(GraphError::config("the tenant (id or domain) is empty"));
        }
        if cfg.client_id.trim().is_empty() {
            return Err(GraphError::config(
                "the client id (application id) is empty",
            ));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.connect_timeout)
            // Redirects would carry the Authorization header to wherever they point.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(cfg.user_agent.as_str())
            .pool_max_idle_per_host(cfg.global_concurrency.max(8));
        if let Some(pem) = &cfg.extra_ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| {
                GraphError::config(format!(
                    "the extra CA file is not a valid PEM certificate bundle: {e}"
                ))
            })?;
            if certs.is_empty() {
                return Err(GraphError::config("the extra CA file holds no certificate"));
            }
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let http = builder.build().map_err(|e| {
            GraphError::config(format!(
                "cannot build the HTTP client: {}",
                request::error_chain(&e)
            ))
        })?;
        let redactor = Redactor::new();
        let tokens = TokenSource::new(
            &cfg.tenant,
            &cfg.client_id,
            cfg.endpoints.token_url(&cfg.tenant)?,
            cfg.endpoints.scope(),
            &cfg.credential,
            cfg.assertion_algorithm,
            &redactor,
        )?;
        let pacer = cfg
            .app_budgets
            .pacer(&cfg.client_id, cfg.app_budget, cfg.clock.clone());
        let halt = Halt::new(
            cfg.stop,
            cfg.breaker,
            cfg.endpoints.graph.as_str(),
            cfg.endpoints.login.as_str(),
        );
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoints: cfg.endpoints,
                tenant: cfg.tenant,
                clock: cfg.clock,
                policy: cfg.retry,
                rng: Mutex::new(SmallRng::seed_from_u64(cfg.seed)),
                redactor,
                tokens,
                limits: Limits::new(cfg.per_mailbox_concurrency, cfg.global_concurrency),
                pacer,
                halt,
                counters: Counters::default(),
                batch_writes: cfg.batch_writes,
            }),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        ClientStats {
            requests: c.requests.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            batch_items: c.batch_items.load(Ordering::Relaxed),
            paced: c.paced.load(Ordering::Relaxed),
            token_requests: self.inner.tokens.requests.load(Ordering::Relaxed),
        }
    }

    /// Scrubs every secret this client knows from `text` (for callers that log server text).
    pub fn redact(&self, text: &str) -> String {
        self.inner.redactor.scrub(text)
    }

    fn token_ctx(&self) -> TokenCtx<'_> {
        TokenCtx {
            http: &self.inner.http,
            clock: &*self.inner.clock,
            redactor: &self.inner.redactor,
            policy: &self.inner.policy,
            rng: &self.inner.rng,
            halt: &self.inner.halt,
        }
    }

    async fn access_token(&self) -> Result<(Secret, jiff::Timestamp), GraphError> {
        self.inner.tokens.token(&self.token_ctx()).await
    }

    /// Obtains a token (from cache or the identity platform) and reports its roles and expiry,
    /// for a caller's health check. The token itself is never returned.
    pub async fn token(&self) -> Result<TokenInfo, GraphError> {
        let (tok, exp) = self.access_token().await?;
        Ok(token_info(&tok, exp))
    }

    fn decide(&self, attempt: u32, failure: &Failure, idem: Idempotency) -> Decision {
        let mut rng = self.inner.rng.lock().unwrap();
        self.inner.policy.decide(attempt, failure, idem, &mut *rng)
    }

    fn scrub(&self, mut e: GraphError) -> GraphError {
        e.message = self.inner.redactor.scrub(&e.message);
        e
    }

    fn url(&self, path_and_query: &str) -> Result<Url, GraphError> {
        self.inner.endpoints.graph_url(path_and_query)
    }
}
