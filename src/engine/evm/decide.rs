//! What one range's answers mean, decided without I/O.
//!
//! [`decide`] takes what the chain has answered so far for a range ([`Gathered`]) and either
//! names the next thing to ask ([`Ask`]) or concludes: the range's [`Fetched`] write, or why it
//! cannot be read as asked ([`FetchError`]). `fetch_range` asks and records the answers until
//! it concludes. The questions come in the order the checks need them, and a check that fails
//! ends the range before anything more is asked:
//!
//! 1. the headers (the ends, and every block within `reorg_window` of the highest head seen)
//!    together with the configured contracts' logs: a header missing, of another number, not
//!    the stored parent's child, or not linked to its neighbour ends the range here;
//! 2. the children's logs, old and new (factories' creation logs in step 1 announce the new
//!    ones), by address list up to `max_addresses`, by topic alone above;
//! 3. under `confirmations: 0`, the last header again: the chain must not have moved meanwhile;
//!    every log of a block whose header is held must carry that header's hash;
//! 4. each held block above the last one an answer had a log of, whose bloom may match a filter,
//!    asked again by hash: logs there mean the answer came from a node without that block.

use std::collections::{BTreeMap, HashMap, HashSet};

use alloy::primitives::{Address, B256};

use super::{FetchError, FetchState, Fetched, Registry, SourcePlan, log_index};
use crate::engine::rpc::{Header, Log, LogFilter};
use crate::store::ingest::RangeWrite;
use crate::store::keys::{ContractKey, EventKey};
use crate::store::records::{BlockHash, Contract};

/// Which range query a block is asked again under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Query {
    /// The configured contracts and factories.
    Statics,
    /// The factories' children.
    Children,
}

/// What the chain has answered so far for one range.
#[derive(Debug, Clone, Default)]
pub struct Gathered {
    /// The highest block any answer had shown when the range was begun.
    pub highest_seen: u64,
    /// Headers by number; `None`: the node does not have that block.
    pub headers: BTreeMap<u64, Option<Header>>,
    /// The configured contracts' logs over the range, once asked.
    pub statics: Option<Vec<Log>>,
    /// The children's logs over the range with the filter they answer, once asked.
    pub children: Option<(LogFilter, Vec<Log>)>,
    /// The hash of the range's last block read again after the logs, once asked (`confirmations:
    /// 0`); `None` when the node no longer had it.
    pub end_again: Option<Option<B256>>,
    /// Blocks asked again by hash, each under one query's filter.
    pub rechecks: HashMap<(Query, B256), Vec<Log>>,
}

/// What [`decide`] needs to know next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// These headers and, together, the configured contracts' logs (when asked).
    Start { headers: Vec<u64>, statics: Option<LogFilter> },
    /// The children's logs.
    Children(LogFilter),
    /// The header of block `to`, again.
    EndAgain(u64),
    /// Each block's logs by its hash (EIP-234), under the query's filter.
    Recheck(Vec<(Query, LogFilter, B256)>),
}

/// What [`decide`] concluded.
#[derive(Debug)]
pub enum Step {
    /// Ask this, record the answer in the [`Gathered`] handed back, and decide again.
    Ask(Ask, Gathered),
    Done(Result<Fetched, FetchError>),
}

/// A child announced in the range and not in the registry.
#[derive(Debug, Clone, Copy)]
struct NewChild {
    address: Address,
    factory: usize,
    /// The creation log's place.
    at: EventKey,
}

