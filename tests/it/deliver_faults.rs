//! The sender's fault handling through the real binary, on real anvil destinations (`docs/architecture.md` §4–5):
//! a stalled chain and replacements under the cap, a cap below the market, the operator's cancel,
//! the signer's key used outside ferry, a reorg that removes a receipt, a permanent revert with its
//! reason, a store held by `watch`, and the shape of the push report.
//!
//! The receiver's `record` accepts repeats and counts them, so "exactly once" is read from the
//! destination chain itself; transactions are read back from the chain by hash, never from ferry.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::consensus::{Transaction, TxEnvelope};
use alloy::eips::eip2718::Decodable2718;
use alloy::primitives::{Address, B256};
use alloy::sol_types::{SolCall, SolError};
use ferry::store::Store;
use ferry::store::keys::ItemKey;
use ferry::store::records::{Delivery, DeliveryState, TxIntent};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::deliver::{Net, view_u256};
use crate::support::command::{ferry_command, run};
use crate::support::devnet::{Anvil, DEV_ADDRESSES, IBatchReceiver};
use crate::support::hex::hex_u128;
use crate::support::output::text;
use crate::support::process::KillOnDrop;

use crate::deliver::RECORD_FN as RECORD;
const POST: &str = "function postBatch(uint64 height, bytes32 root)";
const GWEI: u128 = 1_000_000_000;

/// The address ferry signs with in these tests (`FERRY_TEST_SIGNER` is `DEV_KEYS[1]`).
fn signer() -> Address {
    DEV_ADDRESSES[1].parse().expect("an address")
}

/// Sets `key: value` in chain `d0` of the written ferry.yaml, replacing the key if it is there.
fn set_d0(dir: &Path, key: &str, value: &str) {
    let path = dir.join("ferry.yaml");
    let yaml = std::fs::read_to_string(&path).expect("ferry.yaml");
    let mut lines: Vec<String> = yaml.lines().map(str::to_string).collect();
    let start = lines.iter().position(|l| l == "  d0:").expect("chain d0 in ferry.yaml") + 1;
    let end = lines[start..].iter().position(|l| !l.starts_with("    ")).map_or(lines.len(), |i| start + i);
    let line = format!("    {key}: {value}");
    let prefix = format!("    {key}:");
    match lines[start..end].iter().position(|l| l.starts_with(&prefix)) {
        Some(i) => lines[start + i] = line,
        None => lines.insert(end, line),
    }
    std::fs::write(&path, lines.join("\n") + "\n").expect("ferry.yaml");
}

fn same_address(v: &Value, a: Address) -> bool {
    v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(&a.to_string()))
}

async fn nonce(anvil: &Anvil, tag: &str) -> u64 {
    hex_u128(&anvil.rpc("eth_getTransactionCount", json!([signer(), tag])).await) as u64
}

async fn set_base_fee(anvil: &Anvil, wei: u128) {
    anvil.rpc("anvil_setNextBlockBaseFeePerGas", json!([format!("{wei:#x}")])).await;
    // The next block carries it, and ferry reads the market from the latest block.
    anvil.mine(1).await;
}

/// `n` items to one destination whose base fee (50 gwei) is above the chain's fee cap (1 gwei,
/// bumps due after 2 s): nothing ferry sends can be mined until the market falls.
async fn under_the_market(n: u64) -> (Net, tempfile::TempDir) {
    let net = Net::start(1).await;
    net.emit(0, n).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), RECORD, "", None);
    set_d0(dir.path(), "gas", "{ max_fee_gwei: 1, bump_after: 2s }");
    set_base_fee(&net.dests[0].0, 50 * GWEI).await;
    (net, dir)
}

