//! Directory groups in the store: built from a scenario's `tenants[].groups`, their members
//! resolved once to users and groups of the tenant, and the transitive (nested) membership
//! Graph's `transitiveMembers` returns.
//!
//! Membership is fixed at load (the emulator has no group writes). This module answers "who is
//! in this group"; it never shapes HTTP answers or checks permissions.

use std::collections::{HashMap, HashSet};

use crate::scenario;
use crate::store::IdGen;

/// One direct member, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Member {
    /// Index into the tenant's users.
    User(usize),
    /// Index into the tenant's groups.
    Group(usize),
}

pub struct GroupState {
    pub id: String,
    pub display_name: String,
    pub mail: Option<String>,
    /// The members as the scenario wrote them (exported back verbatim).
    pub members_written: Vec<String>,
    pub members: Vec<Member>,
}

/// Builds a tenant's groups: ids first (generated where absent), then members resolved against
/// the users (`user_keys`: lower-cased id and UPN → index) and the groups (a validated scenario
/// resolves every member).
pub fn load(
    groups: &[scenario::Group],
    user_keys: &HashMap<String, usize>,
    ids: &mut IdGen,
) -> Vec<GroupState> {
    let group_ids: Vec<String> = groups
        .iter()
        .map(|g| g.id.clone().unwrap_or_else(|| ids.guid()))
        .collect();
    groups
        .iter()
        .zip(&group_ids)
        .map(|(g, id)| GroupState {
            id: id.clone(),
            display_name: g.display_name.clone(),
            mail: g.mail.clone(),
            members_written: g.members.clone(),
            members: g
                .members
                .iter()
                .filter_map(|m| resolve(m, user_keys, &group_ids))
                .collect(),
        })
        .collect()
}

fn resolve(
    member: &str,
    user_keys: &HashMap<String, usize>,
    group_ids: &[String],
) -> Option<Member> {
    if let Some(&u) = user_keys.get(&member.to_lowercase()) {
        return Some(Member::User(u));
    }
    group_ids
        .iter()
        .position(|g| g.eq_ignore_ascii_case(member))
        .map(Member::Group)
}

pub fn export(groups: &[GroupState]) -> Vec<scenario::Group> {
    groups
        .iter()
        .map(|g| scenario::Group {
            id: Some(g.id.clone()),
            display_name: g.display_name.clone(),
            mail: g.mail.clone(),
            members: g.members_written.clone(),
        })
        .collect()
}

/// A group by object id (case-insensitive, as directory ids are).
pub fn find(groups: &[GroupState], id: &str) -> Option<usize> {
    groups.iter().position(|g| g.id.eq_ignore_ascii_case(id))
}

/// The flat list of everything nested under `root`, each once: users reached through any path
/// and every nested group, never `root` itself, safe against cycles
/// (group-list-transitivemembers.md: "a flat list of all nested members"). Order: each group's
/// direct members as declared, nested groups visited depth-first.
pub fn transitive(groups: &[GroupState], root: usize) -> Vec<Member> {
    let mut out = Vec::new();
    let mut seen_groups = HashSet::from([root]);
    let mut seen_users = HashSet::new();
    let mut stack: Vec<usize> = vec![root];
    while let Some(g) = stack.pop() {
        let mut nested = Vec::new();
        for m in &groups[g].members {
            match *m {
                Member::User(u) => {
                    if seen_users.insert(u) {
                        out.push(*m);
                    }
                }
                Member::Group(child) => {
                    if seen_groups.insert(child) {
                        out.push(*m);
                        nested.push(child);
                    }
                }
            }
        }
        stack.extend(nested.into_iter().rev());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(members: Vec<Member>) -> GroupState {
        GroupState {
            id: String::new(),
            display_name: String::new(),
            mail: None,
            members_written: Vec::new(),
            members,
        }
    }

    #[test]
    fn transitive_flattens_nesting_dedupes_users_and_survives_cycles() {
        use Member::{Group as G, User as U};
        // 0 → {u0, u1, 1}; 1 → {u1, u2, 2, 0}; 2 → {u3, 1}
        let groups = vec![
            group(vec![U(0), U(1), G(1)]),
            group(vec![U(1), U(2), G(2), G(0)]),
            group(vec![U(3), G(1)]),
        ];
        assert_eq!(
            transitive(&groups, 0),
            vec![U(0), U(1), G(1), U(2), G(2), U(3)]
        );
        assert_eq!(
            transitive(&groups, 2),
            vec![U(3), G(1), U(1), U(2), G(0), U(0)]
        );
        assert!(transitive(&[group(vec![])], 0).is_empty());
    }
}
