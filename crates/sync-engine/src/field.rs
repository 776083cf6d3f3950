//! The contact properties synccontacts can sync, as data: each Graph v1.0 property with its type
//! ([`Kind`]), and the configured set of them ([`FieldSet`], the tenant option `Fields`).
//!
//! The set always holds the twelve fields of docs/compatibility.md §7 (the default, exactly today's
//! behaviour); `Fields` adds writable v1.0 contact properties by name, or `"all"` adds every one
//! listed here (docs/graph-facts.md §1's table and the emulator's `contact.rs`). Left out on
//! purpose:
//!
//! - `fileAs`: Exchange ties it to a per-contact *FileAsMapping* that defines how it is built from
//!   the name and company parts (EWS `FileAsMapping` element,
//!   learn.microsoft.com/exchange/client-developer/web-service-reference/fileasmapping;
//!   docs/graph-facts.md §9); Graph v1.0 can neither read nor set that mapping, and whether
//!   Exchange rebuilds a written fileAs when a name part changes is undocumented. If it does, a
//!   synced fileAs would read back different after our write and the next run would write it again
//!   (a loop, I1). It follows from givenName/surname/companyName, which are synced anyway. Refused
//!   by name (the safe reading).
//! - `personalNotes`: each copy's own text plus the tag line (I3); never synced as a field.
//! - server-set properties (`id`, `createdDateTime`, `lastModifiedDateTime`, `changeKey`,
//!   `parentFolderId`): not writable (docs/graph-facts.md §1 "What PATCH accepts").
//!
//! Server-computed values that *are* safe: `displayName` is sent in every update (Graph may
//! regenerate it when other name fields change, contact-update.md; docs/graph-facts.md §1), and
//! `initials` is stored as written (a read/write property in Outlook and EWS; v1.0 captures show
//! it `null` on contacts created without one, docs/graph-facts.md §9 and the emulator). Pure data:
//! no I/O.

use std::fmt;

/// How a property's value is shaped in Graph's JSON, and so how it is compared and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `String`: unset reads `null`; `null`, a missing key and `""` are the same value.
    Text,
    /// `String collection`: unset reads `[]`; order, case and spaces are user data.
    TextList,
    /// `emailAddress collection`: `[{"name", "address"}]`; a name that is missing, empty or equal
    /// to the address is "no name" (docs/graph-facts.md §9).
    Emails,
    /// `physicalAddress`: `{"street","city","state","countryOrRegion","postalCode"}`; unset reads
    /// `{}`, an object holds only its set keys (docs/graph-facts.md §9); a missing key, `null` and
    /// `""` are the same value.
    Address,
    /// `DateTimeOffset` holding a date (`birthday`): compared by its UTC calendar date, because the
    /// time of day Exchange stores is not ours (the emulator stores a date-only value at 11:59 UTC,
    /// docs/graph-facts.md §1 and §9 "compare by calendar date").
    Date,
}

