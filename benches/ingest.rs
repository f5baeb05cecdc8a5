//! Ingest benchmark (not a timed test): `cargo bench --bench ingest`.
//!
//! On one anvil node, in one run:
//! 1. **Throughput**: ≥ 100,000 events over many blocks. The baseline is raw `eth_getLogs` of the
//!    same ranges with ferry's own RPC client (requests and JSON decoding, nothing stored); the
//!    measured figure is the wall time of the real `ferry backfill` process (`confirmations: 1`,
//!    as a historical backfill runs), from exec to its last durable commit, start-up included.
//!    Rounds alternate between the two; medians are compared. Goal ≥ 0.8.
//! 2. **Calls per range** for factories with 10, 100, 1,000 and 10,000 children, each with some
//!    child events, read by `ferry backfill` with the same range size. Goal: constant.
//! 3. **Peak RSS** of each backfill process.
//! 4. **The default range against the best**: in the same rounds, the backfill with a few explicit
//!    `max_block_range`s and with none (the default), each with its events/s and peak RSS. Goal:
//!    the default ≥ 0.95 of the best explicit range's events/s, its peak RSS ≤ 100 MiB.
//!
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version that checks the
//! harness itself: ferry stores exactly the events raw `eth_getLogs` returns.

// The helpers shared with the test suite.
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::SolCall;
use ferry::engine::rpc::{ChainRpc, LogFilter, RpcSettings};
use serde_json::Value;
use support::command::ferry_command;
use support::devnet::{Anvil, DEV_ADDRESSES, IEscrow, IEscrowFactory, IEventEmitter};
use support::process::peak_rss_kib;

struct Scale {
    blocks: u64,
    events_per_block: u64,
    range: u64,
    /// Explicit ranges the default is compared with (`range` among them).
    sweep: &'static [u64],
    rounds: usize,
    children: &'static [u64],
    /// The lagging-node check: blocks near the head, each with this many unwatched events (a
    /// saturated bloom), the watched contract emitting in one block of ten.
    guard_blocks: u64,
    noise_per_block: u64,
}

const FULL: Scale = Scale {
    blocks: 100,
    events_per_block: 1_000,
    range: 10,
    sweep: &[2, 5, 10, 20, 100],
    rounds: 7,
    children: &[10, 100, 1_000, 10_000],
    guard_blocks: 60,
    noise_per_block: 1_000,
};
const SMOKE: Scale = Scale {
    blocks: 10,
    events_per_block: 50,
    range: 3,
    sweep: &[3],
    rounds: 1,
    children: &[10],
    guard_blocks: 10,
    noise_per_block: 300,
};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { FULL } else { SMOKE };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run(scale, full));
}

