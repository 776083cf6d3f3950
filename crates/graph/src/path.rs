//! Building Graph paths and queries from user-supplied pieces (UPNs, ids, display names).
//!
//! Everything inserted into a path is percent-encoded so a `#`, `/`, `?` or `%` in a UPN or id
//! cannot change the request's meaning (docs/graph-facts.md §4: `#` in guest UPNs must be `%23`; a
//! UPN starting with `$` must use the `/users('…')` form). Pure string functions; no I/O.

use crate::types::FolderRef;

/// Characters kept as they are in a path segment: RFC 3986 unreserved plus `@` (allowed in a
/// segment, and how UPNs read best in logs).
fn is_kept(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@')
}

/// Percent-encodes one path segment.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if is_kept(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/users/{user}` for an id or UPN. A UPN starting with `$` is addressed as `/users('$x')`
/// (docs/graph-facts.md §4, Graph known issue), with `'` doubled as OData literals require.
pub fn user(id_or_upn: &str) -> String {
    if id_or_upn.starts_with('$') {
        let lit = id_or_upn.replace('\'', "''");
        let enc: String = encode_segment(&lit).replace("%24", "$").replace("%27", "'");
        format!("/users('{enc}')")
    } else {
        format!("/users/{}", encode_segment(id_or_upn))
    }
}

/// The contacts collection of a folder: `/users/{u}/contacts` or
/// `/users/{u}/contactFolders/{id}/contacts`.
pub fn contacts(mailbox: &str, folder: &FolderRef) -> String {
    match folder {
        FolderRef::Default => format!("{}/contacts", user(mailbox)),
        FolderRef::Id(id) => format!(
            "{}/contactFolders/{}/contacts",
            user(mailbox),
            encode_segment(id)
        ),
    }
}

/// One contact of a folder.
pub fn contact(mailbox: &str, folder: &FolderRef, contact_id: &str) -> String {
    format!(
        "{}/{}",
        contacts(mailbox, folder),
        encode_segment(contact_id)
    )
}

/// Encodes a query value: like a segment, but keeps the OData punctuation Graph's docs show
/// literally (`$ / , ' ( ) : =`), and encodes spaces as `%20` (not `+`).
pub fn encode_query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if is_kept(b) || matches!(b, b'$' | b'/' | b',' | b'\'' | b'(' | b')' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?k=v&k=v` with encoded values (keys are our own constants like `$select`).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(k);
        out.push('=');
        out.push_str(&encode_query_value(v));
    }
    out
}

/// An OData string literal: `'…'` with `'` doubled (`MGD: concepts/query-parameters.md`).
pub fn odata_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upns_are_encoded_so_they_cannot_change_the_path() {
        assert_eq!(user("adele@contoso.com"), "/users/adele@contoso.com");
        assert_eq!(
            user("ext_bob#EXT#@contoso.onmicrosoft.com"),
            "/users/ext_bob%23EXT%23@contoso.onmicrosoft.com"
        );
        assert_eq!(user("a/b?c%d e+f"), "/users/a%2Fb%3Fc%25d%20e%2Bf");
        assert_eq!(user("$adm@contoso.com"), "/users('$adm@contoso.com')");
        assert_eq!(user("$o'neil@x.com"), "/users('$o''neil@x.com')");
        assert_eq!(user("müller@x.de"), "/users/m%C3%BCller@x.de");
    }

    #[test]
    fn folder_paths() {
        assert_eq!(contacts("a@x", &FolderRef::Default), "/users/a@x/contacts");
        assert_eq!(
            contact("a@x", &FolderRef::Id("AAMk/+=".into()), "C=1"),
            "/users/a@x/contactFolders/AAMk%2F%2B%3D/contacts/C%3D1"
        );
    }

    #[test]
    fn queries_keep_odata_punctuation() {
        assert_eq!(
            query(&[
                ("$filter", "assignedLicenses/$count ne 0"),
                ("$count", "true")
            ]),
            "?$filter=assignedLicenses/$count%20ne%200&$count=true"
        );
        assert_eq!(
            query(&[(
                "$filter",
                &format!("displayName eq {}", odata_string("Bob's & co"))
            )]),
            "?$filter=displayName%20eq%20'Bob''s%20%26%20co'"
        );
    }
}
