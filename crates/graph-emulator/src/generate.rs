//! Deterministic synthetic scenarios (`graph-emulator generate`, crates/graph-emulator/README.md,
//! "Binary"): one tenant, one app with both permissions and a secret, an empty unlicensed hub
//! mailbox, and N licensed users with M contacts each, drawn from a pool of P people.
//!
//! Same options, same bytes: everything comes from one `SmallRng` seeded with `seed` (its stream
//! is pinned by Cargo.lock, not guaranteed across rand versions) and a fixed base date. This module
//! never reads the clock or the environment.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{Map, Value, json};

use crate::scenario::{App, AssignedLicense, Domain, Scenario, Tenant, User};

/// Options of `graph-emulator generate`.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub users: usize,
    pub contacts_per_user: usize,
    /// Distinct people to draw from; `None` = users × contacts_per_user (no overlap).
    pub pool: Option<usize>,
    /// Share of contact copies that differ from the pool's version (0.0–1.0).
    pub edits: f64,
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            users: 3,
            contacts_per_user: 5,
            pool: None,
            edits: 0.0,
            seed: 1,
        }
    }
}

/// Options added to `generate` after [`GenerateOptions`]' original set; kept in their own struct
/// so code that builds a `GenerateOptions` literal keeps compiling.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerateExtras {
    /// Share (0.0–1.0) of the users' contacts their owner marked private, alternately by the
    /// Outlook category "Private" and by the Private flag (PidTagSensitivity, the extended
    /// property `Integer 0x0036`, = 2). Drawn from its own seeded stream, so 0 gives exactly
    /// the bytes `generate` gives.
    pub private: f64,
}

/// The Microsoft 365 E3 SKU id, as the licence every generated user holds.
pub const E3_SKU: &str = "05e9a617-0261-4cee-bb44-138d3ef5d965";
const DOMAIN: &str = "contoso.com";
const INITIAL_DOMAIN: &str = "contoso.onmicrosoft.com";

const GIVEN: &[&str] = &[
    "Adele",
    "Alex",
    "Diego",
    "Grady",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
    "Zoë",
    "José",
    "Łukasz",
    "Søren",
    "François",
    "Ángel",
    "Björn",
    "Chloé",
    "Dương",
    "Ingrid",
    "Kenji",
    "Amara",
    "Rafael",
    "Siobhán",
    "Yusuf",
];
const SURNAMES: &[&str] = &[
    "Vance",
    "Wilber",
    "Siciliani",
    "Archie",
    "Langer",
    "Lauer",
    "Sherman",
    "Gu",
    "Holloway",
    "Robinson",
    "Bowen",
    "Garcia",
    "Wilke",
    "Fernandez",
    "Gupta",
    "Müller",
    "O'Brien",
    "Nowak",
    "Øvergård",
    "Dubois",
    "Núñez",
    "Johansson",
    "Nguyễn",
    "Tanaka",
    "Okafor",
    "Costa",
    "Kelly",
    "Yılmaz",
    "Schäfer",
    "Lefèvre",
];
const COMPANIES: &[(&str, &str)] = &[
    ("Fabrikam", "fabrikam.com"),
    ("Northwind Traders", "northwindtraders.com"),
    ("Tailspin Toys", "tailspintoys.com"),
    ("Wide World Importers", "wideworldimporters.com"),
    ("Adventure Works", "adventure-works.com"),
    ("Woodgrove Bank", "woodgrovebank.com"),
    ("Alpine Ski House", "alpineskihouse.com"),
    ("Coho Winery", "cohowinery.com"),
    ("Lucerne Publishing", "lucernepublishing.com"),
    ("Trey Research", "treyresearch.net"),
    ("Fourth Coffee", "fourthcoffee.com"),
    ("Margie's Travel", "margiestravel.com"),
    ("Bäckerei Schäfer GmbH", "baeckerei-schaefer.de"),
    ("Société Générale du Café", "sgcafe.fr"),
    ("Humongous Insurance", "humongousinsurance.com"),
];
const TITLES: &[&str] = &[
    "Account Manager",
    "Buyer",
    "CFO",
    "Consultant",
    "Designer",
    "Engineer",
    "Head of Sales",
    "Office Manager",
    "Product Owner",
    "Project Lead",
    "Purchasing",
    "Sales Director",
    "Support Specialist",
    "Technician",
    "Directrice financière",
];
const DEPARTMENTS: &[&str] = &[
    "Sales",
    "Finance",
    "Operations",
    "IT",
    "Marketing",
    "Purchasing",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Redmond", "98052", "United States"),
    ("München", "80331", "Germany"),
    ("Paris", "75002", "France"),
    ("Oslo", "0150", "Norway"),
    ("London", "EC1A 1BB", "United Kingdom"),
];

