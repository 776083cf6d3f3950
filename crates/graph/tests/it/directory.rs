//! Directory reads against the scripted mock: the organization's verified domains, groups by id
//! or mail address, transitive user members (advanced query headers on every page), and the
//! errors a caller branches on (an unknown group, a missing group permission).

use std::sync::{Arc, Mutex};

use graph::{ErrorKind, GraphClient, Group, Secret, User, VirtualClock};
use serde_json::json;

use crate::mock::{Answer, Mock, Seen, pass};
use crate::mock_client::{SECRET, config};

const GROUP: &str = "02bd9fd6-8f93-4758-87c3-1fb73740a315";
const DENIED: &str = "4d0ef681-e88f-42a3-a2db-e6bf1e249e10";

async fn mock(
    clock: &Arc<VirtualClock>,
    script: impl Fn(&Seen, &str) -> Answer + Send + Sync + 'static,
) -> (Mock, GraphClient) {
    let base = Arc::new(Mutex::new(String::new()));
    let b = base.clone();
    let m = Mock::start(clock.clone(), 3599, move |s, _| {
        if s.is_token() {
            pass()
        } else {
            script(s, &b.lock().unwrap())
        }
    })
    .await;
    *base.lock().unwrap() = m.url.clone();
    let c = GraphClient::new(config(
        &m.url,
        clock.clone(),
        graph::Credential::Secret(Secret::new(SECRET)),
    ))
    .unwrap();
    (m, c)
}

#[tokio::test]
async fn verified_domains_come_from_the_organization() {
    let clock = Arc::new(VirtualClock::default());
    let (m, c) = mock(&clock, |_, _| {
        Answer::json(
            200,
            json!({"value": [{"id": "t-1", "verifiedDomains": [
                {"capabilities": "Email, OfficeCommunicationsOnline", "isDefault": true,
                 "isInitial": false, "name": "contoso.com", "type": "Managed"},
                {"capabilities": "Email", "isDefault": false, "isInitial": true,
                 "name": "contoso.onmicrosoft.com", "type": "Managed"}]}]}),
        )
    })
    .await;
    let d = c.verified_domains().await.unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].name, "contoso.com");
    assert!(d[0].is_default && !d[0].is_initial);
    assert!(d[1].is_initial);
    assert_eq!(d[1].kind.as_deref(), Some("Managed"));
    assert_eq!(
        m.graph_requests()[0].uri,
        "/v1.0/organization?$select=verifiedDomains"
    );

    // Without the permission: a Permission error that names the one needed.
    let (_m, c) = mock(&clock, |_, _| {
        Answer::error(403, "Authorization_RequestDenied")
    })
    .await;
    let e = c.verified_domains().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permission);
    assert!(e.message.contains("Organization.Read.All"), "{e}");
}

#[tokio::test]
async fn a_group_by_id_or_by_mail_and_the_errors_a_caller_branches_on() {
    let clock = Arc::new(VirtualClock::default());
    let (m, c) = mock(&clock, |s, _| {
        let p = s.path();
        if p == format!("/v1.0/groups/{GROUP}") {
            Answer::json(
                200,
                json!({"id": GROUP, "displayName": "Sales", "mail": "sales@contoso.com"}),
            )
        } else if p == "/v1.0/groups" && s.uri.contains("sales@contoso.com") {
            Answer::json(
                200,
                json!({"value": [{"id": GROUP, "displayName": "Sales",
                                                "mail": "sales@contoso.com"}]}),
            )
        } else if p == "/v1.0/groups" {
            Answer::json(200, json!({"value": []}))
        } else if p.starts_with(&format!("/v1.0/groups/{DENIED}")) {
            Answer::error(403, "Authorization_RequestDenied")
        } else {
            Answer::error(404, "Request_ResourceNotFound")
        }
    })
    .await;
    let want = Group {
        id: GROUP.into(),
        display_name: Some("Sales".into()),
        mail: Some("sales@contoso.com".into()),
    };
    assert_eq!(c.group_by_id_or_mail(GROUP).await.unwrap(), want);
    assert_eq!(
        c.group_by_id_or_mail("sales@contoso.com").await.unwrap(),
        want
    );
    let e = c
        .group_by_id_or_mail("11111111-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    let e = c
        .group_by_id_or_mail("nobody@contoso.com")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("nobody@contoso.com"), "{e}");
    let sent = m.graph_requests().len();
    let e = c.group_by_id_or_mail("Sales Team").await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
    assert!(e.message.contains("neither a group object id"), "{e}");
    assert_eq!(m.graph_requests().len(), sent, "not sent");
    let e = c.group_by_id_or_mail(DENIED).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permission);
    assert!(e.message.contains("GroupMember.Read.All"), "{e}");
    assert!(!e.message.contains("User.Read.All"), "{e}");
    let uris: Vec<_> = m.graph_requests().into_iter().map(|s| s.uri).collect();
    assert_eq!(
        uris[0],
        format!("/v1.0/groups/{GROUP}?$select=id,displayName,mail")
    );
    assert_eq!(
        uris[1],
        "/v1.0/groups?$filter=mail%20eq%20%27sales@contoso.com%27&$select=id,displayName,mail"
    );
}

#[tokio::test]
async fn transitive_users_page_with_the_advanced_query_headers_on_every_page() {
    let clock = Arc::new(VirtualClock::default());
    let (m, c) = mock(&clock, |s, base| {
        if s.uri.contains("$skiptoken=p2") {
            Answer::json(200, json!({"value": [
                {"@odata.type": "#microsoft.graph.user", "id": "u3", "userPrincipalName": "c@x"}]}))
        } else {
            Answer::json(
                200,
                json!({"@odata.count": 3, "value": [
                    {"@odata.type": "#microsoft.graph.user", "id": "u1", "userPrincipalName": "a@x"},
                    {"@odata.type": "#microsoft.graph.user", "id": "u2", "userPrincipalName": "b@x", "mail": "b@x"}],
                    "@odata.nextLink": format!(
                        "{base}/v1.0/groups/{GROUP}/transitiveMembers/microsoft.graph.user?$skiptoken=p2")}),
            )
        }
    })
    .await;
    let users: Vec<User> = c
        .group_transitive_users(GROUP, "id,userPrincipalName,mail")
        .await
        .unwrap();
    let keys: Vec<_> = users.iter().map(User::key).collect();
    assert_eq!(keys, ["a@x", "b@x", "c@x"]);
    let g = m.graph_requests();
    assert_eq!(g.len(), 2);
    assert_eq!(
        g[0].uri,
        format!(
            "/v1.0/groups/{GROUP}/transitiveMembers/microsoft.graph.user\
             ?$select=id,userPrincipalName,mail&$count=true&$top=999"
        )
    );
    for s in &g {
        assert_eq!(s.header("consistencylevel"), Some("eventual"), "{}", s.uri);
    }

    // A group that does not exist, and one the app may not read.
    let (_m, c) = mock(&clock, |s, _| {
        if s.path().contains("/groups/gone/") {
            Answer::error(404, "Request_ResourceNotFound")
        } else {
            Answer::error(403, "Authorization_RequestDenied")
        }
    })
    .await;
    let e = c
        .group_transitive_users::<User>("gone", "id")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    let e = c
        .group_transitive_users::<User>("secret", "id")
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Permission);
    assert!(e.message.contains("GroupMember.Read.All"), "{e}");
}
