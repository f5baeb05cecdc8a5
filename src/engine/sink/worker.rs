//! The worker of one sink target: round after round, gather what is due, look in the sink for
//! what may be there already (left `sending` by a stop, or handed over without a clear answer),
//! write `sending` for the rest (write-ahead), hand it over, and write what the sink said — until
//! cancelled or, for `push`, until nothing is left to do.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::decide;
use super::message::{self, Context};
use super::{Message, Outcome, Sink, SinkError};
use crate::config::{Resolved, SINK_CHAIN, SinkKind, SinkPlan, TargetPlan};
use crate::engine::deliver::{ChainStatus, Counts, Options, Problem};
use crate::engine::operator::{Inbox, serve_without_nonces};
use crate::engine::rpc::backoff;
use crate::store::keys::{DeliveryKey, ItemKey};
use crate::store::records::{Delivery, DeliveryState, SinkAck};
use crate::store::sink::StoredItem;
use crate::store::{Store, StoreError, now};

/// One sink target, ready to run.
#[derive(Debug, Clone)]
pub struct SinkTarget {
    pub name: String,
    pub id: u32,
    pub plan: SinkPlan,
    /// Chain id → the config's name, for the `chain` of event messages.
    pub chains: Arc<BTreeMap<u64, String>>,
}

/// The sink targets of the config, filtered by name (empty: all). Target ids are taken from
/// (and, the first time, written to) the store.
pub fn sink_targets(
    resolved: &Resolved,
    store: &Store,
    only: &[String],
) -> Result<Vec<SinkTarget>, StoreError> {
    let chains: Arc<BTreeMap<u64, String>> =
        Arc::new(resolved.chains.values().map(|c| (c.chain_id, c.name.clone())).collect());
    let mut out = Vec::new();
    for (name, target) in &resolved.targets {
        let TargetPlan::Sink(plan) = target else { continue };
        if !only.is_empty() && !only.contains(name) {
            continue;
        }
        let id = store.write(|tx| tx.target_id(name))?;
        out.push(SinkTarget { name: name.clone(), id, plan: plan.clone(), chains: chains.clone() });
    }
    Ok(out)
}

/// How long an idle worker waits before looking for new deliveries.
const IDLE: Duration = Duration::from_millis(250);
/// How often the counts of a busy worker are read again from the store.
const RECOUNT: Duration = Duration::from_secs(2);
/// Deliveries per round for the sinks that are looked in after a crash (JSONL, Redis) or drop a
/// repeat themselves (JetStream): larger rounds share a round's fixed costs (two commits, the
/// scans) among more items.
const ROUND: usize = 2000;
/// Pub/Sub: four publish requests of 1,000 in flight. What a crash may leave `sending`, so what
/// Pub/Sub may get twice, is at most one round.
const PUBSUB_ROUND: usize = 4000;
/// Failures a run lists by name; the rest are counted.
const MAX_REPORTED_FAILURES: usize = 20;

/// Messages per round for a target.
fn round_size(plan: &SinkPlan) -> usize {
    match plan.kind {
        // A webhook's round is what a crash may repeat: a few requests deep.
        SinkKind::Webhook(_) => (plan.concurrency * 2).clamp(8, 64),
        SinkKind::GcpPubsub(_) => PUBSUB_ROUND,
        SinkKind::Jsonl(_) | SinkKind::RedisStream(_) | SinkKind::NatsJetstream(_) => ROUND,
    }
}

pub(crate) struct SinkWorker {
    target: SinkTarget,
    store: Arc<Store>,
    opts: Options,
    sources: BTreeMap<u32, String>,
    status: watch::Sender<ChainStatus>,
    counted_at: Instant,
    started: usize,
    /// The earliest next attempt of a pending (or `sending`) delivery that was not due at the
    /// last gather; `None` when none waited.
    waiting: Option<u64>,
}

impl SinkWorker {
    pub(crate) fn new(
        target: SinkTarget,
        store: Arc<Store>,
        opts: Options,
    ) -> (Self, watch::Receiver<ChainStatus>) {
        let status = ChainStatus { chain: target.name.clone(), signer: "-".into(), ..Default::default() };
        let (tx, rx) = watch::channel(status);
        let worker = SinkWorker {
            target,
            store,
            opts,
            sources: BTreeMap::new(),
            status: tx,
            counted_at: Instant::now(),
            started: 0,
            waiting: None,
        };
        (worker, rx)
    }