/// Lower-case ASCII for mail local parts (Zoë → zoe, Łukasz → lukasz, O'Brien → obrien).
fn ascii_fold(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        let mapped = match c {
            'a'..='z' | '0'..='9' => Some(c.to_string()),
            'à' | 'á' | 'â' | 'ã' | 'å' => Some("a".into()),
            'ä' | 'æ' => Some("ae".into()),
            'ç' => Some("c".into()),
            'è' | 'é' | 'ê' | 'ë' | 'ễ' => Some("e".into()),
            'ì' | 'í' | 'î' | 'ï' | 'ı' => Some("i".into()),
            'ł' => Some("l".into()),
            'ñ' | 'ń' => Some("n".into()),
            'ò' | 'ó' | 'ô' | 'õ' | 'ø' => Some("o".into()),
            'ö' => Some("oe".into()),
            'ù' | 'ú' | 'û' | 'ư' => Some("u".into()),
            'ü' => Some("ue".into()),
            'ß' => Some("ss".into()),
            'đ' => Some("d".into()),
            'ơ' => Some("o".into()),
            _ => None,
        };
        if let Some(m) = mapped {
            out.push_str(&m);
        }
    }
    out
}

fn pick<'a, T>(rng: &mut SmallRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn guid(rng: &mut SmallRng) -> String {
    let mut b = [0u8; 16];
    rng.fill(&mut b[..]);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// Randomness for one contact's id, drawn where the id is drawn (the same amount as before ids
