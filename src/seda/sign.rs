//! Who signed a batch, and whether that is enough: signatures recovered (low-s, over the raw id,
//! no EIP-191 prefix), checked against the previous batch's validators (what the source stores),
//! and against a destination's tree with the threshold ferry checks itself (what the target posts).

use std::collections::BTreeMap;

use alloy::primitives::{Address, B256, Bytes};

use super::tree::ValidatorTree;
use super::{CONSENSUS_PERCENTAGE, SignedBatch, Validator};

/// Why a batch is refused. Each names the check; the caller names the batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("its id is {computed}, not the batch_id {given} the API gave")]
    WrongId { given: B256, computed: B256 },
    #[error("signature {index} (validator {operator}) does not recover: {detail}")]
    Unrecoverable { index: usize, operator: String, detail: String },
    #[error("signature {index} (validator {operator}) has a high s value, which the Prover refuses")]
    HighS { index: usize, operator: String },
    #[error(
        "signature {index} (validator {operator}) recovers to {recovered}, not an ETH address of batch {previous}'s validators"
    )]
    NotAValidator { index: usize, operator: String, recovered: Address, previous: u64 },
}

/// The signer an ECDSA signature of `id` recovers to; refuses a high s (OpenZeppelin's ECDSA does).
pub fn recover(id: B256, signature: &[u8; 65]) -> Result<Address, String> {
    recover_checked(id, signature).map_err(|e| match e {
        RecoverError::HighS => "s is above secp256k1n/2 (a malleable signature)".to_string(),
        RecoverError::Other(detail) => detail,
    })
}

enum RecoverError {
    HighS,
    Other(String),
}

fn recover_checked(id: B256, bytes: &[u8; 65]) -> Result<Address, RecoverError> {
    // The chain writes v ∈ {0, 1}, the contract wants {27, 28}; alloy would also take EIP-155 v
    // values, which neither side produces, so they are refused here.
    let v = bytes[64];
    let parity = match v {
        0 | 27 => false,
        1 | 28 => true,
        other => return Err(RecoverError::Other(format!("v is {other}, not 0, 1, 27 or 28"))),
    };
    let signature = alloy::primitives::Signature::from_bytes_and_parity(&bytes[..64], parity);
    // alloy normalises s before recovering; OpenZeppelin's ECDSA refuses a high s instead, so the
    // check comes first.
    if signature.normalize_s().is_some() {
        return Err(RecoverError::HighS);
    }
    signature.recover_address_from_prehash(&id).map_err(|e| RecoverError::Other(e.to_string()))
}

/// Checks a batch before it is stored: its id recomputed, and every signature recovering to an
/// ETH address of `previous` (the validators of batch `number - 1`). Returns the first problem.
pub fn check(batch: &SignedBatch, previous_number: u64, previous: &[Validator]) -> Result<(), CheckError> {
    let computed = batch.header.id();
    if computed != batch.batch_id {
        return Err(CheckError::WrongId { given: batch.batch_id, computed });
    }
    for (index, signature) in batch.signatures.iter().enumerate() {
        let operator = signature.operator.clone();
        let recovered = match recover_checked(computed, &signature.bytes) {
            Ok(address) => address,
            Err(RecoverError::HighS) => return Err(CheckError::HighS { index, operator }),
            Err(RecoverError::Other(detail)) => {
                return Err(CheckError::Unrecoverable { index, operator, detail });
            }
        };
        if !previous.iter().any(|v| v.eth_address == recovered) {
            return Err(CheckError::NotAValidator { index, operator, recovered, previous: previous_number });
        }
    }
    Ok(())
}

/// One signer as `postBatch` wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    pub address: Address,
    pub power: u32,
    pub proof: Vec<B256>,
    /// `r ‖ s ‖ v` with v ∈ {27, 28}.
    pub signature: Bytes,
}

/// A batch's signers that are in `tree`, sorted ascending by address, with the sum of their power.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signers {
    pub signers: Vec<Signer>,
    pub power: u64,
}

impl Signers {
    /// Whether they hold the Prover's threshold (`CONSENSUS_PERCENTAGE`).
    pub fn hold_threshold(&self) -> bool {
        self.power >= u64::from(CONSENSUS_PERCENTAGE)
    }
}

