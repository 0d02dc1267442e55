// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Read side of the provider registry (selectors cut into the diamond with IProviderRegistry).
interface IProviderStorage {
    /// @param endpoint Public MOR-RPC endpoint (host:port) of the provider node.
    /// @param stake Provider stake held by the diamond.
    /// @param createdAt First registration time (seconds).
    /// @param limitPeriodEnd End of the current 365-day earning window.
    /// @param limitPeriodEarned Earned inside the current window (capped at `stake`).
    /// @param isDeleted True after deregistration.
    struct Provider {
        string endpoint;
        uint256 stake;
        uint128 createdAt;
        uint128 limitPeriodEnd;
        uint256 limitPeriodEarned;
        bool isDeleted;
    }

    function getProvider(address provider_) external view returns (Provider memory);

    function getProviderMinimumStake() external view returns (uint256);

    function getActiveProviders(uint256 offset_, uint256 limit_) external view returns (address[] memory, uint256);

    function getIsProviderActive(address provider_) external view returns (bool);
}
