//! The tenant-field table: every field a tenant object may hold, declared once — its canonical
//! name, whether the config JSON's top level may give it too, whether it is required, how its JSON
//! value is read and validated, where it is stored, and what to tell the user when it is refused.
//!
//! Everything generic about a field follows from its row: case-insensitive lookup, two spellings
//! with different values, "must be a string", unknown-field warnings, the "tenant field next to
//! MicrosoftTenants" problem, the top-level default and "is missing". Rules that span fields
//! (exactly one credential) stay in stage one's tenant reader; loading what a field names (files,
//! variables) is stage two's. Reading a field never reads a file or the environment.

use graph::{Cloud, Secret};
use sync_engine::plan::{Deletes, UserDeletes};

use super::credential::CredentialConfig;
use super::low::LowTenant;
use super::ordered_json::{JsonObject, OrderedJson};
use super::problem::Findings;
use super::scope;
use super::values::{check_root_url, parse_flag};

/// A tenant's sync options: settings with a default, which a tenant may override and, when their
/// row is `top_level`, the config JSON's top level may set for every tenant. The README's "Tenant
/// fields" table documents each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantOptions {
    /// `UpdateExisting`: older copies that differ are updated (`true`, the default); `false` only
    /// creates and stamps.
    pub update_existing: bool,
    /// `Deletes`: `"hub"` (the default: a contact deleted from the hub is deleted from every
    /// user) or `"off"` (nothing is deleted; the deletes are only printed).
    pub deletes: Deletes,
    /// `UserDeletes`: `"restore"` (the default: a copy a user deleted comes back) or `"respect"`.
    pub user_deletes: UserDeletes,
    /// `MaxDeletes`: hold every delete when a run would remove more than this many contacts
    /// from the book; `None`: the default brake (more than 10 and more than 10 % of the hub).
    pub max_deletes: Option<usize>,
    /// `Fields`: the contact properties synced — docs/compatibility.md §7's twelve, plus those
    /// named, or every supported one for `"all"` ([`sync_engine::FieldSet::parse`]).
    pub fields: sync_engine::FieldSet,
    /// `PrivateCategories`: a user's contact filed under one of these Outlook categories (compared
    /// without case) is private, like one with Outlook's Private flag: never collected, withdrawn
    /// once shared (docs/state-and-deletes.md §4). Default `["Private"]`; `[]` leaves only the
    /// flag.
    pub private_categories: sync_engine::PrivateCategories,
}

impl Default for TenantOptions {
    fn default() -> Self {
        Self {
            update_existing: true,
            deletes: Deletes::default(),
            user_deletes: UserDeletes::default(),
            max_deletes: None,
            fields: sync_engine::FieldSet::DEFAULT,
            private_categories: sync_engine::PrivateCategories::default(),
        }
    }
}

/// How a field's JSON value is read and where it is stored. A setter returns `Err(text)` to
/// refuse a value; the problem shows the text with the row's `fix`.
pub(super) enum FieldValue {
    /// A string, trimmed; blank or null counts as absent. Another JSON type is refused with
    /// "write it in quotes".
    Text(fn(&mut LowTenant, String) -> Result<(), String>),
    /// A JSON boolean or one of `true/1/yes/y`, `false/0/no/n` (any case); null counts as absent.
    Flag(fn(&mut LowTenant, bool) -> Result<(), String>),
    /// An array of strings, or a single string (PowerShell's ConvertTo-Json unwraps one-element
    /// arrays); items trimmed, blank ones dropped, duplicates dropped case-insensitively; null
    /// counts as absent, `[]` reaches the setter empty. `item` names one element in messages.
    List {
        item: &'static str,
        set: fn(&mut LowTenant, Vec<String>) -> Result<(), String>,
    },
    /// A whole number ≥ 0: a JSON number, or a string of digits (how a CI variable spliced into
    /// JSON often arrives); null counts as absent.
    Count(fn(&mut LowTenant, usize) -> Result<(), String>),
}

