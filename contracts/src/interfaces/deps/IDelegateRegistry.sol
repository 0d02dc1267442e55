// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice The part of the delegate.xyz v2 registry the diamond reads.
interface IDelegateRegistry {
    function checkDelegateForContract(
        address to,
        address from,
        address contract_,
        bytes32 rights
    ) external view returns (bool);
}
