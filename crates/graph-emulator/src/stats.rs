//! Request accounting for the control plane (`GET /_emulator/stats`,
//! crates/graph-emulator/README.md, "Control plane"): what the client sent, per mailbox and per
//! `User-Agent`, and how many ran at once.
//!
//! It only counts; it never decides whether a request may run (that is the limits layer's job,
//! which reads the in-flight numbers kept here).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

/// The stats document (stable shape, crates/graph-emulator/README.md, "Control plane").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// HTTP requests received on the Graph surface; a `$batch` counts once.
    pub requests: u64,
    pub throttled: u64,
    pub by_mailbox: BTreeMap<String, MailboxStats>,
    pub batches: u64,
    pub batch_items: u64,
    pub token_requests: u64,
    /// Bytes of Graph response bodies sent (the JSON, not headers or TLS framing); a `$batch`
    /// counts once, as the one body it is. Additive to the stable shape, so readers of older
    /// stats documents see 0.
    #[serde(default)]
    pub response_bytes: u64,
    /// Requests by their `User-Agent` header (`""`: sent without one), so a test can prove how a
    /// client identifies itself on every request. Additive to the stable shape.
    #[serde(default)]
    pub user_agents: BTreeMap<String, AgentStats>,
}

/// The requests of one `User-Agent` value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStats {
    /// Graph requests, as `requests` counts them (a `$batch` once).
    pub requests: u64,
    /// Token endpoint requests, as `tokenRequests` counts them.
    pub token_requests: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxStats {
    #[serde(rename = "GET")]
    pub get: u64,
    #[serde(rename = "POST")]
    pub post: u64,
    #[serde(rename = "PATCH")]
    pub patch: u64,
    #[serde(rename = "DELETE")]
    pub delete: u64,
    pub throttled: u64,
    #[serde(rename = "maxInFlight")]
    pub max_in_flight: u64,
    /// Requests that repeated a request answered 429 with `Retry-After` (same method, path,
    /// query and body) before that `Retry-After` had passed on the emulator clock
    /// (docs/reliability.md I5). Only exact repeats count: another request already on its way when
    /// the 429 was sent cannot have known about it, so counting it would accuse a well-behaved
    /// client.
    #[serde(rename = "earlyRetries", default)]
    pub early_retries: u64,
    /// Bytes of response bodies sent for requests to this mailbox. A `$batch` is attributed here
    /// only when every one of its items addresses this mailbox; otherwise it counts in the
    /// total `responseBytes` alone.
    #[serde(rename = "responseBytes", default)]
    pub response_bytes: u64,
}

#[derive(Default)]
struct Inner {
    stats: Stats,
    /// Current in-flight count per mailbox key (not reset by `reset`: requests still running
    /// must decrement what they incremented).
    in_flight: BTreeMap<String, u64>,
    /// Per (mailbox, request fingerprint): when the `Retry-After` of its last 429 ends.
    retry_after: BTreeMap<(String, u64), jiff::Timestamp>,
}

/// Shared, cheap-to-clone stats recorder.
#[derive(Clone, Default)]
pub struct StatsRecorder {
    inner: Arc<Mutex<Inner>>,
}

#[allow(
    dead_code,
    reason = "batch/throttled/in_flight are for the batch and limits layers"
)]
impl StatsRecorder {
    pub fn snapshot(&self) -> Stats {
        self.inner.lock().unwrap().stats.clone()
    }

    pub fn reset(&self) {
        self.inner.lock().unwrap().stats = Stats::default();
    }

    /// A request on the Graph surface, sent with this `User-Agent` (`None`: without one).
    pub fn graph_request(&self, user_agent: Option<&str>) {
        let mut g = self.inner.lock().unwrap();
        g.stats.requests += 1;
        agent(&mut g.stats, user_agent).requests += 1;
    }

    /// A request to the token endpoint, sent with this `User-Agent` (`None`: without one).
    pub fn token_request(&self, user_agent: Option<&str>) {
        let mut g = self.inner.lock().unwrap();
        g.stats.token_requests += 1;
        agent(&mut g.stats, user_agent).token_requests += 1;
    }

    /// A Graph response body of `bytes` bytes was sent (attributed to `mailbox` when known).
    pub fn response_sent(&self, mailbox: Option<&str>, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        let mut g = self.inner.lock().unwrap();
        g.stats.response_bytes += bytes;
        if let Some(m) = mailbox {
            g.stats
                .by_mailbox
                .entry(m.to_string())
                .or_default()
                .response_bytes += bytes;
        }
    }

