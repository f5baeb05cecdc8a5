//! What delivery writes and reads: deliveries created with the items they carry, the status index
//! scans a sender runs every tick ("what is due on chain X"), and the intents of one signer.
//!
//! A delivery is created at most once: a repeated range finds it there and leaves it alone,
//! whatever state it reached.

use std::path::Path;

use redb::{ReadTransaction, ReadableTable};

use super::keys::{DeliveryKey, EventKey, FixedKey, IntentKey, ItemKey, StatusKey};
use super::query_deliver::StateCounts;
use super::records::{self, Delivery, DeliveryState, Event, TxIntent};
use super::{ReadStore, Store, StoreError, WriteTx, tables};
use alloy::primitives::Address;

impl WriteTx<'_> {
    pub fn delivery(&self, key: DeliveryKey) -> Result<Option<Delivery>, StoreError> {
        let table = self.raw().open_table(tables::DELIVERIES).map_err(|e| self.err(e))?;
        let value = table.get(key.to_bytes()).map_err(|e| self.err(e))?;
        value.map(|v| records::decode(v.value()).map_err(|e| self.err(e))).transpose()
    }

    /// Creates a pending delivery unless one exists. Returns whether it was created.
    pub fn add_delivery(&mut self, key: DeliveryKey, now: u64) -> Result<bool, StoreError> {
        if self.delivery(key)?.is_some() {
            return Ok(false);
        }
        self.put_delivery(key, &Delivery::pending(now))?;
        Ok(true)
    }

    /// Creates the deliveries that the stored events of `source` on `chain` lack, as `plan` says
    /// (the deliveries an event gets); returns how many it created. Existing deliveries are left
    /// as they are, whatever their state.
    pub fn add_deliveries_for_stored(
        &mut self,
        source: u32,
        chain: u64,
        plan: impl Fn(EventKey, &Event) -> Vec<DeliveryKey>,
    ) -> Result<u64, StoreError> {
        let mut wanted = Vec::new();
        {
            let events = self.raw().open_table(tables::EVENTS).map_err(|e| self.err(e))?;
            let lo = EventKey { chain, block: 0, log_index: 0 }.to_bytes();
            let hi = EventKey { chain, block: u64::MAX, log_index: u32::MAX }.to_bytes();
            for entry in events.range(lo..=hi).map_err(|e| self.err(e))? {
                let (key, value) = entry.map_err(|e| self.err(e))?;
                let event: Event = records::decode(value.value()).map_err(|e| self.err(e))?;
                if event.source == source {
                    wanted.extend(plan(EventKey::from_bytes(key.value()), &event));
                }
            }
        }
        let now = super::now();
        let mut created = 0;
        for key in wanted {
            created += u64::from(self.add_delivery(key, now)?);
        }
        Ok(created)
    }

    /// Removes the deliveries of orphaned events that never got a transaction. Deliveries already
    /// sent stay: their transactions exist on the destination whatever happened to the source.
    /// Returns (removed, kept because sent).
    pub fn remove_orphaned_deliveries(
        &mut self,
        events: &std::collections::HashSet<EventKey>,
    ) -> Result<(u64, u64), StoreError> {
        if events.is_empty() {
            return Ok((0, 0));
        }
        let orphaned = |item: &ItemKey| matches!(item, ItemKey::Event(e) if events.contains(e));
        let mut doomed = Vec::new();
        let mut kept = 0;
        {
            let index = self.raw().open_table(tables::DELIVERY_STATUS).map_err(|e| self.err(e))?;
            for entry in index.iter().map_err(|e| self.err(e))? {
                let (key, _) = entry.map_err(|e| self.err(e))?;
                let status = StatusKey::from_bytes(key.value());
                if !orphaned(&status.item) {
                    continue;
                }
                let unsent = status.state == DeliveryState::Pending as u8
                    || status.state == DeliveryState::Failed as u8;
                if unsent {
                    doomed.push(status);
                } else {
                    kept += 1;
                }
            }
        }
        let mut index = self.raw().open_table(tables::DELIVERY_STATUS).map_err(|e| self.err(e))?;
        let mut table = self.raw().open_table(tables::DELIVERIES).map_err(|e| self.err(e))?;
        for status in &doomed {
            index.remove(status.to_bytes()).map_err(|e| self.err(e))?;
            let key = DeliveryKey { target: status.target, chain: status.chain, item: status.item };
            table.remove(key.to_bytes()).map_err(|e| self.err(e))?;
        }
        Ok((doomed.len() as u64, kept))
    }
}

