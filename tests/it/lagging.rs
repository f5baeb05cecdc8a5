//! RPCs that lag behind the head, as a load balancer over nodes a few blocks apart does, through
//! the real binary ([`LagProxy`] in front of real anvil nodes):
//!
//! - a destination whose receipts show up two blocks after the nonce count moved on: every item
//!   is still delivered once, with one nonce each;
//! - a source read through backends 0 and 2 blocks behind, at the tip (`confirmations: 0`): what
//!   `watch` and each `backfill` store is exactly what the chain has up to the store's cursor.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolCall;
use serde_json::{Value, json};

use crate::deliver::{Net, view_u256};
use crate::support::command::{ferry_command, run_within};
use crate::support::devnet::{Anvil, DEV_ADDRESSES, IBatchReceiver, IEventEmitter};
use crate::support::hex::hex_u64;
use crate::support::lagproxy::{LagPlan, LagProxy};
use crate::support::output::{json_lines, last_lines, text};
use crate::support::process::KillOnDrop;

const PING: &str = "event Ping(uint256 indexed seq, address indexed from, bytes32 data)";
const BATCH_READY: &str = "event BatchReady(uint64 indexed height, bytes32 root)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_receipts_never_make_a_second_delivery() {
    const ITEMS: u64 = 300;
    let source = Anvil::start(31337).await;
    let emitter = source.deploy("EventEmitter", &[]).await;
    // A destination that makes blocks on its own, once a second, as a real chain does.
    let dest = Anvil::start_with(41000, &["--block-time", "1"]).await;
    let receiver = dest.deploy("BatchReceiver", &[]).await;
    let net = Net { source, emitter, dests: vec![(dest, receiver)] };
    net.emit(0, ITEMS).await;
    let (dest, receiver) = &net.dests[0];

    // The head and the nonce count are current; receipts come two blocks late.
    let plan = LagPlan::uniform(0).with_method_lag("eth_getTransactionReceipt", 2);
    let proxy = LagProxy::start(dest.url(), plan).await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", None);
    let config = dir.path().join("ferry.yaml");
    let yaml = std::fs::read_to_string(&config).expect("config");
    let direct = format!("\"{}\"", dest.url());
    assert!(yaml.contains(&direct), "{yaml}");
    std::fs::write(&config, yaml.replace(&direct, &format!("\"{}\"", proxy.url()))).expect("config");

    let started = Instant::now();
    let out =
        run_within(dir.path(), &["push", "--json", "--timeout", "120s"], Duration::from_secs(200)).await;
    let took = started.elapsed();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);

    // Everything the chain says, straight from the node.
    let total = view_u256(dest, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await;
    let mut not_once = BTreeMap::new();
    for height in 0..ITEMS {
        let count =
            view_u256(dest, *receiver, IBatchReceiver::recordedCountCall { height }.abi_encode()).await;
        if count != U256::from(1) {
            not_once.insert(height, count);
        }
    }
    let nonce = hex_u64(&dest.rpc("eth_getTransactionCount", json!([DEV_ADDRESSES[1], "latest"])).await);
    let chain = &report["chains"][0];
    let hidden = proxy.stats.hidden_receipts.load(Ordering::Relaxed);
    let figures = format!(
        "push exit {:?} after {took:.1?}; report {chain}; totalRecorded {total} for {ITEMS} items; \
         {} heights not recorded exactly once; signer nonce {nonce}; {hidden} receipts hidden",
        out.status.code(),
        not_once.len(),
    );
    eprintln!("lagging receipts: {figures}");
    if !not_once.is_empty() {
        let sample: Vec<_> = not_once.iter().take(10).collect();
        eprintln!("lagging receipts: first heights not recorded once (height, count): {sample:?}");
    }

    assert_eq!(total, U256::from(ITEMS), "{figures}");
    assert!(not_once.is_empty(), "heights not recorded exactly once: {not_once:?}; {figures}");
    assert_eq!(nonce, ITEMS, "one nonce per item: {figures}");
    assert_eq!(out.status.code(), Some(0), "{figures}\n{}", text(&out));
    assert_eq!(chain["confirmed"], ITEMS, "{figures}");
    assert_eq!(chain["left"], 0, "{figures}");
    assert!(hidden > 0, "the proxy hid no receipt: the test proves nothing. {figures}");
}

