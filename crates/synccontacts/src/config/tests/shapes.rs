//! Every shape of docs/compatibility.md §1 and which one wins; `--tenant` selection.

use super::*;

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
    assert!(t.options.update_existing);
    assert_eq!(t.scope, UserScope::AllLicensedUsers);
    assert_eq!(t.endpoint_origins, EndpointOrigins::default());
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
    assert_eq!(users(&c.tenants[0]), Some(vec!["a@t1".to_owned()]));
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
