//! Delivery: one worker per destination chain turns due deliveries into transactions and follows
//! them until they are confirmed (the state machine and its invariants: `docs/architecture.md`).
//!
//! The rules that make a delivery happen once in effect:
//! - check first ("already done" view, then a simulation whose configured reverts mean "already
//!   there"), and skip what is there;
//! - sign locally, and **write the intent before broadcasting**: a crash between the two leaves a
//!   signed intent that is broadcast again, the very same bytes, never re-signed with a new nonce;
//! - a delivery goes back to pending only on positive evidence that another transaction took its
//!   nonce: that transaction found in a block as deep as the chain's confirmations, its hash none
//!   of ferry's (`evidence.rs`); a used nonce without a visible receipt waits, since a lagging
//!   node shows exactly that for ferry's own transaction;
//! - nonces are ferry's, per (chain, signer), reconciled with the chain on start;
//! - many deliveries are signed with consecutive nonces and broadcast together (pipelined);
//! - a transaction not mined after `bump_after` is replaced at the same nonce with higher fees,
//!   up to the cap; at the cap the worker waits and says so.

pub mod chain;
pub mod control;
mod evidence;
pub mod fees;
mod follow;
mod prover;
pub mod sign;
mod start;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::{Address, U256};
use alloy::signers::local::PrivateKeySigner;

pub use self::worker::{ChainStatus, Problem, Worker, run_all};
use crate::abi::call::CallPlan;
use crate::config::signer::{self, KeyError};
use crate::config::{GasMargin, Resolved, TargetPlan};
use crate::engine::rpc::{ChainRpc, Clients, RpcError};
/// Deliveries by state on one chain, for summaries and exit codes.
pub use crate::store::query_deliver::StateCounts as Counts;
use crate::store::{Store, StoreError};
use fees::FeePolicy;

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error("chain {chain}: signer: {source}")]
    Key { chain: String, source: KeyError },
    /// The config names something unusable for delivery (an address, a chain, a signer, a URL).
    #[error("chain {chain}: {detail}")]
    Config { chain: String, detail: String },
    #[error("chain {chain}: {detail}")]
    Setup { chain: String, detail: String },
    /// The RPC error names the chain and the (masked) URL itself.
    #[error(transparent)]
    Rpc(Box<RpcError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DeliverError {
    /// A problem in the config or its environment (a signer key, a target, an address), which a
    /// command reports as bad config (exit 2), not as a failure of the chain.
    pub fn is_config(&self) -> bool {
        match self {
            DeliverError::Key { .. } | DeliverError::Config { .. } => true,
            DeliverError::Setup { .. } | DeliverError::Rpc(_) | DeliverError::Store(_) => false,
        }
    }
}

/// One target as it applies to one chain.
#[derive(Debug, Clone)]
pub struct TargetOnChain {
    pub name: String,
    pub id: u32,
    pub kind: TargetKind,
    /// How a gas estimate becomes the gas limit (`gas_limit_multiplier`).
    pub gas_margin: GasMargin,
}

/// What a target does on a chain.
#[derive(Debug, Clone)]
pub enum TargetKind {
    /// `evm-call`: one function on one contract, per item.
    Call { plan: Arc<CallPlan>, to: Address },
    /// `seda-prover`: batches posted to a Prover, in order.
    Prover(prover::ProverTarget),
}

/// Everything a worker needs to deliver to one chain.
#[derive(Debug, Clone)]
pub struct Destination {
    pub chain: String,
    pub chain_id: u64,
    /// Blocks on top of (and including) the receipt's before a delivery counts as confirmed.
    pub confirmations: u64,
    pub poll_interval: Duration,
    pub rpc: ChainRpc,
    pub signer: PrivateKeySigner,
    pub fees: FeePolicy,
    /// Target id → target.
    pub targets: BTreeMap<u32, TargetOnChain>,
    /// The signer's balance below which the worker warns, in wei.
    pub min_balance: Option<U256>,
    /// The chain's `max_in_flight`, over the command's default.
    pub max_in_flight: Option<usize>,
}

/// Signed, unmined transactions per chain when the chain does not say: what common nodes keep
/// queued per account (geth's default account queue is 64), so that a backlog is never signed
/// past what the node will hold.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 64;

/// How workers run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Signed-but-unmined transactions per chain at most (a chain's `max_in_flight` overrides).
    pub max_in_flight: usize,
    /// Simulate and report; sign and send nothing, write nothing.
    pub dry_run: bool,
    /// Stop when nothing is left to do on the chain (`push`), instead of polling on (`watch`).
    pub until_done: bool,
    /// Start at most this many new deliveries per chain.
    pub limit: Option<usize>,
    /// Fired when a stop has waited long enough: workers still running are dropped where they
    /// wait (a worker writes in whole transactions, and the next start reconciles what it left),
    /// and [`run_all`] returns once every one of them is gone, without their statuses.
    pub abandon: tokio_util::sync::CancellationToken,
    /// Where workers register to take operators' requests between rounds (`watch`'s control
    /// socket); none for one-shot commands.
    pub registry: Option<crate::engine::operator::Registry>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
            dry_run: false,
            until_done: false,
            limit: None,
            abandon: tokio_util::sync::CancellationToken::new(),
            registry: None,
        }
    }
}