/// Transactions with events, several per block, and a block every `every`, on a node that does
/// not mine by itself; until stopped.
struct Traffic {
    stop: Arc<AtomicBool>,
    blocks: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    fn start(anvil: Arc<Anvil>, emitter: Address, first_height: u64, every: Duration) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let blocks = Arc::new(AtomicU64::new(0));
        let (stopping, mined) = (stop.clone(), blocks.clone());
        let task = tokio::spawn(async move {
            let mut height = first_height;
            while !stopping.load(Ordering::Relaxed) {
                let calls = [
                    IEventEmitter::emitManyCall { n: U256::from(3) }.abi_encode(),
                    IEventEmitter::emitBatchesCall { from: height, n: 2 }.abi_encode(),
                    IEventEmitter::emitManyCall { n: U256::from(1) }.abi_encode(),
                ];
                height += 2;
                for data in calls {
                    let tx = json!({ "from": DEV_ADDRESSES[0], "to": emitter, "data": Bytes::from(data) });
                    anvil.rpc("eth_sendTransaction", json!([tx])).await;
                }
                anvil.rpc("evm_mine", json!([])).await;
                mined.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(every).await;
            }
        });
        Traffic { stop, blocks, task }
    }

    /// Waits (bounded) until `n` blocks were made.
    async fn wait_blocks(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.blocks.load(Ordering::Relaxed) < n {
            assert!(!self.task.is_finished(), "the traffic task stopped");
            assert!(Instant::now() < deadline, "{n} blocks of traffic were not made within 60s");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the traffic task stops within 30s")
            .expect("the traffic task did not panic");
        self.blocks.load(Ordering::Relaxed)
    }
}

type LogId = (u64, u64, String);

/// `(block, log index, tx hash)` of every log `emitter` emitted in blocks `0..=to`, straight
/// from the node.
async fn chain_logs(anvil: &Anvil, emitter: Address, to: u64) -> BTreeSet<LogId> {
    let filter = json!([{ "fromBlock": "0x0", "toBlock": format!("{to:#x}"), "address": emitter }]);
    let logs = anvil.rpc("eth_getLogs", filter).await;
    logs.as_array()
        .expect("logs")
        .iter()
        .map(|l| {
            let tx = l["transactionHash"].as_str().expect("tx hash").to_lowercase();
            (hex_u64(&l["blockNumber"]), hex_u64(&l["logIndex"]), tx)
        })
        .collect()
}