/// The signatures of `batch` whose signers are in `tree`; the others (not in the tree, not
/// recoverable, duplicates) are left out.
pub fn signers_in(batch: &SignedBatch, tree: &ValidatorTree) -> Signers {
    let mut by_address = BTreeMap::new();
    for (address, bytes) in recovered(batch) {
        if by_address.contains_key(&address) {
            continue;
        }
        let Some((power, proof)) = tree.member(address) else { continue };
        let mut bytes = bytes;
        if bytes[64] < 27 {
            bytes[64] += 27;
        }
        by_address
            .insert(address, Signer { address, power, proof, signature: Bytes::copy_from_slice(&bytes) });
    }
    // A BTreeMap iterates ascending: the order the Prover requires (strictly ascending signers).
    let signers: Vec<Signer> = by_address.into_values().collect();
    let power = signers.iter().map(|s| u64::from(s.power)).sum();
    Signers { signers, power }
}

/// The addresses a batch's signatures recover to, each with its signature.
type Recovered = Vec<(Address, [u8; 65])>;

/// The addresses `batch`'s signatures recover to, with each signature; unrecoverable ones left out.
fn recovered(batch: &SignedBatch) -> Recovered {
    let id = batch.header.id();
    batch
        .signatures
        .iter()
        .filter_map(|s| recover_checked(id, &s.bytes).ok().map(|address| (address, s.bytes)))
        .collect()
}

/// The power the distinct `signers` hold in `tree`: `signers_in(…).power`, without the proofs.
fn power_in(signers: &[(Address, [u8; 65])], tree: &ValidatorTree) -> u64 {
    let mut seen = std::collections::BTreeSet::new();
    signers
        .iter()
        .filter(|(address, _)| seen.insert(*address))
        .filter_map(|(address, _)| tree.power_of(*address))
        .map(u64::from)
        .sum()
}

