//! Single-value extended properties on contacts (`singleValueExtendedProperties`), as Graph
//! exposes Exchange's MAPI properties: their id formats, how a write stores them, how
//! `$expand=singleValueExtendedProperties($filter=id eq '…')` selects them and how their ids are
//! echoed back, and the documented `$filter=singleValueExtendedProperties/Any(…)` on lists.
//!
//! Sources: extended-properties-overview.md (id formats), singlevaluelegacyextendedproperty-get.md
//! (`$expand` with a filter on `id` is "the only way" to read one; `$filter` on lists),
//! singlevaluelegacyextendedproperty-post-singlevalueextendedproperties.md (set with POST/PATCH).
//! Pure JSON and string work: it never touches the store, and it never returns a property that
//! was not asked for by id.

use serde_json::{Map, Value, json};

/// The key a contact stores its extended properties under (inside its data, so the scenario
/// format carries them); never rendered as a plain property.
pub const KEY: &str = "singleValueExtendedProperties";

/// Single-value MAPI property types Graph accepts in an id (extended-properties-overview.md).
const TYPES: &[&str] = &[
    "Binary",
    "Boolean",
    "CLSID",
    "Currency",
    "Double",
    "Float",
    "Integer",
    "Long",
    "Short",
    "String",
    "SystemTime",
];

/// What identifies a property in Exchange, whatever the spelling of its id: a tag, or a named
/// property (namespace GUID and a name or a numeric id).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Identity {
    Tag(u32),
    Named { guid: String, name: String },
    NamedId { guid: String, id: u32 },
}

/// A parsed extended property id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropId {
    /// The MAPI type, spelled canonically (`Integer`).
    type_name: &'static str,
    identity: Identity,
    /// The id as written.
    written: String,
}

/// An id or value Graph refuses: error code and message (status 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtPropError {
    pub code: &'static str,
    pub message: String,
}

fn invalid_id() -> ExtPropError {
    // msgraph-sdk-powershell#2784 (an `$expand` filter on a malformed id) [OBS].
    ExtPropError {
        code: "ErrorInvalidProperty",
        message:
            "PropertyId values may only be in one of the following formats: 'MapiPropertyType \
                  namespaceGuid Name propertyName', 'MapiPropertyType namespaceGuid Id propertyId' \
                  or 'MapiPropertyType propertyTag'."
                .into(),
    }
}

