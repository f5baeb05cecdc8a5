//! Following what is in flight on one chain, once per tick: receipts (mined), depth (confirmed),
//! receipts that disappear (reorged: the same bytes go out again), nonces used by someone else
//! (dropped: the deliveries go back to pending, only on the evidence of `evidence.rs`),
//! broadcasts of signed intents, and fee bumps.
//!
//! A tick gathers (reads the unsettled intents once, asks the chain what it needs concurrently),
//! decides (`follow/decide.rs`, a pure function of what was gathered), and applies: every change
//! written in one transaction, and only then broadcasts (write-ahead, also for bumps).

mod decide;

use alloy::primitives::B256;
use futures_util::{StreamExt, stream};

use self::decide::{Bump, Followed, Plan, Round, Seen, StatusChange};
use super::DeliverError;
use super::chain::{self, SendOutcome};
use super::evidence::{self, Located};
use super::sign::{self, Unsigned};
use super::worker::{Update, Worker, store_blocking};
use crate::engine::rpc::ErrorKind;
use crate::store::now;
use crate::store::records::{IntentState, Receipt, TxIntent};

/// Receipt lookups in flight at once.
const CONCURRENCY: usize = 16;

/// Blocks located per tick for nonces used without a visible receipt (each locates every
/// transaction of the signer in its block, so a lagging node's whole block costs one).
const SEARCHES_PER_TICK: usize = 4;

