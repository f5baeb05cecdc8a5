//! OpenZeppelin's `SimpleMerkleTree` with sorted leaves, as the Prover verifies it: leaves sorted
//! ascending at `tree[len-1-i]`, `tree[i] = keccak(min(tree[2i+1], tree[2i+2]) ‖ max(…))`. A naive
//! bottom-up tree gives another root when the leaf count is not a power of two.

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, keccak256};

use super::Validator;

/// A validator's leaf: `keccak256(0x01 ‖ eth_address ‖ uint32be(power))`.
pub fn validator_leaf(eth_address: Address, power: u32) -> B256 {
    let mut preimage = [0u8; 25];
    preimage[0] = 0x01;
    preimage[1..21].copy_from_slice(eth_address.as_slice());
    preimage[21..].copy_from_slice(&power.to_be_bytes());
    keccak256(preimage)
}

/// A data result's leaf: `keccak256(0x00 ‖ result_id)`.
pub fn result_leaf(result_id: B256) -> B256 {
    let mut preimage = [0u8; 33];
    preimage[1..].copy_from_slice(result_id.as_slice());
    keccak256(preimage)
}

/// `keccak(min(a, b) ‖ max(a, b))`: OpenZeppelin's commutative pair hash, so a proof needs no
/// left/right flags.
fn hash_pair(a: B256, b: B256) -> B256 {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut preimage = [0u8; 64];
    preimage[..32].copy_from_slice(lo.as_slice());
    preimage[32..].copy_from_slice(hi.as_slice());
    keccak256(preimage)
}

/// A built tree: its root, and a proof for any leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// The OpenZeppelin array layout; empty for an empty tree.
    nodes: Vec<B256>,
}

impl MerkleTree {
    /// From leaves in any order (they are sorted).
    pub fn new(mut leaves: Vec<B256>) -> Self {
        if leaves.is_empty() {
            return Self { nodes: Vec::new() };
        }
        leaves.sort_unstable();
        let len = 2 * leaves.len() - 1;
        let mut nodes = vec![B256::ZERO; len];
        for (i, leaf) in leaves.into_iter().enumerate() {
            nodes[len - 1 - i] = leaf;
        }
        // Inner nodes fill the front of the array, each from its two children behind it.
        let inner = len / 2;
        for i in (0..inner).rev() {
            nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2]);
        }
        Self { nodes }
    }

    /// The root; `keccak256("")` for an empty tree, the leaf itself for one leaf.
    pub fn root(&self) -> B256 {
        self.nodes.first().copied().unwrap_or_else(|| keccak256([]))
    }

    /// The proof of `leaf` (siblings from the leaf up), `None` when it is not a leaf.
    pub fn proof(&self, leaf: B256) -> Option<Vec<B256>> {
        let first_leaf = self.nodes.len() / 2;
        let mut index = first_leaf + self.nodes[first_leaf..].iter().position(|node| *node == leaf)?;
        let mut proof = Vec::new();
        while index > 0 {
            // Odd indexes are left children, their sibling is on the right, and the other way round.
            let sibling = if index % 2 == 1 { index + 1 } else { index - 1 };
            proof.push(self.nodes[sibling]);
            index = (index - 1) / 2;
        }
        Some(proof)
    }
}

/// Whether `proof` leads from `leaf` to `root` (sorted-pair hashing, as OpenZeppelin's `MerkleProof`).
pub fn verify(proof: &[B256], root: B256, leaf: B256) -> bool {
    proof.iter().fold(leaf, |node, sibling| hash_pair(node, *sibling)) == root
}

/// A batch's validator tree, by ETH address.
#[derive(Debug, Clone)]
pub struct ValidatorTree {
    tree: MerkleTree,
    /// ETH address → power. An address listed twice keeps its first entry (both leaves stay in
    /// the tree, as the chain built it).
    powers: BTreeMap<Address, u32>,
}

impl ValidatorTree {
    pub fn new(validators: &[Validator]) -> Self {
        let tree =
            MerkleTree::new(validators.iter().map(|v| validator_leaf(v.eth_address, v.power)).collect());
        let mut powers = BTreeMap::new();
        for v in validators {
            powers.entry(v.eth_address).or_insert(v.power);
        }
        Self { tree, powers }
    }

    pub fn root(&self) -> B256 {
        self.tree.root()
    }

    /// The power and proof of the validator with this ETH address, `None` when it is not in the tree.
    pub fn member(&self, eth_address: Address) -> Option<(u32, Vec<B256>)> {
        let power = *self.powers.get(&eth_address)?;
        let proof = self.tree.proof(validator_leaf(eth_address, power))?;
        Some((power, proof))
    }

    /// The power of the validator with this ETH address, `None` when it is not in the tree.
    pub fn power_of(&self, eth_address: Address) -> Option<u32> {
        self.powers.get(&eth_address).copied()
    }