    /// Runs until cancelled or, with `until_done`, until nothing is left to hand over. Between
    /// rounds it holds still when an operator's change to its deliveries asks (`inbox`, `watch`
    /// only), and a request wakes it.
    pub(crate) async fn run(
        mut self,
        cancel: CancellationToken,
        mut inbox: Option<Inbox>,
    ) -> Result<ChainStatus, StoreError> {
        self.recount()?;
        if self.opts.dry_run {
            return self.dry_run();
        }
        let Some(mut sink) = self.connect(&cancel, &mut inbox).await? else { return self.finish(false) };
        loop {
            if cancel.is_cancelled() {
                return self.finish(false);
            }
            if self.opts.limit.is_some_and(|l| self.started >= l) {
                return self.finish(true);
            }
            // A busy worker goes round after round without waiting: requests are served here.
            while let Some(request) = Inbox::try_next(&mut inbox) {
                serve_without_nonces(request, &cancel).await;
            }
            let worked = self.round(&mut sink).await?;
            if self.counted_at.elapsed() >= RECOUNT {
                self.recount()?;
            }
            if worked {
                continue;
            }
            // Nothing was due: the round's gather read every open delivery, and knows when the
            // next one is.
            let wait = match self.waiting {
                None if self.opts.until_done => return self.finish(true),
                None => IDLE,
                Some(due_at) => {
                    Duration::from_secs(due_at.saturating_sub(now())).clamp(IDLE, Duration::from_secs(1))
                }
            };
            tokio::select! {
                _ = cancel.cancelled() => return self.finish(false),
                _ = tokio::time::sleep(wait) => {}
                request = Inbox::next(&mut inbox) => serve_without_nonces(request, &cancel).await,
            }
        }
    }

    /// Connects, trying again with backoff while the sink cannot be reached; `None` when the
    /// command ended first (or, for `push`, when the config cannot work).
    async fn connect(
        &mut self,
        cancel: &CancellationToken,
        inbox: &mut Option<Inbox>,
    ) -> Result<Option<Sink>, StoreError> {
        let mut failures = 0;
        loop {
            match Sink::connect(&self.target.plan).await {
                Ok(sink) => {
                    self.set_problem(None);
                    return Ok(Some(sink));
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(target = %self.target.name, error = %e, "cannot reach the sink");
                    self.set_problem(Some(Problem::CouldNotStart { error: e.to_string() }));
                    if matches!(e, SinkError::Config(_)) && self.opts.until_done {
                        return Ok(None);
                    }
                }
            }
            let wait = backoff(Duration::from_millis(500), Duration::from_secs(30), failures);
            tokio::select! {
                _ = cancel.cancelled() => return Ok(None),
                _ = tokio::time::sleep(wait) => {}
                request = Inbox::next(inbox) => serve_without_nonces(request, cancel).await,
            }
        }
    }

