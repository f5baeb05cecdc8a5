//! Read-only views of deliveries and transaction intents, for `inspect-store` and `export`.
//!
//! Rows stream through a callback one at a time, so an export runs in constant memory whatever
//! the store holds. Counts by state come from the status index alone (keys, no record decoded),
//! so a footer can count every matching delivery even when `--limit` cut the list. The
//! item × chain matrix merges one key range per destination chain, item by item, holding one
//! entry per chain at a time.
//!
//! Rows name things the way operators type them back. A delivery's id is
//! `<target>/<chain>/<item>` (`receiver/base/ev:8453:21000000:3`): the chain is the name the
//! caller's config gives its chain id, or the id when there is no such name. The store knows no
//! config; callers pass the names in. The intents view is in [`intents`].

mod intents;
#[cfg(test)]
mod tests;

use super::serde_text::{as_text, checksummed, checksummed_opt};
use std::collections::BTreeMap;
use std::ops::ControlFlow;

use alloy::primitives::{Address, B256};
use redb::{ReadOnlyTable, ReadTransaction, ReadableTable};
use serde::{Serialize, Serializer};

use super::keys::{DeliveryKey, FixedKey, ItemKey, SINK_CHAIN, StatusKey};
use super::records::{self, Delivery, DeliveryState, Receipt};
use super::{ReadStore, StoreError, failure, guarded, tables};

pub use intents::{IntentCounts, IntentFilter, IntentRow, Order, gwei, intent_state_name};

/// The text an operator copies to name one delivery: `<target>/<chain>/<item>`, or
/// `<target>/<item>` for a sink (no chain). This is also a sink message's idempotency key.
///
/// The item never holds a `/`; the chain is what follows the last `/` before it, so a target
/// name may hold one, a chain name may not. Whether `a/b/<item>` is target `a` on chain `b` or
/// sink `a/b` is the caller's to tell, from the names it knows ([`DeliveryId::as_sink`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryId {
    pub target: String,
    /// A chain name from the config, or a chain id; `None` for a sink. Resolving it is the
    /// caller's business.
    pub chain: Option<String>,
    pub item: ItemKey,
}

impl DeliveryId {
    /// The same text read as a sink's id: everything before the item is the target.
    pub fn as_sink(&self) -> DeliveryId {
        let target = match &self.chain {
            Some(chain) => format!("{}/{chain}", self.target),
            None => self.target.clone(),
        };
        DeliveryId { target, chain: None, item: self.item }
    }
}

impl std::fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.chain {
            Some(chain) => write!(f, "{}/{chain}/{}", self.target, self.item),
            None => write!(f, "{}/{}", self.target, self.item),
        }
    }
}

impl std::str::FromStr for DeliveryId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "`{s}` is not a delivery id: write `<target>/<chain>/<item>`, e.g. \
                 `receiver/base/ev:8453:21000000:3`, or `<target>/<item>` for a sink \
                 (`ferry inspect-store deliveries` lists them)"
            )
        };
        let (rest, item) = s.rsplit_once('/').ok_or_else(bad)?;
        let item = item.parse()?;
        let Some((target, chain)) = rest.rsplit_once('/') else {
            if rest.is_empty() {
                return Err(bad());
            }
            return Ok(DeliveryId { target: rest.into(), chain: None, item });
        };
        if target.is_empty() || chain.is_empty() {
            return Err(bad());
        }
        Ok(DeliveryId { target: target.into(), chain: Some(chain.into()), item })
    }
}

/// Which deliveries to read.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// A target name; a name the store has never seen matches nothing.
    pub target: Option<String>,
    pub chain: Option<u64>,
    /// With a state, rows come from the status index (a range scan on state and chain).
    pub state: Option<DeliveryState>,
}

/// One delivery as people and scripts read it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeliveryRow {
    /// `<target>/<chain>/<item>`, what `ferry inspect-store retry` takes.
    pub id: String,
    pub target: String,
    /// The config's name for the chain, else its id.
    pub chain: String,
    pub chain_id: u64,
    #[serde(serialize_with = "as_text")]
    pub item: ItemKey,
    pub state: DeliveryState,
    pub attempts: u32,
    #[serde(serialize_with = "checksummed_opt")]
    pub signer: Option<Address>,
    pub nonce: Option<u64>,
    /// The newest of `tx_hashes`: the last one signed (a fee bump replaces the one before).
    pub tx_hash: Option<B256>,
    pub tx_hashes: Vec<B256>,
    /// Where the transaction that landed was mined.
    pub receipt: Option<Receipt>,
    pub reason: Option<String>,
    pub retryable: bool,
    pub next_attempt_at: Option<u64>,
    /// What a sink said when it took the delivery (`HTTP 200`, a stream entry id, `seq 42`);
    /// `null` for a chain, like every other field that has no value.
    pub ack: Option<String>,
    pub created_at: u64,
    pub updated_at: u64,
}

