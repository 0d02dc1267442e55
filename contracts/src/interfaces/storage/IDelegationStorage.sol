// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Read side of the delegation settings.
interface IDelegationStorage {
    function getRegistry() external view returns (address);

    function isRightsDelegated(address delegatee_, address delegator_, bytes32 rights_) external view returns (bool);
}
