//! The worker of one destination chain: reconcile on start, then each tick follow the open
//! intents (`follow.rs`) and start due deliveries (`start.rs`), until cancelled or, for `push`,
//! until nothing is left to do.

mod audit;
mod health;
mod problem;
mod requests;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy::primitives::Address;
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::chain;
use super::{Counts, DeliverError, Destination, Options};
use crate::engine::observe::{self, DestKind};
use crate::engine::operator::{Inbox, Owner};
use crate::engine::rpc::RpcError;
use crate::store::keys::{DeliveryKey, IntentKey};
use crate::store::records::{Delivery, DeliveryState, IntentState, Receipt, TxIntent};
use crate::store::{Store, StoreError, now};
pub use problem::Problem;

/// What a worker reports as it goes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChainStatus {
    pub chain: String,
    pub signer: String,
    pub next_nonce: u64,
    pub counts: Counts,
    /// Transactions ferry sent on this run (replacements included).
    pub sent_txs: u64,
    pub bumps: u64,
    /// Why the chain is paused or failing, when it is.
    pub problem: Option<Problem>,
    /// Deliveries a dry run would send: (target, item, gas).
    pub would_send: Vec<String>,
    /// Deliveries that failed for good on this run, as `<id>: <reason>` (the first few).
    pub failures: Vec<String>,
    /// What an operator should know about how the run went (the first few), e.g. why a batch
    /// was posted before the one aimed at.
    pub notes: Vec<String>,
    pub done: bool,
}

pub struct Worker {
    pub(super) dest: Destination,
    pub(super) store: Arc<Store>,
    pub(super) opts: Options,
    pub(super) signer: Address,
    pub(super) next_nonce: u64,
    /// Intents below this nonce are all settled.
    pub(super) floor: u64,
    /// Intents signed or sent and not mined yet, as of the last follow.
    pub(super) in_flight: usize,
    /// Nonce → block (number, hash) of the receipt, for mined intents waiting for confirmations.
    pub(super) mined_at: HashMap<u64, (u64, alloy::primitives::B256)>,
    /// Since when nonces used without a visible receipt have been waiting (`None`: none waits).
    pub(super) unseen_since: Option<std::time::Instant>,
    /// Nonce → since when the chain has counted it used with no receipt of ferry's visible.
    pub(super) unseen_at: HashMap<u64, std::time::Instant>,
    /// When sent, unmined transactions were last broadcast again.
    pub(super) rebroadcast_at: std::time::Instant,
    pub(super) started: usize,
    failures: u32,
    pub(super) warned_cap: bool,
    /// Unix seconds until which new sends wait (0: not paused).
    paused_until: AtomicU64,
    /// One past the highest nonce ferry has seen confirmed on the chain (`health.rs`).
    pub(super) confirmed_next: Option<u64>,
    /// The chain no longer holds ferry's confirmed transactions: nothing new is signed.
    pub(super) gap: bool,
    pub(super) health: health::Health,
    /// `seda-prover` targets: the Prover of each (read from a Core once), and what it last said.
    pub(super) provers: HashMap<u32, Address>,
    pub(super) prover_states: HashMap<u32, crate::store::records::ProverState>,
    pub(super) prover_read_at: HashMap<u32, std::time::Instant>,
    pub(super) status: watch::Sender<ChainStatus>,
}

/// How long a chain whose signer cannot pay waits before trying again.
const PAUSE: Duration = Duration::from_secs(60);

/// How the deliveries of an intent change when the intent is written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Update {
    /// Just signed: the deliveries were written with it.
    None,
    /// A node took it: sending → sent.
    Sent,
    /// Replaced with higher fees: the new hash joins the delivery's hashes.
    Bumped(alloy::primitives::B256),
    /// One of its hashes has a receipt; a verdict settles a delivery at once (a cancellation, or
    /// a revert), otherwise it is sent and waits for confirmations.
    Mined {
        receipt: Receipt,
        verdicts: Vec<(DeliveryKey, DeliveryState, String)>,
    },
    Confirmed(Receipt),
    /// Its receipt disappeared in a reorg: back to sending, the same bytes go out again.
    Reorged,
    /// Its nonce went to a transaction ferry did not sign (found in a block, deep enough), or the
    /// operator resynced: pending again.
    Dropped(String),
    /// The chain no longer holds it, though ferry saw it mined there: a reset chain, lined up by
    /// the operator's resync. Its deliveries, delivered on a chain that is gone, are pending
    /// again — the already-done check before they are sent is what keeps one that is somehow
    /// still there from going out twice.
    Forgotten(String),
}

