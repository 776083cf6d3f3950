//! Delta query for contacts (docs/graph-facts.md §2 "Delta", top-15 #6/#7): rounds of pages linked
//! by `@odata.nextLink` (`$skiptoken`), ending in an `@odata.deltaLink` (`$deltatoken`) from which
//! the next round reports what changed: new and modified contacts, and `@removed` rows for
//! contacts that left the folder.
//!
//! Like Exchange's sync state, the emulator keeps the state server-side: a delta token names a
//! snapshot `{id → changeKey}` of the folder taken when its round started, so no change log is
//! needed and a contact edited during a round shows up again in the next one. `$select` is
//! fixed by the first request and carried in the tokens. Unknown, foreign or expired tokens get
//! 410 `SyncStateNotFound`, as observed from Graph; tokens expired on purpose may instead get
//! the documented "synchronization reset" (410 with a `Location`), see [`ExpiredForm`]. With
//! [`DeltaConfig::replays`] a round repeats the previous round's rows (replays are legal).
//!
//! This module never reads the store or a clock itself: the caller passes the folder's current
//! contents (only when a round starts) and `now` (the emulator's clock, which tests can move).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};

/// Delta configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaConfig {
    /// How long a token (skip or delta) stays valid. Graph gives Outlook tokens no fixed lifetime
    /// (docs/graph-facts.md §2); a day keeps tests deterministic while still expiring.
    pub ttl: Duration,
    /// At most this many tokens are kept; the oldest are evicted first (Outlook evicts old sync
    /// states from its cache, docs/graph-facts.md §2).
    pub max_states: usize,
    /// Page size without `Prefer: odata.maxpagesize` [UNCONF: messages delta uses 10].
    pub default_page: usize,
    /// Largest page honoured: ~200 observed regardless of a larger maxpagesize
    /// (docs/graph-facts.md §3).
    pub max_page: usize,
    /// Replays: every round from a deltaLink first repeats the rows of the round before it.
    /// Graph warns that replays happen ("Your application must be prepared for replays",
    /// delta-query-overview.md); off by default so counts stay exact, on to test a client's
    /// idempotence (`serve --variant delta-replays`).
    pub replays: bool,
}

impl Default for DeltaConfig {
    fn default() -> Self {
        DeltaConfig {
            ttl: Duration::from_secs(24 * 3600),
            max_states: 100_000,
            default_page: 10,
            max_page: 200,
            replays: false,
        }
    }
}

/// Which collection a token belongs to: a mailbox (canonical key, e.g. user id) and a folder
/// (folder id, or the caller's name for the default folder).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeltaScope {
    pub mailbox: String,
    pub folder: String,
}

/// One contact as the store has it now.
#[derive(Debug, Clone)]
pub struct DeltaItem {
    pub id: String,
    pub change_key: String,
    /// The full contact in v1.0 shape (with `id` and `@odata.etag`).
    pub json: Map<String, Value>,
}

/// One page of a round.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaPage {
    pub value: Vec<Value>,
    pub next: DeltaNext,
    /// The page size applied (for `Preference-Applied`).
    pub page_size: usize,
}

/// The link that ends a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaNext {
    /// More pages in this round: `@odata.nextLink` with `$skiptoken`.
    Skip(String),
    /// Round complete: `@odata.deltaLink` with `$deltatoken`.
    Delta(String),
}

impl DeltaPage {
    /// The response body. `link_base` is the absolute URL of the delta function as the client
    /// addressed it (scheme and host from the request, docs/graph-facts.md §2), without query.
    pub fn body(&self, link_base: &str, context: &str) -> Value {
        let mut body = Map::new();
        body.insert("@odata.context".into(), Value::String(context.to_owned()));
        match &self.next {
            DeltaNext::Skip(t) => body.insert(
                "@odata.nextLink".into(),
                Value::String(format!("{link_base}?$skiptoken={t}")),
            ),
            DeltaNext::Delta(t) => body.insert(
                "@odata.deltaLink".into(),
                Value::String(format!("{link_base}?$deltatoken={t}")),
            ),
        };
        body.insert("value".into(), Value::Array(self.value.clone()));
        Value::Object(body)
    }
}

/// The query options a round's first request fixes; later requests carry them in their tokens
/// (contact-delta.md: "you must specify it in the initial delta request").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeltaQuery {
    /// `$select`, parsed.
    pub select: Option<Vec<String>>,
    /// `$expand`, as written (only accepted where the caller allows it).
    pub expand: Option<String>,
}

