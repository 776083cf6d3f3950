//! Which contacts are private (docs/state-and-deletes.md §4, docs/reliability.md I15): a user's
//! contact marked private in Outlook — the `Private` flag, MAPI `PidTagSensitivity` (0x0036) = 2,
//! which Graph exposes as the single-value extended property `Integer 0x0036` — or carrying a
//! category listed in `PrivateCategories` (default `["Private"]`, compared without case). A private
//! user copy is never collected; what the planner does with one is `plan::privacy`'s business.
//!
//! Also the one place a private category is taken out of a contact's categories: such a
//! category is never written to another copy and never a reason to write ([`strip_hub`]).
//!
//! Pure data: no I/O. Reading the flag is the caller's `$expand` (graph's
//! `ReadSpec::with_extended_property`); a listing without it simply has no flag.

use crate::field::Field;
use crate::model::Contact;
use crate::plan::MailboxSnapshot;
use std::borrow::Cow;

/// PidTagSensitivity's property tag (MS-OXCMSG 2.2.1.13; `Integer 0x0036` as Graph names it,
/// extended-properties-overview.md).
pub const SENSITIVITY_TAG: u32 = 0x0036;

/// PidTagSensitivity's value for "private" (MS-OXCMSG 2.2.1.13: 0 normal, 1 personal, 2 private,
/// 3 confidential). Only 2 is Outlook's Private flag.
pub const SENSITIVITY_PRIVATE: i64 = 2;

/// Whether a single-value extended property id names PidTagSensitivity, however Graph spells it:
/// it echoes `Integer 0x0036` as `Integer 0x36` (lower-case hex, no leading zeros; observed, and
/// the emulator's default), so the tag is compared as a number and the type word without case.
/// Named properties (`… {guid} Name …`) never match.
pub fn is_sensitivity_id(id: &str) -> bool {
    let mut parts = id.split_whitespace();
    let (Some(type_word), Some(tag), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    // The tag form's type word for a PT_LONG property; the type is not part of the property's
    // identity, but any other word would be another property's spelling.
    let integer = ["Integer", "Long"]
        .iter()
        .any(|t| t.eq_ignore_ascii_case(type_word));
    let hex = tag.strip_prefix("0x").or_else(|| tag.strip_prefix("0X"));
    integer
        && hex.is_some_and(|h| {
            !h.is_empty() && h.len() <= 4 && u32::from_str_radix(h, 16) == Ok(SENSITIVITY_TAG)
        })
}

/// `PrivateCategories`: categories that make a contact private, compared without case (Outlook's
/// categories are case-insensitive) and without surrounding spaces. Default `["Private"]`; an
/// empty list leaves only the Private flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateCategories {
    /// Trimmed and lower-cased, without duplicates, in the order given.
    names: Vec<String>,
}

impl Default for PrivateCategories {
    fn default() -> Self {
        PrivateCategories::new(["Private"])
    }
}

impl PrivateCategories {
    /// The categories named (blank names are dropped).
    pub fn new<S: AsRef<str>>(names: impl IntoIterator<Item = S>) -> Self {
        let mut out: Vec<String> = Vec::new();
        for n in names {
            let n = n.as_ref().trim().to_lowercase();
            if !n.is_empty() && !out.contains(&n) {
                out.push(n);
            }
        }
        PrivateCategories { names: out }
    }

    /// No category marks a contact private (only the flag does).
    pub fn none() -> Self {
        PrivateCategories { names: Vec::new() }
    }

    /// The names, trimmed and lower-cased.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Whether `category` is one of them.
    pub fn contains(&self, category: &str) -> bool {
        if self.names.is_empty() {
            return false;
        }
        let c = category.trim();
        self.names.iter().any(|n| {
            if c.is_ascii() && n.is_ascii() {
                n.eq_ignore_ascii_case(c)
            } else {
                *n == c.to_lowercase()
            }
        })
    }

    /// Whether the contact carries one of them.
    pub fn any_in(&self, c: &Contact) -> bool {
        !self.names.is_empty() && c.fields.list(Field::Categories).any(|x| self.contains(x))
    }
}

/// Whether a user's contact is private: the Private flag, or a private category.
pub fn is_private(c: &Contact, categories: &PrivateCategories) -> bool {
    c.private_flag() || categories.any_in(c)
}