fn parse_hex(s: &str, max_digits: usize) -> Option<u32> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    if digits.is_empty() || digits.len() > max_digits {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

fn parse_guid(s: &str) -> Option<String> {
    let inner = s.strip_prefix('{')?.strip_suffix('}')?;
    uuid::Uuid::parse_str(inner).ok()?;
    Some(inner.to_ascii_lowercase())
}

impl PropId {
    /// Parses `{type} {proptag}`, `{type} {guid} Name {name}` or `{type} {guid} Id {id}`.
    pub fn parse(id: &str) -> Result<PropId, ExtPropError> {
        let mut parts = id.splitn(4, ' ');
        let type_word = parts.next().unwrap_or_default();
        let type_name = TYPES
            .iter()
            .find(|t| t.eq_ignore_ascii_case(type_word))
            .copied()
            .ok_or_else(invalid_id)?;
        let identity = match (parts.next(), parts.next(), parts.next()) {
            // A 16-bit property id ("Integer 0x0036", PidTagSensitivity).
            (Some(tag), None, None) => Identity::Tag(parse_hex(tag, 4).ok_or_else(invalid_id)?),
            (Some(guid), Some(kind), Some(rest)) => {
                let guid = parse_guid(guid).ok_or_else(invalid_id)?;
                if kind.eq_ignore_ascii_case("Name") && !rest.is_empty() {
                    // Names compare case-sensitively (singlevaluelegacyextendedproperty-get.md).
                    Identity::Named {
                        guid,
                        name: rest.to_owned(),
                    }
                } else if kind.eq_ignore_ascii_case("Id") {
                    Identity::NamedId {
                        guid,
                        id: parse_hex(rest, 8).ok_or_else(invalid_id)?,
                    }
                } else {
                    return Err(invalid_id());
                }
            }
            _ => return Err(invalid_id()),
        };
        Ok(PropId {
            type_name,
            identity,
            written: id.to_owned(),
        })
    }

    /// Whether both ids name the same Exchange property (the type keyword is not part of it:
    /// `Long 0x0E08` and `Integer 0x0E08` were observed to read the same property, see
    /// [`PropId::echo`]).
    fn same_property(&self, other: &PropId) -> bool {
        self.identity == other.identity
    }

    /// The id as Graph echoes it in an expanded property. Observed for the tag form: the hex is
    /// lower-cased and loses its leading zeros (`Integer 0x0036` comes back `Integer 0x36`,
    /// `Long 0x0E08` as `Long 0xe08`), with the type keyword of the request [OBS: third-party
    /// client code recording live Graph answers, a Python Outlook client's message-size mapper
    /// and a C# test of PidTagSensitivity]. Named forms come back as written
    /// (singlevaluelegacyextendedproperty-get.md example). `as_sent` plays the alternative
    /// (`--variant extended-property-ids-as-sent`).
    fn echo(&self, as_sent: bool) -> String {
        if as_sent {
            return self.written.clone();
        }
        match &self.identity {
            Identity::Tag(tag) => format!("{} 0x{tag:x}", self.type_name),
            _ => self.written.clone(),
        }
    }
}

/// Validates the `singleValueExtendedProperties` of a write and returns them in stored form:
/// `[{"id", "value"}]`, ids as written, values as strings (Graph's type for `value` is
/// Edm.String; an `Integer` property's value must read as a 32-bit integer and is stored in
/// canonical decimal [UNCONF]).
pub fn validate(value: &Value) -> Result<Vec<Value>, ExtPropError> {
    let body = |m: String| ExtPropError {
        code: "RequestBodyRead",
        message: m,
    };
    let Value::Array(items) = value else {
        return Err(body(format!(
            "Cannot convert the literal '{value}' to the expected type \
             'Collection(microsoft.graph.singleValueLegacyExtendedProperty)'."
        )));
    };
    let mut out: Vec<(PropId, Value)> = Vec::new();
    for item in items {
        let Value::Object(obj) = item else {
            return Err(body(format!(
                "Cannot convert the literal '{item}' to the expected type \
                 'microsoft.graph.singleValueLegacyExtendedProperty'."
            )));
        };
        for k in obj.keys() {
            if k != "id" && k != "value" && k != "@odata.type" {
                return Err(body(format!(
                    "The property '{k}' does not exist on type \
                     'microsoft.graph.singleValueLegacyExtendedProperty'."
                )));
            }
        }
        let Some(Value::String(id)) = obj.get("id") else {
            return Err(invalid_id());
        };
        let id = PropId::parse(id)?;
        let stored = match obj.get("value") {
            // A null value removes the property [UNCONF: Graph documents no way to remove one].
            Some(Value::Null) | None => Value::Null,
            Some(Value::String(v)) => Value::String(canonical_value(&id, v)?),
            Some(other) => {
                return Err(body(format!(
                    "Cannot convert the literal '{other}' to the expected type 'Edm.String'."
                )));
            }
        };
        out.retain(|(p, _)| !p.same_property(&id));
        out.push((id, stored));
    }
    Ok(out
        .into_iter()
        .map(|(id, value)| json!({"id": id.written, "value": value}))
        .collect())
}

fn canonical_value(id: &PropId, v: &str) -> Result<String, ExtPropError> {
    let bad = || ExtPropError {
        code: "ErrorInvalidExtendedPropertyValue",
        message: format!(
            "The value '{v}' is not valid for an extended property of type {}.",
            id.type_name
        ),
    };
    Ok(match id.type_name {
        "Integer" => v.trim().parse::<i32>().map_err(|_| bad())?.to_string(),
        "Short" => v.trim().parse::<i16>().map_err(|_| bad())?.to_string(),
        "Long" => v.trim().parse::<i64>().map_err(|_| bad())?.to_string(),
        "Boolean" => match v.trim().to_ascii_lowercase().as_str() {
            "true" => "true".into(),
            "false" => "false".into(),
            _ => return Err(bad()),
        },
        _ => v.to_owned(),
    })
}

/// Merges validated properties into a contact's stored ones: each written id replaces the
/// stored property it names (other stored properties stay, as a PATCH of other fields keeps
/// them); a null value removes it.
pub fn merge(stored: &mut Map<String, Value>, written: Vec<Value>) {
    let mut current: Vec<Value> = match stored.remove(KEY) {
        Some(Value::Array(v)) => v,
        _ => Vec::new(),
    };
    for w in written {
        let Some(id) = w["id"].as_str().and_then(|s| PropId::parse(s).ok()) else {
            continue;
        };
        current.retain(|c| {
            c["id"]
                .as_str()
                .and_then(|s| PropId::parse(s).ok())
                .is_none_or(|p| !p.same_property(&id))
        });
        if !w["value"].is_null() {
            current.push(w);
        }
    }
    if !current.is_empty() {
        stored.insert(KEY.into(), Value::Array(current));
    }
}

/// A parsed `$expand=singleValueExtendedProperties($filter=id eq '…' [or id eq '…'])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expand {
    /// The ids asked for; empty for an unfiltered expand, which returns none (Graph's "only
    /// way" to read one is a filter on its id; an unfiltered expand was observed to return
    /// nothing, microsoft-graph-docs#21314).
    ids: Vec<PropId>,
}

