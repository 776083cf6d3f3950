//! Parsers for single configuration values (flags, root URLs, the run's maximum duration and app
//! budget), shared by the variables, the JSON fields and the command line. Each returns the
//! refusal as text for a [`Problem`](super::Problem); none reads a file,
//! and none quotes more of a value than a short, truncated echo (a value may be a secret pasted
//! into the wrong field).

use graph::text::truncate;
use url::Url;

use super::ordered_json::OrderedJson;

/// DryRun / UpdateExisting: a JSON boolean or a string (docs/compatibility.md §1); null means
/// absent.
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

/// `true/1/yes/y` and `false/0/no/n`, trimmed, any case. **FIX** (docs/compatibility.md §1):
/// anything else is an error, not a silent false.
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
/// anywhere, http only to loopback, docs/sync-rules.md §6; no query or fragment) and one more: no
/// path. The client appends `/v1.0/…` and `/{tenant}/oauth2/v2.0/token` to a root, so
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

pub(super) const MAX_RUN_MINUTES_FIX: &str = "give a whole number of minutes, at least 1, e.g. 45 (the default is 50, under GitLab's default job timeout of 60 minutes)";
pub(super) const APP_BUDGET_FIX: &str = "give the requests per 10 seconds this job may send, from 1 to 130000 (Graph's limit per app, the default), e.g. 65000 when two jobs share the app registration";

/// `AUTOMATION_SYNCCONTACTS_MAX_RUN_MINUTES`: whole minutes, at least 1 (0 would end every run at
/// once; there is no "no limit": a CI job always has one).
pub(super) fn parse_minutes(s: &str) -> Result<std::time::Duration, String> {
    match s.trim().parse::<u64>() {
        Ok(m) if (1..=7 * 24 * 60).contains(&m) => Ok(std::time::Duration::from_secs(m * 60)),
        _ => Err(format!(
            "`{}` is not a number of minutes from 1 to 10080",
            truncate(s.trim(), 20)
        )),
    }
}

/// `AUTOMATION_SYNCCONTACTS_APP_BUDGET` and `--app-requests`: requests per 10 s, 1 to Graph's
/// 130,000.
pub fn parse_app_budget(s: &str) -> Result<u32, String> {
    match s.trim().replace(['_', ','], "").parse::<u32>() {
        Ok(n) if (1..=130_000).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{}` is not a number of requests from 1 to 130000",
            truncate(s.trim(), 20)
        )),
    }
}

/// `--max-duration`: a duration with its unit, `45m`, `1h30m`, `90s` (jiff's friendly format, or
/// ISO 8601 `PT45M`), from 1 s to 7 days.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let refused = || {
        format!(
            "`{}` is not a duration like 45m, 1h30m or 90s",
            truncate(s.trim(), 20)
        )
    };
    let d: jiff::SignedDuration = s.trim().parse().map_err(|_| refused())?;
    let d = std::time::Duration::try_from(d).map_err(|_| refused())?;
    if d < std::time::Duration::from_secs(1) || d > std::time::Duration::from_secs(7 * 24 * 3600) {
        return Err(format!(
            "{} must be from 1s to 7 days",
            truncate(s.trim(), 20)
        ));
    }
    Ok(d)
}
