//! The v1.0 contact resource: which properties exist, what a write may carry, and how a stored
//! contact is normalised and rendered (docs/graph-facts.md §1, §9).
//!
//! Everything here is pure JSON shaping. It never assigns ids, timestamps or change keys (the
//! store does), and never relaxes a rule for a client's convenience: an unknown property, a wrong
//! type or a collection over its cap is a 400, as on Graph.

use serde_json::{Map, Value};

use crate::extprops;

/// String properties of a v1.0 contact (contact.md). Unset ones are rendered as `null`.
pub const STRING_PROPS: &[&str] = &[
    "assistantName",
    "businessHomePage",
    "companyName",
    "department",
    "displayName",
    "fileAs",
    "generation",
    "givenName",
    "initials",
    "jobTitle",
    "manager",
    "middleName",
    "mobilePhone",
    "nickName",
    "officeLocation",
    "personalNotes",
    "profession",
    "spouseName",
    "surname",
    "title",
    "yomiCompanyName",
    "yomiGivenName",
    "yomiSurname",
];

/// String-collection properties with their caps. businessPhones ≤ 2 is observed
/// (docs/graph-facts.md §9, MGD-issue#560); homePhones ≤ 2 and imAddresses ≤ 3 are [UNCONF], taken
/// by analogy because the stricter rule is the safer one to test against.
pub const STRING_COLLECTIONS: &[(&str, &str, usize)] = &[
    ("businessPhones", "BusinessPhones", 2),
    ("homePhones", "HomePhones", 2),
    ("imAddresses", "ImAddresses", 3),
    ("categories", "Categories", usize::MAX),
    ("children", "Children", usize::MAX),
];

/// emailAddresses ≤ 3 (docs/graph-facts.md §9, MGD-issue#560).
pub const MAX_EMAILS: usize = 3;

pub const ADDRESS_PROPS: &[&str] = &["businessAddress", "homeAddress", "otherAddress"];
const ADDRESS_KEYS: &[&str] = &["street", "city", "state", "countryOrRegion", "postalCode"];

/// Properties the server sets; a write carrying one of them is rejected.
pub const SERVER_PROPS: &[&str] = &["id", "createdDateTime", "lastModifiedDateTime", "changeKey"];

/// Every property name a client may `$select`.
pub fn is_known_property(name: &str) -> bool {
    STRING_PROPS.contains(&name)
        || STRING_COLLECTIONS.iter().any(|(p, _, _)| *p == name)
        || ADDRESS_PROPS.contains(&name)
        || SERVER_PROPS.contains(&name)
        || matches!(name, "emailAddresses" | "birthday" | "parentFolderId")
        // A navigation: `$select`ing it is accepted, but only `$expand` returns it.
        || name == extprops::KEY
}

/// A rejected write: Graph error code and message (status is always 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactError {
    pub code: &'static str,
    pub message: String,
}

fn body_error(message: impl Into<String>) -> ContactError {
    ContactError {
        code: "RequestBodyRead",
        message: message.into(),
    }
}

/// Validates a POST/PATCH body and returns it normalised (only writable properties, each in its
/// stored form). `parentFolderId` is accepted and dropped: the folder is the one in the URL
/// (moving by PATCHing it is unreliable on Graph, docs/graph-facts.md §1).
pub fn validate_write(body: &Map<String, Value>) -> Result<Map<String, Value>, ContactError> {
    let mut out = Map::new();
    for (key, value) in body {
        if key == "@odata.type" {
            if value != "#microsoft.graph.contact" && value != "microsoft.graph.contact" {
                return Err(body_error(format!(
                    "A type named '{value}' could not be resolved by the model."
                )));
            }
            continue;
        }
        if SERVER_PROPS.contains(&key.as_str()) {
            return Err(ContactError {
                code: "ErrorInvalidPropertySet",
                message: format!("The property '{key}' is read-only and cannot be set."),
            });
        }
        if key == "parentFolderId" {
            expect_string_or_null(key, value)?;
            continue;
        }
        out.insert(key.clone(), normalise_property(key, value)?);
    }
    Ok(out)
}

