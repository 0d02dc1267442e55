// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IProviderStorage} from "../storage/IProviderStorage.sol";

/// @notice Provider registration, stake and deregistration.
interface IProviderRegistry is IProviderStorage {
    event ProviderRegistered(address indexed provider);
    event ProviderDeregistered(address indexed provider);
    event ProviderMinimumStakeUpdated(uint256 providerMinimumStake);
    /// @dev Declared for ABI compatibility; never emitted (as in the reference).
    event ProviderWithdrawn(address indexed provider, uint256 amount);

    error ProviderStakeTooLow(uint256 amount, uint256 minAmount);
    error ProviderHasActiveBids();
    error ProviderNotFound();
    error ProviderHasAlreadyDeregistered();
    /// @dev The next three are declared for ABI compatibility and never used (as in the reference).
    error ProviderNotDeregistered();
    error ProviderNoStake();
    error ProviderNothingToWithdraw();

    function __ProviderRegistry_init() external;

    function providerSetMinStake(uint256 providerMinimumStake_) external;

    function providerRegister(address provider_, uint256 amount_, string calldata endpoint_) external;

    function providerDeregister(address provider_) external;
}
