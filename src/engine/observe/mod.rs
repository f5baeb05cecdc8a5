//! What a running `watch` tells monitoring: Prometheus metrics through the `metrics` facade, and
//! the board that `/readyz` and the per-chain heartbeat read.
//!
//! The engine records at the points where it already decides or applies something (a range
//! committed, an intent written, a request answered); it never knows who reads. Two switches,
//! both thrown by `watch` alone:
//! - the `metrics` facade is a no-op until a command installs a recorder (the CLI's metrics
//!   server does, and only under `--metrics-addr`); [`recording`] lets hot paths skip building
//!   labels when nobody listens;
//! - the [`Board`] exists once [`enable`] is called; until then every `observe::*` call returns at
//!   once and no observer task is spawned (`push`, `backfill` and the rest pay nothing).
//!
//! The board is keyed by source and destination name, not by task, so it outlives the sources
//! and workers it reports on: a new generation of them (a reload) reports under the same names.
//!
//! Metric names and labels are a contract (README "Metrics and health"); they are all here.

mod board;
pub mod ready;

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;

pub use self::board::{Board, DestKind, Snapshot};
use crate::engine::deliver::ChainStatus;
use crate::engine::ingest::SourceStatus;
use crate::store::records::DeliveryState;

/// Per source (`source`, `chain`): the highest block (or SEDA batch) it may read now.
pub const SOURCE_HEAD: &str = "ferry_source_head";
/// Per source: the next block (or batch) it reads.
pub const SOURCE_CURSOR: &str = "ferry_source_cursor";
/// Per source: blocks (or batches) between the cursor and the head it may read.
pub const SOURCE_LAG_BLOCKS: &str = "ferry_source_lag_blocks";
/// Per source: seconds since the source last had everything up to that head.
pub const SOURCE_LAG_SECONDS: &str = "ferry_source_lag_seconds";
/// Per source: events ingested (`evm`).
pub const SOURCE_EVENTS: &str = "ferry_source_events_total";
/// Per source: SEDA batches stored (`seda`).
pub const SOURCE_BATCHES: &str = "ferry_source_batches_total";
/// Per source: reorgs handled.
pub const SOURCE_REORGS: &str = "ferry_source_reorgs_total";

/// Per destination chain (`chain`, `state`): deliveries in each state.
pub const DELIVERIES: &str = "ferry_deliveries";
/// Per destination chain: age of the oldest delivery not settled yet (pending, sending, sent).
pub const OLDEST_PENDING: &str = "ferry_delivery_oldest_pending_age_seconds";
/// Per destination chain: transactions broadcast (replacements included).
pub const TX_SENT: &str = "ferry_transactions_sent_total";
/// Per destination chain: transactions replaced by a fee bump.
pub const TX_REPLACED: &str = "ferry_transactions_replaced_total";
/// Per destination chain: transactions found in a block.
pub const TX_MINED: &str = "ferry_transactions_mined_total";
/// Per destination chain: transactions as deep as the chain's confirmations.
pub const TX_CONFIRMED: &str = "ferry_transactions_confirmed_total";
/// Per destination chain: nonces proven used by a transaction ferry did not sign.
pub const TX_DROPPED: &str = "ferry_transactions_dropped_total";
/// Per destination chain: gas used by confirmed transactions.
pub const GAS_USED: &str = "ferry_gas_used_total";
/// Per destination chain: fees paid by confirmed transactions, in wei.
pub const FEES_PAID: &str = "ferry_fees_paid_wei_total";
/// Per destination chain: the signer's balance, in wei, when the worker reads it.
pub const SIGNER_BALANCE: &str = "ferry_signer_balance_wei";
/// Per destination chain: ferry's next nonce minus the chain's pending nonce, when positive
/// (nonces ferry signed that the chain does not hold), as read when the worker starts.
pub const NONCE_GAP: &str = "ferry_nonce_gap";
/// Per destination chain: 1 while the chain reports a problem (`code` label), else absent/0.
pub const CHAIN_PROBLEM: &str = "ferry_chain_problem";

