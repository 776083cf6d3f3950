//! `graph-emulator env`: the environment a synccontacts run needs to use an emulator serving a
//! given scenario, as shell lines (`export NAME='value'`, ready for `eval`).
//!
//! This is the only place that knows synccontacts' variable names (the single-tenant form of
//! its configuration, plus the login/Graph roots and the CA file). It belongs to the binary,
//! never to the library, and it only reads the scenario it is given.

use std::path::Path;

use graph_emulator::Scenario;
use graph_emulator::scenario::{Tenant, User};

const PREFIX: &str = "AUTOMATION_SYNCCONTACTS_";

/// Which emulator, and which tenant/app/hub of its scenario, the lines describe.
pub struct Target<'a> {
    /// The emulator's root URL (`http://127.0.0.1:PORT`).
    pub url: &'a str,
    /// The CA an `https` emulator's certificate chains to.
    pub ca_file: Option<&'a Path>,
    pub tenant: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub hub: Option<&'a str>,
}

/// Why no lines could be made; the message says what to pass.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct EnvError(String);

/// The `export` lines, in a fixed order.
pub fn lines(scenario: &Scenario, target: &Target<'_>) -> Result<Vec<String>, EnvError> {
    let url = target.url.trim_end_matches('/');
    let scheme_ok = url.starts_with("http://") || url.starts_with("https://");
    if !scheme_ok || url.matches('/').count() != 2 {
        return Err(EnvError(format!(
            "--url must be the emulator's root as `serve` printed it (http(s)://HOST:PORT, no path), not {url:?}"
        )));
    }
    if url.starts_with("https://") && target.ca_file.is_none() {
        return Err(EnvError(
            "an https emulator needs --ca-file (the file `serve --tls --ca-out` wrote)".into(),
        ));
    }
    let tenant = pick_tenant(scenario, target.tenant)?;
    let app = match target.client_id {
        Some(id) => tenant
            .apps
            .iter()
            .find(|a| a.client_id.eq_ignore_ascii_case(id))
            .ok_or_else(|| EnvError(format!("tenant {} has no app {id}", tenant.tenant_id)))?,
        None => tenant
            .apps
            .iter()
            .find(|a| a.client_secret.is_some())
            .ok_or_else(|| {
                EnvError(format!(
                    "tenant {} has no app with a client secret; pass --client-id",
                    tenant.tenant_id
                ))
            })?,
    };
    let secret = app.client_secret.as_deref().ok_or_else(|| {
        EnvError(format!(
            "app {} has no client secret (certificate and federated credentials are set up by hand)",
            app.client_id
        ))
    })?;
    let hub = pick_hub(tenant, target.hub)?;
    let mut vars = vec![
        ("TENANT_ID", tenant.tenant_id.clone()),
        ("CLIENT_ID", app.client_id.clone()),
        ("CLIENT_SECRET", secret.to_owned()),
        (
            "GLOBAL_ADDRESS_BOOK_USER_ID",
            hub.user_principal_name.clone(),
        ),
        // The emulator is both the login and the Graph host.
        ("LOGIN_URL", url.to_owned()),
        ("GRAPH_URL", url.to_owned()),
    ];
    if let Some(ca) = target.ca_file {
        vars.push(("CA_FILE", ca.display().to_string()));
    }
    Ok(vars
        .into_iter()
        .map(|(name, value)| format!("export {PREFIX}{name}={}", sh_quote(&value)))
        .collect())
}

fn pick_tenant<'s>(scenario: &'s Scenario, wanted: Option<&str>) -> Result<&'s Tenant, EnvError> {
    match wanted {
        None => scenario
            .tenants
            .first()
            .ok_or_else(|| EnvError("the scenario has no tenant".into())),
        Some(w) => scenario
            .tenants
            .iter()
            .find(|t| {
                t.tenant_id.eq_ignore_ascii_case(w)
                    || t.domains.iter().any(|d| d.id.eq_ignore_ascii_case(w))
            })
            .ok_or_else(|| EnvError(format!("the scenario has no tenant {w}"))),
    }
}

fn pick_hub<'s>(tenant: &'s Tenant, wanted: Option<&str>) -> Result<&'s User, EnvError> {
    if let Some(w) = wanted {
        return tenant
            .users
            .iter()
            .find(|u| u.user_principal_name.eq_ignore_ascii_case(w))
            .ok_or_else(|| EnvError(format!("tenant {} has no user {w}", tenant.tenant_id)));
    }
    tenant
        .users
        .iter()
        .find(|u| {
            u.has_mailbox()
                && u.user_principal_name
                    .split('@')
                    .next()
                    .is_some_and(|l| l.eq_ignore_ascii_case("hub"))
        })
        .or_else(|| {
            tenant
                .users
                .iter()
                .find(|u| u.has_mailbox() && u.assigned_licenses.is_empty())
        })
        .ok_or_else(|| {
            EnvError(format!(
                "tenant {} has no hub@… user nor an unlicensed mailbox; pass --hub",
                tenant.tenant_id
            ))
        })
}

/// POSIX single-quoting.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario() -> Scenario {
        graph_emulator::generate(&graph_emulator::GenerateOptions::default())
    }

    #[test]
    fn lines_for_a_generated_scenario() {
        let s = scenario();
        let t = &s.tenants[0];
        let lines = lines(
            &s,
            &Target {
                url: "http://127.0.0.1:8080/",
                ca_file: None,
                tenant: None,
                client_id: None,
                hub: None,
            },
        )
        .unwrap();
        assert_eq!(
            lines,
            vec![
                format!("export AUTOMATION_SYNCCONTACTS_TENANT_ID='{}'", t.tenant_id),
                format!(
                    "export AUTOMATION_SYNCCONTACTS_CLIENT_ID='{}'",
                    t.apps[0].client_id
                ),
                format!(
                    "export AUTOMATION_SYNCCONTACTS_CLIENT_SECRET='{}'",
                    t.apps[0].client_secret.as_deref().unwrap()
                ),
                "export AUTOMATION_SYNCCONTACTS_GLOBAL_ADDRESS_BOOK_USER_ID='hub@contoso.com'"
                    .to_owned(),
                "export AUTOMATION_SYNCCONTACTS_LOGIN_URL='http://127.0.0.1:8080'".to_owned(),
                "export AUTOMATION_SYNCCONTACTS_GRAPH_URL='http://127.0.0.1:8080'".to_owned(),
            ]
        );
    }

    #[test]
    fn https_needs_the_ca_and_urls_must_be_roots() {
        let s = scenario();
        let mut t = Target {
            url: "https://127.0.0.1:8443",
            ca_file: None,
            tenant: None,
            client_id: None,
            hub: None,
        };
        assert!(lines(&s, &t).unwrap_err().to_string().contains("--ca-file"));
        let ca = Path::new("/tmp/it's ca.pem");
        t.ca_file = Some(ca);
        let l = lines(&s, &t).unwrap();
        assert_eq!(
            l.last().unwrap(),
            r"export AUTOMATION_SYNCCONTACTS_CA_FILE='/tmp/it'\''s ca.pem'"
        );
        t.url = "https://127.0.0.1:8443/v1.0";
        assert!(lines(&s, &t).unwrap_err().to_string().contains("no path"));
        t.url = "https://127.0.0.1:8443";
        t.hub = Some("nobody@contoso.com");
        assert!(lines(&s, &t).unwrap_err().to_string().contains("no user"));
        t.hub = None;
        t.tenant = Some("contoso.com");
        assert!(lines(&s, &t).is_ok(), "a tenant by domain");
    }
}
