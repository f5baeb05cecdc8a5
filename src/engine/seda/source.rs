//! One `seda` source's loop: from its cursor, batch after batch up to the latest signed one,
//! each checked before it is stored (decodings, the recomputed id, every signature by a
//! validator of the batch before), and stored with its deliveries and the advanced cursor in one
//! write transaction.
//!
//! On a new store the source starts at `start_batch` (or the latest signed batch) and first
//! stores the batch before it as its anchor: its validators signed the first batch delivered,
//! and a destination that holds it needs its tree for the first proof.
//!
//! A batch that fails a check stops the source with an error that names the batch and the check;
//! nothing after it is stored, since its validators would sign the next one. A batch not signed
//! yet, or not there yet, is asked again after `poll_interval`; one gone below the head
//! (pruned) is an error naming `num_batches_to_keep`.

use std::sync::Arc;

use futures_util::{StreamExt, stream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::api::{ApiError, Fetched, SedaApi};
use crate::config::SedaSourcePlan;
use crate::engine::ingest::{IngestError, Phase, SourceStatus};
use crate::engine::rpc::backoff;
use crate::seda::wire::BatchAnswer;
use crate::seda::{SignedBatch, Validator, sign};
use crate::store::keys::{BatchKey, DeliveryKey, ItemKey};
use crate::store::records::Batch;
use crate::store::seda::BatchesWrite;
use crate::store::{Store, now};

/// Batches asked for at once while catching up, and committed together.
const WINDOW: u64 = 32;
/// Requests in flight at once while catching up.
const CONCURRENCY: usize = 8;
/// Failed rounds in a row before `push` gives up on the API (each round has the client's own
/// retries over every URL inside). `watch` never gives up.
const ONE_SHOT_ATTEMPTS: u32 = 4;

/// How a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// At the latest signed batch as it is when the run starts (`push`).
    AtHead,
    /// Never: follow the API until cancelled (`watch`).
    Never,
}

pub struct SedaRunner {
    plan: Arc<SedaSourcePlan>,
    api: SedaApi,
    store: Arc<Store>,
    source_id: u32,
    /// The next batch to fetch and the validators of the one before it (who sign it); `None`
    /// until the source has started (a new store needs the API to know where).
    at: Option<(u64, Vec<Validator>)>,
    status: watch::Sender<SourceStatus>,
    cancel: CancellationToken,
}

impl SedaRunner {
    /// Reads the source's cursor and the validators of the batch before it from the store.
    pub fn open(
        mut plan: SedaSourcePlan,
        store: Arc<Store>,
        cancel: CancellationToken,
    ) -> Result<(Self, watch::Receiver<SourceStatus>), IngestError> {
        let api = SedaApi::new(&plan)
            .map_err(|e| IngestError::BadRange(format!("source {}: HTTP client: {e}", plan.name)))?;
        let source_id = store.write(|tx| {
            for route in &mut plan.routes {
                route.target_id = tx.target_id(&route.target)?;
            }
            tx.source_id(&plan.name)
        })?;
        let cursor = {
            let txn = store.read()?;
            let reader = crate::store::ingest::IngestReader { path: store.path(), txn: &txn };
            reader.cursor(source_id)?
        };
        let at = match cursor {
            Some(c) => {
                let before = store.batch(source_id, c.next.saturating_sub(1))?.ok_or_else(|| {
                    IngestError::BadRange(format!(
                        "source {}: the store's cursor is at batch {}, and batch {} is not in the store",
                        plan.name,
                        c.next,
                        c.next.saturating_sub(1)
                    ))
                })?;
                Some((c.next, before.batch.validators))
            }
            None => None,
        };
        let next = at.as_ref().map_or(plan.start_batch.unwrap_or(0), |(n, _)| *n);
        let (tx, rx) = watch::channel(SourceStatus::new(&plan.name, "seda", next));
        Ok((Self { plan: Arc::new(plan), api, store, source_id, at, status: tx, cancel }, rx))
    }

    pub fn name(&self) -> &str {
        &self.plan.name
    }

    pub fn api(&self) -> &SedaApi {
        &self.api
    }

