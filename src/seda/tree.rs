//! OpenZeppelin's `SimpleMerkleTree` with sorted leaves, as the Prover verifies it: leaves sorted
//! ascending at `tree[len-1-i]`, `tree[i] = keccak(min(tree[2i+1], tree[2i+2]) ‖ max(…))`. A naive
//! bottom-up tree gives another root when the leaf count is not a power of two.

use alloy::primitives::{Address, B256};

use super::Validator;

/// A validator's leaf: `keccak256(0x01 ‖ eth_address ‖ uint32be(power))`.
pub fn validator_leaf(eth_address: Address, power: u32) -> B256 {
    todo!()
}

/// A data result's leaf: `keccak256(0x00 ‖ result_id)`.
pub fn result_leaf(result_id: B256) -> B256 {
    todo!()
}

/// A built tree: its root, and a proof for any leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// The OpenZeppelin array layout; empty for an empty tree.
    nodes: Vec<B256>,
}

impl MerkleTree {
    /// From leaves in any order (they are sorted).
    pub fn new(leaves: Vec<B256>) -> Self {
        todo!()
    }

    /// The root; `keccak256("")` for an empty tree, the leaf itself for one leaf.
    pub fn root(&self) -> B256 {
        todo!()
    }

    /// The proof of `leaf` (siblings from the leaf up), `None` when it is not a leaf.
    pub fn proof(&self, leaf: B256) -> Option<Vec<B256>> {
        todo!()
    }
}

/// Whether `proof` leads from `leaf` to `root` (sorted-pair hashing, as OpenZeppelin's `MerkleProof`).
pub fn verify(proof: &[B256], root: B256, leaf: B256) -> bool {
    todo!()
}

/// A batch's validator tree, by ETH address.
#[derive(Debug, Clone)]
pub struct ValidatorTree {
    // implementation's choice
}

impl ValidatorTree {
    pub fn new(validators: &[Validator]) -> Self {
        todo!()
    }

    pub fn root(&self) -> B256 {
        todo!()
    }

    /// The power and proof of the validator with this ETH address, `None` when it is not in the tree.
    pub fn member(&self, eth_address: Address) -> Option<(u32, Vec<B256>)> {
        todo!()
    }
}