/// Per sink target (`target`, `state`): deliveries in each state.
pub const SINK_DELIVERIES: &str = "ferry_sink_deliveries";
/// Per sink target: age of the oldest delivery not handed over yet.
pub const SINK_OLDEST_PENDING: &str = "ferry_sink_oldest_pending_age_seconds";

/// Per RPC URL (`chain`, `url` with credentials masked, `method`): requests sent, retries included.
pub const RPC_REQUESTS: &str = "ferry_rpc_requests_total";
/// Per RPC URL (`chain`, `url`, `class`): failed requests by class (`transport`, `rate-limited`, …).
pub const RPC_ERRORS: &str = "ferry_rpc_errors_total";
/// Per RPC URL (`chain`, `url`): request latency.
pub const RPC_LATENCY: &str = "ferry_rpc_request_duration_seconds";

/// The state file's size on disk.
pub const STORE_SIZE: &str = "ferry_store_size_bytes";
/// Time to commit one write transaction (recorded by `store`, which names it itself).
pub const STORE_COMMIT: &str = crate::store::COMMIT_SECONDS;

/// Whether a metrics recorder listens (set by whoever installs one).
static RECORDING: AtomicBool = AtomicBool::new(false);

static BOARD: OnceLock<Board> = OnceLock::new();

/// Says that a recorder is installed: recording calls that build labels go ahead from now on.
pub fn set_recording() {
    RECORDING.store(true, Ordering::Relaxed);
}

/// Whether anything listens to metrics.
pub fn recording() -> bool {
    RECORDING.load(Ordering::Relaxed)
}

/// Creates the board (once per process) and returns it. Only `watch` calls this.
pub fn enable() -> &'static Board {
    BOARD.get_or_init(Board::default)
}

/// The board, when [`enable`] was called.
pub fn board() -> Option<&'static Board> {
    BOARD.get()
}

/// Help text for every metric, so that `/metrics` says what each one is.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(SOURCE_HEAD, "highest block (or SEDA batch) the source may read now");
    describe_gauge!(SOURCE_CURSOR, "next block (or SEDA batch) the source reads");
    describe_gauge!(SOURCE_LAG_BLOCKS, "blocks (or batches) between the cursor and the head");
    describe_gauge!(
        SOURCE_LAG_SECONDS,
        Unit::Seconds,
        "seconds since the source last had everything up to its head"
    );
    describe_counter!(SOURCE_EVENTS, "events ingested");
    describe_counter!(SOURCE_BATCHES, "SEDA batches stored");
    describe_counter!(SOURCE_REORGS, "reorgs handled");
    describe_gauge!(DELIVERIES, "deliveries by state");
    describe_gauge!(OLDEST_PENDING, Unit::Seconds, "age of the oldest delivery not settled yet");
    describe_counter!(TX_SENT, "transactions broadcast, replacements included");
    describe_counter!(TX_REPLACED, "transactions replaced by a fee bump");
    describe_counter!(TX_MINED, "transactions found in a block");
    describe_counter!(TX_CONFIRMED, "transactions as deep as the chain's confirmations");
    describe_counter!(TX_DROPPED, "nonces proven used by a transaction ferry did not sign");
    describe_counter!(GAS_USED, "gas used by confirmed transactions");
    describe_counter!(FEES_PAID, "fees paid by confirmed transactions, in wei");
    describe_gauge!(SIGNER_BALANCE, "the signer's balance in wei, as last read");
    describe_gauge!(NONCE_GAP, "ferry's next nonce minus the chain's pending nonce, at start");
    describe_gauge!(CHAIN_PROBLEM, "1 while the chain reports the problem named by `code`");
    describe_gauge!(SINK_DELIVERIES, "sink deliveries by state");
    describe_gauge!(SINK_OLDEST_PENDING, Unit::Seconds, "age of the oldest sink delivery not handed over");
    describe_counter!(RPC_REQUESTS, "JSON-RPC requests sent, retries included");
    describe_counter!(RPC_ERRORS, "JSON-RPC requests that failed, by class");
    describe_histogram!(RPC_LATENCY, Unit::Seconds, "JSON-RPC request latency");
    describe_gauge!(STORE_SIZE, Unit::Bytes, "size of the state file");
    describe_histogram!(STORE_COMMIT, Unit::Seconds, "time to commit one write transaction");
}

