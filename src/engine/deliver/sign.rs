//! Local signing: a transaction at a given nonce with given fees, as raw bytes and hash. The same
//! function signs deliveries, their fee replacements and the operator's cancellations.

use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy::eips::eip2718::Encodable2718;
use alloy::network::TxSignerSync;
use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::signers::local::PrivateKeySigner;

use super::fees::Fees;

/// What to sign, apart from the key and the chain.
#[derive(Debug, Clone)]
pub struct Unsigned {
    pub nonce: u64,
    pub to: Address,
    pub input: Bytes,
    pub gas_limit: u64,
    pub fees: Fees,
}

/// Signs a zero-value call: EIP-1559 unless the chain is legacy (or the fees carry no priority).
pub fn sign(
    signer: &PrivateKeySigner,
    chain_id: u64,
    legacy: bool,
    tx: Unsigned,
) -> Result<(Bytes, B256), alloy::signers::Error> {
    let envelope: TxEnvelope = match tx.fees.priority {
        Some(priority) if !legacy => {
            let mut t = TxEip1559 {
                chain_id,
                nonce: tx.nonce,
                gas_limit: tx.gas_limit,
                max_fee_per_gas: tx.fees.max_fee,
                max_priority_fee_per_gas: priority,
                to: TxKind::Call(tx.to),
                value: U256::ZERO,
                access_list: Default::default(),
                input: tx.input,
            };
            let sig = signer.sign_transaction_sync(&mut t)?;
            t.into_signed(sig).into()
        }
        _ => {
            let mut t = TxLegacy {
                chain_id: Some(chain_id),
                nonce: tx.nonce,
                gas_price: tx.fees.max_fee,
                gas_limit: tx.gas_limit,
                to: TxKind::Call(tx.to),
                value: U256::ZERO,
                input: tx.input,
            };
            let sig = signer.sign_transaction_sync(&mut t)?;
            t.into_signed(sig).into()
        }
    };
    Ok((envelope.encoded_2718().into(), *envelope.tx_hash()))
}

/// The call data of a stored signed transaction, to sign it again with other fees.
pub fn input_of(raw: &Bytes) -> Result<Bytes, alloy::eips::eip2718::Eip2718Error> {
    use alloy::eips::eip2718::Decodable2718;
    let envelope = TxEnvelope::decode_2718(&mut raw.as_ref())?;
    Ok(alloy::consensus::Transaction::input(&envelope).clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::deliver::fees::GWEI;

    #[test]
    fn a_signed_transaction_decodes_back_to_its_input_and_hash() {
        let signer = PrivateKeySigner::random();
        let input = Bytes::from(vec![1, 2, 3]);
        for (legacy, priority) in [(false, Some(GWEI)), (true, None)] {
            let fees = Fees { max_fee: 3 * GWEI, priority };
            let unsigned =
                Unsigned { nonce: 7, to: Address::ZERO, input: input.clone(), gas_limit: 50_000, fees };
            let (raw, hash) = sign(&signer, 31337, legacy, unsigned).expect("signs");
            assert_eq!(input_of(&raw).expect("decodes"), input);
            assert_eq!(alloy::primitives::keccak256(&raw), hash);
        }
    }
}