async fn total_recorded(anvil: &Anvil, receiver: Address) -> u64 {
    view_u256(anvil, receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await.to::<u64>()
}

async fn recorded_count(anvil: &Anvil, receiver: Address, height: u64) -> u64 {
    view_u256(anvil, receiver, IBatchReceiver::recordedCountCall { height }.abi_encode()).await.to::<u64>()
}

/// Every height in `heights` recorded exactly once on the receiver, and nothing else.
async fn assert_recorded_once(anvil: &Anvil, receiver: Address, heights: std::ops::Range<u64>) {
    let n = heights.end - heights.start;
    let mut counts = Vec::new();
    for h in heights.clone() {
        counts.push((h, recorded_count(anvil, receiver, h).await));
    }
    let total = total_recorded(anvil, receiver).await;
    assert!(
        total == n && counts.iter().all(|(_, c)| *c == 1),
        "expected heights {heights:?} recorded once each ({n} in all); total {total}, per height {counts:?}"
    );
}

/// The transactions behind the receiver's `Recorded` events on the current chain.
async fn recording_txs(anvil: &Anvil, receiver: Address) -> Vec<Value> {
    let logs = anvil
        .rpc("eth_getLogs", json!([{ "address": receiver, "fromBlock": "0x0", "toBlock": "latest" }]))
        .await;
    let mut txs = Vec::new();
    for log in logs.as_array().expect("logs") {
        let hash = log["transactionHash"].clone();
        txs.push(anvil.rpc("eth_getTransactionByHash", json!([hash])).await);
    }
    txs
}

/// Every transaction from ferry's signer on the current chain, in block order.
async fn signer_txs(anvil: &Anvil) -> Vec<Value> {
    let mut out = Vec::new();
    for b in 0..=anvil.block_number().await {
        let block = anvil.rpc("eth_getBlockByNumber", json!([format!("{b:#x}"), true])).await;
        for tx in block["transactions"].as_array().expect("transactions") {
            if same_address(&tx["from"], signer()) {
                out.push(tx.clone());
            }
        }
    }
    out
}

/// The signer's transactions in anvil's pool (pending and queued): (nonce, hash, max fee per gas).
async fn pool(anvil: &Anvil) -> Vec<(u64, String, u128)> {
    let content = anvil.rpc("txpool_content", json!([])).await;
    let mut out = Vec::new();
    for part in ["pending", "queued"] {
        let Some(by_sender) = content[part].as_object() else { continue };
        for (sender, by_nonce) in by_sender {
            if !sender.eq_ignore_ascii_case(&signer().to_string()) {
                continue;
            }
            for tx in by_nonce.as_object().expect("by nonce").values() {
                let fee = tx.get("maxFeePerGas").filter(|v| !v.is_null()).unwrap_or(&tx["gasPrice"]);
                out.push((
                    hex_u128(&tx["nonce"]) as u64,
                    tx["hash"].as_str().expect("hash").to_string(),
                    hex_u128(fee),
                ));
            }
        }
    }
    out.sort();
    out
}

/// Polls `ready` until it holds; panics naming `what` after `limit`.
async fn until(limit: Duration, what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if ready().await {
            return;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn chain<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["chains"]
        .as_array()
        .and_then(|chains| chains.iter().find(|c| c["chain"] == name))
        .unwrap_or_else(|| panic!("no chain {name} in the report: {report}"))
}

/// A ferry process running in the background, its output going to files in the test directory;
/// killed when dropped.
struct Background {
    child: KillOnDrop,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// How a background ferry ended.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    report: Value,
}

impl Finished {
    fn text(&self) -> String {
        format!("exit {:?}\nstdout:\n{}\nstderr:\n{}", self.code, self.stdout, self.stderr)
    }
}

fn spawn(dir: &Path, name: &str, args: &[&str]) -> Background {
    let stdout = dir.join(format!("{name}.stdout"));
    let stderr = dir.join(format!("{name}.stderr"));
    let child = KillOnDrop::spawn(
        ferry_command(dir)
            .args(args)
            .stdout(File::create(&stdout).expect("stdout file"))
            .stderr(File::create(&stderr).expect("stderr file")),
    );
    Background { child, stdout, stderr }
}

impl Background {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        self.child.running()
    }

    /// Waits up to `limit` for the process to end; a process still running then is killed and
    /// reported with no exit code.
    async fn finish(&mut self, limit: Duration) -> Finished {
        let code = self.child.wait_within(limit).await.and_then(|status| status.code());
        let stdout = std::fs::read_to_string(&self.stdout).unwrap_or_default();
        let stderr = self.log();
        let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        Finished { code, stdout, stderr, report }
    }
}

/// `ferry push --json --timeout <timeout>`, to the end.
fn push_for(dir: &Path, timeout: &str) -> Finished {
    let out = run(dir, &["push", "--json", "--timeout", timeout]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Finished {
        code: out.status.code(),
        report: serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Every delivery to `chain_id` in the test's store, with the `height` of its item. Opens the
/// store for writing: only while no ferry runs.
fn stored_deliveries(dir: &Path, chain_id: u64) -> Vec<(u64, Delivery)> {
    let store = Store::open(&dir.join("ferry.redb"), None).expect("the store opens");
    let mut out = Vec::new();
    for state in DeliveryState::ALL {
        for (key, delivery) in
            store.deliveries_in_state(chain_id, state, usize::MAX, |_, _| true).expect("deliveries")
        {
            let ItemKey::Event(event) = key.item else { panic!("not an event item: {key:?}") };
            let event = store.events(&[event]).expect("event").pop().flatten().expect("the item's event");
            let fields: Value =
                serde_json::from_str(event.fields.as_deref().expect("decoded fields")).expect("fields");
            let height = fields["height"]
                .as_str()
                .map(|s| s.parse::<u64>().expect("a height"))
                .or_else(|| fields["height"].as_u64())
                .expect("a height field");
            out.push((height, delivery));
        }
    }
    out.sort_by_key(|(h, _)| *h);
    out
}

/// The signer's intents on `chain_id`, by nonce.
fn stored_intents(dir: &Path, chain_id: u64) -> Vec<(u64, TxIntent)> {
    let store = Store::open(&dir.join("ferry.redb"), None).expect("the store opens");
    store.intents_from(chain_id, signer(), 0).expect("intents")
}

/// The height a signed `record(height, root)` transaction carries.
fn recorded_height(raw: &[u8]) -> u64 {
    let envelope = TxEnvelope::decode_2718(&mut &raw[..]).expect("a signed transaction");
    IBatchReceiver::recordCall::abi_decode(envelope.input()).expect("a record call").height
}

/// 1. With mining stopped, ferry's transactions wait in the pool; after `bump_after` they are
/// replaced at the same nonces with higher fees, under the cap; once mining resumes each item
/// lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_chain_gets_replacements_under_the_cap_and_every_item_lands_once() {
    const N: u64 = 4;
    const CAP: u128 = 50 * GWEI;
    let net = Net::start(1).await;
    let (anvil, receiver) = &net.dests[0];
    net.emit(0, N).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), RECORD, "", None);
    set_d0(dir.path(), "gas", "{ max_fee_gwei: 50, bump_after: 2s, bump_percent: 15 }");
    anvil.rpc("evm_setAutomine", json!([false])).await;

    let mut push = spawn(dir.path(), "push", &["push", "--json", "--timeout", "60s"]);
    until(Duration::from_secs(30), "ferry's transactions in the pool", async || {
        nonce(anvil, "pending").await == N
    })
    .await;
    let first = pool(anvil).await;
    eprintln!("pool before replacements: {first:?}");
    let first_max = first.iter().map(|(_, _, fee)| *fee).max().expect("transactions in the pool");
    let first_hashes: Vec<String> = first.iter().map(|(_, h, _)| h.clone()).collect();
    // Replacements: new hashes at the same nonces, with higher fees.
    until(Duration::from_secs(20), "a replacement in the pool", async || {
        pool(anvil).await.iter().any(|(_, h, fee)| !first_hashes.contains(h) && *fee > first_max)
            || push.log().contains("replacing")
    })
    .await;
    assert_eq!(total_recorded(anvil, *receiver).await, 0, "nothing is mined while mining is off");
    eprintln!("pool after a replacement: {:?}", pool(anvil).await);

    anvil.rpc("evm_setAutomine", json!([true])).await;
    anvil.mine(1).await;
    let done = push.finish(Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    let d0 = chain(&done.report, "d0");
    assert!(d0["bumps"].as_u64().is_some_and(|b| b > 0), "replacements are counted: {d0}");
    assert_eq!(d0["confirmed"], N, "{d0}");
    assert_recorded_once(anvil, *receiver, 0..N).await;
    let txs = recording_txs(anvil, *receiver).await;
    assert_eq!(txs.len() as u64, N);
    for tx in &txs {
        assert!(same_address(&tx["from"], signer()), "{tx}");
        assert!(hex_u128(&tx["maxFeePerGas"]) <= CAP, "a mined transaction above the cap: {tx}");
    }
    assert_eq!((nonce(anvil, "latest").await, nonce(anvil, "pending").await), (N, N), "no nonce gap");
}

/// 2. A cap below the base fee: push waits, says why in the report and on stderr, exits 4 and
/// lands nothing; once the market falls under the cap, the next push delivers every item once,
/// with no nonce gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_below_the_market_waits_says_so_and_delivers_once_the_market_falls() {
    const N: u64 = 3;
    let (net, dir) = under_the_market(N).await;
    let (anvil, receiver) = &net.dests[0];

    let done = push_for(dir.path(), "10s");
    assert_eq!(done.code, Some(4), "{}", done.text());
    let d0 = chain(&done.report, "d0");
    let problem = d0["problem"]["message"].as_str().unwrap_or_default();
    assert!(problem.contains("fee cap"), "the report says the chain waits at the fee cap: {d0}");
    assert_eq!(d0["problem"]["code"], "fee_cap_below_base_fee", "{d0}");
    assert!(d0["left"].as_u64().is_some_and(|l| l == N), "{d0}");
    assert!(done.stderr.contains("fee cap"), "stderr says it waits at the fee cap: {}", done.stderr);
    assert_eq!(total_recorded(anvil, *receiver).await, 0);
    assert_eq!(nonce(anvil, "latest").await, 0);

    // The market falls under the cap.
    set_base_fee(anvil, GWEI / 10).await;
    let done = push_for(dir.path(), "30s");
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(chain(&done.report, "d0")["confirmed"], N, "{}", done.report);
    assert_recorded_once(anvil, *receiver, 0..N).await;
    let latest = nonce(anvil, "latest").await;
    assert_eq!((latest, nonce(anvil, "pending").await), (N, N), "no nonce gap, nothing left in the pool");
    assert_eq!(signer_txs(anvil).await.len() as u64, latest, "every nonce used by one mined transaction");
}

/// 2b. The same refusal while one push runs (what `watch` lives with): the node refused the
/// transactions under its base fee, so nothing of ferry's is in any pool; when the base fee falls
/// under the cap, they must go out without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_refused_under_the_base_fee_goes_out_when_the_market_falls_during_the_run() {
    const N: u64 = 2;
    let (net, dir) = under_the_market(N).await;
    let (anvil, receiver) = &net.dests[0];

    let mut push = spawn(dir.path(), "push", &["push", "--json", "--timeout", "30s"]);
    until(Duration::from_secs(20), "ferry at the fee cap", async || push.log().contains("fee cap")).await;
    // Past bump_after: the worker has found them at the cap and waits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(pool(anvil).await.is_empty(), "the node refused them: nothing in its pool");
    set_base_fee(anvil, GWEI / 10).await;

    let done = push.finish(Duration::from_secs(45)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_recorded_once(anvil, *receiver, 0..N).await;
}

/// 3. The operator cancels a transaction stuck under the cap: a zero-value self-send at its nonce
/// takes the nonce, the item is not delivered, and its delivery fails for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_cancel_takes_the_nonce_with_a_self_send_and_fails_the_delivery() {
    const N: u64 = 2;
    let (net, dir) = under_the_market(N).await;
    let (anvil, receiver) = &net.dests[0];
    let done = push_for(dir.path(), "8s");
    assert_eq!(done.code, Some(4), "{}", done.text());
    assert_eq!(nonce(anvil, "latest").await, 0);

    // Which item waits at nonce 0, from ferry's own record of what it signed.
    let intents = stored_intents(dir.path(), anvil.chain_id());
    let (_, stuck) = intents.iter().find(|(n, _)| *n == 0).expect("an intent at nonce 0");
    let cancelled = recorded_height(&stuck.raw);

    let out = run(
        dir.path(),
        &["inspect-store", "cancel", "--chain", "d0", "--nonce", "0", "--max-fee-gwei", "200", "--yes"],
    );
    assert!(out.status.success(), "inspect-store cancel: {}", text(&out));

    let done = push_for(dir.path(), "15s");
    // The other item still waits under the cap, and a failed delivery is work left: exit 4.
    assert_eq!(done.code, Some(4), "{}", done.text());
    let d0 = chain(&done.report, "d0");
    assert_eq!(d0["failed"], 1, "the cancelled delivery failed: {d0}");
    let txs = signer_txs(anvil).await;
    let at_zero = txs.iter().find(|tx| hex_u128(&tx["nonce"]) == 0).expect("nonce 0 mined");
    assert!(same_address(&at_zero["to"], signer()), "nonce 0 went to a self-send: {at_zero}");
    assert_eq!(hex_u128(&at_zero["value"]), 0, "{at_zero}");
    assert_eq!(recorded_count(anvil, *receiver, cancelled).await, 0, "the cancelled item is not delivered");
    let deliveries = stored_deliveries(dir.path(), anvil.chain_id());
    let (_, d) = deliveries.iter().find(|(h, _)| *h == cancelled).expect("the cancelled delivery");
    assert_eq!(d.state, DeliveryState::Failed, "{d:?}");
    assert!(!d.retryable, "a cancel is final: {d:?}");
    assert_eq!(d.reason.as_deref(), Some("cancelled by the operator"), "{d:?}");

    // The market falls: the other item goes out; the cancelled one stays failed and unsent.
    set_base_fee(anvil, GWEI / 10).await;
    let done = push_for(dir.path(), "20s");
    assert_eq!(done.code, Some(4), "a failed delivery is work left: {}", done.text());
    let d0 = chain(&done.report, "d0");
    assert_eq!((d0["failed"].clone(), d0["confirmed"].clone()), (1.into(), 1.into()), "{d0}");
    let other = (0..N).find(|h| *h != cancelled).expect("another height");
    assert_eq!(recorded_count(anvil, *receiver, other).await, 1);
    assert_eq!(recorded_count(anvil, *receiver, cancelled).await, 0);
    assert_eq!(total_recorded(anvil, *receiver).await, 1);
}