impl Update {
    /// Applies the update to one delivery; whether it changed.
    pub(super) fn apply(&self, key: DeliveryKey, d: &mut Delivery) -> bool {
        match self {
            Update::None => false,
            Update::Sent => {
                let sending = d.state == DeliveryState::Sending;
                if sending {
                    d.state = DeliveryState::Sent;
                }
                sending
            }
            Update::Bumped(hash) => {
                d.tx_hashes.push(*hash);
                d.state = DeliveryState::Sending;
                true
            }
            Update::Mined { receipt, verdicts } => {
                d.receipt = Some(receipt.clone());
                match verdicts.iter().find(|(k, _, _)| *k == key) {
                    Some((_, state, reason)) => {
                        d.state = *state;
                        d.reason = Some(reason.clone());
                        d.retryable = false;
                    }
                    None => d.state = DeliveryState::Sent,
                }
                true
            }
            Update::Confirmed(receipt) => {
                let sent = d.state == DeliveryState::Sent;
                if sent {
                    d.state = DeliveryState::Confirmed;
                    d.receipt = Some(receipt.clone());
                }
                sent
            }
            Update::Reorged => {
                let landed = matches!(d.state, DeliveryState::Sent | DeliveryState::Confirmed);
                if landed {
                    d.state = DeliveryState::Sending;
                    d.receipt = None;
                }
                landed
            }
            Update::Dropped(reason) => {
                let open = !d.state.is_final(d.retryable);
                if open {
                    d.state = DeliveryState::Pending;
                    d.reason = Some(reason.clone());
                }
                open
            }
            // A delivery failed or skipped by a verdict (a revert, the operator's cancel or
            // skip) keeps it: that verdict was the operator's or the target's, not the chain's.
            Update::Forgotten(reason) => {
                let landed = matches!(
                    d.state,
                    DeliveryState::Sending | DeliveryState::Sent | DeliveryState::Confirmed
                );
                if landed {
                    d.state = DeliveryState::Pending;
                    d.receipt = None;
                    d.retryable = true;
                    d.next_attempt_at = None;
                    d.reason = Some(reason.clone());
                }
                landed
            }
        }
    }
}

/// Store work inside the async runtime without stalling its other tasks.
pub(super) fn store_blocking<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, DeliverError> {
    Ok(tokio::task::block_in_place(f)?)
}

/// Writes intents and, in the same transaction, each of their deliveries an update changes.
pub(super) fn save_intents(
    store: &Store,
    chain: u64,
    signer: Address,
    intents: &[(u64, &TxIntent, &Update)],
) -> Result<(), DeliverError> {
    if intents.is_empty() {
        return Ok(());
    }
    store_blocking(|| {
        store.write(|tx| {
            for (nonce, intent, update) in intents {
                tx.put_intent(IntentKey { chain, signer, nonce: *nonce }, intent)?;
                for dkey in &intent.deliveries {
                    let Some(mut d) = tx.delivery(*dkey)? else { continue };
                    if update.apply(*dkey, &mut d) {
                        d.updated_at = now();
                        tx.put_delivery(*dkey, &d)?;
                    }
                }
            }
            Ok(())
        })
    })
}

