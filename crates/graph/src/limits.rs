//! Concurrency gates: at most N requests in flight per mailbox (Outlook allows 4 per app and
//! mailbox, docs/graph-facts.md §6), a global in-flight cap, and a per-mailbox "not before" instant
//! set by a 429 so a throttled mailbox pauses alone while the others continue.
//!
//! A `$batch` of k items to one mailbox holds min(k, N) permits, because Graph forwards up to 4
//! items of a batch to Outlook at once (docs/graph-facts.md §5). This module only waits; it never
//! sends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::clock::{Clock, until};

#[derive(Debug)]
struct MailboxGate {
    sem: Arc<Semaphore>,
    not_before: Mutex<Option<Timestamp>>,
}

/// All gates of one client.
#[derive(Debug)]
pub(crate) struct Limits {
    per_mailbox: usize,
    global: Arc<Semaphore>,
    mailboxes: Mutex<HashMap<String, Arc<MailboxGate>>>,
}

/// Held while a request is in flight; dropping it frees the slots.
#[derive(Debug)]
pub(crate) struct Permit {
    _mailbox: Option<OwnedSemaphorePermit>,
    _global: OwnedSemaphorePermit,
}

/// Mailboxes are addressed by UPN or id in any case; Graph's limit is per mailbox.
fn key(mailbox: &str) -> String {
    mailbox.to_lowercase()
}

impl Limits {
    pub(crate) fn new(per_mailbox: usize, global: usize) -> Self {
        Self {
            per_mailbox: per_mailbox.max(1),
            global: Arc::new(Semaphore::new(global.max(1))),
            mailboxes: Mutex::new(HashMap::new()),
        }
    }

    fn gate(&self, mailbox: &str) -> Arc<MailboxGate> {
        let mut m = self.mailboxes.lock().unwrap();
        m.entry(key(mailbox))
            .or_insert_with(|| {
                Arc::new(MailboxGate {
                    sem: Arc::new(Semaphore::new(self.per_mailbox)),
                    not_before: Mutex::new(None),
                })
            })
            .clone()
    }

    /// How long until `mailbox` may be sent to again (zero if now).
    pub(crate) fn wait_for(&self, mailbox: &str, now: Timestamp) -> Duration {
        let g = self.gate(mailbox);
        let nb = *g.not_before.lock().unwrap();
        nb.map(|t| until(now, t)).unwrap_or(Duration::ZERO)
    }

    /// Pauses `mailbox` until `until` (keeps a later pause already set).
    pub(crate) fn pause(&self, mailbox: &str, until: Timestamp) {
        let g = self.gate(mailbox);
        let mut nb = g.not_before.lock().unwrap();
        if nb.is_none_or(|t| t < until) {
            *nb = Some(until);
        }
    }

    /// Waits for the mailbox's pause to pass and for `weight` mailbox slots (capped at the
    /// per-mailbox limit) and one global slot.
    pub(crate) async fn acquire(
        &self,
        mailbox: Option<&str>,
        weight: usize,
        clock: &dyn Clock,
    ) -> Permit {
        let Some(mailbox) = mailbox else {
            let global = self
                .global
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            return Permit {
                _mailbox: None,
                _global: global,
            };
        };
        let gate = self.gate(mailbox);
        let n = weight.clamp(1, self.per_mailbox) as u32;
        loop {
            let wait = self.wait_for(mailbox, clock.now());
            if !wait.is_zero() {
                clock.sleep(wait).await;
                continue;
            }
            let mp = gate
                .sem
                .clone()
                .acquire_many_owned(n)
                .await
                .expect("semaphore never closed");
            // The mailbox may have been throttled while we queued for a slot: honour that
            // before sending (docs/reliability.md I5 "no request before its Retry-After has
            // passed").
            if !self.wait_for(mailbox, clock.now()).is_zero() {
                drop(mp);
                continue;
            }
            let global = self
                .global
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore never closed");
            return Permit {
                _mailbox: Some(mp),
                _global: global,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{VirtualClock, add};
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn never_more_than_n_in_flight_per_mailbox_and_batches_weigh_more() {
        let limits = Arc::new(Limits::new(4, 100));
        let clock = Arc::new(VirtualClock::default());
        let in_flight = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..40 {
            let (l, c, f, m) = (
                limits.clone(),
                clock.clone(),
                in_flight.clone(),
                max_seen.clone(),
            );
            tasks.push(tokio::spawn(async move {
                // every 5th caller is a batch of 20 items: it must hold all 4 slots
                let weight = if i % 5 == 0 { 20 } else { 1 };
                let _p = l.acquire(Some("Adele@Contoso.com"), weight, &*c).await;
                let now = f.fetch_add(weight.min(4), Ordering::SeqCst) + weight.min(4);
                m.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
                f.fetch_sub(weight.min(4), Ordering::SeqCst);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let max = max_seen.load(Ordering::SeqCst);
        assert!(max <= 4, "max in flight {max}");
        assert!(max >= 2, "no parallelism at all: {max}");
    }

    #[tokio::test]
    async fn a_paused_mailbox_waits_others_do_not() {
        let limits = Limits::new(4, 100);
        let clock = VirtualClock::default();
        let t0 = clock.now();
        limits.pause("a@x", add(t0, Duration::from_secs(5)));
        // Another mailbox is not delayed.
        let _p = limits.acquire(Some("b@x"), 1, &clock).await;
        assert_eq!(clock.now(), t0);
        drop(_p);
        // The paused one (any case) waits out its pause.
        let _p = limits.acquire(Some("A@X"), 1, &clock).await;
        assert!(clock.now() >= add(t0, Duration::from_secs(5)));
        // A shorter later pause does not shorten it.
        limits.pause("a@x", add(t0, Duration::from_secs(1)));
        assert!(limits.wait_for("a@x", t0) >= Duration::from_secs(5));
    }
}
