// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IDelegation} from "../../interfaces/facets/IDelegation.sol";
import {FacetBase} from "../utils/FacetBase.sol";
import {LibStorages} from "../storages/LibStorages.sol";

/// @notice Delegation facet: which delegate registry the diamond trusts, and the rule names.
contract Delegation is IDelegation, FacetBase {
    function __Delegation_init(address registry_) external ownerInitializer(LibStorages.DELEGATION_STORAGE_SLOT) {
        _setRegistry(registry_);
    }

    function setRegistry(address registry_) external onlyOwner {
        _setRegistry(registry_);
    }

    bytes32 public constant DELEGATION_RULES_PROVIDER = RULES_PROVIDER;
    bytes32 public constant DELEGATION_RULES_MODEL = RULES_MODEL;
    bytes32 public constant DELEGATION_RULES_MARKETPLACE = RULES_MARKETPLACE;
    bytes32 public constant DELEGATION_RULES_SESSION = RULES_SESSION;

    function getRegistry() external view returns (address) {
        return LibStorages.delegation().registry;
    }

    function isRightsDelegated(address delegatee_, address delegator_, bytes32 rights_) external view returns (bool) {
        return _isRightsDelegated(delegatee_, delegator_, rights_);
    }

    function _setRegistry(address registry_) private {
        LibStorages.delegation().registry = registry_;
        emit DelegationRegistryUpdated(registry_);
    }
}
