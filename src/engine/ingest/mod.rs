//! Driving `evm` sources: one [`SourceRunner`] per source walks block ranges from its cursor,
//! commits each range in one write transaction, and handles reorgs, a head that went back, and
//! failing RPCs. `backfill` runs a runner up to a block; `watch` runs one per source, following
//! the head until cancelled.
//!
//! Fetching the next range overlaps with committing the previous one (the commit runs on a
//! blocking thread), so a backfill is bound by the node, not by the disk. Progress goes out on a
//! `tokio::sync::watch` channel per source; the CLI decides how to show it.

use std::sync::Arc;
use std::time::Duration;

use alloy::primitives::B256;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod run;

pub use self::run::{Outcome, RangeEnd, Running, Until, run_sources};
use super::evm::{FetchError, FetchState, Registry, SourcePlan, fetch_range, final_head};
use super::rpc::ranges::RangeSizer;
use super::rpc::{BlockId, ChainRpc, ErrorKind, RpcError, backoff};
use crate::config::RoutePlan;
use crate::store::ingest::IngestReader;
use crate::store::keys::{ContractKey, DeliveryKey, ItemKey};
use crate::store::records::Contract;
use crate::store::{Store, StoreError};

/// What a source is doing, as last reported.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SourceStatus {
    pub source: String,
    pub chain: String,
    pub phase: Phase,
    /// The next block to read.
    pub next: u64,
    /// The block this run started from.
    pub started_at: u64,
    /// The highest block the source may read now (head − confirmations, or the tag's block).
    pub head: Option<u64>,
    /// Where a backfill stops.
    pub target: Option<u64>,
    /// Counted over this run.
    pub events: u64,
    /// SEDA batches stored (`seda` sources).
    pub batches: u64,
    pub blocks: u64,
    pub children: u64,
    pub reorgs: u64,
    pub requests: u64,
    /// Blocks near the head whose logs were asked again by hash (see `evm::fetch_range`).
    pub rechecked: u64,
    pub last_error: Option<String>,
}

impl SourceStatus {
    /// A source starting at `next` (a block, or a batch), nothing counted yet.
    pub fn new(source: &str, chain: &str, next: u64) -> Self {
        SourceStatus {
            source: source.to_string(),
            chain: chain.to_string(),
            phase: Phase::Starting,
            next,
            started_at: next,
            head: None,
            target: None,
            events: 0,
            batches: 0,
            blocks: 0,
            children: 0,
            reorgs: 0,
            requests: 0,
            rechecked: 0,
            last_error: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Starting,
    CatchingUp,
    Following,
    Waiting,
    Done,
    Stopped,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::CatchingUp => "catching up",
            Phase::Following => "following",
            Phase::Waiting => "waiting",
            Phase::Done => "done",
            Phase::Stopped => "stopped",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "source {name}: a reorg deeper than the window: none of the {checked} stored block hashes at or \
         below block {below} is on the chain any more (reorg_window: {window}). The store was left as it \
         was; raise `reorg_window` or re-ingest into a new store"
    )]
    ReorgTooDeep { name: String, below: u64, checked: usize, window: u64 },
    #[error("source {name}: {error} (gave up after {attempts} attempts at blocks {from}..={to})")]
    Rpc { name: String, error: Box<RpcError>, attempts: u32, from: u64, to: u64 },
    #[error("{0}")]
    BadRange(String),
    /// The batching API did not answer, through every retry.
    #[error("source {name}: {error} (gave up after {attempts} attempts at batch {batch})")]
    Api { name: String, error: crate::engine::seda::ApiError, attempts: u32, batch: u64 },
    /// A batch failed a check: it is not stored, and the source stops before it.
    #[error(
        "source {name}: batch {batch} refused: {check}. It was not stored and nothing was delivered from it; \
         the source stops here until the API serves a batch that passes"
    )]
    BadBatch { name: String, batch: u64, check: String },
    /// A batch the source still needs is gone from the API.
    #[error(
        "source {name}: batch {batch} is gone from the API (the chain keeps {keep} batches: `num_batches_to_keep`); \
         ferry cannot go on without it. Start a new store with a `start_batch` the chain still has"
    )]
    Pruned { name: String, batch: u64, keep: String },
    #[error("interrupted")]
    Cancelled,
}

