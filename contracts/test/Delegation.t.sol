// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {LumerinDiamond} from "../src/diamond/LumerinDiamond.sol";
import {LibDiamondAccess} from "../src/diamond/utils/LibDiamondAccess.sol";
import {IDelegation} from "../src/interfaces/facets/IDelegation.sol";
import {IDelegationStorage} from "../src/interfaces/storage/IDelegationStorage.sol";
import {ISessionStorage} from "../src/interfaces/storage/ISessionStorage.sol";

/// @notice Delegation facet (contracts.md §2.4).
contract DelegationTest is MarketplaceTestBase {
    event Initialized(bytes32 storageSlot);

    function _isDelegated(bytes32 rights_) internal view returns (bool) {
        return delegation.isRightsDelegated(delegatee, provider, rights_);
    }

    // ---------------------------------------------------------------------------------------------------
    // Constants and registry
    // ---------------------------------------------------------------------------------------------------

    function test_rulesConstants() public view {
        assertEq(RULES_PROVIDER, keccak256("delegation.rules.provider"));
        assertEq(RULES_MODEL, keccak256("delegation.rules.model"));
        assertEq(RULES_MARKETPLACE, keccak256("delegation.rules.marketplace"));
        assertEq(RULES_SESSION, keccak256("delegation.rules.session"));
        // The prefixes listed in contracts.md §2.4.
        assertEq(uint256(uint32(bytes4(RULES_PROVIDER))), 0x95f03c9d);
        assertEq(uint256(uint32(bytes4(RULES_MODEL))), 0xdb1a8f53);
        assertEq(uint256(uint32(bytes4(RULES_MARKETPLACE))), 0xe0e347f9);
        assertEq(uint256(uint32(bytes4(RULES_SESSION))), 0xbb0b3346);
    }

    function test_getRegistry_isTheDeployedRegistry() public view {
        assertEq(delegation.getRegistry(), d.delegateRegistry);
        assertTrue(d.delegateRegistry.code.length > 0);
    }

    function test_setRegistry_ownerSetsAndEmits() public {
        address newRegistry_ = address(0x1234);
        vm.expectEmit(false, false, false, true, address(diamond));
        emit IDelegation.DelegationRegistryUpdated(newRegistry_);
        delegation.setRegistry(newRegistry_);
        assertEq(delegation.getRegistry(), newRegistry_);

        vm.expectEmit(false, false, false, true, address(diamond));
        emit IDelegation.DelegationRegistryUpdated(address(0));
        delegation.setRegistry(address(0));
        assertEq(delegation.getRegistry(), address(0));
    }

    function test_setRegistry_revertsForStranger() public {
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        delegation.setRegistry(stranger);
        assertEq(delegation.getRegistry(), d.delegateRegistry, "unchanged");
    }

    // ---------------------------------------------------------------------------------------------------
    // __Delegation_init (D7)
    // ---------------------------------------------------------------------------------------------------

    function test_init_D7_secondCallReverts() public {
        vm.expectRevert(bytes("Initializable: contract is already initialized"));
        delegation.__Delegation_init(stranger);
        assertEq(delegation.getRegistry(), d.delegateRegistry);
    }

    function test_init_D7_strangerReverts() public {
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        delegation.__Delegation_init(stranger);
    }

    function test_init_D7_freshDiamondOwnerOnlyAndOnce() public {
        LumerinDiamond fresh_ = new LumerinDiamond();
        fresh_.__LumerinDiamond_init();
        bytes4[] memory selectors_ = new bytes4[](3);
        selectors_[0] = IDelegation.__Delegation_init.selector;
        selectors_[1] = IDelegationStorage.getRegistry.selector;
        selectors_[2] = IDelegationStorage.isRightsDelegated.selector;
        LumerinDiamond.Facet[] memory cut_ = new LumerinDiamond.Facet[](1);
        cut_[0] = LumerinDiamond.Facet(d.delegationFacet, LumerinDiamond.FacetAction.Add, selectors_);
        fresh_.diamondCut(cut_);
        IDelegation fresh = IDelegation(address(fresh_));

        assertEq(fresh.getRegistry(), address(0));
        assertFalse(fresh.isRightsDelegated(delegatee, provider, RULES_PROVIDER), "D6 before init");

        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        fresh.__Delegation_init(stranger);

        vm.expectEmit(false, false, false, true, address(fresh_));
        emit Initialized(keccak256("diamond.standard.delegation.storage"));
        vm.expectEmit(false, false, false, true, address(fresh_));
        emit IDelegation.DelegationRegistryUpdated(d.delegateRegistry);
        fresh.__Delegation_init(d.delegateRegistry);
        assertEq(fresh.getRegistry(), d.delegateRegistry);

        vm.expectRevert(bytes("Initializable: contract is already initialized"));
        fresh.__Delegation_init(stranger);
        assertEq(fresh.getRegistry(), d.delegateRegistry);

        // The fresh diamond is a different contract: a delegation for the main diamond does not count there.
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, RULES_PROVIDER, true);
        assertTrue(delegation.isRightsDelegated(delegatee, provider, RULES_PROVIDER));
        assertFalse(fresh.isRightsDelegated(delegatee, provider, RULES_PROVIDER));
    }

    // ---------------------------------------------------------------------------------------------------
    // isRightsDelegated
    // ---------------------------------------------------------------------------------------------------

    function test_isRightsDelegated_noDelegation() public view {
        assertFalse(_isDelegated(RULES_PROVIDER));
        assertFalse(_isDelegated(RULES_MODEL));
        assertFalse(_isDelegated(RULES_MARKETPLACE));
        assertFalse(_isDelegated(RULES_SESSION));
        assertFalse(_isDelegated(bytes32(0)));
    }

    function test_isRightsDelegated_contractDelegationWithExactRule() public {
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, RULES_PROVIDER, true);

        assertTrue(_isDelegated(RULES_PROVIDER), "exact rule");
        assertFalse(_isDelegated(RULES_MODEL), "other rule");
        assertFalse(_isDelegated(RULES_MARKETPLACE));
        assertFalse(_isDelegated(RULES_SESSION));
        assertFalse(_isDelegated(bytes32(0)), "a rule is not full rights");
        assertFalse(delegation.isRightsDelegated(provider, delegatee, RULES_PROVIDER), "not symmetric");
        assertFalse(delegation.isRightsDelegated(stranger, provider, RULES_PROVIDER), "other delegatee");
        assertFalse(delegation.isRightsDelegated(delegatee, user, RULES_PROVIDER), "other delegator");
    }

    function test_isRightsDelegated_contractDelegationWithEmptyRightsIsFull() public {
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, bytes32(0), true);

        assertTrue(_isDelegated(RULES_PROVIDER));
        assertTrue(_isDelegated(RULES_MODEL));
        assertTrue(_isDelegated(RULES_MARKETPLACE));
        assertTrue(_isDelegated(RULES_SESSION));
        assertTrue(_isDelegated(bytes32(0)));
        assertTrue(_isDelegated(keccak256("any.other.rule")));
        assertFalse(delegation.isRightsDelegated(stranger, provider, RULES_PROVIDER));
    }

    function test_isRightsDelegated_delegateAll() public {
        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), true);

        assertTrue(_isDelegated(RULES_PROVIDER));
        assertTrue(_isDelegated(RULES_MODEL));
        assertTrue(_isDelegated(RULES_MARKETPLACE));
        assertTrue(_isDelegated(RULES_SESSION));
        assertTrue(_isDelegated(bytes32(0)));
        assertFalse(delegation.isRightsDelegated(delegatee, stranger, RULES_PROVIDER), "only the delegator's rights");
    }

    function test_isRightsDelegated_delegateAllWithRule() public {
        vm.prank(provider);
        registry.delegateAll(delegatee, RULES_SESSION, true);
        assertTrue(_isDelegated(RULES_SESSION));
        assertFalse(_isDelegated(RULES_PROVIDER));
        assertFalse(_isDelegated(bytes32(0)));
    }

    function test_isRightsDelegated_ruleForAnotherContract() public {
        vm.startPrank(provider);
        registry.delegateContract(delegatee, address(token), RULES_PROVIDER, true);
        registry.delegateContract(delegatee, d.providerRegistryFacet, RULES_PROVIDER, true);
        registry.delegateContract(delegatee, d.delegationFacet, bytes32(0), true);
        vm.stopPrank();

        assertFalse(_isDelegated(RULES_PROVIDER), "only delegations for the diamond count");
        assertFalse(_isDelegated(bytes32(0)));
    }

    function test_isRightsDelegated_revoked() public {
        vm.startPrank(provider);
        registry.delegateContract(delegatee, d.diamond, RULES_MODEL, true);
        registry.delegateAll(delegatee, bytes32(0), true);
        vm.stopPrank();
        assertTrue(_isDelegated(RULES_MODEL));

        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), false);
        assertTrue(_isDelegated(RULES_MODEL), "the contract rule is still there");
        assertFalse(_isDelegated(RULES_SESSION), "the full delegation is gone");

        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, RULES_MODEL, false);
        assertFalse(_isDelegated(RULES_MODEL), "revoked");
    }

    /// @dev D6: with no registry (or one without code) nothing is delegated, and isRightsDelegated returns
    ///      false instead of reverting.
    function test_isRightsDelegated_D6_noRegistryIsFalse() public {
        vm.startPrank(provider);
        registry.delegateAll(delegatee, bytes32(0), true);
        registry.delegateContract(delegatee, d.diamond, RULES_PROVIDER, true);
        vm.stopPrank();
        assertTrue(_isDelegated(RULES_PROVIDER));

        delegation.setRegistry(address(0));
        assertFalse(_isDelegated(RULES_PROVIDER), "zero registry");
        assertFalse(_isDelegated(bytes32(0)));

        delegation.setRegistry(stranger);
        assertFalse(_isDelegated(RULES_PROVIDER), "registry without code");

        delegation.setRegistry(d.delegateRegistry);
        assertTrue(_isDelegated(RULES_PROVIDER), "restored");
    }

    // ---------------------------------------------------------------------------------------------------
    // The rule table of §2.4, end to end: each rule unlocks its own actions only.
    // ---------------------------------------------------------------------------------------------------

    function test_ruleTable_providerRuleOnlyUnlocksProviderActions() public {
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, RULES_PROVIDER, true);

        uint256 providerBefore_ = token.balanceOf(provider);
        vm.prank(delegatee);
        providerRegistry.providerRegister(provider, PROVIDER_STAKE, "e:1");
        assertEq(token.balanceOf(provider), providerBefore_ - PROVIDER_STAKE);

        string[] memory tags_ = new string[](0);
        vm.expectRevert(_insufficientRights(provider, delegatee));
        vm.prank(delegatee);
        modelRegistry.modelRegister(provider, BASE_MODEL_ID, bytes32(0), 0, 0, "m", tags_);

        bytes32 modelId_ = _registerModel(provider, BASE_MODEL_ID, MODEL_STAKE);
        vm.expectRevert(_insufficientRights(provider, delegatee));
        vm.prank(delegatee);
        marketplace.postModelBid(provider, modelId_, PRICE);

        vm.prank(delegatee);
        providerRegistry.providerDeregister(provider);
        assertEq(token.balanceOf(provider), providerBefore_ - MODEL_STAKE, "provider stake refunded");
    }

    function test_ruleTable_modelRuleOnlyUnlocksModelActions() public {
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, RULES_MODEL, true);

        string[] memory tags_ = new string[](0);
        vm.prank(delegatee);
        modelRegistry.modelRegister(provider, BASE_MODEL_ID, bytes32(0), 0, MODEL_STAKE, "m", tags_);
        bytes32 modelId_ = modelRegistry.getModelId(provider, BASE_MODEL_ID);
        assertTrue(modelRegistry.getIsModelActive(modelId_));

        vm.expectRevert(_insufficientRights(provider, delegatee));
        vm.prank(delegatee);
        providerRegistry.providerRegister(provider, PROVIDER_STAKE, "e:1");

        vm.prank(delegatee);
        modelRegistry.modelDeregister(modelId_);
        assertFalse(modelRegistry.getIsModelActive(modelId_));
    }

    function test_ruleTable_marketplaceRuleOnlyUnlocksBids() public {
        _registerProvider(provider, PROVIDER_STAKE);
        bytes32 modelId_ = _registerModel(provider, BASE_MODEL_ID, MODEL_STAKE);
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, RULES_MARKETPLACE, true);

        vm.prank(delegatee);
        bytes32 bidId_ = marketplace.postModelBid(provider, modelId_, PRICE);
        assertEq(bidStorage.getBid(bidId_).provider, provider, "the bid belongs to the delegator");
        assertTrue(bidStorage.isBidActive(bidId_));

        vm.expectRevert(_insufficientRights(provider, delegatee));
        vm.prank(delegatee);
        providerRegistry.providerDeregister(provider);

        vm.prank(delegatee);
        marketplace.deleteModelBid(bidId_);
        assertFalse(bidStorage.isBidActive(bidId_));
    }

    function test_ruleTable_sessionRuleOpensForTheUser() public {
        (, bytes32 bidId_) = _defaultBid();
        bytes memory approval_ = _approvalNow(bidId_);
        bytes memory signature_ = _sign(PROVIDER_KEY, approval_);

        // Without the rule (or with another one) the delegatee cannot open for the user.
        vm.prank(user);
        registry.delegateContract(delegatee, d.diamond, RULES_PROVIDER, true);
        vm.expectRevert(_insufficientRights(user, delegatee));
        vm.prank(delegatee);
        sessionRouter.openSession(user, SESSION_STAKE, false, approval_, signature_);

        vm.prank(user);
        registry.delegateContract(delegatee, d.diamond, RULES_SESSION, true);
        uint256 userBefore_ = token.balanceOf(user);
        uint256 delegateeBefore_ = token.balanceOf(delegatee);
        vm.prank(delegatee);
        bytes32 sessionId_ = sessionRouter.openSession(user, SESSION_STAKE, false, approval_, signature_);

        ISessionStorage.Session memory s_ = sessionRouter.getSession(sessionId_);
        assertEq(s_.user, user, "session opened for the delegator");
        assertEq(token.balanceOf(user), userBefore_ - SESSION_STAKE, "stake from the user");
        assertEq(token.balanceOf(delegatee), delegateeBefore_);
    }
}
