//! The `--report FILE` document (SPEC §6): the [`RunReport`] as pretty JSON, streamed to the file.
//!
//! Its shape is a contract CI jobs parse; `tests.rs` pins it byte for byte.

use super::RunReport;

/// Writes the JSON report to `path` (pretty, UTF-8), streamed: a large run's report (one record
/// per action) would otherwise be the run's peak memory as one buffer.
pub fn write_json(report: &RunReport, path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(&mut out, report).map_err(std::io::Error::other)?;
    out.flush()
}
