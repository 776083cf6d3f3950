//! [`GraphClient`]: every Graph call synccontacts makes, with auth, retries, throttling,
//! concurrency limits, paging and `$batch`.
//!
//! One request path ([`GraphClient::call`]) does all the resilience work: wait for the mailbox's
//! pause and a concurrency slot, attach a cached token, send, classify, and retry per
//! [`RetryPolicy`] through the injected [`Clock`]. Typed operations sit on top. It must never log
//! a secret (only method, path and status are logged), never send the bearer token to a host
//! other than the configured Graph root, and never repeat a create whose outcome is unknown.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use url::Url;

use crate::auth::{AssertionAlgorithm, Credential, TokenCtx, TokenInfo, TokenSource, token_info};
use crate::batch::{self, BatchItem, MAX_BATCH};
use crate::clock::{Clock, SystemClock, add};
use crate::endpoints::Endpoints;
use crate::error::{ErrorKind, GraphError};
use crate::limits::Limits;
use crate::path;
use crate::retry::{Decision, Failure, Idempotency, RetryPolicy, parse_retry_after};
use crate::secret::{Redactor, Secret};
use crate::types::{
    ClientStats, Contact, Domain, Folder, FolderRef, User, WriteOp, WriteRequest, WriteResponse,
};

/// Everything a [`GraphClient`] needs. Build with [`ClientConfig::new`] and adjust fields.
#[derive(Clone)]
pub struct ClientConfig {
    /// Tenant id (GUID) or a verified domain name.
    pub tenant: String,
    pub client_id: String,
    pub credential: Credential,
    pub endpoints: Endpoints,
    /// Extra CA certificate(s) in PEM to trust (`AUTOMATION_SYNCCONTACTS_CA_FILE`, read by the binary).
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Requests in flight per mailbox; Outlook's limit is 4 (graph-facts §6).
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
}

