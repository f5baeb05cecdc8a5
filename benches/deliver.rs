//! Delivery benchmark (not a timed test): `cargo bench --bench deliver`.
//!
//! Destination anvils mine a block every second with the default 30M block gas limit; the target
//! is `record(uint64,bytes32)` on `BatchReceiver`, confirmations 1. The source is synced first by
//! `ferry backfill`, so the real `ferry push --no-sync` process times delivery alone. In one run:
//! 1. **Throughput**: a backlog of 2,000 items to one chain, against that chain's capacity for the
//!    same calls (block gas limit ÷ gas used per `record`, read from the receipts, per block time).
//!    End to end (items ÷ wall time of the push process, exec to exit with all confirmed) and in
//!    steady state (ferry's transactions per block over the blocks that carried them, the partial
//!    last one excluded). Goal ≥ 0.9. Also how full those blocks were, and the pool of unmined
//!    transactions sampled during the push (it shows the per-chain in-flight cap when it binds).
//! 2. **Parallel chains**: push wall time for 5 chains × 1,000 items ÷ for 1 chain × 1,000. Goal ≤ 1.3.
//! 3. **Baseline**: the way the replaced systems sent: estimate, sign (alloy, the same key),
//!    `eth_sendRawTransaction`, poll the receipt, then the next item; on a small sample.
//! 4. **Peak RSS** of each push process, with its CPU time and the bytes it wrote to disk (from
//!    `/proc`), which show whether it waited or worked.
//!
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version that checks the
//! harness itself: every item recorded exactly once on every chain.

// The helpers shared with the test suite.
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::{TransactionBuilder, TxSignerSync};
use alloy::primitives::{Address, B256, TxKind, U256, keccak256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use futures_util::future::join_all;
use serde_json::{Value, json};
use support::command::ferry_command;
use support::devnet::{self, Anvil, DEV_ADDRESSES, DEV_KEYS, IBatchReceiver, IEventEmitter};
use support::hex::hex_u64;
use support::output::{self, last_lines};
use support::process::peak_rss_kib;

struct Scale {
    /// Backlog to one chain for the throughput ratio.
    backlog: u64,
    /// Items per chain in the parallel comparison, and how many chains.
    parallel_items: u64,
    parallel_chains: usize,
    /// Items sent one at a time by the baseline.
    baseline: u64,
}

const FULL: Scale = Scale { backlog: 2_000, parallel_items: 1_000, parallel_chains: 5, baseline: 20 };
const SMOKE: Scale = Scale { backlog: 20, parallel_items: 20, parallel_chains: 2, baseline: 2 };

/// Destination block time, as anvil is told and as capacity per second is reckoned.
const BLOCK_TIME: &str = "1";
const BLOCK_SECONDS: f64 = 1.0;
/// The destination chains' `poll_interval` in the config (the default is 2s; a 1s chain wants less).
const POLL_INTERVAL: &str = "200ms";
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { FULL } else { SMOKE };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run(scale, full));
}

