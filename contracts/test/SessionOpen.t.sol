// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {Vm} from "./utils/Vm.sol";
import {ISessionRouter} from "../src/interfaces/facets/ISessionRouter.sol";
import {ISessionStorage} from "../src/interfaces/storage/ISessionStorage.sol";
import {IDelegation} from "../src/interfaces/facets/IDelegation.sol";

/// @dev A contract provider (like a ProvidersDelegate subnet): its approvals are signed by `owner()`.
contract OwnedProviderMock {
    address public owner;

    constructor(address owner_) {
        owner = owner_;
    }
}

/// @notice openSession (contracts.md §2.5, §4.3, §4.4, §7(d)) and deviations D1, D2, D4, D10.
contract SessionOpenTest is MarketplaceTestBase {
    uint256 internal constant OWNER_EOA_KEY = 0xC0FFEE;
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

    function _open(
        address caller_,
        address user_,
        uint256 amount_,
        bool direct_,
        bytes memory approval_,
        bytes memory signature_
    ) internal returns (bytes32) {
        vm.prank(caller_);
        return sessionRouter.openSession(user_, amount_, direct_, approval_, signature_);
    }

    /// @dev Approval for `user` on this chain with the given stamp, signed by the provider.
    function _openWithStamp(uint128 stamp_) internal returns (bytes32) {
        bytes memory approval_ = _approval(bidId, user, block.chainid, stamp_);
        return _open(user, user, SESSION_STAKE, false, approval_, _sign(PROVIDER_KEY, approval_));
    }

    function _expectOpenRevert(
        address caller_,
        address user_,
        uint256 amount_,
        bool direct_,
        bytes memory approval_,
        bytes memory signature_,
        bytes memory revertData_
    ) internal {
        vm.prank(caller_);
        vm.expectRevert(revertData_);
        sessionRouter.openSession(user_, amount_, direct_, approval_, signature_);
    }

    function _expectedDuration(uint256 stake_) internal view returns (uint256 duration_) {
        duration_ = sessionRouter.stakeToStipend(stake_, uint128(block.timestamp)) / PRICE;
        if (duration_ > MAX_SESSION_DURATION) duration_ = MAX_SESSION_DURATION;
    }

    function _err(bytes4 selector_) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(selector_);
    }

    function _assertOpenedSession(bytes32 sessionId_, uint256 stake_, uint256 duration_, bool direct_) internal view {
        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(s_.user, user, "user");
        assertEq(s_.bidId, bidId, "bidId");
        assertEq(s_.stake, stake_, "stake");
        assertEq(s_.closeoutReceipt.length, 0, "no receipt yet");
        assertEq(s_.closeoutType, 0, "closeoutType");
        assertEq(s_.providerWithdrawnAmount, 0, "providerWithdrawnAmount");
        assertEq(uint256(s_.openedAt), block.timestamp, "openedAt = now");
        assertEq(uint256(s_.endsAt), block.timestamp + duration_, "endsAt");
        assertEq(uint256(s_.closedAt), 0, "closedAt");
        assertTrue(s_.isActive, "isActive");
        assertEq(s_.isDirectPaymentFromUser, direct_, "isDirectPaymentFromUser");
    }

    // ---------------------------------------------------------------------------------------------------
    // Success paths
    // ---------------------------------------------------------------------------------------------------

    /// @dev D1: the routers' millisecond stamp, the full happy path.
    function test_openSession_millisecondApproval_D1() public {
        bytes memory approval_ = _approvalNow(bidId);
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);
        bytes32 expectedId_ = sessionRouter.getSessionId(user, provider, bidId, 0);
        uint256 duration_ = _expectedDuration(SESSION_STAKE);
        assertEq(duration_, 1578, "50 MOR buys 1578 s at 0.0001 MOR/s at the test time");
        assertFalse(sessionRouter.getIsProviderApprovalUsed(approval_), "approval unused before");
        Balances memory before_ = _balances();

        vm.expectEmit(true, true, true, true, d.diamond);
        emit ISessionRouter.SessionOpened(user, expectedId_, provider);
        bytes32 sessionId_ = _open(user, user, SESSION_STAKE, false, approval_, signature_);

        assertEq(sessionId_, expectedId_, "returned id");
        assertEq(sessionId_, keccak256(abi.encodePacked(user, provider, bidId, uint256(0))), "id formula, nonce 0");
        _assertOpenedSession(sessionId_, SESSION_STAKE, duration_, false);

        Balances memory after_ = _balances();
        assertEq(after_.user, before_.user - SESSION_STAKE, "user paid the stake");
        assertEq(after_.diamond, before_.diamond + SESSION_STAKE, "diamond holds the stake");
        assertEq(after_.provider, before_.provider, "provider untouched");
        assertTrue(sessionRouter.getIsProviderApprovalUsed(approval_), "approval used");

        (bytes32[] memory ids_, uint256 total_) = sessionRouter.getUserSessions(user, 0, 10);
        assertEq(total_, 1, "user sessions");
        assertEq(ids_.length, 1, "user page");
        assertEq(ids_[0], sessionId_, "user session id");
        (ids_, total_) = sessionRouter.getProviderSessions(provider, 0, 10);
        assertEq(total_, 1, "provider sessions");
        assertEq(ids_[0], sessionId_, "provider session id");
        (ids_, total_) = sessionRouter.getModelSessions(modelId, 0, 10);
        assertEq(total_, 1, "model sessions");
        assertEq(ids_[0], sessionId_, "model session id");
        assertEq(sessionRouter.getTotalSessions(provider), 1, "getTotalSessions");
    }

    function test_openSession_secondsApproval() public {
        bytes memory approval_ = _approval(bidId, user, block.chainid, uint128(block.timestamp));
        uint256 duration_ = _expectedDuration(SESSION_STAKE);
        uint256 userBefore_ = token.balanceOf(user);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        bytes32 sessionId_ = _open(user, user, SESSION_STAKE, false, approval_, _sign(PROVIDER_KEY, approval_));

        assertEq(sessionId_, sessionRouter.getSessionId(user, provider, bidId, 0), "id");
        _assertOpenedSession(sessionId_, SESSION_STAKE, duration_, false);
        assertEq(token.balanceOf(user), userBefore_ - SESSION_STAKE, "user paid");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ + SESSION_STAKE, "diamond holds the stake");
        assertTrue(sessionRouter.getIsProviderApprovalUsed(approval_), "approval used");
    }

    function test_openSession_endsAtFollowsStipendFormula() public {
        uint256 stake_ = 123 ether;
        uint256 expected_ = sessionRouter.stakeToStipend(stake_, uint128(block.timestamp)) / PRICE;
        assertLt(expected_, MAX_SESSION_DURATION, "not capped");
        assertEq(
            uint256(sessionRouter.getSessionEnd(stake_, PRICE, uint128(block.timestamp))),
            block.timestamp + expected_,
            "getSessionEnd"
        );
        bytes memory approval_ = _approvalNow(bidId);
        bytes32 sessionId_ = _open(user, user, stake_, false, approval_, _sign(PROVIDER_KEY, approval_));
        _assertOpenedSession(sessionId_, stake_, expected_, false);
    }

    function test_sessionId_oneGlobalNonceAcrossUsers() public {
        bytes32 first_ = _openSession(bidId, SESSION_STAKE, false);
        assertEq(first_, keccak256(abi.encodePacked(user, provider, bidId, uint256(0))), "first uses nonce 0");

        // Another user, same bid: the global nonce is now 1.
        bytes memory approval_ = _approval(bidId, stranger, block.chainid, uint128(block.timestamp * 1000));
        bytes32 second_ = _open(stranger, stranger, SESSION_STAKE, false, approval_, _sign(PROVIDER_KEY, approval_));
        assertEq(second_, keccak256(abi.encodePacked(stranger, provider, bidId, uint256(1))), "second uses nonce 1");
        assertEq(second_, sessionRouter.getSessionId(stranger, provider, bidId, 1), "getSessionId");
        assertEq(sessionRouter.getSession(second_).user, stranger, "second session user");

        // The first user again: nonce 2.
        vm.warp(block.timestamp + 1);
        bytes32 third_ = _openSession(bidId, SESSION_STAKE, false);
        assertEq(third_, sessionRouter.getSessionId(user, provider, bidId, 2), "third uses nonce 2");

        assertEq(sessionRouter.getTotalSessions(provider), 3, "provider total");
        (, uint256 userTotal_) = sessionRouter.getUserSessions(user, 0, 0);
        assertEq(userTotal_, 2, "user total");
        (bytes32[] memory strangerIds_, uint256 strangerTotal_) = sessionRouter.getUserSessions(stranger, 0, 10);
        assertEq(strangerTotal_, 1, "stranger total");
        assertEq(strangerIds_[0], second_, "stranger session");
        (bytes32[] memory modelIds_, uint256 modelTotal_) = sessionRouter.getModelSessions(modelId, 0, 10);
        assertEq(modelTotal_, 3, "model total");
        assertEq(modelIds_[0], first_, "model order 0");
        assertEq(modelIds_[1], second_, "model order 1");
        assertEq(modelIds_[2], third_, "model order 2");
    }

    function test_SessionOpened_allThreeTopicsIndexed() public {
        bytes memory approval_ = _approvalNow(bidId);
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);
        vm.recordLogs();
        bytes32 sessionId_ = _open(user, user, SESSION_STAKE, false, approval_, signature_);
        Vm.Log[] memory logs_ = vm.getRecordedLogs();

        uint256 found_ = 0;
        for (uint256 i = 0; i < logs_.length; i++) {
            if (logs_[i].emitter != d.diamond || logs_[i].topics.length == 0) continue;
            if (logs_[i].topics[0] != ISessionRouter.SessionOpened.selector) continue;
            found_++;
            assertEq(logs_[i].topics.length, 4, "three indexed args");
            assertEq(logs_[i].topics[1], bytes32(uint256(uint160(user))), "topics[1] = user");
            assertEq(logs_[i].topics[2], sessionId_, "topics[2] = sessionId");
            assertEq(logs_[i].topics[3], bytes32(uint256(uint160(provider))), "topics[3] = provider");
            assertEq(logs_[i].data.length, 0, "no data");
        }
        assertEq(found_, 1, "exactly one SessionOpened");
        assertEq(
            ISessionRouter.SessionOpened.selector,
            keccak256("SessionOpened(address,bytes32,address)"),
            "topic0"
        );
    }

    function test_openSession_maxSessionDurationCap() public {
        uint256 stake_ = 100_000 ether;
        assertGt(sessionRouter.stakeToStipend(stake_, uint128(block.timestamp)) / PRICE, MAX_SESSION_DURATION, "uncapped > 1 day");
        uint256 userBefore_ = token.balanceOf(user);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        bytes memory approval_ = _approvalNow(bidId);
        bytes32 sessionId_ = _open(user, user, stake_, false, approval_, _sign(PROVIDER_KEY, approval_));

        _assertOpenedSession(sessionId_, stake_, 1 days, false);
        assertEq(token.balanceOf(user), userBefore_ - stake_, "user paid the whole stake");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ + stake_, "diamond holds it");
    }

    // ---------------------------------------------------------------------------------------------------
    // Accepted signers
    // ---------------------------------------------------------------------------------------------------

    function test_openSession_signedByProviderDelegate() public {
        bytes32 rules_ = RULES_PROVIDER;
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, rules_, true);

        bytes memory approval_ = _approvalNow(bidId);
        uint256 userBefore_ = token.balanceOf(user);
        bytes32 sessionId_ = _open(user, user, SESSION_STAKE, false, approval_, _sign(DELEGATE_KEY, approval_));

        assertEq(sessionId_, sessionRouter.getSessionId(user, provider, bidId, 0), "id");
        _assertOpenedSession(sessionId_, SESSION_STAKE, _expectedDuration(SESSION_STAKE), false);
        assertEq(token.balanceOf(user), userBefore_ - SESSION_STAKE, "user paid");
    }

    function test_openSession_signedByWrongRuleDelegate_reverts() public {
        // SESSION rights over the provider do not make the delegate a valid approval signer.
        bytes32 rules_ = RULES_SESSION;
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, rules_, true);

        bytes memory approval_ = _approvalNow(bidId);
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(DELEGATE_KEY, approval_),
            _err(ISessionRouter.SessionProviderSignatureMismatch.selector)
        );
    }

    function test_openSession_signedByOwnerOfContractProvider() public {
        address ownerEoa_ = vm.addr(OWNER_EOA_KEY);
        OwnedProviderMock contractProvider_ = new OwnedProviderMock(ownerEoa_);
        address cp_ = address(contractProvider_);
        _registerProvider(cp_, 0);
        bytes32 cpBid_ = _postBid(cp_, modelId, PRICE);

        bytes memory approval_ = _approval(cpBid_, user, block.chainid, uint128(block.timestamp * 1000));
        bytes32 expectedId_ = sessionRouter.getSessionId(user, cp_, cpBid_, 0);
        uint256 userBefore_ = token.balanceOf(user);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, true, true, true, d.diamond);
        emit ISessionRouter.SessionOpened(user, expectedId_, cp_);
        bytes32 sessionId_ = _open(user, user, SESSION_STAKE, false, approval_, _sign(OWNER_EOA_KEY, approval_));

        assertEq(sessionId_, expectedId_, "id uses the contract provider");
        assertEq(sessionRouter.getSession(sessionId_).bidId, cpBid_, "bid");
        assertEq(sessionRouter.getTotalSessions(cp_), 1, "contract provider sessions");
        assertEq(token.balanceOf(user), userBefore_ - SESSION_STAKE, "user paid");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ + SESSION_STAKE, "diamond holds the stake");
    }

    function test_openSession_contractProviderSignedByNonOwner_reverts() public {
        OwnedProviderMock contractProvider_ = new OwnedProviderMock(vm.addr(OWNER_EOA_KEY));
        address cp_ = address(contractProvider_);
        _registerProvider(cp_, 0);
        bytes32 cpBid_ = _postBid(cp_, modelId, PRICE);

        bytes memory approval_ = _approval(cpBid_, user, block.chainid, uint128(block.timestamp * 1000));
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(STRANGER_KEY, approval_),
            _err(ISessionRouter.SessionProviderSignatureMismatch.selector)
        );
    }

    // ---------------------------------------------------------------------------------------------------
    // Who may open
    // ---------------------------------------------------------------------------------------------------

    function test_openSession_bySessionDelegate_pullsStakeFromUser() public {
        bytes32 rules_ = RULES_SESSION;
        vm.prank(user);
        registry.delegateContract(delegatee, d.diamond, rules_, true);

        bytes memory approval_ = _approvalNow(bidId);
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);
        bytes32 expectedId_ = sessionRouter.getSessionId(user, provider, bidId, 0);
        Balances memory before_ = _balances();

        vm.expectEmit(true, true, true, true, d.diamond);
        emit ISessionRouter.SessionOpened(user, expectedId_, provider);
        bytes32 sessionId_ = _open(delegatee, user, SESSION_STAKE, false, approval_, signature_);

        assertEq(sessionId_, expectedId_, "session is the user's");
        _assertOpenedSession(sessionId_, SESSION_STAKE, _expectedDuration(SESSION_STAKE), false);
        Balances memory after_ = _balances();
        assertEq(after_.user, before_.user - SESSION_STAKE, "stake pulled from the user");
        assertEq(after_.delegatee, before_.delegatee, "delegate pays nothing");
        assertEq(after_.diamond, before_.diamond + SESSION_STAKE, "diamond holds the stake");
        (, uint256 delegateSessions_) = sessionRouter.getUserSessions(delegatee, 0, 0);
        assertEq(delegateSessions_, 0, "not listed for the delegate");
    }

    function test_openSession_byDelegateAll() public {
        vm.prank(user);
        registry.delegateAll(delegatee, bytes32(0), true);

        bytes memory approval_ = _approvalNow(bidId);
        uint256 userBefore_ = token.balanceOf(user);
        bytes32 sessionId_ = _open(delegatee, user, SESSION_STAKE, false, approval_, _sign(PROVIDER_KEY, approval_));
        assertEq(sessionRouter.getSession(sessionId_).user, user, "user");
        assertEq(token.balanceOf(user), userBefore_ - SESSION_STAKE, "stake pulled from the user");
    }

    function test_openSession_strangerWithoutRights_reverts() public {
        bytes memory approval_ = _approvalNow(bidId);
        _expectOpenRevert(stranger, user, SESSION_STAKE, false, approval_, _sign(PROVIDER_KEY, approval_), _insufficientRights(user, stranger));
    }

    function test_openSession_delegateWithWrongRule_reverts() public {
        bytes32 rules_ = RULES_PROVIDER;
        vm.prank(user);
        registry.delegateContract(delegatee, d.diamond, rules_, true);

        bytes memory approval_ = _approvalNow(bidId);
        _expectOpenRevert(
            delegatee,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(PROVIDER_KEY, approval_),
            _insufficientRights(user, delegatee)
        );
    }

    // ---------------------------------------------------------------------------------------------------
    // Approval checks
    // ---------------------------------------------------------------------------------------------------

    function test_openSession_approvalForAnotherChain_reverts() public {
        bytes memory approval_ = _approval(bidId, user, block.chainid + 1, uint128(block.timestamp * 1000));
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(PROVIDER_KEY, approval_),
            _err(ISessionRouter.SessionApprovedForAnotherChainId.selector)
        );
    }

    function test_openSession_expiredSecondsApproval_reverts() public {
        bytes memory approval_ = _approval(bidId, user, block.chainid, uint128(block.timestamp) - SIGNATURE_TTL - 1);
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(PROVIDER_KEY, approval_),
            _err(ISessionRouter.SessionApproveExpired.selector)
        );
    }

    /// @dev D1: a millisecond stamp is converted to seconds, so it expires too (the reference never expires it).
    function test_openSession_expiredMillisecondApproval_D1_reverts() public {
        bytes memory approval_ = _approval(
            bidId,
            user,
            block.chainid,
            uint128((block.timestamp - SIGNATURE_TTL - 1) * 1000)
        );
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(PROVIDER_KEY, approval_),
            _err(ISessionRouter.SessionApproveExpired.selector)
        );

        // 600.001 s old: still expired (ms are truncated to seconds, 601 s > 600 s).
        approval_ = _approval(bidId, user, block.chainid, uint128((block.timestamp - SIGNATURE_TTL - 1) * 1000 + 999));
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(PROVIDER_KEY, approval_),
            _err(ISessionRouter.SessionApproveExpired.selector)
        );
    }

    function test_openSession_secondsApprovalExactly600sOld_isValid() public {
        bytes32 sessionId_ = _openWithStamp(uint128(block.timestamp) - SIGNATURE_TTL);
        assertEq(sessionRouter.getSession(sessionId_).user, user, "opened");
    }

    /// @dev D1: a millisecond stamp exactly 600 s old is still valid.
    function test_openSession_millisecondApprovalExactly600sOld_D1_isValid() public {
        bytes32 sessionId_ = _openWithStamp(uint128((block.timestamp - SIGNATURE_TTL) * 1000));
        assertEq(sessionRouter.getSession(sessionId_).user, user, "opened");
        assertTrue(sessionRouter.getSession(sessionId_).isActive, "active");
    }

    /// @dev D1: the check is one-sided; stamps in the future are accepted (seconds and milliseconds).
    function test_openSession_futureApproval_D1_isAccepted() public {
        bytes32 first_ = _openWithStamp(uint128(block.timestamp + 1 hours));
        assertEq(sessionRouter.getSession(first_).user, user, "future seconds stamp");
        bytes32 second_ = _openWithStamp(uint128((block.timestamp + 1 days) * 1000));
        assertEq(sessionRouter.getSession(second_).user, user, "future millisecond stamp");
        assertEq(sessionRouter.getTotalSessions(provider), 2, "both opened");
    }

    /// @dev D2: the approval's `user` field is bound to `user_`.
    function test_openSession_approvalForAnotherUser_D2_reverts() public {
        bytes memory approval_ = _approval(bidId, stranger, block.chainid, uint128(block.timestamp * 1000));
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            signature_,
            _err(ISessionRouter.SessionApprovedForAnotherUser.selector)
        );
        // The same approval works for the user it names.
        bytes32 sessionId_ = _open(stranger, stranger, SESSION_STAKE, false, approval_, signature_);
        assertEq(sessionRouter.getSession(sessionId_).user, stranger, "named user can use it");
    }

    /// @dev D2 also holds for a SESSION delegate opening for the user with an approval naming someone else.
    function test_openSession_delegateWithApprovalForAnotherUser_D2_reverts() public {
        bytes32 rules_ = RULES_SESSION;
        vm.prank(user);
        registry.delegateContract(delegatee, d.diamond, rules_, true);

        bytes memory approval_ = _approval(bidId, delegatee, block.chainid, uint128(block.timestamp * 1000));
        _expectOpenRevert(
            delegatee,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(PROVIDER_KEY, approval_),
            _err(ISessionRouter.SessionApprovedForAnotherUser.selector)
        );
    }

    /// @dev D10: the bid check runs before the token transfer, so a user with zero allowance still gets it.
    function test_openSession_unknownBid_D10_revertsEvenWithoutAllowance() public {
        vm.prank(user);
        token.approve(d.diamond, 0);
        bytes memory approval_ = _approval(keccak256("unknown bid"), user, block.chainid, uint128(block.timestamp * 1000));
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(PROVIDER_KEY, approval_),
            _err(ISessionRouter.SessionBidNotFound.selector)
        );
    }

    /// @dev D10: a deleted bid gives SessionBidNotFound, with or without allowance.
    function test_openSession_deletedBid_D10_reverts() public {
        vm.prank(provider);
        marketplace.deleteModelBid(bidId);

        bytes memory approval_ = _approvalNow(bidId);
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);
        _expectOpenRevert(user, user, SESSION_STAKE, false, approval_, signature_, _err(ISessionRouter.SessionBidNotFound.selector));

        vm.prank(user);
        token.approve(d.diamond, 0);
        _expectOpenRevert(user, user, SESSION_STAKE, false, approval_, signature_, _err(ISessionRouter.SessionBidNotFound.selector));
    }

    /// @dev With every check passing, a missing allowance surfaces as the token's error.
    function test_openSession_withoutAllowance_revertsInToken() public {
        vm.prank(user);
        token.approve(d.diamond, SESSION_STAKE - 1);
        bytes memory approval_ = _approvalNow(bidId);
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(PROVIDER_KEY, approval_),
            abi.encodeWithSignature("Error(string)", "ERC20: insufficient allowance")
        );
        assertFalse(sessionRouter.getIsProviderApprovalUsed(approval_), "approval not consumed");
    }

    function test_openSession_signedByStranger_reverts() public {
        bytes memory approval_ = _approvalNow(bidId);
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(STRANGER_KEY, approval_),
            _err(ISessionRouter.SessionProviderSignatureMismatch.selector)
        );
        // Signed by the user itself: also a mismatch.
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(USER_KEY, approval_),
            _err(ISessionRouter.SessionProviderSignatureMismatch.selector)
        );
    }

    function test_openSession_signatureOverOtherBytes_reverts() public {
        bytes memory approval_ = _approvalNow(bidId);
        bytes memory other_ = _approval(bidId, user, block.chainid, uint128(block.timestamp * 1000 + 1));
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            _sign(PROVIDER_KEY, other_),
            _err(ISessionRouter.SessionProviderSignatureMismatch.selector)
        );
    }

    function test_openSession_reusedApproval_reverts() public {
        bytes memory approval_ = _approvalNow(bidId);
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);
        _open(user, user, SESSION_STAKE, false, approval_, signature_);
        assertTrue(sessionRouter.getIsProviderApprovalUsed(approval_), "used");

        vm.warp(block.timestamp + 10);
        uint256 userBefore_ = token.balanceOf(user);
        _expectOpenRevert(user, user, SESSION_STAKE, false, approval_, signature_, _err(ISessionRouter.SessionDuplicateApproval.selector));
        assertEq(token.balanceOf(user), userBefore_, "nothing taken");
        assertEq(sessionRouter.getTotalSessions(provider), 1, "one session");
    }

    function test_openSession_malformedSignature_reverts() public {
        bytes memory approval_ = _approvalNow(bidId);
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);
        bytes memory short_ = new bytes(64);
        for (uint256 i = 0; i < 64; i++) short_[i] = signature_[i];
        _expectOpenRevert(
            user,
            user,
            SESSION_STAKE,
            false,
            approval_,
            short_,
            abi.encodeWithSignature("Error(string)", "ECDSA: invalid signature length")
        );
    }

    function test_openSession_tooShortApprovalData_reverts() public {
        bytes memory approval_ = abi.encode(bidId, block.chainid, user); // 3 words instead of 4
        vm.prank(user);
        (bool ok_, bytes memory ret_) = d.diamond.call(
            abi.encodeCall(ISessionRouter.openSession, (user, SESSION_STAKE, false, approval_, _sign(PROVIDER_KEY, approval_)))
        );
        assertFalse(ok_, "reverts");
        assertEq(ret_.length, 0, "without data");
    }

    // ---------------------------------------------------------------------------------------------------
    // Duration checks
    // ---------------------------------------------------------------------------------------------------

    function test_openSession_stakeTooSmall_reverts() public {
        uint256 stake_ = 5 ether;
        uint256 duration_ = sessionRouter.stakeToStipend(stake_, uint128(block.timestamp)) / PRICE;
        assertLt(duration_, 300, "5 MOR buys < 300 s");
        bytes memory approval_ = _approvalNow(bidId);
        _expectOpenRevert(user, user, stake_, false, approval_, _sign(PROVIDER_KEY, approval_), _err(ISessionRouter.SessionTooShort.selector));
    }

    function test_openSession_beforePayoutStart_reverts() public {
        // The bid was posted at the test time; go back to before the pools start paying.
        vm.warp(PAYOUT_START - 1);
        assertEq(sessionRouter.totalMORSupply(uint128(block.timestamp)), 0, "no supply yet");
        assertEq(sessionRouter.stakeToStipend(100_000 ether, uint128(block.timestamp)), 0, "no stipend");

        bytes memory approval_ = _approvalNow(bidId);
        _expectOpenRevert(
            user,
            user,
            100_000 ether,
            false,
            approval_,
            _sign(PROVIDER_KEY, approval_),
            _err(ISessionRouter.SessionTooShort.selector)
        );
    }

    // ---------------------------------------------------------------------------------------------------
    // D4: direct payment
    // ---------------------------------------------------------------------------------------------------

    /// @dev D4: a direct session lasts amount / price seconds (not the stipend formula).
    function test_openSession_directPayment_D4_durationIsAmountOverPrice() public {
        uint256 amount_ = 1 ether; // 10 000 s at 0.0001 MOR/s
        Balances memory before_ = _balances();
        bytes memory approval_ = _approvalNow(bidId);
        bytes32 sessionId_ = _open(user, user, amount_, true, approval_, _sign(PROVIDER_KEY, approval_));

        _assertOpenedSession(sessionId_, amount_, 10_000, true);
        Balances memory after_ = _balances();
        assertEq(after_.user, before_.user - amount_, "user paid");
        assertEq(after_.diamond, before_.diamond + amount_, "diamond holds it");
        assertEq(after_.provider, before_.provider, "provider not paid at open");
    }

    /// @dev D4: exactly 300 s of payment is enough.
    function test_openSession_directPayment_D4_minimumDuration() public {
        bytes memory approval_ = _approvalNow(bidId);
        bytes32 sessionId_ = _open(user, user, 300 * PRICE, true, approval_, _sign(PROVIDER_KEY, approval_));
        _assertOpenedSession(sessionId_, 300 * PRICE, 300, true);
    }

    /// @dev D4: amount / price < 300 → SessionTooShort.
    function test_openSession_directPayment_D4_tooShort_reverts() public {
        bytes memory approval_ = _approvalNow(bidId);
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);
        _expectOpenRevert(user, user, 299 * PRICE, true, approval_, signature_, _err(ISessionRouter.SessionTooShort.selector));
        _expectOpenRevert(user, user, 300 * PRICE - 1, true, approval_, signature_, _err(ISessionRouter.SessionTooShort.selector));
    }

    /// @dev D4: the direct duration is capped at maxSessionDuration too.
    function test_openSession_directPayment_D4_capped() public {
        uint256 amount_ = 10 ether; // 100 000 s uncapped
        bytes memory approval_ = _approvalNow(bidId);
        bytes32 sessionId_ = _open(user, user, amount_, true, approval_, _sign(PROVIDER_KEY, approval_));
        _assertOpenedSession(sessionId_, amount_, 1 days, true);
    }
}
