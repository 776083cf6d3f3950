//! Human output on stdout: the per-action lines, totals and summaries an administrator reads (and
//! greps) in a CI log. Logs go to stderr through `tracing`; this is the other channel.
//!
//! Writing must never panic: `println!` panics on a closed pipe (`synccontacts sync | head`), so
//! a broken pipe here just stops further output and the run carries on to its normal exit code.
//! Lines are printed while progress bars are suspended, so bars never tear them.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// The stdout printer. Cheap to share by reference.
#[derive(Debug, Default)]
pub struct Out {
    closed: AtomicBool,
}

impl Out {
    pub fn new() -> Self {
        Self::default()
    }

    /// A printer that prints nothing: for library callers (tests, benchmarks) that rebuild the
    /// text from the report themselves and must not flood their own stdout.
    pub fn discard() -> Self {
        Self {
            closed: AtomicBool::new(true),
        }
    }

    /// Prints one line; silently stops printing once stdout is closed.
    pub fn line(&self, line: &str) {
        self.lines(std::iter::once(line));
    }

    pub fn lines<'a>(&self, lines: impl IntoIterator<Item = &'a str>) {
        if self.closed.load(Ordering::Relaxed) {
            return;
        }
        let result = tracing_indicatif::suspend_tracing_indicatif(|| {
            let stdout = std::io::stdout();
            let mut w = stdout.lock();
            for l in lines {
                writeln!(w, "{l}")?;
            }
            w.flush()
        });
        if let Err(e) = result {
            // A closed pipe is the reader's choice, not an error of the run; any other write
            // error is equally nothing we can report on stdout.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                tracing::debug!("stdout closed; further output suppressed");
            }
            self.closed.store(true, Ordering::Relaxed);
        }
    }
}