impl Store {
    pub(super) fn fail_read(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Damaged { path: self.path().into(), detail: e.to_string() }
    }

    /// Deliveries on `chain` in `state` that `keep` accepts, in index order (target, then item),
    /// at most `limit`.
    pub fn deliveries_in_state(
        &self,
        chain: u64,
        state: DeliveryState,
        limit: usize,
        keep: impl FnMut(&DeliveryKey, &Delivery) -> bool,
    ) -> Result<Vec<(DeliveryKey, Delivery)>, StoreError> {
        self.deliveries_indexed(status_range(state, chain), limit, keep)
    }

    /// The deliveries whose status-index keys are in `range` that `keep` accepts, in index order,
    /// at most `limit`.
    pub(super) fn deliveries_indexed(
        &self,
        range: std::ops::RangeInclusive<[u8; 34]>,
        limit: usize,
        keep: impl FnMut(&DeliveryKey, &Delivery) -> bool,
    ) -> Result<Vec<(DeliveryKey, Delivery)>, StoreError> {
        deliveries_indexed(&self.read()?, self.path(), range, limit, keep)
    }

    /// How many deliveries on `chain` are in each state, counting only targets `keep` accepts.
    /// Reads index keys only, no records.
    pub fn delivery_counts(&self, chain: u64, keep: impl Fn(u32) -> bool) -> Result<StateCounts, StoreError> {
        let txn = self.read()?;
        let index = txn.open_table(tables::DELIVERY_STATUS).map_err(|e| self.fail_read(e))?;
        let mut counts = StateCounts::default();
        for state in DeliveryState::ALL {
            for entry in index.range(status_range(state, chain)).map_err(|e| self.fail_read(e))? {
                let (key, _) = entry.map_err(|e| self.fail_read(e))?;
                if keep(StatusKey::from_bytes(key.value()).target) {
                    counts.add(state);
                }
            }
        }
        Ok(counts)
    }

    /// When the oldest unsettled delivery (pending, sending or sent) of `targets` on `chain` was
    /// created, in unix seconds; `None` when none is. Only the first delivery of each (state,
    /// target) in the status index is read: items are keyed in the order sources meet them, so
    /// that one is the oldest, and the cost does not grow with the backlog.
    pub fn oldest_open(
        &self,
        chain: u64,
        targets: impl IntoIterator<Item = u32>,
    ) -> Result<Option<u64>, StoreError> {
        let txn = self.read()?;
        let index = txn.open_table(tables::DELIVERY_STATUS).map_err(|e| self.fail_read(e))?;
        let table = txn.open_table(tables::DELIVERIES).map_err(|e| self.fail_read(e))?;
        let mut oldest: Option<u64> = None;
        for target in targets {
            for state in [DeliveryState::Pending, DeliveryState::Sending, DeliveryState::Sent] {
                let (lo, hi) = super::sink::target_status_range(state, chain, target);
                let Some(entry) = index.range(lo..=hi).map_err(|e| self.fail_read(e))?.next() else {
                    continue;
                };
                let (key, _) = entry.map_err(|e| self.fail_read(e))?;
                let status = StatusKey::from_bytes(key.value());
                let key = DeliveryKey { target: status.target, chain: status.chain, item: status.item };
                let Some(value) = table.get(key.to_bytes()).map_err(|e| self.fail_read(e))? else {
                    return Err(self.fail_read(format!("the status index names a missing delivery {key:?}")));
                };
                let d: Delivery = records::decode(value.value()).map_err(|e| self.fail_read(e))?;
                oldest = Some(oldest.map_or(d.created_at, |o| o.min(d.created_at)));
            }
        }
        Ok(oldest)
    }

