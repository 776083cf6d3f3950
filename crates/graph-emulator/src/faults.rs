//! The fault plan (crates/graph-emulator/README.md, "Limits and faults"): a list of rules that make
//! chosen Graph requests fail, slow down, lose their connection, or lose their answer after the
//! write was applied, so a client's retry and idempotency logic can be proven against the failures
//! real tenants produce.
//!
//! It is deterministic: for a given plan (including its `seed`) and a given order of requests, the
//! same requests get the same actions, so a failing run can be replayed exactly. Probability rules
//! draw from a hash of `(seed, rule index, match count)`, not from a shared random stream, so one
//! rule's draws never depend on how often other rules matched.
//!
//! This module only *decides*; it must never touch the store, the network or the clock. The
//! server applies the [`FaultAction`] it returns.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// A whole fault plan, the `--faults FILE` / `PUT /_emulator/faults` document (stable format).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FaultPlan {
    /// Seed for the probability rules.
    #[serde(default)]
    pub seed: u64,
    /// Rules, evaluated in order for every request; the first rule that fires wins.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

/// One rule: which requests it matches, when among those it fires, and what it does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase", try_from = "RawRule")]
pub struct FaultRule {
    #[serde(rename = "match", default)]
    pub matcher: RuleMatch,
    /// Fire on the n-th matching request only (1-based, counted per rule).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nth: Option<u64>,
    /// Fire on each matching request with this probability (0..=1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Fire at most this many times.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    pub action: FaultAction,
}

/// The `match` object; every field is optional (absent = any).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleMatch {
    /// HTTP method, case-insensitive; `|` separates alternatives (`"POST|PATCH"`: every write),
    /// so one rule's `nth` can count across methods (the k-th write of a run, for crash-point
    /// enumeration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Path pattern: `*` matches one segment, `**` any rest (zero or more segments). Literal
    /// segments compare case-insensitively, as Graph's URL segments do.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Mailbox: its userPrincipalName or user id, whichever form the request used;
    /// case-insensitive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mailbox: Option<String>,
}

/// When a connection is dropped relative to applying the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum DropWhen {
    /// Close the connection without applying the request.
    Before,
    /// Apply the request, then close the connection without an answer (the ambiguous write).
    After,
}

/// What a firing rule does. JSON forms: `{"status": N, "retryAfter": S?, "afterApply": bool?}`,
/// `{"delayMs": N}`, `{"drop": "before"|"after"}`, `{"expireToken": true}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawAction", into = "RawAction")]
pub enum FaultAction {
    /// Answer with this status in Graph's error envelope. With `after_apply`, the request is
    /// applied first (the write happened, the client sees a failure).
    Status {
        status: u16,
        retry_after: Option<f64>,
        after_apply: bool,
    },
    /// Add this much service time, then handle the request normally.
    Delay { delay_ms: u64 },
    /// Close the connection without any response.
    Drop(DropWhen),
    /// Expire the presented access token now; this and later requests with it get 401.
    ExpireToken,
}

/// Statuses a fault may answer with: the throttling and server errors Graph produces
/// (docs/graph-facts.md §6: 429, 503, 504; 500 and 502 from the gateway).
pub const FAULT_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    retry_after: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_apply: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    drop: Option<DropWhen>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expire_token: Option<bool>,
}

impl TryFrom<RawAction> for FaultAction {
    type Error = String;
    fn try_from(r: RawAction) -> Result<Self, String> {
        let kinds = usize::from(r.status.is_some())
            + usize::from(r.delay_ms.is_some())
            + usize::from(r.drop.is_some())
            + usize::from(r.expire_token.is_some());
        if kinds != 1 {
            return Err("an action needs exactly one of status, delayMs, drop, expireToken".into());
        }
        if r.status.is_none() && (r.retry_after.is_some() || r.after_apply.is_some()) {
            return Err("retryAfter and afterApply go with status".into());
        }
        if let Some(status) = r.status {
            if !FAULT_STATUSES.contains(&status) {
                return Err(format!("status {status} is not one of {FAULT_STATUSES:?}"));
            }
            if let Some(s) = r.retry_after
                && !(s.is_finite() && s >= 0.0)
            {
                return Err("retryAfter must be a non-negative number of seconds".into());
            }
            return Ok(FaultAction::Status {
                status,
                retry_after: r.retry_after,
                after_apply: r.after_apply.unwrap_or(false),
            });
        }
        if let Some(delay_ms) = r.delay_ms {
            return Ok(FaultAction::Delay { delay_ms });
        }
        if let Some(when) = r.drop {
            return Ok(FaultAction::Drop(when));
        }
        match r.expire_token {
            Some(true) => Ok(FaultAction::ExpireToken),
            _ => Err("expireToken must be true".into()),
        }
    }
}