/// One row of [`TENANT_FIELDS`].
pub(super) struct TenantField {
    /// The canonical spelling; JSON keys match it case-insensitively (PowerShell property
    /// semantics, so `TenantID` is `TenantId`).
    pub name: &'static str,
    /// The config JSON's top level may give it too, as the default of every tenant (a tenant's own
    /// value wins). Other tenant fields at the top level next to `MicrosoftTenants` are refused.
    pub top_level: bool,
    /// A tenant without it (or with a blank value) is refused with `fix`.
    pub required: bool,
    pub value: FieldValue,
    /// What to do when the value is refused (or missing, for a required field).
    pub fix: &'static str,
}

const USER: &str = "user principal name";
const USER_LIST_FIX: &str = r#"use ["user1@contoso.com", "user2@contoso.com"]"#;
pub(super) const LOGIN_URL_FIX: &str = "give the root without a path, e.g. https://login.microsoftonline.com (synccontacts appends /<TenantId>/oauth2/v2.0/token); plain http only to 127.0.0.1, ::1 or localhost";
pub(super) const GRAPH_URL_FIX: &str = "give the root without a path, e.g. https://graph.microsoft.com (synccontacts appends /v1.0); plain http only to 127.0.0.1, ::1 or localhost";

/// Every tenant field, in the order they are read (and their problems reported).
pub(super) const TENANT_FIELDS: &[TenantField] = &[
    TenantField {
        name: "TenantId",
        top_level: false,
        required: true,
        value: FieldValue::Text(|t, v| {
            t.tenant_id = Some(v);
            Ok(())
        }),
        fix: "set it to the directory (tenant) id or its .onmicrosoft.com domain, from Entra admin center → Overview",
    },
    TenantField {
        name: "ClientId",
        top_level: false,
        required: true,
        value: FieldValue::Text(|t, v| {
            t.client_id = Some(v);
            Ok(())
        }),
        fix: "set it to the application (client) id of the app registration, from Entra admin center → App registrations",
    },
    // The four credentials: a tenant gives exactly one (checked by stage one's tenant reader, in
    // this order); stage two checks that the file or variable each names is usable.
    TenantField {
        name: "ClientSecret",
        top_level: false,
        required: false,
        value: FieldValue::Text(|t, v| {
            t.credentials.push(CredentialConfig::Secret(Secret::new(v)));
            Ok(())
        }),
        fix: "set it to a client secret of the app registration",
    },
    TenantField {
        name: "ClientCertificatePath",
        top_level: false,
        required: false,
        value: FieldValue::Text(|t, v| {
            t.credentials
                .push(CredentialConfig::CertificatePath(v.into()));
            Ok(())
        }),
        fix: "point it at a PEM file holding the certificate and its private key (in CI, a File-type variable)",
    },
    TenantField {
        name: "ClientAssertionFile",
        top_level: false,
        required: false,
        value: FieldValue::Text(|t, v| {
            t.credentials
                .push(CredentialConfig::AssertionFile(v.into()));
            Ok(())
        }),
        fix: "point it at the file holding the federated token (or use ClientAssertionEnv with a GitLab id_tokens variable)",
    },
    TenantField {
        name: "ClientAssertionEnv",
        top_level: false,
        required: false,
        value: FieldValue::Text(|t, v| {
            t.credentials.push(CredentialConfig::AssertionEnv(v));
            Ok(())
        }),
        fix: "set it to the name of the variable holding the federated token (a GitLab id_tokens variable)",
    },
    TenantField {
        name: "GlobalAddressBookUserId",
        top_level: false,
        required: true,
        value: FieldValue::Text(|t, v| {
            t.hub = Some(v);
            Ok(())
        }),
        fix: "set it to the UPN (or object id) of the shared mailbox that holds the \"All Contacts\" folder",
    },
    TenantField {
        name: "TestUserList",
        top_level: false,
        required: false,
        value: FieldValue::List {
            item: USER,
            // The script read an empty list as "not configured", hence every user: test mode
            // fails closed instead (issue 16). `null` still means absent, as for every field.
            set: |t, users| {
                if users.is_empty() {
                    return Err(
                        "is empty: an empty test-user list would sync every licensed user".into(),
                    );
                }
                t.test_users = Some(users);
                Ok(())
            },
        },
        fix: r#"list the test users, e.g. ["user1@contoso.com", "user2@contoso.com"]; to sync every licensed user, remove TestUserList"#,
    },
    // The scope rules (docs/state-and-deletes.md §4.2): tenant fields only, since a group id, a
    // group mail address or a user names an object of one directory — a run-wide default would
    // be an unknown group in every other tenant (and the top level next to MicrosoftTenants
    // refuses them, saying so). Their groups are resolved by the run (`run/groups.rs`).
    TenantField {
        name: "IncludeGroups",
        top_level: false,
        required: false,
        value: FieldValue::List {
            item: "group",
            // Fails closed, as TestUserList: `[]` would mean "members of no group", nobody.
            set: |t, groups| {
                if groups.is_empty() {
                    return Err("is empty: it would leave no user in scope".into());
                }
                t.rules.include_groups = Some(scope::group_names(groups)?);
                Ok(())
            },
        },
        fix: scope::GROUP_LIST_FIX,
    },
    TenantField {
        name: "ExcludeGroups",
        top_level: false,
        required: false,
        value: FieldValue::List {
            item: "group",
            set: |t, groups| {
                t.rules.exclude_groups = scope::group_names(groups)?;
                Ok(())
            },
        },
        fix: scope::GROUP_LIST_FIX,
    },
    TenantField {
        name: "ExcludeUsers",
        top_level: false,
        required: false,
        value: FieldValue::List {
            item: USER,
            set: |t, users| {
                t.rules.exclude_users = scope::user_names(users)?;
                Ok(())
            },
        },
        fix: scope::USER_NAME_LIST_FIX,
    },
    TenantField {
        name: "PrimaryDomain",
        top_level: false,
        required: false,
        value: FieldValue::Text(|t, v| {
            t.primary_domain = Some(v);
            Ok(())
        }),
        fix: "set it to the tenant's primary domain (a key for --tenant and the test-user map)",
    },
    TenantField {
        name: "TenantDomain",
        top_level: false,
        required: false,
        value: FieldValue::Text(|t, v| {
            t.tenant_domain = Some(v);
            Ok(())
        }),
        fix: "set it to the tenant's .onmicrosoft.com domain (a key for --tenant and the test-user map)",
    },
    TenantField {
        name: "UpdateExisting",
        top_level: true,
        required: false,
        value: FieldValue::Flag(|t, v| {
            t.options.update_existing = v;
            Ok(())
        }),
        fix: "use true or false (true is the default)",
    },
    TenantField {
        name: "Deletes",
        top_level: true,
        required: false,
        value: FieldValue::Text(|t, v| {
            t.options.deletes = match v.to_ascii_lowercase().as_str() {
                "hub" => Deletes::Hub,
                "off" => Deletes::Off,
                _ => {
                    return Err(format!(
                        "`{}` is not a known value",
                        graph::text::truncate(&v, 20)
                    ));
                }
            };
            Ok(())
        }),
        fix: r#"use "hub" (the default: a contact deleted from "All Contacts" is deleted from every user's Contacts) or "off" (nothing is ever deleted; the run prints "Would delete:" lines instead)"#,
    },
    TenantField {
        name: "UserDeletes",
        top_level: true,
        required: false,
        value: FieldValue::Text(|t, v| {
            t.options.user_deletes = match v.to_ascii_lowercase().as_str() {
                "restore" => UserDeletes::Restore,
                "respect" => UserDeletes::Respect,
                _ => {
                    return Err(format!(
                        "`{}` is not a known value",
                        graph::text::truncate(&v, 20)
                    ));
                }
            };
            Ok(())
        }),
        fix: r#"use "restore" (the default: a copy a user deleted comes back) or "respect" (that user is opted out of the contact until they create it again)"#,
    },
    TenantField {
        name: "MaxDeletes",
        top_level: true,
        required: false,
        value: FieldValue::Count(|t, n| {
            t.options.max_deletes = Some(n);
            Ok(())
        }),
        fix: "use a whole number ≥ 0: the most contacts one run may remove from the company book before it holds every delete (0 holds them all); leave it out for the default, more than 10 and more than 10 % of the hub's contacts",
    },
    TenantField {
        name: "Fields",
        top_level: true,
        required: false,
        value: FieldValue::List {
            item: "contact property name",
            set: |t, names| {
                t.options.fields = sync_engine::FieldSet::parse(&names)?;
                Ok(())
            },
        },
        fix: r#"list Graph contact property names to sync besides the default twelve, e.g. ["birthday", "homeAddress"], or use "all""#,
    },
    TenantField {
        name: "PrivateCategories",
        top_level: true,
        required: false,
        value: FieldValue::List {
            item: "Outlook category name",
            set: |t, names| {
                t.options.private_categories = sync_engine::PrivateCategories::new(names);
                Ok(())
            },
        },
        fix: r#"list the Outlook categories that mark a contact private, e.g. ["Private", "Family"] (the default is ["Private"]; [] leaves only Outlook's Private flag)"#,
    },
    TenantField {
        name: "Cloud",
        top_level: false,
        required: false,
        value: FieldValue::Text(|t, v| {
            t.cloud = v
                .parse::<Cloud>()
                .map_err(|_| format!("`{}` is not a known cloud", graph::text::truncate(&v, 40)))?;
            Ok(())
        }),
        fix: "use one of Global, USGov, USGovDoD, China (or give LoginUrl and GraphUrl)",
    },
    TenantField {
        name: "LoginUrl",
        top_level: false,
        required: false,
        value: FieldValue::Text(|t, v| {
            t.login_url = Some(check_root_url(&v)?);
            Ok(())
        }),
        fix: LOGIN_URL_FIX,
    },
    TenantField {
        name: "GraphUrl",
        top_level: false,
        required: false,
        value: FieldValue::Text(|t, v| {
            t.graph_url = Some(check_root_url(&v)?);
            Ok(())
        }),
        fix: GRAPH_URL_FIX,
    },
];

