//! Starting due deliveries on one chain: gather what is pending (and failed deliveries whose
//! retry is due) and check and simulate them concurrently; decide (`start/decide.rs`, pure) what
//! each is; apply: sign the ready ones with consecutive nonces, write the intents in one
//! transaction, then broadcast them in nonce order.

pub(super) mod decide;

use futures_util::{StreamExt, stream};
use serde_json::{Map, Value};

use self::decide::{Batch, Found, Stop};
use super::chain;
use super::sign::Unsigned;
use super::worker::{Problem, Worker, store_blocking};
use super::{DeliverError, TargetKind};
use crate::engine::rpc::ErrorKind;
use crate::store::keys::{DeliveryKey, IntentKey, ItemKey};
use crate::store::now;
use crate::store::records::{Delivery, DeliveryState};

/// Permanent failures a summary lists by name; the rest are counted.
const MAX_REPORTED_FAILURES: usize = 20;

/// Checks and simulations in flight at once.
const CONCURRENCY: usize = 16;

impl Worker {
    /// Starts due deliveries. `Ok(true)` when it did work.
    pub(super) async fn start_due(&mut self) -> Result<bool, DeliverError> {
        if !self.may_start().await? {
            return Ok(false);
        }
        let room = decide::room(self.max_in_flight(), self.in_flight, self.opts.limit, self.started);
        if room == 0 {
            return Ok(false);
        }
        // Prover targets post in order, each round on what the Prover holds: a round of their own.
        let provers: Vec<u32> = self
            .dest
            .targets
            .iter()
            .filter(|(_, t)| matches!(t.kind, TargetKind::Prover(_)))
            .map(|(id, _)| *id)
            .collect();
        let mut busy = false;
        for id in provers {
            let room = decide::room(self.max_in_flight(), self.in_flight, self.opts.limit, self.started);
            if room == 0 || self.is_paused() {
                return Ok(busy);
            }
            busy |= self.start_prover(id, room).await?;
        }
        if !self.dest.targets.values().any(|t| matches!(t.kind, TargetKind::Call { .. })) {
            return Ok(busy);
        }
        let room = decide::room(self.max_in_flight(), self.in_flight, self.opts.limit, self.started);
        if room == 0 {
            return Ok(busy);
        }
        let now_s = now();
        let due = self.gather_due(room, now_s).await?;
        if due.is_empty() {
            return Ok(busy);
        }
        let batch = decide::batch(due, now_s);
        Ok(self.apply_batch(batch, now_s).await? || busy)
    }

    /// What is due (pending deliveries, then failed ones whose retry is due, `room` at most),
    /// each with what its checks and simulation found, concurrently.
    async fn gather_due(
        &self,
        room: usize,
        now_s: u64,
    ) -> Result<Vec<(DeliveryKey, Delivery, Result<Found, DeliverError>)>, DeliverError> {
        let chain_id = self.dest.chain_id;
        let targets = &self.dest.targets;
        let calls = |t: &u32| targets.get(t).is_some_and(|t| matches!(t.kind, TargetKind::Call { .. }));
        let mut due = store_blocking(|| {
            self.store.deliveries_in_state(chain_id, DeliveryState::Pending, room, |k, _| calls(&k.target))
        })?;
        if due.len() < room && !self.opts.dry_run {
            let failed = store_blocking(|| {
                self.store.deliveries_in_state(chain_id, DeliveryState::Failed, room - due.len(), |k, d| {
                    calls(&k.target) && d.retryable && d.next_attempt_at.is_none_or(|t| t <= now_s)
                })
            })?;
            due.extend(failed);
        }
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<DeliveryKey> = due.iter().map(|(k, _)| *k).collect();
        let fields = self.item_fields(&keys)?;
        let checks: Vec<_> = keys.iter().zip(fields).map(|(key, fields)| self.check(*key, fields)).collect();
        let found: Vec<Result<Found, DeliverError>> =
            stream::iter(checks).buffered(CONCURRENCY).collect().await;
        Ok(due.into_iter().zip(found).map(|((key, delivery), found)| (key, delivery, found)).collect())
    }