/// What the answers so far mean for the range `from..=to`: see the module docs.
pub fn decide(plan: &SourcePlan, state: &FetchState<'_>, from: u64, to: u64, gathered: Gathered) -> Step {
    let tip = plan.finality.is_tip();
    // Headers: the ends, and every block within `reorg_window` of the highest head seen — there
    // a node behind a load balancer may lag, so each block's logs are checked against its bloom
    // (and, under `confirmations: 0`, the headers link up the hash window). Older blocks cost
    // two headers per range, however many.
    let numbers = header_numbers(gathered.highest_seen.max(to), plan.reorg_window, from, to);
    let static_filter = (!plan.statics.is_empty()).then(|| LogFilter {
        from,
        to,
        addresses: plan.statics.keys().copied().collect(),
        topic0: vec![],
    });
    let headers: Vec<u64> = numbers.iter().copied().filter(|n| !gathered.headers.contains_key(n)).collect();
    let statics = static_filter.clone().filter(|_| gathered.statics.is_none());
    if !headers.is_empty() || statics.is_some() {
        return Step::Ask(Ask::Start { headers, statics }, gathered);
    }
    if let Some(e) = unlinked(state, from, to, &numbers, &gathered.headers) {
        return Step::Done(Err(e));
    }
    let by_number: BTreeMap<u64, Header> =
        numbers.iter().filter_map(|n| gathered.headers.get(n).copied().flatten().map(|h| (*n, h))).collect();

    // The configured contracts and factories: every log they emitted.
    let logs: &[Log] = gathered.statics.as_deref().unwrap_or_default();
    let new_children = new_children(plan, state.registry, logs);
    // The children, old and new: one request whatever their number.
    let child_filter = child_filter(plan, state.registry, &new_children, from, to);
    let child_logs: &[Log] = match (&child_filter, &gathered.children) {
        (None, _) => &[],
        (Some(filter), Some((asked, logs))) if asked == filter => logs,
        (Some(filter), _) => return Step::Ask(Ask::Children(filter.clone()), gathered),
    };
    let known = Known::new(plan, state.registry, &new_children);

    if tip {
        // The end of the range must still be the block we saw before reading the logs.
        let Some(again) = gathered.end_again else { return Step::Ask(Ask::EndAgain(to), gathered) };
        if again != Some(by_number[&to].hash) {
            return Step::Done(Err(FetchError::Unstable { from, to }));
        }
    }
    // Every log of a block whose header we hold must come from that very block.
    for log in logs.iter().chain(child_logs.iter().filter(|l| known.keeps(l))) {
        if let Some(header) = by_number.get(&log.block_number.to::<u64>())
            && header.hash != log.block_hash
        {
            return Step::Done(Err(FetchError::Unstable { from, to }));
        }
    }
    // A node that lacks a block answers a range with no logs for it, and no error. A node has
    // every block up to its head, so what it lacks is a tail of the range, above the last block
    // it returned a log of (kept or not). Each block of that tail whose header we hold and whose
    // bloom may match the filter is asked again by hash (EIP-234, which a node without the block
    // answers with an error): logs there mean the range's answer came from a node without that
    // block, and the range is read again.
    let last = |logs: &[Log]| logs.iter().map(|l| l.block_number.to::<u64>()).max();
    let doubts = doubts(
        &by_number,
        [
            (Query::Statics, static_filter.as_ref(), last(logs)),
            (Query::Children, child_filter.as_ref(), last(child_logs)),
        ],
    );
    let unasked: Vec<(Query, LogFilter, B256)> = doubts
        .iter()
        .filter(|d| !gathered.rechecks.contains_key(&(d.query, d.hash)))
        .map(|d| (d.query, d.filter.clone(), d.hash))
        .collect();
    if !unasked.is_empty() {
        return Step::Ask(Ask::Recheck(unasked), gathered);
    }
    if let Some(doubt) =
        doubts.iter().find(|d| gathered.rechecks.get(&(d.query, d.hash)).is_some_and(|l| !l.is_empty()))
    {
        return Step::Done(Err(FetchError::Incomplete { number: doubt.number }));
    }

    let requests = numbers.len() as u64
        + u64::from(static_filter.is_some())
        + u64::from(child_filter.is_some())
        + u64::from(tip)
        + doubts.len() as u64;
    let rechecked = doubts.len() as u64;
    let returned = (logs.len() + child_logs.len()) as u64;
    // Under `confirmations: 0`, blocks with logs outside the header window get their hash too.
    let logged = logs.iter().chain(child_logs.iter().filter(|l| known.keeps(l))).filter(|_| tip);
    let write = range_write(plan, state, (from, to), &by_number, &new_children, logged);

    // Which factory's declarations decode each child log; statics are found by address.
    let Gathered { statics, children, .. } = gathered;
    let logs = statics
        .unwrap_or_default()
        .into_iter()
        .map(|l| (l, None))
        .chain(children.map(|c| c.1).unwrap_or_default().into_iter().filter(|l| known.keeps(l)).map(|l| {
            let factory = known.factory_of(&l.address);
            (l, factory)
        }))
        .filter(|(l, _)| !l.removed)
        .collect();
    Step::Done(Ok(Fetched {
        write,
        logs,
        new_children: new_children.iter().map(|c| (c.address, c.factory)).collect(),
        requests,
        rechecked,
        returned,
    }))
}

/// The children a range knows of: the registry's and those announced in it, by factory.
struct Known<'a> {
    plan: &'a SourcePlan,
    registry: &'a Registry,
    new: HashMap<Address, usize>,
}

impl<'a> Known<'a> {
    fn new(plan: &'a SourcePlan, registry: &'a Registry, new: &[NewChild]) -> Self {
        Self { plan, registry, new: new.iter().map(|c| (c.address, c.factory)).collect() }
    }

    /// The factory whose child `address` is.
    fn factory_of(&self, address: &Address) -> Option<usize> {
        self.registry.get(address).or_else(|| self.new.get(address)).copied()
    }

    /// A child's log is kept when its factory declares its event.
    fn keeps(&self, log: &Log) -> bool {
        self.factory_of(&log.address).is_some_and(|i| {
            log.topics.first().is_some_and(|t| self.plan.factories[i].child_events.contains(t))
        })
    }
}

/// A block asked again by hash under one query's filter.
struct Doubt<'f> {
    query: Query,
    filter: &'f LogFilter,
    hash: B256,
    number: u64,
}