impl Worker {
    /// Reconciles the store with the chain: where nonces stand, and every sent intent broadcast
    /// again (a node that restarted may have lost it).
    pub async fn start(
        dest: Destination,
        store: Arc<Store>,
        opts: Options,
    ) -> Result<(Self, watch::Receiver<ChainStatus>), (Destination, DeliverError)> {
        let signer = dest.signer.address();
        let chain_id = dest.chain_id;
        let rpc = dest.rpc.clone();
        let reconcile = async {
            let latest = chain::nonce(&rpc, signer, "latest").await?;
            let pending = chain::nonce(&rpc, signer, "pending").await?;
            Ok::<_, RpcError>((latest, pending))
        };
        let (latest, pending) = match reconcile.await {
            Ok(v) => v,
            Err(e) => return Err((dest, Self::rpc_err(e))),
        };
        let intents = match tokio::task::block_in_place(|| store.intents_from(chain_id, signer, 0)) {
            Ok(i) => i,
            Err(e) => return Err((dest, e.into())),
        };
        let requests::NonceState { next: next_nonce, floor, in_flight } =
            requests::nonce_state(latest, pending, &intents);
        let confirmed_next = requests::confirmed_next(&intents);
        // Sent ones the node may have lost (a restart); signed ones the first round broadcasts.
        if !opts.dry_run {
            let open: Vec<_> = intents
                .iter()
                .filter(|(n, i)| i.state == IntentState::Sent && *n >= latest)
                .map(|(n, i)| (*n, i.raw.clone()))
                .collect();
            for (nonce, raw) in open {
                if let Err(e) = chain::send_raw(&rpc, &raw).await {
                    tracing::debug!(chain = %dest.chain, nonce, error = %e, "re-broadcast on start");
                }
            }
        }
        let status = ChainStatus {
            chain: dest.chain.clone(),
            signer: signer.to_checksum(None),
            next_nonce,
            ..ChainStatus::default()
        };
        let (tx, rx) = watch::channel(status);
        tracing::info!(chain = %dest.chain, signer = %signer, next_nonce, latest, pending, "sender ready");
        let worker = Worker {
            dest,
            store,
            opts,
            signer,
            next_nonce,
            floor,
            in_flight,
            mined_at: HashMap::new(),
            unseen_since: None,
            rebroadcast_at: std::time::Instant::now(),
            unseen_at: HashMap::new(),
            started: 0,
            failures: 0,
            warned_cap: false,
            paused_until: AtomicU64::new(0),
            confirmed_next,
            gap: false,
            health: health::Health::default(),
            provers: HashMap::new(),
            prover_states: HashMap::new(),
            prover_read_at: HashMap::new(),
            status: tx,
        };
        let mut worker = worker;
        worker.judge_gap(latest, pending);
        Ok((worker, rx))
    }

    /// Runs until cancelled, or (with `until_done`) until nothing is left to do on the chain.
    /// Follows and starts deliveries until cancelled or, for `push`, done. A store that cannot
    /// be used ends the worker with that error: it is the command's verdict (exit 3), not a
    /// problem of the chain to retry. Between rounds it serves what arrives in `inbox`
    /// (an operator's requests, `watch` only): a request wakes it.
    pub async fn run(
        mut self,
        cancel: CancellationToken,
        mut inbox: Option<Inbox>,
    ) -> Result<ChainStatus, StoreError> {
        loop {
            if cancel.is_cancelled() {
                break;
            }
            // The command's deadline ends a round wherever it is: a round is a series of steps
            // each written before the next is taken (intents before broadcasts), so stopping
            // between two is what a crash there would do, and the next run takes it up. Waiting
            // for the round instead let a dead RPC's retries hold `push` well past --timeout.
            let ticked = tokio::select! {
                ticked = self.tick() => ticked,
                () = cancel.cancelled() => break,
            };
            let wait = match ticked {
                Ok(busy) => {
                    self.failures = 0;
                    if matches!(self.status.borrow().problem, Some(Problem::RpcFailing { .. })) {
                        self.status.send_modify(|s| s.problem = None);
                    }
                    if busy {
                        Duration::from_millis(20)
                    } else {
                        self.dest.poll_interval.min(Duration::from_secs(1))
                    }
                }
                Err(DeliverError::Store(e)) => return Err(e),
                Err(e) => {
                    self.failures += 1;
                    let wait = crate::engine::rpc::backoff(
                        Duration::from_millis(500),
                        Duration::from_secs(30),
                        self.failures,
                    );
                    tracing::warn!(chain = %self.dest.chain, error = %e, retry_in = ?wait, "delivery failing");
                    // A chain held for its signer's funds or a nonce gap says that, not the
                    // round's error it led to (a node refusing ferry's next nonce as too high).
                    if !self.is_paused() && !self.gap {
                        self.status
                            .send_modify(|s| s.problem = Some(Problem::RpcFailing { error: e.to_string() }));
                    }
                    wait
                }
            };
            self.refresh_counts()?;
            if self.opts.until_done && self.is_done() {
                self.status.send_modify(|s| s.done = true);
                // Only a run that finished its work reads the Provers once more: a stopped one
                // must not wait on a chain that may not answer.
                self.record_provers_at_end().await;
                break;
            }
            let request = tokio::select! {
                _ = cancel.clone().cancelled_owned() => break,
                _ = tokio::time::sleep(wait) => None,
                request = Inbox::next(&mut inbox) => Some(request),
            };
            if let Some(request) = request {
                self.serve(request, &cancel).await;
            }
        }
        self.refresh_counts()?;
        if self.opts.until_done && !self.opts.dry_run {
            // A command that ends with work left says why on every chain: nothing more
            // particular held it, so it is failed for good or not confirmed in time.
            self.status.send_modify(|s| {
                if s.problem.is_none() {
                    s.problem = Problem::left_undone(&s.counts, s.failures.first().map(String::as_str));
                }
            });
        }
        Ok(self.status.borrow().clone())
    }

