//! Chaos soak (not a timed test): `cargo bench --bench soak`.
//!
//! Many randomized rounds against real anvil nodes and the real `ferry` binary. The choices come
//! from a seed (`FERRY_SOAK_SEED`, printed): which faults, on which chain, at which moment, for how
//! long. The timing of the processes (what a kill interrupts, what a proxy happens to fail) is not
//! deterministic: the same seed repeats the plan, not the run.
//!
//! Chains:
//! - `src` (31337), `confirmations: 2`: an `EventEmitter` whose `BatchReady(height, root)` events
//!   are the delivered items; heights are unique for the whole run. Sometimes a reorg of depth 1–2
//!   (inside the confirmations) replaces its top blocks with new items.
//! - `tip` (31338), `confirmations: 0`, `reorg_window: 16`, a small `max_block_range`: `Ping`
//!   traffic and reorgs of depth 1–8 with replacement transactions; no route.
//! - `d0..d2` (41000..41002): a `BatchReceiver` each, whose `record(height, root)` counts repeats.
//!   A block every 250 ms, from a task here. Fee cap 10 gwei, `bump_after: 2s`.
//!
//! Every RPC ferry uses goes through a [`FaultProxy`] (a new one per round, fault rate 0–15 %,
//! sources 0–10 %: 5xx, 429, resets, truncated bodies, "too many results", and sometimes held
//! broadcasts) in front of a [`LagProxy`] (backends 0–3 blocks behind, receipts up to 2 more; a
//! new plan per round) in front of anvil. Each round:
//! 1. a plan: 5–40 new items in bursts, `Ping` traffic, maybe reorgs; on the destinations maybe a
//!    base fee spike above the cap (held, then back), a stall (no mining: bumps fall due), a
//!    transaction from ferry's key sent outside ferry (sometimes at ferry's next nonce, outbidding
//!    whatever ferry has there), held broadcasts; `ferry watch` or `ferry push` run and `kill -9`ed
//!    at a random moment (0.2–6 s; a push, which ends by itself once what it synced at its start
//!    is confirmed, 0.2–3.5 s), sometimes twice, sometimes while a stall has bumps due; sometimes
//!    `inspect-store cancel` on an open nonce after a kill (read off the chain when the read-only
//!    `txs --open` refuses the store the kill left), retried in the settle.
//! 2. settle: faults undone (mining on, base fee back, no fault proxy; the lag stays), `ferry push
//!    --timeout 120s` must exit 0; cancelled deliveries are retried (`inspect-store retry`) and
//!    pushed again. Two settle pushes at most: a push that does not settle counts as stuck.
//! 3. checks, reading the chains directly (not through the proxies): on every destination each
//!    canonical item recorded exactly once (from the receiver's `Recorded` logs, `totalRecorded`
//!    and `recordedCount`); the signer's `latest` nonce equals `pending` and the pool is empty;
//!    every nonce `0..latest` is a transaction ferry's store says it mined, or one sent here from
//!    its key; `inspect-store txs --open` lists nothing; every delivery is confirmed (or skipped),
//!    one per item, its receipt the chain's transaction at its nonce carrying that item;
//!    `export events` of both sources equals the canonical logs up to each source's cursor.
//!
//! Then `soak: R rounds, seed S: D duplicates, L lost, K stuck, E events compared, …`; any problem
//! makes it exit non-zero and keeps the directory (config, store, every ferry's output in `logs/`).
//! `FERRY_SOAK_ROUNDS` (default 100 with `--bench`), `FERRY_SOAK_KEEP=1` keeps the directory always.
//!
//! Under `cargo test` (no `--bench` argument) it runs a smoke version of 3 rounds.

// The helpers shared with the test suite: nodes, proxies, the ferry command.
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alloy::primitives::{Address, Bytes, U256};
use alloy::sol_types::{SolCall, SolEvent};
use futures_util::future::join_all;
use serde_json::{Value, json};
use support::command::{ferry_command, output_within};
use support::devnet::{Anvil, DEV_ADDRESSES, IBatchReceiver, IEventEmitter};
use support::hex::hex_u64;
use support::lagproxy::{LagPlan, LagProxy};
use support::output::{json_lines, last_lines};
use support::proxy::{FaultProxy, HoldAt};

const DEFAULT_SEED: u64 = 0x50a4_c4a0;
const FULL_ROUNDS: usize = 100;
const SMOKE_ROUNDS: usize = 3;
const GWEI: u128 = 1_000_000_000;
/// The destinations' fee cap, and the base fee of a spike above it.
const CAP_GWEI: u128 = 10;
const SPIKE: u128 = 50 * GWEI;
/// What the base fee is set back to after a spike.
const CALM: u128 = GWEI;
const BLOCK_EVERY: Duration = Duration::from_millis(250);
const SRC_BLOCK_EVERY: Duration = Duration::from_millis(400);
const BUMP_AFTER_MS: u64 = 2_000;
const DESTS: usize = 3;
const PING: &str = "event Ping(uint256 indexed seq, address indexed from, bytes32 data)";
const BATCH_READY: &str = "event BatchReady(uint64 indexed height, bytes32 root)";
/// Bound on helper commands (`inspect-store`, `export`).
const HELPER_LIMIT: Duration = Duration::from_secs(60);
/// A settle push runs with `--timeout 120s`; it is killed if it outlives this.
const SETTLE_LIMIT: Duration = Duration::from_secs(180);

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let seed = env_u64("FERRY_SOAK_SEED").unwrap_or(DEFAULT_SEED);
    let rounds =
        env_u64("FERRY_SOAK_ROUNDS").map_or(if full { FULL_ROUNDS } else { SMOKE_ROUNDS }, |r| r as usize);
    let keep = std::env::var_os("FERRY_SOAK_KEEP").is_some_and(|v| v != "0");
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let ok = runtime.block_on(soak(seed, rounds, keep, full));
    runtime.shutdown_timeout(Duration::from_secs(5));
    if !ok {
        panic!("soak found problems (see above)");
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

// ---------------------------------------------------------------------------------------------
// Chains and the tasks that keep them moving

/// Tells a chain's block task what to do.
#[derive(Default)]
struct Miner {
    stop: AtomicBool,
    /// No blocks (and automine off): a stalled destination.
    stalled: AtomicBool,
    /// Every block with the spike's base fee.
    spiked: AtomicBool,
    blocks: AtomicU64,
    /// Held while a block is made, here or by a reorg: anvil making blocks from two calls at once
    /// (`evm_mine` during `anvil_reorg`) can leave a hole in its chain, a number with no block.
    lock: tokio::sync::Mutex<()>,
}

fn start_miner(anvil: Arc<Anvil>, every: Duration) -> (Arc<Miner>, tokio::task::JoinHandle<()>) {
    let miner = Arc::new(Miner::default());
    let control = miner.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if control.stop.load(Ordering::SeqCst) {
                return;
            }
            if control.stalled.load(Ordering::SeqCst) {
                continue;
            }
            let _making = control.lock.lock().await;
            if control.spiked.load(Ordering::SeqCst) {
                let _ =
                    anvil.try_rpc("anvil_setNextBlockBaseFeePerGas", json!([format!("{SPIKE:#x}")])).await;
            }
            if anvil.try_rpc("evm_mine", json!([])).await.is_ok() {
                control.blocks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    (miner, task)
}

/// A mined transaction from ferry's signer.
#[derive(Debug, Clone)]
struct MinedTx {
    hash: String,
    to: String,
    input: Bytes,
}

struct Dest {
    name: String,
    anvil: Arc<Anvil>,
    receiver: Address,
    confirmations: u64,
    lag: LagProxy,
    fault: Option<FaultProxy>,
    miner: Arc<Miner>,
    miner_task: tokio::task::JoinHandle<()>,
    /// Next block to scan.
    scanned: u64,
    /// The signer's mined transactions by nonce, from every block scanned.
    by_nonce: BTreeMap<u64, MinedTx>,
    block_hashes: BTreeMap<u64, String>,
    /// `Recorded` logs by height, and in all.
    records: BTreeMap<u64, u64>,
    record_logs: u64,
    /// Hashes of transactions sent from ferry's key outside ferry.
    foreign: BTreeSet<String>,
}

struct Source {
    name: &'static str,
    anvil: Arc<Anvil>,
    emitter: Address,
    lag: LagProxy,
    fault: Option<FaultProxy>,
    miner: Option<(Arc<Miner>, tokio::task::JoinHandle<()>)>,
    /// Next block to look for holes in (see [`Miner::lock`]).
    scanned: u64,
}

impl Source {
    fn url(&self, settle: bool) -> String {
        match (&self.fault, settle) {
            (Some(f), false) => f.url(),
            _ => self.lag.url(),
        }
    }
}

impl Dest {
    fn url(&self, settle: bool) -> String {
        match (&self.fault, settle) {
            (Some(f), false) => f.url(),
            _ => self.lag.url(),
        }
    }
}

fn signer() -> String {
    DEV_ADDRESSES[1].to_lowercase()
}

fn lower(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_lowercase()
}

// ---------------------------------------------------------------------------------------------
// The plan of a round

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Push,
    Watch,
}

impl Cmd {
    fn args(self) -> &'static [&'static str] {
        match self {
            Cmd::Push => &["push", "--json", "--timeout", "20s"],
            Cmd::Watch => &["watch"],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cmd::Push => "push",
            Cmd::Watch => "watch",
        }
    }
}

