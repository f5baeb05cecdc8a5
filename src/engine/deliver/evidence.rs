//! Who used a nonce: the positive evidence a delivery needs before it may be signed again.
//!
//! A node that counts a signer's nonce as used and then has no receipt for any of ferry's hashes
//! at that nonce proves nothing: a node under load, or a load balancer over nodes a block or two
//! apart (ferry's own failover between URLs is one), answers "count = n + 1" and then "no
//! receipt" for the very transaction ferry sent. Taking that as "someone else used the nonce" and
//! signing the deliveries again put each item on the chain many times.
//!
//! So a nonce's deliveries go back to pending only when the transaction that used the nonce has
//! been *found in a block* — the block where the signer's count passes the nonce, located by
//! asking the count at block numbers (a gallop back from the head, then a bisection: a handful
//! of calls, all of them near the head when the transaction is recent) — its hash is none of
//! ferry's, and that block is as deep as the chain's confirmations. Anything less (no block
//! located, a node without that block, ferry's own hash found, a foreign one not deep yet) means
//! wait and look again.

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, U64};
use serde::Deserialize;
use serde_json::json;

use crate::engine::rpc::{ChainRpc, RpcError};

/// What the chain showed about the transaction that used a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evidence {
    /// Not located (yet): the node does not show the nonce as used at its head, lacks the
    /// block, or lacks state that old.
    NotLocated,
    /// The transaction at the nonce is one ferry signed: its receipt is just not visible yet.
    Ours { block: u64, hash: B256 },
    /// The transaction at the nonce is not one ferry signed.
    Foreign { block: u64, hash: B256 },
}

/// What a nonce that the chain counts as used, with no receipt for any of ferry's hashes, means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsedNonce {
    /// Keep the intent open and look again; the reason says why.
    Wait(String),
    /// Another transaction took the nonce for good: the intent's deliveries go back to pending.
    TakenByOther(String),
}

/// The rule, apart from the calls that gather the evidence.
pub fn judge(nonce: u64, evidence: Evidence, head: u64, confirmations: u64) -> UsedNonce {
    match evidence {
        Evidence::NotLocated => {
            UsedNonce::Wait(format!("nonce {nonce} used, receipt not yet visible; its block not located yet"))
        }
        Evidence::Ours { block, hash } => UsedNonce::Wait(format!(
            "nonce {nonce} used by ferry's transaction {hash} in block {block}, receipt not yet visible"
        )),
        Evidence::Foreign { block, hash } if head + 1 >= block + confirmations.max(1) => {
            UsedNonce::TakenByOther(format!(
                "nonce {nonce} was used by transaction {hash} in block {block}, which ferry did not sign"
            ))
        }
        Evidence::Foreign { block, hash } => UsedNonce::Wait(format!(
            "nonce {nonce} used by transaction {hash} (not ferry's) in block {block}, not {confirmations} deep yet"
        )),
    }
}

/// The signer's transactions found in the blocks located so far: nonce → (block, hash).
pub type Located = BTreeMap<u64, (u64, B256)>;

#[derive(Deserialize)]
struct TxJson {
    from: Address,
    nonce: U64,
    hash: B256,
}

#[derive(Deserialize)]
struct BlockJson {
    transactions: Vec<TxJson>,
}

/// The signer's transaction count after block `block`; `None` when the node cannot say (it does
/// not have the block, or no longer keeps its state).
async fn count_at(rpc: &ChainRpc, signer: Address, block: u64) -> Option<u64> {
    match rpc.call::<U64>("eth_getTransactionCount", json!([signer, format!("{block:#x}")])).await {
        Ok(Some(n)) => Some(n.to()),
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(chain = %rpc.chain(), block, error = %e, "nonce count at a block");
            None
        }
    }
}

/// Finds the block holding the signer's transaction at `nonce` and records every transaction of
/// the signer in it into `located`. `Ok(false)` when the chain could not show it (yet).
pub async fn locate(
    rpc: &ChainRpc,
    signer: Address,
    nonce: u64,
    head: u64,
    located: &mut Located,
) -> Result<bool, RpcError> {
    // The count at the head must already include the nonce.
    match count_at(rpc, signer, head).await {
        Some(n) if n > nonce => {}
        _ => return Ok(false),
    }
    // Gallop back from the head to a block whose count does not include it yet.
    let (mut low, mut high) = (None, head);
    let mut step = 1u64;
    while low.is_none() {
        let probe = head.saturating_sub(step);
        match count_at(rpc, signer, probe).await {
            Some(n) if n > nonce => {
                high = probe;
                if probe == 0 {
                    break;
                }
                step = step.saturating_mul(2);
            }
            Some(_) => low = Some(probe),
            None => return Ok(false),
        }
    }
    // Bisect (low, high]: `low` does not include the nonce, `high` does.
    if let Some(mut low) = low {
        while high - low > 1 {
            let mid = low + (high - low) / 2;
            match count_at(rpc, signer, mid).await {
                Some(n) if n > nonce => high = mid,
                Some(_) => low = mid,
                None => return Ok(false),
            }
        }
    }
    let block: Option<BlockJson> =
        rpc.call("eth_getBlockByNumber", json!([format!("{high:#x}"), true])).await?;
    let Some(block) = block else { return Ok(false) };
    let mut found = false;
    for tx in block.transactions.into_iter().filter(|t| t.from == signer) {
        let n: u64 = tx.nonce.to();
        found |= n == nonce;
        located.insert(n, (high, tx.hash));
    }
    Ok(found)
}

/// The evidence for `nonce` among what was located: ferry's when the hash is one of `ours`.
pub fn evidence_of(nonce: u64, located: &Located, mut ours: impl Iterator<Item = B256>) -> Evidence {
    match located.get(&nonce) {
        None => Evidence::NotLocated,
        Some(&(block, hash)) if ours.any(|h| h == hash) => Evidence::Ours { block, hash },
        Some(&(block, hash)) => Evidence::Foreign { block, hash },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: B256 = B256::repeat_byte(0xab);

    #[test]
    fn only_a_foreign_transaction_deep_enough_frees_the_deliveries() {
        // (evidence, head, confirmations) → taken by another?
        let cases = [
            (Evidence::NotLocated, 100, 1, false),
            (Evidence::Ours { block: 90, hash: H }, 100, 1, false),
            (Evidence::Ours { block: 90, hash: H }, 10_000, 1, false),
            (Evidence::Foreign { block: 100, hash: H }, 100, 1, true),
            (Evidence::Foreign { block: 100, hash: H }, 100, 2, false),
            (Evidence::Foreign { block: 100, hash: H }, 101, 2, true),
            (Evidence::Foreign { block: 100, hash: H }, 98, 1, false),
            (Evidence::Foreign { block: 100, hash: H }, 100, 0, true),
        ];
        for (evidence, head, confirmations, taken) in cases {
            let verdict = judge(7, evidence, head, confirmations);
            assert_eq!(
                matches!(verdict, UsedNonce::TakenByOther(_)),
                taken,
                "{evidence:?} at head {head}, {confirmations} confirmations: {verdict:?}"
            );
        }
    }

    #[test]
    fn a_located_hash_is_ours_only_when_ferry_signed_it() {
        let mut located = Located::new();
        located.insert(3, (50, H));
        let other = B256::repeat_byte(1);
        assert_eq!(evidence_of(3, &located, [other, H].into_iter()), Evidence::Ours { block: 50, hash: H });
        assert_eq!(evidence_of(3, &located, [other].into_iter()), Evidence::Foreign { block: 50, hash: H });
        assert_eq!(evidence_of(4, &located, [H].into_iter()), Evidence::NotLocated);
    }
}