/// How long a used nonce's receipt may be missing before the block that used it is looked for.
const LOCATE_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// How often sent, unmined transactions are broadcast again (the very same bytes).
const REBROADCAST_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl Worker {
    /// Follows every unsettled intent from the floor up. `Ok(true)` when something changed.
    pub(super) async fn follow(&mut self) -> Result<bool, DeliverError> {
        let (chain_id, signer) = (self.dest.chain_id, self.signer);
        let intents = store_blocking(|| self.store.intents_from(chain_id, signer, self.floor))?;
        if intents.iter().all(|(_, i)| i.is_settled()) {
            // Never above the next nonce: after a resync, dropped intents sit at nonces that are
            // signed again, and those must be followed.
            self.floor =
                intents.last().map_or(self.floor, |(n, _)| n + 1).max(self.floor).min(self.next_nonce);
            self.in_flight = 0;
            return Ok(false);
        }
        let (round, followed) = self.gather(intents).await?;
        let plan = decide::follow(&followed, &round);
        self.apply(followed, plan, round).await
    }

    /// What the chain shows about each unsettled intent: receipts of the open ones below the
    /// signer's mined count, the transaction that used a nonce whose receipt stays missing, the
    /// receipts of mined ones deep enough, and for a reverted call whether it is there anyway.
    async fn gather(
        &mut self,
        intents: Vec<(u64, TxIntent)>,
    ) -> Result<(Round, Vec<Followed>), DeliverError> {
        let (rpc, signer) = (self.dest.rpc.clone(), self.signer);
        let latest = chain::nonce(&rpc, signer, "latest").await.map_err(Self::rpc_err)?;
        let head = rpc.block_number().await.map_err(Self::rpc_err)?;
        let mut seen = vec![Seen::Nothing; intents.len()];

        // Only a nonce below the chain's count can have a receipt.
        let lookups: Vec<usize> =
            (0..intents.len()).filter(|&i| intents[i].1.is_open() && intents[i].0 < latest).collect();
        let found: Vec<_> = lookups.iter().map(|&i| self.find_receipt(&intents[i].1)).collect();
        let found: Vec<Result<Option<Receipt>, DeliverError>> =
            stream::iter(found).buffered(CONCURRENCY).collect().await;
        for (&i, r) in lookups.iter().zip(found) {
            if let Some(receipt) = r? {
                seen[i] = Seen::Receipt { receipt, already_done: Vec::new() };
            }
        }

        // Nonces the chain counts as used with no receipt for any of ferry's hashes: look for the
        // transaction that used each (see `evidence.rs`), lowest first. A receipt is most often
        // just a moment late: the search starts only when it stays missing for `LOCATE_AFTER`.
        let mut located = Located::new();
        let mut searches = 0;
        let now_i = std::time::Instant::now();
        let mut unseen = std::collections::HashMap::new();
        for &i in &lookups {
            if matches!(seen[i], Seen::Receipt { .. }) {
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
            // Judged on what was located up to this nonce, lowest first.
            let ours = intent.hashes().chain(intent.cancel);
            seen[i] = Seen::NoReceipt(evidence::evidence_of(*nonce, &located, ours));
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
            if decide::deep(head, block, self.dest.confirmations) {
                deep.push(i);
            }
        }
        let mined: Vec<_> = deep.iter().map(|&i| intents[i].1.mined.unwrap_or(intents[i].1.hash)).collect();
        let rechecked: Vec<_> = mined.into_iter().map(|hash| chain::receipt(&rpc, hash)).collect();
        let rechecked: Vec<Result<Option<Receipt>, _>> =
            stream::iter(rechecked).buffered(CONCURRENCY).collect().await;
        let mut missing = Vec::new();
        for (&i, r) in deep.iter().zip(rechecked) {
            match r.map_err(Self::rpc_err)? {
                // Where the receipt is now: mined again in another block of a new branch, its
                // depth is counted from there.
                Some(r) => {
                    self.mined_at.insert(intents[i].0, (r.block, r.block_hash));
                    seen[i] = Seen::StillMined(r);
                }
                None => missing.push(i),
            }
        }
        // A receipt that is not there proves a reorg only when the block it was in is no longer
        // the chain's block at that height; a node that lacks the block (lagging) or still has
        // it (its receipt index behind) proves nothing.
        for i in missing {
            seen[i] = Seen::ReceiptNotVisible;
            let Some(&(block, hash)) = self.mined_at.get(&intents[i].0) else { continue };
            let header =
                rpc.header(crate::engine::rpc::BlockId::Number(block)).await.map_err(Self::rpc_err)?;
            if header.is_some_and(|h| h.hash != hash) {
                seen[i] = Seen::BlockReplaced;
            }
        }

        // A reverted call (not the operator's cancellation) may be there anyway: someone else
        // delivered it first. Each of its deliveries is checked once more.
        for (i, (_, intent)) in intents.iter().enumerate() {
            let Seen::Receipt { receipt, already_done } = &mut seen[i] else { continue };
            if intent.cancel == Some(receipt.tx_hash) || receipt.success {
                continue;
            }
            for key in &intent.deliveries {
                already_done.push(self.already_done(*key).await?);
            }
        }

        let round = Round {
            latest,
            head,
            confirmations: self.dest.confirmations,
            bump_after: self.dest.fees.bump_after.as_secs(),
            now: now(),
            rebroadcast: self.rebroadcast_at.elapsed() >= REBROADCAST_EVERY,
        };
        let followed = intents
            .into_iter()
            .zip(seen)
            .map(|((nonce, intent), seen)| Followed { nonce, intent, seen })
            .collect();
        Ok((round, followed))
    }

    /// Carries a round's plan out: the chain's status, replacements signed, every change written
    /// in one transaction, then the broadcasts.
    async fn apply(
        &mut self,
        followed: Vec<Followed>,
        plan: Plan,
        round: Round,
    ) -> Result<bool, DeliverError> {
        let Plan { mut updates, bumps, broadcast, waiting, failed } = plan;
        let mut intents: Vec<(u64, TxIntent)> = followed.into_iter().map(|f| (f.nonce, f.intent)).collect();
        for (key, reason) in &failed {
            let target = self.dest.targets.get(&key.target).map_or("?", |t| t.name.as_str());
            let delivery = format!("{target}/{}/{}", self.dest.chain, key.item);
            tracing::warn!(chain = %self.dest.chain, item = %key.item, delivery, reason, "delivery failed for good");
            self.status
                .send_modify(|s| s.failures.push(format!("{}/{}: {reason}", self.dest.chain, key.item)));
        }
        for (i, update) in &updates {
            let (nonce, intent) = &intents[*i];
            match update {
                Update::Reorged => {
                    tracing::warn!(chain = %self.dest.chain, nonce, tx = ?intent.mined, "receipt gone in a reorg; sending again");
                }
                Update::Dropped(reason) => {
                    tracing::warn!(chain = %self.dest.chain, nonce, "{reason}; its deliveries go back to pending");
                }
                _ => {}
            }
        }
        self.note_unseen(&waiting);
        if round.rebroadcast {
            self.rebroadcast_at = std::time::Instant::now();
        }

        // The intents themselves, and where their receipts are.
        for (i, update) in &updates {
            let (nonce, intent) = &mut intents[*i];
            decide::settle(intent, update);
            match update {
                Update::Mined { receipt, .. } => {
                    self.mined_at.insert(*nonce, (receipt.block, receipt.block_hash));
                }
                Update::Confirmed(_) => {
                    self.mined_at.remove(nonce);
                    self.confirmed_next = self.confirmed_next.max(Some(*nonce + 1));
                }
                Update::Reorged => {
                    self.mined_at.remove(nonce);
                }
                Update::Dropped(_)
                | Update::Forgotten(_)
                | Update::None
                | Update::Sent
                | Update::Bumped(_) => {}
            }
        }

        // Replacements: signed now, written with everything else before any broadcast.
        let mut at_cap = false;
        if !bumps.is_empty() {
            let market = chain::market(&self.dest.rpc, self.dest.fees.legacy).await.map_err(Self::rpc_err)?;
            for i in bumps {
                let (nonce, intent) = &mut intents[i];
                match decide::bump(&self.dest.fees, *nonce, intent, market) {
                    Bump::Replace(fees) => {
                        let hash = self.replace(*nonce, intent, fees)?;
                        updates.push((i, Update::Bumped(hash)));
                    }
                    Bump::AtCap(problem) => {
                        at_cap = true;
                        if !self.warned_cap {
                            tracing::warn!(
                                chain = %self.dest.chain, nonce, cap_gwei = self.dest.fees.cap as f64 / 1e9,
                                base_fee_gwei = market.base_fee as f64 / 1e9,
                                "transaction not mined and already at the fee cap; waiting (cancel it with `ferry inspect-store cancel`, or raise the cap)"
                            );
                            self.warned_cap = true;
                        }
                        self.status.send_modify(|s| s.problem = Some(problem));
                    }
                }
            }
        }
        // A transaction offering the cap that is not mined keeps the fee problem up between
        // bump rounds too (a round that bumps nothing is no sign the cap stopped mattering:
        // clearing it there left `push` exiting 4 with no problem at all).
        let cap = self.dest.fees.cap;
        let at_cap = at_cap || intents.iter().any(|(_, i)| i.is_open() && i.max_fee_per_gas >= cap);
        let change = decide::fee_status(self.status.borrow().problem.as_ref(), at_cap);
        if change == StatusChange::Clear {
            self.status.send_modify(|s| s.problem = None);
        }
        // Busy when something changed; broadcasts that only repeat (at the cap, under the base
        // fee) are not work, or a stuck chain would be polled without rest.
        let changed = !updates.is_empty();
        {
            let rows: Vec<_> = updates.iter().map(|(i, u)| (intents[*i].0, &intents[*i].1, u)).collect();
            self.save(&rows)?;
        }

        let result = self.broadcast_all(&mut intents, &broadcast, round.latest).await;

        self.floor = intents.iter().find(|(_, i)| !i.is_settled()).map_or(self.next_nonce, |(n, _)| *n);
        self.in_flight = intents.iter().filter(|(_, i)| i.is_open()).count();
        result.map(|sent| changed || sent > 0)
    }

    /// Nonces used without a visible receipt wait; when they have waited long, the chain's status
    /// says so (and stops saying so once none waits).
    fn note_unseen(&mut self, waiting: &[String]) {
        let waited = match waiting.first() {
            None => {
                self.unseen_since = None;
                std::time::Duration::ZERO
            }
            Some(first) => {
                tracing::debug!(chain = %self.dest.chain, waiting = waiting.len(), "{first}");
                self.unseen_since.get_or_insert_with(std::time::Instant::now).elapsed()
            }
        };
        let change = decide::unseen_status(self.status.borrow().problem.as_ref(), waiting, waited);
        match change {
            StatusChange::Keep => {}
            StatusChange::Clear => self.status.send_modify(|s| s.problem = None),
            StatusChange::Set(problem) => {
                tracing::warn!(chain = %self.dest.chain, "{problem}");
                self.status.send_modify(|s| s.problem = Some(problem));
            }
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

    /// Signs the replacement of an intent not mined after `bump_after`, at the same nonce with
    /// higher fees, and puts it in the intent's place; its hash.
    fn replace(
        &mut self,
        nonce: u64,
        intent: &mut TxIntent,
        fees: super::fees::Fees,
    ) -> Result<B256, DeliverError> {
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
        decide::replace(intent, raw, hash, fees);
        self.status.send_modify(|s| s.bumps += 1);
        Ok(hash)
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
                    result = Err(
                        self.cannot_pay(format!("the node refused the broadcast of nonce {nonce} ({m})"))
                    );
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