impl From<FaultAction> for RawAction {
    fn from(a: FaultAction) -> Self {
        let mut r = RawAction {
            status: None,
            retry_after: None,
            after_apply: None,
            delay_ms: None,
            drop: None,
            expire_token: None,
        };
        match a {
            FaultAction::Status {
                status,
                retry_after,
                after_apply,
            } => {
                r.status = Some(status);
                r.retry_after = retry_after;
                r.after_apply = after_apply.then_some(true);
            }
            FaultAction::Delay { delay_ms } => r.delay_ms = Some(delay_ms),
            FaultAction::Drop(w) => r.drop = Some(w),
            FaultAction::ExpireToken => r.expire_token = Some(true),
        }
        r
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    #[serde(rename = "match", default)]
    matcher: RuleMatch,
    nth: Option<u64>,
    probability: Option<f64>,
    times: Option<u64>,
    action: FaultAction,
}

impl TryFrom<RawRule> for FaultRule {
    type Error = String;
    fn try_from(r: RawRule) -> Result<Self, String> {
        if r.nth.is_some() && r.probability.is_some() {
            return Err("a rule has either nth or probability, not both".into());
        }
        if r.nth == Some(0) {
            return Err("nth is 1-based".into());
        }
        if let Some(p) = r.probability
            && !(0.0..=1.0).contains(&p)
        {
            return Err("probability must be within 0..=1".into());
        }
        Ok(FaultRule {
            matcher: r.matcher,
            nth: r.nth,
            probability: r.probability,
            times: r.times,
            action: r.action,
        })
    }
}

/// What the matcher looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct FaultRequest<'a> {
    pub method: &'a str,
    /// Path without query string, e.g. `/v1.0/users/adele@contoso.com/contacts`.
    pub path: &'a str,
    /// The mailbox the request addresses: its userPrincipalName when known.
    pub mailbox: Option<&'a str>,
    /// Other names the same mailbox goes by (e.g. its id), also matched against `match.mailbox`.
    pub mailbox_aliases: &'a [&'a str],
}

impl RuleMatch {
    /// Whether this request matches.
    pub fn matches(&self, req: &FaultRequest<'_>) -> bool {
        if let Some(m) = &self.method
            && !m
                .split('|')
                .any(|m| m.trim().eq_ignore_ascii_case(req.method))
        {
            return false;
        }
        if let Some(p) = &self.path
            && !path_matches(p, req.path)
        {
            return false;
        }
        if let Some(want) = &self.mailbox {
            let hit = req.mailbox.is_some_and(|m| m.eq_ignore_ascii_case(want))
                || req
                    .mailbox_aliases
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(want));
            if !hit {
                return false;
            }
        }
        true
    }
}

/// Matches `path` against `pattern` segment by segment: `*` is one segment, `**` any rest.
pub fn path_matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.trim_matches('/').split('/').collect();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut i = 0;
    for (k, p) in pat.iter().enumerate() {
        if *p == "**" {
            // `**` means "any rest" and is only meaningful as the last segment; a pattern with
            // `**` in the middle matches nothing rather than something surprising.
            return k + 1 == pat.len();
        }
        let Some(s) = segs.get(i) else { return false };
        if *p != "*" && !p.eq_ignore_ascii_case(s) {
            return false;
        }
        i += 1;
    }
    i == segs.len()
}

#[derive(Debug, Default, Clone)]
struct RuleCounters {
    matched: u64,
    fired: u64,
}