    /// One round; `true` when something was handed over.
    async fn round(&mut self, sink: &mut Sink) -> Result<bool, StoreError> {
        let t = now();
        let mut room = round_size(&self.target.plan);
        if let Some(limit) = self.opts.limit {
            room = room.min(limit.saturating_sub(self.started));
        }
        let due = self.gather(t, room)?;
        if due.is_empty() {
            return Ok(false);
        }
        let (messages, missing) = self.messages(&due)?;
        self.fail_missing(&missing)?;
        let messages = self.look_first(sink, &due, messages).await?;
        if messages.is_empty() {
            return Ok(true);
        }
        // Write-ahead: `sending` is on disk before anything leaves, so a crash is looked for.
        let sending: Vec<(DeliveryKey, DeliveryState, Delivery)> = messages
            .iter()
            .map(|(i, _)| (due[*i].0, due[*i].1.state, decide::sending(&due[*i].1, t)))
            .collect();
        self.write(&sending, &[])?;
        let batch: Vec<Message> = messages.into_iter().map(|(_, m)| m).collect();
        test_pause().await;
        let outcomes = sink.send(&batch).await;
        test_pause().await;
        let t = now();
        let max_attempts = self.target.plan.max_attempts;
        let mut settled = Vec::with_capacity(sending.len());
        let mut acks = Vec::with_capacity(sending.len());
        let (mut delivered, mut retried, mut failed) = (0u64, Vec::new(), Vec::new());
        for ((key, _, d), outcome) in sending.iter().zip(&outcomes) {
            let wait = backoff(Duration::from_secs(1), Duration::from_secs(30), d.attempts);
            let (after, ack) = decide::settle(d, outcome, max_attempts, t, wait);
            match outcome {
                Outcome::Delivered { .. } => delivered += 1,
                Outcome::Retry { reason, .. } => retried.push(reason.clone()),
                Outcome::Failed { reason } => failed.push(format!("{}: {reason}", self.id_text(key))),
            }
            settled.push((*key, DeliveryState::Sending, after));
            acks.extend(ack.map(|ack| (*key, ack)));
        }
        // A sink that returned fewer outcomes than messages broke its contract: what it did not
        // answer for stays `sending`, and is looked for in the sink in a later round.
        if outcomes.len() != sending.len() {
            tracing::error!(target = %self.target.name, sent = sending.len(), answered = outcomes.len(), "the sink answered for fewer messages than it was given; this is a bug in ferry");
        }
        self.write(&settled, &acks)?;
        self.started += settled.len();
        // The audit trail: each hand-over, by delivery id, with what the sink said. A message
        // delivered is DEBUG (a sink takes thousands a second, and its ack is in the store for
        // `inspect-store deliveries`); one that failed is said at INFO or above.
        for ((key, _, _), outcome) in sending.iter().zip(&outcomes) {
            match outcome {
                Outcome::Delivered { ack } => {
                    tracing::debug!(target = %self.target.name, delivery = %self.id_text(key), ack, "delivered");
                }
                Outcome::Failed { reason } => {
                    tracing::error!(target = %self.target.name, delivery = %self.id_text(key), reason, "delivery failed for good");
                }
                Outcome::Retry { .. } => {}
            }
        }
        if let Some(first) = retried.first() {
            tracing::warn!(target = %self.target.name, retrying = retried.len(), "not handed over, trying again: {first}");
        }
        tracing::debug!(target = %self.target.name, delivered, retrying = retried.len(), failed = failed.len(), "round");
        let problem =
            retried.first().filter(|_| delivered == 0).map(|e| Problem::SinkFailing { error: e.clone() });
        self.status.send_modify(|s| {
            let room = MAX_REPORTED_FAILURES.saturating_sub(s.failures.len());
            s.failures.extend(failed.iter().take(room).cloned());
            s.problem = problem;
        });
        Ok(true)
    }

    /// Doubt means look, never send again: a delivery handed over before (left `sending` by a
    /// stop, or answered with a lost connection or a timeout, after which the sink may hold it)
    /// is first looked for in the sink. Found: confirmed with what the sink holds. Not found: it
    /// goes out again. The sink cannot be asked: it waits, like a failed hand-over. A sink that
    /// cannot look (webhook, Pub/Sub) or drops repeats itself (JetStream) says "not found".
    /// Returns the messages to send.
    async fn look_first(
        &mut self,
        sink: &mut Sink,
        due: &[(DeliveryKey, Delivery)],
        messages: Vec<(usize, Message)>,
    ) -> Result<Vec<(usize, Message)>, StoreError> {
        let (doubtful, mut fresh): (Vec<_>, Vec<_>) =
            messages.into_iter().partition(|(i, _)| due[*i].1.attempts > 0);
        if doubtful.is_empty() {
            return Ok(fresh);
        }
        let since = doubtful.iter().map(|(i, _)| due[*i].1.updated_at).min().unwrap_or(0);
        let batch: Vec<Message> = doubtful.iter().map(|(_, m)| m.clone()).collect();
        let t = now();
        let mut settled = Vec::new();
        let mut acks = Vec::new();
        match sink.recover(&batch, since).await {
            Ok(found) => {
                for ((i, message), ack) in doubtful.into_iter().zip(found) {
                    match ack {
                        Some(ack) => {
                            let (key, d) = &due[i];
                            let outcome = Outcome::Delivered { ack };
                            let (after, ack) = decide::settle(d, &outcome, u32::MAX, t, Duration::ZERO);
                            settled.push((*key, d.state, after));
                            acks.extend(ack.map(|ack| (*key, ack)));
                        }
                        None => fresh.push((i, message)),
                    }
                }
                if !settled.is_empty() {
                    tracing::info!(target = %self.target.name, found = settled.len(), "found in the sink, not sent again");
                }
            }
            Err(e) => {
                tracing::warn!(target = %self.target.name, error = %e, "cannot look in the sink before sending again; waiting");
                self.set_problem(Some(Problem::SinkFailing { error: e.to_string() }));
                let outcome =
                    Outcome::Retry { reason: format!("cannot look in the sink first: {e}"), after: None };
                for (i, _) in doubtful {
                    let (key, d) = &due[i];
                    let wait = backoff(Duration::from_secs(1), Duration::from_secs(30), d.attempts);
                    let (after, _) = decide::settle(d, &outcome, self.target.plan.max_attempts, t, wait);
                    settled.push((*key, d.state, after));
                }
            }
        }
        self.write(&settled, &acks)?;
        fresh.sort_by_key(|(i, _)| *i);
        Ok(fresh)
    }