async fn run(scale: Scale, full: bool) {
    let anvil = Anvil::start_with(31337, &["--gas-limit", "300000000"]).await;
    let emitter = anvil.deploy("EventEmitter", &[]).await;
    let first = anvil.block_number().await + 1;
    for _ in 0..scale.blocks {
        anvil
            .send(emitter, IEventEmitter::emitManyCall { n: U256::from(scale.events_per_block) }.abi_encode())
            .await;
    }
    let last = anvil.block_number().await;
    let total = scale.blocks * scale.events_per_block;
    println!(
        "chain: {total} events in blocks {first}..={last}, eth_getLogs ranges of {} blocks",
        scale.range
    );

    let rpc = ChainRpc::new(RpcSettings {
        chain: "bench".into(),
        urls: vec![anvil.url()],
        timeout: Duration::from_secs(60),
        rate_limit: None,
        max_attempts: 3,
        base_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
    })
    .expect("client");

    let mut raw_rates = Vec::new();
    // Backfills by `max_block_range` (`None`: the default): events/s of each round, peak RSS.
    let ranges: Vec<Option<u64>> = scale.sweep.iter().map(|r| Some(*r)).chain([None]).collect();
    let mut by_range: Vec<(Vec<f64>, u64)> = vec![(Vec::new(), 0); ranges.len()];
    for round in 0..scale.rounds {
        let started = Instant::now();
        let mut seen = 0u64;
        let mut from = first;
        while from <= last {
            let to = (from + scale.range - 1).min(last);
            let filter = LogFilter { from, to, addresses: vec![emitter], topic0: vec![] };
            seen += rpc.logs(&filter).await.expect("eth_getLogs").len() as u64;
            from = to + 1;
        }
        let raw = seen as f64 / started.elapsed().as_secs_f64();
        assert_eq!(seen, total, "raw eth_getLogs saw every event");
        let mut line =
            format!("round {round}: raw eth_getLogs {raw:>7.0} events/s; ferry backfill by range:");
        raw_rates.push(raw);

        // A different order each round, so that no range always runs first or last.
        for i in (0..ranges.len()).map(|i| (i + round) % ranges.len()) {
            let dir = tempfile::tempdir().expect("tempdir");
            write_config(dir.path(), &anvil.url(), ranges[i], emitter, None, 1_000);
            let (report, secs, rss) = backfill(dir.path(), first, last);
            let stored = report["sources"][0]["events"].as_u64().expect("events");
            assert_eq!(stored, total, "ferry stored every event");
            let rate = stored as f64 / secs;
            line.push_str(&format!(" {} {rate:.0} ({} MiB)", range_name(ranges[i]), rss / 1024));
            by_range[i].0.push(rate);
            by_range[i].1 = by_range[i].1.max(rss);
        }
        println!("{line}");
    }
    let raw = median(&mut raw_rates);
    let medians: Vec<(Option<u64>, f64, u64)> = ranges
        .iter()
        .zip(&by_range)
        .map(|(r, (rates, rss))| (*r, median(&mut rates.clone()), *rss))
        .collect();
    let at = |range: Option<u64>| medians.iter().find(|m| m.0 == range).expect("measured");
    let (_, ferry, peak_rss) = *at(Some(scale.range));
    println!(
        "throughput (median of {}): raw {raw:.0} events/s, ferry {ferry:.0} events/s stored durably, ratio {:.2} (goal >= 0.8); \
         peak RSS of backfill {} MiB",
        scale.rounds,
        ferry / raw,
        peak_rss / 1024
    );
    println!("{:>16} {:>18} {:>13}", "max_block_range", "events/s (median)", "peak RSS MiB");
    for (range, rate, rss) in &medians {
        println!("{:>16} {rate:>18.0} {:>13}", range_name(*range), rss / 1024);
    }
    let best = medians.iter().filter(|m| m.0.is_some()).max_by(|a, b| a.1.total_cmp(&b.1)).expect("a range");
    let (_, default_rate, default_rss) = *at(None);
    // Also round by round, which cancels the load other processes put on the machine meanwhile.
    let rates_of =
        |range: Option<u64>| &by_range[ranges.iter().position(|r| *r == range).expect("measured")].0;
    let mut paired: Vec<f64> =
        rates_of(None).iter().zip(rates_of(best.0)).map(|(default, best)| default / best).collect();
    println!(
        "default range ÷ best ({}): {:.2} events/s, median of the rounds' ratios {:.2} (goal >= 0.95); \
         peak RSS {} MiB at the default, {} MiB at the best (goal <= 100)",
        range_name(best.0),
        default_rate / best.1,
        median(&mut paired),
        default_rss / 1024,
        best.2 / 1024
    );

    println!("\nRPC calls per range by number of factory children (range {} blocks):", scale.range);
    println!(
        "{:>9} {:>8} {:>7} {:>13} {:>10} {:>16} {:>13}",
        "children", "blocks", "ranges", "eth_getLogs", "rechecks", "requests/range", "peak RSS MiB"
    );
    let mut per_range = Vec::new();
    for &n in scale.children {
        let factory = anvil.deploy("EscrowFactory", &[]).await;
        let from = anvil.block_number().await;
        let mut children = Vec::new();
        let mut left = n;
        while left > 0 {
            let batch = left.min(200);
            let receipt = anvil
                .send(factory, IEscrowFactory::createEscrowsCall { n: U256::from(batch) }.abi_encode())
                .await;
            children.extend(escrows_in(&receipt, factory));
            left -= batch;
        }
        for child in children.iter().step_by((n as usize / 10).max(1)) {
            anvil.send(*child, IEscrow::approveCall {}.abi_encode()).await;
        }
        let to = anvil.block_number().await;
        let dir = tempfile::tempdir().expect("tempdir");
        write_config(dir.path(), &anvil.url(), Some(scale.range), emitter, Some(factory), 1_000);
        let (report, _, rss) = backfill(dir.path(), from, to);
        let source = &report["sources"][0];
        assert_eq!(source["children"].as_u64(), Some(n), "every child found");
        let blocks = source["blocks"].as_u64().expect("blocks");
        let ranges = blocks.div_ceil(scale.range);
        // Blocks near the head whose bloom may match, with no log in the range's answer, are
        // asked again by hash, one request each (whatever the number of children): counted
        // apart from the range queries.
        let rechecked = source["rechecked_blocks"].as_u64().unwrap_or(0);
        let get_logs = source["rpc"]["by_method"]["eth_getLogs"].as_u64().unwrap_or(0) - rechecked;
        let requests = source["rpc"]["requests"].as_u64().unwrap_or(0);
        let rate = requests as f64 / ranges as f64;
        println!(
            "{n:>9} {blocks:>8} {ranges:>7} {get_logs:>13} {rechecked:>10} {rate:>16.2} {:>13}",
            rss / 1024
        );
        per_range.push(get_logs as f64 / ranges as f64);
    }
    let spread = per_range.iter().cloned().fold(f64::MIN, f64::max)
        - per_range.iter().cloned().fold(f64::MAX, f64::min);
    println!("eth_getLogs per range: {per_range:.2?} (spread {spread:.2}; goal: constant, at most 2)");
    assert!(per_range.iter().all(|r| *r <= 2.0), "more than two eth_getLogs per range");

    guard_cost(&anvil, &scale).await;
    if !full {
        println!("(smoke run; `cargo bench --bench ingest` runs the full benchmark)");
    }
}

