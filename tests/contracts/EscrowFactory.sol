// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import "./Escrow.sol";

/// Creates escrows and announces each with `EscrowDeployed`. `createAndApprove` creates an escrow
/// and has it emit `Approved` in the same transaction, after the creation event: the case where a
/// child's first event is in the very transaction that reveals the child.
contract EscrowFactory {
    address public immutable implementation;
    uint256 public escrowCount;

    event EscrowDeployed(address indexed escrow, address indexed buyer, address indexed seller, uint256 amount);

    error CloneFailed();

    constructor() {
        implementation = address(new Escrow());
    }

    function createEscrow(address seller, uint256 amount) public returns (address escrow) {
        escrow = _clone(implementation);
        Escrow(escrow).initialize(msg.sender, seller, amount);
        escrowCount += 1;
        emit EscrowDeployed(escrow, msg.sender, seller, amount);
    }

    /// Creates `n` escrows in one transaction (about 136k gas each: 200 fit in a 30M-gas block).
    function createEscrows(uint256 n) external {
        uint256 first = escrowCount;
        for (uint256 i = 0; i < n; i++) {
            createEscrow(address(uint160(0x5e11e7 + first + i)), first + i);
        }
    }

    function createAndApprove(address seller, uint256 amount) external returns (address escrow) {
        escrow = createEscrow(seller, amount);
        Escrow(escrow).approveFor(msg.sender);
    }

    /// EIP-1167 minimal proxy, as in OpenZeppelin's Clones.clone.
    function _clone(address impl) internal returns (address instance) {
        assembly ("memory-safe") {
            mstore(0x00, or(shr(0xe8, shl(0x60, impl)), 0x3d602d80600a3d3981f3363d3d373d3d3d363d73000000))
            mstore(0x20, or(shl(0x78, impl), 0x5af43d82803e903d91602b57fd5bf3))
            instance := create(0, 0x09, 0x37)
        }
        if (instance == address(0)) revert CloneFailed();
    }
}
