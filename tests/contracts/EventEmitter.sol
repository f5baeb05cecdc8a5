// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// Load generator: many events per transaction, with contents a test can recompute.
contract EventEmitter {
    uint256 public seq;

    event Ping(uint256 indexed seq, address indexed from, bytes32 data);
    event BatchReady(uint64 indexed height, bytes32 root);

    /// Emits `n` Pings numbered on from the previous call; `data` is keccak256(abi.encode(seq)).
    function emitMany(uint256 n) external {
        uint256 s = seq;
        for (uint256 i = 0; i < n; i++) {
            emit Ping(s + i, msg.sender, keccak256(abi.encode(s + i)));
        }
        seq = s + n;
    }

    /// Emits `n` BatchReady for heights from, from+1, …; root is keccak256(abi.encode(height)).
    function emitBatches(uint64 from, uint64 n) external {
        for (uint64 i = 0; i < n; i++) {
            emit BatchReady(from + i, keccak256(abi.encode(from + i)));
        }
    }
}