async fn run(scale: Scale, full: bool) {
    let source = Anvil::start(31337).await;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "destinations: anvil --block-time {BLOCK_TIME}, default block gas limit, confirmations 1, poll_interval \
         {POLL_INTERVAL}; the source synced by `ferry backfill`, then `ferry push --no-sync` timed. {} cores, \
         load average {}\n",
        cores(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );

    println!("1. throughput: {} items to one chain", scale.backlog);
    let one = deliver(&source, scale.backlog, 1).await;
    let chain = &one.chains[0];
    let per_block = chain.capacity_per_block();
    let capacity = per_block / BLOCK_SECONDS;
    let end_to_end = scale.backlog as f64 / one.push.secs / capacity;
    let steady = chain.steady_per_block();
    let (mean_full, min_full, max_full) = chain.fullness();
    line("record() gas used (receipts)", chain.gas_summary());
    line(
        "capacity",
        format!(
            "{} gas / block ÷ that = {per_block:.1} calls/block = {capacity:.1} calls/s",
            chain.gas_limit()
        ),
    );
    line(
        "push, exec to exit",
        format!(
            "{:.2} s -> {:.1} items/s (ferry's own report: {:.2} s)",
            one.push.secs,
            scale.backlog as f64 / one.push.secs,
            one.push.reported_secs()
        ),
    );
    line("  ratio, end to end", format!("{end_to_end:.2}   (goal >= 0.9)"));
    // Blocks come on a fixed beat: even a sender that filled every block from the first one
    // waits for that first block and needs whole blocks after it.
    let first_block = one.push.first_block_at();
    let ideal = first_block + ((scale.backlog as f64 / per_block.floor()).ceil() - 1.0) * BLOCK_SECONDS;
    line(
        "  at best, at this block phase",
        format!(
            "{:.2} (first block {first_block:.2} s after exec, then every block full)",
            scale.backlog as f64 / ideal / capacity
        ),
    );
    line(
        "blocks carrying ferry's txs",
        format!(
            "{} (#{}..=#{}), {:.2} s apart",
            chain.blocks.len(),
            chain.first(),
            chain.last(),
            chain.interval()
        ),
    );
    line("  ferry txs per block", chain.per_block());
    line(
        "  steady state, last block excluded",
        match steady {
            Some(s) => format!("{s:.1} txs/block -> ratio {:.2}   (goal >= 0.9)", s / per_block),
            None => "n/a (one block)".into(),
        },
    );
    line(
        "  fullness (gas used / limit)",
        format!(
            "mean {:.0} %, min {:.0} %, max {:.0} %",
            mean_full * 100.0,
            min_full * 100.0,
            max_full * 100.0
        ),
    );
    line("unmined txs in the pool", one.push.pool_summary(chain.last()));
    line("push process", one.push.usage.summary(one.push.secs, scale.backlog));
    line("machine", one.machine());

    println!(
        "\n2. parallel chains: {} items each to 1 chain, then to {} chains",
        scale.parallel_items, scale.parallel_chains
    );
    let single = deliver(&source, scale.parallel_items, 1).await;
    let many = deliver(&source, scale.parallel_items, scale.parallel_chains).await;
    let parallel = many.push.secs / single.push.secs;
    line("1 chain", format!("{:.2} s; txs per block {}", single.push.secs, single.chains[0].per_block()));
    line("", single.push.usage.summary(single.push.secs, scale.parallel_items));
    line("", single.machine());
    line(&format!("{} chains", scale.parallel_chains), format!("{:.2} s", many.push.secs));
    for (i, c) in many.chains.iter().enumerate() {
        line(&format!("  d{i} txs per block"), c.per_block());
    }
    let all = scale.parallel_items * scale.parallel_chains as u64;
    line("", many.push.usage.summary(many.push.secs, all));
    line("", many.machine());
    line("  ratio", format!("{parallel:.2}   (goal <= 1.3)"));

    println!("\n3. baseline: send, await the receipt, send the next ({} items)", scale.baseline);
    let baseline = baseline(scale.baseline).await;
    let ferry_rate = scale.backlog as f64 / one.push.secs;
    line("baseline", format!("{baseline:.2} items/s"));
    line(
        "ferry push (run 1)",
        format!("{ferry_rate:.1} items/s -> {:.0}x the baseline", ferry_rate / baseline),
    );

    println!("\nsummary");
    println!("  {:<44} {:>10}   goal", "figure", "measured");
    let row = |name: &str, value: String, goal: &str| println!("  {name:<44} {value:>10}   {goal}");
    row("throughput ratio, end to end", format!("{end_to_end:.2}"), ">= 0.9");
    row(
        "throughput ratio, steady state",
        steady.map_or("n/a".into(), |s| format!("{:.2}", s / per_block)),
        ">= 0.9",
    );
    row("mean block fullness, run 1", format!("{:.0} %", mean_full * 100.0), "");
    row(
        &format!("{} chains / 1 chain, push wall time", scale.parallel_chains),
        format!("{parallel:.2}"),
        "<= 1.3",
    );
    row("ferry / baseline, items per second", format!("{:.0}", ferry_rate / baseline), "");
    let peak = [&one, &single, &many].iter().map(|r| r.push.usage.rss_kib).max().unwrap_or(0);
    row("peak RSS of push, largest of the runs", format!("{} MiB", peak / 1024), "");
    if !full {
        println!("(smoke run; `cargo bench --bench deliver` runs the full benchmark)");
    }
}

