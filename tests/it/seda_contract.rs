//! The test SEDA Prover (`tests/contracts/SedaProver.sol`) verifies like seda-evm-contracts v1.0.0
//! (`SEDA.md` §2–§4), on a real anvil, against batches, trees and signatures built by
//! `ferry::seda`: a valid post lands once; each broken post (order, proof, signature, high s,
//! power, pause, age) reverts with the Prover's own error; a validator-set change moves the
//! stored root and the next batch verifies against it; the Core names its Prover.
//!
//! The contract shares no code with ferry: its keccak preimages, Merkle hashing and ecrecover
//! are its own, so a batch it accepts is one the real Prover accepts too.

use alloy::primitives::{Address, B256, Bytes, U256, b256, keccak256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::SignerSync;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolError, SolEvent, SolValue};
use ferry::seda::prover::{
    self, Batch, BatchAlreadyExists, BatchHeightTooOld, BatchPosted, ConsensusNotReached,
    ECDSAInvalidSignature, ECDSAInvalidSignatureLength, ECDSAInvalidSignatureS, EnforcedPause,
    InvalidSignature, InvalidValidatorOrder, InvalidValidatorProof, MismatchedSignaturesAndProofs,
    ProverRevert, postBatchCall,
};
use ferry::seda::sign::{Signers, signers_in};
use ferry::seda::tree::{ValidatorTree, validator_leaf, verify};
use ferry::seda::{BatchHeader, CONSENSUS_PERCENTAGE, Signature, SignedBatch, Validator};
use serde_json::Value;

use crate::support::devnet::{Anvil, DEV_ADDRESSES, provider};

alloy::sol! {
    /// What the test contracts have beyond the real interface in `ferry::seda::prover`.
    interface ITestSeda {
        struct TestBatch { uint64 batchHeight; uint64 blockHeight; bytes32 validatorsRoot; bytes32 resultsRoot; bytes32 provingMetadata; }
        function CONSENSUS_PERCENTAGE() external view returns (uint32);
        function postedCount() external view returns (uint256);
        function postCount(uint64 batchHeight) external view returns (uint256);
        function pause() external;
        function unpause() external;
        function setMaxBatchAge(uint64 maxBatchAge) external;
        function deriveBatchId(TestBatch b) external pure returns (bytes32);
        function setSedaProver(address prover) external;
        error OwnableUnauthorizedAccount(address account);
    }
}

/// secp256k1's group order: `n - s` is the high-s twin of a signature.
const SECP256K1_N: U256 =
    alloy::primitives::uint!(0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256);

/// Unequal powers over five validators (five leaves: not a power of two). The first two hold
/// exactly the threshold; they sum to less than 1e8, as the chain's floored powers do.
const POWERS: [u32; 5] = [40_000_000, 26_666_666, 20_000_000, 10_000_000, 3_333_333];

/// A validator set with its keys.
#[derive(Clone)]
struct Set {
    keys: Vec<PrivateKeySigner>,
    entries: Vec<Validator>,
}

impl Set {
    fn random(powers: &[u32]) -> Set {
        let keys: Vec<_> = powers.iter().map(|_| PrivateKeySigner::random()).collect();
        Set::of(keys, powers)
    }

    fn of(keys: Vec<PrivateKeySigner>, powers: &[u32]) -> Set {
        assert_eq!(keys.len(), powers.len());
        let entries = keys
            .iter()
            .zip(powers)
            .map(|(k, &power)| Validator {
                operator: format!("sedavaloper1{}", k.address().to_string().to_lowercase()),
                eth_address: k.address(),
                power,
            })
            .collect();
        Set { keys, entries }
    }

    fn tree(&self) -> ValidatorTree {
        ValidatorTree::new(&self.entries)
    }

    fn root(&self) -> B256 {
        self.tree().root()
    }

    fn power_of(&self, address: Address) -> u32 {
        self.entries.iter().find(|v| v.eth_address == address).expect("a member").power
    }
}

