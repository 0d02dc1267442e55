// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {Vm} from "./utils/Vm.sol";
import {LumerinDiamond} from "../src/diamond/LumerinDiamond.sol";
import {LibDiamondAccess} from "../src/diamond/utils/LibDiamondAccess.sol";
import {IProviderRegistry} from "../src/interfaces/facets/IProviderRegistry.sol";
import {IProviderStorage} from "../src/interfaces/storage/IProviderStorage.sol";
import {IDelegation} from "../src/interfaces/facets/IDelegation.sol";

/// @notice ProviderRegistry facet (contracts.md §2.1 and the delegation table of §2.4).
contract ProviderRegistryTest is MarketplaceTestBase {
    uint128 internal constant YEAR = 365 days;
    string internal constant ENDPOINT = "127.0.0.1:3333";

    event Initialized(bytes32 storageSlot);

    // ---------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------

    function _register(address caller_, address provider_, uint256 amount_, string memory endpoint_) internal {
        vm.prank(caller_);
        providerRegistry.providerRegister(provider_, amount_, endpoint_);
    }

    function _deregister(address caller_, address provider_) internal {
        vm.prank(caller_);
        providerRegistry.providerDeregister(provider_);
    }

    function _activeProviders() internal view returns (address[] memory items_, uint256 total_) {
        return providerRegistry.getActiveProviders(0, 100);
    }

    /// @dev The reference world plus one 100-second session closed with a provider receipt: the provider
    ///      earns 100 s x PRICE inside its limiter window. The bid is deleted so that it can deregister.
    function _earn() internal returns (uint256 earned_) {
        (, bytes32 bidId_) = _defaultBid();
        bytes32 sessionId_ = _openSession(bidId_, SESSION_STAKE, false);
        vm.warp(block.timestamp + 100);
        _closeSession(sessionId_, PROVIDER_KEY);
        earned_ = 100 * PRICE;
        vm.prank(provider);
        marketplace.deleteModelBid(bidId_);
    }

    // ---------------------------------------------------------------------------------------------------
    // providerSetMinStake / getProviderMinimumStake
    // ---------------------------------------------------------------------------------------------------

    function test_providerSetMinStake_ownerSetsAndEmits() public {
        assertEq(providerRegistry.getProviderMinimumStake(), 0, "test config: min stake 0");

        vm.expectEmit(false, false, false, true, address(diamond));
        emit IProviderRegistry.ProviderMinimumStakeUpdated(2 ether);
        providerRegistry.providerSetMinStake(2 ether);
        assertEq(providerRegistry.getProviderMinimumStake(), 2 ether);

        vm.expectEmit(false, false, false, true, address(diamond));
        emit IProviderRegistry.ProviderMinimumStakeUpdated(0);
        providerRegistry.providerSetMinStake(0);
        assertEq(providerRegistry.getProviderMinimumStake(), 0);
    }

    function test_providerSetMinStake_revertsForStranger() public {
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        providerRegistry.providerSetMinStake(1 ether);

        // Not even the provider or a delegatee with every right may change it.
        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), true);
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, delegatee));
        vm.prank(delegatee);
        providerRegistry.providerSetMinStake(1 ether);

        assertEq(providerRegistry.getProviderMinimumStake(), 0, "unchanged");
    }

    // ---------------------------------------------------------------------------------------------------
    // providerRegister
    // ---------------------------------------------------------------------------------------------------

    function test_providerRegister_firstRegistration() public {
        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, false, false, true, address(diamond));
        emit IProviderRegistry.ProviderRegistered(provider);
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);

        assertEq(token.balanceOf(provider), providerBefore_ - PROVIDER_STAKE, "stake pulled from the provider");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ + PROVIDER_STAKE, "stake held by the diamond");

        IProviderStorage.Provider memory p_ = providerRegistry.getProvider(provider);
        assertEq(p_.endpoint, ENDPOINT);
        assertEq(p_.stake, PROVIDER_STAKE);
        assertEq(uint256(p_.createdAt), block.timestamp, "createdAt = now");
        assertEq(uint256(p_.limitPeriodEnd), block.timestamp + 365 days, "limitPeriodEnd = now + 365 days");
        assertEq(p_.limitPeriodEarned, 0);
        assertFalse(p_.isDeleted);

        assertTrue(providerRegistry.getIsProviderActive(provider));
        (address[] memory active_, uint256 total_) = _activeProviders();
        assertEq(total_, 1);
        assertEq(active_.length, 1);
        assertEq(active_[0], provider);
    }

    function test_providerRegister_zeroAmountPullsNothing() public {
        // Allowance revoked: an amount of 0 never calls transferFrom.
        vm.prank(provider);
        token.approve(d.diamond, 0);
        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        _register(provider, provider, 0, ENDPOINT);

        assertEq(token.balanceOf(provider), providerBefore_);
        assertEq(token.balanceOf(d.diamond), diamondBefore_);
        assertEq(providerRegistry.getProvider(provider).stake, 0);
        assertTrue(providerRegistry.getIsProviderActive(provider));
    }

    function test_providerRegister_topUpAddsStakeAndKeepsCreatedAt() public {
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        uint256 createdAt_ = block.timestamp;

        vm.warp(block.timestamp + 3 days);
        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, false, false, true, address(diamond));
        emit IProviderRegistry.ProviderRegistered(provider);
        _register(provider, provider, 1 ether, ENDPOINT);

        assertEq(token.balanceOf(provider), providerBefore_ - 1 ether, "top-up pulled from the provider");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ + 1 ether);

        IProviderStorage.Provider memory p_ = providerRegistry.getProvider(provider);
        assertEq(p_.stake, PROVIDER_STAKE + 1 ether, "stake adds up");
        assertEq(uint256(p_.createdAt), createdAt_, "createdAt kept");
        assertEq(uint256(p_.limitPeriodEnd), createdAt_ + 365 days, "limitPeriodEnd kept");

        (, uint256 total_) = providerRegistry.getActiveProviders(0, 0);
        assertEq(total_, 1, "not added twice to the active set");
    }

    function test_providerRegister_endpointUpdateEmitsEveryTime() public {
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, false, false, true, address(diamond));
        emit IProviderRegistry.ProviderRegistered(provider);
        _register(provider, provider, 0, "provider.example.org:3333");

        IProviderStorage.Provider memory p_ = providerRegistry.getProvider(provider);
        assertEq(p_.endpoint, "provider.example.org:3333", "endpoint overwritten");
        assertEq(p_.stake, PROVIDER_STAKE, "stake unchanged");
        assertEq(token.balanceOf(d.diamond), diamondBefore_, "nothing moved");

        // And once more with an identical call: the event is still emitted.
        vm.recordLogs();
        _register(provider, provider, 0, "provider.example.org:3333");
        assertEq(vm.getRecordedLogs().length, 1, "ProviderRegistered only");
    }

    function test_providerRegister_eventTopic() public {
        vm.recordLogs();
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        bytes32 topic_ = keccak256("ProviderRegistered(address)");
        bool found_;
        Vm.Log[] memory logs_ = vm.getRecordedLogs();
        for (uint256 i = 0; i < logs_.length; i++) {
            if (logs_[i].emitter == d.diamond && logs_[i].topics[0] == topic_) {
                assertEq(logs_[i].topics.length, 2, "provider indexed");
                assertEq(logs_[i].topics[1], bytes32(uint256(uint160(provider))));
                assertEq(logs_[i].data.length, 0);
                found_ = true;
            }
        }
        assertTrue(found_, "ProviderRegistered emitted by the diamond");
        assertEq(uint256(uint32(bytes4(topic_))), uint256(uint32(bytes4(0x70abce74))), "topic 0x70abce74...");
    }

    function test_providerRegister_reRegisterAfterDeregisterKeepsDates() public {
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        uint256 createdAt_ = block.timestamp;
        _deregister(provider, provider);
        assertFalse(providerRegistry.getIsProviderActive(provider));

        vm.warp(block.timestamp + 10 days);
        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, false, false, true, address(diamond));
        emit IProviderRegistry.ProviderRegistered(provider);
        _register(provider, provider, 0.5 ether, "new:1");

        assertEq(token.balanceOf(provider), providerBefore_ - 0.5 ether);
        assertEq(token.balanceOf(d.diamond), diamondBefore_ + 0.5 ether);

        IProviderStorage.Provider memory p_ = providerRegistry.getProvider(provider);
        assertFalse(p_.isDeleted, "undeleted");
        assertEq(p_.stake, 0.5 ether, "full refund left 0, plus the new amount");
        assertEq(p_.endpoint, "new:1");
        assertEq(uint256(p_.createdAt), createdAt_, "createdAt unchanged");
        assertEq(uint256(p_.limitPeriodEnd), createdAt_ + 365 days, "limitPeriodEnd unchanged");
        assertTrue(providerRegistry.getIsProviderActive(provider));
        (address[] memory active_, uint256 total_) = _activeProviders();
        assertEq(total_, 1);
        assertEq(active_[0], provider);
    }

    function test_providerRegister_revertsStakeTooLow() public {
        providerRegistry.providerSetMinStake(2 ether);
        uint256 providerBefore_ = token.balanceOf(provider);

        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.ProviderStakeTooLow.selector, 1 ether, 2 ether));
        _register(provider, provider, 1 ether, ENDPOINT);

        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.ProviderStakeTooLow.selector, 0, 2 ether));
        _register(provider, provider, 0, ENDPOINT);

        // Exactly the minimum is enough.
        _register(provider, provider, 2 ether, ENDPOINT);
        assertEq(token.balanceOf(provider), providerBefore_ - 2 ether);

        // A top-up is checked on the NEW total stake.
        providerRegistry.providerSetMinStake(5 ether);
        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.ProviderStakeTooLow.selector, 3 ether, 5 ether));
        _register(provider, provider, 1 ether, ENDPOINT);
        _register(provider, provider, 3 ether, ENDPOINT);
        assertEq(providerRegistry.getProvider(provider).stake, 5 ether);
        assertEq(token.balanceOf(provider), providerBefore_ - 5 ether);
    }

    /// @dev D10: the stake check runs before the token transfer, so a provider without allowance still gets
    ///      ProviderStakeTooLow (the reference pulled first and failed in the token).
    function test_providerRegister_D10_stakeCheckBeforeTransfer() public {
        providerRegistry.providerSetMinStake(2 ether);
        vm.prank(provider);
        token.approve(d.diamond, 0);

        vm.expectRevert(abi.encodeWithSelector(IProviderRegistry.ProviderStakeTooLow.selector, 1 ether, 2 ether));
        _register(provider, provider, 1 ether, ENDPOINT);

        // With a valid amount the token's own error shows that the transfer really is attempted.
        vm.expectRevert(bytes("ERC20: insufficient allowance"));
        _register(provider, provider, 2 ether, ENDPOINT);
    }

    function test_providerRegister_revertsForStranger() public {
        uint256 providerBefore_ = token.balanceOf(provider);
        vm.expectRevert(_insufficientRights(provider, stranger));
        _register(stranger, provider, PROVIDER_STAKE, ENDPOINT);
        assertEq(token.balanceOf(provider), providerBefore_);
        assertFalse(providerRegistry.getIsProviderActive(provider));
    }

    function test_providerRegister_delegatedWithProviderRule() public {
        bytes32 rule_ = RULES_PROVIDER;
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, rule_, true);

        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 delegateeBefore_ = token.balanceOf(delegatee);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, false, false, true, address(diamond));
        emit IProviderRegistry.ProviderRegistered(provider);
        _register(delegatee, provider, PROVIDER_STAKE, ENDPOINT);

        assertEq(token.balanceOf(provider), providerBefore_ - PROVIDER_STAKE, "pulled from the provider");
        assertEq(token.balanceOf(delegatee), delegateeBefore_, "not from the delegatee");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ + PROVIDER_STAKE);
        assertEq(providerRegistry.getProvider(provider).stake, PROVIDER_STAKE);
        assertTrue(providerRegistry.getIsProviderActive(provider));
        assertFalse(providerRegistry.getIsProviderActive(delegatee), "the delegatee is not registered");
    }

    function test_providerRegister_delegatedWithDelegateAll() public {
        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), true);

        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 delegateeBefore_ = token.balanceOf(delegatee);
        _register(delegatee, provider, PROVIDER_STAKE, ENDPOINT);
        assertEq(token.balanceOf(provider), providerBefore_ - PROVIDER_STAKE);
        assertEq(token.balanceOf(delegatee), delegateeBefore_);
        assertTrue(providerRegistry.getIsProviderActive(provider));
    }

    function test_providerRegister_delegatedWithWrongRuleReverts() public {
        bytes32 model_ = RULES_MODEL;
        bytes32 market_ = RULES_MARKETPLACE;
        bytes32 session_ = RULES_SESSION;
        vm.startPrank(provider);
        registry.delegateContract(delegatee, d.diamond, model_, true);
        registry.delegateContract(delegatee, d.diamond, market_, true);
        registry.delegateContract(delegatee, d.diamond, session_, true);
        vm.stopPrank();

        uint256 providerBefore_ = token.balanceOf(provider);
        vm.expectRevert(_insufficientRights(provider, delegatee));
        _register(delegatee, provider, PROVIDER_STAKE, ENDPOINT);
        assertEq(token.balanceOf(provider), providerBefore_);
        assertFalse(providerRegistry.getIsProviderActive(provider));
    }

    function test_providerRegister_delegatedForAnotherContractReverts() public {
        bytes32 rule_ = RULES_PROVIDER;
        vm.prank(provider);
        registry.delegateContract(delegatee, d.providerRegistryFacet, rule_, true);

        vm.expectRevert(_insufficientRights(provider, delegatee));
        _register(delegatee, provider, PROVIDER_STAKE, ENDPOINT);
    }

    function test_providerRegister_delegationRevokedReverts() public {
        bytes32 rule_ = RULES_PROVIDER;
        vm.startPrank(provider);
        registry.delegateContract(delegatee, d.diamond, rule_, true);
        registry.delegateContract(delegatee, d.diamond, rule_, false);
        vm.stopPrank();

        vm.expectRevert(_insufficientRights(provider, delegatee));
        _register(delegatee, provider, PROVIDER_STAKE, ENDPOINT);
    }

    /// @dev D6: without a registry (zero address, or an address without code) a delegated call reverts
    ///      InsufficientRightsForOperation instead of the reference's empty revert.
    function test_providerRegister_D6_noRegistryMeansNotDelegated() public {
        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), true);

        delegation.setRegistry(address(0));
        vm.expectRevert(_insufficientRights(provider, delegatee));
        _register(delegatee, provider, PROVIDER_STAKE, ENDPOINT);

        delegation.setRegistry(stranger); // an EOA: no code
        vm.expectRevert(_insufficientRights(provider, delegatee));
        _register(delegatee, provider, PROVIDER_STAKE, ENDPOINT);

        // The provider itself never needs the registry.
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        assertTrue(providerRegistry.getIsProviderActive(provider));

        // Restoring the registry restores the delegation.
        delegation.setRegistry(d.delegateRegistry);
        _register(delegatee, provider, 1 ether, ENDPOINT);
        assertEq(providerRegistry.getProvider(provider).stake, PROVIDER_STAKE + 1 ether);
    }

    // ---------------------------------------------------------------------------------------------------
    // providerDeregister
    // ---------------------------------------------------------------------------------------------------

    function test_providerDeregister_revertsNotFound() public {
        vm.expectRevert(IProviderRegistry.ProviderNotFound.selector);
        _deregister(provider, provider);
    }

    function test_providerDeregister_revertsHasActiveBids() public {
        (, bytes32 bidId_) = _defaultBid();
        vm.expectRevert(IProviderRegistry.ProviderHasActiveBids.selector);
        _deregister(provider, provider);

        vm.prank(provider);
        marketplace.deleteModelBid(bidId_);
        _deregister(provider, provider);
        assertFalse(providerRegistry.getIsProviderActive(provider));
    }

    function test_providerDeregister_revertsAlreadyDeregistered() public {
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        _deregister(provider, provider);
        vm.expectRevert(IProviderRegistry.ProviderHasAlreadyDeregistered.selector);
        _deregister(provider, provider);
    }

    function test_providerDeregister_revertsForStranger() public {
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        vm.expectRevert(_insufficientRights(provider, stranger));
        _deregister(stranger, provider);
        assertTrue(providerRegistry.getIsProviderActive(provider));
    }

    function test_providerDeregister_fullRefundWhenNothingEarned() public {
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, false, false, true, address(diamond));
        emit IProviderRegistry.ProviderDeregistered(provider);
        _deregister(provider, provider);

        assertEq(token.balanceOf(provider), providerBefore_ + PROVIDER_STAKE, "whole stake refunded");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ - PROVIDER_STAKE);

        IProviderStorage.Provider memory p_ = providerRegistry.getProvider(provider);
        assertEq(p_.stake, 0);
        assertTrue(p_.isDeleted);
        assertEq(p_.endpoint, ENDPOINT, "record kept");
        assertGt(uint256(p_.createdAt), 0, "record kept");
        assertFalse(providerRegistry.getIsProviderActive(provider));
        (address[] memory active_, uint256 total_) = _activeProviders();
        assertEq(total_, 0);
        assertEq(active_.length, 0);
    }

    function test_providerDeregister_zeroStakeTransfersNothing() public {
        _register(provider, provider, 0, ENDPOINT);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);
        vm.recordLogs();
        _deregister(provider, provider);
        Vm.Log[] memory logs_ = vm.getRecordedLogs();
        assertEq(logs_.length, 1, "only ProviderDeregistered, no Transfer");
        assertEq(logs_[0].topics[0], keccak256("ProviderDeregistered(address)"));
        assertEq(logs_[0].topics[1], bytes32(uint256(uint160(provider))));
        assertEq(token.balanceOf(d.diamond), diamondBefore_);
        assertTrue(providerRegistry.getProvider(provider).isDeleted);
    }

    function test_providerDeregister_delegatedRefundsTheProvider() public {
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        bytes32 rule_ = RULES_PROVIDER;
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, rule_, true);

        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 delegateeBefore_ = token.balanceOf(delegatee);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, false, false, true, address(diamond));
        emit IProviderRegistry.ProviderDeregistered(provider);
        _deregister(delegatee, provider);

        assertEq(token.balanceOf(provider), providerBefore_ + PROVIDER_STAKE, "refund to the provider");
        assertEq(token.balanceOf(delegatee), delegateeBefore_, "not to the delegatee");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ - PROVIDER_STAKE);
        assertFalse(providerRegistry.getIsProviderActive(provider));
    }

    function test_providerDeregister_delegatedWithWrongRuleReverts() public {
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        bytes32 rule_ = RULES_MARKETPLACE;
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, rule_, true);

        vm.expectRevert(_insufficientRights(provider, delegatee));
        _deregister(delegatee, provider);
        assertTrue(providerRegistry.getIsProviderActive(provider));
    }

    /// @dev D6 on the deregister path.
    function test_providerDeregister_D6_noRegistryMeansNotDelegated() public {
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), true);
        delegation.setRegistry(address(0));

        vm.expectRevert(_insufficientRights(provider, delegatee));
        _deregister(delegatee, provider);
        assertTrue(providerRegistry.getIsProviderActive(provider));
    }

    function test_providerDeregister_partialRefundKeepsEarnedLocked() public {
        uint256 earned_ = _earn();
        IProviderStorage.Provider memory p_ = providerRegistry.getProvider(provider);
        assertEq(p_.limitPeriodEarned, earned_, "the close paid 100 s x price");
        assertEq(p_.stake, PROVIDER_STAKE);

        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, false, false, true, address(diamond));
        emit IProviderRegistry.ProviderDeregistered(provider);
        _deregister(provider, provider);

        assertEq(token.balanceOf(provider), providerBefore_ + PROVIDER_STAKE - earned_, "stake minus earned");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ - (PROVIDER_STAKE - earned_));

        p_ = providerRegistry.getProvider(provider);
        assertEq(p_.stake, earned_, "the earned part stays locked in the record");
        assertEq(p_.limitPeriodEarned, earned_);
        assertTrue(p_.isDeleted);
    }

    function test_providerDeregister_lockedWithinWindowThenFullRefundAfter() public {
        uint256 earned_ = _earn();
        IProviderStorage.Provider memory p_ = providerRegistry.getProvider(provider);
        uint256 createdAt_ = p_.createdAt;
        uint256 limitPeriodEnd_ = p_.limitPeriodEnd;
        assertEq(limitPeriodEnd_, createdAt_ + 365 days);

        _deregister(provider, provider); // refunds PROVIDER_STAKE - earned_

        // Still inside the window (now == limitPeriodEnd): a re-register + deregister only refunds the top-up.
        vm.warp(limitPeriodEnd_);
        _register(provider, provider, 0.05 ether, ENDPOINT);
        assertEq(providerRegistry.getProvider(provider).stake, earned_ + 0.05 ether);
        uint256 providerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);
        _deregister(provider, provider);
        assertEq(token.balanceOf(provider), providerBefore_ + 0.05 ether, "still locked at limitPeriodEnd");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ - 0.05 ether);
        assertEq(providerRegistry.getProvider(provider).stake, earned_);

        // After the window: re-register (amount 0) keeps the dates, deregister refunds everything left.
        vm.warp(limitPeriodEnd_ + 1);
        _register(provider, provider, 0, ENDPOINT);
        p_ = providerRegistry.getProvider(provider);
        assertEq(uint256(p_.createdAt), createdAt_, "createdAt kept");
        assertEq(uint256(p_.limitPeriodEnd), limitPeriodEnd_, "limitPeriodEnd kept");
        assertEq(p_.stake, earned_);

        providerBefore_ = token.balanceOf(provider);
        diamondBefore_ = token.balanceOf(d.diamond);
        vm.expectEmit(true, false, false, true, address(diamond));
        emit IProviderRegistry.ProviderDeregistered(provider);
        _deregister(provider, provider);
        assertEq(token.balanceOf(provider), providerBefore_ + earned_, "full remaining stake refunded");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ - earned_);
        p_ = providerRegistry.getProvider(provider);
        assertEq(p_.stake, 0);
        assertTrue(p_.isDeleted);
    }

    // ---------------------------------------------------------------------------------------------------
    // Getters
    // ---------------------------------------------------------------------------------------------------

    function test_getProvider_unknownIsZeroStruct() public view {
        IProviderStorage.Provider memory p_ = providerRegistry.getProvider(stranger);
        assertEq(bytes(p_.endpoint).length, 0);
        assertEq(p_.stake, 0);
        assertEq(uint256(p_.createdAt), 0);
        assertEq(uint256(p_.limitPeriodEnd), 0);
        assertEq(p_.limitPeriodEarned, 0);
        assertFalse(p_.isDeleted);
        assertFalse(providerRegistry.getIsProviderActive(stranger));
        assertFalse(providerRegistry.getIsProviderActive(address(0)));
    }

    function test_getIsProviderActive_lifecycle() public {
        assertFalse(providerRegistry.getIsProviderActive(provider), "unknown");
        _register(provider, provider, 0, ENDPOINT);
        assertTrue(providerRegistry.getIsProviderActive(provider), "registered with zero stake");
        _deregister(provider, provider);
        assertFalse(providerRegistry.getIsProviderActive(provider), "deregistered");
        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        assertTrue(providerRegistry.getIsProviderActive(provider), "re-registered");
    }

    function test_getActiveProviders_pagination() public {
        (address[] memory items_, uint256 total_) = providerRegistry.getActiveProviders(0, 10);
        assertEq(items_.length, 0);
        assertEq(total_, 0, "empty set");

        _register(provider, provider, PROVIDER_STAKE, ENDPOINT);
        _register(provider2, provider2, PROVIDER_STAKE, ENDPOINT);
        _register(stranger, stranger, PROVIDER_STAKE, ENDPOINT);

        // (0, 0): the proxy-router's length query.
        (items_, total_) = providerRegistry.getActiveProviders(0, 0);
        assertEq(items_.length, 0);
        assertEq(total_, 3);

        (items_, total_) = providerRegistry.getActiveProviders(0, 3);
        assertEq(total_, 3);
        assertEq(items_.length, 3);
        assertEq(items_[0], provider, "insertion order");
        assertEq(items_[1], provider2);
        assertEq(items_[2], stranger);

        (items_, total_) = providerRegistry.getActiveProviders(1, 1);
        assertEq(total_, 3);
        assertEq(items_.length, 1);
        assertEq(items_[0], provider2);

        // Limit larger than the rest: the rest only.
        (items_, total_) = providerRegistry.getActiveProviders(1, 100);
        assertEq(total_, 3);
        assertEq(items_.length, 2);
        assertEq(items_[0], provider2);
        assertEq(items_[1], stranger);

        (items_, total_) = providerRegistry.getActiveProviders(2, type(uint256).max);
        assertEq(items_.length, 1);
        assertEq(items_[0], stranger);

        // Offset >= total: empty, no revert.
        (items_, total_) = providerRegistry.getActiveProviders(3, 1);
        assertEq(items_.length, 0);
        assertEq(total_, 3);
        (items_, total_) = providerRegistry.getActiveProviders(type(uint256).max, type(uint256).max);
        assertEq(items_.length, 0);
        assertEq(total_, 3);

        // Removal is swap-and-pop: the last element takes the removed one's place.
        _deregister(provider, provider);
        (items_, total_) = providerRegistry.getActiveProviders(0, 10);
        assertEq(total_, 2);
        assertEq(items_.length, 2);
        assertEq(items_[0], stranger);
        assertEq(items_[1], provider2);
    }

    // ---------------------------------------------------------------------------------------------------
    // __ProviderRegistry_init (D7)
    // ---------------------------------------------------------------------------------------------------

    function test_init_D7_secondCallReverts() public {
        vm.expectRevert(bytes("Initializable: contract is already initialized"));
        providerRegistry.__ProviderRegistry_init();
    }

    function test_init_D7_strangerReverts() public {
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        providerRegistry.__ProviderRegistry_init();
    }

    /// @dev D7 on a fresh diamond, where the initializer was never run: a stranger still cannot run it (the
    ///      reference lets anyone run it once); the owner can, once, and it emits Initialized(PROVIDERS slot).
    function test_init_D7_freshDiamondOwnerOnlyAndOnce() public {
        LumerinDiamond fresh_ = new LumerinDiamond();
        fresh_.__LumerinDiamond_init();
        bytes4[] memory selectors_ = new bytes4[](1);
        selectors_[0] = IProviderRegistry.__ProviderRegistry_init.selector;
        LumerinDiamond.Facet[] memory cut_ = new LumerinDiamond.Facet[](1);
        cut_[0] = LumerinDiamond.Facet(d.providerRegistryFacet, LumerinDiamond.FacetAction.Add, selectors_);
        fresh_.diamondCut(cut_);
        IProviderRegistry fresh = IProviderRegistry(address(fresh_));

        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        fresh.__ProviderRegistry_init();

        vm.expectEmit(false, false, false, true, address(fresh_));
        emit Initialized(keccak256("diamond.standard.providers.storage"));
        fresh.__ProviderRegistry_init();

        vm.expectRevert(bytes("Initializable: contract is already initialized"));
        fresh.__ProviderRegistry_init();
    }
}
