//! Starting due deliveries on one chain: read what is pending (and failed deliveries whose retry
//! is due), check and simulate them concurrently, sign the ready ones with consecutive nonces,
//! write the intents in one transaction, then broadcast them in nonce order.

use std::time::Duration;

use alloy::primitives::{Address, Bytes};
use futures_util::{StreamExt, stream};
use serde_json::{Map, Value};

use super::DeliverError;
use super::chain;
use super::sign::Unsigned;
use super::worker::{Worker, store_blocking};
use crate::engine::call::Revert;
use crate::engine::rpc::ErrorKind;
use crate::store::keys::{DeliveryKey, IntentKey, ItemKey};
use crate::store::now;
use crate::store::records::{Delivery, DeliveryState, IntentState, TxIntent};

/// Permanent failures a summary lists by name; the rest are counted.
const MAX_REPORTED_FAILURES: usize = 20;

/// Deliveries started in one round at most: a backlog goes out in rounds of this size, so the
/// first transactions reach the node while later ones are still being checked.
const MAX_BATCH: usize = 512;

/// Checks and simulations in flight at once.
const CONCURRENCY: usize = 16;

/// A delivery ready to be signed.
struct Prepared {
    key: DeliveryKey,
    delivery: Delivery,
    to: Address,
    data: Bytes,
    gas_limit: u64,
}

/// A delivery settled without a transaction: (state, reason, retryable).
type Settled = (DeliveryState, String, bool);