/// Validates a contact as stored in a scenario file: writable properties plus the server-set
/// ones (`id`, timestamps, `changeKey`, `parentFolderId`) that an exported state carries.
pub fn validate_stored(c: &Map<String, Value>) -> Result<(), ContactError> {
    for (key, value) in c {
        match key.as_str() {
            "id" | "changeKey" => match value {
                Value::String(s) if !s.is_empty() => {}
                _ => return Err(body_error(format!("{key}: must be a non-empty string"))),
            },
            "createdDateTime" | "lastModifiedDateTime" => {
                parse_timestamp(key, value).map(|_| ())?
            }
            "parentFolderId" => expect_string_or_null(key, value)?,
            _ => {
                normalise_property(key, value)?;
            }
        }
    }
    Ok(())
}

pub fn parse_timestamp(key: &str, value: &Value) -> Result<jiff::Timestamp, ContactError> {
    value
        .as_str()
        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
        .ok_or_else(|| body_error(format!("{key}: expected an ISO-8601 UTC timestamp")))
}

fn expect_string_or_null(key: &str, value: &Value) -> Result<(), ContactError> {
    match value {
        Value::String(_) | Value::Null => Ok(()),
        other => Err(type_error(key, "Edm.String", other)),
    }
}

fn type_error(key: &str, expected: &str, got: &Value) -> ContactError {
    body_error(format!(
        "Cannot convert the literal '{got}' to the expected type '{expected}' (property '{key}')."
    ))
}

/// One property in its stored form, or the error Graph would give for it.
fn normalise_property(key: &str, value: &Value) -> Result<Value, ContactError> {
    if STRING_PROPS.contains(&key) {
        expect_string_or_null(key, value)?;
        return Ok(value.clone());
    }
    if let Some((_, exchange_name, cap)) = STRING_COLLECTIONS.iter().find(|(p, _, _)| *p == key) {
        let items = match value {
            Value::Null => return Ok(Value::Array(vec![])),
            Value::Array(items) => items,
            other => return Err(type_error(key, "Collection(Edm.String)", other)),
        };
        for item in items {
            if !item.is_string() {
                return Err(type_error(key, "Edm.String", item));
            }
        }
        check_cap(exchange_name, items.len(), *cap)?;
        return Ok(value.clone());
    }
    if ADDRESS_PROPS.contains(&key) {
        return normalise_address(key, value);
    }
    match key {
        "emailAddresses" => normalise_emails(value),
        "birthday" => normalise_birthday(value),
        extprops::KEY => extprops::validate(value)
            .map(Value::Array)
            .map_err(|e| ContactError {
                code: e.code,
                message: e.message,
            }),
        _ => Err(body_error(format!(
            "The property '{key}' does not exist on type 'microsoft.graph.contact'. Make sure to \
             only use property names that are defined by the type."
        ))),
    }
}

fn check_cap(exchange_name: &str, len: usize, cap: usize) -> Result<(), ContactError> {
    if len > cap {
        // Message as observed in MGD-issue#560; the code there is not shown [UNCONF].
        return Err(ContactError {
            code: "ErrorInvalidArgument",
            message: format!(
                "The multi value property {exchange_name} has {len} entries, that exceeds the \
                 max allowed value of {cap}"
            ),
        });
    }
    Ok(())
}

fn normalise_emails(value: &Value) -> Result<Value, ContactError> {
    let items = match value {
        Value::Null => return Ok(Value::Array(vec![])),
        Value::Array(items) => items,
        other => {
            return Err(type_error(
                "emailAddresses",
                "Collection(microsoft.graph.emailAddress)",
                other,
            ));
        }
    };
    check_cap("EmailAddresses", items.len(), MAX_EMAILS)?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Object(obj) = item else {
            return Err(type_error(
                "emailAddresses",
                "microsoft.graph.emailAddress",
                item,
            ));
        };
        for (k, v) in obj {
            if k != "name" && k != "address" {
                return Err(body_error(format!(
                    "The property '{k}' does not exist on type 'microsoft.graph.emailAddress'."
                )));
            }
            expect_string_or_null(k, v)?;
        }
        let address = obj.get("address").cloned().unwrap_or(Value::Null);
        // Graph's behaviour for an omitted name is [UNCONF] (docs/graph-facts.md §9); contacts
        // created through Outlook come back with name = address, so that is what we store: a client
        // that compares names verbatim finds out here rather than in production.
        let name = match obj.get("name") {
            Some(Value::String(s)) => Value::String(s.clone()),
            _ => address.clone(),
        };
        let mut e = Map::new();
        e.insert("name".into(), name);
        e.insert("address".into(), address);
        out.push(Value::Object(e));
    }
    Ok(Value::Array(out))
}