    /// Carries a decided round out: the settled deliveries written; unless the round stopped, the
    /// ready ones signed with consecutive nonces, written with their intents in one transaction,
    /// then broadcast in nonce order.
    pub(super) async fn apply_batch(
        &mut self,
        batch: Batch<DeliverError>,
        now_s: u64,
    ) -> Result<bool, DeliverError> {
        let Batch { ready, settled, stops } = batch;
        // The chain is failing: what was settled stays settled, the rest waits. Each signer that
        // cannot pay pauses the chain; the first stop in due order is the round's error.
        let mut failure = None;
        for stop in stops {
            let e = match stop {
                Stop::Failing(e) => e,
                Stop::CannotPay(m) => self.cannot_pay(format!("the simulation says so ({m})")),
            };
            failure.get_or_insert(e);
        }
        if let Some(e) = failure {
            self.save_deliveries(&settled)?;
            return Err(e);
        }
        if self.opts.dry_run {
            // What would fail if sent is the dry run's verdict on the chain (`push --dry-run`
            // exits 4 on it), not only a line among the others.
            let failing: Vec<String> = settled
                .iter()
                .filter(|(_, d)| d.state == DeliveryState::Failed)
                .map(|(k, d)| format!("{}: {}", k.item, d.reason.as_deref().unwrap_or("")))
                .collect();
            if let Some(first) = failing.first() {
                let problem = Problem::SimulationFailed { count: failing.len(), first: first.clone() };
                tracing::warn!(chain = %self.dest.chain, "{problem}");
                self.status.send_modify(|s| s.problem = Some(problem));
            }
            let lines: Vec<String> = ready
                .iter()
                .map(|p| {
                    let target = self.dest.targets.get(&p.key.target).map_or("?", |t| t.name.as_str());
                    format!("{target} {} to {} gas {}", p.key.item, p.to, p.gas_limit)
                })
                .chain(settled.iter().map(|(k, d)| {
                    format!("{}: {} ({})", k.item, d.state.as_str(), d.reason.as_deref().unwrap_or(""))
                }))
                .collect();
            self.started += lines.len().max(1);
            self.status.send_modify(|s| s.would_send.extend(lines));
            return Ok(false);
        }
        self.save_deliveries(&settled)?;
        self.report_failures(&settled);
        if ready.is_empty() {
            return Ok(!settled.is_empty());
        }

        let market = chain::market(&self.dest.rpc, self.dest.fees.legacy).await.map_err(Self::rpc_err)?;
        let (fees, problem) = decide::fees(&self.dest.fees, market);
        // The chain still holds ferry's transactions and the signer can pay for the largest of
        // the round; else the ready ones wait (pending) and the chain says why.
        let gas = ready.iter().map(|p| p.gas_limit).max().unwrap_or(0);
        if !self.may_sign(gas, fees).await? {
            return Ok(!settled.is_empty());
        }
        if let Some(problem) = problem {
            tracing::warn!(chain = %self.dest.chain, "{problem}");
            self.status.send_modify(|s| s.problem = Some(problem));
        }
        let mut rows = Vec::with_capacity(ready.len());
        for p in ready {
            let nonce = self.next_nonce + rows.len() as u64;
            let unsigned = Unsigned { nonce, to: p.to, input: p.data.clone(), gas_limit: p.gas_limit, fees };
            let signed = self.sign(unsigned)?;
            let key = p.key;
            let (intent, delivery) = decide::signed(p, self.signer, nonce, fees, signed, now_s);
            rows.push((nonce, intent, key, delivery));
        }
        // Write ahead: the intents and their deliveries exist before any of them is broadcast.
        let (chain_id, signer) = (self.dest.chain_id, self.signer);
        store_blocking(|| {
            self.store.write(|tx| {
                for (nonce, intent, key, d) in &rows {
                    tx.put_intent(IntentKey { chain: chain_id, signer, nonce: *nonce }, intent)?;
                    tx.put_delivery(*key, d)?;
                }
                Ok(())
            })
        })?;
        let mut intents: Vec<_> = rows.into_iter().map(|(nonce, intent, _, _)| (nonce, intent)).collect();
        self.floor = self.floor.min(self.next_nonce);
        self.next_nonce += intents.len() as u64;
        self.started += intents.len();
        self.in_flight += intents.len();
        let all: Vec<usize> = (0..intents.len()).collect();
        // Nonces below ours are all used or ours: none of these is "too high" for a node that
        // holds our earlier ones.
        let latest = intents.first().map_or(0, |(n, _)| *n);
        self.broadcast_all(&mut intents, &all, latest).await?;
        Ok(true)
    }

    /// Permanent failures are said once, loudly, with their reason (and kept for the summary).
    fn report_failures(&self, settled: &[(DeliveryKey, Delivery)]) {
        for (key, d) in settled.iter().filter(|(_, d)| d.state == DeliveryState::Failed && !d.retryable) {
            let target = self.dest.targets.get(&key.target).map_or("?", |t| t.name.as_str());
            let reason = d.reason.as_deref().unwrap_or("");
            let delivery = format!("{target}/{}/{}", self.dest.chain, key.item);
            tracing::warn!(chain = %self.dest.chain, target, item = %key.item, delivery, reason, "delivery failed for good");
            self.status.send_modify(|s| {
                if s.failures.len() < MAX_REPORTED_FAILURES {
                    s.failures.push(format!("{target}/{}/{}: {reason}", self.dest.chain, key.item));
                }
            });
        }
    }