/// How many failed attempts at one range a backfill makes before it gives up (each attempt has
/// the RPC client's own retries inside). `watch` never gives up.
const BACKFILL_ATTEMPTS: u32 = 5;

/// How long the head may stay behind the store's cursor before `watch` warns (and how often it
/// says so meanwhile).
const BEHIND_WARN_AFTER: Duration = Duration::from_secs(30);

/// One source's ingest loop state.
pub struct SourceRunner {
    plan: Arc<SourcePlan>,
    rpc: ChainRpc,
    store: Arc<Store>,
    source_id: u32,
    registry: Registry,
    next: u64,
    last_hash: Option<B256>,
    sizer: RangeSizer,
    pending: Option<JoinHandle<Result<(), StoreError>>>,
    status: watch::Sender<SourceStatus>,
    cancel: CancellationToken,
    /// Give up after this many failed attempts at a range (`None`: never).
    give_up_after: Option<u32>,
}

impl SourceRunner {
    /// Loads the source's cursor and children from the store; a source without a cursor starts
    /// at `start` (or its `start_block`).
    pub fn open(
        mut plan: SourcePlan,
        rpc: ChainRpc,
        store: Arc<Store>,
        start: Option<u64>,
        cancel: CancellationToken,
    ) -> Result<(Self, watch::Receiver<SourceStatus>), IngestError> {
        let at = start.unwrap_or(plan.start_block);
        // The cursor itself is written with the first range, so that a run that reads nothing
        // leaves no claim on where the source starts.
        let source_id = store.write(|tx| {
            for route in &mut plan.routes {
                route.target_id = tx.target_id(&route.target)?;
            }
            let id = tx.source_id(&plan.name)?;
            for address in plan.statics.keys() {
                tx.register_contract(
                    ContractKey { chain: plan.chain_id, address: *address },
                    &Contract { source: id, factory: None, created_at: None },
                )?;
            }
            // Routes that take the past too: what the store holds gets the deliveries it lacks
            // (a target or chain added since), in the transaction that names the target ids.
            let existing: Vec<&RoutePlan> = plan.routes.iter().filter(|r| r.deliver_existing).collect();
            if !existing.is_empty() {
                let created = tx.add_deliveries_for_stored(id, plan.chain_id, |key, event| {
                    if event.fields.is_none() {
                        return Vec::new();
                    }
                    existing
                        .iter()
                        .filter(|route| route.wants(event.name.as_deref()))
                        .flat_map(|route| {
                            route.chain_ids.iter().map(|&chain| DeliveryKey {
                                target: route.target_id,
                                chain,
                                item: ItemKey::Event(key),
                            })
                        })
                        .collect()
                })?;
                if created > 0 {
                    tracing::info!(source = %plan.name, deliveries = created, "planned deliveries for events stored before their route");
                }
            }
            Ok(id)
        })?;
        let (tx, rx) = watch::channel(SourceStatus::new(&plan.name, &plan.chain, at));
        let sizer = RangeSizer::new(plan.max_block_range);
        let mut runner = Self {
            plan: Arc::new(plan),
            rpc,
            store,
            source_id,
            registry: Registry::new(),
            next: at,
            last_hash: None,
            sizer,
            pending: None,
            status: tx,
            cancel,
            give_up_after: None,
        };
        runner.reload()?;
        runner.status.send_modify(|s| s.started_at = runner.next);
        Ok((runner, rx))
    }

    pub fn plan(&self) -> &SourcePlan {
        &self.plan
    }

    /// The first and next block of the range the store holds, if it holds any.
    pub fn held(&self) -> Result<Option<(u64, u64)>, IngestError> {
        let txn = self.store.read()?;
        let reader = IngestReader { path: self.store.path(), txn: &txn };
        Ok(reader.cursor(self.source_id)?.map(|c| (c.first, c.next)))
    }

    pub fn next(&self) -> u64 {
        self.next
    }