/// Whether `key` (a JSON object key) names a tenant field.
pub(super) fn is_tenant_field(key: &str) -> bool {
    TENANT_FIELDS
        .iter()
        .any(|f| f.name.eq_ignore_ascii_case(key.trim()))
}

/// Where values are read from, for messages: the variable, and the tenant when it concerns one.
#[derive(Clone, Copy, Debug)]
pub(super) struct Place<'a> {
    pub variable: &'a str,
    pub tenant: Option<&'a str>,
}

/// Reads `field` from `obj` into `target`; true when a value was given and accepted.
pub(super) fn read_field(
    found: &mut Findings,
    at: Place<'_>,
    obj: &JsonObject,
    field: &TenantField,
    target: &mut LowTenant,
) -> bool {
    let name = field.name;
    let stored = match &field.value {
        FieldValue::Text(set) => text(found, at, obj, name).map(|v| set(target, v)),
        FieldValue::Flag(set) => match lookup(found, at, obj, name).map(parse_flag) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(b))) => Some(set(target, b)),
            Some(Err(msg)) => Some(Err(msg)),
        },
        FieldValue::List { item, set } => lookup(found, at, obj, name)
            .and_then(|v| list(found, at, name, item, field.fix, v))
            .map(|v| set(target, v)),
        FieldValue::Count(set) => match lookup(found, at, obj, name).map(count) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(n))) => Some(set(target, n)),
            Some(Err(msg)) => Some(Err(msg)),
        },
    };
    match stored {
        None => false,
        Some(Ok(())) => true,
        Some(Err(msg)) => {
            found.problem(at.variable, at.tenant, Some(name), msg, field.fix);
            false
        }
    }
}