#[derive(Debug, Clone)]
enum Act {
    /// `n` new items on `src`.
    Emit(u64),
    /// `n` new items on `src`, with blocks on top for its confirmations and the slowest backend.
    Backlog(u64),
    /// A reorg of `src`'s top blocks, with `items` new items in the new branch.
    SrcReorg {
        depth: u64,
        items: u64,
    },
    /// A `Ping` transaction on `tip` with `n` events.
    Pings(u64),
    /// A reorg of `tip` with `txs` replacement `Ping` transactions.
    TipReorg {
        depth: u64,
        txs: u64,
    },
    SpikeOn(usize),
    SpikeOff(usize),
    StallOn(usize),
    StallOff(usize),
    /// A transaction from ferry's key sent outside ferry; `at_latest`: at the chain's next nonce
    /// with fees that outbid anything of ferry's there.
    Foreign {
        dest: usize,
        at_latest: bool,
    },
    /// The next `hold` new broadcasts (after `skip`) to a destination held `ms` each.
    Hold {
        dest: usize,
        skip: u64,
        hold: u64,
        ms: u64,
        before: bool,
    },
    Start(Cmd),
    Kill,
    /// `inspect-store cancel` of an open nonce: the `pick`-th of those listed (of those on the
    /// `prefer`red chain if it has any).
    Cancel {
        pick: u64,
        prefer: Option<usize>,
    },
}

impl Act {
    /// Order among actions at the same moment: chain changes, then kills, cancels, starts.
    fn rank(&self) -> u8 {
        match self {
            Act::Kill => 1,
            Act::Cancel { .. } => 2,
            Act::Start(_) => 3,
            _ => 0,
        }
    }
}

struct Plan {
    /// (ms from the round's start, action), sorted.
    acts: Vec<(u64, Act)>,
    dest_lags: Vec<(Vec<u64>, u64)>,
    dest_rates: Vec<f64>,
    source_lags: [Vec<u64>; 2],
    source_rates: [f64; 2],
    /// A one-line summary of the injections.
    summary: String,
}

/// Forced injections for the first rounds, so that a 3-round smoke covers every kind.
#[derive(Default, Clone, Copy)]
struct Force {
    stall_with_bumps: bool,
    cancel: bool,
    spike: bool,
    foreign_at_latest: bool,
    tip_reorg: bool,
    src_reorg: bool,
    two_kills: bool,
    watch: bool,
    hold: bool,
}

fn force_for(round: usize) -> Force {
    match round {
        0 => Force { stall_with_bumps: true, cancel: true, two_kills: true, ..Force::default() },
        1 => Force { spike: true, foreign_at_latest: true, watch: true, hold: true, ..Force::default() },
        2 => Force { tip_reorg: true, src_reorg: true, two_kills: true, cancel: true, ..Force::default() },
        _ => Force::default(),
    }
}

fn make_plan(rng: &mut fastrand::Rng, force: Force) -> Plan {
    const DEST_BACKENDS: [&[u64]; 4] = [&[0], &[0, 1], &[0, 2], &[1, 3]];
    const SOURCE_BACKENDS: [&[u64]; 5] = [&[0], &[0, 1], &[0, 2], &[1, 2], &[0, 1, 2]];
    let mut acts: Vec<(u64, Act)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    // The processes: one or two runs, each killed after 0.2–6 s (a push, which ends by itself
    // once the items it synced at its start are confirmed, after 0.2–3.5 s).
    let segments = if force.two_kills || rng.f64() < 0.3 { 2 } else { 1 };
    let mut t = 0;
    let mut kills = Vec::new();
    let mut kinds = Vec::new();
    for s in 0..segments {
        let forced = force.stall_with_bumps && s == 0;
        let cmd = if forced || (force.watch && s == 0) || (!force.watch && rng.bool()) {
            Cmd::Watch
        } else {
            Cmd::Push
        };
        // A forced stall with bumps due needs a run long enough to see them.
        let run = match cmd {
            _ if forced => rng.u64(4_500..=6_000),
            Cmd::Watch => rng.u64(200..=6_000),
            Cmd::Push => rng.u64(200..=3_500),
        };
        kinds.push((t, cmd, run));
        t += run;
        kills.push(t);
        t += 300;
    }
    let end = kills[kills.len() - 1];
    // Items that arrive just after a fault starts, so that ferry has work on the faulty chain.
    let mut early_bursts = Vec::new();
    // (chain, start, end) of the stall, or else of the spike.
    let mut faulty: Option<(usize, u64, u64)> = None;

    // A stall, sometimes placed so that a kill lands while its bumps are due: items arrive just
    // after the chain stops, ferry sends them (≈1.5 s: source confirmations), `bump_after` later
    // it replaces them, and the kill comes then.
    let cancel = force.cancel || rng.f64() < 0.3;
    if force.stall_with_bumps || rng.f64() < 0.4 {
        let d = rng.usize(0..DESTS);
        let k = if force.stall_with_bumps { 0 } else { rng.usize(0..kills.len()) };
        let kill = kills[k];
        let with_bumps = force.stall_with_bumps || rng.bool();
        let (start, until) = if with_bumps && kill >= 4_000 {
            let start = kill - rng.u64(3_300..=4_000);
            early_bursts.push(start + rng.u64(100..=400));
            // Only watch picks up items that arrive after it started.
            kinds[k].1 = Cmd::Watch;
            (start, kill + rng.u64(300..=3_000))
        } else {
            let start = rng.u64(0..=end * 2 / 3);
            if rng.bool() {
                early_bursts.push(start + rng.u64(100..=400));
            }
            (start, start + rng.u64(2_000..=5_000))
        };
        let until = until.min(end + 200);
        acts.push((start, Act::StallOn(d)));
        acts.push((until, Act::StallOff(d)));
        notes.push(format!("d{d} stall {:.1}-{:.1}s", start as f64 / 1e3, until as f64 / 1e3));
        faulty = Some((d, start, until));
    }
    if force.spike || rng.f64() < 0.35 {
        let d = rng.usize(0..DESTS);
        let start = rng.u64(0..=end * 2 / 3);
        let until = (start + rng.u64(1_500..=5_000)).min(end + 200);
        if rng.f64() < 0.7 {
            early_bursts.push(start + rng.u64(100..=400));
        }
        acts.push((start, Act::SpikeOn(d)));
        acts.push((until, Act::SpikeOff(d)));
        notes.push(format!("d{d} base fee spike {:.1}-{:.1}s", start as f64 / 1e3, until as f64 / 1e3));
        if faulty.is_none() {
            faulty = Some((d, start, until));
        }
    }
    if force.foreign_at_latest || rng.f64() < 0.35 {
        let at_latest = force.foreign_at_latest || rng.bool();
        // Half the time on the faulty chain while its fault lasts: ferry's transactions wait in
        // its pool (or are refused, under the spike) then.
        let (dest, at) = match faulty {
            Some((d, start, until)) if rng.bool() && until > start + 1_000 => {
                (d, rng.u64(start + 1_000..until))
            }
            _ => (rng.usize(0..DESTS), rng.u64(0..=end)),
        };
        acts.push((at, Act::Foreign { dest, at_latest }));
        notes.push(format!(
            "d{dest} foreign tx{} @{:.1}s",
            if at_latest { " at next nonce" } else { "" },
            at as f64 / 1e3
        ));
    }
    if force.hold || rng.f64() < 0.25 {
        let dest = rng.usize(0..DESTS);
        let (skip, hold, ms, before) = (rng.u64(0..3), rng.u64(1..=3), rng.u64(500..=3_000), rng.bool());
        let at = rng.u64(0..=end / 2);
        acts.push((at, Act::Hold { dest, skip, hold, ms, before }));
        notes.push(format!(
            "d{dest} hold {hold} sends {ms}ms {}",
            if before { "before node" } else { "before answer" }
        ));
    }
    // A cancel after a kill (read from the store then): after one inside the fault if there is
    // one, of an open nonce of the faulty chain if it has one.
    if cancel {
        let inside: Vec<u64> = kills
            .iter()
            .copied()
            .filter(|k| faulty.is_some_and(|(_, start, until)| *k > start && *k <= until))
            .collect();
        let kill = if inside.is_empty() {
            kills[rng.usize(0..kills.len())]
        } else {
            inside[rng.usize(0..inside.len())]
        };
        let prefer = faulty.map(|(d, ..)| d);
        acts.push((kill, Act::Cancel { pick: rng.u64(0..1_000), prefer }));
        notes.push(format!("cancel after the kill @{:.1}s", kill as f64 / 1e3));
    }

    // Items: the first burst final before the first start (so that a push has work from its
    // start), the rest during the round.
    let items = rng.u64(5..=40);
    let bursts = (rng.u64(1..=3) + early_bursts.len() as u64).min(items);
    let mut left = items;
    for b in 0..bursts {
        let n = if b + 1 == bursts { left } else { rng.u64(1..=left - (bursts - b - 1)) };
        left -= n;
        match b as usize {
            0 => acts.push((0, Act::Backlog(n))),
            b if b <= early_bursts.len() => acts.push((early_bursts[b - 1], Act::Emit(n))),
            _ => acts.push((rng.u64(0..=end), Act::Emit(n))),
        }
    }
    if force.src_reorg || rng.f64() < 0.25 {
        let (depth, n) = (rng.u64(1..=2), rng.u64(1..=3));
        let at = rng.u64(0..=end);
        acts.push((at, Act::SrcReorg { depth, items: n }));
        notes.push(format!("src reorg {depth} (+{n} items)"));
    }
    let pings = rng.u64(2..=5);
    for _ in 0..pings {
        let n = rng.u64(1..=4);
        acts.push((rng.u64(0..=end), Act::Pings(n)));
    }
    if force.tip_reorg || rng.f64() < 0.6 {
        let (depth, txs) = (rng.u64(1..=8), rng.u64(0..=2));
        let at = rng.u64(0..=end);
        acts.push((at, Act::TipReorg { depth, txs }));
        notes.push(format!("tip reorg {depth} ({txs} txs)"));
    }

    let dest_lags: Vec<(Vec<u64>, u64)> = (0..DESTS)
        .map(|_| (DEST_BACKENDS[rng.usize(0..DEST_BACKENDS.len())].to_vec(), rng.u64(0..=2)))
        .collect();
    let dest_rates: Vec<f64> = (0..DESTS).map(|_| (rng.f64() * 0.15 * 100.0).round() / 100.0).collect();
    let source_lags = [
        SOURCE_BACKENDS[rng.usize(0..SOURCE_BACKENDS.len())].to_vec(),
        SOURCE_BACKENDS[rng.usize(0..SOURCE_BACKENDS.len())].to_vec(),
    ];
    let source_rates = [(rng.f64() * 10.0).round() / 100.0, (rng.f64() * 10.0).round() / 100.0];
    let mut cmds = Vec::new();
    for (start, cmd, run) in kinds {
        acts.push((start, Act::Start(cmd)));
        acts.push((start + run, Act::Kill));
        cmds.push(format!("{} kill@{:.1}s", cmd.name(), run as f64 / 1000.0));
    }
    acts.sort_by_key(|(t, a)| (*t, a.rank()));
    let mut summary = format!("{items} items, {}", cmds.join(", "));
    for n in notes {
        summary.push_str(", ");
        summary.push_str(&n);
    }
    Plan { acts, dest_lags, dest_rates, source_lags, source_rates, summary }
}

