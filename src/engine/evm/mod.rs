//! The `evm` source: what to ask a chain for one block range, and what its answer means.
//!
//! A range costs a constant number of requests whatever the number of factory children:
//! headers of its ends and of every block within `reorg_window` of the highest head seen, one
//! `eth_getLogs` for the configured contracts and factories (by address, every log kept, decoded
//! where a declaration matches), and one `eth_getLogs` for all children (an address list up to
//! `max_addresses`, above it the children's topics only, filtered against the registry). Children
//! announced in the range are looked for in the same range, so a child's event in its creation
//! block, or its creation transaction, is kept.
//!
//! Fetching has no side effects: the result is a [`RangeWrite`] for the store plus the children
//! to add to the in-memory registry once it is committed. It is gather → decide: [`fetch_range`]
//! asks a [`ChainClient`] what the pure [`decide()`] wants to know, until it concludes (see
//! [`mod@decide`] for the questions and the checks, in order).

pub mod decide;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use alloy::primitives::{Address, B256};
use futures_util::future::try_join_all;

use crate::abi::events::EventSet;
use crate::config::FinalityTag;
pub use crate::config::{FactoryPlan, Finality, RoutePlan, SourcePlan};
use crate::engine::rpc::{BlockId, ChainClient, Log, RpcError};
use crate::store::ingest::RangeWrite;
use crate::store::keys::{DeliveryKey, EventKey, ItemKey};
use crate::store::records::Event;
pub use decide::{Ask, Gathered, Query, Step, decide};

/// The children known to a source: address → index of its factory in the plan.
pub type Registry = HashMap<Address, usize>;

/// Why a range could not be fetched as asked.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The parent of the range's first block is not the block the store has.
    #[error("block {number}'s parent is {found}, the store has {stored}")]
    Reorg { number: u64, stored: B256, found: B256 },
    /// The node does not have a block of the range: its head went back (a restarted node, a
    /// lagging one behind a load balancer). Wait, do not treat it as a reorg.
    #[error("the node does not have block {number} (its head went back); waiting")]
    Missing { number: u64 },
    /// The chain changed while the range was read; read it again.
    #[error("the chain changed while blocks {from}..={to} were read")]
    Unstable { from: u64, to: u64 },
    /// The logs of a block are missing from the range's answer although its bloom and a query by
    /// its hash show them: the node that answered did not have the block. Read the range again.
    #[error(
        "the node that answered eth_getLogs did not have block {number} (its logs were missing); reading the range again"
    )]
    Incomplete { number: u64 },
}

/// One fetched range: the write without its events, and the logs to decode into them.
#[derive(Debug)]
pub struct Fetched {
    write: RangeWrite,
    /// Each log with the index of the factory whose child emitted it (`None`: a static contract).
    logs: Vec<(Log, Option<usize>)>,
    /// Children announced in the range, for the registry once the write is committed.
    pub new_children: Vec<(Address, usize)>,
    /// Requests this range took.
    pub requests: u64,
    /// Blocks near the head asked again by hash because their bloom may match a filter that
    /// brought no log for them (included in `requests`).
    pub rechecked: u64,
    /// Logs the range's `eth_getLogs` answers held, kept or not: what sizes the next range.
    pub returned: u64,
}

/// What a fetch needs to know about the source's state.
pub struct FetchState<'a> {
    pub source_id: u32,
    pub registry: &'a Registry,
    /// The hash of block `from − 1`, when the store has it.
    pub parent: Option<B256>,
}

/// Reads the blocks `from..=to`: asks what [`decide()`] wants to know until it concludes.
pub async fn fetch_range(
    plan: &SourcePlan,
    rpc: &impl ChainClient,
    state: &FetchState<'_>,
    from: u64,
    to: u64,
) -> Result<Fetched, FetchError> {
    let mut gathered = Gathered { highest_seen: rpc.highest_seen(), ..Gathered::default() };
    loop {
        match decide(plan, state, from, to, gathered) {
            Step::Done(result) => return result,
            Step::Ask(ask, g) => gathered = gather(rpc, ask, g).await?,
        }
    }
}