/// A refused `$expand`: Graph's code and message (status 400).
pub fn parse_expand(raw: &str) -> Result<Expand, ExtPropError> {
    let unsupported = |what: &str| ExtPropError {
        code: "BadRequest",
        message: format!("Parsing OData Select and Expand failed: {what}"),
    };
    let raw = raw.trim();
    let (name, rest) = match raw.find('(') {
        Some(i) => (&raw[..i], Some(&raw[i..])),
        None => (raw, None),
    };
    if !name.trim().eq_ignore_ascii_case(KEY) {
        return Err(ExtPropError {
            code: "RequestBroker--ParseUri",
            message: format!(
                "Could not find a property named '{}' on type 'microsoft.graph.contact'.",
                name.trim()
            ),
        });
    }
    let Some(rest) = rest else {
        return Ok(Expand { ids: Vec::new() });
    };
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            unsupported(&format!(
                "Term '{raw}' is not valid in a $expand expression."
            ))
        })?;
    let (option, filter) = inner
        .split_once('=')
        .ok_or_else(|| unsupported(&format!("Term '{inner}' is not valid in a $expand option.")))?;
    if !option.trim().eq_ignore_ascii_case("$filter") {
        return Err(unsupported(&format!(
            "'{}' is not supported on singleValueExtendedProperties.",
            option.trim()
        )));
    }
    let ids = crate::odata::parse_id_eq_list(filter)
        .ok_or_else(|| ExtPropError {
            code: "ErrorInvalidUrlQueryFilter",
            message: "The query filter contains one or more invalid nodes.".into(),
        })?
        .iter()
        .map(|id| PropId::parse(id))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Expand { ids })
}

impl Expand {
    /// Adds the asked-for properties the contact has to its rendered form; adds nothing when it
    /// has none of them (the navigation is then absent, not empty [UNCONF]). `context` is the
    /// annotation Graph puts on an expanded navigation (microsoft-graph-docs#2251 shows
    /// `singleValueExtendedProperties@odata.context`).
    pub fn apply(
        &self,
        stored: &Map<String, Value>,
        rendered: &mut Map<String, Value>,
        context: Option<String>,
        ids_as_sent: bool,
    ) {
        let Some(Value::Array(props)) = stored.get(KEY) else {
            return;
        };
        let mut out = Vec::new();
        for asked in &self.ids {
            let found = props.iter().find(|p| {
                p["id"]
                    .as_str()
                    .and_then(|s| PropId::parse(s).ok())
                    .is_some_and(|id| id.same_property(asked))
            });
            if let Some(p) = found {
                out.push(json!({"id": asked.echo(ids_as_sent), "value": p["value"]}));
            }
        }
        if out.is_empty() {
            return;
        }
        if let Some(c) = context {
            rendered.insert(format!("{KEY}@odata.context"), Value::String(c));
        }
        rendered.insert(KEY.into(), Value::Array(out));
    }
}

/// `$filter=singleValueExtendedProperties/Any(ep: ep/id eq '…' and <value test>)` on a contact
/// list (singlevaluelegacyextendedproperty-get.md): the value test compares the string, or with
/// `cast(ep/value, Edm.Int32)` the number.
#[derive(Debug, Clone, PartialEq)]
pub struct ListFilter {
    id: PropId,
    test: crate::odata::ValueTest,
}

/// Parses the list filter; `Ok(None)` when `filter` is not an extended-property filter at all.
pub fn parse_list_filter(filter: &str) -> Result<Option<ListFilter>, ExtPropError> {
    let Some((id, test)) = crate::odata::parse_ext_any_filter(filter) else {
        return Ok(None);
    };
    Ok(Some(ListFilter {
        id: PropId::parse(&id)?,
        test,
    }))
}