/// What to post to bring a destination from `last` (whose tree is `tree_of_last`) to `target`,
/// given the stored batches above `last` up to `target` (ascending, consecutive): `target` alone
/// when its signers hold the threshold in the last tree; otherwise first the highest batch K
/// between whose signers do, then on from K (SEDA.md §5.3). Heights in posting order.
/// `Err(height)`: no batch above that height qualifies against its tree (not even the next one).
///
/// `above` missing a height (or holding one out of place) is also `Err`, with the first missing
/// height. A `target` at or below `last` needs nothing: `Ok(vec![])`.
pub fn plan_posts(
    last: u64,
    tree_of_last: &ValidatorTree,
    above: &[SignedBatch],
    target: u64,
) -> Result<Vec<u64>, u64> {
    if target <= last {
        return Ok(Vec::new());
    }
    // `above[i]` is batch `last + 1 + i`; only up to `target` is used.
    let needed = usize::try_from(target - last).map_err(|_| last.saturating_add(1))?;
    for (i, height) in (last + 1..=target).enumerate() {
        match above.get(i) {
            Some(batch) if batch.header.number == height => {}
            _ => return Err(height),
        }
    }
    let above = &above[..needed];

    // Recovering is the expensive part and does not depend on the tree: each batch's signers are
    // recovered at most once, however many trees they are weighed against.
    let mut recovered_cache: Vec<Option<Recovered>> = vec![None; needed];
    let mut holds = |height: u64, tree: &ValidatorTree| {
        let index = (height - last - 1) as usize;
        let signers = recovered_cache[index].get_or_insert_with(|| recovered(&above[index]));
        power_in(signers, tree) >= u64::from(CONSENSUS_PERCENTAGE)
    };

    let mut plan = Vec::new();
    let mut current = last;
    let mut tree = tree_of_last.clone();
    loop {
        if holds(target, &tree) {
            plan.push(target);
            return Ok(plan);
        }
        let Some(next) = (current + 1..target).rev().find(|&k| holds(k, &tree)) else {
            return Err(current);
        };
        plan.push(next);
        // Once `next` is posted, the Prover's tree is `next`'s own validators.
        tree = ValidatorTree::new(&above[(next - last - 1) as usize].validators);
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use alloy::primitives::U256;

    use super::*;
    use crate::seda::testing::{address, batch, chain, quarters, sign, validator};
    use crate::seda::tree::{validator_leaf, verify};

    fn set(pairs: &[(u8, u32)]) -> Vec<Validator> {
        pairs.iter().map(|(i, p)| validator(*i, *p)).collect()
    }

    /// The same signature with s replaced by n - s and the parity flipped: valid ECDSA, high s.
    fn high_s(bytes: &[u8; 65]) -> [u8; 65] {
        let n = U256::from_str_radix("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141", 16)
            .expect("secp256k1n is hex");
        let s = U256::from_be_slice(&bytes[32..64]);
        let mut out = *bytes;
        out[32..64].copy_from_slice(&(n - s).to_be_bytes::<32>());
        out[64] = bytes[64] ^ 1;
        out
    }

    #[test]
    fn recover_takes_v_as_0_1_or_27_28_over_the_raw_id() {
        let id = B256::repeat_byte(0x42);
        let mut bytes = sign(id, 1).bytes;
        assert_eq!(recover(id, &bytes), Ok(address(1)));
        bytes[64] += 27;
        assert_eq!(recover(id, &bytes), Ok(address(1)));
        bytes[64] = 37;
        assert!(recover(id, &bytes).expect_err("v = 37 is refused").contains("v is 37"));
        // Over another id (e.g. with an EIP-191 prefix) it recovers to someone else.
        let prefixed = alloy::primitives::eip191_hash_message(id);
        assert_ne!(recover(prefixed, &sign(id, 1).bytes), Ok(address(1)));
    }

    #[test]
    fn recover_refuses_a_high_s() {
        let id = B256::repeat_byte(0x42);
        let bytes = high_s(&sign(id, 1).bytes);
        // alloy alone would recover it (it normalises s); the Prover would not.
        let message = recover(id, &bytes).expect_err("a high s is refused");
        assert!(message.contains("s is above"), "{message}");
    }

    #[test]
    fn check_accepts_a_batch_signed_by_the_previous_validators() {
        let previous = set(&quarters(1));
        let b = batch(5, set(&quarters(5)), &[1, 2, 3]);
        assert_eq!(check(&b, 4, &previous), Ok(()));
    }

    #[test]
    fn check_refuses_a_wrong_id() {
        let mut b = batch(5, set(&quarters(1)), &[1]);
        b.batch_id = B256::repeat_byte(9);
        assert_eq!(
            check(&b, 4, &set(&quarters(1))),
            Err(CheckError::WrongId { given: B256::repeat_byte(9), computed: b.header.id() })
        );
    }

    #[test]
    fn check_names_the_signature_that_is_not_a_validators() {
        let b = batch(5, set(&quarters(1)), &[1, 9]);
        assert_eq!(
            check(&b, 4, &set(&quarters(1))),
            Err(CheckError::NotAValidator {
                index: 1,
                operator: "sedavaloper1test9".into(),
                recovered: address(9),
                previous: 4
            })
        );
    }

    #[test]
    fn check_refuses_high_s_and_garbage() {
        let previous = set(&quarters(1));
        let mut b = batch(5, set(&quarters(1)), &[1, 2]);
        b.signatures[1].bytes = high_s(&b.signatures[1].bytes);
        assert_eq!(
            check(&b, 4, &previous),
            Err(CheckError::HighS { index: 1, operator: "sedavaloper1test2".into() })
        );
        b.signatures[1].bytes = [0; 65];
        assert!(matches!(check(&b, 4, &previous), Err(CheckError::Unrecoverable { index: 1, .. })));
    }

    #[test]
    fn signers_in_keeps_tree_members_once_sorted_with_v_27_28() {
        let tree =
            ValidatorTree::new(&set(&[(1, 30_000_000), (2, 30_000_000), (3, 20_000_000), (4, 20_000_000)]));
        let mut b = batch(5, set(&quarters(1)), &[4, 1, 9, 2, 1]);
        b.signatures.push(crate::seda::Signature { operator: "garbage".into(), bytes: [1; 65] });
        let high = high_s(&sign(b.batch_id, 3).bytes);
        b.signatures.push(crate::seda::Signature { operator: "high".into(), bytes: high });

        let signers = signers_in(&b, &tree);
        let addresses: Vec<Address> = signers.signers.iter().map(|s| s.address).collect();
        let mut expected = vec![address(1), address(2), address(4)];
        expected.sort();
        assert_eq!(addresses, expected);
        assert_eq!(signers.power, 80_000_000);
        assert!(signers.hold_threshold());
        for s in &signers.signers {
            assert!(matches!(s.signature[64], 27 | 28));
            assert_eq!(recover(b.batch_id, &s.signature[..].try_into().expect("65 bytes")), Ok(s.address));
            assert!(verify(&s.proof, tree.root(), validator_leaf(s.address, s.power)));
        }
    }

    #[test]
    fn threshold_is_at_least_the_consensus_percentage() {
        let at = Signers { signers: Vec::new(), power: u64::from(CONSENSUS_PERCENTAGE) };
        let below = Signers { signers: Vec::new(), power: u64::from(CONSENSUS_PERCENTAGE) - 1 };
        assert!(at.hold_threshold());
        assert!(!below.hold_threshold());
    }

    fn tree_of(batches: &[SignedBatch], height: u64) -> ValidatorTree {
        ValidatorTree::new(&batches[height as usize].validators)
    }

    fn plan(batches: &[SignedBatch], last: u64, target: u64) -> Result<Vec<u64>, u64> {
        plan_posts(last, &tree_of(batches, last), &batches[last as usize + 1..=target as usize], target)
    }

    #[test]
    fn no_set_change_posts_the_target_alone() {
        let batches = chain(&vec![quarters(1); 10]);
        assert_eq!(plan(&batches, 2, 9), Ok(vec![9]));
        assert_eq!(plan(&batches, 8, 9), Ok(vec![9]));
        assert_eq!(plan_posts(9, &tree_of(&batches, 9), &[], 9), Ok(vec![]));
    }

    /// The set changes at 5: batches up to 5 are signed by the old keys, 6 on by the new ones.
    #[test]
    fn a_set_change_posts_the_change_batch_first() {
        let mut sets = vec![quarters(1); 5];
        sets.extend(vec![quarters(5); 5]);
        let batches = chain(&sets);
        assert_eq!(plan(&batches, 1, 8), Ok(vec![5, 8]));
        assert_eq!(plan(&batches, 1, 6), Ok(vec![5, 6]));
        // Up to the change batch itself, the old set signs: no intermediate.
        assert_eq!(plan(&batches, 1, 5), Ok(vec![5]));
        // From the change batch, the new tree is the one stored.
        assert_eq!(plan(&batches, 5, 9), Ok(vec![9]));
    }

    #[test]
    fn two_set_changes_post_both_change_batches() {
        let mut sets = vec![quarters(1); 4];
        sets.extend(vec![quarters(5); 3]);
        sets.extend(vec![quarters(9); 4]);
        let batches = chain(&sets);
        // Changes at 4 (keys 5..8 sign 5, 6, 7) and 7 (keys 9..12 sign 8 on).
        assert_eq!(plan(&batches, 0, 10), Ok(vec![4, 7, 10]));
        assert_eq!(plan(&batches, 5, 10), Ok(vec![7, 10]));
    }

    #[test]
    fn a_partial_set_change_jumps_as_far_as_the_old_set_holds() {
        // 4..6: keys 1, 2, 3, 5 (the old tree still sees 75 %); 7 on: keys 3, 5, 6, 7 (25 %).
        let mut sets = vec![quarters(1); 4];
        sets.extend(vec![vec![(1, 25_000_000), (2, 25_000_000), (3, 25_000_000), (5, 25_000_000)]; 3]);
        sets.extend(vec![vec![(3, 25_000_000), (5, 25_000_000), (6, 25_000_000), (7, 25_000_000)]; 3]);
        let batches = chain(&sets);
        // 5..7 are signed by 1, 2, 3, 5: they hold 75 % in 3's tree; 8 and 9 by 3, 5, 6, 7 (25 %).
        assert_eq!(plan(&batches, 3, 9), Ok(vec![7, 9]));
    }

    #[test]
    fn a_change_of_powers_only_jumps_straight_to_the_target() {
        let mut sets = vec![quarters(1); 4];
        sets.extend(vec![vec![(1, 40_000_000), (2, 30_000_000), (3, 20_000_000), (4, 10_000_000)]; 4]);
        let batches = chain(&sets);
        assert_eq!(plan(&batches, 1, 7), Ok(vec![7]));
    }

    #[test]
    fn nothing_qualifying_is_an_error_at_the_height_stuck_at() {
        let batches = chain(&vec![quarters(1); 6]);
        let stranger = ValidatorTree::new(&set(&quarters(20)));
        assert_eq!(plan_posts(2, &stranger, &batches[3..], 5), Err(2));

        // Stuck after one step: 4 is signed by the old keys, then its successor lacks signatures.
        let mut sets = vec![quarters(1); 4];
        sets.extend(vec![quarters(5); 3]);
        let mut batches = chain(&sets);
        batches[5] = batch(5, batches[5].validators.clone(), &[5]);
        batches[6] = batch(6, batches[6].validators.clone(), &[5]);
        assert_eq!(plan(&batches, 1, 6), Err(4));
    }

    #[test]
    fn a_gap_in_the_stored_batches_is_an_error_at_the_missing_height() {
        let batches = chain(&vec![quarters(1); 8]);
        let tree = tree_of(&batches, 2);
        let with_gap: Vec<SignedBatch> =
            batches[3..8].iter().filter(|b| b.header.number != 5).cloned().collect();
        assert_eq!(plan_posts(2, &tree, &with_gap, 7), Err(5));
        assert_eq!(plan_posts(2, &tree, &batches[3..6], 7), Err(6));
    }
}
