// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IDelegateRegistry} from "../interfaces/deps/IDelegateRegistry.sol";

/// @notice Minimal delegate.xyz v2-compatible registry for local chains: ALL and CONTRACT delegations with
///         rights, and the two checks the diamond needs. Same function signatures as the real registry.
contract DelegateRegistry is IDelegateRegistry {
    /// @dev key = keccak256(type, from, to, contract, rights) => enabled
    mapping(bytes32 => bool) private _delegations;

    event DelegateAll(address indexed from, address indexed to, bytes32 rights, bool enable);
    event DelegateContract(
        address indexed from,
        address indexed to,
        address indexed contract_,
        bytes32 rights,
        bool enable
    );

    function delegateAll(address to, bytes32 rights, bool enable) external payable returns (bytes32 hash) {
        hash = _key(1, msg.sender, to, address(0), rights);
        _delegations[hash] = enable;
        emit DelegateAll(msg.sender, to, rights, enable);
    }

    function delegateContract(
        address to,
        address contract_,
        bytes32 rights,
        bool enable
    ) external payable returns (bytes32 hash) {
        hash = _key(2, msg.sender, to, contract_, rights);
        _delegations[hash] = enable;
        emit DelegateContract(msg.sender, to, contract_, rights, enable);
    }

    function checkDelegateForAll(address to, address from, bytes32 rights) public view returns (bool) {
        if (_delegations[_key(1, from, to, address(0), bytes32(0))]) return true;
        return rights != bytes32(0) && _delegations[_key(1, from, to, address(0), rights)];
    }

    function checkDelegateForContract(
        address to,
        address from,
        address contract_,
        bytes32 rights
    ) external view returns (bool) {
        if (checkDelegateForAll(to, from, rights)) return true;
        if (_delegations[_key(2, from, to, contract_, bytes32(0))]) return true;
        return rights != bytes32(0) && _delegations[_key(2, from, to, contract_, rights)];
    }

    function _key(uint8 kind_, address from_, address to_, address contract_, bytes32 rights_) private pure returns (bytes32) {
        return keccak256(abi.encode(kind_, from_, to_, contract_, rights_));
    }
}
