//! Read-only views of SEDA batches and of what each `seda-prover` destination last said, for
//! `inspect-store batches|provers` and `export batches`.
//!
//! Batches stream through a callback one at a time, so an export runs in constant memory
//! whatever the store holds. Batch numbers are per source; with several sources the rows are
//! merged by number (one range per source, holding one batch per source at a time), so "the
//! newest" means the highest numbers whichever source they came from.
//!
//! Only stored fields are read: nothing here recomputes an id, a tree or a signer.

use super::serde_text::{as_text, checksummed};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use alloy::primitives::{Address, B256, Bytes};
use redb::{AccessGuard, ReadTransaction, ReadableTable, StorageError};
use serde::Serialize;

use super::keys::{BatchKey, FixedKey, ItemKey, ProverKey};
use super::records::{self, Batch, ProverState};
use super::{ReadStore, StoreError, failure, guarded, tables};

pub use super::query_deliver::Order;

/// Which batches to read.
#[derive(Debug, Clone, Default)]
pub struct BatchFilter {
    /// A source name; a name the store has never seen matches nothing.
    pub source: Option<String>,
    /// Batch numbers, inclusive.
    pub from: Option<u64>,
    pub to: Option<u64>,
}

/// One stored batch, whole: the header, the validator entries and signatures a proof is built
/// from, and the result ids.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BatchRow {
    pub source: String,
    pub source_id: u32,
    /// What deliveries of this batch carry: `batch:<source id>:<number>`.
    #[serde(serialize_with = "as_text")]
    pub item: ItemKey,
    pub number: u64,
    pub block_height: u64,
    pub batch_id: B256,
    pub validators_root: B256,
    pub results_root: B256,
    pub proving_metadata: Bytes,
    /// Kept only for its validators (who signed the first batch delivered); never delivered.
    pub anchor: bool,
    pub fetched_at: u64,
    /// Who signs the next batch.
    pub validators: Vec<ValidatorRow>,
    /// This batch's id signed by the previous batch's validators.
    pub signatures: Vec<SignatureRow>,
    pub result_ids: Vec<B256>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ValidatorRow {
    pub operator: String,
    #[serde(serialize_with = "checksummed")]
    pub eth_address: Address,
    /// Of 1e8.
    pub power: u32,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SignatureRow {
    pub operator: String,
    /// `r ‖ s ‖ v`, 65 bytes.
    pub signature: Bytes,
}

/// Which Prover states to read.
#[derive(Debug, Clone, Default)]
pub struct ProverFilter {
    /// A target name; a name the store has never seen matches nothing.
    pub target: Option<String>,
    pub chain: Option<u64>,
}

/// What a `seda-prover` destination last said, and how far it is behind the store.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ProverRow {
    pub target: String,
    /// The config's name for the chain, else its id.
    pub chain: String,
    pub chain_id: u64,
    #[serde(serialize_with = "checksummed")]
    pub prover: Address,
    /// `getLastBatchHeight()`: the highest batch number on the destination.
    pub last_batch: u64,
    pub validators_root: B256,
    pub paused: bool,
    /// In batches: the Prover refuses a batch this far below its last one.
    pub max_batch_age: u64,
    /// When the worker wrote this state (it writes only when something changed).
    pub read_at: u64,
    /// The seda sources `behind` is measured against: the ones routed to the target, or every
    /// source with batches when the routing is unknown.
    pub sources: Vec<String>,
    /// The highest batch number those sources hold; `None` when they hold none.
    pub highest_stored_batch: Option<u64>,
    /// `highest_stored_batch - last_batch`, 0 when the destination is level or ahead; `None`
    /// when there is no stored batch to compare with.
    pub behind: Option<u64>,
}

/// Target name → the seda source names routed to it, as the config says.
pub type Routing = BTreeMap<String, Vec<String>>;

/// Reads batch and Prover rows out of one read transaction.
pub struct SedaQuery<'a> {
    store: &'a ReadStore,
    txn: ReadTransaction,
    sources: BTreeMap<u32, String>,
    targets: BTreeMap<u32, String>,
    chain_names: BTreeMap<u64, String>,
}

type Entry<'t> = Result<(AccessGuard<'t, [u8; 12]>, AccessGuard<'t, &'static [u8]>), StorageError>;

/// One source's batches, in the order asked, with the next one at hand.
struct Lane<'t> {
    rest: Box<dyn Iterator<Item = Entry<'t>> + 't>,
    head: Option<(BatchKey, AccessGuard<'t, &'static [u8]>)>,
}

