//! Where the client talks to: login and Graph roots per national cloud, or explicit roots.
//!
//! Both are *roots* (docs/sync-rules.md §6): the client appends `/{tenant}/oauth2/v2.0/token` and
//! `/v1.0/…` and asks for the scope `<graph root>/.default`. Plain `http://` is refused unless the
//! host is a loopback address, so a bearer token or a client secret never crosses a network in
//! clear text. This module only builds and validates URLs; it must never make a request.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use url::Url;

use crate::error::GraphError;

/// A Microsoft cloud (docs/graph-facts.md §8 table, `MGD: concepts/deployments.md`). Tokens are not
/// interchangeable across clouds, so login and Graph hosts always come as a pair.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Cloud {
    /// Global, including GCC.
    #[default]
    Global,
    /// US Government L4 (GCC High).
    UsGov,
    /// US Government L5 (DoD).
    UsGovDod,
    /// China, operated by 21Vianet.
    China,
}

impl Cloud {
    /// `(login root, graph root)`.
    pub fn roots(self) -> (&'static str, &'static str) {
        match self {
            Cloud::Global => (
                "https://login.microsoftonline.com",
                "https://graph.microsoft.com",
            ),
            Cloud::UsGov => (
                "https://login.microsoftonline.us",
                "https://graph.microsoft.us",
            ),
            Cloud::UsGovDod => (
                "https://login.microsoftonline.us",
                "https://dod-graph.microsoft.us",
            ),
            Cloud::China => (
                "https://login.chinacloudapi.cn",
                "https://microsoftgraph.chinacloudapi.cn",
            ),
        }
    }

    /// The configuration spelling (docs/sync-rules.md §6 `Cloud`).
    pub fn name(self) -> &'static str {
        match self {
            Cloud::Global => "Global",
            Cloud::UsGov => "USGov",
            Cloud::UsGovDod => "USGovDoD",
            Cloud::China => "China",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Cloud {
    type Err = GraphError;

    /// Accepts the docs/sync-rules.md §6 names case-insensitively (`Global`, `USGov`, `USGovDoD`,
    /// `China`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "global" | "" => Ok(Cloud::Global),
            "usgov" => Ok(Cloud::UsGov),
            "usgovdod" => Ok(Cloud::UsGovDod),
            "china" => Ok(Cloud::China),
            _ => Err(GraphError::config(format!(
                "unknown cloud '{s}': use one of Global, USGov, USGovDoD, China (or give explicit login and Graph roots)"
            ))),
        }
    }
}

/// Login and Graph roots, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    /// e.g. `https://login.microsoftonline.com/` (always ends with `/`, no query).
    pub login: Url,
    /// e.g. `https://graph.microsoft.com/` (always ends with `/`, no query).
    pub graph: Url,
}

impl Endpoints {
    pub fn for_cloud(cloud: Cloud) -> Self {
        let (login, graph) = cloud.roots();
        // The table above holds valid https URLs; parsing cannot fail.
        Self {
            login: Url::parse(&format!("{login}/")).unwrap(),
            graph: Url::parse(&format!("{graph}/")).unwrap(),
        }
    }

    /// Explicit roots (a caller's own settings, or a test server's address).
    pub fn new(login: &str, graph: &str) -> Result<Self, GraphError> {
        Ok(Self {
            login: root("login URL", login)?,
            graph: root("Graph URL", graph)?,
        })
    }

    /// `<login>/<tenant>/oauth2/v2.0/token` — also the `aud` of a client assertion
    /// (docs/graph-facts.md §8).
    pub fn token_url(&self, tenant: &str) -> Result<Url, GraphError> {
        let mut u = self.login.clone();
        u.path_segments_mut()
            .map_err(|()| GraphError::config("login URL cannot have a path appended"))?
            .pop_if_empty()
            .extend([tenant, "oauth2", "v2.0", "token"]);
        Ok(u)
    }

    /// `<graph root>/.default` (docs/graph-facts.md §8: one resource, `/.default`).
    pub fn scope(&self) -> String {
        format!("{}/.default", self.graph.as_str().trim_end_matches('/'))
    }

    /// `<graph root>/v1.0` + `path_and_query` (which starts with `/`, already encoded).
    pub fn graph_url(&self, path_and_query: &str) -> Result<Url, GraphError> {
        let base = self.graph.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/v1.0{path_and_query}"))
            .map_err(|e| GraphError::config(format!("bad Graph URL for {path_and_query}: {e}")))
    }

    /// Whether `url` (an `@odata.nextLink`) points at our Graph root: the bearer token is only
    /// ever sent there.
    pub fn is_graph_origin(&self, url: &Url) -> bool {
        url.origin() == self.graph.origin()
    }
}

