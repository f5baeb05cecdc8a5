// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// A SEDA Prover for tests, written from the interface of seda-evm-contracts v1.0.0's
/// Secp256k1ProverV1: same calls, events, errors and order of checks, so that ferry's `seda-prover`
/// target meets on anvil what it meets on a real chain. It verifies everything the real one does:
/// signer order, each validator's sorted-pair Merkle proof against the stored validators root, each
/// ECDSA signature of the raw batch id (low-s, as OpenZeppelin's ECDSA), and the power threshold.
/// Not upgradeable and without fees; `postedCount` and `postCount` let tests count posts.
contract SedaProver {
    struct Batch {
        uint64 batchHeight;
        uint64 blockHeight;
        bytes32 validatorsRoot;
        bytes32 resultsRoot;
        bytes32 provingMetadata;
    }

    struct ValidatorProof {
        uint32 votingPower;
        address signer;
        bytes32[] merkleProof;
    }

    struct BatchData {
        bytes32 resultsRoot;
        address sender;
    }

    /// Signers must hold at least this much power (of 1e8) in the stored validators tree.
    uint32 public constant CONSENSUS_PERCENTAGE = 66_666_666;

    /// The upper bound of a low s (secp256k1 n / 2), as OpenZeppelin's ECDSA.
    uint256 private constant MAX_S = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0;

    /// Domain separators of the leaves in SEDA's trees.
    bytes1 private constant SECP256K1_DOMAIN_SEPARATOR = 0x01;

    address public owner;
    bool private _paused;
    uint64 private maxBatchAge;
    uint64 private lastBatchHeight;
    bytes32 private lastValidatorsRoot;
    mapping(uint64 => BatchData) private batches;

    /// Successful `postBatch` calls, in all and per height.
    uint256 public postedCount;
    mapping(uint64 => uint256) public postCount;

    event BatchPosted(uint256 indexed batchHeight, bytes32 indexed batchHash, address indexed sender);
    event Paused(address account);
    event Unpaused(address account);
    event MaxBatchAgeUpdated(uint64 maxBatchAge);

    error BatchAlreadyExists(uint64 batchHeight);
    error BatchHeightTooOld(uint64 batchHeight, uint64 lastBatchHeight, uint64 maxAge);
    error MismatchedSignaturesAndProofs();
    error InvalidValidatorOrder();
    error InvalidValidatorProof();
    error InvalidSignature();
    error ConsensusNotReached();
    error EnforcedPause();
    error ExpectedPause();
    error OwnableUnauthorizedAccount(address account);
    error ECDSAInvalidSignature();
    error ECDSAInvalidSignatureLength(uint256 length);
    error ECDSAInvalidSignatureS(bytes32 s);

    modifier onlyOwner() {
        if (msg.sender != owner) revert OwnableUnauthorizedAccount(msg.sender);
        _;
    }

    modifier whenNotPaused() {
        if (_paused) revert EnforcedPause();
        _;
    }

    /// Starts from `initialBatch` as the last batch: its validators sign the next one.
    constructor(Batch memory initialBatch, uint64 maxBatchAge_) {
        owner = msg.sender;
        maxBatchAge = maxBatchAge_;
        lastBatchHeight = initialBatch.batchHeight;
        lastValidatorsRoot = initialBatch.validatorsRoot;
        batches[initialBatch.batchHeight] = BatchData(initialBatch.resultsRoot, msg.sender);
    }

    function postBatch(
        Batch calldata newBatch,
        bytes[] calldata signatures,
        ValidatorProof[] calldata validatorProofs
    ) external whenNotPaused {
        if (signatures.length != validatorProofs.length) revert MismatchedSignaturesAndProofs();
        uint64 height = newBatch.batchHeight;
        uint64 last = lastBatchHeight;
        // In 256 bits: a height near 2^64 is too new, never an overflow.
        if (uint256(last) >= uint256(height) + uint256(maxBatchAge)) {
            revert BatchHeightTooOld(height, last, maxBatchAge);
        }
        if (batches[height].resultsRoot != bytes32(0)) revert BatchAlreadyExists(height);

        bytes32 batchId = deriveBatchId(newBatch);
        bytes32 validatorsRoot = lastValidatorsRoot;
        uint256 power = 0;
        for (uint256 i = 0; i < signatures.length; i++) {
            ValidatorProof calldata proof = validatorProofs[i];
            if (i > 0 && proof.signer <= validatorProofs[i - 1].signer) revert InvalidValidatorOrder();
            bytes32 leaf = keccak256(abi.encodePacked(SECP256K1_DOMAIN_SEPARATOR, proof.signer, proof.votingPower));
            if (!verifyProof(proof.merkleProof, validatorsRoot, leaf)) revert InvalidValidatorProof();
            if (recover(batchId, signatures[i]) != proof.signer) revert InvalidSignature();
            power += proof.votingPower;
        }
        if (power < CONSENSUS_PERCENTAGE) revert ConsensusNotReached();

        batches[height] = BatchData(newBatch.resultsRoot, msg.sender);
        if (height > last) {
            lastBatchHeight = height;
            lastValidatorsRoot = newBatch.validatorsRoot;
        }
        postedCount += 1;
        postCount[height] += 1;
        emit BatchPosted(height, batchId, msg.sender);
    }

    /// keccak256 of the 112-byte preimage height ‖ block height ‖ validators root ‖ results root ‖
    /// proving metadata, integers big-endian in 8 bytes.
    function deriveBatchId(Batch calldata b) public pure returns (bytes32) {
        return keccak256(
            abi.encodePacked(b.batchHeight, b.blockHeight, b.validatorsRoot, b.resultsRoot, b.provingMetadata)
        );
    }

    function getLastBatchHeight() external view returns (uint64) {
        return lastBatchHeight;
    }

    function getLastValidatorsRoot() external view returns (bytes32) {
        return lastValidatorsRoot;
    }

    function getMaxBatchAge() external view returns (uint64) {
        return maxBatchAge;
    }

    function getBatch(uint64 batchHeight) external view returns (bytes32 resultsRoot, address sender) {
        BatchData storage b = batches[batchHeight];
        return (b.resultsRoot, b.sender);
    }

    function paused() external view returns (bool) {
        return _paused;
    }

    function pause() external onlyOwner whenNotPaused {
        _paused = true;
        emit Paused(msg.sender);
    }

    function unpause() external onlyOwner {
        if (!_paused) revert ExpectedPause();
        _paused = false;
        emit Unpaused(msg.sender);
    }

    function setMaxBatchAge(uint64 maxBatchAge_) external onlyOwner {
        maxBatchAge = maxBatchAge_;
        emit MaxBatchAgeUpdated(maxBatchAge_);
    }

    /// Whether `proof` leads from `leaf` to `root`, each pair hashed in ascending order (as
    /// OpenZeppelin's MerkleProof with its commutative keccak).
    function verifyProof(bytes32[] calldata proof, bytes32 root, bytes32 leaf) internal pure returns (bool) {
        bytes32 node = leaf;
        for (uint256 i = 0; i < proof.length; i++) {
            bytes32 sibling = proof[i];
            node = node < sibling
                ? keccak256(abi.encodePacked(node, sibling))
                : keccak256(abi.encodePacked(sibling, node));
        }
        return node == root;
    }

    /// The signer of `hash` (raw, no prefix), with OpenZeppelin ECDSA.recover's reverts: a length
    /// other than 65, a high s, and a signature ecrecover refuses (a v other than 27 or 28 among them).
    function recover(bytes32 hash, bytes calldata signature) internal pure returns (address) {
        if (signature.length != 65) revert ECDSAInvalidSignatureLength(signature.length);
        bytes32 r = bytes32(signature[0:32]);
        bytes32 s = bytes32(signature[32:64]);
        uint8 v = uint8(signature[64]);
        if (uint256(s) > MAX_S) revert ECDSAInvalidSignatureS(s);
        address signer = ecrecover(hash, v, r, s);
        if (signer == address(0)) revert ECDSAInvalidSignature();
        return signer;
    }
}
