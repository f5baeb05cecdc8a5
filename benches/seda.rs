//! SEDA benchmark (not a timed test): `cargo bench --bench seda`.
//!
//! The test batching API (validators signing with real keys) and anvil destinations mining a block
//! every second with the default 30M block gas limit, each with the test Prover; confirmations 1.
//! In one run:
//! 1. **Capacity**, for 10 and 100 validators: a backlog of batches posted by one `ferry push` to
//!    one chain. Gas per `postBatch` from the receipts; the chain's capacity for it (block gas
//!    limit ÷ gas per post) against what ferry got in: batches per block over the blocks that
//!    carried them (the partial last block excluded), and the fullest block.
//! 2. **Latency**: `ferry watch` following the API while a batch is signed every 700 ms, three
//!    destinations: from "signed at the API" (the moment the test API signs it) to "confirmed on
//!    all three" (each Prover's `getLastBatchHeight()` reaching it, polled every 50 ms); p50 and
//!    p99, and the same minus the block time (what no pusher can save).
//!
//! Under `cargo test` (no `--bench` argument) it runs a small smoke version that checks the
//! harness itself: every batch on every Prover exactly once.

// The helpers shared with the test suite.
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use alloy::sol_types::SolEvent;
use ferry::seda::prover::BatchPosted;
use serde_json::{Value, json};
use support::command::ferry_command;
use support::hex::hex_u64;
use support::output::last_lines;
use support::process::KillOnDrop;
use support::seda_net::{ConfigOpts, SedaNet};

struct Scale {
    /// Batches in the capacity backlog, per validator count.
    backlog: usize,
    validators: &'static [usize],
    /// Batches signed while `watch` follows.
    latency_samples: usize,
}

const FULL: Scale = Scale { backlog: 300, validators: &[10, 100], latency_samples: 60 };
const SMOKE: Scale = Scale { backlog: 12, validators: &[10], latency_samples: 4 };

const BLOCK_SECONDS: f64 = 1.0;
const SIGN_EVERY: Duration = Duration::from_millis(700);

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { FULL } else { SMOKE };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run(scale, full));
}

async fn run(scale: Scale, full: bool) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "destinations: anvil --block-time 1, default block gas limit, confirmations 1; {} cores, load average {}\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    for &validators in scale.validators {
        capacity(validators, scale.backlog).await;
    }
    latency(scale.latency_samples).await;
    if !full {
        println!("(smoke run; `cargo bench --bench seda` runs the full benchmark)");
    }
}

/// One chain, `backlog` batches: how many `postBatch` ferry fits per block against what fits.
async fn capacity(validators: usize, backlog: usize) {
    let net = SedaNet::start_with(validators, 1, &["--block-time", "1"]).await;
    net.api.produce(backlog);
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), &ConfigOpts { start_batch: Some(1), ..ConfigOpts::default() });
    let started = Instant::now();
    let out = ferry_command(dir.path())
        .args(["push", "--json", "--timeout", "10m"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("ferry push");
    let wall = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "push failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        last_lines(&String::from_utf8_lossy(&out.stderr), 40)
    );
    let posted = net.posted_heights(0).await;
    assert_eq!(posted, (1..=backlog as u64).collect::<Vec<u64>>(), "every batch once, in order");

    // Per block: how many posts, and the gas each used.
    let dest = &net.dests[0];
    let logs = dest
        .anvil
        .rpc(
            "eth_getLogs",
            json!([{ "address": dest.prover, "fromBlock": "0x0", "toBlock": "latest",
                     "topics": [<BatchPosted as SolEvent>::SIGNATURE_HASH] }]),
        )
        .await;
    let mut per_block: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for log in logs.as_array().expect("logs") {
        let block = hex_u64(&log["blockNumber"]);
        per_block
            .entry(block)
            .or_default()
            .push(log["transactionHash"].as_str().unwrap_or_default().to_string());
    }
    let mut gas = Vec::new();
    for hashes in per_block.values() {
        for hash in hashes {
            let receipt = dest.anvil.receipt(hash).await;
            gas.push(hex_u64(&receipt["gasUsed"]));
        }
    }
    let gas_per_post = gas.iter().sum::<u64>() as f64 / gas.len().max(1) as f64;
    let block: Value = dest.anvil.rpc("eth_getBlockByNumber", json!(["latest", false])).await;
    let gas_limit = hex_u64(&block["gasLimit"]) as f64;
    let fits = (gas_limit / gas_per_post).floor();
    let counts: Vec<usize> = per_block.values().map(Vec::len).collect();
    let fullest = counts.iter().copied().max().unwrap_or(0);
    // The last block carries what was left: not a measure of the rate.
    let steady: Vec<usize> = counts.iter().copied().take(counts.len().saturating_sub(1)).collect();
    let steady_mean = if steady.is_empty() {
        counts.first().copied().unwrap_or(0) as f64
    } else {
        steady.iter().sum::<usize>() as f64 / steady.len() as f64
    };
    println!(
        "capacity, {validators} validators: {backlog} batches in {:.1}s over {} blocks; gas per postBatch {:.0} \
         (from {} receipts); block gas limit {:.0} → {fits:.0} posts fit per block; ferry: {steady_mean:.1} per \
         block in steady state (ratio {:.2}), fullest block {fullest} ({:.0} % of the gas limit)",
        wall,
        counts.len(),
        gas_per_post,
        gas.len(),
        gas_limit,
        steady_mean / fits.max(1.0),
        fullest as f64 * gas_per_post / gas_limit * 100.0
    );
}