// ---------------------------------------------------------------------------------------------
// Running ferry

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Outcome {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or(Value::Null)
    }

    fn tail(&self, lines: usize) -> String {
        format!(
            "exit {:?}\nstdout: {}\nstderr (last {lines} lines):\n{}",
            self.code,
            self.stdout.trim(),
            last_lines(&self.stderr, lines)
        )
    }
}

struct Soak {
    dir: PathBuf,
    src: Source,
    tip: Source,
    dests: Vec<Dest>,
    /// The next `BatchReady` height to emit.
    next_height: u64,
    /// Steps run so far (names the log files).
    step: usize,
    round: usize,
    /// The running push or watch.
    child: Option<(tokio::process::Child, Cmd, Instant, String)>,
}

impl Soak {
    fn log_name(&mut self, what: &str) -> String {
        self.step += 1;
        format!("r{:03}-{:03}-{what}", self.round, self.step)
    }

    fn command(&self, args: &[&str], debug: bool) -> std::process::Command {
        let mut cmd = ferry_command(&self.dir);
        cmd.args(args);
        if debug {
            cmd.env("FERRY_LOG", "ferry=debug");
        }
        cmd
    }

    /// Runs `ferry ARGS` to its end (killed after `limit`), keeping its output in `logs/`.
    async fn run(&mut self, what: &str, args: &[&str], limit: Duration) -> Outcome {
        let name = self.log_name(what);
        let debug = matches!(what, "settle-push" | "cancel" | "retry");
        let outcome = match output_within(self.command(args, debug), limit).await {
            Some(Ok(out)) => Outcome {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            },
            Some(Err(e)) => {
                Outcome { code: None, stdout: String::new(), stderr: format!("wait failed: {e}") }
            }
            // Killed.
            None => Outcome {
                code: None,
                stdout: String::new(),
                stderr: format!("`ferry {}` did not finish within {limit:?}; killed", args.join(" ")),
            },
        };
        let logs = self.dir.join("logs");
        let _ = std::fs::write(logs.join(format!("{name}.out")), &outcome.stdout);
        let _ = std::fs::write(logs.join(format!("{name}.err")), &outcome.stderr);
        outcome
    }

    fn start(&mut self, cmd: Cmd) {
        let name = self.log_name(cmd.name());
        let logs = self.dir.join("logs");
        let file = |ext: &str| std::fs::File::create(logs.join(format!("{name}.{ext}"))).expect("a log file");
        let mut command = tokio::process::Command::from(self.command(cmd.args(), true));
        command.stdout(file("out")).stderr(file("err")).kill_on_drop(true);
        let child = command.spawn().expect("ferry starts");
        self.child = Some((child, cmd, Instant::now(), name));
    }

