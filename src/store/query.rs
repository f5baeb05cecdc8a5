//! Filtered reads for people and scripts: events, contracts, cursors and reorgs as plain rows,
//! streamed one at a time so that `export` runs in constant memory, whatever the store holds.
//! Event filters on a chain use the key order: a block range is a range scan, not a full scan.

use super::serde_text::{checksummed, checksummed_opt};
use std::collections::BTreeMap;
use std::ops::ControlFlow;

use alloy::primitives::{Address, B256};
use redb::{ReadTransaction, ReadableTable};
use serde::Serialize;

use super::keys::{ContractKey, CursorKey, EventKey, FixedKey, ReorgKey};
use super::records::{self, Contract, Cursor, Event, Reorg};
use super::{ReadStore, StoreError, tables};

/// Which events to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub chain: Option<u64>,
    pub address: Option<Address>,
    /// An event name, or `undecoded` for logs no declaration matched or decoded.
    pub event: Option<String>,
    pub from_block: Option<u64>,
    pub to_block: Option<u64>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventRow {
    /// The configured chain's name (its id as text when no config names it).
    pub chain: String,
    pub chain_id: u64,
    pub block: u64,
    pub log_index: u32,
    pub source: String,
    #[serde(serialize_with = "checksummed")]
    pub address: Address,
    /// The declared event's name; `None` when no declaration matched.
    pub event: Option<String>,
    pub fields: Option<serde_json::Value>,
    pub decode_error: Option<String>,
    pub tx_hash: B256,
    pub block_hash: B256,
    pub topics: Vec<B256>,
    pub data: alloy::primitives::Bytes,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ContractRow {
    /// The configured chain's name (its id as text when no config names it).
    pub chain: String,
    pub chain_id: u64,
    #[serde(serialize_with = "checksummed")]
    pub address: Address,
    pub source: String,
    /// The factory that created it; `None` for a configured contract.
    #[serde(serialize_with = "checksummed_opt")]
    pub factory: Option<Address>,
    pub created_block: Option<u64>,
    pub created_log_index: Option<u32>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CursorRow {
    pub source: String,
    pub first: u64,
    pub next: u64,
    pub last_block_hash: Option<B256>,
    pub updated_at: u64,
    /// Why the source stopped, when it did on something that needs an operator.
    pub stopped: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReorgRow {
    /// The configured chain's name (its id as text when no config names it).
    pub chain: String,
    pub chain_id: u64,
    pub seq: u64,
    pub source: String,
    pub from_block: u64,
    pub depth: u64,
    pub removed_events: u64,
    pub removed_contracts: u64,
    /// The block hash ferry had stored at the fork point, and the one the chain gave instead.
    pub old_block_hash: B256,
    pub new_block_hash: B256,
    pub detected_at: u64,
}

/// Reads rows out of one read transaction.
pub struct Query<'a> {
    store: &'a ReadStore,
    txn: ReadTransaction,
    names: BTreeMap<u32, String>,
    chain_names: BTreeMap<u64, String>,
}

impl<'a> Query<'a> {
    /// `chain_names` maps chain ids to the names rows should show (the config's); ids without a
    /// name show as their number.
    pub fn new(store: &'a ReadStore, chain_names: BTreeMap<u64, String>) -> Result<Self, StoreError> {
        let txn = store.read()?;
        let mut names = BTreeMap::new();
        {
            let table = txn.open_table(tables::SOURCE_IDS).map_err(|e| store_failure(store, e))?;
            for entry in table.iter().map_err(|e| store_failure(store, e))? {
                let (name, id) = entry.map_err(|e| store_failure(store, e))?;
                names.insert(id.value(), name.value().to_string());
            }
        }
        Ok(Self { store, txn, names, chain_names })
    }

    fn chain_name(&self, chain: u64) -> String {
        self.chain_names.get(&chain).cloned().unwrap_or_else(|| chain.to_string())
    }

    fn name(&self, id: u32) -> String {
        self.names.get(&id).cloned().unwrap_or_else(|| format!("#{id}"))
    }

    /// Streams matching events in key order to `emit` until it breaks; returns how many it got.
    pub fn events(
        &self,
        filter: &EventFilter,
        emit: &mut dyn FnMut(EventRow) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        let table = self.txn.open_table(tables::EVENTS).map_err(|e| store_failure(self.store, e))?;
        let from = filter.from_block.unwrap_or(0);
        let to = filter.to_block.unwrap_or(u64::MAX);
        let range = match filter.chain {
            Some(chain) => {
                let lo = EventKey { chain, block: from, log_index: 0 }.to_bytes();
                let hi = EventKey { chain, block: to, log_index: u32::MAX }.to_bytes();
                table.range(lo..=hi)
            }
            None => table.range::<[u8; 20]>(..),
        }
        .map_err(|e| store_failure(self.store, e))?;
        let mut emitted = 0;
        for entry in range {
            let (key, value) = entry.map_err(|e| store_failure(self.store, e))?;
            let key = EventKey::from_bytes(key.value());
            if key.block < from || key.block > to {
                continue;
            }
            let event: Event = records::decode(value.value()).map_err(|e| store_failure(self.store, e))?;
            if filter.address.is_some_and(|a| a != event.address) {
                continue;
            }
            if let Some(want) = &filter.event {
                let undecoded = event.fields.is_none();
                let matches =
                    if want == "undecoded" { undecoded } else { event.name.as_deref() == Some(want) };
                if !matches {
                    continue;
                }
            }
            let source = self.name(event.source);
            if filter.source.as_ref().is_some_and(|s| *s != source) {
                continue;
            }
            let row = EventRow {
                chain: self.chain_name(key.chain),
                chain_id: key.chain,
                block: key.block,
                log_index: key.log_index,
                source,
                address: event.address,
                event: event.name,
                fields: event.fields.as_deref().and_then(|f| serde_json::from_str(f).ok()),
                decode_error: event.decode_error,
                tx_hash: event.tx_hash,
                block_hash: event.block_hash,
                topics: event.topics,
                data: event.data,
            };
            emitted += 1;
            if emit(row).is_break() {
                break;
            }
        }
        Ok(emitted)
    }

    pub fn contracts(
        &self,
        chain: Option<u64>,
        address: Option<Address>,
        emit: &mut dyn FnMut(ContractRow) -> ControlFlow<()>,
    ) -> Result<u64, StoreError> {
        let table = self.txn.open_table(tables::CONTRACTS).map_err(|e| store_failure(self.store, e))?;
        let mut emitted = 0;
        for entry in table.iter().map_err(|e| store_failure(self.store, e))? {
            let (key, value) = entry.map_err(|e| store_failure(self.store, e))?;
            let key = ContractKey::from_bytes(key.value());
            if chain.is_some_and(|c| c != key.chain) || address.is_some_and(|a| a != key.address) {
                continue;
            }
            let c: Contract = records::decode(value.value()).map_err(|e| store_failure(self.store, e))?;
            emitted += 1;
            let row = ContractRow {
                chain: self.chain_name(key.chain),
                chain_id: key.chain,
                address: key.address,
                source: self.name(c.source),
                factory: c.factory,
                created_block: c.created_at.map(|k| k.block),
                created_log_index: c.created_at.map(|k| k.log_index),
            };
            if emit(row).is_break() {
                break;
            }
        }
        Ok(emitted)
    }

    pub fn cursors(&self) -> Result<Vec<CursorRow>, StoreError> {
        let table = self.txn.open_table(tables::CURSORS).map_err(|e| store_failure(self.store, e))?;
        let mut rows = Vec::new();
        for entry in table.iter().map_err(|e| store_failure(self.store, e))? {
            let (key, value) = entry.map_err(|e| store_failure(self.store, e))?;
            let c: Cursor = records::decode(value.value()).map_err(|e| store_failure(self.store, e))?;
            rows.push(CursorRow {
                source: self.name(CursorKey::from_bytes(key.value()).source),
                first: c.first,
                next: c.next,
                last_block_hash: c.last_hash,
                updated_at: c.updated_at,
                stopped: c.stopped,
            });
        }
        Ok(rows)
    }

    pub fn reorgs(&self, chain: Option<u64>) -> Result<Vec<ReorgRow>, StoreError> {
        let table = self.txn.open_table(tables::REORGS).map_err(|e| store_failure(self.store, e))?;
        let mut rows = Vec::new();
        for entry in table.iter().map_err(|e| store_failure(self.store, e))? {
            let (key, value) = entry.map_err(|e| store_failure(self.store, e))?;
            let key = ReorgKey::from_bytes(key.value());
            if chain.is_some_and(|c| c != key.chain) {
                continue;
            }
            let r: Reorg = records::decode(value.value()).map_err(|e| store_failure(self.store, e))?;
            rows.push(ReorgRow {
                chain: self.chain_name(key.chain),
                chain_id: key.chain,
                seq: key.seq,
                source: self.name(r.source),
                from_block: r.from_block,
                depth: r.depth,
                removed_events: r.removed_events,
                removed_contracts: r.removed_contracts,
                old_block_hash: r.old_hash,
                new_block_hash: r.new_hash,
                detected_at: r.detected_at,
            });
        }
        Ok(rows)
    }
}

fn store_failure(store: &ReadStore, e: impl super::Failure) -> StoreError {
    super::failure(store.path(), e)
}
