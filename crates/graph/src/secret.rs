//! Secret values (client secret, private key, client assertion, access token) and their redaction.
//!
//! A [`Secret`] can only be read through [`Secret::expose`]; its `Debug` prints a fixed marker, it
//! has no `Display` and no `Serialize`, so it cannot leak through `{:?}`, a log field or a report
//! by accident (docs/sync-rules.md §3.6, docs/reliability.md I7). [`Redactor`] scrubs known
//! secret values out of text that came from elsewhere (a server's error body, a transport error)
//! before it is put into a [`crate::GraphError`]. This module must never print a secret itself.

use std::fmt;
use std::sync::{Arc, RwLock};

use base64::Engine as _;

/// The marker printed instead of a secret.
pub const REDACTED: &str = "[REDACTED]";

/// A string that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The raw value, for the one place that must send it (a form field, an `Authorization` header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({REDACTED})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Scrubs every registered secret (raw, URL-encoded and base64-encoded, as docs/reliability.md I7
/// scans for) out of a text. Shared by the client and its token provider; secrets learned at run
/// time (an access token, a federated assertion) are added as they appear.
#[derive(Clone, Default)]
pub struct Redactor {
    needles: Arc<RwLock<Vec<String>>>,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.needles.read().map(|v| v.len()).unwrap_or(0);
        f.debug_struct("Redactor").field("secrets", &n).finish()
    }
}

/// Secrets shorter than this are not scrubbed from free text: a 3-character "secret" would
/// shred ordinary words, and real secrets/tokens are far longer.
const MIN_SCRUB_LEN: usize = 8;

impl Redactor {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secret value; its encoded forms are registered too.
    pub fn add(&self, secret: &Secret) {
        let raw = secret.expose().trim();
        if raw.len() < MIN_SCRUB_LEN {
            return;
        }
        let forms = [
            raw.to_owned(),
            url::form_urlencoded::byte_serialize(raw.as_bytes()).collect::<String>(),
            base64::engine::general_purpose::STANDARD.encode(raw),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
        ];
        if let Ok(mut needles) = self.needles.write() {
            for form in forms {
                if !needles.contains(&form) {
                    needles.push(form);
                }
            }
            // Longest first, so a secret that contains another is replaced whole.
            needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
            // Bound the list: access tokens are refreshed hourly; keep the most recent ones.
            needles.truncate(64);
        }
    }

    /// The text with every registered secret replaced by [`REDACTED`].
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_owned();
        if let Ok(needles) = self.needles.read() {
            for needle in needles.iter() {
                if out.contains(needle.as_str()) {
                    out = out.replace(needle.as_str(), REDACTED);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("canary-ABCDEF-123456");
        let printed = format!("{s:?} {:?}", Some(s.clone()));
        assert!(!printed.contains("canary"), "{printed}");
        assert!(printed.contains(REDACTED));
        assert_eq!(s.expose(), "canary-ABCDEF-123456");
    }

    #[test]
    fn redactor_scrubs_raw_urlencoded_and_base64_forms() {
        let r = Redactor::new();
        let secret = Secret::new("s3cr3t+value/with=chars~");
        r.add(&secret);
        let enc: String =
            url::form_urlencoded::byte_serialize(secret.expose().as_bytes()).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(secret.expose());
        let text = format!("a {} b {enc} c {b64} d", secret.expose());
        let scrubbed = r.scrub(&text);
        assert!(!scrubbed.contains("s3cr3t"), "{scrubbed}");
        assert!(!scrubbed.contains(&b64), "{scrubbed}");
        assert_eq!(scrubbed.matches(REDACTED).count(), 3, "{scrubbed}");
    }

    #[test]
    fn short_values_are_not_scrubbed_from_free_text() {
        let r = Redactor::new();
        r.add(&Secret::new("abc"));
        assert_eq!(r.scrub("abcdef"), "abcdef");
    }
}
