//! Following what is in flight on one chain, once per tick: receipts (mined), depth (confirmed),
//! receipts that disappear (reorged: the same bytes go out again), nonces used by someone else
//! (dropped: the deliveries go back to pending, only on the evidence of `evidence.rs`),
//! broadcasts of signed intents, and fee bumps.
//!
//! A tick reads the unsettled intents once, asks the chain what it needs concurrently, decides,
//! writes every change in one transaction, and only then broadcasts (write-ahead, also for bumps).

use alloy::primitives::B256;
use futures_util::{StreamExt, stream};

use super::DeliverError;
use super::chain::{self, SendOutcome};
use super::evidence::{self, Located, UsedNonce};
use super::fees::{Fees, Market};
use super::sign::{self, Unsigned};
use super::worker::{Problem, Update, Worker, store_blocking};
use crate::engine::rpc::ErrorKind;
use crate::store::now;
use crate::store::records::{DeliveryState, IntentState, Receipt, TxIntent};

/// Receipt lookups in flight at once.
const CONCURRENCY: usize = 16;

/// Blocks located per tick for nonces used without a visible receipt (each locates every
/// transaction of the signer in its block, so a lagging node's whole block costs one).
const SEARCHES_PER_TICK: usize = 4;

/// How long a used nonce's receipt may be missing before the block that used it is looked for.
const LOCATE_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// How often sent, unmined transactions are broadcast again (the very same bytes), and how many.
const REBROADCAST_EVERY: std::time::Duration = std::time::Duration::from_secs(10);
const REBROADCAST_MAX: usize = 64;

/// How long nonces may wait for their receipts before the chain's status says so.
const UNSEEN_WARN_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

