// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IMarketplaceStorage} from "../storage/IMarketplaceStorage.sol";

/// @notice Bids: post, delete, fees and price bounds.
interface IMarketplace is IMarketplaceStorage {
    /// @dev The typo is part of the reference ABI (topic0) and is kept on purpose.
    event MaretplaceFeeUpdated(uint256 bidFee);
    event MarketplaceBidMinMaxPriceUpdated(uint256 bidMinPricePerSecond, uint256 bidMaxPricePerSecond);
    event MarketplaceBidPosted(address indexed provider, bytes32 indexed modelId, uint256 nonce);
    event MarketplaceBidDeleted(address indexed provider, bytes32 indexed modelId, uint256 nonce);

    error MarketplaceProviderNotFound();
    error MarketplaceModelNotFound();
    error MarketplaceActiveBidNotFound();
    error MarketplaceBidMinPricePerSecondIsZero();
    error MarketplaceBidMinPricePerSecondIsInvalid();
    error MarketplaceBidPricePerSecondInvalid();
    error MarketplaceFeeAmountIsZero();

    function __Marketplace_init(address token_, uint256 bidMinPricePerSecond_, uint256 bidMaxPricePerSecond_) external;

    function setMarketplaceBidFee(uint256 bidFee_) external;

    function setMinMaxBidPricePerSecond(uint256 bidMinPricePerSecond_, uint256 bidMaxPricePerSecond_) external;

    function postModelBid(address provider_, bytes32 modelId_, uint256 pricePerSecond_) external returns (bytes32);

    function deleteModelBid(bytes32 bidId_) external;

    function withdrawFee(address recipient_, uint256 amount_) external;

    function getBidId(address provider_, bytes32 modelId_, uint256 nonce_) external view returns (bytes32);

    function getProviderModelId(address provider_, bytes32 modelId_) external view returns (bytes32);
}
