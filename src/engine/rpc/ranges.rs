//! How many blocks the next `eth_getLogs` asks for. What a range costs is the size of its
//! answers: each is buffered, parsed and decoded whole before the range is committed, so one huge
//! answer is slower and heavier than several of a few thousand logs, whose requests overlap with
//! the commits before them. So ranges are sized by the logs they return, not only by errors:
//!
//! - a `max_block_range` above [`SMALL_MAX`] (the default is 2,000) is a cap, not a size:
//!   nothing is known yet of how many logs a block holds, so the first range is one block and the
//!   next ones grow from there (eleven ranges reach 2,000 blocks when blocks hold few logs). One of
//!   [`SMALL_MAX`] blocks or fewer, usually a provider's limit, is asked for from the first range;
//! - a range whose answers held more than [`TARGET_LOGS`] makes the next one smaller in
//!   proportion, never below one block;
//! - one that held fewer makes the next one larger, in proportion but at most twice as large;
//! - a provider that says a range is too large shrinks it (to the range it suggests, when it
//!   suggests one); from then on growing takes a run of successes, and never passes a limit the
//!   provider stated;
//! - never above the chain's `max_block_range`.
//!
//! The sizer only picks sizes; the caller walks the blocks one after the other, so no block is
//! ever skipped.

use super::error::RangeHint;

/// Logs a range's answers should hold, about: a fifth of the 10,000 at which providers refuse an
/// answer. Smaller answers are parsed, decoded and committed faster per log (on a local node, 2,000
/// logs a request beat 5,000 by about a tenth in the ingest bench, at less memory); larger ones
/// would spread a distant provider's round trip over more logs.
pub const TARGET_LOGS: u64 = 2_000;

/// The largest `max_block_range` asked for whole from the first range; above it the first range
/// is one block.
pub const SMALL_MAX: u64 = 20;

/// Successes in a row before the range grows again, once a provider refused one as too large.
const GROW_AFTER: u32 = 4;

#[derive(Debug, Clone)]
pub struct RangeSizer {
    max: u64,
    current: u64,
    /// A provider's stated limit: growing never passes it.
    ceiling: u64,
    /// Whether a provider refused a range as too large: growing then takes a streak.
    refused: bool,
    streak: u32,
}

impl RangeSizer {
    pub fn new(max_block_range: u64) -> Self {
        let max = max_block_range.max(1);
        let first = if max <= SMALL_MAX { max } else { 1 };
        Self { max, current: first, ceiling: max, refused: false, streak: 0 }
    }

    /// The number of blocks to ask for next.
    pub fn size(&self) -> u64 {
        self.current
    }

    /// The range `[from, min(from + size − 1, to)]`.
    pub fn next_range(&self, from: u64, to: u64) -> (u64, u64) {
        (from, from.saturating_add(self.current - 1).min(to))
    }

    /// The request for `asked` blocks was too large.
    pub fn too_large(&mut self, asked: u64, hint: Option<RangeHint>) {
        self.refused = true;
        self.streak = 0;
        let suggested = match hint {
            Some(RangeHint::Range { from, to }) => Some(to.saturating_sub(from).saturating_add(1)),
            Some(RangeHint::MaxBlocks(n)) => {
                self.ceiling = self.ceiling.min(n.max(1));
                Some(n)
            }
            None => None,
        };
        let next = match suggested {
            // A suggestion is only useful when it is smaller than what failed.
            Some(n) if n < asked => n,
            _ => asked / 2,
        };
        self.current = next.clamp(1, self.max);
    }