/// A plan plus its per-rule counters: the thing the server consults for every Graph request
/// (and every `$batch` item).
#[derive(Debug, Default)]
pub struct FaultEngine {
    inner: Mutex<EngineInner>,
}

#[derive(Debug, Default)]
struct EngineInner {
    plan: FaultPlan,
    counters: Vec<RuleCounters>,
    fired_total: u64,
}

impl FaultEngine {
    pub fn new(plan: FaultPlan) -> Self {
        let engine = FaultEngine::default();
        engine.replace(plan);
        engine
    }

    /// Replaces the plan and resets all counters (so a replaced plan replays from its start).
    pub fn replace(&self, plan: FaultPlan) {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.counters = vec![RuleCounters::default(); plan.rules.len()];
        g.plan = plan;
        g.fired_total = 0;
    }

    pub fn plan(&self) -> FaultPlan {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .plan
            .clone()
    }

    /// How many faults fired since the plan was set.
    pub fn fired(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fired_total
    }

    /// Decides the fault for one request. Every rule that matches counts the request (so `nth`
    /// means "the n-th request this rule matched"); the first rule that fires wins and only it
    /// consumes one of its `times`.
    pub fn decide(&self, req: &FaultRequest<'_>) -> Option<FaultAction> {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let EngineInner {
            plan,
            counters,
            fired_total,
        } = &mut *g;
        let mut chosen: Option<FaultAction> = None;
        for (idx, rule) in plan.rules.iter().enumerate() {
            if !rule.matcher.matches(req) {
                continue;
            }
            let c = &mut counters[idx];
            c.matched += 1;
            if chosen.is_some() {
                continue;
            }
            if rule.times.is_some_and(|t| c.fired >= t) {
                continue;
            }
            let fires = match (rule.nth, rule.probability) {
                (Some(n), _) => c.matched == n,
                (None, Some(p)) => unit_draw(plan.seed, idx as u64, c.matched) < p,
                (None, None) => true,
            };
            if fires {
                c.fired += 1;
                *fired_total += 1;
                chosen = Some(rule.action.clone());
            }
        }
        chosen
    }
}

