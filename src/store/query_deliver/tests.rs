//! The views over a small store written here: filters by key and by index agree with the counts,
//! the matrix merges chains with gaps, intents walk both ways, damage is an error.

use super::*;
use crate::store::Store;
use crate::store::keys::{BatchKey, EventKey, IntentKey};
use crate::store::records::{IntentState, TxIntent};
use alloy::primitives::Bytes;

fn ev(block: u64) -> ItemKey {
    ItemKey::Event(EventKey { chain: 1, block, log_index: 0 })
}

fn delivery(state: DeliveryState, hashes: &[u8]) -> Delivery {
    Delivery {
        state,
        tx_hashes: hashes.iter().map(|&b| B256::repeat_byte(b)).collect(),
        ..Delivery::pending(100)
    }
}

/// Target `a` (id 0) on chains 10 and 20, target `b` (id 1) on chain 20; the matrix has a gap
/// (block 2 never went to chain 20).
fn sample() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("s.redb");
    let store = Store::create_or_open(&path, None).expect("create");
    store
        .write(|tx| {
            let a = tx.target_id("a")?;
            let b = tx.target_id("b")?;
            let rows = [
                (a, 10, ev(1), DeliveryState::Confirmed),
                (a, 10, ev(2), DeliveryState::Failed),
                (a, 10, ev(3), DeliveryState::Pending),
                (a, 20, ev(1), DeliveryState::Confirmed),
                (a, 20, ev(3), DeliveryState::Failed),
                (b, 20, ItemKey::Batch(BatchKey { source: 0, height: 7 }), DeliveryState::Sent),
            ];
            for (target, chain, item, state) in rows {
                tx.put_delivery(DeliveryKey { target, chain, item }, &delivery(state, &[1, 2]))?;
            }
            let intent = TxIntent {
                state: IntentState::Sent,
                raw: Bytes::new(),
                hash: B256::repeat_byte(9),
                to: Address::repeat_byte(3),
                gas_limit: 50_000,
                max_fee_per_gas: 1_500_000_000,
                max_priority_fee_per_gas: Some(7),
                created_at: 1,
                sent_at: Some(2),
                replaced: vec![B256::repeat_byte(8)],
                deliveries: vec![DeliveryKey { target: a, chain: 10, item: ev(3) }],
                mined: None,
                cancel: None,
            };
            let signer = Address::repeat_byte(0xaa);
            for nonce in 0..3 {
                let state = if nonce < 2 { IntentState::Confirmed } else { IntentState::Sent };
                tx.put_intent(IntentKey { chain: 10, signer, nonce }, &TxIntent { state, ..intent.clone() })?;
            }
            tx.put_intent(IntentKey { chain: 20, signer, nonce: 0 }, &intent)
        })
        .expect("write");
    (dir, path)
}

fn names() -> BTreeMap<u64, String> {
    BTreeMap::from([(10, "ten".to_string())])
}

fn all<T>(f: impl FnOnce(&mut dyn FnMut(T) -> ControlFlow<()>) -> Result<u64, StoreError>) -> Vec<T> {
    let mut rows = Vec::new();
    let n = f(&mut |row| {
        rows.push(row);
        ControlFlow::Continue(())
    })
    .expect("query");
    assert_eq!(n as usize, rows.len());
    rows
}

#[test]
fn ids_read_back_from_their_text() {
    let id = DeliveryId { target: "receiver".into(), chain: Some("d0".into()), item: ev(12) };
    assert_eq!(id.to_string(), "receiver/d0/ev:1:12:0");
    assert_eq!(id.to_string().parse::<DeliveryId>(), Ok(id));
    let slashed: DeliveryId = "ops/receiver/8453/batch:2:9".parse().expect("parses");
    assert_eq!((slashed.target.as_str(), slashed.chain.as_deref()), ("ops/receiver", Some("8453")));
    let sink = DeliveryId { target: "hook".into(), chain: None, item: ev(12) };
    assert_eq!(sink.to_string(), "hook/ev:1:12:0");
    assert_eq!(sink.to_string().parse::<DeliveryId>(), Ok(sink));
    let slashed_sink: DeliveryId = "ops/hook/ev:1:12:0".parse().expect("parses");
    assert_eq!(slashed_sink.as_sink().target, "ops/hook");
    for bad in ["", "a/b", "/ev:1:2:3", "/c/ev:1:2:3", "a//ev:1:2:3", "a/c/ev:1:2"] {
        assert!(bad.parse::<DeliveryId>().is_err(), "{bad}");
    }
}

