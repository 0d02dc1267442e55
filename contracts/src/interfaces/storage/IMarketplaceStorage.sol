// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Read side of the marketplace parameters.
interface IMarketplaceStorage {
    function getBidFee() external view returns (uint256);

    function getFeeBalance() external view returns (uint256);

    function getMinMaxBidPricePerSecond() external view returns (uint256, uint256);
}
