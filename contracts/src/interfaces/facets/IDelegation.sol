// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IDelegationStorage} from "../storage/IDelegationStorage.sol";

/// @notice Delegation of rights through a delegate.xyz v2 compatible registry.
interface IDelegation is IDelegationStorage {
    event DelegationRegistryUpdated(address registry);

    error InsufficientRightsForOperation(address delegator, address delegatee);

    function __Delegation_init(address registry_) external;

    function setRegistry(address registry_) external;

    function DELEGATION_RULES_PROVIDER() external view returns (bytes32);

    function DELEGATION_RULES_MODEL() external view returns (bytes32);

    function DELEGATION_RULES_MARKETPLACE() external view returns (bytes32);

    function DELEGATION_RULES_SESSION() external view returns (bytes32);
}
