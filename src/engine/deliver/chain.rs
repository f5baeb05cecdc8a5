//! The destination-chain calls a sender makes, on top of the shared RPC client: nonces, the fee
//! market, simulation, broadcast and receipts; and what a node's answer to a broadcast means.

use alloy::primitives::{Address, B256, Bytes, U64, U128};
use serde::Deserialize;
use serde_json::json;

use super::fees::Market;
use crate::engine::rpc::{ChainRpc, RpcError};
use crate::store::records::Receipt;

/// What a node said to `eth_sendRawTransaction`, each with its rule in the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Accepted, or already in its pool: sent.
    Accepted,
    /// The nonce is used: look for a receipt of any of the nonce's hashes, else the nonce went to
    /// a transaction ferry did not sign.
    NonceTooLow,
    /// Another transaction sits at this nonce with higher fees: treat as sent, bump later.
    Underpriced,
    /// Lower nonces are missing from the node: broadcast them again first.
    NonceTooHigh,
    /// The signer cannot pay: pause the chain and say which signer.
    InsufficientFunds(String),
    /// The offered fee is under the base fee: wait, bump when due.
    BelowBaseFee,
    /// Anything else the node refused; retried with backoff.
    Refused(String),
}

pub fn classify_send(e: &RpcError) -> SendOutcome {
    let m = e.message.to_ascii_lowercase();
    if m.contains("already known") || m.contains("known transaction") || m.contains("already imported") {
        SendOutcome::Accepted
    } else if m.contains("nonce too low") || m.contains("nonce has already been used") {
        SendOutcome::NonceTooLow
    } else if m.contains("underpriced") {
        SendOutcome::Underpriced
    } else if m.contains("nonce too high") || m.contains("nonce gap") {
        SendOutcome::NonceTooHigh
    } else if m.contains("insufficient funds") {
        SendOutcome::InsufficientFunds(e.message.clone())
    } else if m.contains("base fee") || m.contains("basefee") {
        SendOutcome::BelowBaseFee
    } else {
        SendOutcome::Refused(e.message.clone())
    }
}

pub async fn nonce(rpc: &ChainRpc, signer: Address, tag: &str) -> Result<u64, RpcError> {
    let n: U64 = rpc.request("eth_getTransactionCount", json!([signer, tag])).await?;
    Ok(n.to())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FeeHeader {
    base_fee_per_gas: Option<U128>,
}

pub async fn market(rpc: &ChainRpc, legacy: bool) -> Result<Market, RpcError> {
    if legacy {
        let price: U128 = rpc.request("eth_gasPrice", json!([])).await?;
        return Ok(Market { base_fee: price.to(), suggested_priority: 0 });
    }
    let header: FeeHeader = rpc.request("eth_getBlockByNumber", json!(["latest", false])).await?;
    // A node without eth_maxPriorityFeePerGas gets a common 1 gwei tip.
    let priority = match rpc.request::<U128>("eth_maxPriorityFeePerGas", json!([])).await {
        Ok(p) => p.to(),
        Err(e) if e.is_retryable() => return Err(e),
        Err(_) => super::fees::GWEI,
    };
    Ok(Market {
        base_fee: header.base_fee_per_gas.map(|b| b.to()).unwrap_or(0),
        suggested_priority: priority,
    })
}

pub async fn call(rpc: &ChainRpc, from: Address, to: Address, data: &Bytes) -> Result<Bytes, RpcError> {
    rpc.request("eth_call", json!([{"from": from, "to": to, "input": data, "data": data}, "latest"])).await
}

pub async fn estimate_gas(rpc: &ChainRpc, from: Address, to: Address, data: &Bytes) -> Result<u64, RpcError> {
    // Against `latest`: some nodes (anvil) default to `pending` and build a pending block of
    // every pooled transaction for each estimate, which a pipelined sender fills by the hundred.
    let gas: U64 = rpc
        .request("eth_estimateGas", json!([{"from": from, "to": to, "input": data, "data": data}, "latest"]))
        .await?;
    Ok(gas.to())
}

pub async fn send_raw(rpc: &ChainRpc, raw: &Bytes) -> Result<(), RpcError> {
    rpc.request::<B256>("eth_sendRawTransaction", json!([raw])).await.map(|_| ())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReceiptJson {
    transaction_hash: B256,
    block_number: Option<U64>,
    block_hash: Option<B256>,
    status: Option<U64>,
    gas_used: U64,
    effective_gas_price: Option<U128>,
}

pub async fn receipt(rpc: &ChainRpc, hash: B256) -> Result<Option<Receipt>, RpcError> {
    let r: Option<ReceiptJson> = rpc.call("eth_getTransactionReceipt", json!([hash])).await?;
    Ok(r.and_then(|r| {
        Some(Receipt {
            tx_hash: r.transaction_hash,
            block: r.block_number?.to(),
            block_hash: r.block_hash?,
            success: r.status.is_none_or(|s| s.to::<u64>() == 1),
            gas_used: r.gas_used.to(),
            effective_gas_price: r.effective_gas_price.map(|p| p.to()).unwrap_or(0),
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rpc::ErrorKind;

    fn node(message: &str) -> RpcError {
        RpcError {
            kind: ErrorKind::Node,
            method: "eth_sendRawTransaction".into(),
            url: "http://x".into(),
            message: message.into(),
            code: Some(-32000),
            retry_after: None,
            hint: None,
            data: None,
        }
    }

    #[test]
    fn broadcast_answers_of_common_nodes_are_classified() {
        assert_eq!(classify_send(&node("already known")), SendOutcome::Accepted);
        assert_eq!(classify_send(&node("Known transaction: 0xab")), SendOutcome::Accepted);
        assert_eq!(classify_send(&node("nonce too low: next nonce 5, tx nonce 3")), SendOutcome::NonceTooLow);
        assert_eq!(classify_send(&node("replacement transaction underpriced")), SendOutcome::Underpriced);
        assert_eq!(classify_send(&node("nonce too high")), SendOutcome::NonceTooHigh);
        assert!(matches!(
            classify_send(&node("insufficient funds for gas * price + value")),
            SendOutcome::InsufficientFunds(_)
        ));
        assert_eq!(
            classify_send(&node("max fee per gas less than block base fee")),
            SendOutcome::BelowBaseFee
        );
        assert!(matches!(classify_send(&node("invalid sender")), SendOutcome::Refused(_)));
    }
}
