//! What the benchmark prints: a few lines per run on stderr while it goes, then the Markdown
//! tables BENCHMARKS.md carries (measurements beside bound and old script; the targets).
//!
//! It only formats; every number comes from `main.rs`, `model.rs` and `targets.rs`.

use crate::model::{DataShape, Limits};
use crate::{Measured, Row};

fn ratio(m: f64, b: f64) -> String {
    if b == 0.0 {
        if m == 0.0 {
            "1.00".into()
        } else {
            "∞".into()
        }
    } else {
        format!("{:.2}", m / b)
    }
}

fn bytes(n: Option<u64>) -> String {
    n.map_or_else(|| "none".to_owned(), |n| n.to_string())
}

fn name(m: &Measured) -> String {
    format!("({}) {}", m.label, m.kind.describe())
}

pub fn print_row(r: &Row, d: &DataShape) {
    let m = &r.measured;
    eprintln!(
        "   data: {} users, hub {} contacts, {} copies in users; needs {} writes ({} in the hub)",
        d.users,
        d.hub_contacts,
        d.user_contacts.iter().sum::<u64>(),
        d.total_writes(),
        d.hub_writes
    );
    eprintln!(
        "   exit {:?} | {} | report requests {:?}",
        m.exit_code, m.report_summary, m.report_requests
    );
    eprintln!(
        "   requests {} (bound {}, {} reads, ×{}), hub {} (bound {}), writes {} (bound {}), wall {:.2}s (bound {:.2}s, ×{}), cpu {:.2}s, rss {:.0} MiB, emulator cpu {:.2}s, throttled {}",
        m.requests,
        r.bound_requests,
        r.bound_reads,
        ratio(m.requests as f64, r.bound_requests as f64),
        m.hub_requests,
        r.bound_hub_requests,
        m.mailbox_writes,
        r.bound_mailbox_writes,
        m.wall_s,
        r.bound_wall_s,
        ratio(m.wall_s, r.bound_wall_s),
        m.cpu_s,
        m.peak_rss_mib,
        m.emulator_cpu_s,
        m.throttled
    );
    eprintln!(
        "   response bytes {} (hub {}), stdout {} bytes, report {} bytes, state {} bytes{}",
        m.response_bytes,
        m.hub_response_bytes,
        m.stdout_bytes,
        bytes(m.report_bytes),
        bytes(m.state_bytes),
        if m.with_state { "" } else { " (no --state)" }
    );
    for t in &r.targets {
        eprintln!(
            "   target {}: {} — {}",
            t.target,
            t.measured,
            if t.met { "met" } else { "NOT MET" }
        );
    }
}

/// The Markdown table of measurements.
pub fn table(rows: &[Row], l: &Limits) -> String {
    let mut t = String::new();
    t.push_str(&format!(
        "Latency {} ms per Graph request; limits: {} in flight per mailbox, {} requests / {} s per app.\n\n",
        l.latency_s * 1000.0,
        l.per_mailbox,
        l.app_requests,
        l.app_window_s
    ));
    t.push_str(
        "| run | metric | measured | bound | ratio | old script |\n|---|---|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let m = &r.measured;
        let name = name(m);
        let mut line = |metric: &str, meas: String, bound: String, rat: String, old: String| {
            t.push_str(&format!(
                "| {name} | {metric} | {meas} | {bound} | {rat} | {old} |\n"
            ));
        };
        line(
            &format!("requests (Graph-counted; bound: {} reads)", r.bound_reads),
            m.requests.to_string(),
            r.bound_requests.to_string(),
            ratio(m.requests as f64, r.bound_requests as f64),
            r.old_requests.to_string(),
        );
        line(
            "hub mailbox requests (reads)",
            format!("{} ({})", m.hub_requests, m.hub_reads),
            format!("{} ({})", r.bound_hub_requests, r.bound_hub_reads),
            ratio(m.hub_requests as f64, r.bound_hub_requests as f64),
            format!(
                "{}{}",
                r.old_hub_requests,
                if r.old_hub_throttled {
                    " (over 10,000/10 min: 429, script aborts)"
                } else {
                    ""
                }
            ),
        );
        line(
            "mailbox reads / writes (deletes)",
            format!("{} / {} ({})", m.mailbox_reads, m.mailbox_writes, m.deletes),
            format!("{} / {}", r.bound_mailbox_reads, r.bound_mailbox_writes),
            format!(
                "{} / {}",
                ratio(m.mailbox_reads as f64, r.bound_mailbox_reads as f64),
                ratio(m.mailbox_writes as f64, r.bound_mailbox_writes as f64)
            ),
            String::new(),
        );
        line(
            "HTTP requests / batches / items",
            format!("{} / {} / {}", m.http_requests, m.batches, m.batch_items),
            String::new(),
            String::new(),
            String::new(),
        );
        line(
            "throttled (429)",
            m.throttled.to_string(),
            "0".into(),
            String::new(),
            String::new(),
        );
        line(
            "response bytes total / hub",
            format!("{} / {}", m.response_bytes, m.hub_response_bytes),
            String::new(),
            String::new(),
            String::new(),
        );
        line(
            "wall time (s)",
            format!("{:.2}", m.wall_s),
            format!(
                "{:.2} (hub first {:.2})",
                r.bound_wall_s, r.bound_wall_hub_first_s
            ),
            ratio(m.wall_s, r.bound_wall_s),
            format!("{:.0} ({:.0}× ours)", r.old_wall_s, r.old_wall_s / m.wall_s),
        );
        line(
            "CPU (s) synccontacts / emulator",
            format!("{:.2} / {:.2}", m.cpu_s, m.emulator_cpu_s),
            String::new(),
            String::new(),
            String::new(),
        );
        line(
            "peak RSS (MiB)",
            format!("{:.0}", m.peak_rss_mib),
            String::new(),
            String::new(),
            String::new(),
        );
        line(
            &format!(
                "stdout / report / state (bytes){}",
                if m.with_state { "" } else { "; no --state" }
            ),
            format!(
                "{} / {} / {}",
                m.stdout_bytes,
                bytes(m.report_bytes),
                bytes(m.state_bytes)
            ),
            String::new(),
            String::new(),
            String::new(),
        );
    }
    t
}

/// The Markdown table of targets.
pub fn targets_table(rows: &[Row]) -> String {
    let mut t = String::from("| run | target | measured | status |\n|---|---|---:|---|\n");
    for r in rows {
        let name = name(&r.measured);
        for x in &r.targets {
            t.push_str(&format!(
                "| {name} | {} | {} | {} |\n",
                x.target,
                x.measured,
                if x.met { "met" } else { "**not met**" }
            ));
        }
    }
    t
}
