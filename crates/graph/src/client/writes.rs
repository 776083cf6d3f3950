//! Contact writes: one request per write, or `$batch` requests of up to 20 (docs/graph-facts.md §5)
//! whose items are retried on their own status.
//!
//! The result of each write is read into the caller's type `T` (a `$batch` item's body stays raw
//! JSON until then). This module never repeats a create whose outcome is unknown
//! (docs/reliability.md I2), and never reports as a plain conflict a 412 (or a delete's 404) that
//! an earlier, possibly applied attempt of the same write can explain: that becomes
//! [`ErrorKind::UnconfirmedWrite`], for the caller to settle by re-reading. Writes still pending
//! when the client halts (stop signal, open breaker) are not sent again: each fails with the
//! halt's kind, saying so when an earlier attempt of it may have been applied.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use super::GraphClient;
use super::request::{Call, ambiguous, parse_body, refusal_after_unknown_attempt};
use crate::batch::{self, BatchItem, ItemResponse, MAX_BATCH};
use crate::clock::add;
use crate::error::{ErrorKind, GraphError};
use crate::path;
use crate::retry::{Decision, Failure, Idempotency, Retryability, parse_retry_after};
use crate::secret::Secret;
use crate::types::{WriteRequest, WriteResponse};

type WriteResult<T> = Result<WriteResponse<T>, GraphError>;

/// A write turned into what goes on the wire; the body is borrowed from the write.
struct Prepared<'w> {
    method: Method,
    /// Below the version root, encoded (`/users/{u}/contacts/{id}`); a `$batch` item's `url`.
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Option<&'w Value>,
    idempotency: Idempotency,
    /// Final statuses an earlier, possibly applied attempt of this write can explain.
    echo_statuses: &'static [u16],
    /// What the write does, for messages ("updating contact X in adele@contoso.com").
    context: String,
}

impl<'w> Prepared<'w> {
    fn new(mailbox: &str, w: &'w WriteRequest) -> Self {
        let if_match = |m: &Option<String>| {
            m.iter()
                .map(|tag| ("If-Match", tag.clone()))
                .collect::<Vec<_>>()
        };
        match w {
            WriteRequest::Create { folder, body } => Self {
                method: Method::POST,
                path: path::contacts(mailbox, folder),
                headers: vec![],
                body: Some(body),
                idempotency: Idempotency::Create,
                // Never repeated once its outcome is unknown, so never refused after that.
                echo_statuses: &[],
                context: format!("creating a contact in {mailbox}"),
            },
            WriteRequest::Update {
                folder,
                contact_id,
                if_match: tag,
                body,
            } => Self {
                method: Method::PATCH,
                path: path::contact(mailbox, folder, contact_id),
                headers: if_match(tag),
                body: Some(body),
                idempotency: Idempotency::Repeatable,
                // An applied PATCH changed the etag its retry still carries.
                echo_statuses: &[412],
                context: format!("updating contact {contact_id} in {mailbox}"),
            },
            WriteRequest::Delete {
                folder,
                contact_id,
                if_match: tag,
            } => Self {
                method: Method::DELETE,
                path: path::contact(mailbox, folder, contact_id),
                headers: if_match(tag),
                body: None,
                idempotency: Idempotency::Repeatable,
                // An applied DELETE leaves nothing for its retry to find (or to match).
                echo_statuses: &[404, 412],
                context: format!("deleting contact {contact_id} in {mailbox}"),
            },
        }
    }
}

/// Where one write of a batched run stands.
#[derive(Clone, Copy, Default)]
struct ItemState {
    /// Rounds this item was sent in, against the policy's budget (a 401's resend does not count).
    attempts: u32,
    /// Its one token refresh after a 401 is spent.
    refreshed: bool,
    /// An earlier attempt may have been applied (a 500/502/504, a lost answer, a lost batch).
    unknown_attempt_before: bool,
}

/// What one item needs after a round.
enum ItemNext<T> {
    Done(WriteResult<T>),
    /// Send it again after `wait` (zero when the mailbox's pause does the waiting).
    Retry {
        wait: Duration,
    },
    /// Its token was refused (401): send it again with a fresh one.
    RetryWithFreshToken,
}