    pub fn batch(&self, items: u64) {
        let mut g = self.inner.lock().unwrap();
        g.stats.batches += 1;
        g.stats.batch_items += items;
    }

    /// A request answered 429 (by the limits or faults layer).
    pub fn throttled(&self, mailbox: Option<&str>) {
        let mut g = self.inner.lock().unwrap();
        g.stats.throttled += 1;
        if let Some(m) = mailbox {
            g.stats
                .by_mailbox
                .entry(m.to_string())
                .or_default()
                .throttled += 1;
        }
    }

    /// A request to `mailbox` with this fingerprint was answered 429 with `Retry-After` ending at
    /// `until` (emulator clock).
    pub fn retry_after_sent(&self, mailbox: &str, fingerprint: u64, until: jiff::Timestamp) {
        let mut g = self.inner.lock().unwrap();
        g.retry_after
            .insert((mailbox.to_string(), fingerprint), until);
    }

    /// Called for every request to a mailbox as it arrives: counts it in `earlyRetries` when it
    /// repeats a throttled request whose `Retry-After` has not passed yet.
    pub fn arrived(&self, mailbox: &str, fingerprint: u64, now: jiff::Timestamp) {
        let mut g = self.inner.lock().unwrap();
        let key = (mailbox.to_string(), fingerprint);
        let Some(until) = g.retry_after.get(&key).copied() else {
            return;
        };
        if now < until {
            g.stats
                .by_mailbox
                .entry(mailbox.to_string())
                .or_default()
                .early_retries += 1;
        } else {
            g.retry_after.remove(&key);
        }
    }

    /// Counts one request to a mailbox that was refused before it ran (throttled or faulted):
    /// it counts as a request, but was never in flight.
    pub fn mailbox_request(&self, mailbox: &str, method: &str) {
        let mut g = self.inner.lock().unwrap();
        let m = g.stats.by_mailbox.entry(mailbox.to_string()).or_default();
        match method {
            "GET" => m.get += 1,
            "POST" => m.post += 1,
            "PATCH" => m.patch += 1,
            "DELETE" => m.delete += 1,
            _ => {}
        }
    }

    /// Counts one request to a mailbox and marks it in flight until the guard drops.
    pub fn enter_mailbox(&self, mailbox: &str, method: &str) -> InFlight {
        let mut g = self.inner.lock().unwrap();
        let now = {
            let n = g.in_flight.entry(mailbox.to_string()).or_default();
            *n += 1;
            *n
        };
        let m = g.stats.by_mailbox.entry(mailbox.to_string()).or_default();
        match method {
            "GET" => m.get += 1,
            "POST" => m.post += 1,
            "PATCH" => m.patch += 1,
            "DELETE" => m.delete += 1,
            _ => {}
        }
        m.max_in_flight = m.max_in_flight.max(now);
        InFlight {
            recorder: self.clone(),
            mailbox: mailbox.to_string(),
            count_at_entry: now,
        }
    }

    /// Requests to this mailbox currently in flight.
    pub fn in_flight(&self, mailbox: &str) -> u64 {
        self.inner
            .lock()
            .unwrap()
            .in_flight
            .get(mailbox)
            .copied()
            .unwrap_or(0)
    }
}

fn agent<'a>(stats: &'a mut Stats, user_agent: Option<&str>) -> &'a mut AgentStats {
    stats
        .user_agents
        .entry(user_agent.unwrap_or_default().to_string())
        .or_default()
}

/// The `User-Agent` of a request as the stats key it: the header's text (bytes that are not
/// UTF-8 replaced), `None` without one.
pub fn user_agent_of(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(axum::http::header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// Marks one request in flight to a mailbox; decrements on drop.
pub struct InFlight {
    recorder: StatsRecorder,
    mailbox: String,
    /// How many were in flight (this one included) when it entered.
    #[allow(dead_code, reason = "the limits layer keeps its own in-flight counts")]
    pub count_at_entry: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut g = self.recorder.inner.lock().unwrap();
        if let Some(n) = g.in_flight.get_mut(&self.mailbox) {
            *n = n.saturating_sub(1);
        }
    }
}
