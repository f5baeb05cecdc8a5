//! The Prover contract (seda-evm-contracts v1.0.0): `postBatch` and the views a pusher reads,
//! `getSedaProver()` of a Core, and every revert it can answer with, decoded by name.

use alloy::primitives::Bytes;

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
    todo!()
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
    todo!()
}