/// A `$batch` answer: items by id, the outer request-id, the token used.
struct BatchReply {
    items: HashMap<String, ItemResponse>,
    request_id: Option<String>,
    token: Secret,
    after_unknown_attempt: bool,
}

impl GraphClient {
    /// Applies `writes` to `mailbox`; one result per write, in input order. Response bodies are
    /// read into `T` (the caller's contact type; a delete's result has none).
    ///
    /// With batching on, writes go in `$batch` requests of ≤ 20 (docs/graph-facts.md §5); each item
    /// is retried on its own status: a 429 item after its `Retry-After` (pausing the mailbox), a
    /// 5xx item after backoff. Creates whose outcome is unknown are not repeated
    /// ([`ErrorKind::AmbiguousWrite`]); a 412 (or a delete's 404) after an earlier attempt whose
    /// outcome is unknown is [`ErrorKind::UnconfirmedWrite`].
    pub async fn execute_writes<T: DeserializeOwned>(
        &self,
        mailbox: &str,
        writes: Vec<WriteRequest>,
    ) -> Vec<WriteResult<T>> {
        if writes.is_empty() {
            return Vec::new();
        }
        if !self.inner.batch_writes || writes.len() == 1 {
            return futures::future::join_all(writes.iter().map(|w| self.write_one(mailbox, w)))
                .await;
        }
        self.write_batched(mailbox, &writes).await
    }