/// One login or Graph root checked against the rule above (https, or http to loopback; a host; no
/// query, fragment or credentials), ending in `/`. `what` names it in the error. Public so the
/// binary's configuration check applies this rule instead of a copy of it.
pub fn root(what: &str, raw: &str) -> Result<Url, GraphError> {
    let raw = raw.trim();
    let mut u = Url::parse(raw)
        .map_err(|e| GraphError::config(format!("{what} '{raw}' is not a valid URL: {e}")))?;
    match u.scheme() {
        "https" => {}
        "http" => {
            if !is_loopback_host(&u) {
                return Err(GraphError::config(format!(
                    "{what} '{raw}' uses plain http to a non-loopback host; use https (http is allowed only for 127.0.0.1, ::1 or localhost)"
                )));
            }
        }
        other => {
            return Err(GraphError::config(format!(
                "{what} '{raw}' has scheme '{other}'; use https"
            )));
        }
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(GraphError::config(format!("{what} '{raw}' has no host")));
    }
    if u.query().is_some()
        || u.fragment().is_some()
        || !u.username().is_empty()
        || u.password().is_some()
    {
        return Err(GraphError::config(format!(
            "{what} '{raw}' must be a plain root like https://graph.microsoft.com (no query, fragment or credentials)"
        )));
    }
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    Ok(u)
}

/// Loopback: `127.0.0.0/8`, `::1`, or the reserved name `localhost` (RFC 6761 §6.3) — the only
/// hosts plain http may reach (docs/sync-rules.md §6).
pub fn is_loopback_host(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn cloud_table_matches_graph_facts() {
        let e = Endpoints::for_cloud(Cloud::UsGovDod);
        assert_eq!(e.graph.as_str(), "https://dod-graph.microsoft.us/");
        assert_eq!(e.login.as_str(), "https://login.microsoftonline.us/");
        assert_eq!(e.scope(), "https://dod-graph.microsoft.us/.default");
        let c = Endpoints::for_cloud(Cloud::China);
        assert_eq!(
            c.scope(),
            "https://microsoftgraph.chinacloudapi.cn/.default"
        );
        let g = Endpoints::for_cloud(Cloud::Global);
        assert_eq!(
            g.token_url("contoso.onmicrosoft.com").unwrap().as_str(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        assert_eq!(
            g.graph_url("/users?$top=999").unwrap().as_str(),
            "https://graph.microsoft.com/v1.0/users?$top=999"
        );
    }

    #[test]
    fn cloud_names_parse_case_insensitively() {
        assert_eq!("usgovdod".parse::<Cloud>().unwrap(), Cloud::UsGovDod);
        assert_eq!("USGov".parse::<Cloud>().unwrap(), Cloud::UsGov);
        assert_eq!("China".parse::<Cloud>().unwrap(), Cloud::China);
        assert_eq!("Mars".parse::<Cloud>().unwrap_err().kind, ErrorKind::Config);
    }

    #[test]
    fn http_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3",
            "http://[::1]:9000/",
            "http://localhost:1234",
            "https://graph.example.com",
        ] {
            Endpoints::new(ok, ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "http://graph.microsoft.com",
            "http://10.0.0.1",
            "http://127.0.0.1.evil.com",
            "ftp://127.0.0.1",
            "https://graph.microsoft.com/?x=1",
            "https://user:pw@graph.microsoft.com",
            "not a url",
        ] {
            let err = Endpoints::new("https://login.microsoftonline.com", bad).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn explicit_roots_with_paths_keep_them() {
        let e = Endpoints::new("http://127.0.0.1:5/login", "http://127.0.0.1:5").unwrap();
        assert_eq!(
            e.token_url("t1").unwrap().as_str(),
            "http://127.0.0.1:5/login/t1/oauth2/v2.0/token"
        );
        assert_eq!(e.scope(), "http://127.0.0.1:5/.default");
        assert_eq!(
            e.graph_url("/users").unwrap().as_str(),
            "http://127.0.0.1:5/v1.0/users"
        );
    }

    #[test]
    fn next_links_must_stay_on_the_graph_origin() {
        let e = Endpoints::for_cloud(Cloud::Global);
        assert!(e.is_graph_origin(
            &Url::parse("https://graph.microsoft.com/v1.0/users?$skiptoken=x").unwrap()
        ));
        assert!(!e.is_graph_origin(&Url::parse("https://evil.example/v1.0/users").unwrap()));
        assert!(!e.is_graph_origin(&Url::parse("http://graph.microsoft.com/v1.0/users").unwrap()));
    }
}
