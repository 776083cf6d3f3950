//! JSON batching (`POST /v1.0/$batch`, docs/graph-facts.md §5): request assembly and response
//! parsing.
//!
//! Items use relative URLs (`/users/{id}/…`), unique string ids, no `dependsOn` (every write is
//! independent, so the batch is fully parallel as the docs recommend); responses are matched by
//! id because their order is not guaranteed; the outer status is 200 even when items fail.
//! Pure functions: the retry of individual items lives in the client. Never put secrets here.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::error::{ErrorKind, GraphError};

/// Graph's limit of requests per batch (docs/graph-facts.md §5).
pub const MAX_BATCH: usize = 20;

/// One request inside a batch. It borrows its URL, headers and body from the write it
/// carries: the body is serialized once, straight into the batch document (issue 8: each write
/// body used to be copied three times on its way there).
#[derive(Clone, Debug, PartialEq)]
pub struct BatchItem<'a> {
    pub id: String,
    pub method: &'static str,
    /// Relative to the version root, starting with `/`.
    pub url: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: Option<&'a Value>,
}

/// The `$batch` request body, serialized. A body requires a `Content-Type` header
/// (docs/graph-facts.md §5); it is added when missing.
pub fn request_body(items: &[BatchItem<'_>]) -> Vec<u8> {
    #[derive(Serialize)]
    struct Outer<'b, 'a> {
        requests: Vec<Item<'b, 'a>>,
    }
    #[derive(Serialize)]
    struct Item<'b, 'a> {
        id: &'b str,
        method: &'static str,
        url: &'a str,
        #[serde(skip_serializing_if = "Headers::is_empty")]
        headers: Headers<'b, 'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        body: Option<&'a Value>,
    }
    struct Headers<'b, 'a> {
        given: &'b [(&'a str, &'a str)],
        content_type: bool,
    }
    impl Headers<'_, '_> {
        fn is_empty(&self) -> bool {
            self.given.is_empty() && !self.content_type
        }
    }
    impl Serialize for Headers<'_, '_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(None)?;
            for (k, v) in self.given {
                m.serialize_entry(k, v)?;
            }
            if self.content_type {
                m.serialize_entry("Content-Type", "application/json")?;
            }
            m.end()
        }
    }
    let requests = items
        .iter()
        .map(|it| Item {
            id: &it.id,
            method: it.method,
            url: it.url,
            headers: Headers {
                given: &it.headers,
                content_type: it.body.is_some()
                    && !it
                        .headers
                        .iter()
                        .any(|(k, _)| k.eq_ignore_ascii_case("content-type")),
            },
            body: it.body,
        })
        .collect();
    // Serializing borrowed strings and `Value`s into a Vec cannot fail.
    serde_json::to_vec(&Outer { requests }).unwrap_or_default()
}

/// One item of a `$batch` response.
#[derive(Clone, Debug)]
pub struct ItemResponse {
    pub id: String,
    pub status: u16,
    /// Header names lower-cased (Graph sends `Retry-After`, JSON object keys are case-sensitive).
    pub headers: HashMap<String, String>,
    /// The item's body as sent (`None` when absent), unparsed: the caller parses it straight into
    /// the type it expects. Going through `Value` first cost a quarter of the binary's CPU in a
    /// write-heavy run (issue 8, BENCHMARKS.md).
    pub body: Option<Box<RawValue>>,
}

impl ItemResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Parses a `$batch` response into items keyed by id.
pub fn parse_response(bytes: &[u8]) -> Result<HashMap<String, ItemResponse>, GraphError> {
    #[derive(Deserialize)]
    struct Outer {
        responses: Vec<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        id: String,
        status: u16,
        #[serde(default)]
        headers: Map<String, Value>,
        #[serde(default)]
        body: Option<Box<RawValue>>,
    }
    let outer: Outer = serde_json::from_slice(bytes).map_err(|e| {
        GraphError::new(
            ErrorKind::Server,
            format!("unreadable $batch response: {e}"),
        )
    })?;
    Ok(outer
        .responses
        .into_iter()
        .map(|r| {
            let headers = r
                .headers
                .into_iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (k.to_ascii_lowercase(), v)
                })
                .collect();
            (
                r.id.clone(),
                ItemResponse {
                    id: r.id,
                    status: r.status,
                    headers,
                    body: r.body,
                },
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_body_has_relative_urls_ids_and_content_type() {
        let (create, update) = (json!({"displayName": "X"}), json!({"jobTitle": null}));
        let items = vec![
            BatchItem {
                id: "0".into(),
                method: "POST",
                url: "/users/adele%40contoso.com/contactFolders/F1/contacts",
                headers: vec![],
                body: Some(&create),
            },
            BatchItem {
                id: "1".into(),
                method: "PATCH",
                url: "/users/adele%40contoso.com/contacts/C1",
                headers: vec![("If-Match", "W/\"ck\"")],
                body: Some(&update),
            },
            BatchItem {
                id: "2".into(),
                method: "DELETE",
                url: "/users/a/contacts/C2",
                headers: vec![],
                body: None,
            },
        ];
        let b: Value = serde_json::from_slice(&request_body(&items)).unwrap();
        let r = b["requests"].as_array().unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0]["id"], "0");
        assert_eq!(r[0]["method"], "POST");
        assert_eq!(r[0]["headers"]["Content-Type"], "application/json");
        assert_eq!(r[0]["body"]["displayName"], "X");
        assert!(r[0]["url"].as_str().unwrap().starts_with("/users/"));
        assert_eq!(r[1]["headers"]["If-Match"], "W/\"ck\"");
        assert_eq!(r[1]["headers"]["Content-Type"], "application/json");
        assert_eq!(r[2]["method"], "DELETE");
        assert_eq!(r[2]["url"], "/users/a/contacts/C2");
        assert!(r[1]["body"]["jobTitle"].is_null());
        assert!(r[1]["body"].as_object().unwrap().contains_key("jobTitle"));
        assert!(r[2].get("body").is_none());
        assert!(r[2].get("headers").is_none());
        assert!(r.iter().all(|x| x.get("dependsOn").is_none()));
    }

    #[test]
    fn responses_are_matched_by_id_in_any_order_with_item_headers() {
        let body = br#"{"responses":[
            {"id":"2","status":429,"headers":{"Retry-After":"2.5"},"body":{"error":{"code":"ApplicationThrottled","message":"over"}}},
            {"id":"0","status":201,"headers":{"Content-Type":"application/json"},"body":{"id":"new"}},
            {"id":"1","status":412,"body":{"error":{"code":"ErrorIrresolvableConflict","message":"ck"}}}
        ]}"#;
        let m = parse_response(body).unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m["0"].status, 201);
        let body: Value = serde_json::from_str(m["0"].body.as_ref().unwrap().get()).unwrap();
        assert_eq!(body["id"], "new");
        assert_eq!(m["2"].header("Retry-After"), Some("2.5"));
        assert_eq!(m["1"].status, 412);
        assert!(m["1"].headers.is_empty());
    }

    #[test]
    fn malformed_batch_response_is_a_server_error() {
        assert_eq!(
            parse_response(b"<html>").unwrap_err().kind,
            ErrorKind::Server
        );
    }
}