/// 4a. A transaction from ferry's key sent outside ferry between two pushes: the next push starts
/// from the chain's nonce and delivers everything once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_transaction_from_the_same_key_between_pushes_is_stepped_over() {
    let net = Net::start(1).await;
    let (anvil, receiver) = &net.dests[0];
    net.emit(0, 5).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), RECORD, "", None);
    let done = push_for(dir.path(), "30s");
    assert_eq!(done.code, Some(0), "{}", done.text());

    let hash =
        anvil.rpc("eth_sendTransaction", json!([{ "from": signer(), "to": signer(), "value": "0x0" }])).await;
    anvil.receipt(hash.as_str().expect("a hash")).await;
    net.emit(5, 5).await;
    let done = push_for(dir.path(), "30s");
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(chain(&done.report, "d0")["confirmed"], 10, "{}", done.report);
    assert_recorded_once(anvil, *receiver, 0..10).await;
    assert_eq!((nonce(anvil, "latest").await, nonce(anvil, "pending").await), (11, 11));
}

/// 4b. An outside transaction takes the nonce of a transaction ferry has signed and broadcast but
/// not yet seen mined: ferry's can never land; ferry notices, delivers the item again at a new
/// nonce, and every item lands exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_transaction_taking_ferrys_nonce_sends_the_delivery_again_at_a_new_nonce() {
    const N: u64 = 5;
    let net = Net::start(1).await;
    let (anvil, receiver) = &net.dests[0];
    net.emit(0, N).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), RECORD, "", None);
    anvil.rpc("evm_setAutomine", json!([false])).await;

    let mut push = spawn(dir.path(), "push", &["push", "--json", "--timeout", "60s"]);
    until(Duration::from_secs(30), "ferry's transactions in the pool", async || {
        nonce(anvil, "pending").await == N
    })
    .await;
    // The same key, outside ferry, replaces ferry's nonce 0 in the pool with higher fees: ferry's
    // transaction there can never land, while its nonces 1.. stay valid.
    let ours: Vec<String> = pool(anvil).await.into_iter().map(|(_, h, _)| h).collect();
    assert_eq!(ours.len() as u64, N, "{ours:?}");
    let mut tx = json!({ "from": signer(), "to": signer(), "value": "0x0", "nonce": "0x0" });
    tx["maxFeePerGas"] = json!(format!("{:#x}", 100 * GWEI));
    tx["maxPriorityFeePerGas"] = json!(format!("{:#x}", 50 * GWEI));
    let outside = anvil.rpc("eth_sendTransaction", json!([tx])).await;
    anvil.rpc("evm_setAutomine", json!([true])).await;
    anvil.mine(1).await;
    let receipt = anvil.receipt(outside.as_str().expect("a hash")).await;
    assert_eq!(receipt["status"], "0x1", "{receipt}");

    let done = push.finish(Duration::from_secs(60)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(chain(&done.report, "d0")["confirmed"], N, "{}", done.report);
    assert_recorded_once(anvil, *receiver, 0..N).await;
    let at_zero =
        signer_txs(anvil).await.into_iter().find(|tx| hex_u128(&tx["nonce"]) == 0).expect("nonce 0");
    assert_eq!(at_zero["hash"], outside, "nonce 0 is the outside transaction");
    assert_eq!((nonce(anvil, "latest").await, nonce(anvil, "pending").await), (N + 1, N + 1));
}