#[test]
fn gwei_is_exact() {
    assert_eq!(gwei(0), "0");
    assert_eq!(gwei(1_500_000_000), "1.5");
    assert_eq!(gwei(7), "0.000000007");
    assert_eq!(gwei(30_000_000_000), "30");
}

#[test]
fn filters_by_key_and_by_index_agree_with_the_counts() {
    let (_dir, path) = sample();
    let store = ReadStore::open(&path).expect("open");
    let q = DeliveryQuery::new(&store, names()).expect("query");
    let every = all(|emit| q.deliveries(&DeliveryFilter::default(), emit));
    assert_eq!(every.len(), 6);
    assert_eq!(every[0].id, "a/ten/ev:1:1:0");
    assert_eq!(every[5].id, "b/20/batch:0:7");
    assert_eq!(every[0].tx_hash, Some(B256::repeat_byte(2)), "the newest hash is the last one");
    for row in &every {
        assert_eq!(row.id.parse::<DeliveryId>().map(|id| id.item), Ok(row.item));
    }
    assert_eq!(q.counts(&DeliveryFilter::default()).expect("counts").total(), 6);

    for state in DeliveryState::ALL {
        for chain in [None, Some(10), Some(20)] {
            for target in [None, Some("a"), Some("b")] {
                let filter = DeliveryFilter { target: target.map(Into::into), chain, state: Some(state) };
                let by_index = all(|emit| q.deliveries(&filter, emit));
                let by_key: Vec<_> = every
                    .iter()
                    .filter(|r| {
                        r.state == state
                            && chain.is_none_or(|c| c == r.chain_id)
                            && target.is_none_or(|t| t == r.target)
                    })
                    .collect();
                assert_eq!(by_index.len(), by_key.len(), "{filter:?}");
                let counts = q.counts(&filter).expect("counts");
                assert_eq!(counts.get(state), by_key.len() as u64, "{filter:?}");
                assert_eq!(counts.total(), by_key.len() as u64, "{filter:?}");
            }
        }
    }
    let chain_20 = DeliveryFilter { chain: Some(20), ..Default::default() };
    assert_eq!(all(|emit| q.deliveries(&chain_20, emit)).len(), 3);
    let unknown = DeliveryFilter { target: Some("nope".into()), ..Default::default() };
    assert!(all(|emit| q.deliveries(&unknown, emit)).is_empty());
    assert_eq!(q.counts(&unknown).expect("counts"), StateCounts::default());

    // A limit stops the stream; the counts still cover everything.
    let mut seen = 0;
    q.deliveries(&DeliveryFilter::default(), &mut |_| {
        seen += 1;
        if seen == 2 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    })
    .expect("limited");
    assert_eq!(seen, 2);
}

