//! Parsers for single configuration values (flags, root URLs), shared by the variables and the JSON
//! fields. Each returns the refusal as text for a [`Problem`](super::Problem); none reads a file,
//! and none quotes more of a value than a short, truncated echo (a value may be a secret pasted
//! into the wrong field).

use graph::text::truncate;
use url::Url;

use super::ordered_json::OrderedJson;

/// DryRun / UpdateExisting: a JSON boolean or a string (SPEC §2.1); null means absent.
pub(super) fn parse_flag(v: &OrderedJson) -> Result<Option<bool>, String> {
    match v {
        OrderedJson::Null => Ok(None),
        OrderedJson::Bool(b) => Ok(Some(*b)),
        OrderedJson::String(s) => parse_flag_str(s).map(Some),
        other => Err(format!(
            "must be true or false (a JSON boolean or string), found {}",
            other.kind()
        )),
    }
}

/// `true/1/yes/y` and `false/0/no/n`, trimmed, any case. **FIX** (SPEC §2.1): anything else is an
/// error, not a silent false.
pub fn parse_flag_str(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" => Ok(true),
        "false" | "0" | "no" | "n" => Ok(false),
        _ => Err(format!(
            "`{}` is not a recognised true/false value",
            truncate(s.trim(), 20)
        )),
    }
}

/// A login or Graph root, checked by the Graph client's own rule (`graph::endpoints::root`: https
/// anywhere, http only to loopback, SPEC §6; no query or fragment) and one more: no path. The
/// client appends `/v1.0/…` and `/{tenant}/oauth2/v2.0/token` to a root, so
/// `https://graph.microsoft.com/v1.0` (a URL users copy from Graph Explorer) would become
/// `…/v1.0/v1.0/…` and fail much later, looking like a credential problem (issue 16). Refusing
/// it here, with the fix, is clearer than guessing which paths to strip. A trailing slash is
/// normalised.
pub fn check_root_url(s: &str) -> Result<Url, String> {
    // The client's refusal quotes the URL; one that carries a password is refused here, unquoted.
    if let Ok(u) = Url::parse(s.trim())
        && (!u.username().is_empty() || u.password().is_some())
    {
        return Err("must not contain a user name or password".into());
    }
    let root = graph::endpoints::root("the URL", s).map_err(|e| e.message)?;
    if root.path() != "/" {
        return Err(format!(
            "`{}` has a path (`{}`): a root URL has none",
            truncate(s.trim(), 80),
            truncate(root.path().trim_end_matches('/'), 40)
        ));
    }
    Ok(root)
}
