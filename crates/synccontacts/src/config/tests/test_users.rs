//! Test-user scope: own list, the map and its variable, key order and case.

use super::*;

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
