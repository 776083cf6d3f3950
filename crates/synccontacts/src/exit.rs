//! The process exit codes (SPEC §6), decided in this one place.
//!
//! CI jobs script against these numbers, so they are a stable contract: 0 all tenants done,
//! 1 some tenant or some writes failed (safe to repeat), 2 configuration error (nothing was
//! requested), 3 authentication or permission error. Nothing else in the crate may call
//! `std::process::exit` or pick a number.

use std::process::ExitCode;

/// How one tenant's run ended, as far as the exit code is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TenantOutcome {
    /// Everything planned was done (or planned, in a dry run).
    Ok,
    /// The tenant ran, but some mailboxes or writes failed.
    Partial,
    /// The tenant stopped before it could finish, for a reason other than auth/permission.
    Failed,
    /// The tenant stopped on an authentication or permission error.
    AuthFailed,
}

/// The run's exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Partial = 1,
    Config = 2,
    Auth = 3,
}

impl Exit {
    /// The code for a run whose tenants ended as `outcomes`.
    ///
    /// 3 only when *every* tenant that did not succeed failed on authentication or permission and
    /// no tenant succeeded (the fix is the same for all: the app registration). A mix (one tenant
    /// converged, another had a wrong secret) is 1: the run was partial and is safe to repeat.
    pub fn for_tenants(outcomes: &[TenantOutcome]) -> Self {
        if outcomes.iter().all(|o| *o == TenantOutcome::Ok) {
            Exit::Ok
        } else if outcomes.iter().all(|o| *o == TenantOutcome::AuthFailed) {
            Exit::Auth
        } else {
            Exit::Partial
        }
    }

    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TenantOutcome::*;

    #[test]
    fn exit_codes_per_spec_section_6() {
        assert_eq!(Exit::for_tenants(&[Ok, Ok]), Exit::Ok);
        assert_eq!(Exit::for_tenants(&[Ok, Partial]), Exit::Partial);
        assert_eq!(Exit::for_tenants(&[Ok, Failed]), Exit::Partial);
        assert_eq!(Exit::for_tenants(&[AuthFailed]), Exit::Auth);
        assert_eq!(Exit::for_tenants(&[AuthFailed, AuthFailed]), Exit::Auth);
        assert_eq!(Exit::for_tenants(&[Ok, AuthFailed]), Exit::Partial);
        assert_eq!(Exit::for_tenants(&[Failed, AuthFailed]), Exit::Partial);
        assert_eq!(Exit::Config.code(), 2);
        assert_eq!(Exit::Auth.code(), 3);
    }
}
