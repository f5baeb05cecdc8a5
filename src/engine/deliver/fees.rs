//! Fees: what a new transaction offers, and what its replacement offers after `bump_after`.
//!
//! EIP-1559 by default: `max_fee = 2 × base fee + priority`, the priority from the config or the
//! node. Legacy chains use the node's gas price. Everything is bounded by the chain's cap; a
//! replacement raises both fields by at least `bump_percent` (rounded up, nodes need ≥ 10 %) or
//! to the fresh estimate when that is higher, and never beyond the cap.

use crate::config::GasPolicy;

/// A chain's fee rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeePolicy {
    pub cap: u128,
    pub priority: Option<u128>,
    pub bump_percent: u32,
    pub bump_after: std::time::Duration,
    pub legacy: bool,
}

impl FeePolicy {
    pub fn from_config(gas: Option<&GasPolicy>) -> Self {
        match gas {
            Some(g) => FeePolicy {
                cap: g.max_fee_gwei.wei(),
                priority: g.priority_fee_gwei.map(|p| p.wei()),
                bump_percent: g.bump_percent.max(10),
                bump_after: g.bump_after.0,
                legacy: g.legacy,
            },
            // No policy: a generous cap so that a chain without one still works, bumps as nodes require.
            None => FeePolicy {
                cap: 1_000 * GWEI,
                priority: None,
                bump_percent: 12,
                bump_after: std::time::Duration::from_secs(60),
                legacy: false,
            },
        }
    }
}

pub const GWEI: u128 = 1_000_000_000;

/// What a transaction offers. Legacy: `max_fee` is the gas price and `priority` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fees {
    pub max_fee: u128,
    pub priority: Option<u128>,
}

/// What the chain asks now: the latest base fee (EIP-1559) or gas price (legacy), and the node's
/// suggested priority fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Market {
    pub base_fee: u128,
    pub suggested_priority: u128,
}

impl FeePolicy {
    /// Fees for a new transaction, capped.
    pub fn fresh(&self, market: Market) -> Fees {
        if self.legacy {
            return Fees { max_fee: market.base_fee.min(self.cap), priority: None };
        }
        let priority = self.priority.unwrap_or(market.suggested_priority).min(self.cap);
        let max_fee = market.base_fee.saturating_mul(2).saturating_add(priority).min(self.cap);
        Fees { max_fee, priority: Some(priority.min(max_fee)) }
    }

    /// Fees for a replacement of `old`: each field up by `bump_percent` (rounded up) or to the
    /// fresh estimate if higher, capped. `None` when `old` is at the cap already: nothing higher
    /// can be offered, and a replacement that does not raise both fields is refused by nodes.
    pub fn bumped(&self, old: Fees, market: Market) -> Option<Fees> {
        if old.max_fee >= self.cap {
            return None;
        }
        let up = |v: u128| {
            v.saturating_add((v.saturating_mul(self.bump_percent as u128)).div_ceil(100)).max(v + 1)
        };
        let fresh = self.fresh(market);
        let max_fee = up(old.max_fee).max(fresh.max_fee).min(self.cap);
        let priority = match (old.priority, fresh.priority) {
            (Some(p), Some(f)) => Some(up(p).max(f).min(max_fee)),
            _ => None,
        };
        Some(Fees { max_fee, priority })
    }
}

/// The policy unit tests start from: a cap, the node's priority, 10 % bumps after 60 s, EIP-1559.
#[cfg(test)]
pub(crate) fn test_policy(cap: u128) -> FeePolicy {
    FeePolicy {
        cap,
        priority: None,
        bump_percent: 10,
        bump_after: std::time::Duration::from_secs(60),
        legacy: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(cap: u128, legacy: bool) -> FeePolicy {
        FeePolicy { legacy, ..test_policy(cap) }
    }

    #[test]
    fn fresh_fees_follow_the_market_under_the_cap() {
        let market = Market { base_fee: 10 * GWEI, suggested_priority: GWEI };
        assert_eq!(
            policy(100 * GWEI, false).fresh(market),
            Fees { max_fee: 21 * GWEI, priority: Some(GWEI) }
        );
        assert_eq!(policy(15 * GWEI, false).fresh(market), Fees { max_fee: 15 * GWEI, priority: Some(GWEI) });
        assert_eq!(policy(100 * GWEI, true).fresh(market), Fees { max_fee: 10 * GWEI, priority: None });
        let mut fixed = policy(100 * GWEI, false);
        fixed.priority = Some(3 * GWEI);
        assert_eq!(fixed.fresh(market).priority, Some(3 * GWEI));
    }

    #[test]
    fn a_bump_raises_both_fields_at_least_the_percent_rounded_up_and_stops_at_the_cap() {
        let calm = Market { base_fee: 1, suggested_priority: 1 };
        let p = policy(1_000, false);
        // 10 % of 101 is 10.1: rounded up to 11.
        assert_eq!(
            p.bumped(Fees { max_fee: 101, priority: Some(11) }, calm),
            Some(Fees { max_fee: 112, priority: Some(13) })
        );
        // The market moved above the bump: the fresh estimate wins.
        let busy = Market { base_fee: 300, suggested_priority: 50 };
        assert_eq!(
            p.bumped(Fees { max_fee: 101, priority: Some(11) }, busy),
            Some(Fees { max_fee: 650, priority: Some(50) })
        );
        // Capped, then nothing more.
        assert_eq!(
            p.bumped(Fees { max_fee: 950, priority: Some(10) }, calm),
            Some(Fees { max_fee: 1_000, priority: Some(11) })
        );
        assert_eq!(p.bumped(Fees { max_fee: 1_000, priority: Some(11) }, calm), None);
        // Tiny values still move by at least one wei.
        assert_eq!(
            p.bumped(Fees { max_fee: 1, priority: Some(0) }, Market { base_fee: 0, suggested_priority: 0 }),
            Some(Fees { max_fee: 2, priority: Some(1) })
        );
    }
}