impl<'a> SedaQuery<'a> {
    /// `chain_names` maps chain ids to the names rows should show (the config's).
    pub fn new(store: &'a ReadStore, chain_names: BTreeMap<u64, String>) -> Result<Self, StoreError> {
        let txn = store.read()?;
        let (sources, targets) = guarded(store.path(), "reading source and target names", || {
            let mut ids = [BTreeMap::new(), BTreeMap::new()];
            for (def, names) in [tables::SOURCE_IDS, tables::TARGET_IDS].into_iter().zip(&mut ids) {
                let table = txn.open_table(def).map_err(|e| fail(store, e))?;
                for entry in table.iter().map_err(|e| fail(store, e))? {
                    let (name, id) = entry.map_err(|e| fail(store, e))?;
                    names.insert(id.value(), name.value().to_string());
                }
            }
            let [sources, targets] = ids;
            Ok::<_, StoreError>((sources, targets))
        })??;
        Ok(Self { store, txn, sources, targets, chain_names })
    }

    /// Every source name the store knows (evm and seda alike), in id order.
    pub fn source_names(&self) -> impl Iterator<Item = &str> {
        self.sources.values().map(String::as_str)
    }

    /// Names of the sources that hold at least one batch.
    pub fn batch_sources(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        for (&id, name) in &self.sources {
            if self.highest_batch(id)?.is_some() {
                names.push(name.clone());
            }
        }
        Ok(names)
    }

    /// The highest batch number stored for source `id`: one B-tree descent.
    pub fn highest_batch(&self, id: u32) -> Result<Option<u64>, StoreError> {
        guarded(self.store.path(), "reading the highest batch", || {
            let table = self.txn.open_table(tables::BATCHES).map_err(|e| fail(self.store, e))?;
            let (lo, hi) = source_bounds(id, None, None);
            let last = table.range(lo..=hi).map_err(|e| fail(self.store, e))?.next_back();
            last.map(|entry| entry.map(|(k, _)| BatchKey::from_bytes(k.value()).height))
                .transpose()
                .map_err(|e| fail(self.store, e))
        })?
    }

    /// Streams matching batches to `emit` until it breaks, merged across sources by number
    /// (ties in source-id order); returns how many it emitted.
    pub fn batches(
        &self,
        filter: &BatchFilter,
        order: Order,
        emit: &mut dyn FnMut(BatchRow) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        guarded(self.store.path(), "reading batches", || self.batches_unguarded(filter, order, emit))?
    }

    /// How many batches match, counted on keys without decoding a record.
    pub fn count_batches(&self, filter: &BatchFilter) -> Result<u64, StoreError> {
        guarded(self.store.path(), "counting batches", || {
            let table = self.txn.open_table(tables::BATCHES).map_err(|e| fail(self.store, e))?;
            let mut n = 0;
            for id in self.source_filter(filter) {
                let (lo, hi) = source_bounds(id, filter.from, filter.to);
                for entry in table.range(lo..=hi).map_err(|e| fail(self.store, e))? {
                    entry.map_err(|e| fail(self.store, e))?;
                    n += 1;
                }
            }
            Ok(n)
        })?
    }

    /// Every Prover state that matches, in (target, chain) order, with how far each destination
    /// is behind the batches the store holds. `routing` is the config's (target → routed seda
    /// sources); `None` when there is no config.
    pub fn provers(
        &self,
        filter: &ProverFilter,
        routing: Option<&Routing>,
    ) -> Result<Vec<ProverRow>, StoreError> {
        guarded(self.store.path(), "reading prover states", || self.provers_unguarded(filter, routing))?
    }

    fn provers_unguarded(
        &self,
        filter: &ProverFilter,
        routing: Option<&Routing>,
    ) -> Result<Vec<ProverRow>, StoreError> {
        let target = match &filter.target {
            None => None,
            Some(name) => match self.targets.iter().find(|(_, n)| *n == name) {
                Some((&id, _)) => Some(id),
                None => return Ok(Vec::new()),
            },
        };
        // Highest batch per source, read once for all rows.
        let mut highest: BTreeMap<&str, u64> = BTreeMap::new();
        for (&id, name) in &self.sources {
            if let Some(h) = self.highest_batch(id)? {
                highest.insert(name.as_str(), h);
            }
        }
        let table = self.txn.open_table(tables::PROVERS).map_err(|e| fail(self.store, e))?;
        let mut rows = Vec::new();
        for entry in table.iter().map_err(|e| fail(self.store, e))? {
            let (key, value) = entry.map_err(|e| fail(self.store, e))?;
            let key = ProverKey::from_bytes(key.value());
            if target.is_some_and(|t| t != key.target) || filter.chain.is_some_and(|c| c != key.chain) {
                continue;
            }
            let state: ProverState = records::decode(value.value()).map_err(|e| fail(self.store, e))?;
            let target = self.targets.get(&key.target).cloned().unwrap_or_else(|| format!("#{}", key.target));
            // Without a config ferry cannot tell which seda source feeds which target: every
            // source with batches counts, which is exact for the usual single seda source and an
            // upper bound otherwise. A target the config routes no seda source to is measured
            // the same way rather than shown as unknown.
            let routed: BTreeSet<&str> = routing
                .and_then(|r| r.get(&target))
                .map(|names| names.iter().map(String::as_str).collect())
                .unwrap_or_default();
            let sources: Vec<String> = if routed.is_empty() {
                highest.keys().map(|s| s.to_string()).collect()
            } else {
                routed.iter().map(|s| s.to_string()).collect()
            };
            let top = sources.iter().filter_map(|s| highest.get(s.as_str()).copied()).max();
            rows.push(ProverRow {
                target,
                chain: self.chain_names.get(&key.chain).cloned().unwrap_or_else(|| key.chain.to_string()),
                chain_id: key.chain,
                prover: state.prover,
                last_batch: state.last_batch,
                validators_root: state.validators_root,
                paused: state.paused,
                max_batch_age: state.max_batch_age,
                read_at: state.read_at,
                sources,
                highest_stored_batch: top,
                behind: top.map(|top| top.saturating_sub(state.last_batch)),
            });
        }
        Ok(rows)
    }