    /// Re-reads cursor and registry from the store (at start, and after a rewind).
    fn reload(&mut self) -> Result<(), IngestError> {
        let txn = self.store.read()?;
        let reader = IngestReader { path: self.store.path(), txn: &txn };
        if let Some(cursor) = reader.cursor(self.source_id)? {
            self.next = cursor.next;
            self.last_hash = cursor.last_hash;
        }
        self.registry.clear();
        for (address, contract) in reader.children(self.plan.chain_id, self.source_id)? {
            if let Some(i) = self.plan.factories.iter().position(|f| Some(f.address) == contract.factory) {
                self.registry.insert(address, i);
            }
        }
        let next = self.next;
        self.status.send_modify(|s| s.next = next);
        Ok(())
    }

    /// Waits for the commit in flight, if any.
    async fn flush(&mut self) -> Result<(), IngestError> {
        if let Some(pending) = self.pending.take() {
            joined(pending.await)??;
        }
        Ok(())
    }

    fn set_phase(&self, phase: Phase) {
        self.status.send_if_modified(|s| {
            let changed = s.phase != phase;
            s.phase = phase;
            changed
        });
    }

    /// Backfill: reads every block up to `end`, then returns. The store is consistent whenever
    /// this returns, cancelled or not.
    pub async fn run_to(&mut self, end: u64) -> Result<(), IngestError> {
        self.give_up_after = Some(BACKFILL_ATTEMPTS);
        self.status.send_modify(|s| s.target = Some(end));
        // A reorg since the last run that kept the chain's height shows only as another hash at
        // the block read last: rewind first, as `watch` does, or the orphaned events would stay.
        let result = match self.check_tip(BACKFILL_ATTEMPTS).await {
            Ok(()) => self.walk_to(end).await,
            Err(e) => Err(e),
        };
        let flushed = self.flush().await;
        self.set_phase(if result.is_ok() { Phase::Done } else { Phase::Stopped });
        result?;
        flushed
    }

    /// Watch: follows the head until cancelled.
    pub async fn follow(&mut self) -> Result<(), IngestError> {
        let mut failures = 0u32;
        // As in a backfill: the block read last may have been replaced while ferry was stopped.
        self.check_tip(1).await?;
        let (mut behind_since, mut warned_behind, mut noted_behind) = (None, false, None);
        loop {
            if self.cancel.is_cancelled() {
                self.flush().await?;
                return Err(IngestError::Cancelled);
            }
            let head = match self.cancellable(final_head(&self.plan, &self.rpc)).await? {
                Ok(head) => {
                    failures = 0;
                    head
                }
                Err(e) => {
                    failures += 1;
                    self.note_error(&e.to_string());
                    let wait = backoff(Duration::from_secs(1), Duration::from_secs(60), failures);
                    tracing::warn!(source = %self.plan.name, attempt = failures, "cannot read the head: {e}; again in {wait:.1?}");
                    self.pause(wait).await?;
                    continue;
                }
            };
            self.status.send_modify(|s| s.head = head);
            match head {
                Some(head) if head >= self.next => {
                    (behind_since, warned_behind) = (None, false);
                    self.set_phase(Phase::CatchingUp);
                    let walked = self.walk_to(head).await;
                    self.flush().await?;
                    walked?;
                }
                Some(head) if head + 1 < self.next => {
                    // Behind a load balancer a lagging node answers now and then: said once a
                    // while, and loudly only when it lasts.
                    let since = *behind_since.get_or_insert_with(std::time::Instant::now);
                    let lasting = since.elapsed() >= BEHIND_WARN_AFTER;
                    let message = format!(
                        "the chain's head ({head}) is behind what the store holds (next block {}): \
                         a restarted node or a lagging RPC; waiting",
                        self.next
                    );
                    if lasting && !warned_behind {
                        tracing::warn!(source = %self.plan.name, "{message}");
                        warned_behind = true;
                    } else if noted_behind
                        .is_none_or(|t: std::time::Instant| t.elapsed() >= BEHIND_WARN_AFTER)
                    {
                        tracing::info!(source = %self.plan.name, "{message}");
                        noted_behind = Some(std::time::Instant::now());
                    } else {
                        tracing::debug!(source = %self.plan.name, "{message}");
                    }
                    self.set_phase(Phase::Waiting);
                    self.pause(self.plan.poll_interval).await?;
                }
                _ => {
                    (behind_since, warned_behind) = (None, false);
                    self.set_phase(Phase::Following);
                    if self.plan.finality.is_tip() {
                        self.check_tip(1).await?;
                    }
                    self.pause(self.plan.poll_interval).await?;
                }
            }
        }
    }