/// A uniform draw in [0, 1) from (seed, rule, n) via SplitMix64 finalisers: stable across
/// platforms and crate versions, which a shared RNG would not promise.
fn unit_draw(seed: u64, rule: u64, n: u64) -> f64 {
    let mut x = splitmix(seed ^ splitmix(rule.wrapping_add(0x9E37_79B9_7F4A_7C15)));
    x = splitmix(x ^ n);
    (x >> 11) as f64 / (1u64 << 53) as f64
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Graph's error code and message for a fault status (docs/graph-facts.md §6/§7). 429 uses the
/// documented sample (`TooManyRequests` "Please retry again later."); the 5xx codes follow
/// errors.md's generic codes, their exact wording is \[UNCONF\].
pub fn status_error(status: u16) -> (&'static str, &'static str) {
    match status {
        429 => ("TooManyRequests", "Please retry again later."),
        500 => ("generalException", "An unspecified error has occurred."),
        502 => ("BadGateway", "The gateway received an invalid response."),
        503 => (
            "serviceNotAvailable",
            "The service is temporarily unavailable.",
        ),
        504 => ("GatewayTimeout", "The request timed out."),
        _ => ("generalException", "An unspecified error has occurred."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(method: &'a str, path: &'a str, mailbox: Option<&'a str>) -> FaultRequest<'a> {
        FaultRequest {
            method,
            path,
            mailbox,
            mailbox_aliases: &[],
        }
    }

    #[test]
    fn parses_contract_example() {
        let plan: FaultPlan = serde_json::from_str(
            r#"{"seed": 7,
               "rules": [
                 {"match": {"method": "POST", "path": "/v1.0/users/*/contacts", "mailbox": "adele@contoso.com"},
                  "nth": 3,
                  "action": {"status": 504, "afterApply": true}},
                 {"match": {"path": "/v1.0/users/**"}, "probability": 0.3, "times": 100,
                  "action": {"status": 429, "retryAfter": 1}},
                 {"action": {"delayMs": 20}},
                 {"action": {"drop": "after"}},
                 {"action": {"expireToken": true}}
               ]}"#,
        )
        .unwrap();
        assert_eq!(plan.seed, 7);
        assert_eq!(
            plan.rules[0].action,
            FaultAction::Status {
                status: 504,
                retry_after: None,
                after_apply: true
            }
        );
        assert_eq!(
            plan.rules[1].action,
            FaultAction::Status {
                status: 429,
                retry_after: Some(1.0),
                after_apply: false
            }
        );
        assert_eq!(plan.rules[2].action, FaultAction::Delay { delay_ms: 20 });
        assert_eq!(plan.rules[3].action, FaultAction::Drop(DropWhen::After));
        assert_eq!(plan.rules[4].action, FaultAction::ExpireToken);
        // Round trip through JSON keeps the plan.
        let back: FaultPlan = serde_json::from_value(serde_json::to_value(&plan).unwrap()).unwrap();
        assert_eq!(back, plan);
    }

    #[test]
    fn rejects_bad_plans() {
        for bad in [
            r#"{"rules":[{"action":{"status":429}, "bogus":1}]}"#,
            r#"{"rules":[{"action":{"status":404}}]}"#,
            r#"{"rules":[{"action":{"status":429, "delayMs": 3}}]}"#,
            r#"{"rules":[{"action":{}}]}"#,
            r#"{"rules":[{"action":{"delayMs": 3, "afterApply": true}}]}"#,
            r#"{"rules":[{"nth": 1, "probability": 0.5, "action":{"status":500}}]}"#,
            r#"{"rules":[{"nth": 0, "action":{"status":500}}]}"#,
            r#"{"rules":[{"probability": 1.5, "action":{"status":500}}]}"#,
            r#"{"rules":[{"match":{"verb":"GET"}, "action":{"status":500}}]}"#,
            r#"{"rules":[{"action":{"drop":"sideways"}}]}"#,
            r#"{"rules":[{"action":{"expireToken":false}}]}"#,
            r#"{"seed":1, "extra":true}"#,
        ] {
            assert!(
                serde_json::from_str::<FaultPlan>(bad).is_err(),
                "accepted: {bad}"
            );
        }
    }

    #[test]
    fn method_alternatives_share_one_nth_counter() {
        let plan: FaultPlan = serde_json::from_str(
            r#"{"rules":[{"match":{"method":"post|PATCH"},"nth":2,"action":{"drop":"before"}}]}"#,
        )
        .unwrap();
        let e = FaultEngine::new(plan);
        assert_eq!(e.decide(&req("GET", "/v1.0/users/a/contacts", None)), None);
        assert_eq!(e.decide(&req("POST", "/v1.0/users/a/contacts", None)), None);
        assert_eq!(
            e.decide(&req("PATCH", "/v1.0/users/a/contacts/1", None)),
            Some(FaultAction::Drop(DropWhen::Before)),
            "the second write, whatever its method"
        );
        assert_eq!(
            e.decide(&req("DELETE", "/v1.0/users/a/contacts/1", None)),
            None
        );
    }

    #[test]
    fn path_patterns() {
        assert!(path_matches(
            "/v1.0/users/*/contacts",
            "/v1.0/users/a@b.c/contacts"
        ));
        assert!(path_matches(
            "/v1.0/users/*/contacts",
            "/v1.0/Users/a@b.c/Contacts"
        ));
        assert!(!path_matches(
            "/v1.0/users/*/contacts",
            "/v1.0/users/a@b.c/contacts/x"
        ));
        assert!(!path_matches(
            "/v1.0/users/*/contacts",
            "/v1.0/users/contacts"
        ));
        assert!(path_matches(
            "/v1.0/users/**",
            "/v1.0/users/a/contactFolders/f/contacts"
        ));
        assert!(path_matches("/v1.0/users/**", "/v1.0/users"));
        assert!(!path_matches("/v1.0/users/**", "/v1.0/organization"));
        assert!(path_matches("/v1.0/$batch", "/v1.0/$batch"));
    }

    #[test]
    fn nth_fires_once_on_the_nth_match_only() {
        let engine = FaultEngine::new(
            serde_json::from_str(
                r#"{"rules":[{"match":{"method":"POST","mailbox":"adele@contoso.com"},"nth":3,
                    "action":{"status":504,"afterApply":true}}]}"#,
            )
            .unwrap(),
        );
        let mut fired = vec![];
        for i in 1..=6 {
            // Interleave non-matching requests: they must not advance the count.
            assert_eq!(
                engine.decide(&req("GET", "/v1.0/users/x", Some("adele@contoso.com"))),
                None
            );
            assert_eq!(
                engine.decide(&req("POST", "/v1.0/users/x", Some("bob@contoso.com"))),
                None
            );
            if engine
                .decide(&req("post", "/v1.0/users/x", Some("ADELE@contoso.com")))
                .is_some()
            {
                fired.push(i);
            }
        }
        assert_eq!(fired, vec![3]);
        assert_eq!(engine.fired(), 1);
    }

    #[test]
    fn mailbox_alias_matches() {
        let engine = FaultEngine::new(
            serde_json::from_str(
                r#"{"rules":[{"match":{"mailbox":"id-1"},"action":{"status":500}}]}"#,
            )
            .unwrap(),
        );
        let aliases = ["id-1"];
        let r = FaultRequest {
            method: "GET",
            path: "/v1.0/users/id-1",
            mailbox: Some("a@b.c"),
            mailbox_aliases: &aliases,
        };
        assert!(engine.decide(&r).is_some());
        assert!(engine.decide(&req("GET", "/v1.0/users", None)).is_none());
    }

    #[test]
    fn times_caps_and_first_firing_rule_wins() {
        let engine = FaultEngine::new(
            serde_json::from_str(
                r#"{"rules":[{"times":2,"action":{"status":503}},
                             {"action":{"delayMs":5}}]}"#,
            )
            .unwrap(),
        );
        let got: Vec<_> = (0..4)
            .map(|_| engine.decide(&req("GET", "/v1.0/users", None)))
            .collect();
        let status = Some(FaultAction::Status {
            status: 503,
            retry_after: None,
            after_apply: false,
        });
        let delay = Some(FaultAction::Delay { delay_ms: 5 });
        assert_eq!(got, vec![status.clone(), status, delay.clone(), delay]);
    }

    fn run_probability(seed: u64) -> Vec<bool> {
        let plan: FaultPlan = serde_json::from_str(&format!(
            r#"{{"seed":{seed},"rules":[{{"match":{{"path":"/v1.0/users/**"}},"probability":0.3,
                 "times":100,"action":{{"status":429,"retryAfter":1}}}}]}}"#
        ))
        .unwrap();
        let engine = FaultEngine::new(plan);
        (0..400)
            .map(|i| {
                let path = format!("/v1.0/users/u{}/contacts", i % 7);
                engine.decide(&req("GET", &path, None)).is_some()
            })
            .collect()
    }

    #[test]
    fn probability_is_seeded_deterministic_and_capped() {
        let a = run_probability(7);
        let b = run_probability(7);
        assert_eq!(a, b, "same seed, same order, same decisions");
        let fired = a.iter().filter(|f| **f).count();
        assert_eq!(fired, 100, "0.3 of 400 exceeds the cap of 100");
        let first_200 = a[..200].iter().filter(|f| **f).count();
        assert!(
            (35..=85).contains(&first_200),
            "about 30% of 200, got {first_200}"
        );
        assert_ne!(run_probability(8), a, "another seed, other decisions");
    }

    #[test]
    fn replace_resets_counters() {
        let plan: FaultPlan =
            serde_json::from_str(r#"{"rules":[{"nth":1,"action":{"status":500}}]}"#).unwrap();
        let engine = FaultEngine::new(plan.clone());
        assert!(engine.decide(&req("GET", "/v1.0/users", None)).is_some());
        assert!(engine.decide(&req("GET", "/v1.0/users", None)).is_none());
        engine.replace(plan);
        assert!(engine.decide(&req("GET", "/v1.0/users", None)).is_some());
    }

    #[test]
    fn empty_plan_never_fires() {
        let engine = FaultEngine::default();
        assert!(engine.decide(&req("GET", "/v1.0/users", None)).is_none());
    }
}
