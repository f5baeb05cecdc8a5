//! Crash safety of SEDA pushes: `ferry push` and `ferry watch` killed with SIGKILL at random
//! moments while batches keep coming (and the validator set changes mid-way), started again each
//! time. In the end, after one last `push` left alone, every Prover holds every batch, each
//! posted by exactly one transaction: its `BatchPosted` heights are 1..=N once each, and the
//! signer's nonce on each chain is N — no transaction signed twice for a batch (a second one
//! would revert, and still use a nonce), no nonce left unused.
//!
//! The seed is printed; `FERRY_CRASH_SEED=<n>` runs another.

use std::time::Duration;

use serde_json::json;

use crate::deliver::{Miner, push};
use crate::deliver_crash::{kill, round_log, spawn};
use crate::support::devnet::DEV_ADDRESSES;
use crate::support::hex::hex_u64;
use crate::support::output::text;
use crate::support::seda_net::{ConfigOpts, SedaNet};

const SEED: u64 = 0x5eda_c4a5;
const ROUNDS: usize = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_moments_every_batch_lands_once_per_chain_without_nonce_gaps() {
    let seed = std::env::var("FERRY_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
    eprintln!("seda crash seed: {seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let net = SedaNet::start(6, 3).await;
    net.api.produce(8);
    let dir = tempfile::tempdir().expect("tempdir");
    net.write_config(dir.path(), &ConfigOpts { start_batch: Some(1), ..ConfigOpts::default() });
    let _miner = Miner::start(net.dests.iter().map(|d| d.anvil.url()).collect(), Duration::from_millis(400));

    let mut rounds = Vec::new();
    for round in 0..ROUNDS {
        if round == ROUNDS / 2 {
            net.api.rotate_keys(3);
            net.api.set_powers(&[30_000_000, 20_000_000, 20_000_000, 10_000_000, 10_000_000, 10_000_000]);
        }
        let watch = rng.bool();
        let args: &[&str] = if watch { &["watch"] } else { &["push", "--json", "--timeout", "60s"] };
        // A push syncs up to the head it finds: its batches come first. A watch follows: its
        // batches come while it runs, so that the kill lands while it fetches, signs or follows.
        if !watch {
            net.api.produce(rng.usize(3..=8));
        }
        let mut child = spawn(dir.path(), args, round);
        if watch {
            tokio::time::sleep(Duration::from_millis(rng.u64(100..600))).await;
            net.api.produce(rng.usize(3..=8));
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(50..900))).await;
        let how = kill(&mut child);
        rounds.push(format!("round {round}: {} {how}", args[0]));
    }
    eprintln!("{}", rounds.join("\n"));
    // A kill that always came after the process was done would test nothing.
    let killed = rounds.iter().filter(|r| r.contains("killed")).count();
    assert!(
        killed >= ROUNDS / 3,
        "only {killed} of {ROUNDS} rounds were killed at work:\n{}",
        rounds.join("\n")
    );
    let (out, report) = push(dir.path(), &[]);
    let n = net.api.latest_signed();
    assert_eq!(
        out.status.code(),
        Some(0),
        "final push: {}\n{}\nlast round:\n{}",
        text(&out),
        rounds.join("\n"),
        round_log(dir.path(), ROUNDS - 1)
    );
    for (i, d) in net.dests.iter().enumerate() {
        assert_eq!(
            net.posted_heights(i).await,
            (1..=n).collect::<Vec<u64>>(),
            "destination {i}: {report}\n{}",
            rounds.join("\n")
        );
        let nonce =
            hex_u64(&d.anvil.rpc("eth_getTransactionCount", json!([DEV_ADDRESSES[1], "latest"])).await);
        assert_eq!(nonce, n, "destination {i}: {n} batches took {nonce} transactions\n{}", rounds.join("\n"));
        let pending =
            hex_u64(&d.anvil.rpc("eth_getTransactionCount", json!([DEV_ADDRESSES[1], "pending"])).await);
        assert_eq!(pending, n, "destination {i}: transactions left in the pool");
    }
}