impl Worker {
    /// Follows every unsettled intent from the floor up. `Ok(true)` when something changed.
    pub(super) async fn follow(&mut self) -> Result<bool, DeliverError> {
        let (chain_id, signer) = (self.dest.chain_id, self.signer);
        let mut intents = store_blocking(|| self.store.intents_from(chain_id, signer, self.floor))?;
        if intents.iter().all(|(_, i)| i.is_settled()) {
            // Never above the next nonce: after a resync, dropped intents sit at nonces that are
            // signed again, and those must be followed.
            self.floor =
                intents.last().map_or(self.floor, |(n, _)| n + 1).max(self.floor).min(self.next_nonce);
            self.in_flight = 0;
            return Ok(false);
        }
        let rpc = self.dest.rpc.clone();
        let latest = chain::nonce(&rpc, signer, "latest").await.map_err(Self::rpc_err)?;
        let head = rpc.block_number().await.map_err(Self::rpc_err)?;

        // Only a nonce below the chain's count can have a receipt.
        let lookups: Vec<usize> =
            (0..intents.len()).filter(|&i| intents[i].1.is_open() && intents[i].0 < latest).collect();
        let found: Vec<_> = lookups.iter().map(|&i| self.find_receipt(&intents[i].1)).collect();
        let found: Vec<Result<Option<Receipt>, DeliverError>> =
            stream::iter(found).buffered(CONCURRENCY).collect().await;
        let mut receipts = std::collections::HashMap::new();
        for (&i, r) in lookups.iter().zip(found) {
            receipts.insert(i, r?);
        }

        // Nonces the chain counts as used with no receipt for any of ferry's hashes: look for the
        // transaction that used each before deciding anything (see `evidence.rs`), lowest first.
        // A receipt is most often just a moment late: the search starts only when it stays
        // missing for `LOCATE_AFTER`.
        let mut located = Located::new();
        let mut searches = 0;
        let mut used = std::collections::HashMap::new();
        let now_i = std::time::Instant::now();
        let mut unseen = std::collections::HashMap::new();
        for &i in &lookups {
            if receipts.get(&i).is_some_and(Option::is_some) {
                continue;
            }
            let (nonce, intent) = &intents[i];
            let since = *self.unseen_at.get(nonce).unwrap_or(&now_i);
            unseen.insert(*nonce, since);
            if since.elapsed() >= LOCATE_AFTER && !located.contains_key(nonce) && searches < SEARCHES_PER_TICK
            {
                searches += 1;
                evidence::locate(&rpc, signer, *nonce, head, &mut located).await.map_err(Self::rpc_err)?;
            }
            let found = evidence::evidence_of(*nonce, &located, intent.hashes().chain(intent.cancel));
            used.insert(i, evidence::judge(*nonce, found, head, self.dest.confirmations));
        }
        self.unseen_at = unseen;

        // Mined intents deep enough: is the receipt still there?
        let mut deep = Vec::new();
        for (i, (nonce, intent)) in intents.iter().enumerate() {
            if intent.state != IntentState::Mined {
                continue;
            }
            let (block, _) = match self.mined_at.get(nonce) {
                Some(at) => *at,
                None => {
                    let at = self.mined_block(intent).await?;
                    self.mined_at.insert(*nonce, at);
                    at
                }
            };
            if head + 1 >= block + self.dest.confirmations {
                deep.push(i);
            }
        }
        let mined: Vec<_> = deep.iter().map(|&i| intents[i].1.mined.unwrap_or(intents[i].1.hash)).collect();
        let rechecked: Vec<_> = mined.into_iter().map(|hash| chain::receipt(&rpc, hash)).collect();
        let rechecked: Vec<Result<Option<Receipt>, _>> =
            stream::iter(rechecked).buffered(CONCURRENCY).collect().await;
        let mut rechecks = std::collections::HashMap::new();
        for (&i, r) in deep.iter().zip(rechecked) {
            rechecks.insert(i, r.map_err(Self::rpc_err)?);
        }
        // A receipt that is not there proves a reorg only when the block it was in is no longer
        // the chain's block at that height; a node that lacks the block (lagging) or still has
        // it (its receipt index behind) proves nothing.
        let mut gone = std::collections::HashSet::new();
        for (&i, r) in &rechecks {
            if r.is_some() {
                continue;
            }
            let Some(&(block, hash)) = self.mined_at.get(&intents[i].0) else { continue };
            let header =
                rpc.header(crate::engine::rpc::BlockId::Number(block)).await.map_err(Self::rpc_err)?;
            if header.is_some_and(|h| h.hash != hash) {
                gone.insert(i);
            }
        }

        // Decide, in nonce order.
        let mut updates: Vec<(usize, Update)> = Vec::new();
        let mut to_broadcast: Vec<usize> = Vec::new();
        let mut bumps: Vec<usize> = Vec::new();
        let mut waiting: Vec<String> = Vec::new();
        for (i, (nonce, intent)) in intents.iter().enumerate() {
            match intent.state {
                IntentState::Dropped | IntentState::Confirmed => {}
                IntentState::Mined => match rechecks.get(&i) {
                    None => {}
                    Some(Some(r)) if head + 1 >= r.block + self.dest.confirmations => {
                        updates.push((i, Update::Confirmed(r.clone())));
                    }
                    // Re-mined in another block of a new branch: wait for that one's depth.
                    Some(Some(r)) => {
                        self.mined_at.insert(*nonce, (r.block, r.block_hash));
                    }
                    Some(None) if gone.contains(&i) => {
                        tracing::warn!(chain = %self.dest.chain, nonce, tx = ?intent.mined, "receipt gone in a reorg; sending again");
                        updates.push((i, Update::Reorged));
                        to_broadcast.push(i);
                    }
                    Some(None) => waiting.push(format!(
                        "nonce {nonce} mined, its receipt not visible on the node that answered"
                    )),
                },
                IntentState::Signed | IntentState::Sent => match receipts.get(&i) {
                    Some(Some(r)) => {
                        let verdicts = self.verdicts(intent, r).await?;
                        updates.push((i, Update::Mined { receipt: r.clone(), verdicts }));
                    }
                    Some(None) => match used.remove(&i) {
                        Some(UsedNonce::TakenByOther(reason)) => {
                            tracing::warn!(chain = %self.dest.chain, nonce, "{reason}; its deliveries go back to pending");
                            updates.push((i, Update::Dropped(reason)));
                        }
                        Some(UsedNonce::Wait(reason)) => waiting.push(reason),
                        None => {}
                    },
                    // Due for a replacement: sent (or refused under the base fee) `bump_after` ago.
                    None if intent
                        .sent_at
                        .is_some_and(|t| t + self.dest.fees.bump_after.as_secs() <= now()) =>
                    {
                        bumps.push(i)
                    }
                    None if intent.state == IntentState::Signed => to_broadcast.push(i),
                    None => {}
                },
            }
        }

        self.note_unseen(&waiting);

        // Sent and not mined: the same bytes again now and then, lowest nonces first, for a node
        // that lost them (a restart, a reorg that dropped them) — else they wait for `bump_after`.
        if self.rebroadcast_at.elapsed() >= REBROADCAST_EVERY {
            self.rebroadcast_at = std::time::Instant::now();
            let again = (0..intents.len())
                .filter(|&i| {
                    intents[i].1.state == IntentState::Sent
                        && intents[i].0 >= latest
                        && !bumps.contains(&i)
                        && !to_broadcast.contains(&i)
                })
                .take(REBROADCAST_MAX);
            to_broadcast.extend(again.collect::<Vec<_>>());
        }

        // Apply the decisions to the intents themselves.
        for (i, update) in &updates {
            let (nonce, intent) = &mut intents[*i];
            match update {
                Update::Confirmed(_) => {
                    intent.state = IntentState::Confirmed;
                    self.mined_at.remove(nonce);
                }
                Update::Mined { receipt, .. } => {
                    intent.state = IntentState::Mined;
                    intent.mined = Some(receipt.tx_hash);
                    self.mined_at.insert(*nonce, (receipt.block, receipt.block_hash));
                }
                Update::Reorged => {
                    intent.state = IntentState::Signed;
                    intent.mined = None;
                    self.mined_at.remove(nonce);
                }
                Update::Dropped(_) => intent.state = IntentState::Dropped,
                Update::None | Update::Sent | Update::Bumped(_) => {}
            }
        }

        // Replacements: signed now, written with everything else before any broadcast.
        let mut at_cap = false;
        if !bumps.is_empty() {
            let market = chain::market(&rpc, self.dest.fees.legacy).await.map_err(Self::rpc_err)?;
            for i in bumps {
                let (nonce, intent) = &mut intents[i];
                match self.bump(*nonce, intent, market)? {
                    Some(hash) => {
                        updates.push((i, Update::Bumped(hash)));
                        to_broadcast.push(i);
                    }
                    // At the cap: the same bytes again, in case the node dropped them or
                    // refused them under a base fee that has since fallen ("already known" is fine).
                    None => {
                        at_cap = true;
                        to_broadcast.push(i);
                    }
                }
            }
        }
        if !at_cap && self.status.borrow().problem.as_ref().is_some_and(Problem::is_about_fees) {
            self.status.send_modify(|s| s.problem = None);
        }
        // Busy when something changed; broadcasts that only repeat (at the cap, under the base
        // fee) are not work, or a stuck chain would be polled without rest.
        let changed = !updates.is_empty();
        {
            let rows: Vec<_> = updates.iter().map(|(i, u)| (intents[*i].0, &intents[*i].1, u)).collect();
            self.save(&rows)?;
        }

        to_broadcast.sort_unstable();
        to_broadcast.dedup();
        let result = self.broadcast_all(&mut intents, &to_broadcast, latest).await;

        self.floor = intents.iter().find(|(_, i)| !i.is_settled()).map_or(self.next_nonce, |(n, _)| *n);
        self.in_flight = intents.iter().filter(|(_, i)| i.is_open()).count();
        result.map(|sent| changed || sent > 0)
    }