/// Deliveries by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StateCounts {
    pub pending: u64,
    pub sending: u64,
    pub sent: u64,
    pub confirmed: u64,
    pub skipped: u64,
    pub failed: u64,
}

impl StateCounts {
    pub fn add(&mut self, state: DeliveryState) {
        *self.slot(state) += 1;
    }

    pub fn get(&self, state: DeliveryState) -> u64 {
        match state {
            DeliveryState::Pending => self.pending,
            DeliveryState::Sending => self.sending,
            DeliveryState::Sent => self.sent,
            DeliveryState::Confirmed => self.confirmed,
            DeliveryState::Skipped => self.skipped,
            DeliveryState::Failed => self.failed,
        }
    }

    pub fn total(&self) -> u64 {
        DeliveryState::ALL.into_iter().map(|s| self.get(s)).sum()
    }

    /// Anything not confirmed or skipped is work left.
    pub fn left(&self) -> u64 {
        self.pending + self.sending + self.sent + self.failed
    }

    fn slot(&mut self, state: DeliveryState) -> &mut u64 {
        match state {
            DeliveryState::Pending => &mut self.pending,
            DeliveryState::Sending => &mut self.sending,
            DeliveryState::Sent => &mut self.sent,
            DeliveryState::Confirmed => &mut self.confirmed,
            DeliveryState::Skipped => &mut self.skipped,
            DeliveryState::Failed => &mut self.failed,
        }
    }
}

/// One item of one target, and its state on each destination chain.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MatrixRow {
    #[serde(serialize_with = "as_text")]
    pub item: ItemKey,
    pub target: String,
    /// Chain name (or id) → state, `None` where the item has no delivery to that chain. Every
    /// row has the same chains, in chain-id order.
    #[serde(serialize_with = "cells")]
    pub chains: Vec<(String, Option<DeliveryState>)>,
}

/// Reads delivery and intent rows out of one read transaction: every row and count a command
/// prints comes from the same snapshot, however the writer moves on meanwhile.
pub struct DeliveryQuery<'a> {
    store: &'a ReadStore,
    txn: ReadTransaction,
    targets: BTreeMap<u32, String>,
    chain_names: BTreeMap<u64, String>,
}

type Deliveries = ReadOnlyTable<[u8; 33], &'static [u8]>;

impl<'a> DeliveryQuery<'a> {
    /// `chain_names` maps chain ids to the names rows should show (the config's); ids without a
    /// name show as the number.
    pub fn new(store: &'a ReadStore, chain_names: BTreeMap<u64, String>) -> Result<Self, StoreError> {
        let txn = store.read()?;
        let targets = guarded(store.path(), "reading target names", || {
            let mut targets = BTreeMap::new();
            let table = txn.open_table(tables::TARGET_IDS).map_err(|e| fail(store, e))?;
            for entry in table.iter().map_err(|e| fail(store, e))? {
                let (name, id) = entry.map_err(|e| fail(store, e))?;
                targets.insert(id.value(), name.value().to_string());
            }
            Ok::<_, StoreError>(targets)
        })??;
        Ok(Self { store, txn, targets, chain_names })
    }

    /// Target names the store has deliveries (or had them) for, in id order.
    pub fn target_names(&self) -> impl Iterator<Item = &str> {
        self.targets.values().map(String::as_str)
    }

    pub fn has_target(&self, name: &str) -> bool {
        self.target_names().any(|n| n == name)
    }

    /// Streams matching deliveries to `emit` until it breaks; returns how many it got. Without a
    /// state the order is the table's (target, chain, item); with one, the index's (chain,
    /// target, item).
    pub fn deliveries(
        &self,
        filter: &DeliveryFilter,
        emit: &mut dyn FnMut(DeliveryRow) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        guarded(self.store.path(), "reading deliveries", || self.deliveries_unguarded(filter, emit))?
    }

