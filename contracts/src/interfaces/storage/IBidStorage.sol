// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice Read side of the bids (cut into the diamond with the Marketplace facet).
interface IBidStorage {
    /// @param nonce Per provider-model counter; bidId = keccak256(abi.encodePacked(provider, modelId, nonce)).
    struct Bid {
        address provider;
        bytes32 modelId;
        uint256 pricePerSecond;
        uint256 nonce;
        uint128 createdAt;
        uint128 deletedAt;
    }

    function getBid(bytes32 bidId_) external view returns (Bid memory);

    function getProviderActiveBids(
        address provider_,
        uint256 offset_,
        uint256 limit_
    ) external view returns (bytes32[] memory, uint256);

    function getModelActiveBids(
        bytes32 modelId_,
        uint256 offset_,
        uint256 limit_
    ) external view returns (bytes32[] memory, uint256);

    function getProviderBids(
        address provider_,
        uint256 offset_,
        uint256 limit_
    ) external view returns (bytes32[] memory, uint256);

    function getModelBids(bytes32 modelId_, uint256 offset_, uint256 limit_) external view returns (bytes32[] memory, uint256);

    function getToken() external view returns (address);

    function isBidActive(bytes32 bidId_) external view returns (bool);
}
