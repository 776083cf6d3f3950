//! Unit tests of stage-one configuration: every shape of SPEC §2.1 and every error.

use super::*;

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

// ----- shapes -----

#[test]
fn config_json_with_microsoft_tenants() {
    let c = ok(&[(
        CONFIG_JSON,
        &format!(r#"{{"MicrosoftTenants":[{T1}],"DryRun":"true"}}"#),
    )]);
    assert_eq!(c.source, Source::ConfigJson);
    assert!(c.dry_run);
    assert_eq!(c.tenants.len(), 1);
    let t = &c.tenants[0];
    assert_eq!(t.tenant_id, "contoso.onmicrosoft.com");
    assert_eq!(t.client_id, "app-1");
    assert_eq!(t.hub, "hub@contoso.com");
    assert_eq!(
        t.credential,
        CredentialConfig::Secret(Secret::new("s3cret-canary"))
    );
    assert!(t.update_existing);
    assert_eq!(t.test_users, None);
    assert_eq!(
        t.endpoints.login.as_str(),
        "https://login.microsoftonline.com/"
    );
    assert_eq!(t.endpoints.graph.as_str(), "https://graph.microsoft.com/");
}

#[test]
fn config_json_older_top_level_shape_is_one_tenant() {
    let c = ok(&[(
        CONFIG_JSON,
        r#"{"TenantId":"t1","ClientId":"c1","ClientSecret":"x","GlobalAddressBookUserId":"hub@t1","DryRun":false,"TestUserList":["a@t1"]}"#,
    )]);
    assert_eq!(c.tenants.len(), 1);
    assert_eq!(c.tenants[0].tenant_id, "t1");
    assert_eq!(c.tenants[0].test_users, Some(vec!["a@t1".to_owned()]));
    assert!(!c.dry_run);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn single_tenant_object_instead_of_array_is_accepted() {
    // PowerShell's ConvertTo-Json unwraps one-element arrays.
    let c = ok(&[(CONFIG_JSON, &format!(r#"{{"MicrosoftTenants":{T1}}}"#))]);
    assert_eq!(c.tenants.len(), 1);
    let c = ok(&[(TENANTS_JSON, T1)]);
    assert_eq!(c.tenants.len(), 1);
}

#[test]
fn tenants_json_with_dry_run_variable() {
    let two = format!(
        r#"[{T1},{{"TenantID":"fabrikam.onmicrosoft.com","ClientId":"c2","ClientSecret":"y","GlobalAddressBookUserId":"hub@fabrikam.com"}}]"#
    );
    let c = ok(&[(TENANTS_JSON, &two), (DRY_RUN, " Yes ")]);
    assert_eq!(c.source, Source::TenantsJson);
    assert!(c.dry_run);
    assert_eq!(c.dry_run_origin.as_deref(), Some(DRY_RUN));
    assert_eq!(c.tenants.len(), 2);
    assert_eq!(
        c.tenants[1].tenant_id, "fabrikam.onmicrosoft.com",
        "TenantID spelling"
    );
    assert_eq!(c.tenants[1].index, 1);
}

#[test]
fn single_tenant_variables() {
    let c = ok(&[
        (TENANT_ID, "t"),
        (CLIENT_ID, "c"),
        (CLIENT_SECRET, "s"),
        (GAB_USER_ID, "hub@t"),
        (DRY_RUN, "n"),
    ]);
    assert_eq!(c.source, Source::SingleTenantVariables);
    assert!(!c.dry_run);
    assert_eq!(c.tenants[0].hub, "hub@t");
}

#[test]
fn blank_config_json_falls_through_to_the_next_shape() {
    let c = ok(&[(CONFIG_JSON, "  \n"), (TENANTS_JSON, &format!("[{T1}]"))]);
    assert_eq!(c.source, Source::TenantsJson);
}

#[test]
fn config_json_wins_and_the_others_are_reported_ignored() {
    let c = ok(&[
        (CONFIG_JSON, &format!(r#"{{"MicrosoftTenants":[{T1}]}}"#)),
        (TENANTS_JSON, "[]"),
        (TENANT_ID, "x"),
    ]);
    assert_eq!(c.source, Source::ConfigJson);
    assert!(c.warnings.iter().any(|w| w.contains(TENANTS_JSON)));
    assert!(c.warnings.iter().any(|w| w.contains(TENANT_ID)));
}

// ----- DryRun -----

#[test]
fn dry_run_accepted_values() {
    for (v, want) in [
        ("true", true),
        ("TRUE", true),
        (" 1 ", true),
        ("yes", true),
        ("Y", true),
        ("false", false),
        ("0", false),
        ("No", false),
        ("n\n", false),
    ] {
        assert_eq!(parse_flag_str(v), Ok(want), "{v:?}");
        let c = ok(&[(TENANTS_JSON, T1), (DRY_RUN, v)]);
        assert_eq!(c.dry_run, want, "{v:?}");
        let cj = format!(
            r#"{{"MicrosoftTenants":[{T1}],"DryRun":"{}"}}"#,
            v.escape_default()
        );
        assert_eq!(ok(&[(CONFIG_JSON, &cj)]).dry_run, want, "{v:?} in JSON");
    }
    let cj = format!(r#"{{"MicrosoftTenants":[{T1}],"DryRun":true}}"#);
    assert!(ok(&[(CONFIG_JSON, &cj)]).dry_run);
    let cj = format!(r#"{{"MicrosoftTenants":[{T1}],"DryRun":null}}"#);
    assert!(!ok(&[(CONFIG_JSON, &cj)]).dry_run);
}

#[test]
fn dry_run_absent_means_false() {
    assert!(!ok(&[(TENANTS_JSON, T1)]).dry_run);
    assert!(!ok(&[(CONFIG_JSON, &format!(r#"{{"MicrosoftTenants":[{T1}]}}"#))]).dry_run);
}

#[test]
fn dry_run_typo_is_rejected_not_treated_as_false() {
    let e = err(&[(TENANTS_JSON, T1), (DRY_RUN, "ture")]);
    assert_has(&e, DRY_RUN, None, "`ture`");
    let e = err(&[(
        CONFIG_JSON,
        &format!(r#"{{"MicrosoftTenants":[{T1}],"DryRun":"ture"}}"#),
    )]);
    assert_has(&e, CONFIG_JSON, Some("DryRun"), "not a recognised");
    let e = err(&[(
        CONFIG_JSON,
        &format!(r#"{{"MicrosoftTenants":[{T1}],"DryRun":1}}"#),
    )]);
    assert_has(&e, CONFIG_JSON, Some("DryRun"), "found a number");
    let e = err(&[(
        CONFIG_JSON,
        &format!(r#"{{"MicrosoftTenants":[{T1}],"DryRun":""}}"#),
    )]);
    assert_has(&e, CONFIG_JSON, Some("DryRun"), "not a recognised");
}

#[test]
fn dry_run_variable_can_only_turn_the_config_json_dry() {
    let cj = format!(r#"{{"MicrosoftTenants":[{T1}],"DryRun":"false"}}"#);
    let c = ok(&[(CONFIG_JSON, &cj), (DRY_RUN, "true")]);
    assert!(c.dry_run);
    assert_eq!(c.dry_run_origin.as_deref(), Some(DRY_RUN));
    let cj = format!(r#"{{"MicrosoftTenants":[{T1}],"DryRun":"true"}}"#);
    let c = ok(&[(CONFIG_JSON, &cj), (DRY_RUN, "false")]);
    assert!(
        c.dry_run,
        "a false variable never turns a dry run into a real one"
    );
}

// ----- UpdateExisting -----

#[test]
fn update_existing_top_level_and_per_tenant() {
    let t2 = r#"{"TenantId":"t2","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t2","UpdateExisting":"yes"}"#;
    let cj = format!(r#"{{"MicrosoftTenants":[{T1},{t2}],"UpdateExisting":false}}"#);
    let c = ok(&[(CONFIG_JSON, &cj)]);
    assert!(!c.tenants[0].update_existing, "top level applies");
    assert!(c.tenants[1].update_existing, "per tenant wins");
    let e = err(&[(
        TENANTS_JSON,
        r#"[{"TenantId":"t2","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t2","UpdateExisting":"maybe"}]"#,
    )]);
    assert_has(&e, TENANTS_JSON, Some("UpdateExisting"), "maybe");
}

// ----- test users -----

#[test]
fn test_user_list_by_tenant_key_order_and_case() {
    let tenant = r#"{"TenantId":"11111111-0000-0000-0000-000000000000","PrimaryDomain":"contoso.com","TenantDomain":"contoso.onmicrosoft.com","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@contoso.com"}"#;
    // TenantDomain and PrimaryDomain both present: PrimaryDomain is looked up first.
    let map = r#"{"CONTOSO.ONMICROSOFT.COM":["by-tenant-domain@contoso.com"],"Contoso.COM":["by-primary@contoso.com"]}"#;
    let c = ok(&[
        (TENANTS_JSON, &format!("[{tenant}]")),
        (TEST_USERS_JSON, map),
    ]);
    assert_eq!(
        c.tenants[0].test_users,
        Some(vec!["by-primary@contoso.com".to_owned()])
    );
    // TenantId beats both.
    let map = r#"{"contoso.com":["p@c"],"11111111-0000-0000-0000-000000000000":["id@c"]}"#;
    let c = ok(&[
        (TENANTS_JSON, &format!("[{tenant}]")),
        (TEST_USERS_JSON, map),
    ]);
    assert_eq!(c.tenants[0].test_users, Some(vec!["id@c".to_owned()]));
    // Only TenantDomain matches.
    let map = r#"{"contoso.onmicrosoft.com":"only@c"}"#;
    let c = ok(&[
        (TENANTS_JSON, &format!("[{tenant}]")),
        (TEST_USERS_JSON, map),
    ]);
    assert_eq!(c.tenants[0].test_users, Some(vec!["only@c".to_owned()]));
    assert!(
        c.tenants[0]
            .test_users_origin
            .as_deref()
            .unwrap()
            .contains(TEST_USERS_JSON)
    );
}

#[test]
fn first_entry_wins_among_keys_differing_only_in_case() {
    let map = r#"{"CONTOSO.onmicrosoft.com":["first@c"],"contoso.onmicrosoft.com":["second@c"]}"#;
    let c = ok(&[(TENANTS_JSON, T1), (TEST_USERS_JSON, map)]);
    assert_eq!(c.tenants[0].test_users, Some(vec!["first@c".to_owned()]));
}

#[test]
fn own_test_user_list_beats_the_map_and_empty_own_list_falls_back() {
    let own = r#"{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t","TestUserList":["own@t","OWN@t"," "]}"#;
    let c = ok(&[(TENANTS_JSON, own), (TEST_USERS_JSON, r#"{"t":["map@t"]}"#)]);
    assert_eq!(
        c.tenants[0].test_users,
        Some(vec!["own@t".to_owned()]),
        "own list wins, deduplicated, blanks dropped"
    );
    let empty = r#"{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t","TestUserList":[]}"#;
    let c = ok(&[
        (TENANTS_JSON, empty),
        (TEST_USERS_JSON, r#"{"T":["map@t"]}"#),
    ]);
    assert_eq!(c.tenants[0].test_users, Some(vec!["map@t".to_owned()]));
}

#[test]
fn test_user_variable_overrides_config_json_map() {
    let cj = format!(
        r#"{{"MicrosoftTenants":[{T1}],"TestUserListByTenant":{{"contoso.onmicrosoft.com":["json@c"]}}}}"#
    );
    let c = ok(&[(CONFIG_JSON, &cj)]);
    assert_eq!(c.tenants[0].test_users, Some(vec!["json@c".to_owned()]));
    let c = ok(&[
        (CONFIG_JSON, &cj),
        (TEST_USERS_JSON, r#"{"contoso.onmicrosoft.com":["var@c"]}"#),
    ]);
    assert_eq!(c.tenants[0].test_users, Some(vec!["var@c".to_owned()]));
    // Applies to the single-tenant shape too.
    let c = ok(&[
        (TENANT_ID, "t"),
        (CLIENT_ID, "c"),
        (CLIENT_SECRET, "s"),
        (GAB_USER_ID, "h@t"),
        (TEST_USERS_JSON, r#"{"t":["u@t"]}"#),
    ]);
    assert_eq!(c.tenants[0].test_users, Some(vec!["u@t".to_owned()]));
}

#[test]
fn unmatched_test_user_key_is_a_warning() {
    let c = ok(&[
        (TENANTS_JSON, T1),
        (TEST_USERS_JSON, r#"{"contso.com":["u@c"]}"#),
    ]);
    assert_eq!(c.tenants[0].test_users, None);
    assert!(
        c.warnings.iter().any(|w| w.contains("contso.com")),
        "{:?}",
        c.warnings
    );
}

#[test]
fn bad_test_user_values_are_errors() {
    let e = err(&[(TENANTS_JSON, T1), (TEST_USERS_JSON, r#"["u@c"]"#)]);
    assert_has(&e, TEST_USERS_JSON, None, "must be a JSON object");
    let e = err(&[(TENANTS_JSON, T1), (TEST_USERS_JSON, r#"{"t":[1]}"#)]);
    assert_has(&e, TEST_USERS_JSON, Some("\"t\"[0]"), "found a number");
    let bad = r#"{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t","TestUserList":{"a":1}}"#;
    let e = err(&[(TENANTS_JSON, bad)]);
    assert_has(&e, TENANTS_JSON, Some("TestUserList"), "found an object");
}

// ----- required fields, all problems at once -----

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

// ----- JSON errors -----

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

// ----- credentials -----

#[test]
fn exactly_one_credential() {
    let none = r#"[{"TenantId":"t","ClientId":"c","GlobalAddressBookUserId":"h"}]"#;
    let e = err(&[(TENANTS_JSON, none)]);
    assert_has(&e, TENANTS_JSON, Some("ClientSecret"), "no credential");
    let two = r#"[{"TenantId":"t","ClientId":"c","ClientSecret":"s","ClientAssertionEnv":"TOK","GlobalAddressBookUserId":"h"}]"#;
    let e = err(&[(TENANTS_JSON, two), ("TOK", "jwt")]);
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientSecret, ClientAssertionEnv"),
        "more than one",
    );
}

#[test]
fn federated_credential_from_env() {
    let t = r#"[{"TenantId":"t","ClientId":"c","ClientAssertionEnv":"AZURE_JWT","GlobalAddressBookUserId":"h"}]"#;
    let c = ok(&[(TENANTS_JSON, t), ("AZURE_JWT", "eyJ.x.y")]);
    assert_eq!(
        c.tenants[0].credential,
        CredentialConfig::AssertionEnv("AZURE_JWT".into())
    );
    let e = err(&[(TENANTS_JSON, t)]);
    assert_has(&e, TENANTS_JSON, Some("ClientAssertionEnv"), "id_tokens");
}

#[test]
fn certificate_and_assertion_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("app.pem");
    std::fs::write(
        &good,
        "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\ny\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let cert_only = dir.path().join("cert.pem");
    std::fs::write(&cert_only, "-----BEGIN CERTIFICATE-----\nx\n").unwrap();
    let tenant = |field: &str, path: &std::path::Path| {
        format!(
            r#"[{{"TenantId":"t","ClientId":"c","{field}":{},"GlobalAddressBookUserId":"h"}}]"#,
            serde_json::to_string(&path.display().to_string()).unwrap()
        )
    };
    let c = ok(&[(TENANTS_JSON, &tenant("ClientCertificatePath", &good))]);
    assert_eq!(
        c.tenants[0].credential,
        CredentialConfig::CertificatePath(good.clone())
    );
    let e = err(&[(TENANTS_JSON, &tenant("ClientCertificatePath", &cert_only))]);
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientCertificatePath"),
        "private key",
    );
    let missing = dir.path().join("nope.pem");
    let e = err(&[(TENANTS_JSON, &tenant("ClientCertificatePath", &missing))]);
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientCertificatePath"),
        "cannot read",
    );
    let c = ok(&[(TENANTS_JSON, &tenant("ClientAssertionFile", &good))]);
    assert_eq!(
        c.tenants[0].credential,
        CredentialConfig::AssertionFile(good)
    );
    let e = err(&[(TENANTS_JSON, &tenant("ClientAssertionFile", &missing))]);
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ClientAssertionFile"),
        "does not exist",
    );
}

#[test]
fn secrets_are_redacted_in_debug_output() {
    let c = ok(&[(TENANTS_JSON, T1), ("OTHER", "s3cret-canary")]);
    let dbg = format!("{c:?} {:?}", env(&[(CLIENT_SECRET, "s3cret-canary")]));
    assert!(!dbg.contains("s3cret-canary"), "{dbg}");
    assert!(dbg.contains(graph::secret::REDACTED), "{dbg}");
    assert_eq!(
        Secret::new("s3cret-canary").to_string(),
        graph::secret::REDACTED
    );
}

// ----- clouds and URLs -----

#[test]
fn clouds_and_explicit_urls() {
    let t = |extra: &str| {
        format!(
            r#"[{{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h"{extra}}}]"#
        )
    };
    let c = ok(&[(TENANTS_JSON, &t(r#","Cloud":"usgovdod""#))]);
    assert_eq!(c.tenants[0].cloud, Cloud::UsGovDod);
    assert_eq!(
        c.tenants[0].endpoints.graph.as_str(),
        "https://dod-graph.microsoft.us/"
    );
    assert_eq!(
        c.tenants[0].endpoints.login.as_str(),
        "https://login.microsoftonline.us/"
    );
    let c = ok(&[(TENANTS_JSON, &t(r#","Cloud":"China""#))]);
    assert_eq!(
        c.tenants[0].endpoints.graph.as_str(),
        "https://microsoftgraph.chinacloudapi.cn/"
    );
    let c = ok(&[(
        TENANTS_JSON,
        &t(r#","Cloud":"USGov","GraphUrl":"http://127.0.0.1:8080""#),
    )]);
    assert_eq!(
        c.tenants[0].endpoints.graph.as_str(),
        "http://127.0.0.1:8080/"
    );
    assert_eq!(
        c.tenants[0].endpoints.login.as_str(),
        "https://login.microsoftonline.us/"
    );
    let e = err(&[(TENANTS_JSON, &t(r#","Cloud":"Mars""#))]);
    assert_has(&e, TENANTS_JSON, Some("Cloud"), "USGovDoD");
}

#[test]
fn environment_url_overrides_apply_to_every_tenant() {
    let two = format!(
        r#"[{T1},{{"TenantId":"t2","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h","GraphUrl":"https://graph.example.com"}}]"#
    );
    let c = ok(&[
        (TENANTS_JSON, &two),
        (LOGIN_URL, "http://localhost:9000"),
        (GRAPH_URL, "http://[::1]:9000/"),
    ]);
    for t in &c.tenants {
        assert_eq!(t.endpoints.login.as_str(), "http://localhost:9000/");
        assert_eq!(t.endpoints.graph.as_str(), "http://[::1]:9000/");
    }
}

#[test]
fn http_only_to_loopback() {
    for good in [
        "https://graph.microsoft.com",
        "http://127.0.0.1:1234",
        "http://127.0.0.2",
        "http://[::1]:80",
        "http://LOCALHOST:1",
    ] {
        assert!(check_root_url(good).is_ok(), "{good}");
    }
    for (bad, why) in [
        ("http://graph.example.com", "loopback"),
        ("http://10.0.0.1", "loopback"),
        ("ftp://x", "scheme"),
        ("https://user:pw@graph.example.com", "password"),
        ("https://graph.example.com/?a=1", "query"),
        ("not a url", "valid URL"),
    ] {
        let e = check_root_url(bad).unwrap_err();
        assert!(e.contains(why), "{bad}: {e}");
    }
    let e = err(&[(TENANTS_JSON, T1), (LOGIN_URL, "http://login.example.com")]);
    assert_has(&e, LOGIN_URL, None, "loopback");
}

#[test]
fn ca_file_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(
        &ca,
        "-----BEGIN CERTIFICATE-----\nabc\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let c = ok(&[(TENANTS_JSON, T1), (CA_FILE, ca.to_str().unwrap())]);
    assert!(
        c.extra_ca_pem
            .unwrap()
            .starts_with(b"-----BEGIN CERTIFICATE")
    );
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "hello").unwrap();
    let e = err(&[(TENANTS_JSON, T1), (CA_FILE, junk.to_str().unwrap())]);
    assert_has(&e, CA_FILE, None, "no PEM certificate");
    let e = err(&[(TENANTS_JSON, T1), (CA_FILE, "/nonexistent/ca.pem")]);
    assert_has(&e, CA_FILE, None, "cannot read");
}

// ----- --tenant -----

#[test]
fn select_tenants_by_any_key() {
    let two = format!(
        r#"[{T1},{{"TenantId":"2222","PrimaryDomain":"fabrikam.com","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h"}}]"#
    );
    let mut c = ok(&[(TENANTS_JSON, &two)]);
    c.select_tenants(&["FABRIKAM.com".into()]).unwrap();
    assert_eq!(c.tenants.len(), 1);
    assert_eq!(c.tenants[0].tenant_id, "2222");
    let mut c = ok(&[(TENANTS_JSON, &two)]);
    let e = c
        .select_tenants(&["2222".into(), "nope".into()])
        .unwrap_err();
    assert_has(&e, "--tenant", None, "`nope`");
    assert_eq!(c.tenants.len(), 2, "nothing filtered on error");
}
