//! The compact encoding of contact ids and changeKeys: one folder's values share all but a few
//! characters (Exchange ids encode the mailbox and folder; changeKeys a per-mailbox prefix), so a
//! folder row stores their common prefix and suffix once and each copy row only the middle.
//!
//! An [`Affix`] is chosen from a folder's values when the folder is (re-)encoded and then kept
//! while rows are inserted and updated one by one, so a commit rewrites only the rows that
//! changed; a value that does not fit it is stored whole (and flagged so). This module only
//! computes; it never decides when to re-encode (see `commit`).

/// A folder's common prefix and suffix for one kind of value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Affix {
    pub prefix: String,
    pub suffix: String,
}

impl Affix {
    /// The longest prefix shared by at least 7/8 of `values`, then the longest suffix shared by
    /// at least 7/8 of the values with that prefix (taken after it, so the two never overlap
    /// within a value): at least 3/4 of the values fit, and one odd value (a contact moved in
    /// from elsewhere) does not cost the folder its prefix. Cut on character boundaries. Fewer
    /// than two values give an empty affix: one value says nothing about the next.
    pub fn of<'a>(values: impl Iterator<Item = &'a str>) -> Affix {
        let mut v: Vec<&str> = values.collect();
        v.sort_unstable();
        let Some((at, p)) = best_window(&v, common_prefix_len) else {
            return Affix::default();
        };
        let mut p = p;
        while !v[at].is_char_boundary(p) {
            p -= 1;
        }
        let prefix = &v[at][..p];
        // Each value that starts with the whole characters of `prefix` has a boundary at `p`.
        let mut rest: Vec<&str> = v
            .iter()
            .filter(|x| x.starts_with(prefix))
            .map(|x| &x[p..])
            .collect();
        rest.sort_unstable_by(|a, b| a.bytes().rev().cmp(b.bytes().rev()));
        let suffix = match best_window(&rest, common_suffix_len) {
            None => "",
            Some((at, mut s)) => {
                let r = rest[at];
                while !r.is_char_boundary(r.len() - s) {
                    s -= 1;
                }
                &r[r.len() - s..]
            }
        };
        Affix {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
        }
    }

    /// The middle of `v` when it fits this affix, else `None` (store it whole).
    pub fn middle<'v>(&self, v: &'v str) -> Option<&'v str> {
        let end = v.len().checked_sub(self.suffix.len())?;
        if end < self.prefix.len() || !v.starts_with(&self.prefix) || !v.ends_with(&self.suffix) {
            return None;
        }
        v.get(self.prefix.len()..end)
    }

    /// The value whose middle is `middle`.
    pub fn join(&self, middle: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + middle.len() + self.suffix.len());
        s.push_str(&self.prefix);
        s.push_str(middle);
        s.push_str(&self.suffix);
        s
    }
}

/// Over `sorted` values (sorted so that values sharing a longer affix are adjacent), the window
/// of 7/8 of them whose first and last share the longest affix: `(index of its first, length)`.
fn best_window(sorted: &[&str], shared: fn(&[u8], &[u8]) -> usize) -> Option<(usize, usize)> {
    let n = sorted.len();
    if n < 2 {
        return None;
    }
    let k = (7 * n).div_ceil(8).max(2);
    (0..=n - k)
        .map(|i| {
            (
                i,
                shared(sorted[i].as_bytes(), sorted[i + k - 1].as_bytes()),
            )
        })
        .max_by_key(|&(i, len)| (len, std::cmp::Reverse(i)))
}

fn common_prefix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn common_suffix_len(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
mod tests {
    use super::Affix;
    use proptest::prelude::*;

    #[test]
    fn exchange_like_ids_share_all_but_the_middle() {
        let ids = [
            "AAMkAGI2AAA-folder-AAAbbb1AAA=",
            "AAMkAGI2AAA-folder-AAAccc22AAA=",
            "AAMkAGI2AAA-folder-AAAd3AAA=",
        ];
        let a = Affix::of(ids.iter().copied());
        assert_eq!(a.prefix, "AAMkAGI2AAA-folder-AAA");
        assert_eq!(a.suffix, "AAA=");
        assert_eq!(a.middle(ids[1]), Some("ccc22"));
        assert_eq!(a.join("ccc22"), ids[1]);
        // A value from elsewhere does not fit and is stored whole.
        assert_eq!(a.middle("AAMkOTHER"), None);
    }

    #[test]
    fn prefix_and_suffix_never_overlap_within_a_value() {
        let a = Affix::of(["ab", "abab"].into_iter());
        assert_eq!((a.prefix.as_str(), a.suffix.as_str()), ("ab", ""));
        assert_eq!(a.middle("ab"), Some(""));
        assert_eq!(a.middle("abab"), Some("ab"));
        // Shorter than prefix + suffix: whole.
        let a = Affix {
            prefix: "ab".into(),
            suffix: "ba".into(),
        };
        assert_eq!(a.middle("aba"), None);
    }

    #[test]
    fn one_value_or_none_gives_no_affix() {
        assert_eq!(Affix::of(std::iter::empty()), Affix::default());
        assert_eq!(Affix::of(["only"].into_iter()), Affix::default());
    }

    #[test]
    fn cuts_on_character_boundaries() {
        // "é" and "è" share their first UTF-8 byte only.
        let a = Affix::of(["xé1", "xè1"].into_iter());
        assert_eq!((a.prefix.as_str(), a.suffix.as_str()), ("x", "1"));
        let a = Affix::of(["1é", "2è"].into_iter());
        assert_eq!((a.prefix.as_str(), a.suffix.as_str()), ("", ""));
    }

    #[test]
    fn one_odd_value_does_not_cost_the_folder_its_prefix() {
        let mut ids: Vec<String> = (0..20)
            .map(|n| format!("AAMkAGI2-folder-{n:03}AAA="))
            .collect();
        ids.push("moved in from elsewhere".into());
        let a = Affix::of(ids.iter().map(String::as_str));
        assert_eq!(
            (a.prefix.as_str(), a.suffix.as_str()),
            ("AAMkAGI2-folder-0", "AAA=")
        );
        assert_eq!(a.middle(&ids[0]), Some("00"));
        assert_eq!(a.middle(&ids[20]), None);
    }

    proptest! {
        /// Values that fit join back to themselves, and at least 3/4 of the values the affix was
        /// computed from fit it.
        #[test]
        fn values_round_trip_and_most_fit(values in proptest::collection::vec("[ab]{0,3}[éèx]{0,2}[ab]{0,3}", 0..12)) {
            let a = Affix::of(values.iter().map(String::as_str));
            let mut fit = 0;
            for v in &values {
                if let Some(m) = a.middle(v) {
                    fit += 1;
                    prop_assert_eq!(&a.join(m), v);
                }
            }
            if values.len() >= 2 {
                prop_assert!(fit * 4 >= values.len() * 3, "{fit} of {} fit {a:?}", values.len());
            } else {
                prop_assert_eq!(a, Affix::default());
            }
        }
    }
}
