//! Clouds, login and Graph roots, the URL variables, and the CA file.

use super::*;

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
fn check_shows_where_each_root_came_from() {
    let t = |extra: &str| {
        format!(
            r#"[{{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h"{extra}}}]"#
        )
    };
    let c = ok(&[(
        TENANTS_JSON,
        &t(r#","GraphUrl":"https://graph.example.com""#),
    )]);
    assert_eq!(
        c.tenants[0].endpoint_origins,
        EndpointOrigins {
            login: None,
            graph: Some("GraphUrl")
        }
    );
    let c = ok(&[
        (
            TENANTS_JSON,
            &t(r#","LoginUrl":"https://login.example.com""#),
        ),
        (LOGIN_URL, "http://127.0.0.1:9"),
    ]);
    assert_eq!(c.tenants[0].endpoint_origins.login, Some(LOGIN_URL));
    assert_eq!(c.tenants[0].endpoints.login.as_str(), "http://127.0.0.1:9/");
}

#[test]
fn a_root_with_a_path_is_refused_with_the_fix() {
    // Graph Explorer's URL: the client would call …/v1.0/v1.0/… and fail as a token problem.
    let e = err(&[
        (TENANTS_JSON, T1),
        (GRAPH_URL, "https://graph.microsoft.com/v1.0"),
    ]);
    assert_has(&e, GRAPH_URL, None, "has a path (`/v1.0`)");
    assert_has(&e, GRAPH_URL, None, "synccontacts appends /v1.0");
    let e = err(&[(
        TENANTS_JSON,
        r#"[{"TenantId":"t","ClientId":"c","ClientSecret":"s","GlobalAddressBookUserId":"h","LoginUrl":"https://login.microsoftonline.com/t/oauth2/v2.0/token","GraphUrl":"http://127.0.0.1:8080/v1.0/"}]"#,
    )]);
    assert_has(&e, TENANTS_JSON, Some("LoginUrl"), "has a path");
    assert_has(
        &e,
        TENANTS_JSON,
        Some("LoginUrl"),
        "https://login.microsoftonline.com (",
    );
    assert_has(&e, TENANTS_JSON, Some("GraphUrl"), "has a path");
    let e = err(&[
        (TENANTS_JSON, T1),
        (LOGIN_URL, "https://login.microsoftonline.com/common"),
    ]);
    assert_has(&e, LOGIN_URL, None, "oauth2/v2.0/token");
    // A trailing slash is not a path.
    let c = ok(&[
        (TENANTS_JSON, T1),
        (GRAPH_URL, "https://graph.microsoft.com/"),
    ]);
    assert_eq!(
        c.tenants[0].endpoints.graph.as_str(),
        "https://graph.microsoft.com/"
    );
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