/// Three chains, `watch` following: signed at the API → on all three Provers.
async fn latency(samples: usize) {
    let net = SedaNet::start_with(10, 3, &["--block-time", "1"]).await;
    net.api.produce(1);
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), &ConfigOpts { start_batch: Some(1), ..ConfigOpts::default() });
    let log = std::fs::File::create(dir.path().join("watch.err")).expect("log");
    let mut watch =
        KillOnDrop::spawn(ferry_command(dir.path()).arg("watch").stdout(Stdio::null()).stderr(log));
    assert!(net.wait_all_at(1, Duration::from_secs(60)).await, "watch did not post batch 1");

    let mut signed_at = BTreeMap::new();
    let mut landed_at = BTreeMap::new();
    let mut next_sign = Instant::now();
    let deadline = Instant::now() + SIGN_EVERY * samples as u32 + Duration::from_secs(60);
    let last = 1 + samples as u64;
    while landed_at.len() < samples && Instant::now() < deadline {
        if signed_at.len() < samples && Instant::now() >= next_sign {
            let n = net.api.produce(1)[0];
            signed_at.insert(n, Instant::now());
            next_sign += SIGN_EVERY;
        }
        let mut lowest = u64::MAX;
        for i in 0..net.dests.len() {
            lowest = lowest.min(net.last_height(i).await);
        }
        for (&n, _) in signed_at.iter().filter(|(n, _)| **n <= lowest) {
            landed_at.entry(n).or_insert_with(Instant::now);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Ok(Some(status)) = watch.try_wait() {
        panic!("watch exited early ({status})");
    }
    drop(watch);
    assert_eq!(landed_at.len(), samples, "not every batch landed on all three Provers");
    for i in 0..net.dests.len() {
        assert_eq!(
            net.posted_heights(i).await,
            (1..=last).collect::<Vec<u64>>(),
            "destination {i}: every batch once"
        );
    }
    let mut latencies: Vec<f64> =
        landed_at.iter().map(|(n, t)| t.duration_since(signed_at[n]).as_secs_f64()).collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    let (p50, p99) = (pick(0.5), pick(0.99));
    println!(
        "latency, signed at the API → confirmed on all 3 Provers ({} batches, one every {:?}, `watch` with \
         poll_interval 200ms): p50 {p50:.2}s, p99 {p99:.2}s; minus the block time: p50 {:.2}s, p99 {:.2}s",
        latencies.len(),
        SIGN_EVERY,
        p50 - BLOCK_SECONDS,
        p99 - BLOCK_SECONDS
    );
}
