//! Crash safety of delivery (`docs/architecture.md` §5): a real `ferry push` or `ferry watch` is killed with
//! SIGKILL at twenty moments and started again each time. Random delays hit whatever they hit; the
//! moments that matter most are made certain. A fault proxy in front of each destination holds a
//! broadcast of a transaction the node does not have yet: before forwarding it (the intent is in
//! the store, the node never sees it) or after (the node has it, ferry never hears so); a
//! destination that stops mining keeps the transactions in its pool (broadcast, no receipt).
//!
//! After every round: no delivery signed twice (every broadcast passes a proxy, which records it)
//! and nothing recorded twice on any chain. In the end, after one last `push` left alone: every
//! item on every chain exactly once, every nonce of the signer used by one mined transaction, the
//! pool empty, and every transaction ferry ever signed mined.
//!
//! The seed is printed; `FERRY_CRASH_SEED=<n>` runs another (the choices repeat, the timing of
//! the processes does not), and `FERRY_CRASH_KEEP=1` keeps the directory (config, store, each
//! round's ferry output).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use alloy::consensus::{Transaction, TxEnvelope};
use alloy::eips::eip2718::Decodable2718;
use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::SolCall;
use futures_util::future::join_all;
use serde_json::json;

use crate::deliver::{Net, push, view_u256};
use crate::support::command::ferry_command;
use crate::support::devnet::{Anvil, DEV_ADDRESSES, IBatchReceiver};
use crate::support::hex::hex_u64;
use crate::support::output::{last_lines, text};
use crate::support::process::KillOnDrop;
use crate::support::proxy::{FaultProxy, Held, HoldAt};

const SEED: u64 = 0x00fe_7751;
const BACKLOG: u64 = 60;
/// How long a held broadcast waits: under the config's `request_timeout` (2s), so that a ferry
/// left alone would simply get its answer.
const HOLD: Duration = Duration::from_millis(1500);
const WAIT: Duration = Duration::from_secs(30);

/// Where a round's kill lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// After a random delay.
    Random,
    /// While one of its broadcasts is held before the node: intent written, not broadcast.
    BeforeBroadcast,
    /// Right after a `BeforeBroadcast` kill, on its chain, while the first broadcast (the start-up
    /// re-broadcast of the intent the node never got) is held before the node again. The held
    /// bytes must be the very bytes held in the round before.
    BeforeRebroadcast,
    /// While the node has one of its broadcasts and the answer is held.
    BeforeAnswer,
    /// A chain stopped mining, its transactions in the pool: broadcast, no receipt. Mined after
    /// the kill, or (when `InPoolAgain` follows) after the next one.
    InPool,
    /// Again against the same unmined pool, killed after it re-broadcast; then mined.
    InPoolAgain,
}

/// Which command a round runs and kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Push,
    Watch,
}

impl Cmd {
    fn args(self) -> &'static [&'static str] {
        match self {
            Cmd::Push => &["push", "--json", "--timeout", "60s"],
            Cmd::Watch => &["watch"],
        }
    }
}

const SCHEDULE: [(Moment, Cmd); 20] = {
    use Cmd::*;
    use Moment::*;
    [
        (Random, Push),
        (BeforeBroadcast, Push),
        (BeforeRebroadcast, Push),
        (Random, Watch),
        (BeforeAnswer, Push),
        (InPool, Push),
        (InPoolAgain, Watch),
        (Random, Push),
        (BeforeBroadcast, Watch),
        (Random, Watch),
        (BeforeAnswer, Watch),
        (BeforeBroadcast, Push),
        (BeforeRebroadcast, Watch),
        (InPool, Watch),
        (Random, Push),
        (Random, Watch),
        (BeforeAnswer, Push),
        (InPool, Push),
        (InPoolAgain, Push),
        (Random, Push),
    ]
};

pub(crate) fn spawn(dir: &Path, args: &[&str], round: usize) -> KillOnDrop {
    spawn_with(dir, args, round, &[])
}

