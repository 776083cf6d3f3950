//! OData query options as Graph accepts them on the surfaces we serve: `$select`, `$top`,
//! `$skip`, `$skiptoken`, `$count`, and the few `$filter` forms that are documented for contacts,
//! contact folders and users (docs/graph-facts.md §3, §4).
//!
//! Parsing only: this module decides what a query *means* or that it is unsupported, never what
//! the data is. It accepts nothing outside the documented forms, so a client that relies on an
//! undocumented filter fails here rather than against a real tenant.

use std::fmt::Write as _;

/// The decoded query string, in order.
#[derive(Debug, Clone, Default)]
pub struct Query {
    pub params: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let params = raw
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Query { params }
    }

    /// A system query option; Graph v1.0 matches their names case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first `$`-option not in `allowed`, if any.
    pub fn unsupported_option(&self, allowed: &[&str]) -> Option<&str> {
        self.params
            .iter()
            .map(|(k, _)| k.as_str())
            .find(|k| k.starts_with('$') && !allowed.iter().any(|a| a.eq_ignore_ascii_case(k)))
    }

    pub fn count_requested(&self) -> bool {
        self.get("$count")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// An absolute next link: `base` + the path as the client sent it + this query with `key`
    /// replaced by `value`. Built from the request's host (docs/graph-facts.md §3: follow
    /// verbatim).
    pub fn next_link(&self, base_url: &str, raw_path: &str, key: &str, value: &str) -> String {
        let mut out = format!("{base_url}{raw_path}?");
        let mut first = true;
        for (k, v) in &self.params {
            if k.eq_ignore_ascii_case(key) {
                continue;
            }
            if !first {
                out.push('&');
            }
            first = false;
            let _ = write!(out, "{}={}", encode(k), encode(v));
        }
        if !first {
            out.push('&');
        }
        let _ = write!(out, "{key}={}", encode(value));
        out
    }
}

/// Percent-encodes a query component, keeping the characters OData links show literally.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.' | b'_' | b'~' | b'$' | b'\'' | b'(' | b')' | b',' | b':' | b'/' | b'@'
            );
        if keep {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `$select=a,b` → `["a", "b"]`; `unknown` names the first property `known` rejects.
pub fn parse_select(
    raw: Option<&str>,
    known: impl Fn(&str) -> bool,
) -> Result<Option<Vec<String>>, String> {
    let Some(raw) = raw else { return Ok(None) };
    let mut out = Vec::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !known(part) {
            return Err(part.to_string());
        }
        if !out.iter().any(|p: &String| p == part) {
            out.push(part.to_string());
        }
    }
    Ok(Some(out))
}

/// `$top`/`$skip`-style non-negative integer.
pub fn parse_usize(raw: &str) -> Option<usize> {
    raw.trim().parse().ok()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    LParen,
    RParen,
    Colon,
    Comma,
}

/// Splits a `$filter` into tokens; string literals use `''` for a quote (query-parameters.md).
fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::LParen);
            }
            ')' => {
                chars.next();
                out.push(Tok::RParen);
            }
            ':' => {
                chars.next();
                out.push(Tok::Colon);
            }
            ',' => {
                chars.next();
                out.push(Tok::Comma);
            }
            '\'' => {
                chars.next();
                let mut lit = String::new();
                loop {
                    match chars.next()? {
                        '\'' if chars.peek() == Some(&'\'') => {
                            chars.next();
                            lit.push('\'');
                        }
                        '\'' => break,
                        other => lit.push(other),
                    }
                }
                out.push(Tok::Str(lit));
            }
            c if c.is_alphanumeric() || matches!(c, '/' | '$' | '_' | '.' | '-' | '@' | '+') => {
                let mut id = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || matches!(c, '/' | '$' | '_' | '.' | '-' | '@' | '+') {
                        id.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Ident(id));
            }
            _ => return None,
        }
    }
    Some(out)
}

fn ident(t: &Tok) -> Option<&str> {
    match t {
        Tok::Ident(s) => Some(s),
        _ => None,
    }
}

/// Matches `<coll>/any(<v>:<v>/<prop> <op> <operand>)` and returns (op, operand).
fn lambda<'a>(toks: &'a [Tok], coll: &str, prop: &str) -> Option<(&'a str, &'a Tok)> {
    let [
        head,
        Tok::LParen,
        var,
        Tok::Colon,
        path,
        op,
        operand,
        Tok::RParen,
    ] = toks
    else {
        return None;
    };
    let var = ident(var)?;
    if ident(head)? != format!("{coll}/any") || ident(path)? != format!("{var}/{prop}") {
        return None;
    }
    Some((ident(op)?, operand))
}