    /// What is due now, in item order, `room` at most. An ordered target takes each source's items
    /// only up to its first one that is not due.
    fn gather(&mut self, t: u64, room: usize) -> Result<Vec<(DeliveryKey, Delivery)>, StoreError> {
        if room == 0 {
            return Ok(Vec::new());
        }
        let (chain, id, store) = (SINK_CHAIN, self.target.id, self.store.clone());
        let states = [DeliveryState::Sending, DeliveryState::Pending, DeliveryState::Failed];
        let mut waiting = None;
        if !self.target.plan.ordered {
            let mut due = Vec::new();
            for state in states {
                let left = room - due.len();
                if left == 0 {
                    break;
                }
                due.extend(tokio::task::block_in_place(|| {
                    store.target_deliveries(chain, id, state, left, |_, d| {
                        let now_due = decide::is_due(d, t);
                        if !now_due {
                            decide::note_waiting(&mut waiting, d);
                        }
                        now_due
                    })
                })?);
            }
            self.waiting = waiting;
            return Ok(due);
        }
        // Ordered: every open delivery (up to a window) in item order, each with its source.
        let window = room * 4;
        let mut open = Vec::new();
        for state in states {
            open.extend(tokio::task::block_in_place(|| {
                store.target_deliveries(chain, id, state, window, |_, d| {
                    d.state != DeliveryState::Failed || d.retryable
                })
            })?);
        }
        open.sort_by_key(|(k, _)| k.item);
        open.truncate(window);
        let items: Vec<ItemKey> = open.iter().map(|(k, _)| k.item).collect();
        let stored = tokio::task::block_in_place(|| store.items(&items))?;
        let candidates: Vec<(usize, u32, bool)> = open
            .iter()
            .zip(&stored)
            .enumerate()
            .map(|(i, ((k, d), item))| {
                (i, item.as_ref().map_or(u32::MAX, |it| source_of(k.item, it)), decide::is_due(d, t))
            })
            .collect();
        for ((_, d), (_, _, due)) in open.iter().zip(&candidates) {
            if !due {
                decide::note_waiting(&mut waiting, d);
            }
        }
        self.waiting = waiting;
        let take = decide::ordered(&candidates);
        Ok(take.into_iter().take(room).map(|i| open[i].clone()).collect())
    }

