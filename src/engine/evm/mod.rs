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
//! to add to the in-memory registry once it is committed.

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy::primitives::{Address, B256};
use futures_util::future::try_join_all;

use crate::abi::events::EventSet;
use crate::config::FinalityTag;
pub use crate::config::{FactoryPlan, Finality, RoutePlan, SourcePlan};
use crate::engine::rpc::{BlockId, ChainRpc, Header, Log, LogFilter, RpcError};
use crate::store::ingest::RangeWrite;
use crate::store::keys::{ContractKey, DeliveryKey, EventKey, ItemKey};
use crate::store::records::{BlockHash, Contract, Event};

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
}

/// What a fetch needs to know about the source's state.
pub struct FetchState<'a> {
    pub source_id: u32,
    pub registry: &'a Registry,
    /// The hash of block `from − 1`, when the store has it.
    pub parent: Option<B256>,
}

pub async fn fetch_range(
    plan: &SourcePlan,
    rpc: &ChainRpc,
    state: &FetchState<'_>,
    from: u64,
    to: u64,
) -> Result<Fetched, FetchError> {
    let mut requests = 0u64;
    let tip = plan.finality.is_tip();
    // Headers: the ends, and every block within `reorg_window` of the highest head seen — there
    // a node behind a load balancer may lag, so each block's logs are checked against its bloom
    // (and, under `confirmations: 0`, the headers link up the hash window). Older blocks cost
    // two headers per range, however many.
    let head = rpc.highest_seen().max(to);
    let window_start = head.saturating_add(1).saturating_sub(plan.reorg_window).max(from);
    let mut numbers: Vec<u64> = (window_start..=to).collect();
    if numbers.last() != Some(&to) {
        numbers.push(to);
    }
    if numbers.first() != Some(&from) {
        numbers.insert(0, from);
    }
    // The headers and the configured contracts' logs are fetched together: a range costs the
    // slower of the two, not their sum.
    let static_filter = (!plan.statics.is_empty()).then(|| LogFilter {
        from,
        to,
        addresses: plan.statics.keys().copied().collect(),
        topic0: vec![],
    });
    let statics = async {
        match &static_filter {
            Some(filter) => rpc.logs(filter).await.map(Some),
            None => Ok(None),
        }
    };
    let (headers, static_logs) = futures_util::try_join!(
        try_join_all(numbers.iter().map(|n| rpc.header(BlockId::Number(*n)))),
        statics
    )?;
    requests += numbers.len() as u64;
    let mut by_number = BTreeMap::new();
    for (n, header) in numbers.iter().zip(headers) {
        let header = header.ok_or(FetchError::Missing { number: *n })?;
        if header.number() != *n {
            return Err(FetchError::Unstable { from, to });
        }
        by_number.insert(*n, header);
    }
    let first = by_number[&from];
    if let Some(parent) = state.parent
        && first.parent_hash != parent
    {
        return Err(FetchError::Reorg { number: from, stored: parent, found: first.parent_hash });
    }
    // Consecutive headers must link up; if not, the chain moved under us.
    let mut previous: Option<&Header> = None;
    for header in by_number.values() {
        if let Some(p) = previous
            && header.number() == p.number() + 1
            && header.parent_hash != p.hash
        {
            return Err(FetchError::Unstable { from, to });
        }
        previous = Some(header);
    }

    // The configured contracts and factories: every log they emitted.
    let logs = static_logs.unwrap_or_default();
    if !plan.statics.is_empty() {
        requests += 1;
    }
    let mut new_children = Vec::new();
    let mut seen_new = HashSet::new();
    for log in &logs {
        for (i, factory) in plan.factories.iter().enumerate() {
            if log.address != factory.address || log.topics.first() != Some(&factory.creation_topic) {
                continue;
            }
            let decoded = factory.creation.decode(&log.topics, &log.data);
            let child = decoded
                .fields
                .as_ref()
                .and_then(|f| f.get(&factory.child_param))
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse::<Address>().ok());
            if let Some(child) = child
                && !state.registry.contains_key(&child)
                && seen_new.insert(child)
            {
                new_children.push((child, i, log.clone()));
            }
        }
    }

    // The children, old and new: one request whatever their number.
    let known = state.registry.len() + new_children.len();
    let mut child_logs = Vec::new();
    let mut child_filter = None;
    let mut child_last = None;
    if known > 0 && !plan.child_topics.is_empty() {
        let by_address = known <= plan.max_addresses;
        let addresses = if by_address {
            let mut list: Vec<Address> =
                state.registry.keys().copied().chain(new_children.iter().map(|c| c.0)).collect();
            list.sort();
            list
        } else {
            vec![]
        };
        let filter = LogFilter { from, to, addresses, topic0: plan.child_topics.clone() };
        child_logs = rpc.logs(&filter).await?;
        requests += 1;
        child_last = child_logs.iter().map(|l| l.block_number.to::<u64>()).max();
        child_filter = Some(filter);
        let new: HashMap<Address, usize> = new_children.iter().map(|(a, i, _)| (*a, *i)).collect();
        child_logs.retain(|log| {
            let factory = state.registry.get(&log.address).or_else(|| new.get(&log.address));
            factory.is_some_and(|i| {
                log.topics.first().is_some_and(|t| plan.factories[*i].child_events.contains(t))
            })
        });
    }

    if tip {
        // The end of the range must still be the block we saw before reading the logs.
        let again = rpc.header(BlockId::Number(to)).await?;
        requests += 1;
        if again.map(|h| h.hash) != Some(by_number[&to].hash) {
            return Err(FetchError::Unstable { from, to });
        }
    }
    // Every log of a block whose header we hold must come from that very block.
    for log in logs.iter().chain(&child_logs) {
        if let Some(header) = by_number.get(&log.block_number.to::<u64>())
            && header.hash != log.block_hash
        {
            return Err(FetchError::Unstable { from, to });
        }
    }
    // A node that lacks a block answers a range with no logs for it, and no error. A node has
    // every block up to its head, so what it lacks is a tail of the range, above the last block
    // it returned a log of. Each block of that tail whose header we hold and whose bloom may
    // match the filter is asked again by hash (EIP-234, which a node without the block answers
    // with an error): logs there mean the range's answer came from a node without that block,
    // and the range is read again.
    let static_last = logs.iter().map(|l| l.block_number.to::<u64>()).max();
    let probes: Vec<_> = [(&static_filter, static_last), (&child_filter, child_last)]
        .into_iter()
        .filter_map(|(filter, last)| filter.as_ref().map(|f| (f, f.bloom_probe(), last)))
        .collect();
    let mut doubts = Vec::new();
    for header in by_number.values().filter(|h| (from..=to).contains(&h.number())) {
        for (filter, probe, last) in &probes {
            if last.is_none_or(|last| header.number() > last) && probe.may_match(&header.logs_bloom) {
                doubts.push((*filter, header.hash, header.number()));
            }
        }
    }
    let rechecked = doubts.len() as u64;
    if !doubts.is_empty() {
        let again = try_join_all(doubts.iter().map(|(filter, hash, _)| rpc.logs_at(filter, *hash))).await?;
        requests += doubts.len() as u64;
        if let Some(((_, _, number), _)) = doubts.iter().zip(&again).find(|(_, logs)| !logs.is_empty()) {
            return Err(FetchError::Incomplete { number: *number });
        }
    }

    let mut write = RangeWrite {
        source: state.source_id,
        chain: plan.chain_id,
        from,
        to,
        last_hash: by_number[&to].hash,
        keep_hashes_from: to.saturating_sub(plan.reorg_window).min(from.saturating_sub(1)),
        ..RangeWrite::default()
    };
    for (child, i, log) in &new_children {
        let at = EventKey { chain: plan.chain_id, block: log.block_number.to(), log_index: log_index(log) };
        write.contracts.push((
            ContractKey { chain: plan.chain_id, address: *child },
            Contract {
                source: state.source_id,
                factory: Some(plan.factories[*i].address),
                created_at: Some(at),
            },
        ));
    }
    let mut hashes: BTreeMap<u64, BlockHash> =
        by_number.values().map(|h| (h.number(), BlockHash { hash: h.hash, parent: h.parent_hash })).collect();
    if tip {
        // Blocks with logs but outside the header window still get their hash (parent unknown).
        for log in logs.iter().chain(&child_logs) {
            hashes
                .entry(log.block_number.to())
                .or_insert(BlockHash { hash: log.block_hash, parent: B256::ZERO });
        }
    }
    write.hashes = hashes.into_iter().collect();
    // Which factory's declarations decode each child log; statics are found by address.
    let new: HashMap<Address, usize> = new_children.iter().map(|(a, i, _)| (*a, *i)).collect();
    let child_factory = |a: &Address| state.registry.get(a).or_else(|| new.get(a)).copied();
    let logs = logs
        .into_iter()
        .map(|l| (l, None))
        .chain(child_logs.into_iter().map(|l| {
            let factory = child_factory(&l.address);
            (l, factory)
        }))
        .filter(|(l, _)| !l.removed)
        .collect();
    Ok(Fetched {
        write,
        logs,
        new_children: new_children.into_iter().map(|(a, i, _)| (a, i)).collect(),
        requests,
        rechecked,
    })
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
                    let wanted = match (&route.events, &event.name) {
                        (None, _) => true,
                        (Some(names), Some(name)) => names.contains(name),
                        (Some(_), None) => false,
                    };
                    if wanted {
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
pub async fn final_head(plan: &SourcePlan, rpc: &ChainRpc) -> Result<Option<u64>, RpcError> {
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
