//! Runs that end: the caller's [`StopSignal`] and the client's circuit breakers.
//!
//! A client stops starting work for one of two reasons. The caller asked ([`StopSignal::stop`]:
//! SIGINT, SIGTERM, a deadline): calls not yet sent fail with [`ErrorKind::Cancelled`]. Or an
//! endpoint is gone: after [`BreakerPolicy::failures`] transport failures in a row (connection
//! refused, DNS, TLS, timeouts, connections lost) with no answer in between, and at least
//! [`BreakerPolicy::over`] since the first of them, the endpoint's breaker opens and every call of
//! the client fails with [`ErrorKind::Unreachable`], naming the endpoint and what was seen. Graph
//! and the login endpoint have a breaker each; either one opening halts the client, which cannot
//! work without both. A breaker never closes again: a run that lost Graph ends, and the next
//! scheduled run starts afresh.
//!
//! Either way every wait of the client (backoff, a mailbox's `Retry-After` pause, a concurrency
//! slot, the app budget) ends at once; requests already on the wire finish (bounded by the
//! request timeout). A backoff wait after transport failures also ends at the instant the breaker
//! would open, so a dead endpoint is given up within `over` of its first failure even when
//! backoff steps are longer. This module only counts, waits and wakes; it never sends.
//!
//! [`ErrorKind::Cancelled`]: crate::ErrorKind::Cancelled
//! [`ErrorKind::Unreachable`]: crate::ErrorKind::Unreachable

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::watch;

use crate::clock::{Clock, add, until};
use crate::error::{ErrorKind, GraphError};

/// A caller's request to stop: once [`stop`](Self::stop)ped, every client built with a clone of
/// this signal stops starting work. Cheap to clone; clones share the state.
#[derive(Clone)]
pub struct StopSignal {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for StopSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StopSignal")
            .field(&self.is_stopped())
            .finish()
    }
}