impl ClientConfig {
    /// Defaults: 4 per mailbox, 64 in total, real clock, default retry policy, PS256, batching on.
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

/// One logical request: the client turns it into one or more HTTP attempts.
struct Call {
    method: Method,
    url: Url,
    mailbox: Option<String>,
    /// Mailbox slots held while in flight (a batch of k items holds min(k, limit)).
    weight: usize,
    headers: Vec<(&'static str, String)>,
    /// The JSON body, serialized once (each attempt sends a copy of these bytes).
    body: Option<Vec<u8>>,
    idempotency: Idempotency,
    /// What we were doing, for error messages ("listing contacts of adele@contoso.com").
    context: String,
}

/// A successful (2xx) response.
struct Reply {
    status: u16,
    body: Vec<u8>,
    request_id: Option<String>,
    /// The access token the successful attempt carried (a batch item's 401 invalidates it).
    token: Secret,
}

/// A `$batch` answer: items by id, the outer request-id, the token used.
struct BatchReply {
    items: std::collections::HashMap<String, batch::ItemResponse>,
    request_id: Option<String>,
    token: Secret,
}

/// `e` and its sources, joined, for a transport error message.
/// A TLS certificate the client does not trust (a TLS-intercepting proxy, the emulator's `--tls`,
/// a wrong host): no retry can fix it, so it fails at once with what to do instead of spending the
/// attempt budget on backoff. rustls reports every such case as "invalid peer certificate: …".
pub(crate) fn untrusted_certificate(e: &reqwest::Error, context: &str) -> Option<GraphError> {
    let chain = error_chain(e);
    chain.contains("invalid peer certificate").then(|| {
        GraphError::new(
            ErrorKind::Config,
            format!(
                "{context}: the server's TLS certificate is not trusted ({chain}) — if a \
                 TLS-intercepting proxy or a test endpoint is in the way, set \
                 AUTOMATION_SYNCCONTACTS_CA_FILE to its CA certificate (PEM)"
            ),
        )
    })
}

pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

fn request_id(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get("request-id")
        .or_else(|| headers.get("client-request-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

impl GraphClient {
    /// Validates the configuration and loads the credential (reads the certificate file), without
    /// any network request (RELIABILITY I6).
    pub fn new(cfg: ClientConfig) -> Result<Self, GraphError> {
        crate::auth::install_crypto_provider();
        if cfg.tenant.trim().is_empty() {
            return Err(GraphError::config("TenantId is empty"));
        }
        if cfg.client_id.trim().is_empty() {
            return Err(GraphError::config("ClientId is empty"));
        }
        let mut builder = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(Duration::from_secs(30))
            // Redirects would carry the Authorization header to wherever they point.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("synccontacts/", env!("CARGO_PKG_VERSION")))
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
            GraphError::config(format!("cannot build the HTTP client: {}", error_chain(&e)))
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
        }
    }

    async fn access_token(&self) -> Result<(Secret, jiff::Timestamp), GraphError> {
        self.inner.tokens.token(&self.token_ctx()).await
    }

    /// Obtains a token (from cache or the identity platform) and reports its roles and expiry,
    /// for `check`. The token itself is never returned.
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

    /// Waits out a retry delay: a 429 pauses the whole mailbox (every later request to it
    /// honours the pause); anything else just delays this request.
    async fn wait_retry(&self, mailbox: Option<&str>, after: Duration, throttled: bool) {
        match mailbox {
            Some(m) if throttled => {
                let until = add(self.inner.clock.now(), after);
                self.inner.limits.pause(m, until);
                // Limits::acquire sleeps until the pause has passed.
            }
            _ => self.inner.clock.sleep(after).await,
        }
    }

    /// Sends `call`, retrying per policy; returns the 2xx reply or a classified error.
    async fn call(&self, call: &Call) -> Result<Reply, GraphError> {
        if !self.inner.endpoints.is_graph_origin(&call.url) {
            return Err(GraphError::new(
                ErrorKind::BadRequest,
                format!(
                    "{}: refusing to send the access token to {} (not the configured Graph root)",
                    call.context,
                    call.url.origin().ascii_serialization()
                ),
            ));
        }
        let mut attempt = 0u32;
        let mut refreshed = false;
        loop {
            attempt += 1;
            // The slot first, then the token: waiting for a slot can mean sleeping through a
            // mailbox's Retry-After, and a token taken before that wait may expire during it
            // (a 401 that costs the request its one refresh; RELIABILITY I5).
            let permit = self
                .inner
                .limits
                .acquire(call.mailbox.as_deref(), call.weight, &*self.inner.clock)
                .await;
            let (token, _) = self.access_token().await?;
            let mut rb = self
                .inner
                .http
                .request(call.method.clone(), call.url.clone())
                .bearer_auth(token.expose())
                .header("accept", "application/json");
            for (k, v) in &call.headers {
                rb = rb.header(*k, v);
            }
            if let Some(b) = &call.body {
                rb = rb
                    .header("content-type", "application/json")
                    .body(b.clone());
            }
            self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
            if attempt > 1 {
                self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            let sent = rb.send().await;
            let (failure, error) = match sent {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let rid = request_id(resp.headers());
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, self.inner.clock.now()));
                    let body = resp.bytes().await;
                    drop(permit);
                    tracing::debug!(method = %call.method, path = call.url.path(), status, attempt, "graph response");
                    let body = match body {
                        Ok(b) => b.to_vec(),
                        Err(e) => {
                            let err = GraphError::new(
                                ErrorKind::Transport,
                                format!(
                                    "{}: connection lost while reading the response: {}",
                                    call.context,
                                    error_chain(&e)
                                ),
                            );
                            let f = Failure::Transport { maybe_sent: true };
                            match self.decide(attempt, &f, call.idempotency) {
                                Decision::Retry { after, throttled } => {
                                    self.wait_retry(call.mailbox.as_deref(), after, throttled)
                                        .await;
                                    continue;
                                }
                                Decision::Ambiguous => return Err(self.scrub(ambiguous(err))),
                                Decision::GiveUp => return Err(self.scrub(err)),
                            }
                        }
                    };
                    if (200..300).contains(&status) {
                        return Ok(Reply {
                            status,
                            body,
                            request_id: rid,
                            token,
                        });
                    }
                    let err = GraphError::from_graph_response(status, &body, rid, &call.context);
                    if status == 401 && !refreshed {
                        // graph-facts §7: an expired or revoked token gives 401
                        // InvalidAuthenticationToken; refresh once and retry once.
                        refreshed = true;
                        tracing::info!(
                            path = call.url.path(),
                            "access token refused (401); refreshing it once"
                        );
                        self.inner.tokens.invalidate(&token).await;
                        attempt -= 1;
                        self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if status == 429 {
                        self.inner
                            .counters
                            .throttled
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    (
                        Failure::Status {
                            status,
                            retry_after,
                        },
                        err,
                    )
                }
                Err(e) => {
                    drop(permit);
                    if let Some(err) = untrusted_certificate(&e, &call.context) {
                        return Err(self.scrub(err));
                    }
                    let maybe_sent = !e.is_connect();
                    let err = GraphError::new(
                        ErrorKind::Transport,
                        format!("{}: {}", call.context, error_chain(&e)),
                    );
                    (Failure::Transport { maybe_sent }, err)
                }
            };
            match self.decide(attempt, &failure, call.idempotency) {
                Decision::Retry { after, throttled } => {
                    tracing::warn!(
                        method = %call.method,
                        path = call.url.path(),
                        attempt,
                        wait_ms = after.as_millis() as u64,
                        "retrying: {}",
                        self.inner.redactor.scrub(&error.to_string())
                    );
                    self.wait_retry(call.mailbox.as_deref(), after, throttled)
                        .await;
                }
                Decision::Ambiguous => return Err(self.scrub(ambiguous(error))),
                Decision::GiveUp => return Err(self.scrub(error)),
            }
        }
    }

    fn url(&self, path_and_query: &str) -> Result<Url, GraphError> {
        self.inner.endpoints.graph_url(path_and_query)
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        url: Url,
        mailbox: Option<&str>,
        headers: Vec<(&'static str, String)>,
        context: String,
    ) -> Result<T, GraphError> {
        let call = Call {
            method: Method::GET,
            url,
            mailbox: mailbox.map(str::to_owned),
            weight: 1,
            headers,
            body: None,
            idempotency: Idempotency::Repeatable,
            context,
        };
        let reply = self.call(&call).await?;
        parse_body(&reply.body, &call.context)
    }

    /// Follows `@odata.nextLink` verbatim until absent (graph-facts §3), sending `headers` on
    /// every page (ConsistencyLevel is not carried into nextLinks, graph-facts §3).
    async fn get_all_pages<T: DeserializeOwned>(
        &self,
        first: Url,
        mailbox: Option<&str>,
        headers: Vec<(&'static str, String)>,
        context: &str,
    ) -> Result<Vec<T>, GraphError> {
        /// One page of a collection, parsed straight into `T` (no intermediate `Value`:
        /// a 1000-contact page is the hot path of a read).
        #[derive(serde::Deserialize)]
        struct Page<T> {
            #[serde(default = "Vec::new")]
            value: Vec<T>,
            #[serde(default, rename = "@odata.nextLink")]
            next_link: Option<String>,
        }
        let mut items = Vec::new();
        let mut next = Some(first);
        let mut page = 0usize;
        while let Some(url) = next.take() {
            page += 1;
            let p: Page<T> = self
                .get_json(
                    url,
                    mailbox,
                    headers.clone(),
                    format!("{context} (page {page})"),
                )
                .await?;
            items.extend(p.value);
            if let Some(link) = p.next_link {
                let u = Url::parse(&link).map_err(|e| {
                    GraphError::new(
                        ErrorKind::Server,
                        format!("{context}: bad @odata.nextLink: {e}"),
                    )
                })?;
                next = Some(u);
            }
        }
        Ok(items)
    }

    /// All licensed users: `GET /users` with the documented filter `assignedLicenses/$count ne 0`,
    /// which is an advanced query: `ConsistencyLevel: eventual` and `$count=true` on every page
    /// (graph-facts §4), `$top=999` (the maximum, graph-facts §3).
    pub async fn licensed_users(&self) -> Result<Vec<User>, GraphError> {
        let q = path::query(&[
            ("$select", "id,userPrincipalName,mail"),
            ("$filter", "assignedLicenses/$count ne 0"),
            ("$count", "true"),
            ("$top", "999"),
        ]);
        let url = self.url(&format!("/users{q}"))?;
        self.get_all_pages(
            url,
            None,
            vec![("consistencylevel", "eventual".to_owned())],
            "listing licensed users",
        )
        .await
    }

    /// One user by id or UPN (`GET /users/{x}`); the hub mailbox check uses it.
    pub async fn user(&self, id_or_upn: &str) -> Result<User, GraphError> {
        let q = path::query(&[("$select", "id,userPrincipalName,mail")]);
        let url = self.url(&format!("{}{q}", path::user(id_or_upn)))?;
        self.get_json(url, None, vec![], format!("reading user {id_or_upn}"))
            .await
    }

    /// The organization's verified domains (`GET /organization`, a one-element collection).
    pub async fn organization_domains(&self) -> Result<Vec<Domain>, GraphError> {
        let url = self.url(&format!(
            "/organization{}",
            path::query(&[("$select", "id,verifiedDomains")])
        ))?;
        let items: Vec<Value> = self
            .get_all_pages(url, None, vec![], "reading the organization")
            .await?;
        let mut out = Vec::new();
        for org in items {
            if let Some(Value::Array(ds)) = org.get("verifiedDomains") {
                for d in ds {
                    out.push(parse_value(d.clone(), "reading the organization")?);
                }
            }
        }
        Ok(out)
    }

    async fn list_folders(
        &self,
        mailbox: &str,
        parent: Option<&str>,
    ) -> Result<Vec<Folder>, GraphError> {
        let base = match parent {
            None => format!("{}/contactFolders", path::user(mailbox)),
            Some(p) => format!(
                "{}/contactFolders/{}/childFolders",
                path::user(mailbox),
                path::encode_segment(p)
            ),
        };
        let q = path::query(&[
            ("$select", "id,displayName,parentFolderId"),
            ("$top", "1000"),
        ]);
        let url = self.url(&format!("{base}{q}"))?;
        let ctx = format!("listing contact folders of {mailbox}");
        self.get_all_pages(url, Some(mailbox), vec![], &ctx).await
    }

    /// Finds a contact folder by exact `displayName` anywhere in the mailbox's folder tree
    /// (SPEC §2.3): top level first, then nested levels breadth-first, so the shallowest match
    /// wins. Each level's folders are listed concurrently (within the mailbox limit).
    pub async fn find_contact_folder(
        &self,
        mailbox: &str,
        display_name: &str,
    ) -> Result<Option<Folder>, GraphError> {
        let mut level = self.list_folders(mailbox, None).await?;
        // Folder trees are small; the bound guards against a server that reports a cycle.
        let mut seen = std::collections::HashSet::new();
        for _depth in 0..64 {
            if let Some(f) = level
                .iter()
                .find(|f| f.display_name.as_deref() == Some(display_name))
            {
                return Ok(Some(f.clone()));
            }
            let parents: Vec<String> = level
                .iter()
                .filter(|f| seen.insert(f.id.clone()))
                .map(|f| f.id.clone())
                .collect();
            if parents.is_empty() {
                return Ok(None);
            }
            let children = futures::future::join_all(
                parents.iter().map(|p| self.list_folders(mailbox, Some(p))),
            )
            .await;
            level = Vec::new();
            for c in children {
                level.extend(c?);
            }
        }
        Ok(None)
    }

    /// Checks that the app can read `mailbox`'s contacts (one cheap request), for `check`:
    /// distinguishes a missing mailbox, an access policy/RBAC denial and success.
    pub async fn probe_mailbox(&self, mailbox: &str) -> Result<(), GraphError> {
        let q = path::query(&[("$select", "id"), ("$top", "1")]);
        let url = self.url(&format!("{}/contactFolders{q}", path::user(mailbox)))?;
        let _: Value = self
            .get_json(
                url,
                Some(mailbox),
                vec![],
                format!("reading the contact folders of {mailbox}"),
            )
            .await?;
        Ok(())
    }

    /// Creates a top-level contact folder. If Graph says it already exists (`ErrorFolderExists`,
    /// a lost response to an earlier create, graph-facts §2), the existing one is returned.
    pub async fn create_contact_folder(
        &self,
        mailbox: &str,
        display_name: &str,
    ) -> Result<Folder, GraphError> {
        let url = self.url(&format!("{}/contactFolders", path::user(mailbox)))?;
        let call = Call {
            method: Method::POST,
            url,
            mailbox: Some(mailbox.to_owned()),
            weight: 1,
            headers: vec![],
            body: Some(
                serde_json::to_vec(&serde_json::json!({ "displayName": display_name }))
                    .unwrap_or_default(),
            ),
            idempotency: Idempotency::Create,
            context: format!("creating contact folder '{display_name}' in {mailbox}"),
        };
        match self.call(&call).await {
            Ok(r) => parse_body(&r.body, &call.context),
            Err(e)
                if e.code
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case("ErrorFolderExists")) =>
            {
                match self.find_contact_folder(mailbox, display_name).await? {
                    Some(f) => Ok(f),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Every contact of a folder: `$top=1000` (the maximum) and `$select` of exactly what the
    /// engine reads (graph-facts §3), following nextLinks verbatim. A short page with a nextLink
    /// is normal (contact groups take `$skip` slots, graph-facts §3).
    pub async fn list_contacts(
        &self,
        mailbox: &str,
        folder: &FolderRef,
    ) -> Result<Vec<Contact>, GraphError> {
        let select = Contact::select_list();
        let q = path::query(&[("$top", "1000"), ("$select", &select)]);
        let url = self.url(&format!("{}{q}", path::contacts(mailbox, folder)))?;
        let ctx = format!("listing contacts of {mailbox}");
        self.get_all_pages(url, Some(mailbox), vec![], &ctx).await
    }

    /// Reads one contact by id (`GET …/contacts/{id}` resolves anywhere in the mailbox,
    /// graph-facts §2). Useful where list output is known to be lossy (graph-facts §9 notes).
    pub async fn get_contact(
        &self,
        mailbox: &str,
        contact_id: &str,
    ) -> Result<Contact, GraphError> {
        let select = Contact::select_list();
        let q = path::query(&[("$select", &select)]);
        let url = self.url(&format!(
            "{}{q}",
            path::contact(mailbox, &FolderRef::Default, contact_id)
        ))?;
        self.get_json(
            url,
            Some(mailbox),
            vec![],
            format!("reading contact in {mailbox}"),
        )
        .await
    }

    /// Applies `writes` to `mailbox`; one result per write, in input order.
    ///
    /// With batching on, writes go in `$batch` requests of ≤ 20 (graph-facts §5); each item is
    /// retried on its own status: a 429 item after its `Retry-After` (pausing the mailbox), a
    /// 5xx item after backoff, a 424 item with the next round. Creates whose outcome is unknown
    /// are not repeated ([`ErrorKind::AmbiguousWrite`]).
    pub async fn execute_writes(
        &self,
        mailbox: &str,
        writes: Vec<WriteRequest>,
    ) -> Vec<Result<WriteResponse, GraphError>> {
        if writes.is_empty() {
            return Vec::new();
        }
        if !self.inner.batch_writes || writes.len() == 1 {
            return futures::future::join_all(writes.iter().map(|w| self.write_one(mailbox, w)))
                .await;
        }
        self.write_batched(mailbox, &writes).await
    }

    fn write_parts<'w>(
        &self,
        mailbox: &str,
        w: &'w WriteRequest,
    ) -> Result<Prepared<'w>, GraphError> {
        let need_id = || {
            w.contact_id
                .as_deref()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| {
                    GraphError::new(
                        ErrorKind::BadRequest,
                        format!("{:?} in {mailbox} without a contact id", w.op),
                    )
                })
        };
        let mut headers = Vec::new();
        if let Some(m) = &w.if_match {
            headers.push(("If-Match", m.clone()));
        }
        Ok(match w.op {
            WriteOp::Create => Prepared(
                Method::POST,
                path::contacts(mailbox, &w.folder),
                vec![],
                Some(&w.body),
                Idempotency::Create,
            ),
            WriteOp::Update => Prepared(
                Method::PATCH,
                path::contact(mailbox, &w.folder, need_id()?),
                headers,
                Some(&w.body),
                Idempotency::Repeatable,
            ),
            WriteOp::Delete => Prepared(
                Method::DELETE,
                path::contact(mailbox, &w.folder, need_id()?),
                headers,
                None,
                Idempotency::Repeatable,
            ),
        })
    }

    async fn write_one(
        &self,
        mailbox: &str,
        w: &WriteRequest,
    ) -> Result<WriteResponse, GraphError> {
        let Prepared(method, p, headers, body, idempotency) = self.write_parts(mailbox, w)?;
        let call = Call {
            method,
            url: self.url(&p)?,
            mailbox: Some(mailbox.to_owned()),
            weight: 1,
            headers,
            body: body.map(|b| serde_json::to_vec(b).unwrap_or_default()),
            idempotency,
            context: write_context(mailbox, w),
        };
        let r = self.call(&call).await?;
        let body = if r.body.is_empty() || r.status == 204 {
            None
        } else {
            Some(parse_body(&r.body, &call.context)?)
        };
        Ok(WriteResponse {
            status: r.status,
            body,
            request_id: r.request_id,
        })
    }

    async fn write_batched(
        &self,
        mailbox: &str,
        writes: &[WriteRequest],
    ) -> Vec<Result<WriteResponse, GraphError>> {
        let n = writes.len();
        let mut results: Vec<Option<Result<WriteResponse, GraphError>>> = vec![None; n];
        let mut attempts = vec![0u32; n];
        let mut refreshed = vec![false; n];
        let mut rejected: Vec<Secret> = Vec::new();
        let mut prepared = Vec::with_capacity(n);
        let mut pending = Vec::new();
        for (i, w) in writes.iter().enumerate() {
            match self.write_parts(mailbox, w) {
                Ok(p) => {
                    prepared.push(Some(p));
                    pending.push(i);
                }
                Err(e) => {
                    prepared.push(None);
                    results[i] = Some(Err(e));
                }
            }
        }
        while !pending.is_empty() {
            let chunks: Vec<Vec<usize>> =
                pending.chunks(MAX_BATCH).map(<[usize]>::to_vec).collect();
            for &i in &pending {
                attempts[i] += 1;
            }
            let outcomes = futures::future::join_all(
                chunks
                    .iter()
                    .map(|c| self.send_batch(mailbox, c, &prepared)),
            )
            .await;
            let mut next = Vec::new();
            let mut backoff = Duration::ZERO;
            for (chunk, outcome) in chunks.iter().zip(outcomes) {
                let BatchReply {
                    items,
                    request_id: outer_rid,
                    token: used_token,
                } = match outcome {
                    Ok(v) => v,
                    Err(e) => {
                        // The batch request as a whole failed after its own retries.
                        for &i in chunk {
                            let idem = prepared[i]
                                .as_ref()
                                .map(|p| p.4)
                                .unwrap_or(Idempotency::Repeatable);
                            if e.kind == ErrorKind::AmbiguousWrite
                                && idem == Idempotency::Repeatable
                                && attempts[i] < self.inner.policy.max_attempts
                            {
                                next.push(i);
                            } else {
                                let mut e = e.clone();
                                if e.kind == ErrorKind::AmbiguousWrite
                                    && idem == Idempotency::Repeatable
                                {
                                    e.kind = ErrorKind::Transport;
                                }
                                results[i] = Some(Err(e));
                            }
                        }
                        continue;
                    }
                };
                for &i in chunk {
                    let w = &writes[i];
                    let ctx = write_context(mailbox, w);
                    let Some(item) = items.get(&i.to_string()) else {
                        // Graph answered the batch but not this item: treat as lost in transit.
                        let f = Failure::Transport { maybe_sent: true };
                        let idem = prepared[i]
                            .as_ref()
                            .map(|p| p.4)
                            .unwrap_or(Idempotency::Repeatable);
                        match self.decide(attempts[i], &f, idem) {
                            Decision::Retry { after, .. } => {
                                backoff = backoff.max(after);
                                next.push(i);
                            }
                            d => {
                                let e = GraphError::new(
                                    ErrorKind::Server,
                                    format!(
                                        "{ctx}: the $batch response has no result for this item"
                                    ),
                                );
                                results[i] = Some(Err(if d == Decision::Ambiguous {
                                    ambiguous(e)
                                } else {
                                    e
                                }));
                            }
                        }
                        continue;
                    };
                    let rid = item
                        .header("request-id")
                        .map(str::to_owned)
                        .or_else(|| outer_rid.clone());
                    if (200..300).contains(&item.status) {
                        // Graph may base64-encode non-JSON item bodies; contacts are JSON.
                        let body = match item.body.as_deref().map(RawValue::get) {
                            None => Ok(None),
                            Some(raw) if is_empty_json(raw) => Ok(None),
                            Some(raw) => parse_raw::<Contact>(raw, &ctx).map(Some),
                        };
                        results[i] = Some(body.map(|body| WriteResponse {
                            status: item.status,
                            body,
                            request_id: rid,
                        }));
                        continue;
                    }
                    let body_bytes = item
                        .body
                        .as_deref()
                        .map_or("null", RawValue::get)
                        .as_bytes();
                    let err = self.scrub(GraphError::from_graph_response(
                        item.status,
                        body_bytes,
                        rid,
                        &ctx,
                    ));
                    if item.status == 401 && !refreshed[i] {
                        // graph-facts §7: token expired between batch acceptance and this
                        // item; refresh once (per item) and retry the item.
                        refreshed[i] = true;
                        rejected.push(used_token.clone());
                        attempts[i] -= 1;
                        next.push(i);
                        continue;
                    }
                    if item.status == 424 {
                        // Failed dependency (graph-facts §5): its prerequisite is retried in the
                        // same round, so retry this one with it.
                        if attempts[i] < self.inner.policy.max_attempts {
                            next.push(i);
                        } else {
                            results[i] = Some(Err(err));
                        }
                        continue;
                    }
                    if item.status == 429 {
                        self.inner
                            .counters
                            .throttled
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    let retry_after = item
                        .header("retry-after")
                        .and_then(|v| parse_retry_after(v, self.inner.clock.now()));
                    let idem = prepared[i]
                        .as_ref()
                        .map(|p| p.4)
                        .unwrap_or(Idempotency::Repeatable);
                    let f = Failure::Status {
                        status: item.status,
                        retry_after,
                    };
                    match self.decide(attempts[i], &f, idem) {
                        Decision::Retry { after, throttled } => {
                            if throttled {
                                // The item's Retry-After pauses the whole mailbox.
                                self.inner
                                    .limits
                                    .pause(mailbox, add(self.inner.clock.now(), after));
                            } else {
                                backoff = backoff.max(after);
                            }
                            next.push(i);
                        }
                        Decision::Ambiguous => results[i] = Some(Err(ambiguous(err))),
                        Decision::GiveUp => results[i] = Some(Err(err)),
                    }
                }
            }
            for tok in rejected.drain(..) {
                // Only drops the cache if it still holds that token.
                self.inner.tokens.invalidate(&tok).await;
            }
            if !next.is_empty() {
                self.inner
                    .counters
                    .retries
                    .fetch_add(next.len() as u64, Ordering::Relaxed);
                tracing::warn!(
                    mailbox,
                    items = next.len(),
                    wait_ms = backoff.as_millis() as u64,
                    "retrying batch items"
                );
                if !backoff.is_zero() {
                    self.inner.clock.sleep(backoff).await;
                }
            }
            next.sort_unstable();
            pending = next;
        }
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    Err(GraphError::new(
                        ErrorKind::Server,
                        "write was not attempted",
                    ))
                })
            })
            .collect()
    }

    #[allow(clippy::type_complexity)]
    async fn send_batch(
        &self,
        mailbox: &str,
        idx: &[usize],
        prepared: &[Option<Prepared<'_>>],
    ) -> Result<BatchReply, GraphError> {
        let mut items = Vec::with_capacity(idx.len());
        let mut idem = Idempotency::Repeatable;
        for &i in idx {
            let Prepared(m, p, h, b, id) = prepared[i]
                .as_ref()
                .expect("only prepared writes are pending");
            if *id == Idempotency::Create {
                idem = Idempotency::Create;
            }
            items.push(BatchItem {
                id: i.to_string(),
                method: method_str(m),
                url: p,
                headers: h.iter().map(|(k, v)| (*k, v.as_str())).collect(),
                body: *b,
            });
        }
        self.inner.counters.batches.fetch_add(1, Ordering::Relaxed);
        self.inner
            .counters
            .batch_items
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        let call = Call {
            method: Method::POST,
            url: self.url("/$batch")?,
            mailbox: Some(mailbox.to_owned()),
            weight: items.len(),
            headers: vec![],
            body: Some(batch::request_body(&items)),
            idempotency: idem,
            context: format!("$batch of {} writes to {mailbox}", items.len()),
        };
        let r = self.call(&call).await?;
        Ok(BatchReply {
            items: batch::parse_response(&r.body)?,
            request_id: r.request_id,
            token: r.token,
        })
    }
}

/// A write turned into method, path, headers, body (borrowed from the write) and whether it may
/// be repeated.
struct Prepared<'w>(
    Method,
    String,
    Vec<(&'static str, String)>,
    Option<&'w Value>,
    Idempotency,
);

fn method_str(m: &Method) -> &'static str {
    match *m {
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        _ => "GET",
    }
}

fn write_context(mailbox: &str, w: &WriteRequest) -> String {
    match (&w.op, &w.contact_id) {
        (WriteOp::Create, _) => format!("creating a contact in {mailbox}"),
        (WriteOp::Update, Some(id)) => format!("updating contact {id} in {mailbox}"),
        (WriteOp::Delete, Some(id)) => format!("deleting contact {id} in {mailbox}"),
        (op, None) => format!("{op:?} in {mailbox}"),
    }
}

fn ambiguous(mut e: GraphError) -> GraphError {
    e.kind = ErrorKind::AmbiguousWrite;
    e.message.push_str(
        " — the create may or may not have been applied; it was not repeated to avoid a duplicate (the next run reconciles it)",
    );
    e
}

fn parse_body<T: DeserializeOwned>(bytes: &[u8], context: &str) -> Result<T, GraphError> {
    serde_json::from_slice(bytes).map_err(|e| {
        GraphError::new(
            ErrorKind::Server,
            format!("{context}: unexpected response shape: {e}"),
        )
    })
}

fn parse_raw<T: DeserializeOwned>(raw: &str, context: &str) -> Result<T, GraphError> {
    serde_json::from_str(raw).map_err(|e| {
        GraphError::new(
            ErrorKind::Server,
            format!("{context}: unexpected item shape: {e}"),
        )
    })
}

/// `null` or an empty object, whitespace aside: an item answered without content.
fn is_empty_json(raw: &str) -> bool {
    let mut b = raw.bytes().filter(|c| !c.is_ascii_whitespace());
    match b.next() {
        Some(b'n') => raw.trim() == "null",
        Some(b'{') => b.next() == Some(b'}') && b.next().is_none(),
        _ => false,
    }
}

fn parse_value<T: DeserializeOwned>(v: Value, context: &str) -> Result<T, GraphError> {
    serde_json::from_value(v).map_err(|e| {
        GraphError::new(
            ErrorKind::Server,
            format!("{context}: unexpected item shape: {e}"),
        )
    })
}

#[cfg(test)]
mod raw_body_tests {
    use super::*;

    #[test]
    fn empty_item_bodies_are_recognised_without_parsing() {
        for raw in ["null", " null ", "{}", "{ }", "{\n}"] {
            assert!(is_empty_json(raw), "{raw:?}");
        }
        for raw in ["{\"id\":\"x\"}", "[]", "\"\"", "nul", "{}x"] {
            assert!(!is_empty_json(raw), "{raw:?}");
        }
        let c: Contact = parse_raw(r#"{"id":"x","displayName":"Ann"}"#, "ctx").unwrap();
        assert_eq!(c.id, "x");
        let e = parse_raw::<Contact>("[1]", "writing").unwrap_err();
        assert!(
            e.message.starts_with("writing: unexpected item shape"),
            "{}",
            e.message
        );
    }
}
