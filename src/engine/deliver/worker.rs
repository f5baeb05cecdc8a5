//! The worker of one destination chain: reconcile on start, then each tick follow the open
//! intents (receipts, confirmations, drops, bumps) and start due deliveries.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy::eips::eip2718::{Decodable2718, Encodable2718};
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::chain::{self, SendOutcome};
use super::fees::{Fees, Market};
use super::{Counts, DeliverError, Destination, Options};
use crate::engine::call::Revert;
use crate::engine::rpc::RpcError;
use crate::store::keys::{DeliveryKey, IntentKey, ItemKey};
use crate::store::records::{Delivery, DeliveryState, IntentState, Receipt, TxIntent};
use crate::store::{Store, StoreError, now};

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
    pub problem: Option<String>,
    /// Deliveries a dry run would send: (target, item, gas).
    pub would_send: Vec<String>,
    pub done: bool,
}

pub struct Worker {
    dest: Destination,
    store: Arc<Store>,
    opts: Options,
    signer: Address,
    next_nonce: u64,
    /// Intents below this nonce are all settled.
    floor: u64,
    started: usize,
    failures: u32,
    warned_cap: bool,
    status: watch::Sender<ChainStatus>,
}

/// A delivery ready to be signed.
struct Prepared {
    key: DeliveryKey,
    delivery: Delivery,
    to: Address,
    data: Bytes,
    gas_limit: u64,
}

