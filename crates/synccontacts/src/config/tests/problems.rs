//! Refusals: missing and mistyped fields, JSON errors, every problem reported at once.

use super::*;

#[test]
fn missing_fields_are_all_reported_with_tenant_and_field() {
    let list = r#"[
        {"TenantId":"good","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@g"},
        {"TenantId":"t2","ClientSecret":"s"},
        {"ClientId":"c3","ClientSecret":"s","GlobalAddressBookUserId":"h@3"}
    ]"#;
    let e = err(&[(TENANTS_JSON, list)]);
    assert_eq!(e.problems.len(), 3, "{e}");
    let p = &e.problems[0];
    assert_eq!(p.variable, TENANTS_JSON);
    assert_eq!(
        p.tenant.as_deref(),
        Some("tenant #2 ([1], TenantId \"t2\")")
    );
    assert_eq!(p.field.as_deref(), Some("ClientId"));
    assert_has(
        &e,
        TENANTS_JSON,
        Some("GlobalAddressBookUserId"),
        "shared mailbox",
    );
    let p3 = e
        .problems
        .iter()
        .find(|p| p.field.as_deref() == Some("TenantId"))
        .unwrap();
    assert_eq!(p3.tenant.as_deref(), Some("tenant #3 ([2])"));
    // The human text carries all of it.
    let text = e.to_string();
    assert!(text.contains("3 problems"), "{text}");
    assert!(text.contains("fix:"), "{text}");
}

#[test]
fn blank_and_non_string_required_fields() {
    let e = err(&[(
        TENANTS_JSON,
        r#"[{"TenantId":"  ","ClientId":42,"ClientSecret":"s","GlobalAddressBookUserId":"h"}]"#,
    )]);
    assert_has(&e, TENANTS_JSON, Some("TenantId"), "is missing");
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientId"),
        "must be a string, found a number",
    );
}

#[test]
fn single_tenant_variables_partly_set() {
    let e = err(&[(TENANT_ID, "t"), (CLIENT_SECRET, "s")]);
    assert_eq!(e.problems.len(), 2, "{e}");
    assert_has(&e, CLIENT_ID, None, "is not set");
    assert_has(&e, GAB_USER_ID, None, "is not set");
}

#[test]
fn no_tenants_configured_names_the_variables() {
    let e = err(&[]);
    assert_eq!(e.problems.len(), 1);
    let text = e.to_string();
    for v in [CONFIG_JSON, TENANTS_JSON, TENANT_ID, GAB_USER_ID] {
        assert!(text.contains(v), "{v} missing from {text}");
    }
    let e = err(&[(CONFIG_JSON, r#"{"DryRun":"true"}"#)]);
    assert_has(
        &e,
        CONFIG_JSON,
        Some("MicrosoftTenants"),
        "no tenants configured",
    );
    let e = err(&[(CONFIG_JSON, r#"{"MicrosoftTenants":[]}"#)]);
    assert_has(&e, CONFIG_JSON, Some("MicrosoftTenants"), "empty");
    let e = err(&[(TENANTS_JSON, "[]")]);
    assert_has(&e, TENANTS_JSON, None, "empty");
}

#[test]
fn wrong_json_types() {
    let e = err(&[(CONFIG_JSON, "[1]")]);
    assert_has(
        &e,
        CONFIG_JSON,
        None,
        "must be a JSON object, found an array",
    );
    let e = err(&[(TENANTS_JSON, "\"x\"")]);
    assert_has(&e, TENANTS_JSON, None, "found a string");
    let e = err(&[(TENANTS_JSON, "[1]")]);
    assert!(e.problems[0].tenant.as_deref().unwrap().contains("#1"));
    let e = err(&[(
        CONFIG_JSON,
        &format!(r#"{{"MicrosoftTenants":[{T1}],"TestUserListByTenant":[]}}"#),
    )]);
    assert_has(
        &e,
        CONFIG_JSON,
        Some("TestUserListByTenant"),
        "must be an object",
    );
}

#[test]
fn tenant_fields_next_to_microsoft_tenants_are_an_error() {
    let e = err(&[(
        CONFIG_JSON,
        &format!(r#"{{"MicrosoftTenants":[{T1}],"TenantId":"x"}}"#),
    )]);
    assert_has(&e, CONFIG_JSON, Some("TenantId"), "would be ignored");
}

#[test]
fn conflicting_spellings_of_one_field() {
    let e = err(&[(
        TENANTS_JSON,
        r#"[{"TenantId":"a","TenantID":"b","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h"}]"#,
    )]);
    assert_has(&e, TENANTS_JSON, Some("TenantId"), "more than once");
    // The same value twice is fine.
    ok(&[(
        TENANTS_JSON,
        r#"[{"TenantId":"a","TenantID":"a","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h"}]"#,
    )]);
}

#[test]
fn field_names_are_case_insensitive_and_unknown_ones_warn() {
    let c = ok(&[(
        TENANTS_JSON,
        r#"[{"tenantid":"a","CLIENTID":"c","clientSecret":"s","globaladdressbookuserid":"h","Colour":"blue"}]"#,
    )]);
    assert_eq!(c.tenants[0].tenant_id, "a");
    assert!(
        c.warnings.iter().any(|w| w.contains("\"Colour\"")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn parse_errors_name_the_variable_and_position_but_not_the_content() {
    let bad = "{\n  \"MicrosoftTenants\": [\n    {\"ClientSecret\": \"s3cret-canary\" \"TenantId\": \"x\"}\n  ]\n}";
    let e = err(&[(CONFIG_JSON, bad)]);
    assert_eq!(e.problems.len(), 1);
    let p = &e.problems[0];
    assert_eq!(p.variable, CONFIG_JSON);
    assert!(p.problem.contains("line 3"), "{}", p.problem);
    assert!(p.problem.contains("column"), "{}", p.problem);
    assert!(!e.to_string().contains("s3cret-canary"));
    let e = err(&[(TENANTS_JSON, "[{")]);
    assert_has(&e, TENANTS_JSON, None, "line 1");
    let e = err(&[(TENANTS_JSON, T1), (TEST_USERS_JSON, "{\"a\":")]);
    assert_has(&e, TEST_USERS_JSON, None, "not valid JSON");
}

#[test]
fn all_problems_across_variables_are_reported_together() {
    let e = err(&[
        (TENANTS_JSON, r#"[{"TenantId":"t"}]"#),
        (DRY_RUN, "perhaps"),
        (TEST_USERS_JSON, "{"),
        (GRAPH_URL, "http://graph.example.com"),
    ]);
    for v in [TENANTS_JSON, DRY_RUN, TEST_USERS_JSON, GRAPH_URL] {
        assert!(
            e.problems.iter().any(|p| p.variable == v),
            "{v} missing in\n{e}"
        );
    }
    // ClientId, GlobalAddressBookUserId, credential.
    assert_eq!(
        e.problems
            .iter()
            .filter(|p| p.variable == TENANTS_JSON)
            .count(),
        3,
        "{e}"
    );
}
