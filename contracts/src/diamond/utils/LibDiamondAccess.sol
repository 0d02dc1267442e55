// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Storage shared by the diamond and every facet: the owner and the one-shot initializer flags.
/// @dev Slots are namespaced as in solarity's OwnableDiamond: owner at DIAMOND_OWNABLE_STORAGE_SLOT, the
///      initializer map at keccak256("diamond.standard.initializable.storage").
library LibDiamondAccess {
    bytes32 internal constant DIAMOND_OWNABLE_STORAGE_SLOT = keccak256("diamond.standard.diamond.ownable.storage");
    bytes32 internal constant INITIALIZABLE_STORAGE_SLOT = keccak256("diamond.standard.initializable.storage");

    struct OwnableStorage {
        address owner;
        address deployer;
    }

    struct InitializableStorage {
        mapping(bytes32 => uint8) initialized;
    }

    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);
    event Initialized(bytes32 storageSlot);

    error OwnableUnauthorizedAccount(address account);

    function ownableStorage() internal pure returns (OwnableStorage storage s_) {
        bytes32 slot_ = DIAMOND_OWNABLE_STORAGE_SLOT;
        assembly {
            s_.slot := slot_
        }
    }

    function initializableStorage() internal pure returns (InitializableStorage storage s_) {
        bytes32 slot_ = INITIALIZABLE_STORAGE_SLOT;
        assembly {
            s_.slot := slot_
        }
    }

    function owner() internal view returns (address) {
        return ownableStorage().owner;
    }

    function checkOwner() internal view {
        if (msg.sender != ownableStorage().owner) revert OwnableUnauthorizedAccount(msg.sender);
    }

    function setOwner(address newOwner_) internal {
        OwnableStorage storage s_ = ownableStorage();
        emit OwnershipTransferred(s_.owner, newOwner_);
        s_.owner = newOwner_;
    }

    /// @dev Marks `key_` initialized; reverts with the OpenZeppelin message on a second call.
    function initialize(bytes32 key_) internal {
        InitializableStorage storage s_ = initializableStorage();
        require(s_.initialized[key_] == 0, "Initializable: contract is already initialized");
        s_.initialized[key_] = 1;
        emit Initialized(key_);
    }
}