    async fn write_one<T: DeserializeOwned>(
        &self,
        mailbox: &str,
        w: &WriteRequest,
    ) -> WriteResult<T> {
        let p = Prepared::new(mailbox, w);
        let call = Call {
            method: p.method,
            url: self.url(&p.path)?,
            mailbox: Some(mailbox.to_owned()),
            weight: 1,
            units: 1,
            permission_advice: None,
            headers: p.headers,
            body: p.body.map(|b| serde_json::to_vec(b).unwrap_or_default()),
            idempotency: p.idempotency,
            echo_statuses: p.echo_statuses,
            context: p.context,
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

    /// Rounds of `$batch` requests until every write has its result: each round sends the
    /// pending items (20 per batch, batches in parallel), and [`Self::item_next`] decides per
    /// item whether it is done or goes into the next round.
    async fn write_batched<T: DeserializeOwned>(
        &self,
        mailbox: &str,
        writes: &[WriteRequest],
    ) -> Vec<WriteResult<T>> {
        let n = writes.len();
        let prepared: Vec<Prepared<'_>> =
            writes.iter().map(|w| Prepared::new(mailbox, w)).collect();
        let mut states = vec![ItemState::default(); n];
        let mut results: Vec<Option<WriteResult<T>>> =
            std::iter::repeat_with(|| None).take(n).collect();
        let mut pending: Vec<usize> = (0..n).collect();
        let mut rejected: Vec<Secret> = Vec::new();
        while !pending.is_empty() {
            let chunks: Vec<Vec<usize>> =
                pending.chunks(MAX_BATCH).map(<[usize]>::to_vec).collect();
            for &i in &pending {
                states[i].attempts += 1;
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
                let reply = match outcome {
                    Ok(reply) => reply,
                    Err(e) => {
                        // The batch request as a whole failed after its own retries.
                        for &i in chunk {
                            match self.after_lost_batch(&e, &prepared[i], &mut states[i]) {
                                Some(err) => results[i] = Some(Err(err)),
                                None => next.push(i),
                            }
                        }
                        continue;
                    }
                };
                for &i in chunk {
                    let st = &mut states[i];
                    // The whole batch was sent again after an answer was lost: each of its
                    // items may have been applied by the lost attempt.
                    st.unknown_attempt_before |= reply.after_unknown_attempt;
                    let item = reply.items.get(&i.to_string());
                    match self.item_next(
                        mailbox,
                        &prepared[i],
                        st,
                        item,
                        reply.request_id.as_deref(),
                    ) {
                        ItemNext::Done(r) => results[i] = Some(r),
                        ItemNext::Retry { wait } => {
                            backoff = backoff.max(wait);
                            next.push(i);
                        }
                        ItemNext::RetryWithFreshToken => {
                            rejected.push(reply.token.clone());
                            next.push(i);
                        }
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
                    let ctx = format!("retrying {} writes to {mailbox}", next.len());
                    if let Err(e) = self
                        .inner
                        .halt
                        .pause(&*self.inner.clock, backoff, &ctx)
                        .await
                    {
                        // Stopped or unreachable: what is still pending is not sent again.
                        for &i in &next {
                            results[i] = Some(Err(halted_item(&e, &prepared[i], &states[i])));
                        }
                        next.clear();
                    }
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

    /// An item whose whole `$batch` failed after that request's own retries: `None` sends it
    /// again. A batch holding a create is not repeated once its outcome is unknown (it is
    /// [`ErrorKind::AmbiguousWrite`]); the repeatable items in it go into the next round, marked
    /// as possibly applied.
    fn after_lost_batch(
        &self,
        e: &GraphError,
        p: &Prepared<'_>,
        st: &mut ItemState,
    ) -> Option<GraphError> {
        if matches!(e.kind, ErrorKind::Cancelled | ErrorKind::Unreachable) {
            return Some(halted_item(e, p, st));
        }
        let lost = e.kind == ErrorKind::AmbiguousWrite;
        let repeatable = p.idempotency == Idempotency::Repeatable;
        if lost && repeatable && st.attempts < self.inner.policy.max_attempts {
            st.unknown_attempt_before = true;
            return None;
        }
        let mut e = e.clone();
        if lost && repeatable {
            // Not this item's ambiguity: it could have been repeated, the budget ran out.
            e.kind = ErrorKind::Transport;
        }
        Some(e)
    }

    /// The decision for one item of a `$batch` answer (`None`: the answer lacks it).
    fn item_next<T: DeserializeOwned>(
        &self,
        mailbox: &str,
        p: &Prepared<'_>,
        st: &mut ItemState,
        item: Option<&ItemResponse>,
        outer_request_id: Option<&str>,
    ) -> ItemNext<T> {
        let Some(item) = item else {
            // Graph answered the batch but not this item: treat it as lost in transit.
            let e = GraphError::new(
                ErrorKind::Server,
                format!(
                    "{}: the $batch response has no result for this item",
                    p.context
                ),
            );
            return self.after_failed_item(
                mailbox,
                p,
                st,
                &Failure::Transport { maybe_sent: true },
                e,
            );
        };
        let rid = item
            .header("request-id")
            .or(outer_request_id)
            .map(str::to_owned);
        if (200..300).contains(&item.status) {
            // Graph may base64-encode non-JSON item bodies; contacts are JSON.
            let body = match item.body.as_deref().map(RawValue::get) {
                None => Ok(None),
                Some(raw) if is_empty_json(raw) => Ok(None),
                Some(raw) => parse_raw::<T>(raw, &p.context).map(Some),
            };
            return ItemNext::Done(body.map(|body| WriteResponse {
                status: item.status,
                body,
                request_id: rid,
            }));
        }
        let body = item.body.as_deref().map_or("null", RawValue::get);
        let err = self.scrub(GraphError::from_graph_response(
            item.status,
            body.as_bytes(),
            rid,
            &p.context,
        ));
        if item.status == 401 && !st.refreshed {
            // docs/graph-facts.md §7: the token expired between the batch's acceptance and this
            // item; refresh once (per item) and send the item again.
            st.refreshed = true;
            st.attempts -= 1;
            return ItemNext::RetryWithFreshToken;
        }
        // No 424 (failed dependency) case: we never send `dependsOn` (batch.rs), and only a
        // dependant of a failed item gets 424 (docs/graph-facts.md §5). Should one come anyway, it
        // is final like any other 4xx.
        if item.status == 429 {
            self.inner
                .counters
                .throttled
                .fetch_add(1, Ordering::Relaxed);
        }
        let failure = Failure::Status {
            status: item.status,
            retry_after: item
                .header("retry-after")
                .and_then(|v| parse_retry_after(v, self.inner.clock.now())),
        };
        self.after_failed_item(mailbox, p, st, &failure, err)
    }

    /// The policy's decision for a failed item, as the item's next step.
    fn after_failed_item<T>(
        &self,
        mailbox: &str,
        p: &Prepared<'_>,
        st: &mut ItemState,
        failure: &Failure,
        err: GraphError,
    ) -> ItemNext<T> {
        match self.decide(st.attempts, failure, p.idempotency) {
            Decision::Retry { after, throttled } => {
                if failure.retryability() == Retryability::MaybeApplied {
                    st.unknown_attempt_before = true;
                }
                if throttled {
                    // The item's Retry-After pauses the whole mailbox.
                    self.inner
                        .limits
                        .pause(mailbox, add(self.inner.clock.now(), after));
                    ItemNext::Retry {
                        wait: Duration::ZERO,
                    }
                } else {
                    ItemNext::Retry { wait: after }
                }
            }
            Decision::Ambiguous => ItemNext::Done(Err(ambiguous(err))),
            Decision::WaitTooLong { asked, cap } => {
                ItemNext::Done(Err(err.waited_too_long(asked, cap)))
            }
            Decision::GiveUp => ItemNext::Done(Err(refusal_after_unknown_attempt(
                err,
                st.unknown_attempt_before,
                p.echo_statuses,
            ))),
        }
    }

    async fn send_batch(
        &self,
        mailbox: &str,
        idx: &[usize],
        prepared: &[Prepared<'_>],
    ) -> Result<BatchReply, GraphError> {
        let mut items = Vec::with_capacity(idx.len());
        let mut idempotency = Idempotency::Repeatable;
        for &i in idx {
            let p = &prepared[i];
            if p.idempotency == Idempotency::Create {
                idempotency = Idempotency::Create;
            }
            items.push(BatchItem {
                id: i.to_string(),
                method: method_str(&p.method),
                url: &p.path,
                headers: p.headers.iter().map(|(k, v)| (*k, v.as_str())).collect(),
                body: p.body,
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
            // Graph counts every item (docs/graph-facts.md §5); the batch itself is counted too
            // (the safe side of an undocumented question, `crate::pacing`).
            units: items.len() + 1,
            permission_advice: None,
            headers: vec![],
            body: Some(batch::request_body(&items)),
            idempotency,
            // The batch's own status is 200 whatever its items say; their refusals are judged
            // per item (`item_next`), with `after_unknown_attempt` passed down.
            echo_statuses: &[],
            context: format!("$batch of {} writes to {mailbox}", items.len()),
        };
        let r = self.call(&call).await?;
        Ok(BatchReply {
            items: batch::parse_response(&r.body)?,
            request_id: r.request_id,
            token: r.token,
            after_unknown_attempt: r.after_unknown_attempt,
        })
    }
}

/// The error of a write left unsent because the client halted: the halt's kind, in the write's
/// words, saying so when an earlier attempt of it may have been applied.
fn halted_item(e: &GraphError, p: &Prepared<'_>, st: &ItemState) -> GraphError {
    let mut out = GraphError::new(e.kind, format!("{}: {}", p.context, halt_reason(e)));
    if st.unknown_attempt_before {
        out.message
            .push_str(" — an earlier attempt may have been applied (its answer was lost)");
    }
    out
}

/// A halt error's message without the context of the request that met it.
fn halt_reason(e: &GraphError) -> &str {
    match e.kind {
        ErrorKind::Cancelled => "stopped before it was sent",
        _ => e
            .message
            .split_once(": ")
            .map_or(e.message.as_str(), |(_, rest)| rest),
    }
}

fn method_str(m: &Method) -> &'static str {
    match *m {
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        _ => "GET",
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_item_bodies_are_recognised_without_parsing() {
        for raw in ["null", " null ", "{}", "{ }", "{\n}"] {
            assert!(is_empty_json(raw), "{raw:?}");
        }
        for raw in ["{\"id\":\"x\"}", "[]", "\"\"", "nul", "{}x"] {
            assert!(!is_empty_json(raw), "{raw:?}");
        }
        #[derive(Debug, serde::Deserialize)]
        struct Contact {
            id: String,
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
