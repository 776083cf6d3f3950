//! A JSON value that keeps the order of object keys, for the configuration variables.
//!
//! The script's rules need key order: the test-user map's first matching key wins, and two
//! spellings of one field (`TenantId`, `TenantID`) must both be seen to be compared. serde_json's
//! default map sorts and deduplicates keys, so configuration parses into [`OrderedJson`] instead.
//! Parse errors carry a position and never a piece of the input: a broken JSON may hold a secret.

use std::fmt;

use super::problem::Problem;

/// A parsed JSON value; objects are key/value pairs in document order, duplicates kept.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum OrderedJson {
    Null,
    Bool(bool),
    /// The number as written by serde_json (configuration only ever compares or re-parses it).
    Number(String),
    String(String),
    Array(Vec<OrderedJson>),
    Object(Vec<(String, OrderedJson)>),
}

/// The members of a JSON object, in document order.
pub(super) type JsonObject = [(String, OrderedJson)];

impl OrderedJson {
    /// The JSON type with an article, for "must be …, found a number" messages.
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Null => "null",
            Self::Bool(_) => "a boolean",
            Self::Number(_) => "a number",
            Self::String(_) => "a string",
            Self::Array(_) => "an array",
            Self::Object(_) => "an object",
        }
    }
}

impl<'de> serde::Deserialize<'de> for OrderedJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct AnyValue;
        impl<'de> serde::de::Visitor<'de> for AnyValue {
            type Value = OrderedJson;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Null)
            }
            fn visit_none<E>(self) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Number(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Number(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<OrderedJson, E> {
                Ok(OrderedJson::Number(v.to_string()))
            }
            fn visit_str<E>(self, v: &str) -> Result<OrderedJson, E> {
                Ok(OrderedJson::String(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<OrderedJson, E> {
                Ok(OrderedJson::String(v))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<OrderedJson, A::Error> {
                let mut out = Vec::new();
                while let Some(v) = a.next_element()? {
                    out.push(v);
                }
                Ok(OrderedJson::Array(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<OrderedJson, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, OrderedJson>()? {
                    out.push((k, v));
                }
                Ok(OrderedJson::Object(out))
            }
        }
        d.deserialize_any(AnyValue)
    }
}

/// Parses `text` (the value of `variable`). The parser's message gives line and column and never
/// quotes the input, so a secret inside a broken JSON is not echoed.
pub(super) fn parse_json(variable: &str, text: &str) -> Result<OrderedJson, Problem> {
    let text = text.trim_start_matches('\u{feff}');
    serde_json::from_str::<OrderedJson>(text).map_err(|e| Problem {
        variable: variable.into(),
        tenant: None,
        field: None,
        problem: format!(
            "is not valid JSON: {} (line {}, column {})",
            json_error_kind(&e),
            e.line(),
            e.column()
        ),
        fix: "fix the JSON at that position (a missing comma or quote is the usual cause; in GitLab, \
              check that the variable is not expanded: tick \"Expand variable reference\" off)"
            .into(),
    })
}

fn json_error_kind(e: &serde_json::Error) -> String {
    // serde_json's Display is "<what> at line L column C"; keep the <what> only. It never contains
    // input text for syntax errors, and `OrderedJson` accepts every value so no data error can
    // arise.
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}