/// had their Exchange layout, so the rest of a generated scenario did not change with it); the
/// id itself needs the owner's user id, which is drawn after the contacts.
fn id_seed(rng: &mut SmallRng) -> u64 {
    let mut b = [0u8; 34];
    rng.fill(&mut b[..]);
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

/// Exchange-shaped ids for a user's contacts, all in the default folder of the mailbox of the
/// user `user_id` (what the store derives for it, so the ids replay in place).
fn assign_ids(contacts: &mut [Map<String, Value>], seeds: &[u64], user_id: &str) {
    let mut space = crate::store::MailboxIds::for_user(user_id);
    let folder = space.default_folder_id();
    for (c, seed) in contacts.iter_mut().zip(seeds) {
        let id = space.new_item_id(&folder, &mut SmallRng::seed_from_u64(*seed));
        c.insert("id".into(), json!(id));
    }
}

fn phone(rng: &mut SmallRng, country: &str) -> String {
    match country {
        "Germany" => format!("+49 89 {}", rng.random_range(1_000_000..9_999_999)),
        "France" => format!(
            "+33 1 {:02} {:02} {:02} {:02}",
            rng.random_range(10..99),
            rng.random_range(10..99),
            rng.random_range(10..99),
            rng.random_range(10..99)
        ),
        "Norway" => format!(
            "+47 {} {} {}",
            rng.random_range(20..99),
            rng.random_range(10..99),
            rng.random_range(100..999)
        ),
        "United Kingdom" => format!("+44 20 7946 {:04}", rng.random_range(0..1000)),
        _ => format!("+1 425 555 {:04}", rng.random_range(100..9999)),
    }
}

/// One person of the pool, in v1.0 contact shape (without server-set properties).
fn person(rng: &mut SmallRng, index: usize) -> Map<String, Value> {
    let given = *pick(rng, GIVEN);
    let surname = *pick(rng, SURNAMES);
    let (company, domain) = *pick(rng, COMPANIES);
    let (city, postal, country) = *pick(rng, CITIES);
    // The index keeps addresses unique across the pool even when names repeat.
    let address = format!(
        "{}.{}{index}@{domain}",
        ascii_fold(given),
        ascii_fold(surname)
    );
    let mut emails = vec![json!({"name": format!("{given} {surname}"), "address": address})];
    if rng.random_bool(0.2) {
        emails.push(json!({
            "name": format!("{given} {surname}"),
            "address": format!("{}{index}@outlook.com", ascii_fold(given)),
        }));
    }
    let mut business_phones = vec![json!(phone(rng, country))];
    if rng.random_bool(0.15) {
        business_phones.push(json!(phone(rng, country)));
    }
    let mut c = Map::new();
    c.insert("givenName".into(), json!(given));
    c.insert("surname".into(), json!(surname));
    c.insert("displayName".into(), json!(format!("{given} {surname}")));
    c.insert("companyName".into(), json!(company));
    c.insert("jobTitle".into(), json!(*pick(rng, TITLES)));
    if rng.random_bool(0.6) {
        c.insert("department".into(), json!(*pick(rng, DEPARTMENTS)));
    }
    c.insert("emailAddresses".into(), Value::Array(emails));
    c.insert("businessPhones".into(), Value::Array(business_phones));
    if rng.random_bool(0.7) {
        c.insert("mobilePhone".into(), json!(phone(rng, country)));
    }
    if rng.random_bool(0.4) {
        c.insert(
            "businessAddress".into(),
            json!({"street": format!("{} Main Street", rng.random_range(1..200)), "city": city,
                   "postalCode": postal, "countryOrRegion": country}),
        );
    }
    if rng.random_bool(0.1) {
        c.insert("categories".into(), json!(["Customers"]));
    }
    c
}

/// An edited copy: another phone or a new job title (crates/graph-emulator/README.md, "Binary"
/// `--edits`).
fn edit(rng: &mut SmallRng, c: &mut Map<String, Value>) {
    match rng.random_range(0..3) {
        0 => {
            c.insert("mobilePhone".into(), json!(phone(rng, "United States")));
        }
        1 => {
            c.insert("jobTitle".into(), json!(*pick(rng, TITLES)));
        }
        _ => {
            c.insert(
                "businessPhones".into(),
                json!([phone(rng, "United Kingdom")]),
            );
        }
    }
}

/// [`generate`] with the extra options. Deterministic in both (same seed and options → same
/// JSON bytes).
pub fn generate_with(opts: &GenerateOptions, extras: &GenerateExtras) -> Scenario {
    let mut s = generate(opts);
    if extras.private > 0.0 {
        mark_private(&mut s, opts.seed, extras.private.clamp(0.0, 1.0));
    }
    s
}

/// Marks a share of the user contacts private (see [`GenerateExtras::private`]).
fn mark_private(s: &mut Scenario, seed: u64, share: f64) {
    // Its own stream ("PRIV"), so the rest of the scenario does not depend on `share`.
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5052_4956);
    let mut by_category = true;
    for user in &mut s.tenants[0].users {
        for c in &mut user.contacts {
            if !rng.random_bool(share) {
                continue;
            }
            if by_category {
                let mut categories = c
                    .get("categories")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                categories.push(json!("Private"));
                c.insert("categories".into(), Value::Array(categories));
            } else {
                c.insert(
                    crate::extprops::KEY.into(),
                    json!([{"id": "Integer 0x0036", "value": "2"}]),
                );
            }
            by_category = !by_category;
        }
    }
}