/// 5. A reorg on the destination removes blocks holding ferry's mined, not yet confirmed
/// transactions: ferry sees the receipts gone, sends the same transactions again, and each item
/// is recorded exactly once on the final chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reorg_that_removes_receipts_sends_again_and_every_item_lands_once() {
    const N: u64 = 3;
    let net = Net::start(1).await;
    let (anvil, receiver) = &net.dests[0];
    net.emit(0, N).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), RECORD, "", None);
    set_d0(dir.path(), "confirmations", "5");

    let mut push = spawn(dir.path(), "push", &["push", "--json", "--timeout", "60s"]);
    until(Duration::from_secs(30), "the items recorded", async || {
        total_recorded(anvil, *receiver).await == N
    })
    .await;
    let logs = anvil
        .rpc("eth_getLogs", json!([{ "address": receiver, "fromBlock": "0x0", "toBlock": "latest" }]))
        .await;
    let first = logs.as_array().expect("logs").iter().map(|l| hex_u128(&l["blockNumber"]) as u64).min();
    let first = first.expect("Recorded logs");
    let head = anvil.block_number().await;
    assert!(head + 1 < first + 5, "not yet confirmed when the reorg comes (first {first}, head {head})");
    let depth = head - first + 1;
    anvil.rpc("anvil_reorg", json!([depth, []])).await;
    assert_eq!(total_recorded(anvil, *receiver).await, 0, "the reorg removed the recording blocks");

    let deadline = Instant::now() + Duration::from_secs(60);
    while push.running() {
        assert!(Instant::now() < deadline, "push did not end within 60s of the reorg:\n{}", push.log());
        anvil.mine(1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let done = push.finish(Duration::from_secs(5)).await;
    assert_eq!(done.code, Some(0), "{}", done.text());
    assert_eq!(chain(&done.report, "d0")["confirmed"], N, "{}", done.report);
    assert_recorded_once(anvil, *receiver, 0..N).await;
    assert_eq!((nonce(anvil, "latest").await, nonce(anvil, "pending").await), (N, N));
}

/// 6. A revert that is not "already there" fails the delivery for good with its decoded reason;
/// the next push sends nothing for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_revert_fails_the_delivery_with_its_reason_and_is_not_retried() {
    let net = Net::start(1).await;
    let (anvil, receiver) = &net.dests[0];
    // Heights 0 and 1 are posted already; BatchAlreadyExists is not configured as "already there".
    for height in [0u64, 1] {
        anvil
            .send(
                *receiver,
                IBatchReceiver::postBatchCall { height, root: B256::repeat_byte(1) }.abi_encode(),
            )
            .await;
    }
    net.emit(0, 4).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), POST, "", None);
    let posted = async || {
        view_u256(anvil, *receiver, IBatchReceiver::postedCountCall {}.abi_encode()).await.to::<u64>()
    };

    let done = push_for(dir.path(), "20s");
    assert_eq!(done.code, Some(4), "failed deliveries are work left: {}", done.text());
    let d0 = chain(&done.report, "d0");
    assert_eq!((d0["failed"].clone(), d0["confirmed"].clone()), (2.into(), 2.into()), "{d0}");
    assert_eq!(d0["transactions"], 2, "no transaction for what fails in simulation: {d0}");
    assert_eq!(posted().await, 4);

    // The stored reason names the error and its argument: decoded, or as the selector with the
    // argument's ABI words when the config does not declare the error.
    let selector = alloy::primitives::hex::encode(IBatchReceiver::BatchAlreadyExists::SELECTOR);
    let names = |reason: &str, height: u64| {
        let word = format!("{}{height:x}", "0".repeat(63));
        reason.contains(&format!("BatchAlreadyExists({height})"))
            || (reason.contains(&selector) && reason.contains(&word))
    };
    let deliveries = stored_deliveries(dir.path(), anvil.chain_id());
    for height in [0u64, 1] {
        let (_, d) = deliveries.iter().find(|(h, _)| *h == height).expect("a delivery");
        assert_eq!(d.state, DeliveryState::Failed, "{d:?}");
        assert!(!d.retryable, "a revert is permanent: {d:?}");
        let reason = d.reason.as_deref().unwrap_or_default();
        assert!(names(reason, height), "the stored reason names the error and its argument: {reason:?}");
        // The operator sees it without opening the store: on stderr or in the JSON report.
        assert!(
            names(&done.text(), height),
            "push's output names height {height}'s revert (stored as {reason:?}):\n{}",
            done.text()
        );
    }

    let before = nonce(anvil, "latest").await;
    let done = push_for(dir.path(), "10s");
    assert_eq!(done.code, Some(4), "{}", done.text());
    let d0 = chain(&done.report, "d0");
    assert_eq!(d0["transactions"], 0, "a permanent failure is not retried: {d0}");
    assert_eq!(d0["failed"], 2, "{d0}");
    assert_eq!(nonce(anvil, "latest").await, before);
    assert_eq!(posted().await, 4);
}

