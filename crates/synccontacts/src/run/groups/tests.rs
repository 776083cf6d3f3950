//! The rules' order and matching, without Graph: the emulator tests (tests/e2e/scope_e2e.rs)
//! drive the same code through the binary.

use super::*;

fn user(id: &str, upn: Option<&str>) -> User {
    User {
        id: id.into(),
        user_principal_name: upn.map(Into::into),
        mail: upn.map(Into::into),
    }
}

const ADELE: &str = "11111111-1111-4111-8111-111111111111";
const MEGAN: &str = "22222222-2222-4222-8222-222222222222";
const CAROL: &str = "33333333-3333-4333-8333-333333333333";
const DAVE: &str = "44444444-4444-4444-8444-444444444444";
const HUB: &str = "99999999-9999-4999-8999-999999999999";

fn licensed() -> Vec<User> {
    vec![
        user(ADELE, Some("adele@contoso.com")),
        user(MEGAN, Some("megan@contoso.com")),
        user(CAROL, Some("carol@contoso.com")),
        user(DAVE, Some("dave@contoso.com")),
        user(HUB, Some("hub@contoso.com")),
    ]
}

fn group(named: &str, users: Vec<User>) -> RuleGroup {
    RuleGroup {
        named: named.into(),
        id: named.into(),
        display_name: None,
        users,
    }
}

fn is_hub(u: &str) -> bool {
    u.eq_ignore_ascii_case("hub@contoso.com") || u.eq_ignore_ascii_case(HUB)
}

fn scoped(rules: Option<&ResolvedRules>) -> Scoped {
    let candidates = licensed().iter().map(Candidate::licensed).collect();
    apply("licensed users", candidates, rules, is_hub)
}

#[test]
fn the_rules_apply_in_the_documented_order_and_exclusion_wins() {
    let rules = ResolvedRules {
        // Carol is in an included group and in an excluded one: she is out.
        include: Some(vec![
            group("sales", vec![user(ADELE, None), user(CAROL, None)]),
            group("emea", vec![user(MEGAN, Some("megan@contoso.com"))]),
        ]),
        exclude: vec![group("board", vec![user(CAROL, Some("carol@contoso.com"))])],
        // By UPN in another case: Adele is out.
        exclude_users: vec!["ADELE@Contoso.com".into()],
        test_users: Vec::new(),
    };
    let s = scoped(Some(&rules));
    assert_eq!(s.users, vec!["megan@contoso.com"]);
    assert_eq!(
        s.counts(),
        "licensed users 5; ∩ IncludeGroups (2 groups, 3 users) → 3; \
         − ExcludeGroups (1 group, 1 user) → 2; − ExcludeUsers (1) → 1"
    );
}

#[test]
fn without_rules_only_the_hub_leaves() {
    let s = scoped(None);
    assert_eq!(
        s.users,
        vec![
            "adele@contoso.com",
            "carol@contoso.com",
            "dave@contoso.com",
            "megan@contoso.com"
        ]
    );
    assert_eq!(s.counts(), "licensed users 5; − the hub → 4");
}

#[test]
fn users_are_matched_by_object_id_in_any_case_and_members_known_only_by_id() {
    // Members read without User.Read.All carry only their id; an id in ExcludeUsers in upper case.
    let rules = ResolvedRules {
        include: Some(vec![group(
            "g",
            vec![user(ADELE, None), user(DAVE, None), user(HUB, None)],
        )]),
        exclude_users: vec![DAVE.to_ascii_uppercase()],
        ..ResolvedRules::default()
    };
    let s = scoped(Some(&rules));
    assert_eq!(s.users, vec!["adele@contoso.com"]);
    assert_eq!(s.steps.last(), Some(&("− the hub".to_owned(), 1)));
}