/// Builds the scenario. Deterministic in `opts` (same seed and options → same JSON bytes).
pub fn generate(opts: &GenerateOptions) -> Scenario {
    let mut rng = SmallRng::seed_from_u64(opts.seed);
    let pool_size = opts
        .pool
        .unwrap_or(opts.users * opts.contacts_per_user)
        .max(1);
    let pool: Vec<Map<String, Value>> = (0..pool_size).map(|i| person(&mut rng, i)).collect();
    let base = jiff::Timestamp::from_second(1_767_600_000).expect("fixed date is valid"); // 2026-01-05
    let tenant_id = guid(&mut rng);
    let client_id = guid(&mut rng);
    let secret: String = (0..40)
        .map(|_| {
            let chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-";
            chars[rng.random_range(0..chars.len())] as char
        })
        .collect();

    let mut users = vec![User {
        id: Some(guid(&mut rng)),
        user_principal_name: format!("hub@{DOMAIN}"),
        display_name: Some("All Contacts Hub".into()),
        mail: Some(format!("hub@{DOMAIN}")),
        // Shared mailboxes are unlicensed and usually blocked for sign-in (docs/graph-facts.md §4).
        account_enabled: Some(false),
        assigned_licenses: vec![],
        mailbox: Some(true),
        contacts: vec![],
        contact_folders: vec![],
        contact_groups: vec![],
    }];
    let per_user = opts.contacts_per_user.min(pool_size);
    let mut taken = std::collections::HashSet::new();
    for u in 0..opts.users {
        let given = *pick(&mut rng, GIVEN);
        let surname = *pick(&mut rng, SURNAMES);
        let mut local = format!("{}.{}", ascii_fold(given), ascii_fold(surname));
        if !taken.insert(local.clone()) {
            local = format!("{local}{u}");
            taken.insert(local.clone());
        }
        let upn = format!("{local}@{DOMAIN}");
        let mut contacts = Vec::with_capacity(per_user);
        let mut id_seeds = Vec::with_capacity(per_user);
        for k in 0..per_user {
            // Consecutive pool slots modulo P: distinct within a user, shared across users
            // when P < N × M.
            let idx = (u * opts.contacts_per_user + k) % pool_size;
            let mut c = pool[idx].clone();
            let created = base + jiff::SignedDuration::from_secs(rng.random_range(0..86_400 * 30));
            let mut modified = created + jiff::SignedDuration::from_secs(rng.random_range(0..3600));
            if opts.edits > 0.0 && rng.random_bool(opts.edits.clamp(0.0, 1.0)) {
                edit(&mut rng, &mut c);
                modified += jiff::SignedDuration::from_secs(rng.random_range(86_400..86_400 * 20));
            }
            // Filled by assign_ids once the owner's id is known (inserted now for key order).
            c.insert("id".into(), Value::Null);
            id_seeds.push(id_seed(&mut rng));
            c.insert(
                "createdDateTime".into(),
                json!(crate::contact::format_ts(created)),
            );
            c.insert(
                "lastModifiedDateTime".into(),
                json!(crate::contact::format_ts(modified)),
            );
            contacts.push(c);
        }
        let user_id = guid(&mut rng);
        assign_ids(&mut contacts, &id_seeds, &user_id);
        users.push(User {
            id: Some(user_id),
            user_principal_name: upn.clone(),
            display_name: Some(format!("{given} {surname}")),
            mail: Some(upn),
            account_enabled: Some(true),
            assigned_licenses: vec![AssignedLicense {
                sku_id: E3_SKU.into(),
                disabled_plans: vec![],
            }],
            mailbox: Some(true),
            contacts,
            contact_folders: vec![],
            contact_groups: vec![],
        });
    }
    Scenario {
        tenants: vec![Tenant {
            tenant_id,
            display_name: Some("Contoso".into()),
            domains: vec![
                Domain {
                    id: INITIAL_DOMAIN.into(),
                    is_initial: true,
                    is_default: false,
                },
                Domain {
                    id: DOMAIN.into(),
                    is_initial: false,
                    is_default: true,
                },
            ],
            apps: vec![App {
                client_id,
                client_secret: Some(secret),
                certificate_pem: None,
                federated: vec![],
                roles: vec!["Contacts.ReadWrite".into(), "User.Read.All".into()],
                mailbox_scope: None,
            }],
            users,
            groups: vec![],
        }],
        token_lifetime_seconds: None,
        quirks: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn opts(users: usize, m: usize, pool: Option<usize>, edits: f64) -> GenerateOptions {
        GenerateOptions {
            users,
            contacts_per_user: m,
            pool,
            edits,
            seed: 42,
        }
    }

    fn primary_addresses(s: &Scenario) -> Vec<String> {
        s.tenants[0].users[1..]
            .iter()
            .flat_map(|u| &u.contacts)
            .map(|c| {
                c["emailAddresses"][0]["address"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn same_seed_same_bytes_and_valid() {
        let a = generate(&opts(4, 6, Some(10), 0.3)).to_json_pretty();
        assert_eq!(a, generate(&opts(4, 6, Some(10), 0.3)).to_json_pretty());
        Scenario::from_json(&a).expect("generated scenarios validate");
    }

    #[test]
    fn hub_is_unlicensed_with_an_empty_mailbox_and_users_are_licensed() {
        let s = generate(&opts(3, 2, None, 0.0));
        let t = &s.tenants[0];
        let default = t.domains.iter().find(|d| d.is_default).unwrap();
        let hub = &t.users[0];
        assert_eq!(hub.user_principal_name, format!("hub@{}", default.id));
        assert!(hub.assigned_licenses.is_empty() && hub.has_mailbox() && hub.contacts.is_empty());
        assert_eq!(t.users.len(), 4);
        assert!(
            t.users[1..]
                .iter()
                .all(|u| u.assigned_licenses.len() == 1 && u.contacts.len() == 2)
        );
        let app = &t.apps[0];
        assert!(app.client_secret.is_some());
        assert!(app.roles.contains(&"Contacts.ReadWrite".to_string()));
        assert!(app.roles.contains(&"User.Read.All".to_string()));
    }

    #[test]
    fn default_pool_has_no_overlap_and_a_small_pool_is_shared() {
        let s = generate(&opts(5, 4, None, 0.0));
        let all = primary_addresses(&s);
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), 20);
        let s = generate(&opts(5, 4, Some(7), 0.0));
        let all = primary_addresses(&s);
        assert_eq!(all.len(), 20);
        assert_eq!(
            all.iter().collect::<HashSet<_>>().len(),
            7,
            "every pool person is used"
        );
        for u in &s.tenants[0].users[1..] {
            let mine: HashSet<_> = u
                .contacts
                .iter()
                .map(|c| c["emailAddresses"][0]["address"].clone())
                .collect();
            assert_eq!(mine.len(), 4, "no duplicates within one mailbox");
        }
    }

    #[test]
    fn edits_make_copies_differ_and_move_last_modified() {
        let plain = generate(&opts(6, 5, Some(5), 0.0));
        let edited = generate(&opts(6, 5, Some(5), 0.5));
        // With no edits, every copy of a person is identical apart from server fields.
        let strip = |c: &Map<String, Value>| {
            let mut c = c.clone();
            for k in ["id", "createdDateTime", "lastModifiedDateTime"] {
                c.remove(k);
            }
            c
        };
        let distinct = |s: &Scenario| {
            s.tenants[0].users[1..]
                .iter()
                .flat_map(|u| &u.contacts)
                .map(|c| serde_json::to_string(&strip(c)).unwrap())
                .collect::<HashSet<_>>()
                .len()
        };
        assert_eq!(distinct(&plain), 5);
        assert!(
            distinct(&edited) > 5,
            "edited copies differ from the pool version"
        );
        let late = |s: &Scenario| {
            s.tenants[0].users[1..]
                .iter()
                .flat_map(|u| &u.contacts)
                .filter(|c| {
                    let ts = |k: &str| c[k].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
                    ts("lastModifiedDateTime").as_second() - ts("createdDateTime").as_second()
                        >= 86_400
                })
                .count()
        };
        assert_eq!(late(&plain), 0);
        assert!(
            late(&edited) > 0,
            "edited copies carry later lastModifiedDateTime"
        );
    }

    #[test]
    fn a_share_of_contacts_is_private_by_category_or_flag_deterministically() {
        let o = opts(10, 20, None, 0.1);
        let none = generate_with(&o, &GenerateExtras::default());
        assert_eq!(none.to_json_pretty(), generate(&o).to_json_pretty());
        let extras = GenerateExtras { private: 0.25 };
        let a = generate_with(&o, &extras);
        assert_eq!(
            a.to_json_pretty(),
            generate_with(&o, &extras).to_json_pretty()
        );
        Scenario::from_json(&a.to_json_pretty()).expect("valid");
        let contacts: Vec<&Map<String, Value>> = a.tenants[0]
            .users
            .iter()
            .flat_map(|u| &u.contacts)
            .collect();
        let by_category = contacts
            .iter()
            .filter(|c| {
                c.get("categories")
                    .and_then(Value::as_array)
                    .is_some_and(|v| v.contains(&json!("Private")))
            })
            .count();
        let by_flag = contacts
            .iter()
            .filter(|c| {
                c.get("singleValueExtendedProperties")
                    == Some(&json!([{"id": "Integer 0x0036", "value": "2"}]))
            })
            .count();
        let marked = by_category + by_flag;
        assert!((30..=70).contains(&marked), "{marked} of 200 at 25 %");
        assert!(
            by_category.abs_diff(by_flag) <= 1,
            "{by_category} vs {by_flag}"
        );
        // Everything else is as generate made it.
        let strip = |s: &Scenario| {
            let mut s = s.clone();
            for u in &mut s.tenants[0].users {
                for c in &mut u.contacts {
                    c.remove("categories");
                    c.remove("singleValueExtendedProperties");
                }
            }
            s
        };
        assert_eq!(strip(&a), strip(&generate(&o)));
    }

    #[test]
    fn includes_non_ascii_text_and_ascii_addresses() {
        let s = generate(&opts(10, 10, None, 0.0));
        let json = s.to_json_pretty();
        assert!(!json.is_ascii(), "some names are non-ASCII");
        for a in primary_addresses(&s) {
            assert!(a.is_ascii(), "{a}");
        }
    }
}