    /// The messages of `due` (index into `due`, message), and the indices whose item the store no
    /// longer holds.
    #[allow(clippy::type_complexity)]
    fn messages(
        &mut self,
        due: &[(DeliveryKey, Delivery)],
    ) -> Result<(Vec<(usize, Message)>, Vec<(DeliveryKey, Delivery)>), StoreError> {
        let items: Vec<ItemKey> = due.iter().map(|(k, _)| k.item).collect();
        let store = self.store.clone();
        let stored = tokio::task::block_in_place(|| store.items(&items))?;
        let mut messages = Vec::with_capacity(due.len());
        let mut missing = Vec::new();
        for (i, ((key, d), item)) in due.iter().zip(stored).enumerate() {
            let Some(item) = item else {
                missing.push((*key, d.clone()));
                continue;
            };
            let source = source_of(key.item, &item);
            if !self.sources.contains_key(&source) {
                self.sources = tokio::task::block_in_place(|| store.source_names())?;
            }
            let source = self.sources.get(&source).cloned().unwrap_or_else(|| format!("#{source}"));
            let chain = match key.item {
                ItemKey::Event(e) => {
                    self.target.chains.get(&e.chain).cloned().unwrap_or_else(|| e.chain.to_string())
                }
                ItemKey::Batch(_) => String::new(),
            };
            let cx = Context { target: &self.target.name, source: &source, chain: &chain };
            messages.push((i, message::build(&cx, key.item, &item)));
        }
        Ok((messages, missing))
    }

    /// Deliveries whose item is gone (an event a reorg removed after its delivery was read)
    /// fail for good, saying so.
    fn fail_missing(&mut self, missing: &[(DeliveryKey, Delivery)]) -> Result<(), StoreError> {
        if missing.is_empty() {
            return Ok(());
        }
        let t = now();
        let outcome =
            Outcome::Failed { reason: "the item is no longer in the store (removed by a reorg)".into() };
        let rows: Vec<_> = missing
            .iter()
            .map(|(key, d)| (*key, d.state, decide::settle(d, &outcome, u32::MAX, t, Duration::ZERO).0))
            .collect();
        self.write(&rows, &[])
    }

    /// Writes deliveries (each with the state it had before) and sink acks in one transaction.
    fn write(
        &self,
        rows: &[(DeliveryKey, DeliveryState, Delivery)],
        acks: &[(DeliveryKey, SinkAck)],
    ) -> Result<(), StoreError> {
        if rows.is_empty() && acks.is_empty() {
            return Ok(());
        }
        let store = self.store.clone();
        tokio::task::block_in_place(|| store.write(|tx| tx.put_deliveries_from(rows, acks)))
    }

    fn recount(&mut self) -> Result<(), StoreError> {
        let (id, store) = (self.target.id, self.store.clone());
        let counts: Counts = tokio::task::block_in_place(|| store.target_counts(SINK_CHAIN, id))?;
        self.counted_at = Instant::now();
        self.status.send_if_modified(|s| {
            let changed = s.counts != counts;
            s.counts = counts;
            changed
        });
        Ok(())
    }

    fn set_problem(&self, problem: Option<Problem>) {
        self.status.send_if_modified(|s| {
            let changed = s.problem != problem;
            s.problem = problem;
            changed
        });
    }

    fn dry_run(mut self) -> Result<ChainStatus, StoreError> {
        let due = self.gather(now(), 50)?;
        let lines: Vec<String> =
            due.iter().map(|(k, _)| format!("{} (would hand over)", self.id_text(k))).collect();
        self.status.send_modify(|s| s.would_send = lines);
        self.finish(true)
    }

    fn finish(mut self, done: bool) -> Result<ChainStatus, StoreError> {
        self.recount()?;
        let until_done = self.opts.until_done;
        self.status.send_modify(|s| {
            s.done = done;
            // As for a chain: work left at the end of `push` always says why.
            if until_done && s.problem.is_none() {
                s.problem = Problem::left_undone(&s.counts, s.failures.first().map(String::as_str));
            }
        });
        Ok(self.status.borrow().clone())
    }

    fn id_text(&self, key: &DeliveryKey) -> String {
        format!("{}/{}", self.target.name, key.item)
    }
}

/// A test build (debug assertions on) waits `FERRY_TEST_SINK_PAUSE_MS` before and after each
/// hand-over, so that crash tests can kill a process while deliveries are `sending`: written but
/// not handed over, or handed over and not settled. Release builds have no such hook.
async fn test_pause() {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("FERRY_TEST_SINK_PAUSE_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

/// The source id of an item: an event's record holds it, a batch's key does.
fn source_of(key: ItemKey, item: &StoredItem) -> u32 {
    match (key, item) {
        (ItemKey::Batch(k), _) => k.source,
        (ItemKey::Event(_), StoredItem::Event(e)) => e.source,
        (ItemKey::Event(_), StoredItem::Batch(_)) => u32::MAX,
    }
}