    pub fn delivery(&self, key: DeliveryKey) -> Result<Option<Delivery>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::DELIVERIES).map_err(|e| self.fail_read(e))?;
        let value = table.get(key.to_bytes()).map_err(|e| self.fail_read(e))?;
        value.map(|v| records::decode(v.value()).map_err(|e| self.fail_read(e))).transpose()
    }

    pub fn intent(&self, key: IntentKey) -> Result<Option<TxIntent>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::TX_INTENTS).map_err(|e| self.fail_read(e))?;
        let value = table.get(key.to_bytes()).map_err(|e| self.fail_read(e))?;
        value.map(|v| records::decode(v.value()).map_err(|e| self.fail_read(e))).transpose()
    }

    /// Target ids → names, as the store assigned them.
    pub fn target_names(&self) -> Result<std::collections::BTreeMap<u32, String>, StoreError> {
        target_names(&self.read()?, self.path())
    }

    /// Every intent of `signer` on `chain` from nonce `from` up, in nonce order.
    pub fn intents_from(
        &self,
        chain: u64,
        signer: Address,
        from: u64,
    ) -> Result<Vec<(u64, TxIntent)>, StoreError> {
        intents_from(&self.read()?, self.path(), chain, signer, from)
    }

    /// The events of `keys`, in one read transaction; `None` for a key the store does not hold.
    pub fn events(&self, keys: &[EventKey]) -> Result<Vec<Option<Event>>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(tables::EVENTS).map_err(|e| self.fail_read(e))?;
        keys.iter()
            .map(|key| {
                let value = table.get(key.to_bytes()).map_err(|e| self.fail_read(e))?;
                value.map(|v| records::decode(v.value()).map_err(|e| self.fail_read(e))).transpose()
            })
            .collect()
    }
}

/// The status-index keys of one (state, chain).
fn status_range(state: DeliveryState, chain: u64) -> std::ops::RangeInclusive<[u8; 34]> {
    let bound = |fill: u8| {
        let mut key = [fill; 34];
        key[0] = state as u8;
        key[1..9].copy_from_slice(&chain.to_be_bytes());
        key
    };
    bound(0)..=bound(0xff)
}

/// The reads an operator's command makes, on a store open read-only (while `watch` holds it).
impl ReadStore {
    /// See [`Store::deliveries_in_state`].
    pub fn deliveries_in_state(
        &self,
        chain: u64,
        state: DeliveryState,
        limit: usize,
        keep: impl FnMut(&DeliveryKey, &Delivery) -> bool,
    ) -> Result<Vec<(DeliveryKey, Delivery)>, StoreError> {
        deliveries_indexed(&self.read()?, self.path(), status_range(state, chain), limit, keep)
    }

    /// See [`Store::target_names`].
    pub fn target_names(&self) -> Result<std::collections::BTreeMap<u32, String>, StoreError> {
        target_names(&self.read()?, self.path())
    }

    /// See [`Store::intents_from`].
    pub fn intents_from(
        &self,
        chain: u64,
        signer: Address,
        from: u64,
    ) -> Result<Vec<(u64, TxIntent)>, StoreError> {
        intents_from(&self.read()?, self.path(), chain, signer, from)
    }
}

fn fail(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Damaged { path: path.into(), detail: e.to_string() }
}

