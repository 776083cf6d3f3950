//! The brake (docs/state-and-deletes.md §3, I12): how many contacts one run may remove from the
//! company book.
//!
//! Counted in logical contacts — one hub deletion counts once, however many user copies it
//! deletes. Limit (docs/state-and-deletes.md §3): `--allow-deletes N` if given (release N, oldest tombstone first,
//! then SyncId; hold the rest), else the tenant's `MaxDeletes` (more than N → hold all), else the
//! default (more than 10 **and** more than 10 % of the hub's remembered contacts → hold all).
//! Pure arithmetic: the caller orders the candidates and applies the answer.

use super::BrakeLimit;

/// The default's absolute floor: at most this many always pass.
const DEFAULT_FLOOR: usize = 10;

/// How many of `count` candidate removals (already in release order) this run releases; the
/// rest are held. `book` is the number of hub contacts the memory holds.
pub(super) fn releasable(limit: BrakeLimit, count: usize, book: usize) -> usize {
    match limit {
        BrakeLimit::AllowDeletes(n) => count.min(n),
        BrakeLimit::MaxDeletes(max) if count > max => 0,
        BrakeLimit::MaxDeletes(_) => count,
        BrakeLimit::Default if count > DEFAULT_FLOOR && count * 10 > book => 0,
        BrakeLimit::Default => count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_holds_only_more_than_ten_and_more_than_a_tenth() {
        assert_eq!(releasable(BrakeLimit::Default, 10, 20), 10);
        assert_eq!(
            releasable(BrakeLimit::Default, 11, 200),
            11,
            "5.5 % of the book"
        );
        assert_eq!(releasable(BrakeLimit::Default, 11, 110), 11, "exactly 10 %");
        assert_eq!(releasable(BrakeLimit::Default, 12, 110), 0);
        assert_eq!(releasable(BrakeLimit::Default, 0, 0), 0);
    }

    #[test]
    fn max_deletes_holds_all_past_it_allow_deletes_releases_up_to_n() {
        assert_eq!(releasable(BrakeLimit::MaxDeletes(3), 3, 5), 3);
        assert_eq!(releasable(BrakeLimit::MaxDeletes(3), 4, 1000), 0);
        assert_eq!(releasable(BrakeLimit::MaxDeletes(0), 1, 1000), 0);
        assert_eq!(releasable(BrakeLimit::AllowDeletes(3), 5, 5), 3);
        assert_eq!(releasable(BrakeLimit::AllowDeletes(30), 5, 5), 5);
        assert_eq!(releasable(BrakeLimit::AllowDeletes(0), 5, 5), 0);
    }
}
