// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {ISessionRouter} from "../src/interfaces/facets/ISessionRouter.sol";
import {ISessionStorage} from "../src/interfaces/storage/ISessionStorage.sol";
import {IProviderStorage} from "../src/interfaces/storage/IProviderStorage.sol";
import {IProviderRegistry} from "../src/interfaces/facets/IProviderRegistry.sol";
import {IModelRegistry} from "../src/interfaces/facets/IModelRegistry.sol";
import {IMarketplace} from "../src/interfaces/facets/IMarketplace.sol";

/// @notice End-to-end life cycles: configuration, provider/model/bid, a session opened with a router-style
///         approval (millisecond stamp) 600 s before a UTC midnight, closed after midnight with a 7-word
///         receipt, provider claim, user on-hold withdrawal, fee withdrawal and full teardown. Every step
///         checks each party's balance against the exact expected amount, and that the sum of the balances
///         of every account plus the diamond never changes.
contract LifecycleTest is MarketplaceTestBase {
    uint256 internal constant MIN_STAKE = 0.1 ether;
    uint256 internal constant BID_FEE = 0.1 ether;

    struct Bal {
        uint256 provider;
        uint256 user;
        uint256 funding;
        uint256 owner;
        uint256 diamond;
        uint256 others; // delegatee + stranger + provider2: never touched
    }

    uint256 internal total0;

    function _bal() internal view returns (Bal memory b_) {
        b_.provider = token.balanceOf(provider);
        b_.user = token.balanceOf(user);
        b_.funding = token.balanceOf(funding);
        b_.owner = token.balanceOf(owner);
        b_.diamond = token.balanceOf(d.diamond);
        b_.others = token.balanceOf(delegatee) + token.balanceOf(stranger) + token.balanceOf(provider2);
    }

    function _plus(uint256 v_, int256 d_) internal pure returns (uint256) {
        return d_ >= 0 ? v_ + uint256(d_) : v_ - uint256(-d_);
    }

    /// @dev Checks the exact change of every party since `prev_` and the conservation of MOR; returns the
    ///      new snapshot.
    function _step(
        Bal memory prev_,
        int256 dProvider_,
        int256 dUser_,
        int256 dFunding_,
        int256 dOwner_,
        int256 dDiamond_,
        string memory what_
    ) internal view returns (Bal memory now_) {
        assertEq(dProvider_ + dUser_ + dFunding_ + dOwner_ + dDiamond_, int256(0), string.concat(what_, ": deltas sum to 0"));
        now_ = _bal();
        assertEq(now_.provider, _plus(prev_.provider, dProvider_), string.concat(what_, ": provider"));
        assertEq(now_.user, _plus(prev_.user, dUser_), string.concat(what_, ": user"));
        assertEq(now_.funding, _plus(prev_.funding, dFunding_), string.concat(what_, ": funding"));
        assertEq(now_.owner, _plus(prev_.owner, dOwner_), string.concat(what_, ": owner"));
        assertEq(now_.diamond, _plus(prev_.diamond, dDiamond_), string.concat(what_, ": diamond"));
        assertEq(now_.others, prev_.others, string.concat(what_, ": other accounts"));
        assertEq(_totalHeld(), total0, string.concat(what_, ": MOR conserved"));
    }

    function _i(uint256 v_) internal pure returns (int256) {
        return int256(v_);
    }

    /// @dev Owner config, provider (0.2 MOR), model (100 MOR), bid (0.1 MOR fee); returns the ids.
    function _setUpMarket(Bal memory b_) internal returns (Bal memory, bytes32 modelId_, bytes32 bidId_) {
        // Owner: minimum stakes and the bid fee.
        vm.expectEmit(false, false, false, true, d.diamond);
        emit IProviderRegistry.ProviderMinimumStakeUpdated(MIN_STAKE);
        providerRegistry.providerSetMinStake(MIN_STAKE);
        vm.expectEmit(false, false, false, true, d.diamond);
        emit IModelRegistry.ModelMinimumStakeUpdated(MIN_STAKE);
        modelRegistry.modelSetMinStake(MIN_STAKE);
        vm.expectEmit(false, false, false, true, d.diamond);
        emit IMarketplace.MaretplaceFeeUpdated(BID_FEE);
        marketplace.setMarketplaceBidFee(BID_FEE);
        b_ = _step(b_, 0, 0, 0, 0, 0, "owner config");

        // Provider registers with 0.2 MOR.
        vm.expectEmit(true, false, false, false, d.diamond);
        emit IProviderRegistry.ProviderRegistered(provider);
        _registerProvider(provider, PROVIDER_STAKE);
        b_ = _step(b_, -_i(PROVIDER_STAKE), 0, 0, 0, _i(PROVIDER_STAKE), "provider register");
        assertTrue(providerRegistry.getIsProviderActive(provider), "provider active");

        // Model with 100 MOR.
        modelId_ = modelRegistry.getModelId(provider, BASE_MODEL_ID);
        vm.expectEmit(true, true, false, false, d.diamond);
        emit IModelRegistry.ModelRegisteredUpdated(provider, modelId_);
        _registerModel(provider, BASE_MODEL_ID, MODEL_STAKE);
        b_ = _step(b_, -_i(MODEL_STAKE), 0, 0, 0, _i(MODEL_STAKE), "model register");

        // Bid: the 0.1 MOR fee goes to the diamond's fee balance.
        vm.expectEmit(true, true, false, true, d.diamond);
        emit IMarketplace.MarketplaceBidPosted(provider, modelId_, 0);
        bidId_ = _postBid(provider, modelId_, PRICE);
        assertEq(bidId_, marketplace.getBidId(provider, modelId_, 0), "bid id");
        b_ = _step(b_, -_i(BID_FEE), 0, 0, 0, _i(BID_FEE), "post bid");
        assertEq(marketplace.getFeeBalance(), BID_FEE, "fee balance");
        return (b_, modelId_, bidId_);
    }

    /// @dev Opens as the user with a provider approval exactly as the router builds it (ms stamp).
    function _routerOpen(bytes32 bidId_, uint256 stake_, bool direct_) internal returns (bytes32 sessionId_) {
        bytes memory approval_ = _approvalNow(bidId_);
        (, , address approvedUser_, uint128 stamp_) = abi.decode(approval_, (bytes32, uint256, address, uint128));
        assertEq(uint256(stamp_), block.timestamp * 1000, "millisecond stamp");
        assertEq(approvedUser_, user, "approval for the user");
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);

        bytes32 expectedId_ = sessionRouter.getSessionId(user, provider, bidId_, 0);
        vm.expectEmit(true, true, true, true, d.diamond);
        emit ISessionRouter.SessionOpened(user, expectedId_, provider);
        vm.prank(user);
        sessionId_ = sessionRouter.openSession(user, stake_, direct_, approval_, signature_);
        assertEq(sessionId_, expectedId_, "session id");
        assertTrue(sessionRouter.getIsProviderApprovalUsed(approval_), "approval used");
    }

    /// @dev Closes as the user with a 7-word receipt signed by `signerKey_`.
    function _routerClose(bytes32 sessionId_, uint256 signerKey_) internal returns (bytes memory receipt_) {
        receipt_ = _receiptNow(sessionId_, 12_345, 678);
        assertEq(receipt_.length, 7 * 32, "7-word receipt");
        bytes memory signature_ = _sign(signerKey_, receipt_);
        vm.expectEmit(true, true, true, true, d.diamond);
        emit ISessionRouter.SessionClosed(user, sessionId_, provider);
        vm.prank(user);
        sessionRouter.closeSession(receipt_, signature_);
    }

    function _teardown(Bal memory b_, bytes32 modelId_, bytes32 bidId_, uint256 earned_) internal returns (Bal memory) {
        vm.expectEmit(true, true, false, true, d.diamond);
        emit IMarketplace.MarketplaceBidDeleted(provider, modelId_, 0);
        vm.prank(provider);
        marketplace.deleteModelBid(bidId_);
        b_ = _step(b_, 0, 0, 0, 0, 0, "delete bid");

        vm.expectEmit(true, true, false, false, d.diamond);
        emit IModelRegistry.ModelDeregistered(provider, modelId_);
        vm.prank(provider);
        modelRegistry.modelDeregister(modelId_);
        b_ = _step(b_, _i(MODEL_STAKE), 0, 0, 0, -_i(MODEL_STAKE), "model deregister: whole stake back");

        // Within the 365-day window the earned amount stays locked in the provider record.
        vm.expectEmit(true, false, false, false, d.diamond);
        emit IProviderRegistry.ProviderDeregistered(provider);
        vm.prank(provider);
        providerRegistry.providerDeregister(provider);
        uint256 refund_ = PROVIDER_STAKE - earned_;
        b_ = _step(b_, _i(refund_), 0, 0, 0, -_i(refund_), "provider deregister: stake - limitPeriodEarned");

        IProviderStorage.Provider memory p_ = providerRegistry.getProvider(provider);
        assertTrue(p_.isDeleted, "deleted");
        assertEq(p_.stake, earned_, "locked remainder");
        assertEq(p_.limitPeriodEarned, earned_, "limitPeriodEarned");
        assertFalse(providerRegistry.getIsProviderActive(provider), "inactive");
        assertFalse(modelRegistry.getIsModelActive(modelId_), "model inactive");
        assertFalse(bidStorage.isBidActive(bidId_), "bid inactive");
        return b_;
    }

    // ---------------------------------------------------------------------------------------------------

    /// @dev Provider receipt; non-direct. Open 600 s before midnight, close 100 s after midnight:
    ///      700 s * 0.0001 = 0.07 MOR to the provider from FUNDING; the user's lock is
    ///      stipendToStake(100 s * 0.0001 MOR) = 0.01 * 1900 / 6 = 3.1666… MOR until the next UTC day.
    function test_lifecycle_providerReceipt_fundingPays() public {
        total0 = _totalHeld();
        uint256 ownerStart_ = token.balanceOf(owner);
        assertEq(token.balanceOf(d.diamond), 0, "empty diamond");
        Bal memory b_ = _bal();

        bytes32 modelId_;
        bytes32 bidId_;
        (b_, modelId_, bidId_) = _setUpMarket(b_);

        // Open 600 s before a UTC midnight.
        _warpBeforeMidnight(600);
        uint256 midnight_ = block.timestamp + 600;
        bytes32 sessionId_ = _routerOpen(bidId_, SESSION_STAKE, false);
        b_ = _step(b_, 0, -_i(SESSION_STAKE), 0, 0, _i(SESSION_STAKE), "open");
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(uint256(s_.endsAt), midnight_ - 600 + 1578, "endsAt");

        // Close early after midnight with the provider's receipt.
        vm.warp(midnight_ + 100);
        uint256 lock_ = 3166666666666666666;
        assertEq(sessionRouter.stipendToStake(100 * PRICE, uint128(midnight_)), lock_, "lock by hand");
        bytes memory receipt_ = _routerClose(sessionId_, PROVIDER_KEY);
        b_ = _step(
            b_,
            _i(700 * PRICE),
            _i(SESSION_STAKE - lock_),
            -_i(700 * PRICE),
            0,
            -_i(SESSION_STAKE - lock_),
            "close: provider paid by funding, user refund minus lock"
        );
        s_ = sessionRouter.getSession(sessionId_);
        assertEq(uint256(s_.closedAt), midnight_ + 100, "closedAt");
        assertEq(s_.closeoutType, 0, "not disputed");
        assertEq(s_.closeoutReceipt, receipt_, "receipt stored verbatim");
        assertEq(s_.providerWithdrawnAmount, 700 * PRICE, "withdrawn");
        assertFalse(s_.isActive, "inactive");
        (uint256 avail_, uint256 hold_) = sessionRouter.getUserStakesOnHold(user, 1);
        assertEq(avail_, 0, "nothing available yet");
        assertEq(hold_, lock_, "lock held");

        // Provider claims the same day (D3): no revert, nothing more.
        vm.prank(provider);
        sessionRouter.claimForProvider(sessionId_);
        b_ = _step(b_, 0, 0, 0, 0, 0, "same-day claim");

        // Next UTC day: the provider has nothing more; the user withdraws the lock.
        vm.warp(midnight_ + 1 days);
        vm.prank(provider);
        sessionRouter.claimForProvider(sessionId_);
        b_ = _step(b_, 0, 0, 0, 0, 0, "next-day claim");
        vm.expectEmit(true, false, false, true, d.diamond);
        emit ISessionRouter.UserWithdrawn(user, lock_);
        vm.prank(user);
        sessionRouter.withdrawUserStakes(user, 10);
        b_ = _step(b_, 0, _i(lock_), 0, 0, -_i(lock_), "user withdraws the lock");

        // Owner withdraws the bid fee.
        marketplace.withdrawFee(owner, BID_FEE);
        b_ = _step(b_, 0, 0, 0, _i(BID_FEE), -_i(BID_FEE), "fee withdrawal");
        assertEq(marketplace.getFeeBalance(), 0, "fee balance");

        b_ = _teardown(b_, modelId_, bidId_, 700 * PRICE);

        // Final absolute balances.
        assertEq(b_.provider, INITIAL_BALANCE - BID_FEE, "provider: -fee (+0.07 earned, 0.07 locked)");
        assertEq(b_.user, INITIAL_BALANCE, "user: whole stake back");
        assertEq(b_.funding, INITIAL_BALANCE - 700 * PRICE, "funding paid 0.07");
        assertEq(b_.owner, ownerStart_ + BID_FEE, "owner got the fee");
        assertEq(b_.diamond, 700 * PRICE, "diamond keeps the provider's locked 0.07");
        assertEq(sessionRouter.getProvidersTotalClaimed(), 700 * PRICE, "total claimed");
    }

    /// @dev Direct payment (D4) and a disputed close: 0.1 MOR buys 1000 s; opened 600 s before midnight and
    ///      closed 1 s after with the user's own signature: 601 s * price is taken from the stake, 600 s are
    ///      paid at close from the diamond, the last second the next UTC day; no user lock; funding never pays.
    function test_lifecycle_disputedDirectPayment() public {
        total0 = _totalHeld();
        uint256 ownerStart_ = token.balanceOf(owner);
        Bal memory b_ = _bal();

        bytes32 modelId_;
        bytes32 bidId_;
        (b_, modelId_, bidId_) = _setUpMarket(b_);

        _warpBeforeMidnight(600);
        uint256 midnight_ = block.timestamp + 600;
        uint256 amount_ = 0.1 ether;
        bytes32 sessionId_ = _routerOpen(bidId_, amount_, true);
        b_ = _step(b_, 0, -_i(amount_), 0, 0, _i(amount_), "open direct");
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(uint256(s_.endsAt - s_.openedAt), 1000, "D4: amount / price");
        assertTrue(s_.isDirectPaymentFromUser, "direct");

        vm.warp(midnight_ + 1);
        _routerClose(sessionId_, USER_KEY);
        b_ = _step(
            b_,
            _i(600 * PRICE),
            _i(amount_ - 601 * PRICE),
            0,
            0,
            -_i(amount_ - 601 * PRICE) - _i(600 * PRICE),
            "disputed close: 600 s paid from the diamond, refund of the unused stake"
        );
        s_ = sessionRouter.getSession(sessionId_);
        assertEq(s_.closeoutType, 1, "disputed");
        assertEq(s_.providerWithdrawnAmount, 600 * PRICE, "withdrawn at close");
        (uint256 avail_, uint256 hold_) = sessionRouter.getUserStakesOnHold(user, 1);
        assertEq(avail_ + hold_, 0, "D4: no lock for a direct session");

        // Same day: nothing claimable, nothing to withdraw.
        vm.warp(midnight_ + 1 days - 1);
        vm.prank(provider);
        sessionRouter.claimForProvider(sessionId_);
        b_ = _step(b_, 0, 0, 0, 0, 0, "same-day claim");
        vm.prank(user);
        vm.expectRevert(ISessionRouter.SessionUserAmountToWithdrawIsZero.selector);
        sessionRouter.withdrawUserStakes(user, 1);

        // Next UTC day: the held second, from the diamond.
        vm.warp(midnight_ + 1 days);
        vm.prank(provider);
        sessionRouter.claimForProvider(sessionId_);
        b_ = _step(b_, _i(PRICE), 0, 0, 0, -_i(PRICE), "next-day claim of the held second");
        assertEq(sessionRouter.getSession(sessionId_).providerWithdrawnAmount, 601 * PRICE, "withdrawn total");

        // Owner withdraws the fee (asking for more gives the balance), then nothing is left.
        marketplace.withdrawFee(owner, 1 ether);
        b_ = _step(b_, 0, 0, 0, _i(BID_FEE), -_i(BID_FEE), "fee withdrawal");
        vm.expectRevert(IMarketplace.MarketplaceFeeAmountIsZero.selector);
        marketplace.withdrawFee(owner, 1 ether);

        b_ = _teardown(b_, modelId_, bidId_, 601 * PRICE);

        assertEq(b_.provider, INITIAL_BALANCE - BID_FEE, "provider: -fee (+0.0601 earned, 0.0601 locked)");
        assertEq(b_.user, INITIAL_BALANCE - 601 * PRICE, "user paid 601 s");
        assertEq(b_.funding, INITIAL_BALANCE, "funding never pays a direct session");
        assertEq(b_.owner, ownerStart_ + BID_FEE, "owner got the fee");
        assertEq(b_.diamond, 601 * PRICE, "diamond keeps the provider's locked 0.0601");
        assertEq(sessionRouter.getProvidersTotalClaimed(), 601 * PRICE, "total claimed");
    }
}
