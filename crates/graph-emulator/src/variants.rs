//! Alternative readings of Graph behaviour the emulator cannot pin down (undocumented, or
//! documented one way and observed another). By default the emulator plays the stricter
//! reading; each switch here plays the other one, so a client can be tested against both
//! (`graph-emulator serve --variant NAME`, or [`crate::EmulatorOptions::variants`]).
//!
//! This module only names the switches; the surfaces that read them cite their sources.

/// The switches, all off by default (the stricter reading).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Variants {
    /// Contact delta honours `$expand=singleValueExtendedProperties(…)` (default: refused with
    /// the 400 Graph was observed to give for `$expand` on Outlook delta).
    pub delta_expand: bool,
    /// `GET /users/{u}/contacts/delta` (no folder id) is refused (default: served for the
    /// default Contacts folder, as observed; the reference page documents only the folder form).
    pub no_default_folder_delta: bool,
    /// Every delta round from a deltaLink first replays the previous round's rows (default:
    /// exact rounds). Graph says replays happen.
    pub delta_replays: bool,
    /// OData casts on group members (`…/transitiveMembers/microsoft.graph.user`) work without
    /// `ConsistencyLevel: eventual` and `$count=true` (default: required, as documented).
    pub lenient_group_cast: bool,
    /// Extended property ids are echoed exactly as written (default: Graph's observed
    /// normalisation, `Integer 0x0036` → `Integer 0x36`).
    pub extended_property_ids_as_sent: bool,
    /// Every contact create or update through the API is followed by a change key bump with the
    /// fields unchanged, as Exchange's background processing does (docs/graph-facts.md §1 \[OBS\]);
    /// default: the change key a write returns stays current until the next write.
    pub change_key_bump: bool,
    /// With the bump, `lastModifiedDateTime` moves too (unknown for contacts; default: it stays).
    /// Implies `change_key_bump`.
    pub change_key_bump_moves_modified: bool,
    /// How long after the write the bump comes (emulator clock); zero, the default, means before
    /// the next request to the mailbox (`--change-key-bump-delay-ms`).
    pub change_key_bump_delay: std::time::Duration,
}

/// A `--variant` name that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown variant '{0}' (known: {known})", known = Variants::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))]
pub struct UnknownVariant(pub String);

impl Variants {
    /// Every switch by its command-line name, with what it plays.
    pub const NAMES: &'static [(&'static str, &'static str)] = &[
        (
            "delta-expand",
            "contact delta honours $expand=singleValueExtendedProperties(...) instead of refusing it",
        ),
        (
            "no-default-folder-delta",
            "/users/{u}/contacts/delta is refused; only the folder form works",
        ),
        (
            "delta-replays",
            "each delta round from a deltaLink replays the previous round's rows first",
        ),
        (
            "lenient-group-cast",
            "group member casts (…/microsoft.graph.user) work without ConsistencyLevel + $count",
        ),
        (
            "extended-property-ids-as-sent",
            "extended property ids are echoed as written, not normalised (0x0036 → 0x36)",
        ),
        (
            "change-key-bump",
            "every contact create/update is followed by a new changeKey/etag, fields unchanged",
        ),
        (
            "change-key-bump-modified",
            "change-key-bump, and the bump also moves lastModifiedDateTime",
        ),
    ];

    /// Turns on the switch called `name` (one of [`Variants::NAMES`]).
    pub fn enable(&mut self, name: &str) -> Result<(), UnknownVariant> {
        let flag = match name {
            "delta-expand" => &mut self.delta_expand,
            "no-default-folder-delta" => &mut self.no_default_folder_delta,
            "delta-replays" => &mut self.delta_replays,
            "lenient-group-cast" => &mut self.lenient_group_cast,
            "extended-property-ids-as-sent" => &mut self.extended_property_ids_as_sent,
            "change-key-bump" => &mut self.change_key_bump,
            "change-key-bump-modified" => {
                self.change_key_bump = true;
                &mut self.change_key_bump_moves_modified
            }
            other => return Err(UnknownVariant(other.to_owned())),
        };
        *flag = true;
        Ok(())
    }

    /// How contact writes are followed by a change key bump, if they are.
    pub(crate) fn change_key_bump(&self) -> Option<crate::store::ChangeKeyBump> {
        (self.change_key_bump || self.change_key_bump_moves_modified).then_some(
            crate::store::ChangeKeyBump {
                delay: self.change_key_bump_delay,
                moves_modified: self.change_key_bump_moves_modified,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_variant_can_be_enabled_and_unknown_names_list_the_known_ones() {
        for (name, _) in Variants::NAMES {
            let mut v = Variants::default();
            v.enable(name).unwrap();
            assert_ne!(v, Variants::default(), "{name} changes nothing");
        }
        let mut v = Variants::default();
        v.enable("change-key-bump-modified").unwrap();
        let bump = v.change_key_bump().expect("implies the bump");
        assert!(bump.moves_modified && bump.delay.is_zero());
        assert!(
            Variants::default().change_key_bump().is_none(),
            "off by default"
        );
        let e = Variants::default().enable("nope").unwrap_err().to_string();
        assert!(e.contains("delta-expand") && e.contains("nope"), "{e}");
    }
}
