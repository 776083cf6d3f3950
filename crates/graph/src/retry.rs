//! Retry policy: which failures are retried, after how long, and how many attempts a request gets.
//!
//! Pure decisions, no I/O and no sleeping: the client asks [`RetryPolicy::decide`] and sleeps
//! through its injected clock. [`Retryability::of_status`] is the one place that says what a
//! status means for trying again; [`RetryPolicy::decide`] and
//! [`GraphError::is_retryable`](crate::GraphError::is_retryable) both ask it.
//!
//! The rules (docs/graph-facts.md §6, docs/sync-rules.md §3):
//! - 429 was not executed: retried after its `Retry-After` (integer, fractional like `2.128`, or
//!   an HTTP-date), which pauses the whole mailbox; without one, exponential backoff with jitter
//!   from a seeded RNG.
//! - 503 (or a connection that was never established) was not executed either: retried, even a
//!   create, after `Retry-After` when given, else backoff.
//! - 500/502/504 and a connection lost after sending may have been applied: retried only when the
//!   request is safe to repeat. A create (POST) whose fate is unknown is never repeated, because a
//!   repeat could create a duplicate contact (docs/reliability.md I2).
//! - Every other status (400, 401, 403, 404, 409, 412, 501 …) is final: the request itself is the
//!   problem. (401 gets its one token refresh in the client, not here.)
//! - **A `Retry-After` longer than [`RetryPolicy::max_retry_after`] is never shortened**, whatever
//!   the status: waiting less than Graph asked is against its guidance (docs/graph-facts.md §6,
//!   Graph keeps counting while we are throttled), so the request gives up at once with
//!   [`Decision::WaitTooLong`], and the error says how long Graph asked for and what the cap is.
//! - At most [`RetryPolicy::max_attempts`] attempts per request.

use std::time::Duration;

use jiff::Timestamp;
use rand::Rng;

use crate::clock::until;

/// Tunables for retries. `Default` suits Graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request (first try included).
    pub max_attempts: u32,
    /// First backoff step; doubles per attempt.
    pub base_backoff: Duration,
    /// Backoff cap (before jitter).
    pub max_backoff: Duration,
    /// A `Retry-After` longer than this is not waited for; the request fails at once (see the
    /// module doc). Graph's per-mailbox budget is 10,000 requests per 10 minutes
    /// (docs/graph-facts.md §6), so a longer wait than that window means something else is wrong.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(600),
        }
    }
}

/// Whether a request may be sent twice without changing the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Idempotency {
    /// GET, PATCH (sets the same fields), DELETE, token requests.
    Repeatable,
    /// POST that creates something: a repeat after an unknown outcome could duplicate it.
    Create,
}

/// What a failed attempt says about sending the same request again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retryability {
    /// 429: Graph did not execute it and asks us to slow down (the whole mailbox pauses).
    Throttled,
    /// Not executed (503, or no connection was made): safe to send again, even a create.
    NotApplied,
    /// May have been executed (500, 502, 504, or the connection was lost after sending): only a
    /// request that is safe to repeat may be sent again.
    MaybeApplied,
    /// Sending it again cannot help.
    Permanent,
}

impl Retryability {
    /// The rule for a response status (docs/graph-facts.md §6, §7).
    pub fn of_status(status: u16) -> Self {
        match status {
            429 => Self::Throttled,
            // "Service unavailable": the service did not take the request (may carry Retry-After).
            503 => Self::NotApplied,
            500 | 502 | 504 => Self::MaybeApplied,
            _ => Self::Permanent,
        }
    }
}

/// A failed attempt, as far as the retry decision needs it.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// A response with this status (and its `Retry-After`, parsed).
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// No response. `maybe_sent` is false only when the connection was never established.
    Transport { maybe_sent: bool },
}

