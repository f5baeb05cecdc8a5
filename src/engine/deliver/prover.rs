//! Starting deliveries to a `seda-prover` target on one chain: gather what the Prover holds
//! (`paused()`, last batch and validators root, max batch age) and what the store holds (pending
//! and in-flight batches, the batches to prove with), decide (`prover/decide.rs`, pure) which
//! batches to post and in what order, simulate each, and hand the ready ones to the common
//! sender (sign, write ahead, broadcast).

mod decide;

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, Bytes};
use alloy::sol_types::SolCall;

use super::DeliverError;
use super::chain;
use super::start::decide::{self as start_decide, Found};
use super::worker::{Problem, Worker, store_blocking};
use crate::abi::call::Revert;
use crate::config::{ProverAt, types::ProverMode};
use crate::engine::rpc::ErrorKind;
use crate::seda::SignedBatch;
use crate::seda::prover::{self as abi, ProverRevert};
use crate::store::keys::{BatchKey, DeliveryKey, ItemKey, ProverKey};
use crate::store::now;
use crate::store::records::{Delivery, DeliveryState, ProverState};

/// Notes a run keeps for its summary at most.
const MAX_NOTES: usize = 20;

/// How often an idle worker reads a Prover again, for `inspect-store provers`.
const PROVER_REFRESH: std::time::Duration = std::time::Duration::from_secs(15);

/// A `seda-prover` target as it applies to one chain.
#[derive(Debug, Clone)]
pub struct ProverTarget {
    pub at: ProverAt,
    pub mode: ProverMode,
}

/// What a Prover said this round.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ProverView {
    prover: Address,
    paused: bool,
    last: u64,
    root: B256,
    max_age: u64,
}

impl Worker {
    /// Reads every Prover of this chain once more and records what it holds: a command ends with
    /// the store saying where each destination stands after its own transactions. Best effort:
    /// a chain that does not answer keeps what was recorded last.
    pub(super) async fn record_provers_at_end(&mut self) {
        if self.opts.dry_run {
            return;
        }
        let provers: Vec<(u32, ProverAt)> = self
            .dest
            .targets
            .iter()
            .filter_map(|(id, t)| match &t.kind {
                super::TargetKind::Prover(p) => Some((*id, p.at)),
                super::TargetKind::Call { .. } => None,
            })
            .collect();
        for (id, at) in provers {
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(5), self.prover_view(id, at)).await;
            match read {
                Ok(Ok(view)) => {
                    if let Err(e) = self.record_prover(id, &view) {
                        tracing::debug!(chain = %self.dest.chain, error = %e, "recording the Prover's state");
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(chain = %self.dest.chain, error = %e, "reading the Prover at the end")
                }
                Err(_) => {
                    tracing::debug!(chain = %self.dest.chain, "reading the Prover at the end timed out")
                }
            }
        }
    }

    /// The Prover's address: configured, or read once from the Core.
    async fn prover_address(&mut self, id: u32, at: ProverAt) -> Result<Address, DeliverError> {
        if let Some(a) = self.provers.get(&id) {
            return Ok(*a);
        }
        let address = match at {
            ProverAt::Prover(a) => a,
            ProverAt::Core(core) => {
                let data = Bytes::from(abi::getSedaProverCall {}.abi_encode());
                let out =
                    chain::call(&self.dest.rpc, self.signer, core, &data).await.map_err(Self::rpc_err)?;
                let a = abi::getSedaProverCall::abi_decode_returns(&out).map_err(|e| DeliverError::Setup {
                    chain: self.dest.chain.clone(),
                    detail: format!("the Core {core} answered getSedaProver() with something that is not an address: {e}"),
                })?;
                tracing::info!(chain = %self.dest.chain, core = %core, prover = %a, "Prover read from the Core");
                a
            }
        };
        self.provers.insert(id, address);
        Ok(address)
    }

    async fn view_call<C: SolCall>(&self, to: Address, call: C) -> Result<C::Return, DeliverError> {
        let data = Bytes::from(call.abi_encode());
        let out = chain::call(&self.dest.rpc, self.signer, to, &data).await.map_err(Self::rpc_err)?;
        C::abi_decode_returns(&out).map_err(|e| DeliverError::Setup {
            chain: self.dest.chain.clone(),
            detail: format!("the Prover {to} answered {} with something unreadable: {e}", C::SIGNATURE),
        })
    }

    async fn prover_view(&mut self, id: u32, at: ProverAt) -> Result<ProverView, DeliverError> {
        let prover = self.prover_address(id, at).await?;
        let (paused, last, root, max_age) = tokio::try_join!(
            self.view_call(prover, abi::pausedCall {}),
            self.view_call(prover, abi::getLastBatchHeightCall {}),
            self.view_call(prover, abi::getLastValidatorsRootCall {}),
            self.view_call(prover, abi::getMaxBatchAgeCall {}),
        )?;
        Ok(ProverView { prover, paused, last, root, max_age })
    }