    /// Whether the block read last is still the chain's (on start, and under `confirmations: 0`
    /// with no new block): a reorg that kept the height shows only as a different hash there.
    ///
    /// A node without that block (one behind a load balancer, lagging) cannot say; a backfill
    /// asks again a few times with backoff (about 15 s in all), as the next answer may come from
    /// a node that has it, then goes on
    /// with a warning (the range it would read starts above what that node has anyway); `watch`
    /// asks again at its next poll.
    async fn check_tip(&mut self, attempts: u32) -> Result<(), IngestError> {
        let (Some(last), Some(stored)) = (self.next.checked_sub(1), self.last_hash) else { return Ok(()) };
        for attempt in 1..=attempts {
            match self.cancellable(self.rpc.header(BlockId::Number(last))).await? {
                Ok(Some(header)) if header.hash != stored => {
                    return self.handle_reorg(last, stored, header.hash).await;
                }
                Ok(Some(_)) => return Ok(()),
                Ok(None) => {}
                Err(e) => self.note_error(&e.to_string()),
            }
            if attempt < attempts {
                self.pause(backoff(Duration::from_secs(1), Duration::from_secs(10), attempt)).await?;
            } else if attempts > 1 {
                tracing::warn!(
                    source = %self.plan.name,
                    "could not check that block {last}, read last, is still the chain's: the node does not have it"
                );
            }
        }
        Ok(())
    }

    /// Walks ranges from the cursor to `end`.
    async fn walk_to(&mut self, end: u64) -> Result<(), IngestError> {
        let mut failures = 0u32;
        while self.next <= end {
            if self.cancel.is_cancelled() {
                return Err(IngestError::Cancelled);
            }
            let (from, to) = self.sizer.next_range(self.next, end);
            let state =
                FetchState { source_id: self.source_id, registry: &self.registry, parent: self.last_hash };
            let fetched = self.cancellable(fetch_range(&self.plan, &self.rpc, &state, from, to)).await?;
            match fetched {
                Ok(fetched) => {
                    failures = 0;
                    self.flush().await?;
                    let events = fetched.event_count() as u64;
                    let children = fetched.new_children.len() as u64;
                    let (requests, rechecked) = (fetched.requests, fetched.rechecked);
                    self.last_hash = Some(fetched.last_hash());
                    self.next = to + 1;
                    self.registry.extend(fetched.new_children.iter().copied());
                    self.sizer.succeeded(to - from + 1, fetched.returned);
                    let (store, plan) = (self.store.clone(), self.plan.clone());
                    self.pending = Some(tokio::task::spawn_blocking(move || {
                        let started = std::time::Instant::now();
                        let write = fetched.into_write(&plan);
                        let decoded = started.elapsed();
                        let result = store.write(|tx| tx.apply_range(&write));
                        tracing::debug!(
                            source = %plan.name, from, to, events,
                            decode_ms = decoded.as_millis() as u64,
                            commit_ms = (started.elapsed() - decoded).as_millis() as u64,
                            "range committed"
                        );
                        result
                    }));
                    let next = self.next;
                    self.status.send_modify(|s| {
                        s.next = next;
                        s.events += events;
                        s.children += children;
                        s.blocks += to - from + 1;
                        s.requests += requests;
                        s.rechecked += rechecked;
                    });
                }
                Err(FetchError::Rpc(e)) if e.kind == ErrorKind::RangeTooLarge && to > from => {
                    tracing::debug!(source = %self.plan.name, from, to, error = %e, "range too large; shrinking");
                    self.sizer.too_large(to - from + 1, e.hint);
                }
                Err(FetchError::Reorg { number, stored, found }) => {
                    self.flush().await?;
                    self.handle_reorg(number.saturating_sub(1), stored, found).await?;
                }
                Err(
                    e @ (FetchError::Missing { .. }
                    | FetchError::Unstable { .. }
                    | FetchError::Incomplete { .. }),
                ) => {
                    tracing::info!(source = %self.plan.name, "{e}");
                    self.set_phase(Phase::Waiting);
                    self.pause(self.plan.poll_interval.min(Duration::from_secs(1))).await?;
                }
                Err(FetchError::Rpc(e)) => {
                    failures += 1;
                    let e = self.failed(e, failures, (from, to))?;
                    tracing::warn!(source = %self.plan.name, from, to, attempt = failures, error = %e, "range failed; retrying");
                    self.pause(backoff(Duration::from_secs(1), Duration::from_secs(60), failures)).await?;
                }
            }
        }
        Ok(())
    }

