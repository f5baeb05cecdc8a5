//! Reading whole tables back out: row counts and cursors for `inspect-store summary`, and every row
//! decoded to JSON for `export`. Rows stream through a callback, one at a time, so an export runs
//! in constant memory whatever the size of the store.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{ReadTransaction, ReadableTable, TableDefinition};
use serde::Serialize;
use serde_json::{Value, json};

use super::keys::*;
use super::records::{self, Record};
use super::{Meta, ReadStore, StoreError, count, failure, tables};

/// Rows in the table called `name`.
pub fn count_rows(path: &Path, txn: &ReadTransaction, name: &str) -> Result<u64, StoreError> {
    super::guarded(path, &format!("counting table {name}"), || count_rows_unguarded(path, txn, name))?
}

fn count_rows_unguarded(path: &Path, txn: &ReadTransaction, name: &str) -> Result<u64, StoreError> {
    let n = match name {
        "meta" => count(txn, tables::META),
        "source_ids" => count(txn, tables::SOURCE_IDS),
        "target_ids" => count(txn, tables::TARGET_IDS),
        "cursors" => count(txn, tables::CURSORS),
        "block_hashes" => count(txn, tables::BLOCK_HASHES),
        "contracts" => count(txn, tables::CONTRACTS),
        "events" => count(txn, tables::EVENTS),
        "batches" => count(txn, tables::BATCHES),
        "deliveries" => count(txn, tables::DELIVERIES),
        "delivery_status" => count(txn, tables::DELIVERY_STATUS),
        "tx_intents" => count(txn, tables::TX_INTENTS),
        "reorgs" => count(txn, tables::REORGS),
        "provers" => count(txn, tables::PROVERS),
        "sink_acks" => count(txn, tables::SINK_ACKS),
        other => return Err(failure(path, format!("no table `{other}`"))),
    };
    n.map_err(|e| failure(path, e))
}

/// One row as export writes it.
pub type Row = (Value, Value);

/// Streams every row of table `name` to `emit`, keys and values decoded; returns the row count.
/// A row that does not decode stops the dump with [`StoreError::Damaged`].
pub fn dump_table(
    path: &Path,
    txn: &ReadTransaction,
    name: &str,
    emit: &mut dyn FnMut(Row) -> std::io::Result<()>,
) -> eyre::Result<u64> {
    super::guarded(path, &format!("reading table {name}"), || dump_table_unguarded(path, txn, name, emit))?
}

fn dump_table_unguarded(
    path: &Path,
    txn: &ReadTransaction,
    name: &str,
    emit: &mut dyn FnMut(Row) -> std::io::Result<()>,
) -> eyre::Result<u64> {
    match name {
        "meta" => dump_text(path, txn, tables::META, emit),
        "source_ids" => dump_ids(path, txn, tables::SOURCE_IDS, emit),
        "target_ids" => dump_ids(path, txn, tables::TARGET_IDS, emit),
        "cursors" => dump_fixed::<4, CursorKey, records::Cursor>(path, txn, tables::CURSORS, emit),
        "block_hashes" => {
            dump_fixed::<12, BlockKey, records::BlockHash>(path, txn, tables::BLOCK_HASHES, emit)
        }
        "contracts" => dump_fixed::<28, ContractKey, records::Contract>(path, txn, tables::CONTRACTS, emit),
        "events" => dump_fixed::<20, EventKey, records::Event>(path, txn, tables::EVENTS, emit),
        "batches" => dump_fixed::<12, BatchKey, records::Batch>(path, txn, tables::BATCHES, emit),
        "deliveries" => dump_fixed::<33, DeliveryKey, records::Delivery>(path, txn, tables::DELIVERIES, emit),
        "delivery_status" => dump_status(path, txn, emit),
        "tx_intents" => dump_fixed::<36, IntentKey, records::TxIntent>(path, txn, tables::TX_INTENTS, emit),
        "reorgs" => dump_fixed::<16, ReorgKey, records::Reorg>(path, txn, tables::REORGS, emit),
        "provers" => dump_fixed::<12, ProverKey, records::ProverState>(path, txn, tables::PROVERS, emit),
        "sink_acks" => dump_fixed::<33, DeliveryKey, records::SinkAck>(path, txn, tables::SINK_ACKS, emit),
        other => Err(failure(path, format!("no table `{other}`")).into()),
    }
}