    /// SIGKILL unless it ended already; a word on how it ended.
    async fn kill(&mut self, anomalies: &mut Vec<String>) -> String {
        let Some((mut child, cmd, started, name)) = self.child.take() else { return "nothing ran".into() };
        let ran = started.elapsed().as_secs_f64();
        if let Ok(Some(status)) = child.try_wait() {
            let code = status.code();
            let ok = cmd == Cmd::Push && matches!(code, Some(0) | Some(4));
            if !ok {
                let err = std::fs::read_to_string(self.dir.join("logs").join(format!("{name}.err")))
                    .unwrap_or_default();
                anomalies.push(format!(
                    "{} exited by itself with {status} after {ran:.1}s ({name}):\n{}",
                    cmd.name(),
                    last_lines(&err, 15)
                ));
            }
            return format!(
                "{} had exited ({})",
                cmd.name(),
                code.map_or("signal".into(), |c| c.to_string())
            );
        }
        let _ = child.start_kill();
        match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
            Ok(_) => format!("{} killed at {ran:.1}s", cmd.name()),
            Err(_) => {
                anomalies.push(format!("{} ({name}) did not die within 10s of SIGKILL", cmd.name()));
                format!("{} unkillable", cmd.name())
            }
        }
    }

    fn write_config(&self, settle: bool) {
        let mut yaml = String::from("chains:\n");
        let _ = write!(
            yaml,
            "  src:\n    chain_id: 31337\n    rpc: [\"{}\"]\n    confirmations: 2\n    poll_interval: 200ms\n    \
             max_block_range: 8\n    request_timeout: 2s\n",
            self.src.url(settle)
        );
        let _ = write!(
            yaml,
            "  tip:\n    chain_id: 31338\n    rpc: [\"{}\"]\n    confirmations: 0\n    reorg_window: 16\n    \
             poll_interval: 200ms\n    max_block_range: 3\n    request_timeout: 2s\n",
            self.tip.url(settle)
        );
        let mut targets = String::new();
        for d in &self.dests {
            let _ = write!(
                yaml,
                "  {}:\n    chain_id: {}\n    rpc: [\"{}\"]\n    confirmations: {}\n    poll_interval: 200ms\n    \
                 request_timeout: 2s\n    signer: {{ key_env: FERRY_TEST_SIGNER }}\n    \
                 gas: {{ max_fee_gwei: {CAP_GWEI}, bump_after: {BUMP_AFTER_MS}ms, bump_percent: 12 }}\n",
                d.name,
                d.anvil.chain_id(),
                d.url(settle),
                d.confirmations
            );
            let _ = writeln!(targets, "      {}: \"{}\"", d.name, d.receiver.to_checksum(None));
        }
        let _ = write!(
            yaml,
            "sources:\n  batches:\n    kind: evm\n    chain: src\n    contracts:\n      - address: \"{}\"\n        \
             events: [\"{BATCH_READY}\"]\n  pings:\n    kind: evm\n    chain: tip\n    contracts:\n      - address: \"{}\"\n        \
             events: [\"{PING}\", \"{BATCH_READY}\"]\n",
            self.src.emitter.to_checksum(None),
            self.tip.emitter.to_checksum(None)
        );
        let _ = write!(
            yaml,
            "targets:\n  receiver:\n    kind: evm-call\n    function: function record(uint64 height, bytes32 root)\n    \
             args:\n      height: {{ field: height }}\n      root: {{ field: root }}\n    chains:\n{targets}\
             routes:\n  - source: batches\n    targets: [receiver]\n"
        );
        std::fs::write(self.dir.join("ferry.yaml"), yaml).expect("config");
    }

    // -----------------------------------------------------------------------------------------
    // Injections

    async fn emit(&mut self, n: u64) {
        let from = self.next_height;
        self.next_height += n;
        let data = IEventEmitter::emitBatchesCall { from, n }.abi_encode();
        let _making = self.src_lock().await;
        self.src.anvil.send(self.src.emitter, data).await;
    }

    /// Holds `src`'s block task off.
    async fn src_lock(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.src.miner {
            Some((miner, _)) => Some(miner.lock.lock().await),
            None => None,
        }
    }

    /// Mines `n` blocks on `src` at once.
    async fn src_mine(&self, n: u64) {
        let _making = self.src_lock().await;
        self.src.anvil.mine(n).await;
    }

    async fn src_reorg(&mut self, depth: u64, items: u64) -> String {
        let from = self.next_height;
        self.next_height += items;
        let data = Bytes::from(IEventEmitter::emitBatchesCall { from, n: items }.abi_encode());
        // anvil_reorg does not estimate gas: without a limit the call runs out of it.
        let tx = json!({ "from": DEV_ADDRESSES[0], "to": self.src.emitter, "data": data, "gas": "0x7a120" });
        let making = self.src_lock().await;
        let head = self.src.anvil.block_number().await;
        if let Err(e) = self.src.anvil.try_rpc("anvil_reorg", json!([depth, [[tx, 0]]])).await {
            return format!("harness: src reorg {depth} failed: {e}");
        }
        drop(making);
        // The new branch carries the new items (a replacement that reverts would not).
        let logs = logs_between(&self.src.anvil, self.src.emitter, head + 1 - depth, head + 3).await;
        let topic = format!("{:#x}", IEventEmitter::BatchReady::SIGNATURE_HASH);
        let new = logs.iter().filter(|l| lower(&l["topics"][0]) == topic).count() as u64;
        if new < items {
            return format!("harness: src reorg {depth}: {new} of {items} new items on the new branch");
        }
        format!("src reorg {depth}")
    }

    async fn pings(&mut self, n: u64) {
        let data = IEventEmitter::emitManyCall { n: U256::from(n) }.abi_encode();
        self.tip.anvil.send(self.tip.emitter, data).await;
    }

    async fn tip_reorg(&mut self, depth: u64, txs: u64) -> String {
        let replacements: Vec<Value> = (0..txs)
            .map(|i| {
                let data = Bytes::from(IEventEmitter::emitManyCall { n: U256::from(1 + i) }.abi_encode());
                let tx = json!({ "from": DEV_ADDRESSES[0], "to": self.tip.emitter, "data": data, "gas": "0x7a120" });
                json!([tx, i % depth])
            })
            .collect();
        let head = self.tip.anvil.block_number().await;
        if let Err(e) = self.tip.anvil.try_rpc("anvil_reorg", json!([depth, replacements])).await {
            return format!("harness: tip reorg {depth} failed: {e}");
        }
        let want: u64 = (1..=txs).sum();
        let got = logs_between(&self.tip.anvil, self.tip.emitter, head + 1 - depth, head).await.len() as u64;
        if got != want {
            return format!("harness: tip reorg {depth}: {got} Pings on the new branch, {want} expected");
        }
        format!("tip reorg {depth}")
    }

    async fn stall(&mut self, d: usize, on: bool) {
        let dest = &self.dests[d];
        let _making = dest.miner.lock.lock().await;
        if on {
            dest.miner.stalled.store(true, Ordering::SeqCst);
            dest.anvil.rpc("evm_setAutomine", json!([false])).await;
        } else if dest.miner.stalled.swap(false, Ordering::SeqCst) {
            dest.anvil.rpc("evm_setAutomine", json!([true])).await;
            // What waited in the pool goes into a block now.
            let _ = dest.anvil.try_rpc("evm_mine", json!([])).await;
        }
    }

    async fn spike(&mut self, d: usize, on: bool) {
        let dest = &self.dests[d];
        let _making = dest.miner.lock.lock().await;
        let stalled = dest.miner.stalled.load(Ordering::SeqCst);
        if on {
            dest.miner.spiked.store(true, Ordering::SeqCst);
            dest.anvil.rpc("anvil_setNextBlockBaseFeePerGas", json!([format!("{SPIKE:#x}")])).await;
            // ferry reads the market from the latest block: make one (unless the chain is stalled).
            if !stalled {
                let _ = dest.anvil.try_rpc("evm_mine", json!([])).await;
            }
        } else if dest.miner.spiked.swap(false, Ordering::SeqCst) {
            dest.anvil.rpc("anvil_setNextBlockBaseFeePerGas", json!([format!("{CALM:#x}")])).await;
            if !stalled {
                let _ = dest.anvil.try_rpc("evm_mine", json!([])).await;
            }
        }
    }

    async fn foreign(&mut self, d: usize, at_latest: bool) -> String {
        let dest = &mut self.dests[d];
        let mut tx = json!({ "from": DEV_ADDRESSES[1], "to": DEV_ADDRESSES[2], "value": "0x1" });
        let mut nonce = String::new();
        if at_latest {
            let n = dest.anvil.rpc("eth_getTransactionCount", json!([DEV_ADDRESSES[1], "latest"])).await;
            nonce = format!(" nonce {}", hex_u64(&n));
            tx["nonce"] = n;
            tx["maxFeePerGas"] = json!(format!("{:#x}", 1_000 * GWEI));
            tx["maxPriorityFeePerGas"] = json!(format!("{:#x}", 100 * GWEI));
        }
        match dest.anvil.try_rpc("eth_sendTransaction", json!([tx])).await {
            Ok(hash) => {
                dest.foreign.insert(lower(&hash));
                format!("{} foreign tx{nonce} sent", dest.name)
            }
            Err(e) => format!("{} foreign tx{nonce} refused: {}", dest.name, first_line(&e)),
        }
    }

    async fn cancel(&mut self, pick: u64, prefer: Option<usize>) -> (String, Option<String>) {
        let out = self
            .run("open-txs", &["inspect-store", "txs", "--open", "--json", "--limit", "10000"], HELPER_LIMIT)
            .await;
        let (chain, nonce, of) = if out.code == Some(0) {
            let all = out.json()["txs"].as_array().cloned().unwrap_or_default();
            if all.is_empty() {
                return ("cancel: no open nonce".into(), None);
            }
            let preferred: Vec<Value> = match prefer {
                Some(d) => all.iter().filter(|r| r["chain"] == self.dests[d].name).cloned().collect(),
                None => Vec::new(),
            };
            let rows = if preferred.is_empty() { all } else { preferred };
            let row = &rows[(pick % rows.len() as u64) as usize];
            let chain = row["chain"].as_str().unwrap_or_default().to_string();
            (chain, row["nonce"].as_u64().unwrap_or_default(), format!("of {} open", rows.len()))
        } else {
            // The read-only view refuses a store a kill left unrecovered (only watch, push and
            // backfill recover it). The operator reads the stuck nonce off the chain instead:
            // between its mined count and its pool's; under a base fee spike the node refuses
            // ferry's transactions, and the stuck one is at the mined count.
            let why = if out.stderr.contains("needs recovery") {
                "nonce read off the chain: store needs recovery".to_string()
            } else {
                format!("nonce read off the chain: `txs --open` failed: {}", first_line(&out.stderr))
            };
            let mut order: Vec<usize> = (0..DESTS).collect();
            order.rotate_left(prefer.unwrap_or((pick % DESTS as u64) as usize));
            let mut found = None;
            for d in order {
                let dest = &self.dests[d];
                let count = |tag: &'static str| async move {
                    hex_u64(&dest.anvil.rpc("eth_getTransactionCount", json!([DEV_ADDRESSES[1], tag])).await)
                };
                let (latest, pending) = (count("latest").await, count("pending").await);
                if pending > latest {
                    found = Some((dest.name.clone(), latest + pick % (pending - latest)));
                    break;
                }
                if dest.miner.spiked.load(Ordering::SeqCst) {
                    found = Some((dest.name.clone(), latest));
                    break;
                }
            }
            let Some((chain, nonce)) = found else {
                return (format!("cancel: nothing waiting on any chain ({why})"), None);
            };
            (chain, nonce, why)
        };
        let nonce = nonce.to_string();
        let out = self
            .run(
                "cancel",
                &["inspect-store", "cancel", "--chain", &chain, "--nonce", &nonce, "--yes", "--json"],
                HELPER_LIMIT,
            )
            .await;
        match out.code {
            Some(0) => {
                let broadcast = if out.json()["broadcast"] == false { ", not broadcast" } else { "" };
                (format!("cancelled {chain}#{nonce} ({of}){broadcast}"), Some(chain))
            }
            code => (
                format!("cancel {chain}#{nonce} ({of}) refused ({code:?}): {}", first_line(&out.stderr)),
                None,
            ),
        }
    }

    async fn hold(&mut self, d: usize, skip: u64, hold: u64, ms: u64, before: bool) {
        if let Some(f) = &self.dests[d].fault {
            let at = if before { HoldAt::BeforeForwarding } else { HoldAt::BeforeAnswering };
            f.sends.arm(skip, hold, Duration::from_millis(ms), at);
        }
    }

    /// Undoes every fault on the chains.
    async fn calm(&mut self) {
        for d in 0..self.dests.len() {
            self.stall(d, false).await;
            self.spike(d, false).await;
            if let Some(f) = &self.dests[d].fault {
                f.sends.disarm();
            }
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or_default().chars().take(200).collect()
}

// ---------------------------------------------------------------------------------------------
// Checks

/// What one round's checks found.
#[derive(Default)]
struct Found {
    duplicates: u64,
    lost: u64,
    stuck: u64,
    events: u64,
    event_mismatches: u64,
    disagreements: u64,
    /// Canonical items on the source.
    items: u64,
    /// The harness's own self-checks that failed (a chain that is not what it should be).
    harness: u64,
    problems: Vec<String>,
}

impl Found {
    fn problem(&mut self, p: String) {
        if self.problems.len() < 60 {
            self.problems.push(p);
        }
    }
}

/// The logs of `address` in blocks `from..=to`, straight from the node.
async fn logs_between(anvil: &Anvil, address: Address, from: u64, to: u64) -> Vec<Value> {
    let filter =
        json!([{ "fromBlock": format!("{from:#x}"), "toBlock": format!("{to:#x}"), "address": address }]);
    anvil.rpc("eth_getLogs", filter).await.as_array().cloned().unwrap_or_default()
}

/// A log as the chain has it: (block, log index) → (tx hash, block hash, topics, data).
type LogMap = BTreeMap<(u64, u64), (String, String, Vec<String>, String)>;

async fn chain_logs(anvil: &Anvil, address: Address, to: u64) -> LogMap {
    let filter = json!([{ "fromBlock": "0x0", "toBlock": format!("{to:#x}"), "address": address }]);
    let logs = anvil.rpc("eth_getLogs", filter).await;
    logs.as_array()
        .expect("logs")
        .iter()
        .map(|l| {
            let topics = l["topics"].as_array().expect("topics").iter().map(lower).collect();
            (
                (hex_u64(&l["blockNumber"]), hex_u64(&l["logIndex"])),
                (lower(&l["transactionHash"]), lower(&l["blockHash"]), topics, lower(&l["data"])),
            )
        })
        .collect()
}

impl Soak {
    /// Reads new blocks of each destination: ferry's signer's transactions, block hashes, the
    /// receiver's `Recorded` logs.
    async fn scan(&mut self) -> Vec<String> {
        let mut holes = Vec::new();
        for source in [&mut self.src, &mut self.tip] {
            let head = source.anvil.block_number().await;
            let numbers: Vec<u64> = (source.scanned..=head).collect();
            for chunk in numbers.chunks(64) {
                let anvil = &source.anvil;
                let blocks = join_all(
                    chunk
                        .iter()
                        .map(|n| anvil.rpc("eth_getBlockByNumber", json!([format!("{n:#x}"), false]))),
                )
                .await;
                for (n, block) in chunk.iter().zip(blocks) {
                    if block.is_null() {
                        holes.push(format!(
                            "harness: anvil has no block {n} on {} (head {head})",
                            source.name
                        ));
                    }
                }
            }
            source.scanned = head + 1;
        }
        for dest in &mut self.dests {
            let head = dest.anvil.block_number().await;
            if head < dest.scanned {
                continue;
            }
            let numbers: Vec<u64> = (dest.scanned..=head).collect();
            for chunk in numbers.chunks(64) {
                let anvil = &dest.anvil;
                let blocks = join_all(
                    chunk.iter().map(|n| anvil.rpc("eth_getBlockByNumber", json!([format!("{n:#x}"), true]))),
                )
                .await;
                for (n, block) in chunk.iter().zip(blocks) {
                    if block.is_null() {
                        holes.push(format!("harness: anvil has no block {n} on {} (head {head})", dest.name));
                        continue;
                    }
                    dest.block_hashes.insert(*n, lower(&block["hash"]));
                    for tx in block["transactions"].as_array().expect("transactions") {
                        if lower(&tx["from"]) != signer() {
                            continue;
                        }
                        let input: Bytes =
                            tx["input"].as_str().and_then(|s| s.parse().ok()).unwrap_or_default();
                        let mined = MinedTx { hash: lower(&tx["hash"]), to: lower(&tx["to"]), input };
                        dest.by_nonce.insert(hex_u64(&tx["nonce"]), mined);
                    }
                }
            }
            let filter = json!([{
                "fromBlock": format!("{:#x}", dest.scanned),
                "toBlock": format!("{head:#x}"),
                "address": dest.receiver,
            }]);
            let logs = dest.anvil.rpc("eth_getLogs", filter).await;
            for log in logs.as_array().expect("logs") {
                let topic1: alloy::primitives::B256 =
                    log["topics"][1].as_str().and_then(|t| t.parse().ok()).expect("a height topic");
                let height = U256::from_be_bytes(topic1.0).to::<u64>();
                *dest.records.entry(height).or_default() += 1;
                dest.record_logs += 1;
            }
            dest.scanned = head + 1;
        }
        holes
    }

    /// Runs every check of a settled round.
    async fn check(
        &mut self,
        new_heights: &BTreeSet<u64>,
        found: &mut Found,
        lost_seen: &mut BTreeSet<(usize, u64)>,
    ) {
        // Pools first: anything left in one is stuck.
        let mut pool_stuck = vec![false; self.dests.len()];
        for (i, dest) in self.dests.iter().enumerate() {
            let count = |tag: &'static str| async move {
                hex_u64(&dest.anvil.rpc("eth_getTransactionCount", json!([DEV_ADDRESSES[1], tag])).await)
            };
            let (latest, pending) = (count("latest").await, count("pending").await);
            let status = dest.anvil.rpc("txpool_status", json!([])).await;
            let (p, q) = (hex_u64(&status["pending"]), hex_u64(&status["queued"]));
            if latest != pending || p != 0 || q != 0 {
                pool_stuck[i] = true;
                found.problem(format!(
                    "{}: signer nonce latest {latest} != pending {pending} or pool not empty (pending {p}, queued {q})",
                    dest.name
                ));
            }
        }
        for hole in self.scan().await {
            found.harness += 1;
            found.problem(hole);
        }

        // Canonical items on the source, straight from the node.
        let src_head = self.src.anvil.block_number().await;
        let src_logs = chain_logs(&self.src.anvil, self.src.emitter, src_head).await;
        let batch_topic = format!("{:#x}", IEventEmitter::BatchReady::SIGNATURE_HASH);
        let mut items: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        for (key, (_, _, topics, _)) in &src_logs {
            if topics.first() == Some(&batch_topic) {
                let t: alloy::primitives::B256 = topics[1].parse().expect("a height topic");
                items.insert(*key, U256::from_be_bytes(t.0).to::<u64>());
            }
        }
        let heights: BTreeSet<u64> = items.values().copied().collect();
        found.items = items.len() as u64;
        if heights.len() != items.len() {
            found.problem(format!("harness: {} items carry {} distinct heights", items.len(), heights.len()));
        }

        // Exactly once on every destination.
        let mut round_dups = 0;
        for (i, dest) in self.dests.iter().enumerate() {
            let mut dups = 0;
            let mut lost = Vec::new();
            for h in &heights {
                match dest.records.get(h).copied().unwrap_or(0) {
                    0 => lost.push(*h),
                    1 => {}
                    n => dups += n - 1,
                }
            }
            let phantoms: Vec<(u64, u64)> =
                dest.records.iter().filter(|(h, _)| !heights.contains(h)).map(|(h, n)| (*h, *n)).collect();
            dups += phantoms.iter().map(|(_, n)| n).sum::<u64>();
            if dups > 0 {
                let twice: Vec<(u64, u64)> =
                    dest.records.iter().filter(|(_, n)| **n > 1).map(|(h, n)| (*h, *n)).take(20).collect();
                found.problem(format!(
                    "{}: {dups} duplicate records; (height, count) recorded more than once: {twice:?}; \
                     recorded but not a canonical item: {phantoms:?}",
                    dest.name
                ));
            }
            round_dups += dups;
            for h in &lost {
                if lost_seen.insert((i, *h)) {
                    found.lost += 1;
                }
            }
            if !lost.is_empty() {
                let sample: Vec<&u64> = lost.iter().take(20).collect();
                found.problem(format!(
                    "{}: {} items never recorded, e.g. heights {sample:?}",
                    dest.name,
                    lost.len()
                ));
            }
            let total =
                devnet_view(&dest.anvil, dest.receiver, IBatchReceiver::totalRecordedCall {}.abi_encode())
                    .await;
            if total != dest.record_logs {
                found.problem(format!(
                    "{}: totalRecorded() {total} but {} Recorded logs",
                    dest.name, dest.record_logs
                ));
                found.disagreements += 1;
            }
            // The counter itself, for this round's items.
            let counts = join_all(new_heights.iter().map(|h| {
                devnet_view(
                    &dest.anvil,
                    dest.receiver,
                    IBatchReceiver::recordedCountCall { height: *h }.abi_encode(),
                )
            }))
            .await;
            for (h, n) in new_heights.iter().zip(counts) {
                if n != dest.records.get(h).copied().unwrap_or(0) {
                    found.problem(format!("{}: recordedCount({h}) = {n}, logs say otherwise", dest.name));
                    found.disagreements += 1;
                }
            }
        }
        found.duplicates = round_dups;

        // The store against the chains.
        let open = self
            .run("open-txs", &["inspect-store", "txs", "--open", "--json", "--limit", "10000"], HELPER_LIMIT)
            .await;
        let open_rows = open.json()["txs"].as_array().cloned();
        let mut open_by_chain: BTreeMap<String, u64> = BTreeMap::new();
        match &open_rows {
            Some(rows) => {
                for r in rows {
                    *open_by_chain.entry(r["chain"].as_str().unwrap_or("?").to_string()).or_default() += 1;
                }
                if !rows.is_empty() {
                    let sample: Vec<String> = rows
                        .iter()
                        .take(10)
                        .map(|r| format!("{}#{} {}", r["chain"], r["nonce"], r["state"]))
                        .collect();
                    found.problem(format!("inspect-store txs --open lists {}: {sample:?}", rows.len()));
                }
            }
            None => {
                found.problem(format!("inspect-store txs --open --json: {}", open.tail(10)));
                found.disagreements += 1;
            }
        }
        let deliveries = self.export("deliveries").await;
        let intents = self.export("txs").await;
        for (i, dest) in self.dests.iter().enumerate() {
            let chain_id = dest.anvil.chain_id();
            let mut unsettled = pool_stuck[i] || open_by_chain.contains_key(&dest.name);
            let mut states: BTreeMap<String, u64> = BTreeMap::new();
            let mut per_item: BTreeMap<(u64, u64), u64> = BTreeMap::new();
            let mut wrong = Vec::new();
            for d in deliveries.iter().filter(|d| d["chain_id"].as_u64() == Some(chain_id)) {
                let state = d["state"].as_str().unwrap_or("?").to_string();
                *states.entry(state.clone()).or_default() += 1;
                let item = item_key(&d["item"]);
                *per_item.entry(item).or_default() += 1;
                if state != "confirmed" {
                    continue;
                }
                let Some(height) = items.get(&item) else {
                    wrong.push(format!("{} confirmed but not a canonical item", d["id"]));
                    continue;
                };
                let nonce = d["nonce"].as_u64();
                let receipt = &d["receipt"];
                let mined = nonce.and_then(|n| dest.by_nonce.get(&n));
                let Some(mined) = mined else {
                    wrong.push(format!(
                        "{} confirmed at nonce {nonce:?}, no transaction of the signer there",
                        d["id"]
                    ));
                    continue;
                };
                if lower(&receipt["tx_hash"]) != mined.hash {
                    wrong.push(format!(
                        "{} receipt {} but the chain has {} at nonce {nonce:?}",
                        d["id"], receipt["tx_hash"], mined.hash
                    ));
                }
                let carried = IBatchReceiver::recordCall::abi_decode(&mined.input).map(|c| c.height).ok();
                if carried != Some(*height) || mined.to != lower(&json!(dest.receiver)) {
                    wrong.push(format!(
                        "{} (height {height}) confirmed by {} which records {carried:?} at {}",
                        d["id"], mined.hash, mined.to
                    ));
                }
                let block = receipt["block"].as_u64().unwrap_or(u64::MAX);
                if dest.block_hashes.get(&block) != Some(&lower(&receipt["block_hash"])) {
                    wrong.push(format!(
                        "{} receipt in block {block} {}: not the chain's block",
                        d["id"], receipt["block_hash"]
                    ));
                }
            }
            let done =
                states.get("confirmed").copied().unwrap_or(0) + states.get("skipped").copied().unwrap_or(0);
            let missing: Vec<u64> =
                items.iter().filter(|(k, _)| !per_item.contains_key(k)).map(|(_, h)| *h).take(10).collect();
            let twice = per_item.values().filter(|n| **n > 1).count();
            if done != items.len() as u64 || states.len() > 2 || !missing.is_empty() || twice > 0 {
                unsettled = true;
                found.problem(format!(
                    "{}: deliveries by state {states:?} for {} items; items without a delivery {missing:?}; {twice} items with two",
                    dest.name,
                    items.len()
                ));
            }

            // Every nonce the chain used is ferry's mined intent or an outside transaction.
            let latest = dest.by_nonce.keys().next_back().map_or(0, |n| n + 1);
            let mut by_nonce: BTreeMap<u64, &Value> = BTreeMap::new();
            for t in intents.iter().filter(|t| t["chain_id"].as_u64() == Some(chain_id)) {
                let n = t["nonce"].as_u64().unwrap_or(u64::MAX);
                by_nonce.insert(n, t);
                let state = t["state"].as_str().unwrap_or("?");
                let hashes: BTreeSet<String> = std::iter::once(lower(&t["tx_hash"]))
                    .chain(t["replaced_tx_hashes"].as_array().into_iter().flatten().map(lower))
                    .chain(std::iter::once(lower(&t["cancel_tx_hash"])))
                    .collect();
                match (state, dest.by_nonce.get(&n)) {
                    ("signed" | "sent", _) => unsettled = true,
                    ("dropped", Some(m)) if hashes.contains(&m.hash) => {
                        wrong.push(format!("nonce {n}: intent dropped, yet its {} is mined", m.hash))
                    }
                    ("dropped", _) => {}
                    (_, None) => wrong.push(format!("nonce {n}: intent {state}, nothing mined there")),
                    (_, Some(m)) => {
                        if lower(&t["mined_tx_hash"]) != m.hash || !hashes.contains(&m.hash) {
                            wrong.push(format!(
                                "nonce {n}: intent {state} says mined {}, the chain has {}",
                                t["mined_tx_hash"], m.hash
                            ));
                        }
                    }
                }
            }
            for (n, m) in &dest.by_nonce {
                let ferrys = by_nonce.get(n).is_some_and(|t| t["state"] != "dropped");
                if !ferrys && !dest.foreign.contains(&m.hash) {
                    wrong.push(format!(
                        "nonce {n}: {} mined, neither ferry's (store) nor sent outside",
                        m.hash
                    ));
                }
            }
            if (0..latest).any(|n| !dest.by_nonce.contains_key(&n)) {
                wrong.push(format!("a nonce below {latest} has no mined transaction"));
            }
            if unsettled {
                found.stuck += 1;
            }
            if !wrong.is_empty() {
                found.disagreements += wrong.len() as u64;
                let shown: Vec<&String> = wrong.iter().take(10).collect();
                found.problem(format!(
                    "{}: store and chain disagree ({}): {shown:#?}",
                    dest.name,
                    wrong.len()
                ));
            }
        }

        // Stored events against each source's canonical logs, up to its cursor.
        let cursors = self.run("cursors", &["inspect-store", "cursors", "--json"], HELPER_LIMIT).await.json();
        let stored = self.export("events").await;
        for source in [&self.src, &self.tip] {
            let name = if source.name == "src" { "batches" } else { "pings" };
            let cursor = cursors["cursors"]
                .as_array()
                .and_then(|rows| rows.iter().find(|r| r["source"] == name))
                .and_then(|r| r["next"].as_u64());
            let Some(next) = cursor else {
                found.problem(format!("{name}: no cursor: {cursors}"));
                found.event_mismatches += 1;
                continue;
            };
            let head = source.anvil.block_number().await;
            let chain = chain_logs(&source.anvil, source.emitter, next.saturating_sub(1)).await;
            let rows: Vec<&Value> = stored.iter().filter(|e| e["source"] == name).collect();
            let mut mine: LogMap = BTreeMap::new();
            for e in &rows {
                let topics = e["topics"].as_array().into_iter().flatten().map(lower).collect();
                mine.insert(
                    (e["block"].as_u64().unwrap_or(u64::MAX), e["log_index"].as_u64().unwrap_or(u64::MAX)),
                    (lower(&e["tx_hash"]), lower(&e["block_hash"]), topics, lower(&e["data"])),
                );
            }
            let missing: Vec<&(u64, u64)> = chain.keys().filter(|k| !mine.contains_key(k)).collect();
            let extra: Vec<&(u64, u64)> = mine.keys().filter(|k| !chain.contains_key(k)).collect();
            let differ: Vec<&(u64, u64)> =
                chain.iter().filter(|(k, v)| mine.get(k).is_some_and(|m| m != *v)).map(|(k, _)| k).collect();
            let bad = missing.len() + extra.len() + differ.len() + (rows.len() - mine.len());
            found.events += chain.len() as u64;
            if bad > 0 {
                found.event_mismatches += bad as u64;
                found.problem(format!(
                    "{name}: stored events differ from the chain's up to block {} (head {head}): {} missing {:?}, {} extra {:?}, \
                     {} differ {:?}, {} duplicate rows",
                    next.saturating_sub(1),
                    missing.len(),
                    missing.iter().take(8).collect::<Vec<_>>(),
                    extra.len(),
                    extra.iter().take(8).collect::<Vec<_>>(),
                    differ.len(),
                    differ.iter().take(8).collect::<Vec<_>>(),
                    rows.len() - mine.len()
                ));
            }
        }
    }

    async fn export(&mut self, what: &str) -> Vec<Value> {
        let out =
            self.run(&format!("export-{what}"), &["export", what, "--format", "jsonl"], HELPER_LIMIT).await;
        if out.code != Some(0) {
            panic!("ferry export {what} failed: {}", out.tail(20));
        }
        json_lines(out.stdout.as_bytes())
    }
}

