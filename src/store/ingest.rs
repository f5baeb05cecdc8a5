//! What EVM ingest writes and reads: one block range applied in one write transaction (events, new
//! children, block hashes, cursor), a rewind to a common ancestor after a reorg, and the reads a
//! source needs to start (cursor, children, hash window).
//!
//! Applying a range checks that it starts exactly at the source's cursor, so a range can be
//! neither skipped nor applied twice; re-applying the same keys would be a no-op anyway.

use std::ops::RangeInclusive;

use alloy::primitives::{Address, B256};
use redb::{ReadTransaction, ReadableTable};

use super::keys::{BlockKey, ContractKey, CursorKey, DeliveryKey, EventKey, FixedKey, ReorgKey};
use super::records::{self, BlockHash, Contract, Cursor, Event, Reorg};
use super::{StoreError, WriteTx, now, tables};

/// One block range of one source, ready to commit.
#[derive(Debug, Clone, Default)]
pub struct RangeWrite {
    pub source: u32,
    pub chain: u64,
    pub from: u64,
    pub to: u64,
    pub events: Vec<(EventKey, Event)>,
    /// Children discovered in this range.
    pub contracts: Vec<(ContractKey, Contract)>,
    /// Block number → hash and parent, for the reorg window.
    pub hashes: Vec<(u64, BlockHash)>,
    /// Hash of block `to`.
    pub last_hash: B256,
    /// Hashes of this source below this block are dropped: the window only keeps recent blocks.
    pub keep_hashes_from: u64,
    /// Deliveries the routes make of this range's events, created pending unless they exist.
    pub deliveries: Vec<DeliveryKey>,
}

/// What a rewind removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Removed {
    pub events: u64,
    pub contracts: u64,
}

impl WriteTx<'_> {
    fn read_cursor(&self, source: u32) -> Result<Option<Cursor>, StoreError> {
        let table = self.raw().open_table(tables::CURSORS).map_err(|e| self.err(e))?;
        let value = table.get(CursorKey { source }.to_bytes()).map_err(|e| self.err(e))?;
        match value {
            Some(v) => Ok(Some(records::decode(v.value()).map_err(|e| self.err(e))?)),
            None => Ok(None),
        }
    }

    /// Commits one range: everything in it, and the cursor moved to `to + 1`. The range must
    /// start at the cursor (or the cursor must not exist yet).
    pub fn apply_range(&mut self, w: &RangeWrite) -> Result<(), StoreError> {
        let cursor = self.read_cursor(w.source)?;
        if let Some(c) = &cursor
            && c.next != w.from
        {
            return Err(self.err(format!(
                "source #{} is at block {}, but a range starting at {} was to be applied",
                w.source, c.next, w.from
            )));
        }
        {
            let mut events = self.raw().open_table(tables::EVENTS).map_err(|e| self.err(e))?;
            let mut value = Vec::new();
            for (key, event) in &w.events {
                records::encode_into(event, &mut value);
                events.insert(key.to_bytes(), value.as_slice()).map_err(|e| self.err(e))?;
            }
        }
        for (key, contract) in &w.contracts {
            self.put_contract(*key, contract)?;
        }
        let created = now();
        for key in &w.deliveries {
            self.add_delivery(*key, created)?;
        }
        {
            let mut hashes = self.raw().open_table(tables::BLOCK_HASHES).map_err(|e| self.err(e))?;
            for (number, hash) in &w.hashes {
                let key = BlockKey { source: w.source, number: *number }.to_bytes();
                hashes.insert(key, records::encode(hash).as_slice()).map_err(|e| self.err(e))?;
            }
            let lo = BlockKey { source: w.source, number: 0 }.to_bytes();
            let hi = BlockKey { source: w.source, number: w.keep_hashes_from }.to_bytes();
            hashes.retain_in(lo..hi, |_, _| false).map_err(|e| self.err(e))?;
        }
        let first = cursor.map_or(w.from, |c| c.first);
        self.put_cursor(
            CursorKey { source: w.source },
            &Cursor { first, next: w.to + 1, last_hash: Some(w.last_hash), updated_at: now(), stopped: None },
        )
    }

    /// Adds a configured contract to the registry unless the address is there already.
    pub fn register_contract(&mut self, key: ContractKey, contract: &Contract) -> Result<(), StoreError> {
        let exists = {
            let table = self.raw().open_table(tables::CONTRACTS).map_err(|e| self.err(e))?;
            table.get(key.to_bytes()).map_err(|e| self.err(e))?.is_some()
        };
        if exists { Ok(()) } else { self.put_contract(key, contract) }
    }

    /// Undoes everything the source ingested above `ancestor`: its events, the children they
    /// announced, its block hashes; moves the cursor to `ancestor + 1` and records the reorg.
    pub fn rewind(
        &mut self,
        source: u32,
        chain: u64,
        ancestor: u64,
        ancestor_hash: Option<B256>,
        mismatch: (B256, B256),
    ) -> Result<Reorg, StoreError> {
        let cursor = self
            .read_cursor(source)?
            .ok_or_else(|| self.err(format!("source #{source} has no cursor to rewind")))?;
        let mut removed = Removed::default();
        let mut orphaned = std::collections::HashSet::new();
        {
            let mut events = self.raw().open_table(tables::EVENTS).map_err(|e| self.err(e))?;
            let lo = EventKey { chain, block: ancestor + 1, log_index: 0 }.to_bytes();
            let hi = EventKey { chain, block: u64::MAX, log_index: u32::MAX }.to_bytes();
            let mut bad = None;
            events
                .retain_in(lo..=hi, |key, value| match records::decode::<Event>(value) {
                    Ok(event) if event.source == source => {
                        removed.events += 1;
                        orphaned.insert(EventKey::from_bytes(key));
                        false
                    }
                    Ok(_) => true,
                    Err(e) => {
                        bad = Some(e);
                        true
                    }
                })
                .map_err(|e| self.err(e))?;
            if let Some(e) = bad {
                return Err(self.err(e));
            }
        }
        {
            let mut contracts = self.raw().open_table(tables::CONTRACTS).map_err(|e| self.err(e))?;
            let lo = ContractKey { chain, address: Address::ZERO }.to_bytes();
            let hi = ContractKey { chain, address: Address::repeat_byte(0xff) }.to_bytes();
            contracts
                .retain_in(lo..=hi, |_, value| match records::decode::<Contract>(value) {
                    Ok(c) if c.source == source && c.created_at.is_some_and(|at| at.block > ancestor) => {
                        removed.contracts += 1;
                        false
                    }
                    _ => true,
                })
                .map_err(|e| self.err(e))?;
        }
        let (dropped, kept) = self.remove_orphaned_deliveries(&orphaned)?;
        if kept > 0 {
            tracing::warn!(
                source,
                chain,
                dropped,
                kept,
                "reorg: deliveries of orphaned events were already sent; their transactions stand"
            );
        }
        {
            let mut hashes = self.raw().open_table(tables::BLOCK_HASHES).map_err(|e| self.err(e))?;
            let lo = BlockKey { source, number: ancestor + 1 }.to_bytes();
            let hi = BlockKey { source, number: u64::MAX }.to_bytes();
            hashes.retain_in(lo..=hi, |_, _| false).map_err(|e| self.err(e))?;
        }
        let reorg = Reorg {
            source,
            from_block: ancestor + 1,
            depth: cursor.next.saturating_sub(ancestor + 1),
            removed_events: removed.events,
            removed_contracts: removed.contracts,
            old_hash: mismatch.0,
            new_hash: mismatch.1,
            detected_at: now(),
        };
        let seq = {
            let table = self.raw().open_table(tables::REORGS).map_err(|e| self.err(e))?;
            let lo = ReorgKey { chain, seq: 0 }.to_bytes();
            let hi = ReorgKey { chain, seq: u64::MAX }.to_bytes();
            let last = table.range(lo..=hi).map_err(|e| self.err(e))?.next_back();
            match last {
                Some(entry) => ReorgKey::from_bytes(entry.map_err(|e| self.err(e))?.0.value()).seq + 1,
                None => 0,
            }
        };
        self.put_reorg(ReorgKey { chain, seq }, &reorg)?;
        self.put_cursor(
            CursorKey { source },
            &Cursor {
                first: cursor.first.min(ancestor + 1),
                next: ancestor + 1,
                last_hash: ancestor_hash,
                updated_at: now(),
                stopped: None,
            },
        )?;
        Ok(reorg)
    }
}

