//! Schema 1 → 2, for EVM ingest:
//! - `cursors`: records gain `first`, the start of the range a source holds. A v1 cursor was never
//!   written by an ingest, so its range is taken to start at its `next`.
//! - `block_hashes`: keyed by (source, block) instead of (chain, block), so that each source keeps
//!   its own reorg window. The v1 table is dropped: the window refills as ingest goes on, and a
//!   cursor's own `last_hash` still guards its next range.
//! - `events`: records gain `decode_error`.
//! - `reorgs`: records gain `removed_contracts` and the old and new hashes (zero for v1 records).

use alloy::primitives::{Address, B256, Bytes};
use redb::TableDefinition;
use serde::Deserialize;

use super::rewrite;
use crate::store::records::{Cursor, Event, Reorg};
use crate::store::{StoreError, WriteTx, tables};

pub const DESCRIPTION: &str = "cursors gain `first`; block_hashes become per source (window refills); events gain `decode_error`; \
     reorgs gain `removed_contracts` and hashes";

const BLOCK_HASHES_V1: TableDefinition<[u8; 16], &[u8]> = TableDefinition::new("block_hashes");

#[derive(Deserialize)]
struct CursorV1 {
    next: u64,
    last_hash: Option<B256>,
    updated_at: u64,
}

#[derive(Deserialize)]
struct EventV1 {
    source: u32,
    address: Address,
    block_hash: B256,
    tx_hash: B256,
    topics: Vec<B256>,
    data: Bytes,
    name: Option<String>,
    fields: Option<String>,
}

#[derive(Deserialize)]
struct ReorgV1 {
    source: u32,
    from_block: u64,
    depth: u64,
    removed_events: u64,
    detected_at: u64,
}

pub fn run(tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
    let path = tx.path().to_path_buf();
    let err = |e: &dyn std::fmt::Display| StoreError::Damaged { path: path.clone(), detail: e.to_string() };
    rewrite::<4, CursorV1, Cursor>(tx, 1, tables::CURSORS, |c| Cursor {
        first: c.next,
        next: c.next,
        last_hash: c.last_hash,
        updated_at: c.updated_at,
        stopped: None,
    })?;
    rewrite::<20, EventV1, Event>(tx, 1, tables::EVENTS, |e| Event {
        source: e.source,
        address: e.address,
        block_hash: e.block_hash,
        tx_hash: e.tx_hash,
        topics: e.topics,
        data: e.data,
        name: e.name,
        fields: e.fields,
        decode_error: None,
    })?;
    rewrite::<16, ReorgV1, Reorg>(tx, 1, tables::REORGS, |r| Reorg {
        source: r.source,
        from_block: r.from_block,
        depth: r.depth,
        removed_events: r.removed_events,
        removed_contracts: 0,
        old_hash: B256::ZERO,
        new_hash: B256::ZERO,
        detected_at: r.detected_at,
    })?;
    let txn = tx.raw();
    txn.delete_table(BLOCK_HASHES_V1).map_err(|e| err(&e))?;
    txn.open_table(tables::BLOCK_HASHES).map_err(|e| err(&e))?;
    Ok(())
}
