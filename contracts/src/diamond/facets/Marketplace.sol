// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EnumerableSet} from "@openzeppelin/contracts/utils/structs/EnumerableSet.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {IMarketplace} from "../../interfaces/facets/IMarketplace.sol";
import {IBidStorage} from "../../interfaces/storage/IBidStorage.sol";
import {FacetBase} from "../utils/FacetBase.sol";
import {LibStorages} from "../storages/LibStorages.sol";
import {LibPaginator} from "../../libs/LibPaginator.sol";

/// @notice Marketplace facet: the MOR token, bid price bounds and fee, posting and deleting bids.
contract Marketplace is IMarketplace, IBidStorage, FacetBase {
    using EnumerableSet for EnumerableSet.Bytes32Set;
    using LibPaginator for EnumerableSet.Bytes32Set;

    function __Marketplace_init(
        address token_,
        uint256 bidMinPricePerSecond_,
        uint256 bidMaxPricePerSecond_
    ) external ownerInitializer(LibStorages.BIDS_STORAGE_SLOT) {
        LibStorages.bids().token = token_;
        _setMinMaxBidPricePerSecond(bidMinPricePerSecond_, bidMaxPricePerSecond_);
    }

    function setMarketplaceBidFee(uint256 bidFee_) external onlyOwner {
        LibStorages.market().bidFee = bidFee_;
        emit MaretplaceFeeUpdated(bidFee_);
    }

    function setMinMaxBidPricePerSecond(uint256 bidMinPricePerSecond_, uint256 bidMaxPricePerSecond_) external onlyOwner {
        _setMinMaxBidPricePerSecond(bidMinPricePerSecond_, bidMaxPricePerSecond_);
    }

    function postModelBid(address provider_, bytes32 modelId_, uint256 pricePerSecond_) external returns (bytes32 bidId_) {
        _validateDelegatee(msg.sender, provider_, RULES_MARKETPLACE);

        if (!LibStorages.isProviderActive(provider_)) revert MarketplaceProviderNotFound();
        if (!LibStorages.isModelActive(modelId_)) revert MarketplaceModelNotFound();

        LibStorages.MarketStorage storage market_ = LibStorages.market();
        if (pricePerSecond_ < market_.bidMinPricePerSecond || pricePerSecond_ > market_.bidMaxPricePerSecond) {
            revert MarketplaceBidPricePerSecondInvalid();
        }

        uint256 fee_ = market_.bidFee;
        market_.feeBalance += fee_;
        SafeERC20.safeTransferFrom(_token(), provider_, address(this), fee_);

        LibStorages.BidsStorage storage s_ = LibStorages.bids();
        uint256 nonce_ = s_.providerModelNonce[getProviderModelId(provider_, modelId_)]++;
        bidId_ = getBidId(provider_, modelId_, nonce_);

        if (nonce_ != 0) {
            bytes32 previous_ = getBidId(provider_, modelId_, nonce_ - 1);
            if (LibStorages.isBidActive(previous_)) _deleteBid(previous_);
        }

        s_.bids[bidId_] = Bid({
            provider: provider_,
            modelId: modelId_,
            pricePerSecond: pricePerSecond_,
            nonce: nonce_,
            createdAt: uint128(block.timestamp),
            deletedAt: 0
        });
        s_.providerBids[provider_].add(bidId_);
        s_.providerActiveBids[provider_].add(bidId_);
        s_.modelBids[modelId_].add(bidId_);
        s_.modelActiveBids[modelId_].add(bidId_);

        emit MarketplaceBidPosted(provider_, modelId_, nonce_);
    }

    function deleteModelBid(bytes32 bidId_) external {
        _validateDelegatee(msg.sender, LibStorages.bids().bids[bidId_].provider, RULES_MARKETPLACE);
        if (!LibStorages.isBidActive(bidId_)) revert MarketplaceActiveBidNotFound();
        _deleteBid(bidId_);
    }

    function withdrawFee(address recipient_, uint256 amount_) external onlyOwner {
        LibStorages.MarketStorage storage market_ = LibStorages.market();
        uint256 amount = amount_ < market_.feeBalance ? amount_ : market_.feeBalance;
        if (amount == 0) revert MarketplaceFeeAmountIsZero();

        market_.feeBalance -= amount;
        SafeERC20.safeTransfer(_token(), recipient_, amount);
    }

    // `view`, not `pure`, as the reference's IMarketplace declares them: the ABI clients bind to says view.
    function getBidId(address provider_, bytes32 modelId_, uint256 nonce_) public view returns (bytes32) {
        return keccak256(abi.encodePacked(provider_, modelId_, nonce_));
    }

    function getProviderModelId(address provider_, bytes32 modelId_) public view returns (bytes32) {
        return keccak256(abi.encodePacked(provider_, modelId_));
    }

    function getBidFee() external view returns (uint256) {
        return LibStorages.market().bidFee;
    }

    function getFeeBalance() external view returns (uint256) {
        return LibStorages.market().feeBalance;
    }

    function getMinMaxBidPricePerSecond() external view returns (uint256, uint256) {
        LibStorages.MarketStorage storage market_ = LibStorages.market();
        return (market_.bidMinPricePerSecond, market_.bidMaxPricePerSecond);
    }

    function getBid(bytes32 bidId_) external view returns (Bid memory) {
        return LibStorages.bids().bids[bidId_];
    }

    function getProviderActiveBids(
        address provider_,
        uint256 offset_,
        uint256 limit_
    ) external view returns (bytes32[] memory, uint256) {
        return LibStorages.bids().providerActiveBids[provider_].page(offset_, limit_);
    }

    function getModelActiveBids(
        bytes32 modelId_,
        uint256 offset_,
        uint256 limit_
    ) external view returns (bytes32[] memory, uint256) {
        return LibStorages.bids().modelActiveBids[modelId_].page(offset_, limit_);
    }

    function getProviderBids(
        address provider_,
        uint256 offset_,
        uint256 limit_
    ) external view returns (bytes32[] memory, uint256) {
        return LibStorages.bids().providerBids[provider_].page(offset_, limit_);
    }

    function getModelBids(bytes32 modelId_, uint256 offset_, uint256 limit_) external view returns (bytes32[] memory, uint256) {
        return LibStorages.bids().modelBids[modelId_].page(offset_, limit_);
    }

    function getToken() external view returns (address) {
        return LibStorages.bids().token;
    }

    function isBidActive(bytes32 bidId_) external view returns (bool) {
        return LibStorages.isBidActive(bidId_);
    }

    function _setMinMaxBidPricePerSecond(uint256 min_, uint256 max_) private {
        if (min_ == 0) revert MarketplaceBidMinPricePerSecondIsZero();
        if (min_ > max_) revert MarketplaceBidMinPricePerSecondIsInvalid();

        LibStorages.MarketStorage storage market_ = LibStorages.market();
        market_.bidMinPricePerSecond = min_;
        market_.bidMaxPricePerSecond = max_;
        emit MarketplaceBidMinMaxPriceUpdated(min_, max_);
    }

    function _deleteBid(bytes32 bidId_) private {
        LibStorages.BidsStorage storage s_ = LibStorages.bids();
        Bid storage bid = s_.bids[bidId_];

        bid.deletedAt = uint128(block.timestamp);
        s_.providerActiveBids[bid.provider].remove(bidId_);
        s_.modelActiveBids[bid.modelId].remove(bidId_);

        emit MarketplaceBidDeleted(bid.provider, bid.modelId, bid.nonce);
    }
}
