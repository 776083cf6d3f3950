//! The process exit codes (docs/sync-rules.md §6), decided in this one place: [`process_exit_code`]
//! maps what a command came to — a [`RunEnd`] — to its code, as cargo-nextest's `process_exit_code`
//! does. Nothing else in the crate picks a code or calls `std::process::exit`: the commands
//! describe how they ended and ask this function. Which failure gives which tenant outcome is
//! `failure.rs`, shared by `sync` and `check`.
//!
//! CI jobs script against these numbers, so they are a stable contract:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | every tenant done (a dry run: planned) |
//! | 1 | a tenant, mailbox or write failed (an unreachable endpoint, Graph errors after retries, a partial tenant), the run stopped at its deadline, or the run's own work failed (report file, runtime): safe to repeat |
//! | 2 | the command line, the configuration or an output path was refused: nothing was written |
//! | 3 | every tenant that ran failed on its setup — credentials, a permission, or the hub mailbox: the fix is in the app registration or the tenant's configuration, a rerun alone cannot help |
//! | 4 | deletes held by the brake (docs/state-and-deletes.md §3.4); everything else was applied: release them with `--allow-deletes N` |
//! | 130 | interrupted by SIGINT: in-flight writes finished, what was written is recorded in the state, the report says what was done |
//! | 143 | interrupted by SIGTERM: likewise |
//!
//! **Precedence** when several apply: **2 > 130/143 > 3 > 1 > 4 > 0**. A refusal means nothing
//! ran, so nothing else is true of it. An interruption is the operator's own doing and explains
//! whatever it cut short. 3 only when *every* tenant failed on its setup (one fix for all, in the
//! app registration or the configuration); any other failure, or a mix with a tenant that synced,
//! is 1. A failure outranks held deletes (4), which are a deliberate pause that needs a decision,
//! not a repair; 0 only when nothing else applies.

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
    /// The tenant stopped on its configuration: the hub mailbox is not there, or a test-user key
    /// may be a typo meant for it.
    ConfigFailed,
    /// The run was stopped (SIGINT, SIGTERM, the deadline) before this tenant finished, or before
    /// it started; what it did is in its actions.
    Stopped,
}

/// The process exit code. Built only by [`process_exit_code`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok = 0,
    Partial = 1,
    Config = 2,
    Setup = 3,
    DeletesHeld = 4,
    Interrupted = 130,
    Terminated = 143,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

/// What a command came to: everything the exit code depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunEnd {
    /// The command line, the configuration or an output path was refused before anything was
    /// written.
    pub refused: bool,
    /// How each tenant ended (`sync`, `check`; none for `help`).
    pub tenants: Vec<TenantOutcome>,
    /// Work the run owes besides the tenants' failed: the report file could not be written, the
    /// async runtime did not start, the demo could not run.
    pub run_failed: bool,
    /// The run was interrupted by this signal (SIGINT or SIGTERM).
    pub interrupted: Option<crate::stop::Signal>,
    /// The brake held deletes in some tenant (a deliberate pause that needs a decision).
    pub deletes_held: bool,
}

impl RunEnd {
    /// A command refused before it did anything.
    pub fn refused() -> Self {
        Self {
            refused: true,
            ..Self::default()
        }
    }

    /// A run whose tenants ended as `tenants`.
    pub fn of_tenants(tenants: impl IntoIterator<Item = TenantOutcome>) -> Self {
        Self {
            tenants: tenants.into_iter().collect(),
            ..Self::default()
        }
    }

    /// A run that failed for a reason of its own, before or outside any tenant's work.
    pub fn run_failed() -> Self {
        Self {
            run_failed: true,
            ..Self::default()
        }
    }
}