#[test]
fn the_matrix_merges_chains_item_by_item() {
    let (_dir, path) = sample();
    let store = ReadStore::open(&path).expect("open");
    let q = DeliveryQuery::new(&store, names()).expect("query");
    let a = DeliveryFilter { target: Some("a".into()), ..Default::default() };
    let rows = all(|emit| q.matrix(&a, emit));
    let cells: Vec<(String, Vec<Option<DeliveryState>>)> =
        rows.iter().map(|r| (r.item.to_string(), r.chains.iter().map(|c| c.1).collect())).collect();
    use DeliveryState::*;
    assert_eq!(
        cells,
        vec![
            ("ev:1:1:0".into(), vec![Some(Confirmed), Some(Confirmed)]),
            ("ev:1:2:0".into(), vec![Some(Failed), None]),
            ("ev:1:3:0".into(), vec![Some(Pending), Some(Failed)]),
        ]
    );
    assert_eq!(rows[0].chains.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(), ["ten", "20"]);
    let json = serde_json::to_value(&rows[1]).expect("json");
    assert_eq!(
        json,
        serde_json::json!({"item": "ev:1:2:0", "target": "a", "chains": {"ten": "failed", "20": null}})
    );

    // Every target: b's batch comes after a's rows, with a's columns.
    let every = all(|emit| q.matrix(&DeliveryFilter::default(), emit));
    assert_eq!(every.len(), 4);
    assert_eq!((every[3].target.as_str(), every[3].chains[1].1), ("b", Some(Sent)));
    // A state keeps the items in it somewhere; a chain keeps one column.
    let failed = DeliveryFilter { state: Some(Failed), ..a.clone() };
    assert_eq!(all(|emit| q.matrix(&failed, emit)).len(), 2);
    let on_20 = DeliveryFilter { chain: Some(20), ..a };
    let rows = all(|emit| q.matrix(&on_20, emit));
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.chains.len() == 1));
}

#[test]
fn intents_walk_either_way_and_open_ones_filter() {
    let (_dir, path) = sample();
    let store = ReadStore::open(&path).expect("open");
    let q = DeliveryQuery::new(&store, names()).expect("query");
    let oldest = all(|emit| q.intents(IntentFilter::default(), Order::OldestFirst, emit));
    let key = |r: &IntentRow| (r.chain_id, r.nonce);
    assert_eq!(oldest.iter().map(key).collect::<Vec<_>>(), [(10, 0), (10, 1), (10, 2), (20, 0)]);
    let newest = all(|emit| q.intents(IntentFilter::default(), Order::NewestFirst, emit));
    assert_eq!(newest.iter().map(key).collect::<Vec<_>>(), [(20, 0), (10, 2), (10, 1), (10, 0)]);
    let open = all(|emit| q.intents(IntentFilter { chain: Some(10), open: true }, Order::OldestFirst, emit));
    assert_eq!(open.iter().map(key).collect::<Vec<_>>(), [(10, 2)]);
    let row = &open[0];
    assert_eq!(row.deliveries, ["a/ten/ev:1:3:0"]);
    assert_eq!((row.max_fee_gwei.as_str(), row.priority_fee_gwei.as_deref()), ("1.5", Some("0.000000007")));
    let json = serde_json::to_value(row).expect("json");
    assert_eq!(json["signer"], Address::repeat_byte(0xaa).to_checksum(None));
    assert_eq!(json["state"], "sent");
}

#[test]
fn a_damaged_record_is_an_error_not_a_panic() {
    let (_dir, path) = sample();
    {
        let store = Store::open(&path, None).expect("writer");
        store
            .write(|tx| {
                let mut table = tx.raw().open_table(tables::DELIVERIES).map_err(|e| failure(&path, e))?;
                let key = DeliveryKey { target: 0, chain: 10, item: ev(2) };
                table
                    .insert(key.to_bytes(), &[<Delivery as records::Record>::VERSION, 0xff][..])
                    .map_err(|e| failure(&path, e))?;
                Ok(())
            })
            .expect("write garbage");
    }
    let store = ReadStore::open(&path).expect("open");
    let q = DeliveryQuery::new(&store, BTreeMap::new()).expect("query");
    let err = q.deliveries(&DeliveryFilter::default(), &mut |_| ControlFlow::Continue(()));
    assert!(matches!(err, Err(StoreError::Damaged { .. })), "{err:?}");
    let err = q.matrix(&DeliveryFilter::default(), &mut |_| ControlFlow::Continue(()));
    assert!(matches!(err, Err(StoreError::Damaged { .. })), "{err:?}");
}