fn dump_fixed<const N: usize, K: FixedKey<N>, R: Record>(
    path: &Path,
    txn: &ReadTransaction,
    def: TableDefinition<[u8; N], &[u8]>,
    emit: &mut dyn FnMut(Row) -> std::io::Result<()>,
) -> eyre::Result<u64> {
    let table = match txn.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(failure(path, e).into()),
    };
    let mut rows = 0;
    for entry in table.iter().map_err(|e| failure(path, e))? {
        let (key, value) = entry.map_err(|e| failure(path, e))?;
        let record: R = records::decode(value.value()).map_err(|e| failure(path, e))?;
        emit((json!(K::from_bytes(key.value())), json!(record)))?;
        rows += 1;
    }
    Ok(rows)
}

fn dump_text(
    path: &Path,
    txn: &ReadTransaction,
    def: TableDefinition<&str, &str>,
    emit: &mut dyn FnMut(Row) -> std::io::Result<()>,
) -> eyre::Result<u64> {
    let table = txn.open_table(def).map_err(|e| failure(path, e))?;
    let mut rows = 0;
    for entry in table.iter().map_err(|e| failure(path, e))? {
        let (key, value) = entry.map_err(|e| failure(path, e))?;
        emit((json!(key.value()), json!(value.value())))?;
        rows += 1;
    }
    Ok(rows)
}

fn dump_ids(
    path: &Path,
    txn: &ReadTransaction,
    def: TableDefinition<&str, u32>,
    emit: &mut dyn FnMut(Row) -> std::io::Result<()>,
) -> eyre::Result<u64> {
    let table = match txn.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(failure(path, e).into()),
    };
    let mut rows = 0;
    for entry in table.iter().map_err(|e| failure(path, e))? {
        let (key, value) = entry.map_err(|e| failure(path, e))?;
        emit((json!(key.value()), json!(value.value())))?;
        rows += 1;
    }
    Ok(rows)
}

fn dump_status(
    path: &Path,
    txn: &ReadTransaction,
    emit: &mut dyn FnMut(Row) -> std::io::Result<()>,
) -> eyre::Result<u64> {
    let table = match txn.open_table(tables::DELIVERY_STATUS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(failure(path, e).into()),
    };
    let mut rows = 0;
    for entry in table.iter().map_err(|e| failure(path, e))? {
        let (key, _) = entry.map_err(|e| failure(path, e))?;
        let key = StatusKey::from_bytes(key.value());
        let state = records::DeliveryState::from_byte(key.state)
            .ok_or_else(|| failure(path, format!("unknown delivery state {}", key.state)))?;
        emit((json!(key), json!({ "state": state })))?;
        rows += 1;
    }
    Ok(rows)
}

/// What `inspect-store summary` shows.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub path: String,
    pub file_size: u64,
    pub meta: Meta,
    /// Table name → rows, in [`tables::ALL`] order.
    pub tables: Vec<TableCount>,
    pub cursors: Vec<CursorRow>,
}

#[derive(Debug, Serialize)]
pub struct TableCount {
    pub table: &'static str,
    pub rows: u64,
}

#[derive(Debug, Serialize)]
pub struct CursorRow {
    pub source: String,
    pub next: u64,
    pub last_block_hash: Option<String>,
    pub updated_at: u64,
}

pub fn summary(store: &ReadStore) -> eyre::Result<Summary> {
    super::guarded(store.path(), "reading the summary", || summary_unguarded(store))?
}

fn summary_unguarded(store: &ReadStore) -> eyre::Result<Summary> {
    let path = store.path();
    let file_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let txn = store.read()?;
    let mut counts = Vec::new();
    for table in tables::ALL {
        counts.push(TableCount { table, rows: count_rows(path, &txn, table)? });
    }
    let mut names = BTreeMap::new();
    dump_ids(path, &txn, tables::SOURCE_IDS, &mut |(name, id)| {
        names.insert(id.as_u64().unwrap_or(u64::MAX), name.as_str().unwrap_or_default().to_string());
        Ok(())
    })?;
    let mut cursors = Vec::new();
    dump_fixed::<4, CursorKey, records::Cursor>(path, &txn, tables::CURSORS, &mut |(key, value)| {
        let id = key["source"].as_u64().unwrap_or(u64::MAX);
        cursors.push(CursorRow {
            source: names.get(&id).cloned().unwrap_or_else(|| format!("#{id}")),
            next: value["next"].as_u64().unwrap_or_default(),
            last_block_hash: value["last_hash"].as_str().map(str::to_string),
            updated_at: value["updated_at"].as_u64().unwrap_or_default(),
        });
        Ok(())
    })?;
    Ok(Summary {
        path: path.display().to_string(),
        file_size,
        meta: store.meta().clone(),
        tables: counts,
        cursors,
    })
}