fn line(label: &str, value: impl std::fmt::Display) {
    println!("  {label:<36} {value}");
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One delivery run: what push did and what each destination chain saw.
struct Run {
    push: Push,
    chains: Vec<ChainSeen>,
    /// CPU seconds the destination anvils used while push ran.
    anvil_cpu: f64,
}

impl Run {
    /// Whether the machine had CPU to spare: ferry's and the anvils' CPU time over the cores' time.
    fn machine(&self) -> String {
        let busy = self.push.usage.cpu_secs + self.anvil_cpu;
        format!(
            "CPU ferry {:.2} s + destination anvils {:.2} s = {:.0} % of {} cores over the push",
            self.push.usage.cpu_secs,
            self.anvil_cpu,
            busy / (self.push.secs * cores() as f64) * 100.0,
            cores()
        )
    }
}

/// Emits `items` batches on the source, syncs them with `ferry backfill`, and times
/// `ferry push --no-sync` to `chains` fresh destinations; checks every item landed exactly once.
async fn deliver(source: &Anvil, items: u64, chains: usize) -> Run {
    let emitter = source.deploy("EventEmitter", &[]).await;
    let from = source.block_number().await + 1;
    let mut height = 0;
    while height < items {
        let n = (items - height).min(1_000);
        source.send(emitter, IEventEmitter::emitBatchesCall { from: height, n }.abi_encode()).await;
        height += n;
    }
    let to = source.block_number().await;
    source.mine(1).await;

    let dests = join_all((0..chains).map(|i| async move {
        let anvil = Anvil::start_with(41000 + i as u64, &["--block-time", BLOCK_TIME]).await;
        let receiver = anvil.deploy("BatchReceiver", &[]).await;
        (anvil, receiver)
    }))
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_config(dir.path(), source, emitter, &dests);

    let out = ferry_command(dir.path())
        .args(["backfill", "--from", &from.to_string(), "--to", &to.to_string(), "--json", "-q"])
        .output()
        .expect("ferry backfill runs");
    assert!(out.status.success(), "backfill failed: {}", output::stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["sources"][0]["events"].as_u64(), Some(items), "backfill stored every batch");

    let heads = join_all(dests.iter().map(|(anvil, _)| anvil.block_number())).await;
    let anvil_cpu = || dests.iter().filter_map(|(anvil, _)| cpu_secs(anvil.pid())).sum::<f64>();
    let before = anvil_cpu();
    let push = push(dir.path(), &dests[0].0).await;
    let anvil_cpu = anvil_cpu() - before;
    for c in push.report["chains"].as_array().expect("chains") {
        assert_eq!(c["confirmed"].as_u64(), Some(items), "{c}");
        assert_eq!(c["left"].as_u64(), Some(0), "{c}");
    }

    let mut seen = Vec::new();
    for ((anvil, receiver), head) in dests.iter().zip(heads) {
        assert_exactly_once(anvil, *receiver, items).await;
        let chain = ChainSeen::scan(anvil, head + 1).await;
        assert_eq!(chain.txs(), items, "one transaction per item on chain {}", anvil.chain_id());
        seen.push(chain);
    }
    Run { push, chains: seen, anvil_cpu }
}

/// BatchReady events from `emitter` routed to `record` on every destination.
fn write_config(dir: &Path, source: &Anvil, emitter: Address, dests: &[(Anvil, Address)]) {
    let mut yaml = format!(
        "chains:\n  src:\n    chain_id: {}\n    rpc: [\"{}\"]\n    confirmations: 1\n",
        source.chain_id(),
        source.url()
    );
    let mut targets = String::new();
    for (i, (anvil, receiver)) in dests.iter().enumerate() {
        yaml.push_str(&format!(
            "  d{i}:\n    chain_id: {}\n    rpc: [\"{}\"]\n    confirmations: 1\n    poll_interval: {POLL_INTERVAL}\n    \
             signer: {{ key_env: FERRY_TEST_SIGNER }}\n",
            anvil.chain_id(),
            anvil.url()
        ));
        targets.push_str(&format!("      d{i}: \"{}\"\n", receiver.to_checksum(None)));
    }
    yaml.push_str(&format!(
        "sources:\n  batches:\n    kind: evm\n    chain: src\n    contracts:\n      - address: \"{}\"\n        \
         events: [\"event BatchReady(uint64 indexed height, bytes32 root)\"]\n\
         targets:\n  receiver:\n    kind: evm-call\n    function: function record(uint64 height, bytes32 root)\n    \
         args:\n      height: {{ field: height }}\n      root: {{ field: root }}\n    chains:\n{targets}\
         routes:\n  - source: batches\n    targets: [receiver]\n",
        emitter.to_checksum(None)
    ));
    std::fs::write(dir.join("ferry.yaml"), yaml).expect("config");
}

/// A finished `ferry push`: its report, wall seconds, peak RSS, and the pool of the first
/// destination sampled as it ran: (seconds since exec, unmined transactions, head block).
struct Push {
    report: Value,
    secs: f64,
    usage: Usage,
    pool: Vec<(f64, u64, u64)>,
}

/// What `/proc` said of a process at its last sample before exit: peak RSS, CPU time (user and
/// system), and bytes it caused to be written to disk.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    cpu_secs: f64,
    disk_bytes: u64,
}

