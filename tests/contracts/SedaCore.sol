// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// The one thing of SEDA's Core (seda-evm-contracts v1.0.0) a pusher reads: which Prover it uses,
/// so that a destination can be configured by its Core and follow a Prover change.
contract SedaCore {
    address public owner;
    address private sedaProver;

    event SedaProverUpdated(address indexed prover);

    error OwnableUnauthorizedAccount(address account);

    constructor(address prover) {
        owner = msg.sender;
        sedaProver = prover;
    }

    function getSedaProver() external view returns (address) {
        return sedaProver;
    }

    function setSedaProver(address prover) external {
        if (msg.sender != owner) revert OwnableUnauthorizedAccount(msg.sender);
        sedaProver = prover;
        emit SedaProverUpdated(prover);
    }
}
