//! EVM ingest through the real binary against real anvil nodes: factory children against direct
//! `eth_getLogs`, a child's event in its creation transaction, `kill -9` and Ctrl-C mid-backfill,
//! reorgs under `confirmations: 0`, a fault-injecting proxy, failover, undecodable logs, and an
//! export of 200,000 events in bounded memory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256, U256};
use alloy::sol_types::SolCall;
use serde_json::{Value, json};

use crate::support::command::{ferry_command, run};
use crate::support::devnet::{Anvil, DEV_ADDRESSES, IEscrow, IEscrowFactory, IEventEmitter};
use crate::support::hex::hex_u64;
use crate::support::net::RefusingPort;
use crate::support::output::{json_lines, text};
use crate::support::process::{KillOnDrop, peak_rss_kib};
use crate::support::proxy::FaultProxy;

/// `ferry backfill --from 0 --to latest --json …`, which must succeed; its JSON report.
fn backfill(dir: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["backfill", "--from", "0", "--to", "latest", "--json"];
    args.extend_from_slice(extra);
    let out = run(dir, &args);
    assert_eq!(out.status.code(), Some(0), "backfill failed: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)))
}

/// Every event the store holds, as `ferry export events` prints them.
fn exported(dir: &Path, what: &str) -> Vec<Value> {
    let out = run(dir, &["export", what]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    json_lines(&out.stdout)
}

/// A config with one `evm` source on one chain.
struct Setup<'a> {
    rpcs: Vec<String>,
    chain_id: u64,
    chain_extra: &'a str,
    emitters: Vec<(Address, Vec<&'a str>)>,
    factory: Option<Address>,
    source_extra: &'a str,
}

impl Setup<'_> {
    fn write(&self, dir: &Path) {
        let rpcs: Vec<String> = self.rpcs.iter().map(|u| format!("\"{u}\"")).collect();
        let mut yaml = format!(
            "chains:\n  local:\n    chain_id: {}\n    rpc: [{}]\n{}sources:\n  src:\n    kind: evm\n    chain: local\n{}",
            self.chain_id,
            rpcs.join(", "),
            indent(self.chain_extra, 4),
            indent(self.source_extra, 4),
        );
        if !self.emitters.is_empty() {
            yaml.push_str("    contracts:\n");
            for (address, events) in &self.emitters {
                yaml.push_str(&format!(
                    "      - address: \"{}\"\n        events:\n",
                    address.to_checksum(None)
                ));
                for e in events {
                    yaml.push_str(&format!("          - \"{e}\"\n"));
                }
            }
        }
        if let Some(factory) = self.factory {
            yaml.push_str(&format!(
                "    factories:\n      - address: \"{}\"\n        event: event EscrowDeployed(address indexed escrow, \
                 address indexed buyer, address indexed seller, uint256 amount)\n        child_param: escrow\n        \
                 child_events:\n          - event Approved(address indexed by)\n          - event \
                 EscrowReleased(address indexed to, uint256 amount)\n          - event EscrowRefunded(address indexed \
                 to, uint256 amount)\n",
                factory.to_checksum(None)
            ));
        }
        std::fs::write(dir.join("ferry.yaml"), yaml).expect("write config");
    }
}

fn indent(text: &str, n: usize) -> String {
    text.lines().filter(|l| !l.trim().is_empty()).map(|l| format!("{}{l}\n", " ".repeat(n))).collect()
}

const PING: &str = "event Ping(uint256 indexed seq, address indexed from, bytes32 data)";
const BATCH_READY: &str = "event BatchReady(uint64 indexed height, bytes32 root)";

/// `(block, log_index, block_hash)` of every log `address` emitted, straight from the node.
async fn direct_logs(anvil: &Anvil, address: Address) -> BTreeSet<(u64, u64, String)> {
    let logs = anvil
        .rpc("eth_getLogs", json!([{ "fromBlock": "0x0", "toBlock": "latest", "address": address }]))
        .await;
    logs.as_array()
        .expect("logs")
        .iter()
        .map(|l| {
            (
                hex_u64(&l["blockNumber"]),
                hex_u64(&l["logIndex"]),
                l["blockHash"].as_str().expect("hash").to_string(),
            )
        })
        .collect()
}

fn stored_logs(events: &[Value], address: Address) -> BTreeSet<(u64, u64, String)> {
    let want = address.to_checksum(None);
    events
        .iter()
        .filter(|e| e["address"] == want)
        .map(|e| {
            let block_hash = e["block_hash"].as_str().expect("hash").to_string();
            (e["block"].as_u64().expect("block"), e["log_index"].as_u64().expect("index"), block_hash)
        })
        .collect()
}

/// The escrow addresses announced in a receipt's `EscrowDeployed` logs.
fn escrows_in(receipt: &Value, factory: Address) -> Vec<Address> {
    receipt["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter(|l| l["address"].as_str().and_then(|a| a.parse::<Address>().ok()) == Some(factory))
        .filter_map(|l| l["topics"][1].as_str().and_then(|t| t.parse::<B256>().ok()))
        .map(Address::from_word)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_children_match_direct_get_logs_in_both_query_modes_with_constant_calls() {
    let anvil = Anvil::start(31337).await;
    let factory = anvil.deploy("EscrowFactory", &[]).await;
    let mut children = Vec::new();
    for _ in 0..5 {
        let receipt =
            anvil.send(factory, IEscrowFactory::createEscrowsCall { n: U256::from(200) }.abi_encode()).await;
        children.extend(escrows_in(&receipt, factory));
    }
    // Created and approved in one transaction: the child's event comes from a contract that did
    // not exist when the block began.
    let mut same_tx = Vec::new();
    for i in 0..3u64 {
        let call = IEscrowFactory::createAndApproveCall {
            seller: Address::repeat_byte(0x5e),
            amount: U256::from(i),
        };
        let receipt = anvil.send(factory, call.abi_encode()).await;
        let child = escrows_in(&receipt, factory)[0];
        same_tx.push((child, receipt["transactionHash"].as_str().expect("hash").to_string()));
        children.push(child);
    }
    for child in children.iter().step_by(50) {
        anvil.send(*child, IEscrow::approveCall {}.abi_encode()).await;
        anvil.send(*child, IEscrow::releaseCall {}.abi_encode()).await;
    }
    assert_eq!(children.len(), 1003);

    let mut direct = BTreeSet::new();
    for child in &children {
        direct.extend(direct_logs(&anvil, *child).await);
    }
    assert_eq!(direct.len(), 3 + 2 * 21, "3 same-tx approvals, 21 approvals and 21 releases");

    let mut reports = Vec::new();
    for max_addresses in [5_000, 10] {
        let dir = tempfile::tempdir().expect("tempdir");
        Setup {
            rpcs: vec![anvil.url()],
            chain_id: 31337,
            chain_extra: "confirmations: 0\nmax_block_range: 4",
            emitters: vec![],
            factory: Some(factory),
            source_extra: &format!("max_addresses: {max_addresses}"),
        }
        .write(dir.path());
        let report = backfill(dir.path(), &[]);
        let events = exported(dir.path(), "events");
        let mut stored = BTreeSet::new();
        for child in &children {
            stored.extend(stored_logs(&events, *child));
        }
        assert_eq!(
            stored, direct,
            "max_addresses {max_addresses}: children's events differ from eth_getLogs"
        );
        assert_eq!(stored_logs(&events, factory), direct_logs(&anvil, factory).await);
        assert_eq!(events.len(), 1003 + direct.len(), "nothing but the factory's and the children's events");

        for (child, tx) in &same_tx {
            let in_tx: Vec<&Value> = events.iter().filter(|e| e["tx_hash"] == *tx).collect();
            let names: BTreeSet<&str> = in_tx.iter().filter_map(|e| e["event"].as_str()).collect();
            assert_eq!(names, BTreeSet::from(["EscrowDeployed", "Approved"]), "tx {tx}");
            assert!(
                in_tx.iter().any(|e| e["address"] == child.to_checksum(None) && e["event"] == "Approved")
            );
        }
        let contracts = exported(dir.path(), "contracts");
        assert_eq!(contracts.iter().filter(|c| !c["factory"].is_null()).count(), 1003);

        let source = &report["sources"][0];
        let blocks = source["blocks"].as_u64().expect("blocks");
        let ranges = blocks.div_ceil(4);
        // Blocks near the head whose bloom may match but brought no log are asked again by hash
        // (one request each, whatever the number of children); the range queries are constant.
        let rechecked = source["rechecked_blocks"].as_u64().expect("rechecked_blocks");
        assert!(rechecked <= blocks, "{rechecked} rechecks for {blocks} blocks");
        let get_logs =
            source["rpc"]["by_method"]["eth_getLogs"].as_u64().expect("eth_getLogs count") - rechecked;
        assert!(
            get_logs <= 2 * ranges,
            "max_addresses {max_addresses}: {get_logs} eth_getLogs for {ranges} ranges: more than one per range for 1003 children"
        );
        reports.push(get_logs);
    }
    assert_eq!(reports[0], reports[1], "the address-list and topic-only modes make the same number of calls");
}

/// Emits `blocks` blocks of `per_block` Ping events, and a few escrows with approvals.
async fn busy_chain(anvil: &Anvil, blocks: u64, per_block: u64) -> (Address, Address) {
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    let factory = anvil.deploy("EscrowFactory", &[]).await;
    for i in 0..blocks {
        anvil.send(emitter, IEventEmitter::emitManyCall { n: U256::from(per_block) }.abi_encode()).await;
        if i % 5 == 0 {
            let receipt = anvil
                .send(factory, IEscrowFactory::createEscrowsCall { n: U256::from(3) }.abi_encode())
                .await;
            for child in escrows_in(&receipt, factory) {
                anvil.send(child, IEscrow::approveCall {}.abi_encode()).await;
            }
        }
    }
    (emitter, factory)
}

/// The store's content, for comparing runs: events, contracts, and where the cursor stands.
fn snapshot(dir: &Path) -> (Vec<Value>, Vec<Value>, Value) {
    let out = run(dir, &["inspect-store", "cursors", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("cursors");
    let mut cursors = report["cursors"].clone();
    for c in cursors.as_array_mut().expect("rows") {
        c.as_object_mut().expect("row").remove("updated_at");
    }
    (exported(dir, "events"), exported(dir, "contracts"), cursors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_killed_or_interrupted_anywhere_ends_identical_to_an_uninterrupted_run() {
    let anvil = Anvil::start(31337).await;
    let (emitter, factory) = busy_chain(&anvil, 40, 150).await;
    let setup = |dir: &Path| {
        Setup {
            rpcs: vec![anvil.url()],
            chain_id: 31337,
            // Slow enough that the kills land in the middle, many ranges.
            chain_extra: "confirmations: 1\nmax_block_range: 2\nrate_limit: 60",
            emitters: vec![(emitter, vec![PING])],
            factory: Some(factory),
            source_extra: "",
        }
        .write(dir)
    };
    let reference = tempfile::tempdir().expect("tempdir");
    setup(reference.path());
    let head = anvil.block_number().await;
    let to = (head - 1).to_string();
    let out = run(reference.path(), &["backfill", "--from", "0", "--to", &to, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let expected = snapshot(reference.path());
    assert!(expected.0.len() > 5_500, "{} events", expected.0.len());

    let dir = tempfile::tempdir().expect("tempdir");
    setup(dir.path());
    let mut interruptions = 0;
    for (i, after_ms) in [300u64, 700, 500, 900, 400].into_iter().enumerate() {
        let mut child = KillOnDrop::spawn(
            ferry_command(dir.path())
                .args(["backfill", "--from", "0", "--to", &to])
                .stdout(Stdio::null())
                .stderr(Stdio::piped()),
        );
        std::thread::sleep(Duration::from_millis(after_ms));
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if i % 2 == 0 {
            child.kill().expect("kill -9");
            let _ = child.wait();
        } else {
            // Ctrl-C: the range being committed finishes, then exit 130.
            assert!(child.signal("INT"));
            let status = child.wait_within(Duration::from_secs(20)).await.expect("ferry finishes within 20s");
            let stderr = child.read_stderr();
            assert_eq!(status.code(), Some(130), "{stderr}");
        }
        interruptions += 1;
    }
    assert!(interruptions >= 3, "the backfill finished before it could be interrupted");
    let out = run(dir.path(), &["backfill", "--from", "0", "--to", &to, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let resumed = snapshot(dir.path());
    assert_eq!(resumed.2, expected.2, "cursors differ");
    assert_eq!(resumed.1, expected.1, "contracts differ");
    assert!(resumed.0 == expected.0, "events differ: {} vs {}", resumed.0.len(), expected.0.len());

    // A finished range run again reads nothing and changes nothing.
    let again: Value =
        serde_json::from_slice(&run(dir.path(), &["backfill", "--from", "0", "--to", &to, "--json"]).stdout)
            .expect("JSON");
    assert_eq!(again["sources"][0]["blocks"], 0);
    assert_eq!(snapshot(dir.path()).0, expected.0);
    // A start past the cursor would leave a hole: refused, exit 2.
    let out = run(dir.path(), &["backfill", "--from", &(head + 5).to_string(), "--to", "latest"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("unread"), "{}", text(&out));
}

/// `inspect-store cursors` next block of the only source, read while `watch` holds the store.
fn cursor_next(dir: &Path) -> Option<u64> {
    let out = run(dir, &["inspect-store", "cursors", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).ok()?;
    report["cursors"][0]["next"].as_u64()
}

/// Waits (bounded) until the store holds every block up to the head and exactly the logs the
/// node has for `emitter`.
async fn wait_in_sync(anvil: &Anvil, dir: &Path, emitter: Address, what: &str) {
    let limit = Duration::from_secs(30);
    let deadline = Instant::now() + limit;
    loop {
        let head = anvil.block_number().await;
        if cursor_next(dir) == Some(head + 1)
            && stored_logs(&exported(dir, "events"), emitter) == direct_logs(anvil, emitter).await
        {
            return;
        }
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reorgs_up_to_the_window_are_undone_and_a_deeper_one_stops_the_source() {
    const WINDOW: u64 = 4;
    let anvil = Anvil::start(31337).await;
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    for h in 0..12u64 {
        anvil.send(emitter, IEventEmitter::emitBatchesCall { from: h * 10, n: 2 }.abi_encode()).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    Setup {
        rpcs: vec![anvil.url()],
        chain_id: 31337,
        chain_extra: &format!("confirmations: 0\nreorg_window: {WINDOW}\npoll_interval: 100ms"),
        emitters: vec![(emitter, vec![BATCH_READY])],
        factory: None,
        source_extra: "",
    }
    .write(dir.path());
    let mut watch = KillOnDrop::spawn(
        ferry_command(dir.path()).args(["watch"]).stdout(Stdio::null()).stderr(Stdio::piped()),
    );
    wait_in_sync(&anvil, dir.path(), emitter, "watch to catch up").await;

    for depth in 1..=WINDOW {
        let before = direct_logs(&anvil, emitter).await;
        let tx = json!({
            "from": DEV_ADDRESSES[0],
            "to": emitter,
            "data": alloy::primitives::Bytes::from(IEventEmitter::emitBatchesCall { from: 1_000 * depth, n: 3 }.abi_encode()),
        });
        anvil.rpc("anvil_reorg", json!([depth, [[tx, 0]]])).await;
        let after = direct_logs(&anvil, emitter).await;
        assert_ne!(before, after, "depth {depth}: anvil_reorg changed nothing");
        wait_in_sync(&anvil, dir.path(), emitter, &format!("the store to follow a reorg of depth {depth}"))
            .await;
        let out = run(dir.path(), &["inspect-store", "reorgs", "--json"]);
        let report: Value = serde_json::from_slice(&out.stdout).expect("reorgs JSON");
        let reorgs = &report["reorgs"];
        assert_eq!(reorgs.as_array().expect("rows").len() as u64, depth, "{reorgs}");
        assert!(reorgs[depth as usize - 1]["depth"].as_u64().expect("depth") >= depth, "{reorgs}");
        // The new branch's events are in, with their new block hashes.
        let events = exported(dir.path(), "events");
        let heights: BTreeSet<String> =
            events.iter().filter_map(|e| e["fields"]["height"].as_str().map(str::to_string)).collect();
        assert!(heights.contains(&(1_000 * depth).to_string()), "depth {depth}: {heights:?}");
    }

    // One block deeper than the window: the source stops, says why, and the store stays.
    let before = snapshot(dir.path());
    anvil.rpc("anvil_reorg", json!([WINDOW + 1, []])).await;
    let status = watch.wait_within(Duration::from_secs(30)).await.expect("watch ends within 30s");
    let stderr = watch.read_stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("deeper than the window"), "{stderr}");
    assert_eq!(snapshot(dir.path()), before, "a refused reorg changed the store");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_failing_a_fifth_of_requests_changes_nothing_in_the_store() {
    let anvil = Anvil::start(31337).await;
    let (emitter, factory) = busy_chain(&anvil, 60, 5).await;
    let head = anvil.block_number().await.to_string();
    let write = |dir: &Path, url: String| {
        Setup {
            rpcs: vec![url],
            chain_id: 31337,
            chain_extra: "confirmations: 0\nmax_block_range: 2\nrequest_timeout: 5s",
            emitters: vec![(emitter, vec![PING])],
            factory: Some(factory),
            source_extra: "",
        }
        .write(dir)
    };
    let clean = tempfile::tempdir().expect("tempdir");
    write(clean.path(), anvil.url());
    let out = run(clean.path(), &["backfill", "--from", "0", "--to", &head, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let proxy = FaultProxy::start(anvil.url(), 0.2, 7).await;
    let faulty = tempfile::tempdir().expect("tempdir");
    write(faulty.path(), proxy.url());
    let out = run(faulty.path(), &["backfill", "--from", "0", "--to", &head, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let injected = &proxy.injected;
    use std::sync::atomic::Ordering::Relaxed;
    assert!(injected.faults() >= 10, "too few faults to mean anything: {injected:?}");
    for (kind, count) in [
        ("503", &injected.http_503),
        ("429", &injected.http_429),
        ("reset", &injected.resets),
        ("truncated", &injected.truncated),
    ] {
        assert!(count.load(Relaxed) > 0, "no {kind} was injected: {injected:?}");
    }
    let errors = &report["sources"][0]["rpc"]["errors"];
    for class in ["transport", "rate-limited", "bad-response"] {
        assert!(errors[class].as_u64().unwrap_or(0) > 0, "no {class} error counted: {errors}");
    }
    assert_eq!(snapshot(faulty.path()), snapshot(clean.path()), "faults changed what was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_first_url_fails_over_to_the_second() {
    let anvil = Anvil::start(31337).await;
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    anvil.send(emitter, IEventEmitter::emitManyCall { n: U256::from(30) }.abi_encode()).await;
    let refusing = RefusingPort::bind();
    let dead = refusing.url();
    let dir = tempfile::tempdir().expect("tempdir");
    Setup {
        rpcs: vec![dead, anvil.url()],
        chain_id: 31337,
        chain_extra: "confirmations: 0",
        emitters: vec![(emitter, vec![PING])],
        factory: None,
        source_extra: "",
    }
    .write(dir.path());
    let report = backfill(dir.path(), &[]);
    let urls = &report["sources"][0]["rpc"]["urls"];
    assert!(urls[0]["failed"].as_u64().expect("failed") >= 1, "{urls}");
    assert_eq!(urls[0]["served"], 0, "{urls}");
    assert!(urls[1]["served"].as_u64().expect("served") >= 3, "{urls}");
    assert_eq!(exported(dir.path(), "events").len(), 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_decode_by_declaration_and_the_rest_are_kept_raw_with_the_reason() {
    let anvil = Anvil::start(31337).await;
    let right = anvil.deploy("EventEmitter", &[]).await;
    let wrong = anvil.deploy("EventEmitter", &[]).await;
    for emitter in [right, wrong] {
        anvil.send(emitter, IEventEmitter::emitManyCall { n: U256::from(2) }.abi_encode()).await;
        anvil.send(emitter, IEventEmitter::emitBatchesCall { from: 7, n: 1 }.abi_encode()).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    Setup {
        rpcs: vec![anvil.url()],
        chain_id: 31337,
        chain_extra: "confirmations: 0",
        // `right` declares Ping as emitted and not BatchReady; `wrong` declares BatchReady with
        // `height` not indexed, which is not what the contract emits.
        emitters: vec![(right, vec![PING]), (wrong, vec!["event BatchReady(uint64 height, bytes32 root)"])],
        factory: None,
        source_extra: "",
    }
    .write(dir.path());
    backfill(dir.path(), &[]);
    let events = exported(dir.path(), "events");
    assert_eq!(events.len(), 6, "every log of a configured contract is kept");
    let of = |address: Address| -> Vec<&Value> {
        events.iter().filter(|e| e["address"] == address.to_checksum(None)).collect()
    };
    let right_events = of(right);
    let ping = right_events.iter().find(|e| e["event"] == "Ping").expect("a decoded Ping");
    assert_eq!(ping["fields"]["seq"], "0");
    assert_eq!(ping["fields"]["from"], DEV_ADDRESSES[0]);
    let raw = right_events.iter().find(|e| e["event"].is_null()).expect("an undeclared log");
    assert!(raw["fields"].is_null() && raw["decode_error"].is_null());
    assert_eq!(raw["topics"].as_array().expect("topics").len(), 2, "kept raw: {raw}");

    let wrong_events = of(wrong);
    let mismatched = wrong_events.iter().find(|e| e["event"] == "BatchReady").expect("BatchReady by topic0");
    assert!(mismatched["fields"].is_null(), "{mismatched}");
    assert!(mismatched["decode_error"].as_str().expect("a reason").contains("BatchReady"), "{mismatched}");
    assert_eq!(wrong_events.iter().filter(|e| e["event"].is_null()).count(), 2, "undeclared Pings kept raw");

    let out = run(dir.path(), &["inspect-store", "events", "--event", "undecoded", "--json"]);
    let undecoded: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(undecoded["events"].as_array().expect("rows").len(), 4);
    let out =
        run(dir.path(), &["inspect-store", "events", "--event", "Ping", "--address", &right.to_string()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 shown"), "{}", text(&out));
}

/// How `child` ended and its peak resident memory in KiB, polled from /proc until it exits
/// (within `limit`).
fn peak_rss_until_exit(mut child: KillOnDrop, limit: Duration) -> (std::process::ExitStatus, u64) {
    let deadline = Instant::now() + limit;
    let mut peak = 0;
    loop {
        peak = peak.max(peak_rss_kib(child.id()).unwrap_or(0));
        if let Some(status) = child.try_wait().expect("wait") {
            return (status, peak);
        }
        assert!(Instant::now() < deadline, "ferry did not finish within {limit:?}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn exporting_200k_events_streams_in_bounded_memory() {
    use ferry::store::Store;
    use ferry::store::ingest::RangeWrite;
    use ferry::store::keys::EventKey;
    use ferry::store::records::Event;

    let write_store = |dir: &Path, total: u64| {
        let store = Store::create_or_open(&dir.join("ferry.redb"), None).expect("store");
        let source = store.write(|tx| tx.source_id("src")).expect("id");
        let per_range = 10_000u64;
        for range in 0..total / per_range {
            let mut w = RangeWrite {
                source,
                chain: 31337,
                from: range * 100,
                to: range * 100 + 99,
                ..Default::default()
            };
            for i in 0..per_range {
                let block = range * 100 + i / 100;
                w.events.push((
                    EventKey { chain: 31337, block, log_index: (i % 100) as u32 },
                    Event {
                        source,
                        address: Address::repeat_byte(7),
                        block_hash: B256::repeat_byte(1),
                        tx_hash: B256::repeat_byte(2),
                        topics: vec![B256::repeat_byte(3), B256::from(U256::from(i))],
                        data: vec![9; 64].into(),
                        name: Some("Ping".into()),
                        fields: Some(format!(r#"{{"seq":"{i}","data":"0x{}"}}"#, "ab".repeat(32))),
                        decode_error: None,
                    },
                ));
            }
            store.write(|tx| tx.apply_range(&w)).expect("apply");
        }
    };
    let mut peaks = BTreeMap::new();
    for total in [20_000u64, 200_000] {
        let dir = tempfile::tempdir().expect("tempdir");
        write_store(dir.path(), total);
        for format in ["csv", "jsonl"] {
            let child = KillOnDrop::spawn(
                ferry_command(dir.path())
                    .args(["export", "events", "--format", format, "--out", "events.out"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            let (status, peak) = peak_rss_until_exit(child, Duration::from_secs(300));
            assert!(status.success());
            let written = std::fs::read_to_string(dir.path().join("events.out")).expect("export");
            let header = usize::from(format == "csv");
            assert_eq!(written.lines().count() as u64, total + header as u64, "{format}");
            peaks.insert((total, format), peak);
        }
    }
    eprintln!("peak RSS of `ferry export events` (KiB): {peaks:?}");
    for format in ["csv", "jsonl"] {
        let (small, large) = (peaks[&(20_000, format)], peaks[&(200_000, format)]);
        // Ten times the rows may not take anything like ten times the memory.
        assert!(
            large < small + 16 * 1024,
            "{format}: peak RSS {small} KiB for 20k events, {large} KiB for 200k"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_follows_each_source_on_its_own_and_stops_cleanly_on_sigterm() {
    let live = Anvil::start(31337).await;
    let emitter = live.deploy("EventEmitter", &[]).await;
    live.send(emitter, IEventEmitter::emitManyCall { n: U256::from(5) }.abi_encode()).await;
    let refusing = RefusingPort::bind();
    let dead = refusing.url();
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "chains:\n  live:\n    chain_id: 31337\n    rpc: [\"{}\"]\n    confirmations: 0\n    poll_interval: 100ms\n  \
         down:\n    chain_id: 5\n    rpc: [\"{dead}\"]\n    confirmations: 0\n    request_timeout: 1s\n\
         sources:\n  a-live:\n    kind: evm\n    chain: live\n    contracts:\n      - address: \"{}\"\n        \
         events: [\"{PING}\"]\n  b-down:\n    kind: evm\n    chain: down\n    contracts:\n      - address: \"{}\"\n        \
         events: [\"{PING}\"]\n",
        live.url(),
        emitter.to_checksum(None),
        emitter.to_checksum(None),
    );
    std::fs::write(dir.path().join("ferry.yaml"), yaml).expect("config");
    let mut watch = KillOnDrop::spawn(
        ferry_command(dir.path()).args(["watch"]).stdout(Stdio::null()).stderr(Stdio::piped()),
    );
    wait_in_sync(&live, dir.path(), emitter, "the live source, while the other chain is down").await;
    // New blocks keep coming in while the other source keeps failing.
    live.send(emitter, IEventEmitter::emitManyCall { n: U256::from(3) }.abi_encode()).await;
    wait_in_sync(&live, dir.path(), emitter, "the live source to follow a new block").await;
    assert_eq!(exported(dir.path(), "events").len(), 8);

    assert!(watch.signal("TERM"));
    let status = watch.wait_within(Duration::from_secs(20)).await.expect("watch ends within 20s");
    let stderr = watch.read_stderr();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("RPC failing") && stderr.contains(&dead), "the failing RPC is named: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_and_block_tags_bound_what_is_read() {
    let anvil = Anvil::start(31337).await;
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    anvil.mine(80).await;
    let head = anvil.block_number().await;
    let tag_block = |tag: &'static str| {
        let anvil = &anvil;
        async move { hex_u64(&anvil.rpc("eth_getBlockByNumber", json!([tag, false])).await["number"]) }
    };
    for (finality, expected_to) in [
        ("confirmations: 5", head - 5),
        ("finality: safe", tag_block("safe").await),
        ("finality: finalized", tag_block("finalized").await),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        Setup {
            rpcs: vec![anvil.url()],
            chain_id: 31337,
            chain_extra: finality,
            emitters: vec![(emitter, vec![PING])],
            factory: None,
            source_extra: "",
        }
        .write(dir.path());
        let out = run(dir.path(), &["backfill", "--from", "0", "--to", "safe", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{finality}: {}", text(&out));
        let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert!(expected_to < head, "{finality}: the tag is below the head");
        assert_eq!(report["sources"][0]["to"], expected_to, "{finality}");
        assert_eq!(cursor_next(dir.path()), Some(expected_to + 1), "{finality}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_that_goes_back_is_waited_out_not_taken_for_a_reorg() {
    let anvil = Anvil::start(31337).await;
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    let snapshot_id = anvil.rpc("evm_snapshot", json!([])).await;
    for h in 0..6u64 {
        anvil.send(emitter, IEventEmitter::emitBatchesCall { from: h, n: 1 }.abi_encode()).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    Setup {
        rpcs: vec![anvil.url()],
        chain_id: 31337,
        chain_extra: "confirmations: 0\npoll_interval: 100ms",
        emitters: vec![(emitter, vec![BATCH_READY])],
        factory: None,
        source_extra: "",
    }
    .write(dir.path());
    let mut watch = KillOnDrop::spawn(
        ferry_command(dir.path()).args(["watch"]).stdout(Stdio::null()).stderr(Stdio::piped()),
    );
    wait_in_sync(&anvil, dir.path(), emitter, "watch to catch up").await;
    let held = cursor_next(dir.path()).expect("a cursor");

    // A node restarted from an older state: its head is behind what the store holds.
    anvil.rpc("evm_revert", json!([snapshot_id])).await;
    assert!(anvil.block_number().await + 1 < held);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(watch.try_wait().expect("wait").is_none(), "watch stopped on a head that went back");
    assert_eq!(cursor_next(dir.path()), Some(held), "nothing undone while the head is behind");
    let out = run(dir.path(), &["inspect-store", "reorgs", "--json"]);
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).expect("JSON")["reorgs"], json!([]));

    // The chain grows past the old head on another branch: that is a reorg, and is followed.
    for h in 0..8u64 {
        anvil.send(emitter, IEventEmitter::emitBatchesCall { from: 100 + h, n: 1 }.abi_encode()).await;
    }
    wait_in_sync(&anvil, dir.path(), emitter, "the store to follow the new branch").await;
    let out = run(dir.path(), &["inspect-store", "reorgs", "--json"]);
    let reorgs: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(reorgs["reorgs"].as_array().expect("rows").len(), 1, "{reorgs}");
    assert!(watch.signal("INT"));
    let status = watch.wait_within(Duration::from_secs(20)).await.expect("watch ends within 20s");
    let stderr = watch.read_stderr();
    assert_eq!(status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("behind what the store holds"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_after_a_reorg_that_kept_the_height_rewinds_first() {
    let anvil = Anvil::start(31337).await;
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    for h in 0..6u64 {
        anvil.send(emitter, IEventEmitter::emitBatchesCall { from: h * 10, n: 2 }.abi_encode()).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    Setup {
        rpcs: vec![anvil.url()],
        chain_id: 31337,
        chain_extra: "confirmations: 0\nmax_block_range: 3",
        emitters: vec![(emitter, vec![BATCH_READY])],
        factory: None,
        source_extra: "",
    }
    .write(dir.path());
    backfill(dir.path(), &[]);
    assert_eq!(stored_logs(&exported(dir.path(), "events"), emitter), direct_logs(&anvil, emitter).await);

    // The source is stopped; the last two blocks are replaced by two others at the same height.
    let (height, before) = (anvil.block_number().await, direct_logs(&anvil, emitter).await);
    let tx = json!({
        "from": DEV_ADDRESSES[0],
        "to": emitter,
        "data": alloy::primitives::Bytes::from(IEventEmitter::emitBatchesCall { from: 500, n: 3 }.abi_encode()),
    });
    anvil.rpc("anvil_reorg", json!([2, [[tx, 0]]])).await;
    assert_eq!(anvil.block_number().await, height, "the reorg kept the height");
    let after = direct_logs(&anvil, emitter).await;
    assert_ne!(before, after, "anvil_reorg changed nothing");

    // Nothing new to read, yet the run rewinds: the orphaned events go, the new branch's come.
    let report = backfill(dir.path(), &[]);
    assert_eq!(report["sources"][0]["reorgs"], 1, "{report}");
    assert_eq!(stored_logs(&exported(dir.path(), "events"), emitter), after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tip_mode_backfill_of_old_blocks_reads_headers_only_near_the_head() {
    const BLOCKS: u64 = 2_000;
    const RANGE: u64 = 20;
    const WINDOW: u64 = 64;
    let anvil = Anvil::start(31337).await;
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    anvil.send(emitter, IEventEmitter::emitBatchesCall { from: 0, n: 3 }.abi_encode()).await;
    anvil.mine(BLOCKS).await;
    anvil.send(emitter, IEventEmitter::emitBatchesCall { from: 100, n: 3 }.abi_encode()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    Setup {
        rpcs: vec![anvil.url()],
        chain_id: 31337,
        chain_extra: &format!("confirmations: 0\nmax_block_range: {RANGE}\nreorg_window: {WINDOW}"),
        emitters: vec![(emitter, vec![BATCH_READY])],
        factory: None,
        source_extra: "",
    }
    .write(dir.path());
    let report = backfill(dir.path(), &[]);
    assert_eq!(stored_logs(&exported(dir.path(), "events"), emitter), direct_logs(&anvil, emitter).await);
    let source = &report["sources"][0];
    let ranges = source["blocks"].as_u64().expect("blocks").div_ceil(RANGE);
    let headers = source["rpc"]["by_method"]["eth_getBlockByNumber"].as_u64().expect("header count");
    // The ends of each range and its re-check at the tip, plus every block of the window; the
    // ranges grow after successes, so there are fewer of them than `ranges`.
    assert!(
        headers <= 3 * ranges + WINDOW + 2,
        "{headers} headers for {} blocks in ranges of {RANGE}: {source}",
        source["blocks"]
    );
}
