// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IDelegation} from "../../interfaces/facets/IDelegation.sol";
import {IDelegateRegistry} from "../../interfaces/deps/IDelegateRegistry.sol";
import {LibDiamondAccess} from "./LibDiamondAccess.sol";
import {LibStorages} from "../storages/LibStorages.sol";

/// @notice What every facet shares: owner checks, one-shot initializers, the delegation check and the token.
abstract contract FacetBase {
    bytes32 internal constant RULES_PROVIDER = keccak256("delegation.rules.provider");
    bytes32 internal constant RULES_MODEL = keccak256("delegation.rules.model");
    bytes32 internal constant RULES_MARKETPLACE = keccak256("delegation.rules.marketplace");
    bytes32 internal constant RULES_SESSION = keccak256("delegation.rules.session");

    modifier onlyOwner() {
        LibDiamondAccess.checkOwner();
        _;
    }

    /// @dev Owner-only and once per key. The reference lets anyone run the empty registry initializers once;
    ///      here every initializer is owner-only (docs/contracts.md, deviation D7).
    modifier ownerInitializer(bytes32 key_) {
        LibDiamondAccess.checkOwner();
        LibDiamondAccess.initialize(key_);
        _;
    }

    /// @dev Passes when the caller is the delegator or holds `rights_` from it in the registry; otherwise
    ///      reverts InsufficientRightsForOperation(delegator, delegatee).
    function _validateDelegatee(address delegatee_, address delegator_, bytes32 rights_) internal view {
        if (delegatee_ == delegator_) return;
        if (_isRightsDelegated(delegatee_, delegator_, rights_)) return;
        revert IDelegation.InsufficientRightsForOperation(delegator_, delegatee_);
    }

    /// @dev No registry, or a registry without code, means "not delegated" (the reference reverts without data).
    function _isRightsDelegated(address delegatee_, address delegator_, bytes32 rights_) internal view returns (bool) {
        address registry_ = LibStorages.delegation().registry;
        if (registry_.code.length == 0) return false;
        return IDelegateRegistry(registry_).checkDelegateForContract(delegatee_, delegator_, address(this), rights_);
    }

    function _token() internal view returns (IERC20) {
        return IERC20(LibStorages.bids().token);
    }
}
