//! The Prover contract (seda-evm-contracts v1.0.0): `postBatch` and the views a pusher reads,
//! `getSedaProver()` of a Core, and every revert it can answer with, decoded by name.

use alloy::primitives::{Bytes, hex};
use alloy::sol_types::{Panic, Revert, SolCall, SolError};

use super::SignedBatch;
use super::sign::Signers;

alloy::sol! {
    struct Batch { uint64 batchHeight; uint64 blockHeight; bytes32 validatorsRoot; bytes32 resultsRoot; bytes32 provingMetadata; }
    struct ValidatorProof { uint32 votingPower; address signer; bytes32[] merkleProof; }
    function postBatch(Batch batch, bytes[] signatures, ValidatorProof[] validatorProofs);
    function getLastBatchHeight() external view returns (uint64);
    function getLastValidatorsRoot() external view returns (bytes32);
    function getMaxBatchAge() external view returns (uint64);
    function getBatch(uint64 batchHeight) external view returns (bytes32 resultsRoot, address sender);
    function paused() external view returns (bool);
    function getSedaProver() external view returns (address);
    function CONSENSUS_PERCENTAGE() external view returns (uint32);
    event BatchPosted(uint256 indexed batchHeight, bytes32 indexed batchHash, address indexed sender);
    error BatchAlreadyExists(uint64 batchHeight);
    error BatchHeightTooOld(uint64 batchHeight, uint64 lastBatchHeight, uint64 maxAge);
    error MismatchedSignaturesAndProofs();
    error InvalidValidatorOrder();
    error InvalidValidatorProof();
    error InvalidSignature();
    error ConsensusNotReached();
    error EnforcedPause();
    error ECDSAInvalidSignature();
    error ECDSAInvalidSignatureLength(uint256 length);
    error ECDSAInvalidSignatureS(bytes32 s);
}

/// `postBatch` calldata for `batch` with `signers` (sorted, v + 27: as `sign::signers_in` gives them).
pub fn post_batch_calldata(batch: &SignedBatch, signers: &Signers) -> Bytes {
    let header = &batch.header;
    let call = postBatchCall {
        batch: Batch {
            batchHeight: header.number,
            blockHeight: header.block_height,
            validatorsRoot: header.validators_root,
            resultsRoot: header.results_root,
            provingMetadata: header.proving_metadata_hash(),
        },
        signatures: signers.signers.iter().map(|s| s.signature.clone()).collect(),
        validatorProofs: signers
            .signers
            .iter()
            .map(|s| ValidatorProof { votingPower: s.power, signer: s.address, merkleProof: s.proof.clone() })
            .collect(),
    };
    call.abi_encode().into()
}

/// What a Prover's revert means to a pusher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProverRevert {
    /// `BatchAlreadyExists`: the batch is there; skip.
    AlreadyThere(String),
    /// `BatchHeightTooOld`: too old to post now; the delivery fails as too old.
    TooOld(String),
    /// `EnforcedPause`: the Prover is paused; the chain waits.
    Paused,
    /// Any other revert, decoded by name with its arguments when known (`InvalidValidatorProof()`),
    /// or its selector and data when not.
    Failed(String),
}