fn store_blocking<T>(f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, DeliverError> {
    Ok(tokio::task::block_in_place(f)?)
}

impl Worker {
    /// Reconciles the store with the chain: where nonces stand, and every open intent broadcast
    /// again (a node that restarted or a crash before the broadcast may have lost it).
    pub async fn start(
        dest: Destination,
        store: Arc<Store>,
        opts: Options,
    ) -> Result<(Self, watch::Receiver<ChainStatus>), (Destination, RpcError)> {
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
            Err(e) => return Err((dest, e)),
        };
        let intents = match tokio::task::block_in_place(|| store.intents_from(chain_id, signer, 0)) {
            Ok(i) => i,
            Err(e) => {
                let e = RpcError {
                    kind: crate::engine::rpc::ErrorKind::BadResponse,
                    method: "store".into(),
                    url: String::new(),
                    message: e.to_string(),
                    code: None,
                    retry_after: None,
                    hint: None,
                    data: None,
                };
                return Err((dest, e));
            }
        };
        let highest =
            intents.iter().filter(|(_, i)| i.state != IntentState::Dropped).map(|(n, _)| n + 1).max();
        let next_nonce = latest.max(pending).max(highest.unwrap_or(0));
        let floor = intents.iter().find(|(_, i)| !i.is_settled()).map_or(next_nonce, |(n, _)| *n);
        if !opts.dry_run {
            for (nonce, intent) in intents.iter().filter(|(n, i)| i.is_open() && *n >= latest) {
                if let Err(e) = chain::send_raw(&rpc, &intent.raw).await {
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
            started: 0,
            failures: 0,
            warned_cap: false,
            status: tx,
        };
        Ok((worker, rx))
    }

    /// Runs until cancelled, or (with `until_done`) until nothing is left to do on the chain.
    pub async fn run(mut self, cancel: CancellationToken) -> ChainStatus {
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let wait = match self.tick().await {
                Ok(busy) => {
                    self.failures = 0;
                    if self.status.borrow().problem.as_deref().is_some_and(|p| p.starts_with("RPC")) {
                        self.status.send_modify(|s| s.problem = None);
                    }
                    if busy {
                        Duration::from_millis(50)
                    } else {
                        self.dest.poll_interval.min(Duration::from_secs(1))
                    }
                }
                Err(e) => {
                    self.failures += 1;
                    let wait = crate::engine::rpc::backoff(
                        Duration::from_millis(500),
                        Duration::from_secs(30),
                        self.failures,
                    );
                    tracing::warn!(chain = %self.dest.chain, error = %e, retry_in = ?wait, "delivery failing");
                    self.status.send_modify(|s| s.problem = Some(format!("RPC failing: {e}")));
                    wait
                }
            };
            if let Err(e) = self.refresh_counts() {
                tracing::error!(chain = %self.dest.chain, error = %e, "cannot read the store");
                break;
            }
            if self.opts.until_done && self.is_done() {
                self.status.send_modify(|s| s.done = true);
                break;
            }
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let _ = self.refresh_counts();
        self.status.borrow().clone()
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

    fn has_due_failed(&self) -> Result<bool, StoreError> {
        let now = now();
        let failed = self.store.deliveries_in_state(self.dest.chain_id, DeliveryState::Failed, usize::MAX)?;
        Ok(failed.iter().any(|(k, d)| {
            self.dest.targets.contains_key(&k.target)
                && d.retryable
                && d.next_attempt_at.is_none_or(|t| t <= now + 60)
        }))
    }

    fn refresh_counts(&mut self) -> Result<(), StoreError> {
        let mut counts = Counts::default();
        for state in DeliveryState::ALL {
            let rows = tokio::task::block_in_place(|| {
                self.store.deliveries_in_state(self.dest.chain_id, state, usize::MAX)
            })?;
            let n = rows.iter().filter(|(k, _)| self.dest.targets.contains_key(&k.target)).count() as u64;
            match state {
                DeliveryState::Pending => counts.pending = n,
                DeliveryState::Sending => counts.sending = n,
                DeliveryState::Sent => counts.sent = n,
                DeliveryState::Confirmed => counts.confirmed = n,
                DeliveryState::Skipped => counts.skipped = n,
                DeliveryState::Failed => counts.failed = n,
            }
        }
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

    fn rpc_err(e: RpcError) -> DeliverError {
        DeliverError::Rpc(Box::new(e))
    }

    /// Follows every unsettled intent from the floor up.
    async fn follow(&mut self) -> Result<bool, DeliverError> {
        let (chain_id, signer) = (self.dest.chain_id, self.signer);
        let intents = store_blocking(|| self.store.intents_from(chain_id, signer, self.floor))?;
        if intents.iter().all(|(_, i)| i.is_settled()) {
            self.floor = intents.last().map_or(self.floor, |(n, _)| n + 1).max(self.floor);
            return Ok(false);
        }
        let rpc = self.dest.rpc.clone();
        let latest = chain::nonce(&rpc, signer, "latest").await.map_err(Self::rpc_err)?;
        let head = rpc.block_number().await.map_err(Self::rpc_err)?;
        let mut market: Option<Market> = None;
        let mut busy = false;
        for (nonce, intent) in intents {
            match intent.state {
                IntentState::Dropped | IntentState::Confirmed => continue,
                IntentState::Mined => busy |= self.follow_mined(nonce, intent, head).await?,
                IntentState::Signed | IntentState::Sent => {
                    if let Some(r) = self.find_receipt(&intent).await? {
                        self.mined(nonce, intent, r).await?;
                        busy = true;
                    } else if nonce < latest {
                        // Used by a transaction ferry did not sign, and none of ours landed.
                        self.dropped(nonce, intent)?;
                        busy = true;
                    } else if intent.state == IntentState::Signed {
                        busy |= self.broadcast(nonce, intent).await?;
                    } else if intent.sent_at.is_some_and(|t| t + self.dest.fees.bump_after.as_secs() <= now())
                    {
                        if market.is_none() {
                            market = Some(
                                chain::market(&rpc, self.dest.fees.legacy).await.map_err(Self::rpc_err)?,
                            );
                        }
                        busy |= self
                            .bump(
                                nonce,
                                intent,
                                market.unwrap_or(Market { base_fee: 0, suggested_priority: 0 }),
                            )
                            .await?;
                    }
                }
            }
        }
        let settled_below = store_blocking(|| self.store.intents_from(chain_id, signer, self.floor))?
            .into_iter()
            .find(|(_, i)| !i.is_settled());
        self.floor = settled_below.map_or(self.next_nonce, |(n, _)| n);
        Ok(busy)
    }

    async fn find_receipt(&self, intent: &TxIntent) -> Result<Option<Receipt>, DeliverError> {
        for hash in intent.hashes().chain(intent.cancel) {
            if let Some(r) = chain::receipt(&self.dest.rpc, hash).await.map_err(Self::rpc_err)? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// A hash of the intent has a receipt: its deliveries wait for confirmations now. A reverted
    /// transaction is checked once more: already there (someone else delivered it) → skipped.
    async fn mined(
        &mut self,
        nonce: u64,
        mut intent: TxIntent,
        receipt: Receipt,
    ) -> Result<(), DeliverError> {
        let cancelled = intent.cancel == Some(receipt.tx_hash);
        let mut verdicts = Vec::new();
        for key in &intent.deliveries {
            let verdict = if cancelled {
                Some((DeliveryState::Failed, "cancelled by the operator".to_string()))
            } else if !receipt.success {
                match self.already_done(*key).await? {
                    Some(why) => Some((DeliveryState::Skipped, why)),
                    None => Some((
                        DeliveryState::Failed,
                        format!("transaction {} reverted on-chain", receipt.tx_hash),
                    )),
                }
            } else {
                None
            };
            verdicts.push((*key, verdict));
        }
        intent.state = IntentState::Mined;
        intent.mined = Some(receipt.tx_hash);
        self.save_intent(nonce, &intent, |key, d| {
            d.receipt = Some(receipt.clone());
            match verdicts.iter().find(|(k, _)| *k == key).and_then(|(_, v)| v.clone()) {
                Some((state, reason)) => {
                    d.state = state;
                    d.reason = Some(reason);
                    d.retryable = false;
                }
                None => d.state = DeliveryState::Sent,
            }
            true
        })
    }

    /// A mined intent: confirmed once deep enough, back to sending if its receipt disappeared.
    async fn follow_mined(
        &mut self,
        nonce: u64,
        mut intent: TxIntent,
        head: u64,
    ) -> Result<bool, DeliverError> {
        let Some(hash) = intent.mined else { return Ok(false) };
        let first = intent.deliveries.first().copied();
        let block = match first {
            Some(k) => store_blocking(|| self.store.write(|tx| tx.delivery(k)))?
                .and_then(|d| d.receipt)
                .map(|r| r.block),
            None => None,
        };
        let block = match block {
            Some(b) => b,
            None => match chain::receipt(&self.dest.rpc, hash).await.map_err(Self::rpc_err)? {
                Some(r) => r.block,
                None => 0,
            },
        };
        if head + 1 < block + self.dest.confirmations {
            return Ok(false);
        }
        let receipt = chain::receipt(&self.dest.rpc, hash).await.map_err(Self::rpc_err)?;
        match receipt {
            Some(r) if head + 1 >= r.block + self.dest.confirmations => {
                intent.state = IntentState::Confirmed;
                self.save_intent(nonce, &intent, |_, d| {
                    let sent = d.state == DeliveryState::Sent;
                    if sent {
                        d.state = DeliveryState::Confirmed;
                        d.receipt = Some(r.clone());
                    }
                    sent
                })?;
                Ok(true)
            }
            Some(_) => Ok(false),
            None => {
                // The block that held it was reorged away: the same bytes go out again.
                tracing::warn!(chain = %self.dest.chain, nonce, tx = %hash, "receipt gone in a reorg; sending again");
                intent.state = IntentState::Signed;
                intent.mined = None;
                self.save_intent(nonce, &intent, |_, d| {
                    let landed = matches!(d.state, DeliveryState::Sent | DeliveryState::Confirmed);
                    if landed {
                        d.state = DeliveryState::Sending;
                        d.receipt = None;
                    }
                    landed
                })?;
                Ok(true)
            }
        }
    }

    fn dropped(&mut self, nonce: u64, mut intent: TxIntent) -> Result<(), DeliverError> {
        tracing::warn!(
            chain = %self.dest.chain, nonce,
            "nonce used by a transaction ferry did not sign; its deliveries go back to pending"
        );
        intent.state = IntentState::Dropped;
        self.save_intent(nonce, &intent, |_, d| {
            let open = !d.state.is_final(d.retryable);
            if open {
                d.state = DeliveryState::Pending;
                d.reason = Some(format!("nonce {nonce} was used by another transaction"));
            }
            open
        })
    }

    /// Writes an intent and, in the same transaction, each of its deliveries that `change`
    /// modifies (it returns whether it did).
    fn save_intent(
        &self,
        nonce: u64,
        intent: &TxIntent,
        mut change: impl FnMut(DeliveryKey, &mut Delivery) -> bool,
    ) -> Result<(), DeliverError> {
        let key = self.intent_key(nonce);
        store_blocking(|| {
            self.store.write(|tx| {
                tx.put_intent(key, intent)?;
                for dkey in &intent.deliveries {
                    let Some(mut d) = tx.delivery(*dkey)? else { continue };
                    if change(*dkey, &mut d) {
                        d.updated_at = now();
                        tx.put_delivery(*dkey, &d)?;
                    }
                }
                Ok(())
            })
        })
    }

    /// Broadcasts an intent's current bytes. `Ok(true)` when the node has it now.
    async fn broadcast(&mut self, nonce: u64, mut intent: TxIntent) -> Result<bool, DeliverError> {
        let outcome = match chain::send_raw(&self.dest.rpc, &intent.raw).await {
            Ok(()) => SendOutcome::Accepted,
            Err(e) if e.kind == crate::engine::rpc::ErrorKind::Node => chain::classify_send(&e),
            Err(e) => return Err(Self::rpc_err(e)),
        };
        match outcome {
            SendOutcome::Accepted | SendOutcome::Underpriced | SendOutcome::BelowBaseFee => {
                if outcome != SendOutcome::Accepted {
                    tracing::info!(chain = %self.dest.chain, nonce, ?outcome, "broadcast not taken yet; will bump when due");
                }
                intent.state = IntentState::Sent;
                intent.sent_at = Some(now());
                self.status.send_modify(|s| s.sent_txs += 1);
                self.save_intent(nonce, &intent, |_, d| {
                    let sending = d.state == DeliveryState::Sending;
                    if sending {
                        d.state = DeliveryState::Sent;
                    }
                    sending
                })?;
                Ok(true)
            }
            // The next round finds its receipt, or finds the nonce used by another transaction.
            SendOutcome::NonceTooLow => Ok(false),
            SendOutcome::NonceTooHigh => {
                tracing::warn!(chain = %self.dest.chain, nonce, "node is missing lower nonces; re-broadcasting them");
                Err(DeliverError::Setup {
                    chain: self.dest.chain.clone(),
                    detail: format!("nonce {nonce} too high"),
                })
            }
            SendOutcome::InsufficientFunds(m) => {
                let problem = format!("paused: signer {} cannot pay ({m})", self.signer);
                tracing::error!(chain = %self.dest.chain, signer = %self.signer, "{problem}");
                self.status.send_modify(|s| s.problem = Some(problem.clone()));
                Err(DeliverError::Setup { chain: self.dest.chain.clone(), detail: problem })
            }
            SendOutcome::Refused(m) => Err(DeliverError::Setup {
                chain: self.dest.chain.clone(),
                detail: format!("broadcast refused: {m}"),
            }),
        }
    }

    /// Replaces a transaction that has waited `bump_after` with the same one at higher fees.
    async fn bump(&mut self, nonce: u64, mut intent: TxIntent, market: Market) -> Result<bool, DeliverError> {
        let old = Fees { max_fee: intent.max_fee_per_gas, priority: intent.max_priority_fee_per_gas };
        let Some(fees) = self.dest.fees.bumped(old, market) else {
            if !self.warned_cap {
                tracing::warn!(
                    chain = %self.dest.chain, nonce, cap_gwei = self.dest.fees.cap as f64 / 1e9,
                    base_fee_gwei = market.base_fee as f64 / 1e9,
                    "transaction not mined and already at the fee cap; waiting (cancel it with inspect-store, or raise the cap)"
                );
                self.warned_cap = true;
            }
            self.status.send_modify(|s| s.problem = Some(format!("nonce {nonce} waits at the fee cap")));
            return Ok(false);
        };
        let input = match TxEnvelope::decode_2718(&mut intent.raw.as_ref()) {
            Ok(envelope) => alloy::consensus::Transaction::input(&envelope).clone(),
            Err(e) => {
                return Err(DeliverError::Setup {
                    chain: self.dest.chain.clone(),
                    detail: format!("stored transaction at nonce {nonce} does not decode: {e}"),
                });
            }
        };
        let (raw, hash) = self.sign(nonce, intent.to, input, intent.gas_limit, fees)?;
        tracing::info!(
            chain = %self.dest.chain, nonce, old = %intent.hash, new = %hash,
            max_fee_gwei = fees.max_fee as f64 / 1e9, "replacing a transaction not mined in time"
        );
        intent.replaced.push(intent.hash);
        intent.hash = hash;
        intent.raw = raw;
        intent.max_fee_per_gas = fees.max_fee;
        intent.max_priority_fee_per_gas = fees.priority;
        intent.state = IntentState::Signed;
        intent.sent_at = None;
        self.save_intent(nonce, &intent, |_, d| {
            d.tx_hashes.push(hash);
            d.state = DeliveryState::Sending;
            true
        })?;
        self.status.send_modify(|s| s.bumps += 1);
        self.broadcast(nonce, intent).await
    }

    fn intent_key(&self, nonce: u64) -> IntentKey {
        IntentKey { chain: self.dest.chain_id, signer: self.signer, nonce }
    }

    fn sign(
        &self,
        nonce: u64,
        to: Address,
        input: Bytes,
        gas_limit: u64,
        fees: Fees,
    ) -> Result<(Bytes, B256), DeliverError> {
        let fail = |e: alloy::signers::Error| DeliverError::Setup {
            chain: self.dest.chain.clone(),
            detail: format!("signing failed: {e}"),
        };
        let envelope: TxEnvelope = match fees.priority {
            Some(priority) if !self.dest.fees.legacy => {
                let mut tx = TxEip1559 {
                    chain_id: self.dest.chain_id,
                    nonce,
                    gas_limit,
                    max_fee_per_gas: fees.max_fee,
                    max_priority_fee_per_gas: priority,
                    to: TxKind::Call(to),
                    value: U256::ZERO,
                    access_list: Default::default(),
                    input,
                };
                let sig = self.dest.signer.sign_transaction_sync(&mut tx).map_err(fail)?;
                tx.into_signed(sig).into()
            }
            _ => {
                let mut tx = TxLegacy {
                    chain_id: Some(self.dest.chain_id),
                    nonce,
                    gas_price: fees.max_fee,
                    gas_limit,
                    to: TxKind::Call(to),
                    value: U256::ZERO,
                    input,
                };
                let sig = self.dest.signer.sign_transaction_sync(&mut tx).map_err(fail)?;
                tx.into_signed(sig).into()
            }
        };
        Ok((envelope.encoded_2718().into(), *envelope.tx_hash()))
    }

    /// The item's fields as the target sees them: its decoded fields plus where it came from.
    fn item_fields(&self, item: ItemKey) -> Result<Option<Map<String, Value>>, DeliverError> {
        let ItemKey::Event(key) = item else { return Ok(None) };
        let Some(event) = store_blocking(|| self.store.event(key))? else { return Ok(None) };
        let mut fields = match event.fields.as_deref().map(serde_json::from_str::<Value>) {
            Some(Ok(Value::Object(map))) => map,
            _ => return Ok(None),
        };
        fields.entry("block_number").or_insert_with(|| Value::String(key.block.to_string()));
        fields.entry("log_index").or_insert_with(|| Value::String(key.log_index.to_string()));
        fields.entry("tx_hash").or_insert_with(|| Value::String(event.tx_hash.to_string()));
        fields.entry("address").or_insert_with(|| Value::String(event.address.to_checksum(None)));
        Ok(Some(fields))
    }

    /// Whether the configured view says the item is on the chain already.
    async fn already_done(&self, key: DeliveryKey) -> Result<Option<String>, DeliverError> {
        let Some(target) = self.dest.targets.get(&key.target) else { return Ok(None) };
        let Some(fields) = self.item_fields(key.item)? else { return Ok(None) };
        let Some(Ok(data)) = target.plan.done_view_calldata(&fields) else { return Ok(None) };
        let returned =
            chain::call(&self.dest.rpc, self.signer, target.to, &data).await.map_err(Self::rpc_err)?;
        Ok(match target.plan.judge_view(&returned, &fields) {
            Ok(true) => Some("already there (the view says so)".into()),
            _ => None,
        })
    }

    /// Starts due deliveries: check, simulate, sign with consecutive nonces, write the intents,
    /// broadcast them in nonce order.
    async fn start_due(&mut self) -> Result<bool, DeliverError> {
        if self.status.borrow().problem.as_deref().is_some_and(|p| p.starts_with("paused")) {
            return Ok(false);
        }
        let chain_id = self.dest.chain_id;
        let in_flight = store_blocking(|| self.store.intents_from(chain_id, self.signer, self.floor))?
            .iter()
            .filter(|(_, i)| i.is_open())
            .count();
        let mut room = self.opts.max_in_flight.saturating_sub(in_flight);
        if let Some(limit) = self.opts.limit {
            room = room.min(limit.saturating_sub(self.started));
        }
        if room == 0 {
            return Ok(false);
        }
        let now_s = now();
        let mut due: Vec<(DeliveryKey, Delivery)> =
            store_blocking(|| self.store.deliveries_in_state(chain_id, DeliveryState::Pending, usize::MAX))?
                .into_iter()
                .filter(|(k, _)| self.dest.targets.contains_key(&k.target))
                .take(room)
                .collect();
        if due.len() < room && !self.opts.dry_run {
            let failed = store_blocking(|| {
                self.store.deliveries_in_state(chain_id, DeliveryState::Failed, usize::MAX)
            })?;
            due.extend(
                failed
                    .into_iter()
                    .filter(|(k, d)| {
                        self.dest.targets.contains_key(&k.target)
                            && d.retryable
                            && d.next_attempt_at.is_none_or(|t| t <= now_s)
                    })
                    .take(room - due.len()),
            );
        }
        if due.is_empty() {
            return Ok(false);
        }
        let mut ready = Vec::new();
        let mut settled: Vec<(DeliveryKey, Delivery)> = Vec::new();
        for (key, mut delivery) in due {
            match self.prepare(key, &delivery).await {
                Ok(Ok(prepared)) => ready.push(prepared),
                Ok(Err((state, reason, retryable))) => {
                    delivery.state = state;
                    delivery.reason = Some(reason);
                    delivery.retryable = retryable;
                    delivery.attempts += 1;
                    delivery.updated_at = now_s;
                    if retryable {
                        let wait = crate::engine::rpc::backoff(
                            Duration::from_secs(2),
                            Duration::from_secs(600),
                            delivery.attempts,
                        );
                        delivery.next_attempt_at = Some(now_s + wait.as_secs().max(1));
                    }
                    settled.push((key, delivery));
                }
                Err(e) => {
                    self.save(&settled)?;
                    return Err(e);
                }
            }
        }
        if self.opts.dry_run {
            let lines: Vec<String> = ready
                .iter()
                .map(|p| {
                    let target = self.dest.targets.get(&p.key.target).map_or("?", |t| t.name.as_str());
                    format!("{target} {:?} to {} gas {}", p.key.item, p.to, p.gas_limit)
                })
                .chain(settled.iter().map(|(k, d)| {
                    format!("{:?}: {} ({})", k.item, d.state.as_str(), d.reason.as_deref().unwrap_or(""))
                }))
                .collect();
            self.started += lines.len().max(1);
            self.status.send_modify(|s| s.would_send.extend(lines));
            return Ok(false);
        }
        self.save(&settled)?;
        if ready.is_empty() {
            return Ok(!settled.is_empty());
        }
        let market = chain::market(&self.dest.rpc, self.dest.fees.legacy).await.map_err(Self::rpc_err)?;
        let fees = self.dest.fees.fresh(market);
        if fees.max_fee < market.base_fee {
            self.status.send_modify(|s| s.problem = Some(format!(
                "the fee cap ({} gwei) is below the base fee ({} gwei); sending anyway, waiting to be mined",
                self.dest.fees.cap as f64 / 1e9,
                market.base_fee as f64 / 1e9
            )));
        }
        let mut intents = Vec::new();
        for p in ready {
            let nonce = self.next_nonce + intents.len() as u64;
            let (raw, hash) = self.sign(nonce, p.to, p.data.clone(), p.gas_limit, fees)?;
            let intent = TxIntent {
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
            };
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
            intents.push((nonce, intent, p.key, d));
        }
        // Write ahead: the intents exist before any of them is broadcast.
        let signer = self.signer;
        store_blocking(|| {
            self.store.write(|tx| {
                for (nonce, intent, key, d) in &intents {
                    tx.put_intent(IntentKey { chain: chain_id, signer, nonce: *nonce }, intent)?;
                    tx.put_delivery(*key, d)?;
                }
                Ok(())
            })
        })?;
        self.next_nonce += intents.len() as u64;
        self.started += intents.len();
        for (nonce, intent, _, _) in intents {
            if !self.broadcast(nonce, intent).await? {
                break;
            }
        }
        Ok(true)
    }

    fn save(&self, settled: &[(DeliveryKey, Delivery)]) -> Result<(), DeliverError> {
        if settled.is_empty() {
            return Ok(());
        }
        store_blocking(|| {
            self.store.write(|tx| {
                for (k, d) in settled {
                    tx.put_delivery(*k, d)?;
                }
                Ok(())
            })
        })
    }

    /// Checks a due delivery and simulates it. `Ok(Err((state, reason, retryable)))` settles it
    /// without a transaction: skipped (already there) or failed.
    #[allow(clippy::type_complexity)]
    async fn prepare(
        &self,
        key: DeliveryKey,
        delivery: &Delivery,
    ) -> Result<Result<Prepared, (DeliveryState, String, bool)>, DeliverError> {
        let Some(target) = self.dest.targets.get(&key.target) else {
            return Ok(Err((DeliveryState::Failed, "target not configured".into(), true)));
        };
        let Some(fields) = self.item_fields(key.item)? else {
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
            Err(e) if e.kind == crate::engine::rpc::ErrorKind::Node => {
                let m = e.message.to_ascii_lowercase();
                if m.contains("insufficient funds") {
                    let problem =
                        format!("paused: signer {} cannot pay for gas ({})", self.signer, e.message);
                    self.status.send_modify(|s| s.problem = Some(problem.clone()));
                    return Err(DeliverError::Setup { chain: self.dest.chain.clone(), detail: problem });
                }
                Ok(Err((DeliveryState::Failed, format!("simulation failed: {}", e.message), true)))
            }
            Err(e) => Err(Self::rpc_err(e)),
        }
    }
}

/// Runs one worker per destination until each is done or `cancel` fires; statuses by chain.
pub async fn run_all(
    dests: Vec<Destination>,
    store: Arc<Store>,
    opts: Options,
    cancel: CancellationToken,
) -> BTreeMap<String, ChainStatus> {
    let mut tasks = tokio::task::JoinSet::new();
    for dest in dests {
        let (store, opts, cancel) = (store.clone(), opts.clone(), cancel.clone());
        tasks.spawn(async move {
            let name = dest.chain.clone();
            let mut failures = 0;
            let mut dest = dest;
            // Start-up itself retries: a chain whose RPC is down keeps trying until cancelled.
            let worker = loop {
                match Worker::start(dest, store.clone(), opts.clone()).await {
                    Ok((w, _)) => break Some(w),
                    Err((d, e)) => {
                        failures += 1;
                        tracing::warn!(chain = %name, error = %e, "cannot start delivery to this chain");
                        dest = d;
                        let wait = crate::engine::rpc::backoff(
                            Duration::from_millis(500),
                            Duration::from_secs(30),
                            failures,
                        );
                        tokio::select! {
                            _ = cancel.cancelled() => {
                                break None;
                            }
                            _ = tokio::time::sleep(wait) => {}
                        }
                        if cancel.is_cancelled() {
                            break None;
                        }
                    }
                }
            };
            let status = match worker {
                Some(w) => w.run(cancel).await,
                None => ChainStatus {
                    chain: name.clone(),
                    problem: Some("RPC unreachable".into()),
                    ..Default::default()
                },
            };
            (name, status)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok((name, status)) = joined {
            out.insert(name, status);
        }
    }
    out
}