/// The exit code of a command that ended as `end`, by the precedence in the module doc.
pub fn process_exit_code(end: &RunEnd) -> Exit {
    let any_tenant_failed = end.tenants.iter().any(|o| *o != TenantOutcome::Ok);
    let every_tenant_setup = !end.tenants.is_empty()
        && end
            .tenants
            .iter()
            .all(|o| matches!(o, TenantOutcome::AuthFailed | TenantOutcome::ConfigFailed));
    if end.refused {
        Exit::Config
    } else if let Some(signal) = end.interrupted {
        match signal {
            crate::stop::Signal::Int => Exit::Interrupted,
            crate::stop::Signal::Term => Exit::Terminated,
        }
    } else if every_tenant_setup {
        Exit::Setup
    } else if any_tenant_failed || end.run_failed {
        Exit::Partial
    } else if end.deletes_held {
        Exit::DeletesHeld
    } else {
        Exit::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use TenantOutcome::*;

    fn code(refused: bool, tenants: &[TenantOutcome], run_failed: bool) -> u8 {
        process_exit_code(&RunEnd {
            refused,
            tenants: tenants.to_vec(),
            run_failed,
            interrupted: None,
            deletes_held: false,
        })
        .code()
    }

    fn held(tenants: &[TenantOutcome], refused: bool, run_failed: bool) -> u8 {
        process_exit_code(&RunEnd {
            refused,
            tenants: tenants.to_vec(),
            run_failed,
            interrupted: None,
            deletes_held: true,
        })
        .code()
    }

    /// 4 only when nothing else is wrong: below 2, 3 and 1, above 0.
    #[test]
    fn held_deletes_exit_4_below_every_failure() {
        assert_eq!(held(&[Ok], false, false), 4);
        assert_eq!(held(&[Ok, Ok], false, false), 4);
        assert_eq!(held(&[Ok, Partial], false, false), 1);
        assert_eq!(held(&[Ok, Failed], false, false), 1);
        assert_eq!(
            held(&[Ok], false, true),
            1,
            "the report could not be written"
        );
        assert_eq!(held(&[AuthFailed], false, false), 3);
        assert_eq!(held(&[Ok], true, false), 2);
        assert_eq!(Exit::DeletesHeld.code(), 4);
    }

    #[test]
    fn tenant_outcomes_per_spec_section_6() {
        assert_eq!(code(false, &[Ok, Ok], false), 0);
        assert_eq!(code(false, &[Ok, Partial], false), 1);
        assert_eq!(code(false, &[Ok, Failed], false), 1);
        assert_eq!(code(false, &[AuthFailed], false), 3);
        assert_eq!(code(false, &[AuthFailed, AuthFailed], false), 3);
        // 3 only when every tenant failed on auth/permission: a mix is partial.
        assert_eq!(code(false, &[Ok, AuthFailed], false), 1);
        assert_eq!(code(false, &[Failed, AuthFailed], false), 1);
        assert_eq!(code(false, &[Partial, AuthFailed], false), 1);
        // No tenant at all (help, a check of nothing): nothing failed.
        assert_eq!(code(false, &[], false), 0);
    }

    /// 2 > 3 > 1 > 0, whatever else is true of the run.
    #[test]
    fn precedence_of_the_codes_that_exist() {
        let tenant_sets: [&[TenantOutcome]; 5] =
            [&[], &[Ok], &[Partial], &[AuthFailed], &[Ok, AuthFailed]];
        for tenants in tenant_sets {
            for run_failed in [false, true] {
                // 2 over everything.
                assert_eq!(
                    code(true, tenants, run_failed),
                    2,
                    "{tenants:?} {run_failed}"
                );
            }
        }
        // 3 over 1: the report lost after every tenant failed on auth is still 3.
        assert_eq!(code(false, &[AuthFailed], true), 3);
        assert_eq!(code(false, &[AuthFailed, AuthFailed], true), 3);
        // 1 over 0: the run's own failure with every tenant done, or with no tenant.
        assert_eq!(code(false, &[Ok], true), 1);
        assert_eq!(code(false, &[], true), 1);
        assert_eq!(process_exit_code(&RunEnd::refused()), Exit::Config);
        assert_eq!(process_exit_code(&RunEnd::run_failed()), Exit::Partial);
        assert_eq!(process_exit_code(&RunEnd::default()), Exit::Ok);
        assert_eq!(
            process_exit_code(&RunEnd::of_tenants([AuthFailed])),
            Exit::Setup
        );
    }

    /// Issue 16: a missing hub is a setup problem like a refused credential (3 when every tenant
    /// has one), and a stopped tenant is a failure (1) unless a signal stopped the run.
    #[test]
    fn setup_failures_and_stopped_tenants() {
        assert_eq!(code(false, &[ConfigFailed], false), 3);
        assert_eq!(code(false, &[ConfigFailed, AuthFailed], false), 3);
        assert_eq!(code(false, &[ConfigFailed, Ok], false), 1);
        assert_eq!(code(false, &[Stopped], false), 1);
        assert_eq!(code(false, &[Ok, Stopped], false), 1);
        assert_eq!(code(false, &[AuthFailed, Stopped], false), 1);
    }

    /// 2 > 130/143 > 3 > 1 > 0: an interruption outranks every outcome but a refusal.
    #[test]
    fn an_interruption_outranks_everything_but_a_refusal() {
        use crate::stop::Signal;
        let tenant_sets: [&[TenantOutcome]; 5] = [
            &[],
            &[Ok],
            &[Stopped],
            &[AuthFailed],
            &[Partial, ConfigFailed],
        ];
        for (signal, want) in [(Signal::Int, 130), (Signal::Term, 143)] {
            for tenants in tenant_sets {
                for (run_failed, deletes_held) in
                    [(false, false), (true, false), (false, true), (true, true)]
                {
                    let end = |refused| RunEnd {
                        refused,
                        tenants: tenants.to_vec(),
                        run_failed,
                        interrupted: Some(signal),
                        deletes_held,
                    };
                    assert_eq!(process_exit_code(&end(false)).code(), want, "{tenants:?}");
                    assert_eq!(process_exit_code(&end(true)).code(), 2, "{tenants:?}");
                }
            }
        }
        assert_eq!(Exit::Interrupted.code(), 130);
        assert_eq!(Exit::Terminated.code(), 143);
    }

    /// The whole chain, 2 > 130/143 > 3 > 1 > 4 > 0, each step with everything below it true:
    /// both branches' codes (held deletes, issue 12; interruptions, issue 16) in one function.
    #[test]
    fn the_whole_precedence_chain() {
        use crate::stop::Signal;
        let all = RunEnd {
            refused: true,
            tenants: vec![AuthFailed],
            run_failed: true,
            interrupted: Some(Signal::Term),
            deletes_held: true,
        };
        assert_eq!(process_exit_code(&all).code(), 2);
        let all = RunEnd {
            refused: false,
            ..all
        };
        assert_eq!(process_exit_code(&all).code(), 143);
        let all = RunEnd {
            interrupted: None,
            ..all
        };
        assert_eq!(process_exit_code(&all).code(), 3, "every tenant's setup");
        let all = RunEnd {
            tenants: vec![Ok, Stopped],
            ..all
        };
        assert_eq!(
            process_exit_code(&all).code(),
            1,
            "a deadline's stopped tenant"
        );
        let all = RunEnd {
            tenants: vec![Ok],
            run_failed: false,
            ..all
        };
        assert_eq!(process_exit_code(&all).code(), 4);
        let all = RunEnd {
            deletes_held: false,
            ..all
        };
        assert_eq!(process_exit_code(&all).code(), 0);
    }
}