impl Worker {
    /// Starts due deliveries. `Ok(true)` when it did work.
    pub(super) async fn start_due(&mut self) -> Result<bool, DeliverError> {
        if self.is_paused() {
            return Ok(false);
        }
        let chain_id = self.dest.chain_id;
        let mut room = self.opts.max_in_flight.saturating_sub(self.in_flight).min(MAX_BATCH);
        if let Some(limit) = self.opts.limit {
            room = room.min(limit.saturating_sub(self.started));
        }
        if room == 0 {
            return Ok(false);
        }
        let now_s = now();
        let targets = &self.dest.targets;
        let mut due = store_blocking(|| {
            self.store.deliveries_in_state(chain_id, DeliveryState::Pending, room, |k, _| {
                targets.contains_key(&k.target)
            })
        })?;
        if due.len() < room && !self.opts.dry_run {
            let failed = store_blocking(|| {
                self.store.deliveries_in_state(chain_id, DeliveryState::Failed, room - due.len(), |k, d| {
                    targets.contains_key(&k.target)
                        && d.retryable
                        && d.next_attempt_at.is_none_or(|t| t <= now_s)
                })
            })?;
            due.extend(failed);
        }
        if due.is_empty() {
            return Ok(false);
        }

        let keys: Vec<DeliveryKey> = due.iter().map(|(k, _)| *k).collect();
        let fields = self.item_fields(&keys)?;
        let checks: Vec<_> = due
            .iter()
            .zip(fields)
            .map(|((key, delivery), fields)| self.prepare(*key, delivery, fields))
            .collect();
        let checked: Vec<Result<Result<Prepared, Settled>, DeliverError>> =
            stream::iter(checks).buffered(CONCURRENCY).collect().await;
        let mut ready = Vec::new();
        let mut settled: Vec<(DeliveryKey, Delivery)> = Vec::new();
        let mut failure = None;
        for ((key, delivery), outcome) in due.into_iter().zip(checked) {
            match outcome {
                Ok(Ok(prepared)) => ready.push(prepared),
                Ok(Err((state, reason, retryable))) => {
                    settled.push((key, settle(delivery, state, reason, retryable, now_s)));
                }
                // The chain is failing: what was settled stays settled, the rest waits.
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        if let Some(e) = failure {
            self.save_deliveries(&settled)?;
            return Err(e);
        }
        if self.opts.dry_run {
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
        let fees = self.dest.fees.fresh(market);
        if fees.max_fee < market.base_fee {
            let problem = super::worker::Problem::CapBelowBaseFee {
                cap: self.dest.fees.cap,
                base_fee: market.base_fee,
            };
            tracing::warn!(chain = %self.dest.chain, "{problem}");
            self.status.send_modify(|s| s.problem = Some(problem));
        }
        let mut intents: Vec<(u64, TxIntent)> = Vec::with_capacity(ready.len());
        let mut deliveries = Vec::with_capacity(ready.len());
        for p in ready {
            let nonce = self.next_nonce + intents.len() as u64;
            let unsigned = Unsigned { nonce, to: p.to, input: p.data, gas_limit: p.gas_limit, fees };
            let (raw, hash) = self.sign(unsigned)?;
            intents.push((
                nonce,
                TxIntent {
                    state: IntentState::Signed,
                    raw,
                    hash,
                    to: p.to,
                    gas_limit: p.gas_limit,
                    max_fee_per_gas: fees.max_fee,
                    max_priority_fee_per_gas: fees.priority,
                    created_at: now_s,
                    sent_at: None,
                    replaced: Vec::new(),
                    deliveries: vec![p.key],
                    mined: None,
                    cancel: None,
                },
            ));
            let mut d = p.delivery;
            d.state = DeliveryState::Sending;
            d.signer = Some(self.signer);
            d.nonce = Some(nonce);
            d.tx_hashes.push(hash);
            d.attempts += 1;
            d.next_attempt_at = None;
            d.reason = None;
            d.retryable = true;
            d.updated_at = now_s;
            deliveries.push((p.key, d));
        }
        // Write ahead: the intents and their deliveries exist before any of them is broadcast.
        let signer = self.signer;
        store_blocking(|| {
            self.store.write(|tx| {
                for ((nonce, intent), (key, d)) in intents.iter().zip(&deliveries) {
                    tx.put_intent(IntentKey { chain: chain_id, signer, nonce: *nonce }, intent)?;
                    tx.put_delivery(*key, d)?;
                }
                Ok(())
            })
        })?;
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
            tracing::warn!(chain = %self.dest.chain, target, item = %key.item, reason, "delivery failed for good");
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
    pub(super) async fn already_done(&self, key: DeliveryKey) -> Result<Option<String>, DeliverError> {
        let Some(target) = self.dest.targets.get(&key.target) else { return Ok(None) };
        let Some(fields) = self.item_fields(&[key])?.pop().flatten() else { return Ok(None) };
        let Some(Ok(data)) = target.plan.done_view_calldata(&fields) else { return Ok(None) };
        let returned =
            chain::call(&self.dest.rpc, self.signer, target.to, &data).await.map_err(Self::rpc_err)?;
        Ok(match target.plan.judge_view(&returned, &fields) {
            Ok(true) => Some("already there (the view says so)".into()),
            _ => None,
        })
    }

    /// Checks a due delivery and simulates it; `Ok(Err(..))` settles it without a transaction:
    /// skipped (already there) or failed.
    async fn prepare(
        &self,
        key: DeliveryKey,
        delivery: &Delivery,
        fields: Option<Map<String, Value>>,
    ) -> Result<Result<Prepared, Settled>, DeliverError> {
        let Some(target) = self.dest.targets.get(&key.target) else {
            return Ok(Err((DeliveryState::Failed, "target not configured".into(), true)));
        };
        let Some(fields) = fields else {
            return Ok(Err((
                DeliveryState::Failed,
                "the item is not in the store or has no decoded fields".into(),
                false,
            )));
        };
        let data = match target.plan.calldata(&fields) {
            Ok(d) => d,
            Err(e) => return Ok(Err((DeliveryState::Failed, e.to_string(), false))),
        };
        if let Some(Ok(view)) = target.plan.done_view_calldata(&fields) {
            let returned =
                chain::call(&self.dest.rpc, self.signer, target.to, &view).await.map_err(Self::rpc_err)?;
            match target.plan.judge_view(&returned, &fields) {
                Ok(true) => {
                    return Ok(Err((
                        DeliveryState::Skipped,
                        "already there (the view says so)".into(),
                        false,
                    )));
                }
                Ok(false) => {}
                Err(e) => return Ok(Err((DeliveryState::Failed, format!("already-done check: {e}"), true))),
            }
        }
        match chain::estimate_gas(&self.dest.rpc, self.signer, target.to, &data).await {
            Ok(gas) => Ok(Ok(Prepared {
                key,
                delivery: delivery.clone(),
                to: target.to,
                data,
                // A margin for state that changes between the estimate and the block.
                gas_limit: gas + gas / 5 + 5_000,
            })),
            Err(e) if e.is_revert() => {
                match target.plan.classify_revert(&e.revert_data().unwrap_or_default()) {
                    Revert::AlreadyThere(what) => {
                        Ok(Err((DeliveryState::Skipped, format!("already there: {what}"), false)))
                    }
                    Revert::Failed(reason) => Ok(Err((DeliveryState::Failed, reason, false))),
                }
            }
            Err(e) if e.kind == ErrorKind::Node => {
                if e.message.to_ascii_lowercase().contains("insufficient funds") {
                    return Err(
                        self.pause(format!("signer {} cannot pay for gas ({})", self.signer, e.message))
                    );
                }
                Ok(Err((DeliveryState::Failed, format!("simulation failed: {}", e.message), true)))
            }
            Err(e) => Err(Self::rpc_err(e)),
        }
    }
}

/// A delivery settled without a transaction; a retryable failure waits with backoff.
fn settle(mut d: Delivery, state: DeliveryState, reason: String, retryable: bool, now_s: u64) -> Delivery {
    d.state = state;
    d.reason = Some(reason);
    d.retryable = retryable;
    d.attempts += 1;
    d.updated_at = now_s;
    if retryable {
        let wait = crate::engine::rpc::backoff(Duration::from_secs(2), Duration::from_secs(600), d.attempts);
        d.next_attempt_at = Some(now_s + wait.as_secs().max(1));
    }
    d
}