    /// How many deliveries match, by state, counted on the status index without reading a record.
    pub fn counts(&self, filter: &DeliveryFilter) -> Result<StateCounts, StoreError> {
        guarded(self.store.path(), "counting deliveries", || self.counts_unguarded(filter))?
    }

    /// Streams one row per (target, item) with its state on every destination chain of the
    /// filtered target(s), in item order; returns how many rows it emitted. A `state` in the
    /// filter keeps the items that are in that state on at least one chain.
    pub fn matrix(
        &self,
        filter: &DeliveryFilter,
        emit: &mut dyn FnMut(MatrixRow) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        guarded(self.store.path(), "reading the delivery matrix", || self.matrix_unguarded(filter, emit))?
    }

    /// `-` for a sink's deliveries.
    fn chain_name(&self, chain: u64) -> String {
        if chain == SINK_CHAIN {
            return "-".into();
        }
        self.chain_names.get(&chain).cloned().unwrap_or_else(|| chain.to_string())
    }

    fn target_name(&self, target: u32) -> String {
        self.targets.get(&target).cloned().unwrap_or_else(|| format!("#{target}"))
    }

    fn id(&self, key: &DeliveryKey) -> String {
        let chain = (key.chain != SINK_CHAIN).then(|| self.chain_name(key.chain));
        DeliveryId { target: self.target_name(key.target), chain, item: key.item }.to_string()
    }

    /// `None`: the filter names a target the store does not know, so nothing matches.
    /// `Some(None)`: every target.
    fn target_filter(&self, filter: &DeliveryFilter) -> Option<Option<u32>> {
        match &filter.target {
            None => Some(None),
            Some(name) => self.targets.iter().find(|(_, n)| *n == name).map(|(id, _)| Some(*id)),
        }
    }

    fn row(&self, key: DeliveryKey, d: Delivery) -> Result<DeliveryRow, StoreError> {
        Ok(DeliveryRow {
            id: self.id(&key),
            target: self.target_name(key.target),
            chain: self.chain_name(key.chain),
            chain_id: key.chain,
            item: key.item,
            state: d.state,
            attempts: d.attempts,
            signer: d.signer,
            nonce: d.nonce,
            tx_hash: d.tx_hashes.last().copied(),
            tx_hashes: d.tx_hashes,
            receipt: d.receipt,
            reason: d.reason,
            retryable: d.retryable,
            next_attempt_at: d.next_attempt_at,
            ack: if key.chain == SINK_CHAIN { self.sink_ack(key)? } else { None },
            created_at: d.created_at,
            updated_at: d.updated_at,
        })
    }

    /// A sink's acknowledgement of `key`; `None` when it has none (yet).
    fn sink_ack(&self, key: DeliveryKey) -> Result<Option<String>, StoreError> {
        let table = self.txn.open_table(tables::SINK_ACKS).map_err(|e| fail(self.store, e))?;
        let Some(value) = table.get(key.to_bytes()).map_err(|e| fail(self.store, e))? else {
            return Ok(None);
        };
        let ack: records::SinkAck = records::decode(value.value()).map_err(|e| fail(self.store, e))?;
        Ok(Some(ack.ack))
    }

    fn deliveries_table(&self) -> Result<Deliveries, StoreError> {
        self.txn.open_table(tables::DELIVERIES).map_err(|e| fail(self.store, e))
    }

    fn decode_delivery(&self, bytes: &[u8]) -> Result<Delivery, StoreError> {
        records::decode(bytes).map_err(|e| fail(self.store, e))
    }