    /// Pauses new sends on the chain for [`PAUSE`] because the signer cannot pay (sending more
    /// only fails); what is in flight is still followed. Says which signer, loudly.
    pub(super) fn cannot_pay(&self, detail: String) -> DeliverError {
        self.pause(Problem::InsufficientFunds { signer: self.signer.to_checksum(None), detail })
    }

    /// Pauses new sends on the chain for [`PAUSE`]; what is in flight is still followed.
    pub(super) fn pause(&self, problem: Problem) -> DeliverError {
        tracing::error!(chain = %self.dest.chain, signer = %self.signer, "{problem}; trying again in {PAUSE:?}");
        self.paused_until.store(now() + PAUSE.as_secs(), Ordering::Relaxed);
        let detail = problem.to_string();
        self.status.send_modify(|s| s.problem = Some(problem));
        DeliverError::Setup { chain: self.dest.chain.clone(), detail }
    }

    /// Whether new sends wait because the signer cannot pay.
    pub(super) fn is_paused_for_funds(&self) -> bool {
        self.paused_until.load(Ordering::Relaxed) != 0
            && matches!(self.status.borrow().problem, Some(Problem::InsufficientFunds { .. }))
    }

    /// Lifts a pause at once (the signer was funded), and the problem it had set.
    pub(super) fn unpause(&self) {
        self.paused_until.store(0, Ordering::Relaxed);
        if matches!(self.status.borrow().problem, Some(Problem::InsufficientFunds { .. })) {
            self.status.send_modify(|s| s.problem = None);
        }
    }

    /// Whether new sends wait; a pause that ran out is lifted (and the next send finds out
    /// whether the signer can pay now).
    pub(super) fn is_paused(&self) -> bool {
        let until = self.paused_until.load(Ordering::Relaxed);
        if until == 0 {
            return false;
        }
        if now() < until {
            return true;
        }
        self.paused_until.store(0, Ordering::Relaxed);
        self.status.send_modify(|s| s.problem = None);
        false
    }

    /// Signed, unmined transactions at most: the chain's `max_in_flight`, else the command's.
    pub(super) fn max_in_flight(&self) -> usize {
        self.dest.max_in_flight.unwrap_or(self.opts.max_in_flight)
    }

    fn is_done(&self) -> bool {
        let s = self.status.borrow();
        if self.opts.dry_run {
            return s.counts.pending == 0 || self.started > 0 || s.problem.is_some();
        }
        let limit_reached = self.opts.limit.is_some_and(|l| self.started >= l);
        let due_failed = s.counts.failed > 0 && self.has_due_failed().unwrap_or(false);
        s.counts.sending + s.counts.sent == 0 && (limit_reached || s.counts.pending == 0) && !due_failed
    }

    /// A retryable failure due within a minute keeps `push` waiting for it.
    fn has_due_failed(&self) -> Result<bool, StoreError> {
        let soon = now() + 60;
        let due = self.store.deliveries_in_state(self.dest.chain_id, DeliveryState::Failed, 1, |k, d| {
            self.dest.targets.contains_key(&k.target)
                && d.retryable
                && d.next_attempt_at.is_none_or(|t| t <= soon)
        })?;
        Ok(!due.is_empty())
    }