    /// Runs until `stop`, the first error that is not the API's to retry, or cancellation.
    pub async fn run(&mut self, stop: Stop) -> Result<(), IngestError> {
        let give_up = match stop {
            Stop::AtHead => Some(ONE_SHOT_ATTEMPTS),
            Stop::Never => None,
        };
        let mut failures = 0u32;
        let mut end = None;
        loop {
            if self.cancel.is_cancelled() {
                self.phase(Phase::Stopped);
                return Err(IngestError::Cancelled);
            }
            match self.step(stop, &mut end).await {
                Ok(Step::Done) => {
                    self.phase(Phase::Done);
                    return Ok(());
                }
                Ok(Step::Progress) => {
                    failures = 0;
                    self.status.send_modify(|s| s.last_error = None);
                    continue;
                }
                Ok(Step::Wait) => {
                    failures = 0;
                    self.phase(Phase::Following);
                    self.sleep(self.plan.poll_interval).await;
                }
                Err(Failed::Api(error)) => {
                    failures += 1;
                    let batch = self.at.as_ref().map_or(0, |(n, _)| *n);
                    tracing::warn!(source = %self.plan.name, batch, attempt = failures, "{error}");
                    self.status.send_modify(|s| {
                        s.last_error = Some(error.to_string());
                        s.phase = Phase::Waiting;
                    });
                    if give_up.is_some_and(|max| failures >= max) {
                        return Err(IngestError::Api {
                            name: self.plan.name.clone(),
                            error,
                            attempts: failures,
                            batch,
                        });
                    }
                    self.sleep(backoff(
                        self.plan.poll_interval.min(std::time::Duration::from_secs(1)),
                        self.plan.poll_interval * 4,
                        failures,
                    ))
                    .await;
                }
                Err(Failed::Stop(e)) => {
                    if matches!(e, IngestError::BadBatch { .. } | IngestError::Pruned { .. }) {
                        let (store, source, why) = (self.store.clone(), self.source_id, e.to_string());
                        tokio::task::spawn_blocking(move || store.write(|tx| tx.mark_stopped(source, &why)))
                            .await
                            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
                    }
                    self.status.send_modify(|s| {
                        s.last_error = Some(e.to_string());
                        s.phase = Phase::Stopped;
                    });
                    return Err(e);
                }
            }
        }
    }

    async fn sleep(&self, d: std::time::Duration) {
        tokio::select! {
            () = tokio::time::sleep(d) => {}
            () = self.cancel.cancelled() => {}
        }
    }

    fn phase(&self, phase: Phase) {
        self.status.send_modify(|s| s.phase = phase);
    }

    fn stopped(&self, batch: u64, check: impl std::fmt::Display) -> Failed {
        Failed::Stop(IngestError::BadBatch { name: self.plan.name.clone(), batch, check: check.to_string() })
    }

    /// One round: start if new, learn the head, fetch and commit one window of batches.
    async fn step(&mut self, stop: Stop, end: &mut Option<u64>) -> Result<Step, Failed> {
        let latest = match self.api.latest_signed().await.map_err(Failed::Api)? {
            Fetched::Answer(BatchAnswer::Signed(b)) => Some(b.header.number),
            Fetched::Answer(BatchAnswer::Unsigned { .. }) | Fetched::NotFound => None,
        };
        self.status.send_modify(|s| s.head = latest);
        let Some(latest) = latest else {
            return Ok(if stop == Stop::AtHead { Step::Done } else { Step::Wait });
        };
        if self.at.is_none() {
            let start = self.plan.start_batch.unwrap_or(latest).max(1);
            match self.anchor(start).await? {
                Some(at) => self.at = Some(at),
                None => return Ok(if stop == Stop::AtHead { Step::Done } else { Step::Wait }),
            }
        }
        let end = *end.get_or_insert(latest);
        let head = match stop {
            Stop::AtHead => end,
            Stop::Never => latest,
        };
        let Some((next, _)) = &self.at else { return Ok(Step::Wait) };
        let next = *next;
        self.status.send_modify(|s| {
            s.next = next;
            s.target = (stop == Stop::AtHead).then_some(end);
        });
        if next > head {
            return Ok(if stop == Stop::AtHead { Step::Done } else { Step::Wait });
        }
        self.phase(if head - next > WINDOW { Phase::CatchingUp } else { Phase::Following });
        let last = head.min(next + WINDOW - 1);
        let api = self.api.clone();
        let fetched: Vec<Result<Fetched, ApiError>> = stream::iter(next..=last)
            .map(|n| {
                let api = api.clone();
                async move { api.batch(n).await }
            })
            .buffered(CONCURRENCY)
            .collect()
            .await;
        let Some((_, previous)) = self.at.take() else { return Ok(Step::Wait) };
        let mut previous = previous;
        let mut checked: Vec<SignedBatch> = Vec::new();
        let mut first_error = None;
        let mut waiting = false;
        for (n, result) in (next..=last).zip(fetched) {
            match result {
                Err(ApiError::Field { error, .. }) => {
                    first_error = Some(self.stopped(n, format!("field {error}")));
                    break;
                }
                Err(e) => {
                    first_error = Some(Failed::Api(e));
                    break;
                }
                Ok(Fetched::NotFound) => {
                    if n < latest {
                        let keep = match self.api.num_batches_to_keep().await {
                            Some(k) => k.to_string(),
                            None => "an unknown number of".into(),
                        };
                        first_error = Some(Failed::Stop(IngestError::Pruned {
                            name: self.plan.name.clone(),
                            batch: n,
                            keep,
                        }));
                    } else {
                        waiting = true;
                    }
                    break;
                }
                Ok(Fetched::Answer(BatchAnswer::Unsigned { .. })) => {
                    waiting = true;
                    break;
                }
                Ok(Fetched::Answer(BatchAnswer::Signed(batch))) => {
                    if batch.header.number != n {
                        first_error = Some(
                            self.stopped(n, format!("the API answered batch {} for it", batch.header.number)),
                        );
                        break;
                    }
                    if let Err(e) = sign::check(&batch, n - 1, &previous) {
                        first_error = Some(self.stopped(n, e));
                        break;
                    }
                    previous = batch.validators.clone();
                    checked.push(batch);
                }
            }
        }
        let stored = checked.len() as u64;
        if !checked.is_empty() {
            self.commit(checked, false).await.map_err(Failed::Stop)?;
        }
        self.at = Some((next + stored, previous));
        self.status.send_modify(|s| {
            s.next = next + stored;
            s.batches += stored;
            s.requests = self.api.counts().0;
        });
        if let Some(e) = first_error {
            return Err(e);
        }
        if waiting {
            return Ok(if stop == Stop::AtHead && next + stored > end { Step::Done } else { Step::Wait });
        }
        Ok(Step::Progress)
    }