    /// Nonces used without a visible receipt wait; when they have waited long, the chain's status
    /// says so (and stops saying so once none waits).
    fn note_unseen(&mut self, waiting: &[String]) {
        let Some(first) = waiting.first() else {
            self.unseen_since = None;
            if matches!(self.status.borrow().problem, Some(Problem::UnseenNonces { .. })) {
                self.status.send_modify(|s| s.problem = None);
            }
            return;
        };
        let since = *self.unseen_since.get_or_insert_with(std::time::Instant::now);
        tracing::debug!(chain = %self.dest.chain, waiting = waiting.len(), "{first}");
        if since.elapsed() >= UNSEEN_WARN_AFTER && self.status.borrow().problem.is_none() {
            let problem = Problem::UnseenNonces { count: waiting.len(), first: first.clone() };
            tracing::warn!(chain = %self.dest.chain, "{problem}");
            self.status.send_modify(|s| s.problem = Some(problem));
        }
    }

    /// The first receipt among every hash the nonce has had (the operator's cancellation included).
    async fn find_receipt(&self, intent: &TxIntent) -> Result<Option<Receipt>, DeliverError> {
        for hash in intent.hashes().chain(intent.cancel.filter(|c| *c != intent.hash)) {
            if let Some(r) = chain::receipt(&self.dest.rpc, hash).await.map_err(Self::rpc_err)? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }

    /// The block (number, hash) a mined intent landed in: from a delivery's stored receipt, else
    /// from the chain (block 0 with no hash when not found, which the depth check then rechecks
    /// at once).
    async fn mined_block(&self, intent: &TxIntent) -> Result<(u64, B256), DeliverError> {
        if let Some(k) = intent.deliveries.first().copied() {
            let stored = store_blocking(|| self.store.delivery(k))?;
            if let Some(r) = stored.and_then(|d| d.receipt) {
                return Ok((r.block, r.block_hash));
            }
        }
        let Some(hash) = intent.mined else { return Ok((0, B256::ZERO)) };
        let receipt = chain::receipt(&self.dest.rpc, hash).await.map_err(Self::rpc_err)?;
        Ok(receipt.map_or((0, B256::ZERO), |r| (r.block, r.block_hash)))
    }

    /// What a receipt settles at once: a cancellation fails its deliveries; a reverted call is
    /// checked once more — already there (someone else delivered it) is skipped, else failed.
    async fn verdicts(
        &self,
        intent: &TxIntent,
        receipt: &Receipt,
    ) -> Result<Vec<(crate::store::keys::DeliveryKey, DeliveryState, String)>, DeliverError> {
        let mut out = Vec::new();
        if intent.cancel == Some(receipt.tx_hash) {
            for key in &intent.deliveries {
                out.push((*key, DeliveryState::Failed, "cancelled by the operator".to_string()));
            }
        } else if !receipt.success {
            for key in &intent.deliveries {
                let verdict = match self.already_done(*key).await? {
                    Some(why) => (DeliveryState::Skipped, why),
                    None => {
                        let reason = format!("transaction {} reverted on-chain", receipt.tx_hash);
                        tracing::warn!(chain = %self.dest.chain, item = %key.item, reason, "delivery failed for good");
                        self.status.send_modify(|s| {
                            s.failures.push(format!("{}/{}: {reason}", self.dest.chain, key.item))
                        });
                        (DeliveryState::Failed, reason)
                    }
                };
                out.push((*key, verdict.0, verdict.1));
            }
        }
        Ok(out)
    }

    /// Re-signs an intent not mined after `bump_after` at the same nonce with higher fees.
    /// `None` at the cap: it waits, and says so once.
    fn bump(
        &mut self,
        nonce: u64,
        intent: &mut TxIntent,
        market: Market,
    ) -> Result<Option<alloy::primitives::B256>, DeliverError> {
        let old = Fees { max_fee: intent.max_fee_per_gas, priority: intent.max_priority_fee_per_gas };
        let Some(fees) = self.dest.fees.bumped(old, market) else {
            if !self.warned_cap {
                tracing::warn!(
                    chain = %self.dest.chain, nonce, cap_gwei = self.dest.fees.cap as f64 / 1e9,
                    base_fee_gwei = market.base_fee as f64 / 1e9,
                    "transaction not mined and already at the fee cap; waiting (cancel it with `ferry inspect-store cancel`, or raise the cap)"
                );
                self.warned_cap = true;
            }
            let cap = self.dest.fees.cap;
            let problem = if market.base_fee > old.max_fee {
                Problem::BaseFeeAboveCap { nonce, base_fee: market.base_fee, cap }
            } else {
                Problem::AtFeeCap { nonce, cap }
            };
            self.status.send_modify(|s| s.problem = Some(problem));
            return Ok(None);
        };
        let input = sign::input_of(&intent.raw).map_err(|e| DeliverError::Setup {
            chain: self.dest.chain.clone(),
            detail: format!("stored transaction at nonce {nonce} does not decode: {e}"),
        })?;
        let unsigned = Unsigned { nonce, to: intent.to, input, gas_limit: intent.gas_limit, fees };
        let (raw, hash) = self.sign(unsigned)?;
        tracing::info!(
            chain = %self.dest.chain, nonce, old = %intent.hash, new = %hash,
            max_fee_gwei = fees.max_fee as f64 / 1e9, "replacing a transaction not mined in time"
        );
        intent.replaced.push(intent.hash);
        if intent.cancel == Some(intent.hash) {
            intent.cancel = Some(hash);
        }
        intent.hash = hash;
        intent.raw = raw;
        intent.max_fee_per_gas = fees.max_fee;
        intent.max_priority_fee_per_gas = fees.priority;
        intent.state = IntentState::Signed;
        intent.sent_at = None;
        self.status.send_modify(|s| s.bumps += 1);
        Ok(Some(hash))
    }

    pub(super) fn sign(
        &self,
        tx: Unsigned,
    ) -> Result<(alloy::primitives::Bytes, alloy::primitives::B256), DeliverError> {
        sign::sign(&self.dest.signer, self.dest.chain_id, self.dest.fees.legacy, tx).map_err(|e| {
            DeliverError::Setup { chain: self.dest.chain.clone(), detail: format!("signing failed: {e}") }
        })
    }

    /// Broadcasts the intents at `which` (indexes into `intents`, in nonce order), then writes
    /// those a node took as sent; how many that was. Stops at the first answer that needs the
    /// whole chain to wait.
    pub(super) async fn broadcast_all(
        &mut self,
        intents: &mut [(u64, TxIntent)],
        which: &[usize],
        latest: u64,
    ) -> Result<usize, DeliverError> {
        let mut sent = Vec::new();
        let mut refused = Vec::new();
        let mut result = Ok(());
        for &i in which {
            let nonce = intents[i].0;
            let mut outcome = self.send(&intents[i].1).await;
            if matches!(outcome, Ok(SendOutcome::NonceTooHigh)) {
                // The node lost lower nonces (it restarted, or dropped them): give it ours again.
                tracing::warn!(chain = %self.dest.chain, nonce, "node is missing lower nonces; broadcasting them again");
                let lower: Vec<(u64, alloy::primitives::Bytes)> = intents
                    .iter()
                    .filter(|(n, t)| *n >= latest && *n < nonce && t.is_open())
                    .map(|(n, t)| (*n, t.raw.clone()))
                    .collect();
                for (n, raw) in lower {
                    if let Err(e) = chain::send_raw(&self.dest.rpc, &raw).await {
                        tracing::debug!(chain = %self.dest.chain, nonce = n, error = %e, "re-broadcast");
                    }
                }
                outcome = self.send(&intents[i].1).await;
            }
            match outcome {
                Ok(SendOutcome::Accepted | SendOutcome::Underpriced) => {
                    let intent = &mut intents[i].1;
                    if intent.state == IntentState::Signed {
                        intent.state = IntentState::Sent;
                        intent.sent_at = Some(now());
                        self.status.send_modify(|s| s.sent_txs += 1);
                        sent.push(i);
                    }
                }
                // Not in the node's pool: it stays signed and goes out again each round; from
                // the first refusal on, `bump_after` counts towards a replacement.
                Ok(SendOutcome::BelowBaseFee) => {
                    let intent = &mut intents[i].1;
                    if intent.sent_at.is_none() {
                        intent.sent_at = Some(now());
                        refused.push(i);
                    }
                }
                // The next round finds its receipt, or finds the nonce used by another transaction.
                Ok(SendOutcome::NonceTooLow) => {}
                Ok(SendOutcome::NonceTooHigh) => {
                    result = Err(DeliverError::Setup {
                        chain: self.dest.chain.clone(),
                        detail: format!(
                            "nonce {nonce} too high for the node even after re-broadcasting lower ones"
                        ),
                    });
                    break;
                }
                Ok(SendOutcome::InsufficientFunds(m)) => {
                    result = Err(self.pause(format!("signer {} cannot pay ({m})", self.signer)));
                    break;
                }
                Ok(SendOutcome::Refused(m)) => {
                    result = Err(DeliverError::Setup {
                        chain: self.dest.chain.clone(),
                        detail: format!("broadcast of nonce {nonce} refused: {m}"),
                    });
                    break;
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let rows: Vec<_> = sent
            .iter()
            .map(|&i| (intents[i].0, &intents[i].1, &Update::Sent))
            .chain(refused.iter().map(|&i| (intents[i].0, &intents[i].1, &Update::None)))
            .collect();
        self.save(&rows)?;
        result.map(|()| sent.len())
    }

    async fn send(&self, intent: &TxIntent) -> Result<SendOutcome, DeliverError> {
        match chain::send_raw(&self.dest.rpc, &intent.raw).await {
            Ok(()) => Ok(SendOutcome::Accepted),
            Err(e) if e.kind == ErrorKind::Node => {
                let outcome = chain::classify_send(&e);
                if matches!(outcome, SendOutcome::Underpriced | SendOutcome::BelowBaseFee) {
                    tracing::debug!(chain = %self.dest.chain, ?outcome, "broadcast not taken yet; will bump when due");
                }
                Ok(outcome)
            }
            Err(e) => Err(Self::rpc_err(e)),
        }
    }
}
