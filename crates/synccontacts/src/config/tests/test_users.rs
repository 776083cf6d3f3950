//! Test-user scope: own list, the map and its variable, key order and case — and test mode
//! failing closed: empty lists, keys that match no tenant, keys resolved by verified domains.

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
        users(&c.tenants[0]),
        Some(vec!["by-primary@contoso.com".to_owned()])
    );
    // TenantId beats both.
    let map = r#"{"contoso.com":["p@c"],"11111111-0000-0000-0000-000000000000":["id@c"]}"#;
    let c = ok(&[
        (TENANTS_JSON, &format!("[{tenant}]")),
        (TEST_USERS_JSON, map),
    ]);
    assert_eq!(users(&c.tenants[0]), Some(vec!["id@c".to_owned()]));
    // Only TenantDomain matches.
    let map = r#"{"contoso.onmicrosoft.com":"only@c"}"#;
    let c = ok(&[
        (TENANTS_JSON, &format!("[{tenant}]")),
        (TEST_USERS_JSON, map),
    ]);
    assert_eq!(users(&c.tenants[0]), Some(vec!["only@c".to_owned()]));
    let UserScope::TestUsers { origin, .. } = &c.tenants[0].scope else {
        panic!("not test mode: {:?}", c.tenants[0].scope);
    };
    assert!(origin.contains(TEST_USERS_JSON), "{origin}");
    assert!(!c.needs_verified_domains());
}

#[test]
fn first_entry_wins_among_keys_differing_only_in_case() {
    let map = r#"{"CONTOSO.onmicrosoft.com":["first@c"],"contoso.onmicrosoft.com":["second@c"]}"#;
    let c = ok(&[(TENANTS_JSON, T1), (TEST_USERS_JSON, map)]);
    assert_eq!(users(&c.tenants[0]), Some(vec!["first@c".to_owned()]));
}

