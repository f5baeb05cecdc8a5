//! The signer's standing on a destination chain, checked while the worker runs: its balance and
//! its nonces. Gather (the balance, the fee market, the chain's counts) → decide (the pure
//! functions below, table-tested) → apply (a warning, the chain's problem, new sends held).
//!
//! - **Funds.** At start and every few minutes, and before each round of new transactions: a
//!   balance below the chain's `min_balance` is a WARN; below the cost of one transaction (its
//!   gas limit × the max fee it would offer) new sends pause with `insufficient_funds` — what is
//!   in flight is still followed — and go on once the signer is funded. The node's own "cannot
//!   pay" answers (a simulation, a broadcast) pause the same way (`Worker::cannot_pay`).
//! - **Nonces.** A chain that counts fewer of the signer's transactions than ferry has seen
//!   confirmed there, mined or pooled, holds none of those transactions any more: it was reset
//!   (same chain id, nonces from 0) or the node lost them. Signing on from ferry's next nonce
//!   would leave every transaction waiting behind a gap forever, and signing at the chain's
//!   count would be a guess; so nothing new is signed (`nonce_gap`), the chain is looked at
//!   again every few seconds, and `inspect-store resync` lines ferry up once an operator has
//!   looked (`control::resync`).

use std::time::{Duration, Instant};

use alloy::primitives::U256;
use serde_json::json;

use super::super::chain;
use super::super::fees::Fees;
use super::{Problem, Worker};
use crate::engine::deliver::DeliverError;

/// How often the balance is read while nothing holds the chain.
pub const FUNDS_EVERY: Duration = Duration::from_secs(180);

/// How often a held chain (no funds, a nonce gap) is looked at again.
pub const RECHECK_HELD: Duration = Duration::from_secs(10);

/// The gas a transaction is assumed to need before ferry has estimated one on the chain: more
/// than most calls, so that the first check errs towards "cannot pay" rather than away from it.
pub const DEFAULT_GAS: u64 = 300_000;

/// What the signer's balance allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Funds {
    Enough,
    /// Below `min_balance`, above the cost of one transaction: a warning, sends go on.
    Low,
    /// Below the cost of one transaction: new sends pause.
    CannotPay,
}

/// The rule for funds: `cost` is one transaction's gas limit × max fee.
pub fn funds(balance: U256, min_balance: Option<U256>, cost: U256) -> Funds {
    if balance < cost {
        Funds::CannotPay
    } else if min_balance.is_some_and(|min| balance < min) {
        Funds::Low
    } else {
        Funds::Enough
    }
}

/// One transaction's cost at most: its gas limit × the max fee it offers.
pub fn cost(gas_limit: u64, fees: Fees) -> U256 {
    U256::from(gas_limit) * U256::from(fees.max_fee)
}

/// The rule for nonces: `confirmed_next` is one past the highest nonce of a transaction ferry saw
/// confirmed on the chain. A chain whose mined count and pool count are both below it no longer
/// holds that transaction.
pub fn nonce_gap(confirmed_next: Option<u64>, latest: u64, pending: u64) -> Option<Problem> {
    let expected = confirmed_next?;
    (latest < expected && pending < expected).then_some(Problem::NonceGap { expected, latest, pending })
}

/// An amount of wei as ether, for messages.
pub fn ether(wei: U256) -> String {
    let unit = U256::from(10u64).pow(U256::from(18u64));
    let whole = wei / unit;
    let frac = (wei % unit) / U256::from(10u64).pow(U256::from(12u64));
    format!("{whole}.{:06} ETH", frac.to::<u64>())
}

impl Worker {
    /// Whether new sends may go: not while a nonce gap holds the chain (looked at again every
    /// [`RECHECK_HELD`]), nor while the signer cannot pay. Reads the balance when it is due.
    pub(in crate::engine::deliver) async fn may_start(&mut self) -> Result<bool, DeliverError> {
        if self.gap && self.health.gap_checked.is_none_or(|at| at.elapsed() >= RECHECK_HELD) {
            let (latest, pending) = self.counts().await?;
            self.judge_gap(latest, pending);
        }
        let held = self.is_paused_for_funds();
        let every = if held { RECHECK_HELD } else { FUNDS_EVERY };
        if self.health.funds_checked.is_none_or(|at| at.elapsed() >= every) {
            let market = chain::market(&self.dest.rpc, self.dest.fees.legacy).await.map_err(Self::rpc_err)?;
            let fees = self.dest.fees.fresh(market);
            self.judge_funds(self.health.gas.max(1), fees).await?;
        }
        Ok(!self.gap && !self.is_paused())
    }

    /// Just before a round of new transactions is signed: the chain still holds ferry's
    /// transactions, and the signer can pay for the largest of the round.
    pub(in crate::engine::deliver) async fn may_sign(
        &mut self,
        gas: u64,
        fees: Fees,
    ) -> Result<bool, DeliverError> {
        let (latest, pending) = self.counts().await?;
        self.judge_gap(latest, pending);
        if self.gap {
            return Ok(false);
        }
        self.health.gas = gas;
        self.judge_funds(gas, fees).await?;
        Ok(!self.is_paused())
    }

    /// The chain's counts of the signer's transactions: mined, and with the node's pool.
    async fn counts(&self) -> Result<(u64, u64), DeliverError> {
        let rpc = &self.dest.rpc;
        let (latest, pending) =
            tokio::join!(chain::nonce(rpc, self.signer, "latest"), chain::nonce(rpc, self.signer, "pending"));
        Ok((latest.map_err(Self::rpc_err)?, pending.map_err(Self::rpc_err)?))
    }