/// User and system CPU seconds of a process so far.
fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the parenthesized command name: state is field 3, utime 14, stime 15, in ticks of
    // USER_HZ (100 on Linux).
    let after = stat.rsplit_once(')')?.1;
    let ticks: Vec<u64> = after.split_whitespace().skip(11).take(2).filter_map(|t| t.parse().ok()).collect();
    Some(ticks.iter().sum::<u64>() as f64 / 100.0)
}

impl Usage {
    fn read(pid: u32) -> Option<Usage> {
        let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
        let write_bytes = io.lines().find(|l| l.starts_with("write_bytes:"))?.split_whitespace().nth(1)?;
        Some(Usage {
            rss_kib: peak_rss_kib(pid)?,
            cpu_secs: cpu_secs(pid)?,
            disk_bytes: write_bytes.parse().ok()?,
        })
    }

    fn summary(&self, wall: f64, items: u64) -> String {
        format!(
            "CPU {:.2} s ({:.0} % of wall), written to disk {:.0} MiB ({:.0} KiB per item), peak RSS {} MiB",
            self.cpu_secs,
            self.cpu_secs / wall * 100.0,
            self.disk_bytes as f64 / (1 << 20) as f64,
            self.disk_bytes as f64 / 1024.0 / items as f64,
            self.rss_kib / 1024
        )
    }
}

impl Push {
    fn reported_secs(&self) -> f64 {
        self.report["seconds"].as_f64().unwrap_or(f64::NAN)
    }

    /// Seconds from exec to the first new block on the watched chain (to the sampling interval).
    fn first_block_at(&self) -> f64 {
        let start = self.pool.first().map_or(0, |s| s.2);
        self.pool.iter().find(|s| s.2 > start).map_or(f64::NAN, |s| s.0)
    }

    /// When the first transaction reached the pool, how full the pool got, when the block that
    /// carried the last transaction appeared, and when push exited.
    fn pool_summary(&self, last_block: u64) -> String {
        let busy: Vec<u64> = self.pool.iter().map(|s| s.1).filter(|n| *n > 0).collect();
        let first = self.pool.iter().find(|s| s.1 > 0).map_or(f64::NAN, |s| s.0);
        let mined = self.pool.iter().find(|s| s.2 >= last_block).map_or(f64::NAN, |s| s.0);
        let mean = busy.iter().sum::<u64>() as f64 / busy.len().max(1) as f64;
        format!(
            "max {}, mean {mean:.0} while non-empty; first tx at {first:.2} s, last block seen at {mined:.2} s, exit at {:.2} s",
            busy.iter().max().unwrap_or(&0),
            self.secs
        )
    }
}