/// Asks the chain one [`Ask`] and records the answers.
async fn gather(rpc: &impl ChainClient, ask: Ask, mut gathered: Gathered) -> Result<Gathered, RpcError> {
    match ask {
        Ask::Start { headers, statics } => {
            // The headers and the configured contracts' logs are fetched together: a range costs
            // the slower of the two, not their sum.
            let logs = async {
                match &statics {
                    Some(filter) => rpc.logs(filter).await.map(Some),
                    None => Ok(None),
                }
            };
            let (answers, logs) = futures_util::try_join!(
                try_join_all(headers.iter().map(|n| rpc.header(BlockId::Number(*n)))),
                logs
            )?;
            gathered.headers.extend(headers.into_iter().zip(answers));
            if logs.is_some() {
                gathered.statics = logs;
            }
        }
        Ask::Children(filter) => {
            let logs = rpc.logs(&filter).await?;
            gathered.children = Some((filter, logs));
        }
        Ask::EndAgain(number) => {
            gathered.end_again = Some(rpc.header(BlockId::Number(number)).await?.map(|h| h.hash));
        }
        Ask::Recheck(blocks) => {
            let again =
                try_join_all(blocks.iter().map(|(_, filter, hash)| rpc.logs_at(filter, *hash))).await?;
            gathered.rechecks.extend(blocks.into_iter().map(|(query, _, hash)| (query, hash)).zip(again));
        }
    }
    Ok(gathered)
}

impl Fetched {
    /// Hash of the range's last block.
    pub fn last_hash(&self) -> B256 {
        self.write.last_hash
    }

    /// Events in this range.
    pub fn event_count(&self) -> usize {
        self.logs.len()
    }

    /// Decodes the logs into events and returns the complete write. CPU work, kept out of the
    /// fetch so that it runs beside the next range's requests.
    pub fn into_write(self, plan: &SourcePlan) -> RangeWrite {
        let mut write = self.write;
        write.events.reserve(self.logs.len());
        for (log, factory) in &self.logs {
            let set = match factory {
                Some(i) => Some(&plan.factories[*i].child_events),
                None => plan.statics.get(&log.address),
            };
            let key =
                EventKey { chain: plan.chain_id, block: log.block_number.to(), log_index: log_index(log) };
            let event = to_event(write.source, log, set);
            if event.fields.is_some() {
                for route in &plan.routes {
                    if route.wants(event.name.as_deref()) {
                        write.deliveries.extend(route.chain_ids.iter().map(|&chain| DeliveryKey {
                            target: route.target_id,
                            chain,
                            item: ItemKey::Event(key),
                        }));
                    }
                }
            }
            write.events.push((key, event));
        }
        write
    }
}

fn log_index(log: &Log) -> u32 {
    u32::try_from(log.log_index.to::<u64>()).unwrap_or(u32::MAX)
}

fn to_event(source: u32, log: &Log, set: Option<&EventSet>) -> Event {
    let (name, fields, decode_error) = match set {
        Some(set) => set.decode_to_text(&log.topics, &log.data),
        None => (None, None, None),
    };
    Event {
        source,
        address: log.address,
        block_hash: log.block_hash,
        tx_hash: log.transaction_hash,
        topics: log.topics.clone(),
        data: log.data.clone(),
        name,
        fields,
        decode_error,
    }
}

/// The highest block a source may read now: `head − confirmations`, or the tag's block.
pub async fn final_head(plan: &SourcePlan, rpc: &impl ChainClient) -> Result<Option<u64>, RpcError> {
    match plan.finality {
        Finality::Confirmations(n) => Ok(rpc.block_number().await?.checked_sub(n)),
        Finality::Tag(tag) => {
            let id = match tag {
                FinalityTag::Safe => BlockId::Safe,
                FinalityTag::Finalized => BlockId::Finalized,
            };
            Ok(rpc.header(id).await?.map(|h| h.number()))
        }
    }
}