/// The destination chains of every chain target (`evm-call`, `seda-prover`), filtered by target and chain names (empty: all).
/// Target ids are taken from (and, the first time, written to) the store. Each destination uses
/// its chain's client from `clients`, the one its other roles use too.
pub fn destinations(
    resolved: &Resolved,
    clients: &Clients,
    store: &Store,
    only_targets: &[String],
    only_chains: &[String],
) -> Result<Vec<Destination>, DeliverError> {
    let mut by_chain: BTreeMap<String, BTreeMap<u32, TargetOnChain>> = BTreeMap::new();
    for (name, target) in &resolved.targets {
        if !only_targets.is_empty() && !only_targets.contains(name) {
            continue;
        }
        let id = store.write(|tx| tx.target_id(name))?;
        let (on_chains, gas_margin): (Vec<(&String, TargetKind)>, GasMargin) = match target {
            TargetPlan::EvmCall(call) => (
                call.chains
                    .iter()
                    .map(|(chain, to)| (chain, TargetKind::Call { plan: call.plan.clone(), to: *to }))
                    .collect(),
                call.gas_margin,
            ),
            TargetPlan::SedaProver(p) => (
                p.chains
                    .iter()
                    .map(|(chain, at)| {
                        (chain, TargetKind::Prover(prover::ProverTarget { at: *at, mode: p.mode }))
                    })
                    .collect(),
                p.gas_margin,
            ),
            // Sinks have their own workers (`engine::sink`).
            TargetPlan::Sink(_) => continue,
        };
        for (chain, kind) in on_chains {
            if !only_chains.is_empty() && !only_chains.contains(chain) {
                continue;
            }
            by_chain
                .entry(chain.clone())
                .or_default()
                .insert(id, TargetOnChain { name: name.clone(), id, kind, gas_margin });
        }
    }
    let mut out = Vec::new();
    for (name, targets) in by_chain {
        let config = |detail: &str| DeliverError::Config { chain: name.clone(), detail: detail.into() };
        let chain = resolved.chains.get(&name).ok_or_else(|| config("no such chain"))?;
        let signer = chain.signer.as_ref().ok_or_else(|| config("no signer"))?;
        let signer =
            signer::load(signer).map_err(|source| DeliverError::Key { chain: name.clone(), source })?;
        let rpc = clients.get(&name).cloned().ok_or_else(|| config("no RPC client"))?;
        out.push(Destination {
            chain: name.clone(),
            chain_id: chain.chain_id,
            confirmations: chain.delivery_confirmations,
            poll_interval: chain.poll_interval,
            rpc,
            signer,
            fees: FeePolicy::from_config(chain.gas.as_ref()),
            targets,
            min_balance: chain.min_balance,
            max_in_flight: chain.max_in_flight,
        });
    }
    Ok(out)
}