fn store_failure(path: &std::path::Path, e: impl super::Failure) -> StoreError {
    super::failure(path, e)
}

/// Reads for a source starting up, on any read transaction (the writer's own included).
pub struct IngestReader<'a> {
    pub path: &'a std::path::Path,
    pub txn: &'a ReadTransaction,
}

impl IngestReader<'_> {
    pub fn source_id(&self, name: &str) -> Result<Option<u32>, StoreError> {
        let table = self.txn.open_table(tables::SOURCE_IDS).map_err(|e| store_failure(self.path, e))?;
        Ok(table.get(name).map_err(|e| store_failure(self.path, e))?.map(|v| v.value()))
    }

    pub fn cursor(&self, source: u32) -> Result<Option<Cursor>, StoreError> {
        let table = self.txn.open_table(tables::CURSORS).map_err(|e| store_failure(self.path, e))?;
        match table.get(CursorKey { source }.to_bytes()).map_err(|e| store_failure(self.path, e))? {
            Some(v) => Ok(Some(records::decode(v.value()).map_err(|e| store_failure(self.path, e))?)),
            None => Ok(None),
        }
    }

    /// Every contract of `source` on `chain` that a factory created.
    pub fn children(&self, chain: u64, source: u32) -> Result<Vec<(Address, Contract)>, StoreError> {
        let table = self.txn.open_table(tables::CONTRACTS).map_err(|e| store_failure(self.path, e))?;
        let lo = ContractKey { chain, address: Address::ZERO }.to_bytes();
        let hi = ContractKey { chain, address: Address::repeat_byte(0xff) }.to_bytes();
        let mut out = Vec::new();
        for entry in table.range(lo..=hi).map_err(|e| store_failure(self.path, e))? {
            let (key, value) = entry.map_err(|e| store_failure(self.path, e))?;
            let contract: Contract =
                records::decode(value.value()).map_err(|e| store_failure(self.path, e))?;
            if contract.source == source && contract.factory.is_some() {
                out.push((ContractKey::from_bytes(key.value()).address, contract));
            }
        }
        Ok(out)
    }

    /// The stored hashes of `source` in `blocks`, newest first.
    pub fn hashes(
        &self,
        source: u32,
        blocks: RangeInclusive<u64>,
    ) -> Result<Vec<(u64, BlockHash)>, StoreError> {
        let table = self.txn.open_table(tables::BLOCK_HASHES).map_err(|e| store_failure(self.path, e))?;
        let lo = BlockKey { source, number: *blocks.start() }.to_bytes();
        let hi = BlockKey { source, number: *blocks.end() }.to_bytes();
        let mut out = Vec::new();
        for entry in table.range(lo..=hi).map_err(|e| store_failure(self.path, e))?.rev() {
            let (key, value) = entry.map_err(|e| store_failure(self.path, e))?;
            let hash: BlockHash = records::decode(value.value()).map_err(|e| store_failure(self.path, e))?;
            out.push((BlockKey::from_bytes(key.value()).number, hash));
        }
        Ok(out)
    }
}