    fn deliveries_unguarded(
        &self,
        filter: &DeliveryFilter,
        emit: &mut dyn FnMut(DeliveryRow) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        let Some(target) = self.target_filter(filter) else { return Ok(0) };
        let table = self.deliveries_table()?;
        let mut emitted = 0;
        if let Some(state) = filter.state {
            let index = self.txn.open_table(tables::DELIVERY_STATUS).map_err(|e| fail(self.store, e))?;
            let (lo, hi) = status_bounds(state, filter.chain);
            for entry in index.range(lo..=hi).map_err(|e| fail(self.store, e))? {
                let (key, _) = entry.map_err(|e| fail(self.store, e))?;
                let status = StatusKey::from_bytes(key.value());
                if target.is_some_and(|t| t != status.target) {
                    continue;
                }
                let key = DeliveryKey { target: status.target, chain: status.chain, item: status.item };
                let Some(value) = table.get(key.to_bytes()).map_err(|e| fail(self.store, e))? else {
                    return Err(fail(
                        self.store,
                        format!("the status index names a delivery the store lacks: {}", self.id(&key)),
                    ));
                };
                let delivery = self.decode_delivery(value.value())?;
                if delivery.state != state {
                    return Err(fail(
                        self.store,
                        format!(
                            "the status index has {} as {}, its record says {}",
                            self.id(&key),
                            state.as_str(),
                            delivery.state.as_str()
                        ),
                    ));
                }
                emitted += 1;
                if emit(self.row(key, delivery)?).is_break() {
                    break;
                }
            }
            return Ok(emitted);
        }
        // Key order is (target, chain, item): one range per target when a chain is asked for,
        // so other chains' deliveries are never read.
        let ranges: Vec<([u8; 33], [u8; 33])> = match (target, filter.chain) {
            (Some(t), chain) => vec![delivery_bounds(t, chain)],
            (None, None) => vec![([0; 33], [0xff; 33])],
            (None, Some(chain)) => self.targets.keys().map(|&t| delivery_bounds(t, Some(chain))).collect(),
        };
        for (lo, hi) in ranges {
            for entry in table.range(lo..=hi).map_err(|e| fail(self.store, e))? {
                let (key, value) = entry.map_err(|e| fail(self.store, e))?;
                let key = DeliveryKey::from_bytes(key.value());
                let delivery = self.decode_delivery(value.value())?;
                emitted += 1;
                if emit(self.row(key, delivery)?).is_break() {
                    return Ok(emitted);
                }
            }
        }
        Ok(emitted)
    }

    fn counts_unguarded(&self, filter: &DeliveryFilter) -> Result<StateCounts, StoreError> {
        let mut counts = StateCounts::default();
        let Some(target) = self.target_filter(filter) else { return Ok(counts) };
        let index = self.txn.open_table(tables::DELIVERY_STATUS).map_err(|e| fail(self.store, e))?;
        let states = match filter.state {
            Some(state) => vec![state],
            None => DeliveryState::ALL.to_vec(),
        };
        for state in states {
            let (lo, hi) = status_bounds(state, filter.chain);
            for entry in index.range(lo..=hi).map_err(|e| fail(self.store, e))? {
                let (key, _) = entry.map_err(|e| fail(self.store, e))?;
                if target.is_none_or(|t| t == StatusKey::from_bytes(key.value()).target) {
                    counts.add(state);
                }
            }
        }
        Ok(counts)
    }

    /// The first delivery key in `lo..=hi`, if any: one B-tree descent.
    fn first_key(
        &self,
        table: &Deliveries,
        lo: [u8; 33],
        hi: [u8; 33],
    ) -> Result<Option<DeliveryKey>, StoreError> {
        let mut range = table.range(lo..=hi).map_err(|e| fail(self.store, e))?;
        match range.next() {
            Some(entry) => {
                Ok(Some(DeliveryKey::from_bytes(entry.map_err(|e| fail(self.store, e))?.0.value())))
            }
            None => Ok(None),
        }
    }

    /// The destination chains `target` has deliveries on, found by skipping from one chain's
    /// first key to the next chain's instead of reading every delivery.
    fn chains_of(&self, table: &Deliveries, target: u32, only: Option<u64>) -> Result<Vec<u64>, StoreError> {
        if let Some(chain) = only {
            let (lo, hi) = delivery_bounds(target, Some(chain));
            return Ok(self.first_key(table, lo, hi)?.map(|_| chain).into_iter().collect());
        }
        let mut chains = Vec::new();
        let mut from = 0u64;
        loop {
            let lo = delivery_bounds(target, Some(from)).0;
            let hi = delivery_bounds(target, None).1;
            let Some(key) = self.first_key(table, lo, hi)? else { break };
            chains.push(key.chain);
            match key.chain.checked_add(1) {
                Some(next) => from = next,
                None => break,
            }
        }
        Ok(chains)
    }