/// Runs `ferry push --no-sync` to completion, sampling its peak RSS and `watch`'s pool.
async fn push(dir: &Path, watch: &Anvil) -> Push {
    let log = std::fs::File::create(dir.join("push.log")).expect("log file");
    let started = Instant::now();
    let child = ferry_command(dir)
        .args(["push", "--no-sync", "--json", "--timeout", "5m", "-v"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("ferry runs");
    let pid = child.id();
    let waiter = std::thread::spawn(move || {
        let out = child.wait_with_output();
        (out, Instant::now())
    });
    let mut usage = Usage::default();
    let mut pool = Vec::new();
    let mut next_sample = Duration::ZERO;
    while !waiter.is_finished() {
        if let Some(now) = Usage::read(pid) {
            usage = now;
        }
        if started.elapsed() >= next_sample {
            let at = started.elapsed().as_secs_f64();
            let status = watch.rpc("txpool_status", json!([])).await;
            let head = watch.block_number().await;
            pool.push((at, hex_u64(&status["pending"]), head));
            next_sample += SAMPLE_EVERY;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (out, ended) = waiter.join().expect("waiter");
    let out = out.expect("output");
    let secs = ended.duration_since(started).as_secs_f64();
    if !out.status.success() {
        let log = std::fs::read_to_string(dir.join("push.log")).unwrap_or_default();
        panic!("push failed ({}): {}\n{}", out.status, output::stdout(&out), last_lines(&log, 40));
    }
    Push { report: serde_json::from_slice(&out.stdout).expect("JSON report"), secs, usage, pool }
}

async fn view(anvil: &Anvil, to: Address, data: Vec<u8>) -> U256 {
    U256::from_be_slice(&anvil.call(to, data).await.expect("view call"))
}

/// `totalRecorded == items` and `recordedCount(h) == 1` for every height (a sample at full scale).
async fn assert_exactly_once(anvil: &Anvil, receiver: Address, items: u64) {
    let total = view(anvil, receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await;
    assert_eq!(total, U256::from(items), "totalRecorded on chain {}", anvil.chain_id());
    let step = (items / 20).max(1);
    for height in (0..items).step_by(step as usize).chain([items - 1]) {
        let n = view(anvil, receiver, IBatchReceiver::recordedCountCall { height }.abi_encode()).await;
        assert_eq!(n, U256::from(1), "recordedCount({height}) on chain {}", anvil.chain_id());
    }
}

/// One block on a destination: the signer's transactions in it, and its gas.
struct Block {
    number: u64,
    timestamp: u64,
    gas_used: u64,
    gas_limit: u64,
    ferry_txs: u64,
}

/// What a destination chain saw from the first to the last block carrying ferry's transactions.
struct ChainSeen {
    blocks: Vec<Block>,
    /// Gas used by each of ferry's transactions, from the receipts.
    gas: Vec<u64>,
}

impl ChainSeen {
    async fn scan(anvil: &Anvil, from: u64) -> ChainSeen {
        let signer = DEV_ADDRESSES[1].to_ascii_lowercase();
        let head = anvil.block_number().await;
        let mut blocks = Vec::new();
        let mut gas = Vec::new();
        for number in from..=head {
            let block = anvil.rpc("eth_getBlockByNumber", json!([format!("{number:#x}"), true])).await;
            let ours = |tx: &Value| tx["from"].as_str().is_some_and(|f| f.to_ascii_lowercase() == signer);
            let ferry_txs =
                block["transactions"].as_array().expect("transactions").iter().filter(|t| ours(t)).count();
            if ferry_txs > 0 {
                let receipts = anvil.rpc("eth_getBlockReceipts", json!([format!("{number:#x}")])).await;
                for r in receipts.as_array().expect("receipts").iter().filter(|r| ours(r)) {
                    assert_eq!(r["status"], "0x1", "a ferry transaction reverted: {r}");
                    gas.push(hex_u64(&r["gasUsed"]));
                }
            }
            blocks.push(Block {
                number,
                timestamp: hex_u64(&block["timestamp"]),
                gas_used: hex_u64(&block["gasUsed"]),
                gas_limit: hex_u64(&block["gasLimit"]),
                ferry_txs: ferry_txs as u64,
            });
        }
        let first = blocks.iter().position(|b| b.ferry_txs > 0).expect("ferry's transactions are on chain");
        let last = blocks.iter().rposition(|b| b.ferry_txs > 0).expect("a last block");
        blocks.truncate(last + 1);
        blocks.drain(..first);
        ChainSeen { blocks, gas }
    }

    fn txs(&self) -> u64 {
        self.blocks.iter().map(|b| b.ferry_txs).sum()
    }

    fn first(&self) -> u64 {
        self.blocks[0].number
    }

    fn last(&self) -> u64 {
        self.blocks[self.blocks.len() - 1].number
    }

    fn gas_limit(&self) -> u64 {
        self.blocks[0].gas_limit
    }

    fn mean_gas(&self) -> f64 {
        self.gas.iter().sum::<u64>() as f64 / self.gas.len() as f64
    }

    fn gas_summary(&self) -> String {
        let (min, max) = (self.gas.iter().min().unwrap_or(&0), self.gas.iter().max().unwrap_or(&0));
        format!("mean {:.0}, min {min}, max {max} ({} receipts)", self.mean_gas(), self.gas.len())
    }

    /// `record` calls one block holds: its gas limit ÷ the mean gas a call used.
    fn capacity_per_block(&self) -> f64 {
        self.gas_limit() as f64 / self.mean_gas()
    }

    /// Ferry's transactions per block over the blocks that carried them, the last excluded.
    fn steady_per_block(&self) -> Option<f64> {
        let body = &self.blocks[..self.blocks.len() - 1];
        (!body.is_empty()).then(|| body.iter().map(|b| b.ferry_txs).sum::<u64>() as f64 / body.len() as f64)
    }

    /// Mean, min and max of gas used ÷ gas limit over the blocks that carried ferry's transactions.
    fn fullness(&self) -> (f64, f64, f64) {
        let shares: Vec<f64> = self.blocks.iter().map(|b| b.gas_used as f64 / b.gas_limit as f64).collect();
        let mean = shares.iter().sum::<f64>() / shares.len() as f64;
        (mean, shares.iter().cloned().fold(f64::MAX, f64::min), shares.iter().cloned().fold(0.0, f64::max))
    }

    /// Seconds between blocks, from their timestamps.
    fn interval(&self) -> f64 {
        let n = self.blocks.len() as u64 - 1;
        if n == 0 {
            return BLOCK_SECONDS;
        }
        (self.blocks[n as usize].timestamp - self.blocks[0].timestamp) as f64 / n as f64
    }

    fn per_block(&self) -> String {
        let counts: Vec<String> = self.blocks.iter().map(|b| b.ferry_txs.to_string()).collect();
        format!("[{}]", counts.join(" "))
    }
}

/// The replaced systems' way: for each item estimate gas, sign, `eth_sendRawTransaction`, poll
/// the receipt, then the next. Items per second.
async fn baseline(items: u64) -> f64 {
    let anvil = Anvil::start_with(41100, &["--block-time", BLOCK_TIME]).await;
    let receiver = anvil.deploy("BatchReceiver", &[]).await;
    let url = anvil.url();
    let provider = devnet::provider(&url);
    let signer: PrivateKeySigner = DEV_KEYS[1].parse().expect("key");
    let mut nonce = provider.get_transaction_count(signer.address()).await.expect("nonce");
    let started = Instant::now();
    for height in 0..items {
        let root = keccak256(U256::from(height).to_be_bytes::<32>());
        let input = IBatchReceiver::recordCall { height, root }.abi_encode();
        let request = TransactionRequest::default()
            .with_from(signer.address())
            .with_to(receiver)
            .with_input(input.clone());
        let gas = provider.estimate_gas(request).await.expect("estimate");
        let fees = provider.estimate_eip1559_fees().await.expect("fees");
        let mut tx = TxEip1559 {
            chain_id: anvil.chain_id(),
            nonce,
            gas_limit: gas + gas / 5,
            max_fee_per_gas: fees.max_fee_per_gas,
            max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
            to: TxKind::Call(receiver),
            value: U256::ZERO,
            access_list: Default::default(),
            input: input.into(),
        };
        let signature = signer.sign_transaction_sync(&mut tx).expect("sign");
        let envelope: TxEnvelope = tx.into_signed(signature).into();
        let hash: B256 = *envelope.tx_hash();
        let sent = provider.send_raw_transaction(&envelope.encoded_2718()).await.expect("broadcast");
        assert_eq!(*sent.tx_hash(), hash, "the node names the transaction by the hash we signed");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(receipt) = provider.get_transaction_receipt(hash).await.expect("receipt") {
                assert!(receipt.status(), "baseline transaction reverted");
                break;
            }
            assert!(Instant::now() < deadline, "no receipt for {hash}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        nonce += 1;
    }
    let rate = items as f64 / started.elapsed().as_secs_f64();
    assert_exactly_once(&anvil, receiver, items).await;
    rate
}