/// Histogram buckets (seconds) for RPC latency and store commits.
pub const LATENCY_BUCKETS: [f64; 12] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Follows one source's status while it runs: metrics and the board on every change. Nothing
/// without a board. The task ends when the source does (its sender is dropped).
pub fn follow_source(mut rx: watch::Receiver<SourceStatus>) {
    let Some(board) = board() else { return };
    tokio::spawn(async move {
        let mut counted = Counted::default();
        loop {
            let status = rx.borrow_and_update().clone();
            board.source(&status);
            counted.source(&status);
            if rx.changed().await.is_err() {
                break;
            }
        }
    });
}

/// Follows one destination's status (a chain's worker, or a sink's) while it runs, and reads
/// its oldest unsettled delivery every second with `oldest` (`None`: could not read, keep what
/// was known): a worker stuck in a failing request does not report, and its backlog ages all
/// the same.
pub fn follow_dest(
    mut rx: watch::Receiver<ChainStatus>,
    kind: DestKind,
    mut oldest: impl FnMut() -> Option<Option<u64>> + Send + 'static,
) {
    let Some(board) = board() else { return };
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let status = rx.borrow_and_update().clone();
            board.dest(&status, kind);
            dest_gauges(&status, kind);
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { break },
                _ = every.tick() => {
                    if let Some(created) = tokio::task::block_in_place(&mut oldest) {
                        board.oldest_open(&status.chain, kind, created);
                    }
                }
            }
        }
    });
}

/// What a source's counters last showed, so that a counter grows by the difference (a new run of
/// the source counts from 0 again).
#[derive(Default)]
struct Counted {
    events: u64,
    batches: u64,
    reorgs: u64,
}

impl Counted {
    fn source(&mut self, s: &SourceStatus) {
        let labels = [("source", s.source.clone()), ("chain", s.chain.clone())];
        if let Some(head) = s.head {
            metrics::gauge!(SOURCE_HEAD, &labels).set(head as f64);
            metrics::gauge!(SOURCE_LAG_BLOCKS, &labels).set((head + 1).saturating_sub(s.next) as f64);
        }
        metrics::gauge!(SOURCE_CURSOR, &labels).set(s.next as f64);
        let grow = |name: &'static str, now: u64, before: &mut u64| {
            let by = now.saturating_sub(*before);
            if by > 0 {
                metrics::counter!(name, &labels).increment(by);
            }
            *before = now;
        };
        grow(SOURCE_EVENTS, s.events, &mut self.events);
        grow(SOURCE_BATCHES, s.batches, &mut self.batches);
        grow(SOURCE_REORGS, s.reorgs, &mut self.reorgs);
    }
}

fn dest_gauges(s: &ChainStatus, kind: DestKind) {
    let (name, key) = match kind {
        DestKind::Chain => (DELIVERIES, "chain"),
        DestKind::Sink => (SINK_DELIVERIES, "target"),
    };
    for state in DeliveryState::ALL {
        metrics::gauge!(name, key => s.chain.clone(), "state" => state.as_str())
            .set(s.counts.get(state) as f64);
    }
}

/// A destination chain whose worker is starting (with what waits for it): not started yet,
/// until its status says otherwise.
pub fn starting(chain: &str, oldest: Option<u64>) {
    if let Some(board) = board() {
        board.starting(chain, oldest);
    }
}