/// Looks `name` up case-insensitively (PowerShell property semantics). Two spellings with
/// different values are a problem; the first is used.
pub(super) fn lookup<'j>(
    found: &mut Findings,
    at: Place<'_>,
    obj: &'j JsonObject,
    name: &str,
) -> Option<&'j OrderedJson> {
    let hits: Vec<&(String, OrderedJson)> = obj
        .iter()
        .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .collect();
    let first = hits.first()?;
    if hits.iter().any(|(_, v)| v != &first.1) {
        let spellings: Vec<&str> = hits.iter().map(|(k, _)| k.as_str()).collect();
        found.problem(
            at.variable,
            at.tenant,
            Some(name),
            format!(
                "given more than once with different values ({})",
                spellings.join(", ")
            ),
            "keep one of them",
        );
    }
    Some(&first.1)
}

/// A whole number ≥ 0 from a JSON number or a string of digits; null (or a blank string) is
/// absent.
fn count(v: &OrderedJson) -> Result<Option<usize>, String> {
    let digits = match v {
        OrderedJson::Null => return Ok(None),
        OrderedJson::String(s) if s.trim().is_empty() => return Ok(None),
        OrderedJson::String(s) => s.trim(),
        OrderedJson::Number(n) => n.as_str(),
        other => return Err(format!("must be a whole number, found {}", other.kind())),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{}` is not a whole number ≥ 0",
            graph::text::truncate(digits, 20)
        ));
    }
    digits
        .parse()
        .map(Some)
        .map_err(|_| format!("`{}` is too large", graph::text::truncate(digits, 20)))
}

/// A string field, trimmed; blank or null is absent.
fn text(found: &mut Findings, at: Place<'_>, obj: &JsonObject, name: &str) -> Option<String> {
    match lookup(found, at, obj, name)? {
        OrderedJson::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        OrderedJson::String(_) | OrderedJson::Null => None,
        other => {
            found.problem(
                at.variable,
                at.tenant,
                Some(name),
                format!("must be a string, found {}", other.kind()),
                format!("write it in quotes: \"{name}\": \"…\""),
            );
            None
        }
    }
}

/// A list of strings: an array, or one string. `None` for null or a refused value (reported);
/// refused items are reported as `field[i]` and left out.
fn list(
    found: &mut Findings,
    at: Place<'_>,
    field: &str,
    item: &str,
    fix: &str,
    v: &OrderedJson,
) -> Option<Vec<String>> {
    let items: Vec<&OrderedJson> = match v {
        OrderedJson::Null => return None,
        OrderedJson::String(_) => vec![v],
        OrderedJson::Array(a) => a.iter().collect(),
        other => {
            found.problem(
                at.variable,
                at.tenant,
                Some(field),
                format!("must be an array of {item}s, found {}", other.kind()),
                fix,
            );
            return None;
        }
    };
    let mut out: Vec<String> = Vec::new();
    for (i, element) in items.into_iter().enumerate() {
        match element {
            OrderedJson::String(s) if s.trim().is_empty() => {}
            OrderedJson::String(s) => {
                let s = s.trim();
                if !out.iter().any(|o| o.eq_ignore_ascii_case(s)) {
                    out.push(s.to_owned());
                }
            }
            other => found.problem(
                at.variable,
                at.tenant,
                Some(&format!("{field}[{i}]")),
                format!("must be a {item} string, found {}", other.kind()),
                fix,
            ),
        }
    }
    Some(out)
}

/// The test-user map's values are user lists like `TestUserList`.
pub(super) fn user_list(
    found: &mut Findings,
    at: Place<'_>,
    field: &str,
    v: &OrderedJson,
) -> Option<Vec<String>> {
    list(found, at, field, USER, USER_LIST_FIX, v).filter(|l| !l.is_empty())
}