    /// Applies the nonce rule to what the chain counts now: the gap said (once, loudly) and held,
    /// or lifted when the chain counts ferry's transactions again.
    pub(super) fn judge_gap(&mut self, latest: u64, pending: u64) {
        self.health.gap_checked = Some(Instant::now());
        crate::engine::observe::nonce_gap(&self.dest.chain, self.confirmed_next.unwrap_or(0), pending);
        match nonce_gap(self.confirmed_next, latest, pending) {
            Some(problem) => {
                if !self.gap {
                    tracing::error!(chain = %self.dest.chain, signer = %self.signer, "{problem}");
                }
                self.gap = true;
                self.status.send_modify(|s| s.problem = Some(problem));
            }
            None if self.gap => {
                tracing::info!(chain = %self.dest.chain, latest, pending, "the chain counts ferry's transactions again; sending on");
                self.gap = false;
                if matches!(self.status.borrow().problem, Some(Problem::NonceGap { .. })) {
                    self.status.send_modify(|s| s.problem = None);
                }
            }
            None => {}
        }
    }

    /// Reads the balance and applies the funds rule for a transaction of `gas` at `fees`.
    async fn judge_funds(&mut self, gas: u64, fees: Fees) -> Result<(), DeliverError> {
        let balance: U256 = self
            .dest
            .rpc
            .request("eth_getBalance", json!([self.signer, "latest"]))
            .await
            .map_err(Self::rpc_err)?;
        self.health.funds_checked = Some(Instant::now());
        crate::engine::observe::signer_balance(&self.dest.chain, balance);
        let cost = cost(gas, fees);
        match funds(balance, self.dest.min_balance, cost) {
            Funds::CannotPay => {
                let detail = format!(
                    "its balance ({}) is below one transaction's cost ({}: {gas} gas at {} gwei)",
                    ether(balance),
                    ether(cost),
                    fees.max_fee as f64 / 1e9
                );
                let _ = self.cannot_pay(detail);
            }
            verdict => {
                if verdict == Funds::Low
                    && let Some(min) = self.dest.min_balance
                {
                    tracing::warn!(
                        chain = %self.dest.chain, signer = %self.signer, balance = %ether(balance),
                        min_balance = %ether(min), "the signer's balance is below min_balance; fund it"
                    );
                }
                if self.is_paused_for_funds() {
                    tracing::info!(chain = %self.dest.chain, signer = %self.signer, balance = %ether(balance), "the signer can pay again; sending on");
                    self.unpause();
                }
            }
        }
        Ok(())
    }
}

/// When the signer's standing was last read, and the gas of the last round signed.
#[derive(Debug, Clone)]
pub struct Health {
    pub funds_checked: Option<Instant>,
    pub gap_checked: Option<Instant>,
    /// The largest gas limit of the last round signed ([`DEFAULT_GAS`] before any).
    pub gas: u64,
}

impl Default for Health {
    fn default() -> Self {
        Health { funds_checked: None, gap_checked: None, gas: DEFAULT_GAS }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn funds_warn_below_min_balance_and_pause_below_one_transaction() {
        let eth = |milli: u64| U256::from(milli) * U256::from(1_000_000_000_000_000u64);
        // (balance, min_balance, cost) → verdict
        let cases = [
            (eth(1000), Some(eth(500)), eth(1), Funds::Enough),
            (eth(1000), None, eth(1), Funds::Enough),
            (eth(400), Some(eth(500)), eth(1), Funds::Low),
            (eth(1), Some(eth(500)), eth(1), Funds::Low),
            (eth(0), Some(eth(500)), eth(1), Funds::CannotPay),
            (eth(0), None, eth(1), Funds::CannotPay),
            (eth(2), None, eth(3), Funds::CannotPay),
            (U256::ZERO, None, U256::ZERO, Funds::Enough),
        ];
        for (balance, min, cost, want) in cases {
            assert_eq!(funds(balance, min, cost), want, "{balance} {min:?} {cost}");
        }
        let fees = Fees { max_fee: 2_000_000_000, priority: Some(1) };
        assert_eq!(cost(21_000, fees), U256::from(42_000_000_000_000u64));
        assert_eq!(ether(U256::from(1_500_000_000_000_000_000u128)), "1.500000 ETH");
        assert_eq!(ether(U256::from(42_000_000_000_000u64)), "0.000042 ETH");
    }

    #[test]
    fn a_chain_that_forgot_confirmed_transactions_is_a_nonce_gap() {
        // (highest confirmed + 1, latest, pending) → gap
        let cases = [
            // Nothing confirmed yet: nothing to miss.
            (None, 0, 0, false),
            // The chain counts them all (and more, from the pool or another sender).
            (Some(14), 14, 14, false),
            (Some(14), 20, 22, false),
            // A reset chain: nonces from 0.
            (Some(14), 0, 0, true),
            (Some(14), 3, 3, true),
            // Mined count behind, but the pool holds them: a reorg put them back, not a reset.
            (Some(14), 10, 14, false),
        ];
        for (confirmed_next, latest, pending, gap) in cases {
            let problem = nonce_gap(confirmed_next, latest, pending);
            assert_eq!(problem.is_some(), gap, "{confirmed_next:?} {latest} {pending}");
            if let Some(p) = problem {
                assert_eq!(p.code(), "nonce_gap");
                assert_eq!(p, Problem::NonceGap { expected: confirmed_next.expect("some"), latest, pending });
            }
        }
    }
}