/// The one documented contacts filter: `emailAddresses/any(a:a/address eq 'x@y')`
/// (user-list-contacts.md). Returns the address; `None` means 400 ErrorInvalidUrlQueryFilter.
pub fn parse_email_filter(filter: &str) -> Option<String> {
    let toks = tokenize(filter)?;
    match lambda(&toks, "emailAddresses", "address")? {
        ("eq", Tok::Str(addr)) => Some(addr.clone()),
        _ => None,
    }
}

/// `<property> eq '<value>'`: the property and the value.
pub fn parse_eq_filter(filter: &str) -> Option<(String, String)> {
    let toks = tokenize(filter)?;
    match toks.as_slice() {
        [Tok::Ident(p), Tok::Ident(op), Tok::Str(v)] if op == "eq" => Some((p.clone(), v.clone())),
        _ => None,
    }
}

/// `displayName eq 'Name'` on contact folders. `None` means 400 ErrorInvalidUrlQueryFilter.
pub fn parse_folder_filter(filter: &str) -> Option<String> {
    let toks = tokenize(filter)?;
    match toks.as_slice() {
        [Tok::Ident(p), Tok::Ident(op), Tok::Str(name)] if p == "displayName" && op == "eq" => {
            Some(name.clone())
        }
        _ => None,
    }
}