    fn refresh_counts(&mut self) -> Result<(), StoreError> {
        let targets = &self.dest.targets;
        let n = tokio::task::block_in_place(|| {
            self.store.delivery_counts(self.dest.chain_id, |t| targets.contains_key(&t))
        })?;
        let counts = n;
        let next = self.next_nonce;
        self.status.send_modify(|s| {
            s.counts = counts;
            s.next_nonce = next;
        });
        Ok(())
    }

    /// One round: follow what is in flight, then start what is due. `Ok(true)` when it did work.
    async fn tick(&mut self) -> Result<bool, DeliverError> {
        let mut busy = false;
        if !self.opts.dry_run {
            busy |= self.follow().await?;
        }
        busy |= self.start_due().await?;
        Ok(busy)
    }

    pub(super) fn rpc_err(e: RpcError) -> DeliverError {
        DeliverError::Rpc(Box::new(e))
    }

    /// Writes intents with their deliveries, then says what happened to each transaction: the
    /// audit trail (one INFO line per delivery, with its id, the chain, the nonce and the hash)
    /// and the chain's transaction counters. Only what is on disk is said.
    pub(super) fn save(&self, intents: &[(u64, &TxIntent, &Update)]) -> Result<(), DeliverError> {
        save_intents(&self.store, self.dest.chain_id, self.signer, intents)?;
        for (nonce, intent, update) in intents {
            self.audit(*nonce, intent, update);
        }
        Ok(())
    }
}

