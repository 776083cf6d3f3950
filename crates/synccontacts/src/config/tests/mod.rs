//! Unit tests of configuration, by topic: every shape of docs/compatibility.md §1, every refusal,
//! and the two stages. The helpers here run both stages the way `sync` and `check` do.

use super::*;

mod credentials;
mod endpoints;
mod flags;
mod problems;
mod scope_rules;
mod shapes;
mod stages;
mod test_users;

const T1: &str = r#"{"TenantId":"contoso.onmicrosoft.com","ClientId":"app-1","ClientSecret":"s3cret-canary","GlobalAddressBookUserId":"hub@contoso.com"}"#;

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs.iter().map(|(k, v)| (*k, *v)).collect()
}

fn ok(pairs: &[(&str, &str)]) -> Config {
    match load(&env(pairs)) {
        Ok(c) => c,
        Err(e) => panic!("expected a valid config, got:\n{e}"),
    }
}

fn err(pairs: &[(&str, &str)]) -> ConfigError {
    match load(&env(pairs)) {
        Ok(c) => panic!("expected an error, got {c:?}"),
        Err(e) => e,
    }
}

/// The test users of a tenant in test mode.
fn users(t: &TenantConfig) -> Option<Vec<String>> {
    t.scope.test_users().map(<[String]>::to_vec)
}

fn has(e: &ConfigError, var: &str, field: Option<&str>, needle: &str) -> bool {
    e.problems.iter().any(|p| {
        p.variable == var
            && (field.is_none() || p.field.as_deref() == field)
            && (p.problem.contains(needle) || p.fix.contains(needle))
    })
}

#[track_caller]
fn assert_has(e: &ConfigError, var: &str, field: Option<&str>, needle: &str) {
    assert!(
        has(e, var, field, needle),
        "no problem for {var} / {field:?} mentioning {needle:?} in:\n{e}"
    );
}