    fn save_deliveries(&self, rows: &[(DeliveryKey, Delivery)]) -> Result<(), DeliverError> {
        if rows.is_empty() {
            return Ok(());
        }
        store_blocking(|| {
            self.store.write(|tx| {
                for (k, d) in rows {
                    tx.put_delivery(*k, d)?;
                }
                Ok(())
            })
        })
    }

    /// The fields each item shows a target, read in one transaction: its decoded fields plus where
    /// it came from. `None` for an item that is gone or has no decoded fields.
    fn item_fields(&self, keys: &[DeliveryKey]) -> Result<Vec<Option<Map<String, Value>>>, DeliverError> {
        let events: Vec<_> = keys
            .iter()
            .filter_map(|k| match k.item {
                ItemKey::Event(e) => Some(e),
                ItemKey::Batch(_) => None,
            })
            .collect();
        let mut events = store_blocking(|| self.store.events(&events))?.into_iter();
        Ok(keys
            .iter()
            .map(|k| {
                let ItemKey::Event(key) = k.item else { return None };
                let event = events.next().flatten()?;
                let mut fields = match event.fields.as_deref().map(serde_json::from_str::<Value>) {
                    Some(Ok(Value::Object(map))) => map,
                    _ => return None,
                };
                fields.entry("block_number").or_insert_with(|| Value::String(key.block.to_string()));
                fields.entry("log_index").or_insert_with(|| Value::String(key.log_index.to_string()));
                fields.entry("tx_hash").or_insert_with(|| Value::String(event.tx_hash.to_string()));
                fields.entry("address").or_insert_with(|| Value::String(event.address.to_checksum(None)));
                Some(fields)
            })
            .collect())
    }

    /// Whether the configured view says the item is on the chain already.
    pub(super) async fn already_done(&mut self, key: DeliveryKey) -> Result<Option<String>, DeliverError> {
        let Some(target) = self.dest.targets.get(&key.target) else { return Ok(None) };
        let (plan, to) = match &target.kind {
            TargetKind::Call { plan, to } => (plan.clone(), *to),
            TargetKind::Prover(_) => {
                let ItemKey::Batch(batch) = key.item else { return Ok(None) };
                return self.prover_holds(key.target, batch.height).await;
            }
        };
        let Some(fields) = self.item_fields(&[key])?.pop().flatten() else { return Ok(None) };
        let Some(Ok(data)) = plan.done_view_calldata(&fields) else { return Ok(None) };
        let returned = chain::call(&self.dest.rpc, self.signer, to, &data).await.map_err(Self::rpc_err)?;
        Ok(match plan.judge_view(&returned, &fields) {
            Ok(true) => Some("already there (the view says so)".into()),
            _ => None,
        })
    }

    /// Checks a due delivery and simulates it, asking no more than the decision needs: no call
    /// without the item's fields, no simulation when the view says it is there. An RPC failure
    /// is the error; a node's answer, whatever it is, is what was found.
    async fn check(
        &self,
        key: DeliveryKey,
        fields: Option<Map<String, Value>>,
    ) -> Result<Found, DeliverError> {
        let Some(target) = self.dest.targets.get(&key.target) else { return Ok(Found::NoTarget) };
        let TargetKind::Call { plan, to } = &target.kind else { return Ok(Found::NoTarget) };
        let Some(fields) = fields else { return Ok(Found::NoFields) };
        let data = match plan.calldata(&fields) {
            Ok(d) => d,
            Err(e) => return Ok(Found::BadCall(e.to_string())),
        };
        if let Some(Ok(view)) = plan.done_view_calldata(&fields) {
            let returned = match chain::call(&self.dest.rpc, self.signer, *to, &view).await {
                Ok(returned) => returned,
                // The node answered: the view reverts (a wrong `already_done.view`, a contract
                // without it). That is the target's problem, said on its deliveries, not a
                // failing RPC to retry the whole chain on.
                Err(e) if e.is_revert() => {
                    return Ok(Found::ViewUnreadable(format!("the view reverted: {}", e.message)));
                }
                Err(e) => return Err(Self::rpc_err(e)),
            };
            match plan.judge_view(&returned, &fields) {
                Ok(true) => return Ok(Found::ViewSaysThere),
                Ok(false) => {}
                Err(e) => return Ok(Found::ViewUnreadable(e.to_string())),
            }
        }
        match chain::estimate_gas(&self.dest.rpc, self.signer, *to, &data).await {
            Ok(gas) => Ok(Found::Estimated { to: *to, data, gas, margin: target.gas_margin }),
            Err(e) if e.is_revert() => {
                Ok(Found::Reverted(plan.classify_revert(&e.revert_data().unwrap_or_default())))
            }
            Err(e) if e.kind == ErrorKind::Node => Ok(Found::Refused(e.message)),
            Err(e) => Err(Self::rpc_err(e)),
        }
    }
}
