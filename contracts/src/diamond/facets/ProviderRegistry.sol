// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {IProviderRegistry} from "../../interfaces/facets/IProviderRegistry.sol";
import {FacetBase} from "../utils/FacetBase.sol";
import {LibStorages} from "../storages/LibStorages.sol";
import {LibPaginator} from "../../libs/LibPaginator.sol";

/// @notice Provider facet: register (stake, endpoint), top up, deregister (refund outside the earning limit).
contract ProviderRegistry is IProviderRegistry, FacetBase {
    using EnumerableSet for EnumerableSet.AddressSet;
    using EnumerableSet for EnumerableSet.Bytes32Set;
    using LibPaginator for EnumerableSet.AddressSet;

    /// @dev Window in which a provider can earn at most its stake (see SessionRouter's limiter).
    uint128 internal constant PROVIDER_REWARD_LIMITER_PERIOD = 365 days;

    function __ProviderRegistry_init() external ownerInitializer(LibStorages.PROVIDERS_STORAGE_SLOT) {}

    function providerSetMinStake(uint256 providerMinimumStake_) external onlyOwner {
        LibStorages.providers().providerMinimumStake = providerMinimumStake_;
        emit ProviderMinimumStakeUpdated(providerMinimumStake_);
    }

    function providerRegister(address provider_, uint256 amount_, string calldata endpoint_) external {
        _validateDelegatee(msg.sender, provider_, RULES_PROVIDER);

        LibStorages.ProvidersStorage storage s_ = LibStorages.providers();
        Provider storage provider = s_.providers[provider_];

        uint256 newStake_ = provider.stake + amount_;
        if (newStake_ < s_.providerMinimumStake) revert ProviderStakeTooLow(newStake_, s_.providerMinimumStake);

        if (provider.createdAt == 0) {
            provider.createdAt = uint128(block.timestamp);
            provider.limitPeriodEnd = uint128(block.timestamp) + PROVIDER_REWARD_LIMITER_PERIOD;
        } else if (provider.isDeleted) {
            provider.isDeleted = false;
        }
        provider.endpoint = endpoint_;
        provider.stake = newStake_;
        s_.activeProviders.add(provider_);

        if (amount_ > 0) SafeERC20.safeTransferFrom(_token(), provider_, address(this), amount_);

        emit ProviderRegistered(provider_);
    }

    function providerDeregister(address provider_) external {
        _validateDelegatee(msg.sender, provider_, RULES_PROVIDER);

        LibStorages.ProvidersStorage storage s_ = LibStorages.providers();
        Provider storage provider = s_.providers[provider_];

        if (provider.createdAt == 0) revert ProviderNotFound();
        if (LibStorages.bids().providerActiveBids[provider_].length() > 0) revert ProviderHasActiveBids();
        if (provider.isDeleted) revert ProviderHasAlreadyDeregistered();

        // Earnings of the current window stay locked until it ends (the reference's rule).
        uint256 locked_ = block.timestamp > provider.limitPeriodEnd ? 0 : provider.limitPeriodEarned;
        uint256 refund_ = provider.stake > locked_ ? provider.stake - locked_ : 0;

        provider.stake -= refund_;
        provider.isDeleted = true;
        s_.activeProviders.remove(provider_);

        if (refund_ > 0) SafeERC20.safeTransfer(_token(), provider_, refund_);

        emit ProviderDeregistered(provider_);
    }

    function getProvider(address provider_) external view returns (Provider memory) {
        return LibStorages.providers().providers[provider_];
    }

    function getProviderMinimumStake() external view returns (uint256) {
        return LibStorages.providers().providerMinimumStake;
    }

    function getActiveProviders(uint256 offset_, uint256 limit_) external view returns (address[] memory, uint256) {
        return LibStorages.providers().activeProviders.page(offset_, limit_);
    }

    function getIsProviderActive(address provider_) external view returns (bool) {
        return LibStorages.isProviderActive(provider_);
    }
}