impl Failure {
    pub fn retryability(&self) -> Retryability {
        match self {
            Failure::Status { status, .. } => Retryability::of_status(*status),
            Failure::Transport { maybe_sent: true } => Retryability::MaybeApplied,
            Failure::Transport { maybe_sent: false } => Retryability::NotApplied,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            Failure::Transport { .. } => None,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then try again. `throttled` marks a 429 (the whole mailbox pauses).
    Retry { after: Duration, throttled: bool },
    /// Do not retry; the failure is final.
    GiveUp,
    /// Do not retry: the outcome of a create is unknown (see [`Idempotency::Create`]).
    Ambiguous,
    /// Do not retry: Graph asked for a wait (`asked`) longer than the policy's cap (`cap`).
    WaitTooLong { asked: Duration, cap: Duration },
}

impl RetryPolicy {
    /// Decides after attempt number `attempt` (1-based) failed with `failure`.
    pub fn decide<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        failure: &Failure,
        idempotency: Idempotency,
        rng: &mut R,
    ) -> Decision {
        let retryability = failure.retryability();
        match retryability {
            Retryability::Permanent => return Decision::GiveUp,
            Retryability::MaybeApplied if idempotency == Idempotency::Create => {
                return Decision::Ambiguous;
            }
            _ => {}
        }
        let asked = failure.retry_after();
        if let Some(asked) = asked.filter(|d| *d > self.max_retry_after) {
            return Decision::WaitTooLong {
                asked,
                cap: self.max_retry_after,
            };
        }
        if attempt >= self.max_attempts {
            return Decision::GiveUp;
        }
        Decision::Retry {
            after: asked.unwrap_or_else(|| self.backoff(attempt, rng)),
            throttled: retryability == Retryability::Throttled,
        }
    }

    /// Exponential backoff with "equal jitter": half the step fixed, half random, so concurrent
    /// clients spread out but never retry immediately.
    pub fn backoff<R: Rng + ?Sized>(&self, attempt: u32, rng: &mut R) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let step = self
            .base_backoff
            .saturating_mul(1u32 << exp)
            .min(self.max_backoff);
        let half = step / 2;
        let jitter_ms = rng.random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_ms)
    }
}

