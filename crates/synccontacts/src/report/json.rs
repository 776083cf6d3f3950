//! The `--report FILE` document (docs/sync-rules.md §6): the [`RunReport`] as pretty JSON, streamed
//! to the file — gzip-compressed when the path ends in `.gz` (`report.json.gz`): a first run of 100
//! users × 40 contacts reports 400,000 actions, over 200 MB of JSON that compresses about
//! twentyfold.
//!
//! Its shape is a contract CI jobs parse; `tests.rs` pins it byte for byte.

use std::io::Write;
use std::path::Path;

use super::RunReport;

/// Whether `path` asks for a compressed report (`.gz`, any case).
pub fn is_gzip(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// Writes the JSON report to `path` (pretty, UTF-8; gzip when [`is_gzip`]), streamed: a large
/// run's report (one record per action) would otherwise be the run's peak memory as one buffer.
pub fn write_json(report: &RunReport, path: &Path) -> std::io::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    if is_gzip(path) {
        // Level 6, gzip's default: most of the gain of 9 at a fraction of its time.
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        write_to(report, &mut gz)?;
        gz.finish()?.flush()
    } else {
        let mut out = file;
        write_to(report, &mut out)?;
        out.flush()
    }
}

fn write_to(report: &RunReport, out: &mut impl Write) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn a_gz_path_gets_the_same_document_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let report = RunReport {
            dry_run: true,
            exit_code: 0,
            ..RunReport::default()
        };
        let plain = dir.path().join("report.json");
        let gz = dir.path().join("report.json.GZ");
        write_json(&report, &plain).unwrap();
        write_json(&report, &gz).unwrap();
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&gz).unwrap())
            .read_to_string(&mut unzipped)
            .unwrap();
        assert_eq!(unzipped, std::fs::read_to_string(&plain).unwrap());
        assert!(!is_gzip(&plain));
    }
}