/// The contact without its private categories, if it has any (`None`: nothing to take out).
pub fn without_private_categories(c: &Contact, categories: &PrivateCategories) -> Option<Contact> {
    if !categories.any_in(c) {
        return None;
    }
    let kept: Vec<String> = c
        .fields
        .list(Field::Categories)
        .filter(|x| !categories.contains(x))
        .map(str::to_owned)
        .collect();
    let mut out = c.clone();
    out.fields.set(Field::Categories, kept);
    Some(out)
}

/// The hub's folder as the planner compares and writes it: every hub contact without its private
/// categories (borrowed when none has one, the usual case). Users' copies need no such thing: one
/// carrying a private category is private, so it is never compared or written. A hub copy is
/// ours, never private itself; the old script copied categories along, so a hub copy may still
/// carry "Private": stripped here, it never propagates, and its presence is no reason to write
/// (the hub copy keeps it until its categories are written for another reason).
pub fn strip_hub<'a>(
    hub: &'a MailboxSnapshot,
    categories: &PrivateCategories,
) -> Cow<'a, MailboxSnapshot> {
    if !hub.contacts.iter().any(|c| categories.any_in(c)) {
        return Cow::Borrowed(hub);
    }
    let contacts = hub
        .contacts
        .iter()
        .map(|c| without_private_categories(c, categories).unwrap_or_else(|| c.clone()))
        .collect();
    Cow::Owned(MailboxSnapshot {
        mailbox: hub.mailbox.clone(),
        contacts,
        read: hub.read,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ContactParts;
    use crate::values::FieldsBuilder;

    #[test]
    fn the_sensitivity_id_is_matched_however_graph_spells_it() {
        for id in [
            "Integer 0x0036",
            "Integer 0x36",
            "integer 0X36",
            "Long 0x0036",
            " Integer  0x036 ",
        ] {
            assert!(is_sensitivity_id(id), "{id}");
        }
        for id in [
            "Integer 0x0037",
            "String 0x0036",
            "Integer 36",
            "Integer 0x",
            "Integer 0x00036",
            "Integer {00020329-0000-0000-C000-000000000046} Id 0x36",
            "",
            "Integer",
        ] {
            assert!(!is_sensitivity_id(id), "{id}");
        }
    }

    fn with_categories(cats: &[&str]) -> Contact {
        let mut b = FieldsBuilder::new();
        b.text(Field::DisplayName, "A")
            .list(Field::Categories, cats.iter().copied());
        ContactParts {
            id: "a".into(),
            fields: b.build(),
            ..Default::default()
        }
        .into()
    }

    #[test]
    fn private_categories_compare_without_case_or_spaces_and_are_stripped() {
        let cats = PrivateCategories::default();
        assert!(is_private(&with_categories(&["VIP", " PRIVATE "]), &cats));
        assert!(!is_private(&with_categories(&["VIP", "Privately"]), &cats));
        let two = PrivateCategories::new(["Familie", "Privé", "familie", " "]);
        assert_eq!(two.names(), ["familie", "privé"]);
        assert!(two.contains("PRIVÉ"));
        assert!(!PrivateCategories::none().any_in(&with_categories(&["Private"])));
        let stripped =
            without_private_categories(&with_categories(&["VIP", "private", "Ops"]), &cats)
                .unwrap();
        assert_eq!(
            stripped.fields.list(Field::Categories).collect::<Vec<_>>(),
            ["VIP", "Ops"]
        );
        assert!(without_private_categories(&with_categories(&["VIP"]), &cats).is_none());
        let only = without_private_categories(&with_categories(&["Private"]), &cats).unwrap();
        assert!(!only.fields.is_set(Field::Categories));
    }

    #[test]
    fn the_flag_alone_makes_a_contact_private() {
        let mut c = with_categories(&[]);
        assert!(!is_private(&c, &PrivateCategories::none()));
        c.set_private_flag(true);
        assert!(is_private(&c, &PrivateCategories::none()));
    }

    #[test]
    fn the_hub_is_borrowed_unless_a_contact_carries_a_private_category() {
        let cats = PrivateCategories::default();
        let hub = MailboxSnapshot::complete("hub", vec![with_categories(&["VIP"])]);
        assert!(matches!(strip_hub(&hub, &cats), Cow::Borrowed(_)));
        let hub = MailboxSnapshot::complete(
            "hub",
            vec![with_categories(&["VIP"]), with_categories(&["Private"])],
        );
        let s = strip_hub(&hub, &cats);
        assert!(matches!(s, Cow::Owned(_)));
        assert!(!s.contacts[1].fields.is_set(Field::Categories));
        assert_eq!(s.contacts[0], hub.contacts[0]);
    }
}
