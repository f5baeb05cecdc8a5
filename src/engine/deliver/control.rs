//! Operator control: retry or skip deliveries, cancel a stuck nonce, resync a signer's nonces.
//! Each change is one write transaction, all or nothing, and refuses what would break the
//! exactly-once rules (a delivery with a transaction in flight is neither retried nor skipped:
//! cancel its nonce first). The store being open read-write means no `watch` holds it.

use alloy::primitives::{Address, B256, Bytes};
use serde::{Deserialize, Serialize};

use super::chain;
use super::evidence::{self, Located, UsedNonce};
use super::fees::{FeePolicy, Fees};
use super::sign::{self, Unsigned};
use super::worker::{Update, save_intents};
use super::{DeliverError, Destination};
use crate::store::keys::{DeliveryKey, IntentKey};
use crate::store::records::{DeliveryState, IntentState};
use crate::store::{Store, now};

/// Gas of a plain value transfer: what a cancellation (a zero-value send to itself) uses.
const TRANSFER_GAS: u64 = 21_000;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Deliver(#[from] DeliverError),
}

impl From<crate::store::StoreError> for ControlError {
    fn from(e: crate::store::StoreError) -> Self {
        ControlError::Deliver(DeliverError::Store(e))
    }
}

/// A delivery an operator changed: its state before and after.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Changed {
    pub key: DeliveryKey,
    pub from: DeliveryState,
    pub to: DeliveryState,
}

/// Failed or skipped deliveries back to pending, to be checked and sent again.
pub fn retry(store: &Store, keys: &[DeliveryKey]) -> Result<Vec<Changed>, ControlError> {
    change(store, keys, &[DeliveryState::Failed, DeliveryState::Skipped], |d| {
        d.state = DeliveryState::Pending;
        d.retryable = true;
        d.next_attempt_at = None;
        d.reason = Some("retry asked by the operator".into());
    })
}

/// Pending or failed deliveries marked skipped: never sent.
pub fn skip(store: &Store, keys: &[DeliveryKey], why: Option<&str>) -> Result<Vec<Changed>, ControlError> {
    let reason = match why {
        Some(why) => format!("skipped by the operator: {why}"),
        None => "skipped by the operator".to_string(),
    };
    change(store, keys, &[DeliveryState::Pending, DeliveryState::Failed], |d| {
        d.state = DeliveryState::Skipped;
        d.retryable = false;
        d.next_attempt_at = None;
        d.reason = Some(reason.clone());
    })
}

fn change(
    store: &Store,
    keys: &[DeliveryKey],
    allowed: &[DeliveryState],
    apply: impl Fn(&mut crate::store::records::Delivery),
) -> Result<Vec<Changed>, ControlError> {
    let result = store.write(|tx| {
        // Every delivery is checked before any is written: a refusal leaves everything as it was.
        let mut rows = Vec::new();
        for key in keys {
            let Some(d) = tx.delivery(*key)? else {
                return Ok(Err(format!("no delivery {}", key.item)));
            };
            if !allowed.contains(&d.state) {
                let allowed: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
                let hint = if matches!(d.state, DeliveryState::Sending | DeliveryState::Sent) {
                    format!(
                        "; its transaction (nonce {}) is in flight — cancel that nonce first",
                        d.nonce.map_or("?".into(), |n| n.to_string())
                    )
                } else {
                    String::new()
                };
                return Ok(Err(format!(
                    "delivery of {} is {}, not {}{hint}",
                    key.item,
                    d.state.as_str(),
                    allowed.join(" or ")
                )));
            }
            rows.push((*key, d));
        }
        let mut changed = Vec::new();
        for (key, mut d) in rows {
            let from = d.state;
            apply(&mut d);
            d.updated_at = now();
            tx.put_delivery(key, &d)?;
            changed.push(Changed { key, from, to: d.state });
        }
        Ok(Ok(changed))
    });
    match result {
        Ok(Ok(changed)) => Ok(changed),
        Ok(Err(refusal)) => Err(ControlError::Refused(refusal)),
        Err(e) => Err(e.into()),
    }
}

