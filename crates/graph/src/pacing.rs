//! App-wide pacing: every request a process sends for one application (client id) stays under
//! Graph's global budget, 130,000 requests per 10 seconds per app across all tenants
//! (docs/graph-facts.md §6, <https://learn.microsoft.com/graph/throttling-limits>), *before* Graph
//! has to answer 429. A 429 from that budget would be paid for by every mailbox of every tenant at
//! once; waiting for budget costs nothing Graph would not have made us wait anyway.
//!
//! What counts: every HTTP request sent to Graph (retries and a 401's resend included), each item
//! of a `$batch` (Graph evaluates every item against its limits on its own, docs/graph-facts.md §5)
//! and the `$batch` request itself — whether Graph counts the envelope too is undocumented, so it
//! is counted (the safe side: at most one unit in 21 spent for nothing). Token requests go to the
//! identity platform, not Graph, and do not count.
//!
//! The window: Graph does not say how it measures "per 10 seconds" (the emulator uses fixed
//! windows). The pacer keeps at most `requests` sends in *any* interval of `per + per/10`, a
//! sliding window over the instants we send at. A sliding window never lets more through than
//! any fixed window of the same length wherever that one starts, and the extra tenth (1 s by
//! default) absorbs the difference between when we send and when Graph counts (connection set-up,
//! routing): as long as that difference varies by less than `per/10`, no interval of `per` at
//! Graph's side sees more than `requests`. It costs a tenth of the peak rate, which only matters
//! when the budget is the bottleneck anyway.
//!
//! Reservations are first come, first served: each request is given the earliest send instant
//! that keeps the window within budget, in the order requests ask, so a batch of 21 units is never
//! starved by single requests. A reservation whose request is then not sent (cancelled) stays
//! counted, again the safe side.
//!
//! Sharing is explicit: the caller hands the same [`AppBudgets`] to every client of the process
//! (all tenants of a run are one app), and clients with the same client id share one pacer. This
//! module only computes and waits through the injected clock; it never sends and keeps no global
//! state.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;

/// A request budget: at most `requests` requests per `per`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestBudget {
    pub requests: u32,
    pub per: Duration,
}

impl Default for RequestBudget {
    /// Graph's documented global limit: 130,000 requests per 10 s per app (docs/graph-facts.md §6).
    /// The pacer's own margin (see the module doc) keeps us under it without lowering the number
    /// here.
    fn default() -> Self {
        Self {
            requests: 130_000,
            per: Duration::from_secs(10),
        }
    }
}

impl RequestBudget {
    /// The interval the pacer applies the budget to: `per` plus a tenth for transit jitter.
    pub fn window(&self) -> Duration {
        self.per + self.per / 10
    }
}

/// The app-wide budgets of one process: one pacer per application (client) id, shared by every
/// [`GraphClient`](crate::GraphClient) built with a clone of this value. Cheap to clone.
///
/// The first client of an app id fixes that pacer's budget and clock; later clients of the same
/// app share it as it is (they must share the clock too; the binary uses the system clock).
#[derive(Clone, Default)]
pub struct AppBudgets {
    pacers: Arc<Mutex<HashMap<String, Arc<Pacer>>>>,
}

impl fmt::Debug for AppBudgets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let apps = self.pacers.lock().unwrap().len();
        f.debug_struct("AppBudgets").field("apps", &apps).finish()
    }
}

impl AppBudgets {
    pub fn new() -> Self {
        Self::default()
    }

    /// The pacer of `client_id` (GUIDs compare case-insensitively), created on first use.
    pub(crate) fn pacer(
        &self,
        client_id: &str,
        budget: RequestBudget,
        clock: Arc<dyn Clock>,
    ) -> Arc<Pacer> {
        let mut m = self.pacers.lock().unwrap();
        m.entry(client_id.trim().to_ascii_lowercase())
            .or_insert_with(|| Arc::new(Pacer::new(budget, clock)))
            .clone()
    }
}

/// The sliding-window pacer of one app.
pub(crate) struct Pacer {
    cap: usize,
    window_ns: i64,
    clock: Arc<dyn Clock>,
    /// Send instants (ns since the epoch) of the last `cap` units at most, ascending; the newest
    /// may lie in the future (reserved, not yet sent).
    sent: Mutex<VecDeque<i64>>,
}

impl Pacer {
    pub(crate) fn new(budget: RequestBudget, clock: Arc<dyn Clock>) -> Self {
        let window_ns = i64::try_from(budget.window().as_nanos()).unwrap_or(i64::MAX);
        Self {
            cap: budget.requests.max(1) as usize,
            window_ns,
            clock,
            sent: Mutex::new(VecDeque::new()),
        }
    }

    fn now_ns(&self) -> i64 {
        i64::try_from(self.clock.now().as_nanosecond()).unwrap_or(i64::MAX)
    }

    /// Reserves `units` sends (a `$batch` larger than the whole budget is counted as the whole
    /// budget, or it could never go) and returns how long to wait before sending.
    pub(crate) fn reserve(&self, units: usize) -> Duration {
        let n = units.clamp(1, self.cap);
        let now = self.now_ns();
        let mut q = self.sent.lock().unwrap();
        let mut at = now.max(q.back().copied().unwrap_or(i64::MIN));
        // At most cap - n earlier units may lie in (at - window, at]: the (cap - n + 1)-th most
        // recent one must have left the window.
        if q.len() + n > self.cap {
            let oldest_in_the_way = q[q.len() + n - self.cap - 1];
            at = at.max(oldest_in_the_way.saturating_add(self.window_ns));
        }
        // Later reservations are never earlier than `at`, so what left this window has left
        // every later one.
        let horizon = at.saturating_sub(self.window_ns);
        while q.front().is_some_and(|&s| s <= horizon) {
            q.pop_front();
        }
        q.extend(std::iter::repeat_n(at, n));
        Duration::from_nanos(u64::try_from(at - now).unwrap_or(0))
    }

