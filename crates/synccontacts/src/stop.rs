//! Runs that end (issue 16): the run's one stop — SIGINT, SIGTERM or the deadline — shared by
//! every tenant's Graph client, and the grace given to the writes already in flight.
//!
//! When the run stops, no request starts any more (the clients' [`graph::StopSignal`] fires:
//! calls not yet sent fail with `Cancelled`, every wait ends), requests on the wire go on, and
//! the run reports what it did. Writes still in flight after [`GRACE`] (or at a second signal)
//! are abandoned: their outcome is unknown, the next run reads the folders and completes or
//! repairs them. [`watch_signals`] installs the signal handlers (the binary only),
//! [`start_deadline`] the deadline; a library caller may also call [`RunStop::stop`] itself.
//!
//! This module decides when to stop, never what a stop means for an exit code (`exit.rs`) or the
//! report (`report/`). It is the binary's only real-time timer: the run's own time goes through
//! the injected clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use graph::StopSignal;
use serde::{Serialize, Serializer};

/// How long writes in flight may take to finish once the run stopped. A healthy Graph answers a
/// `$batch` of 20 in a second or two; a request that is still on the wire after 10 s is most
/// likely hung, and waiting for it would only risk the job's hard kill (a container runtime
/// sends SIGKILL 10–30 s after SIGTERM) before the report is written.
pub const GRACE: Duration = Duration::from_secs(10);

/// The default maximum duration of a run: 50 minutes, under GitLab's default job timeout of 60,
/// so a run that would not finish stops, reports and exits before the job is killed (the job's
/// own set-up — image pull, clone — counts against the 60 too).
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(50 * 60);

/// A signal that interrupts the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): exit code 130.
    Int,
    /// SIGTERM (a CI job cancelled, a container stopped): exit code 143.
    Term,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        }
    }
}

/// What stopped the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopCause {
    /// The maximum duration (`--max-duration`) was reached.
    Deadline(Duration),
    Signal(Signal),
}

impl StopCause {
    /// `stopped at the deadline (50 min)` / `interrupted by SIGTERM`: how the run's lines say it.
    pub fn describe(self) -> String {
        match self {
            StopCause::Deadline(d) => format!("stopped at the deadline ({})", minutes(d)),
            StopCause::Signal(s) => format!("interrupted by {}", s.name()),
        }
    }
}

/// In the report's `stoppedBy`: `"SIGINT"`, `"SIGTERM"` or `"deadline"`.
impl Serialize for StopCause {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            StopCause::Deadline(_) => "deadline",
            StopCause::Signal(sig) => sig.name(),
        })
    }
}

fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

/// The run's stop, shared by every tenant: cheap to clone, clones share the state.
#[derive(Clone, Debug, Default)]
pub struct RunStop {
    /// Fired at the stop: handed to every Graph client, which then starts no request.
    signal: StopSignal,
    /// Fired when the grace for writes in flight is over.
    abandon: StopSignal,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    /// The first cause; a signal after the deadline also counts as an interruption.
    first: Option<StopCause>,
    signal: Option<Signal>,
}

impl RunStop {
    pub fn new() -> Self {
        Self::default()
    }

    /// The signal the Graph clients share (`ClientConfig::stop`).
    pub fn client_signal(&self) -> StopSignal {
        self.signal.clone()
    }