    fn matrix_unguarded(
        &self,
        filter: &DeliveryFilter,
        emit: &mut dyn FnMut(MatrixRow) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        let Some(target) = self.target_filter(filter) else { return Ok(0) };
        let table = self.deliveries_table()?;
        // The targets present in the table and their chains, found by skipping as in `chains_of`.
        let mut plan: Vec<(u32, Vec<u64>)> = Vec::new();
        let mut from = target.unwrap_or(0);
        loop {
            let lo = delivery_bounds(from, None).0;
            let hi = delivery_bounds(target.unwrap_or(u32::MAX), None).1;
            let Some(first) = self.first_key(&table, lo, hi)? else { break };
            let chains = self.chains_of(&table, first.target, filter.chain)?;
            if !chains.is_empty() {
                plan.push((first.target, chains));
            }
            match first.target.checked_add(1) {
                Some(next) if target.is_none() => from = next,
                _ => break,
            }
        }
        let mut columns: Vec<u64> = plan.iter().flat_map(|(_, chains)| chains.iter().copied()).collect();
        columns.sort_unstable();
        columns.dedup();
        let names: Vec<String> = columns.iter().map(|&c| self.chain_name(c)).collect();

        let mut emitted = 0;
        for (target, chains) in plan {
            let target_name = self.target_name(target);
            // One lane per chain, each a range in item order; a row takes the smallest item
            // at the lanes' heads.
            let mut lanes = Vec::with_capacity(chains.len());
            for chain in chains {
                let (lo, hi) = delivery_bounds(target, Some(chain));
                let column = columns.binary_search(&chain).unwrap_or_default();
                let mut range = table.range(lo..=hi).map_err(|e| fail(self.store, e))?;
                let head = self.pull(&mut range)?;
                lanes.push(Lane { column, range, head });
            }
            while let Some(item) = lanes.iter().filter_map(|l| l.head.map(|(item, _)| item)).min() {
                let mut states = vec![None; columns.len()];
                for lane in &mut lanes {
                    if let Some((at, state)) = lane.head
                        && at == item
                    {
                        states[lane.column] = Some(state);
                        lane.head = self.pull(&mut lane.range)?;
                    }
                }
                if filter.state.is_some_and(|want| !states.contains(&Some(want))) {
                    continue;
                }
                emitted += 1;
                let row = MatrixRow {
                    item,
                    target: target_name.clone(),
                    chains: names.iter().cloned().zip(states).collect(),
                };
                if emit(row).is_break() {
                    return Ok(emitted);
                }
            }
        }
        Ok(emitted)
    }

    /// The next (item, state) of a lane.
    fn pull(
        &self,
        range: &mut redb::Range<'_, [u8; 33], &'static [u8]>,
    ) -> Result<Option<(ItemKey, DeliveryState)>, StoreError> {
        let Some(entry) = range.next() else { return Ok(None) };
        let (key, value) = entry.map_err(|e| fail(self.store, e))?;
        let key = DeliveryKey::from_bytes(key.value());
        Ok(Some((key.item, self.decode_delivery(value.value())?.state)))
    }
}

/// One destination chain's deliveries of a target, read in item order for the matrix.
struct Lane<'t> {
    column: usize,
    range: redb::Range<'t, [u8; 33], &'static [u8]>,
    head: Option<(ItemKey, DeliveryState)>,
}

/// The key range of `target`'s deliveries: on one chain, or on all of them.
fn delivery_bounds(target: u32, chain: Option<u64>) -> ([u8; 33], [u8; 33]) {
    let (mut lo, mut hi) = ([0u8; 33], [0xffu8; 33]);
    lo[..4].copy_from_slice(&target.to_be_bytes());
    hi[..4].copy_from_slice(&target.to_be_bytes());
    if let Some(chain) = chain {
        lo[4..12].copy_from_slice(&chain.to_be_bytes());
        hi[4..12].copy_from_slice(&chain.to_be_bytes());
    }
    (lo, hi)
}

/// The status-index range of `state`: on one chain, or on all of them.
fn status_bounds(state: DeliveryState, chain: Option<u64>) -> ([u8; 34], [u8; 34]) {
    let (mut lo, mut hi) = ([0u8; 34], [0xffu8; 34]);
    lo[0] = state as u8;
    hi[0] = state as u8;
    if let Some(chain) = chain {
        lo[1..9].copy_from_slice(&chain.to_be_bytes());
        hi[1..9].copy_from_slice(&chain.to_be_bytes());
    }
    (lo, hi)
}

fn fail(store: &ReadStore, e: impl super::Failure) -> StoreError {
    failure(store.path(), e)
}

/// Matrix cells as a JSON object in column order.
fn cells<S: Serializer>(cells: &[(String, Option<DeliveryState>)], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(cells.len()))?;
    for (chain, state) in cells {
        map.serialize_entry(chain, state)?;
    }
    map.end()
}
