//! DryRun and UpdateExisting: the accepted spellings, where each may be given, and typos refused.

use super::*;

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

#[test]
fn update_existing_top_level_and_per_tenant() {
    let t2 = r#"{"TenantId":"t2","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t2","UpdateExisting":"yes"}"#;
    let cj = format!(r#"{{"MicrosoftTenants":[{T1},{t2}],"UpdateExisting":false}}"#);
    let c = ok(&[(CONFIG_JSON, &cj)]);
    assert!(!c.tenants[0].options.update_existing, "top level applies");
    assert!(c.tenants[1].options.update_existing, "per tenant wins");
    let e = err(&[(
        TENANTS_JSON,
        r#"[{"TenantId":"t2","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t2","UpdateExisting":"maybe"}]"#,
    )]);
    assert_has(&e, TENANTS_JSON, Some("UpdateExisting"), "maybe");
}

#[test]
fn fields_add_to_the_default_set_top_level_and_per_tenant_and_unknown_names_are_refused() {
    use sync_engine::{Field, FieldSet};
    let t2 = r#"{"TenantId":"t2","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t2","Fields":"all"}"#;
    let cj = format!(r#"{{"MicrosoftTenants":[{T1},{t2}],"Fields":["birthday","HomeAddress"]}}"#);
    let c = ok(&[(CONFIG_JSON, &cj)]);
    let top = c.tenants[0].options.fields;
    assert_eq!(top.len(), 14, "the twelve and the two named: {top:?}");
    assert!(top.contains(Field::Birthday) && top.contains(Field::HomeAddress));
    assert_eq!(
        c.tenants[1].options.fields,
        FieldSet::ALL,
        "per tenant wins"
    );
    let c = ok(&[(CONFIG_JSON, &format!(r#"{{"MicrosoftTenants":[{T1}]}}"#))]);
    assert_eq!(c.tenants[0].options.fields, FieldSet::DEFAULT);
    let e = err(&[(
        TENANTS_JSON,
        r#"[{"TenantId":"t2","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t2","Fields":["birthday","phones","fileAs"]}]"#,
    )]);
    assert_has(
        &e,
        TENANTS_JSON,
        Some("Fields"),
        "`phones`, `fileAs` are not",
    );
    assert_has(&e, TENANTS_JSON, Some("Fields"), "yomiSurname");
}
