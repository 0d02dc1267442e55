// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {ISessionRouter} from "../src/interfaces/facets/ISessionRouter.sol";
import {ISessionStorage} from "../src/interfaces/storage/ISessionStorage.sol";
import {IProviderStorage} from "../src/interfaces/storage/IProviderStorage.sol";
import {IDelegation} from "../src/interfaces/facets/IDelegation.sol";

/// @notice claimForProvider (access, open/late/early/disputed sessions, D3, the 365-day limiter, D4 direct
///         payment) and the user's on-hold stakes (withdrawUserStakes, getUserStakesOnHold, D5).
///         contracts.md §2.5, §4.5, §4.6, §4.7.
/// @dev Every expected amount is computed by hand. With the default pools compute/supply is exactly 6/19
///      on every day used here, so stipendToStake(x) = x * 100 * 19 / 6 (floored) while nothing has been
///      claimed yet, and a 50 MOR session lasts floor(50e18 * 6 / 1900 / 1e14) = 1578 s.
contract SessionClaimsTest is MarketplaceTestBase {
    event Transfer(address indexed from, address indexed to, uint256 value);

    /// @dev 50 MOR at 0.0001 MOR/s with the default pools.
    uint256 internal constant DURATION_50 = 1578;
    /// @dev stipendToStake(1 s * 0.0001 MOR) = 1e14 * 1900 / 6, floored.
    uint256 internal constant LOCK_1S = 31666666666666666;
    /// @dev stipendToStake(100 s), (199 s), (300 s) of 0.0001 MOR.
    uint256 internal constant LOCK_100S = 3166666666666666666;
    uint256 internal constant LOCK_199S = 6301666666666666666;
    uint256 internal constant LOCK_300S = 9500000000000000000;

    bytes32 internal modelId;
    bytes32 internal bidId;

    function setUp() public override {
        super.setUp();
        (modelId, bidId) = _defaultBid();
    }

    // ---------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------

    /// @dev Asserts that nothing moved since `b_`.
    function _assertUnchanged(Balances memory b_, string memory what_) internal view {
        Balances memory a_ = _balances();
        assertEq(a_.provider, b_.provider, string.concat(what_, ": provider"));
        assertEq(a_.user, b_.user, string.concat(what_, ": user"));
        assertEq(a_.funding, b_.funding, string.concat(what_, ": funding"));
        assertEq(a_.diamond, b_.diamond, string.concat(what_, ": diamond"));
        assertEq(a_.delegatee, b_.delegatee, string.concat(what_, ": delegatee"));
        assertEq(a_.total, b_.total, string.concat(what_, ": total"));
    }

    /// @dev Asserts a provider payout of `amount_` from the funding account (non-direct sessions).
    function _assertPaidFromFunding(Balances memory b_, uint256 amount_, string memory what_) internal view {
        Balances memory a_ = _balances();
        assertEq(a_.provider, b_.provider + amount_, string.concat(what_, ": provider"));
        assertEq(a_.funding, b_.funding - amount_, string.concat(what_, ": funding"));
        assertEq(a_.diamond, b_.diamond, string.concat(what_, ": diamond"));
        assertEq(a_.user, b_.user, string.concat(what_, ": user"));
        assertEq(a_.total, b_.total, string.concat(what_, ": total"));
    }

    function _claimAs(address caller_, bytes32 sessionId_) internal {
        vm.prank(caller_);
        sessionRouter.claimForProvider(sessionId_);
    }

    function _withdrawAs(address caller_, uint8 iterations_) internal {
        vm.prank(caller_);
        sessionRouter.withdrawUserStakes(user, iterations_);
    }

    function _assertOnHold(uint256 available_, uint256 hold_, string memory what_) internal view {
        (uint256 a_, uint256 h_) = sessionRouter.getUserStakesOnHold(user, 255);
        assertEq(a_, available_, string.concat(what_, ": available"));
        assertEq(h_, hold_, string.concat(what_, ": hold"));
    }

    /// @dev Opens a 50 MOR session 600 s before the next UTC midnight; returns the session and that midnight.
    function _openBeforeMidnight() internal returns (bytes32 sessionId_, uint256 midnight_) {
        _warpBeforeMidnight(600);
        midnight_ = block.timestamp + 600;
        sessionId_ = _openSession(bidId, SESSION_STAKE, false);
    }

    // ---------------------------------------------------------------------------------------------------
    // claimForProvider: access
    // ---------------------------------------------------------------------------------------------------

    function test_claim_revertsForStranger() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + DURATION_50);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, provider, stranger));
        _claimAs(stranger, sessionId_);
    }

    function test_claim_revertsForTheSessionUser() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + DURATION_50);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, provider, user));
        _claimAs(user, sessionId_);
    }

    function test_claim_unknownSession_revertsWithZeroDelegator() public {
        bytes32 unknown_ = keccak256("no such session");
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, address(0), provider));
        _claimAs(provider, unknown_);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, address(0), stranger));
        _claimAs(stranger, unknown_);
    }

    function test_claim_bySessionDelegate_paysTheProvider() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        bytes32 rules_ = RULES_SESSION; // read before the prank
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, rules_, true);

        vm.warp(block.timestamp + DURATION_50);
        Balances memory b_ = _balances();
        _claimAs(delegatee, sessionId_);
        _assertPaidFromFunding(b_, DURATION_50 * PRICE, "delegated claim");
        assertEq(token.balanceOf(delegatee), b_.delegatee, "the delegate receives nothing");
    }

    function test_claim_byDelegateAll_paysTheProvider() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), true);

        vm.warp(block.timestamp + DURATION_50);
        Balances memory b_ = _balances();
        _claimAs(delegatee, sessionId_);
        _assertPaidFromFunding(b_, DURATION_50 * PRICE, "delegateAll claim");
    }

    function test_claim_revertsForDelegateWithWrongRule() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.startPrank(provider);
        registry.delegateContract(delegatee, d.diamond, delegation.DELEGATION_RULES_PROVIDER(), true);
        registry.delegateContract(delegatee, d.diamond, delegation.DELEGATION_RULES_MARKETPLACE(), true);
        vm.stopPrank();

        vm.warp(block.timestamp + DURATION_50);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, provider, delegatee));
        _claimAs(delegatee, sessionId_);
    }

    function test_claim_revertsForSessionDelegateOfAnotherAccount() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        // The USER's session delegate has no rights over the provider's claim.
        bytes32 rules_ = RULES_SESSION; // read before the prank
        vm.prank(user);
        registry.delegateContract(delegatee, d.diamond, rules_, true);

        vm.warp(block.timestamp + DURATION_50);
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, provider, delegatee));
        _claimAs(delegatee, sessionId_);
    }

    // ---------------------------------------------------------------------------------------------------
    // claimForProvider: open sessions
    // ---------------------------------------------------------------------------------------------------

    function test_claim_openSessionBeforeEndsAt_paysZeroWithoutRevert() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(uint256(s_.endsAt - s_.openedAt), DURATION_50, "duration");

        Balances memory b_ = _balances();
        _claimAs(provider, sessionId_);
        vm.warp(block.timestamp + DURATION_50 / 2);
        _claimAs(provider, sessionId_);
        vm.warp(uint256(s_.endsAt) - 1);
        _claimAs(provider, sessionId_);

        _assertUnchanged(b_, "claim before endsAt");
        assertEq(sessionRouter.getSession(sessionId_).providerWithdrawnAmount, 0, "withdrawn");
        assertEq(sessionRouter.getProvidersTotalClaimed(), 0, "total claimed");
        assertEq(providerRegistry.getProvider(provider).limitPeriodEarned, 0, "limitPeriodEarned");
    }

    function test_claim_openSessionAfterEndsAt_paysFullFromFunding() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        vm.warp(uint256(s_.endsAt) + 5 hours); // the user never closed

        uint256 expected_ = uint256(s_.endsAt - s_.openedAt) * PRICE;
        assertEq(expected_, 0.1578 ether, "hand-computed: 1578 s * 0.0001 MOR");

        Balances memory b_ = _balances();
        vm.expectEmit(true, true, false, true, d.token);
        emit Transfer(funding, provider, expected_);
        _claimAs(provider, sessionId_);
        _assertPaidFromFunding(b_, expected_, "late claim");

        ISessionStorage.Session memory after_ = sessionRouter.getSession(sessionId_);
        assertEq(after_.providerWithdrawnAmount, expected_, "providerWithdrawnAmount");
        assertEq(after_.closedAt, 0, "still not closed");
        assertTrue(after_.isActive, "still active");
        assertEq(sessionRouter.getProvidersTotalClaimed(), expected_, "providersTotalClaimed");
        assertEq(providerRegistry.getProvider(provider).limitPeriodEarned, expected_, "limitPeriodEarned");
    }

    function test_claim_exactlyAtEndsAt_paysFull() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(uint256(sessionRouter.getSession(sessionId_).endsAt));
        Balances memory b_ = _balances();
        _claimAs(provider, sessionId_);
        _assertPaidFromFunding(b_, DURATION_50 * PRICE, "claim at endsAt");
    }

    function test_claim_secondClaimPaysNothingMore_andLateClosePaysNothingMore() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + DURATION_50 + 10);
        _claimAs(provider, sessionId_);

        Balances memory b_ = _balances();
        _claimAs(provider, sessionId_);
        vm.warp(block.timestamp + 3 days);
        _claimAs(provider, sessionId_);
        _assertUnchanged(b_, "second claim");
        assertEq(sessionRouter.getSession(sessionId_).providerWithdrawnAmount, DURATION_50 * PRICE, "withdrawn");
        assertEq(sessionRouter.getProvidersTotalClaimed(), DURATION_50 * PRICE, "total claimed");

        // The user's late close returns the whole stake and pays the provider nothing more.
        _closeSession(sessionId_, PROVIDER_KEY);
        Balances memory a_ = _balances();
        assertEq(a_.user, b_.user + SESSION_STAKE, "user gets the whole stake back");
        assertEq(a_.diamond, b_.diamond - SESSION_STAKE, "diamond");
        assertEq(a_.provider, b_.provider, "provider");
        assertEq(a_.funding, b_.funding, "funding");
        assertEq(a_.total, b_.total, "total");
        _assertOnHold(0, 0, "late close locks nothing");
        assertEq(sessionRouter.getProvidersTotalClaimed(), DURATION_50 * PRICE, "total claimed after close");
    }

    // ---------------------------------------------------------------------------------------------------
    // claimForProvider: D3 (early closes)
    // ---------------------------------------------------------------------------------------------------

    /// @dev D3: the reference panics (0x11) here; we pay what is left (0) and do not revert.
    function test_claim_D3_nonDisputedEarlyClose_sameDayDoesNotRevert() public {
        (bytes32 sessionId_, uint256 midnight_) = _openBeforeMidnight();
        vm.warp(midnight_ + 1);

        Balances memory b_ = _balances();
        _closeSession(sessionId_, PROVIDER_KEY);
        Balances memory c_ = _balances();
        assertEq(c_.provider, b_.provider + 601 * PRICE, "paid 601 s at close");
        assertEq(c_.funding, b_.funding - 601 * PRICE, "from funding");
        assertEq(c_.user, b_.user + SESSION_STAKE - LOCK_1S, "user refund minus today's lock");
        assertEq(c_.diamond, b_.diamond - SESSION_STAKE + LOCK_1S, "diamond keeps the lock");
        assertEq(c_.total, b_.total, "total at close");

        _claimAs(provider, sessionId_); // same UTC day: no revert, nothing paid
        vm.warp(midnight_ + 1 days - 1);
        _claimAs(provider, sessionId_);
        _assertUnchanged(c_, "same-day claims");

        vm.warp(midnight_ + 1 days);
        _claimAs(provider, sessionId_);
        _assertUnchanged(c_, "next-day claim");

        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(s_.closeoutType, 0, "not disputed");
        assertEq(s_.providerWithdrawnAmount, 601 * PRICE, "withdrawn");
        assertEq(sessionRouter.getProvidersTotalClaimed(), 601 * PRICE, "total claimed");
    }

    /// @dev D3 / §4.5: opened 600 s before midnight, disputed close 1 s after: 600 s paid at close, the last
    ///      second (today's part) is withheld until the next UTC day.
    function test_claim_D3_disputedEarlyClose_heldPartClaimableNextDay() public {
        (bytes32 sessionId_, uint256 midnight_) = _openBeforeMidnight();
        vm.warp(midnight_ + 1);

        Balances memory b_ = _balances();
        _closeSession(sessionId_, USER_KEY);
        Balances memory c_ = _balances();
        assertEq(c_.provider, b_.provider + 600 * PRICE, "600 s paid at close");
        assertEq(c_.funding, b_.funding - 600 * PRICE, "from funding");
        assertEq(c_.user, b_.user + SESSION_STAKE - LOCK_1S, "user refund");
        assertEq(c_.diamond, b_.diamond - SESSION_STAKE + LOCK_1S, "diamond keeps the lock");
        assertEq(c_.total, b_.total, "total at close");

        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(s_.closeoutType, 1, "disputed");
        assertEq(s_.providerWithdrawnAmount, 600 * PRICE, "withdrawn at close");

        // Same UTC day: the held second is not claimable (and the call does not revert).
        _claimAs(provider, sessionId_);
        vm.warp(midnight_ + 1 days - 1);
        _claimAs(provider, sessionId_);
        _assertUnchanged(c_, "same-day claims");

        // Next UTC day: exactly 1 s * price, from funding.
        vm.warp(midnight_ + 1 days);
        vm.expectEmit(true, true, false, true, d.token);
        emit Transfer(funding, provider, PRICE);
        _claimAs(provider, sessionId_);
        _assertPaidFromFunding(c_, PRICE, "next-day claim");
        assertEq(sessionRouter.getSession(sessionId_).providerWithdrawnAmount, 601 * PRICE, "withdrawn total");
        assertEq(sessionRouter.getProvidersTotalClaimed(), 601 * PRICE, "total claimed");

        Balances memory e_ = _balances();
        _claimAs(provider, sessionId_);
        _assertUnchanged(e_, "nothing more");
    }

    function test_claim_disputedLateClose_nothingHeld() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        // Closed after the day of its end: no v7.8 day-lock either, so the whole stake comes back.
        vm.warp(_startOfDay(block.timestamp + DURATION_50) + 1 days + 100);
        Balances memory b_ = _balances();
        _closeSession(sessionId_, USER_KEY);
        Balances memory c_ = _balances();
        assertEq(c_.provider, b_.provider + DURATION_50 * PRICE, "full pay at a disputed late close");
        assertEq(c_.user, b_.user + SESSION_STAKE, "full refund");
        assertEq(sessionRouter.getSession(sessionId_).closeoutType, 1, "disputed");
        _claimAs(provider, sessionId_);
        _assertUnchanged(c_, "nothing left to claim");
    }

    // ---------------------------------------------------------------------------------------------------
    // claimForProvider: the 365-day limiter
    // ---------------------------------------------------------------------------------------------------

    function test_claim_limiter_capsAtStake_restAfterLimitPeriodEnd() public {
        IProviderStorage.Provider memory p0_ = providerRegistry.getProvider(provider);
        assertEq(p0_.stake, 0.2 ether, "stake");
        assertEq(uint256(p0_.limitPeriodEnd), START_TIME + 365 days, "initial limitPeriodEnd");

        // 100 MOR buys floor(100e18 * 6 / 1900 / 1e14) = 3157 s = 0.3157 MOR of earnings.
        bytes32 sessionId_ = _openSession(bidId, 100 ether, false);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(uint256(s_.endsAt - s_.openedAt), 3157, "duration");
        vm.warp(uint256(s_.endsAt));

        Balances memory b_ = _balances();
        _claimAs(provider, sessionId_);
        _assertPaidFromFunding(b_, 0.2 ether, "capped at the stake");
        IProviderStorage.Provider memory p1_ = providerRegistry.getProvider(provider);
        assertEq(p1_.limitPeriodEarned, 0.2 ether, "limitPeriodEarned");
        assertEq(uint256(p1_.limitPeriodEnd), START_TIME + 365 days, "limitPeriodEnd unchanged");
        assertEq(sessionRouter.getSession(sessionId_).providerWithdrawnAmount, 0.2 ether, "withdrawn");

        // Nothing more inside the window, even at its last second.
        Balances memory c_ = _balances();
        _claimAs(provider, sessionId_);
        vm.warp(START_TIME + 365 days);
        _claimAs(provider, sessionId_);
        _assertUnchanged(c_, "inside the window");

        // After limitPeriodEnd the window resets and the rest is paid.
        uint256 now_ = START_TIME + 365 days + 1;
        vm.warp(now_);
        _claimAs(provider, sessionId_);
        _assertPaidFromFunding(c_, 0.1157 ether, "rest after the window");
        IProviderStorage.Provider memory p2_ = providerRegistry.getProvider(provider);
        assertEq(uint256(p2_.limitPeriodEnd), now_ + 365 days, "new limitPeriodEnd");
        assertEq(p2_.limitPeriodEarned, 0.1157 ether, "limitPeriodEarned reset then rest");
        assertEq(sessionRouter.getSession(sessionId_).providerWithdrawnAmount, 0.3157 ether, "withdrawn total");
        assertEq(sessionRouter.getProvidersTotalClaimed(), 0.3157 ether, "total claimed");
    }

    function test_claim_limiter_twoSessionsShareTheCap() public {
        bytes32 s1_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + 1);
        bytes32 s2_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(block.timestamp + DURATION_50);

        Balances memory b_ = _balances();
        _claimAs(provider, s1_);
        _assertPaidFromFunding(b_, 0.1578 ether, "first session in full");
        Balances memory c_ = _balances();
        _claimAs(provider, s2_);
        _assertPaidFromFunding(c_, 0.0422 ether, "second session up to the 0.2 MOR cap");
        assertEq(sessionRouter.getSession(s2_).providerWithdrawnAmount, 0.0422 ether, "withdrawn s2");
        assertEq(providerRegistry.getProvider(provider).limitPeriodEarned, 0.2 ether, "limitPeriodEarned");
    }

    // ---------------------------------------------------------------------------------------------------
    // claimForProvider: D4 direct payment
    // ---------------------------------------------------------------------------------------------------

    /// @dev D4: direct sessions last amount / price seconds and the provider is paid from the diamond.
    function test_claim_D4_directSession_paidFromDiamond() public {
        uint256 amount_ = 0.0512345 ether; // buys floor(512.345) = 512 s
        Balances memory b0_ = _balances();
        bytes32 sessionId_ = _openSession(bidId, amount_, true);
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(uint256(s_.endsAt - s_.openedAt), 512, "D4 duration = amount / price");
        assertTrue(s_.isDirectPaymentFromUser, "direct");
        Balances memory b_ = _balances();
        assertEq(b_.user, b0_.user - amount_, "user paid the stake");
        assertEq(b_.diamond, b0_.diamond + amount_, "diamond holds it");

        vm.warp(uint256(s_.endsAt) + 1);
        vm.expectEmit(true, true, false, true, d.token);
        emit Transfer(d.diamond, provider, 0.0512 ether);
        _claimAs(provider, sessionId_);
        Balances memory c_ = _balances();
        assertEq(c_.provider, b_.provider + 0.0512 ether, "provider");
        assertEq(c_.diamond, b_.diamond - 0.0512 ether, "paid from the diamond");
        assertEq(c_.funding, b_.funding, "funding untouched");
        assertEq(c_.total, b_.total, "total");
        assertEq(sessionRouter.getProvidersTotalClaimed(), 0.0512 ether, "direct payouts count as claimed");

        // The late close refunds the unused remainder of the stake and pays nothing more.
        _closeSession(sessionId_, PROVIDER_KEY);
        Balances memory e_ = _balances();
        assertEq(e_.user, c_.user + 0.0000345 ether, "user gets stake - 512 s * price");
        assertEq(e_.diamond, c_.diamond - 0.0000345 ether, "diamond");
        assertEq(e_.provider, c_.provider, "provider");
        assertEq(e_.funding, c_.funding, "funding");
        assertEq(e_.diamond, b0_.diamond, "diamond is back where it started");
        _assertOnHold(0, 0, "no lock");
    }

    /// @dev D4: a disputed early close of a direct session: the held second stays in the diamond until the
    ///      next UTC day, the user has no on-hold lock.
    function test_claim_D4_directDisputedEarlyClose() public {
        _warpBeforeMidnight(600);
        uint256 midnight_ = block.timestamp + 600;
        bytes32 sessionId_ = _openSession(bidId, 0.1 ether, true); // 1000 s
        vm.warp(midnight_ + 1);

        Balances memory b_ = _balances();
        _closeSession(sessionId_, USER_KEY);
        Balances memory c_ = _balances();
        assertEq(c_.user, b_.user + 0.1 ether - 601 * PRICE, "user gets the unused stake, no lock");
        assertEq(c_.provider, b_.provider + 600 * PRICE, "600 s at close");
        assertEq(c_.diamond, b_.diamond - 0.1 ether + PRICE, "diamond keeps the held second");
        assertEq(c_.funding, b_.funding, "funding untouched");
        _assertOnHold(0, 0, "D4: no user lock");

        _claimAs(provider, sessionId_);
        _assertUnchanged(c_, "same day");

        vm.warp(midnight_ + 1 days);
        _claimAs(provider, sessionId_);
        Balances memory e_ = _balances();
        assertEq(e_.provider, c_.provider + PRICE, "held second");
        assertEq(e_.diamond, c_.diamond - PRICE, "from the diamond");
        assertEq(e_.funding, c_.funding, "funding untouched");
        assertEq(e_.total, b_.total, "total");
    }

    // ---------------------------------------------------------------------------------------------------
    // withdrawUserStakes / getUserStakesOnHold
    // ---------------------------------------------------------------------------------------------------

    function test_withdraw_revertsWithNoEntries() public {
        vm.expectRevert(ISessionRouter.SessionUserAmountToWithdrawIsZero.selector);
        _withdrawAs(user, 10);
        _assertOnHold(0, 0, "nothing");
    }

    function test_withdraw_revertsForStranger() public {
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, user, stranger));
        _withdrawAs(stranger, 1);
    }

    function test_withdraw_revertsForDelegateWithWrongRule() public {
        vm.startPrank(user);
        registry.delegateContract(delegatee, d.diamond, delegation.DELEGATION_RULES_MODEL(), true);
        registry.delegateContract(delegatee, d.diamond, delegation.DELEGATION_RULES_PROVIDER(), true);
        vm.stopPrank();
        vm.expectRevert(abi.encodeWithSelector(IDelegation.InsufficientRightsForOperation.selector, user, delegatee));
        _withdrawAs(delegatee, 1);
    }

    function test_withdraw_revertsWhileLocked_thenPaysFromNextUtcDay() public {
        (bytes32 sessionId_, uint256 midnight_) = _openBeforeMidnight();
        vm.warp(midnight_ + 1);
        _closeSession(sessionId_, PROVIDER_KEY);
        _assertOnHold(0, LOCK_1S, "after the close");

        // Still the closing day: locked.
        vm.expectRevert(ISessionRouter.SessionUserAmountToWithdrawIsZero.selector);
        _withdrawAs(user, 1);
        vm.warp(midnight_ + 1 days - 1);
        vm.expectRevert(ISessionRouter.SessionUserAmountToWithdrawIsZero.selector);
        _withdrawAs(user, 255);
        _assertOnHold(0, LOCK_1S, "last second of the day");

        // releaseAt = next UTC midnight.
        vm.warp(midnight_ + 1 days);
        _assertOnHold(LOCK_1S, 0, "released");
        Balances memory b_ = _balances();
        vm.expectEmit(true, false, false, true, d.diamond);
        emit ISessionRouter.UserWithdrawn(user, LOCK_1S);
        _withdrawAs(user, 1);
        Balances memory a_ = _balances();
        assertEq(a_.user, b_.user + LOCK_1S, "user");
        assertEq(a_.diamond, b_.diamond - LOCK_1S, "diamond");
        assertEq(a_.total, b_.total, "total");
        _assertOnHold(0, 0, "after");

        vm.expectRevert(ISessionRouter.SessionUserAmountToWithdrawIsZero.selector);
        _withdrawAs(user, 1);
    }

    function test_withdraw_revertsWithZeroIterations() public {
        (bytes32 sessionId_, uint256 midnight_) = _openBeforeMidnight();
        vm.warp(midnight_ + 1);
        _closeSession(sessionId_, PROVIDER_KEY);
        vm.warp(midnight_ + 1 days);
        _assertOnHold(LOCK_1S, 0, "released");
        vm.expectRevert(ISessionRouter.SessionUserAmountToWithdrawIsZero.selector);
        _withdrawAs(user, 0);
        _assertOnHold(LOCK_1S, 0, "still there");
    }

    function test_withdraw_bySessionDelegate_paysTheUser() public {
        (bytes32 sessionId_, uint256 midnight_) = _openBeforeMidnight();
        vm.warp(midnight_ + 1);
        _closeSession(sessionId_, PROVIDER_KEY);
        vm.warp(midnight_ + 1 days);

        bytes32 rules_ = RULES_SESSION; // read before the prank
        vm.prank(user);
        registry.delegateContract(delegatee, d.diamond, rules_, true);
        Balances memory b_ = _balances();
        vm.expectEmit(true, false, false, true, d.diamond);
        emit ISessionRouter.UserWithdrawn(user, LOCK_1S);
        _withdrawAs(delegatee, 1);
        Balances memory a_ = _balances();
        assertEq(a_.user, b_.user + LOCK_1S, "user receives");
        assertEq(a_.delegatee, b_.delegatee, "delegate receives nothing");
        assertEq(a_.diamond, b_.diamond - LOCK_1S, "diamond");
    }

    /// @dev Three entries (two released, one still locked); `iterations_` bounds how many released entries
    ///      are removed per call; the walk starts at the end and swaps-and-pops.
    function test_withdraw_severalEntries_iterationsLimitRemovals() public {
        uint256 day0_ = _startOfDay(block.timestamp);
        // Disputed closes of sessions opened the same day pay the provider nothing at close, so the
        // compute/supply ratio stays exactly 6/19 and the locks are stipendToStake(used * price).
        bytes32 s1_ = _openSession(bidId, SESSION_STAKE, false); // START
        vm.warp(START_TIME + 1);
        bytes32 s2_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(START_TIME + 100);
        _closeSession(s1_, USER_KEY); // 100 s used today
        vm.warp(START_TIME + 200);
        _closeSession(s2_, USER_KEY); // 199 s used today
        _assertOnHold(0, LOCK_100S + LOCK_199S, "two entries on day 0");

        vm.warp(day0_ + 1 days + 100);
        bytes32 s3_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(day0_ + 1 days + 400);
        _closeSession(s3_, USER_KEY); // 300 s used on day 1
        _assertOnHold(LOCK_100S + LOCK_199S, LOCK_300S, "day 1: two released, one held");
        (uint256 avail0_, uint256 hold0_) = sessionRouter.getUserStakesOnHold(user, 0);
        assertEq(avail0_ + hold0_, LOCK_100S + LOCK_199S + LOCK_300S, "iterations is ignored by the view");

        // iterations = 1: skips the locked last entry, removes the second one.
        Balances memory b_ = _balances();
        vm.expectEmit(true, false, false, true, d.diamond);
        emit ISessionRouter.UserWithdrawn(user, LOCK_199S);
        _withdrawAs(user, 1);
        assertEq(token.balanceOf(user), b_.user + LOCK_199S, "one entry");
        assertEq(token.balanceOf(d.diamond), b_.diamond - LOCK_199S, "diamond");
        _assertOnHold(LOCK_100S, LOCK_300S, "after one");

        vm.expectRevert(ISessionRouter.SessionUserAmountToWithdrawIsZero.selector);
        _withdrawAs(user, 0);

        // More iterations than entries: the remaining released one.
        Balances memory c_ = _balances();
        vm.expectEmit(true, false, false, true, d.diamond);
        emit ISessionRouter.UserWithdrawn(user, LOCK_100S);
        _withdrawAs(user, 255);
        assertEq(token.balanceOf(user), c_.user + LOCK_100S, "second withdrawal");
        _assertOnHold(0, LOCK_300S, "only the locked entry is left");

        vm.expectRevert(ISessionRouter.SessionUserAmountToWithdrawIsZero.selector);
        _withdrawAs(user, 255);

        vm.warp(day0_ + 2 days);
        Balances memory e_ = _balances();
        _withdrawAs(user, 1);
        assertEq(token.balanceOf(user), e_.user + LOCK_300S, "third withdrawal");
        assertEq(token.balanceOf(d.diamond), e_.diamond - LOCK_300S, "diamond");
        _assertOnHold(0, 0, "empty");
        assertEq(_totalHeld(), b_.total, "total");
    }

    function test_withdraw_severalReleasedEntries_twoPerCall() public {
        uint256 day0_ = _startOfDay(block.timestamp);
        bytes32 s1_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(START_TIME + 1);
        bytes32 s2_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(START_TIME + 2);
        bytes32 s3_ = _openSession(bidId, SESSION_STAKE, false);
        vm.warp(START_TIME + 100);
        _closeSession(s1_, USER_KEY); // 100 s
        vm.warp(START_TIME + 200);
        _closeSession(s2_, USER_KEY); // 199 s
        vm.warp(START_TIME + 302);
        _closeSession(s3_, USER_KEY); // 300 s
        uint256 all_ = LOCK_100S + LOCK_199S + LOCK_300S;
        _assertOnHold(0, all_, "three held");

        vm.warp(day0_ + 1 days);
        Balances memory b_ = _balances();
        _withdrawAs(user, 2); // the last two entries
        assertEq(token.balanceOf(user), b_.user + LOCK_300S + LOCK_199S, "two entries");
        _assertOnHold(LOCK_100S, 0, "one left");
        _withdrawAs(user, 2);
        assertEq(token.balanceOf(user), b_.user + all_, "all");
        assertEq(token.balanceOf(d.diamond), b_.diamond - all_, "diamond");
        _assertOnHold(0, 0, "none left");
    }

    /// @dev D5: no OnHold entry is pushed when the lock is 0 (closed in the second it opened).
    function test_withdraw_D5_noEntryForZeroLock() public {
        bytes32 sessionId_ = _openSession(bidId, SESSION_STAKE, false);
        Balances memory b_ = _balances();
        _closeSession(sessionId_, PROVIDER_KEY);
        assertEq(token.balanceOf(user), b_.user + SESSION_STAKE, "whole stake back");
        _assertOnHold(0, 0, "no entry");
        vm.warp(block.timestamp + 2 days);
        vm.expectRevert(ISessionRouter.SessionUserAmountToWithdrawIsZero.selector);
        _withdrawAs(user, 1);
    }
}