macro_rules! fields {
    ($($variant:ident = $name:literal : $kind:ident,)*) => {
        /// A contact property synccontacts can sync. The first twelve are
        /// docs/compatibility.md §7's, in its order; the rest follow alphabetically. The
        /// discriminant is the property's bit in a [`FieldSet`] and its place in the value block
        /// (`values`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Field { $($variant,)* }

        impl Field {
            /// Every supported property, in [`Field`] order.
            pub const SUPPORTED: &'static [Field] = &[$(Field::$variant,)*];
            const NAMES: &'static [&'static str] = &[$($name,)*];
            const KINDS: &'static [Kind] = &[$(Kind::$kind,)*];

            /// The property with this JSON name (exact spelling, as Graph sends it).
            pub fn from_json_name(name: &str) -> Option<Field> {
                match name {
                    $($name => Some(Field::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

fields! {
    DisplayName = "displayName": Text,
    GivenName = "givenName": Text,
    Surname = "surname": Text,
    CompanyName = "companyName": Text,
    JobTitle = "jobTitle": Text,
    Department = "department": Text,
    BusinessPhones = "businessPhones": TextList,
    MobilePhone = "mobilePhone": Text,
    HomePhones = "homePhones": TextList,
    EmailAddresses = "emailAddresses": Emails,
    ImAddresses = "imAddresses": TextList,
    Categories = "categories": TextList,
    AssistantName = "assistantName": Text,
    Birthday = "birthday": Date,
    BusinessAddress = "businessAddress": Address,
    BusinessHomePage = "businessHomePage": Text,
    Children = "children": TextList,
    Generation = "generation": Text,
    HomeAddress = "homeAddress": Address,
    Initials = "initials": Text,
    Manager = "manager": Text,
    MiddleName = "middleName": Text,
    NickName = "nickName": Text,
    OfficeLocation = "officeLocation": Text,
    OtherAddress = "otherAddress": Address,
    Profession = "profession": Text,
    SpouseName = "spouseName": Text,
    Title = "title": Text,
    YomiCompanyName = "yomiCompanyName": Text,
    YomiGivenName = "yomiGivenName": Text,
    YomiSurname = "yomiSurname": Text,
}

/// The keys of a `physicalAddress`, in the order the value block keeps them.
pub const ADDRESS_KEYS: [&str; 5] = ["street", "city", "state", "countryOrRegion", "postalCode"];

impl Field {
    /// The twelve fields of docs/compatibility.md §7, in its order (the default set).
    pub const DEFAULT: [Field; 12] = [
        Field::DisplayName,
        Field::GivenName,
        Field::Surname,
        Field::CompanyName,
        Field::JobTitle,
        Field::Department,
        Field::BusinessPhones,
        Field::MobilePhone,
        Field::HomePhones,
        Field::EmailAddresses,
        Field::ImAddresses,
        Field::Categories,
    ];

    /// Graph's JSON name, e.g. `mobilePhone`.
    pub fn json_name(self) -> &'static str {
        Self::NAMES[self as usize]
    }

    pub fn kind(self) -> Kind {
        Self::KINDS[self as usize]
    }

    /// Its bit in a [`FieldSet`].
    pub(crate) fn bit(self) -> u32 {
        1 << self as u32
    }
}

impl serde::Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.json_name())
    }
}

/// A set of [`Field`]s: the fields a tenant syncs (`PlanInput::fields`), or the fields one write
/// sends. [`FieldSet::default`] is the docs/compatibility.md §7 set.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldSet(u32);

impl Default for FieldSet {
    fn default() -> Self {
        FieldSet::DEFAULT
    }
}

impl FieldSet {
    /// No field.
    pub const EMPTY: FieldSet = FieldSet(0);
    /// The twelve fields of docs/compatibility.md §7 (`Fields` not given).
    pub const DEFAULT: FieldSet = FieldSet((1 << 12) - 1);
    /// Every supported property (`Fields: "all"`).
    pub const ALL: FieldSet = FieldSet((1 << Field::SUPPORTED.len()) - 1);

    pub fn contains(self, f: Field) -> bool {
        self.0 & f.bit() != 0
    }

    pub fn with(self, f: Field) -> FieldSet {
        FieldSet(self.0 | f.bit())
    }

    pub fn union(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 | other.0)
    }

    pub fn intersection(self, other: FieldSet) -> FieldSet {
        FieldSet(self.0 & other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The fields of the set, in [`Field`] order.
    pub fn iter(self) -> impl Iterator<Item = Field> + Clone {
        Field::SUPPORTED
            .iter()
            .copied()
            .filter(move |f| self.contains(*f))
    }

    pub fn of(fields: impl IntoIterator<Item = Field>) -> FieldSet {
        FieldSet(fields.into_iter().fold(0, |m, f| m | f.bit()))
    }

    pub(crate) fn bits(self) -> u32 {
        self.0
    }

    /// The set of these bits (bits of no supported field are dropped).
    pub(crate) fn of_bits(bits: u32) -> FieldSet {
        FieldSet(bits & FieldSet::ALL.0)
    }

    /// The tenant option `Fields`: the docs/compatibility.md §7 fields plus every property named
    /// (Graph's JSON names, matched case-insensitively), or every supported property for `"all"`.
    /// An empty list is the default set. Every name that is not a supported property is refused at
    /// once; the message lists the valid names (and says why `fileAs`, `personalNotes` and
    /// server-set properties are not among them).
    pub fn parse(names: &[String]) -> Result<FieldSet, String> {
        let mut set = FieldSet::DEFAULT;
        let mut refused: Vec<String> = Vec::new();
        let mut why: Vec<&str> = Vec::new();
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            if name.eq_ignore_ascii_case("all") {
                set = set.union(FieldSet::ALL);
                continue;
            }
            if let Some(f) = Field::SUPPORTED
                .iter()
                .find(|f| f.json_name().eq_ignore_ascii_case(name))
            {
                set = set.with(*f);
                continue;
            }
            refused.push(format!("`{name}`"));
            let reason = match name.to_ascii_lowercase().as_str() {
                "fileas" => {
                    "fileAs is built by Exchange from the name fields (a FileAsMapping Graph cannot \
                     set), so syncing it could write it again on every run"
                }
                "personalnotes" => {
                    "personalNotes are each copy's own notes and the sync's tag line, never synced"
                }
                "id"
                | "createddatetime"
                | "lastmodifieddatetime"
                | "changekey"
                | "parentfolderid" => "id, times, changeKey and parentFolderId are set by Graph",
                _ => continue,
            };
            if !why.contains(&reason) {
                why.push(reason);
            }
        }
        if refused.is_empty() {
            return Ok(set);
        }
        let mut valid: Vec<&str> = Field::SUPPORTED.iter().map(|f| f.json_name()).collect();
        valid.sort_unstable_by_key(|n| n.to_ascii_lowercase());
        let mut msg = format!(
            "{} {} not a contact property synccontacts can sync",
            refused.join(", "),
            if refused.len() == 1 { "is" } else { "are" }
        );
        for w in why {
            msg.push_str(" (");
            msg.push_str(w);
            msg.push(')');
        }
        msg.push_str(&format!(
            "; valid names: {}, or \"all\" (the default fields displayName, givenName, surname, \
             companyName, jobTitle, department, businessPhones, mobilePhone, homePhones, \
             emailAddresses, imAddresses and categories are always synced)",
            valid.join(", ")
        ));
        Err(msg)
    }

    /// The `$select` value for reading contacts with this set: `id`, `lastModifiedDateTime`,
    /// `personalNotes`, then the set's properties in [`Field`] order, and `categories` even if it
    /// were not synced (the privacy rules read it). For the default set this is exactly the list
    /// synccontacts has always sent.
    pub fn select_list(self) -> String {
        let mut s = String::from("id,lastModifiedDateTime,personalNotes");
        for f in self.with(Field::Categories).iter() {
            s.push(',');
            s.push_str(f.json_name());
        }
        s
    }
}

impl fmt::Debug for FieldSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == FieldSet::DEFAULT {
            return f.write_str("FieldSet(default)");
        }
        f.debug_set()
            .entries(self.iter().map(Field::json_name))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_registry_is_consistent() {
        assert_eq!(Field::SUPPORTED.len(), 31);
        for (i, f) in Field::SUPPORTED.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(Field::from_json_name(f.json_name()), Some(*f));
        }
        assert_eq!(
            FieldSet::DEFAULT.iter().collect::<Vec<_>>(),
            Field::DEFAULT.to_vec()
        );
        assert_eq!(FieldSet::ALL.len(), 31);
        assert_eq!(Field::from_json_name("fileAs"), None);
    }

    #[test]
    fn the_default_select_list_is_unchanged() {
        assert_eq!(
            FieldSet::DEFAULT.select_list(),
            "id,lastModifiedDateTime,personalNotes,displayName,givenName,surname,companyName,\
             jobTitle,department,businessPhones,mobilePhone,homePhones,emailAddresses,\
             imAddresses,categories"
        );
        let s = FieldSet::parse(&names(&["birthday", "homeAddress"]))
            .unwrap()
            .select_list();
        assert!(s.ends_with(",categories,birthday,homeAddress"), "{s}");
    }

    #[test]
    fn parse_adds_to_the_default_case_insensitively_and_all_is_everything() {
        assert_eq!(FieldSet::parse(&[]).unwrap(), FieldSet::DEFAULT);
        let s = FieldSet::parse(&names(&["BusinessAddress", " nickName "])).unwrap();
        assert_eq!(s.len(), 14);
        assert!(s.contains(Field::BusinessAddress) && s.contains(Field::NickName));
        assert!(s.contains(Field::Categories));
        assert_eq!(FieldSet::parse(&names(&["all"])).unwrap(), FieldSet::ALL);
        assert_eq!(
            FieldSet::parse(&names(&["ALL", "birthday"])).unwrap(),
            FieldSet::ALL
        );
    }

    #[test]
    fn parse_refuses_unknown_names_listing_the_valid_ones() {
        let e = FieldSet::parse(&names(&["phones", "birthday", "fileAs"])).unwrap_err();
        assert!(e.starts_with("`phones`, `fileAs` are not"), "{e}");
        assert!(e.contains("FileAsMapping"), "{e}");
        for f in Field::SUPPORTED {
            assert!(e.contains(f.json_name()), "{e} lacks {}", f.json_name());
        }
        assert!(e.contains("\"all\""));
        let e = FieldSet::parse(&names(&["personalNotes"])).unwrap_err();
        assert!(e.contains("tag line"), "{e}");
    }
}