/// What a cancellation did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cancelled {
    pub chain: String,
    pub chain_id: u64,
    pub signer: Address,
    pub nonce: u64,
    /// The transaction it replaces.
    pub replaces: B256,
    pub hash: B256,
    pub max_fee_per_gas: u128,
    pub max_priority_fee_per_gas: Option<u128>,
    /// Whether the node took it now; if not, the next `push`/`watch` broadcasts it.
    pub broadcast: Result<(), String>,
}

/// Replaces the open transaction at `nonce` with a zero-value send to the signer itself, with
/// fees raised past the old ones (by the chain's bump percent, or to the market when higher,
/// not bounded by the cap: cancelling is how an operator gets past it), or to `max_fee` when given.
/// Its deliveries fail as "cancelled by the operator" once it is mined; if the original lands
/// first, they are delivered as usual.
pub async fn cancel(
    dest: &Destination,
    store: &Store,
    nonce: u64,
    max_fee: Option<u128>,
) -> Result<Cancelled, ControlError> {
    let signer = dest.signer.address();
    let key = IntentKey { chain: dest.chain_id, signer, nonce };
    let Some(mut intent) = store.intent(key)? else {
        return Err(ControlError::Refused(format!(
            "ferry has no transaction of {signer} at nonce {nonce} on {}",
            dest.chain
        )));
    };
    if !intent.is_open() {
        return Err(ControlError::Refused(format!(
            "nonce {nonce} on {} is {:?}: nothing to cancel",
            dest.chain, intent.state
        )));
    }
    let market =
        chain::market(&dest.rpc, dest.fees.legacy).await.map_err(|e| DeliverError::Rpc(Box::new(e)))?;
    let old = Fees { max_fee: intent.max_fee_per_gas, priority: intent.max_priority_fee_per_gas };
    let uncapped = FeePolicy { cap: u128::MAX, ..dest.fees };
    let least = uncapped.bumped(old, market).ok_or_else(|| ControlError::Refused("fees overflow".into()))?;
    let fees = match max_fee {
        None => least,
        Some(m) if m >= least.max_fee => Fees { max_fee: m, priority: least.priority.map(|p| p.min(m)) },
        Some(m) => {
            return Err(ControlError::Refused(format!(
                "a replacement must offer at least {} gwei (the old {} gwei + {} %); --max-fee-gwei {} is too low",
                least.max_fee as f64 / 1e9,
                old.max_fee as f64 / 1e9,
                dest.fees.bump_percent,
                m as f64 / 1e9
            )));
        }
    };
    let unsigned = Unsigned { nonce, to: signer, input: Bytes::new(), gas_limit: TRANSFER_GAS, fees };
    let (raw, hash) = sign::sign(&dest.signer, dest.chain_id, dest.fees.legacy, unsigned).map_err(|e| {
        DeliverError::Setup { chain: dest.chain.clone(), detail: format!("signing failed: {e}") }
    })?;
    let replaces = intent.hash;
    intent.replaced.push(intent.hash);
    intent.hash = hash;
    intent.raw = raw.clone();
    intent.to = signer;
    intent.gas_limit = TRANSFER_GAS;
    intent.max_fee_per_gas = fees.max_fee;
    intent.max_priority_fee_per_gas = fees.priority;
    intent.cancel = Some(hash);
    intent.state = IntentState::Signed;
    intent.sent_at = None;
    // Written before it is broadcast, like every transaction ferry signs.
    save_intents(store, dest.chain_id, signer, &[(nonce, &intent, &Update::None)])?;
    let broadcast = match chain::send_raw(&dest.rpc, &raw).await {
        Ok(()) => {
            intent.state = IntentState::Sent;
            intent.sent_at = Some(now());
            save_intents(store, dest.chain_id, signer, &[(nonce, &intent, &Update::None)])?;
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    };
    tracing::info!(chain = %dest.chain, nonce, replaces = %replaces, hash = %hash, "cancellation signed");
    Ok(Cancelled {
        chain: dest.chain.clone(),
        chain_id: dest.chain_id,
        signer,
        nonce,
        replaces,
        hash,
        max_fee_per_gas: fees.max_fee,
        max_priority_fee_per_gas: fees.priority,
        broadcast,
    })
}

/// What a resync found and did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resynced {
    pub chain: String,
    pub chain_id: u64,
    pub signer: Address,
    /// The chain's transaction count, mined (`latest`) and with the node's pool (`pending`).
    pub latest: u64,
    pub pending: u64,
    /// The highest nonce ferry had signed + 1, before the resync.
    pub stored_next: u64,
    /// Open intents no node holds and no receipt covers: dropped, their deliveries pending again.
    pub dropped: Vec<u64>,
    /// Intents ferry saw mined at nonces the chain no longer counts, none of their hashes there
    /// (a reset chain): dropped, their deliveries pending again, to be checked and sent anew.
    pub forgotten: Vec<u64>,
    /// Open intents below the mined count with no visible receipt and no proof that another
    /// transaction took their nonce: kept, with why (a lagging node shows ferry's own mined
    /// transaction this way; signing their deliveries again could land them twice).
    pub kept: Vec<String>,
}

