// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// An escrow created by `EscrowFactory` as a minimal proxy (EIP-1167) clone, so that tests can create
/// thousands in a few transactions. Amounts are bookkeeping only: no value moves. Its lifecycle
/// events are what ferry's factory sources watch.
contract Escrow {
    address public factory;
    address public buyer;
    address public seller;
    uint256 public amount;
    /// 0 open, 1 released, 2 refunded.
    uint8 public state;

    event Approved(address indexed by);
    event EscrowReleased(address indexed to, uint256 amount);
    event EscrowRefunded(address indexed to, uint256 amount);

    error AlreadyInitialized();
    error NotFactory();
    error Closed();

    function initialize(address buyer_, address seller_, uint256 amount_) external {
        if (factory != address(0)) revert AlreadyInitialized();
        factory = msg.sender;
        buyer = buyer_;
        seller = seller_;
        amount = amount_;
    }

    function approve() external {
        _approve(msg.sender);
    }

    /// Lets the factory approve on the creator's behalf in the creating transaction.
    function approveFor(address by) external {
        if (msg.sender != factory) revert NotFactory();
        _approve(by);
    }

    function release() external {
        if (state != 0) revert Closed();
        state = 1;
        emit EscrowReleased(seller, amount);
    }

    function refund() external {
        if (state != 0) revert Closed();
        state = 2;
        emit EscrowRefunded(buyer, amount);
    }

    function _approve(address by) internal {
        if (state != 0) revert Closed();
        emit Approved(by);
    }
}