fn deliveries_indexed(
    txn: &ReadTransaction,
    path: &Path,
    range: std::ops::RangeInclusive<[u8; 34]>,
    limit: usize,
    mut keep: impl FnMut(&DeliveryKey, &Delivery) -> bool,
) -> Result<Vec<(DeliveryKey, Delivery)>, StoreError> {
    let index = txn.open_table(tables::DELIVERY_STATUS).map_err(|e| fail(path, e))?;
    let table = txn.open_table(tables::DELIVERIES).map_err(|e| fail(path, e))?;
    let mut out = Vec::new();
    for entry in index.range(range).map_err(|e| fail(path, e))? {
        if out.len() >= limit {
            break;
        }
        let (key, _) = entry.map_err(|e| fail(path, e))?;
        let status = StatusKey::from_bytes(key.value());
        let key = DeliveryKey { target: status.target, chain: status.chain, item: status.item };
        let Some(value) = table.get(key.to_bytes()).map_err(|e| fail(path, e))? else {
            return Err(fail(path, format!("the status index names a missing delivery {key:?}")));
        };
        let delivery = records::decode(value.value()).map_err(|e| fail(path, e))?;
        if keep(&key, &delivery) {
            out.push((key, delivery));
        }
    }
    Ok(out)
}

fn target_names(
    txn: &ReadTransaction,
    path: &Path,
) -> Result<std::collections::BTreeMap<u32, String>, StoreError> {
    let table = txn.open_table(tables::TARGET_IDS).map_err(|e| fail(path, e))?;
    let mut names = std::collections::BTreeMap::new();
    for entry in table.iter().map_err(|e| fail(path, e))? {
        let (name, id) = entry.map_err(|e| fail(path, e))?;
        names.insert(id.value(), name.value().to_string());
    }
    Ok(names)
}

fn intents_from(
    txn: &ReadTransaction,
    path: &Path,
    chain: u64,
    signer: Address,
    from: u64,
) -> Result<Vec<(u64, TxIntent)>, StoreError> {
    let table = txn.open_table(tables::TX_INTENTS).map_err(|e| fail(path, e))?;
    let lo = IntentKey { chain, signer, nonce: from }.to_bytes();
    let hi = IntentKey { chain, signer, nonce: u64::MAX }.to_bytes();
    let mut out = Vec::new();
    for entry in table.range(lo..=hi).map_err(|e| fail(path, e))? {
        let (key, value) = entry.map_err(|e| fail(path, e))?;
        let nonce = IntentKey::from_bytes(key.value()).nonce;
        out.push((nonce, records::decode(value.value()).map_err(|e| fail(path, e))?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The oldest unsettled delivery of the chosen targets on one chain, whatever its state among
    /// pending, sending and sent; settled and failed ones, other chains and other targets do not
    /// count.
    #[test]
    fn oldest_open_is_the_earliest_unsettled_delivery_of_the_targets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::create_or_open(&dir.path().join("s.redb"), None).expect("create");
        let ev = |block| ItemKey::Event(EventKey { chain: 1, block, log_index: 0 });
        let at = |state, created_at| Delivery { state, ..Delivery::pending(created_at) };
        let (a, b) = store
            .write(|tx| {
                let (a, b) = (tx.target_id("a")?, tx.target_id("b")?);
                let rows = [
                    (a, 10, ev(1), at(DeliveryState::Confirmed, 50)),
                    (a, 10, ev(2), at(DeliveryState::Sent, 300)),
                    (a, 10, ev(3), at(DeliveryState::Pending, 400)),
                    (b, 10, ev(4), at(DeliveryState::Sending, 200)),
                    (b, 10, ev(5), at(DeliveryState::Failed, 10)),
                    (a, 20, ev(1), at(DeliveryState::Pending, 100)),
                ];
                for (target, chain, item, d) in rows {
                    tx.put_delivery(DeliveryKey { target, chain, item }, &d)?;
                }
                Ok((a, b))
            })
            .expect("write");
        assert_eq!(store.oldest_open(10, [a, b]).expect("read"), Some(200));
        assert_eq!(store.oldest_open(10, [a]).expect("read"), Some(300));
        assert_eq!(store.oldest_open(20, [a, b]).expect("read"), Some(100));
        assert_eq!(store.oldest_open(30, [a, b]).expect("read"), None);
    }
}
