//! What sink workers read: the items their deliveries carry (events and batches, in one read
//! transaction) and the names of sources, to build messages.

use std::collections::BTreeMap;

use redb::ReadableTable;

use super::keys::{DeliveryKey, FixedKey, ItemKey, StatusKey};
use super::query_deliver::StateCounts;
use super::records::{self, Batch, Delivery, DeliveryState, Event, SinkAck};
use super::{Store, StoreError, tables};

/// The item a delivery carries, as stored.
#[derive(Debug, Clone)]
pub enum StoredItem {
    Event(Event),
    Batch(Batch),
}

impl Store {
    /// The items of `keys`, in order; `None` for one the store does not hold (an event removed
    /// by a reorg after its delivery was read).
    pub fn items(&self, keys: &[ItemKey]) -> Result<Vec<Option<StoredItem>>, StoreError> {
        let txn = self.read()?;
        let events = txn.open_table(tables::EVENTS).map_err(|e| self.fail_read(e))?;
        let batches = txn.open_table(tables::BATCHES).map_err(|e| self.fail_read(e))?;
        keys.iter()
            .map(|key| {
                let value = match key {
                    ItemKey::Event(k) => events.get(k.to_bytes()),
                    ItemKey::Batch(k) => batches.get(k.to_bytes()),
                }
                .map_err(|e| self.fail_read(e))?;
                let Some(value) = value else { return Ok(None) };
                Ok(Some(match key {
                    ItemKey::Event(_) => {
                        StoredItem::Event(records::decode(value.value()).map_err(|e| self.fail_read(e))?)
                    }
                    ItemKey::Batch(_) => {
                        StoredItem::Batch(records::decode(value.value()).map_err(|e| self.fail_read(e))?)
                    }
                }))
            })
            .collect()
    }

    /// Source ids → names, as the store assigned them.
    pub fn source_names(&self) -> Result<BTreeMap<u32, String>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::SOURCE_IDS).map_err(|e| self.fail_read(e))?;
        let mut names = BTreeMap::new();
        for entry in table.iter().map_err(|e| self.fail_read(e))? {
            let (name, id) = entry.map_err(|e| self.fail_read(e))?;
            names.insert(id.value(), name.value().to_string());
        }
        Ok(names)
    }
}

impl Store {
    /// How many deliveries of `target` on `chain` are in each state: one key range per state,
    /// index keys only.
    pub fn target_counts(&self, chain: u64, target: u32) -> Result<StateCounts, StoreError> {
        let txn = self.read()?;
        let index = txn.open_table(tables::DELIVERY_STATUS).map_err(|e| self.fail_read(e))?;
        let mut counts = StateCounts::default();
        for state in DeliveryState::ALL {
            let (lo, hi) = target_status_range(state, chain, target);
            for entry in index.range(lo..=hi).map_err(|e| self.fail_read(e))? {
                entry.map_err(|e| self.fail_read(e))?;
                counts.add(state);
            }
        }
        Ok(counts)
    }

    /// The deliveries of `target` on `chain` (a sink's deliveries are on one chain id, 0) in
    /// `state` that `keep` accepts, in item order, at most `limit`: one range scan of the status
    /// index.
    pub fn target_deliveries(
        &self,
        chain: u64,
        target: u32,
        state: DeliveryState,
        limit: usize,
        keep: impl FnMut(&DeliveryKey, &Delivery) -> bool,
    ) -> Result<Vec<(DeliveryKey, Delivery)>, StoreError> {
        let (lo, hi) = target_status_range(state, chain, target);
        self.deliveries_indexed(lo..=hi, limit, keep)
    }
}

/// The status-index keys of one (state, chain, target).
pub(super) fn target_status_range(state: DeliveryState, chain: u64, target: u32) -> ([u8; 34], [u8; 34]) {
    let bound = |fill: u8| {
        let mut key = [fill; 34];
        key[0] = state as u8;
        key[1..9].copy_from_slice(&chain.to_be_bytes());
        key[9..13].copy_from_slice(&target.to_be_bytes());
        key
    };
    (bound(0), bound(0xff))
}

impl super::WriteTx<'_> {
    /// Writes deliveries whose state before the write the caller knows (`from`: what it read in
    /// the same process, the only writer of them), with their sink acks: each table opened once,
    /// no record read back. The sink worker writes every round this way; the status index moves
    /// from `from` to the new state as [`put_delivery`](super::WriteTx::put_delivery) does it.
    pub fn put_deliveries_from(
        &mut self,
        rows: &[(DeliveryKey, DeliveryState, Delivery)],
        acks: &[(DeliveryKey, SinkAck)],
    ) -> Result<(), StoreError> {
        let status = |key: &DeliveryKey, state: DeliveryState| {
            StatusKey { state: state as u8, chain: key.chain, target: key.target, item: key.item }.to_bytes()
        };
        {
            let mut index = self.txn.open_table(tables::DELIVERY_STATUS).map_err(|e| self.err(e))?;
            for (key, from, d) in rows {
                if *from != d.state {
                    index.remove(status(key, *from)).map_err(|e| self.err(e))?;
                    index.insert(status(key, d.state), ()).map_err(|e| self.err(e))?;
                }
            }
        }
        let mut buf = Vec::new();
        {
            let mut table = self.txn.open_table(tables::DELIVERIES).map_err(|e| self.err(e))?;
            for (key, _, d) in rows {
                records::encode_into(d, &mut buf);
                table.insert(key.to_bytes(), buf.as_slice()).map_err(|e| self.err(e))?;
            }
        }
        if !acks.is_empty() {
            let mut table = self.txn.open_table(tables::SINK_ACKS).map_err(|e| self.err(e))?;
            for (key, ack) in acks {
                records::encode_into(ack, &mut buf);
                table.insert(key.to_bytes(), buf.as_slice()).map_err(|e| self.err(e))?;
            }
        }
        Ok(())
    }
}
