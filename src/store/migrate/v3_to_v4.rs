//! Schema 3 → 4, for SEDA batches:
//! - `provers` (new): what each `seda-prover` destination last said (last batch, validators root,
//!   paused, max batch age).
//! - `cursors`: records gain `stopped` (why a source stopped on something an operator must see).
//! - `batches`: records hold the whole checked batch (header, validator entries, signatures).
//!   No ferry of schema 3 could run a `seda` source, so real files hold none; a v3 record is
//!   converted from the API answer it kept when that answer reads as a signed batch, and
//!   otherwise keeps its header fields with no validator entries or signatures (nothing is
//!   dropped; such a batch cannot prove anything, which a Prover target then says).

use alloy::primitives::{B256, Bytes};
use redb::ReadableTable;
use serde::Deserialize;

use super::rewrite;
use crate::seda::wire::{BatchAnswer, parse_batch};
use crate::seda::{BatchHeader, SignedBatch};
use crate::store::keys::{BatchKey, FixedKey};
use crate::store::records::{self, Batch, Cursor};
use crate::store::{StoreError, WriteTx, tables};

pub const DESCRIPTION: &str =
    "new table `provers`; cursors gain `stopped`; batches hold the whole checked batch";

#[derive(Deserialize)]
struct BatchV1 {
    block_height: u64,
    batch_id: B256,
    validators_root: B256,
    results_root: B256,
    raw: String,
}

#[derive(Deserialize)]
struct CursorV2 {
    first: u64,
    next: u64,
    last_hash: Option<B256>,
    updated_at: u64,
}

pub fn run(tx: &mut WriteTx<'_>) -> Result<(), StoreError> {
    let path = tx.path().to_path_buf();
    let err = |e: &dyn std::fmt::Display| StoreError::Damaged { path: path.clone(), detail: e.to_string() };
    // `rewrite` converts record by record without the key; a batch's number is in its key.
    {
        let mut table = tx.raw().open_table(tables::BATCHES).map_err(|e| err(&e))?;
        let mut rows = Vec::new();
        for entry in table.iter().map_err(|e| err(&e))? {
            let (key, value) = entry.map_err(|e| err(&e))?;
            rows.push((key.value(), value.value().to_vec()));
        }
        for (key, bytes) in rows {
            match bytes.split_first() {
                Some((1, body)) => {
                    let old: BatchV1 = postcard::from_bytes(body)
                        .map_err(|e| err(&format!("a v1 batch record does not decode: {e}")))?;
                    let number = BatchKey::from_bytes(key).height;
                    let batch = convert_batch(number, old);
                    table.insert(key, records::encode(&batch).as_slice()).map_err(|e| err(&e))?;
                }
                Some((v, _)) if *v == <Batch as records::Record>::VERSION => {}
                _ => return Err(err(&"a batch record of schema 3 has an unknown version")),
            }
        }
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

fn convert_batch(number: u64, old: BatchV1) -> Batch {
    let parsed = match parse_batch(old.raw.as_bytes()) {
        Ok(BatchAnswer::Signed(b)) if b.header.number == number && b.batch_id == old.batch_id => Some(b),
        _ => None,
    };
    let batch = parsed.unwrap_or_else(|| SignedBatch {
        header: BatchHeader {
            number,
            block_height: old.block_height,
            validators_root: old.validators_root,
            results_root: old.results_root,
            proving_metadata: Bytes::new(),
        },
        batch_id: old.batch_id,
        validators: Vec::new(),
        signatures: Vec::new(),
        result_ids: Vec::new(),
    });
    Batch { batch, anchor: false, fetched_at: 0 }
}