/// What the lagging-node check costs where it runs, near the head: the same backfill with the
/// default `reorg_window` (64: every block's header, rechecks by hash) and with 1 (the check off
/// but for the last block), over blocks whose blooms are saturated by unwatched events while the
/// watched contract emits in one block of ten — the worst case for false positives.
async fn guard_cost(anvil: &Anvil, scale: &Scale) {
    let noise = anvil.deploy("EventEmitter", &[]).await;
    let watched = anvil.deploy("EventEmitter", &[]).await;
    let from = anvil.block_number().await + 1;
    // Both transactions of a block go to the pool, then the block is mined.
    let unmined = async |to: Address, data: Vec<u8>| {
        let tx = serde_json::json!({ "from": DEV_ADDRESSES[0], "to": to, "data": Bytes::from(data) });
        anvil.rpc("eth_sendTransaction", serde_json::json!([tx])).await;
    };
    anvil.rpc("evm_setAutomine", serde_json::json!([false])).await;
    for i in 0..scale.guard_blocks {
        unmined(noise, IEventEmitter::emitManyCall { n: U256::from(scale.noise_per_block) }.abi_encode())
            .await;
        if i % 10 == 0 {
            unmined(watched, IEventEmitter::emitBatchesCall { from: i, n: 1 }.abi_encode()).await;
        }
        anvil.mine(1).await;
    }
    anvil.rpc("evm_setAutomine", serde_json::json!([true])).await;
    let to = anvil.block_number().await;
    println!(
        "\nlagging-node check near the head: blocks {from}..={to}, {} unwatched events per block, \
         the watched contract in one block of ten (range {} blocks)",
        scale.noise_per_block, scale.range
    );
    println!(
        "{:>13} {:>8} {:>12} {:>10} {:>16} {:>10}",
        "reorg_window", "blocks", "requests", "rechecks", "requests/block", "seconds"
    );
    let mut seconds = Vec::new();
    for window in [64, 1] {
        let dir = tempfile::tempdir().expect("tempdir");
        let yaml = format!(
            "chains:\n  local:\n    chain_id: 31337\n    rpc: [\"{}\"]\n    confirmations: 0\n    max_block_range: {}\n    \
             reorg_window: {window}\nsources:\n  bench:\n    kind: evm\n    chain: local\n    contracts:\n      - address: \"{}\"\n        \
             events: [\"event BatchReady(uint64 indexed height, bytes32 root)\"]\n",
            anvil.url(),
            scale.range,
            watched.to_checksum(None)
        );
        std::fs::write(dir.path().join("ferry.yaml"), yaml).expect("config");
        let (report, secs, _) = backfill(dir.path(), from, to);
        let source = &report["sources"][0];
        let blocks = source["blocks"].as_u64().expect("blocks");
        let requests = source["rpc"]["requests"].as_u64().unwrap_or(0);
        let rechecked = source["rechecked_blocks"].as_u64().unwrap_or(0);
        assert_eq!(source["events"].as_u64(), Some(scale.guard_blocks.div_ceil(10)), "every watched event");
        println!(
            "{window:>13} {blocks:>8} {requests:>12} {rechecked:>10} {:>16.2} {secs:>10.2}",
            requests as f64 / blocks as f64
        );
        seconds.push(secs);
    }
    println!("time with the check ÷ without: {:.2}", seconds[0] / seconds[1]);
}