fn normalise_address(key: &str, value: &Value) -> Result<Value, ContactError> {
    let obj = match value {
        Value::Null => return Ok(Value::Object(Map::new())),
        Value::Object(obj) => obj,
        other => return Err(type_error(key, "microsoft.graph.physicalAddress", other)),
    };
    let mut out = Map::new();
    for (k, v) in obj {
        if !ADDRESS_KEYS.contains(&k.as_str()) {
            return Err(body_error(format!(
                "The property '{k}' does not exist on type 'microsoft.graph.physicalAddress'."
            )));
        }
        expect_string_or_null(k, v)?;
        // Address objects only contain the keys that are set (docs/graph-facts.md §9).
        if let Value::String(s) = v
            && !s.is_empty()
        {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(Value::Object(out))
}

/// `birthday` is a DateTimeOffset. A date-only value is stored at 11:59 UTC of that day: the
/// exact time Exchange stores is [UNCONF] (docs/graph-facts.md §1), and storing a time a client did
/// not send forces it to compare birthdays by calendar date, as the facts advise.
fn normalise_birthday(value: &Value) -> Result<Value, ContactError> {
    let s = match value {
        Value::Null => return Ok(Value::Null),
        Value::String(s) => s,
        other => return Err(type_error("birthday", "Edm.DateTimeOffset", other)),
    };
    if let Ok(date) = s.parse::<jiff::civil::Date>()
        && s.len() == 10
    {
        return Ok(Value::String(format!("{date}T11:59:00Z")));
    }
    let ts = s
        .parse::<jiff::Timestamp>()
        .map_err(|_| type_error("birthday", "Edm.DateTimeOffset", value))?;
    Ok(Value::String(format_ts(ts)))
}

/// Graph's timestamp format: UTC, whole seconds, `Z`.
pub fn format_ts(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A fully populated stored contact from normalised writable properties: every property present,
/// unset collections `[]`, unset strings `null` (but `fileAs` `""`), unset addresses `{}`
/// (docs/graph-facts.md §9).
pub fn fill_defaults(c: &mut Map<String, Value>) {
    for p in STRING_PROPS {
        c.entry(*p).or_insert(Value::Null);
    }
    for (p, _, _) in STRING_COLLECTIONS {
        c.entry(*p).or_insert(Value::Array(vec![]));
    }
    for p in ADDRESS_PROPS {
        c.entry(*p).or_insert(Value::Object(Map::new()));
    }
    c.entry("emailAddresses").or_insert(Value::Array(vec![]));
    c.entry("birthday").or_insert(Value::Null);
    // An unset fileAs reads "" (not null) on contacts created through the API: Outlook REST
    // v2.0's create-contact sample answers `"FileAs": ""` and v1.0 captures show `"fileAs": ""`
    // next to `"initials": null` [OBS]; Exchange does not compute it from the name. Clearing it
    // gives the same "" [UNCONF].
    if c.get("fileAs").is_none_or(Value::is_null) {
        c.insert("fileAs".into(), Value::String(String::new()));
    }
}

/// The display name Exchange derives from the name parts ("Given Middle Surname").
pub fn composed_display_name(c: &Map<String, Value>) -> Option<String> {
    let parts: Vec<&str> = ["givenName", "middleName", "surname"]
        .iter()
        .filter_map(|k| c.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Renders a stored contact: `@odata.etag` from the changeKey, then either every property or
/// only `$select`ed ones (`id` and `@odata.etag` are always present on Outlook items,
/// docs/graph-facts.md §3). Extended properties are never rendered here: only an `$expand` by id
/// returns them (`extprops::Expand::apply`).
pub fn render(stored: &Map<String, Value>, select: Option<&[String]>) -> Map<String, Value> {
    let mut out = Map::new();
    let change_key = stored
        .get("changeKey")
        .and_then(Value::as_str)
        .unwrap_or("");
    out.insert("@odata.etag".into(), Value::String(etag(change_key)));
    match select {
        None => {
            for (k, v) in stored {
                if k != extprops::KEY {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        Some(fields) => {
            out.insert(
                "id".into(),
                stored.get("id").cloned().unwrap_or(Value::Null),
            );
            for f in fields.iter().filter(|f| *f != extprops::KEY) {
                out.insert(f.clone(), stored.get(f).cloned().unwrap_or(Value::Null));
            }
        }
    }
    out
}

/// `@odata.etag` is the weak ETag of the changeKey (docs/graph-facts.md §1).
pub fn etag(change_key: &str) -> String {
    format!("W/\"{change_key}\"")
}

/// Whether an `If-Match` header value matches the current change key (`*`, the weak or strong
/// form of the etag, or a list of them).
pub fn if_match_ok(header: &str, change_key: &str) -> bool {
    header.split(',').map(str::trim).any(|tag| {
        tag == "*"
            || tag == etag(change_key)
            || tag == format!("\"{change_key}\"")
            || tag == change_key
    })
}

/// The personalNotes list-response bug (docs/graph-facts.md §9, MGDold-issue#17598): notes starting
/// with a line break come back from *list* requests with line breaks removed and cut to 256 chars;
/// GET by id returns them intact.
pub fn list_notes_quirk(c: &mut Map<String, Value>) {
    if let Some(Value::String(notes)) = c.get("personalNotes")
        && (notes.starts_with('\n') || notes.starts_with('\r'))
    {
        let mangled: String = notes
            .chars()
            .filter(|ch| *ch != '\n' && *ch != '\r')
            .take(256)
            .collect();
        c.insert("personalNotes".into(), Value::String(mangled));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn caps_are_enforced() {
        let e = validate_write(&obj(json!({"emailAddresses": [
            {"address": "a@x"}, {"address": "b@x"}, {"address": "c@x"}, {"address": "d@x"}]})))
        .unwrap_err();
        assert!(e.message.contains("EmailAddresses has 4 entries"), "{e:?}");
        let e = validate_write(&obj(json!({"businessPhones": ["1", "2", "3"]}))).unwrap_err();
        assert!(e.message.contains("BusinessPhones has 3 entries"), "{e:?}");
        assert!(validate_write(&obj(json!({"businessPhones": ["1", "2"]}))).is_ok());
    }

    #[test]
    fn unknown_and_read_only_properties_are_rejected() {
        assert_eq!(
            validate_write(&obj(json!({"phones": []})))
                .unwrap_err()
                .code,
            "RequestBodyRead"
        );
        assert_eq!(
            validate_write(&obj(json!({"changeKey": "x"})))
                .unwrap_err()
                .code,
            "ErrorInvalidPropertySet"
        );
        assert!(validate_write(&obj(json!({"displayName": 3}))).is_err());
    }

    #[test]
    fn addresses_keep_only_set_keys_and_birthday_gets_a_time() {
        let c = validate_write(&obj(json!({
            "homeAddress": {"city": "Oslo", "street": null, "state": ""},
            "birthday": "1974-07-22"
        })))
        .unwrap();
        assert_eq!(c["homeAddress"], json!({"city": "Oslo"}));
        assert_eq!(c["birthday"], json!("1974-07-22T11:59:00Z"));
    }

    #[test]
    fn if_match_forms() {
        assert!(if_match_ok("W/\"abc\"", "abc"));
        assert!(if_match_ok("*", "abc"));
        assert!(!if_match_ok("W/\"abd\"", "abc"));
    }

    #[test]
    fn notes_quirk_only_for_leading_line_break() {
        let mut c = obj(json!({"personalNotes": "\nline1\nline2"}));
        list_notes_quirk(&mut c);
        assert_eq!(c["personalNotes"], json!("line1line2"));
        let mut c = obj(json!({"personalNotes": "a\nb"}));
        list_notes_quirk(&mut c);
        assert_eq!(c["personalNotes"], json!("a\nb"));
    }
}
