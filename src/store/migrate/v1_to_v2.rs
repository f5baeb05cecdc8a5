//! Schema 1 → 2, for EVM ingest:
//! - `cursors`: records gain `first`, the start of the range a source holds. A v1 cursor was never
//!   written by an ingest, so its range is taken to start at its `next`.
//! - `block_hashes`: keyed by (source, block) instead of (chain, block), so that each source keeps
//!   its own reorg window. The v1 table is dropped: the window refills as ingest goes on, and a
//!   cursor's own `last_hash` still guards its next range.
//! - `events`: records gain `decode_error`.
//! - `reorgs`: records gain `removed_contracts` and the old and new hashes (zero for v1 records).

use alloy::primitives::{Address, B256, Bytes};
use redb::{ReadableTable, TableDefinition};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::store::records::{self, Cursor, Event, Record, Reorg};
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
    rewrite::<4, CursorV1, Cursor>(tx, tables::CURSORS, |c| Cursor {
        first: c.next,
        next: c.next,
        last_hash: c.last_hash,
        updated_at: c.updated_at,
    })?;
    rewrite::<20, EventV1, Event>(tx, tables::EVENTS, |e| Event {
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
    rewrite::<16, ReorgV1, Reorg>(tx, tables::REORGS, |r| Reorg {
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

/// Rewrites every record of a table from its v1 layout `Old` to `New`, in chunks so that memory
/// stays bounded on a large file. Records already at `New::VERSION` are left alone.
fn rewrite<const N: usize, Old: DeserializeOwned, New: Record>(
    tx: &mut WriteTx<'_>,
    def: TableDefinition<[u8; N], &[u8]>,
    convert: impl Fn(Old) -> New,
) -> Result<(), StoreError> {
    const CHUNK: usize = 10_000;
    let path = tx.path().to_path_buf();
    let err = |e: &dyn std::fmt::Display| StoreError::Damaged { path: path.clone(), detail: e.to_string() };
    let mut table = tx.raw().open_table(def).map_err(|e| err(&e))?;
    let mut after: Option<[u8; N]> = None;
    loop {
        let mut chunk = Vec::with_capacity(CHUNK);
        {
            let range = match after {
                Some(k) => table.range::<[u8; N]>((std::ops::Bound::Excluded(k), std::ops::Bound::Unbounded)),
                None => table.range::<[u8; N]>(..),
            }
            .map_err(|e| err(&e))?;
            for entry in range.take(CHUNK) {
                let (key, value) = entry.map_err(|e| err(&e))?;
                chunk.push((key.value(), value.value().to_vec()));
            }
        }
        let Some(&(last, _)) = chunk.last() else { return Ok(()) };
        for (key, bytes) in chunk {
            match bytes.split_first() {
                Some((1, body)) => {
                    let old: Old = postcard::from_bytes(body)
                        .map_err(|e| err(&format!("a v1 {} record does not decode: {e}", New::NAME)))?;
                    table.insert(key, records::encode(&convert(old)).as_slice()).map_err(|e| err(&e))?;
                }
                Some((v, _)) if *v == New::VERSION => {}
                _ => return Err(err(&format!("a {} record has an unknown version", New::NAME))),
            }
        }
        after = Some(last);
    }
}
