//! Schema 4 → 5, for sinks: `sink_acks` (new) holds what a sink said when it took a delivery.
//! Nothing else changes; a file of schema 4 holds no sink deliveries (no ferry of schema 4 could
//! run a sink).

use crate::store::{StoreError, WriteTx, tables};

pub const DESCRIPTION: &str = "new table `sink_acks`";

pub fn run(tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
    let path = tx.path().to_path_buf();
    tx.raw()
        .open_table(tables::SINK_ACKS)
        .map_err(|e| StoreError::Damaged { path, detail: e.to_string() })?;
    Ok(())
}
