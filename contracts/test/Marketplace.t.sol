// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {Vm} from "./utils/Vm.sol";
import {MarketplaceSelectors} from "../script/DeployMarketplace.sol";

import {LumerinDiamond} from "../src/diamond/LumerinDiamond.sol";
import {LibDiamondAccess} from "../src/diamond/utils/LibDiamondAccess.sol";
import {IMarketplace} from "../src/interfaces/facets/IMarketplace.sol";
import {IDelegation} from "../src/interfaces/facets/IDelegation.sol";
import {IProviderRegistry} from "../src/interfaces/facets/IProviderRegistry.sol";
import {IMarketplaceStorage} from "../src/interfaces/storage/IMarketplaceStorage.sol";
import {IBidStorage} from "../src/interfaces/storage/IBidStorage.sol";

/// @notice Marketplace facet (contracts.md §2.3 and §7(c)): initializer, bid fee, price bounds, posting and
///         deleting bids, the four bid sets with pagination, and fee withdrawal.
contract MarketplaceTest is MarketplaceTestBase {
    // Events, redeclared for vm.expectEmit.
    event MaretplaceFeeUpdated(uint256 bidFee);
    event MarketplaceBidMinMaxPriceUpdated(uint256 bidMinPricePerSecond, uint256 bidMaxPricePerSecond);
    event MarketplaceBidPosted(address indexed provider, bytes32 indexed modelId, uint256 nonce);
    event MarketplaceBidDeleted(address indexed provider, bytes32 indexed modelId, uint256 nonce);
    event Initialized(bytes32 storageSlot);
    event Transfer(address indexed from, address indexed to, uint256 value);

    bytes32 internal constant BIDS_STORAGE_SLOT = keccak256("diamond.standard.bids.storage");
    bytes32 internal constant BASE_MODEL_ID_2 = keccak256("mistral-7b");
    uint256 internal constant FEE = 1 ether;

    // ---------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------

    /// @dev Provider and a model (owned by the provider), no bid yet.
    function _providerAndModel() internal returns (bytes32 modelId_) {
        _registerProvider(provider, PROVIDER_STAKE);
        modelId_ = _registerModel(provider, BASE_MODEL_ID, MODEL_STAKE);
    }

    /// @dev A diamond with only the Marketplace facet cut in (the deployed facet code) and not initialised.
    function _freshMarketplaceDiamond() internal returns (address diamond_) {
        LumerinDiamond fresh_ = new LumerinDiamond();
        fresh_.__LumerinDiamond_init();
        LumerinDiamond.Facet[] memory cut_ = new LumerinDiamond.Facet[](2);
        cut_[0] = LumerinDiamond.Facet(d.marketplaceFacet, LumerinDiamond.FacetAction.Add, MarketplaceSelectors.marketplace());
        cut_[1] = LumerinDiamond.Facet(d.marketplaceFacet, LumerinDiamond.FacetAction.Add, MarketplaceSelectors.bidStorage());
        fresh_.diamondCut(cut_);
        return address(fresh_);
    }

    function _assertBid(
        IBidStorage.Bid memory b_,
        address provider_,
        bytes32 modelId_,
        uint256 price_,
        uint256 nonce_,
        uint256 createdAt_,
        uint256 deletedAt_
    ) internal pure {
        assertEq(b_.provider, provider_, "bid.provider");
        assertEq(b_.modelId, modelId_, "bid.modelId");
        assertEq(b_.pricePerSecond, price_, "bid.pricePerSecond");
        assertEq(b_.nonce, nonce_, "bid.nonce");
        assertEq(uint256(b_.createdAt), createdAt_, "bid.createdAt");
        assertEq(uint256(b_.deletedAt), deletedAt_, "bid.deletedAt");
    }

    function _contains(bytes32[] memory list_, bytes32 id_) internal pure returns (bool) {
        for (uint256 i = 0; i < list_.length; i++) {
            if (list_[i] == id_) return true;
        }
        return false;
    }

    function _assertInSets(bytes32 bidId_, address provider_, bytes32 modelId_, bool all_, bool active_) internal view {
        (bytes32[] memory pb_, ) = bidStorage.getProviderBids(provider_, 0, 100);
        (bytes32[] memory pab_, ) = bidStorage.getProviderActiveBids(provider_, 0, 100);
        (bytes32[] memory mb_, ) = bidStorage.getModelBids(modelId_, 0, 100);
        (bytes32[] memory mab_, ) = bidStorage.getModelActiveBids(modelId_, 0, 100);
        assertEq(_contains(pb_, bidId_), all_, "providerBids membership");
        assertEq(_contains(mb_, bidId_), all_, "modelBids membership");
        assertEq(_contains(pab_, bidId_), active_, "providerActiveBids membership");
        assertEq(_contains(mab_, bidId_), active_, "modelActiveBids membership");
    }

    // ---------------------------------------------------------------------------------------------------
    // ABI: selectors and topics the proxy-router depends on
    // ---------------------------------------------------------------------------------------------------

    function test_abi_functionSelectorsMatchReference() public pure {
        assertEq(bytes32(IMarketplace.__Marketplace_init.selector), bytes32(bytes4(0xf9804d0b)), "__Marketplace_init");
        assertEq(bytes32(IMarketplace.setMarketplaceBidFee.selector), bytes32(bytes4(0x849c239c)), "setMarketplaceBidFee");
        assertEq(bytes32(IMarketplace.setMinMaxBidPricePerSecond.selector), bytes32(bytes4(0xf748de1c)), "setMinMax");
        assertEq(bytes32(IMarketplace.postModelBid.selector), bytes32(bytes4(0xede96bb1)), "postModelBid");
        assertEq(bytes32(IMarketplace.deleteModelBid.selector), bytes32(bytes4(0x8913dcaa)), "deleteModelBid");
        assertEq(bytes32(IMarketplace.withdrawFee.selector), bytes32(bytes4(0xfd9be522)), "withdrawFee");
        assertEq(bytes32(IMarketplace.getBidId.selector), bytes32(bytes4(0x747ddd5b)), "getBidId");
        assertEq(bytes32(IMarketplace.getProviderModelId.selector), bytes32(bytes4(0x1cc9de8c)), "getProviderModelId");
        assertEq(bytes32(IMarketplaceStorage.getBidFee.selector), bytes32(bytes4(0x8dbb4647)), "getBidFee");
        assertEq(bytes32(IMarketplaceStorage.getFeeBalance.selector), bytes32(bytes4(0xd4c30ceb)), "getFeeBalance");
        assertEq(bytes32(IMarketplaceStorage.getMinMaxBidPricePerSecond.selector), bytes32(bytes4(0x38c8ac62)), "getMinMax");
        assertEq(bytes32(IBidStorage.getBid.selector), bytes32(bytes4(0x91704e1e)), "getBid");
        assertEq(bytes32(IBidStorage.getProviderActiveBids.selector), bytes32(bytes4(0xaf5b77ca)), "getProviderActiveBids");
        assertEq(bytes32(IBidStorage.getModelActiveBids.selector), bytes32(bytes4(0x8a683b6e)), "getModelActiveBids");
        assertEq(bytes32(IBidStorage.getProviderBids.selector), bytes32(bytes4(0x59d435c4)), "getProviderBids");
        assertEq(bytes32(IBidStorage.getModelBids.selector), bytes32(bytes4(0xfade17b1)), "getModelBids");
        assertEq(bytes32(IBidStorage.getToken.selector), bytes32(bytes4(0x21df0da7)), "getToken");
        assertEq(bytes32(IBidStorage.isBidActive.selector), bytes32(bytes4(0x1345df58)), "isBidActive");
    }

    function test_abi_errorSelectorsMatchReference() public pure {
        assertEq(bytes32(IMarketplace.MarketplaceProviderNotFound.selector), bytes32(bytes4(0x8d0285d4)), "ProviderNotFound");
        assertEq(bytes32(IMarketplace.MarketplaceModelNotFound.selector), bytes32(bytes4(0x0e68881c)), "ModelNotFound");
        assertEq(bytes32(IMarketplace.MarketplaceActiveBidNotFound.selector), bytes32(bytes4(0x33ac0973)), "ActiveBidNotFound");
        assertEq(
            bytes32(IMarketplace.MarketplaceBidMinPricePerSecondIsZero.selector),
            bytes32(bytes4(0x6261483d)),
            "MinPriceIsZero"
        );
        assertEq(
            bytes32(IMarketplace.MarketplaceBidMinPricePerSecondIsInvalid.selector),
            bytes32(bytes4(0x5dcc0631)),
            "MinPriceIsInvalid"
        );
        assertEq(
            bytes32(IMarketplace.MarketplaceBidPricePerSecondInvalid.selector),
            bytes32(bytes4(0x9c7f2f48)),
            "PricePerSecondInvalid"
        );
        assertEq(bytes32(IMarketplace.MarketplaceFeeAmountIsZero.selector), bytes32(bytes4(0x864d4cb3)), "FeeAmountIsZero");
        assertEq(
            bytes32(IDelegation.InsufficientRightsForOperation.selector),
            bytes32(bytes4(0x2e980d14)),
            "InsufficientRightsForOperation"
        );
    }

    function test_abi_eventTopicsMatchReference() public pure {
        bytes32 posted_ = IMarketplace.MarketplaceBidPosted.selector;
        assertEq(posted_, keccak256("MarketplaceBidPosted(address,bytes32,uint256)"), "BidPosted topic");
        assertEq(bytes32(bytes4(posted_)), bytes32(bytes4(0xfc422bb6)), "BidPosted topic prefix");
        assertEq(uint256(uint16(uint256(posted_))), 0xf6f6, "BidPosted topic suffix");

        bytes32 deleted_ = IMarketplace.MarketplaceBidDeleted.selector;
        assertEq(deleted_, keccak256("MarketplaceBidDeleted(address,bytes32,uint256)"), "BidDeleted topic");
        assertEq(bytes32(bytes4(deleted_)), bytes32(bytes4(0x409dfc0f)), "BidDeleted topic prefix");
        assertEq(uint256(uint16(uint256(deleted_))), 0x4883, "BidDeleted topic suffix");

        bytes32 fee_ = IMarketplace.MaretplaceFeeUpdated.selector;
        assertEq(fee_, keccak256("MaretplaceFeeUpdated(uint256)"), "MaretplaceFeeUpdated topic (typo is ABI)");
        assertEq(bytes32(bytes4(fee_)), bytes32(bytes4(0x9c16b729)), "MaretplaceFeeUpdated topic prefix");
        assertEq(uint256(uint16(uint256(fee_))), 0x7cce, "MaretplaceFeeUpdated topic suffix");

        assertEq(
            IMarketplace.MarketplaceBidMinMaxPriceUpdated.selector,
            keccak256("MarketplaceBidMinMaxPriceUpdated(uint256,uint256)"),
            "MinMaxPriceUpdated topic"
        );
    }

    // ---------------------------------------------------------------------------------------------------
    // __Marketplace_init (D7: owner-only and once-only)
    // ---------------------------------------------------------------------------------------------------

    function test_init_setsTokenAndPriceBoundsAndEmits() public {
        assertEq(bidStorage.getToken(), address(token), "token of the deployed diamond");
        (uint256 min_, uint256 max_) = marketplace.getMinMaxBidPricePerSecond();
        assertEq(min_, MIN_PRICE, "min price");
        assertEq(max_, MAX_PRICE, "max price");

        address fresh_ = _freshMarketplaceDiamond();
        assertEq(IBidStorage(fresh_).getToken(), address(0), "no token before init");

        vm.expectEmit(false, false, false, true, fresh_);
        emit Initialized(BIDS_STORAGE_SLOT);
        vm.expectEmit(false, false, false, true, fresh_);
        emit MarketplaceBidMinMaxPriceUpdated(2, 7);
        IMarketplace(fresh_).__Marketplace_init(address(token), 2, 7);

        assertEq(IBidStorage(fresh_).getToken(), address(token), "token set by init");
        (min_, max_) = IMarketplace(fresh_).getMinMaxBidPricePerSecond();
        assertEq(min_, 2, "min set by init");
        assertEq(max_, 7, "max set by init");
        assertEq(IMarketplace(fresh_).getBidFee(), 0, "no fee by default");
        assertEq(IMarketplace(fresh_).getFeeBalance(), 0, "no fee balance");
    }

    function test_init_secondCallReverts_D7() public {
        vm.expectRevert(bytes("Initializable: contract is already initialized"));
        marketplace.__Marketplace_init(address(token), MIN_PRICE, MAX_PRICE);

        address fresh_ = _freshMarketplaceDiamond();
        IMarketplace(fresh_).__Marketplace_init(address(token), 1, 2);
        vm.expectRevert(bytes("Initializable: contract is already initialized"));
        IMarketplace(fresh_).__Marketplace_init(address(0xdead), 3, 4);
        assertEq(IBidStorage(fresh_).getToken(), address(token), "token unchanged by the failed second init");
    }

    function test_init_ownerOnly_D7() public {
        // On the live diamond (already initialised) a stranger gets the owner error, not the initializer string.
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        marketplace.__Marketplace_init(address(token), MIN_PRICE, MAX_PRICE);

        // On a fresh diamond a stranger cannot take the first init (the reference let the setter's onlyOwner do it).
        address fresh_ = _freshMarketplaceDiamond();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        IMarketplace(fresh_).__Marketplace_init(address(0xdead), 1, 2);
        assertEq(IBidStorage(fresh_).getToken(), address(0), "still uninitialised");

        // The owner can still initialise afterwards.
        IMarketplace(fresh_).__Marketplace_init(address(token), 1, 2);
        assertEq(IBidStorage(fresh_).getToken(), address(token), "owner initialised");
    }

    function test_init_validatesPriceBounds() public {
        address fresh_ = _freshMarketplaceDiamond();
        vm.expectRevert(IMarketplace.MarketplaceBidMinPricePerSecondIsZero.selector);
        IMarketplace(fresh_).__Marketplace_init(address(token), 0, 2);
        vm.expectRevert(IMarketplace.MarketplaceBidMinPricePerSecondIsInvalid.selector);
        IMarketplace(fresh_).__Marketplace_init(address(token), 3, 2);
        // A failed init does not consume the initializer key.
        IMarketplace(fresh_).__Marketplace_init(address(token), 2, 2);
        (uint256 min_, uint256 max_) = IMarketplace(fresh_).getMinMaxBidPricePerSecond();
        assertEq(min_, 2, "min");
        assertEq(max_, 2, "max");
    }

    // ---------------------------------------------------------------------------------------------------
    // setMarketplaceBidFee
    // ---------------------------------------------------------------------------------------------------

    function test_setMarketplaceBidFee_setsAndEmitsTypoEvent() public {
        assertEq(marketplace.getBidFee(), 0, "test config has no fee");

        vm.expectEmit(false, false, false, true, address(diamond));
        emit MaretplaceFeeUpdated(FEE);
        vm.recordLogs();
        marketplace.setMarketplaceBidFee(FEE);
        Vm.Log[] memory logs_ = vm.getRecordedLogs();

        assertEq(marketplace.getBidFee(), FEE, "fee stored");
        assertEq(logs_.length, 1, "one log");
        assertEq(logs_[0].emitter, address(diamond), "emitted by the diamond");
        assertEq(logs_[0].topics.length, 1, "no indexed args");
        assertEq(logs_[0].topics[0], keccak256("MaretplaceFeeUpdated(uint256)"), "topic0 is the typo'd signature");
        assertEq(logs_[0].data, abi.encode(FEE), "data = bidFee");

        marketplace.setMarketplaceBidFee(0);
        assertEq(marketplace.getBidFee(), 0, "fee can be reset to 0");
    }

    function test_setMarketplaceBidFee_ownerOnly() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        marketplace.setMarketplaceBidFee(FEE);

        // The provider (not the owner) cannot set it either.
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, provider));
        marketplace.setMarketplaceBidFee(FEE);
        assertEq(marketplace.getBidFee(), 0, "unchanged");
    }

    // ---------------------------------------------------------------------------------------------------
    // setMinMaxBidPricePerSecond
    // ---------------------------------------------------------------------------------------------------

    function test_setMinMax_setsAndEmits() public {
        vm.expectEmit(false, false, false, true, address(diamond));
        emit MarketplaceBidMinMaxPriceUpdated(5, 10);
        marketplace.setMinMaxBidPricePerSecond(5, 10);
        (uint256 min_, uint256 max_) = marketplace.getMinMaxBidPricePerSecond();
        assertEq(min_, 5, "min");
        assertEq(max_, 10, "max");

        // min == max is allowed.
        vm.expectEmit(false, false, false, true, address(diamond));
        emit MarketplaceBidMinMaxPriceUpdated(7, 7);
        marketplace.setMinMaxBidPricePerSecond(7, 7);
        (min_, max_) = marketplace.getMinMaxBidPricePerSecond();
        assertEq(min_, 7, "min == max");
        assertEq(max_, 7, "max == min");
    }

    function test_setMinMax_minZeroReverts() public {
        vm.expectRevert(IMarketplace.MarketplaceBidMinPricePerSecondIsZero.selector);
        marketplace.setMinMaxBidPricePerSecond(0, 10);
        // Zero is checked first, even when max is also 0.
        vm.expectRevert(IMarketplace.MarketplaceBidMinPricePerSecondIsZero.selector);
        marketplace.setMinMaxBidPricePerSecond(0, 0);
        (uint256 min_, ) = marketplace.getMinMaxBidPricePerSecond();
        assertEq(min_, MIN_PRICE, "unchanged");
    }

    function test_setMinMax_minAboveMaxReverts() public {
        vm.expectRevert(IMarketplace.MarketplaceBidMinPricePerSecondIsInvalid.selector);
        marketplace.setMinMaxBidPricePerSecond(11, 10);
        (uint256 min_, uint256 max_) = marketplace.getMinMaxBidPricePerSecond();
        assertEq(min_, MIN_PRICE, "min unchanged");
        assertEq(max_, MAX_PRICE, "max unchanged");
    }

    function test_setMinMax_ownerOnly() public {
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        marketplace.setMinMaxBidPricePerSecond(5, 10);
        (uint256 min_, ) = marketplace.getMinMaxBidPricePerSecond();
        assertEq(min_, MIN_PRICE, "unchanged");
    }

    function test_setMinMax_existingBidsUnaffected() public {
        (bytes32 modelId_, bytes32 bidId_) = _defaultBid();
        marketplace.setMinMaxBidPricePerSecond(1 ether, 2 ether);
        assertTrue(bidStorage.isBidActive(bidId_), "old bid still active");
        assertEq(bidStorage.getBid(bidId_).pricePerSecond, PRICE, "old price kept");
        // A new bid at the old price is now rejected.
        vm.prank(provider);
        vm.expectRevert(IMarketplace.MarketplaceBidPricePerSecondInvalid.selector);
        marketplace.postModelBid(provider, modelId_, PRICE);
    }

    // ---------------------------------------------------------------------------------------------------
    // postModelBid: checks in order
    // ---------------------------------------------------------------------------------------------------

    function test_postModelBid_providerNotFoundFirst() public {
        // Nothing registered, and an invalid price: the provider check wins.
        vm.prank(provider);
        vm.expectRevert(IMarketplace.MarketplaceProviderNotFound.selector);
        marketplace.postModelBid(provider, keccak256("no model"), 0);

        // Model exists (owned by someone who is not a provider), provider does not.
        bytes32 modelId_ = _registerModel(user, BASE_MODEL_ID, MODEL_STAKE);
        vm.prank(provider);
        vm.expectRevert(IMarketplace.MarketplaceProviderNotFound.selector);
        marketplace.postModelBid(provider, modelId_, PRICE);
    }

    function test_postModelBid_deregisteredProviderIsNotFound() public {
        bytes32 modelId_ = _registerModel(user, BASE_MODEL_ID, MODEL_STAKE);
        _registerProvider(provider, PROVIDER_STAKE);
        vm.prank(provider);
        providerRegistry.providerDeregister(provider);
        assertFalse(providerRegistry.getIsProviderActive(provider), "provider inactive");

        vm.prank(provider);
        vm.expectRevert(IMarketplace.MarketplaceProviderNotFound.selector);
        marketplace.postModelBid(provider, modelId_, PRICE);
    }

    function test_postModelBid_modelNotFoundSecond() public {
        _registerProvider(provider, PROVIDER_STAKE);
        // Unknown model, and an invalid price: the model check wins over the price check.
        vm.prank(provider);
        vm.expectRevert(IMarketplace.MarketplaceModelNotFound.selector);
        marketplace.postModelBid(provider, keccak256("no model"), 0);
        vm.prank(provider);
        vm.expectRevert(IMarketplace.MarketplaceModelNotFound.selector);
        marketplace.postModelBid(provider, keccak256("no model"), PRICE);
    }

    function test_postModelBid_deregisteredModelIsNotFound() public {
        bytes32 modelId_ = _providerAndModel();
        vm.prank(provider);
        modelRegistry.modelDeregister(modelId_);
        assertFalse(modelRegistry.getIsModelActive(modelId_), "model inactive");

        vm.prank(provider);
        vm.expectRevert(IMarketplace.MarketplaceModelNotFound.selector);
        marketplace.postModelBid(provider, modelId_, PRICE);
    }

    function test_postModelBid_priceOutOfRangeReverts() public {
        bytes32 modelId_ = _providerAndModel();
        vm.startPrank(provider);
        vm.expectRevert(IMarketplace.MarketplaceBidPricePerSecondInvalid.selector);
        marketplace.postModelBid(provider, modelId_, MIN_PRICE - 1);
        vm.expectRevert(IMarketplace.MarketplaceBidPricePerSecondInvalid.selector);
        marketplace.postModelBid(provider, modelId_, MAX_PRICE + 1);
        vm.expectRevert(IMarketplace.MarketplaceBidPricePerSecondInvalid.selector);
        marketplace.postModelBid(provider, modelId_, 0);
        vm.stopPrank();
        (, uint256 total_) = bidStorage.getProviderBids(provider, 0, 0);
        assertEq(total_, 0, "no bid stored");
    }

    function test_postModelBid_priceBoundariesAccepted() public {
        bytes32 modelId_ = _providerAndModel();
        bytes32 atMin_ = _postBid(provider, modelId_, MIN_PRICE);
        assertEq(bidStorage.getBid(atMin_).pricePerSecond, MIN_PRICE, "min accepted");
        bytes32 atMax_ = _postBid(provider, modelId_, MAX_PRICE);
        assertEq(bidStorage.getBid(atMax_).pricePerSecond, MAX_PRICE, "max accepted");
    }

    function testFuzz_postModelBid_priceRange(uint256 price_) public {
        bytes32 modelId_ = _providerAndModel();
        vm.prank(provider);
        if (price_ < MIN_PRICE || price_ > MAX_PRICE) {
            vm.expectRevert(IMarketplace.MarketplaceBidPricePerSecondInvalid.selector);
            marketplace.postModelBid(provider, modelId_, price_);
            assertEq(token.balanceOf(address(diamond)), PROVIDER_STAKE + MODEL_STAKE, "nothing moved");
        } else {
            bytes32 bidId_ = marketplace.postModelBid(provider, modelId_, price_);
            assertEq(bidStorage.getBid(bidId_).pricePerSecond, price_, "stored price");
        }
    }

    /// @dev D10 spirit: the price check runs before the fee transfer, so a provider without allowance gets the
    ///      marketplace error, not the ERC-20 one.
    function test_postModelBid_checksBeforeFeeTransfer() public {
        bytes32 modelId_ = _providerAndModel();
        marketplace.setMarketplaceBidFee(FEE);
        vm.prank(provider);
        token.approve(address(diamond), 0);

        vm.prank(provider);
        vm.expectRevert(IMarketplace.MarketplaceBidPricePerSecondInvalid.selector);
        marketplace.postModelBid(provider, modelId_, MAX_PRICE + 1);

        // With a valid price the fee pull is what fails.
        vm.prank(provider);
        vm.expectRevert(bytes("ERC20: insufficient allowance"));
        marketplace.postModelBid(provider, modelId_, PRICE);
    }

    // ---------------------------------------------------------------------------------------------------
    // postModelBid: fee
    // ---------------------------------------------------------------------------------------------------

    function test_postModelBid_pullsFeeFromProvider() public {
        bytes32 modelId_ = _providerAndModel();
        marketplace.setMarketplaceBidFee(FEE);

        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(address(diamond));
        uint256 feeBalanceBefore_ = marketplace.getFeeBalance();
        uint256 supply_ = _totalHeld();

        vm.expectEmit(true, true, false, true, address(token));
        emit Transfer(provider, address(diamond), FEE);
        _postBid(provider, modelId_, PRICE);

        assertEq(token.balanceOf(provider), providerBefore_ - FEE, "provider paid the fee");
        assertEq(token.balanceOf(address(diamond)), diamondBefore_ + FEE, "diamond received the fee");
        assertEq(marketplace.getFeeBalance(), feeBalanceBefore_ + FEE, "feeBalance increased");
        assertEq(_totalHeld(), supply_, "no MOR created or lost");

        // A second bid (replacing the first) pays the fee again.
        _postBid(provider, modelId_, PRICE * 2);
        assertEq(token.balanceOf(provider), providerBefore_ - 2 * FEE, "provider paid two fees");
        assertEq(token.balanceOf(address(diamond)), diamondBefore_ + 2 * FEE, "diamond holds two fees");
        assertEq(marketplace.getFeeBalance(), feeBalanceBefore_ + 2 * FEE, "feeBalance = two fees");
    }

    function test_postModelBid_zeroFeeMovesNothing() public {
        bytes32 modelId_ = _providerAndModel();
        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(address(diamond));
        _postBid(provider, modelId_, PRICE);
        assertEq(token.balanceOf(provider), providerBefore_, "provider unchanged");
        assertEq(token.balanceOf(address(diamond)), diamondBefore_, "diamond unchanged");
        assertEq(marketplace.getFeeBalance(), 0, "no fee balance");
    }

    function test_postModelBid_feeWithoutBalanceReverts() public {
        // provider2 registers with everything it has except less than the fee.
        _registerProvider(provider2, PROVIDER_STAKE);
        bytes32 modelId_ = _registerModel(user, BASE_MODEL_ID, MODEL_STAKE);
        uint256 left_ = token.balanceOf(provider2);
        vm.prank(provider2);
        token.transfer(stranger, left_);
        marketplace.setMarketplaceBidFee(FEE);

        vm.prank(provider2);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        marketplace.postModelBid(provider2, modelId_, PRICE);
        assertEq(marketplace.getFeeBalance(), 0, "feeBalance rolled back");
    }

    // ---------------------------------------------------------------------------------------------------
    // postModelBid: ids, nonces, struct, events
    // ---------------------------------------------------------------------------------------------------

    function test_postModelBid_idsAndStruct() public {
        bytes32 modelId_ = _providerAndModel();

        vm.expectEmit(true, true, false, true, address(diamond));
        emit MarketplaceBidPosted(provider, modelId_, 0);
        bytes32 bidId_ = _postBid(provider, modelId_, PRICE);

        assertEq(bidId_, keccak256(abi.encodePacked(provider, modelId_, uint256(0))), "bidId formula, nonce 0");
        assertEq(bidId_, marketplace.getBidId(provider, modelId_, 0), "bidId = getBidId");
        _assertBid(bidStorage.getBid(bidId_), provider, modelId_, PRICE, 0, block.timestamp, 0);
        assertTrue(bidStorage.isBidActive(bidId_), "active");
        _assertInSets(bidId_, provider, modelId_, true, true);
    }

    function test_getBidId_and_getProviderModelId_formulas() public view {
        bytes32 modelId_ = keccak256("m");
        assertEq(
            marketplace.getProviderModelId(provider, modelId_),
            keccak256(abi.encodePacked(provider, modelId_)),
            "providerModelId = keccak(provider ++ modelId), 52 bytes"
        );
        assertEq(
            marketplace.getBidId(provider, modelId_, 7),
            keccak256(abi.encodePacked(provider, modelId_, uint256(7))),
            "bidId = keccak(provider ++ modelId ++ nonce), 84 bytes"
        );
        // Packed, not abi.encode: the two differ.
        assertTrue(
            marketplace.getBidId(provider, modelId_, 7) != keccak256(abi.encode(provider, modelId_, uint256(7))),
            "packed encoding"
        );
    }

    function testFuzz_getBidId(address provider_, bytes32 modelId_, uint256 nonce_) public view {
        assertEq(marketplace.getBidId(provider_, modelId_, nonce_), keccak256(abi.encodePacked(provider_, modelId_, nonce_)), "getBidId");
        assertEq(marketplace.getProviderModelId(provider_, modelId_), keccak256(abi.encodePacked(provider_, modelId_)), "pmId");
    }

    function test_postModelBid_noncePerProviderModelPair() public {
        bytes32 modelA_ = _providerAndModel();
        bytes32 modelB_ = _registerModel(provider, BASE_MODEL_ID_2, MODEL_STAKE);
        _registerProvider(provider2, PROVIDER_STAKE);

        bytes32 a0_ = _postBid(provider, modelA_, PRICE);
        bytes32 a1_ = _postBid(provider, modelA_, PRICE);
        bytes32 a2_ = _postBid(provider, modelA_, PRICE);
        bytes32 b0_ = _postBid(provider, modelB_, PRICE);
        bytes32 p2a0_ = _postBid(provider2, modelA_, PRICE);

        assertEq(bidStorage.getBid(a0_).nonce, 0, "A nonce 0");
        assertEq(bidStorage.getBid(a1_).nonce, 1, "A nonce 1");
        assertEq(bidStorage.getBid(a2_).nonce, 2, "A nonce 2");
        assertEq(bidStorage.getBid(b0_).nonce, 0, "B starts at 0 for the same provider");
        assertEq(bidStorage.getBid(p2a0_).nonce, 0, "provider2 starts at 0 on model A");
        assertEq(a1_, marketplace.getBidId(provider, modelA_, 1), "id of nonce 1");
        assertEq(a2_, marketplace.getBidId(provider, modelA_, 2), "id of nonce 2");
        assertEq(b0_, marketplace.getBidId(provider, modelB_, 0), "id on model B");
        assertEq(p2a0_, marketplace.getBidId(provider2, modelA_, 0), "id of provider2");

        // Different pairs do not interfere: one active bid per pair.
        assertTrue(bidStorage.isBidActive(a2_), "latest A active");
        assertTrue(bidStorage.isBidActive(b0_), "B active");
        assertTrue(bidStorage.isBidActive(p2a0_), "provider2 bid active");
        assertFalse(bidStorage.isBidActive(a0_), "A0 replaced");
        assertFalse(bidStorage.isBidActive(a1_), "A1 replaced");
        (, uint256 activeOnA_) = bidStorage.getModelActiveBids(modelA_, 0, 0);
        assertEq(activeOnA_, 2, "model A: one active bid per provider");
    }

    function test_postModelBid_secondBidDeletesPreviousEventsInOrder() public {
        bytes32 modelId_ = _providerAndModel();
        marketplace.setMarketplaceBidFee(FEE);
        bytes32 first_ = _postBid(provider, modelId_, PRICE);
        uint256 postedAt_ = block.timestamp;

        vm.warp(block.timestamp + 1000);
        vm.recordLogs();
        bytes32 second_ = _postBid(provider, modelId_, PRICE * 3);
        Vm.Log[] memory logs_ = vm.getRecordedLogs();

        // token Transfer (fee) -> MarketplaceBidDeleted(nonce 0) -> MarketplaceBidPosted(nonce 1)
        assertEq(logs_.length, 3, "three logs");
        assertEq(logs_[0].emitter, address(token), "fee transfer first");
        assertEq(logs_[0].topics[0], keccak256("Transfer(address,address,uint256)"), "Transfer topic");

        assertEq(logs_[1].emitter, address(diamond), "deleted from diamond");
        assertEq(logs_[1].topics[0], IMarketplace.MarketplaceBidDeleted.selector, "BidDeleted BEFORE BidPosted");
        assertEq(logs_[1].topics[1], bytes32(uint256(uint160(provider))), "deleted: provider");
        assertEq(logs_[1].topics[2], modelId_, "deleted: modelId");
        assertEq(logs_[1].data, abi.encode(uint256(0)), "deleted: nonce 0");

        assertEq(logs_[2].emitter, address(diamond), "posted from diamond");
        assertEq(logs_[2].topics[0], IMarketplace.MarketplaceBidPosted.selector, "BidPosted last");
        assertEq(logs_[2].topics[1], bytes32(uint256(uint160(provider))), "posted: provider");
        assertEq(logs_[2].topics[2], modelId_, "posted: modelId");
        assertEq(logs_[2].data, abi.encode(uint256(1)), "posted: nonce 1");

        _assertBid(bidStorage.getBid(first_), provider, modelId_, PRICE, 0, postedAt_, block.timestamp);
        _assertBid(bidStorage.getBid(second_), provider, modelId_, PRICE * 3, 1, block.timestamp, 0);
        assertFalse(bidStorage.isBidActive(first_), "first inactive");
        assertTrue(bidStorage.isBidActive(second_), "second active");
        _assertInSets(first_, provider, modelId_, true, false);
        _assertInSets(second_, provider, modelId_, true, true);
    }

    function test_postModelBid_afterManualDeleteEmitsNoDelete() public {
        bytes32 modelId_ = _providerAndModel();
        bytes32 first_ = _postBid(provider, modelId_, PRICE);
        vm.prank(provider);
        marketplace.deleteModelBid(first_);
        uint256 deletedAt_ = block.timestamp;

        vm.warp(block.timestamp + 50);
        vm.recordLogs();
        bytes32 second_ = _postBid(provider, modelId_, PRICE);
        Vm.Log[] memory logs_ = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs_.length; i++) {
            assertTrue(logs_[i].topics[0] != IMarketplace.MarketplaceBidDeleted.selector, "no second delete");
        }
        assertEq(logs_[logs_.length - 1].topics[0], IMarketplace.MarketplaceBidPosted.selector, "posted");
        assertEq(uint256(bidStorage.getBid(first_).deletedAt), deletedAt_, "first deletedAt not overwritten");
        assertEq(bidStorage.getBid(second_).nonce, 1, "nonce still advances");
    }

    // ---------------------------------------------------------------------------------------------------
    // The four sets and pagination
    // ---------------------------------------------------------------------------------------------------

    function test_bidSets_membershipAndPagination() public {
        bytes32 modelA_ = _providerAndModel();
        bytes32 modelB_ = _registerModel(provider, BASE_MODEL_ID_2, MODEL_STAKE);
        _registerProvider(provider2, PROVIDER_STAKE);

        bytes32 a0_ = _postBid(provider, modelA_, PRICE);
        bytes32 b0_ = _postBid(provider, modelB_, PRICE);
        bytes32 a1_ = _postBid(provider, modelA_, PRICE); // replaces a0
        bytes32 q0_ = _postBid(provider2, modelA_, PRICE);

        // (0, 0) returns an empty page with the full total.
        (bytes32[] memory page_, uint256 total_) = bidStorage.getProviderBids(provider, 0, 0);
        assertEq(page_.length, 0, "limit 0: empty page");
        assertEq(total_, 3, "provider: all bids, deleted included");
        (page_, total_) = bidStorage.getProviderActiveBids(provider, 0, 0);
        assertEq(page_.length, 0, "limit 0");
        assertEq(total_, 2, "provider: active bids");
        (page_, total_) = bidStorage.getModelBids(modelA_, 0, 0);
        assertEq(page_.length, 0, "limit 0");
        assertEq(total_, 3, "model A: all bids");
        (page_, total_) = bidStorage.getModelActiveBids(modelA_, 0, 0);
        assertEq(page_.length, 0, "limit 0");
        assertEq(total_, 2, "model A: active bids");
        (, total_) = bidStorage.getModelBids(modelB_, 0, 0);
        assertEq(total_, 1, "model B: all bids");

        // Full pages, insertion order for the all-bids sets.
        (page_, total_) = bidStorage.getProviderBids(provider, 0, 10);
        assertEq(page_.length, 3, "page size capped at total");
        assertEq(page_[0], a0_, "order 0");
        assertEq(page_[1], b0_, "order 1");
        assertEq(page_[2], a1_, "order 2");
        (page_, ) = bidStorage.getModelBids(modelA_, 0, 10);
        assertEq(page_.length, 3, "model A all");
        assertEq(page_[0], a0_, "model order 0");
        assertEq(page_[1], a1_, "model order 1");
        assertEq(page_[2], q0_, "model order 2");

        // Active sets hold exactly the active bids (order not guaranteed: swap-and-pop).
        _assertInSets(a0_, provider, modelA_, true, false);
        _assertInSets(a1_, provider, modelA_, true, true);
        _assertInSets(q0_, provider2, modelA_, true, true);
        _assertInSets(b0_, provider, modelB_, true, true);

        // Offset and limit.
        (page_, total_) = bidStorage.getProviderBids(provider, 1, 1);
        assertEq(page_.length, 1, "one item");
        assertEq(page_[0], b0_, "offset 1");
        assertEq(total_, 3, "total unchanged by paging");
        (page_, total_) = bidStorage.getProviderBids(provider, 2, 5);
        assertEq(page_.length, 1, "tail page truncated");
        assertEq(page_[0], a1_, "last item");
        (page_, total_) = bidStorage.getProviderBids(provider, 1, type(uint256).max);
        assertEq(page_.length, 2, "huge limit does not overflow");

        // offset >= total: empty, never reverts.
        (page_, total_) = bidStorage.getProviderBids(provider, 3, 10);
        assertEq(page_.length, 0, "offset == total");
        assertEq(total_, 3, "total still reported");
        (page_, total_) = bidStorage.getModelActiveBids(modelA_, 2, 10);
        assertEq(page_.length, 0, "active: offset == total");
        assertEq(total_, 2, "active total");
        (page_, total_) = bidStorage.getProviderActiveBids(provider, type(uint256).max, type(uint256).max);
        assertEq(page_.length, 0, "offset max");
        assertEq(total_, 2, "active total");
        (page_, total_) = bidStorage.getModelBids(modelB_, 5, 1);
        assertEq(page_.length, 0, "offset beyond");
        assertEq(total_, 1, "model B total");

        // Unknown keys: empty.
        (page_, total_) = bidStorage.getProviderBids(stranger, 0, 10);
        assertEq(page_.length, 0, "unknown provider");
        assertEq(total_, 0, "unknown provider total");
        (page_, total_) = bidStorage.getModelActiveBids(keccak256("none"), 0, 10);
        assertEq(page_.length, 0, "unknown model");
        assertEq(total_, 0, "unknown model total");
    }

    // ---------------------------------------------------------------------------------------------------
    // postModelBid: delegation
    // ---------------------------------------------------------------------------------------------------

    function test_postModelBid_delegatedChargesProvider() public {
        bytes32 modelId_ = _providerAndModel();
        marketplace.setMarketplaceBidFee(FEE);
        vm.prank(provider);
        registry.delegateContract(delegatee, address(diamond), RULES_MARKETPLACE, true);

        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 delegateeBefore_ = token.balanceOf(delegatee);
        uint256 diamondBefore_ = token.balanceOf(address(diamond));

        vm.expectEmit(true, true, false, true, address(diamond));
        emit MarketplaceBidPosted(provider, modelId_, 0);
        vm.prank(delegatee);
        bytes32 bidId_ = marketplace.postModelBid(provider, modelId_, PRICE);

        assertEq(token.balanceOf(provider), providerBefore_ - FEE, "fee charged to the provider");
        assertEq(token.balanceOf(delegatee), delegateeBefore_, "delegatee pays nothing");
        assertEq(token.balanceOf(address(diamond)), diamondBefore_ + FEE, "diamond got the fee");
        assertEq(marketplace.getFeeBalance(), FEE, "feeBalance");
        _assertBid(bidStorage.getBid(bidId_), provider, modelId_, PRICE, 0, block.timestamp, 0);
        _assertInSets(bidId_, provider, modelId_, true, true);
        (, uint256 delegateeBids_) = bidStorage.getProviderBids(delegatee, 0, 0);
        assertEq(delegateeBids_, 0, "nothing recorded for the delegatee");
    }

    function test_postModelBid_delegateAllWorks() public {
        bytes32 modelId_ = _providerAndModel();
        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), true);
        vm.prank(delegatee);
        bytes32 bidId_ = marketplace.postModelBid(provider, modelId_, PRICE);
        assertEq(bidStorage.getBid(bidId_).provider, provider, "bid belongs to the provider");
    }

    function test_postModelBid_wrongRuleReverts() public {
        bytes32 modelId_ = _providerAndModel();
        vm.startPrank(provider);
        registry.delegateContract(delegatee, address(diamond), RULES_SESSION, true);
        registry.delegateContract(delegatee, address(diamond), RULES_PROVIDER, true);
        // The right rule but for another contract.
        registry.delegateContract(delegatee, address(token), RULES_MARKETPLACE, true);
        vm.stopPrank();

        vm.prank(delegatee);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, provider, delegatee));
        marketplace.postModelBid(provider, modelId_, PRICE);
    }

    function test_postModelBid_strangerWithoutDelegationReverts() public {
        bytes32 modelId_ = _providerAndModel();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, provider, stranger));
        marketplace.postModelBid(provider, modelId_, PRICE);
    }

    function test_postModelBid_revokedDelegationReverts() public {
        bytes32 modelId_ = _providerAndModel();
        vm.prank(provider);
        registry.delegateContract(delegatee, address(diamond), RULES_MARKETPLACE, true);
        vm.prank(delegatee);
        marketplace.postModelBid(provider, modelId_, PRICE);

        vm.prank(provider);
        registry.delegateContract(delegatee, address(diamond), RULES_MARKETPLACE, false);
        vm.prank(delegatee);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, provider, delegatee));
        marketplace.postModelBid(provider, modelId_, PRICE);
    }

    /// @dev D6: without a registry, a delegated call is "not delegated" (the reference reverted without data).
    function test_postModelBid_noRegistryMeansNotDelegated_D6() public {
        bytes32 modelId_ = _providerAndModel();
        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), true);
        delegation.setRegistry(address(0));

        vm.prank(delegatee);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, provider, delegatee));
        marketplace.postModelBid(provider, modelId_, PRICE);

        // The provider itself still posts.
        bytes32 bidId_ = _postBid(provider, modelId_, PRICE);
        assertTrue(bidStorage.isBidActive(bidId_), "direct post works without a registry");
    }

    // ---------------------------------------------------------------------------------------------------
    // deleteModelBid
    // ---------------------------------------------------------------------------------------------------

    function test_deleteModelBid_byProvider() public {
        (bytes32 modelId_, bytes32 bidId_) = _defaultBid();
        uint256 createdAt_ = block.timestamp;
        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(address(diamond));
        vm.warp(block.timestamp + 777);

        vm.expectEmit(true, true, false, true, address(diamond));
        emit MarketplaceBidDeleted(provider, modelId_, 0);
        vm.prank(provider);
        marketplace.deleteModelBid(bidId_);

        _assertBid(bidStorage.getBid(bidId_), provider, modelId_, PRICE, 0, createdAt_, block.timestamp);
        assertFalse(bidStorage.isBidActive(bidId_), "inactive");
        _assertInSets(bidId_, provider, modelId_, true, false);
        (, uint256 activeTotal_) = bidStorage.getProviderActiveBids(provider, 0, 0);
        assertEq(activeTotal_, 0, "no active bid");
        (, uint256 allTotal_) = bidStorage.getModelBids(modelId_, 0, 0);
        assertEq(allTotal_, 1, "kept in the all-bids set");
        assertEq(token.balanceOf(provider), providerBefore_, "no refund of anything");
        assertEq(token.balanceOf(address(diamond)), diamondBefore_, "diamond unchanged");
    }

    function test_deleteModelBid_unblocksDeregistration() public {
        (bytes32 modelId_, bytes32 bidId_) = _defaultBid();
        vm.prank(provider);
        vm.expectRevert(IProviderRegistry.ProviderHasActiveBids.selector);
        providerRegistry.providerDeregister(provider);

        vm.prank(provider);
        marketplace.deleteModelBid(bidId_);
        vm.prank(provider);
        modelRegistry.modelDeregister(modelId_);
        vm.prank(provider);
        providerRegistry.providerDeregister(provider);
        assertFalse(providerRegistry.getIsProviderActive(provider), "provider deregistered");
    }

    function test_deleteModelBid_notOwnerReverts() public {
        (, bytes32 bidId_) = _defaultBid();
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, provider, stranger));
        marketplace.deleteModelBid(bidId_);

        // Not even the diamond owner.
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, provider, owner));
        marketplace.deleteModelBid(bidId_);
        assertTrue(bidStorage.isBidActive(bidId_), "still active");
    }

    function test_deleteModelBid_unknownBidReverts() public {
        bytes32 unknown_ = keccak256("unknown bid");
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, address(0), provider));
        marketplace.deleteModelBid(unknown_);

        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, address(0), stranger));
        marketplace.deleteModelBid(unknown_);
    }

    function test_deleteModelBid_alreadyDeletedReverts() public {
        (bytes32 modelId_, bytes32 bidId_) = _defaultBid();
        vm.prank(provider);
        marketplace.deleteModelBid(bidId_);
        uint256 deletedAt_ = block.timestamp;

        vm.warp(block.timestamp + 10);
        vm.prank(provider);
        vm.expectRevert(IMarketplace.MarketplaceActiveBidNotFound.selector);
        marketplace.deleteModelBid(bidId_);
        assertEq(uint256(bidStorage.getBid(bidId_).deletedAt), deletedAt_, "deletedAt unchanged");

        // A bid replaced by a newer one is also no longer active.
        bytes32 next_ = _postBid(provider, modelId_, PRICE);
        bytes32 third_ = _postBid(provider, modelId_, PRICE);
        vm.prank(provider);
        vm.expectRevert(IMarketplace.MarketplaceActiveBidNotFound.selector);
        marketplace.deleteModelBid(next_);
        assertTrue(bidStorage.isBidActive(third_), "latest stays active");
    }

    function test_deleteModelBid_delegated() public {
        (bytes32 modelId_, bytes32 bidId_) = _defaultBid();
        vm.prank(provider);
        registry.delegateContract(delegatee, address(diamond), RULES_MARKETPLACE, true);

        vm.expectEmit(true, true, false, true, address(diamond));
        emit MarketplaceBidDeleted(provider, modelId_, 0);
        vm.prank(delegatee);
        marketplace.deleteModelBid(bidId_);
        assertFalse(bidStorage.isBidActive(bidId_), "deleted by the delegatee");
    }

    function test_deleteModelBid_wrongRuleReverts() public {
        (, bytes32 bidId_) = _defaultBid();
        vm.prank(provider);
        registry.delegateContract(delegatee, address(diamond), RULES_SESSION, true);

        vm.prank(delegatee);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, provider, delegatee));
        marketplace.deleteModelBid(bidId_);
        assertTrue(bidStorage.isBidActive(bidId_), "still active");
    }

    // ---------------------------------------------------------------------------------------------------
    // withdrawFee
    // ---------------------------------------------------------------------------------------------------

    function _collectFees(uint256 count_) internal returns (bytes32 modelId_) {
        modelId_ = _providerAndModel();
        marketplace.setMarketplaceBidFee(FEE);
        for (uint256 i = 0; i < count_; i++) {
            _postBid(provider, modelId_, PRICE);
        }
        assertEq(marketplace.getFeeBalance(), count_ * FEE, "fees collected");
    }

    function test_withdrawFee_partial() public {
        _collectFees(3);
        uint256 recipientBefore_ = token.balanceOf(stranger);
        uint256 diamondBefore_ = token.balanceOf(address(diamond));

        vm.expectEmit(true, true, false, true, address(token));
        emit Transfer(address(diamond), stranger, 1 ether);
        marketplace.withdrawFee(stranger, 1 ether);

        assertEq(token.balanceOf(stranger), recipientBefore_ + 1 ether, "recipient received");
        assertEq(token.balanceOf(address(diamond)), diamondBefore_ - 1 ether, "diamond paid");
        assertEq(marketplace.getFeeBalance(), 2 ether, "feeBalance decreased");
    }

    function test_withdrawFee_cappedAtFeeBalance() public {
        _collectFees(2);
        uint256 recipientBefore_ = token.balanceOf(funding);
        uint256 diamondBefore_ = token.balanceOf(address(diamond));
        assertEq(diamondBefore_, PROVIDER_STAKE + MODEL_STAKE + 2 * FEE, "diamond holds stakes and fees");

        marketplace.withdrawFee(funding, 1_000 ether);

        assertEq(token.balanceOf(funding), recipientBefore_ + 2 * FEE, "only the fee balance is paid");
        assertEq(token.balanceOf(address(diamond)), PROVIDER_STAKE + MODEL_STAKE, "stakes untouched");
        assertEq(marketplace.getFeeBalance(), 0, "feeBalance emptied");

        // Now empty: the next withdrawal reverts.
        vm.expectRevert(IMarketplace.MarketplaceFeeAmountIsZero.selector);
        marketplace.withdrawFee(funding, 1);
    }

    function test_withdrawFee_zeroBalanceReverts() public {
        // Stakes are in the diamond, but no fee was collected.
        _defaultBid();
        assertEq(marketplace.getFeeBalance(), 0, "no fee");
        uint256 diamondBefore_ = token.balanceOf(address(diamond));
        vm.expectRevert(IMarketplace.MarketplaceFeeAmountIsZero.selector);
        marketplace.withdrawFee(owner, 1 ether);
        assertEq(token.balanceOf(address(diamond)), diamondBefore_, "nothing left the diamond");
    }

    function test_withdrawFee_zeroAmountReverts() public {
        _collectFees(1);
        vm.expectRevert(IMarketplace.MarketplaceFeeAmountIsZero.selector);
        marketplace.withdrawFee(owner, 0);
        assertEq(marketplace.getFeeBalance(), FEE, "unchanged");
    }

    function test_withdrawFee_ownerOnly() public {
        _collectFees(1);
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        marketplace.withdrawFee(stranger, FEE);

        // The provider who paid the fee cannot take it back either.
        vm.prank(provider);
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, provider));
        marketplace.withdrawFee(provider, FEE);
        assertEq(marketplace.getFeeBalance(), FEE, "unchanged");
    }

    function test_withdrawFee_toOwnerFull() public {
        _collectFees(1);
        uint256 ownerBefore_ = token.balanceOf(owner);
        uint256 diamondBefore_ = token.balanceOf(address(diamond));
        marketplace.withdrawFee(owner, FEE);
        assertEq(token.balanceOf(owner), ownerBefore_ + FEE, "owner received");
        assertEq(token.balanceOf(address(diamond)), diamondBefore_ - FEE, "diamond paid");
        assertEq(marketplace.getFeeBalance(), 0, "empty");
    }

    // ---------------------------------------------------------------------------------------------------
    // Views
    // ---------------------------------------------------------------------------------------------------

    function test_views_getTokenAndUnknownBid() public view {
        assertEq(bidStorage.getToken(), address(token), "getToken");
        bytes32 unknown_ = keccak256("nope");
        assertFalse(bidStorage.isBidActive(unknown_), "unknown bid inactive");
        assertFalse(bidStorage.isBidActive(bytes32(0)), "zero id inactive");
        _assertBid(bidStorage.getBid(unknown_), address(0), bytes32(0), 0, 0, 0, 0);
        _assertBid(bidStorage.getBid(bytes32(0)), address(0), bytes32(0), 0, 0, 0, 0);
    }

    function test_views_isBidActiveLifecycle() public {
        bytes32 modelId_ = _providerAndModel();
        bytes32 expected_ = marketplace.getBidId(provider, modelId_, 0);
        assertFalse(bidStorage.isBidActive(expected_), "not yet posted");
        bytes32 bidId_ = _postBid(provider, modelId_, PRICE);
        assertEq(bidId_, expected_, "predicted id");
        assertTrue(bidStorage.isBidActive(bidId_), "posted");
        vm.prank(provider);
        marketplace.deleteModelBid(bidId_);
        assertFalse(bidStorage.isBidActive(bidId_), "deleted");
    }

    /// @dev The router's flow (§7(c)): read the fee, post, find MarketplaceBidPosted in the receipt, derive the id.
    function test_routerFlow_postThenDeriveIdFromEvent() public {
        bytes32 modelId_ = _providerAndModel();
        marketplace.setMarketplaceBidFee(FEE);
        uint256 fee_ = marketplace.getBidFee();
        vm.prank(provider);
        token.increaseAllowance(address(diamond), 0); // allowance is already max; the router calls this anyway

        vm.recordLogs();
        bytes32 returned_ = _postBid(provider, modelId_, PRICE);
        Vm.Log[] memory logs_ = vm.getRecordedLogs();

        bool found_;
        for (uint256 i = 0; i < logs_.length; i++) {
            if (logs_[i].emitter == address(diamond) && logs_[i].topics[0] == keccak256("MarketplaceBidPosted(address,bytes32,uint256)")) {
                address p_ = address(uint160(uint256(logs_[i].topics[1])));
                bytes32 m_ = logs_[i].topics[2];
                uint256 nonce_ = abi.decode(logs_[i].data, (uint256));
                bytes32 derived_ = marketplace.getBidId(p_, m_, nonce_);
                assertEq(derived_, returned_, "id from the event = returned id");
                assertEq(bidStorage.getBid(derived_).pricePerSecond, PRICE, "getBid of the derived id");
                found_ = true;
            }
        }
        assertTrue(found_, "MarketplaceBidPosted in the receipt");
        assertEq(marketplace.getFeeBalance(), fee_, "fee as read before");
    }
}