/// 7. `watch` holds the store: `push` exits 5 (busy, not a store to repair: 3) naming the holder,
/// and `watch` stops on SIGINT with 130.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_exits_5_naming_the_watch_that_holds_the_store() {
    let net = Net::start(1).await;
    net.emit(0, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), RECORD, "", None);

    let mut watch = spawn(dir.path(), "watch", &["watch"]);
    let store = dir.path().join("ferry.redb");
    until(Duration::from_secs(30), "watch running", async || {
        store.exists() && watch.log().contains("watching")
    })
    .await;
    assert!(watch.running(), "{}", watch.log());

    let done = push_for(dir.path(), "10s");
    assert_eq!(done.code, Some(5), "a store held by another ferry is busy, not unusable: {}", done.text());
    assert!(done.stderr.contains("store busy"), "{}", done.text());
    let holder = format!("pid {}", watch.pid());
    assert!(done.stderr.contains(&holder), "the message names the holder ({holder}): {}", done.text());

    assert!(watch.child.signal("INT"));
    let stopped = watch.finish(Duration::from_secs(20)).await;
    assert_eq!(stopped.code, Some(130), "{}", stopped.text());
    let done = push_for(dir.path(), "30s");
    assert_eq!(done.code, Some(0), "the store is free again: {}", done.text());
}