/// Runs one worker per destination until each is done or `cancel` fires; statuses by chain.
/// `on_start` receives each worker's live status as it starts (for progress displays).
///
/// A store that cannot be used stops every worker and is returned (the command exits 3); a
/// worker that panicked is a bug, and the panic goes on unwinding here instead of the chain
/// going missing from the result (which let `push` exit 0 after a panic).
pub async fn run_all(
    dests: Vec<Destination>,
    sinks: Vec<crate::engine::sink::SinkTarget>,
    store: Arc<Store>,
    opts: Options,
    cancel: CancellationToken,
    on_start: impl Fn(watch::Receiver<ChainStatus>),
) -> Result<BTreeMap<String, ChainStatus>, DeliverError> {
    // Stopped by the caller, or by the first worker whose store fails.
    let cancel = cancel.child_token();
    let mut tasks = tokio::task::JoinSet::new();
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    for dest in dests {
        let (store, opts, cancel, started_tx) =
            (store.clone(), opts.clone(), cancel.clone(), started_tx.clone());
        tasks.spawn(async move {
            let name = dest.chain.clone();
            let (chain_id, ids): (u64, Vec<u32>) = (dest.chain_id, dest.targets.keys().copied().collect());
            if observe::board().is_some() {
                let oldest = tokio::task::block_in_place(|| store.oldest_open(chain_id, ids.iter().copied()));
                observe::starting(&name, oldest.ok().flatten());
            }
            let mut failures = 0;
            let mut dest = dest;
            let mut last_error = String::new();
            // Start-up itself retries: a chain whose RPC is down keeps trying until cancelled.
            // Start-up is raced with the deadline: a dead RPC's retries inside one attempt
            // must not hold the command, and a start cut short is a chain that did not answer.
            let mut last_rpc = true;
            let worker = loop {
                let attempt = tokio::select! {
                    attempt = Worker::start(dest.clone(), store.clone(), opts.clone()) => attempt,
                    () = cancel.cancelled() => break Err(dest),
                };
                match attempt {
                    Ok((w, rx)) => {
                        let store = store.clone();
                        let ids = ids.clone();
                        observe::follow_dest(rx.clone(), DestKind::Chain, move || {
                            store.oldest_open(chain_id, ids.iter().copied()).ok()
                        });
                        let _ = started_tx.send(rx);
                        // Registered once started: an operator's request finds a running worker.
                        let owner = Owner::Chain { name: name.clone(), chain_id: w.dest.chain_id };
                        let inbox = opts.registry.as_ref().map(|r| r.register(owner));
                        break Ok((w, inbox));
                    }
                    // A store that cannot be used is not a chain's problem to wait out.
                    Err((_, DeliverError::Store(e))) => return (name, Err(e)),
                    Err((d, e)) => {
                        failures += 1;
                        tracing::warn!(chain = %name, error = %e, "cannot start delivery to this chain");
                        last_rpc = matches!(e, DeliverError::Rpc(_));
                        last_error = e.to_string();
                        if observe::board().is_some() {
                            let oldest = tokio::task::block_in_place(|| {
                                store.oldest_open(chain_id, ids.iter().copied())
                            });
                            observe::could_not_start(&name, &last_error, oldest.ok().flatten());
                        }
                        let wait = crate::engine::rpc::backoff(
                            Duration::from_millis(500),
                            Duration::from_secs(30),
                            failures,
                        );
                        tokio::select! {
                            _ = cancel.clone().cancelled_owned() => break Err(d),
                            _ = tokio::time::sleep(wait) => {}
                        }
                        dest = d;
                    }
                }
            };
            let status = match worker {
                Ok((w, inbox)) => {
                    inject_test_panic(&name);
                    w.run(cancel, inbox).await
                }
                // Never started: what waits for it is still work left, and counted as such.
                Err(dest) => {
                    let targets = &dest.targets;
                    tokio::task::block_in_place(|| {
                        store.delivery_counts(dest.chain_id, |t| targets.contains_key(&t))
                    })
                    .map(|counts| ChainStatus {
                        chain: name.clone(),
                        signer: dest.signer.address().to_checksum(None),
                        counts,
                        problem: Some(never_started(last_rpc, &last_error)),
                        ..Default::default()
                    })
                }
            };
            (name, status)
        });
    }
    // Sinks: a worker per sink target, reporting like a chain's, named by the target.
    for target in sinks {
        let (store, opts, cancel, started_tx) =
            (store.clone(), opts.clone(), cancel.clone(), started_tx.clone());
        tasks.spawn(async move {
            let name = target.name.clone();
            let owner = Owner::Sink { name: name.clone(), target: target.id };
            let inbox = opts.registry.as_ref().map(|r| r.register(owner));
            let (id, reader) = (target.id, store.clone());
            let (worker, rx) = crate::engine::sink::SinkWorker::new(target, store, opts);
            observe::follow_dest(rx.clone(), DestKind::Sink, move || {
                reader.oldest_open(crate::store::keys::SINK_CHAIN, [id]).ok()
            });
            let _ = started_tx.send(rx);
            inject_test_panic(&name);
            (name, worker.run(cancel, inbox).await)
        });
    }
    drop(started_tx);
    let mut out = BTreeMap::new();
    let mut store_error = None;
    let abandon = opts.abandon.clone();
    let mut abandoned = false;
    loop {
        tokio::select! {
            Some(rx) = started_rx.recv() => on_start(rx),
            // Joined below as they go: returning only once every aborted task is dropped is what
            // lets a caller start new workers on the same chains without two of them at once.
            () = abandon.cancelled(), if !abandoned => {
                abandoned = true;
                tasks.abort_all();
            }
            joined = tasks.join_next() => match joined {
                Some(Ok((name, Ok(status)))) => {
                    out.insert(name, status);
                }
                Some(Ok((name, Err(e)))) => {
                    tracing::error!(chain = %name, error = %e, "delivery stopped: the store cannot be used");
                    cancel.cancel();
                    store_error.get_or_insert(e);
                }
                Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                // Aborted when abandoned, or by a runtime shutting down, which ends the command anyway.
                Some(Err(_)) => {}
                None => break,
            },
        }
    }
    match store_error {
        Some(e) => Err(DeliverError::Store(e)),
        None => Ok(out),
    }
}

/// Why a chain whose worker never started is left undone: its RPC did not answer (the only
/// thing start-up asks of the chain), with the last error seen if an attempt ended before the
/// deadline; anything else that kept it from starting is said as such.
fn never_started(rpc: bool, last_error: &str) -> Problem {
    match (rpc, last_error.is_empty()) {
        (true, true) => Problem::RpcFailing {
            error: "could not start: the chain's RPC did not answer before the command ended".into(),
        },
        (true, false) => Problem::RpcFailing { error: format!("could not start: {last_error}") },
        (false, _) => Problem::CouldNotStart { error: last_error.to_string() },
    }
}

/// A test build (debug assertions on) panics in the worker of the chain named by
/// `FERRY_TEST_PANIC_IN_WORKER`, so that tests can show what a panicked worker does to a command.
/// Release builds have no such hook.
fn inject_test_panic(chain: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("FERRY_TEST_PANIC_IN_WORKER").is_ok_and(|c| c == chain) {
        panic!("injected by FERRY_TEST_PANIC_IN_WORKER in the worker of chain {chain}");
    }
    #[cfg(not(debug_assertions))]
    let _ = chain;
}