/// A destination chain whose worker could not start (its RPC fails): the board says so, with
/// what waits for it, although no worker reports yet.
pub fn could_not_start(chain: &str, error: &str, oldest: Option<u64>) {
    if let Some(board) = board() {
        board.could_not_start(chain, error, oldest);
    }
}

/// Nonces ferry holds that the chain's pending count does not (known when the worker starts).
pub fn nonce_gap(chain: &str, ours: u64, chain_pending: u64) {
    metrics::gauge!(NONCE_GAP, "chain" => chain.to_string()).set(ours.saturating_sub(chain_pending) as f64);
}

/// The signer's balance, wherever a worker reads it.
pub fn signer_balance(chain: &str, wei: alloy::primitives::U256) {
    let wei: f64 = wei.into();
    metrics::gauge!(SIGNER_BALANCE, "chain" => chain.to_string()).set(wei);
}

/// A transaction event on a destination chain, for its counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxEvent {
    Sent,
    Replaced,
    Mined,
    /// Confirmed, with the gas it used and the price it paid per gas.
    Confirmed {
        gas_used: u64,
        gas_price: u128,
    },
    Dropped,
}

/// Counts a transaction event on a chain.
pub fn tx(chain: &str, event: TxEvent) {
    if !recording() {
        return;
    }
    let labels = [("chain", chain.to_string())];
    match event {
        TxEvent::Sent => metrics::counter!(TX_SENT, &labels).increment(1),
        TxEvent::Replaced => metrics::counter!(TX_REPLACED, &labels).increment(1),
        TxEvent::Mined => metrics::counter!(TX_MINED, &labels).increment(1),
        TxEvent::Dropped => metrics::counter!(TX_DROPPED, &labels).increment(1),
        TxEvent::Confirmed { gas_used, gas_price } => {
            metrics::counter!(TX_CONFIRMED, &labels).increment(1);
            metrics::counter!(GAS_USED, &labels).increment(gas_used);
            let fee = u128::from(gas_used).saturating_mul(gas_price);
            metrics::counter!(FEES_PAID, &labels).increment(u64::try_from(fee).unwrap_or(u64::MAX));
        }
    }
}

/// One JSON-RPC request answered (or not) by one URL.
pub fn rpc(chain: &str, url: &str, method: &str, took: Duration, failed: Option<&'static str>) {
    if !recording() {
        return;
    }
    let (chain, url) = (chain.to_string(), url.to_string());
    metrics::counter!(RPC_REQUESTS, "chain" => chain.clone(), "url" => url.clone(), "method" => method.to_string())
        .increment(1);
    metrics::histogram!(RPC_LATENCY, "chain" => chain.clone(), "url" => url.clone())
        .record(took.as_secs_f64());
    if let Some(class) = failed {
        metrics::counter!(RPC_ERRORS, "chain" => chain, "url" => url, "class" => class).increment(1);
    }
}

/// Sets the gauges that are ages (they grow between events), as of now: called before each
/// scrape.
pub fn refresh_ages() {
    let Some(board) = board() else { return };
    let snapshot = board.snapshot();
    for s in &snapshot.sources {
        metrics::gauge!(SOURCE_LAG_SECONDS, "source" => s.name.clone(), "chain" => s.chain.clone())
            .set(s.lag_secs as f64);
    }
    for d in &snapshot.dests {
        let (name, key) = match d.kind {
            DestKind::Chain => (OLDEST_PENDING, "chain"),
            DestKind::Sink => (SINK_OLDEST_PENDING, "target"),
        };
        metrics::gauge!(name, key => d.name.clone()).set(d.oldest_open_secs.unwrap_or(0) as f64);
        if d.kind == DestKind::Chain {
            for code in &d.codes_seen {
                let on = d.problem.as_ref().is_some_and(|p| &p.code == code);
                metrics::gauge!(CHAIN_PROBLEM, "chain" => d.name.clone(), "code" => code.clone())
                    .set(if on { 1.0 } else { 0.0 });
            }
        }
    }
}