    /// The source ids a filter reads: one, none (an unknown name or an empty range), or all.
    fn source_filter(&self, filter: &BatchFilter) -> Vec<u32> {
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from > to
        {
            return Vec::new();
        }
        match &filter.source {
            Some(name) => self.sources.iter().filter(|(_, n)| *n == name).map(|(&id, _)| id).collect(),
            None => self.sources.keys().copied().collect(),
        }
    }

    fn batches_unguarded(
        &self,
        filter: &BatchFilter,
        order: Order,
        emit: &mut dyn FnMut(BatchRow) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        let table = self.txn.open_table(tables::BATCHES).map_err(|e| fail(self.store, e))?;
        let mut lanes = Vec::new();
        for id in self.source_filter(filter) {
            let (lo, hi) = source_bounds(id, filter.from, filter.to);
            let range = table.range(lo..=hi).map_err(|e| fail(self.store, e))?;
            let rest: Box<dyn Iterator<Item = Entry<'_>>> = match order {
                Order::OldestFirst => Box::new(range),
                Order::NewestFirst => Box::new(range.rev()),
            };
            let mut lane = Lane { rest, head: None };
            self.pull(&mut lane)?;
            lanes.push(lane);
        }
        let mut emitted = 0;
        loop {
            // The lane whose head comes first in the order asked; sources in id order on a tie.
            let heads = lanes.iter().enumerate().filter_map(|(i, l)| l.head.as_ref().map(|(k, _)| (i, *k)));
            let next = match order {
                Order::OldestFirst => heads.min_by_key(|(_, k)| (k.height, k.source)),
                Order::NewestFirst => heads.min_by_key(|(_, k)| (std::cmp::Reverse(k.height), k.source)),
            };
            let Some((lane, key)) = next else { break };
            let Some((_, value)) = lanes[lane].head.take() else { break };
            let batch: Batch = records::decode(value.value()).map_err(|e| fail(self.store, e))?;
            drop(value);
            self.pull(&mut lanes[lane])?;
            emitted += 1;
            if emit(self.row(key, batch)).is_break() {
                break;
            }
        }
        Ok(emitted)
    }

    fn pull(&self, lane: &mut Lane<'_>) -> Result<(), StoreError> {
        lane.head = match lane.rest.next() {
            Some(entry) => {
                let (key, value) = entry.map_err(|e| fail(self.store, e))?;
                Some((BatchKey::from_bytes(key.value()), value))
            }
            None => None,
        };
        Ok(())
    }

    fn row(&self, key: BatchKey, b: Batch) -> BatchRow {
        let source = self.sources.get(&key.source).cloned().unwrap_or_else(|| format!("#{}", key.source));
        batch_row(source, key, b)
    }
}

/// One stored batch as views, exports and sink messages show it.
pub fn batch_row(source: String, key: BatchKey, b: Batch) -> BatchRow {
    let s = b.batch;
    BatchRow {
        source,
        source_id: key.source,
        item: ItemKey::Batch(key),
        number: s.header.number,
        block_height: s.header.block_height,
        batch_id: s.batch_id,
        validators_root: s.header.validators_root,
        results_root: s.header.results_root,
        proving_metadata: s.header.proving_metadata,
        anchor: b.anchor,
        fetched_at: b.fetched_at,
        validators: s
            .validators
            .into_iter()
            .map(|v| ValidatorRow { operator: v.operator, eth_address: v.eth_address, power: v.power })
            .collect(),
        signatures: s
            .signatures
            .into_iter()
            .map(|sig| SignatureRow { operator: sig.operator, signature: Bytes::copy_from_slice(&sig.bytes) })
            .collect(),
        result_ids: s.result_ids,
    }
}

/// The key range of one source's batches numbered `from..=to`.
fn source_bounds(source: u32, from: Option<u64>, to: Option<u64>) -> ([u8; 12], [u8; 12]) {
    (
        BatchKey { source, height: from.unwrap_or(0) }.to_bytes(),
        BatchKey { source, height: to.unwrap_or(u64::MAX) }.to_bytes(),
    )
}

fn fail(store: &ReadStore, e: impl super::Failure) -> StoreError {
    failure(store.path(), e)
}
