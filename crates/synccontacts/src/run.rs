//! Orchestration of one run, tenant by tenant: read → plan → apply → report.
//!
//! Placeholder until the Graph client and the planner land: every tenant is reported as failed
//! with an explicit message, so nothing pretends to have synced.

use crate::cli::OutputOptions;
use crate::config::Config;
use crate::exit::TenantOutcome;
use crate::output::Out;
use crate::report::{self, RunReport, TenantReport};

pub async fn sync_all(config: &Config, opts: OutputOptions, out: &Out) -> RunReport {
    let mut report = RunReport {
        dry_run: config.dry_run,
        error: None,
        tenants: Vec::new(),
    };
    for t in &config.tenants {
        let tr = TenantReport::failed(
            &t.tenant_id,
            &t.hub,
            TenantOutcome::Failed,
            "this build has no Graph client yet (orchestration not merged)".into(),
        );
        let lines = report::tenant_text(&tr, config.dry_run, opts.detail);
        out.lines(lines.iter().map(String::as_str));
        report.tenants.push(tr);
    }
    report
}