/// Signs `id` as a SEDA validator does: raw id, `r ‖ s ‖ v` with v ∈ {0, 1}.
fn sign(key: &PrivateKeySigner, id: B256) -> [u8; 65] {
    let sig = key.sign_hash_sync(&id).expect("signs");
    let mut out = [0u8; 65];
    out[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    out[32..64].copy_from_slice(&sig.s().to_be_bytes::<32>());
    out[64] = u8::from(sig.v());
    out
}

fn header(number: u64, validators: &Set) -> BatchHeader {
    BatchHeader {
        number,
        block_height: 5_000 + 7 * number,
        validators_root: validators.root(),
        results_root: keccak256(format!("results of batch {number}")),
        proving_metadata: Bytes::new(),
    }
}

/// Batch `number` whose own validators are `validators`, signed by the members `signed_by` of `signers`.
fn signed_batch(number: u64, validators: &Set, signers: &Set, signed_by: &[usize]) -> SignedBatch {
    let header = header(number, validators);
    let id = header.id();
    let signatures = signed_by
        .iter()
        .map(|&i| Signature {
            operator: signers.entries[i].operator.clone(),
            bytes: sign(&signers.keys[i], id),
        })
        .collect();
    SignedBatch {
        header,
        batch_id: id,
        validators: validators.entries.clone(),
        signatures,
        result_ids: vec![],
    }
}

fn all(set: &Set) -> Vec<usize> {
    (0..set.keys.len()).collect()
}

/// What `postBatch` posts for a header.
fn posted(header: &BatchHeader) -> Batch {
    Batch {
        batchHeight: header.number,
        blockHeight: header.block_height,
        validatorsRoot: header.validators_root,
        resultsRoot: header.results_root,
        provingMetadata: header.proving_metadata_hash(),
    }
}

/// The `postBatch` call ferry builds for `batch` with proofs from `tree`, decoded so that a test
/// can break one part of it.
fn post(batch: &SignedBatch, tree: &ValidatorTree) -> postBatchCall {
    post_with(batch, &signers_in(batch, tree))
}

fn post_with(batch: &SignedBatch, signers: &Signers) -> postBatchCall {
    postBatchCall::abi_decode(&prover::post_batch_calldata(batch, signers)).expect("ferry's calldata decodes")
}

/// Deploys a Prover whose initial (last) batch is `initial`.
async fn deploy_prover(chain: &Anvil, initial: &BatchHeader, max_age: u64) -> Address {
    chain.deploy("SedaProver", &(posted(initial), max_age).abi_encode_params()).await
}

/// The revert data of an `eth_call` that must revert.
async fn revert_data(chain: &Anvil, from: Option<Address>, to: Address, data: Vec<u8>) -> Bytes {
    let mut tx = TransactionRequest::default().to(to).input(Bytes::from(data).into());
    if let Some(from) = from {
        tx = tx.from(from);
    }
    let err = provider(&chain.url()).call(tx).await.expect_err("the call reverts");
    err.as_error_resp()
        .and_then(|e| e.as_revert_data())
        .unwrap_or_else(|| panic!("a revert without data: {err}"))
}

/// The error `call` reverts with, which must be `E`.
async fn reverts<E: SolError>(chain: &Anvil, prover: Address, call: &postBatchCall) -> E {
    let data = revert_data(chain, None, prover, call.abi_encode()).await;
    decode::<E>(&data)
}

fn decode<E: SolError>(data: &[u8]) -> E {
    E::abi_decode(data).unwrap_or_else(|e| {
        panic!("revert {} is not {}: {e}", alloy::primitives::hex::encode_prefixed(data), E::SIGNATURE)
    })
}

async fn view<C: SolCall>(chain: &Anvil, to: Address, call: C) -> C::Return {
    let out = chain.call(to, call.abi_encode()).await.expect("a view answers");
    C::abi_decode_returns(&out).expect("the view's return decodes")
}

fn topic(receipt_log: &Value, i: usize) -> B256 {
    receipt_log["topics"][i].as_str().and_then(|t| t.parse().ok()).expect("a topic")
}

fn dev(i: usize) -> Address {
    DEV_ADDRESSES[i].parse().expect("an address")
}

/// OpenZeppelin's SimpleMerkleTree root of five leaves, written out: sorted l0 < … < l4 at
/// `tree[8..=4]`, `tree[3] = h(l1, l0)`, `tree[2] = h(l3, l2)`, `tree[1] = h(tree[3], l4)`,
/// `tree[0] = h(tree[1], tree[2])`; each pair hashed in ascending order.
fn five_leaf_root(mut leaves: Vec<B256>) -> B256 {
    fn h(a: B256, b: B256) -> B256 {
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        keccak256([lo.as_slice(), hi.as_slice()].concat())
    }
    assert_eq!(leaves.len(), 5);
    leaves.sort();
    h(h(h(leaves[1], leaves[0]), leaves[4]), h(leaves[3], leaves[2]))
}

#[tokio::test]
async fn a_signed_batch_lands_once_and_each_broken_post_reverts_with_the_provers_error() {
    let chain = Anvil::start(31501).await;
    let set = Set::random(&POWERS);
    let leaves = set.entries.iter().map(|v| validator_leaf(v.eth_address, v.power)).collect();
    assert_eq!(set.root(), five_leaf_root(leaves), "five leaves: ferry's root is OpenZeppelin's");

    let initial = header(0, &set);
    let prover = deploy_prover(&chain, &initial, 100).await;
    assert_eq!(view(&chain, prover, prover::getLastBatchHeightCall {}).await, 0);
    assert_eq!(view(&chain, prover, prover::getLastValidatorsRootCall {}).await, set.root());
    assert_eq!(view(&chain, prover, prover::getMaxBatchAgeCall {}).await, 100);
    assert!(!view(&chain, prover, prover::pausedCall {}).await);
    assert_eq!(view(&chain, prover, ITestSeda::CONSENSUS_PERCENTAGECall {}).await, CONSENSUS_PERCENTAGE);
    let stored = view(&chain, prover, prover::getBatchCall { batchHeight: 0 }).await;
    assert_eq!((stored.resultsRoot, stored.sender), (initial.results_root, dev(0)));

    let batch = signed_batch(1, &set, &set, &all(&set));
    let good = post(&batch, &set.tree());
    assert_eq!(good.signatures.len(), 5);
    assert!(good.validatorProofs.windows(2).all(|w| w[0].signer < w[1].signer), "ferry sorts by address");
    for p in &good.validatorProofs {
        assert!(verify(&p.merkleProof, set.root(), validator_leaf(p.signer, p.votingPower)));
    }

    let mut call = good.clone();
    call.validatorProofs.pop();
    reverts::<MismatchedSignaturesAndProofs>(&chain, prover, &call).await;

    let mut call = good.clone();
    call.signatures.swap(0, 1);
    call.validatorProofs.swap(0, 1);
    reverts::<InvalidValidatorOrder>(&chain, prover, &call).await;

    // The same signer twice is out of order too: strictly ascending.
    let mut call = good.clone();
    call.signatures[1] = call.signatures[0].clone();
    call.validatorProofs[1] = call.validatorProofs[0].clone();
    reverts::<InvalidValidatorOrder>(&chain, prover, &call).await;

    // A proof from another tree (the same validators and one more) does not reach the stored root.
    let mut bigger = set.clone();
    bigger.entries.push(Validator {
        operator: "extra".into(),
        eth_address: Address::repeat_byte(0xee),
        power: 1,
    });
    let mut call = good.clone();
    let signer = call.validatorProofs[2].signer;
    call.validatorProofs[2].merkleProof = bigger.tree().member(signer).expect("a member").1;
    reverts::<InvalidValidatorProof>(&chain, prover, &call).await;

    // A claimed power that is not the leaf's.
    let mut call = good.clone();
    call.validatorProofs[0].votingPower += 1;
    reverts::<InvalidValidatorProof>(&chain, prover, &call).await;

    // A tampered r recovers to nobody or to someone else.
    let mut call = good.clone();
    let mut sig = call.signatures[2].to_vec();
    sig[5] ^= 0x40;
    call.signatures[2] = sig.into();
    let data = revert_data(&chain, None, prover, call.abi_encode()).await;
    assert!(
        data[..4] == InvalidSignature::SELECTOR || data[..4] == ECDSAInvalidSignature::SELECTOR,
        "a tampered signature reverts {data}"
    );

    // A valid signature of another id recovers to another address.
    let other_id = signed_batch(2, &set, &set, &[]).batch_id;
    let mut call = good.clone();
    let i = set.keys.iter().position(|k| k.address() == call.validatorProofs[3].signer).expect("a key");
    let mut sig = sign(&set.keys[i], other_id);
    sig[64] += 27;
    call.signatures[3] = sig.to_vec().into();
    reverts::<InvalidSignature>(&chain, prover, &call).await;

    // v as the chain stores it (0/1, not 27/28): ecrecover refuses it.
    let mut call = good.clone();
    let mut sig = call.signatures[0].to_vec();
    assert!(sig[64] == 27 || sig[64] == 28, "ferry posts v + 27");
    sig[64] -= 27;
    call.signatures[0] = sig.into();
    reverts::<ECDSAInvalidSignature>(&chain, prover, &call).await;

    let mut call = good.clone();
    let mut sig = call.signatures[4].to_vec();
    sig.pop();
    call.signatures[4] = sig.into();
    let e = reverts::<ECDSAInvalidSignatureLength>(&chain, prover, &call).await;
    assert_eq!(e.length, U256::from(64));

    // The high-s twin of a valid signature is valid secp256k1, and refused.
    let mut call = good.clone();
    let mut sig = call.signatures[1].to_vec();
    let high_s = SECP256K1_N - U256::from_be_slice(&sig[32..64]);
    sig[32..64].copy_from_slice(&high_s.to_be_bytes::<32>());
    sig[64] = if sig[64] == 27 { 28 } else { 27 };
    call.signatures[1] = sig.into();
    let e = reverts::<ECDSAInvalidSignatureS>(&chain, prover, &call).await;
    assert_eq!(e.s, B256::from(high_s));

    // 40 % + 20 % + 3.33 % of the power: below two thirds.
    let mut few = signers_in(&batch, &set.tree());
    few.signers.retain(|s| [POWERS[0], POWERS[2], POWERS[4]].contains(&set.power_of(s.address)));
    few.power = few.signers.iter().map(|s| u64::from(s.power)).sum();
    assert_eq!(few.power, 63_333_333);
    assert!(!few.hold_threshold());
    reverts::<ConsensusNotReached>(&chain, prover, &post_with(&batch, &few)).await;

    chain.send(prover, ITestSeda::pauseCall {}.abi_encode()).await;
    assert!(view(&chain, prover, prover::pausedCall {}).await);
    let data = revert_data(&chain, None, prover, good.abi_encode()).await;
    decode::<EnforcedPause>(&data);
    assert_eq!(prover::classify_revert(&data), ProverRevert::Paused);
    chain.send(prover, ITestSeda::unpauseCall {}.abi_encode()).await;

    let receipt = chain.send(prover, good.abi_encode()).await;
    let logs = receipt["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 1, "one event: {receipt}");
    assert_eq!(topic(&logs[0], 0), BatchPosted::SIGNATURE_HASH);
    assert_eq!(topic(&logs[0], 1), B256::from(U256::from(1)));
    assert_eq!(topic(&logs[0], 2), batch.batch_id);
    assert_eq!(topic(&logs[0], 3), dev(0).into_word());
    assert_eq!(view(&chain, prover, prover::getLastBatchHeightCall {}).await, 1);
    let stored = view(&chain, prover, prover::getBatchCall { batchHeight: 1 }).await;
    assert_eq!((stored.resultsRoot, stored.sender), (batch.header.results_root, dev(0)));
    assert_eq!(view(&chain, prover, ITestSeda::postedCountCall {}).await, U256::from(1));
    assert_eq!(view(&chain, prover, ITestSeda::postCountCall { batchHeight: 1 }).await, U256::from(1));

    let data = revert_data(&chain, None, prover, good.abi_encode()).await;
    assert_eq!(decode::<BatchAlreadyExists>(&data).batchHeight, 1);
    assert!(matches!(prover::classify_revert(&data), ProverRevert::AlreadyThere(_)));

    // Exactly the threshold (40 % + 26.666666 %) is enough.
    let next = signed_batch(2, &set, &set, &[0, 1]);
    let exact = signers_in(&next, &set.tree());
    assert_eq!(exact.power, u64::from(CONSENSUS_PERCENTAGE));
    assert!(exact.hold_threshold());
    chain.send(prover, post_with(&next, &exact).abi_encode()).await;
    assert_eq!(view(&chain, prover, prover::getLastBatchHeightCall {}).await, 2);
    assert_eq!(view(&chain, prover, ITestSeda::postedCountCall {}).await, U256::from(2));
}

#[tokio::test]
async fn heights_below_the_last_verify_against_the_stored_root_and_too_old_ones_are_refused() {
    let chain = Anvil::start(31502).await;
    let set = Set::random(&POWERS);
    let later = Set::random(&POWERS);
    let prover = deploy_prover(&chain, &header(10, &set), 3).await;

    // Checked before anything else but the pause: the lengths.
    let mut call = post(&signed_batch(7, &later, &set, &all(&set)), &set.tree());
    call.signatures.pop();
    reverts::<MismatchedSignaturesAndProofs>(&chain, prover, &call).await;

    // 10 >= 7 + 3.
    let call = post(&signed_batch(7, &later, &set, &all(&set)), &set.tree());
    let data = revert_data(&chain, None, prover, call.abi_encode()).await;
    let e = decode::<BatchHeightTooOld>(&data);
    assert_eq!((e.batchHeight, e.lastBatchHeight, e.maxAge), (7, 10, 3));
    assert!(matches!(prover::classify_revert(&data), ProverRevert::TooOld(_)));

    // 10 < 8 + 3: a height below the last, never posted, is accepted against the stored root,
    // which does not move to its validators.
    let eight = signed_batch(8, &later, &set, &all(&set));
    chain.send(prover, post(&eight, &set.tree()).abi_encode()).await;
    assert_eq!(view(&chain, prover, prover::getLastBatchHeightCall {}).await, 10);
    assert_eq!(view(&chain, prover, prover::getLastValidatorsRootCall {}).await, set.root());
    let stored = view(&chain, prover, prover::getBatchCall { batchHeight: 8 }).await;
    assert_eq!(stored.resultsRoot, eight.header.results_root);

    // The initial batch counts as stored.
    let ten = post(&signed_batch(10, &set, &set, &all(&set)), &set.tree());
    assert_eq!(reverts::<BatchAlreadyExists>(&chain, prover, &ten).await.batchHeight, 10);

    // Age before existence: with a max age of 1, the stored batch 8 is too old, not already there.
    chain.send(prover, ITestSeda::setMaxBatchAgeCall { maxBatchAge: 1 }.abi_encode()).await;
    assert_eq!(view(&chain, prover, prover::getMaxBatchAgeCall {}).await, 1);
    let e = reverts::<BatchHeightTooOld>(&chain, prover, &post(&eight, &set.tree())).await;
    assert_eq!((e.batchHeight, e.lastBatchHeight, e.maxAge), (8, 10, 1));
    let nine = post(&signed_batch(9, &set, &set, &all(&set)), &set.tree());
    reverts::<BatchHeightTooOld>(&chain, prover, &nine).await;

    // Heights need not be consecutive.
    let fifteen = signed_batch(15, &later, &set, &all(&set));
    chain.send(prover, post(&fifteen, &set.tree()).abi_encode()).await;
    assert_eq!(view(&chain, prover, prover::getLastBatchHeightCall {}).await, 15);
    assert_eq!(view(&chain, prover, prover::getLastValidatorsRootCall {}).await, later.root());
}

#[tokio::test]
async fn a_validator_set_change_moves_the_root_and_the_next_batch_verifies_against_it() {
    let chain = Anvil::start(31503).await;
    let old = Set::random(&POWERS);
    // The new set keeps the old set's two largest validators (one at a new power) and adds three.
    let mut keys = vec![old.keys[0].clone(), old.keys[1].clone()];
    keys.extend((0..3).map(|_| PrivateKeySigner::random()));
    let new = Set::of(keys, &[40_000_000, 30_000_000, 15_000_000, 9_000_000, 5_999_999]);
    assert_ne!(old.root(), new.root());

    let initial = header(0, &old);
    let prover = deploy_prover(&chain, &initial, 100).await;
    let one = signed_batch(1, &new, &old, &all(&old));
    chain.send(prover, post(&one, &old.tree()).abi_encode()).await;
    assert_eq!(view(&chain, prover, prover::getLastValidatorsRootCall {}).await, new.root());

    // Batch 2 is signed by the new set: proofs from the old tree (SEDA's push-solver builds them
    // from the wrong batch) do not reach the stored root; proofs from the new tree do.
    let two = signed_batch(2, &new, &new, &all(&new));
    let stale = signers_in(&two, &old.tree());
    assert_eq!(stale.signers.len(), 2, "the two kept validators are in the old tree");
    reverts::<InvalidValidatorProof>(&chain, prover, &post_with(&two, &stale)).await;
    let fresh = signers_in(&two, &new.tree());
    assert_eq!(fresh.signers.len(), 5);
    let receipt = chain.send(prover, post_with(&two, &fresh).abi_encode()).await;
    assert_eq!(topic(&receipt["logs"][0], 2), two.batch_id);
    assert_eq!(view(&chain, prover, prover::getLastBatchHeightCall {}).await, 2);

    // A Prover still at batch 0 takes batch 2 directly while the old set's signers in it hold
    // the threshold in the old tree (40 % + 26.666666 %), and refuses it when they do not.
    let behind = deploy_prover(&chain, &initial, 100).await;
    let newcomers_only = signed_batch(2, &new, &new, &[2, 3, 4]);
    let none = signers_in(&newcomers_only, &old.tree());
    assert!(none.signers.is_empty());
    reverts::<ConsensusNotReached>(&chain, behind, &post_with(&newcomers_only, &none)).await;
    assert_eq!(stale.power, u64::from(CONSENSUS_PERCENTAGE));
    chain.send(behind, post_with(&two, &stale).abi_encode()).await;
    assert_eq!(view(&chain, behind, prover::getLastBatchHeightCall {}).await, 2);
    assert_eq!(view(&chain, behind, prover::getLastValidatorsRootCall {}).await, new.root());
}

#[tokio::test]
async fn the_prover_derives_ferrys_batch_id_and_the_core_names_its_prover() {
    let chain = Anvil::start(31504).await;
    let set = Set::random(&POWERS);
    let prover = deploy_prover(&chain, &header(0, &set), 100).await;

    // SEDA.md §2's test vector, and a batch with proving metadata (posted as its hash).
    let vector = BatchHeader {
        number: 1,
        block_height: 0,
        validators_root: b256!("bb9dcde527b03bcf4022f44c13ffce6eb445e765cc3064dd5c6093ca781a7ebc"),
        results_root: b256!("b361e88bec2624b327671f15761d4c24915dbc11503343f3e325d0d97061552a"),
        proving_metadata: Bytes::new(),
    };
    let with_metadata = BatchHeader { proving_metadata: Bytes::from_static(b"metadata"), ..header(77, &set) };
    for (h, expected) in [
        (&vector, Some(b256!("afd4483e5cfa9954ecc23c78da0abd2c1a92d0e8be6b3e5bf554cd0ea5ac305b"))),
        (&with_metadata, None),
    ] {
        let b = posted(h);
        let derived = view(
            &chain,
            prover,
            ITestSeda::deriveBatchIdCall {
                b: ITestSeda::TestBatch {
                    batchHeight: b.batchHeight,
                    blockHeight: b.blockHeight,
                    validatorsRoot: b.validatorsRoot,
                    resultsRoot: b.resultsRoot,
                    provingMetadata: b.provingMetadata,
                },
            },
        )
        .await;
        assert_eq!(derived, h.id());
        if let Some(expected) = expected {
            assert_eq!(derived, expected);
        }
    }

    let core = chain.deploy("SedaCore", &prover.abi_encode()).await;
    assert_eq!(view(&chain, core, prover::getSedaProverCall {}).await, prover);
    let other = Address::repeat_byte(0x42);
    let set_call = ITestSeda::setSedaProverCall { prover: other }.abi_encode();
    let data = revert_data(&chain, Some(dev(1)), core, set_call.clone()).await;
    assert_eq!(decode::<ITestSeda::OwnableUnauthorizedAccount>(&data).account, dev(1));
    chain.send(core, set_call).await;
    assert_eq!(view(&chain, core, prover::getSedaProverCall {}).await, other);
}
