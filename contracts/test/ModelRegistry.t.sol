// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketplaceTestBase} from "./utils/MarketplaceTestBase.sol";
import {Vm} from "./utils/Vm.sol";
import {LumerinDiamond} from "../src/diamond/LumerinDiamond.sol";
import {LibDiamondAccess} from "../src/diamond/utils/LibDiamondAccess.sol";
import {IModelRegistry} from "../src/interfaces/facets/IModelRegistry.sol";
import {IModelStorage} from "../src/interfaces/storage/IModelStorage.sol";
import {IDelegation} from "../src/interfaces/facets/IDelegation.sol";

/// @notice ModelRegistry facet (contracts.md §2.2 and the delegation table of §2.4).
contract ModelRegistryTest is MarketplaceTestBase {
    bytes32 internal constant BASE_A = keccak256("model-a");
    bytes32 internal constant BASE_B = keccak256("model-b");
    bytes32 internal constant BASE_C = keccak256("model-c");
    bytes32 internal constant CID = keccak256("ipfs-cid-1");

    event Initialized(bytes32 storageSlot);

    // ---------------------------------------------------------------------------------------------------
    // Helpers
    // ---------------------------------------------------------------------------------------------------

    function _tags(string memory a_, string memory b_) internal pure returns (string[] memory tags_) {
        tags_ = new string[](2);
        tags_[0] = a_;
        tags_[1] = b_;
    }

    function _register(address caller_, address owner_, bytes32 baseId_, uint256 amount_) internal returns (bytes32) {
        vm.prank(caller_);
        modelRegistry.modelRegister(owner_, baseId_, CID, 7, amount_, "Model", _tags("llm", "chat"));
        return modelRegistry.getModelId(owner_, baseId_);
    }

    function _deregister(address caller_, bytes32 modelId_) internal {
        vm.prank(caller_);
        modelRegistry.modelDeregister(modelId_);
    }

    // ---------------------------------------------------------------------------------------------------
    // modelSetMinStake / getModelMinimumStake
    // ---------------------------------------------------------------------------------------------------

    function test_modelSetMinStake_ownerSetsAndEmits() public {
        assertEq(modelRegistry.getModelMinimumStake(), 0, "test config");

        vm.expectEmit(false, false, false, true, address(diamond));
        emit IModelRegistry.ModelMinimumStakeUpdated(10 ether);
        modelRegistry.modelSetMinStake(10 ether);
        assertEq(modelRegistry.getModelMinimumStake(), 10 ether);

        vm.expectEmit(false, false, false, true, address(diamond));
        emit IModelRegistry.ModelMinimumStakeUpdated(0);
        modelRegistry.modelSetMinStake(0);
        assertEq(modelRegistry.getModelMinimumStake(), 0);
    }

    function test_modelSetMinStake_revertsForStranger() public {
        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        modelRegistry.modelSetMinStake(1 ether);
        assertEq(modelRegistry.getModelMinimumStake(), 0);
    }

    // ---------------------------------------------------------------------------------------------------
    // getModelId / modelRegister
    // ---------------------------------------------------------------------------------------------------

    function test_getModelId_isPackedHashOfOwnerAndBaseId() public view {
        bytes32 expected_ = keccak256(abi.encodePacked(provider, BASE_A));
        assertEq(modelRegistry.getModelId(provider, BASE_A), expected_);
        assertEq(expected_, keccak256(bytes.concat(bytes20(provider), BASE_A)), "20 + 32 bytes");
        assertTrue(modelRegistry.getModelId(stranger, BASE_A) != expected_, "owner is part of the id");
    }

    function test_modelRegister_newModel() public {
        bytes32 modelId_ = keccak256(abi.encodePacked(provider, BASE_A));
        uint256 ownerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, true, false, true, address(diamond));
        emit IModelRegistry.ModelRegisteredUpdated(provider, modelId_);
        vm.prank(provider);
        modelRegistry.modelRegister(provider, BASE_A, CID, 7, MODEL_STAKE, "Llama", _tags("llm", "chat"));

        assertEq(token.balanceOf(provider), ownerBefore_ - MODEL_STAKE, "stake pulled from the owner");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ + MODEL_STAKE);

        IModelStorage.Model memory m_ = modelRegistry.getModel(modelId_);
        assertEq(m_.ipfsCID, CID);
        assertEq(m_.fee, 7, "fee stored");
        assertEq(m_.stake, MODEL_STAKE);
        assertEq(m_.owner, provider);
        assertEq(m_.name, "Llama");
        assertEq(m_.tags.length, 2);
        assertEq(m_.tags[0], "llm");
        assertEq(m_.tags[1], "chat");
        assertEq(uint256(m_.createdAt), block.timestamp);
        assertFalse(m_.isDeleted);

        assertTrue(modelRegistry.getIsModelActive(modelId_));
        (bytes32[] memory ids_, uint256 total_) = modelRegistry.getModelIds(0, 10);
        assertEq(total_, 1);
        assertEq(ids_[0], modelId_);
        (ids_, total_) = modelRegistry.getActiveModelIds(0, 10);
        assertEq(total_, 1);
        assertEq(ids_[0], modelId_);
    }

    function test_modelRegister_eventHasBothIndexedTopics() public {
        bytes32 modelId_ = modelRegistry.getModelId(provider, BASE_A);
        vm.recordLogs();
        _register(provider, provider, BASE_A, MODEL_STAKE);
        Vm.Log[] memory logs_ = vm.getRecordedLogs();

        bytes32 topic0_ = keccak256("ModelRegisteredUpdated(address,bytes32)");
        uint256 found_;
        for (uint256 i = 0; i < logs_.length; i++) {
            if (logs_[i].emitter != d.diamond || logs_[i].topics[0] != topic0_) continue;
            found_++;
            assertEq(logs_[i].topics.length, 3, "owner and modelId indexed");
            assertEq(logs_[i].topics[1], bytes32(uint256(uint160(provider))), "topics[1] = owner");
            assertEq(logs_[i].topics[2], modelId_, "topics[2] = modelId");
            assertEq(logs_[i].data.length, 0, "no data");
        }
        assertEq(found_, 1, "exactly one ModelRegisteredUpdated");
        assertEq(uint256(uint32(bytes4(topic0_))), uint256(uint32(bytes4(0xda9282a6))), "topic 0xda9282a6...");
    }

    function test_modelRegister_zeroAmountPullsNothing() public {
        vm.prank(stranger);
        token.approve(d.diamond, 0);
        uint256 before_ = token.balanceOf(stranger);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);
        bytes32 modelId_ = _register(stranger, stranger, BASE_A, 0);
        assertEq(token.balanceOf(stranger), before_);
        assertEq(token.balanceOf(d.diamond), diamondBefore_);
        assertTrue(modelRegistry.getIsModelActive(modelId_));
        assertEq(modelRegistry.getModel(modelId_).stake, 0);
    }

    function test_modelRegister_updateOverwritesMetadataAndAddsStake() public {
        bytes32 modelId_ = _register(provider, provider, BASE_A, MODEL_STAKE);
        uint256 createdAt_ = block.timestamp;
        vm.warp(block.timestamp + 1 days);

        uint256 ownerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);
        string[] memory tags_ = new string[](1);
        tags_[0] = "vision";

        vm.expectEmit(true, true, false, true, address(diamond));
        emit IModelRegistry.ModelRegisteredUpdated(provider, modelId_);
        vm.prank(provider);
        modelRegistry.modelRegister(provider, BASE_A, keccak256("cid-2"), 99, 5 ether, "Renamed", tags_);

        assertEq(token.balanceOf(provider), ownerBefore_ - 5 ether);
        assertEq(token.balanceOf(d.diamond), diamondBefore_ + 5 ether);

        IModelStorage.Model memory m_ = modelRegistry.getModel(modelId_);
        assertEq(m_.stake, MODEL_STAKE + 5 ether, "stake adds up");
        assertEq(m_.ipfsCID, keccak256("cid-2"));
        assertEq(m_.fee, 99);
        assertEq(m_.name, "Renamed");
        assertEq(m_.tags.length, 1, "tags replaced, not appended");
        assertEq(m_.tags[0], "vision");
        assertEq(uint256(m_.createdAt), createdAt_, "createdAt kept");
        assertEq(m_.owner, provider);

        (, uint256 total_) = modelRegistry.getModelIds(0, 0);
        assertEq(total_, 1, "same id, not added twice");
        (, total_) = modelRegistry.getActiveModelIds(0, 0);
        assertEq(total_, 1);
    }

    function test_modelRegister_revertsStakeTooLow() public {
        modelRegistry.modelSetMinStake(10 ether);
        uint256 before_ = token.balanceOf(provider);

        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelStakeTooLow.selector, 5 ether, 10 ether));
        _register(provider, provider, BASE_A, 5 ether);

        bytes32 modelId_ = _register(provider, provider, BASE_A, 10 ether);
        assertEq(token.balanceOf(provider), before_ - 10 ether);

        // An update is checked on the new total.
        modelRegistry.modelSetMinStake(20 ether);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelStakeTooLow.selector, 15 ether, 20 ether));
        _register(provider, provider, BASE_A, 5 ether);
        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelStakeTooLow.selector, 10 ether, 20 ether));
        _register(provider, provider, BASE_A, 0);

        _register(provider, provider, BASE_A, 10 ether);
        assertEq(modelRegistry.getModel(modelId_).stake, 20 ether);
        assertEq(token.balanceOf(provider), before_ - 20 ether);
    }

    /// @dev D10: the stake check runs before the token transfer.
    function test_modelRegister_D10_stakeCheckBeforeTransfer() public {
        modelRegistry.modelSetMinStake(10 ether);
        vm.prank(provider);
        token.approve(d.diamond, 0);

        vm.expectRevert(abi.encodeWithSelector(IModelRegistry.ModelStakeTooLow.selector, 1 ether, 10 ether));
        _register(provider, provider, BASE_A, 1 ether);

        vm.expectRevert(bytes("ERC20: insufficient allowance"));
        _register(provider, provider, BASE_A, 10 ether);
    }

    function test_modelRegister_ownerNeedNotBeAProvider() public {
        assertFalse(providerRegistry.getIsProviderActive(stranger));
        bytes32 modelId_ = _register(stranger, stranger, BASE_A, MODEL_STAKE);
        assertTrue(modelRegistry.getIsModelActive(modelId_));
        assertEq(modelRegistry.getModel(modelId_).owner, stranger);
    }

    function test_modelRegister_sameBaseIdDifferentOwnersAreDifferentModels() public {
        bytes32 a_ = _register(provider, provider, BASE_A, 1 ether);
        bytes32 b_ = _register(stranger, stranger, BASE_A, 2 ether);
        assertTrue(a_ != b_);
        assertEq(modelRegistry.getModel(a_).owner, provider);
        assertEq(modelRegistry.getModel(b_).owner, stranger);
        assertEq(modelRegistry.getModel(a_).stake, 1 ether);
        assertEq(modelRegistry.getModel(b_).stake, 2 ether);
        (, uint256 total_) = modelRegistry.getModelIds(0, 0);
        assertEq(total_, 2);
    }

    function test_modelRegister_revertsForStranger() public {
        uint256 before_ = token.balanceOf(provider);
        vm.expectRevert(_insufficientRights(provider, stranger));
        _register(stranger, provider, BASE_A, MODEL_STAKE);
        assertEq(token.balanceOf(provider), before_);
        assertFalse(modelRegistry.getIsModelActive(modelRegistry.getModelId(provider, BASE_A)));
    }

    function test_modelRegister_delegatedWithModelRule() public {
        bytes32 rule_ = RULES_MODEL;
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, rule_, true);

        bytes32 modelId_ = modelRegistry.getModelId(provider, BASE_A);
        uint256 ownerBefore_ = token.balanceOf(provider);
        uint256 delegateeBefore_ = token.balanceOf(delegatee);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, true, false, true, address(diamond));
        emit IModelRegistry.ModelRegisteredUpdated(provider, modelId_);
        _register(delegatee, provider, BASE_A, MODEL_STAKE);

        assertEq(token.balanceOf(provider), ownerBefore_ - MODEL_STAKE, "pulled from the owner");
        assertEq(token.balanceOf(delegatee), delegateeBefore_, "not from the delegatee");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ + MODEL_STAKE);
        assertEq(modelRegistry.getModel(modelId_).owner, provider, "owner is the delegator");
        assertEq(modelRegistry.getModel(modelRegistry.getModelId(delegatee, BASE_A)).createdAt, 0);
    }

    function test_modelRegister_delegatedWithDelegateAll() public {
        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), true);
        bytes32 modelId_ = _register(delegatee, provider, BASE_A, MODEL_STAKE);
        assertEq(modelRegistry.getModel(modelId_).owner, provider);
        assertTrue(modelRegistry.getIsModelActive(modelId_));
    }

    function test_modelRegister_delegatedWithWrongRuleReverts() public {
        bytes32 providerRule_ = delegation.DELEGATION_RULES_PROVIDER();
        bytes32 marketRule_ = delegation.DELEGATION_RULES_MARKETPLACE();
        bytes32 sessionRule_ = delegation.DELEGATION_RULES_SESSION();
        vm.startPrank(provider);
        registry.delegateContract(delegatee, d.diamond, providerRule_, true);
        registry.delegateContract(delegatee, d.diamond, marketRule_, true);
        registry.delegateContract(delegatee, d.diamond, sessionRule_, true);
        vm.stopPrank();

        uint256 before_ = token.balanceOf(provider);
        vm.expectRevert(_insufficientRights(provider, delegatee));
        _register(delegatee, provider, BASE_A, MODEL_STAKE);
        assertEq(token.balanceOf(provider), before_);
    }

    /// @dev D6: no registry means not delegated (InsufficientRightsForOperation, not an empty revert).
    function test_modelRegister_D6_noRegistryMeansNotDelegated() public {
        vm.prank(provider);
        registry.delegateAll(delegatee, bytes32(0), true);
        delegation.setRegistry(address(0));

        vm.expectRevert(_insufficientRights(provider, delegatee));
        _register(delegatee, provider, BASE_A, MODEL_STAKE);

        delegation.setRegistry(stranger);
        vm.expectRevert(_insufficientRights(provider, delegatee));
        _register(delegatee, provider, BASE_A, MODEL_STAKE);
    }

    // ---------------------------------------------------------------------------------------------------
    // modelDeregister
    // ---------------------------------------------------------------------------------------------------

    function test_modelDeregister_fullRefund() public {
        bytes32 modelId_ = _register(provider, provider, BASE_A, MODEL_STAKE);
        _register(provider, provider, BASE_A, 5 ether); // top-up
        uint256 ownerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, true, false, true, address(diamond));
        emit IModelRegistry.ModelDeregistered(provider, modelId_);
        _deregister(provider, modelId_);

        assertEq(token.balanceOf(provider), ownerBefore_ + MODEL_STAKE + 5 ether, "whole stake back");
        assertEq(token.balanceOf(d.diamond), diamondBefore_ - MODEL_STAKE - 5 ether);

        IModelStorage.Model memory m_ = modelRegistry.getModel(modelId_);
        assertEq(m_.stake, 0);
        assertTrue(m_.isDeleted);
        assertEq(m_.owner, provider, "record kept");
        assertEq(m_.name, "Model", "record kept");
        assertFalse(modelRegistry.getIsModelActive(modelId_));
    }

    function test_modelDeregister_eventTopics() public {
        bytes32 modelId_ = _register(provider, provider, BASE_A, MODEL_STAKE);
        vm.recordLogs();
        _deregister(provider, modelId_);
        Vm.Log[] memory logs_ = vm.getRecordedLogs();
        bytes32 topic0_ = keccak256("ModelDeregistered(address,bytes32)");
        uint256 found_;
        for (uint256 i = 0; i < logs_.length; i++) {
            if (logs_[i].emitter != d.diamond || logs_[i].topics[0] != topic0_) continue;
            found_++;
            assertEq(logs_[i].topics.length, 3);
            assertEq(logs_[i].topics[1], bytes32(uint256(uint160(provider))));
            assertEq(logs_[i].topics[2], modelId_);
        }
        assertEq(found_, 1);
        assertEq(uint256(uint32(bytes4(topic0_))), uint256(uint32(bytes4(0x79a9f301))), "topic 0x79a9f301...");
    }

    function test_modelDeregister_revertsHasActiveBids() public {
        (bytes32 modelId_, bytes32 bidId_) = _defaultBid();
        vm.expectRevert(IModelRegistry.ModelHasActiveBids.selector);
        _deregister(provider, modelId_);

        vm.prank(provider);
        marketplace.deleteModelBid(bidId_);
        uint256 before_ = token.balanceOf(provider);
        _deregister(provider, modelId_);
        assertEq(token.balanceOf(provider), before_ + MODEL_STAKE);
    }

    function test_modelDeregister_revertsAlreadyDeregistered() public {
        bytes32 modelId_ = _register(provider, provider, BASE_A, MODEL_STAKE);
        _deregister(provider, modelId_);
        vm.expectRevert(IModelRegistry.ModelHasAlreadyDeregistered.selector);
        _deregister(provider, modelId_);
    }

    function test_modelDeregister_unknownModelRevertsInsufficientRights() public {
        bytes32 unknown_ = keccak256("unknown");
        vm.expectRevert(_insufficientRights(address(0), provider));
        _deregister(provider, unknown_);
        vm.expectRevert(_insufficientRights(address(0), stranger));
        _deregister(stranger, unknown_);
    }

    function test_modelDeregister_revertsForStranger() public {
        bytes32 modelId_ = _register(provider, provider, BASE_A, MODEL_STAKE);
        vm.expectRevert(_insufficientRights(provider, stranger));
        _deregister(stranger, modelId_);
        assertTrue(modelRegistry.getIsModelActive(modelId_));
    }

    function test_modelDeregister_delegatedWithModelRule() public {
        bytes32 modelId_ = _register(provider, provider, BASE_A, MODEL_STAKE);
        bytes32 rule_ = RULES_MODEL;
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, rule_, true);

        uint256 ownerBefore_ = token.balanceOf(provider);
        uint256 delegateeBefore_ = token.balanceOf(delegatee);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, true, false, true, address(diamond));
        emit IModelRegistry.ModelDeregistered(provider, modelId_);
        _deregister(delegatee, modelId_);

        assertEq(token.balanceOf(provider), ownerBefore_ + MODEL_STAKE, "refund to the owner");
        assertEq(token.balanceOf(delegatee), delegateeBefore_);
        assertEq(token.balanceOf(d.diamond), diamondBefore_ - MODEL_STAKE);
    }

    function test_modelDeregister_delegatedWithWrongRuleReverts() public {
        bytes32 modelId_ = _register(provider, provider, BASE_A, MODEL_STAKE);
        bytes32 rule_ = RULES_PROVIDER;
        vm.prank(provider);
        registry.delegateContract(delegatee, d.diamond, rule_, true);

        vm.expectRevert(_insufficientRights(provider, delegatee));
        _deregister(delegatee, modelId_);
        assertTrue(modelRegistry.getIsModelActive(modelId_));
    }

    function test_modelDeregister_zeroStakeStillEmits() public {
        bytes32 modelId_ = _register(provider, provider, BASE_A, 0);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);
        vm.expectEmit(true, true, false, true, address(diamond));
        emit IModelRegistry.ModelDeregistered(provider, modelId_);
        _deregister(provider, modelId_);
        assertEq(token.balanceOf(d.diamond), diamondBefore_);
        assertTrue(modelRegistry.getModel(modelId_).isDeleted);
    }

    function test_modelRegister_reRegisterAfterDeregister() public {
        bytes32 modelId_ = _register(provider, provider, BASE_A, MODEL_STAKE);
        uint256 createdAt_ = block.timestamp;
        _deregister(provider, modelId_);

        vm.warp(block.timestamp + 5 days);
        uint256 ownerBefore_ = token.balanceOf(provider);
        uint256 diamondBefore_ = token.balanceOf(d.diamond);

        vm.expectEmit(true, true, false, true, address(diamond));
        emit IModelRegistry.ModelRegisteredUpdated(provider, modelId_);
        _register(provider, provider, BASE_A, 3 ether);

        assertEq(token.balanceOf(provider), ownerBefore_ - 3 ether);
        assertEq(token.balanceOf(d.diamond), diamondBefore_ + 3 ether);
        IModelStorage.Model memory m_ = modelRegistry.getModel(modelId_);
        assertEq(m_.stake, 3 ether, "the refunded stake is not counted again");
        assertFalse(m_.isDeleted);
        assertEq(uint256(m_.createdAt), createdAt_, "createdAt kept");
        assertTrue(modelRegistry.getIsModelActive(modelId_));

        (, uint256 total_) = modelRegistry.getModelIds(0, 0);
        assertEq(total_, 1, "not added twice to modelIds");
        (bytes32[] memory active_, uint256 activeTotal_) = modelRegistry.getActiveModelIds(0, 10);
        assertEq(activeTotal_, 1);
        assertEq(active_[0], modelId_);
    }

    // ---------------------------------------------------------------------------------------------------
    // Getters
    // ---------------------------------------------------------------------------------------------------

    function test_getModel_unknownIsZeroStruct() public view {
        IModelStorage.Model memory m_ = modelRegistry.getModel(keccak256("nothing"));
        assertEq(m_.ipfsCID, bytes32(0));
        assertEq(m_.fee, 0);
        assertEq(m_.stake, 0);
        assertEq(m_.owner, address(0));
        assertEq(bytes(m_.name).length, 0);
        assertEq(m_.tags.length, 0);
        assertEq(uint256(m_.createdAt), 0);
        assertFalse(m_.isDeleted);
        assertFalse(modelRegistry.getIsModelActive(keccak256("nothing")));
    }

    function test_getIsModelActive_lifecycle() public {
        bytes32 modelId_ = modelRegistry.getModelId(provider, BASE_A);
        assertFalse(modelRegistry.getIsModelActive(modelId_), "unknown");
        _register(provider, provider, BASE_A, 0);
        assertTrue(modelRegistry.getIsModelActive(modelId_), "registered");
        _deregister(provider, modelId_);
        assertFalse(modelRegistry.getIsModelActive(modelId_), "deregistered");
        _register(provider, provider, BASE_A, 1 ether);
        assertTrue(modelRegistry.getIsModelActive(modelId_), "re-registered");
    }

    function test_getModelIds_includesDeletedAndActiveDoesNot() public {
        bytes32 a_ = _register(provider, provider, BASE_A, 1 ether);
        bytes32 b_ = _register(provider, provider, BASE_B, 1 ether);
        bytes32 c_ = _register(stranger, stranger, BASE_C, 1 ether);

        _deregister(provider, a_);

        (bytes32[] memory ids_, uint256 total_) = modelRegistry.getModelIds(0, 10);
        assertEq(total_, 3, "deleted models stay in getModelIds");
        assertEq(ids_.length, 3);
        assertEq(ids_[0], a_);
        assertEq(ids_[1], b_);
        assertEq(ids_[2], c_);

        (ids_, total_) = modelRegistry.getActiveModelIds(0, 10);
        assertEq(total_, 2, "the deleted model left the active set");
        assertEq(ids_.length, 2);
        assertEq(ids_[0], c_, "swap-and-pop");
        assertEq(ids_[1], b_);
    }

    function test_pagination_edgeCases() public {
        (bytes32[] memory ids_, uint256 total_) = modelRegistry.getModelIds(0, 10);
        assertEq(ids_.length, 0);
        assertEq(total_, 0);
        (ids_, total_) = modelRegistry.getActiveModelIds(5, 10);
        assertEq(ids_.length, 0);
        assertEq(total_, 0);

        bytes32 a_ = _register(provider, provider, BASE_A, 1 ether);
        bytes32 b_ = _register(provider, provider, BASE_B, 1 ether);
        bytes32 c_ = _register(provider, provider, BASE_C, 1 ether);

        // (0, 0) gives the length only.
        (ids_, total_) = modelRegistry.getModelIds(0, 0);
        assertEq(ids_.length, 0);
        assertEq(total_, 3);
        (ids_, total_) = modelRegistry.getActiveModelIds(0, 0);
        assertEq(ids_.length, 0);
        assertEq(total_, 3);

        // A window in the middle.
        (ids_, total_) = modelRegistry.getModelIds(1, 1);
        assertEq(ids_.length, 1);
        assertEq(ids_[0], b_);
        assertEq(total_, 3);
        (ids_, total_) = modelRegistry.getActiveModelIds(0, 2);
        assertEq(ids_.length, 2);
        assertEq(ids_[0], a_);
        assertEq(ids_[1], b_);

        // Limit larger than the rest.
        (ids_, total_) = modelRegistry.getModelIds(2, 50);
        assertEq(ids_.length, 1);
        assertEq(ids_[0], c_);
        (ids_, total_) = modelRegistry.getActiveModelIds(1, type(uint256).max);
        assertEq(ids_.length, 2);
        assertEq(ids_[0], b_);
        assertEq(ids_[1], c_);

        // Offset at or past the end.
        (ids_, total_) = modelRegistry.getModelIds(3, 1);
        assertEq(ids_.length, 0);
        assertEq(total_, 3);
        (ids_, total_) = modelRegistry.getActiveModelIds(type(uint256).max, type(uint256).max);
        assertEq(ids_.length, 0);
        assertEq(total_, 3);
    }

    // ---------------------------------------------------------------------------------------------------
    // __ModelRegistry_init (D7)
    // ---------------------------------------------------------------------------------------------------

    function test_init_D7_secondCallAndStrangerRevert() public {
        vm.expectRevert(bytes("Initializable: contract is already initialized"));
        modelRegistry.__ModelRegistry_init();

        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        modelRegistry.__ModelRegistry_init();
    }

    function test_init_D7_freshDiamondOwnerOnlyAndOnce() public {
        LumerinDiamond fresh_ = new LumerinDiamond();
        fresh_.__LumerinDiamond_init();
        bytes4[] memory selectors_ = new bytes4[](1);
        selectors_[0] = IModelRegistry.__ModelRegistry_init.selector;
        LumerinDiamond.Facet[] memory cut_ = new LumerinDiamond.Facet[](1);
        cut_[0] = LumerinDiamond.Facet(d.modelRegistryFacet, LumerinDiamond.FacetAction.Add, selectors_);
        fresh_.diamondCut(cut_);
        IModelRegistry fresh = IModelRegistry(address(fresh_));

        vm.expectRevert(abi.encodeWithSelector(LibDiamondAccess.OwnableUnauthorizedAccount.selector, stranger));
        vm.prank(stranger);
        fresh.__ModelRegistry_init();

        vm.expectEmit(false, false, false, true, address(fresh_));
        emit Initialized(keccak256("diamond.standard.models.storage"));
        fresh.__ModelRegistry_init();

        vm.expectRevert(bytes("Initializable: contract is already initialized"));
        fresh.__ModelRegistry_init();
    }
}
