//! Outlook's service limits (docs/graph-facts.md §6), on by default: at most 4 requests in flight
//! per (app, mailbox), a request budget per (app, mailbox) per window (10,000 per 10 minutes), and
//! Graph's global per-app budget (130,000 per 10 s). A client that passes against these limits
//! will not be throttled into failure by a real tenant.
//!
//! The admission check is pure bookkeeping: it takes `now` as an argument and never sleeps or
//! reads a clock, and it never answers HTTP itself; the server turns a [`Throttle`] into a 429.
//! It must never let a request through without a [`Permit`] that gives its slot back on drop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// Limit configuration. `Default` is Graph's documented values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Off: every request is admitted (in-flight counts are still tracked for stats).
    pub enabled: bool,
    /// Concurrent requests per (app, mailbox); Outlook: 4.
    pub mailbox_concurrency: usize,
    /// Requests per (app, mailbox) per `mailbox_window`; Outlook: 10,000 per 10 minutes.
    pub mailbox_requests: u64,
    pub mailbox_window: Duration,
    /// Requests per app per `app_window` across everything; Graph: 130,000 per 10 s.
    pub app_requests: u64,
    pub app_window: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            enabled: true,
            mailbox_concurrency: 4,
            mailbox_requests: 10_000,
            mailbox_window: Duration::from_secs(600),
            app_requests: 130_000,
            app_window: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// No limits at all (still tracks in-flight for stats).
    pub fn off() -> Self {
        Limits {
            enabled: false,
            ..Limits::default()
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// The (app, mailbox) already has `mailbox_concurrency` requests in flight.
    MailboxConcurrency,
    /// The (app, mailbox) request budget for the current window is spent.
    MailboxBudget { retry_after_secs: u64 },
    /// The app's global budget for the current window is spent.
    AppBudget { retry_after_secs: u64 },
}

impl Throttle {
    /// Graph error code for the 429 body.
    pub fn code(&self) -> &'static str {
        match self {
            // Outlook-sourced 429s (docs/graph-facts.md §6 [OBS]).
            Throttle::MailboxConcurrency | Throttle::MailboxBudget { .. } => "ApplicationThrottled",
            // The documented generic 429 sample (docs/graph-facts.md §6 [DOC]).
            Throttle::AppBudget { .. } => "TooManyRequests",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            // Exact text observed from Outlook (docs/graph-facts.md §6 [OBS]).
            Throttle::MailboxConcurrency => "Application is over its MailboxConcurrency limit.",
            // Wording by analogy with the concurrency and IncomingBytes messages [UNCONF].
            Throttle::MailboxBudget { .. } => "Application is over its MailboxRequests limit.",
            Throttle::AppBudget { .. } => "Please retry again later.",
        }
    }

    /// `Retry-After` seconds, when the emulator sends one. The concurrency 429 carries none:
    /// Outlook 429s without Retry-After are observed (docs/graph-facts.md §6,
    /// outlook-dev-docs #144), and a client must fall back to its own backoff for them.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Throttle::MailboxConcurrency => None,
            Throttle::MailboxBudget { retry_after_secs }
            | Throttle::AppBudget { retry_after_secs } => Some(*retry_after_secs),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: Instant,
    count: u64,
}

impl Window {
    /// Counts one request in a fixed window starting at the first request; returns
    /// `Err(retry_after_secs)` when over `cap`.
    fn hit(slot: &mut Option<Window>, now: Instant, len: Duration, cap: u64) -> Result<(), u64> {
        let w = match slot {
            Some(w) if now.saturating_duration_since(w.start) < len => w,
            _ => slot.insert(Window {
                start: now,
                count: 0,
            }),
        };
        // Graph keeps counting while a client is throttled (throttling.md, docs/graph-facts.md §6),
        // so a refused request still uses up budget.
        w.count += 1;
        if w.count > cap {
            let left = len.saturating_sub(now.saturating_duration_since(w.start));
            Err(left.as_secs() + u64::from(left.subsec_nanos() > 0))
        } else {
            Ok(())
        }
    }
}

#[derive(Debug, Default)]
struct MailboxState {
    in_flight: usize,
    max_in_flight: usize,
    window: Option<Window>,
}

#[derive(Debug, Default)]
struct Inner {
    limits: Limits,
    /// Keyed by (app client id, canonical mailbox key).
    mailboxes: HashMap<(String, String), MailboxState>,
    apps: HashMap<String, Option<Window>>,
}

/// Shared limit bookkeeping for one emulator.
#[derive(Debug, Clone, Default)]
pub struct LimitsState {
    inner: Arc<Mutex<Inner>>,
}

/// Holds an in-flight slot of one (app, mailbox); gives it back on drop.
#[derive(Debug)]
pub struct Permit {
    inner: Arc<Mutex<Inner>>,
    key: Option<(String, String)>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(m) = g.mailboxes.get_mut(&key) {
                m.in_flight = m.in_flight.saturating_sub(1);
            }
        }
    }
}

impl LimitsState {
    pub fn new(limits: Limits) -> Self {
        let s = LimitsState::default();
        s.set_limits(limits);
        s
    }

    pub fn limits(&self) -> Limits {
        self.lock().limits.clone()
    }