/// How an expired token is answered (`POST /_emulator/delta/expire` chooses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ExpiredForm {
    /// 410 `SyncStateNotFound`, as observed from Outlook (docs/graph-facts.md §2).
    #[default]
    SyncStateNotFound,
    /// 410 with a `Location` header naming a fresh initial delta request ("synchronization
    /// reset", delta-query-overview.md).
    Reset,
}

/// A delta request's token, from `$skiptoken` or `$deltatoken`.
#[derive(Debug, Clone, Copy)]
pub enum DeltaToken<'a> {
    Skip(&'a str),
    Delta(&'a str),
}

/// Why a delta request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    /// 410 Gone, `SyncStateNotFound` (docs/graph-facts.md §2, MGDold-issue#2350 \[OBS\]).
    #[error("The sync state generation is not found.")]
    SyncStateNotFound,
    /// 410 Gone with a `Location` header: "a request URL with an empty `$deltaToken` (same as
    /// the initial query)" (delta-query-overview.md, "Synchronization reset"). The body uses
    /// errors.md's `resyncRequired` code \[UNCONF\].
    #[error("The delta token is no longer valid, and the app must reset the sync state.")]
    Reset { query: DeltaQuery },
}

impl DeltaError {
    pub fn status(&self) -> u16 {
        410
    }
    pub fn code(&self) -> &'static str {
        match self {
            DeltaError::SyncStateNotFound => "SyncStateNotFound",
            DeltaError::Reset { .. } => "resyncRequired",
        }
    }

    /// The `Location` of a reset: `link_base` (the delta function's absolute URL) with the
    /// round's query options and an empty `$deltatoken`.
    pub fn location(&self, link_base: &str) -> Option<String> {
        let DeltaError::Reset { query } = self else {
            return None;
        };
        let mut url = format!("{link_base}?");
        if let Some(select) = &query.select {
            url.push_str(&format!(
                "$select={}&",
                crate::odata::encode(&select.join(","))
            ));
        }
        if let Some(expand) = &query.expand {
            url.push_str(&format!("$expand={}&", crate::odata::encode(expand)));
        }
        url.push_str("$deltatoken=");
        Some(url)
    }
}

#[derive(Debug)]
struct Round {
    scope: DeltaScope,
    query: DeltaQuery,
    rows: Vec<Value>,
    /// The folder at round start; becomes the delta token's snapshot.
    snapshot: Arc<HashMap<String, String>>,
}

#[derive(Debug, Clone)]
enum State {
    /// Page starting at `offset` of a round. Idempotent: a retried nextLink gets the same page.
    Skip { round: Arc<Round>, offset: usize },
    /// A finished round: the snapshot to diff against next time.
    Delta {
        scope: DeltaScope,
        query: DeltaQuery,
        snapshot: Arc<HashMap<String, String>>,
        /// The finished round's rows, for replays.
        rows: Arc<Vec<Value>>,
    },
}

