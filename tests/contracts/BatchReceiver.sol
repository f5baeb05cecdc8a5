// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// A destination for delivery tests: records batch roots by height, rejects a height posted
/// before with `BatchAlreadyExists`, and counts posts so tests can prove "exactly once".
contract BatchReceiver {
    uint64 public lastBatchHeight;
    uint256 public postedCount;
    mapping(uint64 => bytes32) private roots;

    /// How often `record` was called per height: `record` accepts repeats, so that a test sees
    /// every transaction a sender makes, not only the first per height.
    mapping(uint64 => uint256) public recordedCount;
    uint256 public totalRecorded;

    event BatchPosted(uint64 indexed height, bytes32 root, address sender);
    event Recorded(uint64 indexed height, bytes32 root, address sender);

    error BatchAlreadyExists(uint64 height);
    error EmptyRoot();

    function postBatch(uint64 height, bytes32 root) external {
        if (root == bytes32(0)) revert EmptyRoot();
        if (roots[height] != bytes32(0)) revert BatchAlreadyExists(height);
        roots[height] = root;
        if (height > lastBatchHeight) lastBatchHeight = height;
        postedCount += 1;
        emit BatchPosted(height, root, msg.sender);
    }

    /// Like `postBatch` without the duplicate check: exactly-once must come from the sender.
    function record(uint64 height, bytes32 root) external {
        if (root == bytes32(0)) revert EmptyRoot();
        recordedCount[height] += 1;
        totalRecorded += 1;
        emit Recorded(height, root, msg.sender);
    }

    function getRoot(uint64 height) external view returns (bytes32) {
        return roots[height];
    }
}
