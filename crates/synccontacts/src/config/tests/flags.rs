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
fn delete_settings_default_top_level_and_per_tenant() {
    use sync_engine::plan::{Deletes, UserDeletes};
    let c = ok(&[(CONFIG_JSON, &format!(r#"{{"MicrosoftTenants":[{T1}]}}"#))]);
    let o = &c.tenants[0].options;
    assert_eq!(
        (o.deletes, o.user_deletes, o.max_deletes),
        (Deletes::Hub, UserDeletes::Restore, None),
        "the defaults"
    );
    let t2 = r#"{"TenantId":"t2","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t2","Deletes":"hub","userdeletes":"Restore","MaxDeletes":"25"}"#;
    let cj = format!(
        r#"{{"MicrosoftTenants":[{T1},{t2}],"Deletes":"OFF","UserDeletes":"respect","MaxDeletes":0}}"#
    );
    let c = ok(&[(CONFIG_JSON, &cj)]);
    let (a, b) = (&c.tenants[0].options, &c.tenants[1].options);
    assert_eq!(
        (a.deletes, a.user_deletes, a.max_deletes),
        (Deletes::Off, UserDeletes::Respect, Some(0)),
        "top level applies"
    );
    assert_eq!(
        (b.deletes, b.user_deletes, b.max_deletes),
        (Deletes::Hub, UserDeletes::Restore, Some(25)),
        "per tenant wins"
    );
}

#[test]
fn delete_settings_refuse_what_they_cannot_mean_and_say_what_to_write() {
    let tenant = |extra: &str| {
        format!(
            r#"[{{"TenantId":"t2","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t2",{extra}}}]"#
        )
    };
    for (extra, field, needle, fix) in [
        (r#""Deletes":"all""#, "Deletes", "`all`", r#""off""#),
        (r#""Deletes":true"#, "Deletes", "must be a string", "quotes"),
        (
            r#""UserDeletes":"ignore""#,
            "UserDeletes",
            "`ignore`",
            r#""respect""#,
        ),
        (
            r#""MaxDeletes":-1"#,
            "MaxDeletes",
            "`-1`",
            "whole number ≥ 0",
        ),
        (
            r#""MaxDeletes":2.5"#,
            "MaxDeletes",
            "`2.5`",
            "whole number ≥ 0",
        ),
        (
            r#""MaxDeletes":"ten""#,
            "MaxDeletes",
            "`ten`",
            "whole number ≥ 0",
        ),
        (
            r#""MaxDeletes":[3]"#,
            "MaxDeletes",
            "must be a whole number, found an array",
            "0 holds them all",
        ),
    ] {
        let e = err(&[(TENANTS_JSON, &tenant(extra))]);
        assert_has(&e, TENANTS_JSON, Some(field), needle);
        assert_has(&e, TENANTS_JSON, Some(field), fix);
    }
    // null means absent, as for every field.
    let c = ok(&[(TENANTS_JSON, &tenant(r#""MaxDeletes":null,"Deletes":null"#))]);
    assert_eq!(c.tenants[0].options, TenantOptions::default());
}

/// Issue 16: the run's maximum duration and the app budget, refused like any other value.
#[test]
fn max_run_minutes_and_app_budget() {
    use std::time::Duration;
    let c = ok(&[(TENANTS_JSON, T1)]);
    assert_eq!((c.max_run, c.app_budget), (None, None));
    let c = ok(&[
        (TENANTS_JSON, T1),
        (MAX_RUN_MINUTES, " 45 "),
        (APP_BUDGET, "65,000"),
    ]);
    assert_eq!(c.max_run, Some(Duration::from_secs(45 * 60)));
    assert_eq!(c.app_budget, Some(65_000));
    for bad in ["0", "-5", "45m", "ten", "10081"] {
        let e = err(&[(TENANTS_JSON, T1), (MAX_RUN_MINUTES, bad)]);
        assert_has(&e, MAX_RUN_MINUTES, None, "number of minutes");
        assert_has(&e, MAX_RUN_MINUTES, None, "GitLab");
    }
    for bad in ["0", "130001", "lots"] {
        let e = err(&[(TENANTS_JSON, T1), (APP_BUDGET, bad)]);
        assert_has(&e, APP_BUDGET, None, "130000");
    }
    // --max-duration: a duration with its unit.
    for (v, secs) in [
        ("45m", 45 * 60),
        ("1h30m", 90 * 60),
        ("90s", 90),
        ("PT2H", 7200),
    ] {
        assert_eq!(parse_duration(v), Ok(Duration::from_secs(secs)), "{v}");
    }
    for bad in ["45", "0s", "-5m", "8d", "soon"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
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

#[test]
fn private_categories_default_to_private_are_top_level_or_per_tenant_and_may_be_empty() {
    use sync_engine::PrivateCategories;
    let c = ok(&[(CONFIG_JSON, &format!(r#"{{"MicrosoftTenants":[{T1}]}}"#))]);
    assert_eq!(
        c.tenants[0].options.private_categories,
        PrivateCategories::default()
    );
    assert!(c.tenants[0].options.private_categories.contains("PRIVATE"));
    let t2 = r#"{"TenantId":"t2","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t2","privatecategories":[]}"#;
    let cj = format!(
        r#"{{"MicrosoftTenants":[{T1},{t2}],"PrivateCategories":["Family"," privé ","family"]}}"#
    );
    let c = ok(&[(CONFIG_JSON, &cj)]);
    let top = &c.tenants[0].options.private_categories;
    assert_eq!(top.names(), ["family", "privé"]);
    assert!(!top.contains("Private"), "the list replaces the default");
    assert_eq!(
        c.tenants[1].options.private_categories,
        PrivateCategories::none(),
        "per tenant wins; [] leaves only the flag"
    );
    // One string is a one-item list (PowerShell's ConvertTo-Json); a number is refused.
    let c = ok(&[(
        TENANTS_JSON,
        r#"[{"TenantId":"t2","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t2","PrivateCategories":"Personal"}]"#,
    )]);
    assert_eq!(
        c.tenants[0].options.private_categories.names(),
        ["personal"]
    );
    let e = err(&[(
        TENANTS_JSON,
        r#"[{"TenantId":"t2","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t2","PrivateCategories":7}]"#,
    )]);
    assert_has(
        &e,
        TENANTS_JSON,
        Some("PrivateCategories"),
        "must be an array",
    );
}
