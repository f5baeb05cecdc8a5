//! [`LagProxy`] itself: what a lagging backend hides, and a plan changed at run time.

use std::sync::atomic::Ordering::Relaxed;

use alloy::primitives::{Bytes, U256};
use alloy::sol_types::SolCall;
use serde_json::{Value, json};

use crate::support::devnet::{Anvil, DEV_ADDRESSES, IEventEmitter};
use crate::support::hex::{hex_u64, quantity as hex};
use crate::support::lagproxy::{HEAD_CACHE, LagPlan, LagProxy, post_json, rpc_at};

async fn through(proxy: &LagProxy, method: &str, params: Value) -> Value {
    rpc_at(&proxy.url(), method, params).await.unwrap_or_else(|e| panic!("{method}: {e}"))
}

/// Lets the proxy's head cache expire after the chain moved.
async fn settle() {
    tokio::time::sleep(HEAD_CACHE * 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_number_and_blocks_lag_and_the_plan_changes_at_run_time() {
    let anvil = Anvil::start(31337).await;
    anvil.mine(10).await;
    let proxy = LagProxy::start(anvil.url(), LagPlan::uniform(3)).await;
    assert_eq!(hex_u64(&through(&proxy, "eth_blockNumber", json!([])).await), 7);
    assert_eq!(through(&proxy, "eth_getBlockByNumber", json!(["0x8", false])).await, Value::Null);
    assert_eq!(hex_u64(&through(&proxy, "eth_getBlockByNumber", json!(["0x7", false])).await["number"]), 7);
    assert_eq!(
        hex_u64(&through(&proxy, "eth_getBlockByNumber", json!(["latest", false])).await["number"]),
        7
    );
    assert!(
        hex_u64(&through(&proxy, "eth_getBlockByNumber", json!(["finalized", false])).await["number"]) <= 7
    );
    let head = anvil.rpc("eth_getBlockByNumber", json!(["0xa", false])).await;
    assert_eq!(through(&proxy, "eth_getBlockByHash", json!([head["hash"], false])).await, Value::Null);
    assert_eq!(proxy.stats.hidden_blocks.load(Relaxed), 2);
    // An unknown method passes unchanged.
    assert_eq!(hex_u64(&through(&proxy, "eth_chainId", json!([])).await), 31337);

    // Two backends, 0 and 5 behind: both answer, nothing else does.
    proxy.set_plan(LagPlan::backends(&[0, 5], 11));
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        seen.insert(hex_u64(&through(&proxy, "eth_blockNumber", json!([])).await));
    }
    assert_eq!(seen, [5, 10].into(), "heads seen through two backends");
    let served = proxy.stats.by_backend();
    assert!(served.len() == 2 && served.iter().all(|&c| c > 0), "{served:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_is_hidden_until_two_more_blocks_and_the_nonce_reads_at_the_lagging_head() {
    let anvil = Anvil::start(31337).await;
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    let proxy =
        LagProxy::start(anvil.url(), LagPlan::uniform(0).with_method_lag("eth_getTransactionReceipt", 2))
            .await;
    let receipt = anvil.send(emitter, IEventEmitter::emitManyCall { n: U256::from(1) }.abi_encode()).await;
    let hash = receipt["transactionHash"].clone();
    let mined = hex_u64(&receipt["blockNumber"]);
    settle().await;
    // The head itself does not lag: only the receipt does.
    assert_eq!(hex_u64(&through(&proxy, "eth_blockNumber", json!([])).await), mined);
    assert_eq!(through(&proxy, "eth_getTransactionReceipt", json!([hash])).await, Value::Null);
    assert_eq!(proxy.stats.hidden_receipts.load(Relaxed), 1);
    let tx = through(&proxy, "eth_getTransactionByHash", json!([hash])).await;
    assert_eq!(hex_u64(&tx["blockNumber"]), mined, "only receipts lag in this plan");

    anvil.mine(1).await;
    settle().await;
    assert_eq!(through(&proxy, "eth_getTransactionReceipt", json!([hash])).await, Value::Null);
    anvil.mine(1).await;
    settle().await;
    let seen = through(&proxy, "eth_getTransactionReceipt", json!([hash])).await;
    assert_eq!(hex_u64(&seen["blockNumber"]), mined, "visible two blocks later: {seen}");

    // A whole backend 2 behind: the transaction looks pending, the nonce is the old one,
    // and a block above its head is not there.
    let before = hex_u64(&anvil.rpc("eth_getTransactionCount", json!([DEV_ADDRESSES[0], "latest"])).await);
    let receipt = anvil.send(emitter, IEventEmitter::emitManyCall { n: U256::from(1) }.abi_encode()).await;
    let head = hex_u64(&receipt["blockNumber"]);
    proxy.set_plan(LagPlan::uniform(2));
    settle().await;
    let tx = through(&proxy, "eth_getTransactionByHash", json!([receipt["transactionHash"]])).await;
    assert!(tx["blockNumber"].is_null() && tx["blockHash"].is_null(), "{tx}");
    assert_eq!(tx["hash"], receipt["transactionHash"]);
    let count = |tag: Value| through(&proxy, "eth_getTransactionCount", json!([DEV_ADDRESSES[0], tag]));
    assert_eq!(hex_u64(&count(json!("latest")).await), before, "the count at block {}", head - 2);
    assert_eq!(hex_u64(&count(json!("pending")).await), before + 1, "pending passes unchanged");
    let refused = rpc_at(&proxy.url(), "eth_getTransactionCount", json!([DEV_ADDRESSES[0], hex(head)]))
        .await
        .expect_err("a block above the backend's head");
    assert_eq!(refused, json!({ "code": -32000, "message": "header not found" }));
    // eth_call at latest reads block h: the emitter's seq before the last two calls.
    let seq = alloy::primitives::keccak256("seq()")[..4].to_vec();
    let call = json!([{ "to": emitter, "data": Bytes::from(seq) }]);
    let seq_at = |v: &Value| U256::from_str_radix(v.as_str().expect("hex").trim_start_matches("0x"), 16);
    assert_eq!(seq_at(&through(&proxy, "eth_call", call).await).expect("uint"), U256::from(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_cut_at_the_lagging_head_and_a_batch_is_answered_as_an_array() {
    let anvil = Anvil::start(31337).await;
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    for _ in 0..5 {
        anvil.send(emitter, IEventEmitter::emitManyCall { n: U256::from(2) }.abi_encode()).await;
    }
    let head = anvil.block_number().await;
    let proxy = LagProxy::start(anvil.url(), LagPlan::uniform(2)).await;
    let filter = |from: Value, to: Value| json!([{ "fromBlock": from, "toBlock": to, "address": emitter }]);
    let direct = anvil.rpc("eth_getLogs", filter(json!("0x0"), json!("latest"))).await;
    let direct = direct.as_array().expect("logs");
    assert_eq!(direct.len(), 10);
    let below: Vec<&Value> = direct.iter().filter(|l| hex_u64(&l["blockNumber"]) <= head - 2).collect();
    assert_eq!(below.len(), 6);

    let logs = through(&proxy, "eth_getLogs", filter(json!("0x0"), json!("latest"))).await;
    assert_eq!(logs.as_array().expect("logs").iter().collect::<Vec<_>>(), below, "cut at the head − 2");
    let logs = through(&proxy, "eth_getLogs", filter(json!("0x0"), hex(head))).await;
    assert_eq!(logs.as_array().expect("logs").len(), 6, "a number above the head is cut too");
    let logs = through(&proxy, "eth_getLogs", filter(hex(head - 1), hex(head))).await;
    assert_eq!(logs, json!([]), "a range above the head: no error, no logs");
    assert_eq!(proxy.stats.clamped_logs.load(Relaxed), 3);
    let top = anvil.rpc("eth_getBlockByNumber", json!(["latest", false])).await;
    let refused = rpc_at(&proxy.url(), "eth_getLogs", json!([{ "blockHash": top["hash"] }]))
        .await
        .expect_err("a block above the head");
    assert_eq!(refused, json!({ "code": -32000, "message": "unknown block" }));
    let old = anvil.rpc("eth_getBlockByNumber", json!([hex(head - 2), false])).await;
    let logs = through(&proxy, "eth_getLogs", json!([{ "blockHash": old["hash"] }])).await;
    assert_eq!(logs.as_array().expect("logs").len(), 2);

    // A batch: one backend answers every element, in order, as an array.
    let batch = json!([
        { "jsonrpc": "2.0", "id": 7, "method": "eth_blockNumber", "params": [] },
        { "jsonrpc": "2.0", "id": "b", "method": "eth_chainId", "params": [] },
        { "jsonrpc": "2.0", "id": 9, "method": "eth_getBlockByNumber", "params": [hex(head), false] },
    ]);
    let answers = post_json(&proxy.url(), &batch).await;
    let answers = answers.as_array().expect("a batch is answered as an array");
    assert_eq!(answers.len(), 3);
    assert_eq!((answers[0]["id"].clone(), hex_u64(&answers[0]["result"])), (json!(7), head - 2));
    assert_eq!((answers[1]["id"].clone(), hex_u64(&answers[1]["result"])), (json!("b"), 31337));
    assert_eq!((answers[2]["id"].clone(), answers[2]["result"].clone()), (json!(9), Value::Null));
    assert_eq!(proxy.stats.requests.load(Relaxed), 6);
    assert_eq!(proxy.stats.calls.load(Relaxed), 8);
}