    /// The chain no longer has the block the store holds at `below` (or its child's parent
    /// differs): find the newest stored block still on the chain, rewind to it, and go on.
    async fn handle_reorg(&mut self, below: u64, stored: B256, found: B256) -> Result<(), IngestError> {
        self.flush().await?;
        let hashes = {
            let txn = self.store.read()?;
            IngestReader { path: self.store.path(), txn: &txn }.hashes(self.source_id, 0..=below)?
        };
        let mut ancestor = None;
        for (number, hash) in &hashes {
            // Bounded like a range: `backfill` and `push` give up after their attempts, `watch`
            // goes on until it is stopped.
            let mut failures = 0;
            let header = loop {
                match self.cancellable(self.rpc.header(BlockId::Number(*number))).await? {
                    Ok(h) => break h,
                    Err(e) => {
                        failures += 1;
                        self.failed(e, failures, (*number, *number))?;
                        self.pause(backoff(Duration::from_secs(1), Duration::from_secs(30), failures))
                            .await?;
                    }
                }
            };
            if header.is_some_and(|h| h.hash == hash.hash) {
                ancestor = Some((*number, hash.hash));
                break;
            }
        }
        let Some((number, hash)) = ancestor else {
            return Err(IngestError::ReorgTooDeep {
                name: self.plan.name.clone(),
                below,
                checked: hashes.len(),
                window: self.plan.reorg_window,
            });
        };
        let (source, chain) = (self.source_id, self.plan.chain_id);
        let store = self.store.clone();
        let reorg = tokio::task::spawn_blocking(move || {
            store.write(|tx| tx.rewind(source, chain, number, Some(hash), (stored, found)))
        })
        .await;
        let reorg = joined(reorg)??;
        tracing::warn!(
            source = %self.plan.name,
            ancestor = number,
            depth = reorg.depth,
            removed_events = reorg.removed_events,
            removed_children = reorg.removed_contracts,
            "reorg: went back to the common ancestor; reading the new branch"
        );
        self.reload()?;
        self.status.send_modify(|s| s.reorgs += 1);
        Ok(())
    }

    /// Notes a failed request; gives up (`backfill`, `push`) after the run's attempts, with the
    /// error and the blocks it was about. `watch` never gives up.
    fn failed(&self, e: RpcError, failures: u32, (from, to): (u64, u64)) -> Result<RpcError, IngestError> {
        self.note_error(&e.to_string());
        if self.give_up_after.is_some_and(|n| failures >= n) {
            return Err(IngestError::Rpc {
                name: self.plan.name.clone(),
                error: Box::new(e),
                attempts: failures,
                from,
                to,
            });
        }
        Ok(e)
    }

    fn note_error(&self, e: &str) {
        self.status.send_modify(|s| s.last_error = Some(e.to_string()));
    }

    /// Runs `f` unless cancelled first.
    async fn cancellable<T>(&self, f: impl std::future::Future<Output = T>) -> Result<T, IngestError> {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(IngestError::Cancelled),
            out = f => Ok(out),
        }
    }

    async fn pause(&self, d: Duration) -> Result<(), IngestError> {
        self.cancellable(tokio::time::sleep(d)).await
    }

    pub fn rpc(&self) -> &ChainRpc {
        &self.rpc
    }
}

/// The result of a blocking store task. A panic there is a bug, not a verdict on the store: it
/// goes on unwinding, so that the command reports a bug (exit 1); a task cancelled by the
/// runtime's shutdown is an interruption.
fn joined<T>(result: Result<T, tokio::task::JoinError>) -> Result<T, IngestError> {
    match result {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(IngestError::Cancelled),
    }
}

impl Drop for SourceRunner {
    fn drop(&mut self) {
        // A commit in flight finishes on its own thread; nothing to abort.
        self.pending.take();
    }
}