/// Which intents a resync looks at, by their state and nonce against the chain's counts
/// (mined: `latest`; with the node's pool: `pending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Left alone: settled, or a nonce the node's pool holds.
    Skip,
    /// Open at a nonce the chain counts as mined: dropped only on evidence (`evidence.rs`).
    NeedsEvidence,
    /// Open at a nonce no node holds: dropped, unless a receipt shows it landed.
    NotHeld,
    /// Seen mined by ferry, at a nonce the chain does not count any more (a reset chain):
    /// forgotten, unless a receipt shows it is there.
    Forgotten,
}

/// The resync rule for one intent, apart from the calls.
pub fn scope(state: IntentState, nonce: u64, latest: u64, pending: u64) -> Scope {
    match state {
        IntentState::Dropped => Scope::Skip,
        IntentState::Mined | IntentState::Confirmed if nonce >= latest.max(pending) => Scope::Forgotten,
        IntentState::Mined | IntentState::Confirmed => Scope::Skip,
        IntentState::Signed | IntentState::Sent if nonce < latest => Scope::NeedsEvidence,
        IntentState::Signed | IntentState::Sent if nonce < pending => Scope::Skip,
        IntentState::Signed | IntentState::Sent => Scope::NotHeld,
    }
}

/// Lines ferry's nonces up with the chain's: every open intent at or above the node's pending
/// count (the node does not hold it), with no receipt for any of its hashes, is dropped and its
/// deliveries go back to pending, to be signed again from the chain's nonce. An intent another
/// node still holds could land later: that is why this asks first. Below the mined count the
/// sender's own rule holds: dropped only when the transaction that used the nonce is found in a
/// block, is not ferry's, and is as deep as the chain's confirmations (`evidence.rs`).
///
/// A reset chain (same chain id, nonces from 0: `nonce_gap`) no longer counts transactions ferry
/// saw mined: those at or above both counts, with no receipt for any of their hashes, are
/// forgotten — dropped, and their deliveries (confirmed on a chain that is gone) pending again.
/// They are checked again before they are sent (the already-done view, the simulation), which is
/// what keeps one that is somehow still there from going out twice; the operator's confirmation
/// is the proof that the chain was reset, as it is for intents no node holds.
pub async fn resync(dest: &Destination, store: &Store) -> Result<Resynced, ControlError> {
    let signer = dest.signer.address();
    let rpc_err = |e| DeliverError::Rpc(Box::new(e));
    let latest = chain::nonce(&dest.rpc, signer, "latest").await.map_err(rpc_err)?;
    let pending = chain::nonce(&dest.rpc, signer, "pending").await.map_err(rpc_err)?;
    let head = dest.rpc.block_number().await.map_err(rpc_err)?;
    let intents = store.intents_from(dest.chain_id, signer, 0)?;
    let stored_next = intents.iter().map(|(n, _)| n + 1).max().unwrap_or(0);
    let (mut dropped, mut forgotten, mut kept) = (Vec::new(), Vec::new(), Vec::new());
    let mut located = Located::new();
    for (nonce, mut intent) in intents {
        let scope = scope(intent.state, nonce, latest, pending);
        if scope == Scope::Skip {
            continue;
        }
        let mut landed = false;
        for hash in intent.hashes().chain(intent.cancel).collect::<Vec<_>>() {
            if chain::receipt(&dest.rpc, hash).await.map_err(rpc_err)?.is_some() {
                landed = true;
                break;
            }
        }
        if landed {
            // The sender records it as mined on its next round.
            continue;
        }
        let update = match scope {
            Scope::Skip => continue,
            Scope::Forgotten => Update::Forgotten(format!(
                "nonce {nonce} was mined, and the chain (counting {latest}) no longer holds it: \
                 sent again after an operator's resync"
            )),
            Scope::NeedsEvidence => {
                if !located.contains_key(&nonce) {
                    evidence::locate(&dest.rpc, signer, nonce, head, &mut located).await.map_err(rpc_err)?;
                }
                let found = evidence::evidence_of(nonce, &located, intent.hashes().chain(intent.cancel));
                match evidence::judge(nonce, found, head, dest.confirmations) {
                    UsedNonce::TakenByOther(reason) => Update::Dropped(reason),
                    UsedNonce::Wait(reason) => {
                        kept.push(reason);
                        continue;
                    }
                }
            }
            Scope::NotHeld => Update::Dropped(format!("nonce {nonce} dropped by an operator's resync")),
        };
        intent.state = IntentState::Dropped;
        save_intents(store, dest.chain_id, signer, &[(nonce, &intent, &update)])?;
        match update {
            Update::Forgotten(_) => forgotten.push(nonce),
            _ => dropped.push(nonce),
        }
    }
    tracing::info!(
        chain = %dest.chain, latest, pending, stored_next, dropped = dropped.len(),
        forgotten = forgotten.len(), kept = kept.len(), "resynced"
    );
    Ok(Resynced {
        chain: dest.chain.clone(),
        chain_id: dest.chain_id,
        signer,
        latest,
        pending,
        stored_next,
        dropped,
        forgotten,
        kept,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Which intents a resync looks at: open ones the pool does not hold, open ones below the
    /// mined count (on evidence only), and mined ones a reset chain no longer counts.
    #[test]
    fn resync_looks_at_what_the_chain_does_not_hold() {
        use IntentState::{Confirmed, Dropped, Mined, Sent, Signed};
        // (state, nonce, latest, pending) → scope
        let cases = [
            (Dropped, 3, 0, 0, Scope::Skip),
            // A reset chain: nonces from 0, ferry had seen 0..14 mined.
            (Confirmed, 13, 0, 0, Scope::Forgotten),
            (Mined, 0, 0, 0, Scope::Forgotten),
            // The chain counts them: nothing to forget.
            (Confirmed, 13, 14, 14, Scope::Skip),
            // Mined count behind, the pool holds it: doubt, left alone.
            (Confirmed, 13, 10, 14, Scope::Skip),
            (Sent, 5, 3, 8, Scope::Skip),
            (Sent, 2, 3, 8, Scope::NeedsEvidence),
            (Signed, 8, 3, 8, Scope::NotHeld),
            (Sent, 14, 0, 0, Scope::NotHeld),
        ];
        for (state, nonce, latest, pending, want) in cases {
            assert_eq!(scope(state, nonce, latest, pending), want, "{state:?} {nonce} {latest} {pending}");
        }
    }
}