/// 8. The push report's JSON shape, which scripts rely on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_report_has_the_documented_shape() {
    let net = Net::start(1).await;
    net.emit(0, 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), RECORD, "", None);
    let done = push_for(dir.path(), "30s");
    assert_eq!(done.code, Some(0), "{}", done.text());
    let report = &done.report;

    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        k.sort();
        k
    };
    let sorted = |k: &[&str]| {
        let mut k: Vec<String> = k.iter().map(|s| s.to_string()).collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(report),
        sorted(&["v", "kind", "seconds", "dry_run", "synced", "chains", "exit"]),
        "{report}"
    );
    assert_eq!((report["v"].clone(), report["kind"].clone()), (1.into(), "push".into()), "{report}");
    assert!(report["seconds"].as_f64().is_some_and(|s| s >= 0.0), "{report}");
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["exit"], 0);
    let synced = report["synced"].as_array().expect("synced");
    assert_eq!(synced.len(), 1, "{report}");
    assert_eq!(keys(&synced[0]), sorted(&["source", "code", "error"]));
    assert_eq!((synced[0]["source"].clone(), synced[0]["error"].clone()), ("batches".into(), Value::Null));
    assert_eq!(synced[0]["code"], Value::Null, "a synced source has no problem code");

    let chains = report["chains"].as_array().expect("chains");
    assert_eq!(chains.len(), 1, "{report}");
    let c = &chains[0];
    let mut chain_keys = keys(c);
    chain_keys.retain(|k| k != "would_send");
    assert_eq!(
        chain_keys,
        sorted(&[
            "chain",
            "signer",
            "pending",
            "sending",
            "sent",
            "confirmed",
            "skipped",
            "failed",
            "left",
            "transactions",
            "bumps",
            "next_nonce",
            "problem",
        ]),
        "{c}"
    );
    assert_eq!(c["chain"], "d0");
    assert_eq!(c["signer"], DEV_ADDRESSES[1], "the signer in its checksummed form");
    for (key, want) in [
        ("pending", 0),
        ("sending", 0),
        ("sent", 0),
        ("confirmed", 2),
        ("skipped", 0),
        ("failed", 0),
        ("left", 0),
        ("transactions", 2),
        ("bumps", 0),
        ("next_nonce", 2),
    ] {
        assert_eq!(c[key].as_u64(), Some(want), "{key} in {c}");
    }
    assert_eq!(c["problem"], Value::Null, "{c}");
}