#[test]
fn test_mode_wins_groups_never_widen_it_and_test_users_match_by_their_entry() {
    // Test users named by UPN and by id; the group's members are known by id only.
    let rules = ResolvedRules {
        include: Some(vec![group(
            "g",
            vec![user(ADELE, None), user(MEGAN, None), user(CAROL, None)],
        )]),
        exclude: vec![group("x", vec![user(MEGAN, None)])],
        exclude_users: Vec::new(),
        test_users: vec![
            (
                "adele@contoso.com".into(),
                Some(user(ADELE, Some("adele@contoso.com"))),
            ),
            (MEGAN.into(), Some(user(MEGAN, Some("megan@contoso.com")))),
            ("dave@contoso.com".into(), Some(user(DAVE, None))),
            ("ghost@contoso.com".into(), None),
        ],
    };
    let names = [
        "adele@contoso.com",
        MEGAN,
        "dave@contoso.com",
        "ghost@contoso.com",
    ];
    let candidates = names
        .iter()
        .map(|n| Candidate::test_user(n, Some(&rules)))
        .collect();
    let s = apply("test users", candidates, Some(&rules), is_hub);
    // Carol is in the group but no test user: not added. Megan is excluded by group.
    assert_eq!(s.users, vec!["adele@contoso.com"]);
    assert_eq!(
        s.counts(),
        "test users 4; ∩ IncludeGroups (1 group, 3 users) → 2; − ExcludeGroups (1 group, 1 user) → 1"
    );
    // ExcludeUsers by UPN reaches a test user the list names by id.
    let rules = ResolvedRules {
        exclude_users: vec!["Megan@contoso.com".into()],
        ..rules
    };
    let rules = ResolvedRules {
        include: None,
        exclude: Vec::new(),
        ..rules
    };
    let candidates = names
        .iter()
        .map(|n| Candidate::test_user(n, Some(&rules)))
        .collect();
    let s = apply("test users", candidates, Some(&rules), is_hub);
    assert_eq!(
        s.users,
        vec!["adele@contoso.com", "dave@contoso.com", "ghost@contoso.com"]
    );
}

#[test]
fn the_same_user_twice_counts_once() {
    let mut users = licensed();
    users.push(user(ADELE, Some("ADELE@contoso.com")));
    let candidates = users.iter().map(Candidate::licensed).collect();
    let s = apply("licensed users", candidates, None, is_hub);
    assert_eq!(s.steps[0], ("licensed users".to_owned(), 5));
}

#[test]
fn a_tenant_with_rules_is_never_read_as_if_it_had_none() {
    let env: crate::config::Env = [(
        crate::config::TENANTS_JSON,
        r#"[{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t","ExcludeUsers":["a@t"]}]"#,
    )]
    .into_iter()
    .collect();
    let t = crate::config::load(&env).unwrap().tenants.remove(0);
    let f = Resolution::None.rules_for(&t).unwrap_err();
    assert_eq!(f.class, Class::Configuration);
    let unknown = Resolution::Unknown(Vec::new()).rules_for(&t).unwrap_err();
    assert_eq!(unknown.class, Class::Configuration);
    let none = crate::config::load(
        &[(
            crate::config::TENANTS_JSON,
            r#"[{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h@t"}]"#,
        )]
        .into_iter()
        .collect(),
    )
    .unwrap()
    .tenants
    .remove(0);
    assert_eq!(Resolution::None.rules_for(&none), Ok(None));
}

#[test]
fn unknown_groups_of_every_tenant_refuse_the_run_together() {
    let p = |g: &str| Problem {
        variable: "V".into(),
        tenant: None,
        field: Some("IncludeGroups".into()),
        problem: format!("\"{g}\" is not a group of this tenant"),
        fix: UNKNOWN_GROUP_FIX.into(),
    };
    assert!(
        refusal(&[
            Resolution::None,
            Resolution::Resolved(ResolvedRules::default())
        ])
        .is_none()
    );
    let e = refusal(&[
        Resolution::Unknown(vec![p("a@t")]),
        Resolution::None,
        Resolution::Unknown(vec![p("b@t"), p("c@t")]),
    ])
    .unwrap();
    assert_eq!(e.problems.len(), 3);
}