    /// Stops the run: no new request starts, and the grace for writes in flight begins (ended
    /// by [`GRACE`] or [`abandon`](Self::abandon)). Idempotent; the first cause is kept, and a
    /// signal is remembered even after the deadline (the operator's own doing explains the end).
    pub fn stop(&self, cause: StopCause) {
        let first = {
            let mut st = self.state.lock().unwrap();
            if let StopCause::Signal(s) = cause {
                st.signal.get_or_insert(s);
            }
            let first = st.first.is_none();
            st.first.get_or_insert(cause);
            first
        };
        self.signal.stop();
        if first {
            tracing::warn!(
                "{}: no new write starts; writes in flight get up to {} s to finish",
                cause.describe(),
                GRACE.as_secs()
            );
            // Outside a runtime (a library caller's own thread) only `abandon` ends the grace.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let this = self.clone();
                rt.spawn(async move {
                    tokio::time::sleep(GRACE).await;
                    this.abandon();
                });
            }
        }
    }

    pub fn is_stopped(&self) -> bool {
        self.signal.is_stopped()
    }

    /// What stopped the run: the first signal if there was one, else the first cause.
    pub fn cause(&self) -> Option<StopCause> {
        let st = self.state.lock().unwrap();
        st.signal.map(StopCause::Signal).or(st.first)
    }

    /// The signal that interrupted the run, if any (exit code 130/143).
    pub fn interrupted(&self) -> Option<Signal> {
        self.state.lock().unwrap().signal
    }

    /// Ends the grace: writes still in flight are abandoned.
    pub fn abandon(&self) {
        if !self.abandon.is_stopped() {
            tracing::warn!("writes still in flight are abandoned; their outcome is unknown");
        }
        self.abandon.stop();
    }

    /// Resolves once the grace for writes in flight is over.
    pub async fn abandoned(&self) {
        self.abandon.stopped().await;
    }
}

/// Stops `stop` at SIGINT or SIGTERM; a signal while the run is already stopped ends the grace
/// for writes in flight at once. The handlers are installed when this returns (so a signal that
/// comes at once is handled) and stay for the life of the process: only the binary calls this.
pub fn watch_signals(stop: &RunStop) {
    let stop = stop.clone();
    let mut signals = Signals::install();
    tokio::spawn(async move {
        loop {
            let s = signals.next().await;
            if stop.is_stopped() {
                tracing::warn!("{} again: writes still in flight are abandoned", s.name());
                stop.stop(StopCause::Signal(s));
                stop.abandon();
            } else {
                stop.stop(StopCause::Signal(s));
            }
        }
    });
}

/// Stops `stop` once `max_duration` has passed (real time, from now).
pub fn start_deadline(stop: &RunStop, max_duration: Duration) {
    let stop = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(max_duration).await;
        stop.stop(StopCause::Deadline(max_duration));
    });
}

/// SIGINT and SIGTERM, as a stream of [`Signal`]s (nothing on a platform without them).
struct Signals {
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let handler = |kind, name: &str| {
                signal(kind)
                    .map_err(|e| tracing::warn!("cannot handle {name}: {e}"))
                    .ok()
            };
            Self {
                int: handler(SignalKind::interrupt(), "SIGINT"),
                term: handler(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(&mut self.int) => Signal::Int,
                () = recv(&mut self.term) => Signal::Term,
            }
        }
        #[cfg(not(unix))]
        {
            std::future::pending().await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_cause_is_kept_but_a_later_signal_counts_as_an_interruption() {
        let stop = RunStop::new();
        assert_eq!(stop.cause(), None);
        let client = stop.client_signal();
        let d = Duration::from_secs(45 * 60);
        stop.stop(StopCause::Deadline(d));
        assert!(client.is_stopped() && stop.is_stopped());
        assert_eq!(stop.cause(), Some(StopCause::Deadline(d)));
        assert_eq!(stop.interrupted(), None);
        assert_eq!(
            stop.cause().unwrap().describe(),
            "stopped at the deadline (45 min)"
        );
        stop.stop(StopCause::Signal(Signal::Term));
        stop.stop(StopCause::Signal(Signal::Int));
        assert_eq!(stop.interrupted(), Some(Signal::Term));
        assert_eq!(stop.cause().unwrap().describe(), "interrupted by SIGTERM");
        assert_eq!(
            serde_json::to_value(stop.cause()).unwrap(),
            serde_json::json!("SIGTERM")
        );
        stop.abandon();
        stop.abandoned().await;
    }
}
