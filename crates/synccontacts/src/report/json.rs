//! The `--report FILE` document (SPEC §6): the [`RunReport`] as pretty JSON, streamed to the file.
//!
//! Its shape is a contract CI jobs parse; `tests.rs` pins it byte for byte.

use super::RunReport;

/// Writes the JSON report to `path` (pretty, UTF-8), streamed: a 1,000-user cold run reports
/// 300,000 actions, 170 MB of JSON that as one buffer was the run's peak memory (issue 8).
pub fn write_json(report: &RunReport, path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(&mut out, report).map_err(std::io::Error::other)?;
    out.flush()
}