    /// The members' ETH addresses and powers, ascending by address.
    pub fn members(&self) -> impl Iterator<Item = (Address, u32)> + '_ {
        self.powers.iter().map(|(address, power)| (*address, *power))
    }

    /// The sum of the members' powers (at most `FULL_POWER` for a tree the chain built).
    pub fn total_power(&self) -> u64 {
        self.powers.values().map(|p| u64::from(*p)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<B256> {
        // Hashed so their order differs from the order they are given in.
        (1..=n).map(|i| keccak256([i])).collect()
    }

    fn sorted(mut v: Vec<B256>) -> Vec<B256> {
        v.sort();
        v
    }

    #[test]
    fn empty_tree_root_is_keccak_of_nothing() {
        let tree = MerkleTree::new(Vec::new());
        assert_eq!(tree.root(), keccak256([]));
        assert_eq!(
            tree.root(),
            alloy::primitives::b256!("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
        );
        assert_eq!(tree.proof(B256::ZERO), None);
    }

    #[test]
    fn one_leaf_is_its_own_root_with_an_empty_proof() {
        let leaf = keccak256(b"only");
        let tree = MerkleTree::new(vec![leaf]);
        assert_eq!(tree.root(), leaf);
        assert_eq!(tree.proof(leaf), Some(Vec::new()));
        assert!(verify(&[], leaf, leaf));
    }

    #[test]
    fn every_proof_verifies_for_one_to_nine_leaves() {
        for n in 1..=9 {
            let all = leaves(n);
            let tree = MerkleTree::new(all.clone());
            for leaf in &all {
                let proof = tree.proof(*leaf).expect("every leaf has a proof");
                assert!(verify(&proof, tree.root(), *leaf), "{n} leaves: a proof does not verify");
                assert!(!verify(&proof, tree.root(), keccak256(b"other")));
            }
            assert_eq!(tree.proof(keccak256(b"not a leaf")), None);
            // The order leaves come in does not matter.
            let mut reversed = all.clone();
            reversed.reverse();
            assert_eq!(MerkleTree::new(reversed).root(), tree.root());
        }
    }

    /// OpenZeppelin's layout by hand for 3 sorted leaves a < b < c: the array is
    /// [root, n1, c, b, a] with n1 = H(b, a), root = H(n1, c) — c pairs with a node, not a leaf.
    #[test]
    fn three_leaves_follow_the_openzeppelin_layout_not_a_bottom_up_tree() {
        let s = sorted(leaves(3));
        let (a, b, c) = (s[0], s[1], s[2]);
        let n1 = hash_pair(b, a);
        let oz_root = hash_pair(n1, c);
        let tree = MerkleTree::new(leaves(3));
        assert_eq!(tree.root(), oz_root);
        assert_eq!(tree.proof(c), Some(vec![n1]));
        assert_eq!(tree.proof(a), Some(vec![b, c]));

        // A naive bottom-up tree that pairs the odd leaf with itself gives another root. (One that
        // carries the odd leaf up happens to agree at 3 leaves; see the 5-leaf test.)
        assert_ne!(tree.root(), hash_pair(hash_pair(a, b), hash_pair(c, c)));
    }

    /// 5 sorted leaves l0 < … < l4 sit at [8, 7, 6, 5, 4]:
    /// n3 = H(l1 at 7, l0 at 8), n2 = H(l3 at 5, l2 at 6), n1 = H(n3, l4 at 4), root = H(n1, n2).
    #[test]
    fn five_leaves_follow_the_openzeppelin_layout() {
        let l = sorted(leaves(5));
        let n3 = hash_pair(l[1], l[0]);
        let n2 = hash_pair(l[3], l[2]);
        let n1 = hash_pair(n3, l[4]);
        let root = hash_pair(n1, n2);
        let tree = MerkleTree::new(leaves(5));
        assert_eq!(tree.root(), root);
        assert_eq!(tree.proof(l[0]), Some(vec![l[1], l[4], n2]));
        assert_eq!(tree.proof(l[4]), Some(vec![n3, n2]));
        assert_eq!(tree.proof(l[2]), Some(vec![l[3], n1]));

        // A naive bottom-up tree pairs l4 last, at the top: another root.
        let naive = hash_pair(hash_pair(hash_pair(l[0], l[1]), hash_pair(l[2], l[3])), l[4]);
        assert_ne!(tree.root(), naive);
    }

    #[test]
    fn leaves_are_domain_separated() {
        let address = Address::repeat_byte(0xab);
        let mut preimage = vec![0x01];
        preimage.extend_from_slice(address.as_slice());
        preimage.extend_from_slice(&[0x02, 0xfa, 0xf0, 0x80]);
        assert_eq!(validator_leaf(address, 50_000_000), keccak256(&preimage));

        let id = B256::repeat_byte(0x11);
        let mut preimage = vec![0x00];
        preimage.extend_from_slice(id.as_slice());
        assert_eq!(result_leaf(id), keccak256(&preimage));
    }

    #[test]
    fn validator_tree_proves_its_members_with_their_power() {
        let validators: Vec<Validator> = (1..=4u8)
            .map(|i| Validator {
                operator: format!("sedavaloper{i}"),
                eth_address: Address::repeat_byte(i),
                power: u32::from(i) * 10_000_000,
            })
            .collect();
        let tree = ValidatorTree::new(&validators);
        for v in &validators {
            let (power, proof) = tree.member(v.eth_address).expect("a validator is a member");
            assert_eq!(power, v.power);
            assert!(verify(&proof, tree.root(), validator_leaf(v.eth_address, power)));
        }
        assert_eq!(tree.member(Address::repeat_byte(9)), None);
        assert_eq!(tree.total_power(), 100_000_000);
        assert_eq!(tree.members().count(), 4);
    }
}