/// [`spawn`] with more environment variables.
pub(crate) fn spawn_with(dir: &Path, args: &[&str], round: usize, env: &[(&str, &str)]) -> KillOnDrop {
    let log =
        |ext: &str| std::fs::File::create(dir.join(format!("round-{round:02}.{ext}"))).expect("a log file");
    KillOnDrop::spawn(
        ferry_command(dir)
            .args(args)
            .envs(env.iter().copied())
            .env("FERRY_LOG", "ferry=debug")
            .stdout(log("out"))
            .stderr(log("err")),
    )
}

pub(crate) fn round_log(dir: &Path, round: usize) -> String {
    let read =
        |ext: &str| std::fs::read_to_string(dir.join(format!("round-{round:02}.{ext}"))).unwrap_or_default();
    format!("stdout:\n{}\nstderr (last 60 lines):\n{}", read("out"), last_lines(&read("err"), 60))
}

/// Kills `child` with SIGKILL unless it ended already; what happened, for the round's line.
pub(crate) fn kill(child: &mut KillOnDrop) -> String {
    if let Ok(Some(status)) = child.try_wait() {
        return format!("had exited ({status})");
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("reaped");
    format!("killed ({status})")
}

/// Polls `ready` until it holds; fails the test (with the round's log) when the child exits or
/// `WAIT` passes first.
async fn wait_for<F, Fut>(what: &str, dir: &Path, round: usize, child: &mut KillOnDrop, mut ready: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if ready().await {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("round {round}: ferry exited ({status}) before {what}\n{}", round_log(dir, round));
        }
        if Instant::now() > deadline {
            let _ = kill(child);
            panic!("round {round}: no {what} within {WAIT:?}\n{}", round_log(dir, round));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn pool_pending(anvil: &Anvil) -> u64 {
    hex_u64(&anvil.rpc("txpool_status", json!([])).await["pending"])
}

async fn set_mining(anvil: &Anvil, on: bool) {
    anvil.rpc("evm_setAutomine", json!([on])).await;
    if on {
        // What waited in the pool goes into one block.
        anvil.rpc("evm_mine", json!([])).await;
    }
}

/// A transaction ferry signed, as seen on its way to a destination.
struct Signed {
    hash: B256,
    nonce: u64,
    input: Bytes,
}

fn signed_txs(proxy: &FaultProxy) -> Vec<Signed> {
    proxy
        .sends
        .raw()
        .iter()
        .map(|hex| {
            let raw = alloy::primitives::hex::decode(hex).expect("raw tx hex");
            let tx = TxEnvelope::decode_2718(&mut raw.as_slice()).expect("a raw transaction");
            Signed { hash: *tx.tx_hash(), nonce: tx.nonce(), input: tx.input().clone() }
        })
        .collect()
}

/// The broadcasts a proxy saw from index `from` on, one per line, for failure messages.
fn sends_since(proxy: &FaultProxy, from: usize) -> String {
    signed_txs(proxy)
        .iter()
        .enumerate()
        .skip(from)
        .map(|(i, t)| format!("  #{i}: nonce {} hash {} calldata …{}", t.nonce, t.hash, tail_hex(&t.input)))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tail_hex(b: &Bytes) -> String {
    let hex = alloy::primitives::hex::encode(b);
    hex[hex.len().saturating_sub(8)..].to_string()
}

/// No delivery signed twice: every calldata (one per item) and every nonce has one transaction.
/// (No replacement is expected: the config sets `bump_after` beyond the test's length.)
fn assert_signed_once(chain: &str, proxy: &FaultProxy, context: &str) -> BTreeSet<B256> {
    let signed = signed_txs(proxy);
    let mut by_input: BTreeMap<&Bytes, BTreeSet<(u64, B256)>> = BTreeMap::new();
    let mut by_nonce: BTreeMap<u64, BTreeSet<B256>> = BTreeMap::new();
    for tx in &signed {
        by_input.entry(&tx.input).or_default().insert((tx.nonce, tx.hash));
        by_nonce.entry(tx.nonce).or_default().insert(tx.hash);
    }
    for (input, txs) in &by_input {
        assert_eq!(
            txs.len(),
            1,
            "{context}: {chain}: one delivery was signed as {} transactions (nonce, hash): {txs:?}; calldata {input}",
            txs.len()
        );
    }
    for (nonce, hashes) in &by_nonce {
        assert_eq!(
            hashes.len(),
            1,
            "{context}: {chain}: nonce {nonce} was signed {} times: {hashes:?}",
            hashes.len()
        );
    }
    signed.iter().map(|t| t.hash).collect()
}

async fn recorded_counts(anvil: &Anvil, receiver: Address, items: u64) -> Vec<U256> {
    join_all(
        (0..items).map(|height| {
            view_u256(anvil, receiver, IBatchReceiver::recordedCountCall { height }.abi_encode())
        }),
    )
    .await
}

/// The signer's mined transactions on a chain, by walking every block: nonce → hash.
async fn mined_from(anvil: &Anvil, signer: Address) -> BTreeMap<u64, Vec<B256>> {
    let head = anvil.block_number().await;
    let blocks =
        join_all((0..=head).map(|n| anvil.rpc("eth_getBlockByNumber", json!([format!("{n:#x}"), true]))))
            .await;
    let mut out: BTreeMap<u64, Vec<B256>> = BTreeMap::new();
    for block in blocks {
        for tx in block["transactions"].as_array().expect("full transactions") {
            let from: Address = tx["from"].as_str().and_then(|a| a.parse().ok()).expect("from");
            if from == signer {
                let hash: B256 = tx["hash"].as_str().and_then(|h| h.parse().ok()).expect("hash");
                out.entry(hex_u64(&tx["nonce"])).or_default().push(hash);
            }
        }
    }
    out
}

/// What every round shares.
struct Rig<'a> {
    dir: &'a Path,
    net: &'a Net,
    proxies: &'a [FaultProxy],
}

/// A moment's kill: how it went, and the details for the round's line.
struct Round {
    outcome: String,
    line: String,
}

impl Rig<'_> {
    /// Runs `cmd`, kills it after `delay`.
    async fn after_delay(&self, round: usize, cmd: Cmd, delay: u64) -> Round {
        let mut child = spawn(self.dir, cmd.args(), round);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        Round { outcome: kill(&mut child), line: format!("after {delay:4} ms") }
    }

    /// Runs `cmd` with the `skip`-th next broadcast to chain `k` held at `at`, kills it `delay`
    /// into the hold; the hold that ended.
    async fn during_hold(
        &self,
        (round, cmd): (usize, Cmd),
        k: usize,
        skip: u64,
        at: HoldAt,
        delay: u64,
    ) -> (Round, Held) {
        let sends = &self.proxies[k].sends;
        let (held, ended) = (sends.held.load(Ordering::SeqCst), sends.held_log().len());
        sends.arm(skip, 1, HOLD, at);
        let mut child = spawn(self.dir, cmd.args(), round);
        wait_for("a held broadcast", self.dir, round, &mut child, || async move {
            sends.holding.load(Ordering::SeqCst) > 0
        })
        .await;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let outcome = kill(&mut child);
        sends.disarm();
        assert_eq!(sends.held.load(Ordering::SeqCst), held + 1, "round {round}: one broadcast held");
        // A hold before forwarding ends as soon as the killed client's connection closes; a hold
        // of the answer ends after its time.
        let deadline = Instant::now() + HOLD + Duration::from_secs(5);
        while sends.held_log().len() == ended {
            assert!(Instant::now() < deadline, "round {round}: the hold did not end");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let this = sends.held_log().pop().expect("the hold that ended");
        let line = format!("d{k}: broadcast #{skip} held, killed {delay:3} ms into the hold");
        (Round { outcome, line }, this)
    }

    /// Runs `cmd` while chain `k` does not mine; kills it `delay` after its pool has a
    /// transaction; mines then unless `keep` (the next round restarts against the same pool).
    async fn in_pool(&self, (round, cmd): (usize, Cmd), k: usize, delay: u64, keep: bool) -> Round {
        let anvil = &self.net.dests[k].0;
        set_mining(anvil, false).await;
        let mut child = spawn(self.dir, cmd.args(), round);
        wait_for("a transaction in the pool", self.dir, round, &mut child, || async move {
            pool_pending(anvil).await > 0
        })
        .await;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let outcome = kill(&mut child);
        let pooled = pool_pending(anvil).await;
        assert!(pooled > 0, "round {round}: d{k}'s pool emptied without mining");
        if !keep {
            set_mining(anvil, true).await;
        }
        let line = format!("d{k}: not mining, killed {delay:3} ms after the pool filled; {pooled} pooled");
        Round { outcome, line }
    }

    /// Runs `cmd` against chain `k`'s unmined pool; kills it `delay` after its first broadcast
    /// there (the start-up re-broadcast); then mines.
    async fn in_pool_again(&self, (round, cmd): (usize, Cmd), k: usize, delay: u64) -> Round {
        let anvil = &self.net.dests[k].0;
        let sends = &self.proxies[k].sends;
        let seen = sends.raw().len();
        let mut child = spawn(self.dir, cmd.args(), round);
        wait_for("a re-broadcast", self.dir, round, &mut child, || async move { sends.raw().len() > seen })
            .await;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let outcome = kill(&mut child);
        let pooled = pool_pending(anvil).await;
        set_mining(anvil, true).await;
        let line =
            format!("d{k}: still not mining, killed {delay:3} ms after a re-broadcast; {pooled} pooled");
        Round { outcome, line }
    }

    /// Nothing signed twice (the proxies saw every broadcast), nothing recorded twice on-chain.
    async fn assert_nothing_twice(&self, items: u64, context: &str) {
        for (i, ((anvil, receiver), proxy)) in self.net.dests.iter().zip(self.proxies).enumerate() {
            assert_signed_once(&format!("d{i}"), proxy, context);
            let counts = recorded_counts(anvil, *receiver, items).await;
            let twice: Vec<u64> = (0..items).filter(|h| counts[*h as usize] > U256::from(1)).collect();
            assert!(twice.is_empty(), "{context}: d{i} recorded heights {twice:?} more than once");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_at_twenty_moments_every_item_lands_once_with_no_nonce_gap() {
    let started = Instant::now();
    let seed = std::env::var("FERRY_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(SEED);
    eprintln!("deliver_crash: seed {seed} (FERRY_CRASH_SEED={seed} repeats its choices)");
    let mut rng = fastrand::Rng::with_seed(seed);

    let net = Net::start(3).await;
    let mut proxies = Vec::new();
    for (anvil, _) in &net.dests {
        proxies.push(FaultProxy::start(anvil.url(), 0.0, seed).await);
    }
    let mut items = BACKLOG;
    net.emit(0, BACKLOG).await;
    let tempdir = tempfile::tempdir().expect("tempdir");
    let kept = std::env::var_os("FERRY_CRASH_KEEP").is_some();
    let dir = &if kept { tempdir.keep() } else { tempdir.path().to_path_buf() };
    if kept {
        eprintln!("deliver_crash: config, store and round logs kept in {}", dir.display());
    }
    net.write_config(dir, "function record(uint64 height, bytes32 root)", "", None);
    // Destinations through their proxies; no replacement transactions during the test, so that
    // "one signed transaction per delivery" is exact.
    let mut yaml = std::fs::read_to_string(dir.join("ferry.yaml")).expect("config");
    for ((anvil, _), proxy) in net.dests.iter().zip(&proxies) {
        yaml = yaml.replace(&format!("\"{}\"", anvil.url()), &format!("\"{}\"", proxy.url()));
    }
    yaml = yaml.replace(
        "signer: { key_env: FERRY_TEST_SIGNER }\n",
        "signer: { key_env: FERRY_TEST_SIGNER }\n    gas: { max_fee_gwei: 1000, bump_after: 10m }\n",
    );
    std::fs::write(dir.join("ferry.yaml"), yaml).expect("config");
    let rig = Rig { dir, net: &net, proxies: &proxies };

    // The chain an `InPool` round left not mining; the chain of the last kill before a broadcast.
    let mut unmined: Option<usize> = None;
    let mut abandoned_on: Option<usize> = None;
    // Where each round's broadcasts start in each proxy's record.
    let mut marks: Vec<Vec<usize>> = Vec::new();
    for (round, &(moment, cmd)) in SCHEDULE.iter().enumerate() {
        let context = format!("round {round} ({moment:?}, {cmd:?})");
        marks.push(proxies.iter().map(|p| p.sends.raw().len()).collect());
        // New items before every round that needs a broadcast on its chain; sometimes a larger
        // batch before a random kill, so that it may land in the middle of the work.
        let new = match moment {
            Moment::Random if rng.bool() => 8 + rng.u64(0..8),
            Moment::Random | Moment::InPoolAgain | Moment::BeforeRebroadcast => 0,
            _ => 3 + rng.u64(0..4),
        };
        if new > 0 {
            net.emit(items, new).await;
            items += new;
        }
        let k = match moment {
            Moment::InPoolAgain => unmined.take().expect("an InPool round left a chain not mining"),
            Moment::BeforeRebroadcast => abandoned_on.take().expect("a BeforeBroadcast round came first"),
            _ => rng.usize(0..net.dests.len()),
        };
        let Round { outcome, line } = match moment {
            Moment::Random => rig.after_delay(round, cmd, rng.u64(0..1500)).await,
            Moment::BeforeAnswer => {
                let (skip, delay) = (rng.u64(0..3), rng.u64(0..400));
                let (round_, held) =
                    rig.during_hold((round, cmd), k, skip, HoldAt::BeforeAnswering, delay).await;
                assert!(held.reached_node, "{context}");
                round_
            }
            Moment::BeforeBroadcast | Moment::BeforeRebroadcast => {
                let skip = if moment == Moment::BeforeRebroadcast { 0 } else { rng.u64(0..3) };
                let before = proxies[k].sends.held_log().pop();
                let (mut round_, held) =
                    rig.during_hold((round, cmd), k, skip, HoldAt::BeforeForwarding, rng.u64(0..400)).await;
                // The kill landed between the intent and its broadcast: the node never saw it.
                assert!(!held.reached_node, "{context}: the held broadcast reached the node");
                if moment == Moment::BeforeRebroadcast {
                    let before = before.expect("the hold of the round before");
                    assert!(!before.reached_node, "{context}: follows a kill before a broadcast");
                    assert_eq!(
                        held.raw,
                        before.raw,
                        "{context}: d{k}: after the crash, the first broadcast is not the very transaction \
                         the node never got (re-signed, or another one). Broadcasts to d{k} since round {}:\n{}\n\
                         round {} (the kill before a broadcast):\n{}\nround {round}:\n{}",
                        round - 1,
                        sends_since(&proxies[k], marks[round - 1][k]),
                        round - 1,
                        round_log(dir, round - 1),
                        round_log(dir, round),
                    );
                    round_.line.push_str(", the same bytes again");
                }
                abandoned_on = Some(k);
                round_
            }
            Moment::InPool => {
                let keep = SCHEDULE.get(round + 1).is_some_and(|(m, _)| *m == Moment::InPoolAgain);
                if keep {
                    unmined = Some(k);
                }
                rig.in_pool((round, cmd), k, rng.u64(0..300), keep).await
            }
            Moment::InPoolAgain => rig.in_pool_again((round, cmd), k, rng.u64(0..500)).await,
        };
        eprintln!("round {round:2} {:<17} {:<5} {line}: {outcome}", format!("{moment:?}"), cmd.args()[0]);
        if outcome.starts_with("had exited") {
            // A push that finished before its kill must have finished well (and watch never ends
            // by itself).
            assert!(outcome.contains("exit status: 0"), "{context}: ferry failed\n{}", round_log(dir, round));
        }
        // Before any final push: nothing signed twice, nothing on any chain twice.
        rig.assert_nothing_twice(items, &context).await;
    }
    eprintln!("deliver_crash: {items} items, 20 rounds in {:.1}s", started.elapsed().as_secs_f64());

    let (out, report) = push(dir, &[]);
    assert_eq!(out.status.code(), Some(0), "final push\n{}", text(&out));
    let chains = report["chains"].as_array().expect("chains");
    assert_eq!(chains.len(), net.dests.len(), "{report}");
    for chain in chains {
        assert_eq!(chain["confirmed"], items, "{chain}");
        assert_eq!(chain["left"], 0, "{chain}");
    }

    let signer: Address = DEV_ADDRESSES[1].parse().expect("address");
    for (i, ((anvil, receiver), proxy)) in net.dests.iter().zip(&proxies).enumerate() {
        let name = format!("d{i}");
        let total = view_u256(anvil, *receiver, IBatchReceiver::totalRecordedCall {}.abi_encode()).await;
        assert_eq!(total, U256::from(items), "{name}: totalRecorded");
        let counts = recorded_counts(anvil, *receiver, items).await;
        let wrong: Vec<(u64, U256)> =
            (0..items).map(|h| (h, counts[h as usize])).filter(|(_, c)| *c != U256::from(1)).collect();
        assert!(wrong.is_empty(), "{name}: heights not recorded exactly once (height, count): {wrong:?}");

        let nonce = |tag: &'static str| async move {
            hex_u64(&anvil.rpc("eth_getTransactionCount", json!([signer, tag])).await)
        };
        let (latest, pending) = (nonce("latest").await, nonce("pending").await);
        assert_eq!(latest, pending, "{name}: transactions left in the pool");
        let status = anvil.rpc("txpool_status", json!([])).await;
        assert_eq!((hex_u64(&status["pending"]), hex_u64(&status["queued"])), (0, 0), "{name}: {status}");

        let mined = mined_from(anvil, signer).await;
        let nonces: Vec<u64> = mined.keys().copied().collect();
        assert_eq!(nonces, (0..latest).collect::<Vec<_>>(), "{name}: nonce gap");
        assert!(mined.values().all(|h| h.len() == 1), "{name}: a nonce mined twice: {mined:?}");
        assert_eq!(latest, items, "{name}: one transaction per item");

        let signed = assert_signed_once(&name, proxy, "final");
        let landed: BTreeSet<B256> = mined.values().flatten().copied().collect();
        assert_eq!(signed, landed, "{name}: every transaction ferry signed is mined, and only those");
        let holds = proxy.sends.held_log();
        for held in &holds {
            let hash = alloy::primitives::keccak256(alloy::primitives::hex::decode(&held.raw).expect("hex"));
            assert!(
                landed.contains(&hash),
                "{name}: {hash}, held at a crash ({:?}, reached the node: {}), never landed",
                held.at,
                held.reached_node
            );
        }
        let lost = holds.iter().filter(|h| !h.reached_node).count();
        eprintln!(
            "{name}: {items} recorded once each, nonces 0..{latest} all mined, {} broadcasts held at a \
             kill ({lost} never reached the node until a restart sent the same bytes)",
            holds.len()
        );
    }
    eprintln!("deliver_crash: done in {:.1}s", started.elapsed().as_secs_f64());
}
