//! The injected clock: every "what time is it" and every wait in the client goes through [`Clock`].
//!
//! Token expiry, JWT `nbf`/`exp`, `Retry-After` deadlines and backoff sleeps all use it, so tests
//! run a 429 storm in virtual time ([`VirtualClock`]) and the binary uses [`SystemClock`]. Nothing
//! else in this crate may read the wall clock or sleep (workspace `clippy.toml` enforces it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// A boxed future returned by [`Clock::sleep`] (object-safe, so configs hold an `Arc<dyn Clock>`).
pub type SleepFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Time source and sleeper.
pub trait Clock: Send + Sync + 'static {
    /// The current instant (UTC).
    fn now(&self) -> Timestamp;
    /// Waits for `d`.
    fn sleep(&self, d: Duration) -> SleepFuture<'_>;
}

/// Real time: the system clock and `tokio::time::sleep`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "this is the one real clock adapter the policy points everyone else to"
    )]
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }

    fn sleep(&self, d: Duration) -> SleepFuture<'_> {
        Box::pin(tokio::time::sleep(d))
    }
}

/// Virtual time for tests: `sleep(d)` returns at once and moves the clock to at least the instant
/// the sleep was due to end. Sleeps that overlap (concurrent tasks) therefore advance time by the
/// longest of them, not their sum, as they would in real time. Every requested sleep is recorded.
#[derive(Debug)]
pub struct VirtualClock {
    inner: Mutex<VirtualState>,
}

#[derive(Debug)]
struct VirtualState {
    now: Timestamp,
    sleeps: Vec<Duration>,
}

impl VirtualClock {
    pub fn new(start: Timestamp) -> Self {
        Self {
            inner: Mutex::new(VirtualState {
                now: start,
                sleeps: Vec::new(),
            }),
        }
    }

    /// Moves time forward without anyone sleeping (e.g. "an hour passes, the token expires").
    pub fn advance(&self, d: Duration) {
        let mut s = self.inner.lock().unwrap();
        s.now = add(s.now, d);
    }

    /// Every sleep requested so far, in order.
    pub fn sleeps(&self) -> Vec<Duration> {
        self.inner.lock().unwrap().sleeps.clone()
    }

    /// Sum of all sleeps requested (an upper bound of the virtual time spent waiting).
    pub fn total_slept(&self) -> Duration {
        self.sleeps().iter().sum()
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        // A fixed, arbitrary start so test output is reproducible.
        Self::new(Timestamp::from_second(1_795_000_000).unwrap())
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Timestamp {
        self.inner.lock().unwrap().now
    }

    fn sleep(&self, d: Duration) -> SleepFuture<'_> {
        let due = {
            let mut s = self.inner.lock().unwrap();
            s.sleeps.push(d);
            add(s.now, d)
        };
        Box::pin(async move {
            {
                let mut s = self.inner.lock().unwrap();
                if s.now < due {
                    s.now = due;
                }
            }
            // Let other tasks run, as a real sleep would.
            tokio::task::yield_now().await;
        })
    }
}

/// `t + d`, saturating at the maximum timestamp.
pub fn add(t: Timestamp, d: Duration) -> Timestamp {
    let sd = SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX);
    t.checked_add(sd).unwrap_or(Timestamp::MAX)
}

/// `later - earlier` as a non-negative duration (zero if `later` is not after `earlier`).
pub fn until(earlier: Timestamp, later: Timestamp) -> Duration {
    let sd = later.duration_since(earlier);
    if sd.is_negative() {
        Duration::ZERO
    } else {
        Duration::try_from(sd).unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn virtual_sleep_advances_time_instantly_and_records() {
        let c = VirtualClock::default();
        let t0 = c.now();
        c.sleep(Duration::from_millis(2_500)).await;
        assert_eq!(until(t0, c.now()), Duration::from_millis(2_500));
        assert_eq!(c.sleeps(), vec![Duration::from_millis(2_500)]);
    }

    #[tokio::test]
    async fn overlapping_sleeps_advance_by_the_longest() {
        let c = VirtualClock::default();
        let t0 = c.now();
        let a = c.sleep(Duration::from_secs(2));
        let b = c.sleep(Duration::from_secs(3));
        futures::join!(a, b);
        assert_eq!(until(t0, c.now()), Duration::from_secs(3));
        assert_eq!(c.total_slept(), Duration::from_secs(5));
    }

    #[test]
    fn until_is_never_negative() {
        let c = VirtualClock::default();
        let t0 = c.now();
        c.advance(Duration::from_secs(1));
        assert_eq!(until(c.now(), t0), Duration::ZERO);
    }
}