/// The same for what the store holds (`ferry export events`), and how many rows it printed.
async fn stored_logs(dir: &Path, emitter: Address) -> (BTreeSet<LogId>, usize) {
    let out = run_within(dir, &["export", "events", "--format", "jsonl"], Duration::from_secs(60)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let want = emitter.to_checksum(None);
    let rows: Vec<Value> = json_lines(&out.stdout).into_iter().filter(|e| e["address"] == want).collect();
    let set = rows
        .iter()
        .map(|e| {
            let tx = e["tx_hash"].as_str().expect("tx hash").to_lowercase();
            (e["block"].as_u64().expect("block"), e["log_index"].as_u64().expect("log index"), tx)
        })
        .collect();
    (set, rows.len())
}

/// The next block the only source will read, from `inspect-store cursors` (works while `watch`
/// holds the store).
async fn cursor_next(dir: &Path) -> Option<u64> {
    let out = run_within(dir, &["inspect-store", "cursors", "--json"], Duration::from_secs(30)).await;
    let report: Value = serde_json::from_slice(&out.stdout).ok()?;
    report["cursors"][0]["next"].as_u64()
}

/// Compares a store with the chain up to `to`; a description of the difference, if any.
async fn compare(what: &str, anvil: &Anvil, dir: &Path, emitter: Address, to: u64) -> Result<String, String> {
    let chain = chain_logs(anvil, emitter, to).await;
    let (stored, rows) = stored_logs(dir, emitter).await;
    let missing: Vec<&LogId> = chain.difference(&stored).collect();
    let extra: Vec<&LogId> = stored.difference(&chain).collect();
    let blocks_missing: BTreeSet<u64> = missing.iter().map(|l| l.0).collect();
    let figures = format!(
        "{what}: blocks 0..={to}: chain {} logs, store {} ({rows} rows), {} missing in {} blocks {:?}, {} extra",
        chain.len(),
        stored.len(),
        missing.len(),
        blocks_missing.len(),
        blocks_missing,
        extra.len(),
    );
    eprintln!("lagging logs: {figures}");
    if missing.is_empty() && extra.is_empty() && rows == stored.len() { Ok(figures) } else { Err(figures) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_logs_lose_nothing_in_backfill_and_watch() {
    const BACKFILLS: u64 = 8;
    let anvil = Arc::new(Anvil::start(31337).await);
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    // From here on blocks come from the traffic task only, several transactions each.
    anvil.rpc("evm_setAutomine", json!([false])).await;
    // Backends at the head and two blocks behind, one picked at random for each request.
    let proxy = LagProxy::start(anvil.url(), LagPlan::backends(&[0, 2], 42)).await;
    let write_config = |dir: &Path| {
        let yaml = format!(
            "chains:\n  local:\n    chain_id: 31337\n    rpc: [\"{}\"]\n    confirmations: 0\n    \
             max_block_range: 5\n    poll_interval: 100ms\n    request_timeout: 5s\n\
             sources:\n  src:\n    kind: evm\n    chain: local\n    contracts:\n      - address: \"{}\"\n        \
             events: [\"{PING}\", \"{BATCH_READY}\"]\n",
            proxy.url(),
            emitter.to_checksum(None),
        );
        std::fs::write(dir.join("ferry.yaml"), yaml).expect("config");
    };
    let mut problems = Vec::new();

    // (a) watch follows the tip while blocks come, then catches up with the final head.
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path());
    let log = std::fs::File::create(dir.path().join("watch.log")).expect("log file");
    let traffic = Traffic::start(anvil.clone(), emitter, 0, Duration::from_millis(300));
    let mut watch = KillOnDrop::spawn(
        ferry_command(dir.path()).args(["watch"]).stdout(Stdio::null()).stderr(Stdio::from(log)),
    );
    traffic.wait_blocks(40).await;
    let mut height = 2 * traffic.stop().await;
    let head = anvil.block_number().await;
    let limit = Duration::from_secs(60);
    let deadline = Instant::now() + limit;
    let mut next = cursor_next(dir.path()).await;
    while next != Some(head + 1) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        next = cursor_next(dir.path()).await;
    }
    if next != Some(head + 1) {
        problems.push(format!("watch: cursor at {next:?} after {limit:?}, the head is {head}"));
    }
    assert!(watch.signal("INT"));
    let status =
        watch.wait_within(Duration::from_secs(20)).await.expect("watch did not stop within 20s of SIGINT");
    let log = std::fs::read_to_string(dir.path().join("watch.log")).unwrap_or_default();
    if status.code() != Some(130) {
        problems.push(format!("watch exited with {status}: {}", last_lines(&log, 20)));
    }
    if let Err(p) = compare("watch", &anvil, dir.path(), emitter, head).await {
        problems.push(p);
    }
    let stats = &proxy.stats;
    eprintln!(
        "lagging logs: watch through the proxy: {} requests, {} clamped getLogs, {} hidden blocks, by backend {:?}",
        stats.requests.load(Ordering::Relaxed),
        stats.clamped_logs.load(Ordering::Relaxed),
        stats.hidden_blocks.load(Ordering::Relaxed),
        stats.by_backend(),
    );

    // (b) backfills to `latest` into fresh stores while the chain keeps growing, a block a
    // second: slow enough that a backfill's last range is often at the head when it is read.
    let traffic = Traffic::start(anvil.clone(), emitter, height, Duration::from_secs(1));
    for i in 0..BACKFILLS {
        // Starts spread over the block interval.
        tokio::time::sleep(Duration::from_millis(300 + (i * 370) % 1000)).await;
        let dir = tempfile::tempdir().expect("tempdir");
        write_config(dir.path());
        let clamped = stats.clamped_logs.load(Ordering::Relaxed);
        let out = run_within(
            dir.path(),
            &["backfill", "--from", "0", "--to", "latest", "--json"],
            Duration::from_secs(120),
        )
        .await;
        let what = format!("backfill {i}");
        if out.status.code() != Some(0) {
            problems.push(format!("{what}: exit {:?}: {}", out.status.code(), text(&out)));
            continue;
        }
        let Some(next) = cursor_next(dir.path()).await else {
            problems.push(format!("{what}: no cursor: {}", text(&out)));
            continue;
        };
        let clamped = stats.clamped_logs.load(Ordering::Relaxed) - clamped;
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        eprintln!("lagging logs: {what}: to {}, {clamped} clamped getLogs", report["sources"][0]["to"]);
        if let Err(p) = compare(&what, &anvil, dir.path(), emitter, next - 1).await {
            problems.push(p);
        }
    }
    height += 2 * traffic.stop().await;
    eprintln!("lagging logs: {height} BatchReady heights emitted in all");

    assert!(problems.is_empty(), "stored events differ from the chain's:\n{}", problems.join("\n"));
    let (hidden, clamped) =
        (stats.hidden_blocks.load(Ordering::Relaxed), stats.clamped_logs.load(Ordering::Relaxed));
    let served = stats.by_backend();
    assert!(
        served.len() == 2 && served[1] > 0 && hidden + clamped > 0,
        "the lagging backend never showed its lag ({served:?} requests, {hidden} hidden blocks, \
         {clamped} clamped getLogs): the test proves nothing"
    );
}

/// Receipts that never show (a node whose receipt index is stuck): ferry waits and says so, signs
/// nothing again, and `resync` keeps those nonces too; once receipts show, everything confirms
/// without a new transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_that_never_show_are_waited_for_never_sent_again() {
    const ITEMS: u64 = 12;
    let net = Net::start(1).await;
    net.emit(0, ITEMS).await;
    let (dest, receiver) = &net.dests[0];
    let proxy = LagProxy::start(
        dest.url(),
        LagPlan::uniform(0).with_method_lag("eth_getTransactionReceipt", 1 << 40),
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), "function record(uint64 height, bytes32 root)", "", None);
    let config = dir.path().join("ferry.yaml");
    let yaml = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, yaml.replace(&dest.url(), &proxy.url())).expect("config");
    let signer_nonce =
        async || hex_u64(&dest.rpc("eth_getTransactionCount", json!([DEV_ADDRESSES[1], "latest"])).await);

    // Past the 30 s after which the chain's status names the wait.
    let out = run_within(dir.path(), &["push", "--json", "--timeout", "35s"], Duration::from_secs(90)).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    let chain = &report["chains"][0];
    assert_eq!(
        (chain["transactions"].clone(), chain["sent"].clone()),
        (ITEMS.into(), ITEMS.into()),
        "{chain}"
    );
    assert_eq!(chain["problem"]["code"], "unseen_nonces", "{chain}");
    let problem = chain["problem"]["message"].as_str().unwrap_or_default();
    assert!(problem.contains("waiting on used nonces without a visible receipt"), "{chain}");
    assert!(problem.contains("used by ferry's transaction"), "the block was located: {chain}");
    assert_eq!(signer_nonce().await, ITEMS, "nothing signed again");
    assert!(proxy.stats.hidden_receipts.load(Ordering::Relaxed) > 0);

    // resync: no proof that another transaction took those nonces, so none is dropped.
    let out = run_within(
        dir.path(),
        &["inspect-store", "resync", "--chain", "d0", "--yes", "--json"],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let resynced: Value = serde_json::from_slice(&out.stdout).expect("resync JSON");
    assert_eq!(resynced["dropped"], json!([]), "{resynced}");
    assert_eq!(resynced["kept"].as_array().map(Vec::len), Some(ITEMS as usize), "{resynced}");

    // The receipts show: all confirmed, no new transaction.
    proxy.set_plan(LagPlan::uniform(0));
    let out = run_within(dir.path(), &["push", "--json", "--timeout", "60s"], Duration::from_secs(90)).await;
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let chain = &report["chains"][0];
    assert_eq!(
        (chain["confirmed"].clone(), chain["transactions"].clone()),
        (ITEMS.into(), 0.into()),
        "{chain}"
    );
    assert_eq!(signer_nonce().await, ITEMS);
    let total = view_u256(dest, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await;
    assert_eq!(total, U256::from(ITEMS));
}

/// A `confirmations: 0` source read through a [`LagProxy`] (no lag yet), synced once by
/// `ferry ARGS…`; then its last two blocks are replaced by two others at the same height.
struct ReorgedWhileStopped {
    anvil: Anvil,
    emitter: Address,
    proxy: LagProxy,
    dir: tempfile::TempDir,
    /// The chain's head, before the reorg and after it.
    head: u64,
}

impl ReorgedWhileStopped {
    async fn after(args: &[&str]) -> Self {
        let anvil = Anvil::start(31337).await;
        let emitter = anvil.deploy("EventEmitter", &[]).await;
        for h in 0..6u64 {
            anvil.send(emitter, IEventEmitter::emitBatchesCall { from: h * 10, n: 2 }.abi_encode()).await;
        }
        let proxy = LagProxy::start(anvil.url(), LagPlan::uniform(0)).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = format!(
            "chains:\n  local:\n    chain_id: 31337\n    rpc: [\"{}\"]\n    confirmations: 0\n    poll_interval: 200ms\n\
             sources:\n  src:\n    kind: evm\n    chain: local\n    contracts:\n      - address: \"{}\"\n        events: [\"{BATCH_READY}\"]\n",
            proxy.url(),
            emitter.to_checksum(None)
        );
        std::fs::write(dir.path().join("ferry.yaml"), yaml).expect("config");
        let out = run_within(dir.path(), args, Duration::from_secs(60)).await;
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let head = anvil.block_number().await;
        assert_eq!(cursor_next(dir.path()).await, Some(head + 1), "synced to the head");

        let tx = json!({
            "from": DEV_ADDRESSES[0],
            "to": emitter,
            "data": Bytes::from(IEventEmitter::emitBatchesCall { from: 500, n: 3 }.abi_encode()),
        });
        anvil.rpc("anvil_reorg", json!([2, [[tx, 0]]])).await;
        assert_eq!(anvil.block_number().await, head, "the reorg kept the height");
        ReorgedWhileStopped { anvil, emitter, proxy, dir, head }
    }

    /// Runs `ferry ARGS…` again with every node `lag` blocks behind for its first `for_how_long`.
    async fn run_lagging(&self, args: &'static [&'static str], lag: u64, for_how_long: Duration) -> Output {
        self.proxy.set_plan(LagPlan::uniform(lag));
        let run = tokio::spawn({
            let dir = self.dir.path().to_path_buf();
            async move { run_within(&dir, args, Duration::from_secs(60)).await }
        });
        tokio::time::sleep(for_how_long).await;
        self.proxy.set_plan(LagPlan::uniform(0));
        let out = run.await.expect("ferry task");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        out
    }

    /// The store, up to its cursor, equals the chain, and it recorded one reorg.
    async fn assert_rewound(&self, what: &str) {
        let held = cursor_next(self.dir.path()).await.expect("a cursor") - 1;
        compare(what, &self.anvil, self.dir.path(), self.emitter, held)
            .await
            .expect("the store equals the chain");
        let out =
            run_within(self.dir.path(), &["inspect-store", "reorgs", "--json"], Duration::from_secs(30))
                .await;
        let reorgs: Value = serde_json::from_slice(&out.stdout).expect("reorgs JSON");
        assert_eq!(reorgs["reorgs"].as_array().map(Vec::len), Some(1), "{what}: {reorgs}");
    }
}