#[test]
fn own_test_user_list_beats_the_map() {
    let own = r#"{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t","TestUserList":["own@t","OWN@t"," "]}"#;
    let c = ok(&[(TENANTS_JSON, own), (TEST_USERS_JSON, r#"{"t":["map@t"]}"#)]);
    assert_eq!(
        users(&c.tenants[0]),
        Some(vec!["own@t".to_owned()]),
        "own list wins, deduplicated, blanks dropped"
    );
}

#[test]
fn an_empty_test_user_list_is_refused_not_read_as_everyone() {
    // The script read an empty list as "not configured", so every user (issue 16).
    for list in ["[]", r#""""#, r#"[" ", ""]"#] {
        let empty = format!(
            r#"{{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t","TestUserList":{list}}}"#
        );
        let e = err(&[(TENANTS_JSON, &empty)]);
        assert_has(
            &e,
            TENANTS_JSON,
            Some("TestUserList"),
            "every licensed user",
        );
        // A map entry for the tenant does not rescue it: the tenant's own field is wrong.
        let e = err(&[
            (TENANTS_JSON, &empty),
            (TEST_USERS_JSON, r#"{"t":["map@t"]}"#),
        ]);
        assert_has(&e, TENANTS_JSON, Some("TestUserList"), "is empty");
    }
    // null means absent, as for every field.
    let null = r#"{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t","TestUserList":null}"#;
    assert_eq!(
        ok(&[(TENANTS_JSON, null)]).tenants[0].scope,
        UserScope::AllLicensedUsers
    );
}

#[test]
fn a_map_key_that_lists_no_users_is_refused() {
    for value in ["[]", "null", r#""""#, r#"[" "]"#] {
        let map = format!(r#"{{"contoso.onmicrosoft.com":{value}}}"#);
        let e = err(&[(TENANTS_JSON, T1), (TEST_USERS_JSON, &map)]);
        assert_has(
            &e,
            TEST_USERS_JSON,
            Some("\"contoso.onmicrosoft.com\""),
            "lists no users",
        );
        assert_eq!(e.problems.len(), 1, "{value}: {e}");
    }
    // A refused item is reported once, not again as "lists no users".
    let e = err(&[(TENANTS_JSON, T1), (TEST_USERS_JSON, r#"{"t":[1]}"#)]);
    assert_eq!(e.problems.len(), 1, "{e}");
}

#[test]
fn test_user_variable_overrides_config_json_map() {
    let cj = format!(
        r#"{{"MicrosoftTenants":[{T1}],"TestUserListByTenant":{{"contoso.onmicrosoft.com":["json@c"]}}}}"#
    );
    let c = ok(&[(CONFIG_JSON, &cj)]);
    assert_eq!(users(&c.tenants[0]), Some(vec!["json@c".to_owned()]));
    let c = ok(&[
        (CONFIG_JSON, &cj),
        (TEST_USERS_JSON, r#"{"contoso.onmicrosoft.com":["var@c"]}"#),
    ]);
    assert_eq!(users(&c.tenants[0]), Some(vec!["var@c".to_owned()]));
    // Applies to the single-tenant shape too.
    let c = ok(&[
        (TENANT_ID, "t"),
        (CLIENT_ID, "c"),
        (CLIENT_SECRET, "s"),
        (GAB_USER_ID, "h@t"),
        (TEST_USERS_JSON, r#"{"t":["u@t"]}"#),
    ]);
    assert_eq!(users(&c.tenants[0]), Some(vec!["u@t".to_owned()]));
}

const GUID_A: &str = r#"{"TenantId":"aaaaaaaa-0000-4000-8000-000000000001","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"hub@contoso.com"}"#;
const GUID_B: &str = r#"{"TenantId":"bbbbbbbb-0000-4000-8000-000000000002","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"hub@fabrikam.com"}"#;

fn domains(names: &[&str]) -> Option<Vec<String>> {
    Some(names.iter().map(|d| (*d).to_owned()).collect())
}

#[test]
fn an_unmatched_key_leaves_the_scope_pending_never_all_users() {
    let c = ok(&[
        (TENANTS_JSON, &format!("[{GUID_A},{GUID_B}]")),
        (
            TEST_USERS_JSON,
            r#"{"contoso.onmicrosoft.com":["adele@contoso.com"]}"#,
        ),
    ]);
    assert!(c.needs_verified_domains());
    for t in &c.tenants {
        assert_eq!(t.scope, UserScope::PendingVerifiedDomains);
        assert_eq!(t.scope.test_users(), None);
    }
    assert_eq!(c.unresolved_test_user_keys.len(), 1);
    assert_eq!(
        c.unresolved_test_user_keys[0].key,
        "contoso.onmicrosoft.com"
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    // A tenant with its own list is decided whatever the map says.
    let own = r#"{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t","TestUserList":["own@t"]}"#;
    let c = ok(&[
        (TENANTS_JSON, &format!("[{GUID_A},{own}]")),
        (TEST_USERS_JSON, r#"{"contoso.com":["u@c"]}"#),
    ]);
    assert_eq!(c.tenants[0].scope, UserScope::PendingVerifiedDomains);
    assert_eq!(users(&c.tenants[1]), Some(vec!["own@t".to_owned()]));
}

#[test]
fn keys_are_resolved_by_verified_domains() {
    let mut c = ok(&[
        (TENANTS_JSON, &format!("[{GUID_A},{GUID_B}]")),
        (
            TEST_USERS_JSON,
            r#"{"CONTOSO.onmicrosoft.com":["adele@contoso.com"]}"#,
        ),
    ]);
    c.resolve_test_user_keys(&[
        domains(&["contoso.com", "contoso.onmicrosoft.com"]),
        domains(&["fabrikam.com", "fabrikam.onmicrosoft.com"]),
    ])
    .unwrap();
    assert_eq!(
        users(&c.tenants[0]),
        Some(vec!["adele@contoso.com".to_owned()])
    );
    assert!(
        c.tenants[0].scope.describe().contains("verified domain"),
        "{}",
        c.tenants[0].scope.describe()
    );
    // The other tenant is named by no key: all its licensed users, as the script did.
    assert_eq!(c.tenants[1].scope, UserScope::AllLicensedUsers);
    assert!(!c.needs_verified_domains());
    assert!(c.unresolved_test_user_keys.is_empty());
}

#[test]
fn a_key_matching_no_verified_domain_is_refused_and_nothing_is_decided() {
    let mut c = ok(&[
        (TENANTS_JSON, &format!("[{GUID_A},{GUID_B}]")),
        (
            TEST_USERS_JSON,
            r#"{"contso.onmicrosoft.com":["adele@contoso.com"]}"#,
        ),
    ]);
    let e = c
        .resolve_test_user_keys(&[
            domains(&["contoso.com", "contoso.onmicrosoft.com"]),
            domains(&["fabrikam.com"]),
        ])
        .unwrap_err();
    assert_eq!(e.problems.len(), 1, "{e}");
    assert_has(
        &e,
        TEST_USERS_JSON,
        Some("\"contso.onmicrosoft.com\""),
        "matches no tenant",
    );
    // The fix lists the domains seen, so the typo is visible.
    assert_has(&e, TEST_USERS_JSON, None, "contoso.onmicrosoft.com");
    assert!(c.tenants.iter().all(|t| t.scope.is_pending()));
    // The verified domains were read to find it: the refusal does not claim nothing was sent.
    let text = e.to_string();
    assert!(
        text.starts_with(
            "configuration error: 1 problem found; nothing was written (only the directory was read"
        ),
        "{text}"
    );
    let stage_one = err(&[(TENANTS_JSON, "[]")]).to_string();
    assert!(
        stage_one.contains("nothing was sent to Microsoft Graph"),
        "{stage_one}"
    );
}

#[test]
fn two_keys_naming_one_tenant_are_refused() {
    let mut c = ok(&[
        (TENANTS_JSON, &format!("[{GUID_A}]")),
        (
            TEST_USERS_JSON,
            r#"{"contoso.com":["a@contoso.com"],"contoso.onmicrosoft.com":["b@contoso.com"]}"#,
        ),
    ]);
    let e = c
        .resolve_test_user_keys(&[domains(&["contoso.com", "contoso.onmicrosoft.com"])])
        .unwrap_err();
    assert!(
        e.problems[0]
            .problem
            .contains("\"contoso.com\" and \"contoso.onmicrosoft.com\""),
        "{e}"
    );
}

/// Fails closed (issue 16): while a key is unmatched and some pending tenant's domains are
/// unknown, the key may be that tenant's — or a typo meant for another pending tenant, which
/// must then not get "all licensed users" either. (Before, A was decided as every user here.)
#[test]
fn a_tenant_whose_domains_are_unknown_stays_pending() {
    let mut c = ok(&[
        (TENANTS_JSON, &format!("[{GUID_A},{GUID_B}]")),
        (
            TEST_USERS_JSON,
            r#"{"contoso.onmicrosoft.com":["adele@contoso.com"]}"#,
        ),
    ]);
    // B's fetch failed: the key may be B's, so it is not refused, and B is not decided; nor is
    // A, which no key matched: the key may be a typo meant for it.
    c.resolve_test_user_keys(&[domains(&["fabrikam-like.com"]), None])
        .unwrap();
    assert_eq!(c.tenants[0].scope, UserScope::PendingVerifiedDomains);
    assert_eq!(c.tenants[1].scope, UserScope::PendingVerifiedDomains);
    assert!(c.needs_verified_domains());
    assert_eq!(c.unresolved_test_user_keys.len(), 1);
}

#[test]
fn once_every_key_found_its_tenant_an_unknown_tenant_does_not_hold_the_others() {
    let guid_c = r#"{"TenantId":"cccccccc-0000-4000-8000-000000000003","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"hub@tailspin.com"}"#;
    let mut c = ok(&[
        (TENANTS_JSON, &format!("[{GUID_A},{GUID_B},{guid_c}]")),
        (
            TEST_USERS_JSON,
            r#"{"contoso.onmicrosoft.com":["adele@contoso.com"]}"#,
        ),
    ]);
    // The key is A's; B's domains are unknown; C is named by no key: all its users (verified
    // domains are unique across tenants, so the key cannot be B's or C's).
    c.resolve_test_user_keys(&[
        domains(&["contoso.onmicrosoft.com"]),
        None,
        domains(&["tailspin.com"]),
    ])
    .unwrap();
    assert_eq!(
        users(&c.tenants[0]),
        Some(vec!["adele@contoso.com".to_owned()])
    );
    assert_eq!(c.tenants[1].scope, UserScope::PendingVerifiedDomains);
    assert_eq!(c.tenants[2].scope, UserScope::AllLicensedUsers);
    assert!(c.unresolved_test_user_keys.is_empty());
}

#[test]
fn a_key_no_tenant_can_take_is_refused_in_stage_two() {
    // The only tenant is decided by its TenantId key; the typo can never apply.
    let e = err(&[
        (TENANTS_JSON, T1),
        (
            TEST_USERS_JSON,
            r#"{"contoso.onmicrosoft.com":["u@c"],"contso.com":["u@c"]}"#,
        ),
    ]);
    assert_has(
        &e,
        TEST_USERS_JSON,
        Some("\"contso.com\""),
        "matches no tenant",
    );
    assert_eq!(e.problems.len(), 1, "{e}");
}

#[test]
fn a_key_for_a_tenant_left_out_by_the_tenant_option_says_so() {
    let mut c = ok(&[
        (TENANTS_JSON, &format!("[{GUID_A},{GUID_B}]")),
        (
            TEST_USERS_JSON,
            r#"{"contoso.onmicrosoft.com":["adele@contoso.com"]}"#,
        ),
    ]);
    c.select_tenants(&["bbbbbbbb-0000-4000-8000-000000000002".to_owned()])
        .unwrap();
    assert!(c.needs_verified_domains());
    let e = c
        .resolve_test_user_keys(&[domains(&["fabrikam.com"])])
        .unwrap_err();
    assert_has(&e, TEST_USERS_JSON, None, "left out by --tenant");
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