impl StopSignal {
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    /// Stops every client sharing this signal (idempotent).
    pub fn stop(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_stopped(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once [`stop`](Self::stop) has been called.
    pub async fn stopped(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so this only returns once the value is true.
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// When an endpoint counts as gone: `failures` transport failures in a row, the first of them at
/// least `over` ago, and no answer since. `failures: 0` turns the breaker off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerPolicy {
    pub failures: u32,
    pub over: Duration,
}

impl Default for BreakerPolicy {
    /// 3 failures, the first at least 20 s ago. `over` decides how long a dead endpoint lasts:
    /// a refused or unresolvable one ends the client's calls 20 s after its first failure (a
    /// single caller's third failure comes after 1–2 s of backoff, and the backoff after it is
    /// cut at the breaker's instant); one that drops packets costs one connect timeout more
    /// before its first failure (and a single caller needs its three attempts: about 30 s with
    /// the default 10 s connect timeout). The 20 s span keeps a burst of simultaneous failures
    /// (a load balancer dropping every open connection at once) from ending a run that a retry a
    /// second later would have saved; the count keeps one slow failure from doing so. An
    /// endpoint that accepts connections and never answers is only caught by the request
    /// timeout (three of them) — a run deadline is the caller's remedy for that.
    fn default() -> Self {
        Self {
            failures: 3,
            over: Duration::from_secs(20),
        }
    }
}

/// Which endpoint a transport failure or an answer came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Graph,
    Login,
}

/// Consecutive transport failures of one endpoint.
struct Streak {
    count: u32,
    first: Timestamp,
    /// What was seen, by kind ("connection refused"), in order of first sight.
    seen: Vec<(&'static str, u32)>,
    last: String,
}

struct Breaker {
    /// "Graph at https://graph.microsoft.com/", for messages.
    name: String,
    /// A streak exists (lets every answer skip the lock when all is well).
    armed: AtomicBool,
    streak: Mutex<Option<Streak>>,
}

impl Breaker {
    fn new(name: String) -> Self {
        Self {
            name,
            armed: AtomicBool::new(false),
            streak: Mutex::new(None),
        }
    }
}

/// The stop signal and both breakers of one client.
pub(crate) struct Halt {
    stop: StopSignal,
    policy: BreakerPolicy,
    graph: Breaker,
    login: Breaker,
    /// The first breaker to open leaves its error here, for every later call.
    tripped: watch::Sender<Option<GraphError>>,
}

impl Halt {
    pub(crate) fn new(stop: StopSignal, policy: BreakerPolicy, graph: &str, login: &str) -> Self {
        Self {
            stop,
            policy,
            graph: Breaker::new(format!("Graph at {graph}")),
            login: Breaker::new(format!("the login endpoint {login}")),
            tripped: watch::channel(None).0,
        }
    }

    fn breaker(&self, ep: Endpoint) -> &Breaker {
        match ep {
            Endpoint::Graph => &self.graph,
            Endpoint::Login => &self.login,
        }
    }

    /// Why nothing more may be sent, if so.
    pub(crate) fn check(&self, context: &str) -> Result<(), GraphError> {
        if self.stop.is_stopped() {
            return Err(cancelled(context));
        }
        match &*self.tripped.borrow() {
            Some(e) => Err(in_context(e, context)),
            None => Ok(()),
        }
    }

    /// Resolves when the client halts (stop or an open breaker), with the error for `context`.
    pub(crate) async fn halted(&self, context: &str) -> GraphError {
        let mut tripped = self.tripped.subscribe();
        tokio::select! {
            biased;
            () = self.stop.stopped() => cancelled(context),
            r = tripped.wait_for(Option::is_some) => match r {
                Ok(e) => in_context(e.as_ref().expect("waited for Some"), context),
                // The sender lives in `self`; it cannot be gone while we borrow it.
                Err(_) => cancelled(context),
            },
        }
    }

    /// Runs `f` unless or until the client halts.
    pub(crate) async fn guard<F: Future>(
        &self,
        context: &str,
        f: F,
    ) -> Result<F::Output, GraphError> {
        self.check(context)?;
        tokio::select! {
            biased;
            e = self.halted(context) => Err(e),
            out = f => Ok(out),
        }
    }

    /// Sleeps `d` through `clock`, ending early with an error when the client halts or a breaker
    /// becomes due to open (see the module doc).
    pub(crate) async fn pause(
        &self,
        clock: &dyn Clock,
        d: Duration,
        context: &str,
    ) -> Result<(), GraphError> {
        let end = add(clock.now(), d);
        loop {
            self.check(context)?;
            let now = clock.now();
            if let Some(e) = self.open_if_due(now) {
                return Err(in_context(&e, context));
            }
            let left = until(now, end);
            if left.is_zero() {
                return Ok(());
            }
            let step = self.due().map_or(left, |due| left.min(until(now, due)));
            tokio::select! {
                biased;
                e = self.halted(context) => return Err(e),
                () = clock.sleep(step) => {}
            }
        }
    }

    /// An answer (any HTTP status) came from `ep`: it is reachable, its streak ends.
    pub(crate) fn answered(&self, ep: Endpoint) {
        let b = self.breaker(ep);
        if b.armed.load(Ordering::Relaxed) {
            *b.streak.lock().unwrap() = None;
            b.armed.store(false, Ordering::Relaxed);
        }
    }

    /// A transport failure of `ep` (`what`: its kind from [`describe`], `detail`: the error).
    /// Returns the breaker's error if this failure opened it (or it was open already).
    pub(crate) fn transport_failure(
        &self,
        ep: Endpoint,
        now: Timestamp,
        what: &'static str,
        detail: &str,
    ) -> Option<GraphError> {
        if self.policy.failures == 0 {
            return None;
        }
        let b = self.breaker(ep);
        {
            let mut g = b.streak.lock().unwrap();
            let s = g.get_or_insert_with(|| Streak {
                count: 0,
                first: now,
                seen: Vec::new(),
                last: String::new(),
            });
            b.armed.store(true, Ordering::Relaxed);
            s.count += 1;
            match s.seen.iter_mut().find(|(k, _)| *k == what) {
                Some((_, n)) => *n += 1,
                None => s.seen.push((what, 1)),
            }
            s.last = detail.to_owned();
        }
        self.open_if_due(now)
    }

    /// The earliest instant a breaker with enough failures opens if no answer comes first.
    fn due(&self) -> Option<Timestamp> {
        [&self.graph, &self.login]
            .into_iter()
            .filter(|b| b.armed.load(Ordering::Relaxed))
            .filter_map(|b| {
                let g = b.streak.lock().unwrap();
                g.as_ref()
                    .filter(|s| s.count >= self.policy.failures)
                    .map(|s| add(s.first, self.policy.over))
            })
            .min()
    }

    /// Opens every breaker whose time has come; returns the client's breaker error if any is open.
    fn open_if_due(&self, now: Timestamp) -> Option<GraphError> {
        if let Some(e) = &*self.tripped.borrow() {
            return Some(e.clone());
        }
        for b in [&self.graph, &self.login] {
            if !b.armed.load(Ordering::Relaxed) {
                continue;
            }
            let e = {
                let g = b.streak.lock().unwrap();
                match g.as_ref() {
                    Some(s)
                        if s.count >= self.policy.failures
                            && until(s.first, now) >= self.policy.over =>
                    {
                        unreachable_error(&b.name, s, until(s.first, now))
                    }
                    _ => continue,
                }
            };
            tracing::warn!("{}", e.message);
            self.tripped.send_if_modified(|t| {
                if t.is_none() {
                    *t = Some(e);
                    true
                } else {
                    false
                }
            });
            return self.tripped.borrow().clone();
        }
        None
    }
}

fn unreachable_error(name: &str, s: &Streak, span: Duration) -> GraphError {
    let seen: Vec<String> = s
        .seen
        .iter()
        .map(|(k, n)| match n {
            1 => format!("{k} once"),
            n => format!("{k} {n} times"),
        })
        .collect();
    GraphError::new(
        ErrorKind::Unreachable,
        format!(
            "{name} unreachable: {} over {} s with no answer in between (last: {}); this client sends nothing more",
            seen.join(", "),
            span.as_secs(),
            s.last
        ),
    )
}

fn cancelled(context: &str) -> GraphError {
    GraphError::new(
        ErrorKind::Cancelled,
        format!("{context}: stopped before it was sent"),
    )
}

fn in_context(e: &GraphError, context: &str) -> GraphError {
    let mut e = e.clone();
    e.message = format!("{context}: {}", e.message);
    e
}

/// What kind of transport failure `e` is, in a few words for the breaker's message.
pub(crate) fn describe(e: &reqwest::Error) -> &'static str {
    let chain = crate::client::request::error_chain(e).to_ascii_lowercase();
    if chain.contains("dns error") || chain.contains("failed to lookup address") {
        "DNS lookup failed"
    } else if chain.contains("connection refused") {
        "connection refused"
    } else if e.is_timeout() || chain.contains("timed out") {
        "timed out"
    } else if chain.contains("tls") || chain.contains("handshake") || chain.contains("certificate")
    {
        "TLS failed"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "connection lost"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::VirtualClock;

    fn halt(failures: u32, over_s: u64) -> Halt {
        Halt::new(
            StopSignal::new(),
            BreakerPolicy {
                failures,
                over: Duration::from_secs(over_s),
            },
            "https://graph.example/",
            "https://login.example/",
        )
    }

    #[tokio::test]
    async fn opens_only_after_enough_failures_and_enough_time() {
        let clock = VirtualClock::default();
        let h = halt(3, 20);
        let t0 = clock.now();
        // A burst: many failures at one instant do not open it.
        for _ in 0..10 {
            assert!(
                h.transport_failure(Endpoint::Graph, t0, "connection lost", "reset")
                    .is_none()
            );
        }
        // An answer ends the streak.
        h.answered(Endpoint::Graph);
        let t1 = add(t0, Duration::from_secs(25));
        assert!(
            h.transport_failure(Endpoint::Graph, t1, "connection refused", "refused")
                .is_none()
        );
        let t2 = add(t1, Duration::from_secs(21));
        assert!(
            h.transport_failure(Endpoint::Graph, t2, "connection refused", "refused")
                .is_none(),
            "2 failures are not enough"
        );
        let e = h
            .transport_failure(Endpoint::Graph, t2, "timed out", "operation timed out")
            .expect("opens");
        assert_eq!(e.kind, ErrorKind::Unreachable);
        assert_eq!(
            e.message,
            "Graph at https://graph.example/ unreachable: connection refused 2 times, timed out once \
             over 21 s with no answer in between (last: operation timed out); this client sends nothing more"
        );
        // Open for good: an answer does not close it, every call is refused.
        h.answered(Endpoint::Graph);
        let e = h.check("listing contacts of a@x").unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unreachable);
        assert!(e.message.starts_with("listing contacts of a@x: Graph at"));
    }

    #[tokio::test]
    async fn a_backoff_ends_when_the_breaker_becomes_due_and_waiters_wake() {
        let clock = Arc::new(VirtualClock::default());
        let h = Arc::new(halt(2, 20));
        let t0 = clock.now();
        h.transport_failure(Endpoint::Login, t0, "DNS lookup failed", "dns error");
        h.transport_failure(Endpoint::Login, t0, "DNS lookup failed", "dns error");
        // Someone waiting for a slot that never comes.
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move {
                h.guard("waiting", std::future::pending::<()>())
                    .await
                    .unwrap_err()
            })
        };
        // A 30 s backoff is cut at the breaker's due instant (20 s).
        let e = h
            .pause(&*clock, Duration::from_secs(30), "retrying")
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unreachable);
        assert_eq!(until(t0, clock.now()), Duration::from_secs(20));
        assert!(
            e.message
                .contains("the login endpoint https://login.example/")
        );
        assert!(e.message.contains("DNS lookup failed 2 times over 20 s"));
        let w = waiter.await.unwrap();
        assert_eq!(w.kind, ErrorKind::Unreachable);
        assert!(w.message.starts_with("waiting: "));
    }

    #[tokio::test]
    async fn stop_ends_every_wait_and_refuses_new_work() {
        let clock = Arc::new(VirtualClock::default());
        let stop = StopSignal::new();
        let h = Arc::new(Halt::new(stop.clone(), BreakerPolicy::default(), "g", "l"));
        assert!(h.check("x").is_ok());
        let waiter = {
            let h = h.clone();
            tokio::spawn(async move { h.guard("slot", std::future::pending::<()>()).await })
        };
        tokio::task::yield_now().await;
        stop.stop();
        let e = waiter.await.unwrap().unwrap_err();
        assert_eq!(e.kind, ErrorKind::Cancelled);
        assert_eq!(e.message, "slot: stopped before it was sent");
        let e = h
            .pause(&*clock, Duration::from_secs(5), "backoff")
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Cancelled);
        assert!(clock.sleeps().is_empty(), "no wait after the stop");
        assert!(stop.is_stopped());
        stop.stopped().await;
    }

    #[tokio::test]
    async fn a_pause_without_trouble_is_one_sleep_and_an_answer_disarms() {
        let clock = VirtualClock::default();
        let h = halt(2, 20);
        h.pause(&clock, Duration::from_secs(3), "x").await.unwrap();
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(3)]);
        let t0 = clock.now();
        h.transport_failure(Endpoint::Graph, t0, "connection refused", "r");
        h.transport_failure(Endpoint::Graph, t0, "connection refused", "r");
        h.answered(Endpoint::Graph);
        // Disarmed: a long pause is not cut and nothing opens.
        h.pause(&clock, Duration::from_secs(40), "x").await.unwrap();
        assert_eq!(until(t0, clock.now()), Duration::from_secs(40));
        assert!(h.check("x").is_ok());
        // Off: never opens.
        let off = halt(0, 0);
        for _ in 0..100 {
            assert!(
                off.transport_failure(Endpoint::Graph, t0, "x", "y")
                    .is_none()
            );
        }
    }
}