impl State {
    fn scope_and_query(&self) -> (&DeltaScope, &DeltaQuery) {
        match self {
            State::Skip { round, .. } => (&round.scope, &round.query),
            State::Delta { scope, query, .. } => (scope, query),
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    cfg: DeltaConfig,
    states: HashMap<String, (jiff::Timestamp, State)>,
    order: VecDeque<String>,
    next_id: u64,
    /// Tokens expired with [`ExpiredForm::Reset`]: their next use answers 410 + `Location`.
    reset: HashMap<String, (DeltaScope, DeltaQuery)>,
}

/// All delta sync states of one emulator.
#[derive(Debug, Default)]
pub struct DeltaStore {
    inner: Mutex<Inner>,
}

impl DeltaStore {
    pub fn new(cfg: DeltaConfig) -> Self {
        DeltaStore {
            inner: Mutex::new(Inner {
                cfg,
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The page size for a `Prefer: odata.maxpagesize` value.
    pub fn page_size(&self, prefer_max: Option<usize>) -> usize {
        let g = self.lock();
        prefer_max
            .unwrap_or(g.cfg.default_page)
            .clamp(1, g.cfg.max_page)
    }

    /// Forgets every token: the next use of any of them gets 410 in the given form (tests of
    /// the client's full re-sync path; also `POST /_emulator/delta/expire`).
    pub fn expire_all(&self, form: ExpiredForm) {
        let mut g = self.lock();
        let states = std::mem::take(&mut g.states);
        g.order.clear();
        match form {
            ExpiredForm::SyncStateNotFound => g.reset.clear(),
            ExpiredForm::Reset => {
                let cap = g.cfg.max_states.max(1);
                for (token, (_, st)) in states {
                    if g.reset.len() >= cap {
                        break;
                    }
                    let (scope, query) = st.scope_and_query();
                    let entry = (scope.clone(), query.clone());
                    g.reset.insert(token, entry);
                }
            }
        }
    }

    /// Forgets the tokens (skip and delta) of one mailbox's folders only, keyed as
    /// [`DeltaScope::mailbox`]; every other mailbox's tokens keep working. Their next use gets 410
    /// in the given form (tests of a client that must fall back for that mailbox alone; also
    /// `POST /_emulator/delta/expire` with a `mailbox`). Returns how many tokens it forgot.
    pub fn expire_mailbox(&self, mailbox: &str, form: ExpiredForm) -> usize {
        let mut g = self.lock();
        let gone: Vec<String> = g
            .states
            .iter()
            .filter(|(_, (_, st))| st.scope_and_query().0.mailbox == mailbox)
            .map(|(t, _)| t.clone())
            .collect();
        // An earlier reset-form expiry of this mailbox is superseded, as `expire_all` does.
        g.reset.retain(|_, (scope, _)| scope.mailbox != mailbox);
        for token in &gone {
            let Some((_, st)) = g.states.remove(token) else {
                continue;
            };
            if form == ExpiredForm::Reset && g.reset.len() < g.cfg.max_states.max(1) {
                let (scope, query) = st.scope_and_query();
                let entry = (scope.clone(), query.clone());
                g.reset.insert(token.clone(), entry);
            }
        }
        let Inner { order, states, .. } = &mut *g;
        order.retain(|t| states.contains_key(t));
        gone.len()
    }

    /// A delta request. `token` is `None` for the initial request (then `query` applies);
    /// `current` is called only when a new round starts, with the round's query options (those
    /// the token carries), and returns the folder's contents rendered for them.
    pub fn request(
        &self,
        scope: &DeltaScope,
        token: Option<DeltaToken<'_>>,
        query: DeltaQuery,
        page_size: usize,
        now: jiff::Timestamp,
        current: impl FnOnce(&DeltaQuery) -> Vec<DeltaItem>,
    ) -> Result<DeltaPage, DeltaError> {
        self.request_rendering(scope, token, query, page_size, now, |q, _| current(q))
    }

    /// [`request`](Self::request) where `current` also gets `changed(id, change_key)`: whether
    /// the round reports that contact. Only those need their `json` (an unchanged one's may be
    /// left empty): a round from a delta link then renders what changed, not the whole folder
    /// (a quiet round over 300 contacts was the emulator's main cost in an unchanged run).
    pub fn request_rendering(
        &self,
        scope: &DeltaScope,
        token: Option<DeltaToken<'_>>,
        query: DeltaQuery,
        page_size: usize,
        now: jiff::Timestamp,
        current: impl FnOnce(&DeltaQuery, &dyn Fn(&str, &str) -> bool) -> Vec<DeltaItem>,
    ) -> Result<DeltaPage, DeltaError> {
        let page_size = page_size.max(1);
        let mut g = self.lock();
        let ttl = g.cfg.ttl;
        let replays = g.cfg.replays;
        let lookup = |g: &Inner, t: &str| -> Result<State, DeltaError> {
            match g.states.get(t) {
                Some((created, st)) if age(*created, now) < ttl => Ok(st.clone()),
                _ => match g.reset.get(t) {
                    Some((s, query)) if s == scope => Err(DeltaError::Reset {
                        query: query.clone(),
                    }),
                    _ => Err(DeltaError::SyncStateNotFound),
                },
            }
        };
        let (round, offset) = match token {
            Some(DeltaToken::Skip(t)) => match lookup(&g, t)? {
                State::Skip { round, offset } if round.scope == *scope => (round, offset),
                _ => return Err(DeltaError::SyncStateNotFound),
            },
            Some(DeltaToken::Delta(t)) => match lookup(&g, t)? {
                State::Delta {
                    scope: s,
                    query,
                    snapshot,
                    rows,
                } if s == *scope => {
                    let changed =
                        |id: &str, ck: &str| snapshot.get(id).map(String::as_str) != Some(ck);
                    let items = current(&query, &changed);
                    let mut round = build_round(scope, query, &snapshot, items);
                    if replays {
                        let mut replayed = rows.as_ref().clone();
                        replayed.append(&mut round.rows);
                        round.rows = replayed;
                    }
                    (Arc::new(round), 0)
                }
                _ => return Err(DeltaError::SyncStateNotFound),
            },
            None => {
                let items = current(&query, &|_, _| true);
                (
                    Arc::new(build_round(scope, query, &HashMap::new(), items)),
                    0,
                )
            }
        };
        let end = (offset + page_size).min(round.rows.len());
        let value = round.rows[offset..end].to_vec();
        let next_state = if end < round.rows.len() {
            State::Skip {
                round: round.clone(),
                offset: end,
            }
        } else {
            State::Delta {
                scope: scope.clone(),
                query: round.query.clone(),
                snapshot: round.snapshot.clone(),
                // Kept only to be replayed.
                rows: Arc::new(if replays {
                    round.rows.clone()
                } else {
                    Vec::new()
                }),
            }
        };
        let token = g.insert(next_state.clone(), now);
        let next = match next_state {
            State::Skip { .. } => DeltaNext::Skip(token),
            State::Delta { .. } => DeltaNext::Delta(token),
        };
        Ok(DeltaPage {
            value,
            next,
            page_size,
        })
    }
}

impl Inner {
    fn insert(&mut self, st: State, now: jiff::Timestamp) -> String {
        self.next_id += 1;
        // Opaque, unguessable enough for a local emulator, and unique per emulator.
        let token = format!("{}{:x}", uuid::Uuid::new_v4().simple(), self.next_id);
        self.states.insert(token.clone(), (now, st));
        self.order.push_back(token.clone());
        while self.order.len() > self.cfg.max_states.max(1) {
            if let Some(old) = self.order.pop_front() {
                self.states.remove(&old);
            }
        }
        token
    }
}

/// Time since `created` (zero if the clock went backwards).
fn age(created: jiff::Timestamp, now: jiff::Timestamp) -> Duration {
    let ms = now
        .as_millisecond()
        .saturating_sub(created.as_millisecond());
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn build_round(
    scope: &DeltaScope,
    query: DeltaQuery,
    before: &HashMap<String, String>,
    current: Vec<DeltaItem>,
) -> Round {
    let mut rows = Vec::new();
    let mut snapshot = HashMap::with_capacity(current.len());
    for item in &current {
        if before.get(&item.id) != Some(&item.change_key) {
            rows.push(project(&item.json, query.select.as_deref()));
        }
        snapshot.insert(item.id.clone(), item.change_key.clone());
    }
    let mut removed: Vec<&String> = before
        .keys()
        .filter(|id| !snapshot.contains_key(*id))
        .collect();
    removed.sort();
    for id in removed {
        // Exactly these three members (docs/graph-facts.md §2, delta-query-messages.md).
        rows.push(json!({"@odata.type": "#microsoft.graph.contact", "id": id, "@removed": {"reason": "deleted"}}));
    }
    Round {
        scope: scope.clone(),
        query,
        rows,
        snapshot: Arc::new(snapshot),
    }
}

/// A delta row: `@odata.type`, `@odata.etag`, `id` always (Outlook delta always returns id,
/// docs/graph-facts.md §3), plus the `$select`ed properties (all without `$select`); an `$expand`ed
/// navigation the caller rendered stays whatever the `$select` (OData: `$expand` adds to it).
fn project(contact: &Map<String, Value>, select: Option<&[String]>) -> Value {
    let mut out = Map::new();
    out.insert(
        "@odata.type".into(),
        Value::String("#microsoft.graph.contact".into()),
    );
    for (k, v) in contact {
        let keep = match select {
            None => true,
            Some(sel) => {
                k == "id"
                    || k == "@odata.etag"
                    || k.starts_with("singleValueExtendedProperties")
                    || sel.iter().any(|s| s.eq_ignore_ascii_case(k))
            }
        };
        if keep && k != "@odata.type" {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// Parses `$select=a,b` into names.
pub fn parse_select(select: Option<&str>) -> Option<Vec<String>> {
    select.map(|s| {
        s.split(',')
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .collect()
    })
}

/// Parses a `Prefer` header for `odata.maxpagesize=N`.
pub fn prefer_max_page_size(prefer: Option<&str>) -> Option<usize> {
    prefer?.split(',').find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("odata.maxpagesize")
            .then(|| v.trim().trim_matches('"').parse().ok())?
    })
}

#[cfg(test)]
mod tests;