const BACKFILL: &[&str] = &["backfill", "--from", "0", "--to", "latest", "--json"];

/// A reorg that kept the height happened while ferry was stopped, and the next backfill's first
/// answers come from a node that lacks the block read last: the backfill asks again until a node
/// that has it answers, then rewinds (the soak found a run that went on without looking).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_asks_again_when_the_node_lacks_the_block_read_last() {
    let net = ReorgedWhileStopped::after(BACKFILL).await;
    // Every node behind the head by 3 for a while: none has the block read last.
    net.run_lagging(BACKFILL, 3, Duration::from_millis(1500)).await;
    // `latest` came from a lagging node: what the store holds, up to its cursor, is the chain's.
    net.assert_rewound("after the reorg").await;
    let out = run_within(net.dir.path(), BACKFILL, Duration::from_secs(60)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    compare("read on", &net.anvil, net.dir.path(), net.emitter, net.head)
        .await
        .expect("the store equals the chain");
}

/// The same through `push`, whose sync read nothing new (its head came from a node two blocks
/// behind, below the cursor): it still checks the block read last, and rewinds (the soak found
/// a push that skipped the check whenever its head was not above the cursor).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_with_nothing_new_to_read_still_rewinds_a_reorg() {
    const PUSH: &[&str] = &["push", "--json", "--timeout", "30s"];
    let net = ReorgedWhileStopped::after(PUSH).await;
    // The head comes two blocks short; the block read last shows up a moment later.
    net.run_lagging(PUSH, 2, Duration::from_millis(300)).await;
    net.assert_rewound("after the push").await;
}