/// `ev:<chain>:<block>:<log index>` → (block, log index).
fn item_key(v: &Value) -> (u64, u64) {
    let text = v.as_str().unwrap_or_default();
    let parts: Vec<&str> = text.split(':').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse().ok()).unwrap_or(u64::MAX);
    (num(2), num(3))
}

async fn devnet_view(anvil: &Anvil, to: Address, data: Vec<u8>) -> u64 {
    let out = anvil.call(to, data).await.expect("a view call");
    U256::from_be_slice(&out).to::<u64>()
}

/// What ferry's own logs say happened: the faults reached it, counted by their log lines.
#[derive(Default)]
struct Coverage {
    counts: [u64; 7],
}

impl Coverage {
    const LINES: [(&'static str, &'static str); 7] = [
        ("replacing a transaction not mined in time", "bumps"),
        ("already at the fee cap", "at-cap waits"),
        ("its deliveries go back to pending", "nonces taken outside"),
        ("cancellation signed", "cancels"),
        ("reorg: went back to the common ancestor", "source reorgs"),
        ("delivery failed for good", "failed for good"),
        ("receipt gone in a reorg", "receipts reorged"),
    ];

    /// Adds the lines in round `round`'s logs; what this round had, as text.
    fn add_round(&mut self, logs: &std::path::Path, round: usize) -> String {
        let prefix = format!("r{round:03}-");
        let mut this = [0u64; 7];
        for entry in std::fs::read_dir(logs).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with(&prefix) || !name.ends_with(".err") {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            for line in text.lines() {
                for (i, (needle, _)) in Self::LINES.iter().enumerate() {
                    if line.contains(needle) {
                        this[i] += 1;
                    }
                }
            }
        }
        for (total, n) in self.counts.iter_mut().zip(this) {
            *total += n;
        }
        Self::text(&this)
    }

