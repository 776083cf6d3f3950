//! The one request path: [`GraphClient::call`] turns a [`Call`] into HTTP attempts (mailbox pause
//! and concurrency slot, cached token, app budget, send, classify, retry per the policy through
//! the injected clock), and paging on top of it.
//!
//! It never sends the bearer token outside the configured Graph root, never logs more than
//! method, path and status (server text passes the redactor first), never repeats a create whose
//! outcome is unknown (the policy says [`Decision::Ambiguous`]), never shortens a wait Graph
//! asked for, and never sends once the client halted (stop signal or open breaker,
//! [`crate::halt`]): every wait here ends when it does.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use url::Url;

use super::GraphClient;
use crate::clock::add;
use crate::error::{ErrorKind, GraphError};
use crate::halt::{Endpoint, describe};
use crate::retry::{Decision, Failure, Idempotency, Retryability, parse_retry_after};
use crate::secret::Secret;

/// One logical request: the client turns it into one or more HTTP attempts.
pub(super) struct Call {
    pub method: Method,
    pub url: Url,
    pub mailbox: Option<String>,
    /// Mailbox slots held while in flight (a batch of k items holds min(k, limit)).
    pub weight: usize,
    /// Units of the app-wide budget each send uses: 1, or a `$batch`'s items plus one for the
    /// batch itself ([`crate::pacing`]).
    pub units: usize,
    /// Advice for a 403 in place of the usual (endpoints that need other permissions).
    pub permission_advice: Option<&'static str>,
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body, serialized once (each attempt sends a copy of these bytes).
    pub body: Option<Vec<u8>>,
    pub idempotency: Idempotency,
    /// Final statuses that an earlier attempt of this same call, if it may have been applied,
    /// can explain by itself (see [`refusal_after_unknown_attempt`]). Empty for reads and
    /// creates.
    pub echo_statuses: &'static [u16],
    /// What we were doing, for error messages ("listing contacts of adele@contoso.com").
    pub context: String,
}

/// A successful (2xx) response.
pub(super) struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub request_id: Option<String>,
    /// The access token the successful attempt carried (a batch item's 401 invalidates it).
    pub token: Secret,
    /// An earlier attempt of this call may have been applied before this one succeeded (it was
    /// answered 500/502/504 or its answer was lost). A `$batch` reply's items inherit it.
    pub after_unknown_attempt: bool,
}

/// The final error of a write, marked when it is a refusal (`echo_statuses`: 412, or 404 for a
/// delete) that an earlier attempt of the same write, applied but unanswered, can explain: a
/// PATCH applied once has changed the etag its retry still carries; a DELETE applied once leaves
/// nothing for its retry to find. Only a re-read can tell that from a concurrent change.
pub(super) fn refusal_after_unknown_attempt(
    e: GraphError,
    unknown_attempt_before: bool,
    echo_statuses: &[u16],
) -> GraphError {
    if unknown_attempt_before && e.status.is_some_and(|s| echo_statuses.contains(&s)) {
        e.after_unknown_attempt()
    } else {
        e
    }
}

/// The error for a create whose outcome is unknown and that is therefore not repeated.
pub(super) fn ambiguous(mut e: GraphError) -> GraphError {
    e.kind = ErrorKind::AmbiguousWrite;
    e.message.push_str(
        " — the create may or may not have been applied; it was not repeated to avoid a duplicate (the next run reconciles it)",
    );
    e
}

/// A TLS certificate the client does not trust (a TLS-intercepting proxy, a test endpoint, a
/// wrong host): no retry can fix it, so it fails at once as [`ErrorKind::UntrustedCertificate`]
/// instead of spending the attempt budget on backoff; the caller says how to trust it. rustls
/// reports every such case as "invalid peer certificate: …".
pub(crate) fn untrusted_certificate(e: &reqwest::Error, context: &str) -> Option<GraphError> {
    let chain = error_chain(e);
    chain.contains("invalid peer certificate").then(|| {
        GraphError::new(
            ErrorKind::UntrustedCertificate,
            format!("{context}: the server's TLS certificate is not trusted ({chain})"),
        )
    })
}

/// `e` and its sources, joined, for a transport error message.
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

pub(super) fn parse_body<T: DeserializeOwned>(
    bytes: &[u8],
    context: &str,
) -> Result<T, GraphError> {
    serde_json::from_slice(bytes).map_err(|e| {
        GraphError::new(
            ErrorKind::Server,
            format!("{context}: unexpected response shape: {e}"),
        )
    })
}

impl GraphClient {
    /// Waits out a retry delay: a 429 pauses the whole mailbox (every later request to it
    /// honours the pause); anything else just delays this request. Ends early when the client
    /// halts.
    async fn wait_retry(
        &self,
        mailbox: Option<&str>,
        after: Duration,
        throttled: bool,
        context: &str,
    ) -> Result<(), GraphError> {
        match mailbox {
            Some(m) if throttled => {
                let until = add(self.inner.clock.now(), after);
                self.inner.limits.pause(m, until);
                // Limits::acquire sleeps until the pause has passed.
                Ok(())
            }
            _ => {
                self.inner
                    .halt
                    .pause(&*self.inner.clock, after, context)
                    .await
            }
        }
    }