    /// A request for `asked` blocks succeeded; its answers held `logs` logs.
    pub fn succeeded(&mut self, asked: u64, logs: u64) {
        if logs > TARGET_LOGS {
            // However short the range was, its blocks are that dense.
            self.streak = 0;
            self.current = (asked.saturating_mul(TARGET_LOGS) / logs).clamp(1, self.max);
            return;
        }
        // A short range at the end of the work says nothing about the limit.
        if asked < self.current {
            return;
        }
        let by_logs = asked.saturating_mul(TARGET_LOGS) / logs.max(1);
        let next = by_logs.min(asked.saturating_mul(2)).min(self.ceiling);
        if next <= self.current {
            return;
        }
        if self.refused {
            self.streak += 1;
            if self.streak < GROW_AFTER {
                return;
            }
            self.streak = 0;
        }
        self.current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Grown from the first range to `max`, every answer nearly empty.
    fn grown(max: u64) -> RangeSizer {
        let mut s = RangeSizer::new(max);
        for _ in 0..64 {
            let size = s.size();
            s.succeeded(size, 1);
        }
        s
    }

    #[test]
    fn shrinks_to_the_suggestion_then_grows_back() {
        let mut s = grown(2000);
        assert_eq!(s.next_range(100, 10_000), (100, 2099));
        s.too_large(2000, Some(RangeHint::Range { from: 100, to: 149 }));
        assert_eq!(s.size(), 50);
        for _ in 0..GROW_AFTER {
            s.succeeded(50, 0);
        }
        assert_eq!(s.size(), 100);
        for _ in 0..(GROW_AFTER * 10) {
            let size = s.size();
            s.succeeded(size, 0);
        }
        assert_eq!(s.size(), 2000, "never above max_block_range");
    }

    #[test]
    fn halves_without_a_hint_and_never_goes_below_one() {
        let mut s = RangeSizer::new(8);
        for _ in 0..10 {
            let asked = s.size();
            s.too_large(asked, None);
        }
        assert_eq!(s.size(), 1);
        assert_eq!(s.next_range(7, 7), (7, 7));
    }

    #[test]
    fn a_stated_limit_caps_growth() {
        let mut s = grown(10_000);
        s.too_large(10_000, Some(RangeHint::MaxBlocks(3000)));
        assert_eq!(s.size(), 3000);
        for _ in 0..(GROW_AFTER * 4) {
            s.succeeded(3000, 0);
        }
        assert_eq!(s.size(), 3000);
    }

    #[test]
    fn a_useless_suggestion_still_shrinks() {
        let mut s = grown(100);
        s.too_large(100, Some(RangeHint::Range { from: 0, to: 499 }));
        assert_eq!(s.size(), 50);
    }

    #[test]
    fn short_tail_ranges_do_not_count_as_successes() {
        let mut s = grown(100);
        s.too_large(100, None);
        for _ in 0..10 {
            s.succeeded(3, 0);
        }
        assert_eq!(s.size(), 50);
    }

    #[test]
    fn the_first_range_is_one_block_under_a_large_max_and_grows_at_most_twofold() {
        let mut s = RangeSizer::new(2000);
        let mut sizes = vec![s.size()];
        while s.size() < 2000 {
            let size = s.size();
            s.succeeded(size, 0);
            sizes.push(s.size());
        }
        assert_eq!(sizes, vec![1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2000]);
        // A small max_block_range is the first range.
        assert_eq!(RangeSizer::new(SMALL_MAX).size(), SMALL_MAX);
        assert_eq!(RangeSizer::new(SMALL_MAX + 1).size(), 1);
        assert_eq!(RangeSizer::new(4).size(), 4);
        assert_eq!(RangeSizer::new(0).size(), 1);
    }

    #[test]
    fn ranges_aim_at_the_target_number_of_logs() {
        // A fifth of the target a block: growth up to the target, then there.
        let mut s = RangeSizer::new(2000);
        let per_block = TARGET_LOGS / 5;
        let mut sizes = Vec::new();
        for _ in 0..6 {
            let size = s.size();
            sizes.push(size);
            s.succeeded(size, size * per_block);
        }
        assert_eq!(sizes, vec![1, 2, 4, 5, 5, 5]);
        // A small max_block_range read whole from the start over dense blocks shrinks at once.
        let mut dense = RangeSizer::new(SMALL_MAX);
        dense.succeeded(SMALL_MAX, SMALL_MAX * per_block);
        assert_eq!(dense.size(), 5);
        // Sparser blocks: growth in proportion to the room left, at most twofold a step.
        s.succeeded(5, TARGET_LOGS * 4 / 5);
        assert_eq!(s.size(), 6);
        s.succeeded(6, 0);
        assert_eq!(s.size(), 12);
        // One block holding far more than the target: one block, not less.
        s.succeeded(12, TARGET_LOGS * 100);
        assert_eq!(s.size(), 1);
        s.succeeded(1, TARGET_LOGS * 100);
        assert_eq!(s.size(), 1);
        // A dense short tail shrinks too; a sparse one does not grow.
        let mut s = grown(2000);
        s.succeeded(100, TARGET_LOGS * 2);
        assert_eq!(s.size(), 50);
        s.succeeded(3, 0);
        assert_eq!(s.size(), 50);
    }

    #[test]
    fn after_a_refusal_growth_takes_a_streak_and_still_follows_the_logs() {
        let mut s = grown(2000);
        s.too_large(2000, None);
        assert_eq!(s.size(), 1000);
        for _ in 0..(GROW_AFTER - 1) {
            s.succeeded(1000, 0);
        }
        assert_eq!(s.size(), 1000, "not before the streak");
        s.succeeded(1000, 0);
        assert_eq!(s.size(), 2000);
        // Many logs shrink at once, refusal or not.
        s.succeeded(2000, TARGET_LOGS * 4);
        assert_eq!(s.size(), 500);
    }
}
