//! What the `seda` source and the `seda-prover` target write and read: checked batches applied
//! with their deliveries and the advanced cursor in one write transaction, the batches a Prover
//! needs to build proofs, and what each destination's Prover last said.
//!
//! Applying batches checks that they start exactly at the source's cursor and are consecutive,
//! so a batch can be neither skipped nor applied twice.

use redb::ReadableTable;

use super::keys::{BatchKey, CursorKey, DeliveryKey, FixedKey, ProverKey};
use super::records::{self, Batch, Cursor, ProverState};
use super::{Store, StoreError, WriteTx, now, tables};

/// Consecutive batches of one source, ready to commit.
#[derive(Debug, Clone, Default)]
pub struct BatchesWrite {
    pub source: u32,
    /// Ascending and consecutive, the first at the source's cursor.
    pub batches: Vec<Batch>,
    /// Deliveries the routes make of these batches, created pending unless they exist.
    pub deliveries: Vec<DeliveryKey>,
}

impl WriteTx<'_> {
    /// Commits batches: each stored, the deliveries created, the cursor moved past the last.
    pub fn apply_batches(&mut self, w: &BatchesWrite) -> Result<(), StoreError> {
        let Some(first) = w.batches.first() else { return Ok(()) };
        let from = first.batch.header.number;
        let cursor = {
            let table = self.raw().open_table(tables::CURSORS).map_err(|e| self.err(e))?;
            let value = table.get(CursorKey { source: w.source }.to_bytes()).map_err(|e| self.err(e))?;
            value.map(|v| records::decode::<Cursor>(v.value())).transpose().map_err(|e| self.err(e))?
        };
        if let Some(c) = &cursor
            && c.next != from
        {
            return Err(self.err(format!(
                "source #{} is at batch {}, but batches from {from} were to be applied",
                w.source, c.next
            )));
        }
        let mut next = from;
        {
            let mut table = self.raw().open_table(tables::BATCHES).map_err(|e| self.err(e))?;
            let mut value = Vec::new();
            for batch in &w.batches {
                if batch.batch.header.number != next {
                    return Err(self.err(format!(
                        "batches to apply are not consecutive: {} after {}",
                        batch.batch.header.number,
                        next.saturating_sub(1)
                    )));
                }
                records::encode_into(batch, &mut value);
                let key = BatchKey { source: w.source, height: next };
                table.insert(key.to_bytes(), value.as_slice()).map_err(|e| self.err(e))?;
                next += 1;
            }
        }
        let created = now();
        for key in &w.deliveries {
            self.add_delivery(*key, created)?;
        }
        let first = cursor.map_or(from, |c| c.first);
        self.put_cursor(
            CursorKey { source: w.source },
            &Cursor { first, next, last_hash: None, updated_at: created, stopped: None },
        )
    }

    /// Records why a source stopped in its cursor (shown by `inspect-store cursors`); the next
    /// batches it applies clear it. A source without a cursor has nothing to show it on.
    pub fn mark_stopped(&mut self, source: u32, why: &str) -> Result<(), StoreError> {
        let cursor = {
            let table = self.raw().open_table(tables::CURSORS).map_err(|e| self.err(e))?;
            let value = table.get(CursorKey { source }.to_bytes()).map_err(|e| self.err(e))?;
            value.map(|v| records::decode::<Cursor>(v.value())).transpose().map_err(|e| self.err(e))?
        };
        let Some(mut cursor) = cursor else { return Ok(()) };
        cursor.stopped = Some(why.to_string());
        cursor.updated_at = now();
        self.put_cursor(CursorKey { source }, &cursor)
    }

    pub fn put_prover_state(&mut self, key: ProverKey, state: &ProverState) -> Result<(), StoreError> {
        let mut table = self.raw().open_table(tables::PROVERS).map_err(|e| self.err(e))?;
        table.insert(key.to_bytes(), records::encode(state).as_slice()).map_err(|e| self.err(e))?;
        Ok(())
    }
}

impl Store {
    /// The batch `height` of `source`, if stored.
    pub fn batch(&self, source: u32, height: u64) -> Result<Option<Batch>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::BATCHES).map_err(|e| self.fail_read(e))?;
        let value = table.get(BatchKey { source, height }.to_bytes()).map_err(|e| self.fail_read(e))?;
        value.map(|v| records::decode(v.value()).map_err(|e| self.fail_read(e))).transpose()
    }

    /// Batches of `source` from `from` to `to` (inclusive), ascending, as stored.
    pub fn batches(&self, source: u32, from: u64, to: u64) -> Result<Vec<Batch>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::BATCHES).map_err(|e| self.fail_read(e))?;
        let lo = BatchKey { source, height: from }.to_bytes();
        let hi = BatchKey { source, height: to }.to_bytes();
        let mut out = Vec::new();
        for entry in table.range(lo..=hi).map_err(|e| self.fail_read(e))? {
            let (_, value) = entry.map_err(|e| self.fail_read(e))?;
            out.push(records::decode(value.value()).map_err(|e| self.fail_read(e))?);
        }
        Ok(out)
    }

    /// The highest stored batch of `source` at or below `height` whose validators root is `root`:
    /// a validator set ferry can prove against when it does not hold the destination's own batch.
    pub fn batch_with_root(
        &self,
        source: u32,
        height: u64,
        root: alloy::primitives::B256,
    ) -> Result<Option<Batch>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::BATCHES).map_err(|e| self.fail_read(e))?;
        let lo = BatchKey { source, height: 0 }.to_bytes();
        let hi = BatchKey { source, height }.to_bytes();
        for entry in table.range(lo..=hi).map_err(|e| self.fail_read(e))?.rev() {
            let (_, value) = entry.map_err(|e| self.fail_read(e))?;
            let batch: Batch = records::decode(value.value()).map_err(|e| self.fail_read(e))?;
            if batch.batch.header.validators_root == root {
                return Ok(Some(batch));
            }
        }
        Ok(None)
    }
}