    /// Records a transport failure of Graph with the breaker; the error to return at once if
    /// the client halted (the breaker opened, or the caller stopped it meanwhile).
    fn transport_failure(&self, e: &reqwest::Error, context: &str) -> Option<GraphError> {
        let halt = &self.inner.halt;
        let now = self.inner.clock.now();
        halt.transport_failure(Endpoint::Graph, now, describe(e), &error_chain(e));
        halt.check(context).err()
    }

    /// Sends `call`, retrying per policy; returns the 2xx reply or a classified error.
    pub(super) async fn call(&self, call: &Call) -> Result<Reply, GraphError> {
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
        // Attempts count against the policy's budget (a 401's resend with a fresh token does
        // not); every send after the first is one retry in the stats, whatever caused it.
        let mut attempt = 0u32;
        let mut sends = 0u32;
        let mut refreshed = false;
        let mut unknown_attempt_before = false;
        let halt = &self.inner.halt;
        // A halt after a write attempt whose answer was lost: say that attempt may have applied.
        let is_write = call.method != Method::GET;
        let halted = |e: GraphError, unknown_attempt_before: bool| {
            let mut e = self.scrub(e);
            if unknown_attempt_before && is_write {
                e.message
                    .push_str(" — an earlier attempt may have been applied (its answer was lost)");
            }
            e
        };
        loop {
            attempt += 1;
            // The slot first, then the token, then the app budget: waiting for a slot can mean
            // sleeping through a mailbox's Retry-After, and a token taken before that wait may
            // expire during it (a 401 that costs the request its one refresh;
            // docs/reliability.md I5); the budget is taken last so the instant it records is the
            // instant we send.
            let permit = halt
                .guard(
                    &call.context,
                    self.inner.limits.acquire(
                        call.mailbox.as_deref(),
                        call.weight,
                        &*self.inner.clock,
                    ),
                )
                .await
                .map_err(|e| halted(e, unknown_attempt_before))?;
            let (token, _) = self.access_token().await.map_err(|e| match e.kind {
                ErrorKind::Cancelled | ErrorKind::Unreachable => halted(e, unknown_attempt_before),
                _ => e,
            })?;
            let pacer = &self.inner.pacer;
            let wait = pacer.reserve(call.units);
            if !wait.is_zero() {
                self.inner.counters.paced.fetch_add(1, Ordering::Relaxed);
                halt.pause(pacer.clock(), wait, &call.context)
                    .await
                    .map_err(|e| halted(e, unknown_attempt_before))?;
            }
            halt.check(&call.context)
                .map_err(|e| halted(e, unknown_attempt_before))?;
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
            sends += 1;
            self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
            if sends > 1 {
                self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
            }
            let (failure, error) = match rb.send().await {
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
                    if body.is_ok() {
                        halt.answered(Endpoint::Graph);
                    }
                    match body {
                        Err(e) => {
                            // A create whose answer was lost stays AmbiguousWrite (below), halt
                            // or not: that it may exist is what its caller must know.
                            if let Some(stop) = self.transport_failure(&e, &call.context)
                                && call.idempotency != Idempotency::Create
                            {
                                return Err(halted(stop, true));
                            }
                            (
                                Failure::Transport { maybe_sent: true },
                                GraphError::new(
                                    ErrorKind::Transport,
                                    format!(
                                        "{}: connection lost while reading the response: {}",
                                        call.context,
                                        error_chain(&e)
                                    ),
                                ),
                            )
                        }
                        Ok(body) if (200..300).contains(&status) => {
                            return Ok(Reply {
                                status,
                                body: body.to_vec(),
                                request_id: rid,
                                token,
                                after_unknown_attempt: unknown_attempt_before,
                            });
                        }
                        Ok(body) => {
                            let err = GraphError::from_graph_response_with(
                                status,
                                &body,
                                rid,
                                &call.context,
                                call.permission_advice,
                            );
                            if status == 401 && !refreshed {
                                // docs/graph-facts.md §7: an expired or revoked token gives 401
                                // InvalidAuthenticationToken; refresh once and retry once.
                                refreshed = true;
                                tracing::info!(
                                    path = call.url.path(),
                                    "access token refused (401); refreshing it once"
                                );
                                self.inner.tokens.invalidate(&token).await;
                                attempt -= 1;
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
                    }
                }
                Err(e) => {
                    drop(permit);
                    if let Some(err) = untrusted_certificate(&e, &call.context) {
                        return Err(self.scrub(err));
                    }
                    let maybe_sent = !e.is_connect();
                    if let Some(stop) = self.transport_failure(&e, &call.context)
                        && !(maybe_sent && call.idempotency == Idempotency::Create)
                    {
                        return Err(halted(stop, unknown_attempt_before || maybe_sent));
                    }
                    let err = GraphError::new(
                        ErrorKind::Transport,
                        format!("{}: {}", call.context, error_chain(&e)),
                    );
                    (Failure::Transport { maybe_sent }, err)
                }
            };
            match self.decide(attempt, &failure, call.idempotency) {
                Decision::Retry { after, throttled } => {
                    if failure.retryability() == Retryability::MaybeApplied {
                        unknown_attempt_before = true;
                    }
                    tracing::warn!(
                        method = %call.method,
                        path = call.url.path(),
                        attempt,
                        wait_ms = after.as_millis() as u64,
                        "retrying: {}",
                        self.inner.redactor.scrub(&error.to_string())
                    );
                    self.wait_retry(call.mailbox.as_deref(), after, throttled, &call.context)
                        .await
                        .map_err(|e| halted(e, unknown_attempt_before))?;
                }
                Decision::Ambiguous => return Err(self.scrub(ambiguous(error))),
                Decision::WaitTooLong { asked, cap } => {
                    return Err(self.scrub(error.waited_too_long(asked, cap)));
                }
                Decision::GiveUp => {
                    return Err(self.scrub(refusal_after_unknown_attempt(
                        error,
                        unknown_attempt_before,
                        call.echo_statuses,
                    )));
                }
            }
        }
    }

    /// One GET, its body parsed into `T`. `advice`: see [`Call::permission_advice`].
    pub(super) async fn get_json<T: DeserializeOwned>(
        &self,
        url: Url,
        mailbox: Option<&str>,
        headers: Vec<(&'static str, String)>,
        context: String,
        advice: Option<&'static str>,
    ) -> Result<T, GraphError> {
        let call = Call {
            method: Method::GET,
            url,
            mailbox: mailbox.map(str::to_owned),
            weight: 1,
            units: 1,
            permission_advice: advice,
            headers,
            body: None,
            idempotency: Idempotency::Repeatable,
            echo_statuses: &[],
            context,
        };
        let reply = self.call(&call).await?;
        parse_body(&reply.body, &call.context)
    }

    /// The paging loop every collection read shares: GETs `first`, hands each page's body to
    /// `on_page` (which parses it and returns the page's `@odata.nextLink`, if any) and follows
    /// that link verbatim (docs/graph-facts.md §3) until there is none. `headers` go on every page
    /// (ConsistencyLevel and Prefer are not carried into nextLinks, docs/graph-facts.md §3). A
    /// failed page fails the whole read: a caller never sees part of a collection as if it were
    /// all.
    pub(super) async fn each_page(
        &self,
        first: Url,
        mailbox: Option<&str>,
        headers: &[(&'static str, String)],
        context: &str,
        advice: Option<&'static str>,
        mut on_page: impl FnMut(&[u8], &str) -> Result<Option<String>, GraphError>,
    ) -> Result<(), GraphError> {
        let mut next = Some(first);
        let mut page = 0usize;
        while let Some(url) = next.take() {
            page += 1;
            let call = Call {
                method: Method::GET,
                url,
                mailbox: mailbox.map(str::to_owned),
                weight: 1,
                units: 1,
                permission_advice: advice,
                headers: headers.to_vec(),
                body: None,
                idempotency: Idempotency::Repeatable,
                echo_statuses: &[],
                context: format!("{context} (page {page})"),
            };
            let reply = self.call(&call).await?;
            if let Some(link) = on_page(&reply.body, &call.context)? {
                let u = Url::parse(&link).map_err(|e| {
                    GraphError::new(
                        ErrorKind::Server,
                        format!("{context}: bad @odata.nextLink: {e}"),
                    )
                })?;
                next = Some(u);
            }
        }
        Ok(())
    }

    /// Every item of a collection, each page parsed straight into `T` (no intermediate `Value`:
    /// a 1000-contact page is the hot path of a read).
    pub(super) async fn get_all_pages<T: DeserializeOwned>(
        &self,
        first: Url,
        mailbox: Option<&str>,
        headers: Vec<(&'static str, String)>,
        context: &str,
        advice: Option<&'static str>,
    ) -> Result<Vec<T>, GraphError> {
        #[derive(serde::Deserialize)]
        struct Page<T> {
            #[serde(default = "Vec::new")]
            value: Vec<T>,
            #[serde(default, rename = "@odata.nextLink")]
            next_link: Option<String>,
        }
        let mut items = Vec::new();
        self.each_page(first, mailbox, &headers, context, advice, |body, ctx| {
            let p: Page<T> = parse_body(body, ctx)?;
            items.extend(p.value);
            Ok(p.next_link)
        })
        .await?;
        Ok(items)
    }
}