/// Parses a `Retry-After` value: delay-seconds (Graph sends integers like `1` and fractions like
/// `2.128`, docs/graph-facts.md §6) or an HTTP-date (RFC 9110 §10.2.3; a date in the past means
/// "now"). `None` for anything unparseable, so the caller falls back to backoff.
pub fn parse_retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    if let Ok(secs) = v.parse::<f64>() {
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        // Clamp absurd values instead of panicking in from_secs_f64; the policy caps them anyway.
        return Some(Duration::from_secs_f64(secs.min(86_400.0 * 365.0)));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(v)
        .ok()?;
    Some(until(now, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn rng() -> SmallRng {
        SmallRng::seed_from_u64(7)
    }

    fn st(status: u16, retry_after: Option<f64>) -> Failure {
        Failure::Status {
            status,
            retry_after: retry_after.map(Duration::from_secs_f64),
        }
    }

    #[test]
    fn retry_after_forms() {
        let now: Timestamp = "2015-10-21T07:27:50Z".parse().unwrap();
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 2.128 ", now),
            Some(Duration::from_millis(2128))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now),
            Some(Duration::from_secs(10))
        );
        // A date in the past: retry now.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        for bad in ["", "soon", "-1", "NaN", "inf"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn throttling_honours_retry_after_even_for_creates() {
        let p = RetryPolicy::default();
        for idem in [Idempotency::Repeatable, Idempotency::Create] {
            assert_eq!(
                p.decide(1, &st(429, Some(2.128)), idem, &mut rng()),
                Decision::Retry {
                    after: Duration::from_millis(2128),
                    throttled: true
                }
            );
        }
    }

    #[test]
    fn throttling_without_retry_after_backs_off_exponentially_with_jitter() {
        let p = RetryPolicy::default();
        let mut r = rng();
        let mut prev_step = Duration::ZERO;
        for attempt in 1..=6 {
            let Decision::Retry { after, throttled } =
                p.decide(attempt, &st(429, None), Idempotency::Repeatable, &mut r)
            else {
                panic!("attempt {attempt} not retried")
            };
            assert!(throttled);
            let step = (p.base_backoff * (1 << (attempt - 1))).min(p.max_backoff);
            assert!(
                after >= step / 2 && after <= step,
                "attempt {attempt}: {after:?} vs {step:?}"
            );
            assert!(step >= prev_step);
            prev_step = step;
        }
    }

    #[test]
    fn backoff_is_reproducible_from_the_seed() {
        let p = RetryPolicy::default();
        let a: Vec<_> = {
            let mut r = rng();
            (1..8).map(|n| p.backoff(n, &mut r)).collect()
        };
        let b: Vec<_> = {
            let mut r = rng();
            (1..8).map(|n| p.backoff(n, &mut r)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().all(|d| *d <= p.max_backoff));
    }

    #[test]
    fn client_errors_are_never_retried() {
        let p = RetryPolicy::default();
        for status in [400, 401, 403, 404, 405, 409, 410, 412, 424] {
            assert_eq!(
                p.decide(
                    1,
                    &st(status, Some(1.0)),
                    Idempotency::Repeatable,
                    &mut rng()
                ),
                Decision::GiveUp,
                "{status}"
            );
        }
    }

    #[test]
    fn server_errors_back_off_but_creates_are_not_repeated_when_maybe_applied() {
        let p = RetryPolicy::default();
        for status in [500, 502, 503, 504] {
            assert!(matches!(
                p.decide(1, &st(status, None), Idempotency::Repeatable, &mut rng()),
                Decision::Retry {
                    throttled: false,
                    ..
                }
            ));
        }
        // 503 = not taken; safe to repeat a create.
        assert!(matches!(
            p.decide(1, &st(503, Some(3.0)), Idempotency::Create, &mut rng()),
            Decision::Retry { after, .. } if after == Duration::from_secs(3)
        ));
        for status in [500, 502, 504] {
            assert_eq!(
                p.decide(1, &st(status, None), Idempotency::Create, &mut rng()),
                Decision::Ambiguous
            );
        }
        assert_eq!(
            p.decide(
                1,
                &Failure::Transport { maybe_sent: true },
                Idempotency::Create,
                &mut rng()
            ),
            Decision::Ambiguous
        );
        assert!(matches!(
            p.decide(
                1,
                &Failure::Transport { maybe_sent: false },
                Idempotency::Create,
                &mut rng()
            ),
            Decision::Retry { .. }
        ));
    }

    #[test]
    fn attempt_budget_is_enforced() {
        let p = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        assert!(matches!(
            p.decide(2, &st(429, Some(1.0)), Idempotency::Repeatable, &mut rng()),
            Decision::Retry { .. }
        ));
        assert_eq!(
            p.decide(3, &st(429, Some(1.0)), Idempotency::Repeatable, &mut rng()),
            Decision::GiveUp
        );
    }

    /// One rule for every status: a wait longer than the cap is never shortened; the request
    /// gives up and says how long Graph asked for. (Before, a 503 fell back to backoff here
    /// while a 429 gave up.)
    #[test]
    fn a_retry_after_beyond_the_cap_gives_up_for_every_status() {
        let p = RetryPolicy::default();
        for status in [429, 503, 500, 502, 504] {
            assert_eq!(
                p.decide(
                    1,
                    &st(status, Some(3600.0)),
                    Idempotency::Repeatable,
                    &mut rng()
                ),
                Decision::WaitTooLong {
                    asked: Duration::from_secs(3600),
                    cap: Duration::from_secs(600)
                },
                "{status}"
            );
        }
        // At the cap exactly, Graph's wait is honoured.
        assert_eq!(
            p.decide(1, &st(503, Some(600.0)), Idempotency::Create, &mut rng()),
            Decision::Retry {
                after: Duration::from_secs(600),
                throttled: false
            }
        );
        // A create that may have been applied stays ambiguous, however long the wait.
        assert_eq!(
            p.decide(1, &st(504, Some(3600.0)), Idempotency::Create, &mut rng()),
            Decision::Ambiguous
        );
    }

    #[test]
    fn retryability_of_statuses_and_lost_connections() {
        use Retryability::*;
        for (status, want) in [
            (429, Throttled),
            (503, NotApplied),
            (500, MaybeApplied),
            (502, MaybeApplied),
            (504, MaybeApplied),
            (501, Permanent),
            (400, Permanent),
            (412, Permanent),
        ] {
            assert_eq!(Retryability::of_status(status), want, "{status}");
        }
        assert_eq!(
            Failure::Transport { maybe_sent: true }.retryability(),
            MaybeApplied
        );
        assert_eq!(
            Failure::Transport { maybe_sent: false }.retryability(),
            NotApplied
        );
    }
}