/// Reads revert data.
pub fn classify_revert(data: &[u8]) -> ProverRevert {
    let Some(selector) = data.get(..4) else {
        return ProverRevert::Failed(if data.is_empty() {
            "reverted without a reason".to_string()
        } else {
            format!("reverted with data too short for an error: 0x{}", hex::encode(data))
        });
    };
    if selector == EnforcedPause::SELECTOR {
        return ProverRevert::Paused;
    }
    // Errors without arguments: the name says everything.
    let bare: [([u8; 4], &str); 6] = [
        (MismatchedSignaturesAndProofs::SELECTOR, "MismatchedSignaturesAndProofs()"),
        (InvalidValidatorOrder::SELECTOR, "InvalidValidatorOrder()"),
        (InvalidValidatorProof::SELECTOR, "InvalidValidatorProof()"),
        (InvalidSignature::SELECTOR, "InvalidSignature()"),
        (ConsensusNotReached::SELECTOR, "ConsensusNotReached()"),
        (ECDSAInvalidSignature::SELECTOR, "ECDSAInvalidSignature()"),
    ];
    if let Some((_, name)) = bare.iter().find(|(s, _)| s == selector) {
        return ProverRevert::Failed((*name).to_string());
    }
    if selector == BatchAlreadyExists::SELECTOR {
        return match BatchAlreadyExists::abi_decode(data) {
            Ok(e) => ProverRevert::AlreadyThere(format!("BatchAlreadyExists({})", e.batchHeight)),
            Err(_) => undecodable("BatchAlreadyExists", data),
        };
    }
    if selector == BatchHeightTooOld::SELECTOR {
        return match BatchHeightTooOld::abi_decode(data) {
            Ok(e) => ProverRevert::TooOld(format!(
                "BatchHeightTooOld(batch {}, last {}, max age {})",
                e.batchHeight, e.lastBatchHeight, e.maxAge
            )),
            Err(_) => undecodable("BatchHeightTooOld", data),
        };
    }
    let failed = if selector == ECDSAInvalidSignatureLength::SELECTOR {
        ECDSAInvalidSignatureLength::abi_decode(data)
            .map(|e| format!("ECDSAInvalidSignatureLength({})", e.length))
            .map_err(|_| "ECDSAInvalidSignatureLength")
    } else if selector == ECDSAInvalidSignatureS::SELECTOR {
        ECDSAInvalidSignatureS::abi_decode(data)
            .map(|e| format!("ECDSAInvalidSignatureS({})", e.s))
            .map_err(|_| "ECDSAInvalidSignatureS")
    } else if selector == Revert::SELECTOR {
        Revert::abi_decode(data).map(|e| format!("Error({:?})", e.reason())).map_err(|_| "Error(string)")
    } else if selector == Panic::SELECTOR {
        Panic::abi_decode(data).map(|e| e.to_string()).map_err(|_| "Panic(uint256)")
    } else {
        return ProverRevert::Failed(format!(
            "unknown error 0x{} (data 0x{})",
            hex::encode(selector),
            hex::encode(data)
        ));
    };
    match failed {
        Ok(message) => ProverRevert::Failed(message),
        Err(name) => undecodable(name, data),
    }
}

/// A known selector whose arguments do not decode: named, with the data for whoever digs in.
fn undecodable(name: &str, data: &[u8]) -> ProverRevert {
    ProverRevert::Failed(format!("{name} with arguments that do not decode (data 0x{})", hex::encode(data)))
}

#[cfg(test)]
mod tests {
    use alloy::primitives::{B256, U256};

    use super::*;
    use crate::seda::sign::{recover, signers_in};
    use crate::seda::testing::{batch, quarters, sign, validator};
    use crate::seda::tree::{ValidatorTree, validator_leaf, verify};

    /// The selectors SEDA.md lists for seda-evm-contracts v1.0.0: a typo in a `sol!` signature
    /// would change them.
    #[test]
    fn selectors_match_the_deployed_contract() {
        assert_eq!(postBatchCall::SELECTOR, hex!("f6f5a0fd"));
        assert_eq!(getLastBatchHeightCall::SELECTOR, hex!("f61dc8db"));
        assert_eq!(getLastValidatorsRootCall::SELECTOR, hex!("35e47ad0"));
        assert_eq!(getMaxBatchAgeCall::SELECTOR, hex!("00bd2a03"));
        assert_eq!(getBatchCall::SELECTOR, hex!("888775d9"));
        assert_eq!(pausedCall::SELECTOR, hex!("5c975abb"));
        assert_eq!(CONSENSUS_PERCENTAGECall::SELECTOR, hex!("ebd151f3"));
        assert_eq!(getSedaProverCall::SELECTOR, hex!("2d321b28"));
    }

    #[test]
    fn post_batch_calldata_carries_the_header_and_sorted_signers() {
        let validators: Vec<_> = quarters(1).into_iter().map(|(i, p)| validator(i, p)).collect();
        let tree = ValidatorTree::new(&validators);
        let mut b = batch(9, validators.clone(), &[3, 1, 4]);
        b.header.proving_metadata = Bytes::from_static(b"meta");
        b.batch_id = b.header.id();
        b.signatures = [3, 1, 4].iter().map(|i| sign(b.batch_id, *i)).collect();
        let signers = signers_in(&b, &tree);

        let calldata = post_batch_calldata(&b, &signers);
        assert_eq!(calldata[..4], postBatchCall::SELECTOR);
        let call = postBatchCall::abi_decode(&calldata).expect("the calldata decodes");
        assert_eq!(call.batch.batchHeight, 9);
        assert_eq!(call.batch.blockHeight, b.header.block_height);
        assert_eq!(call.batch.validatorsRoot, b.header.validators_root);
        assert_eq!(call.batch.resultsRoot, b.header.results_root);
        assert_eq!(call.batch.provingMetadata, alloy::primitives::keccak256(b"meta"));

        assert_eq!(call.signatures.len(), 3);
        assert_eq!(call.validatorProofs.len(), 3);
        let addresses: Vec<_> = call.validatorProofs.iter().map(|p| p.signer).collect();
        assert!(addresses.windows(2).all(|w| w[0] < w[1]), "signers strictly ascending");
        // What the Prover checks, per signature.
        for (signature, proof) in call.signatures.iter().zip(&call.validatorProofs) {
            assert!(verify(&proof.merkleProof, tree.root(), validator_leaf(proof.signer, proof.votingPower)));
            let bytes: [u8; 65] = signature[..].try_into().expect("65-byte signatures");
            assert!(matches!(bytes[64], 27 | 28));
            assert_eq!(recover(b.batch_id, &bytes), Ok(proof.signer));
        }
    }