#[cfg(test)]
mod tests {
    use alloy::primitives::B256;

    use super::*;
    use crate::store::keys::{EventKey, ItemKey};

    fn key(n: u32) -> DeliveryKey {
        DeliveryKey {
            target: 1,
            chain: 31337,
            item: ItemKey::Event(EventKey { chain: 1, block: 5, log_index: n }),
        }
    }

    fn delivery(state: DeliveryState, retryable: bool) -> Delivery {
        Delivery { state, retryable, tx_hashes: vec![B256::repeat_byte(1)], ..Delivery::pending(100) }
    }

    fn receipt() -> Receipt {
        Receipt {
            tx_hash: B256::repeat_byte(1),
            block: 9,
            block_hash: B256::repeat_byte(9),
            success: true,
            gas_used: 21_000,
            effective_gas_price: 1,
        }
    }

    /// What an intent's update does to each of its deliveries, from each state it may find them in.
    #[test]
    fn an_update_moves_only_the_deliveries_it_applies_to() {
        use DeliveryState::{Confirmed, Failed, Pending, Sending, Sent, Skipped};
        let bumped = B256::repeat_byte(2);
        let verdict = Update::Mined {
            receipt: receipt(),
            verdicts: vec![(key(0), Skipped, "already there (the view says so)".into())],
        };
        let mined = Update::Mined { receipt: receipt(), verdicts: vec![] };
        // (update, delivery state before, retryable, changed, state after)
        let cases = [
            (Update::None, Sending, true, false, Sending),
            (Update::Sent, Sending, true, true, Sent),
            (Update::Sent, Sent, true, false, Sent),
            (Update::Sent, Confirmed, true, false, Confirmed),
            (Update::Bumped(bumped), Sent, true, true, Sending),
            (mined.clone(), Sending, true, true, Sent),
            (verdict, Sending, true, true, Skipped),
            (Update::Confirmed(receipt()), Sent, true, true, Confirmed),
            (Update::Confirmed(receipt()), Sending, true, false, Sending),
            (Update::Reorged, Sent, true, true, Sending),
            (Update::Reorged, Confirmed, true, true, Sending),
            (Update::Reorged, Pending, true, false, Pending),
            (Update::Dropped("taken".into()), Sending, true, true, Pending),
            (Update::Dropped("taken".into()), Sent, true, true, Pending),
            (Update::Dropped("taken".into()), Failed, true, true, Pending),
            (Update::Dropped("taken".into()), Failed, false, false, Failed),
            (Update::Dropped("taken".into()), Confirmed, true, false, Confirmed),
            (Update::Forgotten("reset".into()), Confirmed, true, true, Pending),
            (Update::Forgotten("reset".into()), Sent, true, true, Pending),
            (Update::Forgotten("reset".into()), Sending, true, true, Pending),
            (Update::Forgotten("reset".into()), Failed, false, false, Failed),
            (Update::Forgotten("reset".into()), Skipped, false, false, Skipped),
            (Update::Forgotten("reset".into()), Pending, true, false, Pending),
        ];
        for (update, before, retryable, changed, after) in cases {
            let mut d = delivery(before, retryable);
            assert_eq!(update.apply(key(0), &mut d), changed, "{update:?} on {before:?}");
            assert_eq!(d.state, after, "{update:?} on {before:?}");
            match &update {
                Update::Bumped(h) => assert_eq!(d.tx_hashes.last(), Some(h)),
                Update::Mined { verdicts, .. } => {
                    assert_eq!(d.receipt, Some(receipt()));
                    assert_eq!(d.retryable, verdicts.is_empty(), "a verdict is final");
                }
                Update::Confirmed(_) if changed => assert_eq!(d.receipt, Some(receipt())),
                Update::Reorged if changed => assert_eq!(d.receipt, None),
                Update::Dropped(reason) if changed => assert_eq!(d.reason.as_ref(), Some(reason)),
                Update::Forgotten(reason) if changed => {
                    assert_eq!((d.reason.as_ref(), d.receipt.as_ref()), (Some(reason), None));
                }
                _ => {}
            }
        }
    }
}
