//! Fixtures for this module's unit tests: deterministic validator keys and batches signed with
//! them, so each test states only the validator sets and who signs.

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;

use super::tree::{MerkleTree, ValidatorTree, result_leaf};
use super::{BatchHeader, Signature, SignedBatch, Validator};

/// Validator key number `i` (a hash, so a valid secp256k1 key).
pub fn key(i: u8) -> PrivateKeySigner {
    PrivateKeySigner::from_bytes(&keccak256([i])).expect("a keccak hash is a valid secp256k1 key")
}

pub fn address(i: u8) -> Address {
    key(i).address()
}

pub fn operator(i: u8) -> String {
    format!("sedavaloper1test{i}")
}

pub fn validator(i: u8, power: u32) -> Validator {
    Validator { operator: operator(i), eth_address: address(i), power }
}

/// Key `i`'s signature of `id` as the chain stores it (v ∈ {0, 1}).
pub fn sign(id: B256, i: u8) -> Signature {
    let signature = key(i).sign_hash_sync(&id).expect("a local key signs");
    Signature { operator: operator(i), bytes: signature.as_rsy() }
}

/// Batch `number` with its own `validators`, signed by the keys `signers`.
pub fn batch(number: u64, validators: Vec<Validator>, signers: &[u8]) -> SignedBatch {
    let result_ids = vec![keccak256(number.to_be_bytes())];
    let header = BatchHeader {
        number,
        block_height: 100 + number * 10,
        validators_root: ValidatorTree::new(&validators).root(),
        results_root: MerkleTree::new(result_ids.iter().map(|id| result_leaf(*id)).collect()).root(),
        proving_metadata: Bytes::new(),
    };
    let batch_id = header.id();
    let signatures = signers.iter().map(|i| sign(batch_id, *i)).collect();
    SignedBatch { header, batch_id, validators, signatures, result_ids }
}

/// Batches `0..sets.len()`: batch k's validators are `sets[k]`, and every key of `sets[k - 1]`
/// signs it (batch 0: its own).
pub fn chain(sets: &[Vec<(u8, u32)>]) -> Vec<SignedBatch> {
    let mut batches = Vec::new();
    for (k, set) in sets.iter().enumerate() {
        let signing = if k == 0 { set } else { &sets[k - 1] };
        let signers: Vec<u8> = signing.iter().map(|(i, _)| *i).collect();
        let validators = set.iter().map(|(i, p)| validator(*i, *p)).collect();
        batches.push(batch(k as u64, validators, &signers));
    }
    batches
}

/// Four validators with a quarter of the power each: keys `first..first + 4`.
pub fn quarters(first: u8) -> Vec<(u8, u32)> {
    (first..first + 4).map(|i| (i, 25_000_000)).collect()
}
