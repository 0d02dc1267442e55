// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {ISessionRouter} from "../src/interfaces/facets/ISessionRouter.sol";
import {ISessionStorage} from "../src/interfaces/storage/ISessionStorage.sol";
import {IStatsStorage} from "../src/interfaces/storage/IStatsStorage.sol";
import {IDelegation} from "../src/interfaces/facets/IDelegation.sol";
import {LibSD} from "../src/libs/LibSD.sol";

/// @notice closeSession (contracts.md §2.5, §4.5, §4.6 limiter, §5 stats, §7(e)) and deviations D1, D3, D4, D5.
contract SessionCloseTest is MarketplaceTestBase {
    uint128 internal constant SIGNATURE_TTL = 600;

    bytes32 internal modelId;
    bytes32 internal bidId;

    function setUp() public override {
        super.setUp();
        (modelId, bidId) = _defaultBid();
    }

    // ---------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------

    /// @dev Opens a session for `user` on `bidId_`, approval signed by `providerKey_`.
    function _openOn(bytes32 bidId_, uint256 providerKey_, uint256 stake_, bool direct_) internal returns (bytes32) {
        bytes memory approval_ = _approvalNow(bidId_);
        bytes memory signature_ = _sign(providerKey_, approval_);
        vm.prank(user);
        return sessionRouter.openSession(user, stake_, direct_, approval_, signature_);
    }

    function _close(address caller_, bytes memory receipt_, uint256 signerKey_) internal {
        bytes memory signature_ = _sign(signerKey_, receipt_);
        vm.prank(caller_);
        sessionRouter.closeSession(receipt_, signature_);
    }

    function _closeWithStats(bytes32 sessionId_, uint256 signerKey_, uint32 tps_, uint32 ttft_) internal {
        _close(user, _receipt(sessionId_, block.chainid, uint128(block.timestamp * 1000), tps_, ttft_), signerKey_);
    }

    function _expectCloseRevert(address caller_, bytes memory receipt_, uint256 signerKey_, bytes memory revertData_) internal {
        bytes memory signature_ = _sign(signerKey_, receipt_);
        vm.prank(caller_);
        vm.expectRevert(revertData_);
        sessionRouter.closeSession(receipt_, signature_);
    }

    function _err(bytes4 selector_) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(selector_);
    }

    function _rightsError(address delegator_, address delegatee_) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, delegator_, delegatee_);
    }

    function _assertSD(LibSD.SD memory sd_, int256 mean_, int256 sqSum_, string memory what_) internal pure {
        assertEq(int256(sd_.mean), mean_, string.concat(what_, ".mean"));
        assertEq(int256(sd_.sqSum), sqSum_, string.concat(what_, ".sqSum"));
    }

    function _assertOnHold(uint256 available_, uint256 hold_, string memory what_) internal view {
        (uint256 a_, uint256 h_) = sessionRouter.getUserStakesOnHold(user, 255);
        assertEq(a_, available_, string.concat(what_, ": available"));
        assertEq(h_, hold_, string.concat(what_, ": hold"));
    }

    // ---------------------------------------------------------------------------------------------------
    // Receipts and signers
    // ---------------------------------------------------------------------------------------------------

    function test_close_sevenWordProviderReceipt_noDispute() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        bytes memory receipt_ = _receiptNow(sessionId_, 10_000, 500);
        assertEq(receipt_.length, 224, "7 words");

        vm.expectEmit(true, true, true, true, d.diamond);
        emit ISessionRouter.SessionClosed(user, sessionId_, provider);
        _close(user, receipt_, PROVIDER_KEY);

        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(s_.closeoutReceipt, receipt_, "receipt stored verbatim");
        assertEq(s_.closeoutType, 0, "no dispute");
        assertEq(uint256(s_.closedAt), block.timestamp, "closedAt");
        assertFalse(s_.isActive, "inactive");
        assertEq(s_.user, user, "user kept");
        assertEq(s_.stake, SESSION_STAKE, "stake kept");
        assertEq(s_.providerWithdrawnAmount, 100 * PRICE, "provider paid 100 s");
    }

    function test_close_fiveWordReceipt_accepted() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        bytes memory receipt_ = abi.encode(sessionId_, block.chainid, uint128(block.timestamp * 1000), uint32(12_000), uint32(300));
        assertEq(receipt_.length, 160, "5 words");
        uint256 providerBefore_ = token.balanceOf(provider);

        _close(user, receipt_, PROVIDER_KEY);

        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(s_.closeoutReceipt, receipt_, "receipt stored verbatim");
        assertEq(s_.closeoutType, 0, "no dispute");
        assertFalse(s_.isActive, "inactive");
        assertEq(token.balanceOf(provider), providerBefore_ + 100 * PRICE, "provider paid");
        IStatsStorage.ProviderModelStats memory pm_ = statsStorage.getProviderModelStats(modelId, provider);
        assertEq(int256(pm_.tpsScaled1000.mean), 12_000, "tps read from word 4");
        assertEq(int256(pm_.ttftMs.mean), 300, "ttft read from word 5");
    }

    function test_close_secondsStampReceipt_accepted() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        // Exactly 600 s old in seconds: still valid.
        _close(user, _receipt(sessionId_, block.chainid, uint128(block.timestamp) - SIGNATURE_TTL, 1, 1), PROVIDER_KEY);
        assertEq(uint256(sessionRouter.getSession(sessionId_).closedAt), block.timestamp, "closed");
    }

    /// @dev D1: a millisecond receipt stamp exactly 600 s old and one in the future are valid.
    function test_close_millisecondStampBoundaries_D1() public {
        bytes32 first_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 1);
        bytes32 second_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 700);

        _close(user, _receipt(first_, block.chainid, uint128((block.timestamp - SIGNATURE_TTL) * 1000), 1, 1), PROVIDER_KEY);
        assertEq(uint256(sessionRouter.getSession(first_).closedAt), block.timestamp, "600 s old ms stamp");
        _close(user, _receipt(second_, block.chainid, uint128((block.timestamp + 1 days) * 1000), 1, 1), PROVIDER_KEY);
        assertEq(uint256(sessionRouter.getSession(second_).closedAt), block.timestamp, "future ms stamp");
    }

    function test_close_userSignedReceipt_isDispute() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        bytes memory receipt_ = _receiptNow(sessionId_, 10_000, 500);

        vm.expectEmit(true, true, true, true, d.diamond);
        emit ISessionRouter.SessionClosed(user, sessionId_, provider);
        _close(user, receipt_, USER_KEY);

        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(s_.closeoutType, 1, "dispute");
        assertEq(s_.closeoutReceipt, receipt_, "receipt stored verbatim");
        assertFalse(s_.isActive, "inactive");
    }

    function test_close_strangerSignedReceipt_isDispute() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        _close(user, _receiptNow(sessionId_, 10_000, 500), STRANGER_KEY);
        assertEq(sessionRouter.getSession(sessionId_).closeoutType, 1, "dispute");
    }

    function test_close_providerDelegateSignedReceipt_noDispute() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        bytes32 rules_ = RULES_PROVIDER;
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, rules_, true);
        vm.warp(block.timestamp + 100);

        _close(user, _receiptNow(sessionId_, 10_000, 500), DELEGATE_KEY);
        assertEq(sessionRouter.getSession(sessionId_).closeoutType, 0, "provider side: no dispute");
        assertEq(statsStorage.getProviderModelStats(modelId, provider).successCount, 1, "counted as success");
    }

    function test_close_malformedSignature_reverts() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        bytes memory receipt_ = _receiptNow(sessionId_, 10_000, 500);
        bytes memory signature_ = _sign(PROVIDER_KEY, receipt_);
        bytes memory short_ = new bytes(64);
        for (uint256 i = 0; i < 64; i++) short_[i] = signature_[i];
        vm.prank(user);
        vm.expectRevert(abi.encodeWithSignature("Error(string)", "ECDSA: invalid signature length"));
        sessionRouter.closeSession(receipt_, short_);
    }

    // ---------------------------------------------------------------------------------------------------
    // Reverts and access
    // ---------------------------------------------------------------------------------------------------

    function test_close_receiptForAnotherChain_reverts() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        _expectCloseRevert(
            user,
            _receipt(sessionId_, block.chainid + 1, uint128(block.timestamp * 1000), 1, 1),
            PROVIDER_KEY,
            _err(ISessionRouter.SessionReceiptForAnotherChainId.selector)
        );
    }

    function test_close_expiredSecondsReceipt_reverts() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 700);
        _expectCloseRevert(
            user,
            _receipt(sessionId_, block.chainid, uint128(block.timestamp) - SIGNATURE_TTL - 1, 1, 1),
            PROVIDER_KEY,
            _err(ISessionRouter.SessionReceiptExpired.selector)
        );
    }

    /// @dev D1: millisecond receipt stamps expire after 600 s too (the reference never expires them).
    function test_close_expiredMillisecondReceipt_D1_reverts() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 700);
        _expectCloseRevert(
            user,
            _receipt(sessionId_, block.chainid, uint128((block.timestamp - SIGNATURE_TTL - 1) * 1000), 1, 1),
            PROVIDER_KEY,
            _err(ISessionRouter.SessionReceiptExpired.selector)
        );
    }

    function test_close_unknownSession_reverts() public {
        bytes32 unknown_ = keccak256("unknown session");
        _expectCloseRevert(user, _receiptNow(unknown_, 1, 1), PROVIDER_KEY, _rightsError(address(0), user));
        _expectCloseRevert(stranger, _receiptNow(unknown_, 1, 1), PROVIDER_KEY, _rightsError(address(0), stranger));
    }

    function test_close_alreadyClosed_reverts() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        _closeSession(sessionId_, PROVIDER_KEY);
        vm.warp(block.timestamp + 1);
        Balances memory before_ = _balances();
        _expectCloseRevert(user, _receiptNow(sessionId_, 1, 1), PROVIDER_KEY, _err(ISessionRouter.SessionAlreadyClosed.selector));
        _expectCloseRevert(user, _receiptNow(sessionId_, 1, 1), USER_KEY, _err(ISessionRouter.SessionAlreadyClosed.selector));
        Balances memory after_ = _balances();
        assertEq(after_.user, before_.user, "user unchanged");
        assertEq(after_.diamond, before_.diamond, "diamond unchanged");
    }

    function test_close_byStranger_reverts() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        _expectCloseRevert(stranger, _receiptNow(sessionId_, 1, 1), PROVIDER_KEY, _rightsError(user, stranger));
        // The provider cannot close either: only the user side can.
        _expectCloseRevert(provider, _receiptNow(sessionId_, 1, 1), PROVIDER_KEY, _rightsError(user, provider));
    }

    function test_close_bySessionDelegate() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        bytes32 rules_ = RULES_SESSION;
        vm.prank(user);
        registry.delegateContract(delegatee, d.diamond, rules_, true);
        // After the day of endsAt: no v7.8 day-lock, the whole stake comes back.
        vm.warp(_startOfDay(sessionRouter.getSession(sessionId_).endsAt) + 1 days + 100);

        Balances memory before_ = _balances();
        uint256 delegateBefore_ = token.balanceOf(delegatee);
        vm.expectEmit(true, true, true, true, d.diamond);
        emit ISessionRouter.SessionClosed(user, sessionId_, provider);
        _close(delegatee, _receiptNow(sessionId_, 1, 1), PROVIDER_KEY);

        Balances memory after_ = _balances();
        assertEq(after_.user, before_.user + SESSION_STAKE, "refund goes to the user");
        assertEq(token.balanceOf(delegatee), delegateBefore_, "delegate gets nothing");
        assertEq(after_.diamond, before_.diamond - SESSION_STAKE, "diamond released the stake");
        assertEq(after_.provider, before_.provider + 1578 * PRICE, "provider paid");
        assertFalse(sessionRouter.getSession(sessionId_).isActive, "closed");
    }

    function test_close_delegateWithWrongRule_reverts() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        bytes32 rules_ = RULES_PROVIDER;
        vm.prank(user);
        registry.delegateContract(delegatee, d.diamond, rules_, true);
        vm.warp(block.timestamp + 100);
        _expectCloseRevert(delegatee, _receiptNow(sessionId_, 1, 1), PROVIDER_KEY, _rightsError(user, delegatee));
    }

    function test_close_tooShortReceipt_revertsWithoutData() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        bytes memory receipt_ = abi.encode(sessionId_, block.chainid, uint128(block.timestamp * 1000), uint32(1)); // 4 words
        bytes memory signature_ = _sign(PROVIDER_KEY, receipt_);

        vm.prank(user);
        (bool ok_, bytes memory ret_) = d.diamond.call(abi.encodeCall(ISessionRouter.closeSession, (receipt_, signature_)));
        assertFalse(ok_, "reverts");
        assertEq(ret_.length, 0, "empty revert data");

        vm.prank(user);
        vm.expectRevert();
        sessionRouter.closeSession(receipt_, signature_);
        assertTrue(sessionRouter.getSession(sessionId_).isActive, "still open");
    }

    // ---------------------------------------------------------------------------------------------------
    // Money at close (§4.5)
    // ---------------------------------------------------------------------------------------------------

    /// @dev The stake the v7.8 day-lock keeps for a session closed at or after its end: the stipend used on
    ///      the day of endsAt, capped at the stake.
    function _lateLock(ISessionStorage.Session memory s_) internal view returns (uint256 lock_, uint128 sod_) {
        sod_ = sessionRouter.startOfTheDay(s_.endsAt);
        uint256 from_ = s_.openedAt > sod_ ? s_.openedAt : sod_;
        lock_ = sessionRouter.stipendToStake((uint256(s_.endsAt) - from_) * PRICE, sod_);
        if (lock_ > s_.stake) lock_ = s_.stake;
    }

    /// @dev (a) v7.8: a late close on the day of endsAt locks the stake of the stipend used that day until
    ///      the next UTC day; the provider is paid (endsAt - openedAt)·price by funding.
    function test_close_lateSameDay_locksUsedStipend_v78() public {
        _warpBeforeMidnight(2 hours);
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        uint256 expectedPay_ = uint256(s_.endsAt - s_.openedAt) * PRICE;
        assertEq(expectedPay_, 1578 * PRICE, "1578 s");
        vm.warp(uint256(s_.endsAt) + 100);
        (uint256 lock_, uint128 sod_) = _lateLock(s_);
        assertEq(uint256(sod_), _startOfDay(block.timestamp), "closed on the day of endsAt");
        assertGt(lock_, 0, "something locked");

        Balances memory before_ = _balances();
        _closeSession(sessionId_, PROVIDER_KEY);
        Balances memory after_ = _balances();

        assertEq(after_.user, before_.user + SESSION_STAKE - lock_, "user: stake minus today's stipend");
        assertEq(after_.provider, before_.provider + expectedPay_, "provider: endsAt - openedAt");
        assertEq(after_.funding, before_.funding - expectedPay_, "paid by funding");
        assertEq(after_.diamond, before_.diamond - (SESSION_STAKE - lock_), "diamond keeps the lock");
        assertEq(after_.total, before_.total, "MOR conserved");
        _assertOnHold(0, lock_, "locked until the next day");
        assertEq(sessionRouter.getSession(sessionId_).providerWithdrawnAmount, expectedPay_, "withdrawn");
        assertEq(sessionRouter.getProvidersTotalClaimed(), expectedPay_, "total claimed");

        vm.warp(uint256(sod_) + 1 days - 1);
        _assertOnHold(0, lock_, "still locked one second before midnight");
        vm.warp(uint256(sod_) + 1 days);
        _assertOnHold(lock_, 0, "released the next day");
        vm.prank(user);
        sessionRouter.withdrawUserStakes(user, 10);
        assertEq(token.balanceOf(user), before_.user + SESSION_STAKE, "the whole stake back in the end");
    }

    /// @dev v7.8: a session that ran across midnight and closed late the next day locks only the stipend
    ///      used on the day of endsAt (from midnight), not the day before.
    function test_close_lateAcrossMidnight_locksFromMidnight_v78() public {
        _warpBeforeMidnight(600);
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        vm.warp(uint256(s_.endsAt) + 10);
        (uint256 lock_, uint128 sod_) = _lateLock(s_);
        assertEq(uint256(sod_), _startOfDay(s_.openedAt) + 1 days, "the day of endsAt");
        assertEq(lock_, sessionRouter.stipendToStake((uint256(s_.endsAt) - sod_) * PRICE, sod_), "from midnight");
        assertGt(lock_, 0, "something locked");

        Balances memory before_ = _balances();
        _closeSession(sessionId_, PROVIDER_KEY);
        Balances memory after_ = _balances();

        assertEq(after_.user, before_.user + SESSION_STAKE - lock_, "user: stake minus the day's stipend");
        assertEq(after_.diamond, before_.diamond - (SESSION_STAKE - lock_), "diamond keeps the lock");
        assertEq(after_.total, before_.total, "MOR conserved");
        _assertOnHold(0, lock_, "locked until the next day");
    }

    /// @dev A late close after the day of endsAt is over locks nothing: that day's stipend cannot be
    ///      bought again. The whole stake comes back, and a disputed late close pays the provider in full.
    function test_close_lateNextDay_dispute_fullRefundAndFullPayout() public {
        _warpBeforeMidnight(2 hours);
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        uint256 expectedPay_ = uint256(s_.endsAt - s_.openedAt) * PRICE;
        vm.warp(_startOfDay(s_.endsAt) + 1 days + 100);

        Balances memory before_ = _balances();
        _closeSession(sessionId_, USER_KEY);
        Balances memory after_ = _balances();

        assertEq(sessionRouter.getSession(sessionId_).closeoutType, 1, "dispute");
        assertEq(after_.user, before_.user + SESSION_STAKE, "user: whole stake back");
        assertEq(after_.provider, before_.provider + expectedPay_, "provider paid in full");
        assertEq(after_.funding, before_.funding - expectedPay_, "paid by funding");
        assertEq(after_.diamond, before_.diamond - SESSION_STAKE, "diamond releases the stake");
        _assertOnHold(0, 0, "no lock");
    }

    /// @dev The intra-day stake-recycle hole v7.8 closes: a user whose whole MOR bought one session that
    ///      ran to its end could close it late and open the next one at once with the same stake, buying
    ///      the day's stipend twice. Now the used stipend's stake waits for the next UTC day.
    function test_close_lateSameDay_stakeCannotBeRecycledTheSameDay_v78() public {
        _warpBeforeMidnight(4 hours);
        vm.startPrank(user);
        require(token.transfer(stranger, token.balanceOf(user) - SESSION_STAKE), "transfer");
        vm.stopPrank();
        assertEq(token.balanceOf(user), SESSION_STAKE, "the user holds one stake");

        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        vm.warp(uint256(s_.endsAt) + 1);
        (uint256 lock_, uint128 sod_) = _lateLock(s_);
        _closeSession(sessionId_, PROVIDER_KEY);
        assertEq(token.balanceOf(user), SESSION_STAKE - lock_, "only the unused part came back");

        bytes memory approval_ = _approvalNow(bidId);
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);
        vm.prank(user);
        vm.expectRevert();
        sessionRouter.openSession(user, SESSION_STAKE, false, approval_, signature_);

        vm.warp(uint256(sod_) + 1 days);
        vm.prank(user);
        sessionRouter.withdrawUserStakes(user, 10);
        assertEq(token.balanceOf(user), SESSION_STAKE, "the next day the stake is whole again");
        _openSession(bidId, SESSION_STAKE, false);
    }

    /// @dev (b) Early close, same day, no dispute: provider paid the elapsed time; part of the stake locked
    ///      until the next UTC day.
    function test_close_earlySameDay_noDispute_locksStake() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        uint256 openedAt_ = block.timestamp;
        vm.warp(block.timestamp + 100);
        uint128 sod_ = sessionRouter.startOfTheDay(uint128(block.timestamp));
        assertEq(uint256(sod_), _startOfDay(block.timestamp), "startOfTheDay");
        uint256 start_ = openedAt_ > sod_ ? openedAt_ : sod_;
        uint256 lock_ = sessionRouter.stipendToStake((block.timestamp - start_) * PRICE, sod_);
        if (lock_ > SESSION_STAKE) lock_ = SESSION_STAKE;
        assertGt(lock_, 0, "something locked");
        assertLt(lock_, SESSION_STAKE, "not everything locked");

        Balances memory before_ = _balances();
        _closeSession(sessionId_, PROVIDER_KEY);
        Balances memory after_ = _balances();

        assertEq(after_.provider, before_.provider + 100 * PRICE, "provider: closedAt - openedAt");
        assertEq(after_.funding, before_.funding - 100 * PRICE, "paid by funding");
        assertEq(after_.user, before_.user + SESSION_STAKE - lock_, "user: stake minus lock");
        assertEq(after_.diamond, before_.diamond - (SESSION_STAKE - lock_), "diamond keeps the lock");
        _assertOnHold(0, lock_, "locked today");

        vm.warp(uint256(sod_) + 1 days - 1);
        _assertOnHold(0, lock_, "still locked one second before midnight");
        vm.warp(uint256(sod_) + 1 days);
        _assertOnHold(lock_, 0, "released the next day");
    }

    /// @dev (c) Early close with a dispute on the next day: opened 600 s before midnight, closed 1 s after.
    ///      The provider gets 600 s at close; the next-day second is held until the day after.
    function test_close_earlyNextDay_dispute_holdsTodaysPart() public {
        _warpBeforeMidnight(600);
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertGt(uint256(s_.endsAt), block.timestamp + 601, "still running after midnight");
        vm.warp(block.timestamp + 601);
        uint128 sod_ = uint128(_startOfDay(block.timestamp));
        assertEq(block.timestamp, uint256(sod_) + 1, "one second after midnight");
        // The user part: only today's second of stipend is locked.
        uint256 lock_ = sessionRouter.stipendToStake(1 * PRICE, sod_);
        assertGt(lock_, 0, "lock");

        Balances memory before_ = _balances();
        _closeSession(sessionId_, USER_KEY);
        Balances memory after_ = _balances();

        assertEq(sessionRouter.getSession(sessionId_).closeoutType, 1, "dispute");
        assertEq(after_.provider, before_.provider + 600 * PRICE, "provider: 600 s at close");
        assertEq(after_.funding, before_.funding - 600 * PRICE, "paid by funding");
        assertEq(after_.user, before_.user + SESSION_STAKE - lock_, "user: stake minus today's lock");
        assertEq(after_.diamond, before_.diamond - (SESSION_STAKE - lock_), "diamond keeps the lock");
        assertEq(sessionRouter.getSession(sessionId_).providerWithdrawnAmount, 600 * PRICE, "withdrawn");
        _assertOnHold(0, lock_, "user lock");

        // The held second becomes claimable the next day.
        vm.warp(uint256(sod_) + 1 days);
        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 fundingBefore_ = token.balanceOf(funding);
        vm.prank(provider);
        sessionRouter.claimForProvider(sessionId_);
        assertEq(token.balanceOf(provider), providerBefore_ + 1 * PRICE, "the held second");
        assertEq(token.balanceOf(funding), fundingBefore_ - 1 * PRICE, "from funding");
        _assertOnHold(lock_, 0, "user lock released");
    }

    /// @dev (d) Early close with a dispute on the same day: the provider gets nothing at close.
    function test_close_earlySameDay_dispute_providerGetsNothing() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        uint128 sod_ = uint128(_startOfDay(block.timestamp));
        uint256 lock_ = sessionRouter.stipendToStake(100 * PRICE, sod_);

        Balances memory before_ = _balances();
        _closeSession(sessionId_, USER_KEY);
        Balances memory after_ = _balances();

        assertEq(sessionRouter.getSession(sessionId_).closeoutType, 1, "dispute");
        assertEq(after_.provider, before_.provider, "provider: nothing at close");
        assertEq(after_.funding, before_.funding, "funding untouched");
        assertEq(after_.user, before_.user + SESSION_STAKE - lock_, "user: stake minus lock");
        assertEq(after_.diamond, before_.diamond - (SESSION_STAKE - lock_), "diamond keeps the lock");
        assertEq(sessionRouter.getSession(sessionId_).providerWithdrawnAmount, 0, "nothing withdrawn");
        assertEq(sessionRouter.getProvidersTotalClaimed(), 0, "nothing claimed");
        _assertOnHold(0, lock_, "user lock");
    }

    /// @dev (e) D4/D5: a direct-payment session pays the provider out of the held stake, not from funding;
    ///      the user gets stake - elapsed·price and nothing is put on hold.
    function test_close_directPayment_D4_D5_paidFromStake() public {
        uint256 amount_ = 1 ether; // 10 000 s
        bytes32 sessionId_ = _openSession(bidId, amount_, true);
        assertEq(uint256(sessionRouter.getSession(sessionId_).endsAt), block.timestamp + 10_000, "D4 duration");
        vm.warp(block.timestamp + 100);

        Balances memory before_ = _balances();
        _closeSession(sessionId_, PROVIDER_KEY);
        Balances memory after_ = _balances();

        assertEq(after_.provider, before_.provider + 100 * PRICE, "provider: elapsed time");
        assertEq(after_.funding, before_.funding, "funding untouched");
        assertEq(after_.user, before_.user + amount_ - 100 * PRICE, "user: stake minus elapsed");
        assertEq(after_.diamond, before_.diamond - amount_, "diamond releases the whole stake");
        _assertOnHold(0, 0, "D4/D5: no on-hold entry");
        assertEq(sessionRouter.getProvidersTotalClaimed(), 100 * PRICE, "total claimed");
    }

    /// @dev D4: a disputed early direct session: the user pays the elapsed time, the provider's share waits
    ///      in the diamond until the next day and is then paid from it.
    function test_close_directPayment_dispute_D4_heldInDiamond() public {
        uint256 amount_ = 1 ether;
        bytes32 sessionId_ = _openSession(bidId, amount_, true);
        vm.warp(block.timestamp + 100);
        uint256 sod_ = _startOfDay(block.timestamp);

        Balances memory before_ = _balances();
        _closeSession(sessionId_, USER_KEY);
        Balances memory after_ = _balances();

        assertEq(after_.provider, before_.provider, "provider: nothing at close");
        assertEq(after_.funding, before_.funding, "funding untouched");
        assertEq(after_.user, before_.user + amount_ - 100 * PRICE, "user: stake minus elapsed");
        assertEq(after_.diamond, before_.diamond - (amount_ - 100 * PRICE), "diamond keeps the provider's share");
        _assertOnHold(0, 0, "no user lock");

        vm.warp(sod_ + 1 days);
        vm.prank(provider);
        sessionRouter.claimForProvider(sessionId_);
        assertEq(token.balanceOf(provider), after_.provider + 100 * PRICE, "paid the next day");
        assertEq(token.balanceOf(d.diamond), after_.diamond - 100 * PRICE, "from the diamond");
        assertEq(token.balanceOf(funding), after_.funding, "not from funding");
    }

    /// @dev §4.6: a provider with 0.2 MOR of stake earns at most 0.2 MOR per 365-day window.
    function test_close_providerLimiterCapsPayout() public {
        bytes32 first_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 1);
        bytes32 second_ = _openSession(bidId, SESSION_STAKE, false);
        ISessionStorage.Session memory s1_ = sessionRouter.getSession(first_);
        ISessionStorage.Session memory s2_ = sessionRouter.getSession(second_);
        uint256 worth1_ = uint256(s1_.endsAt - s1_.openedAt) * PRICE;
        uint256 worth2_ = uint256(s2_.endsAt - s2_.openedAt) * PRICE;
        assertGt(worth1_, 0.1 ether, "first worth > 0.1 MOR");
        assertGt(worth2_, 0.1 ether, "second worth > 0.1 MOR");
        // After the day of endsAt: no v7.8 day-lock, both stakes come back whole.
        vm.warp(_startOfDay(s2_.endsAt) + 1 days + 10);

        Balances memory before_ = _balances();
        _closeSession(first_, PROVIDER_KEY);
        _closeSession(second_, PROVIDER_KEY);
        Balances memory after_ = _balances();

        assertEq(after_.provider, before_.provider + PROVIDER_STAKE, "provider paid exactly its stake");
        assertEq(after_.funding, before_.funding - PROVIDER_STAKE, "funding paid exactly the stake");
        assertEq(after_.user, before_.user + 2 * SESSION_STAKE, "user: both stakes back");
        assertEq(after_.diamond, before_.diamond - 2 * SESSION_STAKE, "diamond");
        assertEq(sessionRouter.getSession(first_).providerWithdrawnAmount, worth1_, "first paid in full");
        assertEq(sessionRouter.getSession(second_).providerWithdrawnAmount, PROVIDER_STAKE - worth1_, "second capped");
        assertEq(providerRegistry.getProvider(provider).limitPeriodEarned, PROVIDER_STAKE, "limit reached");
        assertEq(sessionRouter.getProvidersTotalClaimed(), PROVIDER_STAKE, "total claimed");
    }

    // ---------------------------------------------------------------------------------------------------
    // Statistics (§5)
    // ---------------------------------------------------------------------------------------------------

    function test_stats_twoUndisputedClosesThenSecondProvider() public {
        // Provider 1, session 1: 100 s, tps 10 000, ttft 500.
        bytes32 s1_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        _closeWithStats(s1_, PROVIDER_KEY, 10_000, 500);

        IStatsStorage.ProviderModelStats memory pm_ = statsStorage.getProviderModelStats(modelId, provider);
        _assertSD(pm_.tpsScaled1000, 10_000, 0, "pm1 tps after 1");
        _assertSD(pm_.ttftMs, 500, 0, "pm1 ttft after 1");
        assertEq(uint256(pm_.totalDuration), 100, "pm1 duration after 1");
        assertEq(uint256(pm_.successCount), 1, "pm1 success after 1");
        assertEq(uint256(pm_.totalCount), 1, "pm1 total after 1");
        IStatsStorage.ModelStats memory ms_ = statsStorage.getModelStats(modelId);
        assertEq(uint256(ms_.count), 1, "model count after 1");
        _assertSD(ms_.tpsScaled1000, 10_000, 0, "ms tps after 1");
        _assertSD(ms_.ttftMs, 500, 0, "ms ttft after 1");
        _assertSD(ms_.totalDuration, 100, 0, "ms duration after 1");

        // Provider 1, session 2: 200 s, tps 20 001, ttft 301.
        bytes32 s2_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 200);
        _closeWithStats(s2_, PROVIDER_KEY, 20_001, 301);

        // tps:  m = 10000 + (20001 - 10000)/2 = 10000 + 5000 = 15000;  sq = (20001 - 15000)(20001 - 10000) = 5001·10001
        // ttft: m = 500 + (301 - 500)/2 = 500 - 99 = 401 (truncated); sq = (301 - 401)(301 - 500) = 19 900
        pm_ = statsStorage.getProviderModelStats(modelId, provider);
        _assertSD(pm_.tpsScaled1000, 15_000, 50_015_001, "pm1 tps after 2");
        _assertSD(pm_.ttftMs, 401, 19_900, "pm1 ttft after 2");
        assertEq(uint256(pm_.totalDuration), 300, "pm1 duration = 100 + 200");
        assertEq(uint256(pm_.successCount), 2, "pm1 success after 2");
        assertEq(uint256(pm_.totalCount), 2, "pm1 total after 2");
        // Model: the provider's old means are removed (count 0 → reset) and the new means added (count 1).
        // totalDuration is never removed: m = 100 + (300 - 100)/1 = 300, sq = (300 - 300)(300 - 100) = 0.
        ms_ = statsStorage.getModelStats(modelId);
        assertEq(uint256(ms_.count), 1, "still one provider");
        _assertSD(ms_.tpsScaled1000, 15_000, 0, "ms tps after 2");
        _assertSD(ms_.ttftMs, 401, 0, "ms ttft after 2");
        _assertSD(ms_.totalDuration, 300, 0, "ms duration after 2");

        // Provider 2 on the same model: 50 s, tps 30 000, ttft 1 002.
        _registerProvider(provider2, PROVIDER_STAKE);
        bytes32 bid2_ = _postBid(provider2, modelId, PRICE);
        bytes32 s3_ = _openOn(bid2_, PROVIDER2_KEY, SESSION_STAKE, false);
        vm.warp(block.timestamp + 50);
        _closeWithStats(s3_, PROVIDER2_KEY, 30_000, 1_002);

        IStatsStorage.ProviderModelStats memory pm2_ = statsStorage.getProviderModelStats(modelId, provider2);
        _assertSD(pm2_.tpsScaled1000, 30_000, 0, "pm2 tps");
        _assertSD(pm2_.ttftMs, 1_002, 0, "pm2 ttft");
        assertEq(uint256(pm2_.totalDuration), 50, "pm2 duration");
        assertEq(uint256(pm2_.successCount), 1, "pm2 success");
        assertEq(uint256(pm2_.totalCount), 1, "pm2 total");
        // Provider 1 is untouched.
        pm_ = statsStorage.getProviderModelStats(modelId, provider);
        _assertSD(pm_.tpsScaled1000, 15_000, 50_015_001, "pm1 tps unchanged");
        assertEq(uint256(pm_.totalCount), 2, "pm1 total unchanged");
        // Model over the two providers' means (n = 2):
        // tps:  m = 15000 + (30000 - 15000)/2 = 22500 = (15000 + 30000)/2; sq = (30000 - 22500)(30000 - 15000) = 112 500 000
        // ttft: m = 401 + (1002 - 401)/2 = 401 + 300 = 701 (701.5 truncated); sq = (1002 - 701)(1002 - 401) = 301·601 = 180 901
        // duration: m = 300 + (50 - 300)/2 = 175; sq = (50 - 175)(50 - 300) = 31 250
        ms_ = statsStorage.getModelStats(modelId);
        assertEq(uint256(ms_.count), 2, "two providers");
        _assertSD(ms_.tpsScaled1000, 22_500, 112_500_000, "ms tps over providers");
        _assertSD(ms_.ttftMs, 701, 180_901, "ms ttft over providers");
        _assertSD(ms_.totalDuration, 175, 31_250, "ms duration over providers");
        assertEq(
            int256(ms_.tpsScaled1000.mean),
            (int256(pm_.tpsScaled1000.mean) + int256(pm2_.tpsScaled1000.mean)) / 2,
            "model tps mean = mean of the providers' means"
        );
    }

    function test_stats_disputedCloseOnlyCountsTotal() public {
        // A first, disputed close: only totalCount moves, the model does not count the provider.
        bytes32 s1_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        _closeWithStats(s1_, USER_KEY, 99_999, 9_999);

        IStatsStorage.ProviderModelStats memory pm_ = statsStorage.getProviderModelStats(modelId, provider);
        assertEq(uint256(pm_.totalCount), 1, "total after dispute");
        assertEq(uint256(pm_.successCount), 0, "no success");
        assertEq(uint256(pm_.totalDuration), 0, "no duration");
        _assertSD(pm_.tpsScaled1000, 0, 0, "pm tps untouched");
        _assertSD(pm_.ttftMs, 0, 0, "pm ttft untouched");
        IStatsStorage.ModelStats memory ms_ = statsStorage.getModelStats(modelId);
        assertEq(uint256(ms_.count), 0, "model count 0");
        _assertSD(ms_.tpsScaled1000, 0, 0, "ms tps untouched");
        _assertSD(ms_.totalDuration, 0, 0, "ms duration untouched");

        // An undisputed close: 200 s, tps 8 000, ttft 250.
        bytes32 s2_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 200);
        _closeWithStats(s2_, PROVIDER_KEY, 8_000, 250);

        // Another disputed close after a success: still only totalCount.
        bytes32 s3_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 300);
        _closeWithStats(s3_, USER_KEY, 1, 1);

        pm_ = statsStorage.getProviderModelStats(modelId, provider);
        assertEq(uint256(pm_.totalCount), 3, "three closes");
        assertEq(uint256(pm_.successCount), 1, "one success");
        assertEq(uint256(pm_.totalDuration), 200, "only the undisputed duration");
        _assertSD(pm_.tpsScaled1000, 8_000, 0, "pm tps");
        _assertSD(pm_.ttftMs, 250, 0, "pm ttft");
        ms_ = statsStorage.getModelStats(modelId);
        assertEq(uint256(ms_.count), 1, "model count 1");
        _assertSD(ms_.tpsScaled1000, 8_000, 0, "ms tps");
        _assertSD(ms_.ttftMs, 250, 0, "ms ttft");
        _assertSD(ms_.totalDuration, 200, 0, "ms duration");
    }

    /// @dev The stats record the real elapsed time, even past endsAt.
    function test_stats_lateCloseRecordsRealElapsedTime() public {
        bytes32 s1_ = _openSession(bidId, SESSION_STAKE, false);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(s1_);
        vm.warp(uint256(s_.endsAt) + 500);
        _closeWithStats(s1_, PROVIDER_KEY, 1_000, 100);
        assertEq(
            uint256(statsStorage.getProviderModelStats(modelId, provider).totalDuration),
            uint256(s_.endsAt - s_.openedAt) + 500,
            "closedAt - openedAt"
        );
    }
}
