//! How many blocks the next `eth_getLogs` asks for: shrink when a provider says the range is too
//! large (to the range it suggests, when it suggests one), grow back after a run of successes,
//! never below one block and never above the chain's `max_block_range`. The sizer only picks
//! sizes; the caller walks the blocks one after the other, so no block is ever skipped.

use super::error::RangeHint;

/// Successes in a row before the range doubles again.
const GROW_AFTER: u32 = 4;

#[derive(Debug, Clone)]
pub struct RangeSizer {
    max: u64,
    current: u64,
    /// A provider's stated limit: growing never passes it.
    ceiling: u64,
    streak: u32,
}

impl RangeSizer {
    pub fn new(max_block_range: u64) -> Self {
        let max = max_block_range.max(1);
        Self { max, current: max, ceiling: max, streak: 0 }
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
        self.streak = 0;
        let suggested = match hint {
            Some(RangeHint::Range { from, to }) => Some(to - from + 1),
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

    /// A request for `asked` blocks succeeded.
    pub fn succeeded(&mut self, asked: u64) {
        // A short range at the end of the work says nothing about the limit.
        if asked < self.current {
            return;
        }
        self.streak += 1;
        if self.streak >= GROW_AFTER && self.current < self.ceiling {
            self.current = (self.current.saturating_mul(2)).min(self.ceiling);
            self.streak = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shrinks_to_the_suggestion_then_grows_back() {
        let mut s = RangeSizer::new(2000);
        assert_eq!(s.next_range(100, 10_000), (100, 2099));
        s.too_large(2000, Some(RangeHint::Range { from: 100, to: 149 }));
        assert_eq!(s.size(), 50);
        for _ in 0..GROW_AFTER {
            s.succeeded(50);
        }
        assert_eq!(s.size(), 100);
        for _ in 0..(GROW_AFTER * 10) {
            let size = s.size();
            s.succeeded(size);
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
        let mut s = RangeSizer::new(10_000);
        s.too_large(10_000, Some(RangeHint::MaxBlocks(3000)));
        assert_eq!(s.size(), 3000);
        for _ in 0..(GROW_AFTER * 4) {
            s.succeeded(3000);
        }
        assert_eq!(s.size(), 3000);
    }

    #[test]
    fn a_useless_suggestion_still_shrinks() {
        let mut s = RangeSizer::new(100);
        s.too_large(100, Some(RangeHint::Range { from: 0, to: 499 }));
        assert_eq!(s.size(), 50);
    }

    #[test]
    fn short_tail_ranges_do_not_count_as_successes() {
        let mut s = RangeSizer::new(100);
        s.too_large(100, None);
        for _ in 0..10 {
            s.succeeded(3);
        }
        assert_eq!(s.size(), 50);
    }
}
