//! A tenant's validated configuration → its Graph client: endpoints, credential (a federated
//! token read at every token request, from a file or the environment snapshot), CA, batching.
//!
//! Every client is built before the first request of any tenant (I6). This module reads no
//! process environment (a `ClientAssertionEnv` token comes from the snapshot the configuration
//! was read from) and never puts a secret into a message.

use graph::pacing::RequestBudget;
use graph::{AssertionSource, ClientConfig, GraphClient, GraphError, Secret};

use super::RunEnv;
use crate::config::{Config, ConfigError, CredentialConfig, Env, Problem, TenantConfig};

/// HTTP requests in flight across all mailboxes (a `$batch` counts once): enough for
/// `apply::WRITE_PARALLELISM` mailboxes with one batch each.
const GLOBAL_CONCURRENCY: usize = 256;

/// Builds a client configuration from a validated tenant (the seam between our config types and
/// the client's). `vars` is the environment snapshot the configuration was read from: a
/// `ClientAssertionEnv` token is read from it, never from the process.
pub fn client_config(
    config: &Config,
    t: &TenantConfig,
    env: &RunEnv,
    vars: &Env,
) -> Result<ClientConfig, GraphError> {
    let endpoints = graph::Endpoints::new(t.endpoints.login.as_str(), t.endpoints.graph.as_str())?;
    let mut cc = ClientConfig::new(
        &t.tenant_id,
        &t.client_id,
        credential(&t.credential, vars),
        endpoints,
    );
    cc.extra_ca_pem = config.extra_ca_pem.clone();
    cc.clock = env.clock.clone();
    cc.batch_writes = config.batch_writes;
    cc.global_concurrency = GLOBAL_CONCURRENCY;
    cc.user_agent = crate::version::user_agent();
    // One stop and one app budget per process: every tenant's client stops at once, and all
    // tenants of the run (one app registration) share Graph's budget per app.
    cc.stop = env.stop.client_signal();
    cc.app_budgets = env.app_budgets.clone();
    if let Some(requests) = config.app_budget {
        cc.app_budget = RequestBudget {
            requests,
            ..RequestBudget::default()
        };
    }
    Ok(cc)
}

/// The client's credential. A federated token is asked for at every token request: a
/// `ClientAssertionFile` is read again each time (the CI runner may rotate it), a
/// `ClientAssertionEnv` comes from the environment snapshot `vars`.
fn credential(c: &CredentialConfig, vars: &Env) -> graph::Credential {
    match c {
        CredentialConfig::Secret(s) => graph::Credential::Secret(s.clone()),
        CredentialConfig::CertificatePath(p) => graph::Credential::CertificatePem(p.clone()),
        CredentialConfig::AssertionFile(p) => {
            let path = p.clone();
            federated(format!("file {}", p.display()), move || {
                std::fs::read_to_string(&path).map_err(|e| {
                    format!(
                        "cannot read the federated token file {}: {e}",
                        path.display()
                    )
                })
            })
        }
        CredentialConfig::AssertionEnv(name) => {
            let value = vars.get(name).map(Secret::new);
            federated(format!("environment variable {name}"), move || {
                Ok(value
                    .as_ref()
                    .map(|v| v.expose().to_owned())
                    .unwrap_or_default())
            })
        }
    }
}

/// A federated credential whose missing or empty token is explained in CI terms.
fn federated(
    source: String,
    read: impl Fn() -> Result<String, String> + Send + Sync + 'static,
) -> graph::Credential {
    let what = source.clone();
    graph::Credential::Federated(AssertionSource::new(source, move || {
        let token = read()?;
        if token.trim().is_empty() {
            return Err(format!(
                "the federated token {what} is empty or missing; in GitLab CI declare it under id_tokens with aud api://AzureADTokenExchange"
            ));
        }
        Ok(Secret::new(token))
    }))
}