/// `max_block_range: N`, or `default` when the config leaves it out.
fn range_name(range: Option<u64>) -> String {
    range.map_or_else(|| "default".into(), |r| r.to_string())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn write_config(
    dir: &Path,
    url: &str,
    range: Option<u64>,
    emitter: Address,
    factory: Option<Address>,
    max_addresses: u64,
) {
    let range = range.map(|r| format!("    max_block_range: {r}\n")).unwrap_or_default();
    let mut yaml = format!(
        "chains:\n  local:\n    chain_id: 31337\n    rpc: [\"{url}\"]\n    confirmations: 1\n{range}\
         sources:\n  bench:\n    kind: evm\n    chain: local\n    max_addresses: {max_addresses}\n"
    );
    match factory {
        None => yaml.push_str(&format!(
            "    contracts:\n      - address: \"{}\"\n        events: [\"event Ping(uint256 indexed seq, address indexed from, bytes32 data)\"]\n",
            emitter.to_checksum(None)
        )),
        Some(factory) => yaml.push_str(&format!(
            "    factories:\n      - address: \"{}\"\n        event: event EscrowDeployed(address indexed escrow, address indexed buyer, \
             address indexed seller, uint256 amount)\n        child_param: escrow\n        child_events:\n          - event Approved(address indexed by)\n",
            factory.to_checksum(None)
        )),
    }
    std::fs::write(dir.join("ferry.yaml"), yaml).expect("config");
}

/// Runs `ferry backfill` to completion: its report, wall seconds, peak RSS in KiB.
fn backfill(dir: &Path, from: u64, to: u64) -> (Value, f64, u64) {
    let started = Instant::now();
    let child = ferry_command(dir)
        .args(["backfill", "--from", &from.to_string(), "--to", &to.to_string(), "--json", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ferry runs");
    let pid = child.id();
    let mut peak = 0;
    let waiter = std::thread::spawn(move || child.wait_with_output());
    while !waiter.is_finished() {
        peak = peak.max(peak_rss_kib(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = waiter.join().expect("waiter").expect("output");
    let secs = started.elapsed().as_secs_f64();
    assert!(out.status.success(), "backfill failed");
    (serde_json::from_slice(&out.stdout).expect("JSON report"), secs, peak)
}

fn escrows_in(receipt: &Value, factory: Address) -> Vec<Address> {
    receipt["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter(|l| l["address"].as_str().and_then(|a| a.parse::<Address>().ok()) == Some(factory))
        .filter_map(|l| l["topics"][1].as_str().and_then(|t| t.parse().ok()))
        .map(Address::from_word)
        .collect()
}