    #[test]
    fn empty_metadata_posts_a_zero_hash() {
        let validators: Vec<_> = quarters(1).into_iter().map(|(i, p)| validator(i, p)).collect();
        let b = batch(2, validators.clone(), &[1, 2, 3]);
        let signers = signers_in(&b, &ValidatorTree::new(&validators));
        let call =
            postBatchCall::abi_decode(&post_batch_calldata(&b, &signers)).expect("the calldata decodes");
        assert_eq!(call.batch.provingMetadata, B256::ZERO);
    }

    #[test]
    fn reverts_the_pusher_acts_on() {
        assert_eq!(
            classify_revert(&BatchAlreadyExists { batchHeight: 12 }.abi_encode()),
            ProverRevert::AlreadyThere("BatchAlreadyExists(12)".into())
        );
        assert_eq!(
            classify_revert(
                &BatchHeightTooOld { batchHeight: 3, lastBatchHeight: 110, maxAge: 100 }.abi_encode()
            ),
            ProverRevert::TooOld("BatchHeightTooOld(batch 3, last 110, max age 100)".into())
        );
        assert_eq!(classify_revert(&EnforcedPause {}.abi_encode()), ProverRevert::Paused);
    }

    #[test]
    fn other_reverts_are_named() {
        let failed = |data: Vec<u8>| match classify_revert(&data) {
            ProverRevert::Failed(message) => message,
            other => panic!("expected Failed, got {other:?}"),
        };
        assert_eq!(failed(MismatchedSignaturesAndProofs {}.abi_encode()), "MismatchedSignaturesAndProofs()");
        assert_eq!(failed(InvalidValidatorOrder {}.abi_encode()), "InvalidValidatorOrder()");
        assert_eq!(failed(InvalidValidatorProof {}.abi_encode()), "InvalidValidatorProof()");
        assert_eq!(failed(InvalidSignature {}.abi_encode()), "InvalidSignature()");
        assert_eq!(failed(ConsensusNotReached {}.abi_encode()), "ConsensusNotReached()");
        assert_eq!(failed(ECDSAInvalidSignature {}.abi_encode()), "ECDSAInvalidSignature()");
        assert_eq!(
            failed(ECDSAInvalidSignatureLength { length: U256::from(64) }.abi_encode()),
            "ECDSAInvalidSignatureLength(64)"
        );
        assert_eq!(
            failed(ECDSAInvalidSignatureS { s: B256::repeat_byte(0xff) }.abi_encode()),
            format!("ECDSAInvalidSignatureS(0x{})", "ff".repeat(32))
        );
        assert_eq!(failed(Revert::from("not allowed").abi_encode()), "Error(\"not allowed\")");
        assert_eq!(failed(Panic::from(0x11).abi_encode()), "panic: arithmetic underflow or overflow (0x11)");
    }

    #[test]
    fn unknown_and_empty_reverts() {
        assert_eq!(classify_revert(&[]), ProverRevert::Failed("reverted without a reason".into()));
        assert_eq!(
            classify_revert(&hex!("deadbeef01")),
            ProverRevert::Failed("unknown error 0xdeadbeef (data 0xdeadbeef01)".into())
        );
        assert_eq!(
            classify_revert(&hex!("dead")),
            ProverRevert::Failed("reverted with data too short for an error: 0xdead".into())
        );
        // A known selector with its argument cut off.
        let data = BatchAlreadyExists::SELECTOR.to_vec();
        assert_eq!(
            classify_revert(&data),
            ProverRevert::Failed(format!(
                "BatchAlreadyExists with arguments that do not decode (data 0x{})",
                hex::encode(&data)
            ))
        );
    }
}