/// `id eq 'a' [or id eq 'b' …]` (the filter inside an extended-property `$expand`): the ids.
pub fn parse_id_eq_list(filter: &str) -> Option<Vec<String>> {
    let toks = tokenize(filter)?;
    let mut ids = Vec::new();
    let mut rest = toks.as_slice();
    loop {
        match rest {
            [Tok::Ident(p), Tok::Ident(op), Tok::Str(id), more @ ..]
                if p.eq_ignore_ascii_case("id") && op == "eq" =>
            {
                ids.push(id.clone());
                match more {
                    [] => return Some(ids),
                    [Tok::Ident(or), tail @ ..] if or == "or" => rest = tail,
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
}

/// A comparison of an extended property's value (`ep/value eq '2'`, or numeric with
/// `cast(ep/value, Edm.Int32) ge 2`).
#[derive(Debug, Clone, PartialEq)]
pub enum ValueTest {
    /// `eq` / `ne` on the string.
    Str { equal: bool, value: String },
    /// A numeric comparison after a cast.
    Int { op: NumOp, value: i64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl ValueTest {
    pub fn matches(&self, v: &str) -> bool {
        match self {
            // Filtering a value is case-insensitive (singlevaluelegacyextendedproperty-get.md).
            ValueTest::Str { equal, value } => v.eq_ignore_ascii_case(value) == *equal,
            ValueTest::Int { op, value } => v.trim().parse::<i64>().is_ok_and(|n| match op {
                NumOp::Eq => n == *value,
                NumOp::Ne => n != *value,
                NumOp::Gt => n > *value,
                NumOp::Ge => n >= *value,
                NumOp::Lt => n < *value,
                NumOp::Le => n <= *value,
            }),
        }
    }
}

/// `singleValueExtendedProperties/Any(ep: ep/id eq '<id>' and <value test>)` — the documented
/// list filter on contacts (singlevaluelegacyextendedproperty-get.md): `ep/value eq|ne '<s>'`,
/// or `cast(ep/value, Edm.Int32) <op> <n>`. `Any`/`any` both appear in the docs.
pub fn parse_ext_any_filter(filter: &str) -> Option<(String, ValueTest)> {
    let toks = tokenize(filter)?;
    let [
        Tok::Ident(head),
        Tok::LParen,
        Tok::Ident(var),
        Tok::Colon,
        Tok::Ident(id_path),
        Tok::Ident(eq),
        Tok::Str(id),
        Tok::Ident(and),
        test @ ..,
        Tok::RParen,
    ] = toks.as_slice()
    else {
        return None;
    };
    let (coll, any) = head.split_once('/')?;
    let prop = |path: &str, name: &str| {
        path.split_once('/')
            .is_some_and(|(v, p)| v == var && p.eq_ignore_ascii_case(name))
    };
    if !coll.eq_ignore_ascii_case("singleValueExtendedProperties")
        || !any.eq_ignore_ascii_case("any")
        || !prop(id_path, "id")
        || eq != "eq"
        || and != "and"
    {
        return None;
    }
    let test = match test {
        [Tok::Ident(path), Tok::Ident(op), Tok::Str(v)] if prop(path, "value") => ValueTest::Str {
            equal: match op.as_str() {
                "eq" => true,
                "ne" => false,
                _ => return None,
            },
            value: v.clone(),
        },
        [
            Tok::Ident(cast),
            Tok::LParen,
            Tok::Ident(path),
            Tok::Comma,
            Tok::Ident(ty),
            Tok::RParen,
            Tok::Ident(op),
            Tok::Ident(n),
        ] if cast.eq_ignore_ascii_case("cast")
            && prop(path, "value")
            && matches!(ty.as_str(), "Edm.Int32" | "Edm.Int64" | "Edm.Int16") =>
        {
            let op = match op.as_str() {
                "eq" => NumOp::Eq,
                "ne" => NumOp::Ne,
                "gt" => NumOp::Gt,
                "ge" => NumOp::Ge,
                "lt" => NumOp::Lt,
                "le" => NumOp::Le,
                _ => return None,
            };
            ValueTest::Int {
                op,
                value: n.parse().ok()?,
            }
        }
        _ => return None,
    };
    Some((id.clone(), test))
}

/// A supported `/users` licence filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFilter {
    /// `assignedLicenses/any(x:x/skuId eq <guid>)` — a default query.
    HasSku(String),
    /// `not(assignedLicenses/any(x:x/skuId eq <guid>))` — advanced only.
    LacksSku(String),
    /// `assignedLicenses/$count ne 0`, or `assignedLicenses/any(x:x/skuId ne null)` — advanced only.
    Licensed,
    /// `assignedLicenses/$count eq 0` — advanced only.
    Unlicensed,
}

impl UserFilter {
    /// Whether the docs require `ConsistencyLevel: eventual` + `$count=true` (aad-advanced-queries.md:
    /// `ne`, `not` and `/$count` on assignedLicenses are advanced-only, docs/graph-facts.md §4).
    pub fn needs_advanced(&self) -> bool {
        !matches!(self, UserFilter::HasSku(_))
    }
}

/// Why a `/users` filter was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserFilterError {
    /// 400 Request_UnsupportedQuery.
    Unsupported(String),
    /// 400 Request_BadRequest (e.g. a quoted GUID compared with Edm.Guid).
    BadRequest(String),
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

pub fn parse_user_filter(filter: &str) -> Result<UserFilter, UserFilterError> {
    let unsupported = || UserFilterError::Unsupported("Unsupported Query.".into());
    let toks = tokenize(filter).ok_or_else(unsupported)?;
    if toks.iter().any(|t| matches!(ident(t), Some("or" | "and"))) {
        // MGD-issue#3289: combining assignedLicenses clauses is refused.
        return Err(UserFilterError::Unsupported(
            "Complex query on property assignedLicenses is not supported.".into(),
        ));
    }
    let sku = |toks: &[Tok]| -> Result<Option<(String, String)>, UserFilterError> {
        match lambda(toks, "assignedLicenses", "skuId") {
            Some((op, Tok::Ident(v))) if is_guid(v) => Ok(Some((op.to_string(), v.to_ascii_lowercase()))),
            Some((op, Tok::Ident(v))) if v == "null" => Ok(Some((op.to_string(), "null".into()))),
            Some((_, Tok::Str(_))) => Err(UserFilterError::BadRequest(
                "A binary operator with incompatible types was detected. Found operand types 'Edm.Guid' and 'Edm.String' for operator kind 'Equal'.".into(),
            )),
            _ => Ok(None),
        }
    };
    match toks.as_slice() {
        [Tok::Ident(p), Tok::Ident(op), Tok::Ident(zero)]
            if p == "assignedLicenses/$count" && zero == "0" =>
        {
            match op.as_str() {
                "ne" => Ok(UserFilter::Licensed),
                "eq" => Ok(UserFilter::Unlicensed),
                _ => Err(unsupported()),
            }
        }
        [Tok::Ident(not), Tok::LParen, inner @ .., Tok::RParen] if not == "not" => {
            match sku(inner)? {
                Some((op, v)) if op == "eq" && v != "null" => Ok(UserFilter::LacksSku(v)),
                _ => Err(unsupported()),
            }
        }
        _ => match sku(&toks)? {
            Some((op, v)) if op == "eq" && v != "null" => Ok(UserFilter::HasSku(v)),
            // `eq null` is listed as not supported (aad-advanced-queries.md).
            Some((op, v)) if op == "ne" && v == "null" => Ok(UserFilter::Licensed),
            _ => Err(unsupported()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_filter_forms() {
        assert_eq!(
            parse_email_filter("emailAddresses/any(a:a/address eq 'x@y.com')").as_deref(),
            Some("x@y.com")
        );
        assert_eq!(
            parse_email_filter("emailAddresses/any( e : e/address eq 'o''brien@y.com' )")
                .as_deref(),
            Some("o'brien@y.com")
        );
        assert!(parse_email_filter("emailAddresses/any(a:a/name eq 'x')").is_none());
        assert!(parse_email_filter("emailAddresses/any(a:b/address eq 'x')").is_none());
        assert!(parse_email_filter("emailAddresses/any(a:a/address ne 'x')").is_none());
        assert!(parse_email_filter("startswith(displayName,'a')").is_none());
    }

    #[test]
    fn folder_filter_unescapes_quotes() {
        assert_eq!(
            parse_folder_filter("displayName eq 'All Contacts'").as_deref(),
            Some("All Contacts")
        );
        assert_eq!(
            parse_folder_filter("displayName eq 'Bob''s'").as_deref(),
            Some("Bob's")
        );
        assert!(parse_folder_filter("displayName ne 'x'").is_none());
        assert!(parse_folder_filter("displayName eq 'unterminated").is_none());
    }

    #[test]
    fn user_filters() {
        let g = "6fd2c87f-b296-42f0-b197-1e91e994b900";
        assert_eq!(
            parse_user_filter(&format!("assignedLicenses/any(x:x/skuId eq {g})")),
            Ok(UserFilter::HasSku(g.into()))
        );
        assert_eq!(
            parse_user_filter(&format!("not(assignedLicenses/any(x:x/skuId eq {g}))")),
            Ok(UserFilter::LacksSku(g.into()))
        );
        assert_eq!(
            parse_user_filter("assignedLicenses/$count ne 0"),
            Ok(UserFilter::Licensed)
        );
        assert_eq!(
            parse_user_filter("assignedLicenses/$count eq 0"),
            Ok(UserFilter::Unlicensed)
        );
        assert_eq!(
            parse_user_filter("assignedLicenses/any(x:x/skuId ne null)"),
            Ok(UserFilter::Licensed)
        );
        assert!(matches!(
            parse_user_filter("assignedLicenses/any(x:x/skuId eq null)"),
            Err(UserFilterError::Unsupported(_))
        ));
        assert!(matches!(
            parse_user_filter(&format!("assignedLicenses/any(x:x/skuId eq '{g}')")),
            Err(UserFilterError::BadRequest(_))
        ));
        assert!(matches!(
            parse_user_filter("accountEnabled eq true"),
            Err(UserFilterError::Unsupported(_))
        ));
    }

    #[test]
    fn extended_property_filters() {
        assert_eq!(
            parse_id_eq_list("id eq 'Integer 0x0036' or Id eq 'String 0x3a45'"),
            Some(vec!["Integer 0x0036".into(), "String 0x3a45".into()])
        );
        assert_eq!(parse_id_eq_list("id ne 'x'"), None);
        assert_eq!(parse_id_eq_list("id eq 'x' and id eq 'y'"), None);
        let (id, test) = parse_ext_any_filter(
            "singleValueExtendedProperties/Any(ep: ep/id eq 'Integer 0x0036' and cast(ep/value, Edm.Int32) eq 2)",
        )
        .unwrap();
        assert_eq!(id, "Integer 0x0036");
        assert!(test.matches("2") && !test.matches("0") && !test.matches("x"));
        let (_, test) = parse_ext_any_filter(
            "singleValueExtendedProperties/any(e:e/id eq 'String 0x3a45' and e/value ne 'dr.')",
        )
        .unwrap();
        assert!(!test.matches("Dr.") && test.matches("Mr."));
        let (_, test) = parse_ext_any_filter(
            "singleValueExtendedProperties/Any(ep: ep/id eq 'Integer 0x0036' and cast(ep/value, Edm.Int32) ge 2)",
        )
        .unwrap();
        assert!(test.matches("3") && test.matches("2") && !test.matches("1"));
        assert!(parse_ext_any_filter("emailAddresses/any(a:a/address eq 'x')").is_none());
        assert!(
            parse_ext_any_filter(
                "singleValueExtendedProperties/Any(ep: ep/id eq 'Integer 0x0036' and contains(ep/value, '2'))"
            )
            .is_none()
        );
    }

    #[test]
    fn next_link_replaces_the_paging_key() {
        let q = Query::parse(Some("$top=5&$skip=5&$select=id,displayName"));
        assert_eq!(
            q.next_link("http://h", "/v1.0/users/a/contacts", "$skip", "10"),
            "http://h/v1.0/users/a/contacts?$top=5&$select=id,displayName&$skip=10"
        );
    }
}
