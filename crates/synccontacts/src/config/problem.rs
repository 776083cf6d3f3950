//! What validation finds: problems that refuse the configuration (exit 2, nothing requested) and
//! warnings an administrator should see. Both stages add to one [`Findings`], so every problem is
//! reported at once (docs/reliability.md I6). A problem names where and what, never a secret value.

use std::fmt;

/// One configuration problem: where, what, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The environment variable (or option) that holds the problem.
    pub variable: String,
    /// `tenant #2 (MicrosoftTenants[1], TenantId "contoso.onmicrosoft.com")` when it concerns one.
    pub tenant: Option<String>,
    /// The JSON field (or the variable itself for the single-tenant shape).
    pub field: Option<String>,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.variable)?;
        if let Some(t) = &self.tenant {
            write!(f, ", {t}")?;
        }
        if let Some(field) = &self.field {
            write!(f, ", field {field}")?;
        }
        write!(f, ": {}\n    fix: {}", self.problem, self.fix)
    }
}

/// Every problem found in the configuration (exit code 2; nothing was written, and nothing was
/// requested unless `read_directory` says so).
#[derive(Clone, Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<Problem>,
    /// The problems were found by reading the directory (verified domains for a test-user key,
    /// the groups of IncludeGroups/ExcludeGroups): those reads were sent, nothing else was.
    pub read_directory: bool,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        let sent = if self.read_directory {
            "nothing was written (only the directory was read, to check the configuration)"
        } else {
            "nothing was sent to Microsoft Graph"
        };
        writeln!(
            f,
            "configuration error: {n} problem{} found; {sent}",
            if n == 1 { "" } else { "s" }
        )?;
        for (i, p) in self.problems.iter().enumerate() {
            writeln!(f, "  {}. {p}", i + 1)?;
        }
        Ok(())
    }
}

/// Problems and warnings collected across both stages, in the order they were found.
#[derive(Clone, Debug, Default)]
pub(super) struct Findings {
    pub problems: Vec<Problem>,
    /// Not errors, but worth an administrator's eye: unknown fields, ignored variables, test-user
    /// keys that match no tenant.
    pub warnings: Vec<String>,
}

impl Findings {
    pub fn problem(
        &mut self,
        variable: &str,
        tenant: Option<&str>,
        field: Option<&str>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem {
            variable: variable.into(),
            tenant: tenant.map(Into::into),
            field: field.map(Into::into),
            problem: problem.into(),
            fix: fix.into(),
        });
    }

    pub fn warn(&mut self, warning: impl Into<String>) {
        self.warnings.push(warning.into());
    }
}
