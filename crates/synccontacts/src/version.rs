//! Who this binary is: its version, the commit it was built from (stamped by `build.rs`), the
//! `--version` line and the User-Agent every Graph request carries.
//!
//! Constants and pure functions only; it must never read the environment at run time (the commit
//! is fixed at build time, so two runs of one binary always identify the same way).

/// The crate version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The short commit hash the binary was built from, or `unknown` (see `build.rs`).
pub const COMMIT: &str = env!("SYNCCONTACTS_COMMIT_ID");

/// What `synccontacts --version` prints after the program name: `0.1.0 (commit 1a2b3c4d)`.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SYNCCONTACTS_COMMIT_ID"),
    ")"
);

/// The `User-Agent` for every request to Microsoft Graph and the identity platform:
/// `ISV|synccontacts|synccontacts/0.1.0 (commit 1a2b3c4d)`.
///
/// Microsoft asks callers to "decorate" their traffic so it can be told apart, and prioritised over
/// undecorated traffic, when the service throttles: `ISV|CompanyName|AppName/Version` for software
/// vendors' applications, `NONISV|CompanyName|AppName/Version` for an enterprise's own, in RFC 2616
/// product syntax, and "it is also fine to append" to that string. That format is published in
/// SharePoint Online's throttling guidance (learn.microsoft.com,
/// sharepoint/dev/general-development/how-to-avoid-getting-throttled-or-blocked-in-sharepoint-online,
/// "How to decorate your HTTP traffic"); Graph's own throttling guidance (learn.microsoft.com,
/// graph/throttling) names no User-Agent format, so we follow the one Microsoft documents.
/// synccontacts is distributed to many organisations, so it is an ISV application; the project is
/// its own "company". The commit goes in an RFC 2616 comment, so a request log tells builds apart.
pub fn user_agent() -> String {
    format!("ISV|synccontacts|synccontacts/{VERSION} (commit {COMMIT})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_follows_the_decoration_format() {
        let ua = user_agent();
        let product = ua.split(' ').next().unwrap();
        let parts: Vec<&str> = product.split('|').collect();
        assert_eq!(parts.len(), 3, "{ua}");
        assert_eq!(parts[0], "ISV");
        assert_eq!(parts[1], "synccontacts");
        assert_eq!(
            parts[2],
            format!("synccontacts/{}", env!("CARGO_PKG_VERSION"))
        );
        assert!(ua.ends_with(&format!("(commit {COMMIT})")), "{ua}");
        // A header value: visible ASCII and spaces only, or reqwest refuses it.
        assert!(ua.chars().all(|c| c == ' ' || c.is_ascii_graphic()), "{ua}");
    }

    #[test]
    fn commit_is_a_short_hash_or_unknown() {
        assert!(
            COMMIT == "unknown"
                || (!COMMIT.is_empty()
                    && COMMIT
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.+".contains(c))),
            "{COMMIT}"
        );
        assert!(VERSION_LINE.starts_with(VERSION));
        assert!(VERSION_LINE.contains(COMMIT));
    }
}