/// The held blocks of each query's tail — above the last block its answer had a log of (kept or
/// not) — whose bloom may match its filter; in block order, then query order.
fn doubts<'f>(
    by_number: &BTreeMap<u64, Header>,
    queries: [(Query, Option<&'f LogFilter>, Option<u64>); 2],
) -> Vec<Doubt<'f>> {
    let probes: Vec<_> = queries
        .into_iter()
        .filter_map(|(query, filter, last)| filter.map(|f| (query, f, f.bloom_probe(), last)))
        .collect();
    let mut doubts = Vec::new();
    for header in by_number.values() {
        for (query, filter, probe, last) in &probes {
            if last.is_none_or(|last| header.number() > last) && probe.may_match(&header.logs_bloom) {
                doubts.push(Doubt { query: *query, filter, hash: header.hash, number: header.number() });
            }
        }
    }
    doubts
}

/// The range's write without its events: the new children where they were created, the held
/// headers' hashes (and those of `logged` blocks without a held header, parent unknown), the end.
fn range_write<'l>(
    plan: &SourcePlan,
    state: &FetchState<'_>,
    (from, to): (u64, u64),
    by_number: &BTreeMap<u64, Header>,
    new_children: &[NewChild],
    logged: impl Iterator<Item = &'l Log>,
) -> RangeWrite {
    let mut write = RangeWrite {
        source: state.source_id,
        chain: plan.chain_id,
        from,
        to,
        last_hash: by_number[&to].hash,
        keep_hashes_from: to.saturating_sub(plan.reorg_window).min(from.saturating_sub(1)),
        ..RangeWrite::default()
    };
    for child in new_children {
        write.contracts.push((
            ContractKey { chain: plan.chain_id, address: child.address },
            Contract {
                source: state.source_id,
                factory: Some(plan.factories[child.factory].address),
                created_at: Some(child.at),
            },
        ));
    }
    let mut hashes: BTreeMap<u64, BlockHash> =
        by_number.values().map(|h| (h.number(), BlockHash { hash: h.hash, parent: h.parent_hash })).collect();
    for log in logged {
        hashes.entry(log.block_number.to()).or_insert(BlockHash { hash: log.block_hash, parent: B256::ZERO });
    }
    write.hashes = hashes.into_iter().collect();
    write
}

/// The blocks whose headers a range reads: `from`, `to`, and every block of the range within
/// `window` of `head`, ascending.
fn header_numbers(head: u64, window: u64, from: u64, to: u64) -> Vec<u64> {
    let window_start = head.saturating_add(1).saturating_sub(window).max(from);
    let mut numbers: Vec<u64> = (window_start..=to).collect();
    if numbers.last() != Some(&to) {
        numbers.push(to);
    }
    if numbers.first() != Some(&from) {
        numbers.insert(0, from);
    }
    numbers
}

/// What is wrong with the headers of `numbers`, if anything, in this order: one missing or of
/// another number (the first in ascending order), the first not the stored parent's child,
/// neighbours not linked.
fn unlinked(
    state: &FetchState<'_>,
    from: u64,
    to: u64,
    numbers: &[u64],
    answers: &BTreeMap<u64, Option<Header>>,
) -> Option<FetchError> {
    let mut held: Vec<Header> = Vec::with_capacity(numbers.len());
    for n in numbers {
        let Some(header) = answers.get(n).copied().flatten() else {
            return Some(FetchError::Missing { number: *n });
        };
        if header.number() != *n {
            return Some(FetchError::Unstable { from, to });
        }
        held.push(header);
    }
    if let Some(first) = held.first()
        && let Some(parent) = state.parent
        && first.parent_hash != parent
    {
        return Some(FetchError::Reorg { number: from, stored: parent, found: first.parent_hash });
    }
    // Consecutive headers must link up; if not, the chain moved under us.
    held.windows(2)
        .any(|w| w[1].number() == w[0].number() + 1 && w[1].parent_hash != w[0].hash)
        .then_some(FetchError::Unstable { from, to })
}

/// Children the factories announce in `logs` that the registry does not know, each once.
fn new_children(plan: &SourcePlan, registry: &Registry, logs: &[Log]) -> Vec<NewChild> {
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    for log in logs {
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
                && !registry.contains_key(&child)
                && seen.insert(child)
            {
                let at = EventKey {
                    chain: plan.chain_id,
                    block: log.block_number.to(),
                    log_index: log_index(log),
                };
                found.push(NewChild { address: child, factory: i, at });
            }
        }
    }
    found
}

/// The one query for every child's events: by address up to `max_addresses` children, by topic
/// alone above (the answer then filtered against the registry). `None` without children.
fn child_filter(
    plan: &SourcePlan,
    registry: &Registry,
    new: &[NewChild],
    from: u64,
    to: u64,
) -> Option<LogFilter> {
    let known = registry.len() + new.len();
    if known == 0 || plan.child_topics.is_empty() {
        return None;
    }
    let addresses = if known <= plan.max_addresses {
        let mut list: Vec<Address> = registry.keys().copied().chain(new.iter().map(|c| c.address)).collect();
        list.sort();
        list
    } else {
        vec![]
    };
    Some(LogFilter { from, to, addresses, topic0: plan.child_topics.clone() })
}
