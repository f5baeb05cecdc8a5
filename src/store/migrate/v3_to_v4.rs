//! Schema 3 → 4, for SEDA batches:
//! - `provers` (new): what each `seda-prover` destination last said (last batch, validators root,
//!   paused, max batch age).
//! - `cursors`: records gain `stopped` (why a source stopped on something an operator must see).
//! - `batches`: records hold the whole checked batch (header, validator entries, signatures).
//!   No ferry before schema 4 wrote a batch, so there is nothing to convert; a v3 file holding
//!   one is not a file ferry wrote, and the step refuses it.

use alloy::primitives::B256;
use serde::Deserialize;

use super::rewrite;
use crate::store::records::Cursor;
use crate::store::{StoreError, WriteTx, tables};

pub const DESCRIPTION: &str = "new table `provers`; cursors gain `stopped`; batches hold the whole checked batch (none were written before)";

#[derive(Deserialize)]
struct CursorV2 {
    first: u64,
    next: u64,
    last_hash: Option<B256>,
    updated_at: u64,
}

pub fn run(tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
    let path = tx.path().to_path_buf();
    let batches = {
        let read =
            |e: &dyn std::fmt::Display| StoreError::Damaged { path: path.clone(), detail: e.to_string() };
        let table = tx.raw().open_table(tables::BATCHES).map_err(|e| read(&e))?;
        redb::ReadableTableMetadata::len(&table).map_err(|e| read(&e))?
    };
    if batches > 0 {
        return Err(StoreError::Damaged {
            path,
            detail: format!("a schema v3 file holds {batches} batches, which no ferry of that schema wrote"),
        });
    }
    rewrite::<4, CursorV2, Cursor>(tx, 2, tables::CURSORS, |c| Cursor {
        first: c.first,
        next: c.next,
        last_hash: c.last_hash,
        updated_at: c.updated_at,
        stopped: None,
    })?;
    tx.create_all_tables()
}