    /// Whether the Prover holds batch `height` (`getBatch(height).resultsRoot` is not zero).
    pub(super) async fn prover_holds(
        &mut self,
        id: u32,
        height: u64,
    ) -> Result<Option<String>, DeliverError> {
        let Some(target) = self.dest.targets.get(&id) else { return Ok(None) };
        let super::TargetKind::Prover(p) = &target.kind else { return Ok(None) };
        let at = p.at;
        let prover = self.prover_address(id, at).await?;
        let got = self.view_call(prover, abi::getBatchCall { batchHeight: height }).await?;
        Ok((got.resultsRoot != B256::ZERO)
            .then(|| format!("already there: the Prover holds batch {height} (posted by {})", got.sender)))
    }

    /// One round for one `seda-prover` target. `Ok(true)` when it did work.
    pub(super) async fn start_prover(&mut self, id: u32, room: usize) -> Result<bool, DeliverError> {
        let Some(target) = self.dest.targets.get(&id) else { return Ok(false) };
        let super::TargetKind::Prover(p) = &target.kind else { return Ok(false) };
        let (name, p, margin) = (target.name.clone(), p.clone(), target.gas_margin);
        let chain_id = self.dest.chain_id;
        let of_target = |k: &DeliveryKey| k.target == id && matches!(k.item, ItemKey::Batch(_));
        let now_s = now();
        let mut pending = store_blocking(|| {
            self.store.deliveries_in_state(chain_id, DeliveryState::Pending, usize::MAX, |k, _| of_target(k))
        })?;
        if !self.opts.dry_run {
            let failed = store_blocking(|| {
                self.store.deliveries_in_state(chain_id, DeliveryState::Failed, usize::MAX, |k, d| {
                    of_target(k) && d.retryable && d.next_attempt_at.is_none_or(|t| t <= now_s)
                })
            })?;
            pending.extend(failed);
        }
        if pending.is_empty() {
            // Nothing to post: what the Prover holds is still worth keeping current for
            // `inspect-store provers`, now and then.
            if self.prover_read_at.get(&id).is_none_or(|t| t.elapsed() >= PROVER_REFRESH) {
                self.prover_view(id, p.at).await.and_then(|view| self.record_prover(id, &view))?;
            }
            return Ok(false);
        }
        let view = self.prover_view(id, p.at).await?;
        self.record_prover(id, &view)?;
        if view.paused {
            let problem =
                Problem::ProverPaused { target: name.clone(), prover: view.prover.to_checksum(None) };
            if self.status.borrow().problem.as_ref() != Some(&problem) {
                tracing::warn!(chain = %self.dest.chain, target = %name, prover = %view.prover, "the Prover is paused; waiting");
            }
            self.status.send_modify(|s| s.problem = Some(problem));
            return Ok(false);
        }
        self.status.send_modify(|s| {
            if matches!(s.problem, Some(Problem::ProverPaused { .. } | Problem::ProverStuck { .. })) {
                s.problem = None;
            }
        });

        let source = match pending[0].0.item {
            ItemKey::Batch(b) => b.source,
            ItemKey::Event(_) => return Ok(false),
        };
        let height = |k: &DeliveryKey| match k.item {
            ItemKey::Batch(b) => b.height,
            ItemKey::Event(_) => 0,
        };
        pending.sort_by_key(|(k, _)| height(k));
        let records: BTreeMap<u64, (DeliveryKey, Delivery)> =
            pending.into_iter().map(|(k, d)| (height(&k), (k, d))).collect();
        let in_flight = store_blocking(|| {
            let mut top = None;
            for state in [DeliveryState::Sending, DeliveryState::Sent] {
                for (k, _) in
                    self.store.deliveries_in_state(chain_id, state, usize::MAX, |k, _| of_target(k))?
                {
                    top = top.max(Some(height(&k)));
                }
            }
            Ok(top)
        })?;
        let base = decide::base_height(view.last, in_flight);
        // `every` posts in order, `room` at most: the batches beyond are not needed this round
        // (a backlog of thousands would otherwise be read whole every tick). `latest` aims at the
        // newest, through every batch between.
        let newest = records.keys().next_back().copied().unwrap_or(base).max(base);
        let top = match p.mode {
            ProverMode::Every => newest.min(base.saturating_add(room as u64).saturating_add(1)),
            ProverMode::Latest => newest,
        };
        let batches: BTreeMap<u64, SignedBatch> = store_blocking(|| self.store.batches(source, base, top))?
            .into_iter()
            .map(|b| (b.batch.header.number, b.batch))
            .collect();
        let fallback = if batches.contains_key(&view.last) || base != view.last {
            None
        } else {
            store_blocking(|| self.store.batch_with_root(source, u64::MAX, view.root))?.map(|b| b.batch)
        };
        let mut below = BTreeMap::new();
        for h in records.keys().copied().filter(|h| *h <= view.last) {
            below.insert(h, self.prover_holds(id, h).await?.is_some());
        }
        let pending_heights: Vec<u64> = records.keys().copied().collect();
        let gathered = decide::Gathered {
            mode: p.mode,
            last: view.last,
            root: view.root,
            in_flight,
            pending: pending_heights,
            batches: &batches,
            below: &below,
            room,
        };
        let round = decide::round(&gathered, fallback.as_ref());

        if let Some(stuck) = &round.stuck {
            let problem = Problem::ProverStuck { target: name.clone(), message: stuck.clone() };
            if self.status.borrow().problem.as_ref() != Some(&problem) {
                tracing::error!(chain = %self.dest.chain, target = %name, "{stuck}");
            }
            self.status.send_modify(|s| s.problem = Some(problem));
            return Ok(false);
        }
        if let Some(wait) = &round.wait {
            tracing::debug!(chain = %self.dest.chain, target = %name, "{wait}");
        }
        // Simulate every post, in order, against the Prover as it is now (the tree it proves
        // against is the one it holds: see decide.rs).
        let key_of = |h: u64| DeliveryKey {
            target: id,
            chain: chain_id,
            item: ItemKey::Batch(BatchKey { source, height: h }),
        };
        let mut due = Vec::new();
        for post in &round.posts {
            if let Some(why) = &post.why {
                tracing::info!(chain = %self.dest.chain, target = %name, batch = post.height, "{why}");
                if !self.opts.dry_run {
                    let note = format!("{name}: batch {} posted first ({why})", post.height);
                    self.status.send_modify(|s| {
                        if s.notes.len() < MAX_NOTES {
                            s.notes.push(note);
                        }
                    });
                }
            }
            let found = match chain::estimate_gas(&self.dest.rpc, self.signer, view.prover, &post.calldata)
                .await
            {
                Ok(gas) => Ok(Found::Estimated { to: view.prover, data: post.calldata.clone(), gas, margin }),
                Err(e) if e.is_revert() => {
                    let data = e.revert_data().unwrap_or_default();
                    match abi::classify_revert(&data) {
                        ProverRevert::AlreadyThere(what) => Ok(Found::Reverted(Revert::AlreadyThere(what))),
                        ProverRevert::TooOld(what) => Ok(Found::Reverted(Revert::Failed(format!(
                            "too old: {what} (getMaxBatchAge() is {})",
                            view.max_age
                        )))),
                        ProverRevert::Paused => {
                            // Paused between the view and the simulation: the next round waits.
                            break;
                        }
                        ProverRevert::Failed(what) => {
                            Ok(Found::Reverted(Revert::Failed(format!("the Prover refused it: {what}"))))
                        }
                    }
                }
                Err(e) if e.kind == ErrorKind::Node => Ok(Found::Refused(e.message)),
                Err(e) => Err(Self::rpc_err(e)),
            };
            let stop = !matches!(found, Ok(Found::Estimated { .. }));
            let (key, delivery) = match records.get(&post.height) {
                Some((k, d)) => (*k, d.clone()),
                None => (key_of(post.height), Delivery::pending(now_s)),
            };
            due.push((key, delivery, found));
            // What follows a post that is not ready may rest on it: the next round decides again.
            if stop {
                break;
            }
        }
        let mut batch = start_decide::batch(due, now_s);
        for (h, reason) in round.skipped {
            if let Some((k, d)) = records.get(&h) {
                batch.settled.push((
                    *k,
                    start_decide::settle(d.clone(), DeliveryState::Skipped, reason, false, now_s),
                ));
            }
        }
        for (h, reason) in round.failed {
            if let Some((k, d)) = records.get(&h) {
                batch
                    .settled
                    .push((*k, start_decide::settle(d.clone(), DeliveryState::Failed, reason, false, now_s)));
            }
        }
        if batch.ready.is_empty() && batch.settled.is_empty() && batch.stops.is_empty() {
            return Ok(false);
        }
        self.apply_batch(batch, now_s).await
    }

    /// Writes what the Prover said when it changed, for `inspect-store provers`.
    fn record_prover(&mut self, id: u32, view: &ProverView) -> Result<(), DeliverError> {
        self.prover_read_at.insert(id, std::time::Instant::now());
        let state = ProverState {
            prover: view.prover,
            last_batch: view.last,
            validators_root: view.root,
            paused: view.paused,
            max_batch_age: view.max_age,
            read_at: now(),
        };
        let same = self.prover_states.get(&id).is_some_and(|s| {
            let mut s = s.clone();
            s.read_at = state.read_at;
            s == state
        });
        if same || self.opts.dry_run {
            return Ok(());
        }
        let key = ProverKey { target: id, chain: self.dest.chain_id };
        store_blocking(|| self.store.write(|tx| tx.put_prover_state(key, &state)))?;
        self.prover_states.insert(id, state);
        Ok(())
    }
}
