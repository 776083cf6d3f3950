//! The two stages: stage one judges only what was written; stage two loads what it names; their
//! problems come out together. And the tenant-field table's own rules.

use super::*;
use crate::config::tenant_fields::TENANT_FIELDS;

/// Two tenants whose credentials name a missing file and an unset variable, and a missing CA file.
fn names_missing_things(dir: &std::path::Path) -> Env {
    let missing = serde_json::to_string(&dir.join("nope.pem").display().to_string()).unwrap();
    let tenants = format!(
        r#"[{{"TenantId":"t1","ClientId":"c","ClientCertificatePath":{missing},"GlobalAddressBookUserId":"h"}},
            {{"TenantId":"t2","ClientId":"c","ClientAssertionEnv":"AZURE_JWT","GlobalAddressBookUserId":"h"}}]"#
    );
    env(&[
        (TENANTS_JSON, &tenants),
        (CA_FILE, &dir.join("ca.pem").display().to_string()),
    ])
}

#[test]
fn stage_one_leaves_what_the_configuration_names_to_stage_two() {
    let dir = tempfile::tempdir().unwrap();
    let env = names_missing_things(dir.path());
    let low = LowConfig::parse(&env);
    assert_eq!(low.problems(), &[], "stage one judged a file or variable");
    assert_eq!(low.tenants.len(), 2);
    assert_eq!(
        low.ca_file.as_deref(),
        Some(dir.path().join("ca.pem").as_path())
    );
    let e = Config::from_low(low, &env).unwrap_err();
    assert_eq!(e.problems.len(), 3, "{e}");
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientCertificatePath"),
        "cannot read",
    );
    assert_has(&e, TENANTS_JSON, Some("ClientAssertionEnv"), "AZURE_JWT");
    assert_has(&e, CA_FILE, None, "cannot read");
    let cert = e
        .problems
        .iter()
        .find(|p| p.field.as_deref() == Some("ClientCertificatePath"))
        .unwrap();
    assert_eq!(
        cert.tenant.as_deref(),
        Some("tenant #1 ([0], TenantId \"t1\")")
    );
}

#[test]
fn problems_of_both_stages_are_reported_together_stage_one_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut env = names_missing_things(dir.path());
    env.set(DRY_RUN, "ture");
    env.set(GRAPH_URL, "http://graph.example.com");
    let e = load(&env).unwrap_err();
    assert_eq!(e.problems.len(), 5, "{e}");
    let vars: Vec<&str> = e.problems.iter().map(|p| p.variable.as_str()).collect();
    assert_eq!(&vars[..2], &[DRY_RUN, GRAPH_URL], "{e}");
    assert!(e.to_string().contains("5 problems"), "{e}");
}

#[test]
fn every_credential_file_given_is_checked_even_when_two_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let missing = serde_json::to_string(&dir.path().join("nope").display().to_string()).unwrap();
    let two = format!(
        r#"[{{"TenantId":"t","ClientId":"c","ClientCertificatePath":{missing},"ClientAssertionFile":{missing},"GlobalAddressBookUserId":"h"}}]"#
    );
    let e = err(&[(TENANTS_JSON, &two)]);
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientCertificatePath, ClientAssertionFile"),
        "more than one",
    );
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientCertificatePath"),
        "cannot read",
    );
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientAssertionFile"),
        "does not exist",
    );
}

#[test]
fn a_top_level_default_reaches_every_tenant_of_every_shape_that_has_a_top_level() {
    let cj = format!(r#"{{"MicrosoftTenants":[{T1}],"updateexisting":"no"}}"#);
    let low = LowConfig::parse(&env(&[(CONFIG_JSON, &cj)]));
    assert!(!low.tenants[0].options.update_existing);
    // In the older shape the top level is the tenant: read once, refused once.
    let older = r#"{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h","UpdateExisting":false}"#;
    assert!(
        !ok(&[(CONFIG_JSON, older)]).tenants[0]
            .options
            .update_existing
    );
    let e = err(&[(CONFIG_JSON, &older.replace("false", "\"maybe\""))]);
    assert_eq!(e.problems.len(), 1, "{e}");
    assert_has(&e, CONFIG_JSON, Some("UpdateExisting"), "maybe");
    // The tenants JSON has no top level: the table's default applies.
    let low = LowConfig::parse(&env(&[(TENANTS_JSON, T1)]));
    assert_eq!(low.tenants[0].options, TenantOptions::default());
    assert!(low.tenants[0].options.update_existing);
}

#[test]
fn the_tenant_field_table_is_consistent() {
    for (i, f) in TENANT_FIELDS.iter().enumerate() {
        for g in &TENANT_FIELDS[..i] {
            assert!(
                !f.name.eq_ignore_ascii_case(g.name),
                "{} is declared twice",
                f.name
            );
        }
        // "Is missing" looks at the tenant's own object, so a required field cannot be given by
        // the top level instead.
        assert!(!(f.required && f.top_level), "{} is both", f.name);
        assert!(!f.fix.is_empty(), "{} has no fix", f.name);
        for run_field in ["MicrosoftTenants", "DryRun", "TestUserListByTenant"] {
            assert!(!f.name.eq_ignore_ascii_case(run_field), "{}", f.name);
        }
    }
    // The README's "Tenant fields" table lists every row.
    let readme = include_str!("../../../../../README.md");
    for f in TENANT_FIELDS {
        assert!(
            readme.contains(&format!("`{}`", f.name)),
            "README does not document {}",
            f.name
        );
    }
}