    /// Waits (through the clock) until `units` may be sent; returns how long that was.
    #[cfg(test)]
    pub(crate) async fn acquire(&self, units: usize) -> Duration {
        let wait = self.reserve(units);
        if !wait.is_zero() {
            self.clock.sleep(wait).await;
        }
        wait
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        &*self.clock
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{VirtualClock, until};

    fn pacer(requests: u32, per_s: u64) -> (Arc<Pacer>, Arc<VirtualClock>) {
        let clock = Arc::new(VirtualClock::default());
        let p = Arc::new(Pacer::new(
            RequestBudget {
                requests,
                per: Duration::from_secs(per_s),
            },
            clock.clone(),
        ));
        (p, clock)
    }

    /// Every interval of `window` (the budget's `per` plus its tenth) holds at most `cap` units.
    fn assert_within(stamps: &[(i64, usize)], window_ns: i64, cap: usize) {
        let mut flat: Vec<i64> = stamps
            .iter()
            .flat_map(|&(t, n)| std::iter::repeat_n(t, n))
            .collect();
        flat.sort_unstable();
        for (i, &s) in flat.iter().enumerate() {
            let in_window = flat[i..].iter().take_while(|&&t| t < s + window_ns).count();
            assert!(
                in_window <= cap,
                "{in_window} units within a window from {s}"
            );
        }
    }

    #[tokio::test]
    async fn a_burst_is_spread_so_no_window_exceeds_the_budget() {
        let (p, clock) = pacer(10, 10);
        let t0 = clock.now();
        let mut stamps = Vec::new();
        for _ in 0..35 {
            p.acquire(1).await;
            stamps.push((p.now_ns(), 1));
        }
        assert_within(&stamps, Duration::from_secs(11).as_nanos() as i64, 10);
        // 35 units at 10 per 11 s: the first ten now, then one batch of ten every 11 s.
        assert_eq!(until(t0, clock.now()), Duration::from_secs(33));
        // The window really is 11 s: the 11th unit may not go at 10 s.
        assert_eq!(stamps[10].0 - stamps[0].0, 11_000_000_000);
    }

    #[tokio::test]
    async fn concurrent_callers_and_batches_share_one_budget() {
        let (p, clock) = pacer(20, 10);
        let reserved = Arc::new(Mutex::new(Vec::new()));
        let tasks: Vec<_> = (0..60)
            .map(|i| {
                let (p, clock, reserved) = (p.clone(), clock.clone(), reserved.clone());
                tokio::spawn(async move {
                    // every 6th caller sends a $batch of 5 items plus its envelope
                    let units = if i % 6 == 0 { 6 } else { 1 };
                    // No await between reading the clock and reserving: the instant is exact.
                    let asked = p.now_ns();
                    let wait = p.reserve(units);
                    reserved
                        .lock()
                        .unwrap()
                        .push((asked + wait.as_nanos() as i64, units));
                    clock.sleep(wait).await;
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let reserved = reserved.lock().unwrap().clone();
        assert_eq!(reserved.len(), 60);
        let window = Duration::from_secs(11).as_nanos() as i64;
        assert_within(&reserved, window, 20);
        // 110 units at 20 per 11 s: the last goes no earlier than 5 windows in, and batches
        // waiting for room in arrival order (first come, first served) stretch that little.
        let units: usize = reserved.iter().map(|r| r.1).sum();
        assert_eq!(units, 110);
        let spent = until(VirtualClock::default().now(), clock.now());
        assert!(
            spent >= Duration::from_secs(55) && spent <= Duration::from_secs(77),
            "{spent:?}"
        );
    }

    #[test]
    fn reservations_never_exceed_the_budget_in_any_window_whatever_the_arrivals() {
        // Arrivals at irregular instants (a virtual clock moved by hand), mixed sizes.
        let clock = Arc::new(VirtualClock::default());
        let budget = RequestBudget {
            requests: 7,
            per: Duration::from_secs(2),
        };
        let p = Pacer::new(budget, clock.clone());
        let mut reserved = Vec::new();
        for i in 0..200u64 {
            clock.advance(Duration::from_millis((i * 37) % 450));
            let units = [1, 1, 3, 1, 8, 2][(i % 6) as usize];
            let wait = p.reserve(units);
            reserved.push((p.now_ns() + wait.as_nanos() as i64, units.min(7)));
        }
        assert_within(&reserved, budget.window().as_nanos() as i64, 7);
        // The queue stays bounded by the budget.
        assert!(p.sent.lock().unwrap().len() <= 7);
    }

    #[test]
    fn an_idle_app_sends_at_once_and_app_ids_share_one_pacer() {
        let clock: Arc<dyn Clock> = Arc::new(VirtualClock::default());
        let budgets = AppBudgets::new();
        let a = budgets.pacer("APP-1", RequestBudget::default(), clock.clone());
        let b = budgets.pacer(" app-1", RequestBudget::default(), clock.clone());
        let c = budgets.pacer("app-2", RequestBudget::default(), clock);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        for _ in 0..1000 {
            assert_eq!(a.reserve(1), Duration::ZERO);
        }
        assert_eq!(RequestBudget::default().window(), Duration::from_secs(11));
    }
}
