//! IncludeGroups, ExcludeGroups, ExcludeUsers: the shapes accepted and refused in stage one, where
//! they may be given, and `[]` for IncludeGroups failing closed.

use super::*;

const G1: &str = "6a1f5a7e-0000-4000-8000-00000000000a";

fn tenant_with(fields: &str) -> String {
    format!(
        r#"[{{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t",{fields}}}]"#
    )
}

#[test]
fn groups_by_object_id_or_mail_and_users_by_upn_or_id_are_kept_as_written() {
    let c = ok(&[(
        TENANTS_JSON,
        &tenant_with(&format!(
            r#""IncludeGroups":["{G1}","Sales@Contoso.com","sales@contoso.com"],"excludegroups":"board@contoso.com","ExcludeUsers":["CEO@contoso.com","11111111-1111-4111-8111-111111111111"," "]"#
        )),
    )]);
    let r = &c.tenants[0].rules;
    // Duplicates differing in case are one; one string is a one-item list; blanks are dropped.
    assert_eq!(
        r.include_groups,
        Some(vec![G1.to_owned(), "Sales@Contoso.com".to_owned()])
    );
    assert_eq!(r.exclude_groups, vec!["board@contoso.com".to_owned()]);
    assert_eq!(
        r.exclude_users,
        vec![
            "CEO@contoso.com".to_owned(),
            "11111111-1111-4111-8111-111111111111".to_owned()
        ]
    );
    assert!(!r.is_empty());
    // No rules: empty, and the run reads no group.
    assert!(ok(&[(TENANTS_JSON, T1)]).tenants[0].rules.is_empty());
    // An empty exclusion excludes nobody; null is absent.
    let c = ok(&[(
        TENANTS_JSON,
        &tenant_with(r#""ExcludeGroups":[],"ExcludeUsers":null,"IncludeGroups":null"#),
    )]);
    assert!(c.tenants[0].rules.is_empty());
}

#[test]
fn other_shapes_are_refused_each_named_with_what_to_write() {
    let e = err(&[(
        TENANTS_JSON,
        &tenant_with(&format!(
            r#""IncludeGroups":["Sales Team","{{{G1}}}","{G1}"],"ExcludeGroups":["a@b@c"],"ExcludeUsers":["ceo","x @t"]"#
        )),
    )]);
    assert_eq!(e.problems.len(), 3, "{e}");
    assert_has(&e, TENANTS_JSON, Some("IncludeGroups"), "`Sales Team`");
    assert_has(
        &e,
        TENANTS_JSON,
        Some("IncludeGroups"),
        &format!("`{{{G1}}}`"),
    );
    assert_has(
        &e,
        TENANTS_JSON,
        Some("IncludeGroups"),
        "are neither a group object id (a GUID) nor a mail address",
    );
    assert_has(&e, TENANTS_JSON, Some("IncludeGroups"), "Object ID");
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ExcludeGroups"),
        "`a@b@c` is neither",
    );
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ExcludeUsers"),
        "`ceo`, `x @t` are neither a user principal name",
    );
    assert_has(&e, TENANTS_JSON, Some("ExcludeUsers"), "ceo@contoso.com");
    // Not a list of strings.
    let e = err(&[(TENANTS_JSON, &tenant_with(r#""ExcludeGroups":42"#))]);
    assert_has(
        &e,
        TENANTS_JSON,
        Some("ExcludeGroups"),
        "must be an array of groups",
    );
    let e = err(&[(TENANTS_JSON, &tenant_with(r#""ExcludeUsers":[7]"#))]);
    assert_has(&e, TENANTS_JSON, Some("ExcludeUsers[0]"), "found a number");
}

#[test]
fn an_empty_include_list_is_refused_not_read_as_nobody_or_everyone() {
    // `[]`, only blanks, or one blank string (PowerShell's unwrapped one-element array).
    for v in ["[]", "[\" \"]", "\"\""] {
        let fields = format!(r#""IncludeGroups":{v}"#);
        let e = err(&[(TENANTS_JSON, &tenant_with(&fields))]);
        assert_has(&e, TENANTS_JSON, Some("IncludeGroups"), "is empty");
    }
}

#[test]
fn the_rules_are_tenant_fields_only() {
    // Next to MicrosoftTenants the top level may not give them: they name one directory's objects.
    let cj = format!(r#"{{"MicrosoftTenants":[{T1}],"ExcludeGroups":["{G1}"]}}"#);
    let e = err(&[(CONFIG_JSON, &cj)]);
    assert_has(&e, CONFIG_JSON, Some("ExcludeGroups"), "would be ignored");
    // In the older shape the top level is the tenant.
    let older = format!(
        r#"{{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t","IncludeGroups":"{G1}"}}"#
    );
    let c = ok(&[(CONFIG_JSON, &older)]);
    assert_eq!(c.tenants[0].rules.include_groups, Some(vec![G1.to_owned()]));
    // A tenant of the config JSON gives them as any field.
    let cj = r#"{"MicrosoftTenants":[{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t","ExcludeUsers":"ceo@t"}]}"#;
    assert_eq!(
        ok(&[(CONFIG_JSON, cj)]).tenants[0].rules.exclude_users,
        vec!["ceo@t".to_owned()]
    );
}