/// Builds every tenant's client up front: a certificate that does not load is a configuration
/// error of that tenant, found before anything is requested from any tenant (I6).
pub fn build_clients(
    config: &Config,
    env: &RunEnv,
    vars: &Env,
) -> Result<Vec<GraphClient>, ConfigError> {
    let mut problems = Vec::new();
    let mut clients = Vec::new();
    for t in &config.tenants {
        match client_config(config, t, env, vars).and_then(GraphClient::new) {
            Ok(c) => clients.push(c),
            Err(e) => problems.push(Problem {
                variable: t.origin.clone(),
                tenant: Some(format!("tenant {}", t.label())),
                field: Some(t.credential.field().to_owned()),
                problem: e.message.clone(),
                fix: "fix the credential or URL named above".into(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(clients)
    } else {
        Err(ConfigError {
            problems,
            read_directory: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use graph::ErrorKind;

    use super::*;

    fn federated_source(c: graph::Credential) -> AssertionSource {
        match c {
            graph::Credential::Federated(source) => source,
            other => panic!("not federated: {other:?}"),
        }
    }

    /// The token of `ClientAssertionEnv` comes from the injected snapshot, not the process
    /// environment (hermetic), and a missing one is explained in CI terms.
    #[test]
    fn an_assertion_variable_is_read_from_the_environment_snapshot() {
        let name = "SYNCCONTACTS_TEST_SNAPSHOT_ONLY_JWT";
        let vars: Env = [(name, "header.payload.sig")].into_iter().collect();
        let c = credential(&CredentialConfig::AssertionEnv(name.into()), &vars);
        assert!(format!("{c:?}").contains(name));
        assert_eq!(
            federated_source(c).read().unwrap().expose(),
            "header.payload.sig"
        );

        for vars in [Env::default(), [(name, " \n")].into_iter().collect()] {
            let source = federated_source(credential(
                &CredentialConfig::AssertionEnv(name.into()),
                &vars,
            ));
            let e = source.read().unwrap_err();
            assert!(e.contains(name), "{e}");
            assert!(e.contains("id_tokens"), "{e}");
        }
    }

    #[tokio::test]
    async fn a_missing_assertion_variable_fails_the_token_without_a_request() {
        let name = "SYNCCONTACTS_TEST_SURELY_UNSET_VAR";
        // Port 9 (discard) on loopback: a request would be a transport error, not an auth one.
        let endpoints = graph::Endpoints::new("http://127.0.0.1:9", "http://127.0.0.1:9").unwrap();
        let cfg = ClientConfig::new(
            "contoso.com",
            "app-1",
            credential(
                &CredentialConfig::AssertionEnv(name.into()),
                &Env::default(),
            ),
            endpoints,
        );
        let client = GraphClient::new(cfg).unwrap();
        let e = client.token().await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Auth, "{e}");
        assert!(e.message.contains(name), "{e}");
        assert_eq!(client.stats().token_requests, 0);
    }

    /// Issue 16: one stop and one app budget for every tenant's client; the budget lowered by
    /// `AUTOMATION_SYNCCONTACTS_APP_BUDGET`.
    #[test]
    fn every_client_shares_the_run_s_stop_and_app_budget() {
        let tenant = |id: &str| {
            format!(
                r#"{{"TenantId":"{id}","ClientId":"6731de76-14a6-49ae-97bc-6eba6914391e","ClientSecret":"s","GlobalAddressBookUserId":"h@t"}}"#
            )
        };
        let vars: Env = [
            (
                crate::config::TENANTS_JSON,
                format!("[{},{}]", tenant("t1"), tenant("t2")),
            ),
            (crate::config::APP_BUDGET, "65000".to_owned()),
        ]
        .into_iter()
        .collect();
        let config = crate::config::load(&vars).unwrap();
        let env = RunEnv::default();
        let cc = client_config(&config, &config.tenants[0], &env, &vars).unwrap();
        assert_eq!(cc.app_budget.requests, 65_000);
        assert_eq!(cc.app_budget.per, std::time::Duration::from_secs(10));
        assert!(!cc.stop.is_stopped());
        env.stop
            .stop(crate::stop::StopCause::Signal(crate::stop::Signal::Term));
        assert!(cc.stop.is_stopped(), "the client's stop is the run's");
        build_clients(&config, &env, &vars).unwrap();
        // Both tenants are one app: one pacer.
        assert_eq!(format!("{:?}", env.app_budgets), "AppBudgets { apps: 1 }");
    }

    #[test]
    fn an_assertion_file_is_read_again_at_each_token_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id_token");
        std::fs::write(&path, "token-one").unwrap();
        let source = federated_source(credential(
            &CredentialConfig::AssertionFile(path.clone()),
            &Env::default(),
        ));
        assert_eq!(source.read().unwrap().expose(), "token-one");
        std::fs::write(&path, "token-two").unwrap();
        assert_eq!(source.read().unwrap().expose(), "token-two");
        std::fs::write(&path, "").unwrap();
        let e = source.read().unwrap_err();
        assert!(e.contains("id_token") && e.contains("empty"), "{e}");
        std::fs::remove_file(&path).unwrap();
        let e = source.read().unwrap_err();
        assert!(e.contains("cannot read the federated token file"), "{e}");
    }
}