    /// On a new store: fetches the batch before `start` (the anchor) and stores it, without a
    /// delivery. `None` when the API does not have it yet.
    async fn anchor(&mut self, start: u64) -> Result<Option<(u64, Vec<Validator>)>, Failed> {
        let number = start - 1;
        let batch = match self.api.batch(number).await.map_err(Failed::Api)? {
            Fetched::Answer(BatchAnswer::Signed(b)) => b,
            Fetched::Answer(BatchAnswer::Unsigned { .. }) => return Ok(None),
            Fetched::NotFound => {
                let latest = self.status.borrow().head.unwrap_or(0);
                if number < latest {
                    let keep = match self.api.num_batches_to_keep().await {
                        Some(k) => k.to_string(),
                        None => "an unknown number of".into(),
                    };
                    return Err(Failed::Stop(IngestError::Pruned {
                        name: self.plan.name.clone(),
                        batch: number,
                        keep,
                    }));
                }
                return Ok(None);
            }
        };
        if batch.header.number != number {
            return Err(
                self.stopped(number, format!("the API answered batch {} for it", batch.header.number))
            );
        }
        let computed = batch.header.id();
        if computed != batch.batch_id {
            return Err(self.stopped(number, sign::CheckError::WrongId { given: batch.batch_id, computed }));
        }
        let validators = batch.validators.clone();
        tracing::info!(source = %self.plan.name, anchor = number, start, "starting: the batch before the first one is kept for its validators");
        self.commit(vec![batch], true).await.map_err(Failed::Stop)?;
        Ok(Some((start, validators)))
    }

    /// Stores checked batches with their deliveries and the cursor, in one write transaction.
    async fn commit(&self, batches: Vec<SignedBatch>, anchor: bool) -> Result<(), IngestError> {
        let source = self.source_id;
        let fetched_at = now();
        let mut deliveries = Vec::new();
        if !anchor {
            for b in &batches {
                let item = ItemKey::Batch(BatchKey { source, height: b.header.number });
                for route in &self.plan.routes {
                    for chain in &route.chain_ids {
                        deliveries.push(DeliveryKey { target: route.target_id, chain: *chain, item });
                    }
                }
            }
        }
        let write = BatchesWrite {
            source,
            batches: batches.into_iter().map(|batch| Batch { batch, anchor, fetched_at }).collect(),
            deliveries,
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.write(|tx| tx.apply_batches(&write)))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        Ok(())
    }
}

enum Step {
    /// Stored a window; go on at once.
    Progress,
    /// Nothing new: ask again after the poll interval.
    Wait,
    /// Reached the end of a one-shot run.
    Done,
}

enum Failed {
    /// The API did not answer: retried.
    Api(ApiError),
    /// What stops the source.
    Stop(IngestError),
}