impl ListFilter {
    pub fn matches(&self, stored: &Map<String, Value>) -> bool {
        let Some(Value::Array(props)) = stored.get(KEY) else {
            return false;
        };
        props.iter().any(|p| {
            p["id"]
                .as_str()
                .and_then(|s| PropId::parse(s).ok())
                .is_some_and(|id| id.same_property(&self.id))
                && p["value"].as_str().is_some_and(|v| self.test.matches(v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_formats_and_refusals() {
        assert!(PropId::parse("Integer 0x0036").is_ok());
        assert!(PropId::parse("integer 0x36").is_ok());
        assert!(PropId::parse("String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color").is_ok());
        assert!(PropId::parse("Integer {11000E07-B51B-40D6-AF21-CAA85EDAB1D0} Id 0x0027").is_ok());
        for bad in [
            "Test",
            "Integer",
            "Integer 36",
            "Integer 0x",
            "IntegerArray 0x0036",
            "Integer 0x12345",
            "String {not-a-guid} Name X",
            "String {66f5a359-4659-4830-9070-00047ec6ac6e} Nick X",
        ] {
            assert_eq!(
                PropId::parse(bad).unwrap_err().code,
                "ErrorInvalidProperty",
                "{bad}"
            );
        }
    }

    #[test]
    fn the_tag_form_echoes_lower_case_without_leading_zeros() {
        assert_eq!(
            PropId::parse("Integer 0x0036").unwrap().echo(false),
            "Integer 0x36"
        );
        assert_eq!(
            PropId::parse("long 0x0E08").unwrap().echo(false),
            "Long 0xe08"
        );
        assert_eq!(
            PropId::parse("Integer 0x0036").unwrap().echo(true),
            "Integer 0x0036"
        );
        let named = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color";
        assert_eq!(PropId::parse(named).unwrap().echo(false), named);
    }

    #[test]
    fn values_are_strings_and_integers_are_canonical() {
        let v = validate(&json!([{"id": "Integer 0x0036", "value": "02"}])).unwrap();
        assert_eq!(v, vec![json!({"id": "Integer 0x0036", "value": "2"})]);
        assert_eq!(
            validate(&json!([{"id": "Integer 0x0036", "value": 2}]))
                .unwrap_err()
                .code,
            "RequestBodyRead"
        );
        assert_eq!(
            validate(&json!([{"id": "Integer 0x0036", "value": "two"}]))
                .unwrap_err()
                .code,
            "ErrorInvalidExtendedPropertyValue"
        );
        // The last write of one property in a body wins.
        let v = validate(&json!([{"id": "Integer 0x0036", "value": "1"},
                                  {"id": "Integer 0x36", "value": "2"}]))
        .unwrap();
        assert_eq!(v, vec![json!({"id": "Integer 0x36", "value": "2"})]);
    }

    #[test]
    fn merge_replaces_by_property_keeps_others_and_null_removes() {
        let mut stored = Map::new();
        merge(
            &mut stored,
            validate(&json!([{"id": "Integer 0x0036", "value": "2"},
                             {"id": "String 0x3a45", "value": "Dr."}]))
            .unwrap(),
        );
        merge(
            &mut stored,
            validate(&json!([{"id": "integer 0x36", "value": "0"}])).unwrap(),
        );
        assert_eq!(
            stored[KEY],
            json!([{"id": "String 0x3a45", "value": "Dr."}, {"id": "integer 0x36", "value": "0"}])
        );
        merge(
            &mut stored,
            validate(&json!([{"id": "Integer 0x0036", "value": null},
                             {"id": "String 0x3A45", "value": null}]))
            .unwrap(),
        );
        assert!(!stored.contains_key(KEY));
    }

    #[test]
    fn expand_returns_only_what_was_asked_for_by_id() {
        let mut stored = Map::new();
        merge(
            &mut stored,
            validate(&json!([{"id": "Integer 0x0036", "value": "2"},
                             {"id": "String 0x3a45", "value": "Dr."}]))
            .unwrap(),
        );
        let mut out = Map::new();
        parse_expand("singleValueExtendedProperties($filter=id eq 'Integer 0x0036')")
            .unwrap()
            .apply(&stored, &mut out, None, false);
        assert_eq!(
            Value::Object(out),
            json!({KEY: [{"id": "Integer 0x36", "value": "2"}]})
        );
        let mut out = Map::new();
        parse_expand("singleValueExtendedProperties")
            .unwrap()
            .apply(&stored, &mut out, None, false);
        assert!(out.is_empty(), "an unfiltered expand returns nothing");
        let mut out = Map::new();
        parse_expand(
            "SingleValueExtendedProperties($filter=Id eq 'String 0x3A45' or id eq 'Integer 0x0037')",
        )
        .unwrap()
        .apply(&stored, &mut out, Some("ctx".into()), false);
        assert_eq!(
            Value::Object(out),
            json!({KEY: [{"id": "String 0x3a45", "value": "Dr."}],
                   "singleValueExtendedProperties@odata.context": "ctx"})
        );
        assert_eq!(
            parse_expand("extensions").unwrap_err().code,
            "RequestBroker--ParseUri"
        );
        assert_eq!(
            parse_expand("singleValueExtendedProperties($filter=id eq 'Test')")
                .unwrap_err()
                .code,
            "ErrorInvalidProperty"
        );
        assert_eq!(
            parse_expand("singleValueExtendedProperties($select=value)")
                .unwrap_err()
                .code,
            "BadRequest"
        );
    }
}