    fn total(&self) -> String {
        Self::text(&self.counts)
    }

    fn text(counts: &[u64; 7]) -> String {
        let parts: Vec<String> = Self::LINES
            .iter()
            .zip(counts)
            .filter(|(_, n)| **n > 0)
            .map(|((_, what), n)| format!("{n} {what}"))
            .collect();
        if parts.is_empty() { "-".into() } else { parts.join(", ") }
    }
}

// ---------------------------------------------------------------------------------------------
// The soak

async fn soak(seed: u64, rounds: usize, keep: bool, full: bool) -> bool {
    let started = Instant::now();
    println!(
        "soak: seed {seed} (FERRY_SOAK_SEED={seed} repeats the plan; process timing varies), {rounds} rounds{}",
        if full { "" } else { " (smoke; `cargo bench --bench soak` runs 100)" }
    );
    let mut rng = fastrand::Rng::with_seed(seed);
    // Kept until the end, so that a panic leaves the evidence; removed then unless asked to keep
    // it or something failed.
    let dir = tempfile::Builder::new().prefix("ferry-soak-").tempdir().expect("tempdir").keep();
    std::fs::create_dir_all(dir.join("logs")).expect("logs dir");

    let (src, tip) = tokio::join!(Anvil::start(31337), Anvil::start(31338));
    let (src, tip) = (Arc::new(src), Arc::new(tip));
    let src_emitter = src.deploy("EventEmitter", &[]).await;
    let tip_emitter = tip.deploy("EventEmitter", &[]).await;
    // Room for the deepest reorg on tip from the start.
    tip.mine(12).await;
    let src_miner = start_miner(src.clone(), SRC_BLOCK_EVERY);
    let mut dests = Vec::new();
    for i in 0..DESTS {
        let anvil = Arc::new(Anvil::start(41000 + i as u64).await);
        let receiver = anvil.deploy("BatchReceiver", &[]).await;
        // A backend a few blocks behind must already have the receiver's code: an estimate
        // against a block before its deployment is a call to an empty account (≈21k gas).
        anvil.mine(8).await;
        let lag = LagProxy::start(anvil.url(), LagPlan::uniform(0)).await;
        let (miner, miner_task) = start_miner(anvil.clone(), BLOCK_EVERY);
        // 1 or 2 from the seed, and 2 on d1 whatever the seed says (the draw is kept so that a
        // seed's plan stays what it was).
        let drawn = rng.u64(1..=2);
        let confirmations = if i == 1 { 2 } else { drawn };
        dests.push(Dest {
            name: format!("d{i}"),
            anvil,
            receiver,
            confirmations,
            lag,
            fault: None,
            miner,
            miner_task,
            scanned: 0,
            by_nonce: BTreeMap::new(),
            block_hashes: BTreeMap::new(),
            records: BTreeMap::new(),
            record_logs: 0,
            foreign: BTreeSet::new(),
        });
    }
    let src_lag = LagProxy::start(src.url(), LagPlan::uniform(0)).await;
    let tip_lag = LagProxy::start(tip.url(), LagPlan::uniform(0)).await;
    let mut s = Soak {
        dir: dir.clone(),
        src: Source {
            name: "src",
            anvil: src,
            emitter: src_emitter,
            lag: src_lag,
            fault: None,
            miner: Some(src_miner),
            scanned: 0,
        },
        tip: Source {
            name: "tip",
            anvil: tip,
            emitter: tip_emitter,
            lag: tip_lag,
            fault: None,
            miner: None,
            scanned: 0,
        },
        dests,
        next_height: 0,
        step: 0,
        round: 0,
        child: None,
    };
    println!(
        "setup: src 31337 (confirmations 2), tip 31338 (confirmations 0, reorg_window 16), destinations {} \
         (confirmations {:?}), cap {CAP_GWEI} gwei, bump_after {BUMP_AFTER_MS}ms; dir {}",
        s.dests.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(" "),
        s.dests.iter().map(|d| d.confirmations).collect::<Vec<_>>(),
        dir.display()
    );

    let mut total = Found::default();
    let mut lost_seen: BTreeSet<(usize, u64)> = BTreeSet::new();
    let mut failed_rounds = Vec::new();
    let mut anomalies_all = 0;
    let mut coverage = Coverage::default();
    let mut injected = [0u64; 2];
    let mut round_secs = Vec::new();
    for round in 0..rounds {
        let round_started = Instant::now();
        s.round = round;
        let plan = make_plan(&mut rng, force_for(round));
        let heights_before = s.next_height;
        let round_seed = rng.u64(..);

        // Proxies for this round.
        for (i, dest) in s.dests.iter_mut().enumerate() {
            let (backends, receipt_lag) = &plan.dest_lags[i];
            dest.lag.set_plan(
                LagPlan::backends(backends, round_seed ^ i as u64)
                    .with_method_lag("eth_getTransactionReceipt", *receipt_lag),
            );
            dest.fault = Some(
                FaultProxy::start(dest.lag.url(), plan.dest_rates[i], round_seed.wrapping_add(i as u64))
                    .await,
            );
        }
        for (k, source) in [&mut s.src, &mut s.tip].into_iter().enumerate() {
            source.lag.set_plan(LagPlan::backends(&plan.source_lags[k], round_seed ^ (100 + k as u64)));
            source.fault = Some(
                FaultProxy::start(
                    source.lag.url(),
                    plan.source_rates[k],
                    round_seed.wrapping_add(100 + k as u64),
                )
                .await,
            );
        }
        s.write_config(false);

        // Chaos.
        let mut anomalies = Vec::new();
        let mut events = Vec::new();
        let mut cancelled: BTreeSet<String> = BTreeSet::new();
        let t0 = tokio::time::Instant::now();
        for (at, act) in &plan.acts {
            tokio::time::sleep_until(t0 + Duration::from_millis(*at)).await;
            match act {
                Act::Emit(n) => s.emit(*n).await,
                Act::Backlog(n) => {
                    s.emit(*n).await;
                    s.src_mine(4).await;
                }
                Act::SrcReorg { depth, items } => {
                    let r = s.src_reorg(*depth, *items).await;
                    if r.starts_with("harness") {
                        anomalies.push(r);
                    }
                }
                Act::Pings(n) => s.pings(*n).await,
                Act::TipReorg { depth, txs } => {
                    let r = s.tip_reorg(*depth, *txs).await;
                    if r.starts_with("harness") {
                        anomalies.push(r);
                    }
                }
                Act::SpikeOn(d) => s.spike(*d, true).await,
                Act::SpikeOff(d) => s.spike(*d, false).await,
                Act::StallOn(d) => s.stall(*d, true).await,
                Act::StallOff(d) => s.stall(*d, false).await,
                Act::Foreign { dest, at_latest } => events.push(s.foreign(*dest, *at_latest).await),
                Act::Hold { dest, skip, hold, ms, before } => s.hold(*dest, *skip, *hold, *ms, *before).await,
                Act::Start(cmd) => s.start(*cmd),
                Act::Kill => events.push(s.kill(&mut anomalies).await),
                Act::Cancel { pick, prefer } => {
                    let (what, chain) = s.cancel(*pick, *prefer).await;
                    events.push(what);
                    cancelled.extend(chain);
                }
            }
        }
        let held: u64 = s
            .dests
            .iter()
            .filter_map(|d| d.fault.as_ref())
            .map(|f| f.sends.held.load(Ordering::Relaxed))
            .sum();
        let faults: u64 = s
            .dests
            .iter()
            .filter_map(|d| d.fault.as_ref())
            .chain([&s.src.fault, &s.tip.fault].into_iter().flatten())
            .map(|f| f.injected.faults())
            .sum();

        // Settle.
        let settle_started = Instant::now();
        s.calm().await;
        s.write_config(true);
        // Enough blocks on the source for its confirmations and the slowest backend.
        s.src_mine(6).await;
        let mut pushes = Vec::new();
        let mut settled = false;
        let mut retried = 0;
        for attempt in 0..2 {
            let out = s.run("settle-push", &["push", "--json", "--timeout", "120s"], SETTLE_LIMIT).await;
            pushes.push(out.code.map_or("killed".to_string(), |c| c.to_string()));
            for sync in out.json()["synced"].as_array().into_iter().flatten() {
                if !sync["error"].is_null() {
                    anomalies.push(format!(
                        "settle push (exit {:?}): the sync of {} failed: {}",
                        out.code, sync["source"], sync["error"]
                    ));
                }
            }
            if out.code == Some(0) {
                settled = true;
                break;
            }
            if attempt == 1 {
                anomalies.push(format!("settle push did not settle:\n{}", out.tail(40)));
                break;
            }
            // Deliveries a cancel failed are the operator's to retry; anything else is left to
            // the second push as it is.
            let failed = s
                .run(
                    "failed",
                    &["inspect-store", "deliveries", "--json", "--state", "failed", "--limit", "100000"],
                    HELPER_LIMIT,
                )
                .await
                .json();
            let rows = failed["deliveries"].as_array().cloned().unwrap_or_default();
            let ids: Vec<String> = rows
                .iter()
                .filter(|r| r["reason"].as_str().is_some_and(|why| why.contains("cancel")))
                .map(|r| r["id"].as_str().unwrap_or_default().to_string())
                .collect();
            let others: Vec<String> = rows
                .iter()
                .filter(|r| !r["reason"].as_str().is_some_and(|why| why.contains("cancel")))
                .map(|r| format!("{} {}", r["id"], r["reason"]))
                .collect();
            if !others.is_empty() {
                anomalies.push(format!("failed deliveries not cancelled by the operator: {others:?}"));
            }
            if !ids.is_empty() {
                let mut args = vec!["inspect-store", "retry"];
                args.extend(ids.iter().map(String::as_str));
                args.extend(["--yes", "--json"]);
                let out = s.run("retry", &args, HELPER_LIMIT).await;
                if out.code == Some(0) {
                    retried += ids.len();
                } else {
                    anomalies.push(format!("inspect-store retry failed: {}", out.tail(10)));
                }
            } else if cancelled.is_empty() {
                anomalies.push(format!(
                    "settle push {attempt} exit {:?} with nothing cancelled:\n{}",
                    out.code,
                    out.tail(25)
                ));
            }
        }
        let settle_secs = settle_started.elapsed().as_secs_f64();

        // Checks.
        let mut found = Found::default();
        if !settled {
            found.stuck += 1;
            found.problem(format!("settle: pushes exited {pushes:?}"));
        }
        let new_heights: BTreeSet<u64> = (heights_before..s.next_height).collect();
        s.check(&new_heights, &mut found, &mut lost_seen).await;
        for dest in &mut s.dests {
            dest.fault = None;
        }
        s.src.fault = None;
        s.tip.fault = None;

        let secs = round_started.elapsed().as_secs_f64();
        round_secs.push(secs);
        let seen = coverage.add_round(&s.dir.join("logs"), round);
        println!(
            "round {round:3}: {} | {} | faults {faults}, held {held}; ferry: {seen} | settle {:.1}s pushes [{}]{} | \
             items {} canonical of {} emitted, dup {} lost {} stuck {} events {}/{} mism, store≠chain {} | {secs:.1}s",
            plan.summary,
            events.join("; "),
            settle_secs,
            pushes.join(","),
            if retried > 0 { format!(", {retried} retried") } else { String::new() },
            found.items,
            s.next_height,
            found.duplicates,
            found.lost,
            found.stuck,
            found.events,
            found.event_mismatches,
            found.disagreements,
        );
        for a in &anomalies {
            println!("  anomaly: {}", a.replace('\n', "\n    "));
        }
        anomalies_all += anomalies.len();
        injected[0] += faults;
        injected[1] += held;
        let bad = found.duplicates
            + found.lost
            + found.stuck
            + found.event_mismatches
            + found.disagreements
            + found.harness
            > 0;
        if bad {
            failed_rounds.push(round);
            for p in &found.problems {
                println!("  problem: {}", p.replace('\n', "\n    "));
            }
            let mut note =
                format!("round {round}, seed {seed}, plan: {}\nevents: {events:?}\n", plan.summary);
            for (at, act) in &plan.acts {
                let _ = writeln!(note, "  {at:>6} ms {act:?}");
            }
            for p in found.problems.iter().chain(&anomalies) {
                let _ = writeln!(note, "{p}");
            }
            let path = dir.join("failures.txt");
            let old = std::fs::read_to_string(&path).unwrap_or_default();
            let _ = std::fs::write(&path, format!("{old}{note}\n"));
        }
        // Duplicates on a chain stay there: the tally keeps the largest count seen.
        total.duplicates = total.duplicates.max(found.duplicates);
        total.lost += found.lost;
        total.stuck += found.stuck;
        total.events += found.events;
        total.event_mismatches += found.event_mismatches;
        total.disagreements += found.disagreements;
        total.items = found.items;
        total.harness += found.harness;
    }

    // Stop the block tasks before the nodes go.
    for dest in &s.dests {
        dest.miner.stop.store(true, Ordering::SeqCst);
    }
    if let Some((miner, _)) = &s.src.miner {
        miner.stop.store(true, Ordering::SeqCst);
    }
    for dest in &mut s.dests {
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut dest.miner_task).await;
    }
    if let Some((_, task)) = &mut s.src.miner {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    let items = s.next_height;
    let canonical = total.items;
    let blocks: Vec<u64> = s.dests.iter().map(|d| d.miner.blocks.load(Ordering::Relaxed)).collect();
    let wall = started.elapsed().as_secs_f64();
    round_secs.sort_by(f64::total_cmp);
    let median = round_secs.get(round_secs.len() / 2).copied().unwrap_or(0.0);
    let max = round_secs.last().copied().unwrap_or(0.0);
    println!(
        "soak: {rounds} rounds, seed {seed}: {} duplicates, {} lost, {} stuck, {} events compared, {} event mismatches, \
         {} store/chain disagreements, {} harness self-check failures",
        total.duplicates,
        total.lost,
        total.stuck,
        total.events,
        total.event_mismatches,
        total.disagreements,
        total.harness
    );
    println!(
        "soak: {items} heights emitted, {canonical} canonical, each to {DESTS} chains; {anomalies_all} anomalies; \
         wall {wall:.0}s, round median {median:.1}s, max {max:.1}s; destination blocks made {blocks:?}"
    );
    println!(
        "soak: injected {} RPC faults, {} held broadcasts; in ferry's logs: {}",
        injected[0],
        injected[1],
        coverage.total()
    );
    let ok = failed_rounds.is_empty();
    if !ok || keep {
        println!("soak: directory kept: {} (failed rounds {failed_rounds:?})", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    ok
}