    /// Replaces the configuration; counters and windows carry on.
    pub fn set_limits(&self, limits: Limits) {
        self.lock().limits = limits;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits one request of `app` (client id) to `mailbox` (a canonical key, e.g. the user id,
    /// so that id and UPN addressing share one budget; `None` for non-mailbox requests such as
    /// `/users` or `/organization`). Checks the app budget, then the mailbox budget, then the
    /// mailbox concurrency. Hold the returned permit for the request's whole service time.
    pub fn admit(
        &self,
        app: &str,
        mailbox: Option<&str>,
        now: Instant,
    ) -> Result<Permit, Throttle> {
        let mut g = self.lock();
        let limits = g.limits.clone();
        if limits.enabled {
            let slot = g.apps.entry(app.to_owned()).or_default();
            Window::hit(slot, now, limits.app_window, limits.app_requests)
                .map_err(|retry_after_secs| Throttle::AppBudget { retry_after_secs })?;
        }
        let Some(mailbox) = mailbox else {
            return Ok(Permit {
                inner: self.inner.clone(),
                key: None,
            });
        };
        let key = (app.to_owned(), mailbox.to_owned());
        let m = g.mailboxes.entry(key.clone()).or_default();
        if limits.enabled {
            Window::hit(
                &mut m.window,
                now,
                limits.mailbox_window,
                limits.mailbox_requests,
            )
            .map_err(|retry_after_secs| Throttle::MailboxBudget { retry_after_secs })?;
            if m.in_flight >= limits.mailbox_concurrency {
                return Err(Throttle::MailboxConcurrency);
            }
        }
        m.in_flight += 1;
        m.max_in_flight = m.max_in_flight.max(m.in_flight);
        drop(g);
        Ok(Permit {
            inner: self.inner.clone(),
            key: Some(key),
        })
    }

    /// Highest number of requests seen in flight at once to `mailbox`, over all apps (each app
    /// is limited separately, so this is the max over apps, not a sum).
    pub fn max_in_flight(&self, mailbox: &str) -> usize {
        let g = self.lock();
        g.mailboxes
            .iter()
            .filter(|((_, m), _)| m == mailbox)
            .map(|(_, s)| s.max_in_flight)
            .max()
            .unwrap_or(0)
    }

    /// Requests in flight to `mailbox` right now, over all apps.
    pub fn in_flight(&self, mailbox: &str) -> usize {
        let g = self.lock();
        g.mailboxes
            .iter()
            .filter(|((_, m), _)| m == mailbox)
            .map(|(_, s)| s.in_flight)
            .sum()
    }

    /// Forgets the maxInFlight high-water marks (stats reset); in-flight counts and budgets stay,
    /// since the requests and Graph's memory of them do.
    pub fn reset_stats(&self) {
        let mut g = self.lock();
        for s in g.mailboxes.values_mut() {
            s.max_in_flight = s.in_flight;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifth_concurrent_request_is_refused_and_slots_come_back() {
        let s = LimitsState::new(Limits::default());
        let t0 = Instant::now();
        let permits: Vec<_> = (0..4)
            .map(|_| s.admit("app", Some("m1"), t0).unwrap())
            .collect();
        let err = s.admit("app", Some("m1"), t0).unwrap_err();
        assert_eq!(err, Throttle::MailboxConcurrency);
        assert_eq!(err.code(), "ApplicationThrottled");
        assert_eq!(
            err.message(),
            "Application is over its MailboxConcurrency limit."
        );
        // Other mailboxes and other apps are not affected (limits are per app + mailbox).
        let _other_mailbox = s.admit("app", Some("m2"), t0).unwrap();
        let _other_app = s.admit("app2", Some("m1"), t0).unwrap();
        assert_eq!(s.max_in_flight("m1"), 4);
        assert_eq!(s.in_flight("m1"), 5);
        drop(permits);
        assert_eq!(s.in_flight("m1"), 1);
        let _again = s.admit("app", Some("m1"), t0).unwrap();
        s.reset_stats();
        assert_eq!(s.max_in_flight("m1"), 1);
    }

    #[test]
    fn mailbox_budget_gives_retry_after_until_window_end() {
        let limits = Limits {
            mailbox_requests: 3,
            mailbox_window: Duration::from_secs(60),
            ..Limits::default()
        };
        let s = LimitsState::new(limits);
        let t0 = Instant::now();
        for _ in 0..3 {
            drop(s.admit("app", Some("m"), t0).unwrap());
        }
        let err = s
            .admit("app", Some("m"), t0 + Duration::from_millis(10_500))
            .unwrap_err();
        assert_eq!(
            err,
            Throttle::MailboxBudget {
                retry_after_secs: 50
            }
        );
        assert_eq!(err.retry_after_secs(), Some(50));
        // Still throttled later in the window (refusals count too).
        assert!(
            s.admit("app", Some("m"), t0 + Duration::from_secs(59))
                .is_err()
        );
        // A new window opens after the old one ends.
        assert!(
            s.admit("app", Some("m"), t0 + Duration::from_secs(60))
                .is_ok()
        );
    }

    #[test]
    fn app_budget_applies_across_mailboxes_and_non_mailbox_requests() {
        let limits = Limits {
            app_requests: 2,
            app_window: Duration::from_secs(10),
            ..Limits::default()
        };
        let s = LimitsState::new(limits);
        let t0 = Instant::now();
        drop(s.admit("app", Some("a"), t0).unwrap());
        drop(s.admit("app", None, t0).unwrap());
        let err = s
            .admit("app", Some("b"), t0 + Duration::from_secs(4))
            .unwrap_err();
        assert_eq!(
            err,
            Throttle::AppBudget {
                retry_after_secs: 6
            }
        );
        assert_eq!(err.code(), "TooManyRequests");
        assert!(s.admit("other-app", Some("b"), t0).is_ok());
    }

    #[test]
    fn disabled_limits_admit_everything_but_track_in_flight() {
        let s = LimitsState::new(Limits::off());
        let t0 = Instant::now();
        let permits: Vec<_> = (0..10)
            .map(|_| s.admit("app", Some("m"), t0).unwrap())
            .collect();
        assert_eq!(s.max_in_flight("m"), 10);
        drop(permits);
        assert_eq!(s.in_flight("m"), 0);
    }
}
